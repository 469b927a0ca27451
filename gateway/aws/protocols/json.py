"""AWS JSON 1.1 protocol (KMS, CloudTrail): request parsing, response and error rendering.

Request: ``POST /`` with ``X-Amz-Target: <targetPrefix>.<Operation>`` and a JSON object body
(``Content-Type: application/x-amz-json-1.1``). :func:`parse_request` turns the body into the
typed AWS value of the operation's input shape (see gateway/aws/shapes.py), rejecting what
AWS rejects with ``SerializationException``:

* a body that is not JSON, or not a JSON object;
* a member of the wrong JSON type (``Start of structure or map found where not expected.``,
  ``Start of list found where not expected.``, ``STRING_VALUE can not be converted to an
  Integer`` ...), a blob that is not base64, an integer out of range.

Unknown members are ignored, as AWS does. Constraint checks (required, lengths, enums,
patterns) are gateway/aws/validate.py's job, run after parsing.

Response: ``200`` with the output value as JSON (blobs base64, timestamps epoch seconds).
Error: ``{"__type": "<Code>", "message": "<text>"}`` with the error's HTTP status.
Both carry ``x-amzn-RequestId`` and ``Content-Type: application/x-amz-json-1.1``.
https://smithy.io/2.0/aws/protocols/aws-json-1_1-protocol.html
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from aiohttp import web
from botocore.model import Shape

from common.errors import AwsError
from gateway.aws.errors import SerializationException
from gateway.aws.spec import shape_key

CONTENT_TYPE = "application/x-amz-json-1.1"

Decode = Callable[[Any, str], Any]

_INT32 = (-(2**31), 2**31 - 1)
_INT64 = (-(2**63), 2**63 - 1)

_JSON_TYPE_NAMES = {
    str: "STRING_VALUE",
    int: "NUMBER_VALUE",
    float: "NUMBER_VALUE",
    bool: "BOOLEAN_VALUE",
}
_AWS_TYPE_NAMES = {
    "string": "a String", "integer": "an Integer", "long": "a Long", "boolean": "a Boolean",
    "float": "a Float", "double": "a Double", "blob": "a ByteBuffer", "timestamp": "a Date",
}


def _wrong_type(value: Any, shape: Shape) -> AwsError:
    if isinstance(value, dict):
        return SerializationException("Start of structure or map found where not expected.")
    if isinstance(value, list):
        return SerializationException("Start of list found where not expected.")
    token = _JSON_TYPE_NAMES.get(type(value), "NULL_VALUE")
    target = _AWS_TYPE_NAMES.get(shape.type_name, "a " + shape.type_name.capitalize())
    return SerializationException(f"{token} can not be converted to {target}")


def _check_utf8(value: str) -> None:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise SerializationException("Invalid UTF-8 in a string value.") from None


def _reject_constant(name: str) -> Any:
    raise ValueError(name)


_decoders: dict[tuple[int, str], tuple[Shape, Decode]] = {}


def decoder(shape: Shape) -> Decode:
    """A compiled function: decoded JSON value -> typed AWS value of ``shape``."""
    key = shape_key(shape)
    hit = _decoders.get(key)
    if hit is not None:
        return hit[1]
    kind = shape.type_name
    fn: Decode
    if kind == "structure":
        members: dict[str, Decode] = {}

        def fn(value: Any, path: str) -> Any:
            if not isinstance(value, dict):
                raise _wrong_type(value, shape)
            out = {}
            for name, v in value.items():
                dec = members.get(name)
                if dec is not None and v is not None:
                    out[name] = dec(v, name)
            return out

        _decoders[key] = (shape, fn)  # before the members: recursive shapes
        for name, member in shape.members.items():
            members[name] = decoder(member)
        return fn
    if kind == "list":
        item = decoder(shape.member)

        def fn(value: Any, path: str) -> Any:
            if not isinstance(value, list):
                raise _wrong_type(value, shape)
            if None in value:
                raise SerializationException("null is not a valid list element.")
            return [item(v, path) for v in value]
    elif kind == "map":
        val = decoder(shape.value)

        def fn(value: Any, path: str) -> Any:
            if not isinstance(value, dict):
                raise _wrong_type(value, shape)
            for k in value:
                if not k.isascii():
                    _check_utf8(k)
            out = {}
            for k, v in value.items():
                if v is None:
                    raise SerializationException("null is not a valid map value.")
                out[k] = val(v, path)
            return out
    elif kind == "string":
        def fn(value: Any, path: str) -> Any:
            if type(value) is not str:
                raise _wrong_type(value, shape)
            if not value.isascii():
                _check_utf8(value)
            return value
    elif kind == "boolean":
        def fn(value: Any, path: str) -> Any:
            if type(value) is not bool:
                raise _wrong_type(value, shape)
            return value
    elif kind in ("integer", "long"):
        lo, hi = _INT32 if kind == "integer" else _INT64

        def fn(value: Any, path: str) -> Any:
            if type(value) is float and value.is_integer():
                value = int(value)
            if type(value) is not int:
                raise _wrong_type(value, shape)
            if not lo <= value <= hi:
                raise SerializationException(
                    f"NUMBER_VALUE can not be converted to {_AWS_TYPE_NAMES[kind]}")
            return value
    elif kind in ("float", "double"):
        def fn(value: Any, path: str) -> Any:
            if type(value) not in (int, float):
                raise _wrong_type(value, shape)
            return float(value)
    elif kind == "blob":
        def fn(value: Any, path: str) -> Any:
            if type(value) is not str:
                raise _wrong_type(value, shape)
            try:
                return base64.b64decode(value, validate=True)
            except (binascii.Error, ValueError):
                raise SerializationException(
                    f"Value for '{path}' is not a valid base64 encoded string") from None
    elif kind == "timestamp":
        def fn(value: Any, path: str) -> Any:
            if type(value) in (int, float):
                try:
                    return datetime.fromtimestamp(value, timezone.utc)
                except (OverflowError, OSError, ValueError):
                    raise SerializationException(f"Invalid timestamp for '{path}'") from None
            if type(value) is str:
                try:
                    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
                except ValueError:
                    raise SerializationException(f"Invalid timestamp for '{path}'") from None
                return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
            raise _wrong_type(value, shape)
    else:  # document / unknown: pass through
        def fn(value: Any, path: str) -> Any:
            return value
    _decoders[key] = (shape, fn)
    return fn


def parse_request(shape: Shape | None, body: bytes) -> dict[str, Any]:
    """The typed AWS input value of a JSON 1.1 request body."""
    if not body.strip():
        data: Any = {}
    else:
        try:
            data = json.loads(body, parse_constant=_reject_constant)
        except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
            raise SerializationException("Malformed JSON in request body.") from None
    if not isinstance(data, dict):
        raise SerializationException("Start of list found where not expected."
                                     if isinstance(data, list) else
                                     "Expected a JSON object in the request body.")
    if shape is None:
        return {}
    return decoder(shape)(data, "")  # type: ignore[no-any-return]


_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def response(value: dict[str, Any], request_id: str) -> web.Response:
    """200 with a JSON-style AWS value (blobs already base64, timestamps epoch seconds)."""
    return web.Response(
        body=_dumps(value).encode(),
        headers={"Content-Type": CONTENT_TYPE, "x-amzn-RequestId": request_id},
    )


def error_response(err: AwsError, request_id: str) -> web.Response:
    body = {"__type": err.code, "message": err.message}
    return web.Response(
        status=err.http_status,
        body=_dumps(body).encode(),
        headers={"Content-Type": CONTENT_TYPE, "x-amzn-RequestId": request_id},
    )
