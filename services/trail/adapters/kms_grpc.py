"""KeyService and DigestSigner over the KMS service's gRPC API (strongroom.kms.v1).

KeyService (a trail's KmsKeyId) calls the customer API as the account root invoked by
cloudtrail.amazonaws.com, so KMS records those calls like any other made on the account's
behalf. The digest-signing key is an AWS owned key (``strongroom.kms.v1.ServiceKeys``, named
``cloudtrail-digest``, RSA_2048): generated in the HSM on first use, its private half never
leaves it, and the account never sees it. Signing is ``RSASSA_PKCS1_V1_5_SHA_256`` over the
raw string to sign (SHA256withRSA).
"""

from __future__ import annotations

import asyncio
from typing import Any

import grpc

from common.caller import caller_metadata, root_caller, service_caller
from common.grpc_errors import from_rpc_error
from common.logging import get_logger
from services.trail.domain.digest import fingerprint, pkcs1_from_spki
from services.trail.ports import KeyInfo, Unavailable
from services.trail.store.sqlite import SigningKey, TrailStore, now_ms

log = get_logger(__name__)

CLOUDTRAIL = "cloudtrail.amazonaws.com"
DIGEST_KEY_NAME = "cloudtrail-digest"
_TRANSPORT = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.CANCELLED)


async def _call(stub: Any, name: str, request: object, metadata: Any, timeout: float) -> Any:
    """One KMS RPC; transport failures become Unavailable, KMS errors their AwsError."""
    try:
        return await getattr(stub, name)(request, metadata=metadata, timeout=timeout)
    except grpc.aio.AioRpcError as exc:
        if exc.code() in _TRANSPORT:
            raise Unavailable(f"kms: {exc.code().name}") from None
        raise from_rpc_error(exc) from None


class _KmsClient:
    def __init__(self, channel: grpc.aio.Channel, *, account_id: str, region: str, timeout: float) -> None:
        from strongroom.kms.v1 import kms_pb2, kms_pb2_grpc

        self._pb = kms_pb2
        self._stub = kms_pb2_grpc.KeyManagementServiceStub(channel)
        caller = root_caller(account_id, region)
        caller.invoked_by = CLOUDTRAIL
        self._md = caller_metadata(caller)
        self._timeout = timeout
        self.account_id = account_id
        self.region = region

    async def call(self, name: str, request: object) -> Any:
        return await _call(self._stub, name, request, self._md, self._timeout)


class KmsKeyService:
    """The trail's KmsKeyId: resolve it, check its state and read its key policy."""

    def __init__(
        self, channel: grpc.aio.Channel, *, account_id: str, region: str, timeout: float = 15.0
    ) -> None:
        self._kms = _KmsClient(channel, account_id=account_id, region=region, timeout=timeout)

    async def describe_key(self, key_id: str) -> KeyInfo:
        pb = self._kms._pb
        resp = await self._kms.call("DescribeKey", pb.DescribeKeyRequest(key_id=key_id))
        md = resp.key_metadata  # type: ignore[attr-defined]
        return KeyInfo(
            arn=md.arn,
            key_state=md.key_state,
            key_usage=md.key_usage,
            key_spec=md.key_spec or md.customer_master_key_spec,
        )

    async def get_key_policy(self, key_arn: str) -> str:
        pb = self._kms._pb
        resp = await self._kms.call(
            "GetKeyPolicy", pb.GetKeyPolicyRequest(key_id=key_arn, policy_name="default")
        )
        return str(resp.policy)  # type: ignore[attr-defined]


class KmsDigestSigner:
    """SHA256withRSA with CloudTrail's own key: an AWS owned key of the KMS (``ServiceKeys``),
    created in the HSM on first use. As on AWS, the account never sees it (ListKeys,
    DescribeKey, its event history); ListPublicKeys publishes its public half."""

    def __init__(
        self,
        channel: grpc.aio.Channel,
        store: TrailStore,
        *,
        account_id: str,
        region: str,
        timeout: float = 15.0,
    ) -> None:
        from strongroom.kms.v1 import service_keys_pb2, service_keys_pb2_grpc

        self._pb = service_keys_pb2
        self._stub = service_keys_pb2_grpc.ServiceKeysStub(channel)
        self._md = caller_metadata(service_caller(account_id, CLOUDTRAIL, region))
        self._timeout = timeout
        self._store = store
        self._public: bytes | None = None
        self._lock = asyncio.Lock()

    async def _ensure(self) -> bytes:
        if self._public:
            return self._public
        async with self._lock:
            if self._public:
                return self._public
            key = await _call(self._stub, "GetServiceKey", self._pb.GetServiceKeyRequest(
                name=DIGEST_KEY_NAME, key_spec="RSA_2048", key_usage="SIGN_VERIFY"), self._md, self._timeout)
            der = pkcs1_from_spki(bytes(key.public_key))
            fp = fingerprint(der)
            if fp not in {k.fingerprint for k in await self._store.signing_keys()}:
                # Keys used before (an earlier key of an older version) stay listed, with the
                # end of their validity, so older digests still validate.
                await self._store.add_signing_key(
                    SigningKey(fp, f"service-key/{DIGEST_KEY_NAME}/{key.key_id}", der, now_ms(), None))
                log.info("digest_signing_key_in_use", fingerprint=fp)
            self._public = der
            return der

    async def public_key(self) -> bytes:
        return await self._ensure()

    async def sign(self, message: bytes) -> bytes:
        await self._ensure()
        resp = await _call(self._stub, "SignWithServiceKey", self._pb.SignWithServiceKeyRequest(
            name=DIGEST_KEY_NAME, message=message, signing_algorithm="RSASSA_PKCS1_V1_5_SHA_256"),
            self._md, self._timeout)
        return bytes(resp.signature)
