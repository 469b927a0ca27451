"""AWS Signature Version 4 verification: Authorization header and presigned URLs.

Authorization header
(https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-auth-using-authorization-header.html)::

    Authorization: AWS4-HMAC-SHA256 Credential=AKID/20130524/us-east-1/s3/aws4_request,
                   SignedHeaders=host;range;x-amz-date, Signature=fe5f80f7...

The request time is ``X-Amz-Date`` (ISO 8601 basic) or, failing that,
``Date``; it must be within 15 minutes of the server clock and its date must
equal the credential-scope date.

Presigned URL
(https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-query-string-auth.html):
``X-Amz-Algorithm``, ``X-Amz-Credential``, ``X-Amz-Date``, ``X-Amz-Expires``
(1..604800 s), ``X-Amz-SignedHeaders``, ``X-Amz-Signature`` and optionally
``X-Amz-Security-Token`` travel in the query string; every query parameter
but ``X-Amz-Signature`` is part of the canonical query string and the payload
hash is the literal ``UNSIGNED-PAYLOAD`` for S3.  The URL is valid from
``X-Amz-Date`` (minus the 15-minute skew allowance) up to and including
``X-Amz-Date + X-Amz-Expires``.

See :mod:`gateway.auth.canonical` for the canonical request itself.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable, Mapping
from datetime import timezone
from functools import lru_cache
from typing import Final, NoReturn

from . import errors
from .canonical import (
    ALGORITHM,
    canonical_headers,
    canonical_path,
    canonical_query,
    format_amz_date,
    parse_amz_date,
    parse_http_date,
    raw_s3_path,
    signing_key,
)
from .errors import MAX_SKEW_SECONDS, AuthError
from .models import (
    AuthResult,
    CredentialLookup,
    HttpRequestView,
    PayloadExpectation,
    PayloadMode,
    SigningCredential,
)

__all__ = ["verify_sigv4_header", "verify_sigv4_query", "check_session_token"]

MAX_PRESIGN_EXPIRES: Final = 7 * 24 * 3600
UNSIGNED_PAYLOAD: Final = "UNSIGNED-PAYLOAD"

_HEX64 = re.compile(r"[0-9a-fA-F]{64}")
_DIGITS = re.compile(r"[0-9]+")
_PAYLOAD_MODES: Final[dict[str, PayloadMode]] = {
    UNSIGNED_PAYLOAD: PayloadMode.UNSIGNED,
    PayloadMode.STREAMING_SIGNED.value: PayloadMode.STREAMING_SIGNED,
    PayloadMode.STREAMING_SIGNED_TRAILER.value: PayloadMode.STREAMING_SIGNED_TRAILER,
    PayloadMode.STREAMING_UNSIGNED_TRAILER.value: PayloadMode.STREAMING_UNSIGNED_TRAILER,
}
_PRESIGN_PARAMS: Final = (
    "X-Amz-Algorithm",
    "X-Amz-Credential",
    "X-Amz-Signature",
    "X-Amz-Date",
    "X-Amz-SignedHeaders",
    "X-Amz-Expires",
)
_CREDENTIAL_FORMAT = '"<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request"'

BodySha256 = Callable[[], str]


# --------------------------------------------------------------------------
# shared steps


def check_session_token(
    s3: bool, credential: SigningCredential, token: str | None, now_ts: float
) -> None:
    """Security token rules for temporary and long-term credentials."""
    if token is None and credential.session_token is None and credential.expires_at is None:
        return  # long-term key, no token: the common case
    if token == "":
        token = None
    expected = credential.session_token
    if expected is not None:
        if token is None:
            raise errors.missing_token(s3, credential.access_key_id)
        if not hmac.compare_digest(
            token.encode("utf-8", "surrogateescape"), expected.encode("utf-8", "surrogateescape")
        ):
            raise errors.invalid_token(s3)
    elif token is not None:
        raise errors.invalid_token(s3)
    expires_at = credential.expires_at
    if expires_at is not None:
        if expires_at.tzinfo is None:
            expires_at = expires_at.replace(tzinfo=timezone.utc)
        if now_ts >= expires_at.timestamp():
            raise errors.expired_token(s3, token or "")


def _signatures_equal(computed: str, provided: str) -> bool:
    return provided.isascii() and hmac.compare_digest(computed, provided)


def _split_credential(
    s3: bool, credential: str, *, query: bool, expected_service: str | None, region: str
) -> tuple[str, str, str, str]:
    """Validate a credential scope (cached: the same scope repeats all day)."""
    if len(credential) <= 256:
        return _split_credential_cached(s3, credential, query, expected_service, region)
    return _split_credential_impl(s3, credential, query, expected_service, region)


def _split_credential_impl(
    s3: bool, credential: str, query: bool, expected_service: str | None, region: str
) -> tuple[str, str, str, str]:
    parts = credential.split("/")
    if len(parts) != 5 or parts[4] != "aws4_request" or not parts[0]:
        if query:
            s3_message = (
                "Error parsing the X-Amz-Credential parameter; the Credential is mal-formed; "
                f"expecting {_CREDENTIAL_FORMAT}."
            )
        else:
            s3_message = f"the Credential is mal-formed; expecting {_CREDENTIAL_FORMAT}."
        if len(parts) != 5:
            json_message = (
                "Credential must have exactly 5 slash-delimited elements, e.g. "
                f"keyid/date/region/service/term, got '{credential}'"
            )
        else:
            json_message = (
                "Credential should be scoped with a valid terminator: 'aws4_request', "
                f"not '{parts[4]}'. "
            )
        raise (errors.query_malformed if query else errors.header_malformed)(
            s3, s3_message, json_message
        )
    access_key_id, date, scope_region, scope_service, _ = parts
    if scope_region != region:
        prefix = "Error parsing the X-Amz-Credential parameter; " if query else ""
        _scope_error(
            s3,
            query,
            f"{prefix}the region '{scope_region}' is wrong; expecting '{region}'",
            f"Credential should be scoped to a valid region, not '{scope_region}'. ",
            Region=region,
        )
    if expected_service is not None and scope_service != expected_service:
        prefix = "Error parsing the X-Amz-Credential parameter; " if query else ""
        _scope_error(
            s3,
            query,
            f'{prefix}incorrect service "{scope_service}". This endpoint belongs to '
            f'"{expected_service}".',
            f"Credential should be scoped to correct service: '{expected_service}'. ",
        )
    return access_key_id, date, scope_region, scope_service


_split_credential_cached = lru_cache(maxsize=1024)(_split_credential_impl)


def _scope_error(
    s3: bool, query: bool, s3_message: str, json_message: str, **details: str
) -> NoReturn:
    """Scope problems: malformed-request flavour for S3, signature flavour for JSON."""
    if s3:
        if query:
            raise errors.query_malformed(True, s3_message, json_message, **details)
        raise errors.header_malformed(True, s3_message, json_message, **details)
    raise AuthError("InvalidSignatureException", json_message, 400)


def _payload_for_s3(value: str) -> tuple[PayloadMode, str | None]:
    mode = _PAYLOAD_MODES.get(value)
    if mode is not None:
        return mode, None
    if len(value) == 64 and _HEX64.fullmatch(value):
        return PayloadMode.SHA256, value.lower()
    raise errors.invalid_content_sha256(value)


def _finish(
    req: HttpRequestView,
    *,
    access_key_id: str,
    signature: str,
    signed_headers: str,
    query_exclude: str | None,
    payload_line: str,
    amz_date: str,
    scope: str,
    key: bytes,
) -> str:
    """Build the canonical request, compare signatures; return the signature."""
    names = signed_headers.split(";")
    headers_block = canonical_headers(names, req.headers, req.host)
    query_block = canonical_query(req.query, query_exclude)
    path = canonical_path(req.raw_path, req.is_s3)
    canonical_request = (
        f"{req.method}\n{path}\n{query_block}\n{headers_block}\n{signed_headers}\n{payload_line}"
    )
    string_to_sign = (
        f"{ALGORITHM}\n{amz_date}\n{scope}\n"
        f"{hashlib.sha256(canonical_request.encode('utf-8', 'surrogateescape')).hexdigest()}"
    )
    computed = hmac.digest(key, string_to_sign.encode("utf-8"), "sha256").hex()
    if _signatures_equal(computed, signature):
        return computed
    if req.is_s3:
        # Some clients sign the path exactly as they send it.
        raw = raw_s3_path(req.raw_path)
        if raw != path:
            alt_request = (
                f"{req.method}\n{raw}\n{query_block}\n{headers_block}\n"
                f"{signed_headers}\n{payload_line}"
            )
            alt_sts = (
                f"{ALGORITHM}\n{amz_date}\n{scope}\n"
                f"{hashlib.sha256(alt_request.encode('utf-8', 'surrogateescape')).hexdigest()}"
            )
            alt = hmac.digest(key, alt_sts.encode("utf-8"), "sha256").hex()
            if _signatures_equal(alt, signature):
                return alt
    raise errors.signature_mismatch(
        req.is_s3,
        access_key_id=access_key_id,
        string_to_sign=string_to_sign,
        signature_provided=signature,
        canonical_request=canonical_request,
    )


def _require_host(s3: bool, query: bool, signed_names: list[str]) -> None:
    if "host" not in signed_names:
        _scope_error(
            s3,
            query,
            "'Host' must be a 'SignedHeader' in the AWS Authorization.",
            "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.",
        )


def _result(
    req: HttpRequestView,
    credential: SigningCredential,
    auth_method: str,
    region: str,
    service: str,
    mode: PayloadMode,
    sha256_hex: str | None,
    signature: str,
    key: bytes,
    scope: str,
    amz_date: str,
) -> AuthResult:
    streaming = _is_streaming(mode)
    if streaming:
        payload = PayloadExpectation(
            mode=mode,
            seed_signature=signature,
            signing_key=key,
            scope=scope,
            amz_date=amz_date,
            is_s3=req.is_s3,
        )
    else:
        payload = _plain_payload(mode, sha256_hex, req.is_s3)
        # Results are immutable: reuse the previous one for the same credential
        # object and outcome (a frozen dataclass costs ~1.5 us to build).
        cache_key = (id(credential), id(payload), auth_method, region, service)
        cached = _RESULTS.get(cache_key)
        if cached is not None and cached.credential is credential and cached.payload is payload:
            return cached
    result = AuthResult(
        anonymous=False,
        credential=credential,
        signature_version="SigV4",
        auth_method=auth_method,
        region=region,
        service=service,
        payload=payload,
    )
    if not streaming:
        if len(_RESULTS) >= 4096:
            _RESULTS.clear()
        _RESULTS[cache_key] = result
    return result


# A cached result references its credential and payload objects, which keeps
# their ids from being reused while the entry exists.
_RESULTS: dict[tuple[int, int, str, str, str], AuthResult] = {}


def _is_streaming(mode: PayloadMode) -> bool:
    # Identity tests: hashing an Enum member runs Python code.
    return (
        mode is PayloadMode.STREAMING_SIGNED
        or mode is PayloadMode.STREAMING_UNSIGNED_TRAILER
        or mode is PayloadMode.STREAMING_SIGNED_TRAILER
    )


_PLAIN_PAYLOADS: dict[tuple[str, str | None, bool], PayloadExpectation] = {}


def _plain_payload(mode: PayloadMode, sha256_hex: str | None, is_s3: bool) -> PayloadExpectation:
    """Immutable, so shared between requests (saves an allocation per request)."""
    key = (mode._value_, sha256_hex, is_s3)
    payload = _PLAIN_PAYLOADS.get(key)
    if payload is None:
        if len(_PLAIN_PAYLOADS) >= 1024:
            _PLAIN_PAYLOADS.clear()
        payload = _PLAIN_PAYLOADS[key] = PayloadExpectation(
            mode=mode, sha256=sha256_hex, is_s3=is_s3
        )
    return payload


def declared_payload(headers: Mapping[str, str], is_s3: bool) -> PayloadExpectation:
    """Payload expectation of a request without SigV4 signing material.

    SigV2 and anonymous requests: a declared hex ``x-amz-content-sha256`` is
    still checked against the body and ``STREAMING-UNSIGNED-PAYLOAD-TRAILER``
    bodies are still decoded; signed aws-chunked bodies cannot be verified
    without a SigV4 seed and are refused.
    """
    declared = headers.get("x-amz-content-sha256") if is_s3 else None
    if declared is None or declared == UNSIGNED_PAYLOAD:
        return _plain_payload(PayloadMode.UNSIGNED, None, is_s3)
    if declared == PayloadMode.STREAMING_UNSIGNED_TRAILER.value:
        return _plain_payload(PayloadMode.STREAMING_UNSIGNED_TRAILER, None, is_s3)
    if len(declared) == 64 and _HEX64.fullmatch(declared):
        return _plain_payload(PayloadMode.SHA256, declared.lower(), is_s3)
    raise errors.invalid_content_sha256(declared)


def _non_s3_payload(
    headers: Mapping[str, str], body_sha256: BodySha256 | None
) -> tuple[PayloadMode, str | None]:
    """JSON services: the verifier hashes the body itself (lazily)."""
    if body_sha256 is not None:
        return PayloadMode.VERIFIED, None
    declared = headers.get("x-amz-content-sha256")
    if declared is not None and len(declared) == 64 and _HEX64.fullmatch(declared):
        return PayloadMode.SHA256, declared.lower()
    raise ValueError(
        "authenticate(): body_sha256 is required for non-S3 requests "
        "(pass a callable returning the hex SHA-256 of the body)"
    )


# --------------------------------------------------------------------------
# Authorization header

_AUTHORIZATION = re.compile(
    r"AWS4-HMAC-SHA256 +Credential=([^,= ]+), *SignedHeaders=([^,= ]+), *Signature=([0-9a-f]{64})"
)


def _parse_authorization(s3: bool, authorization: str) -> tuple[str | None, str | None, str | None]:
    fields: dict[str, str] = {}
    for component in authorization[len(ALGORITHM) :].split(","):
        component = component.strip()
        if not component:
            continue
        name, eq, value = component.partition("=")
        if not eq:
            raise errors.header_malformed(
                s3,
                f'the authorization component "{component}" is malformed.',
                f"'{component}' not a valid key=value pair (missing equal-sign) in "
                f"Authorization header: '{authorization}'.",
            )
        fields[name.strip()] = value.strip()
    return fields.get("Credential"), fields.get("SignedHeaders"), fields.get("Signature")



async def _credential(s3: bool, lookup: CredentialLookup, access_key_id: str,
                      token: str | None, now_ts: float) -> SigningCredential:
    """The signing credential of ``access_key_id``, with its session token checked."""
    credential = await lookup(access_key_id)
    if credential is None:
        raise errors.unknown_access_key(s3, access_key_id)
    check_session_token(s3, credential, token, now_ts)
    return credential

async def verify_sigv4_header(
    req: HttpRequestView,
    authorization: str,
    lookup: CredentialLookup,
    *,
    now_ts: float,
    region: str,
    service: str | None,
    body_sha256: BodySha256 | None,
) -> AuthResult:
    s3 = req.is_s3
    headers = req.headers
    match = _AUTHORIZATION.fullmatch(authorization)
    if match is not None:  # the usual SDK layout
        credential_field, signed_field, signature = match.groups()
    else:
        credential_field, signed_field, signature = _parse_authorization(s3, authorization)
    amz_date_raw = headers.get("x-amz-date")
    date_raw = headers.get("date") if amz_date_raw is None else None
    if not credential_field or not signed_field or not signature:
        raise errors.header_malformed(
            s3,
            "the authorization header requires three components: Credential, SignedHeaders, "
            "and Signature.",
            errors.json_requires_message(
                authorization,
                credential=not credential_field,
                signed_headers=not signed_field,
                signature=not signature,
                date=amz_date_raw is None and date_raw is None,
            ),
        )

    # --- request time ----------------------------------------------------
    if amz_date_raw is not None:
        request_ts = parse_amz_date(amz_date_raw)
        if request_ts is None:
            if s3:
                raise errors.missing_date(True, authorization)
            raise AuthError(
                "IncompleteSignatureException",
                f"Date must be in ISO-8601 'basic format'. Got '{amz_date_raw}'. "
                "See http://en.wikipedia.org/wiki/ISO_8601",
                400,
            )
        amz_date = amz_date_raw
    elif date_raw is not None:
        request_ts = parse_http_date(date_raw)
        if request_ts is None:
            raise errors.missing_date(s3, authorization)
        amz_date = date_raw if parse_amz_date(date_raw) is not None else format_amz_date(request_ts)
    else:
        raise errors.missing_date(s3, authorization)
    if abs(now_ts - request_ts) > MAX_SKEW_SECONDS:
        raise errors.time_skewed(
            s3,
            request_time_raw=amz_date_raw if amz_date_raw is not None else str(date_raw),
            request_ts=request_ts,
            now_ts=now_ts,
        )

    # --- credential scope ------------------------------------------------
    access_key_id, scope_date, scope_region, scope_service = _split_credential(
        s3,
        credential_field,
        query=False,
        expected_service=service if service is not None else ("s3" if s3 else None),
        region=region,
    )
    if scope_date != amz_date[:8]:
        _scope_error(
            s3,
            False,
            "Invalid credential date. Date is not the same as X-Amz-Date.",
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date "
            f"from HTTP: '{scope_date}' != '{amz_date[:8]}', from '{amz_date}'.",
        )
    signed_headers = signed_field.lower()
    _require_host(s3, False, signed_headers.split(";"))

    # --- payload -----------------------------------------------------------
    if s3:
        declared = headers.get("x-amz-content-sha256")
        if declared is None:
            raise errors.missing_content_sha256()
        mode, sha256_hex = _payload_for_s3(declared)
        payload_line = declared
    else:
        mode, sha256_hex = _non_s3_payload(headers, body_sha256)
        payload_line = ""

    # --- who is it -----------------------------------------------------------
    credential = await _credential(s3, lookup, access_key_id, headers.get("x-amz-security-token"), now_ts)

    if not s3:
        payload_line = body_sha256() if body_sha256 is not None else str(sha256_hex)
    scope = f"{scope_date}/{scope_region}/{scope_service}/aws4_request"
    key = signing_key(credential.secret_access_key, scope_date, scope_region, scope_service)
    computed = _finish(
        req,
        access_key_id=access_key_id,
        signature=signature,
        signed_headers=signed_headers,
        query_exclude=None,
        payload_line=payload_line,
        amz_date=amz_date,
        scope=scope,
        key=key,
    )
    return _result(
        req, credential, "AuthHeader", scope_region, scope_service, mode, sha256_hex,
        computed, key, scope, amz_date,
    )


# --------------------------------------------------------------------------
# presigned URL


async def verify_sigv4_query(
    req: HttpRequestView,
    lookup: CredentialLookup,
    *,
    now_ts: float,
    region: str,
    service: str | None,
    body_sha256: BodySha256 | None,
) -> AuthResult:
    s3 = req.is_s3
    params: dict[str, str] = {}
    for name, value in req.query:
        if name.startswith("X-Amz-") and name not in params:
            params[name] = value
    required = _PRESIGN_PARAMS if s3 else _PRESIGN_PARAMS[:5]
    missing = [name for name in required if not params.get(name)]
    if missing:
        raise errors.query_malformed(
            s3,
            "Query-string authentication version 4 requires the X-Amz-Algorithm, "
            "X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and "
            "X-Amz-Expires parameters.",
            " ".join(f"AWS query-string parameters must include '{name}'." for name in missing)
            + " Re-examine the query-string parameters.",
        )
    if params["X-Amz-Algorithm"] != ALGORITHM:
        raise errors.query_malformed(
            s3,
            'X-Amz-Algorithm only supports "AWS4-HMAC-SHA256"',
            f"Unsupported AWS 'algorithm': '{params['X-Amz-Algorithm']}'.",
        )
    amz_date = params["X-Amz-Date"]
    request_ts = parse_amz_date(amz_date)
    if request_ts is None:
        raise errors.query_malformed(
            s3,
            "X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\"",
            f"Date must be in ISO-8601 'basic format'. Got '{amz_date}'. "
            "See http://en.wikipedia.org/wiki/ISO_8601",
        )
    expires_raw = params.get("X-Amz-Expires")
    expires: int | None = None
    if expires_raw is not None:
        if expires_raw.startswith("-") and _DIGITS.fullmatch(expires_raw[1:]):
            raise errors.query_malformed(
                s3, "X-Amz-Expires must be non-negative", "X-Amz-Expires must be non-negative"
            )
        if not _DIGITS.fullmatch(expires_raw):
            raise errors.query_malformed(
                s3, "X-Amz-Expires should be a number", "X-Amz-Expires should be a number"
            )
        expires = int(expires_raw)
        if expires > MAX_PRESIGN_EXPIRES:
            message = "X-Amz-Expires must be less than a week (in seconds) that is 604800"
            raise errors.query_malformed(s3, message, message)
        if expires < 1:
            message = "X-Amz-Expires must be at least 1 second"
            raise errors.query_malformed(s3, message, message)

    # --- validity window ---------------------------------------------------
    if now_ts < request_ts - MAX_SKEW_SECONDS:
        raise errors.presigned_not_yet_valid(s3, request_ts=request_ts, now_ts=now_ts)
    if expires is not None:
        if now_ts > request_ts + expires:
            raise errors.presigned_expired(
                s3, expires_raw=expires_raw, expires_ts=request_ts + expires, now_ts=now_ts
            )
    elif abs(now_ts - request_ts) > MAX_SKEW_SECONDS:
        raise errors.time_skewed(
            s3, request_time_raw=amz_date, request_ts=request_ts, now_ts=now_ts
        )

    access_key_id, scope_date, scope_region, scope_service = _split_credential(
        s3,
        params["X-Amz-Credential"],
        query=True,
        expected_service=service if service is not None else ("s3" if s3 else None),
        region=region,
    )
    if scope_date != amz_date[:8]:
        _scope_error(
            s3,
            True,
            "Invalid credential date. Date is not the same as X-Amz-Date.",
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date "
            f"from HTTP: '{scope_date}' != '{amz_date[:8]}', from '{amz_date}'.",
        )
    signed_headers = params["X-Amz-SignedHeaders"].lower()
    signed_names = signed_headers.split(";")
    _require_host(s3, True, signed_names)
    headers = req.headers
    if s3:
        signed_set = set(signed_names)
        unsigned = sorted(
            {
                name.lower()
                for name in headers.keys()
                if name[:6].lower() == "x-amz-" and name.lower() not in signed_set
            }
        )
        if unsigned:
            raise errors.headers_not_signed(unsigned)

    # --- payload -------------------------------------------------------------
    declared = headers.get("x-amz-content-sha256")
    if s3:
        if declared is None:
            mode, sha256_hex, payload_line = PayloadMode.UNSIGNED, None, UNSIGNED_PAYLOAD
        else:
            mode, sha256_hex = _payload_for_s3(declared)
            payload_line = declared
    else:
        mode, sha256_hex = _non_s3_payload(headers, body_sha256)
        payload_line = ""

    credential = await _credential(s3, lookup, access_key_id, params.get("X-Amz-Security-Token"), now_ts)

    if not s3:
        payload_line = body_sha256() if body_sha256 is not None else str(sha256_hex)
    signature = params["X-Amz-Signature"]
    scope = f"{scope_date}/{scope_region}/{scope_service}/aws4_request"
    key = signing_key(credential.secret_access_key, scope_date, scope_region, scope_service)
    computed = _finish(
        req,
        access_key_id=access_key_id,
        signature=signature,
        signed_headers=signed_headers,
        query_exclude="X-Amz-Signature",
        payload_line=payload_line,
        amz_date=amz_date,
        scope=scope,
        key=key,
    )
    return _result(
        req, credential, "QueryString", scope_region, scope_service, mode, sha256_hex,
        computed, key, scope, amz_date,
    )
