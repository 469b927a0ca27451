"""Authorisation of IAM/STS calls with the caller's identity policies (common.policy).

The account root may do everything (unless an explicit deny applies, which root cannot have
in identity policies). IAM users and assumed-role sessions need an identity policy that
allows the action on the resource. Stored documents are parsed once per distinct text; a
document that no longer parses denies the request (it might have held a Deny).

AccessDenied texts follow AWS:
``User: <arn> is not authorized to perform: <action> on resource: <arn> because no
identity-based policy allows the <action> action`` (or ``... with an explicit deny in an
identity-based policy``).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping

from common.policy import AuthzRequest, Decision, MalformedPolicyError, Policy, Principal, evaluate
from gateway.iam.model import Identity


@functools.lru_cache(maxsize=4096)
def parsed_identity_policy(text: str) -> Policy | None:
    """The parsed policy, or None when the stored text does not parse (deny)."""
    from common.policy import parse_policy

    try:
        return parse_policy(text, policy_type="identity")
    except MalformedPolicyError:
        return None


def principal_of(identity: Identity) -> Principal:
    role_arn = identity.session.role_arn if identity.session is not None else None
    return Principal(arn=identity.arn, account=identity.account_id, kind=identity.kind,
                     role_arn=role_arn, user_name=identity.user_name,
                     user_id=identity.principal_id)


def identity_policies(identity: Identity) -> tuple[Policy, ...] | None:
    """The caller's parsed identity policies; None when one of them is unparseable."""
    out = []
    for text in identity.policies:
        policy = parsed_identity_policy(text)
        if policy is None:
            return None
        out.append(policy)
    return tuple(out)


def decide(identity: Identity, action: str, resource: str, context: Mapping[str, object],
           *, resource_policy: Policy | None = None, mode: str = "standard") -> Decision:
    policies = identity_policies(identity)
    if policies is None:
        return Decision.EXPLICIT_DENY
    request = AuthzRequest(principal=principal_of(identity), action=action, resource=resource,
                           context=context)
    return evaluate(request, identity_policies=policies, resource_policy=resource_policy,
                    mode=mode)  # type: ignore[arg-type]


def denial_message(identity: Identity, action: str, resource: str, decision: Decision) -> str:
    why = ("with an explicit deny in an identity-based policy"
           if decision is Decision.EXPLICIT_DENY
           else f"because no identity-based policy allows the {action} action")
    return f"User: {identity.arn} is not authorized to perform: {action} on resource: {resource} {why}"
