"""S3 through the gateway with boto3 and the AWS CLI: buckets, objects, encryption, errors."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

import botocore
import pytest

from tests.stackctl import Stack


def _name(prefix: str = "t") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="module")
def s3(stack: Stack) -> Any:
    return stack.client("s3")


@pytest.fixture()
def bucket(s3: Any) -> Iterator[str]:
    name = _name("bkt")
    s3.create_bucket(Bucket=name)
    yield name
    _empty_and_delete(s3, name)


def _empty_and_delete(s3: Any, name: str) -> None:
    try:
        for up in s3.list_multipart_uploads(Bucket=name).get("Uploads", []):
            s3.abort_multipart_upload(Bucket=name, Key=up["Key"], UploadId=up["UploadId"])
        while True:
            page = s3.list_objects_v2(Bucket=name)
            keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
            if not keys:
                break
            s3.delete_objects(Bucket=name, Delete={"Objects": keys, "Quiet": True})
        s3.delete_bucket(Bucket=name)
    except botocore.exceptions.ClientError:
        pass


def _err(exc: pytest.ExceptionInfo[botocore.exceptions.ClientError]) -> tuple[str, str, int]:
    r = exc.value.response
    return r["Error"]["Code"], r["Error"].get("Message", ""), r["ResponseMetadata"]["HTTPStatusCode"]


# ---- buckets ---------------------------------------------------------------------------------

def test_bucket_lifecycle(s3: Any) -> None:
    name = _name()
    s3.create_bucket(Bucket=name)
    assert name in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    s3.head_bucket(Bucket=name)
    assert s3.get_bucket_location(Bucket=name)["LocationConstraint"] is None
    with pytest.raises(botocore.exceptions.ClientError) as exc:
        s3.create_bucket(Bucket=name)
    assert _err(exc) == ("BucketAlreadyOwnedByYou", "Your previous request to create the named bucket succeeded "
                         "and you already own it.", 409)
    s3.put_object(Bucket=name, Key="x", Body=b"1")
    with pytest.raises(botocore.exceptions.ClientError) as exc:
        s3.delete_bucket(Bucket=name)
    assert _err(exc) == ("BucketNotEmpty", "The bucket you tried to delete is not empty", 409)
    s3.delete_object(Bucket=name, Key="x")
    s3.delete_bucket(Bucket=name)
    with pytest.raises(botocore.exceptions.ClientError) as exc:
        s3.head_bucket(Bucket=name)
    assert _err(exc)[2] == 404


def test_bucket_errors(s3: Any) -> None:
    with pytest.raises(botocore.exceptions.ClientError) as exc:
        s3.create_bucket(Bucket="Bad_Name")
    assert _err(exc) == ("InvalidBucketName", "The specified bucket is not valid.", 400)
    with pytest.raises(botocore.exceptions.ClientError) as exc:
        s3.list_objects_v2(Bucket=_name("missing"))
    assert _err(exc) == ("NoSuchBucket", "The specified bucket does not exist", 404)
    with pytest.raises(botocore.exceptions.ClientError) as exc:
        s3.create_bucket(Bucket=_name(), CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    assert _err(exc)[0] == "IllegalLocationConstraintException"


def test_nosuchbucket_exact_xml(stack: Stack, s3: Any) -> None:
    name = _name("missing")
    url = s3.generate_presigned_url("get_object", Params={"Bucket": name, "Key": "k"})
    with pytest.raises(urllib.error.HTTPError) as exc:
        urllib.request.urlopen(url)
    body = exc.value.read().decode()
    assert exc.value.code == 404
    assert body.startswith('<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>NoSuchBucket</Code>'
                           "<Message>The specified bucket does not exist</Message>"
                           f"<BucketName>{name}</BucketName><RequestId>")
    assert body.endswith("</HostId></Error>")


def test_default_security_settings(s3: Any, bucket: str) -> None:
    bpa = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
    assert bpa == {"BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True,
                   "RestrictPublicBuckets": True}
    rules = s3.get_bucket_ownership_controls(Bucket=bucket)["OwnershipControls"]["Rules"]
    assert rules == [{"ObjectOwnership": "BucketOwnerEnforced"}]
    enc = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"][0]
    assert enc["ApplyServerSideEncryptionByDefault"] == {"SSEAlgorithm": "AES256"}
    with pytest.raises(botocore.exceptions.ClientError) as exc:
        s3.put_bucket_acl(Bucket=bucket, ACL="public-read")
    assert _err(exc) == ("AccessControlListNotSupported", "The bucket does not allow ACLs", 400)
    with pytest.raises(botocore.exceptions.ClientError) as exc:
        s3.get_bucket_policy(Bucket=bucket)
    assert _err(exc) == ("NoSuchBucketPolicy", "The bucket policy does not exist", 404)
    s3.delete_bucket_ownership_controls(Bucket=bucket)
    with pytest.raises(botocore.exceptions.ClientError) as exc:
        s3.get_bucket_ownership_controls(Bucket=bucket)
    assert _err(exc) == ("OwnershipControlsNotFoundError", "The bucket ownership controls were not found", 404)
    s3.delete_public_access_block(Bucket=bucket)
    with pytest.raises(botocore.exceptions.ClientError) as exc:
        s3.get_public_access_block(Bucket=bucket)
    assert _err(exc)[0] == "NoSuchPublicAccessBlockConfiguration"


# ---- objects ---------------------------------------------------------------------------------

def test_sse_s3_key_is_wrapped_by_the_hsm(stack: Stack, s3: Any, bucket: str) -> None:
    """After an SSE-S3 upload the service key file holds the key only wrapped by the KMS's
    AWS owned key (in SoftHSM2): nonce, 32 encrypted bytes and the GCM tag."""
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    stored = (stack.data_dir / "s3" / "sse-s3.key").read_bytes()
    assert stored[:4] == b"SRK2" and len(stored) == 4 + 12 + 32 + 16
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"x"


def test_put_get_head_sse_s3(s3: Any, bucket: str) -> None:
    data = os.urandom(300_000)
    put = s3.put_object(Bucket=bucket, Key="dir/a.bin", Body=data, ContentType="application/x-test",
                        Metadata={"Color": "blue"}, CacheControl="no-cache", ContentDisposition="inline")
    assert put["ETag"] == f'"{hashlib.md5(data).hexdigest()}"'
    assert put["ServerSideEncryption"] == "AES256"
    got = s3.get_object(Bucket=bucket, Key="dir/a.bin")
    assert got["Body"].read() == data
    assert got["ContentType"] == "application/x-test"
    assert got["Metadata"] == {"color": "blue"}
    assert got["CacheControl"] == "no-cache" and got["ContentDisposition"] == "inline"
    assert got["ServerSideEncryption"] == "AES256"
    head = s3.head_object(Bucket=bucket, Key="dir/a.bin")
    assert head["ContentLength"] == len(data) and head["ETag"] == put["ETag"]
    rng = s3.get_object(Bucket=bucket, Key="dir/a.bin", Range="bytes=70000-200000")
    assert rng["Body"].read() == data[70000:200001]
    assert rng["ContentRange"] == f"bytes 70000-200000/{len(data)}"
    assert rng["ResponseMetadata"]["HTTPStatusCode"] == 206
    assert s3.get_object(Bucket=bucket, Key="dir/a.bin", Range="bytes=-5")["Body"].read() == data[-5:]


def test_empty_object_and_odd_keys(s3: Any, bucket: str) -> None:
    keys = ["../../etc/passwd", "a\x01b", "spaces and+plus?&=#", "é/ü/東京", "k" * 1024, "/leading", "trailing/"]
    for k in keys:
        s3.put_object(Bucket=bucket, Key=k, Body=k.encode())
    for k in keys:
        assert s3.get_object(Bucket=bucket, Key=k)["Body"].read() == k.encode()
    listed = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]]
    assert sorted(keys, key=lambda s: s.encode()) == listed
    s3.put_object(Bucket=bucket, Key="empty", Body=b"")
    assert s3.get_object(Bucket=bucket, Key="empty")["Body"].read() == b""
    with pytest.raises(botocore.exceptions.ClientError) as exc:
        s3.put_object(Bucket=bucket, Key="k" * 1025, Body=b"x")
    assert _err(exc) == ("KeyTooLongError", "Your key is too long", 400)


def test_errors_and_conditions(s3: Any, bucket: str) -> None:
    with pytest.raises(botocore.exceptions.ClientError) as exc:
        s3.get_object(Bucket=bucket, Key="nope")
    assert _err(exc) == ("NoSuchKey", "The specified key does not exist.", 404)
    put = s3.put_object(Bucket=bucket, Key="c", Body=b"0123456789")
    with pytest.raises(botocore.exceptions.ClientError) as exc:
        s3.get_object(Bucket=bucket, Key="c", Range="bytes=50-60")
    assert _err(exc) == ("InvalidRange", "The requested range is not satisfiable", 416)
    error = exc.value.response["Error"]
    assert (error["RangeRequested"], error["ActualObjectSize"]) == ("bytes=50-60", "10")
    url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "c"})
    with pytest.raises(urllib.error.HTTPError) as http:
        urllib.request.urlopen(urllib.request.Request(url, headers={"Range": "bytes=-0"}))
    body = http.value.read().decode()
    assert http.value.code == 416
    assert body.startswith('<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>InvalidRange</Code>'
                           "<Message>The requested range is not satisfiable</Message>"
                           "<RangeRequested>bytes=-0</RangeRequested><ActualObjectSize>10</ActualObjectSize>"
                           "<RequestId>")
    with pytest.raises(botocore.exceptions.ClientError) as exc:
        s3.get_object(Bucket=bucket, Key="c", IfMatch='"nomatch"')
    assert _err(exc)[0] == "PreconditionFailed"
    with pytest.raises(botocore.exceptions.ClientError) as exc:
        s3.get_object(Bucket=bucket, Key="c", IfNoneMatch=put["ETag"])
    assert _err(exc)[2] == 304
    assert s3.get_object(Bucket=bucket, Key="c", IfMatch=put["ETag"])["Body"].read() == b"0123456789"
    with pytest.raises(botocore.exceptions.ClientError) as exc:
        s3.put_object(Bucket=bucket, Key="c", Body=b"new", IfNoneMatch="*")
    assert _err(exc)[0] == "PreconditionFailed"
    with pytest.raises(botocore.exceptions.ClientError) as exc:
        s3.put_object(Bucket=bucket, Key="d", Body=b"x", ContentMD5=base64.b64encode(b"0" * 16).decode())
    assert _err(exc)[0] == "BadDigest"
    with pytest.raises(botocore.exceptions.ClientError) as exc:
        s3.put_object(Bucket=bucket, Key="d", Body=b"x", ServerSideEncryption="AES256", SSEKMSKeyId="abc")
    assert _err(exc)[0] == "InvalidArgument"
    with pytest.raises(botocore.exceptions.ClientError) as exc:
        s3.head_object(Bucket=bucket, Key="nope")
    assert _err(exc)[2] == 404


def test_checksums(s3: Any, bucket: str) -> None:
    data = b"checksum me" * 1000
    from botocore.compat import HAS_CRT
    # botocore computes CRC32C / CRC64NVME only with awscrt installed.
    algos = ("CRC32", "SHA1", "SHA256") + (("CRC32C", "CRC64NVME") if HAS_CRT else ())
    for algo in algos:
        put = s3.put_object(Bucket=bucket, Key=f"ck-{algo}", Body=data, ChecksumAlgorithm=algo)
        got = s3.get_object(Bucket=bucket, Key=f"ck-{algo}", ChecksumMode="ENABLED")
        assert got["Body"].read() == data
        assert got[f"Checksum{algo}"] == put[f"Checksum{algo}"]
    wrong = base64.b64encode(b"\x00\x00\x00\x01").decode()
    with pytest.raises(botocore.exceptions.ClientError) as exc:
        s3.put_object(Bucket=bucket, Key="bad", Body=data, ChecksumCRC32=wrong)
    assert _err(exc)[0] == "BadDigest"


def test_delete_objects_and_listing(s3: Any, bucket: str) -> None:
    keys = [f"p/{i:03d}" for i in range(25)] + ["p/sub/x", "p/sub/y", "q/1", "top"]
    for k in keys:
        s3.put_object(Bucket=bucket, Key=k, Body=b"x")
    seen, token = [], None
    while True:
        kw = {"ContinuationToken": token} if token else {}
        page = s3.list_objects_v2(Bucket=bucket, MaxKeys=7, **kw)
        seen += [o["Key"] for o in page.get("Contents", [])]
        if not page["IsTruncated"]:
            break
        token = page["NextContinuationToken"]
    assert seen == sorted(keys)
    page = s3.list_objects_v2(Bucket=bucket, Delimiter="/")
    assert [c["Prefix"] for c in page["CommonPrefixes"]] == ["p/", "q/"]
    assert [o["Key"] for o in page["Contents"]] == ["top"]
    page = s3.list_objects_v2(Bucket=bucket, Prefix="p/", Delimiter="/", MaxKeys=30)
    assert [c["Prefix"] for c in page["CommonPrefixes"]] == ["p/sub/"] and len(page["Contents"]) == 25
    page = s3.list_objects_v2(Bucket=bucket, StartAfter="p/020", Prefix="p/")
    assert page["Contents"][0]["Key"] == "p/021"
    v1 = s3.list_objects(Bucket=bucket, Delimiter="/", MaxKeys=1)
    assert v1["IsTruncated"] and v1["NextMarker"] == "p/"
    v1b = s3.list_objects(Bucket=bucket, Delimiter="/", Marker=v1["NextMarker"])
    assert [c["Prefix"] for c in v1b["CommonPrefixes"]] == ["q/"]
    paginator = s3.get_paginator("list_objects")
    assert sum(len(p.get("Contents", [])) for p in paginator.paginate(Bucket=bucket, PaginationConfig={"PageSize": 4})) == len(keys)
    res = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in keys[:10]] + [{"Key": "absent"}]})
    assert len(res["Deleted"]) == 11
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == len(keys) - 10
    enc = s3.list_objects_v2(Bucket=bucket, Prefix="q", EncodingType="url")
    assert enc["Contents"][0]["Key"] == "q/1"


def test_copy_object_across_encryption(stack: Stack, s3: Any, bucket: str) -> None:
    kms = stack.client("kms")
    key_arn = kms.create_key(Description="copy")["KeyMetadata"]["Arn"]
    data = os.urandom(200_000)
    s3.put_object(Bucket=bucket, Key="src", Body=data, Metadata={"a": "1"})
    out = s3.copy_object(Bucket=bucket, Key="dst", CopySource={"Bucket": bucket, "Key": "src"},
                         ServerSideEncryption="aws:kms", SSEKMSKeyId=key_arn)
    assert out["ServerSideEncryption"] == "aws:kms" and out["SSEKMSKeyId"] == key_arn
    got = s3.get_object(Bucket=bucket, Key="dst")
    assert got["Body"].read() == data and got["Metadata"] == {"a": "1"}
    back = s3.copy_object(Bucket=bucket, Key="back", CopySource=f"{bucket}/dst", MetadataDirective="REPLACE",
                          Metadata={"b": "2"})
    assert back["ServerSideEncryption"] == "AES256"
    got = s3.get_object(Bucket=bucket, Key="back")
    assert got["Body"].read() == data and got["Metadata"] == {"b": "2"}
    with pytest.raises(botocore.exceptions.ClientError) as exc:
        s3.copy_object(Bucket=bucket, Key="src", CopySource=f"{bucket}/src")
    assert _err(exc)[0] == "InvalidRequest"
    with pytest.raises(botocore.exceptions.ClientError) as exc:
        s3.copy_object(Bucket=bucket, Key="x", CopySource=f"{bucket}/missing")
    assert _err(exc)[0] == "NoSuchKey"


def test_tagging(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="t", Body=b"x", Tagging="a=1&b=2")
    assert {t["Key"]: t["Value"] for t in s3.get_object_tagging(Bucket=bucket, Key="t")["TagSet"]} == {"a": "1", "b": "2"}
    s3.put_object_tagging(Bucket=bucket, Key="t", Tagging={"TagSet": [{"Key": "z", "Value": "9"}]})
    assert s3.get_object_tagging(Bucket=bucket, Key="t")["TagSet"] == [{"Key": "z", "Value": "9"}]
    assert s3.get_object(Bucket=bucket, Key="t")["TagCount"] == 1
    s3.delete_object_tagging(Bucket=bucket, Key="t")
    assert s3.get_object_tagging(Bucket=bucket, Key="t")["TagSet"] == []
    with pytest.raises(botocore.exceptions.ClientError) as exc:
        s3.put_object_tagging(Bucket=bucket, Key="t", Tagging={"TagSet": [{"Key": f"k{i}", "Value": "v"} for i in range(11)]})
    assert _err(exc)[0] == "InvalidTag"


# ---- encryption ------------------------------------------------------------------------------

def test_sse_kms_and_default_bucket_encryption(stack: Stack, s3: Any, bucket: str) -> None:
    kms = stack.client("kms")
    key = kms.create_key(Description="s3 default")["KeyMetadata"]
    kms.create_alias(AliasName=f"alias/{bucket}", TargetKeyId=key["KeyId"])
    put = s3.put_object(Bucket=bucket, Key="kms-alias", Body=b"secret", ServerSideEncryption="aws:kms",
                        SSEKMSKeyId=f"alias/{bucket}")
    assert put["SSEKMSKeyId"] == key["Arn"]
    assert put["ETag"] != f'"{hashlib.md5(b"secret").hexdigest()}"'     # SSE-KMS ETags are not MD5s
    managed = s3.put_object(Bucket=bucket, Key="managed", Body=b"m", ServerSideEncryption="aws:kms")
    aliases = {a["AliasName"]: a.get("TargetKeyId") for a in kms.list_aliases()["Aliases"]}
    assert "alias/aws/s3" in aliases and managed["SSEKMSKeyId"].endswith(aliases["alias/aws/s3"])
    s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={"Rules": [{
        "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key["Arn"]},
        "BucketKeyEnabled": True}]})
    rule = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"][0]
    assert rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms" and rule["BucketKeyEnabled"]
    for i in range(3):
        out = s3.put_object(Bucket=bucket, Key=f"default-{i}", Body=b"d" * i)
        assert out["ServerSideEncryption"] == "aws:kms" and out["SSEKMSKeyId"] == key["Arn"]
        assert out["BucketKeyEnabled"] is True
    head = s3.head_object(Bucket=bucket, Key="default-2")
    assert head["ServerSideEncryption"] == "aws:kms" and head["BucketKeyEnabled"] is True
    assert s3.get_object(Bucket=bucket, Key="default-2")["Body"].read() == b"dd"
    s3.delete_bucket_encryption(Bucket=bucket)
    assert s3.put_object(Bucket=bucket, Key="after", Body=b"x")["ServerSideEncryption"] == "AES256"
    ctx = base64.b64encode(json.dumps({"project": "x"}).encode()).decode()
    out = s3.put_object(Bucket=bucket, Key="ctx", Body=b"c", ServerSideEncryption="aws:kms",
                        SSEKMSKeyId=key["Arn"], SSEKMSEncryptionContext=ctx)
    assert s3.get_object(Bucket=bucket, Key="ctx")["Body"].read() == b"c"
    with pytest.raises(botocore.exceptions.ClientError) as exc:
        s3.put_object(Bucket=bucket, Key="nokey", Body=b"x", ServerSideEncryption="aws:kms",
                      SSEKMSKeyId="arn:aws:kms:us-east-1:111122223333:key/00000000-0000-0000-0000-000000000000")
    assert _err(exc)[0] == "KMS.NotFoundException" and _err(exc)[2] == 400
    _ = out


def test_objects_are_encrypted_on_disk(stack: Stack, s3: Any, bucket: str) -> None:
    marker = b"PLAINTEXT-MARKER-" + uuid.uuid4().hex.encode()
    s3.put_object(Bucket=bucket, Key="plain-check", Body=marker * 100)
    s3.put_object(Bucket=bucket, Key="plain-check-kms", Body=marker * 100, ServerSideEncryption="aws:kms")
    found = []
    for root, _dirs, files in os.walk(stack.data_dir / "s3"):
        for f in files:
            with open(os.path.join(root, f), "rb") as fh:
                if marker in fh.read():
                    found.append(f)
    assert found == []


def test_disable_enable_key(stack: Stack, s3: Any, bucket: str) -> None:
    kms = stack.client("kms")
    key = kms.create_key()["KeyMetadata"]
    s3.put_object(Bucket=bucket, Key="k", Body=b"data", ServerSideEncryption="aws:kms", SSEKMSKeyId=key["KeyId"])
    kms.disable_key(KeyId=key["KeyId"])
    with pytest.raises(botocore.exceptions.ClientError) as exc:
        s3.get_object(Bucket=bucket, Key="k")
    code, message, status = _err(exc)
    assert (code, status) == ("KMS.DisabledException", 400) and key["Arn"] in message
    with pytest.raises(botocore.exceptions.ClientError) as exc:
        s3.put_object(Bucket=bucket, Key="k2", Body=b"x", ServerSideEncryption="aws:kms", SSEKMSKeyId=key["KeyId"])
    assert _err(exc)[0] == "KMS.DisabledException"
    kms.enable_key(KeyId=key["KeyId"])
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"data"
    kms.schedule_key_deletion(KeyId=key["KeyId"], PendingWindowInDays=7)
    with pytest.raises(botocore.exceptions.ClientError) as exc:
        s3.get_object(Bucket=bucket, Key="k")
    assert _err(exc)[0] == "KMS.KMSInvalidStateException"
    kms.cancel_key_deletion(KeyId=key["KeyId"])
    kms.enable_key(KeyId=key["KeyId"])
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"data"


# ---- multipart -------------------------------------------------------------------------------

def test_multipart_small(s3: Any, bucket: str) -> None:
    part1, part2 = os.urandom(5 * 1024 * 1024), os.urandom(1234)
    up = s3.create_multipart_upload(Bucket=bucket, Key="mp", ChecksumAlgorithm="CRC32")
    uid = up["UploadId"]
    assert [u["UploadId"] for u in s3.list_multipart_uploads(Bucket=bucket)["Uploads"]] == [uid]
    e1 = s3.upload_part(Bucket=bucket, Key="mp", UploadId=uid, PartNumber=1, Body=part1, ChecksumAlgorithm="CRC32")
    e2 = s3.upload_part(Bucket=bucket, Key="mp", UploadId=uid, PartNumber=2, Body=part2, ChecksumAlgorithm="CRC32")
    parts = s3.list_parts(Bucket=bucket, Key="mp", UploadId=uid)["Parts"]
    assert [p["PartNumber"] for p in parts] == [1, 2] and parts[1]["Size"] == 1234
    with pytest.raises(botocore.exceptions.ClientError) as exc:
        s3.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=uid, MultipartUpload={"Parts": [
            {"PartNumber": 2, "ETag": e2["ETag"]}, {"PartNumber": 1, "ETag": e1["ETag"]}]})
    assert _err(exc)[0] == "InvalidPartOrder"
    with pytest.raises(botocore.exceptions.ClientError) as exc:
        s3.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=uid, MultipartUpload={"Parts": [
            {"PartNumber": 1, "ETag": '"0000"'}]})
    assert _err(exc)[0] == "InvalidPart"
    done = s3.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=uid, MultipartUpload={"Parts": [
        {"PartNumber": 1, "ETag": e1["ETag"], "ChecksumCRC32": e1["ChecksumCRC32"]},
        {"PartNumber": 2, "ETag": e2["ETag"], "ChecksumCRC32": e2["ChecksumCRC32"]}]})
    digests = hashlib.md5(hashlib.md5(part1).digest() + hashlib.md5(part2).digest()).hexdigest()
    assert done["ETag"] == f'"{digests}-2"'
    got = s3.get_object(Bucket=bucket, Key="mp")
    assert got["Body"].read() == part1 + part2
    assert s3.get_object(Bucket=bucket, Key="mp", PartNumber=2)["Body"].read() == part2
    assert s3.get_object(Bucket=bucket, Key="mp", Range="bytes=5242870-5242889")["Body"].read() == (part1 + part2)[5242870:5242890]
    with pytest.raises(botocore.exceptions.ClientError) as exc:
        s3.list_parts(Bucket=bucket, Key="mp", UploadId=uid)
    assert _err(exc)[0] == "NoSuchUpload"
    up2 = s3.create_multipart_upload(Bucket=bucket, Key="small")
    a = s3.upload_part(Bucket=bucket, Key="small", UploadId=up2["UploadId"], PartNumber=1, Body=b"tiny")
    b = s3.upload_part(Bucket=bucket, Key="small", UploadId=up2["UploadId"], PartNumber=2, Body=b"tiny")
    with pytest.raises(botocore.exceptions.ClientError) as exc:
        s3.complete_multipart_upload(Bucket=bucket, Key="small", UploadId=up2["UploadId"], MultipartUpload={
            "Parts": [{"PartNumber": 1, "ETag": a["ETag"]}, {"PartNumber": 2, "ETag": b["ETag"]}]})
    assert _err(exc)[0] == "EntityTooSmall"
    s3.abort_multipart_upload(Bucket=bucket, Key="small", UploadId=up2["UploadId"])
    cp = s3.create_multipart_upload(Bucket=bucket, Key="copy")
    pc = s3.upload_part_copy(Bucket=bucket, Key="copy", UploadId=cp["UploadId"], PartNumber=1,
                             CopySource={"Bucket": bucket, "Key": "mp"}, CopySourceRange="bytes=100-199")
    s3.complete_multipart_upload(Bucket=bucket, Key="copy", UploadId=cp["UploadId"], MultipartUpload={
        "Parts": [{"PartNumber": 1, "ETag": pc["CopyPartResult"]["ETag"]}]})
    assert s3.get_object(Bucket=bucket, Key="copy")["Body"].read() == part1[100:200]


# ---- access ----------------------------------------------------------------------------------

def test_anonymous_denied_and_presigned(stack: Stack, s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="img.png", Body=b"png")
    url = f"{stack.endpoint}/{bucket}/img.png"
    with pytest.raises(urllib.error.HTTPError) as exc:
        urllib.request.urlopen(url)
    assert exc.value.code == 403
    assert b"<Code>AccessDenied</Code><Message>Access Denied</Message>" in exc.value.read()
    signed = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "img.png"}, ExpiresIn=60)
    with urllib.request.urlopen(signed) as r:
        assert r.read() == b"png"


def test_bucket_policy_public_and_bpa(stack: Stack, s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="pub", Body=b"hello")
    policy = json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{bucket}/*"}]})
    with pytest.raises(botocore.exceptions.ClientError) as exc:
        s3.put_bucket_policy(Bucket=bucket, Policy=policy)
    assert _err(exc)[0] == "AccessDenied"
    s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration={
        "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": False, "RestrictPublicBuckets": False})
    s3.put_bucket_policy(Bucket=bucket, Policy=policy)
    assert json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"]) == json.loads(policy)
    assert s3.get_bucket_policy_status(Bucket=bucket)["PolicyStatus"]["IsPublic"] is True
    with urllib.request.urlopen(f"{stack.endpoint}/{bucket}/pub") as r:
        assert r.read() == b"hello"
    s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration={
        "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": False, "RestrictPublicBuckets": True})
    with pytest.raises(urllib.error.HTTPError) as exc2:
        urllib.request.urlopen(f"{stack.endpoint}/{bucket}/pub")
    assert exc2.value.code == 403
    with pytest.raises(botocore.exceptions.ClientError) as exc:
        s3.put_bucket_policy(Bucket=bucket, Policy='{"Statement": [}')
    assert _err(exc)[0] == "MalformedPolicy"
    s3.delete_bucket_policy(Bucket=bucket)


def test_aws_cli(stack: Stack, tmp_path: Any) -> None:
    name = _name("cli")
    stack.aws("s3", "mb", f"s3://{name}")
    src = tmp_path / "f.bin"
    src.write_bytes(os.urandom(100_000))
    stack.aws("s3", "cp", str(src), f"s3://{name}/dir/f.bin", "--sse", "aws:kms")
    head = stack.aws_json("s3api", "head-object", "--bucket", name, "--key", "dir/f.bin")
    assert head["ServerSideEncryption"] == "aws:kms"
    out = tmp_path / "back.bin"
    stack.aws("s3", "cp", f"s3://{name}/dir/f.bin", str(out))
    assert out.read_bytes() == src.read_bytes()
    listing = stack.aws("s3", "ls", f"s3://{name}/dir/").stdout
    assert "f.bin" in listing
    res = stack.aws("s3api", "get-object", "--bucket", name, "--key", "missing", str(tmp_path / "x"), check=False)
    assert res.returncode != 0 and "NoSuchKey" in res.stderr
    stack.aws("s3", "rb", f"s3://{name}", "--force")


def test_virtual_hosted_style(stack: Stack, s3: Any, bucket: str) -> None:
    import http.client

    from botocore.auth import S3SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    s3.put_object(Bucket=bucket, Key="dir/vh.txt", Body=b"virtual")
    port = stack.env["STRONGROOM_PORT"]
    for host in (f"{bucket}.s3.us-east-1.amazonaws.com", f"{bucket}.localhost:{port}"):
        req = AWSRequest(method="GET", url=f"http://{host}/dir/vh.txt")
        S3SigV4Auth(Credentials(stack.access_key_id, stack.secret_access_key), "s3", "us-east-1").add_auth(req)
        conn = http.client.HTTPConnection("127.0.0.1", int(port), timeout=10)
        conn.request("GET", "/dir/vh.txt", headers={"Host": host, **dict(req.headers.items())})
        resp = conn.getresponse()
        body = resp.read()
        assert (resp.status, body) == (200, b"virtual"), (host, body)
        conn.close()
