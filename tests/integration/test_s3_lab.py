"""The seed lab's S3 steps (shared/reference 000-002) against the real stack.

SSE-KMS upload with a customer key, anonymous AccessDenied, public-read then the
InvalidArgument "require AWS Signature Version 4" XML exactly as reference 000 shows it,
SigV2 likewise, a SigV4 presigned URL that works, a key user removed from the key policy
losing GetObject and regaining it, and the KMS calls S3 made on the user's behalf in the trail.
"""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.request
import uuid
from typing import Any

import botocore
import pytest
from botocore.config import Config

from tests.stackctl import ACCOUNT_ID, Stack

USER = "awsstudent"


def _key_policy(user_arn: str | None) -> str:
    statements: list[dict[str, Any]] = [
        {"Sid": "Enable IAM User Permissions", "Effect": "Allow",
         "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT_ID}:root"}, "Action": "kms:*", "Resource": "*"}]
    if user_arn:
        statements.append({"Sid": "Allow use of the key", "Effect": "Allow", "Principal": {"AWS": user_arn},
                           "Action": ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*",
                                      "kms:DescribeKey"], "Resource": "*"})
    return json.dumps({"Id": "key-consolepolicy-3", "Version": "2012-10-17", "Statement": statements})


@pytest.fixture(scope="module")
def lab(stack: Stack) -> dict[str, Any]:
    iam = stack.client("iam")
    name = f"{USER}-{uuid.uuid4().hex[:6]}"
    user = iam.create_user(UserName=name)["User"]
    iam.put_user_policy(UserName=name, PolicyName="s3", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}))
    ak = iam.create_access_key(UserName=name)["AccessKey"]
    kms = stack.client("kms")
    key = kms.create_key(Description="KMS Key for S3 data", Policy=_key_policy(user["Arn"]))["KeyMetadata"]
    kms.create_alias(AliasName=f"alias/myFirstKey-{name}", TargetKeyId=key["KeyId"])
    student_s3 = stack.client("s3", aws_access_key_id=ak["AccessKeyId"], aws_secret_access_key=ak["SecretAccessKey"])
    bucket = f"mycloudtrailbucket{uuid.uuid4().int % 10**8}"
    stack.client("s3").create_bucket(Bucket=bucket)
    return {"user": user, "key": key, "s3": student_s3, "bucket": bucket, "kms": kms,
            "ak": ak}


def _anonymous_get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_lab_flow(stack: Stack, lab: dict[str, Any]) -> None:
    s3, bucket, key = lab["s3"], lab["bucket"], lab["key"]
    image = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 600
    put = s3.put_object(Bucket=bucket, Key="clock.png", Body=image, ContentType="image/png",
                        ServerSideEncryption="aws:kms", SSEKMSKeyId=key["KeyId"])
    assert put["ServerSideEncryption"] == "aws:kms" and put["SSEKMSKeyId"] == key["Arn"]
    head = s3.head_object(Bucket=bucket, Key="clock.png")
    assert head["SSEKMSKeyId"] == key["Arn"]
    assert s3.get_object(Bucket=bucket, Key="clock.png")["Body"].read() == image

    url = f"{stack.endpoint}/{bucket}/clock.png"
    status, body = _anonymous_get(url)
    assert status == 403 and "<Code>AccessDenied</Code><Message>Access Denied</Message>" in body

    owner = stack.client("s3")
    owner.delete_public_access_block(Bucket=bucket)
    owner.put_bucket_ownership_controls(Bucket=bucket, OwnershipControls={
        "Rules": [{"ObjectOwnership": "BucketOwnerPreferred"}]})
    owner.put_object_acl(Bucket=bucket, Key="clock.png", ACL="public-read")
    grants = owner.get_object_acl(Bucket=bucket, Key="clock.png")["Grants"]
    assert {"Grantee": {"Type": "Group", "URI": "http://acs.amazonaws.com/groups/global/AllUsers"},
            "Permission": "READ"} in grants

    status, body = _anonymous_get(url)
    assert status == 400
    expected = re.compile(
        r'^<\?xml version="1.0" encoding="UTF-8"\?>\n<Error><Code>InvalidArgument</Code>'
        r"<Message>Requests specifying Server Side Encryption with AWS KMS managed keys require AWS "
        r"Signature Version 4.</Message><ArgumentName>Authorization</ArgumentName>"
        r"<ArgumentValue>null</ArgumentValue><RequestId>[^<]+</RequestId><HostId>[^<]+</HostId></Error>$")
    assert expected.match(body), body

    sigv2 = stack.client("s3", config=Config(signature_version="s3", retries={"max_attempts": 1}))
    with pytest.raises(botocore.exceptions.ClientError) as exc:
        sigv2.get_object(Bucket=bucket, Key="clock.png")
    assert exc.value.response["Error"]["Code"] == "InvalidArgument"
    assert exc.value.response["Error"]["ArgumentName"] == "Authorization"

    # boto3 presigns S3 URLs with SigV2 unless told otherwise: that URL is refused like SigV2 ...
    v2_url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "clock.png"}, ExpiresIn=300)
    assert "Signature=" in v2_url and _anonymous_get(v2_url)[0] == 400
    # ... and a SigV4 presigned URL works.
    ak = lab["ak"]
    v4 = stack.client("s3", aws_access_key_id=ak["AccessKeyId"], aws_secret_access_key=ak["SecretAccessKey"],
                      config=Config(signature_version="s3v4", retries={"max_attempts": 1}))
    presigned = v4.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "clock.png"}, ExpiresIn=300)
    assert "X-Amz-Signature=" in presigned
    with urllib.request.urlopen(presigned) as r:
        assert r.read() == image

    # A non-KMS public object is readable anonymously (the public ACL works).
    owner.put_object(Bucket=bucket, Key="plain.txt", Body=b"plain", ACL="public-read")
    assert _anonymous_get(f"{stack.endpoint}/{bucket}/plain.txt") == (200, "plain")


def test_key_user_removed_and_readded(stack: Stack, lab: dict[str, Any]) -> None:
    s3, bucket, key, kms = lab["s3"], lab["bucket"], lab["key"], lab["kms"]
    s3.put_object(Bucket=bucket, Key="user.txt", Body=b"for the key user", ServerSideEncryption="aws:kms",
                  SSEKMSKeyId=key["Arn"])
    kms.put_key_policy(KeyId=key["KeyId"], PolicyName="default", Policy=_key_policy(None))
    with pytest.raises(botocore.exceptions.ClientError) as exc:
        s3.get_object(Bucket=bucket, Key="user.txt")
    assert exc.value.response["Error"]["Code"] == "AccessDenied"
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert "kms:Decrypt" in exc.value.response["Error"]["Message"]
    with pytest.raises(botocore.exceptions.ClientError) as exc:
        s3.put_object(Bucket=bucket, Key="user2.txt", Body=b"x", ServerSideEncryption="aws:kms", SSEKMSKeyId=key["Arn"])
    assert exc.value.response["Error"]["Code"] == "AccessDenied"
    kms.put_key_policy(KeyId=key["KeyId"], PolicyName="default", Policy=_key_policy(lab["user"]["Arn"]))
    assert s3.get_object(Bucket=bucket, Key="user.txt")["Body"].read() == b"for the key user"


def test_kms_events_of_s3_calls(stack: Stack, lab: dict[str, Any]) -> None:
    s3, bucket, key = lab["s3"], lab["bucket"], lab["key"]
    s3.put_object(Bucket=bucket, Key="trail.png", Body=b"t", ServerSideEncryption="aws:kms", SSEKMSKeyId=key["Arn"])
    ct = stack.client("cloudtrail")
    deadline = time.monotonic() + 20
    found = None
    while time.monotonic() < deadline and found is None:
        events = ct.lookup_events(LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": "GenerateDataKey"}],
                                  MaxResults=50).get("Events", [])
        for ev in events:
            record = json.loads(ev["CloudTrailEvent"])
            ctx = (record.get("requestParameters") or {}).get("encryptionContext") or {}
            if ctx.get("aws:s3:arn") == f"arn:aws:s3:::{bucket}/trail.png":
                found = record
        if found is None:
            time.sleep(0.5)
    assert found is not None, "no GenerateDataKey event with the object's aws:s3:arn context"
    assert found["userIdentity"]["arn"] == lab["user"]["Arn"]
    assert found["userIdentity"].get("invokedBy") == "s3.amazonaws.com"
    # Bucket operations are S3 management events in the same trail.
    created = ct.lookup_events(LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": "CreateBucket"}],
                               MaxResults=50).get("Events", [])
    records = [json.loads(ev["CloudTrailEvent"]) for ev in created]
    mine = [r for r in records if (r.get("requestParameters") or {}).get("bucketName") == bucket]
    assert mine and mine[0]["eventSource"] == "s3.amazonaws.com" and mine[0]["eventCategory"] == "Management"
    assert mine[0]["resources"] == [{"accountId": ACCOUNT_ID, "type": "AWS::S3::Bucket", "ARN": f"arn:aws:s3:::{bucket}"}]
    assert mine[0]["additionalEventData"]["SignatureVersion"] == "SigV4"
