"""AWS owned keys (services/kms/service_keys.py): created once in the HSM, kept across
restarts, signing verifiable with their public half, invisible to the account's KMS API,
usable by AWS service callers only."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import grpc
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from strongroom.kms.v1 import service_keys_pb2 as pb

from common.audit import MemorySink
from common.caller import caller_metadata, service_caller
from common.errors import AwsError
from services.kms.hsm.fake import FakeHsm
from services.kms.service import KmsService
from services.kms.service_keys import ServiceKeyring
from services.kms.service_keys_api import ServiceKeysServicer
from services.kms.store.sqlite import SqliteStore
from tests.unit.kms.conftest import ACCOUNT, REGION, ROOT, call


async def test_a_key_is_created_once_kept_and_signs(tmp_path: Path) -> None:
    hsm = FakeHsm()
    store = SqliteStore(tmp_path / "kms.sqlite3")
    await store.open()
    keyring = ServiceKeyring(store, hsm)
    await keyring.load()
    key = await keyring.get("cloudtrail-digest", "RSA_2048", "SIGN_VERIFY")
    assert await keyring.get("cloudtrail-digest", "RSA_2048", "SIGN_VERIFY") == key
    assert hsm.calls.count("generate") == 1
    signature = await keyring.sign("cloudtrail-digest", "RSASSA_PKCS1_V1_5_SHA_256", b"string to sign")
    public: Any = serialization.load_der_public_key(key.public_key)
    public.verify(signature, b"string to sign", padding.PKCS1v15(), hashes.SHA256())
    await store.close()

    # After a restart: the same key, nothing generated again.
    store = SqliteStore(tmp_path / "kms.sqlite3")
    await store.open()
    again = ServiceKeyring(store, hsm)
    await again.load()
    assert await again.get("cloudtrail-digest", "RSA_2048", "SIGN_VERIFY") == key
    assert hsm.calls.count("generate") == 1

    # The account's KMS API does not see it.
    kms = KmsService(store=store, hsm=hsm, sink=MemorySink(), account=ACCOUNT, region=REGION)
    await kms.load()
    assert (await call(kms, "ListKeys"))["Keys"] == []
    with pytest.raises(AwsError) as exc:
        await call(kms, "DescribeKey", KeyId=key.key_id)
    assert exc.value.code == "NotFoundException"
    await store.close()


async def test_bad_requests(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "kms.sqlite3")
    await store.open()
    keyring = ServiceKeyring(store, FakeHsm())
    await keyring.load()

    async def code(coro: Any) -> str:
        with pytest.raises(AwsError) as exc:
            await coro
        return exc.value.code

    assert await code(keyring.get("Bad Name", "RSA_2048", "SIGN_VERIFY")) == "ValidationException"
    assert await code(keyring.get("mac", "HMAC_256", "GENERATE_VERIFY_MAC")) == "ValidationException"
    assert await code(keyring.get("aes", "SYMMETRIC_DEFAULT", "SIGN_VERIFY")) == "ValidationException"
    assert await code(keyring.sign("missing", "RSASSA_PKCS1_V1_5_SHA_256", b"x")) == "NotFoundException"
    await keyring.get("signer", "ECC_NIST_P256", "SIGN_VERIFY")
    assert await code(keyring.get("signer", "RSA_2048", "SIGN_VERIFY")) == "ConflictException"
    assert await code(keyring.sign("signer", "RSASSA_PKCS1_V1_5_SHA_256", b"x")) == "InvalidKeyUsageException"
    assert await code(keyring.encrypt("signer", b"x", b"")) == "InvalidKeyUsageException"
    await store.close()


async def test_symmetric_service_keys_encrypt_in_the_hsm(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "kms.sqlite3")
    await store.open()
    hsm = FakeHsm()
    keyring = ServiceKeyring(store, hsm)
    await keyring.load()
    key = await keyring.get("s3-sse-s3", "SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT")
    assert key.public_key == b""
    secret = b"\x01" * 32
    blob = await keyring.encrypt("s3-sse-s3", secret, b"aad")
    assert secret not in blob and len(blob) == 12 + 32 + 16
    assert await keyring.decrypt("s3-sse-s3", blob, b"aad") == secret
    assert await keyring.encrypt("s3-sse-s3", secret, b"aad") != blob  # a fresh nonce each time

    async def code(coro: Any) -> str:
        with pytest.raises(AwsError) as exc:
            await coro
        return exc.value.code

    tampered = blob[:-1] + bytes([blob[-1] ^ 1])
    assert await code(keyring.decrypt("s3-sse-s3", tampered, b"aad")) == "InvalidCiphertextException"
    assert await code(keyring.decrypt("s3-sse-s3", blob, b"other")) == "InvalidCiphertextException"
    assert await code(keyring.decrypt("s3-sse-s3", b"short", b"aad")) == "InvalidCiphertextException"
    assert await code(keyring.encrypt("s3-sse-s3", b"", b"")) == "ValidationException"
    assert await code(keyring.encrypt("s3-sse-s3", b"x" * 4097, b"")) == "ValidationException"
    assert await code(keyring.sign("s3-sse-s3", "RSASSA_PKCS1_V1_5_SHA_256", b"x")) == "InvalidKeyUsageException"
    await store.close()


class Context:
    def __init__(self, metadata: Any) -> None:
        self._metadata = metadata

    def invocation_metadata(self) -> Any:
        return self._metadata


async def test_only_aws_services_may_use_service_keys(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "kms.sqlite3")
    await store.open()
    keyring = ServiceKeyring(store, FakeHsm())
    await keyring.load()
    servicer = ServiceKeysServicer(keyring, ACCOUNT, REGION)
    request = pb.GetServiceKeyRequest(name="cloudtrail-digest", key_spec="RSA_2048", key_usage="SIGN_VERIFY")
    for metadata in ((), caller_metadata(ROOT)):  # a direct gRPC client acts as the root
        with pytest.raises(AwsError) as exc:
            await servicer.GetServiceKey(request, Context(metadata))  # type: ignore[arg-type]
        assert exc.value.code == "AccessDeniedException"
        assert exc.value.grpc_status == grpc.StatusCode.PERMISSION_DENIED.name
    cloudtrail = Context(caller_metadata(service_caller(ACCOUNT, "cloudtrail.amazonaws.com", REGION)))
    key = await servicer.GetServiceKey(request, cloudtrail)  # type: ignore[arg-type]
    assert key.name == "cloudtrail-digest" and key.key_spec == "RSA_2048" and key.public_key
    signed = await servicer.SignWithServiceKey(  # type: ignore[arg-type]
        pb.SignWithServiceKeyRequest(name="cloudtrail-digest", message=b"m",
                                     signing_algorithm="RSASSA_PKCS1_V1_5_SHA_256"), cloudtrail)
    assert len(signed.signature) == 256
    await store.close()
