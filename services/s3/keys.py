"""Data keys for SSE-S3 and SSE-KMS.

* SSE-S3: a random 32-byte data key per object (per multipart upload), wrapped with
  AES-256-GCM by S3's service key. Wrapped form: b"SRW1" | u32 key version | 12-byte nonce
  | ciphertext+tag (48 bytes); AAD = b"strongroom/s3/sse-s3/v1" || object ARN. The key
  version is read before any decryption and must exist (one version today).
  The service key itself is kept in ``<data_dir>/s3/sse-s3.key`` (mode 0600) only wrapped
  by an AWS owned key in the HSM (KMS ``ServiceKeys``, ``s3-sse-s3``): b"SRK2" | nonce |
  ciphertext+tag. S3 unwraps it through the KMS on first use. A key file of the first
  layout (the 32 key bytes themselves) is wrapped and rewritten then.
* SSE-KMS: the KMS service's GenerateDataKey / Decrypt, called with the original caller plus
  invoked_by = s3.amazonaws.com, via_service = s3.<region>.amazonaws.com (kms:ViaService)
  and a shared event id, so the key policy is evaluated for the caller on every request.
  KMS errors become S3's (see :func:`map_kms_error`).
"""

from __future__ import annotations

import asyncio
import os
import struct
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import grpc
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from strongroom.common.v1 import caller_pb2

from common.errors import AwsError
from common.files import write_private
from common.grpc_errors import from_rpc_error
from common.grpc_server import CHANNEL_OPTIONS
from services.s3.domain import errors as e

AWS_MANAGED_ALIAS = "alias/aws/s3"
SSE_S3_SERVICE_KEY = "s3-sse-s3"  # the AWS owned key (KMS ServiceKeys) that wraps the SSE-S3 key
_WRAP_MAGIC = b"SRW1"
_WRAP_AAD = b"strongroom/s3/sse-s3/v1"


class SecretWrapper(Protocol):
    """Encrypts small secrets with a key that never leaves the HSM (GrpcKms: KMS ServiceKeys)."""

    async def wrap_secret(self, plaintext: bytes, aad: bytes) -> bytes: ...

    async def unwrap_secret(self, ciphertext: bytes, aad: bytes) -> bytes: ...


_FILE_MAGIC = b"SRK2"
_FILE_AAD = b"strongroom/s3/sse-s3-key/v2"


class ServiceKeyring:
    """The SSE-S3 service key (see module docstring). Call :meth:`ready` before ``wrap`` /
    ``unwrap``: the first call unwraps (or creates) the key through the HSM."""

    VERSION = 1

    def __init__(self, path: Path, wrapper: SecretWrapper) -> None:
        self._path = path
        self._wrapper = wrapper
        self._aead: AESGCM | None = None
        self._lock = asyncio.Lock()

    async def ready(self) -> None:
        if self._aead is not None:
            return
        async with self._lock:
            if self._aead is None:
                self._aead = AESGCM(await self._load())

    async def _load(self) -> bytes:
        raw = self._path.read_bytes() if self._path.exists() else None
        if raw is None or len(raw) == 32:  # a new key, or one of the first (unwrapped) layout
            key = raw or os.urandom(32)
            await self._save(key)
            return key
        if raw[:4] != _FILE_MAGIC:
            raise RuntimeError(f"{self._path}: not an SSE-S3 key file")
        key = await self._wrapper.unwrap_secret(raw[4:], _FILE_AAD)
        if len(key) != 32:
            raise RuntimeError(f"{self._path}: not an SSE-S3 key file")
        return key

    async def _save(self, key: bytes) -> None:
        write_private(self._path, _FILE_MAGIC + await self._wrapper.wrap_secret(key, _FILE_AAD))

    def _ready_aead(self) -> AESGCM:
        if self._aead is None:
            raise RuntimeError("ServiceKeyring.ready() was not awaited")
        return self._aead

    def wrap(self, data_key: bytes, arn: str) -> bytes:
        nonce = os.urandom(12)
        hdr = _WRAP_MAGIC + struct.pack(">I", self.VERSION)
        return hdr + nonce + self._ready_aead().encrypt(nonce, data_key, _WRAP_AAD + arn.encode())

    def unwrap(self, wrapped: bytes, arn: str) -> bytes:
        if len(wrapped) != 8 + 12 + 48 or wrapped[:4] != _WRAP_MAGIC:
            raise e.InternalError("We encountered an internal error. Please try again.")
        (version,) = struct.unpack(">I", wrapped[4:8])
        if version != self.VERSION:
            raise e.InternalError("We encountered an internal error. Please try again.")
        try:
            return self._ready_aead().decrypt(wrapped[8:20], wrapped[20:], _WRAP_AAD + arn.encode())
        except InvalidTag:
            raise e.InternalError("We encountered an internal error. Please try again.") from None


@dataclass(frozen=True, slots=True)
class DataKey:
    plaintext: bytes
    ciphertext: bytes
    key_arn: str


class KmsPort(Protocol):
    async def generate_data_key(self, key_id: str, context: Mapping[str, str],
                                caller: caller_pb2.Caller) -> DataKey: ...

    async def decrypt(self, key_arn: str, ciphertext: bytes, context: Mapping[str, str],
                      caller: caller_pb2.Caller) -> bytes: ...

    async def aws_managed_key_arn(self, caller: caller_pb2.Caller) -> str: ...


def kms_caller(caller: caller_pb2.Caller, region: str, shared_event_id: str | None = None) -> caller_pb2.Caller:
    """The caller as KMS sees it when S3 calls on the caller's behalf."""
    c = caller_pb2.Caller()
    c.CopyFrom(caller)
    c.invoked_by = "s3.amazonaws.com"
    c.via_service = f"s3.{region}.amazonaws.com"
    c.shared_event_id = shared_event_id or caller.shared_event_id or str(uuid.uuid4())
    return c


def map_kms_error(err: AwsError) -> AwsError:
    """KMS error -> the S3 error S3 answers with."""
    code = err.code
    if code in ("DisabledException", "KMS.DisabledException"):
        return e.KmsDisabled(err.message)
    if code in ("KMSInvalidStateException", "KMS.KMSInvalidStateException"):
        return e.KmsInvalidState(err.message)
    if code in ("NotFoundException", "KMS.NotFoundException"):
        return e.KmsNotFound(err.message)
    if code in ("InvalidKeyUsageException",):
        return e.KmsInvalidKeyUsage(err.message)
    if code in ("AccessDeniedException", "AccessDenied"):
        return e.AccessDenied(err.message or "Access Denied")
    if code in ("ServiceUnavailable", "KMSInternalException", "DependencyTimeoutException",
                "ThrottlingException", "LimitExceededException"):
        return e.SlowDown("Please reduce your request rate.") if code in (
            "ThrottlingException", "LimitExceededException") else e.KmsUnavailable(err.message)
    return e.InternalError("We encountered an internal error. Please try again.")


class GrpcKms:
    """KmsPort over the KMS service's gRPC API (one channel for the process lifetime)."""

    def __init__(self, target: str, region: str) -> None:
        from strongroom.kms.v1 import kms_pb2, kms_pb2_grpc, service_keys_pb2, service_keys_pb2_grpc

        from common.caller import caller_metadata, service_caller

        self._pb = kms_pb2
        self._keys_pb = service_keys_pb2
        self.region = region
        self.channel = grpc.aio.insecure_channel(target, options=CHANNEL_OPTIONS)
        self.stub = kms_pb2_grpc.KeyManagementServiceStub(self.channel)
        self.keys_stub = service_keys_pb2_grpc.ServiceKeysStub(self.channel)
        self._service_md = caller_metadata(service_caller("", "s3.amazonaws.com", region))
        self._managed_arn: str | None = None
        self._service_key_ready = False

    async def close(self) -> None:
        await self.channel.close()

    def _md(self, caller: caller_pb2.Caller) -> tuple[tuple[str, bytes], ...]:
        from common.caller import caller_metadata
        return caller_metadata(kms_caller(caller, self.region))

    async def generate_data_key(self, key_id: str, context: Mapping[str, str],
                                caller: caller_pb2.Caller) -> DataKey:
        req = self._pb.GenerateDataKeyRequest(key_id=key_id, encryption_context=dict(context), key_spec="AES_256")
        try:
            resp = await self.stub.GenerateDataKey(req, metadata=self._md(caller), timeout=30)
        except grpc.RpcError as exc:
            raise map_kms_error(from_rpc_error(exc)) from None
        return DataKey(resp.plaintext, resp.ciphertext_blob, resp.key_id)

    async def decrypt(self, key_arn: str, ciphertext: bytes, context: Mapping[str, str],
                      caller: caller_pb2.Caller) -> bytes:
        req = self._pb.DecryptRequest(ciphertext_blob=ciphertext, encryption_context=dict(context), key_id=key_arn)
        try:
            resp = await self.stub.Decrypt(req, metadata=self._md(caller), timeout=30)
        except grpc.RpcError as exc:
            raise map_kms_error(from_rpc_error(exc)) from None
        return bytes(resp.plaintext)

    async def _service_call(self, name: str, request: object) -> Any:
        try:
            if not self._service_key_ready:
                await self.keys_stub.GetServiceKey(self._keys_pb.GetServiceKeyRequest(
                    name=SSE_S3_SERVICE_KEY, key_spec="SYMMETRIC_DEFAULT", key_usage="ENCRYPT_DECRYPT"),
                    metadata=self._service_md, timeout=30)
                self._service_key_ready = True
            return await getattr(self.keys_stub, name)(request, metadata=self._service_md, timeout=30)
        except grpc.RpcError as exc:
            raise map_kms_error(from_rpc_error(exc)) from None

    async def wrap_secret(self, plaintext: bytes, aad: bytes) -> bytes:
        resp = await self._service_call("EncryptWithServiceKey", self._keys_pb.EncryptWithServiceKeyRequest(
            name=SSE_S3_SERVICE_KEY, plaintext=plaintext, additional_data=aad))
        return bytes(resp.ciphertext)

    async def unwrap_secret(self, ciphertext: bytes, aad: bytes) -> bytes:
        resp = await self._service_call("DecryptWithServiceKey", self._keys_pb.DecryptWithServiceKeyRequest(
            name=SSE_S3_SERVICE_KEY, ciphertext=ciphertext, additional_data=aad))
        return bytes(resp.plaintext)

    async def aws_managed_key_arn(self, caller: caller_pb2.Caller) -> str:
        if self._managed_arn:
            return self._managed_arn
        req = self._pb.GetOrCreateAwsManagedKeyRequest(alias_name=AWS_MANAGED_ALIAS)
        try:
            resp = await self.stub.GetOrCreateAwsManagedKey(req, metadata=self._md(caller), timeout=30)
        except grpc.RpcError as exc:
            raise map_kms_error(from_rpc_error(exc)) from None
        self._managed_arn = resp.key_metadata.arn
        return self._managed_arn
