"""Shared builders for the policy-engine tests."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from common.policy import AuthzRequest, Policy, Principal, parse_policy

ACCT = "111122223333"
OTHER = "444455556666"


def user(name: str = "alice", account: str = ACCT, user_id: str | None = None) -> Principal:
    return Principal(
        arn=f"arn:aws:iam::{account}:user/{name}",
        account=account,
        kind="IAMUser",
        user_name=name,
        user_id=user_id or f"AIDA{name.upper():0<17}"[:21],
    )


def session(role: str = "Admin", sess: str = "s1", account: str = ACCT, path: str = "") -> Principal:
    return Principal(
        arn=f"arn:aws:sts::{account}:assumed-role/{role}/{sess}",
        account=account,
        kind="AssumedRole",
        role_arn=f"arn:aws:iam::{account}:role/{path}{role}",
        user_id=f"AROAEXAMPLEID:{sess}",
    )


def root(account: str = ACCT) -> Principal:
    return Principal.root(account)


def service(name: str) -> Principal:
    return Principal.aws_service(name)


ANON = Principal.anonymous()


def pol(*statements: Mapping[str, Any], version: str = "2012-10-17", policy_type: Any = "generic") -> Policy:
    return parse_policy(
        json.dumps({"Version": version, "Statement": list(statements)}), policy_type=policy_type
    )


def req(
    principal: Principal,
    action: str,
    resource: str = "*",
    context: Mapping[str, object] | None = None,
) -> AuthzRequest:
    return AuthzRequest(principal=principal, action=action, resource=resource, context=dict(context or {}))


def allow(action: str | Sequence[str] = "*", resource: str | Sequence[str] = "*", **extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def deny(action: str | Sequence[str] = "*", resource: str | Sequence[str] = "*", **extra: Any) -> dict[str, Any]:
    return {"Effect": "Deny", "Action": action, "Resource": resource, **extra}
