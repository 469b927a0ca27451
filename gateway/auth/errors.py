"""Authentication errors, in the two flavours AWS uses.

Every failure is an :class:`AuthError` carrying the AWS error ``code``, a
``message``, the ``http_status`` and ``details`` (extra elements AWS puts in
the error body, in order; S3 renders them as XML children of ``<Error>``,
e.g. ``<RequestTime>`` for ``RequestTimeTooSkewed``).

S3 (REST-XML) and the JSON protocol services (KMS, CloudTrail) answer the same
situation differently; the verifier picks the flavour from
``HttpRequestView.is_s3``:

===================================  ======================================  ============================================
situation                            S3                                      JSON services (KMS, CloudTrail)
===================================  ======================================  ============================================
no credentials at all                (anonymous is allowed)                  MissingAuthenticationTokenException 403
malformed Authorization              AuthorizationHeaderMalformed 400        IncompleteSignatureException 400
unknown auth scheme / SigV2 header   InvalidArgument 400                     IncompleteSignatureException 400
bad presign parameters               AuthorizationQueryParametersError 400   IncompleteSignatureException 400
unknown access key id                InvalidAccessKeyId 403                  UnrecognizedClientException 400
missing security token (temp key)    InvalidAccessKeyId 403                  UnrecognizedClientException 400
wrong / unexpected security token    InvalidToken 400                        UnrecognizedClientException 400
expired temporary credentials        ExpiredToken 400                        ExpiredTokenException 400
clock skew > 15 min                  RequestTimeTooSkewed 403                InvalidSignatureException 400 ("Signature
                                                                             expired: ..." / "... not yet current ...")
presigned URL expired                AccessDenied 403 "Request has expired"  InvalidSignatureException 400
signature mismatch                   SignatureDoesNotMatch 403               InvalidSignatureException 400
body vs x-amz-content-sha256         XAmzContentSHA256Mismatch 400           InvalidSignatureException 400
x-amz-content-sha256 missing/bad     InvalidRequest / InvalidArgument 400    (not used: the body is hashed)
presign: unsigned x-amz-* header     AccessDenied 403 (HeadersNotSigned)     -
===================================  ======================================  ============================================

aws-chunked bodies (:mod:`gateway.auth.chunked`): a wrong chunk or trailer
signature is ``SignatureDoesNotMatch`` (403); a non-final chunk under 8 KiB
``InvalidChunkSizeError`` (403, ``Chunk``/``BadChunkSize``), broken framing
``InvalidChunkSizeError`` (400); a truncated body or a size different from
``x-amz-decoded-content-length`` ``IncompleteBody`` (400); a missing
``x-amz-decoded-content-length`` ``MissingContentLength`` (411); a trailing
checksum that does not match ``BadDigest`` (400, "The CRC32 you specified did
not match the calculated checksum."); a missing or unannounced trailer
``MalformedTrailerError`` (400).

Codes, statuses and messages are those of real AWS responses (S3 error list:
https://docs.aws.amazon.com/AmazonS3/latest/API/ErrorResponses.html ; JSON
services: the ``__type``/``message`` pairs they return, e.g.
``InvalidSignatureException: Signature expired: 20140325T143453Z is now
earlier than 20140325T143751Z (20140325T145251Z - 15 min.)``).  The common
error page (https://docs.aws.amazon.com/kms/latest/APIReference/CommonErrors.html)
lists some of these with 403 where the services really answer 400; the real
answers win here.
"""

from __future__ import annotations

from collections.abc import Mapping
import time

__all__ = ["AuthError"]

MAX_SKEW_SECONDS = 15 * 60

_S3_SIGNATURE_MISMATCH = (
    "The request signature we calculated does not match the signature you "
    "provided. Check your key and signing method."
)
_JSON_SIGNATURE_MISMATCH = (
    "The request signature we calculated does not match the signature you "
    "provided. Check your AWS Secret Access Key and signing method. Consult "
    "the service documentation for details."
)
_JSON_INVALID_TOKEN = "The security token included in the request is invalid."
_CONTENT_SHA256_VALUES = (
    "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, "
    "STREAMING-UNSIGNED-PAYLOAD-TRAILER, STREAMING-AWS4-HMAC-SHA256-PAYLOAD, "
    "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER, "
    "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD, "
    "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD-TRAILER or a valid sha256 value."
)


class AuthError(Exception):
    """A request failed authentication; render it as the AWS error response."""

    code: str
    message: str
    http_status: int
    details: dict[str, str]

    def __init__(
        self,
        code: str,
        message: str,
        http_status: int,
        details: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.http_status = http_status
        self.details = dict(details) if details else {}

    def __repr__(self) -> str:
        return f"AuthError({self.code!r}, {self.message!r}, {self.http_status})"


# --------------------------------------------------------------------------
# formatting helpers


def iso8601(ts: float) -> str:
    """``2013-05-24T00:00:00Z`` (S3 ``ServerTime``/``Expires`` elements)."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(ts)))


def amz_basic(ts: float) -> str:
    """``20130524T000000Z`` (ISO 8601 basic, as in X-Amz-Date)."""
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(int(ts)))


def _hex_bytes(text: str) -> str:
    return " ".join(f"{b:02x}" for b in text.encode("utf-8", "surrogateescape"))


# --------------------------------------------------------------------------
# factories (s3=True -> S3 flavour, s3=False -> JSON protocol flavour)


def missing_authentication(s3: bool) -> AuthError:
    if s3:
        return AuthError("AccessDenied", "Access Denied", 403)
    return AuthError("MissingAuthenticationTokenException", "Missing Authentication Token", 403)


def signature_mismatch(
    s3: bool,
    *,
    access_key_id: str,
    string_to_sign: str,
    signature_provided: str,
    canonical_request: str | None = None,
) -> AuthError:
    if s3:
        details = {
            "AWSAccessKeyId": access_key_id,
            "StringToSign": string_to_sign,
            "SignatureProvided": signature_provided,
            "StringToSignBytes": _hex_bytes(string_to_sign),
        }
        if canonical_request is not None:
            details["CanonicalRequest"] = canonical_request
            details["CanonicalRequestBytes"] = _hex_bytes(canonical_request)
        return AuthError("SignatureDoesNotMatch", _S3_SIGNATURE_MISMATCH, 403, details)
    message = _JSON_SIGNATURE_MISMATCH
    details = {}
    if canonical_request is not None:
        # What the JSON services append to the message.
        message += (
            f"\n\nThe Canonical String for this request should have been\n'{canonical_request}'"
            f"\n\nThe String-to-Sign should have been\n'{string_to_sign}'\n"
        )
        details = {"CanonicalRequest": canonical_request, "StringToSign": string_to_sign}
    return AuthError("InvalidSignatureException", message, 400, details)


def chunk_signature_mismatch(s3: bool, *, string_to_sign: str, signature_provided: str) -> AuthError:
    if s3:
        return AuthError(
            "SignatureDoesNotMatch",
            _S3_SIGNATURE_MISMATCH,
            403,
            {"StringToSign": string_to_sign, "SignatureProvided": signature_provided},
        )
    return AuthError("InvalidSignatureException", _JSON_SIGNATURE_MISMATCH, 400)


def unknown_access_key(s3: bool, access_key_id: str) -> AuthError:
    if s3:
        return AuthError(
            "InvalidAccessKeyId",
            "The AWS Access Key Id you provided does not exist in our records.",
            403,
            {"AWSAccessKeyId": access_key_id},
        )
    return AuthError("UnrecognizedClientException", _JSON_INVALID_TOKEN, 400)


def missing_token(s3: bool, access_key_id: str) -> AuthError:
    """A temporary access key used without its session token."""
    # S3 does not know temporary key ids outside their session.
    return unknown_access_key(s3, access_key_id)


def invalid_token(s3: bool) -> AuthError:
    if s3:
        return AuthError("InvalidToken", "The provided token is malformed or otherwise invalid.", 400)
    return AuthError("UnrecognizedClientException", _JSON_INVALID_TOKEN, 400)


def expired_token(s3: bool, token: str) -> AuthError:
    if s3:
        return AuthError("ExpiredToken", "The provided token has expired.", 400, {"Token-0": token})
    return AuthError(
        "ExpiredTokenException", "The security token included in the request is expired", 400
    )


def time_skewed(s3: bool, *, request_time_raw: str, request_ts: float, now_ts: float) -> AuthError:
    if s3:
        return AuthError(
            "RequestTimeTooSkewed",
            "The difference between the request time and the current time is too large.",
            403,
            {
                "RequestTime": request_time_raw,
                "ServerTime": iso8601(now_ts),
                "MaxAllowedSkewMilliseconds": str(MAX_SKEW_SECONDS * 1000),
            },
        )
    if request_ts < now_ts:
        message = (
            f"Signature expired: {amz_basic(request_ts)} is now earlier than "
            f"{amz_basic(now_ts - MAX_SKEW_SECONDS)} ({amz_basic(now_ts)} - 15 min.)"
        )
    else:
        message = (
            f"Signature not yet current: {amz_basic(request_ts)} is still later than "
            f"{amz_basic(now_ts + MAX_SKEW_SECONDS)} ({amz_basic(now_ts)} + 15 min.)"
        )
    return AuthError("InvalidSignatureException", message, 400)


def presigned_expired(
    s3: bool, *, expires_raw: str | None, expires_ts: float, now_ts: float, sigv2: bool = False
) -> AuthError:
    if s3:
        details: dict[str, str] = {}
        if not sigv2 and expires_raw is not None:
            details["X-Amz-Expires"] = expires_raw
        details["Expires"] = iso8601(expires_ts)
        details["ServerTime"] = iso8601(now_ts)
        return AuthError("AccessDenied", "Request has expired", 403, details)
    return AuthError(
        "InvalidSignatureException",
        f"Signature expired: {amz_basic(expires_ts)} is now earlier than {amz_basic(now_ts)}",
        400,
    )


def presigned_not_yet_valid(s3: bool, *, request_ts: float, now_ts: float) -> AuthError:
    if s3:
        return AuthError(
            "AccessDenied",
            "Request is not valid yet",
            403,
            {"X-Amz-Date": amz_basic(request_ts), "ServerTime": iso8601(now_ts)},
        )
    return time_skewed(False, request_time_raw="", request_ts=request_ts, now_ts=now_ts)


def header_malformed(s3: bool, s3_message: str, json_message: str, **details: str) -> AuthError:
    if s3:
        return AuthError(
            "AuthorizationHeaderMalformed",
            "The authorization header is malformed; " + s3_message,
            400,
            details,
        )
    return AuthError("IncompleteSignatureException", json_message, 400)


def query_malformed(s3: bool, s3_message: str, json_message: str, **details: str) -> AuthError:
    if s3:
        return AuthError("AuthorizationQueryParametersError", s3_message, 400, details)
    return AuthError("IncompleteSignatureException", json_message, 400)


def json_requires_message(authorization: str, *, credential: bool, signed_headers: bool,
                          signature: bool, date: bool) -> str:
    """The IncompleteSignatureException text of the JSON services."""
    parts = []
    if credential:
        parts.append("Authorization header requires 'Credential' parameter.")
    if signature:
        parts.append("Authorization header requires 'Signature' parameter.")
    if signed_headers:
        parts.append("Authorization header requires 'SignedHeaders' parameter.")
    if date:
        parts.append(
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header."
        )
    parts.append(f"Authorization={authorization}")
    return " ".join(parts)


def unsupported_authorization(s3: bool, authorization: str) -> AuthError:
    if s3:
        return AuthError(
            "InvalidArgument",
            "Unsupported Authorization Type",
            400,
            {"ArgumentName": "Authorization", "ArgumentValue": authorization},
        )
    return AuthError(
        "IncompleteSignatureException",
        json_requires_message(authorization, credential=True, signed_headers=True,
                              signature=True, date=False),
        400,
    )


def conflicting_auth(s3: bool, authorization: str) -> AuthError:
    message = (
        "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, "
        "Signature query string parameter or the Authorization header should be specified"
    )
    if s3:
        return AuthError(
            "InvalidArgument",
            message,
            400,
            {"ArgumentName": "Authorization", "ArgumentValue": authorization},
        )
    return AuthError("IncompleteSignatureException", message, 400)


def missing_date(s3: bool, authorization: str) -> AuthError:
    if s3:
        return AuthError(
            "AccessDenied", "AWS authentication requires a valid Date or x-amz-date header", 403
        )
    return AuthError(
        "IncompleteSignatureException",
        json_requires_message(authorization, credential=False, signed_headers=False,
                              signature=False, date=True),
        400,
    )


def missing_content_sha256() -> AuthError:
    return AuthError(
        "InvalidRequest", "Missing required header for this request: x-amz-content-sha256", 400
    )


def invalid_content_sha256(value: str) -> AuthError:
    return AuthError(
        "InvalidArgument",
        _CONTENT_SHA256_VALUES,
        400,
        {"ArgumentName": "x-amz-content-sha256", "ArgumentValue": value},
    )


def content_sha256_mismatch(s3: bool, *, client: str, computed: str) -> AuthError:
    if s3:
        return AuthError(
            "XAmzContentSHA256Mismatch",
            "The provided 'x-amz-content-sha256' header does not match what was computed.",
            400,
            {"ClientComputedContentSHA256": client, "S3ComputedContentSHA256": computed},
        )
    return AuthError("InvalidSignatureException", _JSON_SIGNATURE_MISMATCH, 400)


def headers_not_signed(names: list[str]) -> AuthError:
    return AuthError(
        "AccessDenied",
        "There were headers present in the request which were not signed",
        403,
        {"HeadersNotSigned": ", ".join(names)},
    )


# --- aws-chunked bodies ---------------------------------------------------


def incomplete_body(detail: str | None = None) -> AuthError:
    details = {"Detail": detail} if detail else None
    return AuthError(
        "IncompleteBody",
        "You did not provide the number of bytes specified by the Content-Length HTTP header",
        400,
        details,
    )


def invalid_chunk_size(chunk_number: int, size: int | str) -> AuthError:
    return AuthError(
        "InvalidChunkSizeError",
        "Only the last chunk is allowed to have a size less than 8192 bytes",
        403,
        {"Chunk": str(chunk_number), "BadChunkSize": str(size)},
    )


def malformed_chunk(detail: str) -> AuthError:
    return AuthError(
        "InvalidChunkSizeError",
        "The chunk encoding of the request body is malformed.",
        400,
        {"Detail": detail},
    )


def bad_digest(algorithm: str) -> AuthError:
    return AuthError(
        "BadDigest", f"The {algorithm} you specified did not match the calculated checksum.", 400
    )


def malformed_trailer(detail: str | None = None) -> AuthError:
    details = {"Detail": detail} if detail else None
    return AuthError(
        "MalformedTrailerError",
        "The request contained trailing data that was not well-formed or did not conform "
        "to our published schema.",
        400,
        details,
    )


def missing_decoded_length() -> AuthError:
    return AuthError(
        "MissingContentLength",
        "You must provide the Content-Length HTTP header.",
        411,
        {"Detail": "x-amz-decoded-content-length is required for aws-chunked bodies"},
    )
