"""The request hot path's shortcuts answer exactly as the long way does.

* the allow-decision cache never serves one principal's allow to another;
* ``api.build`` makes the same message as ``api.fill``;
* the memoised ciphertext header codec round-trips;
* ``make_server`` keeps only generic handlers and still maps errors to AWS statuses;
* the PKCS#11 adapter uses sensitive, non-extractable session copies of token keys and
  destroys them with the key.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from datetime import datetime, timezone

import grpc
import pytest
from strongroom.common.v1 import caller_pb2
from strongroom.kms.v1 import kms_pb2, kms_pb2_grpc

from common.caller import caller_metadata
from common.errors import AwsError
from common.grpc_server import make_server
from services.kms.api import build, fill, register
from services.kms.domain import ciphertext as ct
from services.kms.service import KmsService
from tests.unit.kms.conftest import ACCOUNT, REGION, call, user

ALLOW_ALL = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "kms:*", "Resource": "*"}]})


async def _denied(kms: KmsService, op: str, caller: caller_pb2.Caller, **params: object) -> str:
    with pytest.raises(AwsError) as info:
        await kms.dispatch(op, caller, dict(params))
    assert info.value.code == "AccessDeniedException"
    return info.value.message


def _role_session(role: str, session: str) -> caller_pb2.Caller:
    c = caller_pb2.Caller(principal_type="AssumedRole", account_id=ACCOUNT,
                          principal_arn=f"arn:aws:sts::{ACCOUNT}:assumed-role/{role}/{session}",
                          principal_id=f"AROAEXAMPLE:{session}")
    issuer = c.session_context.session_issuer
    issuer.type, issuer.arn, issuer.account_id, issuer.user_name = (
        "Role", f"arn:aws:iam::{ACCOUNT}:role/{role}", ACCOUNT, role)
    return c


async def test_cached_allow_is_per_principal(kms: KmsService) -> None:
    key = (await call(kms, "CreateKey"))["KeyMetadata"]
    policy = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, "Action": "kms:*", "Resource": "*"},
        {"Effect": "Allow", "Principal": {"AWS": [f"arn:aws:iam::{ACCOUNT}:user/alice",
                                                  f"arn:aws:iam::{ACCOUNT}:role/reader"]},
         "Action": "kms:Encrypt", "Resource": "*"}]}
    await call(kms, "PutKeyPolicy", KeyId=key["KeyId"], PolicyName="default", Policy=json.dumps(policy))
    for _ in range(2):  # the second round answers from the cache
        await call(kms, "Encrypt", user("alice"), KeyId=key["KeyId"], Plaintext=b"x")
        await call(kms, "Encrypt", _role_session("reader", "s1"), KeyId=key["KeyId"], Plaintext=b"x")
        assert "user/bob" in await _denied(kms, "Encrypt", user("bob"), KeyId=key["KeyId"], Plaintext=b"x")
        # Same session name, another role: another principal.
        assert "assumed-role/writer/s1" in await _denied(
            kms, "Encrypt", _role_session("writer", "s1"), KeyId=key["KeyId"], Plaintext=b"x")
        # Same user, another action.
        await _denied(kms, "Decrypt", user("alice"), CiphertextBlob=(await call(
            kms, "Encrypt", user("alice"), KeyId=key["KeyId"], Plaintext=b"x"))["CiphertextBlob"])


async def test_cached_allow_does_not_outlive_identity_policy_changes(kms: KmsService) -> None:
    key = (await call(kms, "CreateKey"))["KeyMetadata"]
    await call(kms, "Encrypt", user("carol", ALLOW_ALL), KeyId=key["KeyId"], Plaintext=b"x")
    await call(kms, "Encrypt", user("carol", ALLOW_ALL), KeyId=key["KeyId"], Plaintext=b"x")
    message = await _denied(kms, "Encrypt", user("carol"), KeyId=key["KeyId"], Plaintext=b"x")
    assert message.endswith("because no identity-based policy allows the kms:Encrypt action")
    malformed = await _denied(kms, "Encrypt", user("carol", "{not json"), KeyId=key["KeyId"], Plaintext=b"x")
    assert "identity-based policy is malformed" in malformed


async def test_build_equals_fill(kms: KmsService) -> None:
    md = (await call(kms, "CreateKey", Description="d", Tags=[{"TagKey": "a", "TagValue": "b"}]))["KeyMetadata"]
    blob = (await call(kms, "Encrypt", KeyId=md["KeyId"], Plaintext=b"x", EncryptionContext={"k": "v"}))
    samples = [
        (kms_pb2.DescribeKeyResponse, {"KeyMetadata": md}),
        (kms_pb2.EncryptResponse, blob),
        (kms_pb2.ListKeysResponse, {"Keys": [{"KeyId": md["KeyId"], "KeyArn": md["Arn"]}], "Truncated": False}),
        (kms_pb2.ScheduleKeyDeletionResponse, {"KeyId": md["Arn"], "PendingWindowInDays": 7, "KeyState": "x",
                                               "DeletionDate": datetime(2030, 1, 2, 3, 4, 5, tzinfo=timezone.utc)}),
        (kms_pb2.GenerateDataKeyResponse, {"CiphertextBlob": b"c", "Plaintext": b"", "KeyId": "k", "Unknown": 1}),
    ]
    for cls, data in samples:
        assert build(cls, data) == fill(cls(), data), cls


def test_header_codec_round_trips_and_is_memoised() -> None:
    for _ in range(3):
        key_id, material_id, nonce = str(uuid.uuid4()), os.urandom(32).hex(), os.urandom(12)
        header = ct.CiphertextHeader(key_id, material_id, nonce)
        packed = header.pack()
        assert packed == ct.MAGIC + bytes([ct.FORMAT]) + uuid.UUID(key_id).bytes + bytes.fromhex(material_id) + nonce
        assert ct.CiphertextHeader.parse(packed + b"\x00" * ct.TAG_LEN) == header
        assert ct.CiphertextHeader(key_id, material_id, os.urandom(12)).pack()[:52] == packed[:52]
    assert ct.encode_context({}) == b"\x00\x00"
    assert ct.encode_context({"a": "bc"}) != ct.encode_context({"ab": "c"})


async def test_make_server_maps_errors_and_serves_generic_handlers(kms: KmsService) -> None:
    server = make_server()
    register(server, kms, ACCOUNT, REGION)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = kms_pb2_grpc.KeyManagementServiceStub(channel)
            key_id = (await stub.CreateKey(kms_pb2.CreateKeyRequest())).key_metadata.key_id
            out = await stub.Encrypt(kms_pb2.EncryptRequest(key_id=key_id, plaintext=b"p"),
                                     metadata=caller_metadata(user("dan", ALLOW_ALL)))
            assert out.key_id.endswith(key_id)
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await stub.Encrypt(kms_pb2.EncryptRequest(key_id=str(uuid.uuid4()), plaintext=b"p"))
            assert info.value.code() == grpc.StatusCode.NOT_FOUND
            assert "does not exist" in (info.value.details() or "")
            trailers = dict(info.value.trailing_metadata() or ())
            assert "grpc-status-details-bin" in trailers  # google.rpc.Status with its ErrorInfo
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await channel.unary_unary("/strongroom.kms.v1.KeyManagementService/NoSuchRpc")(b"")
            assert info.value.code() == grpc.StatusCode.UNIMPLEMENTED
    finally:
        await server.stop(0)


@pytest.mark.skipif(shutil.which("softhsm2-util") is None, reason="SoftHSM2 not installed")
async def test_pkcs11_uses_sensitive_session_copies() -> None:
    from pkcs11 import Attribute, ObjectClass

    from services.kms.hsm.pkcs11 import Pkcs11Hsm
    from services.kms.hsm.port import HsmError
    from services.kms.testing import SOFTHSM_MODULE, softhsm_token

    with softhsm_token() as token:
        hsm = Pkcs11Hsm(SOFTHSM_MODULE, token.label, token.pin, workers=1)
        hsm.open()
        try:
            await hsm.generate("t/copy", "SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT")
            nonce = os.urandom(12)
            body = await hsm.aes_gcm_encrypt("t/copy", nonce, b"data", b"aad")  # inline session
            assert await hsm.fingerprint("t/copy", "SYMMETRIC_DEFAULT")  # a worker session too
            assert hsm._inline is not None
            handle = hsm._inline.objects[("t/copy", ObjectClass.SECRET_KEY)]
            assert handle[Attribute.TOKEN] is False
            assert handle[Attribute.SENSITIVE] is True and handle[Attribute.EXTRACTABLE] is False
            assert hsm.value_readable("t/copy") is False
            session = hsm._inline.session
            assert sorted(o[Attribute.TOKEN] for o in session.get_objects({Attribute.LABEL: "t/copy"})) == [
                False, False, True]
            assert await hsm.aes_gcm_decrypt("t/copy", nonce, body, b"aad") == b"data"
            await hsm.destroy("t/copy")
            assert list(session.get_objects({Attribute.LABEL: "t/copy"})) == []
            with pytest.raises(HsmError):
                await hsm.aes_gcm_encrypt("t/copy", nonce, b"data", b"aad")
        finally:
            await hsm.close()
