"""Trailer checksums: known answers, incremental use, pure-Python fallback."""

from __future__ import annotations

import base64
import hashlib
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.auth import checksums, new_checksum

CHECK_INPUT = b"123456789"
# Catalogue check values (CRC RevEng): CRC-32/ISO-HDLC, CRC-32/ISCSI, CRC-64/NVME.
CHECK_VALUES = {
    "crc32": 0xCBF43926,
    "crc32c": 0xE3069283,
    "crc64nvme": 0xAE8B14860A799888,
}


def _b64(value: int, width: int) -> str:
    return base64.b64encode(value.to_bytes(width, "big")).decode()


@pytest.mark.parametrize("algorithm", list(CHECK_VALUES))
def test_check_values(algorithm: str) -> None:
    checksum = new_checksum(algorithm)
    checksum.update(CHECK_INPUT)
    width = 8 if algorithm == "crc64nvme" else 4
    assert checksum.b64digest() == _b64(CHECK_VALUES[algorithm], width)


def test_pure_python_crcs_match_the_check_values() -> None:
    assert checksums._crc32_sliced(0xFFFFFFFF, CHECK_INPUT) ^ 0xFFFFFFFF == 0xE3069283
    mask = (1 << 64) - 1
    assert checksums._crc64_sliced(mask, CHECK_INPUT) ^ mask == 0xAE8B14860A799888


def test_aws_documented_crc32c_of_the_chunked_example() -> None:
    checksum = new_checksum("crc32c")
    checksum.update(b"a" * 66560)
    assert checksum.b64digest() == "sOO8/Q=="


def test_pure_python_fallback_is_used_without_awscrt(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(checksums, "_crt", None)
    for algorithm, expected in (("crc32c", "sOO8/Q=="),):
        checksum = new_checksum(algorithm)
        checksum.update(b"a" * 66560)
        assert checksum.b64digest() == expected
    checksum = new_checksum("crc64nvme")
    checksum.update(CHECK_INPUT)
    assert checksum.b64digest() == _b64(0xAE8B14860A799888, 8)


def test_sha_checksums() -> None:
    for name in ("sha1", "sha256"):
        checksum = new_checksum(name)
        checksum.update(b"hello")
        assert checksum.b64digest() == base64.b64encode(hashlib.new(name, b"hello").digest()).decode()


@settings(max_examples=40, deadline=None)
@given(data=st.binary(max_size=300), cuts=st.lists(st.integers(0, 300), max_size=5))
def test_incremental_equals_one_shot(data: bytes, cuts: list[int]) -> None:
    bounds = sorted({0, len(data), *(c for c in cuts if c <= len(data))})
    for algorithm in ("crc32", "crc32c", "crc64nvme", "sha256"):
        whole = new_checksum(algorithm)
        whole.update(data)
        parts = new_checksum(algorithm)
        for start, end in zip(bounds, bounds[1:]):
            parts.update(memoryview(data)[start:end])
        assert parts.b64digest() == whole.b64digest()
    pure = checksums._crc32_sliced(0xFFFFFFFF, data) ^ 0xFFFFFFFF
    reference = 0xFFFFFFFF
    for byte in data:  # bit-by-bit reference implementation of CRC-32C
        reference ^= byte
        for _ in range(8):
            reference = (reference >> 1) ^ (0x82F63B78 if reference & 1 else 0)
    assert pure == reference ^ 0xFFFFFFFF
    assert new_checksum("crc32").b64digest() == _b64(zlib.crc32(b""), 4)
