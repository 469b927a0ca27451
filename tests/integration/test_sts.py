"""STS through the real stack: AssumeRole round trip and trust-policy denial."""

from __future__ import annotations

import json
import uuid

import botocore.exceptions
import pytest

from tests.stackctl import ACCOUNT_ID, Stack


def _trust(principal: str) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": principal}, "Action": "sts:AssumeRole"}]})


def test_assume_role_round_trip_and_denial(stack: Stack) -> None:
    iam = stack.client("iam")
    suffix = uuid.uuid4().hex[:8]
    user, role, locked = f"u-{suffix}", f"r-{suffix}", f"locked-{suffix}"
    iam.create_user(UserName=user)
    iam.put_user_policy(UserName=user, PolicyName="assume", PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                 "Resource": "*"}]}))
    key = iam.create_access_key(UserName=user)["AccessKey"]
    iam.create_role(RoleName=role, AssumeRolePolicyDocument=_trust(f"arn:aws:iam::{ACCOUNT_ID}:root"))
    iam.create_role(RoleName=locked, AssumeRolePolicyDocument=_trust(f"arn:aws:iam::{ACCOUNT_ID}:user/nobody"))
    try:
        sts = stack.client("sts", aws_access_key_id=key["AccessKeyId"],
                           aws_secret_access_key=key["SecretAccessKey"])
        out = sts.assume_role(RoleArn=f"arn:aws:iam::{ACCOUNT_ID}:role/{role}", RoleSessionName="it")
        creds = out["Credentials"]
        assert creds["AccessKeyId"].startswith("ASIA")
        session = stack.client("sts", aws_access_key_id=creds["AccessKeyId"],
                               aws_secret_access_key=creds["SecretAccessKey"],
                               aws_session_token=creds["SessionToken"])
        assert session.get_caller_identity()["Arn"] == \
            f"arn:aws:sts::{ACCOUNT_ID}:assumed-role/{role}/it"
        with pytest.raises(botocore.exceptions.ClientError) as info:
            sts.assume_role(RoleArn=f"arn:aws:iam::{ACCOUNT_ID}:role/{locked}", RoleSessionName="it")
        assert info.value.response["Error"]["Code"] == "AccessDenied"
        assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    finally:
        iam.delete_access_key(UserName=user, AccessKeyId=key["AccessKeyId"])
        iam.delete_user_policy(UserName=user, PolicyName="assume")
        iam.delete_user(UserName=user)
        iam.delete_role(RoleName=role)
        iam.delete_role(RoleName=locked)


def test_cli_assume_role(stack: Stack) -> None:
    role = f"cli-{uuid.uuid4().hex[:8]}"
    stack.aws("iam", "create-role", "--role-name", role, "--assume-role-policy-document",
              _trust(ACCOUNT_ID))
    try:
        out = stack.aws_json("sts", "assume-role", "--role-arn",
                             f"arn:aws:iam::{ACCOUNT_ID}:role/{role}", "--role-session-name", "cli")
        assert out["AssumedRoleUser"]["Arn"] == f"arn:aws:sts::{ACCOUNT_ID}:assumed-role/{role}/cli"
    finally:
        stack.aws("iam", "delete-role", "--role-name", role)
