"""KeyService and DigestSigner over the KMS service's gRPC API (strongroom.kms.v1).

The digest-signing key is an ordinary KMS key (RSA_2048, SIGN_VERIFY) that the trail service
creates through ``CreateKey`` on first use and remembers in its own database; its private half
never leaves the HSM. Signing is ``Sign`` with ``RSASSA_PKCS1_V1_5_SHA_256`` over the raw
string to sign (SHA256withRSA). Every call runs as the account root invoked by
cloudtrail.amazonaws.com, so KMS records them like any other call made on the account's behalf.
"""

from __future__ import annotations

import asyncio
import json

import grpc

from common.caller import caller_metadata, root_caller
from common.errors import AwsError
from common.grpc_errors import from_rpc_error
from common.logging import get_logger
from services.trail.domain.digest import fingerprint, pkcs1_from_spki
from services.trail.ports import KeyInfo, Unavailable
from services.trail.store.sqlite import SigningKey, TrailStore, now_ms

log = get_logger(__name__)

CLOUDTRAIL = "cloudtrail.amazonaws.com"
DIGEST_KEY_SETTING = "digest_signing_key_arn"
_TRANSPORT = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.CANCELLED)


def _translate(exc: grpc.aio.AioRpcError) -> Exception:
    if exc.code() in _TRANSPORT:
        return Unavailable(f"kms: {exc.code().name}")
    return from_rpc_error(exc)


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

    async def call(self, name: str, request: object) -> object:
        try:
            return await getattr(self._stub, name)(request, metadata=self._md, timeout=self._timeout)
        except grpc.aio.AioRpcError as exc:
            raise _translate(exc) from None


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
    """SHA256withRSA with an HSM-held KMS key, created on first use."""

    def __init__(
        self,
        channel: grpc.aio.Channel,
        store: TrailStore,
        *,
        account_id: str,
        region: str,
        timeout: float = 15.0,
    ) -> None:
        self._kms = _KmsClient(channel, account_id=account_id, region=region, timeout=timeout)
        self._store = store
        self._key_arn: str | None = None
        self._public: bytes | None = None
        self._lock = asyncio.Lock()

    def _policy(self) -> str:
        account = self._kms.account_id
        return json.dumps(
            {
                "Version": "2012-10-17",
                "Id": "strongroom-cloudtrail-digest-signing",
                "Statement": [
                    {
                        "Sid": "Enable IAM User Permissions",
                        "Effect": "Allow",
                        "Principal": {"AWS": f"arn:aws:iam::{account}:root"},
                        "Action": "kms:*",
                        "Resource": "*",
                    },
                    {
                        "Sid": "CloudTrail signs digest files",
                        "Effect": "Allow",
                        "Principal": {"Service": CLOUDTRAIL},
                        "Action": ["kms:Sign", "kms:GetPublicKey", "kms:DescribeKey"],
                        "Resource": "*",
                    },
                ],
            }
        )

    async def _ensure(self) -> str:
        if self._key_arn and self._public:
            return self._key_arn
        async with self._lock:
            if self._key_arn and self._public:
                return self._key_arn
            pb = self._kms._pb
            arn = await self._store.setting(DIGEST_KEY_SETTING)
            if not arn:
                resp = await self._kms.call(
                    "CreateKey",
                    pb.CreateKeyRequest(
                        key_spec="RSA_2048",
                        key_usage="SIGN_VERIFY",
                        policy=self._policy(),
                        description="CloudTrail log file integrity validation: signs digest files "
                        "(managed by the Strongroom trail service)",
                        tags=[pb.Tag(tag_key="strongroom:managed-by", tag_value="cloudtrail")],
                    ),
                )
                arn = str(resp.key_metadata.arn)  # type: ignore[attr-defined]
                await self._store.set_setting(DIGEST_KEY_SETTING, arn)
                log.info("digest_signing_key_created", key_arn=arn)
            pub = await self._kms.call("GetPublicKey", pb.GetPublicKeyRequest(key_id=arn))
            der = pkcs1_from_spki(bytes(pub.public_key))  # type: ignore[attr-defined]
            fp = fingerprint(der)
            if fp not in {k.fingerprint for k in await self._store.signing_keys()}:
                await self._store.add_signing_key(SigningKey(fp, arn, der, now_ms(), None))
            self._key_arn, self._public = arn, der
            return arn

    async def public_key(self) -> bytes:
        await self._ensure()
        assert self._public is not None
        return self._public

    async def sign(self, message: bytes) -> bytes:
        arn = await self._ensure()
        pb = self._kms._pb
        try:
            resp = await self._kms.call(
                "Sign",
                pb.SignRequest(
                    key_id=arn,
                    message=message,
                    message_type="RAW",
                    signing_algorithm="RSASSA_PKCS1_V1_5_SHA_256",
                ),
            )
        except AwsError as exc:
            if exc.code in ("NotFoundException", "KMSInvalidStateException", "DisabledException"):
                # The key is gone or unusable: forget it; the next digest starts a new key.
                log.error("digest_signing_key_unusable", code=exc.code)
                await self._store.set_setting(DIGEST_KEY_SETTING, "")
                self._key_arn = self._public = None
            raise
        return bytes(resp.signature)  # type: ignore[attr-defined]
