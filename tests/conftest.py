"""Shared fixtures: one real stack per test session for the integration tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.stackctl import Stack, make_stack, remove


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    """The whole stack (kms, s3, trail, gateway) on free 127.0.0.1 ports, SoftHSM2 token."""
    s = make_stack()
    try:
        s.start()
        yield s
    finally:
        remove(s)
