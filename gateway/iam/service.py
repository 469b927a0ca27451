"""IAM and STS use cases, run inside the gateway process.

Each operation is an ``async`` method taking the validated AWS input value (a dict keyed by
AWS member names, typed as in gateway/aws/shapes.py) and returning the AWS output value.
:data:`IAM_OPERATIONS` / :data:`STS_OPERATIONS` bind operation names to methods together with
the IAM action and resource the call is authorised against; the Query front end
(gateway/backends/iam.py) looks operations up there, authorises, audits and serialises.

Errors are AWS's (codes, HTTP statuses and messages of the IAM/STS API references):
NoSuchEntity 404, EntityAlreadyExists 409, DeleteConflict 409, LimitExceeded 409,
MalformedPolicyDocument 400, ValidationError 400, AccessDenied 403.
"""

from __future__ import annotations

import asyncio
import base64
import secrets
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, TypeVar
from urllib.parse import quote

from common.credentials import new_access_key_id, new_secret_access_key
from common.errors import ValidationException, error_class
from common.policy import Decision, MalformedPolicyError, parse_policy
from gateway.iam import authz
from gateway.iam.keyring import SecretBox
from gateway.iam.model import (
    AccessKey,
    Identity,
    Role,
    Session,
    Tag,
    User,
    assumed_role_arn,
    new_unique_id,
    role_arn,
    root_arn,
    user_arn,
)
from gateway.iam.store import AlreadyExists, IamStore

NoSuchEntity = error_class("NoSuchEntity", 404)
EntityAlreadyExists = error_class("EntityAlreadyExists", 409)
DeleteConflict = error_class("DeleteConflict", 409)
LimitExceeded = error_class("LimitExceeded", 409)
MalformedPolicyDocument = error_class("MalformedPolicyDocument", 400)
InvalidInput = error_class("InvalidInput", 400)
AccessDenied = error_class("AccessDenied", 403)
ValidationError = error_class("ValidationError", 400)

MAX_ACCESS_KEYS_PER_USER = 2
DEFAULT_MAX_ITEMS = 100
ROLE_CHAINING_MAX_SECONDS = 3600


@dataclass(frozen=True, slots=True)
class Call:
    """One authenticated IAM/STS call."""

    identity: Identity
    context: dict[str, object] = field(default_factory=dict)  # global condition keys
    now: datetime = field(default_factory=lambda: datetime.now(timezone.utc))


Handler = Callable[[Any, Call, dict[str, Any]], Awaitable[dict[str, Any]]]
ResourceOf = Callable[[Any, Call, dict[str, Any]], Awaitable[str]]


@dataclass(frozen=True, slots=True)
class Operation:
    handler: Handler
    action: str | None          # None: no authorisation (GetCallerIdentity)
    resource: ResourceOf | None
    read_only: bool


def _encode_policy(document: str) -> str:
    """IAM returns policy documents URL-encoded (RFC 3986), as AWS does."""
    return quote(document, safe="-_.~")


def _tags_in(value: Sequence[dict[str, Any]] | None) -> tuple[Tag, ...]:
    return tuple(Tag(t["Key"], t.get("Value", "")) for t in value or ())


def _tags_out(tags: tuple[Tag, ...]) -> list[dict[str, str]]:
    return [{"Key": t.key, "Value": t.value} for t in tags]


def _user_value(user: User) -> dict[str, Any]:
    out: dict[str, Any] = {"Path": user.path, "UserName": user.name, "UserId": user.user_id,
                           "Arn": user.arn, "CreateDate": user.create_date}
    if user.tags:
        out["Tags"] = _tags_out(user.tags)
    return out


def _role_value(role: Role, *, with_policy: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {"Path": role.path, "RoleName": role.name, "RoleId": role.role_id,
                           "Arn": role.arn, "CreateDate": role.create_date}
    if with_policy:
        out["AssumeRolePolicyDocument"] = _encode_policy(role.assume_role_policy)
    if role.description:
        out["Description"] = role.description
    out["MaxSessionDuration"] = role.max_session_duration
    if role.tags:
        out["Tags"] = _tags_out(role.tags)
    return out


def _key_value(key: AccessKey) -> dict[str, Any]:
    out: dict[str, Any] = {"AccessKeyId": key.access_key_id, "Status": key.status,
                           "CreateDate": key.create_date}
    if key.user_name is not None:
        out["UserName"] = key.user_name
    return out


T = TypeVar("T")


def _page(items: list[T], name_of: Callable[[T], str], params: dict[str, Any]
          ) -> tuple[list[T], dict[str, Any]]:
    """IAM pagination: ``Marker`` (opaque: the last name returned) and ``MaxItems``."""
    marker = params.get("Marker")
    if marker:
        try:
            after = base64.urlsafe_b64decode(marker.encode()).decode()
        except (ValueError, UnicodeDecodeError):
            raise InvalidInput("Invalid Marker.") from None
        items = [i for i in items if name_of(i).lower() > after.lower()]
    limit = params.get("MaxItems") or DEFAULT_MAX_ITEMS
    page = items[:limit]
    extra: dict[str, Any] = {"IsTruncated": len(items) > limit}
    if len(items) > limit:
        extra["Marker"] = base64.urlsafe_b64encode(name_of(page[-1]).encode()).decode()
    return page, extra


def _check_policy(document: str, policy_type: str) -> None:
    try:
        parse_policy(document, policy_type=policy_type)  # type: ignore[arg-type]
    except MalformedPolicyError as exc:
        raise MalformedPolicyDocument(exc.message) from None


class IamService:
    """IAM users, roles, access keys and inline policies of one account."""

    def __init__(self, *, account_id: str, store: IamStore, box: SecretBox,
                 account_created: datetime | None = None) -> None:
        self.account_id = account_id
        self.store = store
        self.box = box
        self.account_created = account_created or datetime.now(timezone.utc).replace(microsecond=0)
        self._lock = asyncio.Lock()  # multi-step writes (checks + write) are atomic

    # -------------------------------------------------------------------- helpers

    async def _user(self, name: str) -> User:
        user = await self.store.get_user(name)
        if user is None:
            raise NoSuchEntity(f"The user with name {name} cannot be found.")
        return user

    async def _role(self, name: str) -> Role:
        role = await self.store.get_role(name)
        if role is None:
            raise NoSuchEntity(f"The role with name {name} cannot be found.")
        return role

    def _target_user_name(self, call: Call, params: dict[str, Any]) -> str | None:
        """``UserName`` or, when omitted, the calling user (None for the root)."""
        name = params.get("UserName")
        if name:
            return str(name)
        if call.identity.kind == "IAMUser":
            return call.identity.user_name
        if call.identity.kind == "Root":
            return None
        raise ValidationError("Must specify userName when calling with non-User credentials")

    async def user_resource(self, call: Call, params: dict[str, Any]) -> str:
        name = self._target_user_name(call, params)
        if name is None:
            return root_arn(self.account_id)
        user = await self.store.get_user(name)
        if user is not None:
            return user.arn
        return user_arn(self.account_id, params.get("Path") or "/", name)

    async def role_resource(self, call: Call, params: dict[str, Any]) -> str:
        name = str(params.get("RoleName", ""))
        role = await self.store.get_role(name)
        if role is not None:
            return role.arn
        return role_arn(self.account_id, params.get("Path") or "/", name)

    async def users_resource(self, call: Call, params: dict[str, Any]) -> str:
        return f"arn:aws:iam::{self.account_id}:user{params.get('PathPrefix') or '/'}"

    async def roles_resource(self, call: Call, params: dict[str, Any]) -> str:
        return f"arn:aws:iam::{self.account_id}:role{params.get('PathPrefix') or '/'}"

    # -------------------------------------------------------------------- users

    async def create_user(self, call: Call, p: dict[str, Any]) -> dict[str, Any]:
        name = p["UserName"]
        path = p.get("Path") or "/"
        user = User(name=name, user_id=new_unique_id("AIDA"), path=path,
                    arn=user_arn(self.account_id, path, name), create_date=call.now,
                    tags=_tags_in(p.get("Tags")))
        try:
            await self.store.create_user(user)
        except AlreadyExists:
            raise EntityAlreadyExists(f"User with name {name} already exists.") from None
        return {"User": _user_value(user)}

    async def get_user(self, call: Call, p: dict[str, Any]) -> dict[str, Any]:
        name = self._target_user_name(call, p)
        if name is None:  # the root user
            return {"User": {"UserId": self.account_id, "Arn": root_arn(self.account_id),
                             "CreateDate": self.account_created}}
        return {"User": _user_value(await self._user(name))}

    async def list_users(self, call: Call, p: dict[str, Any]) -> dict[str, Any]:
        users = await self.store.list_users(p.get("PathPrefix") or "/")
        page, extra = _page(users, lambda u: u.name, p)
        return {"Users": [_user_value(u) for u in page], **extra}

    async def delete_user(self, call: Call, p: dict[str, Any]) -> dict[str, Any]:
        name = p["UserName"]
        async with self._lock:
            user = await self._user(name)
            if await self.store.list_access_keys(user.name):
                raise DeleteConflict("Cannot delete entity, must delete access keys first.")
            if await self.store.list_policies("user", user.name):
                raise DeleteConflict("Cannot delete entity, must delete policies first.")
            await self.store.delete_user(user.name)
        return {}

    # -------------------------------------------------------------------- access keys

    async def create_access_key(self, call: Call, p: dict[str, Any]) -> dict[str, Any]:
        name = self._target_user_name(call, p)
        async with self._lock:
            if name is not None:
                name = (await self._user(name)).name
            if len(await self.store.list_access_keys(name)) >= MAX_ACCESS_KEYS_PER_USER:
                raise LimitExceeded(
                    f"Cannot exceed quota for AccessKeysPerUser: {MAX_ACCESS_KEYS_PER_USER}")
            key = AccessKey(access_key_id=new_access_key_id("AKIA"), user_name=name,
                            status="Active", create_date=call.now)
            secret = new_secret_access_key()
            sealed = self.box.seal(secret, kind="access-key", key_id=key.access_key_id)
            await self.store.create_access_key(key, sealed)
        out = _key_value(key)
        out["SecretAccessKey"] = secret
        if "UserName" not in out:
            out["UserName"] = self.account_id  # what AWS shows for the root's own keys
        return {"AccessKey": out}

    async def _key_of(self, call: Call, p: dict[str, Any]) -> AccessKey:
        name = self._target_user_name(call, p)
        if name is not None:
            name = (await self._user(name)).name
        key_id = p["AccessKeyId"]
        found = await self.store.get_access_key(key_id)
        if found is None or (found[0].user_name or "").lower() != (name or "").lower():
            raise NoSuchEntity(f"The Access Key with id {key_id} cannot be found.")
        return found[0]

    async def list_access_keys(self, call: Call, p: dict[str, Any]) -> dict[str, Any]:
        name = self._target_user_name(call, p)
        if name is not None:
            name = (await self._user(name)).name
        keys = await self.store.list_access_keys(name)
        page, extra = _page(keys, lambda k: k.access_key_id, p)
        rows = []
        for k in page:
            row = _key_value(k)
            row.setdefault("UserName", self.account_id)
            rows.append(row)
        return {"AccessKeyMetadata": rows, **extra}

    async def update_access_key(self, call: Call, p: dict[str, Any]) -> dict[str, Any]:
        async with self._lock:
            key = await self._key_of(call, p)
            await self.store.update_access_key(key.access_key_id, p["Status"])
        return {}

    async def delete_access_key(self, call: Call, p: dict[str, Any]) -> dict[str, Any]:
        async with self._lock:
            key = await self._key_of(call, p)
            await self.store.delete_access_key(key.access_key_id)
        return {}

    # -------------------------------------------------------------------- roles

    async def create_role(self, call: Call, p: dict[str, Any]) -> dict[str, Any]:
        name = p["RoleName"]
        path = p.get("Path") or "/"
        document = p["AssumeRolePolicyDocument"]
        _check_policy(document, "trust")
        role = Role(name=name, role_id=new_unique_id("AROA"), path=path,
                    arn=role_arn(self.account_id, path, name), create_date=call.now,
                    assume_role_policy=document, description=p.get("Description"),
                    max_session_duration=p.get("MaxSessionDuration") or 3600,
                    tags=_tags_in(p.get("Tags")))
        try:
            await self.store.create_role(role)
        except AlreadyExists:
            raise EntityAlreadyExists(f"Role with name {name} already exists.") from None
        return {"Role": _role_value(role)}

    async def get_role(self, call: Call, p: dict[str, Any]) -> dict[str, Any]:
        return {"Role": _role_value(await self._role(p["RoleName"]))}

    async def list_roles(self, call: Call, p: dict[str, Any]) -> dict[str, Any]:
        roles = await self.store.list_roles(p.get("PathPrefix") or "/")
        page, extra = _page(roles, lambda r: r.name, p)
        return {"Roles": [_role_value(r) for r in page], **extra}

    async def delete_role(self, call: Call, p: dict[str, Any]) -> dict[str, Any]:
        async with self._lock:
            role = await self._role(p["RoleName"])
            if await self.store.list_policies("role", role.name):
                raise DeleteConflict("Cannot delete entity, must delete policies first.")
            await self.store.delete_role(role.name)
        return {}

    # -------------------------------------------------------------------- inline policies

    async def _owner(self, kind: str, p: dict[str, Any]) -> str:
        if kind == "user":
            return (await self._user(p["UserName"])).name
        return (await self._role(p["RoleName"])).name

    async def _put_policy(self, kind: str, p: dict[str, Any]) -> dict[str, Any]:
        document = p["PolicyDocument"]
        async with self._lock:
            owner = await self._owner(kind, p)
            _check_policy(document, "identity")
            await self.store.put_policy(kind, owner, p["PolicyName"], document)
        return {}

    async def _get_policy(self, kind: str, p: dict[str, Any]) -> dict[str, Any]:
        owner = await self._owner(kind, p)
        found = await self.store.get_policy(kind, owner, p["PolicyName"])
        if found is None:
            raise NoSuchEntity(f"The {kind} policy with name {p['PolicyName']} cannot be found.")
        key = "UserName" if kind == "user" else "RoleName"
        return {key: owner, "PolicyName": found[0], "PolicyDocument": _encode_policy(found[1])}

    async def _delete_policy(self, kind: str, p: dict[str, Any]) -> dict[str, Any]:
        async with self._lock:
            owner = await self._owner(kind, p)
            if not await self.store.delete_policy(kind, owner, p["PolicyName"]):
                raise NoSuchEntity(
                    f"The {kind} policy with name {p['PolicyName']} cannot be found.")
        return {}

    async def _list_policies(self, kind: str, p: dict[str, Any]) -> dict[str, Any]:
        owner = await self._owner(kind, p)
        names = [n for n, _ in await self.store.list_policies(kind, owner)]
        page, extra = _page(names, lambda n: n, p)
        return {"PolicyNames": page, **extra}

    async def put_user_policy(self, call: Call, p: dict[str, Any]) -> dict[str, Any]:
        return await self._put_policy("user", p)

    async def get_user_policy(self, call: Call, p: dict[str, Any]) -> dict[str, Any]:
        return await self._get_policy("user", p)

    async def delete_user_policy(self, call: Call, p: dict[str, Any]) -> dict[str, Any]:
        return await self._delete_policy("user", p)

    async def list_user_policies(self, call: Call, p: dict[str, Any]) -> dict[str, Any]:
        return await self._list_policies("user", p)

    async def put_role_policy(self, call: Call, p: dict[str, Any]) -> dict[str, Any]:
        return await self._put_policy("role", p)

    async def get_role_policy(self, call: Call, p: dict[str, Any]) -> dict[str, Any]:
        return await self._get_policy("role", p)

    async def delete_role_policy(self, call: Call, p: dict[str, Any]) -> dict[str, Any]:
        return await self._delete_policy("role", p)

    async def list_role_policies(self, call: Call, p: dict[str, Any]) -> dict[str, Any]:
        return await self._list_policies("role", p)


def _session_token() -> str:
    return base64.b64encode(b"SRv1" + secrets.token_bytes(150)).decode()


class StsService:
    """STS: who am I, and temporary credentials for roles."""

    def __init__(self, *, account_id: str, store: IamStore, box: SecretBox) -> None:
        self.account_id = account_id
        self.store = store
        self.box = box

    async def role_resource(self, call: Call, params: dict[str, Any]) -> str:
        return str(params.get("RoleArn", ""))

    async def get_caller_identity(self, call: Call, p: dict[str, Any]) -> dict[str, Any]:
        ident = call.identity
        return {"UserId": ident.principal_id, "Account": ident.account_id, "Arn": ident.arn}

    def _denied(self, call: Call, role_arn_text: str) -> Exception:
        return AccessDenied(f"User: {call.identity.arn} is not authorized to perform: "
                            f"sts:AssumeRole on resource: {role_arn_text}")

    async def assume_role(self, call: Call, p: dict[str, Any]) -> dict[str, Any]:
        arn_text: str = p["RoleArn"]
        session_name: str = p["RoleSessionName"]
        if p.get("Policy") or p.get("PolicyArns") or p.get("Tags") or p.get("TransitiveTagKeys"):
            raise ValidationError("Session policies and session tags are not supported by "
                                  "this endpoint.")
        parts = arn_text.split(":", 5)
        if len(parts) != 6 or parts[0] != "arn" or parts[2] != "iam" or \
                not parts[5].startswith("role/"):
            raise ValidationError(f"{arn_text} is invalid")
        if parts[4] != self.account_id:
            raise self._denied(call, arn_text)
        role = await self.store.get_role(parts[5].rsplit("/", 1)[-1])
        if role is None or role.arn != arn_text:
            raise self._denied(call, arn_text)

        duration = p.get("DurationSeconds") or 3600
        chained = call.identity.kind == "AssumedRole"
        if chained and duration > ROLE_CHAINING_MAX_SECONDS:
            raise ValidationError("The requested DurationSeconds exceeds the 1 hour session "
                                  "limit for roles assumed by role chaining.")
        if duration > role.max_session_duration:
            raise ValidationError("The requested DurationSeconds exceeds the "
                                  "MaxSessionDuration set for this role.")

        try:
            trust = parse_policy(role.assume_role_policy, policy_type="trust")
        except MalformedPolicyError:
            raise self._denied(call, arn_text) from None
        context = dict(call.context)
        context["sts:RoleSessionName"] = session_name
        if p.get("ExternalId") is not None:
            context["sts:ExternalId"] = p["ExternalId"]
        if p.get("SourceIdentity") is not None:
            context["sts:SourceIdentity"] = p["SourceIdentity"]
        decision = authz.decide(call.identity, "sts:AssumeRole", role.arn, context,
                                resource_policy=trust, mode="trust")
        if decision is not Decision.ALLOW:
            raise self._denied(call, arn_text)

        now = call.now.replace(microsecond=0)
        expires = now + timedelta(seconds=duration)
        akid = new_access_key_id("ASIA")
        secret = new_secret_access_key()
        token = _session_token()
        session = Session(access_key_id=akid, role_name=role.name, role_id=role.role_id,
                          role_arn=role.arn, session_name=session_name, created=now,
                          expires=expires, source_identity_arn=call.identity.arn)
        await self.store.create_session(
            session, self.box.seal(secret, kind="session", key_id=akid),
            self.box.seal(token, kind="session-token", key_id=akid))
        return {
            "Credentials": {"AccessKeyId": akid, "SecretAccessKey": secret,
                            "SessionToken": token, "Expiration": expires},
            "AssumedRoleUser": {
                "AssumedRoleId": f"{role.role_id}:{session_name}",
                "Arn": assumed_role_arn(self.account_id, role.name, session_name)},
        }

    async def purge_expired(self) -> int:
        return await self.store.purge_sessions(time.time() - 60)


def _op(handler: Handler, action: str | None, resource: ResourceOf | None,
        read_only: bool = False) -> Operation:
    return Operation(handler, action, resource, read_only)


S = IamService
IAM_OPERATIONS: dict[str, Operation] = {
    "CreateUser": _op(S.create_user, "iam:CreateUser", S.user_resource),
    "GetUser": _op(S.get_user, "iam:GetUser", S.user_resource, True),
    "ListUsers": _op(S.list_users, "iam:ListUsers", S.users_resource, True),
    "DeleteUser": _op(S.delete_user, "iam:DeleteUser", S.user_resource),
    "CreateAccessKey": _op(S.create_access_key, "iam:CreateAccessKey", S.user_resource),
    "ListAccessKeys": _op(S.list_access_keys, "iam:ListAccessKeys", S.user_resource, True),
    "UpdateAccessKey": _op(S.update_access_key, "iam:UpdateAccessKey", S.user_resource),
    "DeleteAccessKey": _op(S.delete_access_key, "iam:DeleteAccessKey", S.user_resource),
    "CreateRole": _op(S.create_role, "iam:CreateRole", S.role_resource),
    "GetRole": _op(S.get_role, "iam:GetRole", S.role_resource, True),
    "ListRoles": _op(S.list_roles, "iam:ListRoles", S.roles_resource, True),
    "DeleteRole": _op(S.delete_role, "iam:DeleteRole", S.role_resource),
    "PutUserPolicy": _op(S.put_user_policy, "iam:PutUserPolicy", S.user_resource),
    "GetUserPolicy": _op(S.get_user_policy, "iam:GetUserPolicy", S.user_resource, True),
    "DeleteUserPolicy": _op(S.delete_user_policy, "iam:DeleteUserPolicy", S.user_resource),
    "ListUserPolicies": _op(S.list_user_policies, "iam:ListUserPolicies", S.user_resource, True),
    "PutRolePolicy": _op(S.put_role_policy, "iam:PutRolePolicy", S.role_resource),
    "GetRolePolicy": _op(S.get_role_policy, "iam:GetRolePolicy", S.role_resource, True),
    "DeleteRolePolicy": _op(S.delete_role_policy, "iam:DeleteRolePolicy", S.role_resource),
    "ListRolePolicies": _op(S.list_role_policies, "iam:ListRolePolicies", S.role_resource, True),
}
del S

STS_OPERATIONS: dict[str, Operation] = {
    # AWS: no permission is required to call GetCallerIdentity.
    "GetCallerIdentity": _op(StsService.get_caller_identity, None, None, True),
    # Authorised inside (trust policy + identity policy, mode "trust").
    "AssumeRole": _op(StsService.assume_role, None, StsService.role_resource),
}

__all__ = ["IamService", "StsService", "Call", "Operation", "IAM_OPERATIONS", "STS_OPERATIONS",
           "ValidationException"]
