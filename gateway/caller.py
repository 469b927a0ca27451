"""The ``strongroom.common.v1.Caller`` of a request (see protos/strongroom/common/v1/caller.proto).

Built once per request from the authenticated identity (gateway/iam/model.Identity, or none
for an anonymous request) and the HTTP request, then sent as gRPC metadata with every RPC and
used for IAM/STS authorisation and audit records. Also the global condition keys
(``aws:SourceIp``, ``aws:UserAgent``, ``aws:CurrentTime`` ...) the gateway evaluates IAM/STS
policies with.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from strongroom.common.v1 import caller_pb2

from gateway.iam.model import Identity


def _identity_part(identity: Identity | None) -> caller_pb2.Caller:
    caller = caller_pb2.Caller()
    if identity is None:
        caller.principal_type = "Anonymous"
        return caller
    caller.principal_type = identity.kind
    caller.account_id = identity.account_id
    caller.principal_arn = identity.arn
    caller.principal_id = identity.principal_id
    caller.access_key_id = identity.access_key_id
    if identity.user_name:
        caller.user_name = identity.user_name
    if identity.policies:
        caller.identity_policy_documents.extend(identity.policies)
    for tag in identity.tags:
        caller.principal_tags[tag.key] = tag.value
    session = identity.session
    if session is not None:
        sc = caller.session_context
        sc.creation_date = session.created.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        si = sc.session_issuer
        si.type = "Role"
        si.principal_id = session.role_id
        si.arn = session.role_arn
        si.account_id = identity.account_id
        si.user_name = session.role_name
    return caller


# Serialized identity parts, per Identity object (the resolver hands out the same object for
# a key until the next IAM write). Protobuf messages merge when their encodings are
# concatenated, so a request's Caller is ``identity bytes + request-field bytes``: the
# (possibly large) policy documents are encoded once, not per request.
_IDENTITY_BYTES: dict[int, tuple[Identity | None, bytes]] = {}
_IDENTITY_BYTES_MAX = 4096


def _identity_bytes(identity: Identity | None) -> bytes:
    key = id(identity)
    hit = _IDENTITY_BYTES.get(key)
    if hit is not None and hit[0] is identity:
        return hit[1]
    data = _identity_part(identity).SerializeToString()
    if len(_IDENTITY_BYTES) >= _IDENTITY_BYTES_MAX:
        _IDENTITY_BYTES.clear()
    _IDENTITY_BYTES[key] = (identity, data)
    return data


def caller_bytes(*, identity: Identity | None, region: str, request_id: str, source_ip: str,
                 user_agent: str, host: str, auth: Any = None) -> bytes:
    """The serialized Caller (what travels as ``strongroom-caller-bin``)."""
    request_part = caller_pb2.Caller(
        request_id=request_id, source_ip=source_ip, user_agent=user_agent, host=host,
        region=(auth.region if auth is not None and auth.region else region))
    if auth is not None and auth.signature_version:
        request_part.signature_version = auth.signature_version
        request_part.auth_method = auth.auth_method or ""
    return _identity_bytes(identity) + request_part.SerializeToString()


def build_caller(*, identity: Identity | None, account_id: str, region: str, request_id: str,
                 source_ip: str, user_agent: str, host: str, auth: Any = None) -> caller_pb2.Caller:
    """The Caller message of a request (see :func:`caller_bytes` for the wire form)."""
    return caller_pb2.Caller.FromString(caller_bytes(
        identity=identity, region=region, request_id=request_id, source_ip=source_ip,
        user_agent=user_agent, host=host, auth=auth))


def condition_context(caller: caller_pb2.Caller, now: datetime | None = None) -> dict[str, object]:
    """Global condition keys of the request (those the gateway knows)."""
    now = now or datetime.now(timezone.utc)
    ctx: dict[str, object] = {
        "aws:CurrentTime": now,
        "aws:EpochTime": int(now.timestamp()),
        "aws:SecureTransport": False,
        "aws:RequestedRegion": caller.region,
    }
    if caller.source_ip:
        ctx["aws:SourceIp"] = caller.source_ip
    if caller.user_agent:
        ctx["aws:UserAgent"] = caller.user_agent
    if caller.HasField("session_context"):
        ctx["aws:TokenIssueTime"] = caller.session_context.creation_date
        ctx["aws:MultiFactorAuthPresent"] = False
    for key, value in caller.principal_tags.items():
        ctx[f"aws:PrincipalTag/{key}"] = value
    return ctx
