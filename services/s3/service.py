"""S3 use cases: one method per AWS operation (snake_case of its name).

Methods take the operation's request message (AWS members) and the caller, check access
(services/s3/authz.py), act on the metadata store and blob store, and return the response
message. Object bytes stream through :class:`Upload` (in) and :meth:`S3Service.read_object`
(out); every object is encrypted (domain/chunks.py) under a data key from
services/s3/keys.py. Transport (gRPC, audit records) lives in api.py.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import secrets
import time
import urllib.parse
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import Message

from common.config import Settings
from common.policy import MalformedPolicyError, parse_policy
from services.s3 import authz
from services.s3.domain import access, chunks, conditions, names
from services.s3.domain import checksums as ck
from services.s3.domain import errors as e
from services.s3.domain.model import (
    CONTENT_MEMBERS,
    BucketRecord,
    Encryption,
    ObjectRecord,
    PartRecord,
    Segment,
    UploadRecord,
)
from services.s3.domain.ranges import ByteRange, parse_range
from services.s3.keys import DataKey, KmsPort, ServiceKeyring
from services.s3.store.blobs import BlobStore, BlobWriter
from services.s3.store.meta import ConditionFailed, MetaStore
from strongroom.common.v1 import caller_pb2
from strongroom.s3.v1 import s3_pb2 as pb

Caller = caller_pb2.Caller

MAX_PUT_SIZE = 5 * 1024 ** 3
MIN_PART_SIZE = 5 * 1024 * 1024
MAX_PARTS = 10000
READ_MESSAGE = 256 * 1024
BUCKET_KEY_TTL = 300.0
UNSUPPORTED_SSE = "The encryption method specified is not supported"
KMS_HEADER_REQUIRES_KMS = ("Server Side Encryption with AWS KMS managed key requires HTTP header "
                           "x-amz-server-side-encryption : aws:kms")


def opt(msg: Message, name: str) -> Any:
    """Value of an optional field, or None when absent."""
    return getattr(msg, name) if msg.HasField(name) else None


def utc(ts: Any) -> datetime:
    return ts.ToDatetime(tzinfo=timezone.utc)


def _set_ts(field_msg: Any, when: datetime) -> None:
    field_msg.FromDatetime(when.astimezone(timezone.utc).replace(microsecond=(when.microsecond // 1000) * 1000))


def _now() -> datetime:
    now = datetime.now(timezone.utc)
    return now.replace(microsecond=(now.microsecond // 1000) * 1000)


def quote_etag(etag: str) -> str:
    return f'"{etag}"'


@dataclass(slots=True)
class ResolvedSse:
    algorithm: str                      # "AES256" | "aws:kms"
    kms_key_id: str | None = None       # as requested (id, ARN, alias) or None for aws/s3
    bucket_key: bool = False
    user_context: dict[str, str] | None = None


@dataclass(slots=True)
class _BucketKey:
    key: DataKey
    expires: float


@dataclass(slots=True)
class Upload:
    """State of one streaming write (PutObject / UploadPart): hashes, encryptor, blob."""

    writer: BlobWriter
    encryptor: chunks.SegmentEncryptor
    md5: Any
    hashers: dict[str, ck.Hasher] = field(default_factory=dict)
    size: int = 0
    limit: int = MAX_PUT_SIZE

    def feed(self, data: bytes) -> None:
        if not data:
            return
        self.size += len(data)
        if self.size > self.limit:
            raise e.EntityTooLarge("Your proposed upload exceeds the maximum allowed object size.")
        if self.md5 is not None:
            self.md5.update(data)
        for h in self.hashers.values():
            h.update(data)
        for piece in self.encryptor.update(data):
            self.writer.write(piece)

    def close_segment(self) -> None:
        self.writer.write(self.encryptor.finish())


class S3Service:
    def __init__(self, settings: Settings, meta: MetaStore, blobs: BlobStore, kms: KmsPort,
                 keyring: ServiceKeyring, clock: Callable[[], datetime] = _now) -> None:
        self.settings = settings
        self.meta = meta
        self.blobs = blobs
        self.kms = kms
        self.keyring = keyring
        self.clock = clock
        self.region = settings.region
        self._bucket_keys: dict[tuple[str, str, str], _BucketKey] = {}
        self._bucket_key_plain: dict[tuple[bytes, str], _BucketKey] = {}

    # ================================================================== helpers

    async def _bucket(self, name: str) -> BucketRecord:
        if not name:
            raise e.no_such_bucket()
        b = await self.meta.get_bucket(name)
        if b is None:
            raise e.no_such_bucket()
        return b

    def _ctx(self, caller: Caller, req: Message) -> dict[str, object]:
        return authz.base_context(caller, getattr(req, "source_arn", ""), getattr(req, "source_account", ""))

    def _auth_bucket(self, caller: Caller, bucket: BucketRecord, action: str, req: Message,
                     acl_permission: str | None = None, extra: dict[str, object] | None = None) -> None:
        ctx = self._ctx(caller, req)
        if extra:
            ctx.update(extra)
        authz.authorize(caller, bucket, action, names.bucket_arn(bucket.name), ctx,
                        acl_permission=acl_permission)

    def _auth_object(self, caller: Caller, bucket: BucketRecord, key: str, action: str, req: Message,
                     acl_permission: str | None = None, obj: ObjectRecord | None = None,
                     extra: dict[str, object] | None = None, use_bucket_acl: bool = False) -> None:
        ctx = self._ctx(caller, req)
        if extra:
            ctx.update(extra)
        acl = None
        if obj is not None and not use_bucket_acl:
            acl = access.Acl.from_json(obj.acl, access.canonical_id(obj.owner_account))
        authz.authorize(caller, bucket, action, names.object_arn(bucket.name, key), ctx,
                        acl_permission=acl_permission, acl=acl)

    def _can(self, caller: Caller, bucket: BucketRecord, action: str, req: Message) -> bool:
        return authz.authorize(caller, bucket, action, names.bucket_arn(bucket.name), self._ctx(caller, req),
                               acl_permission="READ", raise_denied=False)

    @staticmethod
    def _bpa(bucket: BucketRecord) -> access.PublicAccessBlock:
        return access.PublicAccessBlock.from_json(bucket.public_access_block) or access.PublicAccessBlock()

    @staticmethod
    def _anonymous(caller: Caller) -> bool:
        return caller.principal_type in ("Anonymous", "")

    def _owner(self, account: str) -> pb.Owner:
        return pb.Owner(id=access.canonical_id(account))

    async def _unlink_later(self, blobs: list[str] | None) -> None:
        if blobs:
            self.blobs.delete(blobs)

    # ---- ACL from request members ----------------------------------------------------

    def _request_acl(self, req: Message, owner_account: str, bucket: BucketRecord | None,
                     for_bucket: bool) -> access.Acl | None:
        """The ACL a request sets through x-amz-acl / x-amz-grant-* (None: none given)."""
        owner_id = access.canonical_id(owner_account)
        canned = opt(req, "acl")
        grant_headers = {m: getattr(req, access_field(m)) for m in access.GRANT_HEADERS
                         if _has(req, access_field(m))}
        if canned and grant_headers:
            raise e.InvalidRequest("Specifying both Canned ACLs and Header Grants is not allowed")
        if canned:
            bucket_owner = access.canonical_id(bucket.owner_account) if bucket else None
            try:
                return access.canned_acl(canned, owner_id, bucket_owner_id=bucket_owner, for_bucket=for_bucket)
            except e.InvalidArgument:
                raise e.InvalidArgument("") from None
        if grant_headers:
            return access.Acl(owner_id, tuple(access.grants_from_headers(grant_headers)))
        return None

    def _check_acl_allowed(self, bucket: BucketRecord, acl: access.Acl | None, canned: str | None) -> None:
        if acl is None:
            return
        if bucket.ownership == "BucketOwnerEnforced":
            # Only the owner's full control (private / bucket-owner-full-control) is accepted.
            if canned in ("bucket-owner-full-control", "private") or acl.only_owner_full_control():
                return
            raise e.AccessControlListNotSupported("The bucket does not allow ACLs")
        if acl.is_public() and self._bpa(bucket).block_public_acls:
            raise e.access_denied()

    # ---- encryption ------------------------------------------------------------------

    def _resolve_sse(self, req: Message, bucket: BucketRecord) -> ResolvedSse:
        alg = opt(req, "server_side_encryption")
        key_id = opt(req, "ssekms_key_id")
        bucket_key = opt(req, "bucket_key_enabled")
        if _has(req, "sse_customer_algorithm") or _has(req, "sse_customer_key"):
            raise e.NotImplementedError_("A header you provided implies functionality that is not implemented")
        user_ctx = None
        raw_ctx = opt(req, "ssekms_encryption_context")
        if raw_ctx:
            try:
                user_ctx = json.loads(base64.b64decode(raw_ctx, validate=True))
                if not isinstance(user_ctx, dict) or not all(
                        isinstance(k, str) and isinstance(v, str) for k, v in user_ctx.items()):
                    raise ValueError
            except (ValueError, binascii.Error):
                raise e.InvalidArgument("The header 'x-amz-server-side-encryption-context' shall be "
                                        "Base64-encoded UTF-8 string holding JSON which represents a "
                                        "string-string map") from None
        if alg is not None and alg not in ("AES256", "aws:kms", "aws:kms:dsse"):
            raise e.InvalidArgument(UNSUPPORTED_SSE)
        if alg == "aws:kms:dsse":
            raise e.NotImplementedError_("A header you provided implies functionality that is not implemented")
        if alg is None:
            rule = _default_rule(bucket)
            alg = rule.get("SSEAlgorithm", "AES256")
            if alg == "aws:kms:dsse":
                alg = "aws:kms"
            if key_id is not None or user_ctx is not None:
                raise e.InvalidArgument(KMS_HEADER_REQUIRES_KMS)
            if alg == "aws:kms":
                key_id = rule.get("KMSMasterKeyID") or None
                if bucket_key is None:
                    bucket_key = bool(rule.get("BucketKeyEnabled"))
        elif alg == "AES256":
            if key_id is not None or user_ctx is not None:
                raise e.InvalidArgument(KMS_HEADER_REQUIRES_KMS)
        elif alg == "aws:kms" and bucket_key is None:
            rule = _default_rule(bucket)
            if rule.get("SSEAlgorithm") == "aws:kms":
                bucket_key = bool(rule.get("BucketKeyEnabled"))
        if alg == "AES256":
            return ResolvedSse("AES256")
        return ResolvedSse("aws:kms", key_id or None, bool(bucket_key), user_ctx)

    async def _kms_key_id(self, sse: ResolvedSse, caller: Caller) -> str:
        if sse.kms_key_id and sse.kms_key_id not in ("alias/aws/s3",) and not sse.kms_key_id.endswith(":alias/aws/s3"):
            return sse.kms_key_id
        return await self.kms.aws_managed_key_arn(caller)

    async def _new_data_key(self, sse: ResolvedSse, bucket: str, key: str,
                            caller: Caller) -> tuple[bytes, Encryption]:
        arn = names.object_arn(bucket, key)
        if sse.algorithm == "AES256":
            await self.keyring.ready()
            dk = os.urandom(32)
            return dk, Encryption("AES256", self.keyring.wrap(dk, arn))
        key_id = await self._kms_key_id(sse, caller)
        if sse.bucket_key:
            ctx = {**(sse.user_context or {}), "aws:s3:arn": names.bucket_arn(bucket)}
            cache_key = (bucket, key_id, json.dumps(ctx, sort_keys=True) + "|" + (caller.principal_arn or caller.account_id))
            hit = self._bucket_keys.get(cache_key)
            if hit is None or hit.expires < time.monotonic():
                self._prune_bucket_keys()
                dkey = await self.kms.generate_data_key(key_id, ctx, caller)
                hit = _BucketKey(dkey, time.monotonic() + BUCKET_KEY_TTL)
                self._bucket_keys[cache_key] = hit
            return hit.key.plaintext, Encryption("aws:kms", hit.key.ciphertext, hit.key.key_arn, True, ctx,
                                                 sse.user_context is not None)
        ctx = {**(sse.user_context or {})}
        ctx.setdefault("aws:s3:arn", arn)
        dkey = await self.kms.generate_data_key(key_id, ctx, caller)
        return dkey.plaintext, Encryption("aws:kms", dkey.ciphertext, dkey.key_arn, False, ctx,
                                          sse.user_context is not None)

    async def _data_key(self, enc: Encryption, bucket: str, key: str, caller: Caller) -> bytes:
        if enc.algorithm == "AES256":
            await self.keyring.ready()
            return self.keyring.unwrap(enc.wrapped_key, names.object_arn(bucket, key))
        assert enc.kms_key_arn is not None
        if enc.bucket_key:
            ck_ = (hashlib.sha256(enc.wrapped_key).digest(), caller.principal_arn or caller.account_id)
            hit = self._bucket_key_plain.get(ck_)
            if hit is not None and hit.expires >= time.monotonic():
                return hit.key.plaintext
            plain = await self.kms.decrypt(enc.kms_key_arn, enc.wrapped_key, enc.context, caller)
            self._prune_bucket_keys()
            self._bucket_key_plain[ck_] = _BucketKey(DataKey(plain, enc.wrapped_key, enc.kms_key_arn),
                                                     time.monotonic() + BUCKET_KEY_TTL)
            return plain
        return await self.kms.decrypt(enc.kms_key_arn, enc.wrapped_key, enc.context, caller)

    def _prune_bucket_keys(self) -> None:
        """Drop expired bucket keys (plaintext keys live at most BUCKET_KEY_TTL seconds)."""
        now = time.monotonic()
        for cache in (self._bucket_keys, self._bucket_key_plain):
            for k in [k for k, v in cache.items() if v.expires < now]:
                del cache[k]

    @staticmethod
    def _sse_response(resp: Message, enc: Encryption) -> None:
        resp.server_side_encryption = enc.algorithm  # type: ignore[attr-defined]
        if enc.algorithm == "aws:kms":
            resp.ssekms_key_id = enc.kms_key_arn or ""  # type: ignore[attr-defined]
            if enc.bucket_key:
                resp.bucket_key_enabled = True  # type: ignore[attr-defined]
            if enc.user_context and "ssekms_encryption_context" in resp.DESCRIPTOR.fields_by_name:
                resp.ssekms_encryption_context = base64.b64encode(  # type: ignore[attr-defined]
                    json.dumps(enc.context).encode()).decode()

    def _check_sigv4_for_kms(self, caller: Caller, enc: Encryption) -> None:
        if enc.algorithm == "aws:kms" and (self._anonymous(caller) or caller.signature_version == "SigV2"):
            raise e.InvalidArgument(e.SIGV4_REQUIRED_MESSAGE)

    # ---- checksums -------------------------------------------------------------------

    @staticmethod
    def _requested_checksums(req: Message) -> tuple[str | None, dict[str, str]]:
        """(ChecksumAlgorithm, {algorithm: value given})."""
        algo = opt(req, "checksum_algorithm")
        if algo is not None:
            algo = algo.upper()
            if algo not in ck.ALGORITHMS:
                raise e.InvalidRequest("Checksum algorithm provided is unsupported. Please try again with any "
                                       "of the valid types: [CRC32, CRC32C, CRC64NVME, SHA1, SHA256]")
        given = {}
        for name in ck.ALGORITHMS:
            fname = f"checksum_{name.lower()}"
            if fname in req.DESCRIPTOR.fields_by_name and req.HasField(fname):
                value = getattr(req, fname)
                if not ck.valid_value(name, value):
                    raise e.InvalidRequest(f"Value for x-amz-checksum-{name.lower()} header is invalid.")
                given[name] = value
        if len(given) > 1:
            raise e.InvalidRequest("Expecting a single x-amz-checksum- header. Multiple checksum Types "
                                   "are not allowed.")
        return algo, given

    @staticmethod
    def _content_md5(req: Message) -> bytes | None:
        value = opt(req, "content_md5")
        if value is None:
            return None
        try:
            raw = base64.b64decode(value, validate=True)
        except (ValueError, binascii.Error):
            raw = b""
        if len(raw) != 16:
            raise e.InvalidDigest("The Content-MD5 you specified was invalid.")
        return raw

    def start_upload(self, data_key: bytes, algorithms: list[str], want_md5: bool,
                     limit: int = MAX_PUT_SIZE) -> Upload:
        writer = self.blobs.writer()
        enc = chunks.SegmentEncryptor(data_key)
        writer.write(enc.start())
        return Upload(writer, enc, hashlib.md5() if want_md5 else None,  # noqa: S324 - S3 ETag/Content-MD5
                      {a: ck.new_hasher(a) for a in algorithms}, limit=limit)

    @staticmethod
    def _verify_upload(up: Upload, md5_expected: bytes | None, given: dict[str, str],
                       content_length: int | None) -> dict[str, str]:
        if content_length is not None and content_length != up.size:
            raise e.IncompleteBody("You did not provide the number of bytes specified by the Content-Length "
                                   "HTTP header.")
        if md5_expected is not None and up.md5 is not None and up.md5.digest() != md5_expected:
            raise e.BadDigest("The Content-MD5 you specified did not match what we received.")
        computed = {a: ck.b64(h.digest()) for a, h in up.hashers.items()}
        for algo, value in given.items():
            if computed.get(algo) != value:
                raise e.BadDigest(f"The {algo} you specified did not match the calculated checksum.")
        return computed

    # ================================================================== buckets

    async def create_bucket(self, req: pb.CreateBucketRequest, caller: Caller) -> pb.CreateBucketResponse:
        name = req.bucket
        names.check_bucket_name(name)
        if self._anonymous(caller):
            raise e.access_denied()
        constraint = req.create_bucket_configuration.location_constraint if req.HasField(
            "create_bucket_configuration") and req.create_bucket_configuration.HasField("location_constraint") else None
        if self.region == "us-east-1":
            if constraint == "us-east-1":
                raise e.InvalidLocationConstraint("The specified location-constraint is not valid")
            if constraint not in (None, ""):
                raise e.IllegalLocationConstraintException(
                    f"The {constraint} location constraint is incompatible for the region specific endpoint "
                    "this request was sent to.")
        elif constraint != self.region:
            shown = constraint if constraint else "unspecified"
            raise e.IllegalLocationConstraintException(
                f"The {shown} location constraint is incompatible for the region specific endpoint this "
                "request was sent to.")
        decision = authz.policy_decision(caller, "s3:CreateBucket", names.bucket_arn(name), self._ctx(caller, req), None)
        if not decision.allowed:
            raise e.access_denied()
        ownership = opt(req, "object_ownership") or "BucketOwnerEnforced"
        if ownership not in access.OWNERSHIP_VALUES:
            raise e.InvalidArgument("Invalid x-amz-object-ownership header")
        acl = self._request_acl(req, caller.account_id, None, for_bucket=True)
        if acl is not None and ownership == "BucketOwnerEnforced" and not acl.only_owner_full_control():
            raise error_class_invalid_bucket_acl()
        record = BucketRecord(name=name, owner_account=caller.account_id, region=self.region, created=self.clock(),
                              ownership=ownership,
                              public_access_block=access.PublicAccessBlock.all_on().to_json(),
                              acl=acl.to_json() if acl else None)
        existing = await self.meta.create_bucket(record)
        if existing is not None:
            if existing.owner_account == caller.account_id:
                raise e.BucketAlreadyOwnedByYou("Your previous request to create the named bucket succeeded "
                                                "and you already own it.")
            raise e.BucketAlreadyExists("The requested bucket name is not available. The bucket namespace is "
                                        "shared by all users of the system. Please select a different name "
                                        "and try again.")
        return pb.CreateBucketResponse(location=f"/{name}")

    async def head_bucket(self, req: pb.HeadBucketRequest, caller: Caller) -> pb.HeadBucketResponse:
        b = await self._bucket(req.bucket)
        self._check_expected_owner(req, b)
        self._auth_bucket(caller, b, "s3:ListBucket", req, "READ")
        return pb.HeadBucketResponse(bucket_region=b.region, access_point_alias=False)

    def _check_expected_owner(self, req: Message, b: BucketRecord) -> None:
        expected = opt(req, "expected_bucket_owner") if "expected_bucket_owner" in req.DESCRIPTOR.fields_by_name else None
        if expected and expected != b.owner_account:
            raise e.access_denied()

    async def delete_bucket(self, req: pb.DeleteBucketRequest, caller: Caller) -> pb.DeleteBucketResponse:
        b = await self._bucket(req.bucket)
        self._check_expected_owner(req, b)
        self._auth_bucket(caller, b, "s3:DeleteBucket", req)
        status, blobs = await self.meta.delete_bucket(b.name)
        if status == "missing":
            raise e.no_such_bucket()
        if status == "not_empty":
            raise e.BucketNotEmpty("The bucket you tried to delete is not empty")
        await self._unlink_later(blobs)
        return pb.DeleteBucketResponse()

    async def list_buckets(self, req: pb.ListBucketsRequest, caller: Caller) -> pb.ListBucketsResponse:
        if self._anonymous(caller):
            raise e.access_denied()
        decision = authz.policy_decision(caller, "s3:ListAllMyBuckets", "arn:aws:s3:::*", self._ctx(caller, req), None)
        if not decision.allowed:
            raise e.access_denied()
        buckets = await self.meta.list_buckets(caller.account_id)
        prefix = opt(req, "prefix") or ""
        token = opt(req, "continuation_token") or ""
        limit = opt(req, "max_buckets")
        if limit is not None and not 1 <= limit <= 10000:
            raise e.InvalidArgument("Argument maxBuckets must be an integer between 1 and 10000.")
        chosen = [b for b in buckets if b.name.startswith(prefix) and b.name > token]
        resp = pb.ListBucketsResponse(owner=self._owner(caller.account_id))
        if prefix:
            resp.prefix = prefix
        if limit is not None and len(chosen) > limit:
            chosen = chosen[:limit]
            resp.continuation_token = chosen[-1].name
        for b in chosen:
            item = resp.buckets.add(name=b.name, bucket_region=b.region)
            _set_ts(item.creation_date, b.created)
        return resp

    async def get_bucket_location(self, req: pb.GetBucketLocationRequest, caller: Caller) -> pb.GetBucketLocationResponse:
        b = await self._bucket(req.bucket)
        self._auth_bucket(caller, b, "s3:GetBucketLocation", req)
        resp = pb.GetBucketLocationResponse()
        if b.region != "us-east-1":
            resp.location_constraint = b.region
        return resp

    async def get_bucket_versioning(self, req: pb.GetBucketVersioningRequest, caller: Caller) -> pb.GetBucketVersioningResponse:
        b = await self._bucket(req.bucket)
        self._auth_bucket(caller, b, "s3:GetBucketVersioning", req)
        return pb.GetBucketVersioningResponse()

    # ---- default encryption ----------------------------------------------------------

    async def put_bucket_encryption(self, req: pb.PutBucketEncryptionRequest, caller: Caller) -> pb.PutBucketEncryptionResponse:
        b = await self._bucket(req.bucket)
        self._auth_bucket(caller, b, "s3:PutEncryptionConfiguration", req)
        rules = list(req.server_side_encryption_configuration.rules)
        if len(rules) != 1 or not rules[0].HasField("apply_server_side_encryption_by_default"):
            raise e.malformed_xml()
        default = rules[0].apply_server_side_encryption_by_default
        alg = opt(default, "sse_algorithm")
        if alg not in ("AES256", "aws:kms", "aws:kms:dsse"):
            raise e.malformed_xml()
        key_id = opt(default, "kms_master_key_id")
        if key_id and alg == "AES256":
            raise e.InvalidArgument("a KMSMasterKeyID is not applicable if the default sse algorithm is not aws:kms "
                                    "or aws:kms:dsse")
        rule: dict[str, Any] = {"SSEAlgorithm": alg}
        if key_id:
            rule["KMSMasterKeyID"] = key_id
        rule["BucketKeyEnabled"] = bool(opt(rules[0], "bucket_key_enabled"))
        await self.meta.update_bucket(b.name, encryption=json.dumps(rule))
        return pb.PutBucketEncryptionResponse()

    async def get_bucket_encryption(self, req: pb.GetBucketEncryptionRequest, caller: Caller) -> pb.GetBucketEncryptionResponse:
        b = await self._bucket(req.bucket)
        self._auth_bucket(caller, b, "s3:GetEncryptionConfiguration", req)
        rule = _default_rule(b)
        resp = pb.GetBucketEncryptionResponse()
        r = resp.server_side_encryption_configuration.rules.add()
        r.apply_server_side_encryption_by_default.sse_algorithm = rule["SSEAlgorithm"]
        if rule.get("KMSMasterKeyID"):
            r.apply_server_side_encryption_by_default.kms_master_key_id = rule["KMSMasterKeyID"]
        r.bucket_key_enabled = bool(rule.get("BucketKeyEnabled"))
        return resp

    async def delete_bucket_encryption(self, req: pb.DeleteBucketEncryptionRequest, caller: Caller) -> pb.DeleteBucketEncryptionResponse:
        b = await self._bucket(req.bucket)
        self._auth_bucket(caller, b, "s3:PutEncryptionConfiguration", req)
        await self.meta.update_bucket(b.name, encryption=None)
        return pb.DeleteBucketEncryptionResponse()

    # ---- public access block ---------------------------------------------------------

    async def put_public_access_block(self, req: pb.PutPublicAccessBlockRequest, caller: Caller) -> pb.PutPublicAccessBlockResponse:
        b = await self._bucket(req.bucket)
        self._auth_bucket(caller, b, "s3:PutBucketPublicAccessBlock", req)
        members = json_format.MessageToDict(req.public_access_block_configuration)
        await self.meta.update_bucket(b.name, public_access_block=access.PublicAccessBlock.from_members(members).to_json())
        return pb.PutPublicAccessBlockResponse()

    async def get_public_access_block(self, req: pb.GetPublicAccessBlockRequest, caller: Caller) -> pb.GetPublicAccessBlockResponse:
        b = await self._bucket(req.bucket)
        self._auth_bucket(caller, b, "s3:GetBucketPublicAccessBlock", req)
        bpa = access.PublicAccessBlock.from_json(b.public_access_block)
        if bpa is None:
            raise e.NoSuchPublicAccessBlockConfiguration("The public access block configuration was not found")
        resp = pb.GetPublicAccessBlockResponse()
        json_format.ParseDict(bpa.to_members(), resp.public_access_block_configuration)
        return resp

    async def delete_public_access_block(self, req: pb.DeletePublicAccessBlockRequest, caller: Caller) -> pb.DeletePublicAccessBlockResponse:
        b = await self._bucket(req.bucket)
        self._auth_bucket(caller, b, "s3:PutBucketPublicAccessBlock", req)
        await self.meta.update_bucket(b.name, public_access_block=None)
        return pb.DeletePublicAccessBlockResponse()

    # ---- ownership controls ----------------------------------------------------------

    async def put_bucket_ownership_controls(self, req: pb.PutBucketOwnershipControlsRequest, caller: Caller) -> pb.PutBucketOwnershipControlsResponse:
        b = await self._bucket(req.bucket)
        self._auth_bucket(caller, b, "s3:PutBucketOwnershipControls", req)
        rules = list(req.ownership_controls.rules)
        if len(rules) != 1 or rules[0].object_ownership not in access.OWNERSHIP_VALUES:
            raise e.malformed_xml()
        value = rules[0].object_ownership
        if value == "BucketOwnerEnforced":
            acl = access.Acl.from_json(b.acl, access.canonical_id(b.owner_account))
            if not acl.only_owner_full_control():
                raise error_class_invalid_bucket_acl()
        await self.meta.update_bucket(b.name, ownership=value)
        return pb.PutBucketOwnershipControlsResponse()

    async def get_bucket_ownership_controls(self, req: pb.GetBucketOwnershipControlsRequest, caller: Caller) -> pb.GetBucketOwnershipControlsResponse:
        b = await self._bucket(req.bucket)
        self._auth_bucket(caller, b, "s3:GetBucketOwnershipControls", req)
        if b.ownership is None:
            raise e.OwnershipControlsNotFoundError("The bucket ownership controls were not found")
        resp = pb.GetBucketOwnershipControlsResponse()
        resp.ownership_controls.rules.add(object_ownership=b.ownership)
        return resp

    async def delete_bucket_ownership_controls(self, req: pb.DeleteBucketOwnershipControlsRequest, caller: Caller) -> pb.DeleteBucketOwnershipControlsResponse:
        b = await self._bucket(req.bucket)
        self._auth_bucket(caller, b, "s3:PutBucketOwnershipControls", req)
        await self.meta.update_bucket(b.name, ownership=None)
        return pb.DeleteBucketOwnershipControlsResponse()

    # ---- ACLs ------------------------------------------------------------------------

    def _acl_from_request(self, req: Message, owner_account: str, bucket: BucketRecord,
                          for_bucket: bool) -> tuple[access.Acl, str | None]:
        acl = self._request_acl(req, owner_account, bucket, for_bucket)
        canned = opt(req, "acl")
        if req.HasField("access_control_policy"):
            if acl is not None:
                raise e.UnexpectedContent("This request does not support content")
            doc = json_format.MessageToDict(req.access_control_policy)  # type: ignore[attr-defined]
            acl = access.acl_from_policy_doc(doc, access.canonical_id(owner_account))
        if acl is None:
            raise e.MissingSecurityHeader("Your request was missing a required header")
        return acl, canned

    async def put_bucket_acl(self, req: pb.PutBucketAclRequest, caller: Caller) -> pb.PutBucketAclResponse:
        b = await self._bucket(req.bucket)
        self._auth_bucket(caller, b, "s3:PutBucketAcl", req, "WRITE_ACP")
        acl, canned = self._acl_from_request(req, b.owner_account, b, for_bucket=True)
        self._check_acl_allowed(b, acl, canned)
        await self.meta.update_bucket(b.name, acl=acl.to_json())
        return pb.PutBucketAclResponse()

    async def get_bucket_acl(self, req: pb.GetBucketAclRequest, caller: Caller) -> pb.GetBucketAclResponse:
        b = await self._bucket(req.bucket)
        self._auth_bucket(caller, b, "s3:GetBucketAcl", req, "READ_ACP")
        acl = access.Acl.from_json(b.acl, access.canonical_id(b.owner_account))
        resp = pb.GetBucketAclResponse()
        json_format.ParseDict(access.acl_to_members(acl), resp)
        return resp

    # ---- bucket policy ---------------------------------------------------------------

    async def put_bucket_policy(self, req: pb.PutBucketPolicyRequest, caller: Caller) -> pb.PutBucketPolicyResponse:
        b = await self._bucket(req.bucket)
        self._auth_bucket(caller, b, "s3:PutBucketPolicy", req)
        text = req.policy
        try:
            policy = parse_policy(text, policy_type="resource")
        except MalformedPolicyError as exc:
            raise e.MalformedPolicy(exc.message) from None
        prefix = names.bucket_arn(b.name)
        for st in policy.statements:
            for res in (*(st.resource or ()), *(st.not_resource or ())):
                if res != "*" and not (res == prefix or res.startswith(prefix + "/")
                                       or (res.startswith(prefix) and "*" in res[len(prefix):len(prefix) + 1])):
                    raise e.MalformedPolicy("Policy has invalid resource")
        if self._bpa(b).block_public_policy and access.policy_is_public(text):
            raise e.access_denied()
        await self.meta.update_bucket(b.name, policy=text)
        return pb.PutBucketPolicyResponse()

    async def get_bucket_policy(self, req: pb.GetBucketPolicyRequest, caller: Caller) -> pb.GetBucketPolicyResponse:
        b = await self._bucket(req.bucket)
        self._auth_bucket(caller, b, "s3:GetBucketPolicy", req)
        if not b.policy:
            raise e.NoSuchBucketPolicy("The bucket policy does not exist")
        return pb.GetBucketPolicyResponse(policy=b.policy)

    async def delete_bucket_policy(self, req: pb.DeleteBucketPolicyRequest, caller: Caller) -> pb.DeleteBucketPolicyResponse:
        b = await self._bucket(req.bucket)
        self._auth_bucket(caller, b, "s3:DeleteBucketPolicy", req)
        await self.meta.update_bucket(b.name, policy=None)
        return pb.DeleteBucketPolicyResponse()

    async def get_bucket_policy_status(self, req: pb.GetBucketPolicyStatusRequest, caller: Caller) -> pb.GetBucketPolicyStatusResponse:
        b = await self._bucket(req.bucket)
        self._auth_bucket(caller, b, "s3:GetBucketPolicyStatus", req)
        if not b.policy:
            raise e.NoSuchBucketPolicy("The bucket policy does not exist")
        resp = pb.GetBucketPolicyStatusResponse()
        resp.policy_status.is_public = access.policy_is_public(b.policy)
        return resp

    # ---- bucket tagging --------------------------------------------------------------

    async def put_bucket_tagging(self, req: pb.PutBucketTaggingRequest, caller: Caller) -> pb.PutBucketTaggingResponse:
        b = await self._bucket(req.bucket)
        self._auth_bucket(caller, b, "s3:PutBucketTagging", req)
        tags = _validate_tags([(t.key, t.value) for t in req.tagging.tag_set], limit=50)
        await self.meta.update_bucket(b.name, tags=tags)
        return pb.PutBucketTaggingResponse()

    async def get_bucket_tagging(self, req: pb.GetBucketTaggingRequest, caller: Caller) -> pb.GetBucketTaggingResponse:
        b = await self._bucket(req.bucket)
        self._auth_bucket(caller, b, "s3:GetBucketTagging", req)
        if not b.tags:
            raise e.NoSuchTagSet("The TagSet does not exist")
        resp = pb.GetBucketTaggingResponse()
        for k, v in b.tags.items():
            resp.tag_set.add(key=k, value=v)
        return resp

    async def delete_bucket_tagging(self, req: pb.DeleteBucketTaggingRequest, caller: Caller) -> pb.DeleteBucketTaggingResponse:
        b = await self._bucket(req.bucket)
        self._auth_bucket(caller, b, "s3:PutBucketTagging", req)
        await self.meta.update_bucket(b.name, tags=None)
        return pb.DeleteBucketTaggingResponse()

    # ================================================================== objects

    async def _object_or_error(self, b: BucketRecord, key: str, caller: Caller, req: Message) -> ObjectRecord:
        obj = await self.meta.get_object(b.name, key)
        if obj is None:
            # Without s3:ListBucket the caller may not learn whether a key exists.
            if self._can(caller, b, "s3:ListBucket", req):
                raise e.no_such_key()
            raise e.access_denied()
        return obj

    async def begin_put_object(self, req: pb.PutObjectRequest, caller: Caller) -> tuple[Upload, dict[str, Any]]:
        """Checks and data key for a PutObject, before any body byte is read."""
        names.check_key(req.key)
        b = await self._bucket(req.bucket)
        self._check_expected_owner(req, b)
        sse = self._resolve_sse(req, b)
        extra: dict[str, object] = {"s3:x-amz-server-side-encryption": sse.algorithm}
        if opt(req, "acl"):
            extra["s3:x-amz-acl"] = req.acl
        if sse.kms_key_id:
            extra["s3:x-amz-server-side-encryption-aws-kms-key-id"] = sse.kms_key_id
        self._auth_object(caller, b, req.key, "s3:PutObject", req, "WRITE", extra=extra, use_bucket_acl=True)
        owner = b.owner_account if b.ownership in ("BucketOwnerEnforced", "BucketOwnerPreferred") else (
            caller.account_id or b.owner_account)
        acl = self._request_acl(req, owner, b, for_bucket=False)
        self._check_acl_allowed(b, acl, opt(req, "acl"))
        tags = _parse_tagging_header(opt(req, "tagging"))
        algo, given = self._requested_checksums(req)
        cl = opt(req, "content_length")
        if cl is not None and cl > MAX_PUT_SIZE:
            raise e.EntityTooLarge("Your proposed upload exceeds the maximum allowed object size.")
        if_none_match, if_match = opt(req, "if_none_match"), opt(req, "if_match")
        if if_none_match is not None or if_match is not None:
            existing = await self.meta.get_object(b.name, req.key, with_segments=False)
            conditions.check_write(existing_etag=existing.etag if existing else None,
                                   if_match=if_match, if_none_match=if_none_match)
        md5 = self._content_md5(req)
        data_key, enc = await self._new_data_key(sse, b.name, req.key, caller)
        algorithms = sorted({*(given.keys()), *([algo] if algo else [])}) or ["CRC64NVME"]
        up = self.start_upload(data_key, algorithms, want_md5=(enc.algorithm == "AES256" or md5 is not None))
        del data_key
        state = {"bucket": b, "enc": enc, "acl": acl, "tags": tags, "md5": md5, "algo": algo,
                 "given": given, "owner": owner}
        return up, state

    async def finish_put_object(self, req: pb.PutObjectRequest, caller: Caller, up: Upload,
                                state: dict[str, Any], trailer: dict[str, str]) -> pb.PutObjectResponse:
        up.close_segment()
        given = dict(state["given"])
        for algo, value in trailer.items():
            if not ck.valid_value(algo, value):
                raise e.InvalidRequest(f"Value for x-amz-checksum-{algo.lower()} trailing header is invalid.")
            given[algo] = value
            if algo not in up.hashers:
                raise e.InvalidRequest("The checksum in the trailer was not announced.")
        computed = self._verify_upload(up, state["md5"], given, opt(req, "content_length"))
        enc: Encryption = state["enc"]
        etag = up.md5.hexdigest() if enc.algorithm == "AES256" and up.md5 is not None else uuid.uuid4().hex
        blob = await up.writer.commit()
        b: BucketRecord = state["bucket"]
        headers = {m: v for m in CONTENT_MEMBERS if (v := _content_value(req, m)) is not None}
        obj = ObjectRecord(
            bucket=b.name, key=req.key, object_id=uuid.uuid4().hex, size=up.size, etag=etag,
            last_modified=self.clock(), owner_account=state["owner"], encryption=enc,
            segments=[Segment(blob, up.size)], headers=headers, metadata=dict(req.metadata),
            checksums=computed, checksum_type="FULL_OBJECT",
            acl=state["acl"].to_json() if state["acl"] else None, tags=state["tags"],
            storage_class=opt(req, "storage_class") or "STANDARD")
        if_none_match, if_match = opt(req, "if_none_match"), opt(req, "if_match")
        old = await self.meta.put_object(obj, expect_etag=(if_match.strip('"') if if_match and if_match != "*" else None),
                                         expect_absent=if_none_match is not None)
        if old is None:
            self.blobs.delete([blob])
            if await self.meta.get_bucket(b.name) is None:
                raise e.no_such_bucket()
            raise e.PreconditionFailed("At least one of the pre-conditions you specified did not hold")
        await self._unlink_later(old)
        resp = pb.PutObjectResponse(e_tag=quote_etag(etag))
        self._sse_response(resp, enc)
        for algo, value in computed.items():
            if algo in given or algo == state["algo"]:
                setattr(resp, f"checksum_{algo.lower()}", value)
                resp.checksum_type = "FULL_OBJECT"
        resp.size = up.size
        return resp

    # ---- reading ---------------------------------------------------------------------

    async def _get_checks(self, req: Message, caller: Caller) -> tuple[BucketRecord, ObjectRecord]:
        b = await self._bucket(req.bucket)  # type: ignore[attr-defined]
        self._check_expected_owner(req, b)
        obj = await self.meta.get_object(b.name, req.key)  # type: ignore[attr-defined]
        if obj is None:
            self._auth_object(caller, b, req.key, "s3:GetObject", req, "READ")  # type: ignore[attr-defined]
            if self._can(caller, b, "s3:ListBucket", req):
                raise e.no_such_key()
            raise e.access_denied()
        self._auth_object(caller, b, obj.key, "s3:GetObject", req, "READ", obj=obj)
        self._check_sigv4_for_kms(caller, obj.encryption)
        if req.HasField("sse_customer_algorithm"):  # type: ignore[attr-defined]
            raise e.InvalidRequest("The encryption parameters are not applicable to this object.")
        conditions.check_read(
            etag=obj.etag, last_modified=obj.last_modified, if_match=opt(req, "if_match"),
            if_none_match=opt(req, "if_none_match"),
            if_modified_since=utc(req.if_modified_since) if req.HasField("if_modified_since") else None,  # type: ignore[attr-defined]
            if_unmodified_since=utc(req.if_unmodified_since) if req.HasField("if_unmodified_since") else None)  # type: ignore[attr-defined]
        return b, obj

    def _object_headers(self, resp: Message, obj: ObjectRecord, req: Message, checksum_mode: bool,
                        full: bool) -> None:
        r: Any = resp
        r.e_tag = quote_etag(obj.etag)
        _set_ts(r.last_modified, obj.last_modified)
        r.accept_ranges = "bytes"
        for member in CONTENT_MEMBERS:
            value = obj.headers.get(member)
            if member == "Expires":
                if value:
                    r.expires_string = value
                    try:
                        from email.utils import parsedate_to_datetime
                        _set_ts(r.expires, parsedate_to_datetime(value))
                    except (TypeError, ValueError):
                        pass
                continue
            if value is not None:
                setattr(r, _field_of(member), value)
        if not obj.headers.get("ContentType"):
            r.content_type = "binary/octet-stream"
        for k, v in obj.metadata.items():
            r.metadata[k] = v
        self._sse_response(r, obj.encryption)
        if obj.storage_class != "STANDARD":
            r.storage_class = obj.storage_class
        if obj.tags:
            r.tag_count = len(obj.tags)
        if checksum_mode and full:
            for algo, value in obj.checksums.items():
                setattr(r, f"checksum_{algo.lower()}", value)
            if obj.checksums and obj.checksum_type:
                r.checksum_type = obj.checksum_type
        overrides = {"response_content_type": "content_type", "response_content_language": "content_language",
                     "response_content_disposition": "content_disposition", "response_cache_control": "cache_control",
                     "response_content_encoding": "content_encoding"}
        for src, dst in overrides.items():
            if src in req.DESCRIPTOR.fields_by_name and req.HasField(src):
                setattr(r, dst, getattr(req, src))
        if "response_expires" in req.DESCRIPTOR.fields_by_name and req.HasField("response_expires"):
            from email.utils import format_datetime
            r.expires_string = format_datetime(utc(req.response_expires), usegmt=True)  # type: ignore[attr-defined]

    def _select_range(self, req: Message, obj: ObjectRecord, resp: Message) -> tuple[ByteRange | None, bool]:
        r: Any = resp
        part = opt(req, "part_number")
        if part is not None:
            if part < 1 or part > MAX_PARTS:
                raise e.InvalidArgument("Part number must be an integer between 1 and 10000, inclusive")
            if opt(req, "range"):
                raise e.InvalidRequest("Cannot specify both Range header and partNumber query parameter")
            if obj.parts_count == 0:
                if part != 1:
                    raise e.InvalidPartNumber_()
                rng = ByteRange(0, obj.size - 1) if obj.size else None
            else:
                if part > len(obj.segments):
                    raise e.InvalidPartNumber_()
                start = sum(s.size for s in obj.segments[:part - 1])
                rng = ByteRange(start, start + obj.segments[part - 1].size - 1)
                r.parts_count = obj.parts_count
            if rng is not None:
                r.content_range = rng.content_range(obj.size)
                r.content_length = rng.length
            else:
                r.content_length = 0
            return rng, obj.parts_count > 0
        rng = parse_range(opt(req, "range"), obj.size)
        if rng is None:
            r.content_length = obj.size
            return None, False
        r.content_range = rng.content_range(obj.size)
        r.content_length = rng.length
        return rng, True

    async def head_object(self, req: pb.HeadObjectRequest, caller: Caller) -> pb.HeadObjectResponse:
        names.check_key(req.key)
        _, obj = await self._get_checks(req, caller)
        resp = pb.HeadObjectResponse()
        rng, partial = self._select_range(req, obj, resp)
        self._object_headers(resp, obj, req, opt(req, "checksum_mode") == "ENABLED", full=rng is None)
        if obj.parts_count:
            resp.parts_count = obj.parts_count
        return resp

    async def get_object(self, req: pb.GetObjectRequest, caller: Caller) -> tuple[pb.GetObjectResponse, AsyncIterator[bytes], bool]:
        names.check_key(req.key)
        _, obj = await self._get_checks(req, caller)
        resp = pb.GetObjectResponse()
        rng, partial = self._select_range(req, obj, resp)
        self._object_headers(resp, obj, req, opt(req, "checksum_mode") == "ENABLED", full=rng is None)
        data_key = await self._data_key(obj.encryption, obj.bucket, obj.key, caller)
        body = self.read_object(obj, data_key, rng)
        return resp, body, rng is not None

    async def read_object(self, obj: ObjectRecord, data_key: bytes, rng: ByteRange | None) -> AsyncIterator[bytes]:
        """Decrypted bytes of ``rng`` (or the whole object), decrypting only the chunks needed."""
        if obj.size == 0:
            # Still authenticate the (empty) segment.
            for seg in obj.segments:
                with self.blobs.open(seg.blob) as fh:
                    dec = chunks.SegmentDecryptor(data_key, fh.read(chunks.HEADER_LEN))
                    span = chunks.chunk_spans(0, dec.header.chunk_size, 0, 0)[0]
                    fh.seek(span.file_offset)
                    dec.decrypt(span, fh.read(span.cipher_len))
            return
        start, end = (rng.start, rng.end) if rng else (0, obj.size - 1)
        seg_start = 0
        out = bytearray()
        for seg in obj.segments:
            seg_end = seg_start + seg.size - 1
            if seg.size == 0 or seg_end < start:
                seg_start += seg.size
                continue
            if seg_start > end:
                break
            lo, hi = max(start, seg_start) - seg_start, min(end, seg_end) - seg_start
            with self.blobs.open(seg.blob) as fh:
                dec = chunks.SegmentDecryptor(data_key, fh.read(chunks.HEADER_LEN))
                for span in chunks.chunk_spans(seg.size, dec.header.chunk_size, lo, hi):
                    fh.seek(span.file_offset)
                    plain = dec.decrypt(span, fh.read(span.cipher_len))
                    a = max(lo - span.plain_start, 0)
                    z = min(hi - span.plain_start + 1, len(plain))
                    out += memoryview(plain)[a:z]
                    if len(out) >= READ_MESSAGE:
                        yield bytes(out)
                        out.clear()
            seg_start += seg.size
        if out:
            yield bytes(out)

    # ---- delete ----------------------------------------------------------------------

    async def delete_object(self, req: pb.DeleteObjectRequest, caller: Caller) -> pb.DeleteObjectResponse:
        names.check_key(req.key)
        b = await self._bucket(req.bucket)
        self._check_expected_owner(req, b)
        self._auth_object(caller, b, req.key, "s3:DeleteObject", req, "WRITE", use_bucket_acl=True)
        if_match = opt(req, "if_match")
        if if_match is not None:
            existing = await self.meta.get_object(b.name, req.key, with_segments=False)
            if existing is None:
                raise e.no_such_key()
            if not conditions.etag_matches(if_match, existing.etag):
                raise e.PreconditionFailed("At least one of the pre-conditions you specified did not hold")
        await self._unlink_later(await self.meta.delete_object(b.name, req.key))
        return pb.DeleteObjectResponse()

    async def delete_objects(self, req: pb.DeleteObjectsRequest, caller: Caller) -> pb.DeleteObjectsResponse:
        b = await self._bucket(req.bucket)
        self._check_expected_owner(req, b)
        objects = list(req.delete.objects)
        if not objects or len(objects) > 1000:
            raise e.malformed_xml()
        quiet = bool(opt(req.delete, "quiet"))
        resp = pb.DeleteObjectsResponse()
        for item in objects:
            key = item.key
            try:
                names.check_key(key)
                self._auth_object(caller, b, key, "s3:DeleteObject", req, "WRITE", use_bucket_acl=True)
                await self._unlink_later(await self.meta.delete_object(b.name, key))
            except e.S3Error as err:
                resp.errors.add(key=key, code=err.code, message=err.message)
                continue
            if not quiet:
                resp.deleted.add(key=key)
        return resp

    # ---- listing ---------------------------------------------------------------------

    async def _list(self, bucket: str, prefix: str, delimiter: str, after: str,
                    max_keys: int) -> tuple[list[ObjectRecord], list[str], bool, str | None]:
        contents: list[ObjectRecord] = []
        prefixes: list[str] = []
        if max_keys == 0:
            return contents, prefixes, False, None
        cursor, inclusive = (after, False) if after >= prefix else (prefix, True)
        last: str | None = None
        while True:
            batch = await self.meta.list_objects(bucket, cursor, inclusive, 1000)
            if not batch:
                return contents, prefixes, False, last
            jumped = False
            for o in batch:
                if not o.key.startswith(prefix):
                    if o.key > prefix:
                        return contents, prefixes, False, last
                    continue
                if delimiter:
                    idx = o.key.find(delimiter, len(prefix))
                    if idx >= 0:
                        cp = o.key[:idx + len(delimiter)]
                        nxt = _successor(cp)
                        if cp > after or not after:
                            if len(contents) + len(prefixes) >= max_keys:
                                return contents, prefixes, True, last
                            prefixes.append(cp)
                            last = cp
                        if nxt is None:
                            continue
                        cursor, inclusive, jumped = nxt, True, True
                        break
                if len(contents) + len(prefixes) >= max_keys:
                    return contents, prefixes, True, last
                contents.append(o)
                last = o.key
            if not jumped:
                cursor, inclusive = batch[-1].key, False

    @staticmethod
    def _max_keys(req: Message) -> int:
        mk = opt(req, "max_keys")
        if mk is None:
            return 1000
        if mk < 0:
            raise e.InvalidArgument("Provided max-keys not an integer or within integer range")
        return min(mk, 1000)

    def _list_auth(self, caller: Caller, b: BucketRecord, req: Message, prefix: str, delimiter: str, mk: int) -> None:
        extra: dict[str, object] = {"s3:prefix": prefix, "s3:max-keys": mk}
        if delimiter:
            extra["s3:delimiter"] = delimiter
        self._auth_bucket(caller, b, "s3:ListBucket", req, "READ", extra=extra)

    def _fill_contents(self, resp: Any, items: list[ObjectRecord], prefixes: list[str], url: bool,
                       owner: bool) -> None:
        enc = (lambda s: urllib.parse.quote(s, safe="/")) if url else (lambda s: s)
        for o in items:
            c = resp.contents.add(key=enc(o.key), e_tag=quote_etag(o.etag), size=o.size, storage_class=o.storage_class)
            _set_ts(c.last_modified, o.last_modified)
            if o.checksums:
                c.checksum_algorithm.extend(sorted(o.checksums))
                if o.checksum_type:
                    c.checksum_type = o.checksum_type
            if owner:
                c.owner.id = access.canonical_id(o.owner_account)
        for p in prefixes:
            resp.common_prefixes.add(prefix=enc(p))

    async def list_objects_v2(self, req: pb.ListObjectsV2Request, caller: Caller) -> pb.ListObjectsV2Response:
        b = await self._bucket(req.bucket)
        self._check_expected_owner(req, b)
        prefix, delimiter = opt(req, "prefix") or "", opt(req, "delimiter") or ""
        mk = self._max_keys(req)
        self._list_auth(caller, b, req, prefix, delimiter, mk)
        url = _encoding(req)
        token = opt(req, "continuation_token")
        after = opt(req, "start_after") or ""
        if token is not None:
            try:
                after = base64.urlsafe_b64decode(token.encode() + b"==").decode("utf-8")
                if not after.startswith("1:"):
                    raise ValueError
                after = after[2:]
            except (ValueError, UnicodeDecodeError, binascii.Error):
                raise e.InvalidArgument("The continuation token provided is incorrect") from None
        items, prefixes, truncated, last = await self._list(b.name, prefix, delimiter, after, mk)
        resp = pb.ListObjectsV2Response(name=b.name, prefix=_enc_opt(prefix, url), max_keys=mk,
                                        is_truncated=truncated, key_count=len(items) + len(prefixes))
        if delimiter:
            resp.delimiter = _enc_opt(delimiter, url)
        if url:
            resp.encoding_type = "url"
        if token is not None:
            resp.continuation_token = token
        if req.HasField("start_after"):
            resp.start_after = _enc_opt(req.start_after, url)
        if truncated and last is not None:
            resp.next_continuation_token = base64.urlsafe_b64encode(f"1:{last}".encode()).decode().rstrip("=")
        self._fill_contents(resp, items, prefixes, url, owner=bool(opt(req, "fetch_owner")))
        return resp

    async def list_objects(self, req: pb.ListObjectsRequest, caller: Caller) -> pb.ListObjectsResponse:
        b = await self._bucket(req.bucket)
        self._check_expected_owner(req, b)
        prefix, delimiter = opt(req, "prefix") or "", opt(req, "delimiter") or ""
        mk = self._max_keys(req)
        self._list_auth(caller, b, req, prefix, delimiter, mk)
        url = _encoding(req)
        marker = opt(req, "marker") or ""
        items, prefixes, truncated, last = await self._list(b.name, prefix, delimiter, marker, mk)
        resp = pb.ListObjectsResponse(name=b.name, prefix=_enc_opt(prefix, url), marker=_enc_opt(marker, url),
                                      max_keys=mk, is_truncated=truncated)
        if delimiter:
            resp.delimiter = _enc_opt(delimiter, url)
            if truncated and last is not None:
                resp.next_marker = _enc_opt(last, url)
        if url:
            resp.encoding_type = "url"
        self._fill_contents(resp, items, prefixes, url, owner=True)
        return resp

    # ---- copy ------------------------------------------------------------------------

    def _parse_copy_source(self, value: str) -> tuple[str, str]:
        src = urllib.parse.unquote(value.split("?versionId=")[0]).lstrip("/")
        bucket, _, key = src.partition("/")
        if not bucket or not key:
            raise e.InvalidArgument("Invalid copy source object key")
        return bucket, key

    async def _copy_source(self, req: Message, caller: Caller) -> tuple[BucketRecord, ObjectRecord]:
        sb_name, skey = self._parse_copy_source(req.copy_source)  # type: ignore[attr-defined]
        sb = await self._bucket(sb_name)
        src = await self.meta.get_object(sb.name, skey)
        if src is None:
            self._auth_object(caller, sb, skey, "s3:GetObject", req, "READ")
            raise e.no_such_key()
        self._auth_object(caller, sb, skey, "s3:GetObject", req, "READ", obj=src)
        conditions.check_read(
            etag=src.etag, last_modified=src.last_modified, if_match=opt(req, "copy_source_if_match"),
            if_none_match=opt(req, "copy_source_if_none_match"),
            if_modified_since=utc(req.copy_source_if_modified_since)  # type: ignore[attr-defined]
            if req.HasField("copy_source_if_modified_since") else None,
            if_unmodified_since=utc(req.copy_source_if_unmodified_since)  # type: ignore[attr-defined]
            if req.HasField("copy_source_if_unmodified_since") else None,
            copy_source=True)
        return sb, src

    async def _reencrypt(self, src: ObjectRecord, rng: ByteRange | None, data_key: bytes, caller: Caller,
                         algorithms: list[str], want_md5: bool) -> Upload:
        src_key = await self._data_key(src.encryption, src.bucket, src.key, caller)
        up = self.start_upload(data_key, algorithms, want_md5)
        try:
            async for piece in self.read_object(src, src_key, rng):
                up.feed(piece)
            up.close_segment()
        except BaseException:
            up.writer.abort()
            raise
        return up

    async def copy_object(self, req: pb.CopyObjectRequest, caller: Caller) -> pb.CopyObjectResponse:
        names.check_key(req.key)
        b = await self._bucket(req.bucket)
        sb, src = await self._copy_source(req, caller)
        sse = self._resolve_sse(req, b)
        extra: dict[str, object] = {"s3:x-amz-server-side-encryption": sse.algorithm}
        if sse.kms_key_id:
            extra["s3:x-amz-server-side-encryption-aws-kms-key-id"] = sse.kms_key_id
        self._auth_object(caller, b, req.key, "s3:PutObject", req, "WRITE", extra=extra, use_bucket_acl=True)
        directive = opt(req, "metadata_directive") or "COPY"
        tag_directive = opt(req, "tagging_directive") or "COPY"
        if directive not in ("COPY", "REPLACE") or tag_directive not in ("COPY", "REPLACE"):
            raise e.InvalidArgument("Unknown metadata directive.")
        same = sb.name == b.name and src.key == req.key
        explicit_sse = req.HasField("server_side_encryption")
        if same and directive == "COPY" and not explicit_sse and not req.HasField("storage_class") \
                and not req.HasField("website_redirect_location"):
            raise e.InvalidRequest("This copy request is illegal because it is trying to copy an object to itself "
                                   "without changing the object's metadata, storage class, website redirect "
                                   "location or encryption attributes.")
        owner = b.owner_account if b.ownership in ("BucketOwnerEnforced", "BucketOwnerPreferred") else caller.account_id
        acl = self._request_acl(req, owner, b, for_bucket=False)
        self._check_acl_allowed(b, acl, opt(req, "acl"))
        algo = opt(req, "checksum_algorithm")
        algorithms = [algo.upper()] if algo else (sorted(src.checksums) if src.checksum_type == "FULL_OBJECT"
                                                   and src.checksums else ["CRC64NVME"])
        data_key, enc = await self._new_data_key(sse, b.name, req.key, caller)
        up = await self._reencrypt(src, None, data_key, caller, algorithms, want_md5=True)
        del data_key
        blob = await up.writer.commit()
        if directive == "REPLACE":
            headers = {m: v for m in CONTENT_MEMBERS if (v := _content_value(req, m)) is not None}
            metadata = dict(req.metadata)
        else:
            headers, metadata = dict(src.headers), dict(src.metadata)
        tags = _parse_tagging_header(opt(req, "tagging")) if tag_directive == "REPLACE" else dict(src.tags)
        etag = up.md5.hexdigest() if enc.algorithm == "AES256" else uuid.uuid4().hex
        computed = {a: ck.b64(h.digest()) for a, h in up.hashers.items()}
        obj = ObjectRecord(bucket=b.name, key=req.key, object_id=uuid.uuid4().hex, size=up.size, etag=etag,
                           last_modified=self.clock(), owner_account=owner, encryption=enc,
                           segments=[Segment(blob, up.size)], headers=headers, metadata=metadata,
                           checksums=computed, checksum_type="FULL_OBJECT",
                           acl=acl.to_json() if acl else None, tags=tags,
                           storage_class=opt(req, "storage_class") or "STANDARD")
        old = await self.meta.put_object(obj)
        if old is None:
            self.blobs.delete([blob])
            raise e.no_such_bucket()
        await self._unlink_later(old)
        resp = pb.CopyObjectResponse()
        resp.copy_object_result.e_tag = quote_etag(etag)
        _set_ts(resp.copy_object_result.last_modified, obj.last_modified)
        for a, v in computed.items():
            setattr(resp.copy_object_result, f"checksum_{a.lower()}", v)
        resp.copy_object_result.checksum_type = "FULL_OBJECT"
        self._sse_response(resp, enc)
        return resp

    # ---- object ACL / tagging --------------------------------------------------------

    async def _existing(self, req: Message, caller: Caller) -> tuple[BucketRecord, ObjectRecord | None]:
        names.check_key(req.key)  # type: ignore[attr-defined]
        b = await self._bucket(req.bucket)  # type: ignore[attr-defined]
        self._check_expected_owner(req, b)
        return b, await self.meta.get_object(b.name, req.key, with_segments=False)  # type: ignore[attr-defined]

    async def put_object_acl(self, req: pb.PutObjectAclRequest, caller: Caller) -> pb.PutObjectAclResponse:
        b, obj = await self._existing(req, caller)
        self._auth_object(caller, b, req.key, "s3:PutObjectAcl", req, "WRITE_ACP", obj=obj)
        if obj is None:
            raise e.no_such_key()
        acl, canned = self._acl_from_request(req, obj.owner_account, b, for_bucket=False)
        self._check_acl_allowed(b, acl, canned)
        await self.meta.update_object(b.name, obj.key, acl=acl.to_json())
        return pb.PutObjectAclResponse()

    async def get_object_acl(self, req: pb.GetObjectAclRequest, caller: Caller) -> pb.GetObjectAclResponse:
        b, obj = await self._existing(req, caller)
        self._auth_object(caller, b, req.key, "s3:GetObjectAcl", req, "READ_ACP", obj=obj)
        if obj is None:
            raise e.no_such_key()
        acl = access.Acl.from_json(obj.acl, access.canonical_id(obj.owner_account))
        resp = pb.GetObjectAclResponse()
        json_format.ParseDict(access.acl_to_members(acl), resp)
        return resp

    async def put_object_tagging(self, req: pb.PutObjectTaggingRequest, caller: Caller) -> pb.PutObjectTaggingResponse:
        b, obj = await self._existing(req, caller)
        self._auth_object(caller, b, req.key, "s3:PutObjectTagging", req, obj=obj)
        if obj is None:
            raise e.no_such_key()
        tags = _validate_tags([(t.key, t.value) for t in req.tagging.tag_set], limit=10)
        await self.meta.update_object(b.name, obj.key, tags=tags)
        return pb.PutObjectTaggingResponse()

    async def get_object_tagging(self, req: pb.GetObjectTaggingRequest, caller: Caller) -> pb.GetObjectTaggingResponse:
        b, obj = await self._existing(req, caller)
        self._auth_object(caller, b, req.key, "s3:GetObjectTagging", req, obj=obj)
        if obj is None:
            raise e.no_such_key()
        resp = pb.GetObjectTaggingResponse()
        for k, v in obj.tags.items():
            resp.tag_set.add(key=k, value=v)
        return resp

    async def delete_object_tagging(self, req: pb.DeleteObjectTaggingRequest, caller: Caller) -> pb.DeleteObjectTaggingResponse:
        b, obj = await self._existing(req, caller)
        self._auth_object(caller, b, req.key, "s3:DeleteObjectTagging", req, obj=obj)
        if obj is None:
            raise e.no_such_key()
        await self.meta.update_object(b.name, obj.key, tags={})
        return pb.DeleteObjectTaggingResponse()

    # ================================================================== multipart

    async def create_multipart_upload(self, req: pb.CreateMultipartUploadRequest, caller: Caller) -> pb.CreateMultipartUploadResponse:
        names.check_key(req.key)
        b = await self._bucket(req.bucket)
        self._check_expected_owner(req, b)
        sse = self._resolve_sse(req, b)
        extra: dict[str, object] = {"s3:x-amz-server-side-encryption": sse.algorithm}
        if sse.kms_key_id:
            extra["s3:x-amz-server-side-encryption-aws-kms-key-id"] = sse.kms_key_id
        self._auth_object(caller, b, req.key, "s3:PutObject", req, "WRITE", extra=extra, use_bucket_acl=True)
        owner = b.owner_account if b.ownership in ("BucketOwnerEnforced", "BucketOwnerPreferred") else caller.account_id
        acl = self._request_acl(req, owner, b, for_bucket=False)
        self._check_acl_allowed(b, acl, opt(req, "acl"))
        algo = opt(req, "checksum_algorithm")
        algo = algo.upper() if algo else None
        if algo is not None and algo not in ck.ALGORITHMS:
            raise e.InvalidRequest("Checksum algorithm provided is unsupported.")
        ctype = opt(req, "checksum_type")
        if ctype is not None and ctype not in ("COMPOSITE", "FULL_OBJECT"):
            raise e.InvalidRequest("Value for x-amz-checksum-type header is invalid.")
        if algo is not None and ctype is None:
            ctype = "FULL_OBJECT" if algo == "CRC64NVME" else "COMPOSITE"
        if ctype == "FULL_OBJECT" and algo not in ck.CRC_ALGORITHMS:
            raise e.InvalidRequest(f"The FULL_OBJECT checksum type cannot be used with the {algo} checksum algorithm.")
        if ctype == "COMPOSITE" and algo == "CRC64NVME":
            raise e.InvalidRequest("The COMPOSITE checksum type cannot be used with the CRC64NVME checksum algorithm.")
        _, enc = await self._new_data_key(sse, b.name, req.key, caller)
        upload = UploadRecord(
            upload_id=secrets.token_urlsafe(48), bucket=b.name, key=req.key, initiated=self.clock(),
            owner_account=owner, initiator_arn=caller.principal_arn or "", encryption=enc,
            headers={m: v for m in CONTENT_MEMBERS if (v := _content_value(req, m)) is not None},
            metadata=dict(req.metadata), checksum_algorithm=algo, checksum_type=ctype,
            acl=acl.to_json() if acl else None, tags=_parse_tagging_header(opt(req, "tagging")),
            storage_class=opt(req, "storage_class") or "STANDARD")
        await self.meta.create_upload(upload)
        resp = pb.CreateMultipartUploadResponse(bucket=b.name, key=req.key, upload_id=upload.upload_id)
        self._sse_response(resp, enc)
        if algo:
            resp.checksum_algorithm = algo
            resp.checksum_type = ctype or "COMPOSITE"
        return resp

    async def _upload_for(self, req: Message, caller: Caller, action: str = "s3:PutObject") -> tuple[BucketRecord, UploadRecord]:
        names.check_key(req.key)  # type: ignore[attr-defined]
        b = await self._bucket(req.bucket)  # type: ignore[attr-defined]
        self._check_expected_owner(req, b)
        self._auth_object(caller, b, req.key, action, req, "WRITE", use_bucket_acl=True)  # type: ignore[attr-defined]
        u = await self.meta.get_upload(req.upload_id)  # type: ignore[attr-defined]
        if u is None or u.bucket != b.name or u.key != req.key:  # type: ignore[attr-defined]
            raise e.no_such_upload()
        return b, u

    @staticmethod
    def _part_number(req: Message) -> int:
        n = opt(req, "part_number")
        if n is None or not 1 <= n <= MAX_PARTS:
            raise e.InvalidArgument("Part number must be an integer between 1 and 10000, inclusive")
        return int(n)

    async def begin_upload_part(self, req: pb.UploadPartRequest, caller: Caller) -> tuple[Upload, dict[str, Any]]:
        number = self._part_number(req)
        b, u = await self._upload_for(req, caller)
        algo, given = self._requested_checksums(req)
        if u.checksum_algorithm and given and u.checksum_algorithm not in given:
            raise e.InvalidRequest(f"Checksum Type mismatch occurred, expected checksum Type: "
                                   f"{u.checksum_algorithm.lower()}, actual checksum Type: {next(iter(given)).lower()}")
        cl = opt(req, "content_length")
        if cl is not None and cl > MAX_PUT_SIZE:
            raise e.EntityTooLarge("Your proposed upload exceeds the maximum allowed object size.")
        data_key = await self._data_key(u.encryption, u.bucket, u.key, caller)
        algorithms = sorted({*given, *([algo] if algo else []), *([u.checksum_algorithm] if u.checksum_algorithm else [])})
        up = self.start_upload(data_key, algorithms, want_md5=True)
        del data_key
        return up, {"upload": u, "number": number, "md5": self._content_md5(req), "given": given, "algo": algo}

    async def finish_upload_part(self, req: pb.UploadPartRequest, caller: Caller, up: Upload,
                                 state: dict[str, Any], trailer: dict[str, str]) -> pb.UploadPartResponse:
        up.close_segment()
        given = dict(state["given"])
        for algo, value in trailer.items():
            if not ck.valid_value(algo, value) or algo not in up.hashers:
                raise e.InvalidRequest(f"Value for x-amz-checksum-{algo.lower()} trailing header is invalid.")
            given[algo] = value
        computed = self._verify_upload(up, state["md5"], given, opt(req, "content_length"))
        blob = await up.writer.commit()
        u: UploadRecord = state["upload"]
        etag = up.md5.hexdigest()
        part = PartRecord(upload_id=u.upload_id, part_number=state["number"], blob=blob, size=up.size, etag=etag,
                          md5=etag, last_modified=self.clock(), checksums=computed)
        old = await self.meta.put_part(part)
        if old is None:
            self.blobs.delete([blob])
            raise e.no_such_upload()
        await self._unlink_later(old)
        resp = pb.UploadPartResponse(e_tag=quote_etag(etag))
        self._sse_response(resp, u.encryption)
        for algo, value in computed.items():
            if algo in given or algo == state["algo"] or algo == u.checksum_algorithm:
                setattr(resp, f"checksum_{algo.lower()}", value)
        return resp

    async def upload_part_copy(self, req: pb.UploadPartCopyRequest, caller: Caller) -> pb.UploadPartCopyResponse:
        number = self._part_number(req)
        b, u = await self._upload_for(req, caller)
        _, src = await self._copy_source(req, caller)
        rng = None
        if req.HasField("copy_source_range"):
            text = req.copy_source_range
            try:
                first, last = text.removeprefix("bytes=").split("-")
                rng = ByteRange(int(first), int(last))
                if rng.start > rng.end or rng.end >= src.size:
                    raise ValueError
            except ValueError:
                raise e.InvalidArgument("The x-amz-copy-source-range value must be of the form bytes=first-last "
                                        "where first and last are the zero-based offsets of the first and last "
                                        "bytes to copy") from None
        data_key = await self._data_key(u.encryption, u.bucket, u.key, caller)
        algorithms = [u.checksum_algorithm] if u.checksum_algorithm else []
        up = await self._reencrypt(src, rng, data_key, caller, algorithms, want_md5=True)
        del data_key
        blob = await up.writer.commit()
        etag = up.md5.hexdigest()
        computed = {a: ck.b64(h.digest()) for a, h in up.hashers.items()}
        part = PartRecord(upload_id=u.upload_id, part_number=number, blob=blob, size=up.size, etag=etag, md5=etag,
                          last_modified=self.clock(), checksums=computed)
        old = await self.meta.put_part(part)
        if old is None:
            self.blobs.delete([blob])
            raise e.no_such_upload()
        await self._unlink_later(old)
        resp = pb.UploadPartCopyResponse()
        resp.copy_part_result.e_tag = quote_etag(etag)
        _set_ts(resp.copy_part_result.last_modified, part.last_modified)
        for a, v in computed.items():
            setattr(resp.copy_part_result, f"checksum_{a.lower()}", v)
        self._sse_response(resp, u.encryption)
        return resp

    async def complete_multipart_upload(self, req: pb.CompleteMultipartUploadRequest, caller: Caller) -> pb.CompleteMultipartUploadResponse:
        b, u = await self._upload_for(req, caller)
        requested = list(req.multipart_upload.parts)
        if not requested:
            raise e.malformed_xml()
        stored = {p.part_number: p for p in await self.meta.list_parts(u.upload_id)}
        chosen: list[PartRecord] = []
        previous = 0
        invalid_part = e.InvalidPart("One or more of the specified parts could not be found.  The part may not "
                                     "have been uploaded, or the specified entity tag may not match the part's "
                                     "entity tag.")
        for item in requested:
            n = opt(item, "part_number")
            if n is None:
                raise e.malformed_xml()
            if n <= previous:
                raise e.InvalidPartOrder("The list of parts was not in ascending order. Parts must be ordered by "
                                         "part number.")
            previous = n
            part = stored.get(n)
            if part is None or (item.HasField("e_tag") and item.e_tag.strip('"') != part.etag):
                raise invalid_part
            if u.checksum_algorithm:
                fname = f"checksum_{u.checksum_algorithm.lower()}"
                value = getattr(item, fname) if item.HasField(fname) else None
                if value is not None and value != part.checksums.get(u.checksum_algorithm):
                    raise invalid_part
            chosen.append(part)
        for part in chosen[:-1]:
            if part.size < MIN_PART_SIZE:
                raise e.EntityTooSmall("Your proposed upload is smaller than the minimum allowed object size.")
        size = sum(p.size for p in chosen)
        mpu_size = opt(req, "mpu_object_size")
        if mpu_size is not None and mpu_size != size:
            raise e.InvalidRequest("The provided 'x-amz-mp-object-size' header value does not match what was "
                                   "computed.")
        md5s = b"".join(bytes.fromhex(p.md5) for p in chosen)
        etag = f"{hashlib.md5(md5s).hexdigest()}-{len(chosen)}"  # noqa: S324 - S3's multipart ETag
        checksums: dict[str, str] = {}
        if u.checksum_algorithm and all(u.checksum_algorithm in p.checksums for p in chosen):
            if u.checksum_type == "FULL_OBJECT":
                checksums[u.checksum_algorithm] = ck.combine_full_object(
                    u.checksum_algorithm, [(p.checksums[u.checksum_algorithm], p.size) for p in chosen])
            else:
                checksums[u.checksum_algorithm] = ck.composite(
                    u.checksum_algorithm, [p.checksums[u.checksum_algorithm] for p in chosen])
        if not checksums and all("CRC64NVME" in p.checksums for p in chosen):
            checksums["CRC64NVME"] = ck.combine_full_object("CRC64NVME", [(p.checksums["CRC64NVME"], p.size) for p in chosen])
        obj = ObjectRecord(bucket=b.name, key=u.key, object_id=uuid.uuid4().hex, size=size, etag=etag,
                           last_modified=self.clock(), owner_account=u.owner_account, encryption=u.encryption,
                           segments=[Segment(p.blob, p.size) for p in chosen], headers=u.headers,
                           metadata=u.metadata, checksums=checksums,
                           checksum_type=(u.checksum_type or "FULL_OBJECT") if checksums else None,
                           parts_count=len(chosen), acl=u.acl, tags=u.tags, storage_class=u.storage_class)
        if_none_match, if_match = opt(req, "if_none_match"), opt(req, "if_match")
        if if_none_match is not None or if_match is not None:
            existing = await self.meta.get_object(b.name, u.key, with_segments=False)
            conditions.check_write(existing_etag=existing.etag if existing else None,
                                   if_match=if_match, if_none_match=if_none_match)
        try:
            unused = await self.meta.complete_upload(
                u.upload_id, obj, expect_etag=(if_match.strip('"') if if_match and if_match != "*" else None),
                expect_absent=if_none_match is not None)
        except ConditionFailed:
            raise e.PreconditionFailed("At least one of the pre-conditions you specified did not hold") from None
        if unused is None:
            raise e.no_such_upload()
        await self._unlink_later(unused)
        resp = pb.CompleteMultipartUploadResponse(
            location=f"/{b.name}/{urllib.parse.quote(u.key)}", bucket=b.name, key=u.key, e_tag=quote_etag(etag))
        for a, v in checksums.items():
            setattr(resp, f"checksum_{a.lower()}", v)
        if checksums:
            resp.checksum_type = obj.checksum_type or "FULL_OBJECT"
        self._sse_response(resp, u.encryption)
        return resp

    async def abort_multipart_upload(self, req: pb.AbortMultipartUploadRequest, caller: Caller) -> pb.AbortMultipartUploadResponse:
        names.check_key(req.key)
        b = await self._bucket(req.bucket)
        self._auth_object(caller, b, req.key, "s3:AbortMultipartUpload", req, "WRITE", use_bucket_acl=True)
        u = await self.meta.get_upload(req.upload_id)
        if u is None or u.bucket != b.name or u.key != req.key:
            raise e.no_such_upload()
        blobs = await self.meta.delete_upload(u.upload_id)
        if blobs is None:
            raise e.no_such_upload()
        await self._unlink_later(blobs)
        return pb.AbortMultipartUploadResponse()

    async def list_parts(self, req: pb.ListPartsRequest, caller: Caller) -> pb.ListPartsResponse:
        names.check_key(req.key)
        b = await self._bucket(req.bucket)
        self._auth_object(caller, b, req.key, "s3:ListMultipartUploadParts", req, "READ", use_bucket_acl=True)
        u = await self.meta.get_upload(req.upload_id)
        if u is None or u.bucket != b.name or u.key != req.key:
            raise e.no_such_upload()
        marker = opt(req, "part_number_marker") or 0
        max_parts = opt(req, "max_parts")
        max_parts = 1000 if max_parts is None else max(0, min(max_parts, 1000))
        parts = await self.meta.list_parts(u.upload_id, marker, max_parts + 1)
        truncated = len(parts) > max_parts
        parts = parts[:max_parts]
        resp = pb.ListPartsResponse(bucket=b.name, key=u.key, upload_id=u.upload_id, part_number_marker=marker,
                                    max_parts=max_parts, is_truncated=truncated, storage_class=u.storage_class)
        if parts:
            resp.next_part_number_marker = parts[-1].part_number
        resp.owner.id = access.canonical_id(u.owner_account)
        resp.initiator.id = u.initiator_arn or access.canonical_id(u.owner_account)
        if u.checksum_algorithm:
            resp.checksum_algorithm = u.checksum_algorithm
            resp.checksum_type = u.checksum_type or "COMPOSITE"
        for p in parts:
            item = resp.parts.add(part_number=p.part_number, e_tag=quote_etag(p.etag), size=p.size)
            _set_ts(item.last_modified, p.last_modified)
            if u.checksum_algorithm and u.checksum_algorithm in p.checksums:
                setattr(item, f"checksum_{u.checksum_algorithm.lower()}", p.checksums[u.checksum_algorithm])
        return resp

    async def list_multipart_uploads(self, req: pb.ListMultipartUploadsRequest, caller: Caller) -> pb.ListMultipartUploadsResponse:
        b = await self._bucket(req.bucket)
        self._auth_bucket(caller, b, "s3:ListBucketMultipartUploads", req, "READ")
        prefix, delimiter = opt(req, "prefix") or "", opt(req, "delimiter") or ""
        key_marker, id_marker = opt(req, "key_marker") or "", opt(req, "upload_id_marker") or ""
        limit = opt(req, "max_uploads")
        limit = 1000 if limit is None else max(0, min(limit, 1000))
        url = _encoding(req)
        resp = pb.ListMultipartUploadsResponse(bucket=b.name, key_marker=key_marker, upload_id_marker=id_marker,
                                               max_uploads=limit, prefix=_enc_opt(prefix, url))
        if delimiter:
            resp.delimiter = delimiter
        if url:
            resp.encoding_type = "url"
        count, truncated = 0, False
        seen_prefixes: set[str] = set()
        cursor_key, cursor_id = key_marker, id_marker if key_marker else ""
        last_key, last_id = "", ""
        while not truncated:
            batch = await self.meta.list_uploads(b.name, cursor_key, cursor_id, 500)
            if not batch:
                break
            for u in batch:
                cursor_key, cursor_id = u.key, u.upload_id
                if not u.key.startswith(prefix):
                    continue
                if delimiter:
                    idx = u.key.find(delimiter, len(prefix))
                    if idx >= 0:
                        cp = u.key[:idx + len(delimiter)]
                        if cp in seen_prefixes:
                            continue
                        if count >= limit:
                            truncated = True
                            break
                        seen_prefixes.add(cp)
                        resp.common_prefixes.add(prefix=_enc_opt(cp, url))
                        count += 1
                        last_key, last_id = u.key, u.upload_id
                        continue
                if count >= limit:
                    truncated = True
                    break
                item = resp.uploads.add(upload_id=u.upload_id, key=_enc_opt(u.key, url), storage_class=u.storage_class)
                _set_ts(item.initiated, u.initiated)
                item.owner.id = access.canonical_id(u.owner_account)
                item.initiator.id = u.initiator_arn or access.canonical_id(u.owner_account)
                if u.checksum_algorithm:
                    item.checksum_algorithm = u.checksum_algorithm
                    item.checksum_type = u.checksum_type or "COMPOSITE"
                count += 1
                last_key, last_id = u.key, u.upload_id
        resp.is_truncated = truncated
        if truncated:
            resp.next_key_marker = _enc_opt(last_key, url)
            resp.next_upload_id_marker = last_id
        return resp

    # ================================================================== maintenance

    async def collect_garbage(self) -> int:
        return self.blobs.collect_garbage(await self.meta.referenced_blobs())


# ====================================================================== module helpers

def _has(msg: Message, name: str) -> bool:
    return name in msg.DESCRIPTOR.fields_by_name and msg.HasField(name)


def access_field(member: str) -> str:
    return {"GrantFullControl": "grant_full_control", "GrantRead": "grant_read", "GrantReadACP": "grant_read_acp",
            "GrantWrite": "grant_write", "GrantWriteACP": "grant_write_acp"}[member]


def _field_of(member: str) -> str:
    return {"ContentType": "content_type", "ContentEncoding": "content_encoding",
            "ContentDisposition": "content_disposition", "ContentLanguage": "content_language",
            "CacheControl": "cache_control", "Expires": "expires",
            "WebsiteRedirectLocation": "website_redirect_location"}[member]


def _content_value(req: Message, member: str) -> str | None:
    fname = _field_of(member)
    if not _has(req, fname):
        return None
    value = getattr(req, fname)
    if member == "Expires":
        from email.utils import format_datetime
        return format_datetime(utc(value), usegmt=True)
    if member == "ContentEncoding":
        # aws-chunked is transfer framing, not a stored content encoding.
        parts = [p.strip() for p in str(value).split(",") if p.strip() and p.strip() != "aws-chunked"]
        return ",".join(parts) or None
    return str(value)


def _default_rule(bucket: BucketRecord) -> dict[str, Any]:
    if bucket.encryption:
        return json.loads(bucket.encryption)  # type: ignore[no-any-return]
    return {"SSEAlgorithm": "AES256", "BucketKeyEnabled": False}


def _successor(prefix: str) -> str | None:
    """Smallest string greater than every string that starts with ``prefix``."""
    last = ord(prefix[-1])
    if last >= 0x10FFFF:
        return None
    nxt = last + 1
    if 0xD800 <= nxt <= 0xDFFF:
        nxt = 0xE000
    return prefix[:-1] + chr(nxt)


def _encoding(req: Message) -> bool:
    value = opt(req, "encoding_type")
    if value is None:
        return False
    if value != "url":
        raise e.InvalidArgument("Invalid Encoding Method specified in Request")
    return True


def _enc_opt(value: str, url: bool) -> str:
    return urllib.parse.quote(value, safe="/") if url else value


def _validate_tags(pairs: list[tuple[str, str]], limit: int) -> dict[str, str]:
    if len(pairs) > limit:
        raise e.InvalidTag("Object tags cannot be greater than 10" if limit == 10 else "Bucket tag count cannot be greater than 50")
    tags: dict[str, str] = {}
    for k, v in pairs:
        if not 1 <= len(k) <= 128:
            raise e.InvalidTag("The TagKey you have provided is too long, max 128")
        if len(v) > 256:
            raise e.InvalidTag("The TagValue you have provided is too long, max 256")
        if k in tags:
            raise e.InvalidTag("Cannot provide multiple Tags with the same key")
        if k.lower().startswith("aws:"):
            raise e.InvalidTag("Your TagKey cannot be prefixed with aws:")
        tags[k] = v
    return tags


def _parse_tagging_header(value: str | None) -> dict[str, str]:
    if not value:
        return {}
    pairs = urllib.parse.parse_qsl(value, keep_blank_values=True)
    return _validate_tags(pairs, limit=10)


def error_class_invalid_bucket_acl() -> e.S3Error:
    from common.errors import error_class
    cls = error_class("InvalidBucketAclWithObjectOwnership", 400, base=e.S3Error)
    return cls("Bucket cannot have ACLs set with ObjectOwnership's BucketOwnerEnforced setting")  # type: ignore[return-value]
