"""KMS key policies, following
https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-default.html"""

from __future__ import annotations

import json

from common.policy import Decision, evaluate, parse_policy

from .helpers import ACCT, OTHER, allow, deny, pol, req, root, service, session, user

KEY = f"arn:aws:kms:us-east-1:{ACCT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"

DEFAULT_KEY_POLICY = json.dumps(
    {
        "Version": "2012-10-17",
        "Id": "key-default-1",
        "Statement": [
            {
                "Sid": "Enable IAM User Permissions",
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{ACCT}:root"},
                "Action": "kms:*",
                "Resource": "*",
            }
        ],
    }
)

ADMIN_ROLE = f"arn:aws:iam::{ACCT}:role/KMSAdminRole"
USER_ROLE = f"arn:aws:iam::{ACCT}:role/ExampleUserRole"

CONSOLE_KEY_POLICY = json.dumps(
    {
        "Version": "2012-10-17",
        "Id": "key-consolepolicy-3",
        "Statement": [
            {
                "Sid": "Enable IAM User Permissions",
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{ACCT}:root"},
                "Action": "kms:*",
                "Resource": "*",
            },
            {
                "Sid": "Allow access for Key Administrators",
                "Effect": "Allow",
                "Principal": {"AWS": ADMIN_ROLE},
                "Action": [
                    "kms:Create*", "kms:Describe*", "kms:Enable*", "kms:List*", "kms:Put*",
                    "kms:Update*", "kms:Revoke*", "kms:Disable*", "kms:Get*", "kms:Delete*",
                    "kms:TagResource", "kms:UntagResource", "kms:ScheduleKeyDeletion",
                    "kms:CancelKeyDeletion", "kms:RotateKeyOnDemand",
                ],
                "Resource": "*",
            },
            {
                "Sid": "Allow use of the key",
                "Effect": "Allow",
                "Principal": {"AWS": USER_ROLE},
                "Action": ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"],
                "Resource": "*",
            },
            {
                "Sid": "Allow attachment of persistent resources",
                "Effect": "Allow",
                "Principal": {"AWS": USER_ROLE},
                "Action": ["kms:CreateGrant", "kms:ListGrants", "kms:RevokeGrant"],
                "Resource": "*",
                "Condition": {"Bool": {"kms:GrantIsForAWSResource": "true"}},
            },
        ],
    }
)


def test_default_key_policy_parses_as_resource_policy() -> None:
    p = parse_policy(DEFAULT_KEY_POLICY, policy_type="resource")
    assert p.id == "key-default-1"
    assert p.statements[0].sid == "Enable IAM User Permissions"


def test_default_key_policy_root_allowed() -> None:
    kp = parse_policy(DEFAULT_KEY_POLICY)
    assert evaluate(req(root(), "kms:Encrypt", KEY), resource_policy=kp, mode="kms") is Decision.ALLOW
    assert evaluate(req(root(), "kms:ScheduleKeyDeletion", KEY), resource_policy=kp, mode="kms") is Decision.ALLOW


def test_default_key_policy_user_needs_identity_policy() -> None:
    kp = parse_policy(DEFAULT_KEY_POLICY)
    r = req(user("alice"), "kms:Encrypt", KEY)
    assert evaluate(r, resource_policy=kp, mode="kms") is Decision.IMPLICIT_DENY
    ident = pol(allow(["kms:Encrypt", "kms:Decrypt"], KEY))
    assert evaluate(r, resource_policy=kp, identity_policies=[ident], mode="kms") is Decision.ALLOW
    assert evaluate(req(user("alice"), "kms:ScheduleKeyDeletion", KEY), resource_policy=kp, identity_policies=[ident], mode="kms") is Decision.IMPLICIT_DENY
    # Identity policy scoped to another key does not apply.
    other_key = pol(allow("kms:*", f"arn:aws:kms:us-east-1:{ACCT}:key/other"))
    assert evaluate(r, resource_policy=kp, identity_policies=[other_key], mode="kms") is Decision.IMPLICIT_DENY


def test_key_policy_without_root_statement_locks_out_iam_and_root() -> None:
    kp = pol(allow("kms:*", Principal={"AWS": USER_ROLE}))
    everything = pol(allow("kms:*"))
    assert evaluate(req(root(), "kms:Encrypt", KEY), resource_policy=kp, mode="kms") is Decision.IMPLICIT_DENY
    assert evaluate(req(user(), "kms:Encrypt", KEY), resource_policy=kp, identity_policies=[everything], mode="kms") is Decision.IMPLICIT_DENY
    assert evaluate(req(session("ExampleUserRole"), "kms:Encrypt", KEY), resource_policy=kp, mode="kms") is Decision.ALLOW


def test_kms_mode_without_key_policy_denies() -> None:
    assert evaluate(req(root(), "kms:Encrypt", KEY), mode="kms") is Decision.IMPLICIT_DENY
    assert evaluate(req(user(), "kms:Encrypt", KEY), identity_policies=[pol(allow())], mode="kms") is Decision.IMPLICIT_DENY


def test_identity_deny_applies_even_without_key_policy_grant() -> None:
    kp = parse_policy(DEFAULT_KEY_POLICY)
    d = pol(deny("kms:Decrypt"))
    assert evaluate(req(user(), "kms:Decrypt", KEY), resource_policy=kp, identity_policies=[d], mode="kms") is Decision.EXPLICIT_DENY


def test_console_policy_admins() -> None:
    kp = parse_policy(CONSOLE_KEY_POLICY, policy_type="resource")
    admin = session("KMSAdminRole", "ops")
    for action in ("kms:DescribeKey", "kms:PutKeyPolicy", "kms:ScheduleKeyDeletion", "kms:DisableKey", "kms:TagResource"):
        assert evaluate(req(admin, action, KEY), resource_policy=kp, mode="kms") is Decision.ALLOW, action
    for action in ("kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey"):
        assert evaluate(req(admin, action, KEY), resource_policy=kp, mode="kms") is Decision.IMPLICIT_DENY, action


def test_console_policy_users() -> None:
    kp = parse_policy(CONSOLE_KEY_POLICY, policy_type="resource")
    u = session("ExampleUserRole", "app")
    for action in ("kms:Encrypt", "kms:Decrypt", "kms:ReEncryptFrom", "kms:GenerateDataKeyWithoutPlaintext", "kms:DescribeKey"):
        assert evaluate(req(u, action, KEY), resource_policy=kp, mode="kms") is Decision.ALLOW, action
    for action in ("kms:ScheduleKeyDeletion", "kms:PutKeyPolicy", "kms:Sign"):
        assert evaluate(req(u, action, KEY), resource_policy=kp, mode="kms") is Decision.IMPLICIT_DENY, action


def test_console_policy_persistent_resource_grants() -> None:
    kp = parse_policy(CONSOLE_KEY_POLICY, policy_type="resource")
    u = session("ExampleUserRole", "app")
    for_aws = req(u, "kms:CreateGrant", KEY, {"kms:GrantIsForAWSResource": True})
    not_for_aws = req(u, "kms:CreateGrant", KEY, {"kms:GrantIsForAWSResource": False})
    missing = req(u, "kms:CreateGrant", KEY)
    assert evaluate(for_aws, resource_policy=kp, mode="kms") is Decision.ALLOW
    assert evaluate(not_for_aws, resource_policy=kp, mode="kms") is Decision.IMPLICIT_DENY
    assert evaluate(missing, resource_policy=kp, mode="kms") is Decision.IMPLICIT_DENY
    assert evaluate(req(u, "kms:ListGrants", KEY, {"kms:GrantIsForAWSResource": "true"}), resource_policy=kp, mode="kms") is Decision.ALLOW


def test_console_policy_other_principals_need_iam() -> None:
    kp = parse_policy(CONSOLE_KEY_POLICY)
    stranger = session("SomeOtherRole", "x")
    assert evaluate(req(stranger, "kms:Decrypt", KEY), resource_policy=kp, mode="kms") is Decision.IMPLICIT_DENY
    ident = pol(allow("kms:Decrypt", "*"))
    assert evaluate(req(stranger, "kms:Decrypt", KEY), resource_policy=kp, identity_policies=[ident], mode="kms") is Decision.ALLOW


def test_cross_account_key_use() -> None:
    # Key policy allows the external account; the external account delegates via IAM.
    kp = pol(
        allow("kms:*", Principal={"AWS": f"arn:aws:iam::{ACCT}:root"}),
        allow(["kms:Encrypt", "kms:Decrypt"], Principal={"AWS": f"arn:aws:iam::{OTHER}:root"}),
    )
    ext = user("bob", account=OTHER)
    ident = pol(allow(["kms:Encrypt", "kms:Decrypt"], KEY))
    assert evaluate(req(ext, "kms:Encrypt", KEY), resource_policy=kp, mode="kms") is Decision.IMPLICIT_DENY
    assert evaluate(req(ext, "kms:Encrypt", KEY), resource_policy=kp, identity_policies=[ident], mode="kms") is Decision.ALLOW
    assert evaluate(req(ext, "kms:ScheduleKeyDeletion", KEY), resource_policy=kp, identity_policies=[pol(allow("kms:*"))], mode="kms") is Decision.IMPLICIT_DENY
    assert evaluate(req(root(OTHER), "kms:Decrypt", KEY), resource_policy=kp, mode="kms") is Decision.ALLOW
    # Naming an external principal directly still requires its own IAM allow.
    kp_direct = pol(allow("kms:Decrypt", Principal={"AWS": ext.arn}))
    assert evaluate(req(ext, "kms:Decrypt", KEY), resource_policy=kp_direct, mode="kms") is Decision.IMPLICIT_DENY
    assert evaluate(req(ext, "kms:Decrypt", KEY), resource_policy=kp_direct, identity_policies=[ident], mode="kms") is Decision.ALLOW
    # The key's own account identity policies cannot grant to outsiders.
    assert evaluate(req(user("eve", account="999999999999"), "kms:Decrypt", KEY), resource_policy=kp, identity_policies=[ident], mode="kms") is Decision.IMPLICIT_DENY


def test_key_policy_service_principal_with_conditions() -> None:
    kp = pol(
        allow("kms:GenerateDataKey*", Principal={"Service": "cloudtrail.amazonaws.com"},
              Condition={"StringLike": {"kms:EncryptionContext:aws:cloudtrail:arn": f"arn:aws:cloudtrail:*:{ACCT}:trail/*"}}),
    )
    ct = service("cloudtrail.amazonaws.com")
    ok = req(ct, "kms:GenerateDataKey", KEY, {"kms:EncryptionContext:aws:cloudtrail:arn": f"arn:aws:cloudtrail:us-east-1:{ACCT}:trail/main"})
    bad = req(ct, "kms:GenerateDataKey", KEY, {"kms:EncryptionContext:aws:cloudtrail:arn": f"arn:aws:cloudtrail:us-east-1:{OTHER}:trail/main"})
    assert evaluate(ok, resource_policy=kp, mode="kms") is Decision.ALLOW
    assert evaluate(bad, resource_policy=kp, mode="kms") is Decision.IMPLICIT_DENY


def test_key_policy_deny_beats_root_statement() -> None:
    kp = pol(
        allow("kms:*", Principal={"AWS": f"arn:aws:iam::{ACCT}:root"}),
        deny("kms:ScheduleKeyDeletion", Principal="*"),
    )
    assert evaluate(req(root(), "kms:ScheduleKeyDeletion", KEY), resource_policy=kp, mode="kms") is Decision.EXPLICIT_DENY
    assert evaluate(req(root(), "kms:Encrypt", KEY), resource_policy=kp, mode="kms") is Decision.ALLOW
