"""The Caller sent with every RPC (gateway/caller.py)."""

from __future__ import annotations

from datetime import datetime, timezone
from types import SimpleNamespace

from strongroom.common.v1 import caller_pb2

from gateway.caller import build_caller, caller_bytes, condition_context
from gateway.iam.model import Identity, Session, Tag

SESSION = Session(access_key_id="ASIAEXAMPLE", role_name="deployer", role_id="AROAEXAMPLE",
                  role_arn="arn:aws:iam::111122223333:role/ci/deployer", session_name="s1",
                  created=datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc),
                  expires=datetime(2024, 5, 1, 13, 0, tzinfo=timezone.utc),
                  source_identity_arn="arn:aws:iam::111122223333:user/bob")
IDENTITY = Identity(kind="AssumedRole", account_id="111122223333",
                    arn="arn:aws:sts::111122223333:assumed-role/deployer/s1",
                    principal_id="AROAEXAMPLE:s1", access_key_id="ASIAEXAMPLE",
                    policies=('{"Version":"2012-10-17","Statement":[]}',), session=SESSION,
                    tags=(Tag("team", "blue"),))
AUTH = SimpleNamespace(region="us-east-1", signature_version="SigV4", auth_method="AuthHeader")


def test_assumed_role_caller() -> None:
    c = build_caller(identity=IDENTITY, account_id="111122223333", region="us-east-1",
                     request_id="rid", source_ip="10.0.0.1", user_agent="ua", host="h:1", auth=AUTH)
    assert c.principal_type == "AssumedRole"
    assert c.principal_arn == "arn:aws:sts::111122223333:assumed-role/deployer/s1"
    assert c.principal_id == "AROAEXAMPLE:s1"
    assert c.access_key_id == "ASIAEXAMPLE"
    assert c.session_context.creation_date == "2024-05-01T12:00:00Z"
    si = c.session_context.session_issuer
    assert (si.type, si.arn, si.principal_id, si.user_name, si.account_id) == (
        "Role", "arn:aws:iam::111122223333:role/ci/deployer", "AROAEXAMPLE", "deployer", "111122223333")
    assert list(c.identity_policy_documents) == list(IDENTITY.policies)
    assert dict(c.principal_tags) == {"team": "blue"}
    assert (c.request_id, c.source_ip, c.user_agent, c.host, c.region) == ("rid", "10.0.0.1", "ua", "h:1", "us-east-1")
    assert (c.signature_version, c.auth_method) == ("SigV4", "AuthHeader")


def test_bytes_are_a_valid_caller_and_vary_per_request() -> None:
    a = caller_bytes(identity=IDENTITY, region="us-east-1", request_id="r1", source_ip="1.1.1.1",
                     user_agent="u", host="h", auth=AUTH)
    b = caller_bytes(identity=IDENTITY, region="us-east-1", request_id="r2", source_ip="1.1.1.1",
                     user_agent="u", host="h", auth=AUTH)
    assert caller_pb2.Caller.FromString(a).request_id == "r1"
    assert caller_pb2.Caller.FromString(b).request_id == "r2"
    assert caller_pb2.Caller.FromString(a).principal_arn == IDENTITY.arn


def test_anonymous_caller() -> None:
    c = build_caller(identity=None, account_id="111122223333", region="us-east-1", request_id="r",
                     source_ip="1.2.3.4", user_agent="", host="b.localhost")
    assert c.principal_type == "Anonymous"
    assert c.principal_arn == "" and c.account_id == ""


def test_condition_context() -> None:
    c = build_caller(identity=IDENTITY, account_id="1", region="eu-west-1", request_id="r",
                     source_ip="10.0.0.1", user_agent="ua", host="h")
    ctx = condition_context(c, datetime(2024, 1, 1, tzinfo=timezone.utc))
    assert ctx["aws:SourceIp"] == "10.0.0.1"
    assert ctx["aws:UserAgent"] == "ua"
    assert ctx["aws:RequestedRegion"] == "eu-west-1"
    assert ctx["aws:EpochTime"] == 1704067200
    assert ctx["aws:SecureTransport"] is False
    assert ctx["aws:TokenIssueTime"] == "2024-05-01T12:00:00Z"
    assert ctx["aws:PrincipalTag/team"] == "blue"
