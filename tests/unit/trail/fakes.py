"""In-memory stand-ins for the S3 and KMS services (ports of services/trail/ports.py)."""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from common.errors import make_error
from services.trail.ports import KeyInfo, ListedObject, PutRequest, StoredObject, Unavailable

ACCOUNT = "111122223333"
REGION = "us-east-1"


def bucket_policy(
    bucket: str, *, acl: bool = True, put: bool = True, prefix: str = "", source_arn: str | None = None
) -> str:
    statements = []
    cond = {"StringEquals": {"aws:SourceArn": source_arn}} if source_arn else None
    if acl:
        st: dict[str, Any] = {
            "Sid": "AWSCloudTrailAclCheck",
            "Effect": "Allow",
            "Principal": {"Service": "cloudtrail.amazonaws.com"},
            "Action": "s3:GetBucketAcl",
            "Resource": f"arn:aws:s3:::{bucket}",
        }
        if cond:
            st["Condition"] = cond
        statements.append(st)
    if put:
        path = f"{prefix}/AWSLogs/{ACCOUNT}/*" if prefix else f"AWSLogs/{ACCOUNT}/*"
        st = {
            "Sid": "AWSCloudTrailWrite",
            "Effect": "Allow",
            "Principal": {"Service": "cloudtrail.amazonaws.com"},
            "Action": "s3:PutObject",
            "Resource": f"arn:aws:s3:::{bucket}/{path}",
            "Condition": {
                "StringEquals": {
                    "s3:x-amz-acl": "bucket-owner-full-control",
                    **({"aws:SourceArn": source_arn} if source_arn else {}),
                }
            },
        }
        statements.append(st)
    return json.dumps({"Version": "2012-10-17", "Statement": statements})


@dataclass
class FakeObjectStore:
    buckets: dict[str, dict[str, tuple[bytes, dict[str, str]]]] = field(default_factory=dict)
    policies: dict[str, str] = field(default_factory=dict)
    puts: list[PutRequest] = field(default_factory=list)
    fail_puts: int = 0  # fail the next N puts
    fail_with: str = "AccessDenied"  # AWS code, or "unavailable"
    clock: Callable[[], datetime] | None = None  # what put_object stamps as LastModified
    modified: dict[tuple[str, str], datetime] = field(default_factory=dict)

    def add_bucket(self, name: str, policy: str | None = None) -> None:
        self.buckets.setdefault(name, {})
        if policy:
            self.policies[name] = policy

    async def get_bucket_policy(self, bucket: str) -> str | None:
        if bucket not in self.buckets:
            raise make_error("NoSuchBucket", "The specified bucket does not exist", 404)
        return self.policies.get(bucket)

    async def check_bucket_acl_access(self, bucket: str, *, source_arn: str, source_account: str) -> None:
        if bucket not in self.buckets:
            raise make_error("NoSuchBucket", "The specified bucket does not exist", 404)

    async def put_object(self, request: PutRequest) -> None:
        if self.fail_puts > 0:
            self.fail_puts -= 1
            if self.fail_with == "unavailable":
                raise Unavailable("s3 down")
            raise make_error(self.fail_with, "Access Denied", 403)
        if request.bucket not in self.buckets:
            raise make_error("NoSuchBucket", "The specified bucket does not exist", 404)
        self.puts.append(request)
        self.buckets[request.bucket][request.key] = (request.body, dict(request.metadata or {}))
        if self.clock is not None:
            self.modified[(request.bucket, request.key)] = self.clock().replace(microsecond=0)

    async def get_object(self, bucket: str, key: str) -> StoredObject:
        try:
            body, meta = self.buckets[bucket][key]
        except KeyError:
            raise make_error("NoSuchKey", "The specified key does not exist.", 404) from None
        return StoredObject(body=body, metadata=meta)

    async def list_keys(self, bucket: str, prefix: str) -> list[ListedObject]:
        return [
            ListedObject(key=k, size=len(v[0]), last_modified=self.modified.get((bucket, k)))
            for k, v in sorted(self.buckets.get(bucket, {}).items())
            if k.startswith(prefix)
        ]

    # helpers for tests
    def records(self, bucket: str, key: str) -> list[dict[str, Any]]:
        return json.loads(gzip.decompress(self.buckets[bucket][key][0]))["Records"]

    def keys(self, bucket: str, contains: str = "") -> list[str]:
        return sorted(k for k in self.buckets.get(bucket, {}) if contains in k)


def key_policy_for_cloudtrail(key_arn: str, *, allow: bool = True) -> str:
    statements: list[dict[str, Any]] = [
        {
            "Sid": "Enable IAM User Permissions",
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
            "Action": "kms:*",
            "Resource": "*",
        }
    ]
    if allow:
        statements.append(
            {
                "Sid": "Allow CloudTrail to encrypt logs",
                "Effect": "Allow",
                "Principal": {"Service": "cloudtrail.amazonaws.com"},
                "Action": "kms:GenerateDataKey*",
                "Resource": "*",
                "Condition": {
                    "StringLike": {
                        "kms:EncryptionContext:aws:cloudtrail:arn": f"arn:aws:cloudtrail:*:{ACCOUNT}:trail/*"
                    }
                },
            }
        )
    return json.dumps({"Version": "2012-10-17", "Statement": statements})


@dataclass
class FakeKeyService:
    keys: dict[str, tuple[KeyInfo, str]] = field(default_factory=dict)  # id/alias/arn -> (info, policy)

    def add(
        self,
        key_id: str,
        *,
        allow: bool = True,
        state: str = "Enabled",
        usage: str = "ENCRYPT_DECRYPT",
        alias: str | None = None,
    ) -> str:
        arn = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/{key_id}"
        entry = (
            KeyInfo(
                arn=arn,
                key_state=state,
                key_usage=usage,
                key_spec="SYMMETRIC_DEFAULT" if usage == "ENCRYPT_DECRYPT" else "RSA_2048",
            ),
            key_policy_for_cloudtrail(arn, allow=allow),
        )
        self.keys[key_id] = self.keys[arn] = entry
        if alias:
            self.keys[alias] = entry
        return arn

    async def describe_key(self, key_id: str) -> KeyInfo:
        if key_id not in self.keys:
            raise make_error("NotFoundException", f"Key '{key_id}' does not exist", 400)
        return self.keys[key_id][0]

    async def get_key_policy(self, key_arn: str) -> str:
        return self.keys[key_arn][1]


class FakeSigner:
    """An RSA-2048 key in memory (the real one lives in the HSM behind KMS)."""

    def __init__(self) -> None:
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.signed = 0

    async def public_key(self) -> bytes:
        return self._key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.PKCS1
        )

    async def sign(self, message: bytes) -> bytes:
        self.signed += 1
        return self._key.sign(message, padding.PKCS1v15(), hashes.SHA256())


class Clock:
    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime.now(timezone.utc).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now = self.now + timedelta(seconds=seconds)


def as_mapping(obj: Mapping[str, str]) -> dict[str, str]:
    return dict(obj)
