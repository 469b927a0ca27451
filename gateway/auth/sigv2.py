"""S3 Signature Version 2 (HMAC-SHA1), header and query-string forms.

https://docs.aws.amazon.com/AmazonS3/latest/API/RESTAuthentication.html ::

    Authorization: AWS AWSAccessKeyId:Base64(HMAC-SHA1(secret, StringToSign))

    StringToSign = HTTP-Verb + "\\n" +
                   Content-MD5 + "\\n" +
                   Content-Type + "\\n" +
                   Date + "\\n" +               (empty when x-amz-date is sent;
                                                 the Expires value for query auth)
                   CanonicalizedAmzHeaders +    ("x-amz-name:v1,v2\\n" per header,
                                                 lower-case, sorted, values trimmed)
                   CanonicalizedResource        ("/bucket" for virtual-hosted style +
                                                 the un-decoded path + sub-resources
                                                 such as "?acl" or "?versionId=x",
                                                 sorted by name, values decoded)

Query-string form: ``AWSAccessKeyId``, ``Expires`` (epoch seconds) and
``Signature`` parameters; ``x-amz-*`` parameters (``x-amz-security-token``)
count as amz headers.  The header form must be dated within 15 minutes of the
server clock; the query form is valid up to and including ``Expires``.
"""

from __future__ import annotations

import base64
import hmac
from collections.abc import Mapping
from typing import Final

from . import errors
from .canonical import HeaderGetter, parse_http_date
from .errors import MAX_SKEW_SECONDS
from .models import AuthResult, CredentialLookup, HttpRequestView, SigningCredential
from .sigv4 import check_session_token, declared_payload

__all__ = ["S3_SUB_RESOURCES", "string_to_sign_v2", "verify_sigv2_header", "verify_sigv2_query"]

#: Query parameters that are part of the SigV2 CanonicalizedResource.
S3_SUB_RESOURCES: Final = frozenset(
    {
        "accelerate",
        "acl",
        "analytics",
        "cors",
        "defaultObjectAcl",
        "delete",
        "inventory",
        "lifecycle",
        "location",
        "logging",
        "metrics",
        "notification",
        "object-lock",
        "partNumber",
        "policy",
        "replication",
        "requestPayment",
        "response-cache-control",
        "response-content-disposition",
        "response-content-encoding",
        "response-content-language",
        "response-content-type",
        "response-expires",
        "restore",
        "select",
        "select-type",
        "storageClass",
        "tagging",
        "torrent",
        "uploadId",
        "uploads",
        "versionId",
        "versioning",
        "versions",
        "website",
    }
)


def _items(headers: Mapping[str, str]) -> list[tuple[str, str]]:
    return list(headers.items())


def _amz_headers(
    headers: Mapping[str, str], query_extra: list[tuple[str, str]] | None = None
) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for name, value in _items(headers):
        lname = name.lower()
        if lname.startswith("x-amz-"):
            found.setdefault(lname, []).append(value.strip())
    if query_extra:
        from_query: dict[str, list[str]] = {}
        for name, value in query_extra:
            lname = name.lower()
            if lname.startswith("x-amz-") and lname not in found:
                from_query.setdefault(lname, []).append(value.strip())
        found.update(from_query)
    return found


def _resource(
    req: HttpRequestView, vhost_bucket: str | None, empty_with_equals: bool
) -> tuple[str, bool]:
    """CanonicalizedResource; second item tells whether a blank sub-resource value exists."""
    path = req.raw_path.partition("?")[0] or "/"
    if vhost_bucket:
        path = "/" + vhost_bucket + path
    subs = [(name, value) for name, value in req.query if name in S3_SUB_RESOURCES]
    if not subs:
        return path, False
    subs.sort(key=lambda item: item[0])
    has_blank = False
    rendered = []
    for name, value in subs:
        if value:
            rendered.append(f"{name}={value}")
        else:
            has_blank = True
            rendered.append(f"{name}=" if empty_with_equals else name)
    return path + "?" + "&".join(rendered), has_blank


def string_to_sign_v2(
    req: HttpRequestView,
    get: HeaderGetter,
    *,
    date_line: str,
    amz: dict[str, list[str]],
    resource: str,
    query_fallback: Mapping[str, str] | None = None,
) -> str:
    def first(name: str) -> str:
        values = get(name)
        if values:
            return values[0].strip()
        if query_fallback is not None:
            return query_fallback.get(name, "").strip()
        return ""

    lines = [req.method, first("content-md5"), first("content-type"), date_line]
    for name in sorted(amz):
        lines.append(f"{name}:{','.join(amz[name])}")
    lines.append(resource)
    return "\n".join(lines)


def _sign(secret: str, string_to_sign: str) -> str:
    digest = hmac.digest(
        secret.encode("utf-8"), string_to_sign.encode("utf-8", "surrogateescape"), "sha1"
    )
    return base64.b64encode(digest).decode("ascii")


def _check(
    req: HttpRequestView,
    get: HeaderGetter,
    *,
    secret: str,
    access_key_id: str,
    signature: str,
    variants: list[tuple[str, dict[str, list[str]]]],
    vhost_bucket: str | None,
    query_fallback: Mapping[str, str] | None = None,
) -> None:
    """Accept the signature if it matches one of the StringToSign variants.

    ``variants`` are (Date line, amz headers) pairs, the rule first.  Every
    variant covers the same request elements, so accepting several of them
    only tolerates documented client differences, never a changed request.
    """
    resource, has_blank = _resource(req, vhost_bucket, False)
    resources = [resource]
    if has_blank:
        # "?acl=" and "?acl" decode alike; accept a signature over either form.
        resources.append(_resource(req, vhost_bucket, True)[0])
    first_sts = ""
    ascii_ok = signature.isascii()
    for date_line, amz in variants:
        for res in resources:
            sts = string_to_sign_v2(
                req, get, date_line=date_line, amz=amz, resource=res,
                query_fallback=query_fallback,
            )
            first_sts = first_sts or sts
            if ascii_ok and hmac.compare_digest(_sign(secret, sts), signature):
                return
    raise errors.signature_mismatch(
        True, access_key_id=access_key_id, string_to_sign=first_sts, signature_provided=signature
    )


def _result(
    credential: SigningCredential, auth_method: str, headers: Mapping[str, str]
) -> AuthResult:
    return AuthResult(
        anonymous=False,
        credential=credential,
        signature_version="SigV2",
        auth_method=auth_method,
        region=None,
        service="s3",
        payload=declared_payload(headers, True),
    )


async def verify_sigv2_header(
    req: HttpRequestView,
    authorization: str,
    lookup: CredentialLookup,
    *,
    now_ts: float,
    get: HeaderGetter,
    vhost_bucket: str | None,
) -> AuthResult:
    access_key_id, colon, signature = authorization[4:].strip().partition(":")
    access_key_id = access_key_id.strip()
    signature = signature.strip()
    if not colon or not access_key_id or not signature:
        raise errors.AuthError(
            "InvalidArgument",
            "AWS authorization header is invalid.  Expected AwsAccessKeyId:signature",
            400,
            {"ArgumentName": "Authorization", "ArgumentValue": authorization},
        )
    headers = req.headers
    amz_date = headers.get("x-amz-date")
    raw_date = amz_date if amz_date is not None else headers.get("date")
    request_ts = parse_http_date(raw_date) if raw_date is not None else None
    if request_ts is None:
        raise errors.missing_date(True, authorization)
    if abs(now_ts - request_ts) > MAX_SKEW_SECONDS:
        raise errors.time_skewed(
            True, request_time_raw=str(raw_date), request_ts=request_ts, now_ts=now_ts
        )
    credential = await lookup(access_key_id)
    if credential is None:
        raise errors.unknown_access_key(True, access_key_id)
    check_session_token(True, credential, headers.get("x-amz-security-token"), now_ts)
    amz = _amz_headers(headers)
    if amz_date is None:
        variants = [(str(raw_date).strip(), amz)]
    else:
        # Rule: empty Date line, x-amz-date listed with the amz headers.  The
        # DELETE example of the S3 documentation instead puts the x-amz-date
        # value in the Date position; accept that form too.
        without = {name: values for name, values in amz.items() if name != "x-amz-date"}
        variants = [("", amz), (amz_date.strip(), without)]
    _check(
        req,
        get,
        secret=credential.secret_access_key,
        access_key_id=access_key_id,
        signature=signature,
        variants=variants,
        vhost_bucket=vhost_bucket,
    )
    return _result(credential, "AuthHeader", headers)


async def verify_sigv2_query(
    req: HttpRequestView,
    lookup: CredentialLookup,
    *,
    now_ts: float,
    get: HeaderGetter,
    vhost_bucket: str | None,
) -> AuthResult:
    params: dict[str, str] = {}
    for name, value in req.query:
        params.setdefault(name, value)
    access_key_id = params.get("AWSAccessKeyId")
    signature = params.get("Signature")
    expires_raw = params.get("Expires")
    if not access_key_id or not signature or not expires_raw:
        raise errors.AuthError(
            "AccessDenied",
            "Query-string authentication requires the Signature, Expires and AWSAccessKeyId "
            "parameters",
            403,
        )
    if not expires_raw.isascii() or not expires_raw.isdigit():
        raise errors.AuthError(
            "AccessDenied", f"Invalid date (should be seconds since epoch): {expires_raw}", 403
        )
    expires_ts = float(int(expires_raw))
    if now_ts > expires_ts:
        raise errors.presigned_expired(
            True, expires_raw=None, expires_ts=expires_ts, now_ts=now_ts, sigv2=True
        )
    credential = await lookup(access_key_id)
    if credential is None:
        raise errors.unknown_access_key(True, access_key_id)
    headers = req.headers
    token_values = get("x-amz-security-token")
    token = token_values[0] if token_values else None
    if token is None:
        for name, value in req.query:
            if name.lower() == "x-amz-security-token":
                token = value
                break
    check_session_token(True, credential, token, now_ts)
    lowered_query = {name.lower(): value for name, value in reversed(list(req.query))}
    _check(
        req,
        get,
        secret=credential.secret_access_key,
        access_key_id=access_key_id,
        signature=signature,
        variants=[(expires_raw, _amz_headers(headers, list(req.query)))],
        vhost_bucket=vhost_bucket,
        query_fallback=lowered_query,
    )
    return _result(credential, "QueryString", headers)
