"""The HSM port: everything the service asks of the hardware, by key-material label.

Material never crosses this interface except where AWS returns it by design (data keys and
data key pairs are made by the service; ECDH shared secrets are returned to the caller).
Adapters: hsm/pkcs11.py (any PKCS#11 token; SoftHSM2 by default) and hsm/fake.py (tests).

Signatures are returned in AWS's wire formats: RSA raw (PKCS#1 v1.5 or PSS), ECDSA DER
(SEQUENCE of r, s), Ed25519 raw 64 bytes. ``sign`` takes the message digest (the service
hashes RAW messages); Ed25519 (``ED25519_SHA_512``) takes the message itself.
"""

from __future__ import annotations

from typing import Protocol


class HsmError(Exception):
    """The token failed (not the caller's fault)."""


class HsmAuthenticationError(HsmError):
    """Authenticated decryption / unwrapping failed (bad tag, bad padding, wrong key)."""


class Hsm(Protocol):
    async def generate(self, label: str, spec: str, usage: str) -> bytes | None:
        """Generate key material in the token under ``label``; return the DER SPKI public key
        for asymmetric specs, None otherwise."""

    async def destroy(self, label: str) -> None:
        """Destroy every token object of ``label`` (missing objects are not an error)."""

    async def random(self, n: int) -> bytes: ...

    async def aes_gcm_encrypt(self, label: str, nonce: bytes, plaintext: bytes, aad: bytes) -> bytes:
        """AES-256-GCM; returns ciphertext || 16-byte tag."""

    async def aes_gcm_decrypt(self, label: str, nonce: bytes, data: bytes, aad: bytes) -> bytes:
        """Inverse of aes_gcm_encrypt; raises HsmAuthenticationError on a bad tag."""

    async def hmac(self, label: str, hash_name: str, message: bytes) -> bytes: ...

    async def sign(self, label: str, spec: str, algorithm: str, data: bytes) -> bytes: ...

    async def rsa_decrypt(self, label: str, algorithm: str, ciphertext: bytes) -> bytes:
        """RSAES-OAEP (SHA-1 / SHA-256) decryption; HsmAuthenticationError on bad input."""

    async def ecdh(self, label: str, peer_point: bytes) -> bytes:
        """Raw ECDH shared secret (x coordinate) with the peer's uncompressed point."""

    async def generate_wrapping_key(self, label: str, bits: int) -> bytes:
        """An RSA key pair for importing material; returns the DER SPKI public key."""

    async def import_material(self, wrapping_label: str, wrapping_algorithm: str, wrapped: bytes,
                              label: str, spec: str, usage: str) -> tuple[str, bytes | None]:
        """Unwrap imported material into the token under ``label``; return (fingerprint,
        public key DER or None). HsmAuthenticationError when it cannot be unwrapped."""

    async def fingerprint(self, label: str, spec: str) -> str:
        """A key check value identifying the material (same material -> same value)."""

    def value_readable(self, label: str) -> bool:
        """Ask the token whether any object's secret value under ``label`` can be read."""

    async def close(self) -> None: ...
