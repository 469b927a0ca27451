"""What the gateway hands a protocol backend for one request: :class:`RequestContext`.

The S3 backend (``gateway/backends/s3.py``) is called as::

    async def handle(request: aiohttp.web.Request, ctx: RequestContext) -> aiohttp.web.StreamResponse

by the router for every request that is not KMS, CloudTrail, IAM or STS (the gateway answers
``501 NotImplemented`` in S3's XML format when that module is absent). By then the gateway
has already:

* assigned ``ctx.request_id`` (a uuid4 string). The backend must return it in the
  ``x-amz-request-id`` header (S3) and in the ``<RequestId>`` of error bodies; the gateway
  also sets ``x-amzn-RequestId`` / ``x-amz-request-id`` on every response it builds itself;
* verified the request's signature with ``gateway.auth.authenticate`` (header SigV4,
  presigned SigV4, SigV2, or anonymous). ``ctx.auth`` is that ``AuthResult``, also for an
  anonymous request (``ctx.auth.anonymous`` / ``ctx.anonymous`` is then True and its payload
  expectation still describes the body: a declared ``x-amz-content-sha256`` or an unsigned
  ``aws-chunked`` trailer upload). Verification of the *payload* is the backend's job because
  only it reads the body: ``gateway.auth.verify_payload_hash(ctx.auth, body)`` on the bytes it
  read, or ``gateway.auth.ChunkedBodyDecoder(ctx.auth, request.headers)`` when
  ``ctx.auth.payload.is_streaming`` (see gateway/auth/__init__.py). The app accepts bodies up
  to 16 MiB through ``request.read()``; stream larger ones from ``request.content``;
* resolved the principal: ``ctx.caller`` is a ``strongroom.common.v1.Caller`` with principal
  type / ARN / id, account, access key id, session context (assumed roles), source IP, user
  agent, request id, signature version, auth method, region, host and the caller's identity
  policy documents. For an anonymous request ``principal_type == "Anonymous"`` and no ARN.
  Send it with every RPC: ``metadata=ctx.metadata`` (== ``common.caller.caller_metadata(ctx.caller)``).
  If the body reveals something the caller must carry (nothing today), build a new Caller;
  the context is frozen.

Fields:

``settings``      ``common.config.Settings`` of this process.
``auth``          ``gateway.auth.AuthResult`` (``auth.anonymous`` for anonymous requests).
``caller``        ``strongroom.common.v1.Caller`` (see above).
``request_id``    uuid4 string, also ``caller.request_id``.
``service``       routed service name: ``"s3"``, ``"kms"``, ``"cloudtrail"``, ``"iam"``, ``"sts"``.
``channel``       the backend's long-lived ``grpc.aio.Channel`` (one per backend per app;
                  never close it). For S3 it is the S3 service's channel.
``stub``          a stub bound to ``channel`` for the backend's service (for S3:
                  ``strongroom.s3.v1.s3_pb2_grpc.S3Stub(channel)`` once that proto exists,
                  else ``None``; build your own from ``channel`` if you need another).
``audit``         ``common.audit.AuditSink`` for records the gateway itself produces (IAM/STS).
                  Services write their own records; S3 does not need this.
``bucket``        for S3: the bucket name when the request was virtual-hosted-style
                  (``<bucket>.localhost``, ``<bucket>.s3.localhost...``, ``<bucket>.s3.<region>.amazonaws.com``),
                  else ``None`` (path-style: the bucket is the first path segment).
``received_at``   ``time.time()`` when the request arrived (for presign expiry / logging).

Helpers: ``ctx.metadata`` (gRPC metadata carrying the caller), ``ctx.timeout`` (the deadline,
seconds, to pass to each RPC).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import grpc

    from common.audit import AuditSink
    from common.config import Settings
    from strongroom.common.v1 import caller_pb2

from common.caller import CALLER_METADATA_KEY

#: Default deadline for one backend RPC, seconds.
RPC_TIMEOUT = 60.0


@dataclass(frozen=True, slots=True)
class RequestContext:
    settings: Settings
    auth: Any  # gateway.auth.AuthResult (auth.anonymous for anonymous requests)
    caller: caller_pb2.Caller
    request_id: str
    service: str
    channel: grpc.aio.Channel | None
    stub: Any
    audit: AuditSink
    bucket: str | None = None
    received_at: float = 0.0
    _metadata: tuple[tuple[str, bytes], ...] = field(default=(), repr=False)

    @property
    def metadata(self) -> tuple[tuple[str, bytes], ...]:
        """gRPC metadata that carries ``caller`` (pass as ``metadata=`` to every RPC)."""
        if self._metadata:
            return self._metadata
        return ((CALLER_METADATA_KEY, self.caller.SerializeToString()),)

    @property
    def timeout(self) -> float:
        return RPC_TIMEOUT

    @property
    def anonymous(self) -> bool:
        return self.auth is None or bool(self.auth.anonymous)
