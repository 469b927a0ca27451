"""Symmetric ciphertext blobs and the encryption-context encoding they authenticate.

Blob layout (all integers big-endian)::

    offset  size  field
    0       3     magic  b"SRK"
    3       1     format version (1)
    4       16    key id (the UUID's 16 bytes)
    20      32    key material id (the 64-hex KeyMaterialId as raw bytes)
    52      12    AES-GCM nonce
    64      n     AES-256-GCM ciphertext of the plaintext
    64+n    16    AES-GCM tag

The AES-GCM additional data is ``blob[0:64]`` (header incl. nonce) followed by
``encode_context(encryption_context)``, so the key, the material version and the context
are all authenticated: any changed byte, another context or another key fails the tag.
Decryption reads the header, selects exactly one key material by (key id, material id)
and fails with one uninformative error otherwise (see domain/errors.invalid_ciphertext).

Context encoding: pairs sorted by key (UTF-8 bytes), each as
``len(k) (2 bytes) | k | len(v) (2 bytes) | v``, prefixed by the pair count (2 bytes).
Unambiguous: ``{"a": "bc"}`` and ``{"ab": "c"}`` encode differently.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Mapping
from dataclasses import dataclass

MAGIC = b"SRK"
FORMAT = 1
HEADER_LEN = 64
NONCE_LEN = 12
TAG_LEN = 16
OVERHEAD = HEADER_LEN + TAG_LEN


class CiphertextFormatError(ValueError):
    """Not a blob of ours (callers turn it into InvalidCiphertextException)."""


@dataclass(frozen=True, slots=True)
class CiphertextHeader:
    key_id: str
    material_id: str
    nonce: bytes

    def pack(self) -> bytes:
        return _prefix(self.key_id, self.material_id) + self.nonce

    @classmethod
    def parse(cls, blob: bytes) -> CiphertextHeader:
        if len(blob) < OVERHEAD or blob[:3] != MAGIC or blob[3] != FORMAT:
            raise CiphertextFormatError("not a Strongroom ciphertext")
        key_id, material_id = _ids(blob[4:52])
        return cls(key_id=key_id, material_id=material_id, nonce=blob[52:64])


# Both directions are pure functions of a few hundred distinct (key, material) pairs in
# practice: memoised, as every Encrypt and Decrypt runs one of them.
@functools.lru_cache(maxsize=4096)
def _prefix(key_id: str, material_id: str) -> bytes:
    return MAGIC + bytes([FORMAT]) + uuid.UUID(key_id).bytes + bytes.fromhex(material_id)


@functools.lru_cache(maxsize=4096)
def _ids(raw: bytes) -> tuple[str, str]:
    return str(uuid.UUID(bytes=raw[:16])), raw[16:48].hex()


_EMPTY_CONTEXT = (0).to_bytes(2, "big")


def encode_context(context: Mapping[str, str]) -> bytes:
    if not context:
        return _EMPTY_CONTEXT
    items = sorted((k.encode("utf-8"), v.encode("utf-8")) for k, v in context.items())
    out = [len(items).to_bytes(2, "big")]
    for k, v in items:
        out.append(len(k).to_bytes(2, "big") + k + len(v).to_bytes(2, "big") + v)
    return b"".join(out)


def aad(header: bytes, context: Mapping[str, str]) -> bytes:
    return header + encode_context(context)


def is_ours(blob: bytes) -> bool:
    return len(blob) >= OVERHEAD and blob[:3] == MAGIC and blob[3] == FORMAT
