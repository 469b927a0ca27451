"""Encodings shared by the HSM adapters (no secrets kept here).

* PKCS#1 v1.5 DigestInfo prefixes (RFC 8017 section 9.2, note 1).
* EME-OAEP decoding (RFC 8017 section 7.1.2) for tokens that only offer raw RSA with the
  hash needed (SoftHSM2 2.6 implements CKM_RSA_PKCS_OAEP with SHA-1 only): the private-key
  operation still runs in the token; only the padding is removed here.
* ECDSA raw ``r || s`` -> DER, and public keys -> DER SubjectPublicKeyInfo.
"""

from __future__ import annotations

import hashlib
import hmac

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

DIGEST_INFO = {
    "sha256": bytes.fromhex("3031300d060960864801650304020105000420"),
    "sha384": bytes.fromhex("3041300d060960864801650304020205000430"),
    "sha512": bytes.fromhex("3051300d060960864801650304020305000440"),
}

CURVES: dict[str, ec.EllipticCurve] = {
    "secp256r1": ec.SECP256R1(), "secp384r1": ec.SECP384R1(), "secp521r1": ec.SECP521R1(),
    "secp256k1": ec.SECP256K1(),
}


def _mgf1(seed: bytes, length: int, hash_name: str) -> bytes:
    out = bytearray()
    counter = 0
    while len(out) < length:
        out += hashlib.new(hash_name, seed + counter.to_bytes(4, "big")).digest()
        counter += 1
    return bytes(out[:length])


def oaep_decode(em: bytes, k: int, hash_name: str, label: bytes = b"") -> bytes | None:
    """Remove EME-OAEP padding; None when the encoding is invalid (one answer for all faults)."""
    h_len = hashlib.new(hash_name).digest_size
    em = em.rjust(k, b"\x00")
    if len(em) != k or k < 2 * h_len + 2:
        return None
    y, masked_seed, masked_db = em[0], em[1:1 + h_len], em[1 + h_len:]
    seed = bytes(a ^ b for a, b in zip(masked_seed, _mgf1(masked_db, h_len, hash_name)))
    db = bytes(a ^ b for a, b in zip(masked_db, _mgf1(seed, k - h_len - 1, hash_name)))
    l_hash = hashlib.new(hash_name, label).digest()
    good = hmac.compare_digest(db[:h_len], l_hash) & (y == 0)
    rest = db[h_len:]
    index = -1
    bad_byte = False
    for i, b in enumerate(rest):
        if index < 0:
            if b == 1:
                index = i
            elif b != 0:
                bad_byte = True
    if not good or bad_byte or index < 0:
        return None
    return rest[index + 1:]


def ecdsa_der(raw: bytes) -> bytes:
    half = len(raw) // 2
    return encode_dss_signature(int.from_bytes(raw[:half], "big"), int.from_bytes(raw[half:], "big"))


def rsa_spki(modulus: bytes, exponent: bytes) -> bytes:
    pub = rsa.RSAPublicNumbers(int.from_bytes(exponent, "big"), int.from_bytes(modulus, "big")).public_key()
    return pub.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def _unwrap_octet_string(data: bytes) -> bytes:
    """CKA_EC_POINT is a DER OCTET STRING holding the point (some tokens give it bare)."""
    if data and data[0] == 0x04 and len(data) > 2:
        length = data[1]
        offset = 2
        if length & 0x80:
            n = length & 0x7F
            length = int.from_bytes(data[2:2 + n], "big")
            offset = 2 + n
        if offset + length == len(data):
            return data[offset:]
    return data


def ec_spki(curve: str, ec_point: bytes) -> bytes:
    point = _unwrap_octet_string(ec_point)
    if curve == "ed25519":
        pub_ed = ed25519.Ed25519PublicKey.from_public_bytes(point)
        return pub_ed.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    pub = ec.EllipticCurvePublicKey.from_encoded_point(CURVES[curve], point)
    return pub.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
