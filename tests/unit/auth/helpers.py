"""Test helpers: requests signed by botocore, turned into HttpRequestView objects.

Everything that signs goes through botocore's own signers (``SigV4Auth``,
``S3SigV4Auth``, ``SigV4QueryAuth``, ``S3SigV4QueryAuth``, ``HmacV1Auth``,
``HmacV1QueryAuth``) with the clock pinned, so that the verifier is checked
against the reference implementation rather than against itself.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import hmac
import io
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from email.utils import formatdate
from typing import Any
from unittest import mock
from urllib.parse import parse_qsl, urlsplit

from botocore.auth import HmacV1Auth, HmacV1QueryAuth, S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from multidict import CIMultiDict

from gateway.auth import (
    AuthError,
    AuthResult,
    ChunkedBodyDecoder,
    HttpRequestView,
    SigningCredential,
    authenticate,
)

REGION = "us-east-1"
AKID = "AKIDSTRONGROOMTEST01"
SECRET = "strongroom/Test+Secret/0123456789abcdefghij"
TEMP_AKID = "ASIASTRONGROOMTEMP01"
TEMP_SECRET = "temporary/secret/key/0123456789abcdefghij"
TOKEN = "IQoJb3JpZ2luX2VjEJr//////////wEaCXVzLWVhc3QtMSJGMEQCIFakeSessionToken=="
SIGNED_AT = datetime(2024, 5, 1, 12, 0, 0, tzinfo=timezone.utc)

DOC_AKID = "AKIAIOSFODNN7EXAMPLE"
DOC_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
DOC_TIME = datetime(2013, 5, 24, 0, 0, 0, tzinfo=timezone.utc)


class Lookup:
    """In-memory CredentialLookup recording the ids it was asked for."""

    def __init__(self, *credentials: SigningCredential) -> None:
        self.by_id = {c.access_key_id: c for c in credentials}
        self.calls: list[str] = []

    async def __call__(self, access_key_id: str) -> SigningCredential | None:
        self.calls.append(access_key_id)
        return self.by_id.get(access_key_id)


def default_lookup(expires_at: datetime | None = None) -> Lookup:
    return Lookup(
        SigningCredential(AKID, SECRET, principal="user/alice"),
        SigningCredential(
            TEMP_AKID,
            TEMP_SECRET,
            session_token=TOKEN,
            expires_at=expires_at or SIGNED_AT + timedelta(hours=1),
            principal="role/session",
        ),
        SigningCredential(DOC_AKID, DOC_SECRET, principal="doc"),
    )


def creds(temporary: bool = False, secret: str | None = None) -> Credentials:
    if temporary:
        return Credentials(TEMP_AKID, secret or TEMP_SECRET, TOKEN)
    return Credentials(AKID, secret or SECRET)


def sign(signer: Any, request: AWSRequest, at: datetime = SIGNED_AT) -> AWSRequest:
    """Run a botocore SigV4 signer with its clock pinned to ``at``."""
    with mock.patch("botocore.auth.get_current_datetime", return_value=at.replace(tzinfo=None)):
        signer.add_auth(request)
    return request


class FixedHmacV1Auth(HmacV1Auth):  # type: ignore[misc]  # botocore is untyped
    """botocore's HmacV1Auth with a pinned Date header."""

    def __init__(self, credentials: Credentials, at: datetime = SIGNED_AT) -> None:
        super().__init__(credentials)
        self._at = at

    def _get_date(self) -> str:
        return formatdate(self._at.timestamp(), usegmt=True)


class FixedHmacV1QueryAuth(HmacV1QueryAuth):  # type: ignore[misc]  # botocore is untyped
    """botocore's HmacV1QueryAuth with ``Expires`` computed from a pinned clock."""

    def __init__(self, credentials: Credentials, expires: int, at: datetime = SIGNED_AT) -> None:
        super().__init__(credentials, expires=expires)
        self._at = at

    def _get_date(self) -> str:
        return str(int(self._at.timestamp()) + int(self._expires))


def host_of(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or ""
    default = {"http": 80, "https": 443}.get(parts.scheme)
    if parts.port is not None and parts.port != default:
        host = f"{host}:{parts.port}"
    return host


def to_view(request: AWSRequest, *, is_s3: bool, extra_headers: Mapping[str, str] | None = None,
            drop_headers: Iterable[str] = ()) -> HttpRequestView:
    """What the gateway would see after an HTTP client sent ``request``."""
    prepared = request.prepare()
    split = urlsplit(prepared.url)
    headers: CIMultiDict[str] = CIMultiDict()
    # The signed request's own headers keep repeated values; prepare() may add more.
    for name, value in request.headers.items():
        headers.add(name, value)
    for name, value in prepared.headers.items():
        if name not in headers:
            headers.add(name, value)
    if "host" not in headers:
        headers["Host"] = host_of(prepared.url)
    for name in drop_headers:
        headers.popall(name, None)
    for name, value in (extra_headers or {}).items():
        headers.add(name, value)
    return HttpRequestView(
        method=prepared.method,
        raw_path=split.path or "/",
        query=parse_qsl(split.query, keep_blank_values=True),
        headers=headers,
        host=headers["host"],
        is_s3=is_s3,
    )


def body_of(request: AWSRequest) -> bytes:
    body = request.prepare().body
    if body is None:
        return b""
    if isinstance(body, (bytes, bytearray)):
        return bytes(body)
    if isinstance(body, str):
        return body.encode()
    data = body.read()
    if hasattr(body, "seek"):
        body.seek(0)
    return bytes(data)


def run(
    view: HttpRequestView,
    lookup: Lookup | None = None,
    *,
    now: datetime = SIGNED_AT,
    region: str = REGION,
    body: bytes | None = None,
    **kwargs: Any,
) -> AuthResult:
    """authenticate() synchronously; non-S3 requests hash ``body`` lazily."""
    if not view.is_s3 and "body_sha256" not in kwargs:
        data = body or b""
        kwargs["body_sha256"] = lambda: hashlib.sha256(data).hexdigest()
    return asyncio.run(
        authenticate(view, lookup or default_lookup(), now=now, region=region, **kwargs)
    )


def fails(view: HttpRequestView, **kwargs: Any) -> AuthError:
    try:
        run(view, **kwargs)
    except AuthError as error:
        return error
    raise AssertionError("request was accepted")


def replace_view(view: HttpRequestView, **changes: Any) -> HttpRequestView:
    return dataclasses.replace(view, **changes)


def with_headers(view: HttpRequestView, **changes: str | None) -> HttpRequestView:
    headers: CIMultiDict[str] = CIMultiDict(view.headers)
    for name, value in changes.items():
        name = name.replace("_", "-")
        headers.popall(name, None)
        if value is not None:
            headers[name] = value
    return replace_view(view, headers=headers)


# --------------------------------------------------------------------------
# aws-chunked bodies


class StreamingSeedAuth(S3SigV4Auth):  # type: ignore[misc]  # botocore is untyped
    """botocore's S3 signer, for a request whose body will be sent aws-chunked.

    botocore does not implement signed chunked uploads itself; the seed
    signature is an ordinary S3 SigV4 signature whose payload hash is the
    literal STREAMING-* value, which is all this subclass changes.
    """

    def __init__(self, credentials: Credentials, mode: str) -> None:
        super().__init__(credentials, "s3", REGION)
        self._mode = mode

    def payload(self, request: AWSRequest) -> str:
        return self._mode


def signed_chunk_body(
    signer: StreamingSeedAuth,
    request: AWSRequest,
    chunks: Sequence[bytes],
    *,
    trailer: Mapping[str, str] | None = None,
) -> bytes:
    """Frame ``chunks`` as a signed aws-chunked body chained from the seed.

    The chunk string-to-sign follows the AWS documentation; the HMAC key is
    derived by botocore (``SigV4Auth.signature``).
    """
    auth = request.headers["Authorization"]
    previous = auth.rsplit("Signature=", 1)[1]
    timestamp = request.context["timestamp"]
    scope = signer.credential_scope(request)
    empty = hashlib.sha256(b"").hexdigest()
    out = io.BytesIO()
    for data in [*chunks, b""]:
        sts = "\n".join(
            [
                "AWS4-HMAC-SHA256-PAYLOAD",
                timestamp,
                scope,
                previous,
                empty,
                hashlib.sha256(data).hexdigest(),
            ]
        )
        previous = signer.signature(sts, request)
        out.write(b"%x;chunk-signature=%s\r\n" % (len(data), previous.encode()))
        if data:
            out.write(data + b"\r\n")
    if trailer is not None:
        canonical = "".join(f"{k}:{v}\n" for k, v in trailer.items())
        sts = "\n".join(
            [
                "AWS4-HMAC-SHA256-TRAILER",
                timestamp,
                scope,
                previous,
                hashlib.sha256(canonical.encode()).hexdigest(),
            ]
        )
        for name, value in trailer.items():
            out.write(f"{name}:{value}\r\n".encode())
        out.write(f"x-amz-trailer-signature:{signer.signature(sts, request)}\r\n".encode())
    out.write(b"\r\n")
    return out.getvalue()


def decode_all(result: AuthResult, headers: Mapping[str, str], body: bytes,
               step: int = 4096) -> tuple[bytes, dict[str, str]]:
    decoder = ChunkedBodyDecoder(result, headers)
    pieces: list[bytes] = []
    for offset in range(0, len(body), step):
        pieces.extend(decoder.feed(body[offset : offset + step]))
    trailers = decoder.finish()
    return b"".join(pieces), trailers


def hmac_hex(key: bytes, msg: str) -> str:
    return hmac.new(key, msg.encode(), hashlib.sha256).hexdigest()
