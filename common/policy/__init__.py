"""Strongroom's shared AWS access-policy engine (pure, synchronous, stdlib only).

Used by the gateway (IAM identity policies, STS trust policies), KMS (key
policies) and S3 (bucket policies).  See the submodules for the exact
semantics and the AWS documentation pages each one mirrors:

* :mod:`.document`   -- parsing/validation (``parse_policy``)
* :mod:`.conditions` -- Condition operators
* :mod:`.variables`  -- ``${...}`` policy variables
* :mod:`.matching`   -- Action / Resource / ARN wildcard matching
* :mod:`.evaluate`   -- decisions (``evaluate``, ``explain``)

A policy that fails to parse raises :class:`MalformedPolicyError` and must
lead the caller to deny.
"""

from .conditions import ConditionClause, RequestContext, SetQualifier
from .document import Policy, PolicyType, PrincipalSpec, Statement, parse_policy
from .errors import MalformedPolicyError
from .evaluate import (
    AuthzRequest,
    Decision,
    EvaluationResult,
    MatchedStatement,
    Mode,
    Principal,
    build_context,
    evaluate,
    explain,
)

__all__ = [
    "AuthzRequest",
    "ConditionClause",
    "Decision",
    "EvaluationResult",
    "MalformedPolicyError",
    "MatchedStatement",
    "Mode",
    "Policy",
    "PolicyType",
    "Principal",
    "PrincipalSpec",
    "RequestContext",
    "SetQualifier",
    "Statement",
    "build_context",
    "evaluate",
    "explain",
    "parse_policy",
]
