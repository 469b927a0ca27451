"""Key specs, key usages and the algorithms each allows, as AWS KMS lists them.

Source: https://docs.aws.amazon.com/kms/latest/developerguide/symm-asymm-choose-key-spec.html
and the CreateKey / Sign / Encrypt API reference pages. ``SUPPORTED_SPECS`` are the specs the
HSM (SoftHSM2 2.6 or any PKCS#11 token offering the same mechanisms) can hold; the others
(ML_DSA_*, ML_KEM_*, SM2) are valid AWS enum values this service rejects at CreateKey with
UnsupportedOperationException, as AWS does in Regions that do not offer them. Ed25519 keys offer
ED25519_SHA_512 only: SoftHSM2 2.6's CKM_EDDSA does not implement the prehash (Ed25519ph) variant.
"""

from __future__ import annotations

import enum
import hashlib
from dataclasses import dataclass

from services.kms.domain import errors


class KeyUsage(enum.StrEnum):
    ENCRYPT_DECRYPT = "ENCRYPT_DECRYPT"
    SIGN_VERIFY = "SIGN_VERIFY"
    GENERATE_VERIFY_MAC = "GENERATE_VERIFY_MAC"
    KEY_AGREEMENT = "KEY_AGREEMENT"
    ENCAPSULATE_DECAPSULATE = "ENCAPSULATE_DECAPSULATE"


class Kind(enum.StrEnum):
    SYMMETRIC = "symmetric"
    RSA = "rsa"
    EC = "ec"
    EDWARDS = "edwards"
    HMAC = "hmac"
    UNSUPPORTED = "unsupported"


@dataclass(frozen=True, slots=True)
class SpecInfo:
    spec: str
    kind: Kind
    usages: tuple[KeyUsage, ...]
    bits: int = 0                      # RSA modulus bits, AES/HMAC key bits
    curve: str | None = None           # named curve for EC / Edwards keys
    signing: tuple[str, ...] = ()
    encryption: tuple[str, ...] = ()   # for ENCRYPT_DECRYPT usage
    mac: tuple[str, ...] = ()
    agreement: tuple[str, ...] = ()


RSA_SIGNING = ("RSASSA_PKCS1_V1_5_SHA_256", "RSASSA_PKCS1_V1_5_SHA_384", "RSASSA_PKCS1_V1_5_SHA_512",
               "RSASSA_PSS_SHA_256", "RSASSA_PSS_SHA_384", "RSASSA_PSS_SHA_512")
RSA_ENCRYPTION = ("RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256")

SPECS: dict[str, SpecInfo] = {
    s.spec: s for s in (
        SpecInfo("SYMMETRIC_DEFAULT", Kind.SYMMETRIC, (KeyUsage.ENCRYPT_DECRYPT,), 256,
                 encryption=("SYMMETRIC_DEFAULT",)),
        SpecInfo("RSA_2048", Kind.RSA, (KeyUsage.ENCRYPT_DECRYPT, KeyUsage.SIGN_VERIFY), 2048,
                 signing=RSA_SIGNING, encryption=RSA_ENCRYPTION),
        SpecInfo("RSA_3072", Kind.RSA, (KeyUsage.ENCRYPT_DECRYPT, KeyUsage.SIGN_VERIFY), 3072,
                 signing=RSA_SIGNING, encryption=RSA_ENCRYPTION),
        SpecInfo("RSA_4096", Kind.RSA, (KeyUsage.ENCRYPT_DECRYPT, KeyUsage.SIGN_VERIFY), 4096,
                 signing=RSA_SIGNING, encryption=RSA_ENCRYPTION),
        SpecInfo("ECC_NIST_P256", Kind.EC, (KeyUsage.SIGN_VERIFY, KeyUsage.KEY_AGREEMENT), curve="secp256r1",
                 signing=("ECDSA_SHA_256",), agreement=("ECDH",)),
        SpecInfo("ECC_NIST_P384", Kind.EC, (KeyUsage.SIGN_VERIFY, KeyUsage.KEY_AGREEMENT), curve="secp384r1",
                 signing=("ECDSA_SHA_384",), agreement=("ECDH",)),
        SpecInfo("ECC_NIST_P521", Kind.EC, (KeyUsage.SIGN_VERIFY, KeyUsage.KEY_AGREEMENT), curve="secp521r1",
                 signing=("ECDSA_SHA_512",), agreement=("ECDH",)),
        SpecInfo("ECC_SECG_P256K1", Kind.EC, (KeyUsage.SIGN_VERIFY,), curve="secp256k1",
                 signing=("ECDSA_SHA_256",)),
        SpecInfo("ECC_NIST_EDWARDS25519", Kind.EDWARDS, (KeyUsage.SIGN_VERIFY,), curve="ed25519",
                 signing=("ED25519_SHA_512",)),  # Ed25519ph: not offered (see module doc)
        SpecInfo("HMAC_224", Kind.HMAC, (KeyUsage.GENERATE_VERIFY_MAC,), 224, mac=("HMAC_SHA_224",)),
        SpecInfo("HMAC_256", Kind.HMAC, (KeyUsage.GENERATE_VERIFY_MAC,), 256, mac=("HMAC_SHA_256",)),
        SpecInfo("HMAC_384", Kind.HMAC, (KeyUsage.GENERATE_VERIFY_MAC,), 384, mac=("HMAC_SHA_384",)),
        SpecInfo("HMAC_512", Kind.HMAC, (KeyUsage.GENERATE_VERIFY_MAC,), 512, mac=("HMAC_SHA_512",)),
    )
}

# Valid AWS enum values that no PKCS#11 mechanism of the configured token implements.
UNSUPPORTED_SPECS = frozenset({"SM2", "ML_DSA_44", "ML_DSA_65", "ML_DSA_87",
                               "ML_KEM_512", "ML_KEM_768", "ML_KEM_1024"})

# RSAES-OAEP plaintext limits (bytes): k - 2*hLen - 2.
RSA_OAEP_MAX = {
    (bits, alg): bits // 8 - 2 * h - 2
    for bits in (2048, 3072, 4096) for alg, h in (("RSAES_OAEP_SHA_1", 20), ("RSAES_OAEP_SHA_256", 32))
}

HASH_OF_SIGNING = {
    "RSASSA_PKCS1_V1_5_SHA_256": "sha256", "RSASSA_PKCS1_V1_5_SHA_384": "sha384",
    "RSASSA_PKCS1_V1_5_SHA_512": "sha512", "RSASSA_PSS_SHA_256": "sha256",
    "RSASSA_PSS_SHA_384": "sha384", "RSASSA_PSS_SHA_512": "sha512",
    "ECDSA_SHA_256": "sha256", "ECDSA_SHA_384": "sha384", "ECDSA_SHA_512": "sha512",
    "ED25519_SHA_512": "sha512", "ED25519_PH_SHA_512": "sha512",
}
DIGEST_SIZE = {"sha1": 20, "sha256": 32, "sha384": 48, "sha512": 64, "sha224": 28}
HASH_OF_MAC = {"HMAC_SHA_224": "sha224", "HMAC_SHA_256": "sha256", "HMAC_SHA_384": "sha384",
               "HMAC_SHA_512": "sha512"}

DATA_KEY_BYTES = {"AES_256": 32, "AES_128": 16}
# GenerateDataKeyPair specs made here (the private key leaves KMS by design).
DATA_KEY_PAIR_SPECS = ("RSA_2048", "RSA_3072", "RSA_4096", "ECC_NIST_P256", "ECC_NIST_P384",
                       "ECC_NIST_P521", "ECC_SECG_P256K1", "ECC_NIST_EDWARDS25519")


def spec_info(spec: str) -> SpecInfo:
    return SPECS[spec]


def metadata_algorithms(info: SpecInfo, usage: str) -> dict[str, list[str]]:
    """The algorithm lists DescribeKey shows for a key of ``info`` with ``usage``."""
    if usage == KeyUsage.ENCRYPT_DECRYPT:
        return {"EncryptionAlgorithms": list(info.encryption)}
    if usage == KeyUsage.SIGN_VERIFY:
        return {"SigningAlgorithms": list(info.signing)}
    if usage == KeyUsage.GENERATE_VERIFY_MAC:
        return {"MacAlgorithms": list(info.mac)}
    if usage == KeyUsage.KEY_AGREEMENT:
        return {"KeyAgreementAlgorithms": list(info.agreement)}
    return {}


def signing_input(spec: str, algorithm: str, message_type: str, message: bytes) -> bytes:
    """What the HSM signs for Sign / Verify: the message's digest (MessageType RAW, hashed
    here), the digest itself (DIGEST, length checked), or the message (Ed25519)."""
    info = SPECS[spec]
    if algorithm not in info.signing:
        raise errors.InvalidKeyUsageException(f"Algorithm {algorithm} is incompatible with key spec {spec}.")
    if message_type == "EXTERNAL_MU":
        raise errors.ValidationException(f"MessageType EXTERNAL_MU is not valid for algorithm {algorithm}.")
    hash_name = HASH_OF_SIGNING[algorithm]
    if algorithm == "ED25519_SHA_512":
        if message_type != "RAW":
            raise errors.ValidationException(f"MessageType {message_type} is not valid for algorithm {algorithm}.")
        return message
    if message_type == "DIGEST":
        if len(message) != DIGEST_SIZE[hash_name]:
            raise errors.ValidationException(f"Digest is invalid length for algorithm {algorithm}.")
        return message
    return hashlib.new(hash_name, message).digest()
