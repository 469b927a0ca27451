"""End to end with real boto3 clients: requests captured just before sending.

The clients run their whole pipeline (serialisation, checksums, aws-chunked
wrapping, signing); a ``before-send`` hook captures the wire request and
answers with a canned response instead of hitting the network.  With awscrt
installed botocore signs these through its CRT signers (``botocore.crt.auth``,
backed by aws-c-auth), a second reference implementation.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator
from datetime import datetime
from typing import Any
from unittest import mock
from urllib.parse import parse_qsl, urlsplit

import boto3
import pytest
from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from botocore.compat import HAS_CRT
from botocore.config import Config
from botocore.exceptions import ClientError
from multidict import CIMultiDict

from gateway.auth import (
    ChunkedBodyDecoder,
    HttpRequestView,
    PayloadMode,
    verify_payload_hash,
)

from .helpers import AKID, SECRET, SIGNED_AT, TEMP_AKID, TEMP_SECRET, TOKEN, host_of, run

ENDPOINT = "https://gateway.strongroom.test"


class Captured:
    def __init__(self) -> None:
        self.requests: list[AWSPreparedRequest] = []

    def __call__(self, request: AWSPreparedRequest, **_: Any) -> AWSResponse:
        self.requests.append(request)
        raw = mock.Mock()
        # A 404 is parsed without trouble by every protocol; the test only
        # needs the request that was about to be sent.
        raw.stream.return_value = iter([b""])
        return AWSResponse(request.url, 404, {}, raw)

    def last(self) -> AWSPreparedRequest:
        return self.requests[-1]


def _clock(remove_tzinfo: bool = True) -> datetime:
    return SIGNED_AT.replace(tzinfo=None) if remove_tzinfo else SIGNED_AT


@pytest.fixture(scope="module")
def frozen_clock() -> Iterator[None]:
    """Pin the clock of botocore's signers (pure Python and, with awscrt, CRT)."""
    with contextlib.ExitStack() as stack:
        stack.enter_context(mock.patch("botocore.auth.get_current_datetime", _clock))
        if HAS_CRT:
            stack.enter_context(mock.patch("botocore.crt.auth.get_current_datetime", _clock))
        yield


def call(operation: Any, **params: Any) -> None:
    with contextlib.suppress(ClientError):
        operation(**params)


_SESSION: list[boto3.session.Session] = []


def make_client(service: str, captured: Captured, *, temporary: bool = False,
                **config: Any) -> Any:
    if not _SESSION:  # one session: service models are loaded once
        _SESSION.append(boto3.session.Session(region_name="us-east-1"))
    client = _SESSION[0].client(
        service,
        endpoint_url=ENDPOINT,
        aws_access_key_id=TEMP_AKID if temporary else AKID,
        aws_secret_access_key=TEMP_SECRET if temporary else SECRET,
        aws_session_token=TOKEN if temporary else None,
        config=Config(retries={"max_attempts": 1}, **config),
    )
    client.meta.events.register("before-send", captured)
    return client


def wire_view(request: AWSPreparedRequest, *, is_s3: bool) -> HttpRequestView:
    split = urlsplit(request.url)
    headers = CIMultiDict((k, v.decode() if isinstance(v, bytes) else v)
                          for k, v in request.headers.items())
    headers.setdefault("Host", host_of(request.url))
    return HttpRequestView(request.method, split.path or "/",
                           parse_qsl(split.query, keep_blank_values=True), headers,
                           headers["host"], is_s3)


def wire_body(request: AWSPreparedRequest) -> bytes:
    body = request.body
    if body is None:
        return b""
    if isinstance(body, (bytes, bytearray)):
        return bytes(body)
    if isinstance(body, str):
        return body.encode()
    return bytes(body.read())


def test_s3_client_operations(frozen_clock: None) -> None:
    captured = Captured()
    s3 = make_client("s3", captured, s3={"addressing_style": "path"})
    call(s3.list_objects_v2, Bucket="photos", Prefix="2024/ä b+c", Delimiter="/")
    call(s3.get_object, Bucket="photos", Key="2024/a key+with=odd&chars", Range="bytes=0-9")
    call(s3.put_object_acl, Bucket="photos", Key="k", ACL="public-read")
    call(s3.delete_objects, Bucket="photos", Delete={"Objects": [{"Key": "a"}, {"Key": "b"}]})
    for request in captured.requests:
        view = wire_view(request, is_s3=True)
        result = run(view)
        assert result.access_key_id == AKID
        verify_payload_hash(result, wire_body(request))


def test_s3_put_object_with_botocore_aws_chunked_trailer(frozen_clock: None) -> None:
    captured = Captured()
    s3 = make_client("s3", captured, s3={"addressing_style": "path"},
                     request_checksum_calculation="when_supported")
    data = b"0123456789abcdef" * 5000
    call(s3.put_object, Bucket="photos", Key="big.bin", Body=io.BytesIO(data),
                  ChecksumAlgorithm="SHA256")
    request = captured.last()
    view = wire_view(request, is_s3=True)
    result = run(view)
    assert result.payload.mode is PayloadMode.STREAMING_UNSIGNED_TRAILER
    decoder = ChunkedBodyDecoder(result, view.headers)
    decoded = b"".join(decoder.feed(wire_body(request)))
    trailers = decoder.finish()
    assert decoded == data
    assert set(trailers) == {"x-amz-checksum-sha256"}


def test_s3_presigned_urls_from_the_client(frozen_clock: None) -> None:
    captured = Captured()
    for temporary in (False, True):
        s3 = make_client("s3", captured, temporary=temporary,
                         s3={"addressing_style": "path"}, signature_version="s3v4")
        url = s3.generate_presigned_url(
            "get_object", Params={"Bucket": "photos", "Key": "a b/c.txt",
                                  "ResponseContentType": "text/plain"}, ExpiresIn=900)
        split = urlsplit(url)
        view = HttpRequestView("GET", split.path, parse_qsl(split.query), CIMultiDict(
            {"Host": split.netloc}), split.netloc, True)
        result = run(view)
        assert (result.auth_method, result.payload.mode) == ("QueryString", PayloadMode.UNSIGNED)


def test_s3_sigv2_client(frozen_clock: None) -> None:
    captured = Captured()
    s3 = make_client("s3", captured, s3={"addressing_style": "path"}, signature_version="s3")
    with mock.patch("botocore.auth.formatdate", return_value="Wed, 01 May 2024 12:00:00 GMT"):
        call(s3.get_object_acl, Bucket="photos", Key="doc.txt", VersionId="v2")
    result = run(wire_view(captured.last(), is_s3=True))
    assert (result.signature_version, result.auth_method) == ("SigV2", "AuthHeader")


@pytest.mark.parametrize("temporary", [False, True])
def test_kms_and_cloudtrail_clients(frozen_clock: None, temporary: bool) -> None:
    captured = Captured()
    kms = make_client("kms", captured, temporary=temporary)
    call(kms.encrypt, KeyId="alias/app", Plaintext=b"secret data")
    call(kms.list_keys, Limit=5)
    trail = make_client("cloudtrail", captured, temporary=temporary)
    call(trail.lookup_events, MaxResults=1)
    services = ["kms", "kms", "cloudtrail"]
    for request, service in zip(captured.requests, services):
        body = wire_body(request)
        result = run(wire_view(request, is_s3=False), body=body, service=service)
        assert result.service == service
        assert result.payload.mode is PayloadMode.VERIFIED
        if temporary:
            assert result.access_key_id == TEMP_AKID
