"""Value types shared by the request verifier (no logic beyond trivial helpers).

* :class:`HttpRequestView` – the parts of an HTTP request that AWS request
  authentication looks at.  It is deliberately independent of aiohttp; the
  gateway builds one per request (see the package docstring for the mapping).
* :class:`SigningCredential` / :class:`CredentialLookup` – how the verifier
  obtains the secret for an access key id.
* :class:`AuthResult` / :class:`PayloadExpectation` – what a successful
  authentication tells the caller, including how the request *body* still has
  to be checked (the signature of an S3 request covers the body only through
  the ``x-amz-content-sha256`` header, or through per-chunk signatures).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

__all__ = [
    "AuthResult",
    "CredentialLookup",
    "HttpRequestView",
    "PayloadExpectation",
    "PayloadMode",
    "SigningCredential",
]


@dataclass(frozen=True, slots=True)
class HttpRequestView:
    """What the verifier needs from an HTTP request.

    ``raw_path``
        The path exactly as received (percent-encoding preserved, *without*
        the query string; anything from the first ``?`` on is ignored).
        With aiohttp: ``request.raw_path.partition("?")[0]``.
    ``query``
        Decoded ``(name, value)`` pairs in wire order, repeated names allowed.
        Decode with :func:`gateway.auth.parse_query` (RFC 3986 percent
        decoding, ``+`` is *not* a space, ``a`` and ``a=`` both give
        ``("a", "")``); a decoder that turns ``+`` into a space breaks
        signatures whose values contain a literal ``+``.
    ``headers``
        Case-insensitive mapping: a ``multidict.CIMultiDict(Proxy)`` (what
        aiohttp gives, repeated headers are honoured through ``getall``) or a
        plain ``dict`` whose keys are all lower case.
    ``host``
        Value for the canonical ``host`` header when no ``Host`` header is
        present (HTTP/2 ``:authority``); normally equal to ``headers["host"]``.
    ``is_s3``
        Apply S3 rules: no path normalisation or double encoding, the
        ``x-amz-content-sha256`` header is mandatory and may be
        ``UNSIGNED-PAYLOAD``/``STREAMING-*``, SigV2 is accepted, errors are S3
        (XML) flavoured.  ``False`` means the AWS JSON protocol services
        (KMS, CloudTrail): the body hash is computed by the verifier.
    """

    method: str
    raw_path: str
    query: Sequence[tuple[str, str]]
    headers: Mapping[str, str]
    host: str
    is_s3: bool


@dataclass(frozen=True, slots=True)
class SigningCredential:
    """A secret the verifier may check signatures against.

    ``session_token`` is set for temporary credentials: requests must then
    carry the identical ``X-Amz-Security-Token``.  ``expires_at`` (aware UTC)
    makes requests at or after that instant fail with ``ExpiredToken``.
    ``principal`` is opaque to this package and handed back in the result.
    """

    access_key_id: str
    secret_access_key: str = field(repr=False)
    session_token: str | None = field(default=None, repr=False)
    expires_at: datetime | None = None
    principal: object = None


class CredentialLookup(Protocol):
    """Async callable resolving an access key id to its credential (or None)."""

    async def __call__(self, access_key_id: str) -> SigningCredential | None: ...


class PayloadMode(enum.Enum):
    """How the request body relates to the signature."""

    #: The body must hash (SHA-256) to :attr:`PayloadExpectation.sha256`;
    #: call :func:`gateway.auth.verify_payload_hash` once the body is read.
    SHA256 = "sha256"
    #: The verifier already hashed the body (``body_sha256`` callback, JSON
    #: services) and the hash is covered by the signature: nothing left to do.
    VERIFIED = "verified"
    #: ``UNSIGNED-PAYLOAD`` (or an anonymous / presigned request): the body is
    #: not covered by the signature.
    UNSIGNED = "UNSIGNED-PAYLOAD"
    #: aws-chunked body, every chunk signed (decode with ChunkedBodyDecoder).
    STREAMING_SIGNED = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
    #: aws-chunked body, signed chunks plus a signed trailer.
    STREAMING_SIGNED_TRAILER = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
    #: aws-chunked body, unsigned chunks plus a trailing checksum header.
    STREAMING_UNSIGNED_TRAILER = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"

    @property
    def is_streaming(self) -> bool:
        return self in _STREAMING_MODES


_STREAMING_MODES = frozenset(
    {
        PayloadMode.STREAMING_SIGNED,
        PayloadMode.STREAMING_SIGNED_TRAILER,
        PayloadMode.STREAMING_UNSIGNED_TRAILER,
    }
)


@dataclass(frozen=True, slots=True)
class PayloadExpectation:
    """How the body of an authenticated request must be checked.

    For the signed streaming modes the fields needed to verify the chunk
    signature chain are carried along: ``seed_signature`` (the request
    signature), ``signing_key`` (derived SigV4 key), ``scope``
    (``YYYYMMDD/region/service/aws4_request``) and ``amz_date``
    (``YYYYMMDD'T'HHMMSS'Z'``).  ``is_s3`` selects the error flavour.
    """

    mode: PayloadMode
    sha256: str | None = None
    seed_signature: str | None = None
    signing_key: bytes | None = field(default=None, repr=False)
    scope: str | None = None
    amz_date: str | None = None
    is_s3: bool = True

    @property
    def is_streaming(self) -> bool:
        return self.mode in _STREAMING_MODES


@dataclass(frozen=True, slots=True)
class AuthResult:
    """Outcome of :func:`gateway.auth.authenticate`.

    ``signature_version`` is ``"SigV4"`` or ``"SigV2"`` and ``auth_method``
    ``"AuthHeader"`` or ``"QueryString"`` – the values CloudTrail records in
    ``additionalEventData`` (``SignatureVersion`` / ``AuthenticationMethod``).
    ``region``/``service`` come from the SigV4 credential scope (SigV2:
    ``None``/``"s3"``).  All of them are ``None`` for anonymous requests.
    """

    anonymous: bool
    credential: SigningCredential | None
    signature_version: str | None
    auth_method: str | None
    region: str | None
    service: str | None
    payload: PayloadExpectation

    @property
    def access_key_id(self) -> str | None:
        return None if self.credential is None else self.credential.access_key_id

    @property
    def principal(self) -> object:
        return None if self.credential is None else self.credential.principal
