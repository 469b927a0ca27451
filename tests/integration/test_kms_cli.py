"""The same KMS operations driven by the AWS CLI (``aws kms ...``) against the stack."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any


def test_aws_cli_kms_round_trip(stack: Any, tmp_path: Path) -> None:
    md = stack.aws_json("kms", "create-key", "--description", "cli key", "--tags", "TagKey=Purpose,TagValue=Test")["KeyMetadata"]
    key_id = md["KeyId"]
    assert md["KeyState"] == "Enabled" and md["Description"] == "cli key"
    stack.aws("kms", "create-alias", "--alias-name", "alias/cli-key", "--target-key-id", key_id)
    plain = tmp_path / "plain.txt"
    plain.write_bytes(b"hello from the cli")
    enc = stack.aws_json("kms", "encrypt", "--key-id", "alias/cli-key", "--plaintext", f"fileb://{plain}",
                         "--encryption-context", "app=cli")
    assert enc["KeyId"] == md["Arn"]
    blob = tmp_path / "blob.bin"
    blob.write_bytes(base64.b64decode(enc["CiphertextBlob"]))
    dec = stack.aws_json("kms", "decrypt", "--ciphertext-blob", f"fileb://{blob}", "--encryption-context", "app=cli")
    assert base64.b64decode(dec["Plaintext"]) == b"hello from the cli"
    failed = stack.aws("kms", "decrypt", "--ciphertext-blob", f"fileb://{blob}", check=False)
    assert failed.returncode != 0 and "InvalidCiphertextException" in failed.stderr
    aliases = stack.aws_json("kms", "list-aliases", "--key-id", key_id)["Aliases"]
    assert [a["AliasName"] for a in aliases] == ["alias/cli-key"]
    policy = json.loads(stack.aws_json("kms", "get-key-policy", "--key-id", key_id, "--policy-name", "default")["Policy"])
    assert policy["Id"] == "key-default-1"
    assert stack.aws_json("kms", "list-resource-tags", "--key-id", key_id)["Tags"] == [{"TagKey": "Purpose", "TagValue": "Test"}]
    stack.aws("kms", "enable-key-rotation", "--key-id", key_id)
    assert stack.aws_json("kms", "get-key-rotation-status", "--key-id", key_id)["KeyRotationEnabled"] is True
    stack.aws("kms", "disable-key", "--key-id", key_id)
    disabled = stack.aws("kms", "encrypt", "--key-id", key_id, "--plaintext", f"fileb://{plain}", check=False)
    assert "DisabledException" in disabled.stderr and f"{md['Arn']} is disabled." in disabled.stderr
    stack.aws("kms", "enable-key", "--key-id", key_id)
    sched = stack.aws_json("kms", "schedule-key-deletion", "--key-id", key_id, "--pending-window-in-days", "7")
    assert sched["KeyState"] == "PendingDeletion" and sched["PendingWindowInDays"] == 7
    stack.aws_json("kms", "cancel-key-deletion", "--key-id", key_id)
    assert stack.aws_json("kms", "describe-key", "--key-id", key_id)["KeyMetadata"]["KeyState"] == "Disabled"
    sign_key = stack.aws_json("kms", "create-key", "--key-spec", "ECC_NIST_P256", "--key-usage", "SIGN_VERIFY")["KeyMetadata"]
    sig = stack.aws_json("kms", "sign", "--key-id", sign_key["KeyId"], "--message", f"fileb://{plain}",
                         "--message-type", "RAW", "--signing-algorithm", "ECDSA_SHA_256")
    sig_file = tmp_path / "sig.bin"
    sig_file.write_bytes(base64.b64decode(sig["Signature"]))
    ok = stack.aws_json("kms", "verify", "--key-id", sign_key["KeyId"], "--message", f"fileb://{plain}",
                        "--message-type", "RAW", "--signing-algorithm", "ECDSA_SHA_256", "--signature", f"fileb://{sig_file}")
    assert ok["SignatureValid"] is True
    keys = stack.aws_json("kms", "list-keys")["Keys"]
    assert key_id in {k["KeyId"] for k in keys}
