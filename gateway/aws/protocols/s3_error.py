"""S3's XML error body, for the errors the gateway answers before the S3 backend runs
(authentication failures, S3 not available). The S3 REST-XML protocol proper lives in
gateway/aws/protocols/rest_xml.py.

::

    <?xml version="1.0" encoding="UTF-8"?>
    <Error><Code>SignatureDoesNotMatch</Code><Message>...</Message>
      [extra elements, e.g. <RequestTime>...</RequestTime><ServerTime>...</ServerTime>]
      <RequestId>...</RequestId><HostId>...</HostId></Error>

https://docs.aws.amazon.com/AmazonS3/latest/API/ErrorResponses.html
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from xml.sax.saxutils import escape

from aiohttp import web


def host_id(request_id: str) -> str:
    """The ``x-amz-id-2`` / ``<HostId>`` of a request: base64 of SHA-256 of its request id."""
    return base64.b64encode(hashlib.sha256(request_id.encode()).digest()).decode()


def error_body(code: str, message: str, request_id: str,
               details: Mapping[str, str] | None = None) -> bytes:
    extra = "".join(f"<{k}>{escape(str(v))}</{k}>" for k, v in (details or {}).items())
    return ('<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Error><Code>{escape(code)}</Code><Message>{escape(message)}</Message>{extra}"
            f"<RequestId>{request_id}</RequestId><HostId>{host_id(request_id)}</HostId></Error>").encode()


def error_response(code: str, message: str, status: int, request_id: str, *,
                   details: Mapping[str, str] | None = None,
                   head: bool = False) -> web.Response:
    headers = {"x-amz-request-id": request_id, "x-amzn-RequestId": request_id,
               "x-amz-id-2": host_id(request_id)}
    if head:  # HEAD responses carry no body; S3 sends the status only
        return web.Response(status=status, headers=headers)
    headers["Content-Type"] = "application/xml"
    return web.Response(status=status, body=error_body(code, message, request_id, details),
                        headers=headers)
