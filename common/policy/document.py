"""Policy document model and parser.

Mirrors the IAM JSON policy grammar:
https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_grammar.html
and the element reference pages (Version, Statement, Sid, Effect, Principal,
NotPrincipal, Action, NotAction, Resource, NotResource, Condition):
https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements.html

Accepted forms:

* ``Version`` ``"2012-10-17"`` or ``"2008-10-17"``; omitted means
  ``2008-10-17`` (in which policy variables are *not* substituted).
* ``Statement`` as a single object or a list of objects.
* ``Action``/``Resource``/condition values as a string or list of strings.
* ``Principal``/``NotPrincipal`` as ``"*"`` or an object with ``AWS``,
  ``Service``, ``Federated`` and/or ``CanonicalUser`` (string or list).
  ``{"AWS": "*"}`` is equivalent to ``"*"``.

Anything else raises :class:`MalformedPolicyError`; element names are
case-sensitive as in AWS, duplicate JSON keys are rejected (they make a
document ambiguous), and so are ``NaN``/``Infinity`` literals.

**A document that cannot be parsed grants nothing.**  Callers that store
policies must validate on write (returning the service's malformed-policy
error) and, if a stored document ever fails to parse, deny the request.

``policy_type`` selects element-presence rules:

* ``"identity"`` -- IAM identity policy / permissions boundary: Principal and
  NotPrincipal are forbidden; Resource or NotResource is required.
* ``"resource"`` -- S3 bucket policy, KMS key policy: Principal or
  NotPrincipal is required, and Resource or NotResource.
* ``"trust"`` -- role trust policy: Principal or NotPrincipal is required;
  Resource/NotResource are forbidden (the resource is the role itself).
* ``"generic"`` -- only the universal rules (Effect, Action).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from .conditions import ConditionClause, parse_condition_block
from .errors import MalformedPolicyError

__all__ = [
    "Policy",
    "Statement",
    "PrincipalSpec",
    "PolicyType",
    "Effect",
    "parse_policy",
    "VERSION_2012",
    "VERSION_2008",
]

VERSION_2012 = "2012-10-17"
VERSION_2008 = "2008-10-17"
_VERSIONS = (VERSION_2012, VERSION_2008)

PolicyType = Literal["identity", "resource", "trust", "generic"]
Effect = Literal["Allow", "Deny"]

_POLICY_KEYS = frozenset({"Version", "Id", "Statement"})
_STATEMENT_KEYS = frozenset(
    {
        "Sid",
        "Effect",
        "Principal",
        "NotPrincipal",
        "Action",
        "NotAction",
        "Resource",
        "NotResource",
        "Condition",
    }
)
_PRINCIPAL_KEYS = ("AWS", "Service", "Federated", "CanonicalUser")
_ACCOUNT_ID_RE = re.compile(r"^\d{12}$")
_UNIQUE_ID_RE = re.compile(r"^[A-Z0-9]{16,128}$")


@dataclass(frozen=True, slots=True)
class PrincipalSpec:
    """Parsed ``Principal``/``NotPrincipal`` element."""

    wildcard: bool = False  # "*" or {"AWS": "*"}: everyone, incl. anonymous
    aws: tuple[str, ...] = ()
    service: tuple[str, ...] = ()
    federated: tuple[str, ...] = ()
    canonical_user: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Statement:
    """One policy statement.  ``None`` means the element is absent."""

    effect: Effect
    sid: str | None = None
    principal: PrincipalSpec | None = None
    not_principal: PrincipalSpec | None = None
    action: tuple[str, ...] | None = None
    not_action: tuple[str, ...] | None = None
    resource: tuple[str, ...] | None = None
    not_resource: tuple[str, ...] | None = None
    conditions: tuple[ConditionClause, ...] = ()


@dataclass(frozen=True, slots=True)
class Policy:
    """A parsed policy document."""

    version: str
    statements: tuple[Statement, ...]
    id: str | None = None

    @property
    def variables_enabled(self) -> bool:
        """Policy variables are only honoured with Version 2012-10-17."""
        return self.version == VERSION_2012


# --------------------------------------------------------------------------


def _reject_duplicates(pairs: list[tuple[str, object]]) -> dict[str, object]:
    out: dict[str, object] = {}
    for key, value in pairs:
        if key in out:
            raise MalformedPolicyError(f"Syntax errors in policy: duplicate key {key!r}.")
        out[key] = value
    return out


def _reject_constant(name: str) -> object:
    raise MalformedPolicyError(f"Syntax errors in policy: invalid literal {name}.")


def _load_json(text: str | bytes) -> object:
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise MalformedPolicyError("Syntax errors in policy.") from exc
    try:
        return json.loads(
            text, object_pairs_hook=_reject_duplicates, parse_constant=_reject_constant
        )
    except MalformedPolicyError:
        raise
    except (ValueError, RecursionError) as exc:
        raise MalformedPolicyError("Syntax errors in policy.") from exc


def _string_list(raw: object, element: str) -> tuple[str, ...]:
    items = raw if isinstance(raw, list) else [raw]
    out: list[str] = []
    for item in items:
        if not isinstance(item, str) or not item:
            raise MalformedPolicyError(
                f"Syntax errors in policy: {element} values must be non-empty strings."
            )
        out.append(item)
    return tuple(out)


def _parse_actions(raw: object, element: str) -> tuple[str, ...]:
    actions = _string_list(raw, element)
    if not actions:
        raise MalformedPolicyError("Policy statement must contain actions.")
    for action in actions:
        if action == "*":
            continue
        vendor, sep, name = action.partition(":")
        if not sep or not vendor or not name:
            raise MalformedPolicyError(
                "Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc."
            )
        if "*" in vendor or "?" in vendor:
            raise MalformedPolicyError("Action vendors must not contain wildcards.")
    return actions


def _parse_resources(raw: object, element: str) -> tuple[str, ...]:
    resources = _string_list(raw, element)
    if not resources:
        raise MalformedPolicyError("Policy statement must contain resources.")
    for res in resources:
        if res != "*" and not res.startswith("arn:"):
            raise MalformedPolicyError(f'Resource {res} must be in ARN format or "*".')
    return resources


def _valid_aws_principal(value: str) -> bool:
    if value == "*":
        return True
    if "*" in value or "?" in value:
        return False  # AWS forbids partial wildcards in principals
    if _ACCOUNT_ID_RE.match(value) or _UNIQUE_ID_RE.match(value):
        return True
    return value.startswith("arn:") and len(value.split(":", 5)) == 6


def _parse_principal(raw: object, element: str) -> PrincipalSpec:
    if raw == "*":
        return PrincipalSpec(wildcard=True)
    if not isinstance(raw, Mapping) or not raw:
        raise MalformedPolicyError(f"Invalid principal in policy: {element}.")
    parsed: dict[str, tuple[str, ...]] = {}
    for key, value in raw.items():
        if key not in _PRINCIPAL_KEYS:
            raise MalformedPolicyError(f"Invalid principal in policy: unknown type {key!r}.")
        items = _string_list(value, f"{element}/{key}")
        if not items:
            raise MalformedPolicyError(f"Invalid principal in policy: empty {key}.")
        for item in items:
            if key == "AWS":
                ok = _valid_aws_principal(item)
            else:
                ok = "*" not in item and "?" not in item
            if not ok:
                raise MalformedPolicyError(f'Invalid principal in policy: "{key}":"{item}"')
        parsed[key] = items
    aws = parsed.get("AWS", ())
    return PrincipalSpec(
        wildcard="*" in aws,
        aws=tuple(a for a in aws if a != "*"),
        service=parsed.get("Service", ()),
        federated=parsed.get("Federated", ()),
        canonical_user=parsed.get("CanonicalUser", ()),
    )


def _exclusive(stmt: Mapping[str, object], a: str, b: str) -> None:
    if a in stmt and b in stmt:
        raise MalformedPolicyError(f"Syntax errors in policy: statement contains both {a} and {b}.")


def _parse_statement(raw: object, policy_type: PolicyType) -> Statement:
    if not isinstance(raw, Mapping):
        raise MalformedPolicyError("Syntax errors in policy: Statement must be an object.")
    for key in raw:
        if key not in _STATEMENT_KEYS:
            raise MalformedPolicyError(f"Syntax errors in policy: unknown field {key}.")
    _exclusive(raw, "Principal", "NotPrincipal")
    _exclusive(raw, "Action", "NotAction")
    _exclusive(raw, "Resource", "NotResource")

    sid = raw.get("Sid")
    if sid is not None and not isinstance(sid, str):
        raise MalformedPolicyError("Syntax errors in policy: Sid must be a string.")

    if "Effect" not in raw:
        raise MalformedPolicyError("Missing required field Effect.")
    effect = raw["Effect"]
    if effect not in ("Allow", "Deny"):
        raise MalformedPolicyError(f"Invalid effect: {effect}.")

    if "Action" not in raw and "NotAction" not in raw:
        raise MalformedPolicyError("Missing required field Action.")
    action = _parse_actions(raw["Action"], "Action") if "Action" in raw else None
    not_action = _parse_actions(raw["NotAction"], "NotAction") if "NotAction" in raw else None

    has_principal = "Principal" in raw or "NotPrincipal" in raw
    has_resource = "Resource" in raw or "NotResource" in raw
    if policy_type == "identity" and has_principal:
        raise MalformedPolicyError("Policy document should not specify a principal.")
    if policy_type in ("resource", "trust") and not has_principal:
        raise MalformedPolicyError("Missing required field Principal.")
    if policy_type in ("identity", "resource") and not has_resource:
        raise MalformedPolicyError("Policy statement must contain resources.")
    if policy_type == "trust" and has_resource:
        raise MalformedPolicyError("Has prohibited field Resource.")

    principal = _parse_principal(raw["Principal"], "Principal") if "Principal" in raw else None
    not_principal = (
        _parse_principal(raw["NotPrincipal"], "NotPrincipal") if "NotPrincipal" in raw else None
    )
    resource = _parse_resources(raw["Resource"], "Resource") if "Resource" in raw else None
    not_resource = (
        _parse_resources(raw["NotResource"], "NotResource") if "NotResource" in raw else None
    )
    conditions = parse_condition_block(raw["Condition"]) if "Condition" in raw else ()

    return Statement(
        effect="Allow" if effect == "Allow" else "Deny",
        sid=sid,
        principal=principal,
        not_principal=not_principal,
        action=action,
        not_action=not_action,
        resource=resource,
        not_resource=not_resource,
        conditions=conditions,
    )


def parse_policy(
    document: str | bytes | Mapping[str, object], *, policy_type: PolicyType = "generic"
) -> Policy:
    """Parse and validate a policy document (JSON text or decoded dict).

    Raises :class:`MalformedPolicyError` on any syntax or grammar error.
    """
    raw: object = _load_json(document) if isinstance(document, (str, bytes)) else document
    if not isinstance(raw, Mapping):
        raise MalformedPolicyError("Syntax errors in policy.")
    for key in raw:
        if key not in _POLICY_KEYS:
            raise MalformedPolicyError(f"Syntax errors in policy: unknown field {key}.")
    version = raw.get("Version", VERSION_2008)
    if version not in _VERSIONS:
        raise MalformedPolicyError("The policy failed legacy parsing")
    assert isinstance(version, str)
    policy_id = raw.get("Id")
    if policy_id is not None and not isinstance(policy_id, str):
        raise MalformedPolicyError("Syntax errors in policy: Id must be a string.")
    if "Statement" not in raw:
        raise MalformedPolicyError("Missing required field Statement.")
    body = raw["Statement"]
    items = body if isinstance(body, list) else [body]
    statements = tuple(_parse_statement(s, policy_type) for s in items)
    return Policy(version=version, statements=statements, id=policy_id)
