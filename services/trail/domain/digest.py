"""CloudTrail digest files: content, the string that is signed, and verification.

Format: https://docs.aws.amazon.com/awscloudtrail/latest/userguide/cloudtrail-log-file-validation-digest-file-structure.html
Signing: https://docs.aws.amazon.com/awscloudtrail/latest/userguide/cloudtrail-log-file-custom-validation.html

* A digest lists every log file the trail delivered during [digestStartTime, digestEndTime):
  ``s3Bucket``, ``s3Object``, ``hashValue`` = hex SHA-256 of the **uncompressed** log file,
  ``hashAlgorithm`` "SHA-256", and the oldest / newest eventTime it holds.
* It chains to the previous digest: ``previousDigestS3Bucket`` / ``previousDigestS3Object``,
  ``previousDigestHashValue`` (hex SHA-256 of the previous uncompressed digest file) and
  ``previousDigestSignature``. The first digest of a chain has these set to null.
* The signature is SHA256withRSA (RSASSA-PKCS1-v1_5, SHA-256) over the UTF-8 string::

      <digestEndTime> "\\n" <digestS3Bucket> "/" <digestS3Object> "\\n"
      <hex SHA-256 of the uncompressed digest file> "\\n" <previousDigestSignature or "null">

  hex-encoded and stored as the S3 object metadata ``signature``, with
  ``signature-algorithm`` = ``SHA256withRSA`` (``x-amz-meta-*`` headers).
* ``digestPublicKeyFingerprint`` = hex MD5 of the DER PKCS#1 RSAPublicKey, which is what
  ListPublicKeys returns as ``Value`` (and ``Fingerprint``).

These are the rules ``aws cloudtrail validate-logs`` applies, so it can validate our files.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

SIGNATURE_ALGORITHM = "SHA256withRSA"
HASH_ALGORITHM = "SHA-256"


@dataclass(frozen=True, slots=True)
class LogFileEntry:
    s3_bucket: str
    s3_object: str
    hash_value: str  # hex SHA-256 of the uncompressed log file
    oldest_event_time: str | None
    newest_event_time: str | None


@dataclass(frozen=True, slots=True)
class PreviousDigest:
    s3_bucket: str
    s3_object: str
    hash_value: str  # hex SHA-256 of the previous uncompressed digest file
    signature: str  # its hex signature


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def fingerprint(public_key_pkcs1_der: bytes) -> str:
    return hashlib.md5(public_key_pkcs1_der).hexdigest()  # noqa: S324 - AWS's fingerprint format


def build_digest(
    *,
    account_id: str,
    start: str,
    end: str,
    bucket: str,
    key: str,
    key_fingerprint: str,
    logs: Sequence[LogFileEntry],
    previous: PreviousDigest | None,
) -> bytes:
    """The uncompressed digest file (UTF-8 JSON, keys in AWS's order)."""
    times_old = [e.oldest_event_time for e in logs if e.oldest_event_time]
    times_new = [e.newest_event_time for e in logs if e.newest_event_time]
    doc: dict[str, Any] = {
        "awsAccountId": account_id,
        "digestStartTime": start,
        "digestEndTime": end,
        "digestS3Bucket": bucket,
        "digestS3Object": key,
        "digestPublicKeyFingerprint": key_fingerprint,
        "digestSignatureAlgorithm": SIGNATURE_ALGORITHM,
        "newestEventTime": max(times_new) if times_new else None,
        "oldestEventTime": min(times_old) if times_old else None,
        "previousDigestS3Bucket": previous.s3_bucket if previous else None,
        "previousDigestS3Object": previous.s3_object if previous else None,
        "previousDigestHashValue": previous.hash_value if previous else None,
        "previousDigestHashAlgorithm": HASH_ALGORITHM if previous else None,
        "previousDigestSignature": previous.signature if previous else None,
        "logFiles": [
            {
                "s3Bucket": e.s3_bucket,
                "s3Object": e.s3_object,
                "hashValue": e.hash_value,
                "hashAlgorithm": HASH_ALGORITHM,
                "newestEventTime": e.newest_event_time,
                "oldestEventTime": e.oldest_event_time,
            }
            for e in logs
        ],
    }
    return json.dumps(doc, separators=(",", ":")).encode()


def string_to_sign(
    *, end: str, bucket: str, key: str, digest_body: bytes, previous_signature: str | None
) -> bytes:
    return (
        f"{end}\n{bucket}/{key}\n{sha256_hex(digest_body)}\n"
        f"{previous_signature if previous_signature is not None else 'null'}"
    ).encode()


def string_to_sign_of(digest: dict[str, Any], digest_body: bytes) -> bytes:
    return string_to_sign(
        end=str(digest["digestEndTime"]),
        bucket=str(digest["digestS3Bucket"]),
        key=str(digest["digestS3Object"]),
        digest_body=digest_body,
        previous_signature=digest.get("previousDigestSignature"),
    )


def public_key_from_pkcs1(der: bytes) -> rsa.RSAPublicKey:
    key = serialization.load_der_public_key(_pkcs1_to_spki(der))
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError("not an RSA public key")
    return key


def pkcs1_from_spki(spki_der: bytes) -> bytes:
    """SubjectPublicKeyInfo (what KMS GetPublicKey returns) -> PKCS#1 RSAPublicKey DER."""
    key = serialization.load_der_public_key(spki_der)
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError("not an RSA public key")
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.PKCS1)


def _pkcs1_to_spki(der: bytes) -> bytes:
    # cryptography loads PKCS#1 DER through the PEM "RSA PUBLIC KEY" form.
    import base64

    b64 = base64.encodebytes(der).decode()
    pem = f"-----BEGIN RSA PUBLIC KEY-----\n{b64}-----END RSA PUBLIC KEY-----\n".encode()
    key = serialization.load_pem_public_key(pem)
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def verify_signature(public_key_pkcs1_der: bytes, message: bytes, signature_hex: str) -> bool:
    try:
        signature = bytes.fromhex(signature_hex)
        public_key_from_pkcs1(public_key_pkcs1_der).verify(
            signature, message, padding.PKCS1v15(), hashes.SHA256()
        )
    except (ValueError, InvalidSignature):
        return False
    return True
