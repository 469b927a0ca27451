"""CloudTrail through the gateway with boto3 and the AWS CLI: event history, trails and
their errors, selectors, tags, public keys, and log files delivered into a bucket."""

from __future__ import annotations

import gzip
import json
import re
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.stackctl import ACCOUNT_ID, REGION, Stack

pytestmark = pytest.mark.timeout(300)

LOG_KEY = re.compile(
    rf"^AWSLogs/{ACCOUNT_ID}/CloudTrail/{REGION}/(\d{{4}})/(\d{{2}})/(\d{{2}})/"
    rf"{ACCOUNT_ID}_CloudTrail_{REGION}_(\d{{8}}T\d{{4}}Z)_[A-Za-z0-9]{{16}}\.json\.gz$"
)


def wait_until(fn: Callable[[], Any], timeout: float = 20.0, every: float = 0.3) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached within {timeout}s")
        time.sleep(every)


def error_code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return str(exc.value.response["Error"]["Code"])


def trail_bucket(stack: Stack, name: str, *, prefix: str = "") -> str:
    s3 = stack.client("s3")
    s3.create_bucket(Bucket=name)
    path = f"{prefix}/AWSLogs/{ACCOUNT_ID}/*" if prefix else f"AWSLogs/{ACCOUNT_ID}/*"
    s3.put_bucket_policy(
        Bucket=name,
        Policy=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Sid": "AWSCloudTrailAclCheck",
                        "Effect": "Allow",
                        "Principal": {"Service": "cloudtrail.amazonaws.com"},
                        "Action": "s3:GetBucketAcl",
                        "Resource": f"arn:aws:s3:::{name}",
                    },
                    {
                        "Sid": "AWSCloudTrailWrite",
                        "Effect": "Allow",
                        "Principal": {"Service": "cloudtrail.amazonaws.com"},
                        "Action": "s3:PutObject",
                        "Resource": f"arn:aws:s3:::{name}/{path}",
                        "Condition": {"StringEquals": {"s3:x-amz-acl": "bucket-owner-full-control"}},
                    },
                ],
            }
        ),
    )
    return name


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def log_records(stack: Stack, bucket: str, prefix: str = "AWSLogs/") -> dict[str, list[dict[str, Any]]]:
    s3 = stack.client("s3")
    out: dict[str, list[dict[str, Any]]] = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            if "/CloudTrail/" in obj["Key"]:
                body = s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
                out[obj["Key"]] = json.loads(gzip.decompress(body))["Records"]
    return out


# ------------------------------------------------------------------ event history


def test_lookup_events_finds_a_kms_call(stack: Stack) -> None:
    ct, kms = stack.client("cloudtrail"), stack.client("kms")
    desc = unique("lookup")
    key = kms.create_key(Description=desc)["KeyMetadata"]

    def find() -> list[dict[str, Any]]:
        events = ct.lookup_events(
            LookupAttributes=[{"AttributeKey": "ResourceName", "AttributeValue": key["Arn"]}]
        )["Events"]
        return [e for e in events if e["EventName"] == "CreateKey"]

    [event] = wait_until(find)
    assert event["EventSource"] == "kms.amazonaws.com" and event["ReadOnly"] == "false"
    assert event["Username"] == "root" and event["AccessKeyId"] == stack.access_key_id
    assert {"ResourceType": "AWS::KMS::Key", "ResourceName": key["Arn"]} in event["Resources"]
    assert abs(event["EventTime"] - datetime.now(timezone.utc)) < timedelta(minutes=2)
    record = json.loads(event["CloudTrailEvent"])
    assert record["eventID"] == event["EventId"]
    assert record["userIdentity"]["type"] == "Root"
    assert record["userIdentity"]["arn"] == f"arn:aws:iam::{ACCOUNT_ID}:root"
    assert record["eventSource"] == "kms.amazonaws.com" and record["eventName"] == "CreateKey"
    assert record["awsRegion"] == REGION and record["recipientAccountId"] == ACCOUNT_ID
    assert record["eventType"] == "AwsApiCall" and record["managementEvent"] is True
    assert record["eventCategory"] == "Management" and record["readOnly"] is False
    assert record["requestParameters"]["description"] == desc
    for attr, value in (
        ("EventId", event["EventId"]),
        ("EventName", "CreateKey"),
        ("Username", "root"),
        ("ResourceType", "AWS::KMS::Key"),
        ("EventSource", "kms.amazonaws.com"),
        ("AccessKeyId", stack.access_key_id),
        ("ReadOnly", "false"),
    ):
        found = ct.lookup_events(
            LookupAttributes=[{"AttributeKey": attr, "AttributeValue": value}], MaxResults=50
        )["Events"]
        assert event["EventId"] in {e["EventId"] for e in found}, attr


def test_request_ids_as_each_service_writes_them(stack: Stack) -> None:
    """S3 answers with 16 base32 characters (x-amz-request-id), KMS with a UUID; each call's
    CloudTrail record carries the id its caller was given."""
    ct, s3, kms = stack.client("cloudtrail"), stack.client("s3"), stack.client("kms")
    bucket = unique("reqid")
    s3_id = s3.create_bucket(Bucket=bucket)["ResponseMetadata"]["RequestId"]
    assert re.fullmatch(r"[0-9A-HJKMNP-TV-Z]{16}", s3_id), s3_id
    with pytest.raises(ClientError) as missing:
        s3.head_bucket(Bucket=unique("absent"))
    assert re.fullmatch(r"[0-9A-HJKMNP-TV-Z]{16}", missing.value.response["ResponseMetadata"]["RequestId"])
    created = kms.create_key(Description=unique("reqid"))
    kms_id = created["ResponseMetadata"]["RequestId"]
    assert uuid.UUID(kms_id).version == 4

    def record_of(name: str, value: str) -> dict[str, Any] | None:
        events = ct.lookup_events(LookupAttributes=[{"AttributeKey": "ResourceName", "AttributeValue": value}])
        found = [json.loads(e["CloudTrailEvent"]) for e in events["Events"] if e["EventName"] == name]
        return found[0] if found else None

    assert wait_until(lambda: record_of("CreateBucket", bucket))["requestID"] == s3_id
    assert wait_until(lambda: record_of("CreateKey", created["KeyMetadata"]["Arn"]))["requestID"] == kms_id


def test_lookup_pagination_newest_first(stack: Stack) -> None:
    ct, kms = stack.client("cloudtrail"), stack.client("kms")
    for i in range(4):
        kms.create_key(Description=unique(f"page{i}"))
    wait_until(
        lambda: (
            len(
                ct.lookup_events(
                    LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": "CreateKey"}]
                )["Events"]
            )
            >= 4
        )
    )
    seen: list[dict[str, Any]] = []
    token = None
    for _ in range(3):
        kwargs: dict[str, Any] = {
            "LookupAttributes": [{"AttributeKey": "EventName", "AttributeValue": "CreateKey"}],
            "MaxResults": 1,
        }
        if token:
            kwargs["NextToken"] = token
        page = ct.lookup_events(**kwargs)
        assert len(page["Events"]) == 1
        seen += page["Events"]
        token = page["NextToken"]
    times = [e["EventTime"] for e in seen]
    assert times == sorted(times, reverse=True) and len({e["EventId"] for e in seen}) == 3
    paged = [
        e
        for p in ct.get_paginator("lookup_events").paginate(
            LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": "CreateKey"}],
            PaginationConfig={"PageSize": 2},
        )
        for e in p["Events"]
    ]
    assert len(paged) == len({e["EventId"] for e in paged}) >= 4


def test_lookup_errors(stack: Stack) -> None:
    ct = stack.client("cloudtrail")
    now = datetime.now(timezone.utc)
    cases = [
        (
            {"LookupAttributes": [{"AttributeKey": "ReadOnly", "AttributeValue": "maybe"}]},
            ("InvalidLookupAttributesException",),
        ),
        (
            {
                "LookupAttributes": [
                    {"AttributeKey": "EventName", "AttributeValue": "A"},
                    {"AttributeKey": "Bogus", "AttributeValue": "B"},
                ]
            },
            ("InvalidLookupAttributesException", "ValidationException"),
        ),
        # the gateway checks the model's range (1-50) before the trail service does
        ({"MaxResults": 51}, ("InvalidMaxResultsException", "ValidationException")),
        ({"StartTime": now, "EndTime": now - timedelta(hours=1)}, ("InvalidTimeRangeException",)),
        ({"NextToken": "not-a-token"}, ("InvalidNextTokenException",)),
    ]
    for kwargs, codes in cases:
        with pytest.raises(ClientError) as exc:
            ct.lookup_events(**kwargs)
        assert error_code(exc) in codes, kwargs
        assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    # Only the first lookup attribute is honoured, as on AWS.
    first_only = ct.lookup_events(
        LookupAttributes=[
            {"AttributeKey": "EventName", "AttributeValue": "NoSuchOp"},
            {"AttributeKey": "Username", "AttributeValue": "root"},
        ]
    )
    assert first_only["Events"] == []


def test_lookup_events_with_the_cli(stack: Stack) -> None:
    kms = stack.client("kms")
    kms.create_key(Description=unique("cli"))
    out = wait_until(
        lambda: stack.aws_json(
            "cloudtrail",
            "lookup-events",
            "--lookup-attributes",
            "AttributeKey=EventName,AttributeValue=CreateKey",
            "--max-results",
            "5",
        )["Events"]
    )
    assert all(e["EventName"] == "CreateKey" for e in out)
    bad = stack.aws(
        "cloudtrail",
        "lookup-events",
        "--lookup-attributes",
        "AttributeKey=ReadOnly,AttributeValue=perhaps",
        check=False,
    )
    assert bad.returncode != 0 and "InvalidLookupAttributesException" in bad.stderr


def test_lookup_records_its_own_calls(stack: Stack) -> None:
    ct = stack.client("cloudtrail")
    ct.lookup_events(MaxResults=1)
    events = wait_until(
        lambda: ct.lookup_events(
            LookupAttributes=[{"AttributeKey": "EventSource", "AttributeValue": "cloudtrail.amazonaws.com"}]
        )["Events"]
    )
    assert any(e["EventName"] == "LookupEvents" and e["ReadOnly"] == "true" for e in events)


# ------------------------------------------------------------------ trails


def test_trail_lifecycle_and_errors(stack: Stack) -> None:
    ct = stack.client("cloudtrail")
    bucket = trail_bucket(stack, unique("trail-api"))
    name = unique("api-trail")
    arn = f"arn:aws:cloudtrail:{REGION}:{ACCOUNT_ID}:trail/{name}"

    with pytest.raises(ClientError) as exc:
        ct.create_trail(Name=name, S3BucketName=unique("no-such-bucket"))
    assert error_code(exc) == "S3BucketDoesNotExistException"
    plain = unique("no-policy")
    stack.client("s3").create_bucket(Bucket=plain)
    with pytest.raises(ClientError) as exc:
        ct.create_trail(Name=name, S3BucketName=plain)
    assert error_code(exc) == "InsufficientS3BucketPolicyException"
    with pytest.raises(ClientError) as exc:
        ct.create_trail(Name="x!", S3BucketName=bucket)
    assert error_code(exc) == "InvalidTrailNameException"

    created = ct.create_trail(
        Name=name,
        S3BucketName=bucket,
        EnableLogFileValidation=True,
        TagsList=[{"Key": "team", "Value": "audit"}],
    )
    assert created["TrailARN"] == arn and created["LogFileValidationEnabled"] is True
    assert created["IsMultiRegionTrail"] is False and created["IncludeGlobalServiceEvents"] is True
    with pytest.raises(ClientError) as exc:
        ct.create_trail(Name=name, S3BucketName=bucket)
    assert error_code(exc) == "TrailAlreadyExistsException"

    trail = ct.get_trail(Name=name)["Trail"]
    assert trail["HomeRegion"] == REGION and trail["HasCustomEventSelectors"] is False
    assert trail["HasInsightSelectors"] is False and trail["S3BucketName"] == bucket
    assert ct.get_trail(Name=arn)["Trail"]["Name"] == name
    assert name in {t["Name"] for t in ct.describe_trails()["trailList"]}
    assert [t["Name"] for t in ct.describe_trails(trailNameList=[arn])["trailList"]] == [name]
    assert {"TrailARN": arn, "Name": name, "HomeRegion": REGION} in ct.list_trails()["Trails"]

    status = ct.get_trail_status(Name=name)
    assert status["IsLogging"] is False
    ct.start_logging(Name=name)
    status = ct.get_trail_status(Name=name)
    assert status["IsLogging"] is True and "StartLoggingTime" in status and status["TimeLoggingStarted"]
    ct.stop_logging(Name=name)
    status = ct.get_trail_status(Name=name)
    assert status["IsLogging"] is False and "StopLoggingTime" in status

    updated = ct.update_trail(Name=name, S3KeyPrefix="", EnableLogFileValidation=False)
    assert updated["LogFileValidationEnabled"] is False

    ct.add_tags(ResourceId=arn, TagsList=[{"Key": "env", "Value": "test"}])
    tags = ct.list_tags(ResourceIdList=[arn])["ResourceTagList"][0]
    assert tags["ResourceId"] == arn
    assert sorted((t["Key"], t["Value"]) for t in tags["TagsList"]) == [("env", "test"), ("team", "audit")]
    ct.remove_tags(ResourceId=arn, TagsList=[{"Key": "team"}])
    assert [t["Key"] for t in ct.list_tags(ResourceIdList=[arn])["ResourceTagList"][0]["TagsList"]] == ["env"]

    ct.delete_trail(Name=name)
    for call in (
        lambda: ct.get_trail(Name=name),
        lambda: ct.get_trail_status(Name=name),
        lambda: ct.start_logging(Name=name),
        lambda: ct.delete_trail(Name=name),
    ):
        with pytest.raises(ClientError) as exc:
            call()
        assert error_code(exc) == "TrailNotFoundException"


def test_event_and_insight_selectors(stack: Stack) -> None:
    ct = stack.client("cloudtrail")
    bucket = trail_bucket(stack, unique("selectors"))
    name = unique("sel-trail")
    ct.create_trail(Name=name, S3BucketName=bucket)
    [default] = ct.get_event_selectors(TrailName=name)["EventSelectors"]
    assert default["ReadWriteType"] == "All" and default["IncludeManagementEvents"] is True
    assert default.get("DataResources", []) == [] and default.get("ExcludeManagementEventSources", []) == []
    put = ct.put_event_selectors(
        TrailName=name,
        EventSelectors=[
            {
                "ReadWriteType": "WriteOnly",
                "IncludeManagementEvents": True,
                "DataResources": [{"Type": "AWS::S3::Object", "Values": [f"arn:aws:s3:::{bucket}/"]}],
            }
        ],
    )
    assert put["EventSelectors"][0]["DataResources"][0]["Values"] == [f"arn:aws:s3:::{bucket}/"]
    assert ct.get_trail(Name=name)["Trail"]["HasCustomEventSelectors"] is True
    with pytest.raises(ClientError) as exc:
        ct.put_event_selectors(
            TrailName=name,
            EventSelectors=[{"DataResources": [{"Type": "AWS::Nope::Thing", "Values": ["arn:aws:s3"]}]}],
        )
    assert error_code(exc) == "InvalidEventSelectorsException"
    with pytest.raises(ClientError) as exc:
        ct.put_event_selectors(TrailName=name, EventSelectors=[{}] * 6)
    assert error_code(exc) == "InvalidEventSelectorsException"
    adv = [
        {
            "Name": "writes",
            "FieldSelectors": [
                {"Field": "eventCategory", "Equals": ["Management"]},
                {"Field": "readOnly", "Equals": ["false"]},
            ],
        }
    ]
    assert ct.put_event_selectors(TrailName=name, AdvancedEventSelectors=adv)["AdvancedEventSelectors"] == adv
    got = ct.get_event_selectors(TrailName=name)
    assert got["AdvancedEventSelectors"] == adv and not got.get("EventSelectors")

    with pytest.raises(ClientError) as exc:
        ct.get_insight_selectors(TrailName=name)
    assert error_code(exc) == "InsightNotEnabledException"
    sel = [{"InsightType": "ApiCallRateInsight"}, {"InsightType": "ApiErrorRateInsight"}]
    assert ct.put_insight_selectors(TrailName=name, InsightSelectors=sel)["InsightSelectors"] == sel
    assert ct.get_insight_selectors(TrailName=name)["InsightSelectors"] == sel
    with pytest.raises(ClientError) as exc:
        ct.put_insight_selectors(TrailName=name, InsightSelectors=[{"InsightType": "Nope"}])
    assert error_code(exc) in ("InvalidInsightSelectorsException", "ValidationException")
    ct.delete_trail(Name=name)


def test_trail_cli(stack: Stack) -> None:
    bucket = trail_bucket(stack, unique("cli-trail"))
    name = unique("cli-trail")
    created = stack.aws_json("cloudtrail", "create-trail", "--name", name, "--s3-bucket-name", bucket)
    assert created["Name"] == name
    assert stack.aws_json("cloudtrail", "get-trail-status", "--name", name)["IsLogging"] is False
    stack.aws("cloudtrail", "start-logging", "--name", name)
    assert stack.aws_json("cloudtrail", "get-trail-status", "--name", name)["IsLogging"] is True
    trails = stack.aws_json("cloudtrail", "describe-trails")["trailList"]
    assert name in {t["Name"] for t in trails}
    missing = stack.aws("cloudtrail", "get-trail", "--name", unique("nosuch"), check=False)
    assert missing.returncode != 0 and "TrailNotFoundException" in missing.stderr
    stack.aws("cloudtrail", "delete-trail", "--name", name)


def test_kms_encrypted_trail(stack: Stack) -> None:
    ct, kms, s3 = stack.client("cloudtrail"), stack.client("kms"), stack.client("s3")
    bucket = trail_bucket(stack, unique("kms-trail"))
    plain_key = kms.create_key(Description="no cloudtrail in policy")["KeyMetadata"]
    with pytest.raises(ClientError) as exc:
        ct.create_trail(Name=unique("enc"), S3BucketName=bucket, KmsKeyId=plain_key["Arn"])
    assert error_code(exc) == "InsufficientEncryptionPolicyException"
    with pytest.raises(ClientError) as exc:
        ct.create_trail(
            Name=unique("enc"),
            S3BucketName=bucket,
            KmsKeyId="arn:aws:kms:us-east-1:111122223333:key/00000000-0000-0000-0000-000000000000",
        )
    assert error_code(exc) == "KmsKeyNotFoundException"
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "Enable IAM User Permissions",
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT_ID}:root"},
                "Action": "kms:*",
                "Resource": "*",
            },
            {
                "Sid": "Allow CloudTrail to encrypt logs",
                "Effect": "Allow",
                "Principal": {"Service": "cloudtrail.amazonaws.com"},
                "Action": ["kms:GenerateDataKey*", "kms:DescribeKey"],
                "Resource": "*",
                "Condition": {
                    "StringLike": {
                        "kms:EncryptionContext:aws:cloudtrail:arn": (
                            f"arn:aws:cloudtrail:*:{ACCOUNT_ID}:trail/*"
                        )
                    }
                },
            },
        ],
    }
    key = kms.create_key(Description="trail key", Policy=json.dumps(policy))["KeyMetadata"]
    name = unique("enc")
    created = ct.create_trail(Name=name, S3BucketName=bucket, KmsKeyId=key["KeyId"])
    assert created["KmsKeyId"] == key["Arn"]
    ct.start_logging(Name=name)
    kms.describe_key(KeyId=key["KeyId"])
    keys = wait_until(
        lambda: [
            o["Key"]
            for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])
            if "/CloudTrail/" in o["Key"]
        ],
        timeout=30,
    )
    head = s3.head_object(Bucket=bucket, Key=keys[0])
    assert head["ServerSideEncryption"] == "aws:kms" and head["SSEKMSKeyId"] == key["Arn"]
    body = s3.get_object(Bucket=bucket, Key=keys[0])["Body"].read()
    assert json.loads(gzip.decompress(body))["Records"]
    status = ct.get_trail_status(Name=name)
    assert "LatestDeliveryTime" in status and not status.get("LatestDeliveryError")
    ct.delete_trail(Name=name)


def test_list_public_keys(stack: Stack) -> None:
    import hashlib

    import rsa

    ct, kms = stack.client("cloudtrail"), stack.client("kms")
    keys = ct.list_public_keys()["PublicKeyList"]
    assert keys, "the digest signing key is created on first use"
    for k in keys:
        assert hashlib.md5(k["Value"]).hexdigest() == k["Fingerprint"]  # noqa: S324
        assert rsa.PublicKey.load_pkcs1(k["Value"], format="DER").n.bit_length() == 2048
    # It is CloudTrail's own key (AWS owned): not one of the account's keys.
    published = {k["Fingerprint"] for k in keys}
    for page in kms.get_paginator("list_keys").paginate():
        for listed in page["Keys"]:
            if kms.describe_key(KeyId=listed["KeyId"])["KeyMetadata"].get("KeySpec") != "RSA_2048":
                continue
            spki = kms.get_public_key(KeyId=listed["KeyId"])["PublicKey"]
            pkcs1 = rsa.PublicKey.load_pkcs1_openssl_der(spki).save_pkcs1(format="DER")
            assert hashlib.md5(pkcs1).hexdigest() not in published  # noqa: S324
    with pytest.raises(ClientError) as exc:
        ct.list_public_keys(
            StartTime=datetime.now(timezone.utc), EndTime=datetime.now(timezone.utc) - timedelta(hours=1)
        )
    assert error_code(exc) == "InvalidTimeRangeException"
