"""IAM/STS domain values (pure; no I/O).

ARNs and ids follow AWS:

* user  ``arn:aws:iam::<acct>:user<path><name>``, id ``AIDA`` + 17 chars
* role  ``arn:aws:iam::<acct>:role<path><name>``, id ``AROA`` + 17 chars
* root  ``arn:aws:iam::<acct>:root``, id = the account id
* assumed-role session ``arn:aws:sts::<acct>:assumed-role/<role name>/<session name>``,
  id ``<role id>:<session name>``; temporary access key ids start with ``ASIA``.
"""

from __future__ import annotations

import secrets
import string
from dataclasses import dataclass, field
from datetime import datetime

_ID_ALPHABET = string.ascii_uppercase + string.digits


def new_unique_id(prefix: str) -> str:
    return prefix + "".join(secrets.choice(_ID_ALPHABET) for _ in range(17))


def user_arn(account: str, path: str, name: str) -> str:
    return f"arn:aws:iam::{account}:user{path}{name}"


def role_arn(account: str, path: str, name: str) -> str:
    return f"arn:aws:iam::{account}:role{path}{name}"


def root_arn(account: str) -> str:
    return f"arn:aws:iam::{account}:root"


def assumed_role_arn(account: str, role_name: str, session_name: str) -> str:
    return f"arn:aws:sts::{account}:assumed-role/{role_name}/{session_name}"


@dataclass(frozen=True, slots=True)
class Tag:
    key: str
    value: str


@dataclass(frozen=True, slots=True)
class User:
    name: str
    user_id: str
    path: str
    arn: str
    create_date: datetime
    tags: tuple[Tag, ...] = ()


@dataclass(frozen=True, slots=True)
class Role:
    name: str
    role_id: str
    path: str
    arn: str
    create_date: datetime
    assume_role_policy: str
    description: str | None
    max_session_duration: int
    tags: tuple[Tag, ...] = ()


@dataclass(frozen=True, slots=True)
class AccessKey:
    access_key_id: str
    user_name: str | None  # None: the account root
    status: str  # "Active" | "Inactive"
    create_date: datetime


@dataclass(frozen=True, slots=True)
class Session:
    """Temporary credentials issued by AssumeRole."""

    access_key_id: str
    role_name: str
    role_id: str
    role_arn: str
    session_name: str
    created: datetime
    expires: datetime
    source_identity_arn: str  # who assumed the role


@dataclass(frozen=True, slots=True)
class Identity:
    """An authenticated principal, as the gateway resolves an access key id.

    ``policies`` are the JSON texts of its inline identity policies (user policies for a
    user, role policies for an assumed-role session; empty for root).
    """

    kind: str  # "Root" | "IAMUser" | "AssumedRole"
    account_id: str
    arn: str
    principal_id: str
    access_key_id: str
    user_name: str | None = None
    policies: tuple[str, ...] = ()
    session: Session | None = None
    tags: tuple[Tag, ...] = field(default=())

    @property
    def is_root(self) -> bool:
        return self.kind == "Root"
