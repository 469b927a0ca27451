"""The AWS Encryption SDK for Python, unchanged, with its KMS master key provider on the stack.

The SDK makes its own KMS clients from a botocore session (``botocore_session=``); the session
is pointed at the stack the way a user would point it at any endpoint: a profile in a shared
config file with ``endpoint_url`` (botocore's "service-specific endpoints" configuration). The
SDK then calls GenerateDataKey on encrypt and Decrypt on decrypt; its message format
(header, encrypted data keys naming the key ARN, framed AES-GCM body, ECDSA signature) is the
SDK's own, so a round trip shows that our KMS behaves as the SDK expects.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aws_encryption_sdk
import botocore.session
import pytest
from aws_encryption_sdk import CommitmentPolicy
from aws_encryption_sdk.exceptions import DecryptKeyError, GenerateKeyError
from aws_encryption_sdk.key_providers.kms import DiscoveryFilter
from botocore.exceptions import ClientError

from tests.stackctl import ACCOUNT_ID, REGION, Stack

CONTEXT = {"purpose": "strongroom-e2e", "tenant": "lab"}


@pytest.fixture(scope="module")
def botocore_session(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> botocore.session.Session:
    config = tmp_path_factory.mktemp("esdk") / "aws-config"
    config.write_text(f"[profile strongroom]\nregion = {REGION}\nendpoint_url = {stack.endpoint}\n"
                      "max_attempts = 1\n")
    session = botocore.session.Session()
    session.set_config_variable("config_file", str(config))
    session.set_config_variable("profile", "strongroom")
    session.set_credentials(stack.access_key_id, stack.secret_access_key)
    return session


@pytest.fixture(scope="module")
def keys(stack: Stack) -> Iterator[list[str]]:
    """Two symmetric keys with the default key policy; their ARNs."""
    kms = stack.client("kms")
    arns = [kms.create_key(Description=f"Encryption SDK e2e {i}")["KeyMetadata"]["Arn"]
            for i in range(2)]
    try:
        yield arns
    finally:
        for arn in arns:
            kms.schedule_key_deletion(KeyId=arn, PendingWindowInDays=7)


@pytest.fixture(scope="module")
def esdk() -> aws_encryption_sdk.EncryptionSDKClient:
    return aws_encryption_sdk.EncryptionSDKClient(
        commitment_policy=CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT)


def _provider(session: botocore.session.Session, key_ids: list[str]) -> Any:
    return aws_encryption_sdk.StrictAwsKmsMasterKeyProvider(key_ids=key_ids,
                                                           botocore_session=session)


def test_sdk_clients_reach_the_stack(botocore_session: botocore.session.Session, keys: list[str],
                                     stack: Stack) -> None:
    provider = _provider(botocore_session, keys[:1])
    client = provider.master_key(keys[0]).config.client  # the KMS client the SDK made itself
    assert client.meta.endpoint_url == stack.endpoint


def test_encrypt_then_decrypt_round_trip(esdk: aws_encryption_sdk.EncryptionSDKClient,
                                         botocore_session: botocore.session.Session,
                                         keys: list[str]) -> None:
    plaintext = os.urandom(1024 * 1024 + 17)  # framed: many 4 KiB frames, one data key
    provider = _provider(botocore_session, keys)
    ciphertext, header = esdk.encrypt(source=plaintext, key_provider=provider,
                                      encryption_context=CONTEXT)
    assert ciphertext != plaintext and plaintext[:64] not in ciphertext
    # One encrypted data key per KMS key, each naming its key ARN (provider id "aws-kms").
    edks = sorted(header.encrypted_data_keys, key=lambda e: e.key_provider.key_info)
    assert [(e.key_provider.provider_id, e.key_provider.key_info) for e in edks] == [
        ("aws-kms", arn.encode()) for arn in sorted(keys)]
    for key_arn in keys:
        # Either key alone opens the message.
        decrypted, dheader = esdk.decrypt(source=ciphertext,
                                          key_provider=_provider(botocore_session, [key_arn]))
        assert decrypted == plaintext
        assert {k: dheader.encryption_context[k] for k in CONTEXT} == CONTEXT
    # Discovery mode, limited to our account, finds the key from the message itself.
    discovery = aws_encryption_sdk.DiscoveryAwsKmsMasterKeyProvider(
        botocore_session=botocore_session,
        discovery_filter=DiscoveryFilter(account_ids=[ACCOUNT_ID], partition="aws"))
    assert esdk.decrypt(source=ciphertext, key_provider=discovery)[0] == plaintext


def test_streaming_round_trip(esdk: aws_encryption_sdk.EncryptionSDKClient,
                              botocore_session: botocore.session.Session, keys: list[str],
                              tmp_path: Path) -> None:
    data = os.urandom(300_000)
    src, enc = tmp_path / "in.bin", tmp_path / "in.bin.encrypted"
    src.write_bytes(data)
    provider = _provider(botocore_session, keys[:1])
    with src.open("rb") as fin, enc.open("wb") as fout, esdk.stream(
            mode="e", source=fin, key_provider=provider, encryption_context=CONTEXT,
            frame_length=8192) as encryptor:
        for chunk in encryptor:
            fout.write(chunk)
    with enc.open("rb") as fin, esdk.stream(mode="d", source=fin, key_provider=provider) as decryptor:
        assert b"".join(decryptor) == data


def test_decrypt_fails_while_the_key_is_disabled(
        esdk: aws_encryption_sdk.EncryptionSDKClient, botocore_session: botocore.session.Session,
        keys: list[str], stack: Stack) -> None:
    key_arn = keys[1]
    provider = _provider(botocore_session, [key_arn])
    plaintext = b"readable only while the key is enabled"
    ciphertext, header = esdk.encrypt(source=plaintext, key_provider=provider,
                                      encryption_context=CONTEXT)
    kms = stack.client("kms")
    kms.disable_key(KeyId=key_arn)
    try:
        with pytest.raises(DecryptKeyError):
            esdk.decrypt(source=ciphertext, key_provider=provider)
        # The master key's own failure carries KMS's DisabledException.
        master_key = provider.master_key(key_arn)
        with pytest.raises(DecryptKeyError) as exc:
            master_key.decrypt_data_key(header.encrypted_data_keys.copy().pop(), header.algorithm,
                                        header.encryption_context)
        cause = exc.value.__cause__
        assert isinstance(cause, ClientError)
        assert cause.response["Error"]["Code"] == "DisabledException"
        assert cause.response["Error"]["Message"] == f"{key_arn} is disabled."
        # Nothing new can be encrypted under it either.
        with pytest.raises(GenerateKeyError):
            esdk.encrypt(source=b"x", key_provider=_provider(botocore_session, [key_arn]))
    finally:
        kms.enable_key(KeyId=key_arn)
    decrypted, _ = esdk.decrypt(source=ciphertext, key_provider=provider)
    assert decrypted == plaintext
