"""What the trail service needs from the other services (adapters implement these).

* :class:`ObjectStore` - the S3 service, called as the ``cloudtrail.amazonaws.com`` service
  principal for deliveries (bucket policy and default encryption apply), and as the bucket
  owner for the CreateTrail policy check and the validator.
* :class:`KeyService` - the KMS service: the trail's ``KmsKeyId`` (exists, enabled, policy).
* :class:`DigestSigner` - the HSM-held RSA key that signs digest files (SHA256withRSA).

Adapter errors are :class:`common.errors.AwsError` (e.g. ``NoSuchBucket``, ``AccessDenied``,
``NotFoundException``) or :class:`Unavailable` when the other service cannot be reached.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


class Unavailable(Exception):
    """The other service did not answer (down, restarting, timeout)."""


@dataclass(frozen=True, slots=True)
class StoredObject:
    body: bytes
    metadata: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class ListedObject:
    key: str
    size: int
    last_modified: datetime | None = None  # when the object store wrote it (whole seconds)


@dataclass(frozen=True, slots=True)
class KeyInfo:
    arn: str
    key_state: str  # Enabled | Disabled | PendingDeletion | ...
    key_usage: str  # ENCRYPT_DECRYPT | SIGN_VERIFY | ...
    key_spec: str  # SYMMETRIC_DEFAULT | RSA_2048 | ...


@dataclass(frozen=True, slots=True)
class PutRequest:
    bucket: str
    key: str
    body: bytes
    content_type: str = "application/json"
    content_encoding: str | None = "gzip"
    metadata: Mapping[str, str] | None = None
    kms_key_id: str | None = None  # SSE-KMS with this key
    encryption_context: Mapping[str, str] | None = None
    source_arn: str = ""  # aws:SourceArn (the trail)
    source_account: str = ""  # aws:SourceAccount


class ObjectStore(Protocol):
    async def get_bucket_policy(self, bucket: str) -> str | None:
        """The bucket policy JSON (None when there is none). NoSuchBucket if no bucket."""

    async def check_bucket_acl_access(self, bucket: str, *, source_arn: str, source_account: str) -> None:
        """GetBucketAcl as the CloudTrail service principal; raises AccessDenied / NoSuchBucket."""

    async def put_object(self, request: PutRequest) -> None:
        """PutObject as the CloudTrail service principal."""

    async def get_object(self, bucket: str, key: str) -> StoredObject:
        """GetObject as the bucket owner; NoSuchKey when missing."""

    async def list_keys(self, bucket: str, prefix: str) -> list[ListedObject]:
        """Every key under ``prefix`` (as the bucket owner), in key order."""


class KeyService(Protocol):
    async def describe_key(self, key_id: str) -> KeyInfo:
        """NotFoundException when there is no such key (or alias)."""

    async def get_key_policy(self, key_arn: str) -> str: ...


class DigestSigner(Protocol):
    async def public_key(self) -> bytes:
        """DER PKCS#1 RSAPublicKey of the current signing key."""

    async def sign(self, message: bytes) -> bytes:
        """RSASSA-PKCS1-v1_5 SHA-256 signature of ``message``."""
