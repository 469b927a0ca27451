"""Entry points: pick the authentication scheme of a request and verify it.

Scheme selection (S3 rules: https://docs.aws.amazon.com/AmazonS3/latest/API/sig-v4-authenticating-requests.html):

* ``Authorization: AWS4-HMAC-SHA256 ...``            -> SigV4, ``AuthHeader``
* ``X-Amz-Algorithm``/``-Credential``/``-Signature`` -> SigV4, ``QueryString``
* ``Authorization: AWS AKID:sig`` (S3 only)          -> SigV2, ``AuthHeader``
* ``AWSAccessKeyId``/``Signature`` params (S3 only)  -> SigV2, ``QueryString``
* none of these                                      -> anonymous
* a header *and* query credentials                   -> ``InvalidArgument``
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime, timezone

from . import errors
from .canonical import ALGORITHM, header_getter
from .models import AuthResult, CredentialLookup, HttpRequestView, PayloadMode
from .sigv2 import verify_sigv2_header, verify_sigv2_query
from .sigv4 import BodySha256, declared_payload, verify_sigv4_header, verify_sigv4_query

__all__ = ["authenticate", "require_authenticated", "verify_payload_hash"]

_V4_QUERY_KEYS = frozenset({"X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Signature"})
_V2_QUERY_KEYS = frozenset({"AWSAccessKeyId", "Signature"})


async def authenticate(
    req: HttpRequestView,
    lookup: CredentialLookup,
    *,
    now: datetime,
    region: str,
    service: str | None = None,
    body_sha256: BodySha256 | None = None,
    s3_vhost_bucket: str | None = None,
) -> AuthResult:
    """Verify the request's signature exactly as AWS would.

    ``now``
        Server clock (aware; a naive value is taken as UTC).
    ``region``
        The region this gateway serves; the credential scope must name it.
    ``service``
        Expected signing name in the credential scope (``"kms"``,
        ``"cloudtrail"``); defaults to ``"s3"`` for S3 requests and to "not
        checked" otherwise (then check ``result.service`` yourself).
    ``body_sha256``
        For non-S3 requests: callable returning the hex SHA-256 of the body;
        called at most once, only after cheaper checks passed.  Required for
        non-S3 requests unless they carry a hex ``x-amz-content-sha256``
        header (then call :func:`verify_payload_hash` later).  Ignored for S3,
        whose payload hash is the ``x-amz-content-sha256`` header.
    ``s3_vhost_bucket``
        Bucket named by the Host header of a virtual-hosted-style S3 request
        (``bucket.s3.example.com``); SigV2 signs ``/bucket/key`` even then.

    Raises :class:`AuthError`; returns an anonymous result when the request
    carries no credentials (see :func:`require_authenticated`).
    """
    if now.tzinfo is None:
        now = now.replace(tzinfo=timezone.utc)
    now_ts = now.timestamp()
    headers = req.headers
    s3 = req.is_s3
    authorization = headers.get("authorization")

    v4_query = v2_query = False
    for name, _ in req.query:
        if name in _V4_QUERY_KEYS:
            v4_query = True
        elif s3 and name in _V2_QUERY_KEYS:
            v2_query = True

    if authorization is not None:
        if v4_query or v2_query:
            raise errors.conflicting_auth(s3, authorization)
        stripped = authorization.lstrip()
        scheme = stripped.split(" ", 1)[0]
        if scheme == ALGORITHM:
            return await verify_sigv4_header(
                req,
                stripped,
                lookup,
                now_ts=now_ts,
                region=region,
                service=service,
                body_sha256=body_sha256,
            )
        if scheme == "AWS" and s3:
            return await verify_sigv2_header(
                req, stripped, lookup, now_ts=now_ts, get=header_getter(headers),
                vhost_bucket=s3_vhost_bucket,
            )
        raise errors.unsupported_authorization(s3, authorization)
    if v4_query:
        if v2_query:
            raise errors.conflicting_auth(s3, "")
        return await verify_sigv4_query(
            req,
            lookup,
            now_ts=now_ts,
            region=region,
            service=service,
            body_sha256=body_sha256,
        )
    if v2_query:
        return await verify_sigv2_query(
            req, lookup, now_ts=now_ts, get=header_getter(headers),
            vhost_bucket=s3_vhost_bucket,
        )
    return _anonymous(req)


def _anonymous(req: HttpRequestView) -> AuthResult:
    return AuthResult(
        anonymous=True,
        credential=None,
        signature_version=None,
        auth_method=None,
        region=None,
        service=None,
        payload=declared_payload(req.headers, req.is_s3),
    )


def require_authenticated(result: AuthResult, is_s3: bool) -> None:
    """Reject anonymous requests.

    JSON services (KMS, CloudTrail) never accept them:
    ``MissingAuthenticationTokenException`` ("Missing Authentication Token",
    403).  S3 normally lets anonymous requests through to the bucket policy
    check; call this for S3 only where no public access is possible (it then
    raises S3's plain ``AccessDenied``).
    """
    if result.anonymous:
        raise errors.missing_authentication(is_s3)


def verify_payload_hash(result: AuthResult, body: bytes | bytearray | memoryview) -> None:
    """Check a fully read (non aws-chunked) body against the signed payload hash.

    No-op for ``UNSIGNED-PAYLOAD`` and for bodies the verifier already hashed;
    ``XAmzContentSHA256Mismatch`` (S3) when the body does not match the
    ``x-amz-content-sha256`` value the signature covered.  Streaming bodies
    must go through :class:`gateway.auth.ChunkedBodyDecoder` instead.
    """
    payload = result.payload
    mode = payload.mode
    if mode is PayloadMode.UNSIGNED or mode is PayloadMode.VERIFIED:
        return
    if mode is PayloadMode.SHA256:
        computed = hashlib.sha256(body).hexdigest()
        expected = payload.sha256 or ""
        if not hmac.compare_digest(computed, expected):
            raise errors.content_sha256_mismatch(payload.is_s3, client=expected, computed=computed)
        return
    raise ValueError(f"{mode.value}: decode the body with ChunkedBodyDecoder")

