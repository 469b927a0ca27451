"""Secrets at rest: AES-GCM under the local IAM key (gateway/iam/keyring.py)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidTag

from gateway.iam.keyring import SecretBox


def test_seal_open_round_trip_and_binding(tmp_path: Path) -> None:
    box = SecretBox.load_or_create(tmp_path / "iam.key")
    sealed = box.seal("s3cr3t", kind="access-key", key_id="AKIA1")
    assert b"s3cr3t" not in sealed
    assert sealed[0] == 1 and len(sealed) == 1 + 12 + len("s3cr3t") + 16
    assert box.open(sealed, kind="access-key", key_id="AKIA1") == "s3cr3t"
    with pytest.raises(InvalidTag):
        box.open(sealed, kind="access-key", key_id="AKIA2")     # moved to another row
    with pytest.raises(InvalidTag):
        box.open(sealed, kind="session", key_id="AKIA1")        # another kind of secret
    tampered = sealed[:-1] + bytes([sealed[-1] ^ 1])
    with pytest.raises(InvalidTag):
        box.open(tampered, kind="access-key", key_id="AKIA1")
    assert box.seal("x", kind="k", key_id="i") != box.seal("x", kind="k", key_id="i")  # fresh nonce


def test_key_file_is_private_and_reused(tmp_path: Path) -> None:
    path = tmp_path / "gateway" / "iam.key"
    box = SecretBox.load_or_create(path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert len(path.read_bytes()) == 32
    sealed = box.seal("v", kind="k", key_id="i")
    assert SecretBox.load_or_create(path).open(sealed, kind="k", key_id="i") == "v"


def test_bad_key_file_refused(tmp_path: Path) -> None:
    path = tmp_path / "iam.key"
    path.write_bytes(b"short")
    with pytest.raises(RuntimeError):
        SecretBox.load_or_create(path)
    with pytest.raises(ValueError):
        SecretBox(b"\x00" * 32).open(b"\x02" + b"\x00" * 40, kind="k", key_id="i")
