"""What the KMS lab's steps need, shared by the boto3 and AWS CLI walk-throughs.

The lab (shared/reference 001, 002; expected outputs in 000) is run as AWS documents it:

* the key policy is the console's four-statement policy (001, "Define key usage permissions"):
  the account-root statement that enables IAM policies, the key administrators, the key users,
  and the key users' persistent-resource grants (``kms:GrantIsForAWSResource``);
* the lab user's identity policy allows S3 on the lab's buckets and the two KMS list actions,
  but no cryptographic KMS action: the key policy is the only thing that lets the user use
  the key, so removing the user from it takes the access away at once (lab task 6). (An
  identity policy allowing ``kms:*`` would keep working through the root statement, and the
  lab's "the user's permission to use this key is removed" would not be observable.)
* the trail bucket carries the bucket policy CloudTrail requires
  (https://docs.aws.amazon.com/awscloudtrail/latest/userguide/create-s3-bucket-policy-for-cloudtrail.html);
* log files are delivered as ``AWSLogs/<account>/CloudTrail/<region>/YYYY/MM/DD/
  <account>_CloudTrail_<region>_YYYYMMDDTHHmmZ_<16 alphanumerics>.json.gz``
  (https://docs.aws.amazon.com/awscloudtrail/latest/userguide/get-and-view-cloudtrail-log-files.html).

Texts AWS answers with are pinned here once, so both walk-throughs assert the same strings.
"""

from __future__ import annotations

import gzip
import json
import re
import secrets
import struct
import time
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET
import zlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from botocore.exceptions import ClientError

from tests.stackctl import ACCOUNT_ID, REGION

T = TypeVar("T")

ROOT_ARN = f"arn:aws:iam::{ACCOUNT_ID}:root"

# Lab 001, task 4: the anonymous GET of an SSE-KMS object once the object is public (000, 4b.png).
SIGV4_REQUIRED = ("Requests specifying Server Side Encryption with AWS KMS managed keys require "
                  "AWS Signature Version 4.")
TRAIL_DELIVERY_TIMEOUT = 30.0   # the stack fixture delivers every 2 s
EVENT_LOOKUP_TIMEOUT = 30.0


def suffix() -> str:
    """A random number, as the lab names its bucket "mycloudtrailbucketNUMBER"."""
    return str(secrets.randbelow(10**9)).zfill(9)


def key_arn_pattern() -> re.Pattern[str]:
    return re.compile(rf"^arn:aws:kms:{REGION}:{ACCOUNT_ID}:key/"
                      r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


# --- policies ------------------------------------------------------------------------------

def _principal(arns: list[str]) -> dict[str, Any]:
    return {"AWS": arns[0] if len(arns) == 1 else list(arns)}


def console_key_policy(admins: list[str], users: list[str]) -> dict[str, Any]:
    """The policy the KMS console writes for a symmetric key (lab 001, step 10).

    With no key users the console drops the two user statements (lab task 6, "Remove").
    """
    statements: list[dict[str, Any]] = [
        {
            "Sid": "Enable IAM User Permissions",
            "Effect": "Allow",
            "Principal": {"AWS": ROOT_ARN},
            "Action": "kms:*",
            "Resource": "*",
        },
        {
            "Sid": "Allow access for Key Administrators",
            "Effect": "Allow",
            "Principal": _principal(admins),
            "Action": [
                "kms:Create*", "kms:Describe*", "kms:Enable*", "kms:List*", "kms:Put*",
                "kms:Update*", "kms:Revoke*", "kms:Disable*", "kms:Get*", "kms:Delete*",
                "kms:TagResource", "kms:UntagResource", "kms:ScheduleKeyDeletion",
                "kms:CancelKeyDeletion", "kms:RotateKeyOnDemand",
            ],
            "Resource": "*",
        },
    ]
    if users:
        statements += [
            {
                "Sid": "Allow use of the key",
                "Effect": "Allow",
                "Principal": _principal(users),
                "Action": ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*",
                           "kms:GenerateDataKey*", "kms:DescribeKey"],
                "Resource": "*",
            },
            {
                "Sid": "Allow attachment of persistent resources",
                "Effect": "Allow",
                "Principal": _principal(users),
                "Action": ["kms:CreateGrant", "kms:ListGrants", "kms:RevokeGrant"],
                "Resource": "*",
                "Condition": {"Bool": {"kms:GrantIsForAWSResource": "true"}},
            },
        ]
    return {"Id": "key-consolepolicy-3", "Version": "2012-10-17", "Statement": statements}


def lab_user_policy(buckets: Iterable[str]) -> dict[str, Any]:
    """The lab user's inline identity policy: S3 on the lab buckets, KMS listing only."""
    resources: list[str] = []
    for b in buckets:
        resources += [f"arn:aws:s3:::{b}", f"arn:aws:s3:::{b}/*"]
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "LabBuckets", "Effect": "Allow", "Action": "s3:*", "Resource": resources},
            {"Sid": "ListBuckets", "Effect": "Allow", "Action": "s3:ListAllMyBuckets",
             "Resource": "*"},
            {"Sid": "ListKeys", "Effect": "Allow", "Action": ["kms:ListKeys", "kms:ListAliases"],
             "Resource": "*"},
        ],
    }


def trail_arn(trail_name: str) -> str:
    return f"arn:aws:cloudtrail:{REGION}:{ACCOUNT_ID}:trail/{trail_name}"


def cloudtrail_bucket_policy(bucket: str, trail_name: str) -> dict[str, Any]:
    """The bucket policy CloudTrail needs to deliver into ``bucket`` (what the console writes)."""
    source = {"aws:SourceArn": trail_arn(trail_name)}
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "AWSCloudTrailAclCheck20150319",
                "Effect": "Allow",
                "Principal": {"Service": "cloudtrail.amazonaws.com"},
                "Action": "s3:GetBucketAcl",
                "Resource": f"arn:aws:s3:::{bucket}",
                "Condition": {"StringEquals": dict(source)},
            },
            {
                "Sid": "AWSCloudTrailWrite20150319",
                "Effect": "Allow",
                "Principal": {"Service": "cloudtrail.amazonaws.com"},
                "Action": "s3:PutObject",
                "Resource": f"arn:aws:s3:::{bucket}/AWSLogs/{ACCOUNT_ID}/*",
                "Condition": {"StringEquals": {"s3:x-amz-acl": "bucket-owner-full-control",
                                               **source}},
            },
        ],
    }


# --- the image -----------------------------------------------------------------------------

def make_png(width: int = 48, height: int = 32, seed: int = 0) -> bytes:
    """A small valid RGB PNG (a gradient), standing in for the lab's Eiffel.jpg / clock.png."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    rows = bytearray()
    for y in range(height):
        rows.append(0)  # filter: none
        for x in range(width):
            rows += bytes(((x * 5 + seed) & 0xFF, (y * 7 + seed) & 0xFF, ((x + y) * 3) & 0xFF))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
            + chunk(b"IDAT", zlib.compress(bytes(rows), 9)) + chunk(b"IEND", b""))


# --- plain HTTP (the browser of the lab) ---------------------------------------------------

@dataclass(frozen=True)
class HttpAnswer:
    status: int
    headers: Mapping[str, str]
    body: bytes

    def error(self) -> dict[str, str]:
        """The S3 XML error body as {element: text}; fails if the body is not one."""
        root = ET.fromstring(self.body)
        assert root.tag == "Error", self.body[:300]
        return {child.tag: (child.text or "") for child in root}


def http_get(url: str, headers: Mapping[str, str] | None = None) -> HttpAnswer:
    """GET with no credentials at all, as a browser opening the object URL."""
    req = urllib.request.Request(url, method="GET", headers=dict(headers or {}))
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return HttpAnswer(r.status, {k.lower(): v for k, v in r.headers.items()}, r.read())
    except urllib.error.HTTPError as e:
        return HttpAnswer(e.code, {k.lower(): v for k, v in e.headers.items()}, e.read())


def object_url(endpoint: str, bucket: str, key: str) -> str:
    """The object URL, path-style on the stack's endpoint (the lab copies the virtual-host URL)."""
    return f"{endpoint}/{bucket}/{urllib.request.quote(key)}"


# --- waiting ---------------------------------------------------------------------------------

def poll(fn: Callable[[], T | None], timeout: float, interval: float = 0.5,
         what: str = "condition") -> T:
    """Call ``fn`` until it returns something other than None; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value is not None:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


# --- CloudTrail records ----------------------------------------------------------------------

def log_key_pattern(region: str = REGION, account: str = ACCOUNT_ID) -> re.Pattern[str]:
    return re.compile(
        rf"^AWSLogs/{account}/CloudTrail/{region}/(?P<y>\d{{4}})/(?P<m>\d{{2}})/(?P<d>\d{{2}})/"
        rf"{account}_CloudTrail_{region}_(?P<stamp>\d{{8}})T\d{{4}}Z_[A-Za-z0-9]{{16}}\.json\.gz$")


def check_log_key(key: str) -> None:
    m = log_key_pattern().match(key)
    assert m, f"log file name does not follow CloudTrail's pattern: {key}"
    assert m["stamp"] == m["y"] + m["m"] + m["d"], f"date folder and file stamp disagree: {key}"


def records_of_log_file(blob: bytes) -> list[dict[str, Any]]:
    doc = json.loads(gzip.decompress(blob))
    assert isinstance(doc, dict) and isinstance(doc.get("Records"), list), str(doc)[:300]
    return list(doc["Records"])


def is_s3_kms_record(record: Mapping[str, Any], event_name: str, key_arn: str,
                     object_arn: str) -> bool:
    """The KMS record S3 leaves when it asks for (or opens) an object's data key."""
    if record.get("eventSource") != "kms.amazonaws.com" or record.get("eventName") != event_name:
        return False
    params = record.get("requestParameters") or {}
    context = params.get("encryptionContext") or {}
    arns = [r.get("ARN") for r in record.get("resources") or []]
    return context.get("aws:s3:arn") == object_arn and key_arn in arns


def check_s3_kms_record(record: Mapping[str, Any], *, event_name: str, key_arn: str,
                        object_arn: str, user_arn: str | None = None) -> None:
    """Fields every S3-on-behalf-of KMS record has (catalogue 6.5/6.6; 001's log file)."""
    assert record["eventSource"] == "kms.amazonaws.com"
    assert record["eventName"] == event_name
    assert record["awsRegion"] == REGION
    assert record["recipientAccountId"] == ACCOUNT_ID
    assert record["eventType"] == "AwsApiCall"
    assert record["readOnly"] is True
    assert record["managementEvent"] is True
    assert record["eventCategory"] == "Management"
    assert record["requestParameters"]["encryptionContext"] == {"aws:s3:arn": object_arn}
    assert record["responseElements"] is None, "KMS records never carry the data key"
    assert {"accountId": ACCOUNT_ID, "type": "AWS::KMS::Key", "ARN": key_arn} in record["resources"]
    if event_name == "GenerateDataKey":
        assert record["requestParameters"]["keySpec"] == "AES_256"
    assert re.match(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$", record["eventTime"])
    assert re.match(r"^[0-9a-f-]{36}$", record["eventID"])
    if user_arn is not None:
        # The end user's identity is kept; S3 shows only as the service that called KMS.
        assert record["userIdentity"]["arn"] == user_arn
        assert record["userIdentity"]["accountId"] == ACCOUNT_ID
    text = json.dumps(record).lower()
    assert '"plaintext"' not in text


def access_denied_message(principal_arn: str, action: str, resource_arn: str) -> str:
    """AWS KMS's AccessDeniedException text for a same-account caller no policy allows.

    S3 passes the same text through as its ``AccessDenied`` (403) when it is refused the key on
    the caller's behalf (e.g. ``An error occurred (AccessDenied) when calling the GetObject
    operation: User: arn:aws:sts::…:assumed-role/… is not authorized to perform: kms:Decrypt on
    resource: arn:aws:kms:…:key/… because no identity-based policy allows the kms:Decrypt
    action``, as reported against AWS in 2025).
    """
    return (f"User: {principal_arn} is not authorized to perform: {action} on resource: "
            f"{resource_arn} because no identity-based policy allows the {action} action")


# --- clean-up --------------------------------------------------------------------------------

def run_all(*steps: Callable[[], object]) -> None:
    """Run every clean-up step even if one fails; then re-raise the first failure."""
    failures: list[BaseException] = []
    for step in steps:
        try:
            step()
        except Exception as exc:  # noqa: BLE001 - collected, re-raised below
            failures.append(exc)
    if failures:
        raise failures[0]


def empty_and_delete_bucket(s3: Any, bucket: str) -> None:
    """Delete every object then the (unversioned) bucket; a late trail delivery is retried."""
    def attempt() -> bool | None:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            for item in page.get("Contents", []):
                s3.delete_object(Bucket=bucket, Key=item["Key"])
        try:
            s3.delete_bucket(Bucket=bucket)
        except ClientError as e:
            if e.response["Error"]["Code"] == "BucketNotEmpty":
                return None
            raise
        return True

    poll(attempt, timeout=15, what=f"bucket {bucket} to be deleted")
