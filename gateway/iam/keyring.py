"""Encryption of IAM secrets at rest (secret access keys of users and STS sessions).

Secret access keys must be recoverable (SigV4 verification needs the secret itself, not a
hash), so they are encrypted, never stored in plaintext:

* a 256-bit AES key lives in ``$STRONGROOM_DATA_DIR/gateway/iam.key`` (32 raw bytes, created
  on first start with mode 0600, written atomically; a file of any other size is refused);
* each secret is sealed with AES-256-GCM under a fresh 96-bit random nonce, the associated
  data binding it to its row: ``b"strongroom-iam-v1|" + kind + b"|" + access_key_id``, so a
  sealed secret copied to another key id's row does not open;
* byte layout of a sealed value: ``version (1 byte, 0x01) | nonce (12) | ciphertext+tag``.

Anyone who can read both iam.db and iam.key can recover the secrets: keep DATA_DIR private
(the file modes do, on a shared host). Session tokens are not secrets that need recovering:
only their SHA-256 is stored.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from common.files import write_private

_VERSION = b"\x01"
_NONCE = 12
_AAD_PREFIX = b"strongroom-iam-v1|"


class SecretBox:
    """Seal / open short secrets with AES-256-GCM under the local IAM key."""

    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise ValueError("the IAM key must be 32 bytes")
        self._aead = AESGCM(key)

    @classmethod
    def load_or_create(cls, path: Path) -> SecretBox:
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists():
            key = path.read_bytes()
            if len(key) != 32:
                raise RuntimeError(f"{path}: expected a 32-byte key, found {len(key)} bytes")
            return cls(key)
        key = AESGCM.generate_key(bit_length=256)
        write_private(path, key)
        return cls(key)

    @staticmethod
    def _aad(kind: str, key_id: str) -> bytes:
        return _AAD_PREFIX + kind.encode() + b"|" + key_id.encode()

    def seal(self, secret: str, *, kind: str, key_id: str) -> bytes:
        nonce = os.urandom(_NONCE)
        return _VERSION + nonce + self._aead.encrypt(nonce, secret.encode(), self._aad(kind, key_id))

    def open(self, sealed: bytes, *, kind: str, key_id: str) -> str:
        if len(sealed) < 1 + _NONCE + 16 or sealed[:1] != _VERSION:
            raise ValueError("not a sealed IAM secret")
        nonce = sealed[1:1 + _NONCE]
        return self._aead.decrypt(nonce, sealed[1 + _NONCE:], self._aad(kind, key_id)).decode()


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
