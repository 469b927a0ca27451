from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from common.config import Settings
from common.credentials import ensure_root_credentials


def test_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith("STRONGROOM_"):
            monkeypatch.delenv(key)
    s = Settings.from_env()
    assert (s.host, s.port, s.account_id, s.region) == ("127.0.0.1", 4566, "000000000000", "us-east-1")
    assert s.data_dir == Path("data").resolve()
    assert s.kms_target == "127.0.0.1:4567"


def test_env_overrides(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("STRONGROOM_PORT", "5000")
    monkeypatch.setenv("STRONGROOM_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("STRONGROOM_KMS_ADDR", "kms:4567")
    monkeypatch.setenv("STRONGROOM_GRPC_HOST", "0.0.0.0")
    s = Settings.from_env()
    assert s.port == 5000 and s.data_dir == tmp_path
    assert s.kms_target == "kms:4567"
    assert s.s3_target == "127.0.0.1:4568"


def test_generated_credentials_are_saved_0600_and_reused(tmp_path: Path) -> None:
    s = Settings(data_dir=tmp_path)
    akid, secret = ensure_root_credentials(s)
    assert akid.startswith("AKIA") and len(akid) == 20 and len(secret) == 40
    path = tmp_path / "credentials"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    text = path.read_text()
    assert "[default]" in text and f"aws_access_key_id = {akid}" in text
    assert ensure_root_credentials(s) == (akid, secret)


def test_configured_credentials_win(tmp_path: Path) -> None:
    s = Settings(data_dir=tmp_path, root_access_key_id="AKIAEXAMPLE", root_secret_access_key="s3cr3t")
    assert ensure_root_credentials(s) == ("AKIAEXAMPLE", "s3cr3t")
    assert not (tmp_path / "credentials").exists()
