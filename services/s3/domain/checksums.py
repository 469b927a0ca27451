"""The checksums S3 clients send and S3 stores: CRC32, CRC32C, CRC64NVME, SHA1, SHA256.

Values are base64 of the big-endian digest, as in ``x-amz-checksum-*`` headers
(https://docs.aws.amazon.com/AmazonS3/latest/userguide/checking-object-integrity.html).
CRC32 uses zlib; CRC32C and CRC64NVME use awscrt when installed (C, fast) and otherwise a
table-driven pure-Python fallback (slow: about 10 MB/s). Multipart objects get either a
COMPOSITE checksum (checksum of the concatenated part checksums, suffixed ``-N``) or a
FULL_OBJECT one for the CRCs, combined from the parts' CRCs without rereading the data
(:func:`crc_combine`, the GF(2) method of zlib's crc32_combine).
"""

from __future__ import annotations

import base64
import hashlib
import zlib
from collections.abc import Callable
from typing import Protocol

try:  # pragma: no cover - depends on the environment
    from awscrt import checksums as _crt
except ImportError:  # pragma: no cover
    _crt = None

ALGORITHMS = ("CRC32", "CRC32C", "CRC64NVME", "SHA1", "SHA256")
CRC_ALGORITHMS = ("CRC32", "CRC32C", "CRC64NVME")

# Reflected polynomials (all three CRCs: refin/refout, init and xorout all ones).
_POLY = {"CRC32": (0xEDB88320, 32), "CRC32C": (0x82F63B78, 32), "CRC64NVME": (0x9A6C9329AC4BC9B5, 64)}


def _table(poly: int) -> list[int]:
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ poly if c & 1 else c >> 1
        table.append(c)
    return table


_TABLES: dict[str, list[int]] = {}


def _py_crc(name: str) -> Callable[[bytes, int], int]:
    poly, width = _POLY[name]
    mask = (1 << width) - 1

    def update(data: bytes, crc: int) -> int:
        table = _TABLES.get(name) or _TABLES.setdefault(name, _table(poly))
        c = crc ^ mask
        for b in data:
            c = table[(c ^ b) & 0xFF] ^ (c >> 8)
        return c ^ mask

    return update


def _crc_update(name: str) -> Callable[[bytes, int], int]:
    if name == "CRC32":
        return lambda data, crc: zlib.crc32(data, crc)
    if _crt is not None:
        fn = _crt.crc32c if name == "CRC32C" else _crt.crc64nvme
        return lambda data, crc: fn(data, crc)
    return _py_crc(name)


class Hasher(Protocol):
    def update(self, data: bytes | memoryview) -> None: ...
    def digest(self) -> bytes: ...


class CrcHasher:
    def __init__(self, name: str) -> None:
        self.name = name
        self.width = _POLY[name][1]
        self._fn = _crc_update(name)
        self.value = 0
        self.length = 0

    def update(self, data: bytes | memoryview) -> None:
        self.value = self._fn(data if isinstance(data, bytes) else bytes(data), self.value)
        self.length += len(data)

    def digest(self) -> bytes:
        return self.value.to_bytes(self.width // 8, "big")


def new_hasher(name: str) -> Hasher:
    if name in _POLY:
        return CrcHasher(name)
    if name == "SHA1":
        return hashlib.sha1()  # noqa: S324 - an integrity checksum AWS defines, not a signature
    if name == "SHA256":
        return hashlib.sha256()
    raise ValueError(name)


def b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode("ascii")


def checksum_of(name: str, data: bytes) -> str:
    h = new_hasher(name)
    h.update(data)
    return b64(h.digest())


def digest_len(name: str) -> int:
    return {"CRC32": 4, "CRC32C": 4, "CRC64NVME": 8, "SHA1": 20, "SHA256": 32}[name]


def valid_value(name: str, value: str) -> bool:
    try:
        raw = base64.b64decode(value, validate=True)
    except (ValueError, TypeError):
        return False
    return len(raw) == digest_len(name)


# ---- combining CRCs (zlib's crc32_combine, generalised to any reflected CRC) -------------

def _multmodp(a: int, b: int, poly: int, width: int) -> int:
    m = 1 << (width - 1)
    p = 0
    while True:
        if a & m:
            p ^= b
            if (a & (m - 1)) == 0:
                break
        m >>= 1
        b = (b >> 1) ^ poly if b & 1 else b >> 1
    return p


def _x8nmodp(n: int, poly: int, width: int) -> int:
    """x^(8n) modulo p, reflected."""
    p = 1 << (width - 1)           # x^0
    xp = 1 << (width - 2)          # x^1
    k = 0
    # square x up to x^(2^3) = x^8 first
    powers = [xp]
    for _ in range(3):
        powers.append(_multmodp(powers[-1], powers[-1], poly, width))
    sq = powers[3]                 # x^8
    while n:
        if n & 1:
            p = _multmodp(sq, p, poly, width)
        n >>= 1
        k += 1
        sq = _multmodp(sq, sq, poly, width)
    return p


def crc_combine(name: str, crc1: int, crc2: int, len2: int) -> int:
    """CRC of A||B from crc(A), crc(B) and len(B)."""
    poly, width = _POLY[name]
    return _multmodp(_x8nmodp(len2, poly, width), crc1, poly, width) ^ crc2


def combine_full_object(name: str, parts: list[tuple[str, int]]) -> str:
    """FULL_OBJECT checksum of a multipart object from (part checksum b64, part size)."""
    crc = 0
    for value, size in parts:
        part = int.from_bytes(base64.b64decode(value), "big")
        crc = crc_combine(name, crc, part, size)
    width = _POLY[name][1]
    return b64(crc.to_bytes(width // 8, "big"))


def composite(name: str, part_values: list[str]) -> str:
    """COMPOSITE checksum: checksum of the concatenated raw part checksums, then ``-N``."""
    h = new_hasher(name)
    for value in part_values:
        h.update(base64.b64decode(value))
    return f"{b64(h.digest())}-{len(part_values)}"
