"""The PKCS#11 adapter against a real SoftHSM2 token made for this module (and removed after).

Checks what the token itself says (values not readable), interoperability of its outputs
with ``cryptography``, the OS-locking initialisation under concurrent load from the event
loop and the worker threads at once, and prints the measured operation rates.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Iterator

import pytest
from cryptography.hazmat.primitives import hashes, hmac, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from services.kms.hsm.pkcs11 import Pkcs11Hsm
from services.kms.hsm.port import HsmAuthenticationError
from services.kms.testing import SOFTHSM_MODULE, Token, softhsm_token


@pytest.fixture(scope="module")
def token() -> Iterator[Token]:
    with softhsm_token("adapter-test") as t:
        yield t


@pytest.fixture
async def hsm(token: Token) -> AsyncIterator[Pkcs11Hsm]:
    h = Pkcs11Hsm(SOFTHSM_MODULE, token.label, token.pin, workers=2)
    h.open()
    yield h
    await h.close()


async def test_secret_values_cannot_be_read(hsm: Pkcs11Hsm) -> None:
    for label, spec, usage in (("t/aes", "SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT"), ("t/hmac", "HMAC_384", "GENERATE_VERIFY_MAC"),
                               ("t/rsa", "RSA_2048", "SIGN_VERIFY"), ("t/ec", "ECC_SECG_P256K1", "SIGN_VERIFY"),
                               ("t/ed", "ECC_NIST_EDWARDS25519", "SIGN_VERIFY")):
        await hsm.generate(label, spec, usage)
        assert hsm.value_readable(label) is False, spec
        await hsm.destroy(label)


async def test_gcm_tag_and_aad_are_checked(hsm: Pkcs11Hsm) -> None:
    await hsm.generate("t/gcm", "SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT")
    nonce = os.urandom(12)
    body = await hsm.aes_gcm_encrypt("t/gcm", nonce, b"hello", b"aad")
    assert await hsm.aes_gcm_decrypt("t/gcm", nonce, body, b"aad") == b"hello"
    with pytest.raises(HsmAuthenticationError):
        await hsm.aes_gcm_decrypt("t/gcm", nonce, body, b"other")
    with pytest.raises(HsmAuthenticationError):
        await hsm.aes_gcm_decrypt("t/gcm", nonce, body[:-1] + bytes([body[-1] ^ 1]), b"aad")
    await hsm.destroy("t/gcm")


async def test_outputs_interoperate(hsm: Pkcs11Hsm) -> None:
    pub_der = await hsm.generate("t/rsa-enc", "RSA_3072", "ENCRYPT_DECRYPT")
    pub = serialization.load_der_public_key(pub_der or b"")
    for alg, h in (("RSAES_OAEP_SHA_1", hashes.SHA1()), ("RSAES_OAEP_SHA_256", hashes.SHA256())):
        blob = pub.encrypt(b"interop", padding.OAEP(padding.MGF1(h), h, None))
        assert await hsm.rsa_decrypt("t/rsa-enc", alg, blob) == b"interop"
        with pytest.raises(HsmAuthenticationError):
            await hsm.rsa_decrypt("t/rsa-enc", alg, blob[:-1] + bytes([blob[-1] ^ 1]))
    ec_der = await hsm.generate("t/ecdh", "ECC_NIST_P256", "KEY_AGREEMENT")
    peer = ec.generate_private_key(ec.SECP256R1())
    point = peer.public_key().public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    assert await hsm.ecdh("t/ecdh", point) == peer.exchange(ec.ECDH(), serialization.load_der_public_key(ec_der or b""))
    for label in ("t/rsa-enc", "t/ecdh"):
        await hsm.destroy(label)


async def test_concurrent_load_from_loop_and_threads(hsm: Pkcs11Hsm) -> None:
    """Inline AES-GCM on the loop while worker threads sign: no CKR_GENERAL_ERROR, no crash."""
    await hsm.generate("t/load-aes", "SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT")
    await hsm.generate("t/load-ec", "ECC_NIST_P256", "SIGN_VERIFY")
    await hsm.generate("t/load-rsa", "RSA_2048", "SIGN_VERIFY")
    await hsm.generate("t/load-mac", "HMAC_256", "GENERATE_VERIFY_MAC")
    counts = {"gcm": 0, "ecdsa": 0, "rsa": 0, "hmac": 0}
    deadline = time.perf_counter() + 1.5

    async def gcm() -> None:
        while time.perf_counter() < deadline:
            nonce = os.urandom(12)
            body = await hsm.aes_gcm_encrypt("t/load-aes", nonce, b"x" * 64, b"")
            assert await hsm.aes_gcm_decrypt("t/load-aes", nonce, body, b"") == b"x" * 64
            counts["gcm"] += 2
            await asyncio.sleep(0)

    async def signer(label: str, spec: str, alg: str, name: str) -> None:
        while time.perf_counter() < deadline:
            await hsm.sign(label, spec, alg, b"\x01" * 32)
            counts[name] += 1

    async def macs() -> None:
        while time.perf_counter() < deadline:
            await hsm.hmac("t/load-mac", "sha256", b"m")
            counts["hmac"] += 1
            await asyncio.sleep(0)

    await asyncio.gather(gcm(), gcm(), macs(), signer("t/load-ec", "ECC_NIST_P256", "ECDSA_SHA_256", "ecdsa"),
                         signer("t/load-ec", "ECC_NIST_P256", "ECDSA_SHA_256", "ecdsa"),
                         signer("t/load-rsa", "RSA_2048", "RSASSA_PKCS1_V1_5_SHA_256", "rsa"))
    print("\nmixed load, 1.5 s: " + ", ".join(f"{k} {v / 1.5:.0f}/s" for k, v in counts.items()))
    assert all(counts.values())
    for label in ("t/load-aes", "t/load-ec", "t/load-rsa", "t/load-mac"):
        await hsm.destroy(label)


async def test_single_op_rates(hsm: Pkcs11Hsm) -> None:
    await hsm.generate("t/rate-aes", "SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT")
    await hsm.generate("t/rate-rsa4096", "RSA_4096", "SIGN_VERIFY")
    n = 2000
    t = time.perf_counter()
    for _ in range(n):
        await hsm.aes_gcm_encrypt("t/rate-aes", os.urandom(12), b"x" * 64, b"a" * 80)
    gcm = n / (time.perf_counter() - t)
    t = time.perf_counter()
    for _ in range(10):
        await hsm.sign("t/rate-rsa4096", "RSA_4096", "RSASSA_PSS_SHA_256", b"\x01" * 32)
    rsa = 10 / (time.perf_counter() - t)
    print(f"\nAES-GCM 64 B inline: {gcm:.0f}/s ({1e6 / gcm:.0f} us); RSA-4096 PSS sign: {rsa:.0f}/s")
    assert gcm > rsa
    await hsm.destroy("t/rate-aes")
    await hsm.destroy("t/rate-rsa4096")


async def test_imported_material_is_unwrapped_in_the_token(hsm: Pkcs11Hsm) -> None:
    from cryptography.hazmat.primitives.keywrap import aes_key_wrap_with_padding
    pub = serialization.load_der_public_key(await hsm.generate_wrapping_key("t/wrap", 2048))
    material = os.urandom(32)
    kek = os.urandom(32)
    wrapped = pub.encrypt(kek, padding.OAEP(padding.MGF1(hashes.SHA1()), hashes.SHA1(), None)) + \
        aes_key_wrap_with_padding(kek, material)
    fp, public = await hsm.import_material("t/wrap", "RSA_AES_KEY_WRAP_SHA_1", wrapped, "t/imported",
                                           "SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT")
    assert public is None and fp == await hsm.fingerprint("t/imported", "SYMMETRIC_DEFAULT")
    assert hsm.value_readable("t/imported") is False
    nonce = os.urandom(12)
    body = await hsm.aes_gcm_encrypt("t/imported", nonce, b"same key", b"")
    assert AESGCM(material).decrypt(nonce, body, b"") == b"same key"
    hmac_mat = os.urandom(32)
    wrapped_mac = pub.encrypt(hmac_mat, padding.OAEP(padding.MGF1(hashes.SHA1()), hashes.SHA1(), None))
    await hsm.import_material("t/wrap", "RSAES_OAEP_SHA_1", wrapped_mac, "t/imported-mac", "HMAC_256",
                              "GENERATE_VERIFY_MAC")
    expected = hmac.HMAC(hmac_mat, hashes.SHA256())
    expected.update(b"m")
    assert await hsm.hmac("t/imported-mac", "sha256", b"m") == expected.finalize()
    for label in ("t/wrap", "t/imported", "t/imported-mac"):
        await hsm.destroy(label)
