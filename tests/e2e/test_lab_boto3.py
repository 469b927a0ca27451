"""The AWS KMS lab (shared/reference 001 and 002), every task, with boto3 against the stack.

Who is who: the account root plays the lab's administrator (it creates the IAM user, the key, the
trail and the buckets, and is the key administrator); the IAM user ``lab-user`` plays the lab's
``AWSLabsUser-…`` / ``voclabs`` principal as the key *user*: it uploads and opens the image. Its
identity policy grants no cryptographic KMS action, so the key policy alone decides whether it
may use the key (see tests/e2e/labkit.py).

Lab 001 (tasks 1-6): key ``alias/myFirstKey`` with the console's four-statement policy; trail
``myTrail`` into ``mycloudtrailbucket<N>`` (management, S3 data and Insights events); the image
uploaded into that bucket with SSE-KMS under the key; opened by its owner; anonymous access
denied, then ``InvalidArgument`` once public; the key's records found in LookupEvents and in a
delivered ``.json.gz``; the key user removed from the key policy (access gone at once) and
added back (access restored).

Lab 002: key ``alias/MyKMSKey``; ``imagebucket<N>`` with default encryption under it; the image
uploaded without encryption headers comes out SSE-KMS; public access attempts; the key
disabled (the data is unreadable) and enabled again (readable again).

Other real-client checks here: s3transfer's multipart upload with SSE-KMS, read back
byte-identical, and presigned URLs (SigV4 accepted, SigV2 refused for SSE-KMS objects).

Expected values are AWS's documented behaviour, not this project's current output.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.e2e.labkit import (
    EVENT_LOOKUP_TIMEOUT,
    ROOT_ARN,
    SIGV4_REQUIRED,
    TRAIL_DELIVERY_TIMEOUT,
    access_denied_message,
    check_log_key,
    check_s3_kms_record,
    cloudtrail_bucket_policy,
    console_key_policy,
    empty_and_delete_bucket,
    http_get,
    is_s3_kms_record,
    key_arn_pattern,
    lab_user_policy,
    make_png,
    object_url,
    poll,
    records_of_log_file,
    run_all,
    suffix,
    trail_arn,
)
from tests.stackctl import ACCOUNT_ID, REGION, Stack

SFX = suffix()
TRAIL_NAME = "myTrail"
TRAIL_BUCKET = f"mycloudtrailbucket{SFX}"          # lab 001: the trail's bucket holds the image too
IMAGE_BUCKET = f"imagebucket{SFX}"                  # lab 002: default encryption under MyKMSKey
USER_NAME = "lab-user"
IMAGE_KEY = "Eiffel.png"
CLOCK_KEY = "clock.png"
LOG_PREFIX = f"AWSLogs/{ACCOUNT_ID}/CloudTrail/{REGION}/"
MiB = 1024 * 1024


# --- helpers -------------------------------------------------------------------------------

def aws_error(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, str, int]:
    response = exc.value.response
    return (response["Error"]["Code"], response["Error"].get("Message", ""),
            response["ResponseMetadata"]["HTTPStatusCode"])


@dataclass(frozen=True)
class LabUser:
    name: str
    arn: str
    access_key_id: str
    secret_access_key: str
    stack: Stack

    def client(self, service: str, **kwargs: Any) -> Any:
        return self.stack.client(service, aws_access_key_id=self.access_key_id,
                                 aws_secret_access_key=self.secret_access_key, **kwargs)


@dataclass(frozen=True)
class LabKey:
    key_id: str
    arn: str
    alias: str
    policy: dict[str, Any]
    metadata: dict[str, Any]


@dataclass(frozen=True)
class Upload:
    bucket: str
    key: str
    body: bytes
    response: dict[str, Any]
    started: dt.datetime

    @property
    def arn(self) -> str:
        return f"arn:aws:s3:::{self.bucket}/{self.key}"


# --- fixtures: the lab's resources ---------------------------------------------------------

@pytest.fixture(scope="module")
def root(stack: Stack) -> SimpleNamespace:
    return SimpleNamespace(
        s3=stack.client("s3"), kms=stack.client("kms"), iam=stack.client("iam"),
        cloudtrail=stack.client("cloudtrail"))


@pytest.fixture(scope="module")
def lab_user(stack: Stack, root: SimpleNamespace) -> Iterator[LabUser]:
    iam = root.iam
    created = iam.create_user(UserName=USER_NAME)["User"]
    try:
        iam.put_user_policy(UserName=USER_NAME, PolicyName="AWSLabsUserPolicy",
                            PolicyDocument=json.dumps(lab_user_policy([TRAIL_BUCKET, IMAGE_BUCKET])))
        key = iam.create_access_key(UserName=USER_NAME)["AccessKey"]
        yield LabUser(USER_NAME, created["Arn"], key["AccessKeyId"], key["SecretAccessKey"], stack)
    finally:
        def delete_keys() -> None:
            for k in iam.list_access_keys(UserName=USER_NAME)["AccessKeyMetadata"]:
                iam.delete_access_key(UserName=USER_NAME, AccessKeyId=k["AccessKeyId"])

        def delete_policies() -> None:
            for name in iam.list_user_policies(UserName=USER_NAME)["PolicyNames"]:
                iam.delete_user_policy(UserName=USER_NAME, PolicyName=name)

        run_all(delete_keys, delete_policies, lambda: iam.delete_user(UserName=USER_NAME))


def _make_key(kms: Any, alias: str, description: str, user_arn: str) -> LabKey:
    policy = console_key_policy(admins=[ROOT_ARN], users=[user_arn])
    kwargs: dict[str, Any] = {"Policy": json.dumps(policy), "KeySpec": "SYMMETRIC_DEFAULT",
                              "KeyUsage": "ENCRYPT_DECRYPT"}
    if description:
        kwargs["Description"] = description
    meta = kms.create_key(**kwargs)["KeyMetadata"]
    return LabKey(meta["KeyId"], meta["Arn"], alias, policy, meta)


def _retire_key(kms: Any, key: LabKey) -> None:
    run_all(lambda: kms.delete_alias(AliasName=key.alias),
            lambda: kms.schedule_key_deletion(KeyId=key.key_id, PendingWindowInDays=7))


@pytest.fixture(scope="module")
def my_first_key(root: SimpleNamespace, lab_user: LabUser) -> Iterator[LabKey]:
    """Lab 001 task 1: symmetric key, alias myFirstKey, description, the console's key policy."""
    key = _make_key(root.kms, "alias/myFirstKey", "KMS Key for S3 data", lab_user.arn)
    try:
        root.kms.create_alias(AliasName=key.alias, TargetKeyId=key.key_id)
        yield key
    finally:
        _retire_key(root.kms, key)


@pytest.fixture(scope="module")
def trail(root: SimpleNamespace) -> Iterator[dict[str, Any]]:
    """Lab 001 task 2: a trail into a new bucket; management, S3 data and Insights events."""
    s3, ct = root.s3, root.cloudtrail
    s3.create_bucket(Bucket=TRAIL_BUCKET)
    try:
        s3.put_bucket_policy(Bucket=TRAIL_BUCKET,
                             Policy=json.dumps(cloudtrail_bucket_policy(TRAIL_BUCKET, TRAIL_NAME)))
        created = ct.create_trail(Name=TRAIL_NAME, S3BucketName=TRAIL_BUCKET,
                                  IsMultiRegionTrail=True, EnableLogFileValidation=False)
        try:
            ct.put_event_selectors(TrailName=TRAIL_NAME, EventSelectors=[{
                "ReadWriteType": "All", "IncludeManagementEvents": True,
                "DataResources": [{"Type": "AWS::S3::Object", "Values": ["arn:aws:s3"]}]}])
            ct.put_insight_selectors(TrailName=TRAIL_NAME, InsightSelectors=[
                {"InsightType": "ApiCallRateInsight"}, {"InsightType": "ApiErrorRateInsight"}])
            ct.start_logging(Name=TRAIL_NAME)
            yield created
        finally:
            run_all(lambda: ct.stop_logging(Name=TRAIL_NAME),
                    lambda: ct.delete_trail(Name=TRAIL_NAME))
    finally:
        empty_and_delete_bucket(s3, TRAIL_BUCKET)


@pytest.fixture(scope="module")
def image() -> bytes:
    return make_png(seed=1)


@pytest.fixture(scope="module")
def uploaded(trail: dict[str, Any], my_first_key: LabKey, lab_user: LabUser,
             image: bytes) -> Upload:
    """Lab 001 task 3: the key user uploads the image with SSE-KMS under myFirstKey."""
    started = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=5)
    response = lab_user.client("s3").put_object(
        Bucket=TRAIL_BUCKET, Key=IMAGE_KEY, Body=image, ContentType="image/png",
        ServerSideEncryption="aws:kms", SSEKMSKeyId=my_first_key.key_id)
    return Upload(TRAIL_BUCKET, IMAGE_KEY, image, response, started)


@pytest.fixture(scope="module")
def my_kms_key(root: SimpleNamespace, lab_user: LabUser) -> Iterator[LabKey]:
    """Lab 002 task 1: key MyKMSKey (no description), same administrator/user split."""
    key = _make_key(root.kms, "alias/MyKMSKey", "", lab_user.arn)
    try:
        root.kms.create_alias(AliasName=key.alias, TargetKeyId=key.key_id)
        yield key
    finally:
        _retire_key(root.kms, key)


@pytest.fixture(scope="module")
def image_bucket(root: SimpleNamespace, my_kms_key: LabKey) -> Iterator[str]:
    """Lab 002 task 2: the image bucket, default encryption SSE-KMS under MyKMSKey."""
    root.s3.create_bucket(Bucket=IMAGE_BUCKET)
    try:
        root.s3.put_bucket_encryption(Bucket=IMAGE_BUCKET, ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {
                "SSEAlgorithm": "aws:kms", "KMSMasterKeyID": my_kms_key.arn},
                "BucketKeyEnabled": False}]})
        yield IMAGE_BUCKET
    finally:
        empty_and_delete_bucket(root.s3, IMAGE_BUCKET)


@pytest.fixture(scope="module")
def clock(image_bucket: str, lab_user: LabUser) -> Upload:
    """Lab 002 task 2: clock.png uploaded with no encryption header: the default applies."""
    body = make_png(width=40, height=40, seed=2)
    started = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=5)
    response = lab_user.client("s3").put_object(Bucket=image_bucket, Key=CLOCK_KEY, Body=body,
                                                ContentType="image/png")
    return Upload(image_bucket, CLOCK_KEY, body, response, started)


# --- lab 001, task 1: the key --------------------------------------------------------------

def test_task1_key_is_created_with_alias_description_and_console_policy(
        root: SimpleNamespace, my_first_key: LabKey) -> None:
    meta = my_first_key.metadata
    assert key_arn_pattern().match(meta["Arn"])
    assert meta["Arn"].endswith("/" + meta["KeyId"])
    assert meta["AWSAccountId"] == ACCOUNT_ID
    assert meta["Description"] == "KMS Key for S3 data"
    assert meta["Enabled"] is True
    assert meta["KeyState"] == "Enabled"
    assert meta["KeyUsage"] == "ENCRYPT_DECRYPT"
    assert meta["KeySpec"] == "SYMMETRIC_DEFAULT"
    assert meta["CustomerMasterKeySpec"] == "SYMMETRIC_DEFAULT"
    assert meta["EncryptionAlgorithms"] == ["SYMMETRIC_DEFAULT"]
    assert meta["Origin"] == "AWS_KMS"
    assert meta["KeyManager"] == "CUSTOMER"
    assert meta["MultiRegion"] is False
    assert isinstance(meta["CreationDate"], dt.datetime)

    # DescribeKey accepts the key id, key ARN, alias name and alias ARN (lab step 13 copies the id).
    alias_arn = f"arn:aws:kms:{REGION}:{ACCOUNT_ID}:alias/myFirstKey"
    for ref in (my_first_key.key_id, my_first_key.arn, "alias/myFirstKey", alias_arn):
        described = root.kms.describe_key(KeyId=ref)["KeyMetadata"]
        assert described["KeyId"] == my_first_key.key_id, ref
        assert described["Arn"] == my_first_key.arn
        assert described["KeyState"] == "Enabled"

    aliases = root.kms.list_aliases(KeyId=my_first_key.key_id)["Aliases"]
    assert [(a["AliasName"], a["AliasArn"], a["TargetKeyId"]) for a in aliases] == [
        ("alias/myFirstKey", alias_arn, my_first_key.key_id)]
    keys = [k["KeyId"] for page in root.kms.get_paginator("list_keys").paginate() for k in page["Keys"]]
    assert my_first_key.key_id in keys

    stored = root.kms.get_key_policy(KeyId=my_first_key.key_id, PolicyName="default")["Policy"]
    assert json.loads(stored) == my_first_key.policy
    assert root.kms.list_key_policies(KeyId=my_first_key.key_id)["PolicyNames"] == ["default"]


def test_task1_key_user_can_use_the_key_but_not_administer_it(
        my_first_key: LabKey, lab_user: LabUser) -> None:
    kms = lab_user.client("kms")
    assert kms.describe_key(KeyId="alias/myFirstKey")["KeyMetadata"]["Arn"] == my_first_key.arn
    context = {"purpose": "lab"}
    out = kms.encrypt(KeyId="alias/myFirstKey", Plaintext=b"lab secret", EncryptionContext=context)
    assert out["KeyId"] == my_first_key.arn
    assert out["EncryptionAlgorithm"] == "SYMMETRIC_DEFAULT"
    back = kms.decrypt(CiphertextBlob=out["CiphertextBlob"], EncryptionContext=context)
    assert back["Plaintext"] == b"lab secret"
    assert back["KeyId"] == my_first_key.arn
    # Its identity policy allows listing (IAM-only permissions) ...
    assert my_first_key.key_id in [k["KeyId"] for k in kms.list_keys(Limit=1000)["Keys"]]
    # ... but it is a key user, not a key administrator.
    with pytest.raises(ClientError) as exc:
        kms.get_key_policy(KeyId=my_first_key.key_id, PolicyName="default")
    code, message, status = aws_error(exc)
    assert (code, status) == ("AccessDeniedException", 400)
    assert message == access_denied_message(lab_user.arn, "kms:GetKeyPolicy", my_first_key.arn)
    with pytest.raises(ClientError) as exc:
        kms.disable_key(KeyId=my_first_key.key_id)
    assert aws_error(exc)[0] == "AccessDeniedException"


# --- lab 001, task 2: the trail ------------------------------------------------------------

def test_task2_trail_needs_the_cloudtrail_bucket_policy(root: SimpleNamespace) -> None:
    bucket = f"mycloudtrailbucket{suffix()}"
    root.s3.create_bucket(Bucket=bucket)
    try:
        with pytest.raises(ClientError) as exc:
            root.cloudtrail.create_trail(Name=f"noPolicyTrail{suffix()}", S3BucketName=bucket)
        code, message, status = aws_error(exc)
        assert (code, status) == ("InsufficientS3BucketPolicyException", 400)
        assert message == f"Incorrect S3 bucket policy is detected for bucket: {bucket}"
    finally:
        empty_and_delete_bucket(root.s3, bucket)


def test_task2_trail_is_created_and_logging(root: SimpleNamespace, trail: dict[str, Any]) -> None:
    assert trail["Name"] == TRAIL_NAME
    assert trail["S3BucketName"] == TRAIL_BUCKET
    assert trail["TrailARN"] == trail_arn(TRAIL_NAME)
    assert trail["IsMultiRegionTrail"] is True
    assert trail["IncludeGlobalServiceEvents"] is True
    assert trail["LogFileValidationEnabled"] is False
    assert trail["IsOrganizationTrail"] is False
    assert "KmsKeyId" not in trail  # the lab de-selects SSE-KMS for log files

    described = root.cloudtrail.describe_trails(trailNameList=[TRAIL_NAME])["trailList"]
    assert len(described) == 1
    assert described[0]["S3BucketName"] == TRAIL_BUCKET
    assert described[0]["HomeRegion"] == REGION
    assert described[0]["TrailARN"] == trail_arn(TRAIL_NAME)
    assert described[0]["HasInsightSelectors"] is True
    status = root.cloudtrail.get_trail_status(Name=TRAIL_NAME)
    assert status["IsLogging"] is True
    assert isinstance(status["StartLoggingTime"], dt.datetime)

    selectors = root.cloudtrail.get_event_selectors(TrailName=TRAIL_NAME)["EventSelectors"]
    assert len(selectors) == 1
    assert selectors[0].pop("ExcludeManagementEventSources", []) == []
    assert selectors == [{"ReadWriteType": "All", "IncludeManagementEvents": True,
                          "DataResources": [{"Type": "AWS::S3::Object", "Values": ["arn:aws:s3"]}]}]
    insights = root.cloudtrail.get_insight_selectors(TrailName=TRAIL_NAME)["InsightSelectors"]
    assert sorted(i["InsightType"] for i in insights) == ["ApiCallRateInsight", "ApiErrorRateInsight"]
    assert root.s3.get_bucket_policy(Bucket=TRAIL_BUCKET)["Policy"]


# --- lab 001, task 3: upload with SSE-KMS --------------------------------------------------

def test_task3_image_is_stored_encrypted_under_the_key(
        root: SimpleNamespace, uploaded: Upload, my_first_key: LabKey) -> None:
    assert uploaded.response["ServerSideEncryption"] == "aws:kms"
    assert uploaded.response["SSEKMSKeyId"] == my_first_key.arn  # the id was sent; the ARN comes back
    # SSE-KMS ETags are not the MD5 of the data (S3 API reference, "Common Response Headers").
    assert re.fullmatch(r'"[0-9a-f]{32}"', uploaded.response["ETag"])
    head = root.s3.head_object(Bucket=uploaded.bucket, Key=uploaded.key)
    assert head["ServerSideEncryption"] == "aws:kms"
    assert head["SSEKMSKeyId"] == my_first_key.arn
    assert head["ContentLength"] == len(uploaded.body)
    assert head["ContentType"] == "image/png"
    listed = root.s3.list_objects_v2(Bucket=uploaded.bucket, Prefix=uploaded.key)["Contents"]
    assert [(o["Key"], o["Size"]) for o in listed] == [(uploaded.key, len(uploaded.body))]


# --- lab 001, task 4: open it; anonymous access --------------------------------------------

def test_task4_owner_and_key_user_open_the_image(
        root: SimpleNamespace, uploaded: Upload, my_first_key: LabKey, lab_user: LabUser) -> None:
    for s3 in (root.s3, lab_user.client("s3")):
        got = s3.get_object(Bucket=uploaded.bucket, Key=uploaded.key)
        assert got["Body"].read() == uploaded.body
        assert got["ServerSideEncryption"] == "aws:kms"
        assert got["SSEKMSKeyId"] == my_first_key.arn
        assert got["ContentType"] == "image/png"
    ranged = root.s3.get_object(Bucket=uploaded.bucket, Key=uploaded.key, Range="bytes=0-7")
    assert ranged["Body"].read() == b"\x89PNG\r\n\x1a\n"
    assert ranged["ContentRange"] == f"bytes 0-7/{len(uploaded.body)}"


def test_task4_anonymous_object_url_is_access_denied(stack: Stack, uploaded: Upload) -> None:
    answer = http_get(object_url(stack.endpoint, uploaded.bucket, uploaded.key))
    assert answer.status == 403
    error = answer.error()
    assert list(error) == ["Code", "Message", "RequestId", "HostId"]
    assert error["Code"] == "AccessDenied"
    assert error["Message"] == "Access Denied"
    assert uploaded.body not in answer.body


def test_task4_public_object_still_needs_sigv4(
        stack: Stack, root: SimpleNamespace, uploaded: Upload) -> None:
    """Block Public Access off, ACLs enabled, object public-read -> InvalidArgument (000, 4b)."""
    s3, bucket, key = root.s3, uploaded.bucket, uploaded.key
    # New buckets: all public access blocked, ACLs disabled (Object Ownership BucketOwnerEnforced).
    assert s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True, "IgnorePublicAcls": True,
        "BlockPublicPolicy": True, "RestrictPublicBuckets": True}
    assert s3.get_bucket_ownership_controls(Bucket=bucket)["OwnershipControls"] == {
        "Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}
    try:
        # Steps 8-10: de-select "Block all public access".
        s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration={
            "BlockPublicAcls": False, "IgnorePublicAcls": False,
            "BlockPublicPolicy": False, "RestrictPublicBuckets": False})
        # With ACLs still disabled, "Make public using ACL" is refused.
        with pytest.raises(ClientError) as exc:
            s3.put_object_acl(Bucket=bucket, Key=key, ACL="public-read")
        code, message, status = aws_error(exc)
        assert (code, message, status) == ("AccessControlListNotSupported",
                                           "The bucket does not allow ACLs", 400)
        # Steps 11-14: Object Ownership -> ACLs enabled (bucket owner preferred).
        s3.put_bucket_ownership_controls(Bucket=bucket, OwnershipControls={
            "Rules": [{"ObjectOwnership": "BucketOwnerPreferred"}]})
        # Steps 15-20: make the object public using its ACL.
        s3.put_object_acl(Bucket=bucket, Key=key, ACL="public-read")
        grants = s3.get_object_acl(Bucket=bucket, Key=key)["Grants"]
        assert {"Grantee": {"Type": "Group", "URI": "http://acs.amazonaws.com/groups/global/AllUsers"},
                "Permission": "READ"} in grants

        # Steps 21-23: refresh the object URL.
        answer = http_get(object_url(stack.endpoint, bucket, key))
        assert answer.status == 400
        assert answer.body.startswith(b'<?xml version="1.0" encoding="UTF-8"?>')
        assert answer.headers["content-type"].startswith("application/xml")
        error = answer.error()
        assert list(error) == ["Code", "Message", "ArgumentName", "ArgumentValue", "RequestId",
                               "HostId"]
        assert error["Code"] == "InvalidArgument"
        assert error["Message"] == SIGV4_REQUIRED
        assert error["ArgumentName"] == "Authorization"
        assert error["ArgumentValue"] == "null"
        assert error["RequestId"] and error["RequestId"] == answer.headers["x-amz-request-id"]
        assert error["HostId"] and error["HostId"] == answer.headers["x-amz-id-2"]
        assert uploaded.body not in answer.body
    finally:
        run_all(lambda: s3.put_object_acl(Bucket=bucket, Key=key, ACL="private"),
                lambda: s3.put_bucket_ownership_controls(Bucket=bucket, OwnershipControls={
                    "Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}),
                lambda: s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration={
                    "BlockPublicAcls": True, "IgnorePublicAcls": True,
                    "BlockPublicPolicy": True, "RestrictPublicBuckets": True}))


def test_task4_presigned_sigv4_url_opens_the_image(
        lab_user: LabUser, uploaded: Upload) -> None:
    s3 = lab_user.client("s3", config=Config(signature_version="s3v4",
                                             retries={"max_attempts": 1}))
    url = s3.generate_presigned_url("get_object", Params={"Bucket": uploaded.bucket,
                                                          "Key": uploaded.key}, ExpiresIn=300)
    assert "X-Amz-Algorithm=AWS4-HMAC-SHA256" in url
    answer = http_get(url)
    assert answer.status == 200
    assert answer.body == uploaded.body
    assert answer.headers["x-amz-server-side-encryption"] == "aws:kms"


def test_task4_presigned_sigv2_url_is_refused_for_sse_kms(
        lab_user: LabUser, uploaded: Upload) -> None:
    s3 = lab_user.client("s3", config=Config(signature_version="s3", retries={"max_attempts": 1}))
    url = s3.generate_presigned_url("get_object", Params={"Bucket": uploaded.bucket,
                                                          "Key": uploaded.key}, ExpiresIn=300)
    assert "Signature=" in url and "X-Amz-Algorithm" not in url
    answer = http_get(url)
    assert answer.status == 400
    error = answer.error()
    assert error["Code"] == "InvalidArgument"
    assert error["Message"] == SIGV4_REQUIRED
    assert uploaded.body not in answer.body


# --- lab 001, task 5: the key's activity in CloudTrail -------------------------------------

def _lookup(ct: Any, event_name: str, since: dt.datetime, key_arn: str,
            object_arn: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
    kwargs: dict[str, Any] = {
        "LookupAttributes": [{"AttributeKey": "EventName", "AttributeValue": event_name}],
        "StartTime": since, "MaxResults": 50}
    while True:
        page = ct.lookup_events(**kwargs)
        for event in page["Events"]:
            record = json.loads(event["CloudTrailEvent"])
            if is_s3_kms_record(record, event_name, key_arn, object_arn):
                return event, record
        if not page.get("NextToken"):
            return None
        kwargs["NextToken"] = page["NextToken"]


@pytest.mark.parametrize("event_name", ["GenerateDataKey", "Decrypt"])
def test_task5_lookup_events_show_the_key_used_for_the_image(
        root: SimpleNamespace, uploaded: Upload, my_first_key: LabKey, lab_user: LabUser,
        event_name: str) -> None:
    # The upload asked KMS for a data key; opening the image asks KMS to decrypt it.
    lab_user.client("s3").get_object(Bucket=uploaded.bucket, Key=uploaded.key)["Body"].read()
    event, record = poll(
        lambda: _lookup(root.cloudtrail, event_name, uploaded.started, my_first_key.arn, uploaded.arn),
        timeout=EVENT_LOOKUP_TIMEOUT, what=f"{event_name} of {uploaded.arn} in LookupEvents")
    assert event["EventName"] == event_name
    assert event["EventSource"] == "kms.amazonaws.com"
    assert event["ReadOnly"] == "true"
    assert event["Username"] == USER_NAME
    assert {"ResourceType": "AWS::KMS::Key", "ResourceName": my_first_key.arn} in event["Resources"]
    assert event["EventId"] == record["eventID"]
    check_s3_kms_record(record, event_name=event_name, key_arn=my_first_key.arn,
                        object_arn=uploaded.arn, user_arn=lab_user.arn)
    assert record["userIdentity"]["type"] == "IAMUser"
    assert record["userIdentity"]["userName"] == USER_NAME


def test_task5_trail_delivers_a_log_file_with_the_key_and_the_file_name(
        root: SimpleNamespace, uploaded: Upload, my_first_key: LabKey, lab_user: LabUser) -> None:
    s3 = root.s3
    seen: dict[str, list[dict[str, Any]]] = {}

    def find() -> tuple[str, dict[str, Any], dict[str, Any]] | None:
        kms_hit: tuple[str, dict[str, Any]] | None = None
        put_hit: dict[str, Any] | None = None
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=TRAIL_BUCKET,
                                                                  Prefix=LOG_PREFIX):
            for obj in page.get("Contents", []):
                if obj["Key"] not in seen:
                    check_log_key(obj["Key"])
                    blob = s3.get_object(Bucket=TRAIL_BUCKET, Key=obj["Key"])["Body"].read()
                    seen[obj["Key"]] = records_of_log_file(blob)
                for record in seen[obj["Key"]]:
                    if is_s3_kms_record(record, "GenerateDataKey", my_first_key.arn, uploaded.arn):
                        kms_hit = (obj["Key"], record)
                    elif (record.get("eventSource") == "s3.amazonaws.com"
                          and record.get("eventName") == "PutObject"
                          and (record.get("requestParameters") or {}).get("key") == uploaded.key):
                        put_hit = record
        if kms_hit and put_hit:
            return kms_hit[0], kms_hit[1], put_hit
        return None

    log_key, record, put_record = poll(find, timeout=TRAIL_DELIVERY_TIMEOUT, interval=1.0,
                                       what="a delivered log file with the image's records")
    # The record names the key ARN and the object (lab step 7: "the encryption Key ID ... the name
    # of the file that you upload").
    check_s3_kms_record(record, event_name="GenerateDataKey", key_arn=my_first_key.arn,
                        object_arn=uploaded.arn, user_arn=lab_user.arn)
    assert my_first_key.key_id in json.dumps(record)
    # The S3 data event of the upload (the lab selected data events).
    assert put_record["requestParameters"]["bucketName"] == uploaded.bucket
    assert put_record["eventCategory"] == "Data"
    assert put_record["managementEvent"] is False
    assert put_record["readOnly"] is False
    assert put_record["userIdentity"]["arn"] == lab_user.arn
    assert {"type": "AWS::S3::Object", "ARN": uploaded.arn} in [
        {k: r[k] for k in ("type", "ARN")} for r in put_record["resources"]]
    # Lab step 3: the log file is later than the image.
    log_obj = s3.head_object(Bucket=TRAIL_BUCKET, Key=log_key)
    image_obj = s3.head_object(Bucket=uploaded.bucket, Key=uploaded.key)
    assert log_obj["LastModified"] >= image_obj["LastModified"]
    assert root.cloudtrail.get_trail_status(Name=TRAIL_NAME).get("LatestDeliveryTime")


# --- lab 001, task 6: remove the key user, add it back -------------------------------------

def test_task6_removing_the_key_user_takes_access_away_and_adding_it_back_restores_it(
        root: SimpleNamespace, uploaded: Upload, my_first_key: LabKey, lab_user: LabUser) -> None:
    s3, kms = lab_user.client("s3"), lab_user.client("kms")
    ciphertext = kms.encrypt(KeyId=my_first_key.arn, Plaintext=b"task 6")["CiphertextBlob"]
    with_user = console_key_policy(admins=[ROOT_ARN], users=[lab_user.arn])
    without_user = console_key_policy(admins=[ROOT_ARN], users=[])
    try:
        root.kms.put_key_policy(KeyId=my_first_key.key_id, PolicyName="default",
                                Policy=json.dumps(without_user))
        stored = root.kms.get_key_policy(KeyId=my_first_key.key_id, PolicyName="default")["Policy"]
        assert json.loads(stored) == without_user
        assert lab_user.arn not in stored

        # "Immediately, the user's permission to use this key is removed."
        with pytest.raises(ClientError) as exc:
            s3.get_object(Bucket=uploaded.bucket, Key=uploaded.key)
        code, message, status = aws_error(exc)
        assert (code, status) == ("AccessDenied", 403)
        # S3 passes KMS's refusal through as its AccessDenied.
        assert message == access_denied_message(lab_user.arn, "kms:Decrypt", my_first_key.arn)
        with pytest.raises(ClientError) as exc:
            s3.put_object(Bucket=uploaded.bucket, Key="after-removal.png", Body=uploaded.body,
                          ServerSideEncryption="aws:kms", SSEKMSKeyId=my_first_key.arn)
        assert aws_error(exc) == ("AccessDenied", access_denied_message(
            lab_user.arn, "kms:GenerateDataKey", my_first_key.arn), 403)
        with pytest.raises(ClientError) as exc:
            root.s3.head_object(Bucket=uploaded.bucket, Key="after-removal.png")
        assert aws_error(exc)[2] == 404
        for action, call in (
                ("kms:Encrypt", lambda: kms.encrypt(KeyId=my_first_key.arn, Plaintext=b"x")),
                ("kms:Decrypt", lambda: kms.decrypt(CiphertextBlob=ciphertext)),
                ("kms:GenerateDataKey",
                 lambda: kms.generate_data_key(KeyId=my_first_key.arn, KeySpec="AES_256")),
                ("kms:DescribeKey", lambda: kms.describe_key(KeyId=my_first_key.arn))):
            with pytest.raises(ClientError) as exc:
                call()
            code, message, status = aws_error(exc)
            assert (code, status) == ("AccessDeniedException", 400), action
            assert message == access_denied_message(lab_user.arn, action, my_first_key.arn)
        # The owner (root, through the "Enable IAM User Permissions" statement) still reads it.
        assert root.s3.get_object(Bucket=uploaded.bucket,
                                  Key=uploaded.key)["Body"].read() == uploaded.body

        # "Immediately, the user's permission to use this key is restored."
        root.kms.put_key_policy(KeyId=my_first_key.key_id, PolicyName="default",
                                Policy=json.dumps(with_user))
        assert s3.get_object(Bucket=uploaded.bucket, Key=uploaded.key)["Body"].read() == uploaded.body
        assert kms.decrypt(CiphertextBlob=ciphertext)["Plaintext"] == b"task 6"
        assert kms.encrypt(KeyId=my_first_key.arn, Plaintext=b"x")["KeyId"] == my_first_key.arn
    finally:
        root.kms.put_key_policy(KeyId=my_first_key.key_id, PolicyName="default",
                                Policy=json.dumps(with_user))


# --- lab 002: default encryption, public access, disable / enable --------------------------

def test_lab2_default_encryption_applies_the_key(
        root: SimpleNamespace, image_bucket: str, clock: Upload, my_kms_key: LabKey,
        lab_user: LabUser) -> None:
    rules = root.s3.get_bucket_encryption(Bucket=image_bucket)[
        "ServerSideEncryptionConfiguration"]["Rules"]
    assert rules == [{"ApplyServerSideEncryptionByDefault": {
        "SSEAlgorithm": "aws:kms", "KMSMasterKeyID": my_kms_key.arn}, "BucketKeyEnabled": False}]
    assert clock.response["ServerSideEncryption"] == "aws:kms"
    assert clock.response["SSEKMSKeyId"] == my_kms_key.arn
    head = lab_user.client("s3").head_object(Bucket=image_bucket, Key=CLOCK_KEY)
    assert head["ServerSideEncryption"] == "aws:kms"
    assert head["SSEKMSKeyId"] == my_kms_key.arn
    got = lab_user.client("s3").get_object(Bucket=image_bucket, Key=CLOCK_KEY)
    assert got["Body"].read() == clock.body
    # An explicit header still overrides the bucket default (lab 001 "Override bucket settings").
    other = root.s3.put_object(Bucket=image_bucket, Key="sse-s3.png", Body=b"x",
                               ServerSideEncryption="AES256")
    assert other["ServerSideEncryption"] == "AES256"
    assert "SSEKMSKeyId" not in other
    root.s3.delete_object(Bucket=image_bucket, Key="sse-s3.png")


def test_lab2_public_access_attempts(stack: Stack, root: SimpleNamespace, clock: Upload) -> None:
    url = object_url(stack.endpoint, clock.bucket, clock.key)
    denied = http_get(url)
    assert denied.status == 403
    assert denied.error()["Code"] == "AccessDenied"
    s3 = root.s3
    try:
        s3.delete_public_access_block(Bucket=clock.bucket)
        with pytest.raises(ClientError) as exc:
            s3.get_public_access_block(Bucket=clock.bucket)
        assert aws_error(exc)[0] == "NoSuchPublicAccessBlockConfiguration"
        s3.put_bucket_ownership_controls(Bucket=clock.bucket, OwnershipControls={
            "Rules": [{"ObjectOwnership": "BucketOwnerPreferred"}]})
        s3.put_object_acl(Bucket=clock.bucket, Key=clock.key, ACL="public-read")
        answer = http_get(url)
        assert answer.status == 400
        error = answer.error()
        assert (error["Code"], error["Message"]) == ("InvalidArgument", SIGV4_REQUIRED)
        assert clock.body not in answer.body
    finally:
        run_all(lambda: s3.put_object_acl(Bucket=clock.bucket, Key=clock.key, ACL="private"),
                lambda: s3.put_bucket_ownership_controls(Bucket=clock.bucket, OwnershipControls={
                    "Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}),
                lambda: s3.put_public_access_block(Bucket=clock.bucket,
                                                   PublicAccessBlockConfiguration={
                    "BlockPublicAcls": True, "IgnorePublicAcls": True,
                    "BlockPublicPolicy": True, "RestrictPublicBuckets": True}))


def test_lab2_disabled_key_makes_the_data_unreadable_until_enabled(
        root: SimpleNamespace, clock: Upload, my_kms_key: LabKey, lab_user: LabUser) -> None:
    user_s3 = lab_user.client("s3")
    ciphertext = root.kms.encrypt(KeyId=my_kms_key.arn, Plaintext=b"before")["CiphertextBlob"]
    disabled_message = f"{my_kms_key.arn} is disabled."
    try:
        root.kms.disable_key(KeyId=my_kms_key.key_id)
        meta = root.kms.describe_key(KeyId=my_kms_key.key_id)["KeyMetadata"]
        assert (meta["Enabled"], meta["KeyState"]) == (False, "Disabled")

        for s3 in (root.s3, user_s3):
            with pytest.raises(ClientError) as exc:
                s3.get_object(Bucket=clock.bucket, Key=clock.key)
            assert aws_error(exc) == ("KMS.DisabledException", disabled_message, 400)
        with pytest.raises(ClientError) as exc:  # the bucket default cannot encrypt either
            user_s3.put_object(Bucket=clock.bucket, Key="while-disabled.png", Body=clock.body)
        assert aws_error(exc) == ("KMS.DisabledException", disabled_message, 400)
        with pytest.raises(ClientError) as exc:
            root.kms.encrypt(KeyId=my_kms_key.arn, Plaintext=b"x")
        assert aws_error(exc) == ("DisabledException", disabled_message, 400)
        with pytest.raises(ClientError) as exc:
            root.kms.decrypt(CiphertextBlob=ciphertext)
        assert aws_error(exc) == ("DisabledException", disabled_message, 400)

        root.kms.enable_key(KeyId=my_kms_key.key_id)
        meta = root.kms.describe_key(KeyId=my_kms_key.key_id)["KeyMetadata"]
        assert (meta["Enabled"], meta["KeyState"]) == (True, "Enabled")
        assert user_s3.get_object(Bucket=clock.bucket, Key=clock.key)["Body"].read() == clock.body
        assert root.kms.decrypt(CiphertextBlob=ciphertext)["Plaintext"] == b"before"
    finally:
        root.kms.enable_key(KeyId=my_kms_key.key_id)


# --- other real clients: s3transfer multipart with SSE-KMS ---------------------------------

def test_s3transfer_multipart_upload_with_sse_kms_reads_back_identical(
        root: SimpleNamespace, image_bucket: str, my_first_key: LabKey, tmp_path: Path) -> None:
    size = 20 * MiB + 12345
    src, dst = tmp_path / "big.bin", tmp_path / "big.out"
    data = os.urandom(size)
    src.write_bytes(data)
    config = TransferConfig(multipart_threshold=8 * MiB, multipart_chunksize=8 * MiB,
                            max_concurrency=4)
    key = "multipart/big.bin"
    try:
        root.s3.upload_file(str(src), image_bucket, key, Config=config, ExtraArgs={
            "ServerSideEncryption": "aws:kms", "SSEKMSKeyId": my_first_key.arn})
        head = root.s3.head_object(Bucket=image_bucket, Key=key)
        assert head["ContentLength"] == size
        assert head["ServerSideEncryption"] == "aws:kms"
        assert head["SSEKMSKeyId"] == my_first_key.arn  # the request's key, not the bucket default
        assert re.fullmatch(r'"[0-9a-f]{32}-3"', head["ETag"]), head["ETag"]
        root.s3.download_file(image_bucket, key, str(dst), Config=config)
        assert hashlib.sha256(dst.read_bytes()).digest() == hashlib.sha256(data).digest()
        # A range across the first part boundary decrypts both sides.
        lo, hi = 8 * MiB - 100, 8 * MiB + 99
        ranged = root.s3.get_object(Bucket=image_bucket, Key=key, Range=f"bytes={lo}-{hi}")
        assert ranged["Body"].read() == data[lo:hi + 1]
    finally:
        root.s3.delete_object(Bucket=image_bucket, Key=key)
