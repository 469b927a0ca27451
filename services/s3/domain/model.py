"""Records of the object store (plain values; storage and transport convert them)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

#: Content headers S3 stores with an object and returns on GET/HEAD (AWS member names).
CONTENT_MEMBERS = ("ContentType", "ContentEncoding", "ContentDisposition", "ContentLanguage",
                   "CacheControl", "Expires", "WebsiteRedirectLocation")


@dataclass(frozen=True, slots=True)
class Encryption:
    """How an object (or an upload) is encrypted.

    algorithm: "AES256" (SSE-S3) or "aws:kms" (SSE-KMS).
    wrapped_key: SSE-S3: the data key wrapped by the service key; SSE-KMS: the KMS
    CiphertextBlob of the data key (of the bucket key when bucket_key is set).
    context: the KMS encryption context used (SSE-KMS only).
    """

    algorithm: str
    wrapped_key: bytes
    kms_key_arn: str | None = None
    bucket_key: bool = False
    context: dict[str, str] = field(default_factory=dict)
    user_context: bool = False   # the caller supplied x-amz-server-side-encryption-context


@dataclass(frozen=True, slots=True)
class Segment:
    blob: str
    size: int


@dataclass(slots=True)
class ObjectRecord:
    bucket: str
    key: str
    object_id: str
    size: int
    etag: str                      # without quotes
    last_modified: datetime
    owner_account: str
    encryption: Encryption
    segments: list[Segment]
    headers: dict[str, str] = field(default_factory=dict)     # CONTENT_MEMBERS present
    metadata: dict[str, str] = field(default_factory=dict)
    checksums: dict[str, str] = field(default_factory=dict)   # algorithm -> value
    checksum_type: str | None = None                          # FULL_OBJECT | COMPOSITE
    parts_count: int = 0                                      # 0: not multipart
    acl: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    storage_class: str = "STANDARD"


@dataclass(slots=True)
class BucketRecord:
    name: str
    owner_account: str
    region: str
    created: datetime
    ownership: str | None = "BucketOwnerEnforced"   # None: no ownership controls
    public_access_block: str | None = None          # JSON or None (no configuration)
    acl: str | None = None
    policy: str | None = None
    encryption: str | None = None                   # JSON ServerSideEncryptionConfiguration
    tags: dict[str, str] | None = None


@dataclass(slots=True)
class UploadRecord:
    upload_id: str
    bucket: str
    key: str
    initiated: datetime
    owner_account: str
    initiator_arn: str
    encryption: Encryption
    headers: dict[str, str] = field(default_factory=dict)
    metadata: dict[str, str] = field(default_factory=dict)
    checksum_algorithm: str | None = None
    checksum_type: str | None = None
    acl: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    storage_class: str = "STANDARD"


@dataclass(slots=True)
class PartRecord:
    upload_id: str
    part_number: int
    blob: str
    size: int
    etag: str
    md5: str          # hex md5 of the plaintext part ("" when not computed)
    last_modified: datetime
    checksums: dict[str, str] = field(default_factory=dict)
