"""Canonical forms of SigV4 / SigV2, built the way AWS (and botocore) build them.

SigV4 canonical request
(https://docs.aws.amazon.com/IAM/latest/UserGuide/create-signed-request.html,
https://docs.aws.amazon.com/AmazonS3/latest/API/sig-v4-header-based-auth.html)::

    HTTPMethod \\n
    CanonicalURI \\n
    CanonicalQueryString \\n
    CanonicalHeaders \\n        (one "name:value\\n" per signed header)
    SignedHeaders \\n           ("host;x-amz-date;...")
    HashedPayload               (hex SHA-256 of the body, or the literal
                                 x-amz-content-sha256 value for S3)

* ``UriEncode`` keeps only the unreserved characters ``A-Z a-z 0-9 - _ . ~``
  and percent-encodes every other UTF-8 byte as ``%XY`` (upper-case hex).
* CanonicalURI, S3: every path segment URI-encoded *once*, no normalisation
  (``//`` and ``.`` segments kept).  We decode each received segment and
  re-encode it, so ``/a%2Fb`` stays one segment and ``/test$file`` becomes
  ``/test%24file`` as in the AWS example.
* CanonicalURI, other services: RFC 3986 dot-segment removal plus removal of
  empty segments, then the (already percent-encoded) path is encoded *again*
  (``%20`` -> ``%2520``), exactly as botocore's ``SigV4Auth`` does.
* CanonicalQueryString: decoded names and values UriEncoded, sorted by name
  then value, ``name=value`` joined with ``&`` (``X-Amz-Signature`` excluded
  for presigned URLs).
* CanonicalHeaders: lower-case names in SignedHeaders order; values trimmed,
  runs of whitespace collapsed to one space, repeated headers joined by ``,``.

StringToSign::

    AWS4-HMAC-SHA256 \\n  YYYYMMDD'T'HHMMSS'Z' \\n  YYYYMMDD/region/service/aws4_request \\n
    hex(SHA256(CanonicalRequest))

Signing key: ``HMAC(HMAC(HMAC(HMAC("AWS4"+secret, date), region), service),
"aws4_request")`` – cached in an LRU keyed by (secret, date, region, service)
because deriving it costs four HMACs per request.
"""

from __future__ import annotations

import calendar
import hmac
import re
import time
from collections.abc import Callable, Mapping, Sequence
from email.utils import parsedate_tz
from functools import lru_cache
from urllib.parse import quote, unquote

__all__ = [
    "EMPTY_SHA256",
    "canonical_headers",
    "canonical_path",
    "canonical_query",
    "header_getter",
    "parse_amz_date",
    "parse_http_date",
    "parse_query",
    "signing_key",
    "uri_encode",
]

EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
ALGORITHM = "AWS4-HMAC-SHA256"

# A path that is already in canonical S3 form: unreserved characters and '/'.
_PLAIN_PATH = re.compile(r"[A-Za-z0-9\-._~/]*")


# Caches below are keyed by client-controlled strings: only short values are
# cached so that an attacker cannot pin large amounts of memory.
_CACHEABLE = 128


def uri_encode(value: str) -> str:
    """AWS ``UriEncode`` (``/`` encoded too).

    Lone surrogates produced by :func:`parse_query` for non-UTF-8 escapes are
    turned back into their original bytes.
    """
    if len(value) <= _CACHEABLE:
        return _uri_encode_cached(value)
    return quote(value, safe="", errors="surrogateescape")


@lru_cache(maxsize=4096)
def _uri_encode_cached(value: str) -> str:
    return quote(value, safe="", errors="surrogateescape")


def parse_query(raw_query: str) -> list[tuple[str, str]]:
    """Decode a raw query string into ``(name, value)`` pairs, in order.

    RFC 3986 percent-decoding only (``+`` stays ``+``), blank values kept,
    invalid UTF-8 preserved through surrogate escapes so that re-encoding
    gives back the bytes the client signed.
    """
    if not raw_query:
        return []
    pairs: list[tuple[str, str]] = []
    for part in raw_query.split("&"):
        if not part:
            continue
        name, _, value = part.partition("=")
        pairs.append(
            (
                unquote(name, errors="surrogateescape") if "%" in name else name,
                unquote(value, errors="surrogateescape") if "%" in value else value,
            )
        )
    return pairs


# --------------------------------------------------------------------------
# CanonicalURI


def canonical_path(raw_path: str, is_s3: bool) -> str:
    if "?" in raw_path:
        raw_path = raw_path.partition("?")[0]
    if is_s3:
        if not raw_path:
            return "/"
        if _PLAIN_PATH.fullmatch(raw_path):
            return raw_path
        if len(raw_path) <= _CACHEABLE:
            return _s3_path_cached(raw_path)
        return _s3_path(raw_path)
    if raw_path == "/" or not raw_path:
        return "/"
    if len(raw_path) <= _CACHEABLE:
        return _generic_path_cached(raw_path)
    return _generic_path(raw_path)


def _s3_path(raw_path: str) -> str:
    return "/".join(
        uri_encode(unquote(segment, errors="surrogateescape")) for segment in raw_path.split("/")
    )


def _generic_path(raw_path: str) -> str:
    output: list[str] = []
    for segment in raw_path.split("/"):
        if not segment or segment == ".":
            continue
        if segment == "..":
            if output:
                output.pop()
            continue
        output.append(segment)
    first = "/" if raw_path.startswith("/") else ""
    last = "/" if raw_path.endswith("/") and output else ""
    normalized = first + "/".join(output) + last
    return quote(normalized or "/", safe="/~", errors="surrogateescape")


_s3_path_cached = lru_cache(maxsize=2048)(_s3_path)
_generic_path_cached = lru_cache(maxsize=2048)(_generic_path)


def raw_s3_path(raw_path: str) -> str:
    """The path as sent, for clients that signed it without re-encoding."""
    raw_path = raw_path.partition("?")[0]
    return raw_path or "/"


# --------------------------------------------------------------------------
# CanonicalQueryString


def canonical_query(query: Sequence[tuple[str, str]], exclude: str | None = None) -> str:
    if not query:
        return ""
    encode = uri_encode
    items = sorted(
        [(encode(name), encode(value)) for name, value in query if name != exclude]
    )
    return "&".join([f"{name}={value}" for name, value in items])


# --------------------------------------------------------------------------
# CanonicalHeaders


HeaderGetter = Callable[[str], list[str]]


def header_getter(headers: Mapping[str, str]) -> HeaderGetter:
    """``name -> [values]`` for a lower-case name (repeated headers honoured)."""
    getall = getattr(headers, "getall", None)
    if getall is not None:
        return lambda name: getall(name, [])

    def single(name: str) -> list[str]:
        value = headers.get(name)
        return [] if value is None else [value]

    return single


def canonical_headers(signed: Sequence[str], headers: Mapping[str, str], host: str) -> str:
    """``name:value\n`` for every signed header, in SignedHeaders order."""
    getall = getattr(headers, "getall", None)
    lines = []
    for name in signed:
        if getall is not None:
            values = getall(name, ())
        else:
            value = headers.get(name)
            values = () if value is None else (value,)
        if len(values) == 1:
            lines.append(f"{name}:{' '.join(values[0].split())}\n")
        elif not values:
            lines.append(f"{name}:{host if name == 'host' else ''}\n")
        else:
            lines.append(f"{name}:{','.join([' '.join(v.split()) for v in values])}\n")
    return "".join(lines)


# --------------------------------------------------------------------------
# dates


def parse_amz_date(value: str) -> float | None:
    """Epoch seconds of an ISO 8601 basic timestamp ``YYYYMMDD'T'HHMMSS'Z'``."""
    if len(value) != 16:
        return None
    return _parse_amz_date(value)


@lru_cache(maxsize=1024)
def _parse_amz_date(value: str) -> float | None:
    if (
        value[8] != "T"
        or value[15] != "Z"
        or not value.isascii()
        or not value[:8].isdigit()
        or not value[9:15].isdigit()
    ):
        return None
    year, month, day = int(value[0:4]), int(value[4:6]), int(value[6:8])
    hour, minute, second = int(value[9:11]), int(value[11:13]), int(value[13:15])
    if not (1 <= month <= 12 and 1 <= day <= 31 and hour <= 23 and minute <= 59 and second <= 60):
        return None
    if year < 1 or day > calendar.monthrange(year, month)[1]:
        return None
    return float(calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0)))


def parse_http_date(value: str) -> float | None:
    """Epoch seconds of an HTTP date (RFC 1123, RFC 850 or asctime) or ISO basic."""
    if len(value) > 64:
        return None
    return _parse_http_date(value)


@lru_cache(maxsize=1024)
def _parse_http_date(value: str) -> float | None:
    basic = parse_amz_date(value.strip())
    if basic is not None:
        return basic
    try:
        parsed = parsedate_tz(value)
    except (TypeError, ValueError, IndexError):  # pragma: no cover - defensive
        return None
    if parsed is None:
        return None
    try:
        offset = parsed[9] or 0
        return float(calendar.timegm(parsed[:6] + (0, 0, 0)) - offset)
    except (TypeError, ValueError, OverflowError):
        return None


def format_amz_date(ts: float) -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(int(ts)))


# --------------------------------------------------------------------------
# keys


@lru_cache(maxsize=1024)
def signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    """Derived SigV4 signing key (cached: four HMACs saved per request)."""
    key = hmac.digest(("AWS4" + secret).encode("utf-8"), date.encode("utf-8"), "sha256")
    key = hmac.digest(key, region.encode("utf-8"), "sha256")
    key = hmac.digest(key, service.encode("utf-8"), "sha256")
    return hmac.digest(key, b"aws4_request", "sha256")
