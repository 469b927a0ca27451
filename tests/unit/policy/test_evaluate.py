"""Evaluation logic, following
https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html
and the cross-account page."""

from __future__ import annotations

import pytest

from common.policy import AuthzRequest, Decision, Principal, build_context, evaluate, explain

from .helpers import ACCT, ANON, OTHER, allow, deny, pol, req, root, service, session, user

BUCKET = "arn:aws:s3:::examplebucket"
OBJ = "arn:aws:s3:::examplebucket/key"
TABLE = f"arn:aws:dynamodb:us-east-1:{ACCT}:table/Books"


# ---------------------------------------------------------------- basics


def test_default_deny() -> None:
    assert evaluate(req(user(), "s3:GetObject", OBJ)) is Decision.IMPLICIT_DENY
    assert evaluate(req(user(), "s3:GetObject", OBJ), identity_policies=[pol()]) is Decision.IMPLICIT_DENY


def test_identity_allow() -> None:
    p = pol(allow("s3:GetObject", "arn:aws:s3:::examplebucket/*"))
    assert evaluate(req(user(), "s3:GetObject", OBJ), identity_policies=[p]) is Decision.ALLOW
    assert evaluate(req(user(), "s3:PutObject", OBJ), identity_policies=[p]) is Decision.IMPLICIT_DENY
    assert evaluate(req(user(), "s3:GetObject", "arn:aws:s3:::other/k"), identity_policies=[p]) is Decision.IMPLICIT_DENY


def test_explicit_deny_wins_over_any_allow() -> None:
    a = pol(allow("s3:*"))
    d = pol(deny("s3:DeleteObject", "arn:aws:s3:::examplebucket/*"))
    r = req(user(), "s3:DeleteObject", OBJ)
    assert evaluate(r, identity_policies=[a, d]) is Decision.EXPLICIT_DENY
    assert evaluate(r, identity_policies=[d, a]) is Decision.EXPLICIT_DENY
    # Deny in resource policy beats identity allow...
    bp = pol(deny("s3:DeleteObject", OBJ, Principal="*"))
    assert evaluate(r, identity_policies=[a], resource_policy=bp) is Decision.EXPLICIT_DENY
    # ... and deny in identity policy beats resource allow.
    bp2 = pol(allow("s3:*", OBJ, Principal={"AWS": user().arn}))
    assert evaluate(r, identity_policies=[d], resource_policy=bp2) is Decision.EXPLICIT_DENY


def test_deny_with_condition_only_when_condition_holds() -> None:
    a = pol(allow("s3:*"))
    d = pol(deny("s3:*", Condition={"Bool": {"aws:SecureTransport": "false"}}))
    assert evaluate(req(user(), "s3:GetObject", OBJ, {"aws:SecureTransport": True}), identity_policies=[a, d]) is Decision.ALLOW
    assert evaluate(req(user(), "s3:GetObject", OBJ, {"aws:SecureTransport": False}), identity_policies=[a, d]) is Decision.EXPLICIT_DENY


def test_not_action() -> None:
    # AWS example: allow everything except IAM.
    p = pol({"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"})
    assert evaluate(req(user(), "s3:GetObject", OBJ), identity_policies=[p]) is Decision.ALLOW
    assert evaluate(req(user(), "iam:CreateUser", f"arn:aws:iam::{ACCT}:user/x"), identity_policies=[p]) is Decision.IMPLICIT_DENY
    # Deny + NotAction: deny everything except the listed actions.
    d = pol({"Effect": "Deny", "NotAction": ["iam:*", "sts:GetSessionToken"], "Resource": "*",
             "Condition": {"BoolIfExists": {"aws:MultiFactorAuthPresent": "false"}}})
    admin = pol(allow("*"))
    assert evaluate(req(user(), "s3:GetObject", OBJ), identity_policies=[admin, d]) is Decision.EXPLICIT_DENY
    assert evaluate(req(user(), "s3:GetObject", OBJ, {"aws:MultiFactorAuthPresent": True}), identity_policies=[admin, d]) is Decision.ALLOW
    assert evaluate(req(user(), "iam:ListUsers", "*"), identity_policies=[admin, d]) is Decision.ALLOW


def test_not_resource() -> None:
    p = pol({"Effect": "Allow", "Action": "s3:*", "NotResource": ["arn:aws:s3:::HRBucket/Payroll", "arn:aws:s3:::HRBucket/Payroll/*"]})
    assert evaluate(req(user(), "s3:GetObject", "arn:aws:s3:::HRBucket/Other"), identity_policies=[p]) is Decision.ALLOW
    assert evaluate(req(user(), "s3:GetObject", "arn:aws:s3:::HRBucket/Payroll/x"), identity_policies=[p]) is Decision.IMPLICIT_DENY


def test_action_case_insensitive_resource_case_sensitive() -> None:
    p = pol(allow("S3:getobject", "arn:aws:s3:::examplebucket/*"))
    assert evaluate(req(user(), "s3:GetObject", OBJ), identity_policies=[p]) is Decision.ALLOW
    assert evaluate(req(user(), "s3:GetObject", "arn:aws:s3:::ExampleBucket/key"), identity_policies=[p]) is Decision.IMPLICIT_DENY


def test_resource_policy_variables() -> None:
    p = pol(allow("s3:*", "arn:aws:s3:::home/${aws:username}/*"))
    assert evaluate(req(user("bob"), "s3:GetObject", "arn:aws:s3:::home/bob/x"), identity_policies=[p]) is Decision.ALLOW
    assert evaluate(req(user("bob"), "s3:GetObject", "arn:aws:s3:::home/alice/x"), identity_policies=[p]) is Decision.IMPLICIT_DENY
    # Roles have no aws:username -> the resource never matches.
    assert evaluate(req(session(), "s3:GetObject", "arn:aws:s3:::home/bob/x"), identity_policies=[p]) is Decision.IMPLICIT_DENY
    # In a 2008-10-17 policy the variable is literal text.
    old = pol(allow("s3:*", "arn:aws:s3:::home/${aws:username}/*"), version="2008-10-17")
    assert evaluate(req(user("bob"), "s3:GetObject", "arn:aws:s3:::home/bob/x"), identity_policies=[old]) is Decision.IMPLICIT_DENY


def test_policy_variables_userid_and_account() -> None:
    p = pol(allow("dynamodb:*", "arn:aws:dynamodb:*:${aws:PrincipalAccount}:table/${aws:userid}-*"))
    u = user("carol", user_id="AIDACAROL")
    assert evaluate(req(u, "dynamodb:GetItem", f"arn:aws:dynamodb:us-east-1:{ACCT}:table/AIDACAROL-data"), identity_policies=[p]) is Decision.ALLOW
    assert evaluate(req(u, "dynamodb:GetItem", f"arn:aws:dynamodb:us-east-1:{OTHER}:table/AIDACAROL-data"), identity_policies=[p]) is Decision.IMPLICIT_DENY


# ---------------------------------------------------------------- context


def test_build_context_derives_principal_keys() -> None:
    ctx = build_context(req(user("bob", user_id="AIDABOB"), "s3:GetObject", OBJ, {"aws:username": "forged"}))
    assert ctx.get("aws:username") == ("bob",)
    assert ctx.get("aws:userid") == ("AIDABOB",)
    assert ctx.get("aws:PrincipalAccount") == (ACCT,)
    assert ctx.get("aws:PrincipalArn") == (f"arn:aws:iam::{ACCT}:user/bob",)
    assert ctx.get("aws:PrincipalType") == ("User",)
    s = build_context(req(session("Dev", "x"), "s3:GetObject", OBJ))
    assert s.get("aws:username") is None
    assert s.get("aws:PrincipalArn") == (f"arn:aws:iam::{ACCT}:role/Dev",)
    assert s.get("aws:PrincipalType") == ("AssumedRole",)
    svc = build_context(req(service("cloudtrail.amazonaws.com"), "s3:PutObject", OBJ))
    assert svc.get("aws:PrincipalServiceName") == ("cloudtrail.amazonaws.com",)
    assert svc.get("aws:PrincipalIsAWSService") == (True,)
    r = build_context(req(root(), "s3:GetObject", OBJ))
    assert r.get("aws:PrincipalType") == ("Account",)
    assert r.get("aws:userid") == (ACCT,)


def test_principal_arn_condition_in_resource_policy() -> None:
    bp = pol(allow("s3:GetObject", OBJ, Principal="*",
                   Condition={"ArnLike": {"aws:PrincipalArn": f"arn:aws:iam::{ACCT}:role/Dev*"}}))
    assert evaluate(req(session("DevOps"), "s3:GetObject", OBJ), resource_policy=bp, resource_account=ACCT) is Decision.ALLOW
    assert evaluate(req(session("Ops"), "s3:GetObject", OBJ), resource_policy=bp, resource_account=ACCT) is Decision.IMPLICIT_DENY


# ---------------------------------------------------------------- root


def test_root_has_all_identity_permissions_in_standard_mode() -> None:
    assert evaluate(req(root(), "iam:CreateUser", f"arn:aws:iam::{ACCT}:user/x")) is Decision.ALLOW
    assert evaluate(req(root(), "s3:GetObject", OBJ), resource_account=ACCT) is Decision.ALLOW


def test_root_still_subject_to_explicit_deny() -> None:
    bp = pol(deny("s3:*", "arn:aws:s3:::examplebucket/*", Principal="*"))
    assert evaluate(req(root(), "s3:GetObject", OBJ), resource_policy=bp, resource_account=ACCT) is Decision.EXPLICIT_DENY
    bp2 = pol(deny("s3:*", "arn:aws:s3:::examplebucket/*", Principal={"AWS": ACCT}))
    assert evaluate(req(root(), "s3:GetObject", OBJ), resource_policy=bp2, resource_account=ACCT) is Decision.EXPLICIT_DENY


def test_root_cross_account_needs_resource_policy() -> None:
    assert evaluate(req(root(OTHER), "s3:GetObject", OBJ), resource_account=ACCT) is Decision.IMPLICIT_DENY
    bp = pol(allow("s3:GetObject", OBJ, Principal={"AWS": OTHER}))
    assert evaluate(req(root(OTHER), "s3:GetObject", OBJ), resource_policy=bp, resource_account=ACCT) is Decision.ALLOW


# ---------------------------------------------------------------- same account resource policies


def test_same_account_resource_policy_naming_user_is_enough() -> None:
    bp = pol(allow("s3:GetObject", OBJ, Principal={"AWS": f"arn:aws:iam::{ACCT}:user/alice"}))
    assert evaluate(req(user("alice"), "s3:GetObject", OBJ), resource_policy=bp, resource_account=ACCT) is Decision.ALLOW
    assert evaluate(req(user("bob"), "s3:GetObject", OBJ), resource_policy=bp, resource_account=ACCT) is Decision.IMPLICIT_DENY


def test_same_account_resource_policy_account_principal_is_delegation() -> None:
    bp = pol(allow("s3:GetObject", OBJ, Principal={"AWS": f"arn:aws:iam::{ACCT}:root"}))
    r = req(user(), "s3:GetObject", OBJ)
    assert evaluate(r, resource_policy=bp, resource_account=ACCT) is Decision.IMPLICIT_DENY
    ident = pol(allow("s3:GetObject"))
    assert evaluate(r, resource_policy=bp, identity_policies=[ident], resource_account=ACCT) is Decision.ALLOW
    bp_id = pol(allow("s3:GetObject", OBJ, Principal={"AWS": ACCT}))
    assert evaluate(r, resource_policy=bp_id, resource_account=ACCT) is Decision.IMPLICIT_DENY


def test_same_account_identity_allow_without_resource_policy_statement() -> None:
    bp = pol(allow("s3:GetObject", OBJ, Principal={"AWS": f"arn:aws:iam::{ACCT}:user/someone-else"}))
    ident = pol(allow("s3:GetObject"))
    assert evaluate(req(user(), "s3:GetObject", OBJ), identity_policies=[ident], resource_policy=bp, resource_account=ACCT) is Decision.ALLOW


def test_assumed_role_matched_by_role_arn_and_session_arn() -> None:
    s = session("Admin", "alice-session")
    by_role = pol(allow("s3:GetObject", OBJ, Principal={"AWS": f"arn:aws:iam::{ACCT}:role/Admin"}))
    by_session = pol(allow("s3:GetObject", OBJ, Principal={"AWS": f"arn:aws:sts::{ACCT}:assumed-role/Admin/alice-session"}))
    other_session = pol(allow("s3:GetObject", OBJ, Principal={"AWS": f"arn:aws:sts::{ACCT}:assumed-role/Admin/other"}))
    other_role = pol(allow("s3:GetObject", OBJ, Principal={"AWS": f"arn:aws:iam::{ACCT}:role/Other"}))
    r = req(s, "s3:GetObject", OBJ)
    assert evaluate(r, resource_policy=by_role, resource_account=ACCT) is Decision.ALLOW
    assert evaluate(r, resource_policy=by_session, resource_account=ACCT) is Decision.ALLOW
    assert evaluate(r, resource_policy=other_session, resource_account=ACCT) is Decision.IMPLICIT_DENY
    assert evaluate(r, resource_policy=other_role, resource_account=ACCT) is Decision.IMPLICIT_DENY


def test_assumed_role_with_path_and_derived_role_arn() -> None:
    s = session("Admin", "x", path="team/")
    bp = pol(allow("s3:GetObject", OBJ, Principal={"AWS": f"arn:aws:iam::{ACCT}:role/team/Admin"}))
    assert evaluate(req(s, "s3:GetObject", OBJ), resource_policy=bp, resource_account=ACCT) is Decision.ALLOW
    derived = Principal(arn=f"arn:aws:sts::{ACCT}:assumed-role/Admin/x", account=ACCT, kind="AssumedRole")
    assert derived.effective_role_arn() == f"arn:aws:iam::{ACCT}:role/Admin"
    bp2 = pol(allow("s3:GetObject", OBJ, Principal={"AWS": f"arn:aws:iam::{ACCT}:role/Admin"}))
    assert evaluate(req(derived, "s3:GetObject", OBJ), resource_policy=bp2, resource_account=ACCT) is Decision.ALLOW


def test_role_arn_does_not_match_user_with_same_name() -> None:
    bp = pol(allow("s3:GetObject", OBJ, Principal={"AWS": f"arn:aws:iam::{ACCT}:role/alice"}))
    assert evaluate(req(user("alice"), "s3:GetObject", OBJ), resource_policy=bp, resource_account=ACCT) is Decision.IMPLICIT_DENY


def test_resource_policy_statement_without_principal_grants_nothing() -> None:
    bp = pol(allow("s3:GetObject", OBJ))
    assert evaluate(req(user(), "s3:GetObject", OBJ), resource_policy=bp, resource_account=ACCT) is Decision.IMPLICIT_DENY


# ---------------------------------------------------------------- cross-account


def test_cross_account_requires_both_sides() -> None:
    caller = user("bob", account=OTHER)
    ident = pol(allow("s3:GetObject"))
    bp_user = pol(allow("s3:GetObject", OBJ, Principal={"AWS": caller.arn}))
    bp_acct = pol(allow("s3:GetObject", OBJ, Principal={"AWS": OTHER}))
    r = req(caller, "s3:GetObject", OBJ)
    assert evaluate(r, identity_policies=[ident], resource_account=ACCT) is Decision.IMPLICIT_DENY
    assert evaluate(r, resource_policy=bp_user, resource_account=ACCT) is Decision.IMPLICIT_DENY
    assert evaluate(r, identity_policies=[ident], resource_policy=bp_user, resource_account=ACCT) is Decision.ALLOW
    assert evaluate(r, identity_policies=[ident], resource_policy=bp_acct, resource_account=ACCT) is Decision.ALLOW
    # A grant to a different account does not help.
    bp_wrong = pol(allow("s3:GetObject", OBJ, Principal={"AWS": "999999999999"}))
    assert evaluate(r, identity_policies=[ident], resource_policy=bp_wrong, resource_account=ACCT) is Decision.IMPLICIT_DENY


def test_resource_account_derived_from_arn() -> None:
    caller = user("bob", account=OTHER)
    ident = pol(allow("dynamodb:*"))
    assert evaluate(req(caller, "dynamodb:GetItem", TABLE), identity_policies=[ident]) is Decision.IMPLICIT_DENY
    assert evaluate(req(user(), "dynamodb:GetItem", TABLE), identity_policies=[ident]) is Decision.ALLOW


def test_resource_account_defaults_to_caller_when_unknown() -> None:
    ident = pol(allow("s3:ListAllMyBuckets"))
    assert evaluate(req(user(account=OTHER), "s3:ListAllMyBuckets", "*"), identity_policies=[ident]) is Decision.ALLOW


# ---------------------------------------------------------------- anonymous & services


def test_public_bucket_allows_anonymous() -> None:
    bp = pol(allow("s3:GetObject", "arn:aws:s3:::examplebucket/*", Principal="*"))
    assert evaluate(req(ANON, "s3:GetObject", OBJ), resource_policy=bp, resource_account=ACCT) is Decision.ALLOW
    assert evaluate(req(ANON, "s3:PutObject", OBJ), resource_policy=bp, resource_account=ACCT) is Decision.IMPLICIT_DENY
    assert evaluate(req(ANON, "s3:GetObject", OBJ), resource_account=ACCT) is Decision.IMPLICIT_DENY
    aws_star = pol(allow("s3:GetObject", "arn:aws:s3:::examplebucket/*", Principal={"AWS": "*"}))
    assert evaluate(req(ANON, "s3:GetObject", OBJ), resource_policy=aws_star, resource_account=ACCT) is Decision.ALLOW


def test_account_principal_never_matches_anonymous_or_service() -> None:
    bp = pol(allow("s3:GetObject", OBJ, Principal={"AWS": ACCT}))
    assert evaluate(req(ANON, "s3:GetObject", OBJ), resource_policy=bp, resource_account=ACCT) is Decision.IMPLICIT_DENY
    assert evaluate(req(service("cloudtrail.amazonaws.com"), "s3:GetObject", OBJ), resource_policy=bp, resource_account=ACCT) is Decision.IMPLICIT_DENY


def test_service_principal_is_case_insensitive_and_exact() -> None:
    bp = pol(allow("s3:PutObject", OBJ, Principal={"Service": ["CloudTrail.amazonaws.com"]}))
    assert evaluate(req(service("cloudtrail.amazonaws.com"), "s3:PutObject", OBJ), resource_policy=bp) is Decision.ALLOW
    assert evaluate(req(service("config.amazonaws.com"), "s3:PutObject", OBJ), resource_policy=bp) is Decision.IMPLICIT_DENY
    assert evaluate(req(user(), "s3:PutObject", OBJ), resource_policy=bp, resource_account=ACCT) is Decision.IMPLICIT_DENY


# ---------------------------------------------------------------- NotPrincipal


def test_not_principal_deny_requires_all_identities_listed() -> None:
    # AWS docs example: to exempt a role session, list the session ARN, the role ARN and the account.
    s = session("cross-account-read-only-role", "cross-account-audit-app", account=OTHER)
    everything = pol(allow("s3:*"))
    full = pol(
        {"Effect": "Deny", "Action": "s3:*", "Resource": [BUCKET, "arn:aws:s3:::examplebucket/*"],
         "NotPrincipal": {"AWS": [s.arn, s.role_arn, f"arn:aws:iam::{OTHER}:root"]}},
        allow("s3:*", "arn:aws:s3:::examplebucket/*", Principal={"AWS": OTHER}),
    )
    r = req(s, "s3:GetObject", OBJ)
    assert evaluate(r, identity_policies=[everything], resource_policy=full, resource_account=ACCT) is Decision.ALLOW
    # Listing only the session ARN is not enough to escape the deny.
    partial = pol({"Effect": "Deny", "Action": "s3:*", "Resource": "*", "NotPrincipal": {"AWS": [s.arn]}})
    assert evaluate(r, identity_policies=[everything], resource_policy=partial, resource_account=ACCT) is Decision.EXPLICIT_DENY
    # Everyone else is denied.
    other = user("mallory", account=OTHER)
    assert evaluate(req(other, "s3:GetObject", OBJ), identity_policies=[everything], resource_policy=full, resource_account=ACCT) is Decision.EXPLICIT_DENY


def test_not_principal_deny_user_and_root() -> None:
    u = user("alice")
    bp = pol({"Effect": "Deny", "Action": "s3:*", "Resource": "*", "NotPrincipal": {"AWS": [u.arn, ACCT]}})
    everything = pol(allow("s3:*"))
    assert evaluate(req(u, "s3:GetObject", OBJ), identity_policies=[everything], resource_policy=bp, resource_account=ACCT) is Decision.ALLOW
    assert evaluate(req(root(), "s3:GetObject", OBJ), resource_policy=bp, resource_account=ACCT) is Decision.ALLOW
    assert evaluate(req(user("bob"), "s3:GetObject", OBJ), identity_policies=[everything], resource_policy=bp, resource_account=ACCT) is Decision.EXPLICIT_DENY
    assert evaluate(req(ANON, "s3:GetObject", OBJ), resource_policy=bp, resource_account=ACCT) is Decision.EXPLICIT_DENY
    star = pol({"Effect": "Deny", "Action": "s3:*", "Resource": "*", "NotPrincipal": "*"})
    assert evaluate(req(user("bob"), "s3:GetObject", OBJ), identity_policies=[everything], resource_policy=star, resource_account=ACCT) is Decision.ALLOW


def test_not_principal_allow_excludes_any_listed_identity() -> None:
    bp = pol({"Effect": "Allow", "Action": "s3:GetObject", "Resource": OBJ, "NotPrincipal": {"AWS": ACCT}})
    assert evaluate(req(user("bob"), "s3:GetObject", OBJ), resource_policy=bp, resource_account=ACCT) is Decision.IMPLICIT_DENY
    assert evaluate(req(ANON, "s3:GetObject", OBJ), resource_policy=bp, resource_account=ACCT) is Decision.ALLOW
    svc = pol({"Effect": "Deny", "Action": "s3:*", "Resource": "*", "NotPrincipal": {"Service": "logging.s3.amazonaws.com"}})
    assert evaluate(req(service("logging.s3.amazonaws.com"), "s3:PutObject", OBJ), resource_policy=svc) is Decision.IMPLICIT_DENY
    assert evaluate(req(service("other.amazonaws.com"), "s3:PutObject", OBJ), resource_policy=svc) is Decision.EXPLICIT_DENY


# ---------------------------------------------------------------- permissions boundary


def test_permissions_boundary_limits_identity_allow() -> None:
    ident = pol(allow("*"))
    boundary = pol(allow(["s3:*", "cloudwatch:*"]))
    u = user()
    assert evaluate(req(u, "s3:GetObject", OBJ), identity_policies=[ident], permissions_boundary=boundary) is Decision.ALLOW
    assert evaluate(req(u, "iam:CreateUser", f"arn:aws:iam::{ACCT}:user/x"), identity_policies=[ident], permissions_boundary=boundary) is Decision.IMPLICIT_DENY
    # The boundary alone grants nothing.
    assert evaluate(req(u, "s3:GetObject", OBJ), permissions_boundary=boundary) is Decision.IMPLICIT_DENY
    # Deny in the boundary is an explicit deny.
    b2 = pol(allow("*"), deny("s3:DeleteBucket"))
    assert evaluate(req(u, "s3:DeleteBucket", BUCKET), identity_policies=[ident], permissions_boundary=b2) is Decision.EXPLICIT_DENY


def test_permissions_boundary_and_resource_policies() -> None:
    boundary = pol(allow("cloudwatch:*"))
    s = session("Dev", "x")
    by_session = pol(allow("s3:GetObject", OBJ, Principal={"AWS": s.arn}))
    by_role = pol(allow("s3:GetObject", OBJ, Principal={"AWS": s.role_arn}))
    r = req(s, "s3:GetObject", OBJ)
    # Naming the session ARN directly is not limited by the boundary; naming the role ARN is.
    assert evaluate(r, resource_policy=by_session, permissions_boundary=boundary, resource_account=ACCT) is Decision.ALLOW
    assert evaluate(r, resource_policy=by_role, permissions_boundary=boundary, resource_account=ACCT) is Decision.IMPLICIT_DENY
    assert evaluate(r, resource_policy=by_role, resource_account=ACCT) is Decision.ALLOW


# ---------------------------------------------------------------- trust policies


TRUST_ROLE = f"arn:aws:iam::{ACCT}:role/Deploy"


def test_trust_policy_modes() -> None:
    direct = pol({"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCT}:user/alice"}, "Action": "sts:AssumeRole"}, policy_type="trust")
    acct = pol({"Effect": "Allow", "Principal": {"AWS": ACCT}, "Action": "sts:AssumeRole"}, policy_type="trust")
    ec2 = pol({"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}, policy_type="trust")
    ident = pol(allow("sts:AssumeRole", TRUST_ROLE))
    r = req(user("alice"), "sts:AssumeRole", TRUST_ROLE)
    assert evaluate(r, resource_policy=direct, mode="trust") is Decision.ALLOW
    assert evaluate(r, resource_policy=acct, mode="trust") is Decision.IMPLICIT_DENY
    assert evaluate(r, resource_policy=acct, identity_policies=[ident], mode="trust") is Decision.ALLOW
    # The trust policy MUST allow: an identity policy alone is not enough.
    assert evaluate(r, identity_policies=[ident], mode="trust") is Decision.IMPLICIT_DENY
    assert evaluate(r, resource_policy=ec2, identity_policies=[ident], mode="trust") is Decision.IMPLICIT_DENY
    assert evaluate(req(service("ec2.amazonaws.com"), "sts:AssumeRole", TRUST_ROLE), resource_policy=ec2, mode="trust") is Decision.ALLOW


def test_trust_policy_cross_account() -> None:
    caller = user("bob", account=OTHER)
    trust = pol({"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{OTHER}:root"}, "Action": "sts:AssumeRole",
                 "Condition": {"StringEquals": {"sts:ExternalId": "s3cr3t"}}}, policy_type="trust")
    ident = pol(allow("sts:AssumeRole", TRUST_ROLE))
    r_ok = req(caller, "sts:AssumeRole", TRUST_ROLE, {"sts:ExternalId": "s3cr3t"})
    r_bad = req(caller, "sts:AssumeRole", TRUST_ROLE, {"sts:ExternalId": "nope"})
    assert evaluate(r_ok, resource_policy=trust, identity_policies=[ident], mode="trust") is Decision.ALLOW
    assert evaluate(r_bad, resource_policy=trust, identity_policies=[ident], mode="trust") is Decision.IMPLICIT_DENY
    assert evaluate(r_ok, resource_policy=trust, mode="trust") is Decision.IMPLICIT_DENY


# ---------------------------------------------------------------- explain


def test_explain_reports_matching_statements() -> None:
    ident = pol({"Sid": "ReadOnly", **allow("s3:Get*")}, {"Sid": "NoDelete", **deny("s3:Delete*")})
    res = explain(req(user(), "s3:GetObject", OBJ), identity_policies=[ident])
    assert res.decision is Decision.ALLOW
    assert [m.sid for m in res.matched] == ["ReadOnly"]
    res = explain(req(user(), "s3:DeleteObject", OBJ), identity_policies=[ident])
    assert res.decision is Decision.EXPLICIT_DENY
    assert res.matched[0].sid == "NoDelete" and res.matched[0].source == "identity"
    assert not res.decision.allowed
    res = explain(req(user(), "s3:PutObject", OBJ), identity_policies=[ident])
    assert res.decision is Decision.IMPLICIT_DENY and res.matched == ()


@pytest.mark.parametrize("mode", ["standard", "kms", "trust"])
def test_evaluate_equals_explain(mode: str) -> None:
    r = AuthzRequest(principal=user(), action="s3:GetObject", resource=OBJ)
    ident = [pol(allow())]
    assert evaluate(r, identity_policies=ident, mode=mode) is explain(r, identity_policies=ident, mode=mode).decision  # type: ignore[arg-type]


def test_unknown_mode_is_rejected() -> None:
    with pytest.raises(ValueError, match="mode"):
        evaluate(req(user(), "s3:GetObject", OBJ), mode="bogus")  # type: ignore[arg-type]


def test_identity_policy_principal_element_is_ignored_for_identity_evaluation() -> None:
    # Identity policies are attached to the caller; callers parse them with
    # policy_type="identity", which rejects Principal outright.
    p = pol(allow("s3:GetObject", Principal={"AWS": "999999999999"}))
    assert evaluate(req(user(), "s3:GetObject", OBJ), identity_policies=[p]) is Decision.ALLOW
