"""Trail unit tests log through structlog: give them a stream that stays open.

Another test may call ``common.logging.configure`` while pytest captures stderr; structlog
then keeps writing to that captured (later closed) stream. Re-point it for every test here.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest
import structlog


@pytest.fixture(autouse=True)
def open_log_stream() -> Iterator[None]:
    structlog.configure(
        processors=[structlog.processors.add_log_level, structlog.dev.ConsoleRenderer(colors=False)],
        logger_factory=structlog.PrintLoggerFactory(file=sys.__stderr__),
        cache_logger_on_first_use=False,
    )
    yield
