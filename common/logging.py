"""structlog JSON logging with a redaction processor.

Context (request id, account, operation, key id) is bound with structlog's contextvars.
The redactor drops any field whose name suggests secret material, at any depth, so a
careless ``log.info("x", plaintext=...)`` never reaches the output.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

SECRET_FIELDS = frozenset({
    "plaintext", "plaintext_blob", "data_key", "datakey", "key_material", "pin", "so_pin",
    "secret", "secret_access_key", "secretaccesskey", "password", "session_token",
    "sessiontoken", "authorization", "private_key", "privatekeyplaintext", "body",
    "signature_key", "shared_secret", "sharedsecret", "x-amz-security-token",
})


def _scrub(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: ("[REDACTED]" if str(k).lower() in SECRET_FIELDS else _scrub(v))
                for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_scrub(v) for v in value]
    if isinstance(value, (bytes, bytearray, memoryview)):
        return f"<{len(value)} bytes>"
    return value


def redact(_logger: Any, _name: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key in list(event):
        if key.lower() in SECRET_FIELDS:
            event[key] = "[REDACTED]"
        else:
            event[key] = _scrub(event[key])
    return event


def configure(service: str, level: str = "info") -> None:
    logging.basicConfig(stream=sys.stderr, level=level.upper(), format="%(message)s")
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            redact,
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping().get(level.upper(), logging.INFO)),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    structlog.contextvars.bind_contextvars(service=service)


def get_logger(name: str | None = None) -> Any:
    return structlog.get_logger(name)
