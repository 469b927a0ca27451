"""Pure S3 domain: names, ranges, conditions, chunk format, checksums, ACL/BPA logic."""

from __future__ import annotations

import base64
import os
import zlib
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.s3.domain import access, chunks, conditions, names
from services.s3.domain import checksums as ck
from services.s3.domain import errors as e
from services.s3.domain.ranges import ByteRange, parse_range


@pytest.mark.parametrize("name", ["abc", "my-bucket.logs", "a" * 63, "0bucket9", "mycloudtrailbucket0451"])
def test_valid_bucket_names(name: str) -> None:
    names.check_bucket_name(name)


@pytest.mark.parametrize("name", ["ab", "a" * 64, "Upper", "under_score", "-start", "end-", "a..b",
                                  "a.-b", "192.168.5.4", "xn--abc", "sthree-x", "abc-s3alias", "abc--ol-s3",
                                  "b" + "\u00e9" + "c", "bucket/"])
def test_invalid_bucket_names(name: str) -> None:
    with pytest.raises(e.InvalidBucketName) as info:
        names.check_bucket_name(name)
    assert info.value.message == "The specified bucket is not valid."


def test_keys() -> None:
    names.check_key("../../etc/passwd")
    names.check_key("a\x00b")
    names.check_key("é" * 512)                  # 1024 bytes
    with pytest.raises(e.KeyTooLongError):
        names.check_key("é" * 513)
    assert names.object_arn("b", "x/y") == "arn:aws:s3:::b/x/y"


@pytest.mark.parametrize(("header", "size", "expected"), [
    ("bytes=0-9", 100, ByteRange(0, 9)),
    ("bytes=90-", 100, ByteRange(90, 99)),
    ("bytes=-10", 100, ByteRange(90, 99)),
    ("bytes=-500", 100, ByteRange(0, 99)),
    ("bytes=50-500", 100, ByteRange(50, 99)),
    ("bytes=9-0", 100, None),            # invalid: ignored
    ("items=0-1", 100, None),
    ("bytes=0-1,5-6", 100, None),        # several ranges: whole object
    (None, 100, None),
])
def test_ranges(header: str | None, size: int, expected: ByteRange | None) -> None:
    assert parse_range(header, size) == expected


@pytest.mark.parametrize(("header", "size"), [("bytes=100-", 100), ("bytes=0-", 0), ("bytes=-0", 10)])
def test_unsatisfiable_range(header: str, size: int) -> None:
    with pytest.raises(e.InvalidRange):
        parse_range(header, size)


def test_read_conditions() -> None:
    lm = datetime(2024, 1, 1, 12, 0, 0, tzinfo=timezone.utc)
    conditions.check_read(etag="abc", last_modified=lm, if_match='"abc"', if_none_match=None,
                          if_modified_since=None, if_unmodified_since=lm - timedelta(days=1))
    with pytest.raises(e.PreconditionFailed):
        conditions.check_read(etag="abc", last_modified=lm, if_match='"zzz"', if_none_match=None,
                              if_modified_since=None, if_unmodified_since=None)
    with pytest.raises(e.NotModified):
        conditions.check_read(etag="abc", last_modified=lm, if_match=None, if_none_match='"abc"',
                              if_modified_since=None, if_unmodified_since=None)
    with pytest.raises(e.NotModified):
        conditions.check_read(etag="abc", last_modified=lm, if_match=None, if_none_match=None,
                              if_modified_since=lm, if_unmodified_since=None)
    with pytest.raises(e.PreconditionFailed):
        conditions.check_read(etag="abc", last_modified=lm, if_match=None, if_none_match='"abc"',
                              if_modified_since=None, if_unmodified_since=None, copy_source=True)


def test_write_conditions() -> None:
    conditions.check_write(existing_etag=None, if_match=None, if_none_match="*")
    with pytest.raises(e.PreconditionFailed):
        conditions.check_write(existing_etag="x", if_match=None, if_none_match="*")
    with pytest.raises(e.NoSuchKey):
        conditions.check_write(existing_etag=None, if_match='"x"', if_none_match=None)


def _encrypt(key: bytes, data: bytes, chunk: int, feed: int) -> bytes:
    enc = chunks.SegmentEncryptor(key, chunk)
    out = [enc.start()]
    for i in range(0, len(data), feed):
        out += enc.update(data[i:i + feed])
    out.append(enc.finish())
    return b"".join(out)


def _decrypt(key: bytes, blob: bytes, size: int, start: int, end: int) -> bytes:
    dec = chunks.SegmentDecryptor(key, blob[:chunks.HEADER_LEN])
    got = bytearray()
    for span in chunks.chunk_spans(size, dec.header.chunk_size, start, end):
        plain = dec.decrypt(span, blob[span.file_offset:span.file_offset + span.cipher_len])
        got += plain[max(start - span.plain_start, 0):min(end - span.plain_start + 1, len(plain))]
    return bytes(got)


@settings(max_examples=60, deadline=None)
@given(data=st.binary(max_size=5000), chunk=st.integers(1, 700), feed=st.integers(1, 900), r=st.data())
def test_chunk_roundtrip_and_ranges(data: bytes, chunk: int, feed: int, r: st.DataObject) -> None:
    key = os.urandom(32)
    blob = _encrypt(key, data, chunk, feed)
    assert len(blob) == chunks.encrypted_size(len(data), chunk)
    if not data:
        assert _decrypt(key, blob, 0, 0, 0) == b""
        return
    start = r.draw(st.integers(0, len(data) - 1))
    end = r.draw(st.integers(start, len(data) - 1))
    assert _decrypt(key, blob, len(data), start, end) == data[start:end + 1]


def test_chunk_tamper_truncate_reorder_fail() -> None:
    key, data, cs = os.urandom(32), os.urandom(1000), 100
    blob = bytearray(_encrypt(key, data, cs, 1000))
    assert data[:10] not in blob                        # encrypted at rest
    flipped = bytearray(blob)
    flipped[chunks.HEADER_LEN + 5] ^= 1
    with pytest.raises(chunks.SegmentCorrupt):
        _decrypt(key, bytes(flipped), 1000, 0, 99)
    # a truncated object claiming 900 bytes: chunk 8 is not marked final -> fails
    with pytest.raises(chunks.SegmentCorrupt):
        _decrypt(key, bytes(blob[:chunks.encrypted_size(900, cs)]), 900, 800, 899)
    # swapping two chunks
    a = chunks.HEADER_LEN
    c0, c1 = blob[a:a + cs + 16], blob[a + cs + 16:a + 2 * (cs + 16)]
    swapped = bytes(blob[:a] + c1 + c0 + blob[a + 2 * (cs + 16):])
    with pytest.raises(chunks.SegmentCorrupt):
        _decrypt(key, swapped, 1000, 0, 99)
    with pytest.raises(chunks.SegmentCorrupt):
        _decrypt(os.urandom(32), bytes(blob), 1000, 0, 99)
    # salts differ: the same data key never encrypts two segments under one content key
    assert _encrypt(key, data, cs, 1000)[12:44] != bytes(blob[12:44])


def test_ranged_read_decrypts_only_needed_chunks() -> None:
    spans = chunks.chunk_spans(10 * 65536, 65536, 65536 * 3 + 5, 65536 * 4 + 2)
    assert [s.index for s in spans] == [3, 4]


def test_checksums_known_values() -> None:
    assert ck.checksum_of("CRC32", b"hello") == base64.b64encode(zlib.crc32(b"hello").to_bytes(4, "big")).decode()
    # CRC-32C check value ("123456789" -> 0xE3069283), CRC-64/NVME check value 0xAE8B14860A799888
    assert ck.checksum_of("CRC32C", b"123456789") == base64.b64encode(bytes.fromhex("e3069283")).decode()
    assert ck.checksum_of("CRC64NVME", b"123456789") == base64.b64encode(bytes.fromhex("ae8b14860a799888")).decode()
    for name in ck.CRC_ALGORITHMS:
        assert ck._py_crc(name)(b"123456789", 0) == int.from_bytes(base64.b64decode(ck.checksum_of(name, b"123456789")), "big")


@settings(max_examples=30, deadline=None)
@given(parts=st.lists(st.binary(max_size=300), min_size=1, max_size=5))
def test_full_object_crc_combination(parts: list[bytes]) -> None:
    for name in ck.CRC_ALGORITHMS:
        combined = ck.combine_full_object(name, [(ck.checksum_of(name, p), len(p)) for p in parts])
        assert combined == ck.checksum_of(name, b"".join(parts))


def test_composite_checksum() -> None:
    parts = [b"a" * 10, b"b" * 20]
    values = [ck.checksum_of("SHA256", p) for p in parts]
    value = ck.composite("SHA256", values)
    assert value.endswith("-2")


def test_canned_acls_and_public() -> None:
    owner = access.canonical_id("111122223333")
    acl = access.canned_acl("public-read", owner, for_bucket=False)
    assert acl.is_public()
    assert access.acl_allows(acl, caller_canonical_id=None, authenticated=False, permission="READ",
                             ignore_public=False)
    assert not access.acl_allows(acl, caller_canonical_id=None, authenticated=False, permission="READ",
                                 ignore_public=True)
    assert not access.acl_allows(acl, caller_canonical_id=None, authenticated=False, permission="WRITE",
                                 ignore_public=False)
    assert access.acl_allows(acl, caller_canonical_id=owner, authenticated=True, permission="WRITE_ACP",
                             ignore_public=True)
    private = access.canned_acl("private", owner, for_bucket=True)
    assert private.only_owner_full_control() and not private.is_public()
    auth = access.canned_acl("authenticated-read", owner, for_bucket=True)
    assert access.acl_allows(auth, caller_canonical_id=None, authenticated=True, permission="READ", ignore_public=False)
    assert not access.acl_allows(auth, caller_canonical_id=None, authenticated=False, permission="READ",
                                 ignore_public=False)
    with pytest.raises(e.InvalidArgument):
        access.canned_acl("aws-exec-read", owner, for_bucket=True)


def test_grant_headers() -> None:
    grants = access.grants_from_headers({"GrantRead": 'uri="http://acs.amazonaws.com/groups/global/AllUsers", id="abc"',
                                         "GrantFullControl": 'id="xyz"'})
    assert access.Grant("uri", access.ALL_USERS, "READ") in grants
    assert access.Grant("id", "abc", "READ") in grants
    assert access.Grant("id", "xyz", "FULL_CONTROL") in grants
    with pytest.raises(e.InvalidArgument):
        access.grants_from_headers({"GrantRead": "nonsense"})


def test_acl_documents_roundtrip() -> None:
    owner = access.canonical_id("1")
    acl = access.canned_acl("public-read-write", owner, for_bucket=True)
    members = access.acl_to_members(acl)
    assert access.acl_from_policy_doc(members, owner) == acl
    with pytest.raises(e.MalformedACLError):
        access.acl_from_policy_doc({"Grants": [{"Grantee": {"Type": "Group"}, "Permission": "READ"}]}, owner)


def test_bpa_defaults_and_json() -> None:
    bpa = access.PublicAccessBlock.all_on()
    assert access.PublicAccessBlock.from_json(bpa.to_json()) == bpa
    assert access.PublicAccessBlock.from_json(None) is None
    assert access.PublicAccessBlock.from_members({"BlockPublicAcls": True}) == access.PublicAccessBlock(True, False, False, False)


@pytest.mark.parametrize(("policy", "public"), [
    ({"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"}]}, True),
    ({"Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "s3:GetObject", "Resource": "*"}]}, True),
    ({"Statement": [{"Effect": "Allow", "Principal": {"Service": "cloudtrail.amazonaws.com"}, "Action": "s3:PutObject",
                     "Resource": "*"}]}, False),
    ({"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:PutObject", "Resource": "*",
                     "Condition": {"StringEquals": {"aws:SourceAccount": "111122223333"}}}]}, False),
    ({"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:PutObject", "Resource": "*",
                     "Condition": {"IpAddress": {"aws:SourceIp": "0.0.0.0/0"}}}]}, True),
    ({"Statement": [{"Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": "*"}]}, False),
])
def test_policy_is_public(policy: dict, public: bool) -> None:
    import json
    assert access.policy_is_public(json.dumps(policy)) is public
