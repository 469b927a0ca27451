"""IAM and STS through the gateway (boto3 over HTTP; in-process gateway, fake backends)."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import urllib.request
from typing import Any

import botocore.exceptions
import pytest

from tests.unit.gateway.conftest import ACCOUNT, GatewayHarness

ALLOW_ALL_IAM = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": ["iam:*", "sts:AssumeRole"], "Resource": "*"}]})


def trust(principal: str) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": principal}, "Action": "sts:AssumeRole"}]})


def _error(info: pytest.ExceptionInfo[botocore.exceptions.ClientError]) -> tuple[str, int, str]:
    r = info.value.response
    return r["Error"]["Code"], r["ResponseMetadata"]["HTTPStatusCode"], r["Error"]["Message"]


async def _user_with_key(gw: GatewayHarness, name: str, policy: str | None = None) -> dict[str, Any]:
    iam = gw.client("iam")
    await gw.call(iam.create_user, UserName=name)
    if policy:
        await gw.call(iam.put_user_policy, UserName=name, PolicyName="p", PolicyDocument=policy)
    key = (await gw.call(iam.create_access_key, UserName=name))["AccessKey"]
    return key


async def test_user_keys_work(gw: GatewayHarness) -> None:
    key = await _user_with_key(gw, "alice")
    assert key["AccessKeyId"].startswith("AKIA") and len(key["AccessKeyId"]) == 20
    sts = gw.client("sts", key["AccessKeyId"], key["SecretAccessKey"])
    ident = await gw.call(sts.get_caller_identity)
    assert ident["Arn"] == f"arn:aws:iam::{ACCOUNT}:user/alice"
    assert ident["Account"] == ACCOUNT
    assert ident["UserId"].startswith("AIDA")


async def test_root_identity(gw: GatewayHarness) -> None:
    ident = await gw.call(gw.client("sts").get_caller_identity)
    assert ident["Arn"] == f"arn:aws:iam::{ACCOUNT}:root"
    assert ident["UserId"] == ACCOUNT


async def test_wrong_secret_is_signature_does_not_match(gw: GatewayHarness) -> None:
    key = await _user_with_key(gw, "bob")
    sts = gw.client("sts", key["AccessKeyId"], "x" * 40)
    with pytest.raises(botocore.exceptions.ClientError) as info:
        await gw.call(sts.get_caller_identity)
    code, status, _ = _error(info)
    assert (code, status) == ("SignatureDoesNotMatch", 403)


async def test_unknown_key_is_invalid_client_token_id(gw: GatewayHarness) -> None:
    sts = gw.client("sts", "AKIAXXXXXXXXXXXXXXXX", "y" * 40)
    with pytest.raises(botocore.exceptions.ClientError) as info:
        await gw.call(sts.get_caller_identity)
    assert _error(info)[:2] == ("InvalidClientTokenId", 403)


async def test_inactive_and_deleted_keys_stop_working(gw: GatewayHarness) -> None:
    key = await _user_with_key(gw, "carol")
    iam = gw.client("iam")
    sts = gw.client("sts", key["AccessKeyId"], key["SecretAccessKey"])
    await gw.call(sts.get_caller_identity)  # cached now
    await gw.call(iam.update_access_key, UserName="carol", AccessKeyId=key["AccessKeyId"],
                  Status="Inactive")
    with pytest.raises(botocore.exceptions.ClientError) as info:
        await gw.call(sts.get_caller_identity)
    assert _error(info)[0] == "InvalidClientTokenId"
    listed = await gw.call(iam.list_access_keys, UserName="carol")
    assert [(k["AccessKeyId"], k["Status"]) for k in listed["AccessKeyMetadata"]] == \
        [(key["AccessKeyId"], "Inactive")]
    await gw.call(iam.update_access_key, UserName="carol", AccessKeyId=key["AccessKeyId"],
                  Status="Active")
    await gw.call(sts.get_caller_identity)
    await gw.call(iam.delete_access_key, UserName="carol", AccessKeyId=key["AccessKeyId"])
    with pytest.raises(botocore.exceptions.ClientError) as info:
        await gw.call(sts.get_caller_identity)
    assert _error(info)[0] == "InvalidClientTokenId"


async def test_identity_policies_authorise_iam_calls(gw: GatewayHarness) -> None:
    key = await _user_with_key(gw, "dave")
    dave = gw.client("iam", key["AccessKeyId"], key["SecretAccessKey"])
    with pytest.raises(botocore.exceptions.ClientError) as info:
        await gw.call(dave.list_users)
    assert _error(info) == (
        "AccessDenied", 403,
        f"User: arn:aws:iam::{ACCOUNT}:user/dave is not authorized to perform: iam:ListUsers on "
        f"resource: arn:aws:iam::{ACCOUNT}:user/ because no identity-based policy allows the "
        "iam:ListUsers action")
    iam = gw.client("iam")
    await gw.call(iam.put_user_policy, UserName="dave", PolicyName="all", PolicyDocument=ALLOW_ALL_IAM)
    users = await gw.call(dave.list_users)
    assert [u["UserName"] for u in users["Users"]] == ["dave"]
    deny = json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Deny", "Action": "iam:CreateUser", "Resource": "*"}]})
    await gw.call(iam.put_user_policy, UserName="dave", PolicyName="deny", PolicyDocument=deny)
    with pytest.raises(botocore.exceptions.ClientError) as info:
        await gw.call(dave.create_user, UserName="eve")
    code, status, message = _error(info)
    assert (code, status) == ("AccessDenied", 403)
    assert message.endswith("with an explicit deny in an identity-based policy")


async def test_self_service_with_policy_variables(gw: GatewayHarness) -> None:
    own_keys = json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Action": ["iam:ListAccessKeys", "iam:GetUser"],
        "Resource": "arn:aws:iam::*:user/${aws:username}"}]})
    key = await _user_with_key(gw, "frank", own_keys)
    await gw.call(gw.client("iam").create_user, UserName="grace")
    frank = gw.client("iam", key["AccessKeyId"], key["SecretAccessKey"])
    me = await gw.call(frank.get_user)  # no UserName: the caller
    assert me["User"]["UserName"] == "frank"
    keys = await gw.call(frank.list_access_keys)
    assert [k["AccessKeyId"] for k in keys["AccessKeyMetadata"]] == [key["AccessKeyId"]]
    with pytest.raises(botocore.exceptions.ClientError) as info:
        await gw.call(frank.list_access_keys, UserName="grace")
    assert _error(info)[0] == "AccessDenied"


async def test_user_lifecycle_errors(gw: GatewayHarness) -> None:
    iam = gw.client("iam")
    await gw.call(iam.create_user, UserName="Henry", Path="/staff/")
    with pytest.raises(botocore.exceptions.ClientError) as info:
        await gw.call(iam.create_user, UserName="henry")  # names are case-insensitive
    assert _error(info) == ("EntityAlreadyExists", 409, "User with name henry already exists.")
    with pytest.raises(botocore.exceptions.ClientError) as info:
        await gw.call(iam.get_user, UserName="nobody")
    assert _error(info) == ("NoSuchEntity", 404, "The user with name nobody cannot be found.")
    got = await gw.call(iam.get_user, UserName="henry")
    assert got["User"]["Arn"] == f"arn:aws:iam::{ACCOUNT}:user/staff/Henry"
    await gw.call(iam.create_access_key, UserName="Henry")
    await gw.call(iam.create_access_key, UserName="Henry")
    with pytest.raises(botocore.exceptions.ClientError) as info:
        await gw.call(iam.create_access_key, UserName="Henry")
    assert _error(info) == ("LimitExceeded", 409, "Cannot exceed quota for AccessKeysPerUser: 2")
    with pytest.raises(botocore.exceptions.ClientError) as info:
        await gw.call(iam.delete_user, UserName="Henry")
    assert _error(info) == ("DeleteConflict", 409,
                            "Cannot delete entity, must delete access keys first.")
    for k in (await gw.call(iam.list_access_keys, UserName="Henry"))["AccessKeyMetadata"]:
        await gw.call(iam.delete_access_key, UserName="Henry", AccessKeyId=k["AccessKeyId"])
    await gw.call(iam.put_user_policy, UserName="Henry", PolicyName="p", PolicyDocument=ALLOW_ALL_IAM)
    with pytest.raises(botocore.exceptions.ClientError) as info:
        await gw.call(iam.delete_user, UserName="Henry")
    assert _error(info)[2] == "Cannot delete entity, must delete policies first."
    assert (await gw.call(iam.list_user_policies, UserName="Henry"))["PolicyNames"] == ["p"]
    await gw.call(iam.delete_user_policy, UserName="Henry", PolicyName="p")
    with pytest.raises(botocore.exceptions.ClientError) as info:
        await gw.call(iam.get_user_policy, UserName="Henry", PolicyName="p")
    assert _error(info) == ("NoSuchEntity", 404, "The user policy with name p cannot be found.")
    await gw.call(iam.delete_user, UserName="Henry")
    assert (await gw.call(iam.list_users))["Users"] == []


async def test_malformed_policy_document(gw: GatewayHarness) -> None:
    iam = gw.client("iam")
    await gw.call(iam.create_user, UserName="ivan")
    bad = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Maybe", "Action": "*",
                                                             "Resource": "*"}]})
    with pytest.raises(botocore.exceptions.ClientError) as info:
        await gw.call(iam.put_user_policy, UserName="ivan", PolicyName="p", PolicyDocument=bad)
    assert _error(info)[:2] == ("MalformedPolicyDocument", 400)
    with pytest.raises(botocore.exceptions.ClientError) as info:
        await gw.call(iam.create_role, RoleName="r", AssumeRolePolicyDocument=ALLOW_ALL_IAM)
    assert _error(info)[:2] == ("MalformedPolicyDocument", 400)  # trust policy needs a Principal


async def test_list_users_pagination(gw: GatewayHarness) -> None:
    iam = gw.client("iam")
    for n in ("u1", "u2", "u3"):
        await gw.call(iam.create_user, UserName=n)
    page = await gw.call(iam.list_users, MaxItems=2)
    assert [u["UserName"] for u in page["Users"]] == ["u1", "u2"]
    assert page["IsTruncated"] is True
    rest = await gw.call(iam.list_users, MaxItems=2, Marker=page["Marker"])
    assert [u["UserName"] for u in rest["Users"]] == ["u3"]
    assert rest["IsTruncated"] is False
    paginator = iam.get_paginator("list_users")
    names = [u["UserName"] for p in await gw.call(lambda: list(paginator.paginate(PaginationConfig={"PageSize": 1})))
             for u in p["Users"]]
    assert names == ["u1", "u2", "u3"]


async def test_roles_and_role_policies(gw: GatewayHarness) -> None:
    iam = gw.client("iam")
    doc = trust(f"arn:aws:iam::{ACCOUNT}:root")
    role = (await gw.call(iam.create_role, RoleName="app", AssumeRolePolicyDocument=doc,
                          Description="d", MaxSessionDuration=7200))["Role"]
    assert role["Arn"] == f"arn:aws:iam::{ACCOUNT}:role/app"
    assert role["RoleId"].startswith("AROA")
    assert role["AssumeRolePolicyDocument"] == json.loads(doc)   # botocore URL-decodes
    got = (await gw.call(iam.get_role, RoleName="app"))["Role"]
    assert got["MaxSessionDuration"] == 7200 and got["Description"] == "d"
    assert [r["RoleName"] for r in (await gw.call(iam.list_roles))["Roles"]] == ["app"]
    await gw.call(iam.put_role_policy, RoleName="app", PolicyName="rp", PolicyDocument=ALLOW_ALL_IAM)
    assert (await gw.call(iam.get_role_policy, RoleName="app", PolicyName="rp"))["PolicyDocument"] == \
        json.loads(ALLOW_ALL_IAM)
    assert (await gw.call(iam.list_role_policies, RoleName="app"))["PolicyNames"] == ["rp"]
    with pytest.raises(botocore.exceptions.ClientError) as info:
        await gw.call(iam.delete_role, RoleName="app")
    assert _error(info)[:2] == ("DeleteConflict", 409)
    await gw.call(iam.delete_role_policy, RoleName="app", PolicyName="rp")
    await gw.call(iam.delete_role, RoleName="app")
    with pytest.raises(botocore.exceptions.ClientError) as info:
        await gw.call(iam.get_role, RoleName="app")
    assert _error(info) == ("NoSuchEntity", 404, "The role with name app cannot be found.")


async def test_assume_role_round_trip(gw: GatewayHarness) -> None:
    iam = gw.client("iam")
    key = await _user_with_key(gw, "jack", ALLOW_ALL_IAM)
    await gw.call(iam.create_role, RoleName="deployer",
                  AssumeRolePolicyDocument=trust(f"arn:aws:iam::{ACCOUNT}:root"))
    await gw.call(iam.put_role_policy, RoleName="deployer", PolicyName="kms",
                  PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
                      {"Effect": "Allow", "Action": "kms:*", "Resource": "*"}]}))
    sts = gw.client("sts", key["AccessKeyId"], key["SecretAccessKey"])
    out = await gw.call(sts.assume_role, RoleArn=f"arn:aws:iam::{ACCOUNT}:role/deployer",
                        RoleSessionName="ci-1", DurationSeconds=900)
    creds = out["Credentials"]
    assert creds["AccessKeyId"].startswith("ASIA")
    assert out["AssumedRoleUser"]["Arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/deployer/ci-1"
    assert out["AssumedRoleUser"]["AssumedRoleId"].endswith(":ci-1")
    assert 850 < (creds["Expiration"].timestamp() - __import__("time").time()) <= 900

    session_sts = gw.client("sts", creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"])
    ident = await gw.call(session_sts.get_caller_identity)
    assert ident["Arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/deployer/ci-1"

    # the session's caller reaches services with its session context and role policies
    kms = gw.client("kms", creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"])
    await gw.call(kms.list_keys)
    caller = gw.kms.callers[-1]
    assert caller.principal_type == "AssumedRole"
    assert caller.session_context.session_issuer.arn == f"arn:aws:iam::{ACCOUNT}:role/deployer"
    assert caller.session_context.session_issuer.user_name == "deployer"
    assert caller.session_context.creation_date.endswith("Z")
    assert [json.loads(d)["Statement"][0]["Action"] for d in caller.identity_policy_documents] == ["kms:*"]

    # without the token, or with another token: refused
    no_token = gw.client("sts", creds["AccessKeyId"], creds["SecretAccessKey"])
    with pytest.raises(botocore.exceptions.ClientError) as info:
        await gw.call(no_token.get_caller_identity)
    assert _error(info)[:2] == ("InvalidClientTokenId", 403)
    bad_token = gw.client("sts", creds["AccessKeyId"], creds["SecretAccessKey"], "AAAA" + creds["SessionToken"][4:])
    with pytest.raises(botocore.exceptions.ClientError) as info:
        await gw.call(bad_token.get_caller_identity)
    assert _error(info)[:2] == ("InvalidClientTokenId", 403)

    # role chaining is limited to one hour
    with pytest.raises(botocore.exceptions.ClientError) as info:
        await gw.call(session_sts.assume_role, RoleArn=f"arn:aws:iam::{ACCOUNT}:role/deployer",
                      RoleSessionName="chain", DurationSeconds=7200)
    assert _error(info)[:2] == ("ValidationError", 400)


async def test_assume_role_trust_denial(gw: GatewayHarness) -> None:
    iam = gw.client("iam")
    key = await _user_with_key(gw, "kate", ALLOW_ALL_IAM)
    await gw.call(iam.create_role, RoleName="locked",
                  AssumeRolePolicyDocument=trust(f"arn:aws:iam::{ACCOUNT}:user/someone-else"))
    sts = gw.client("sts", key["AccessKeyId"], key["SecretAccessKey"])
    arn = f"arn:aws:iam::{ACCOUNT}:role/locked"
    with pytest.raises(botocore.exceptions.ClientError) as info:
        await gw.call(sts.assume_role, RoleArn=arn, RoleSessionName="s1")
    assert _error(info) == ("AccessDenied", 403, f"User: arn:aws:iam::{ACCOUNT}:user/kate is not "
                            f"authorized to perform: sts:AssumeRole on resource: {arn}")
    # a role that does not exist answers the same (no oracle)
    missing = f"arn:aws:iam::{ACCOUNT}:role/missing"
    with pytest.raises(botocore.exceptions.ClientError) as info:
        await gw.call(sts.assume_role, RoleArn=missing, RoleSessionName="s1")
    assert _error(info)[:2] == ("AccessDenied", 403)


async def test_assume_role_needs_identity_allow_when_trust_names_the_account(gw: GatewayHarness) -> None:
    iam = gw.client("iam")
    key = await _user_with_key(gw, "leo")  # no identity policy
    await gw.call(iam.create_role, RoleName="acct", AssumeRolePolicyDocument=trust(ACCOUNT))
    sts = gw.client("sts", key["AccessKeyId"], key["SecretAccessKey"])
    with pytest.raises(botocore.exceptions.ClientError) as info:
        await gw.call(sts.assume_role, RoleArn=f"arn:aws:iam::{ACCOUNT}:role/acct", RoleSessionName="s1")
    assert _error(info)[:2] == ("AccessDenied", 403)
    # naming the user directly in the trust policy is enough (AWS same-account semantics)
    await gw.call(iam.create_role, RoleName="direct",
                  AssumeRolePolicyDocument=trust(f"arn:aws:iam::{ACCOUNT}:user/leo"))
    out = await gw.call(sts.assume_role, RoleArn=f"arn:aws:iam::{ACCOUNT}:role/direct", RoleSessionName="s1")
    assert out["AssumedRoleUser"]["Arn"].endswith("assumed-role/direct/s1")


async def test_assume_role_duration_limits(gw: GatewayHarness) -> None:
    iam = gw.client("iam")
    await gw.call(iam.create_role, RoleName="short", AssumeRolePolicyDocument=trust(ACCOUNT))
    sts = gw.client("sts")
    arn = f"arn:aws:iam::{ACCOUNT}:role/short"
    with pytest.raises(botocore.exceptions.ClientError) as info:
        await gw.call(sts.assume_role, RoleArn=arn, RoleSessionName="s1", DurationSeconds=7200)
    assert _error(info) == ("ValidationError", 400, "The requested DurationSeconds exceeds the "
                            "MaxSessionDuration set for this role.")
    from botocore.config import Config

    unchecked = gw.client("sts", config=Config(parameter_validation=False, retries={"max_attempts": 1}))
    with pytest.raises(botocore.exceptions.ClientError) as info:
        await gw.call(unchecked.assume_role, RoleArn=arn, RoleSessionName="s1", DurationSeconds=899)
    assert _error(info)[0] == "ValidationError"
    assert "durationSeconds" in _error(info)[2]


async def test_expired_session(gw: GatewayHarness) -> None:
    iam = gw.client("iam")
    await gw.call(iam.create_role, RoleName="temp", AssumeRolePolicyDocument=trust(ACCOUNT))
    out = await gw.call(gw.client("sts").assume_role, RoleArn=f"arn:aws:iam::{ACCOUNT}:role/temp",
                        RoleSessionName="s1")
    creds = out["Credentials"]
    db = sqlite3.connect(gw.settings.data_dir / "gateway" / "iam.db")
    db.execute("UPDATE sessions SET expires = expires - 7200")
    db.commit()
    db.close()
    gw.server.app[__import__("gateway.app", fromlist=["GATEWAY"]).GATEWAY].identities.invalidate()
    sts = gw.client("sts", creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"])
    with pytest.raises(botocore.exceptions.ClientError) as info:
        await gw.call(sts.get_caller_identity)
    assert _error(info)[:2] == ("ExpiredToken", 403)


async def test_deleting_the_role_voids_its_sessions(gw: GatewayHarness) -> None:
    iam = gw.client("iam")
    await gw.call(iam.create_role, RoleName="gone", AssumeRolePolicyDocument=trust(ACCOUNT))
    creds = (await gw.call(gw.client("sts").assume_role,
                           RoleArn=f"arn:aws:iam::{ACCOUNT}:role/gone", RoleSessionName="s1"))["Credentials"]
    await gw.call(iam.delete_role, RoleName="gone")
    sts = gw.client("sts", creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"])
    with pytest.raises(botocore.exceptions.ClientError) as info:
        await gw.call(sts.get_caller_identity)
    assert _error(info)[0] == "InvalidClientTokenId"


async def test_secrets_not_stored_in_plaintext(gw: GatewayHarness) -> None:
    key = await _user_with_key(gw, "mia")
    await gw.call(gw.client("iam").create_role, RoleName="r", AssumeRolePolicyDocument=trust(ACCOUNT))
    creds = (await gw.call(gw.client("sts").assume_role, RoleArn=f"arn:aws:iam::{ACCOUNT}:role/r",
                           RoleSessionName="s1"))["Credentials"]
    folder = gw.settings.data_dir / "gateway"
    raw = b"".join(p.read_bytes() for p in folder.iterdir() if p.name.startswith("iam.db"))
    assert key["SecretAccessKey"].encode() not in raw
    assert creds["SecretAccessKey"].encode() not in raw
    assert creds["SessionToken"].encode() not in raw
    assert stat.S_IMODE(os.stat(folder / "iam.key").st_mode) == 0o600


async def test_audit_records_without_secrets(gw: GatewayHarness) -> None:
    key = await _user_with_key(gw, "nora")
    await gw.call(gw.client("sts").get_caller_identity)
    events = gw.audit.events
    by_name = {e["eventName"]: e for e in events}
    created = by_name["CreateAccessKey"]
    assert created["eventSource"] == "iam.amazonaws.com"
    assert created["requestParameters"] == {"userName": "nora"}
    assert created["responseElements"]["accessKey"]["accessKeyId"] == key["AccessKeyId"]
    assert key["SecretAccessKey"] not in json.dumps(events)
    assert created["userIdentity"]["type"] == "Root"
    assert created["readOnly"] is False
    who = by_name["GetCallerIdentity"]
    assert who["eventSource"] == "sts.amazonaws.com" and who["readOnly"] is True
    assert who["responseElements"] is None
    # failures are recorded too
    with pytest.raises(botocore.exceptions.ClientError):
        await gw.call(gw.client("iam").get_user, UserName="nobody")
    failed = gw.audit.events[-1]
    assert (failed["eventName"], failed["errorCode"]) == ("GetUser", "NoSuchEntity")


async def test_unknown_and_missing_action(gw: GatewayHarness) -> None:
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    from tests.unit.gateway.conftest import ROOT_AKID, ROOT_SECRET

    def post(body: str, sign: bool = True) -> tuple[int, str]:
        req = AWSRequest(method="POST", url=gw.endpoint + "/", data=body,
                         headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"})
        if sign:
            SigV4Auth(Credentials(ROOT_AKID, ROOT_SECRET), "iam", "us-east-1").add_auth(req)
        p = req.prepare()
        r = urllib.request.Request(p.url, data=body.encode(), headers=dict(p.headers), method="POST")
        try:
            with urllib.request.urlopen(r) as resp:
                return resp.status, resp.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    status, body = await gw.call(post, "Action=FlyToTheMoon&Version=2010-05-08")
    assert status == 400
    assert "<Code>InvalidAction</Code>" in body
    assert "<Message>Could not find operation FlyToTheMoon for version 2010-05-08</Message>" in body
    status, body = await gw.call(post, "Action=ListUsers&Version=2010-05-08", False)
    assert status == 403 and "<Code>MissingAuthenticationToken</Code>" in body
    status, body = await gw.call(post, "Action=ListUsers&Version=2010-05-08&MaxItems=abc")
    assert status == 400 and "<Code>InvalidParameterValue</Code>" in body


async def test_query_via_get_query_string(gw: GatewayHarness) -> None:
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    from tests.unit.gateway.conftest import ROOT_AKID, ROOT_SECRET

    def get() -> tuple[int, str]:
        req = AWSRequest(method="GET", url=gw.endpoint + "/?Action=GetCallerIdentity&Version=2011-06-15")
        SigV4Auth(Credentials(ROOT_AKID, ROOT_SECRET), "sts", "us-east-1").add_auth(req)
        p = req.prepare()
        with urllib.request.urlopen(urllib.request.Request(p.url, headers=dict(p.headers))) as resp:
            return resp.status, resp.read().decode()

    status, body = await gw.call(get)
    assert status == 200
    assert f"<Arn>arn:aws:iam::{ACCOUNT}:root</Arn>" in body
