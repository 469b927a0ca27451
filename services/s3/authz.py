"""Who may do what on a bucket or object (AWS's S3 authorization, for one region).

Order (https://docs.aws.amazon.com/AmazonS3/latest/userguide/how-s3-evaluates-access-control.html):
1. the shared policy engine over the caller's identity policies and the bucket policy, with
   the bucket owner as resource account (explicit deny wins; same account: identity OR
   bucket policy; other accounts / anonymous / services: the bucket policy must allow).
   With RestrictPublicBuckets and a public policy, the policy grants nothing to callers
   outside the owner's account except AWS service principals.
2. ACLs, unless Object Ownership is BucketOwnerEnforced: a grant to the caller's canonical
   id (root of an account), to AuthenticatedUsers (any signed caller) or to AllUsers;
   public grants are ignored under IgnorePublicAcls.
Anything else is AccessDenied. Policies that cannot be parsed grant nothing (and a stored
bucket policy that cannot be parsed denies everything but the owner's root).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from datetime import datetime, timezone

from common.policy import AuthzRequest, Decision, MalformedPolicyError, Policy, evaluate, parse_policy
from common.policy_principal import principal_from_caller
from services.s3.domain import access
from services.s3.domain.errors import access_denied
from services.s3.domain.model import BucketRecord
from strongroom.common.v1 import caller_pb2


@functools.lru_cache(maxsize=512)
def _parse(text: str, policy_type: str) -> Policy | None:
    try:
        return parse_policy(text, policy_type=policy_type)  # type: ignore[arg-type]
    except MalformedPolicyError:
        return None


def base_context(caller: caller_pb2.Caller, source_arn: str = "", source_account: str = "") -> dict[str, object]:
    now = datetime.now(timezone.utc)
    ctx: dict[str, object] = {
        "aws:CurrentTime": now,
        "aws:EpochTime": int(now.timestamp()),
        "aws:SecureTransport": False,
        "aws:ViaAWSService": False,
    }
    if caller.source_ip and caller.principal_type != "AWSService":
        ctx["aws:SourceIp"] = caller.source_ip
    if caller.user_agent:
        ctx["aws:UserAgent"] = caller.user_agent
    for k, v in caller.principal_tags.items():
        ctx[f"aws:PrincipalTag/{k}"] = v
    if caller.principal_type == "AWSService":
        if source_arn:
            ctx["aws:SourceArn"] = source_arn
        if source_account:
            ctx["aws:SourceAccount"] = source_account
    if caller.signature_version:
        ctx["s3:signatureversion"] = "AWS4-HMAC-SHA256" if caller.signature_version == "SigV4" else "AWS"
    if caller.auth_method:
        ctx["s3:authType"] = "REST-QUERY-STRING" if caller.auth_method == "QueryString" else "REST-HEADER"
    return ctx


def is_owner_account(caller: caller_pb2.Caller, bucket: BucketRecord) -> bool:
    return caller.principal_type not in ("Anonymous", "AWSService", "") and caller.account_id == bucket.owner_account


def policy_decision(caller: caller_pb2.Caller, action: str, resource: str, context: Mapping[str, object],
                    bucket: BucketRecord | None, bpa: access.PublicAccessBlock | None = None) -> Decision:
    identity = [p for p in (_parse(doc, "identity") for doc in caller.identity_policy_documents) if p]
    resource_policy = None
    if bucket is not None and bucket.policy:
        resource_policy = _parse(bucket.policy, "resource")
        if resource_policy is None:
            return Decision.EXPLICIT_DENY
    principal = principal_from_caller(caller)
    request = AuthzRequest(principal, action, resource, context)
    owner = bucket.owner_account if bucket is not None else caller.account_id
    decision = evaluate(request, identity_policies=identity, resource_policy=resource_policy,
                        resource_account=owner, mode="standard")
    if (decision is Decision.ALLOW and resource_policy is not None and bucket is not None and bpa is not None
            and bpa.restrict_public_buckets and access.policy_is_public(bucket.policy)
            and not is_owner_account(caller, bucket) and caller.principal_type != "AWSService"):
        # The public policy counts only for its denies.
        decision = evaluate(request, identity_policies=identity, resource_policy=None,
                            resource_account=owner, mode="standard")
    return decision


def authorize(caller: caller_pb2.Caller, bucket: BucketRecord, action: str, resource: str,
              context: Mapping[str, object], *, acl_permission: str | None = None,
              acl: access.Acl | None = None, raise_denied: bool = True) -> bool:
    bpa = access.PublicAccessBlock.from_json(bucket.public_access_block) or access.PublicAccessBlock()
    decision = policy_decision(caller, action, resource, context, bucket, bpa)
    if decision is Decision.ALLOW:
        return True
    if decision is Decision.IMPLICIT_DENY and acl_permission and bucket.ownership != "BucketOwnerEnforced":
        effective = acl or access.Acl.from_json(bucket.acl, access.canonical_id(bucket.owner_account))
        cid = access.canonical_id(caller.account_id) if caller.principal_type == "Root" else None
        authenticated = caller.principal_type not in ("Anonymous", "")
        if access.acl_allows(effective, caller_canonical_id=cid, authenticated=authenticated,
                             permission=acl_permission, ignore_public=bpa.ignore_public_acls):
            return True
    if raise_denied:
        raise access_denied()
    return False
