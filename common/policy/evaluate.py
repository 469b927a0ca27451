"""Authorization decisions: identity policies + resource policies.

Mirrors AWS's evaluation logic:

* https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html
* https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic-cross-account.html
* https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_principal.html
* https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_notprincipal.html
* KMS: https://docs.aws.amazon.com/kms/latest/developerguide/key-policies.html and
  https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-default.html

Rules, in order:

1. **Explicit deny wins.**  A matching ``Deny`` in any identity policy, the
   permissions boundary, or the resource policy (when its Principal matches
   the caller, including by account) yields ``EXPLICIT_DENY``.  This applies
   to the account root as well.
2. **Identity allow** -- some identity-policy ``Allow`` matches.  The root
   user of an account implicitly has every identity permission.  A
   ``permissions_boundary`` (not applicable to root) must also allow, else
   identity allows are void.
3. **Resource allow** -- a resource-policy ``Allow`` whose Principal matches:

   * *exact*: names the caller's own ARN (user, assumed-role session) or its
     service principal;
   * *broad*: ``"*"`` or the role ARN of an assumed-role session;
   * *account*: names only the caller's account (``"111122223333"`` or
     ``arn:aws:iam::111122223333:root``) -- a **delegation**: it grants
     nothing unless the account's identity policies also allow (the root
     user counts as allowed by identity).

   A permissions boundary limits *broad* grants but not *exact* ones (AWS:
   a resource policy naming the user/session ARN directly is not limited by
   the boundary; naming the role ARN is).

4. Decision by ``mode``:

   * ``"standard"`` (S3 bucket policies, IAM actions, anything with an
     optional resource policy): same account -> identity allow OR direct
     resource allow; cross-account -> identity allow AND (direct or account)
     resource allow; principals without an account (anonymous, services) ->
     direct resource allow only.
   * ``"kms"``: the key policy is the primary control.  Same account ->
     direct key-policy allow OR (key policy allows the account AND identity
     allow).  Without the "enable IAM policies" root statement neither IAM
     policies nor the root user get anything (AWS's lock-out behaviour).
     Cross-account additionally requires identity allow in every case.
   * ``"trust"`` (role trust policies, action ``sts:AssumeRole``...): same
     rules as ``"kms"`` -- the trust policy MUST allow, either directly or
     via the account principal together with an identity allow.

``resource_account``: the account that owns the resource.  When omitted it is
derived from the resource ARN's account field when that is a 12-digit id;
otherwise (e.g. S3 ARNs, which carry no account) the request is treated as
same-account -- **S3 callers must pass the bucket owner explicitly.**

Unparseable policies: parse with :func:`common.policy.parse_policy`; if a
stored policy raises :class:`MalformedPolicyError`, callers must deny.
Parse identity policies / boundaries with ``policy_type="identity"`` (their
Principal element, if any, is ignored here), key/bucket policies with
``"resource"`` and trust policies with ``"trust"``.

KMS grants are not policies: the KMS service should treat ``IMPLICIT_DENY``
plus a matching, valid grant as allowed, while ``EXPLICIT_DENY`` is final.

Request context: the engine is pure, so time- and transport-dependent keys
(``aws:CurrentTime``, ``aws:EpochTime``, ``aws:SourceIp``,
``aws:SecureTransport``, ``aws:SourceArn``, ``aws:PrincipalTag/*``...) must
be supplied by the caller in ``AuthzRequest.context``; principal keys are
derived by :func:`build_context`.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from .conditions import RequestContext, evaluate_conditions
from .document import Policy, PrincipalSpec, Statement
from .matching import action_matches, resource_matches
from .variables import expand_template

__all__ = [
    "Principal",
    "AuthzRequest",
    "Decision",
    "Mode",
    "MatchedStatement",
    "EvaluationResult",
    "evaluate",
    "explain",
    "build_context",
]

Mode = Literal["standard", "kms", "trust"]
PrincipalKind = Literal["Root", "IAMUser", "AssumedRole", "AWSService", "Anonymous"]
Source = Literal["identity", "boundary", "resource"]

_ROOT_ARN_RE = re.compile(r"^arn:[^:]+:iam::(\d{12}):root$")
_ACCOUNT_RE = re.compile(r"^\d{12}$")
_SESSION_RE = re.compile(r"^arn:([^:]+):sts::(\d{12}):assumed-role/([^/]+)/.+$")


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated caller."""

    arn: str | None  # None for anonymous
    account: str | None
    kind: str  # "Root", "IAMUser", "AssumedRole", "AWSService", "Anonymous"
    service: str | None = None  # e.g. "cloudtrail.amazonaws.com" for AWSService
    role_arn: str | None = None  # AssumedRole: arn:aws:iam::acct:role/path/name
    user_name: str | None = None
    user_id: str | None = None

    @classmethod
    def anonymous(cls) -> Principal:
        return cls(arn=None, account=None, kind="Anonymous")

    @classmethod
    def aws_service(cls, service: str) -> Principal:
        return cls(arn=None, account=None, kind="AWSService", service=service)

    @classmethod
    def root(cls, account: str, partition: str = "aws") -> Principal:
        return cls(arn=f"arn:{partition}:iam::{account}:root", account=account, kind="Root")

    def effective_role_arn(self) -> str | None:
        """The role ARN of an assumed-role session (derived if not given)."""
        if self.kind != "AssumedRole":
            return None
        if self.role_arn:
            return self.role_arn
        m = _SESSION_RE.match(self.arn or "")
        if m is None:
            return None
        return f"arn:{m.group(1)}:iam::{m.group(2)}:role/{m.group(3)}"


@dataclass(frozen=True, slots=True)
class AuthzRequest:
    principal: Principal
    action: str  # "kms:Encrypt"
    resource: str  # ARN
    # condition keys -> str | list[str] | bool | int | datetime; keys case-insensitive
    context: Mapping[str, object] = field(default_factory=dict)


class Decision(enum.Enum):
    ALLOW = "Allow"
    EXPLICIT_DENY = "ExplicitDeny"
    IMPLICIT_DENY = "ImplicitDeny"

    @property
    def allowed(self) -> bool:
        return self is Decision.ALLOW


@dataclass(frozen=True, slots=True)
class MatchedStatement:
    source: Source
    policy_index: int
    statement_index: int
    sid: str | None
    effect: str


@dataclass(frozen=True, slots=True)
class EvaluationResult:
    decision: Decision
    reason: str
    matched: tuple[MatchedStatement, ...] = ()


class _PMatch(enum.IntEnum):
    NONE = 0
    ACCOUNT = 1
    BROAD = 2
    EXACT = 3


# --------------------------------------------------------------------------
# Context
# --------------------------------------------------------------------------


def build_context(request: AuthzRequest) -> RequestContext:
    """Request context = caller-supplied keys + keys derived from the principal.

    Principal-derived keys (``aws:username``, ``aws:userid``,
    ``aws:PrincipalAccount``, ``aws:PrincipalArn``, ``aws:PrincipalType``,
    ``aws:PrincipalServiceName``, ``aws:PrincipalIsAWSService``) are
    authoritative and override caller-supplied values of the same name.
    """
    ctx = RequestContext(request.context)
    p = request.principal
    derived: dict[str, object] = {}
    if p.kind == "IAMUser" and p.user_name:
        derived["aws:username"] = p.user_name
    if p.user_id:
        derived["aws:userid"] = p.user_id
    elif p.kind == "Root" and p.account:
        derived["aws:userid"] = p.account
    if p.account:
        derived["aws:PrincipalAccount"] = p.account
    principal_arn = p.effective_role_arn() if p.kind == "AssumedRole" else p.arn
    if principal_arn:
        derived["aws:PrincipalArn"] = principal_arn
    ptype = {"Root": "Account", "IAMUser": "User", "AssumedRole": "AssumedRole",
             "Anonymous": "Anonymous"}.get(p.kind)
    if ptype:
        derived["aws:PrincipalType"] = ptype
    if p.kind == "AWSService" and p.service:
        derived["aws:PrincipalServiceName"] = p.service
    derived["aws:PrincipalIsAWSService"] = p.kind == "AWSService"
    for key, value in derived.items():
        ctx.set(key, value)
    return ctx


# --------------------------------------------------------------------------
# Principal matching
# --------------------------------------------------------------------------


def _account_of_entry(entry: str) -> str | None:
    if _ACCOUNT_RE.match(entry):
        return entry
    m = _ROOT_ARN_RE.match(entry)
    return m.group(1) if m else None


def _principal_match(spec: PrincipalSpec, p: Principal) -> _PMatch:
    if spec.wildcard:
        return _PMatch.BROAD
    best = _PMatch.NONE
    role_arn = p.effective_role_arn()
    for entry in spec.aws:
        acct = _account_of_entry(entry)
        if acct is not None:
            if p.account is not None and acct == p.account:
                best = max(best, _PMatch.ACCOUNT)
        elif p.arn is not None and entry == p.arn:
            return _PMatch.EXACT
        elif role_arn is not None and entry == role_arn:
            best = max(best, _PMatch.BROAD)
    if p.kind == "AWSService" and p.service:
        svc = p.service.lower()
        if any(s.lower() == svc for s in spec.service):
            return _PMatch.EXACT
    if p.arn is not None and p.arn in spec.federated:
        return _PMatch.EXACT
    if p.user_id is not None and p.user_id in spec.canonical_user:
        return _PMatch.EXACT
    return best


def _not_principal_applies(spec: PrincipalSpec, p: Principal, effect: str) -> bool:
    """Does a statement with ``NotPrincipal: spec`` apply to ``p``?

    Deny: the caller escapes only if *all* of its identities are listed
    (session ARN + role ARN + account for sessions; user ARN + account for
    users), as AWS documents.  Allow: the caller is excluded if *any* of its
    identities is listed.  Both choices err on the side of denying.
    """
    if spec.wildcard:
        return False
    listed_arns = set(spec.aws)
    listed_accounts = {a for a in (_account_of_entry(e) for e in spec.aws) if a}
    listed_services = {s.lower() for s in spec.service}
    identities: list[bool] = []
    if p.kind == "AWSService":
        identities.append(bool(p.service) and p.service.lower() in listed_services)  # type: ignore[union-attr]
    elif p.kind == "Anonymous":
        identities.append(False)
    elif p.kind == "Root":
        identities.append(p.account in listed_accounts)
    else:
        identities.append(p.arn in listed_arns)
        role_arn = p.effective_role_arn()
        if role_arn is not None:
            identities.append(role_arn in listed_arns)
        identities.append(p.account in listed_accounts)
    excluded = all(identities) if effect == "Deny" else any(identities)
    return not excluded


# --------------------------------------------------------------------------
# Statement matching
# --------------------------------------------------------------------------


def _action_ok(stmt: Statement, action: str) -> bool:
    if stmt.action is not None:
        return any(action_matches(a, action) for a in stmt.action)
    if stmt.not_action is not None:
        return not any(action_matches(a, action) for a in stmt.not_action)
    return False


def _resource_ok(stmt: Statement, resource: str, ctx: RequestContext, vars_on: bool) -> bool:
    def hit(patterns: tuple[str, ...]) -> bool:
        for raw in patterns:
            pat = expand_template(raw, ctx.get, enabled=vars_on)
            if pat is not None and resource_matches(pat, resource):
                return True
        return False

    if stmt.resource is not None:
        return hit(stmt.resource)
    if stmt.not_resource is not None:
        return not hit(stmt.not_resource)
    return True  # trust policies: the resource is implicit


def _statement_matches(
    stmt: Statement, req: AuthzRequest, ctx: RequestContext, vars_on: bool
) -> bool:
    return (
        _action_ok(stmt, req.action)
        and _resource_ok(stmt, req.resource, ctx, vars_on)
        and evaluate_conditions(stmt.conditions, ctx, variables_enabled=vars_on)
    )


def _statement_principal(stmt: Statement, p: Principal) -> _PMatch:
    if stmt.principal is not None:
        return _principal_match(stmt.principal, p)
    if stmt.not_principal is not None:
        return _PMatch.BROAD if _not_principal_applies(stmt.not_principal, p, stmt.effect) else _PMatch.NONE
    return _PMatch.NONE  # a resource-policy statement without a principal grants nothing


def _iter(policies: Sequence[Policy]) -> Iterator[tuple[int, int, Policy, Statement]]:
    for pi, pol in enumerate(policies):
        for si, st in enumerate(pol.statements):
            yield pi, si, pol, st


def _ref(source: Source, pi: int, si: int, st: Statement) -> MatchedStatement:
    return MatchedStatement(source, pi, si, st.sid, st.effect)


def _derive_account(resource: str) -> str | None:
    parts = resource.split(":", 5)
    if len(parts) == 6 and parts[0] == "arn" and _ACCOUNT_RE.match(parts[4]):
        return parts[4]
    return None


# --------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------


def explain(
    request: AuthzRequest,
    *,
    identity_policies: Sequence[Policy] = (),
    resource_policy: Policy | None = None,
    resource_account: str | None = None,
    mode: Mode = "standard",
    permissions_boundary: Policy | None = None,
) -> EvaluationResult:
    """Like :func:`evaluate` but also reports why and which statements matched."""
    if mode not in ("standard", "kms", "trust"):
        raise ValueError(f"unknown evaluation mode {mode!r}")
    p = request.principal
    ctx = build_context(request)
    is_root = p.kind == "Root"

    denies: list[MatchedStatement] = []
    identity_allows: list[MatchedStatement] = []
    boundary_allows: list[MatchedStatement] = []
    resource_allows: dict[_PMatch, list[MatchedStatement]] = {
        _PMatch.ACCOUNT: [],
        _PMatch.BROAD: [],
        _PMatch.EXACT: [],
    }

    for pi, si, pol, st in _iter(identity_policies):
        if _statement_matches(st, request, ctx, pol.variables_enabled):
            (denies if st.effect == "Deny" else identity_allows).append(_ref("identity", pi, si, st))
    boundary = permissions_boundary if not is_root else None
    if boundary is not None:
        for _, si, pol, st in _iter((boundary,)):
            if _statement_matches(st, request, ctx, pol.variables_enabled):
                (denies if st.effect == "Deny" else boundary_allows).append(_ref("boundary", 0, si, st))
    if resource_policy is not None:
        for _, si, pol, st in _iter((resource_policy,)):
            level = _statement_principal(st, p)
            if level is _PMatch.NONE:
                continue
            if not _statement_matches(st, request, ctx, pol.variables_enabled):
                continue
            ref = _ref("resource", 0, si, st)
            if st.effect == "Deny":
                denies.append(ref)
            else:
                resource_allows[level].append(ref)

    if denies:
        return EvaluationResult(Decision.EXPLICIT_DENY, "explicit deny", tuple(denies))

    boundary_ok = boundary is None or bool(boundary_allows)
    identity_ok = (is_root or bool(identity_allows)) and boundary_ok
    exact = resource_allows[_PMatch.EXACT]
    broad = resource_allows[_PMatch.BROAD] if boundary_ok else []
    account = resource_allows[_PMatch.ACCOUNT]
    direct = exact + broad

    owner = resource_account or _derive_account(request.resource) or p.account
    same_account = p.account is not None and p.account == owner
    id_refs = tuple(identity_allows) + tuple(boundary_allows)

    def allow(reason: str, refs: Sequence[MatchedStatement]) -> EvaluationResult:
        return EvaluationResult(Decision.ALLOW, reason, tuple(refs))

    if p.account is None:
        # Anonymous callers and service principals have no identity policies.
        if direct:
            return allow("resource policy allows principal", direct)
        return EvaluationResult(Decision.IMPLICIT_DENY, "no resource policy grant")

    if mode == "standard":
        if same_account:
            if identity_ok:
                return allow("identity allow", id_refs)
            if direct:
                return allow("resource policy allows principal", direct)
            return EvaluationResult(Decision.IMPLICIT_DENY, "no allow")
        if resource_policy is None:
            return EvaluationResult(
                Decision.IMPLICIT_DENY, "cross-account request without resource policy"
            )

    if resource_policy is None:
        return EvaluationResult(Decision.IMPLICIT_DENY, f"{mode} mode requires a resource policy")

    if same_account:
        # kms / trust: the resource policy must participate.
        if direct:
            return allow("resource policy allows principal", direct)
        if account and identity_ok:
            return allow("resource policy delegates to account; identity allow", account + list(id_refs))
        return EvaluationResult(Decision.IMPLICIT_DENY, "resource policy does not allow")

    # Cross-account: both sides must allow.
    if not identity_ok:
        return EvaluationResult(Decision.IMPLICIT_DENY, "cross-account: no identity allow")
    if direct or account:
        return allow("cross-account: resource and identity allow", direct + account + list(id_refs))
    return EvaluationResult(Decision.IMPLICIT_DENY, "cross-account: resource policy does not allow")


def evaluate(
    request: AuthzRequest,
    *,
    identity_policies: Sequence[Policy] = (),
    resource_policy: Policy | None = None,
    resource_account: str | None = None,
    mode: Mode = "standard",
    permissions_boundary: Policy | None = None,
) -> Decision:
    """Return the AWS authorization decision for ``request``.

    See the module docstring for the exact rules of each ``mode``.
    """
    return explain(
        request,
        identity_policies=identity_policies,
        resource_policy=resource_policy,
        resource_account=resource_account,
        mode=mode,
        permissions_boundary=permissions_boundary,
    ).decision
