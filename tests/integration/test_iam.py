"""IAM through the real stack with boto3: users, keys, policies, and keys that work."""

from __future__ import annotations

import json
import uuid

import botocore.exceptions
import pytest

from tests.stackctl import ACCOUNT_ID, Stack


def test_user_access_keys_work(stack: Stack) -> None:
    iam = stack.client("iam")
    name = f"it-{uuid.uuid4().hex[:8]}"
    iam.create_user(UserName=name)
    key = iam.create_access_key(UserName=name)["AccessKey"]
    try:
        sts = stack.client("sts", aws_access_key_id=key["AccessKeyId"],
                           aws_secret_access_key=key["SecretAccessKey"])
        assert sts.get_caller_identity()["Arn"] == f"arn:aws:iam::{ACCOUNT_ID}:user/{name}"
        wrong = stack.client("sts", aws_access_key_id=key["AccessKeyId"],
                             aws_secret_access_key=key["SecretAccessKey"][:-1] + "X")
        with pytest.raises(botocore.exceptions.ClientError) as info:
            wrong.get_caller_identity()
        assert info.value.response["Error"]["Code"] == "SignatureDoesNotMatch"
        assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    finally:
        iam.delete_access_key(UserName=name, AccessKeyId=key["AccessKeyId"])
        iam.delete_user(UserName=name)


def test_user_policy_governs_kms(stack: Stack) -> None:
    """The caller's identity policies travel to KMS with each RPC."""
    iam = stack.client("iam")
    name = f"it-{uuid.uuid4().hex[:8]}"
    iam.create_user(UserName=name)
    key = iam.create_access_key(UserName=name)["AccessKey"]
    try:
        kms = stack.client("kms", aws_access_key_id=key["AccessKeyId"],
                           aws_secret_access_key=key["SecretAccessKey"])
        with pytest.raises(botocore.exceptions.ClientError) as info:
            kms.create_key()
        assert info.value.response["Error"]["Code"] == "AccessDeniedException"
        iam.put_user_policy(UserName=name, PolicyName="kms", PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "kms:*",
                                                     "Resource": "*"}]}))
        created = kms.create_key()["KeyMetadata"]
        assert created["KeyState"] == "Enabled"
    finally:
        iam.delete_user_policy(UserName=name, PolicyName="kms") if _has_policy(iam, name) else None
        iam.delete_access_key(UserName=name, AccessKeyId=key["AccessKeyId"])
        iam.delete_user(UserName=name)


def _has_policy(iam, name: str) -> bool:  # type: ignore[no-untyped-def]
    return "kms" in iam.list_user_policies(UserName=name)["PolicyNames"]


def test_iam_errors(stack: Stack) -> None:
    iam = stack.client("iam")
    with pytest.raises(iam.exceptions.NoSuchEntityException):
        iam.get_user(UserName="does-not-exist")
    with pytest.raises(botocore.exceptions.ClientError) as info:
        iam.create_user(UserName="no spaces allowed")
    assert info.value.response["Error"]["Code"] == "ValidationError"


def test_cli_iam_round_trip(stack: Stack) -> None:
    name = f"cli-{uuid.uuid4().hex[:8]}"
    created = stack.aws_json("iam", "create-user", "--user-name", name)
    assert created["User"]["Arn"] == f"arn:aws:iam::{ACCOUNT_ID}:user/{name}"
    users = stack.aws_json("iam", "list-users")
    assert name in [u["UserName"] for u in users["Users"]]
    stack.aws("iam", "delete-user", "--user-name", name)


def test_iam_calls_are_recorded_in_cloudtrail(stack: Stack) -> None:
    import time

    iam = stack.client("iam")
    name = f"trail-{uuid.uuid4().hex[:8]}"
    iam.create_user(UserName=name)
    key = iam.create_access_key(UserName=name)["AccessKey"]
    iam.delete_access_key(UserName=name, AccessKeyId=key["AccessKeyId"])
    iam.delete_user(UserName=name)
    trail = stack.client("cloudtrail")
    deadline = time.monotonic() + 30
    found: list[dict] = []
    while time.monotonic() < deadline:
        events = trail.lookup_events(LookupAttributes=[
            {"AttributeKey": "EventSource", "AttributeValue": "iam.amazonaws.com"}])["Events"]
        found = [json.loads(e["CloudTrailEvent"]) for e in events]
        found = [e for e in found if (e.get("requestParameters") or {}).get("userName") == name]
        if {e["eventName"] for e in found} >= {"CreateUser", "CreateAccessKey", "DeleteUser"}:
            break
        time.sleep(0.5)
    names = {e["eventName"] for e in found}
    assert {"CreateUser", "CreateAccessKey", "DeleteAccessKey", "DeleteUser"} <= names
    text = json.dumps(found)
    assert key["SecretAccessKey"] not in text
    created = next(e for e in found if e["eventName"] == "CreateUser")
    assert created["userIdentity"]["arn"] == f"arn:aws:iam::{ACCOUNT_ID}:root"
    assert created["eventSource"] == "iam.amazonaws.com"
