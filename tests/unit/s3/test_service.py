"""The S3 service in-process over real SQLite and blob stores, with a fake KMS."""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Mapping
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from common.caller import root_caller
from common.config import Settings
from common.errors import error_class
from services.s3.domain import errors as e
from services.s3.keys import DataKey, ServiceKeyring, kms_caller, map_kms_error
from services.s3.service import S3Service
from services.s3.store.blobs import BlobStore
from services.s3.store.meta import MetaStore
from strongroom.common.v1 import caller_pb2
from strongroom.s3.v1 import s3_pb2 as pb

ACCOUNT = "111122223333"
KEY_ARN = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/11111111-2222-3333-4444-555555555555"


class FakeKms:
    def __init__(self) -> None:
        self.master = AESGCM(os.urandom(32))
        self.calls: list[tuple[str, dict[str, str], str]] = []
        self.disabled = False

    async def generate_data_key(self, key_id: str, context: Mapping[str, str], caller: caller_pb2.Caller) -> DataKey:
        self._check("GenerateDataKey", context, caller)
        plain, nonce = os.urandom(32), os.urandom(12)
        return DataKey(plain, nonce + self.master.encrypt(nonce, plain, json.dumps(dict(context), sort_keys=True).encode()),
                       KEY_ARN)

    async def decrypt(self, key_arn: str, ciphertext: bytes, context: Mapping[str, str], caller: caller_pb2.Caller) -> bytes:
        self._check("Decrypt", context, caller)
        return self.master.decrypt(ciphertext[:12], ciphertext[12:], json.dumps(dict(context), sort_keys=True).encode())

    async def aws_managed_key_arn(self, caller: caller_pb2.Caller) -> str:
        return KEY_ARN

    # SecretWrapper: the AWS owned key S3 wraps its SSE-S3 key with.
    async def wrap_secret(self, plaintext: bytes, aad: bytes) -> bytes:
        self.calls.append(("WrapSecret", {}, ""))
        nonce = os.urandom(12)
        return nonce + self.master.encrypt(nonce, plaintext, b"service-key" + aad)

    async def unwrap_secret(self, ciphertext: bytes, aad: bytes) -> bytes:
        self.calls.append(("UnwrapSecret", {}, ""))
        return self.master.decrypt(ciphertext[:12], ciphertext[12:], b"service-key" + aad)

    def _check(self, op: str, context: Mapping[str, str], caller: caller_pb2.Caller) -> None:
        self.calls.append((op, dict(context), caller.principal_arn))
        if self.disabled:
            raise map_kms_error(error_class("DisabledException", 400)(f"{KEY_ARN} is disabled."))


@pytest.fixture()
async def svc(tmp_path: Path) -> AsyncIterator[S3Service]:
    meta = MetaStore(tmp_path / "meta.db")
    await meta.open()
    settings = Settings(data_dir=tmp_path, account_id=ACCOUNT)
    kms = FakeKms()
    service = S3Service(settings, meta, BlobStore(tmp_path / "s3"), kms, ServiceKeyring(tmp_path / "k.key", kms))
    try:
        yield service
    finally:
        await meta.close()


CALLER = root_caller(ACCOUNT, "us-east-1")


async def _put(svc: S3Service, bucket: str, key: str, data: bytes, **kw: object) -> pb.PutObjectResponse:
    req = pb.PutObjectRequest(bucket=bucket, key=key, **kw)  # type: ignore[arg-type]
    up, state = await svc.begin_put_object(req, CALLER)
    for i in range(0, len(data), 70_000):
        up.feed(data[i:i + 70_000])
    return await svc.finish_put_object(req, CALLER, up, state, {})


async def _get(svc: S3Service, bucket: str, key: str, **kw: object) -> bytes:
    _, body, _ = await svc.get_object(pb.GetObjectRequest(bucket=bucket, key=key, **kw), CALLER)  # type: ignore[arg-type]
    return b"".join([piece async for piece in body])


async def test_roundtrip_encrypted_at_rest(svc: S3Service, tmp_path: Path) -> None:
    await svc.create_bucket(pb.CreateBucketRequest(bucket="bkt"), CALLER)
    data = b"MARKER" * 100_000
    r1 = await _put(svc, "bkt", "s3", data)
    r2 = await _put(svc, "bkt", "kms", data, server_side_encryption="aws:kms", ssekms_key_id=KEY_ARN)
    assert r1.server_side_encryption == "AES256" and r2.ssekms_key_id == KEY_ARN
    assert await _get(svc, "bkt", "s3") == data
    assert await _get(svc, "bkt", "kms", range="bytes=1000-2000") == data[1000:2001]
    for blob in (tmp_path / "s3" / "blobs").rglob("*"):
        if blob.is_file():
            assert b"MARKER" not in blob.read_bytes()
    kms: FakeKms = svc.kms  # type: ignore[assignment]
    assert ("GenerateDataKey", {"aws:s3:arn": "arn:aws:s3:::bkt/kms"}, "arn:aws:iam::111122223333:root") in kms.calls
    kms.disabled = True
    with pytest.raises(e.KmsDisabled):
        await _get(svc, "bkt", "kms")
    assert await _get(svc, "bkt", "s3") == data


async def test_kms_caller_is_marked_as_via_s3() -> None:
    c = kms_caller(CALLER, "us-east-1")
    assert (c.invoked_by, c.via_service) == ("s3.amazonaws.com", "s3.us-east-1.amazonaws.com")
    assert c.shared_event_id and c.principal_arn == CALLER.principal_arn


async def test_garbage_collection_of_orphans(svc: S3Service, tmp_path: Path) -> None:
    await svc.create_bucket(pb.CreateBucketRequest(bucket="bkt"), CALLER)
    await _put(svc, "bkt", "a", b"one")
    await _put(svc, "bkt", "a", b"two")           # replaced blob is unlinked
    w = svc.blobs.writer()                          # a crash after the blob was made durable...
    w.write(b"orphan")
    await w.commit()                                # ...but before the row was committed
    tmp = svc.blobs.writer()                        # and a half-written temp file
    tmp.write(b"half")
    files = [p for p in (tmp_path / "s3" / "blobs").rglob("*") if p.is_file()]
    assert len(files) == 2
    assert await svc.collect_garbage() == 2
    files = [p for p in (tmp_path / "s3" / "blobs").rglob("*") if p.is_file()]
    assert len(files) == 1
    assert await _get(svc, "bkt", "a") == b"two"


async def test_incomplete_body_and_wrong_length_store_nothing(svc: S3Service) -> None:
    await svc.create_bucket(pb.CreateBucketRequest(bucket="bkt"), CALLER)
    with pytest.raises(e.IncompleteBody):
        await _put(svc, "bkt", "x", b"abc", content_length=10)
    with pytest.raises(e.NoSuchKey):
        await _get(svc, "bkt", "x")


async def test_multipart_segments_and_ranges(svc: S3Service) -> None:
    await svc.create_bucket(pb.CreateBucketRequest(bucket="bkt"), CALLER)
    up = await svc.create_multipart_upload(pb.CreateMultipartUploadRequest(
        bucket="bkt", key="m", server_side_encryption="aws:kms", checksum_algorithm="CRC32C",
        checksum_type="FULL_OBJECT"), CALLER)
    parts = [os.urandom(5 * 1024 * 1024), os.urandom(100)]
    etags = []
    for n, data in enumerate(parts, start=1):
        req = pb.UploadPartRequest(bucket="bkt", key="m", upload_id=up.upload_id, part_number=n)
        u, state = await svc.begin_upload_part(req, CALLER)
        u.feed(data)
        etags.append((await svc.finish_upload_part(req, CALLER, u, state, {})).e_tag)
    done = await svc.complete_multipart_upload(pb.CompleteMultipartUploadRequest(
        bucket="bkt", key="m", upload_id=up.upload_id, multipart_upload=pb.CompletedMultipartUpload(
            parts=[pb.CompletedPart(part_number=i + 1, e_tag=t) for i, t in enumerate(etags)])), CALLER)
    from services.s3.domain import checksums as ck
    assert done.checksum_crc32c == ck.checksum_of("CRC32C", b"".join(parts))
    assert done.checksum_type == "FULL_OBJECT" and done.e_tag.endswith('-2"')
    whole = b"".join(parts)
    assert await _get(svc, "bkt", "m", range=f"bytes={len(whole) - 150}-") == whole[-150:]
    assert await _get(svc, "bkt", "m", part_number=2) == parts[1]


async def test_listing_with_delimiters(svc: S3Service) -> None:
    await svc.create_bucket(pb.CreateBucketRequest(bucket="bkt"), CALLER)
    for k in ["a/1", "a/2", "a/b/3", "b", "c/4", "c/5"]:
        await _put(svc, "bkt", k, b"x")
    r = await svc.list_objects_v2(pb.ListObjectsV2Request(bucket="bkt", delimiter="/", max_keys=2), CALLER)
    assert [c.prefix for c in r.common_prefixes] == ["a/"] and [o.key for o in r.contents] == ["b"] and r.is_truncated
    r2 = await svc.list_objects_v2(pb.ListObjectsV2Request(bucket="bkt", delimiter="/", continuation_token=r.next_continuation_token), CALLER)
    assert [c.prefix for c in r2.common_prefixes] == ["c/"] and not r2.is_truncated
    r3 = await svc.list_objects_v2(pb.ListObjectsV2Request(bucket="bkt", prefix="a/", delimiter="/"), CALLER)
    assert [o.key for o in r3.contents] == ["a/1", "a/2"] and [c.prefix for c in r3.common_prefixes] == ["a/b/"]


async def test_anonymous_and_other_account_denied(svc: S3Service) -> None:
    await svc.create_bucket(pb.CreateBucketRequest(bucket="bkt"), CALLER)
    await _put(svc, "bkt", "k", b"x")
    anon = caller_pb2.Caller(principal_type="Anonymous")
    other = root_caller("999999999999", "us-east-1")
    for who in (anon, other):
        with pytest.raises(e.AccessDenied):
            await svc.get_object(pb.GetObjectRequest(bucket="bkt", key="k"), who)
        with pytest.raises(e.AccessDenied):
            await svc.get_object(pb.GetObjectRequest(bucket="bkt", key="missing"), who)


async def test_sse_s3_key_is_kept_wrapped_by_the_hsm(tmp_path: Path) -> None:
    """The SSE-S3 service key never lies in the clear on disk: the file holds it wrapped by an
    AWS owned key (KMS ServiceKeys); a file of the first layout (the bare key) is wrapped on
    first use; data keys wrapped before a restart unwrap after it."""
    kms = FakeKms()
    path = tmp_path / "sse-s3.key"
    legacy = os.urandom(32)
    path.write_bytes(legacy)
    keyring = ServiceKeyring(path, kms)
    await keyring.ready()
    stored = path.read_bytes()
    assert stored[:4] == b"SRK2" and legacy not in stored
    assert (path.stat().st_mode & 0o777) == 0o600
    wrapped = keyring.wrap(b"k" * 32, "arn:aws:s3:::b/o")

    again = ServiceKeyring(path, kms)
    with pytest.raises(RuntimeError):
        again.unwrap(wrapped, "arn:aws:s3:::b/o")  # not ready: the key is still wrapped
    await again.ready()
    assert again.unwrap(wrapped, "arn:aws:s3:::b/o") == b"k" * 32
    assert path.read_bytes() == stored  # unwrapped in memory only
    assert [c[0] for c in kms.calls] == ["WrapSecret", "UnwrapSecret"]

    fresh = ServiceKeyring(tmp_path / "new" / "sse-s3.key", kms)
    await fresh.ready()
    assert (tmp_path / "new" / "sse-s3.key").read_bytes()[:4] == b"SRK2"
    (tmp_path / "bad.key").write_bytes(b"garbage-garbage-garbage-garbage-garbage")
    with pytest.raises(RuntimeError):
        await ServiceKeyring(tmp_path / "bad.key", kms).ready()
