from __future__ import annotations

import json

from collections.abc import Iterator

import pytest
import structlog

from common import logging as slog


@pytest.fixture(autouse=True)
def _restore_structlog() -> Iterator[None]:
    """configure() binds the (captured) stderr of this test: undo it afterwards."""
    yield
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()


def test_redaction_drops_secrets_at_any_depth(capsys: pytest.CaptureFixture[str]) -> None:
    slog.configure("test")
    log = slog.get_logger("t")
    log.info("evt", plaintext="TOP-SECRET", nested={"Plaintext": "TOP-SECRET", "ok": 1},
             items=[{"secret_access_key": "TOP-SECRET"}], blob=b"TOP-SECRET")
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert "TOP-SECRET" not in line
    record = json.loads(line)
    assert record["plaintext"] == "[REDACTED]"
    assert record["nested"] == {"Plaintext": "[REDACTED]", "ok": 1}
    assert record["service"] == "test"
    assert record["blob"] == "<10 bytes>"
