"""Object bytes at rest: AES-256-GCM in authenticated chunks.

An object is one or more *segments* (one for PutObject/CopyObject, one per part after a
multipart upload); each segment is one blob file:

    header (44 bytes):
        magic    b"SRS3"           4
        version  0x01              1
        reserved 0x00 * 3          3
        chunk    u32 big-endian    4   plaintext bytes per chunk (the last may be shorter)
        salt     32 random bytes  32
    chunk i, for i in 0 .. n-1, n = max(1, ceil(size / chunk)):
        AES-256-GCM(content_key, nonce = i as 12 bytes big-endian,
                    aad = header || i as u64 big-endian || final (1 byte: 1 for i == n-1))
        = ciphertext (len(plaintext_i)) || tag (16)

    content_key = HKDF-SHA256(ikm = data key, salt = header.salt,
                              info = b"strongroom/s3/segment/v1", length = 32)

The data key is the object's (SSE-S3: a random key wrapped by the service key; SSE-KMS: the
KMS data key; SSE-KMS with a Bucket Key: the bucket key). Every segment has its own random
salt, hence its own content key, so counter nonces never repeat under one key. The ``final``
flag and the segment size kept in the metadata make truncation and chunk reordering fail
authentication. A ranged read decrypts only the chunks that overlap the range.
Decryption failures all raise :class:`SegmentCorrupt` with one message (no oracle).
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

MAGIC = b"SRS3"
VERSION = 1
HEADER_LEN = 44
TAG_LEN = 16
DEFAULT_CHUNK = 64 * 1024
_INFO = b"strongroom/s3/segment/v1"


class SegmentCorrupt(Exception):
    """A segment failed authentication (or has a bad header)."""

    def __init__(self) -> None:
        super().__init__("stored object data failed authentication")


@dataclass(frozen=True, slots=True)
class SegmentHeader:
    chunk_size: int
    salt: bytes

    def encode(self) -> bytes:
        return MAGIC + bytes([VERSION, 0, 0, 0]) + struct.pack(">I", self.chunk_size) + self.salt

    @classmethod
    def parse(cls, raw: bytes) -> SegmentHeader:
        if len(raw) != HEADER_LEN or raw[:4] != MAGIC or raw[4] != VERSION:
            raise SegmentCorrupt()
        (chunk,) = struct.unpack(">I", raw[8:12])
        if chunk == 0 or chunk > 16 * 1024 * 1024:
            raise SegmentCorrupt()
        return cls(chunk, raw[12:44])

    @classmethod
    def new(cls, chunk_size: int = DEFAULT_CHUNK) -> SegmentHeader:
        return cls(chunk_size, os.urandom(32))


def content_key(data_key: bytes, header: SegmentHeader) -> AESGCM:
    if len(data_key) != 32:
        raise ValueError("data key must be 32 bytes")
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=header.salt, info=_INFO).derive(data_key)
    return AESGCM(key)


def _nonce(i: int) -> bytes:
    return i.to_bytes(12, "big")


def _aad(header_bytes: bytes, i: int, final: bool) -> bytes:
    return header_bytes + struct.pack(">QB", i, 1 if final else 0)


def chunk_count(size: int, chunk_size: int) -> int:
    return max(1, -(-size // chunk_size))


def encrypted_size(size: int, chunk_size: int) -> int:
    return HEADER_LEN + size + chunk_count(size, chunk_size) * TAG_LEN


class SegmentEncryptor:
    """Streams plaintext in, ciphertext out. ``update`` may be fed any sizes."""

    def __init__(self, data_key: bytes, chunk_size: int = DEFAULT_CHUNK) -> None:
        self.header = SegmentHeader.new(chunk_size)
        self._hdr = self.header.encode()
        self._aead = content_key(data_key, self.header)
        self._buf = bytearray()
        self._index = 0
        self.size = 0
        self._started = False

    def start(self) -> bytes:
        self._started = True
        return self._hdr

    def update(self, data: bytes | memoryview) -> list[bytes]:
        """Encrypted complete chunks; keeps at least one byte back for the final chunk."""
        self.size += len(data)
        self._buf += data
        cs = self.header.chunk_size
        out: list[bytes] = []
        pos, total = 0, len(self._buf)
        # The last (possibly full) chunk waits for finish(): only then is it known to be final.
        with memoryview(self._buf) as view:
            while total - pos > cs:
                out.append(self._aead.encrypt(_nonce(self._index), view[pos:pos + cs],
                                              _aad(self._hdr, self._index, False)))
                self._index += 1
                pos += cs
        if pos:
            del self._buf[:pos]
        return out

    def finish(self) -> bytes:
        out = self._aead.encrypt(_nonce(self._index), bytes(self._buf), _aad(self._hdr, self._index, True))
        self._buf.clear()
        self._index += 1
        return out


@dataclass(frozen=True, slots=True)
class ChunkSpan:
    index: int
    file_offset: int
    cipher_len: int
    plain_start: int   # plaintext offset of the chunk within the segment
    final: bool


def chunk_spans(size: int, chunk_size: int, start: int, end: int) -> list[ChunkSpan]:
    """Chunks covering plaintext bytes [start, end] (inclusive) of a segment of ``size``."""
    n = chunk_count(size, chunk_size)
    if size == 0:
        return [ChunkSpan(0, HEADER_LEN, TAG_LEN, 0, True)]
    first, last = start // chunk_size, end // chunk_size
    spans = []
    for i in range(first, last + 1):
        plain_len = min(chunk_size, size - i * chunk_size)
        spans.append(ChunkSpan(i, HEADER_LEN + i * (chunk_size + TAG_LEN), plain_len + TAG_LEN,
                               i * chunk_size, i == n - 1))
    return spans


class SegmentDecryptor:
    def __init__(self, data_key: bytes, header_bytes: bytes) -> None:
        self.header = SegmentHeader.parse(header_bytes)
        self._hdr = header_bytes
        self._aead = content_key(data_key, self.header)

    def decrypt(self, span: ChunkSpan, ciphertext: bytes) -> bytes:
        if len(ciphertext) != span.cipher_len:
            raise SegmentCorrupt()
        try:
            return self._aead.decrypt(_nonce(span.index), ciphertext, _aad(self._hdr, span.index, span.final))
        except InvalidTag:
            raise SegmentCorrupt() from None
