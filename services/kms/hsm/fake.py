"""An in-memory HSM for unit tests, built on ``cryptography`` (same answers as the token)."""

from __future__ import annotations

import hashlib
import hmac as hmac_mod
import os
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa, utils
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.keywrap import InvalidUnwrap, aes_key_unwrap_with_padding

from services.kms.domain.specs import SPECS, Kind
from services.kms.hsm.codec import CURVES, oaep_decode
from services.kms.hsm.port import HsmAuthenticationError, HsmError

_HASHES = {"sha1": hashes.SHA1, "sha256": hashes.SHA256, "sha384": hashes.SHA384, "sha512": hashes.SHA512}


def _spki(pub: Any) -> bytes:
    return pub.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


class FakeHsm:
    def __init__(self) -> None:
        self.objects: dict[str, tuple[str, Any]] = {}
        self.calls: list[str] = []

    async def generate(self, label: str, spec: str, usage: str) -> bytes | None:
        self.calls.append("generate")
        info = SPECS[spec]
        if info.kind is Kind.SYMMETRIC:
            self.objects[label] = (spec, os.urandom(32))
            return None
        if info.kind is Kind.HMAC:
            self.objects[label] = (spec, os.urandom(info.bits // 8))
            return None
        if info.kind is Kind.RSA:
            priv: Any = rsa.generate_private_key(65537, info.bits)
        elif info.kind is Kind.EC:
            priv = ec.generate_private_key(CURVES[info.curve or ""])
        elif info.kind is Kind.EDWARDS:
            priv = ed25519.Ed25519PrivateKey.generate()
        else:
            raise HsmError(f"unsupported spec {spec}")
        self.objects[label] = (spec, priv)
        return _spki(priv.public_key())

    async def destroy(self, label: str) -> None:
        self.objects.pop(label, None)

    def _get(self, label: str) -> Any:
        try:
            return self.objects[label][1]
        except KeyError:
            raise HsmError("no such object") from None

    async def random(self, n: int) -> bytes:
        return os.urandom(n)

    async def aes_gcm_encrypt(self, label: str, nonce: bytes, plaintext: bytes, aad: bytes) -> bytes:
        return AESGCM(self._get(label)).encrypt(nonce, plaintext, aad)

    async def aes_gcm_decrypt(self, label: str, nonce: bytes, data: bytes, aad: bytes) -> bytes:
        try:
            return AESGCM(self._get(label)).decrypt(nonce, data, aad)
        except InvalidTag:
            raise HsmAuthenticationError("bad tag") from None

    async def hmac(self, label: str, hash_name: str, message: bytes) -> bytes:
        return hmac_mod.new(self._get(label), message, hash_name).digest()

    async def sign(self, label: str, spec: str, algorithm: str, data: bytes) -> bytes:
        priv = self._get(label)
        if algorithm.startswith("ED25519"):
            return bytes(priv.sign(data))
        hash_name = algorithm.rsplit("_", 1)[1]
        h = _HASHES["sha" + hash_name]()
        prehashed = utils.Prehashed(h)
        if algorithm.startswith("RSASSA_PSS"):
            return bytes(priv.sign(data, padding.PSS(padding.MGF1(h), h.digest_size), prehashed))
        if algorithm.startswith("RSASSA_PKCS1"):
            return bytes(priv.sign(data, padding.PKCS1v15(), prehashed))
        return bytes(priv.sign(data, ec.ECDSA(prehashed)))

    async def rsa_decrypt(self, label: str, algorithm: str, ciphertext: bytes) -> bytes:
        priv = self._get(label)
        h = _HASHES["sha1" if algorithm.endswith("SHA_1") else "sha256"]()
        try:
            return bytes(priv.decrypt(ciphertext, padding.OAEP(padding.MGF1(h), h, None)))
        except ValueError:
            raise HsmAuthenticationError("bad ciphertext") from None

    async def ecdh(self, label: str, peer_point: bytes) -> bytes:
        priv = self._get(label)
        try:
            peer = ec.EllipticCurvePublicKey.from_encoded_point(priv.curve, peer_point)
        except ValueError:
            raise HsmAuthenticationError("bad point") from None
        return bytes(priv.exchange(ec.ECDH(), peer))

    async def generate_wrapping_key(self, label: str, bits: int) -> bytes:
        priv = rsa.generate_private_key(65537, bits)
        self.objects[label] = (f"RSA_{bits}", priv)
        return _spki(priv.public_key())

    async def import_material(self, wrapping_label: str, wrapping_algorithm: str, wrapped: bytes,
                              label: str, spec: str, usage: str) -> tuple[str, bytes | None]:
        wrapper = self._get(wrapping_label)
        k = wrapper.key_size // 8
        hash_name = "sha1" if wrapping_algorithm.endswith("SHA_1") else "sha256"
        try:
            if wrapping_algorithm.startswith("RSA_AES_KEY_WRAP"):
                h = _HASHES[hash_name]()
                kek = wrapper.decrypt(wrapped[:k], padding.OAEP(padding.MGF1(h), h, None))
                material = aes_key_unwrap_with_padding(kek, wrapped[k:])
            elif wrapping_algorithm == "RSAES_PKCS1_V1_5":
                material = wrapper.decrypt(wrapped, padding.PKCS1v15())
            else:
                h = _HASHES[hash_name]()
                material = wrapper.decrypt(wrapped, padding.OAEP(padding.MGF1(h), h, None))
        except (ValueError, InvalidUnwrap):
            raise HsmAuthenticationError("cannot unwrap") from None
        info = SPECS[spec]
        public: bytes | None = None
        if info.kind in (Kind.SYMMETRIC, Kind.HMAC):
            expected = 32 if info.kind is Kind.SYMMETRIC else info.bits // 8
            if len(material) != expected:
                raise HsmAuthenticationError("wrong length")
            self.objects[label] = (spec, material)
        else:
            try:
                priv = serialization.load_der_private_key(material, None)
            except ValueError:
                raise HsmAuthenticationError("not a private key") from None
            self.objects[label] = (spec, priv)
            public = _spki(priv.public_key())
        return await self.fingerprint(label, spec), public

    async def fingerprint(self, label: str, spec: str) -> str:
        obj = self._get(label)
        if isinstance(obj, bytes):
            return hashlib.sha256(b"strongroom-kcv" + hmac_mod.new(obj, b"kcv", "sha256").digest()).hexdigest()
        return hashlib.sha256(_spki(obj.public_key())).hexdigest()

    def value_readable(self, label: str) -> bool:
        return False

    async def close(self) -> None:
        self.objects.clear()
