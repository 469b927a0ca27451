"""KMS use cases: one method per AWS operation, all behind ``dispatch``.

Every request goes: validate (botocore model) -> resolve the key -> check its state (the
table in domain/keys.py) -> authorise (key policy + the caller's IAM policies through the
policy engine in "kms" mode, then grants) -> HSM -> storage -> exactly one CloudTrail record
(success or failure) to the AuditSink, which never blocks.

State lives in memory (keys, materials, aliases, grants, parsed key policies) and is written
through: SQLite first, then the cache. Mutations take ``self._write_lock`` so concurrent
management requests cannot interleave their read-modify-write.

Parameters and results are AWS-shaped dicts (AWS member names, bytes for blobs, datetimes
for timestamps); api.py maps them to and from protobuf.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import hashlib
import hmac
import os
import secrets
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa, utils

from common.audit import AuditSink, build_event
from common.aws_validation import OperationValidator, Rules, service_model
from common.caller import Caller
from common.errors import AwsError, InternalFailure
from common.logging import get_logger
from common.policy import (AuthzRequest, Decision, MalformedPolicyError, Policy, Principal, explain,
                           parse_policy)
from common.policy_principal import principal_from_caller
from services.kms.domain import ciphertext as ct
from services.kms.domain import errors
from services.kms.domain.identifiers import (RESERVED_ALIAS_PREFIX, KeyRef, alias_arn, key_arn, new_key_id,
                                             parse_key_ref, validate_alias_name)
from services.kms.domain.keys import (CONTEXT_GRANT_OPERATIONS, Alias, Grant, Key, KeyMaterial, KeyState,
                                      MaterialState, check_state)
from services.kms.domain.policy import (MANAGED_DESCRIPTIONS, MAX_POLICY_BYTES,
                                        POLICY_NAME, PREDEFINED_MANAGED_ALIASES, aws_managed_key_policy,
                                        default_key_policy)
from services.kms.domain.specs import (DATA_KEY_BYTES, DATA_KEY_PAIR_SPECS, HASH_OF_MAC,
                                       HASH_OF_SIGNING, RSA_OAEP_MAX, SPECS, UNSUPPORTED_SPECS, Kind,
                                       KeyUsage, metadata_algorithms, signing_input)
from services.kms.hsm.codec import CURVES
from services.kms.hsm.port import Hsm, HsmAuthenticationError, HsmError
from services.kms.store.sqlite import SqliteStore

log = get_logger(__name__)

# Requests arrive over gRPC: top-level members only (nested ones are checked by the use cases that
# read them), "" is absent, and the KMS API keeps its own deviations from AWS's wording (see Rules).
VALIDATION_RULES = Rules(nested=False, empty_is_absent=True, required_first=True, first_per_member=True)

Clock = Callable[[], datetime]
EVENT_SOURCE = "kms.amazonaws.com"
MAX_TAGS = 50
MAX_ON_DEMAND_ROTATIONS = 25
IMPORT_TOKEN_TTL = timedelta(hours=24)
GRANT_TOKEN_PREFIX = "SRGT1"
IMPORT_TOKEN_MAGIC = b"SRIT1"
READ_ONLY_PREFIXES = ("Describe", "Get", "List", "Encrypt", "Decrypt", "ReEncrypt", "GenerateDataKey",
                      "GenerateRandom", "GenerateMac", "VerifyMac", "Sign", "Verify", "DeriveSharedSecret")
# Members whose values are maps of caller data (left as they are in CloudTrail records).
MAP_MEMBERS = frozenset({"EncryptionContext", "SourceEncryptionContext", "DestinationEncryptionContext",
                         "EncryptionContextSubset", "EncryptionContextEquals"})
SECRET_MEMBERS = frozenset({
    "Plaintext", "CiphertextBlob", "PrivateKeyPlaintext", "PrivateKeyCiphertextBlob", "PublicKey",
    "Signature", "Message", "Mac", "SharedSecret", "ImportToken", "EncryptedKeyMaterial",
    "CiphertextForRecipient", "GrantToken", "GrantTokens", "Recipient", "SharedSecretCiphertextBlob",
})
HASHES = {"sha1": hashes.SHA1, "sha256": hashes.SHA256, "sha384": hashes.SHA384, "sha512": hashes.SHA512}


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def _cloudtrail_value(name: str, value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, (bytes, bytearray)):
        return None
    if name in MAP_MEMBERS:
        return dict(value)
    if isinstance(value, Mapping):
        return {k[:1].lower() + k[1:]: _cloudtrail_value(k, v) for k, v in value.items()
                if k not in SECRET_MEMBERS}
    if isinstance(value, list):
        return [_cloudtrail_value(name, v) for v in value]
    return value


_PLAIN = (str, int, bool, type(None))


@functools.cache
def _camel(name: str) -> str:
    return name[:1].lower() + name[1:]


def cloudtrail_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """requestParameters as CloudTrail writes them: camelCase, without secrets or blobs."""
    out: dict[str, Any] = {}
    for name, value in params.items():
        if name in SECRET_MEMBERS:
            continue
        if type(value) in _PLAIN:  # most members: copied as they are
            out[_camel(name)] = value
        elif not isinstance(value, (bytes, bytearray)):
            out[_camel(name)] = _cloudtrail_value(name, value)
    return out


@dataclass(slots=True)
class Ctx:
    """One request in flight: who, what, and what the audit record must say."""

    caller: Caller
    operation: str
    params: dict[str, Any]
    resources: list[str] = field(default_factory=list)
    additional: dict[str, Any] = field(default_factory=dict)
    response_elements: dict[str, Any] | None = None
    request_alias: str | None = None
    _principal: Principal | None = None
    _identity: tuple[Policy, ...] | None = None

    def add_resource(self, arn: str) -> None:
        if arn not in self.resources:
            self.resources.append(arn)


class KmsService:
    def __init__(self, *, store: SqliteStore, hsm: Hsm, sink: AuditSink, account: str, region: str,
                 clock: Clock = utcnow, validator: OperationValidator | None = None) -> None:
        self.store = store
        self.hsm = hsm
        self.sink = sink
        self.account = account
        self.region = region
        self.clock = clock
        self.validator = validator or OperationValidator(service_model("kms"), VALIDATION_RULES)
        self.keys: dict[str, Key] = {}
        self.materials: dict[str, dict[str, KeyMaterial]] = {}
        self.aliases: dict[str, Alias] = {}
        self.aliases_by_key: dict[str, set[str]] = {}
        self.grants: dict[str, Grant] = {}
        self.grants_by_key: dict[str, list[str]] = {}
        self.grant_tokens: dict[str, str] = {}
        self.import_tokens: dict[str, dict[str, Any]] = {}
        self.usage: dict[str, dict[str, Any]] = {}
        self._usage_dirty: set[str] = set()
        self._policies: dict[str, tuple[str, Policy | None]] = {}
        self._identity_cache: dict[str, Policy | None] = {}
        self._allowed: set[tuple[Any, ...]] = set()
        self._context_free: dict[str, bool] = {}
        self._key_refs: dict[tuple[str, bool], KeyRef] = {}
        self._write_lock = asyncio.Lock()
        self._managed_lock = asyncio.Lock()
        self._started = utcnow()
        self._handlers: dict[str, Callable[[Ctx, dict[str, Any]], Awaitable[dict[str, Any]]]] = {
            n[3:]: getattr(self, n) for n in dir(type(self)) if n.startswith("op_")}

    # ------------------------------------------------------------------ lifecycle

    async def load(self) -> None:
        data = await self.store.load()
        for key in data["keys"]:
            self.keys[key.key_id] = key
        for m in data["materials"]:
            self.materials.setdefault(m.key_id, {})[m.material_id] = m
        for a in data["aliases"]:
            self._cache_alias(a)
        for g in data["grants"]:
            self._cache_grant(g)
        for token, doc in data["import_tokens"]:
            self.import_tokens[token] = doc
        for key_id, doc in data["usage"]:
            self.usage[key_id] = doc

    def _cache_alias(self, alias: Alias) -> None:
        old = self.aliases.get(alias.name)
        if old is not None:
            self.aliases_by_key.get(old.key_id, set()).discard(alias.name)
        self.aliases[alias.name] = alias
        self.aliases_by_key.setdefault(alias.key_id, set()).add(alias.name)

    def _uncache_alias(self, name: str) -> None:
        old = self.aliases.pop(name, None)
        if old is not None:
            self.aliases_by_key.get(old.key_id, set()).discard(name)

    def _cache_grant(self, grant: Grant) -> None:
        self.grants[grant.grant_id] = grant
        ids = self.grants_by_key.setdefault(grant.key_id, [])
        if grant.grant_id not in ids:
            ids.append(grant.grant_id)
        self.grant_tokens[grant.token] = grant.grant_id

    def _uncache_grant(self, grant_id: str) -> None:
        grant = self.grants.pop(grant_id, None)
        if grant is not None:
            ids = self.grants_by_key.get(grant.key_id, [])
            if grant_id in ids:
                ids.remove(grant_id)

    # ------------------------------------------------------------------ dispatch + audit

    def operations(self) -> list[str]:
        return sorted(self._handlers)

    async def dispatch(self, operation: str, caller: Caller, params: dict[str, Any]) -> dict[str, Any]:
        ctx = Ctx(caller=caller, operation=operation, params=params)
        handler = self._handlers.get(operation)
        try:
            if handler is None:
                raise errors.UnsupportedOperationException(f"{operation} is not supported.")
            self.validator.validate(operation, params)
            result = await handler(ctx, params)
        except AwsError as exc:
            if operation != "GetOrCreateAwsManagedKey":
                self._record(ctx, exc.code, exc.message)
            raise
        except asyncio.CancelledError:
            raise
        except HsmError as exc:
            log.error("hsm_failure", operation=operation, error=type(exc).__name__)
            err = errors.KMSInternalException("The request was rejected because an internal exception occurred.")
            self._record(ctx, err.code, err.message)
            raise err from None
        except Exception:
            log.exception("unhandled_exception", operation=operation)
            self._record(ctx, "InternalFailure", "We encountered an internal error. Please try again.")
            raise InternalFailure("We encountered an internal error. Please try again.") from None
        if operation != "GetOrCreateAwsManagedKey":
            self._record(ctx, None, None)
        return result

    def _record(self, ctx: Ctx, error_code: str | None, error_message: str | None) -> None:
        # The sink builds the record later, in a batch (common.audit.AuditSink), from values
        # fixed now. Not from the request context itself: keeping whole contexts alive until
        # the batch (up to 50 ms, hundreds of them) cost ~30 us per call in the KMS process.
        try:
            self.sink.record(functools.partial(
                self._event, ctx.caller, ctx.operation, ctx.params,
                ctx.response_elements if error_code is None else None, tuple(ctx.resources),
                ctx.additional or None, error_code, error_message, self.clock()))
        except Exception:  # noqa: BLE001 - the audit path must never fail a request
            log.exception("audit_record_failed", operation=ctx.operation)

    def _event(self, caller: Caller, operation: str, params: dict[str, Any],
               response_elements: dict[str, Any] | None, resources: tuple[str, ...],
               additional: dict[str, Any] | None, error_code: str | None, error_message: str | None,
               when: datetime) -> dict[str, Any]:
        return build_event(
            caller=caller, event_source=EVENT_SOURCE, event_name=operation, region=self.region,
            recipient_account_id=self.account, request_parameters=cloudtrail_params(params) or None,
            response_elements=response_elements,
            resources=[{"accountId": self.account, "type": "AWS::KMS::Key", "ARN": arn} for arn in resources],
            read_only=_read_only(operation), error_code=error_code,
            error_message=error_message, additional_event_data=additional,
            event_time=when)

    def _service_event(self, name: str, key: Key, details: dict[str, Any] | None = None) -> None:
        event = build_event(
            caller=Caller(principal_type="AWSService", account_id=self.account, service_principal="AWS Internal"),
            event_source=EVENT_SOURCE, event_name=name, region=self.region, recipient_account_id=self.account,
            request_parameters=None, resources=[{"accountId": self.account, "type": "AWS::KMS::Key", "ARN": key.arn}],
            read_only=False, event_type="AwsServiceEvent", event_time=self.clock())
        event["userIdentity"] = {"accountId": self.account, "invokedBy": "AWS Internal"}
        event["sourceIPAddress"] = "AWS Internal"
        event["userAgent"] = "AWS Internal"
        event.pop("requestID", None)
        event["serviceEventDetails"] = {"keyId": key.key_id, **(details or {})}
        self.sink.record(event)

    # ------------------------------------------------------------------ identifiers

    def _resolve(self, ctx: Ctx, raw: str | None, *, allow_alias: bool = False, member: str = "KeyId") -> Key:
        if not raw:
            raise errors.ValidationException(
                f"1 validation error detected: Value null at '{member[:1].lower() + member[1:]}' failed to "
                "satisfy constraint: Member must not be null")
        ref = self._key_refs.get((raw, allow_alias))
        if ref is None:
            ref = parse_key_ref(raw, self.region, self.account, allow_alias=allow_alias)
            if len(self._key_refs) >= 4096:
                self._key_refs.clear()
            self._key_refs[(raw, allow_alias)] = ref
        if ref.alias_name is not None:
            a_arn = alias_arn(self.region, self.account, ref.alias_name)
            alias = None if ref.foreign else self.aliases.get(ref.alias_name)
            if alias is None:
                raise errors.NotFoundException(f"Alias '{a_arn}' is not found.")
            ctx.request_alias = ref.alias_name
            key = self.keys[alias.key_id]
        else:
            assert ref.key_id is not None
            key = None if ref.foreign else self.keys.get(ref.key_id)
            if key is None:
                arn = raw if raw.startswith("arn:") else key_arn(self.region, self.account, ref.key_id)
                raise errors.NotFoundException(f"Key '{arn}' does not exist")
        ctx.add_resource(key.arn)
        return key

    def _current(self, key: Key) -> KeyMaterial:
        mats = self.materials.get(key.key_id, {})
        m = mats.get(key.current_material or "")
        if m is None or m.state is MaterialState.DESTROYED:
            raise errors.KMSInvalidStateException(f"{key.arn} is pending import.")
        return m

    # ------------------------------------------------------------------ authorisation

    def _principal(self, ctx: Ctx) -> Principal:
        if ctx._principal is None:
            ctx._principal = principal_from_caller(ctx.caller)
        return ctx._principal

    def _identity_policies(self, ctx: Ctx) -> tuple[Policy, ...]:
        if ctx._identity is None:
            out: list[Policy] = []
            for text in ctx.caller.identity_policy_documents:
                if text not in self._identity_cache:
                    try:
                        self._identity_cache[text] = parse_policy(text, policy_type="identity")
                    except MalformedPolicyError:
                        self._identity_cache[text] = None
                policy = self._identity_cache[text]
                if policy is None:
                    raise self._denied(ctx, ctx.operation, "*", "because an identity-based policy is malformed")
                out.append(policy)
            ctx._identity = tuple(out)
        return ctx._identity

    def _key_policy(self, key: Key) -> Policy | None:
        cached = self._policies.get(key.key_id)
        if cached is not None and cached[0] == key.policy:
            return cached[1]
        try:
            policy: Policy | None = parse_policy(key.policy, policy_type="resource")
        except MalformedPolicyError:
            policy = None
        self._policies[key.key_id] = (key.policy, policy)
        return policy

    def _conditions(self, ctx: Ctx, key: Key | None, extra: Mapping[str, Any] | None) -> dict[str, Any]:
        c = ctx.caller
        cond: dict[str, Any] = {"kms:CallerAccount": c.account_id or self.account,
                                "aws:CurrentTime": self.clock(), "aws:ViaAWSService": bool(c.invoked_by)}
        if c.source_ip and not c.source_ip.endswith("amazonaws.com"):
            cond["aws:SourceIp"] = c.source_ip
        if c.via_service:
            cond["kms:ViaService"] = c.via_service
        for k, v in c.principal_tags.items():
            cond["aws:PrincipalTag/" + k] = v
        if key is not None:
            cond["kms:KeySpec"] = key.spec
            cond["kms:KeyUsage"] = key.usage
            cond["kms:KeyOrigin"] = key.origin
            for k, v in key.tags:
                cond["aws:ResourceTag/" + k] = v
            names = self.aliases_by_key.get(key.key_id)
            if names:
                cond["kms:ResourceAliases"] = sorted(names)
        if ctx.request_alias:
            cond["kms:RequestAlias"] = ctx.request_alias
        if extra:
            cond.update(extra)
        return cond

    def _denied(self, ctx: Ctx, action: str, resource: str, why: str) -> AwsError:
        who = ctx.caller.principal_arn or ctx.caller.service_principal or "anonymous"
        if not action.startswith("kms:"):
            action = "kms:" + action
        return errors.AccessDeniedException(
            f"User: {who} is not authorized to perform: {action} on resource: {resource} {why}")

    def _authorize(self, ctx: Ctx, action: str, key: Key, *, extra: Mapping[str, Any] | None = None,
                   grant_op: str | None = None, context: Mapping[str, str] | None = None) -> None:
        """Key policy (+ IAM through its root statement), then grants. Raises AccessDenied."""
        # Policies without conditions or variables decide on (principal, action, key) alone:
        # such allows are cached, keyed by the exact policy texts (a change is a new entry) and
        # by every caller field the principal is made of. Only a parsed, well-formed policy set
        # can have produced an entry, so a hit needs neither the policies nor the principal.
        texts = tuple(ctx.caller.identity_policy_documents)
        cache_key = None
        if self._is_context_free(key.policy) and all(self._is_context_free(t) for t in texts):
            cache_key = (action, key.arn, key.policy, _principal_key(ctx.caller), texts)
            if cache_key in self._allowed:
                return
        principal = self._principal(ctx)
        identity = self._identity_policies(ctx)
        policy = self._key_policy(key)
        if policy is None:
            raise self._denied(ctx, action, key.arn, "because the key policy is malformed")
        request = AuthzRequest(principal, action, key.arn, self._conditions(ctx, key, extra))
        result = explain(request, identity_policies=identity, resource_policy=policy,
                         resource_account=key.account, mode="kms")
        if result.decision is Decision.ALLOW:
            if cache_key is not None:
                if len(self._allowed) > 20000:
                    self._allowed.clear()
                self._allowed.add(cache_key)
            return
        if result.decision is Decision.EXPLICIT_DENY:
            kind = "identity-based" if any(m.source != "resource" for m in result.matched) else "resource-based"
            raise self._denied(ctx, action, key.arn, f"with an explicit deny in a {kind} policy")
        if grant_op is not None and self._grant_allows(ctx, key, grant_op, context or {}):
            return
        # Does the key policy let the account's IAM policies decide? Then IAM is what is missing.
        root = Principal.root(principal.account or self.account)
        delegated = explain(AuthzRequest(root, action, key.arn, request.context), resource_policy=policy,
                            resource_account=key.account, mode="kms").decision is Decision.ALLOW
        if delegated and principal.account == key.account and principal.kind != "Root":
            raise self._denied(ctx, action, key.arn, f"because no identity-based policy allows the {action} action")
        raise self._denied(ctx, action, key.arn, f"because no resource-based policy allows the {action} action")

    def _is_context_free(self, text: str) -> bool:
        free = self._context_free.get(text)
        if free is None:
            free = _context_free(text)
            if len(self._context_free) >= 1024:
                self._context_free.clear()
            self._context_free[text] = free
        return free

    def _authorize_iam(self, ctx: Ctx, action: str, resource: str = "*",
                       extra: Mapping[str, Any] | None = None) -> None:
        """Actions governed by IAM policies alone (CreateKey, ListKeys, alias ARNs...)."""
        principal = self._principal(ctx)
        if principal.kind == "Root" and principal.account == self.account:
            return
        request = AuthzRequest(principal, action, resource, self._conditions(ctx, None, extra))
        result = explain(request, identity_policies=self._identity_policies(ctx), mode="standard",
                         resource_account=self.account)
        if result.decision is Decision.ALLOW:
            return
        if result.decision is Decision.EXPLICIT_DENY:
            raise self._denied(ctx, action, resource, "with an explicit deny in an identity-based policy")
        raise self._denied(ctx, action, resource, f"because no identity-based policy allows the {action} action")

    def _grantee_names(self, ctx: Ctx) -> set[str]:
        c = ctx.caller
        names = {n for n in (c.principal_arn, c.service_principal) if n}
        principal = self._principal(ctx)
        role = principal.effective_role_arn()
        if role:
            names.add(role)
        return names

    def _grant_allows(self, ctx: Ctx, key: Key, operation: str, context: Mapping[str, str]) -> bool:
        ids = self.grants_by_key.get(key.key_id)
        if not ids:
            return False
        names = self._grantee_names(ctx)
        for gid in ids:
            g = self.grants[gid]
            if operation in g.operations and g.grantee_principal in names and g.constraints_hold(dict(context)):
                return True
        return False

    def _check_grant_tokens(self, params: Mapping[str, Any]) -> None:
        for token in params.get("GrantTokens") or ():
            if not token.startswith(GRANT_TOKEN_PREFIX) or len(token) < 40:
                raise errors.InvalidGrantTokenException("Invalid grant token")

    @staticmethod
    def _dry_run(params: Mapping[str, Any]) -> None:
        if params.get("DryRun"):
            raise errors.DryRunOperationException("The request would have succeeded, but the DryRun option is set.")

    def _track(self, ctx: Ctx, key: Key) -> None:
        self.usage[key.key_id] = {"Operation": ctx.operation, "Timestamp": self.clock(),
                                  "KmsRequestId": ctx.caller.request_id or ""}
        self._usage_dirty.add(key.key_id)

    # ------------------------------------------------------------------ key creation

    async def _new_material(self, key_id: str, spec: str, usage: str, *, rotation_type: str | None = None
                            ) -> KeyMaterial:
        material_id = secrets.token_hex(32)
        label = f"kms/{key_id}/{material_id[:32]}"
        public = await self.hsm.generate(label, spec, usage)
        now = self.clock()
        return KeyMaterial(material_id=material_id, key_id=key_id, hsm_label=label, created=now,
                           rotation_type=rotation_type, rotation_date=now if rotation_type else None,
                           public_key=public)

    def _check_policy(self, ctx: Ctx, text: str, key_arn_: str, account: str, bypass: bool) -> None:
        if len(text.encode("utf-8")) > MAX_POLICY_BYTES:
            raise errors.LimitExceededException("The key policy exceeds the maximum size of 32 KB.")
        try:
            policy = parse_policy(text, policy_type="resource")
        except MalformedPolicyError as exc:
            raise errors.MalformedPolicyDocumentException(exc.message) from None
        if bypass:
            return
        principal = self._principal(ctx)
        request = AuthzRequest(principal, "kms:PutKeyPolicy", key_arn_, self._conditions(ctx, None, None))
        decision = explain(request, identity_policies=self._identity_policies(ctx), resource_policy=policy,
                           resource_account=account, mode="kms").decision
        if decision is not Decision.ALLOW:
            raise errors.MalformedPolicyDocumentException(
                "The new key policy will not allow you to update the key policy in the future.")

    @staticmethod
    def _check_tags(tags: list[dict[str, str]]) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        for tag in tags:
            k, v = tag.get("TagKey", ""), tag.get("TagValue", "")
            if not k or len(k) > 128 or len(v) > 256:
                raise errors.TagException("Tag keys must be 1-128 characters and values 0-256 characters.")
            if k.startswith("aws:"):
                raise errors.TagException("Tags beginning with aws: are reserved.")
            out.append((k, v))
        return out

    async def op_CreateKey(self, ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
        spec = p.get("KeySpec") or p.get("CustomerMasterKeySpec") or "SYMMETRIC_DEFAULT"
        if p.get("KeySpec") and p.get("CustomerMasterKeySpec") and p["KeySpec"] != p["CustomerMasterKeySpec"]:
            raise errors.ValidationException("You cannot specify KeySpec and CustomerMasterKeySpec in the same "
                                             "request. CustomerMasterKeySpec is deprecated.")
        usage = p.get("KeyUsage")
        origin = p.get("Origin") or "AWS_KMS"
        tags = self._check_tags(p.get("Tags") or [])
        self._authorize_iam(ctx, "kms:CreateKey", extra={
            "kms:KeySpec": spec, "kms:KeyUsage": usage or "ENCRYPT_DECRYPT", "kms:KeyOrigin": origin,
            "kms:MultiRegion": bool(p.get("MultiRegion")), "aws:TagKeys": [k for k, _ in tags],
            **{"aws:RequestTag/" + k: v for k, v in tags}})
        if spec in UNSUPPORTED_SPECS:
            raise errors.UnsupportedOperationException(
                f"KeySpec {spec} is not supported by this key store (its HSM offers no such mechanism).")
        info = SPECS[spec]
        if usage is None:
            if info.kind is not Kind.SYMMETRIC:
                raise errors.ValidationException(
                    "You must specify a KeyUsage value for all KMS keys except for symmetric encryption keys.")
            usage = KeyUsage.ENCRYPT_DECRYPT
        if usage not in info.usages:
            raise errors.ValidationException(f"KeyUsage {usage} is not compatible with KeySpec {spec}")
        if p.get("CustomKeyStoreId"):
            raise errors.CustomKeyStoreNotFoundException(
                f"Custom key store {p['CustomKeyStoreId']} does not exist.")
        if origin in ("AWS_CLOUDHSM", "EXTERNAL_KEY_STORE"):
            raise errors.UnsupportedOperationException(f"Origin {origin} requires a custom key store.")
        if origin == "EXTERNAL" and info.kind not in (Kind.SYMMETRIC, Kind.HMAC):
            raise errors.UnsupportedOperationException(
                f"Importing key material is supported for symmetric encryption and HMAC keys; not for {spec}.")
        if p.get("MultiRegion"):
            raise errors.UnsupportedOperationException("Multi-Region keys are not supported in this partition.")
        key_id = new_key_id()
        arn = key_arn(self.region, self.account, key_id)
        policy = p.get("Policy") or default_key_policy(self.account)
        if p.get("Policy"):
            self._check_policy(ctx, policy, arn, self.account, bool(p.get("BypassPolicyLockoutSafetyCheck")))
        key = Key(key_id=key_id, arn=arn, account=self.account, region=self.region, created=self.clock(),
                  spec=spec, usage=str(usage), origin=origin, description=p.get("Description") or "",
                  state=KeyState.PENDING_IMPORT if origin == "EXTERNAL" else KeyState.ENABLED,
                  policy=policy, tags=tuple(tags))
        await self._create(key)
        ctx.add_resource(arn)
        md = self._metadata(key)
        ctx.response_elements = {"keyMetadata": cloudtrail_params(md)}
        return {"KeyMetadata": md}

    async def _create(self, key: Key) -> Key:
        material = None
        if key.origin == "AWS_KMS":
            material = await self._new_material(key.key_id, key.spec, key.usage)
            key = key.with_(current_material=material.material_id)
        try:
            async with self._write_lock, self.store.transaction() as tx:
                await tx.put_key(key)
                if material is not None:
                    await tx.put_material(material)
        except BaseException:
            if material is not None:
                await self.hsm.destroy(material.hsm_label)
            raise
        self.keys[key.key_id] = key
        if material is not None:
            self.materials.setdefault(key.key_id, {})[material.material_id] = material
        return key

    def _metadata(self, key: Key) -> dict[str, Any]:
        return key.metadata()

    async def _save_key(self, key: Key) -> Key:
        async with self.store.transaction() as tx:
            await tx.put_key(key)
        self.keys[key.key_id] = key
        return key

    # ------------------------------------------------------------------ key management

    async def op_DescribeKey(self, ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
        self._check_grant_tokens(p)
        key = self._resolve(ctx, p.get("KeyId"), allow_alias=True)
        self._authorize(ctx, "kms:DescribeKey", key, grant_op="DescribeKey")
        return {"KeyMetadata": self._metadata(key)}

    @staticmethod
    def _page(items: list[Any], p: Mapping[str, Any], key_of: Callable[[Any], str], default_limit: int = 100
              ) -> tuple[list[Any], dict[str, Any]]:
        limit = p.get("Limit") or default_limit
        start = 0
        marker = p.get("Marker")
        if marker:
            try:
                after = base64.urlsafe_b64decode(marker.encode()).decode()
            except (ValueError, UnicodeDecodeError):
                after = ""
            if not after or base64.urlsafe_b64encode(after.encode()).decode() != marker:
                raise errors.InvalidMarkerException("Invalid marker")
            keys = [key_of(i) for i in items]
            if after not in keys:
                start = next((n for n, k in enumerate(keys) if k > after), len(keys))
            else:
                start = keys.index(after) + 1
        page = items[start:start + limit]
        more = start + limit < len(items)
        out: dict[str, Any] = {"Truncated": more}
        if more:
            out["NextMarker"] = base64.urlsafe_b64encode(key_of(page[-1]).encode()).decode()
        return page, out

    async def op_ListKeys(self, ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
        self._authorize_iam(ctx, "kms:ListKeys")
        keys = sorted(self.keys.values(), key=lambda k: k.key_id)
        page, extra = self._page(keys, p, lambda k: k.key_id, 100)
        return {"Keys": [{"KeyId": k.key_id, "KeyArn": k.arn} for k in page], **extra}

    async def _mutate(self, ctx: Ctx, p: dict[str, Any], action: str, change: Callable[[Key], Key | None]
                      ) -> Key:
        key = self._resolve(ctx, p.get("KeyId"))
        self._authorize(ctx, action, key)
        check_state(key, action.split(":", 1)[1])
        async with self._write_lock:
            key = self.keys[key.key_id]
            check_state(key, action.split(":", 1)[1])
            new = change(key)
            if new is not None and new != key:
                key = await self._save_key(new)
        return key

    async def op_UpdateKeyDescription(self, ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
        await self._mutate(ctx, p, "kms:UpdateKeyDescription", lambda k: k.with_(description=p.get("Description", "")))
        return {}

    async def op_EnableKey(self, ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
        await self._mutate(ctx, p, "kms:EnableKey", lambda k: k.with_(state=KeyState.ENABLED))
        return {}

    async def op_DisableKey(self, ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
        await self._mutate(ctx, p, "kms:DisableKey", lambda k: k.with_(state=KeyState.DISABLED))
        return {}

    async def op_ScheduleKeyDeletion(self, ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
        days = p.get("PendingWindowInDays")
        days = 30 if days is None else days
        if not 7 <= days <= 30:
            bound = "greater than or equal to 7" if days < 7 else "less than or equal to 30"
            raise errors.ValidationException(
                f"1 validation error detected: Value '{days}' at 'pendingWindowInDays' failed to satisfy "
                f"constraint: Member must have value {bound}")
        when = self.clock() + timedelta(days=days)
        key = await self._mutate(ctx, p, "kms:ScheduleKeyDeletion", lambda k: k.with_(
            state=KeyState.PENDING_DELETION, deletion_date=when, pending_window=days, state_before_deletion=k.state))
        ctx.response_elements = {"keyId": key.arn, "deletionDate": _ct_time(when), "keyState": "PendingDeletion",
                                 "pendingWindowInDays": days}
        return {"KeyId": key.arn, "DeletionDate": when, "KeyState": "PendingDeletion", "PendingWindowInDays": days}

    async def op_CancelKeyDeletion(self, ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
        def cancel(k: Key) -> Key:
            state = KeyState.PENDING_IMPORT if k.state_before_deletion is KeyState.PENDING_IMPORT else KeyState.DISABLED
            return k.with_(state=state, deletion_date=None, pending_window=None, state_before_deletion=None)

        key = await self._mutate(ctx, p, "kms:CancelKeyDeletion", cancel)
        ctx.response_elements = {"keyId": key.arn}
        return {"KeyId": key.arn}

    async def destroy_key(self, key: Key) -> None:
        """Deletion window passed: destroy the material in the HSM, then forget the key."""
        async with self._write_lock:
            for m in list(self.materials.get(key.key_id, {}).values()):
                if m.state is not MaterialState.DESTROYED:
                    await self.hsm.destroy(m.hsm_label)
            for token, doc in list(self.import_tokens.items()):
                if doc["key_id"] == key.key_id:
                    await self.hsm.destroy(doc["label"])
                    self.import_tokens.pop(token, None)
            async with self.store.transaction() as tx:
                await tx.delete_key(key.key_id)
            self.keys.pop(key.key_id, None)
            self.materials.pop(key.key_id, None)
            for name in list(self.aliases_by_key.get(key.key_id, ())):
                self._uncache_alias(name)
            self.aliases_by_key.pop(key.key_id, None)
            for gid in list(self.grants_by_key.get(key.key_id, ())):
                self._uncache_grant(gid)
            self.grants_by_key.pop(key.key_id, None)
            self.usage.pop(key.key_id, None)
            self._policies.pop(key.key_id, None)
        self._service_event("DeleteKey", key)

    # ------------------------------------------------------------------ aliases

    async def op_CreateAlias(self, ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
        name = p.get("AliasName", "")
        validate_alias_name(name)
        key = self._resolve(ctx, p.get("TargetKeyId"), member="TargetKeyId")
        a_arn = alias_arn(self.region, self.account, name)
        ctx.add_resource(a_arn)
        self._authorize_iam(ctx, "kms:CreateAlias", a_arn)
        self._authorize(ctx, "kms:CreateAlias", key)
        check_state(key, "CreateAlias")
        async with self._write_lock:
            if name in self.aliases:
                raise errors.AlreadyExistsException(f"An alias with the name {a_arn} already exists")
            now = self.clock()
            alias = Alias(name=name, arn=a_arn, key_id=key.key_id, created=now, updated=now)
            async with self.store.transaction() as tx:
                await tx.put_alias(alias)
            self._cache_alias(alias)
        return {}

    def _alias(self, ctx: Ctx, name: str) -> Alias:
        alias = self.aliases.get(name)
        a_arn = alias_arn(self.region, self.account, name)
        ctx.add_resource(a_arn)
        if alias is None:
            raise errors.NotFoundException(f"Alias '{a_arn}' is not found.")
        return alias

    async def op_UpdateAlias(self, ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
        name = p.get("AliasName", "")
        validate_alias_name(name)
        alias = self._alias(ctx, name)
        old = self.keys[alias.key_id]
        ctx.add_resource(old.arn)
        new = self._resolve(ctx, p.get("TargetKeyId"), member="TargetKeyId")
        self._authorize_iam(ctx, "kms:UpdateAlias", alias.arn)
        self._authorize(ctx, "kms:UpdateAlias", old)
        self._authorize(ctx, "kms:UpdateAlias", new)
        check_state(new, "UpdateAlias")
        if SPECS[old.spec].kind is not SPECS[new.spec].kind and \
                Kind.SYMMETRIC in (SPECS[old.spec].kind, SPECS[new.spec].kind) or old.usage != new.usage:
            raise errors.ValidationException(
                f"{alias.arn} cannot be associated with {new.arn}: the key type or key usage differs "
                "from that of the current target.")
        async with self._write_lock:
            updated = Alias(name=alias.name, arn=alias.arn, key_id=new.key_id, created=alias.created,
                            updated=self.clock())
            async with self.store.transaction() as tx:
                await tx.put_alias(updated)
            self._cache_alias(updated)
        return {}

    async def op_DeleteAlias(self, ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
        name = p.get("AliasName", "")
        validate_alias_name(name)
        alias = self._alias(ctx, name)
        key = self.keys[alias.key_id]
        ctx.add_resource(key.arn)
        self._authorize_iam(ctx, "kms:DeleteAlias", alias.arn)
        self._authorize(ctx, "kms:DeleteAlias", key)
        async with self._write_lock:
            async with self.store.transaction() as tx:
                await tx.delete_alias(name)
            self._uncache_alias(name)
        return {}

    async def op_ListAliases(self, ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
        self._authorize_iam(ctx, "kms:ListAliases")
        entries: list[dict[str, Any]] = []
        if p.get("KeyId"):
            ref = parse_key_ref(p["KeyId"], self.region, self.account, allow_alias=False)
            key = self.keys.get(ref.key_id or "") if not ref.foreign else None
            if key is None:
                raise errors.NotFoundException(f"Key '{key_arn(self.region, self.account, ref.key_id or '')}' "
                                               "does not exist")
            names = sorted(self.aliases_by_key.get(key.key_id, ()))
        else:
            names = sorted(set(self.aliases) | set(PREDEFINED_MANAGED_ALIASES))
        for name in names:
            alias = self.aliases.get(name)
            if alias is None:
                entries.append({"AliasName": name, "AliasArn": alias_arn(self.region, self.account, name)})
            else:
                entries.append({"AliasName": name, "AliasArn": alias.arn, "TargetKeyId": alias.key_id,
                                "CreationDate": alias.created, "LastUpdatedDate": alias.updated})
        page, extra = self._page(entries, p, lambda e: e["AliasName"], 50)
        return {"Aliases": page, **extra}

    # ------------------------------------------------------------------ key policies

    @staticmethod
    def _policy_name(p: Mapping[str, Any]) -> None:
        name = p.get("PolicyName") or POLICY_NAME
        if name != POLICY_NAME:
            raise errors.NotFoundException("No such policy exists")

    async def op_GetKeyPolicy(self, ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
        key = self._resolve(ctx, p.get("KeyId"))
        self._policy_name(p)
        self._authorize(ctx, "kms:GetKeyPolicy", key)
        return {"Policy": key.policy, "PolicyName": POLICY_NAME}

    async def op_PutKeyPolicy(self, ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
        key = self._resolve(ctx, p.get("KeyId"))
        self._policy_name(p)
        self._authorize(ctx, "kms:PutKeyPolicy", key,
                        extra={"kms:BypassPolicyLockoutSafetyCheck": bool(p.get("BypassPolicyLockoutSafetyCheck"))})
        check_state(key, "PutKeyPolicy")
        text = p.get("Policy", "")
        self._check_policy(ctx, text, key.arn, key.account, bool(p.get("BypassPolicyLockoutSafetyCheck")))
        async with self._write_lock:
            await self._save_key(self.keys[key.key_id].with_(policy=text))
        return {}

    async def op_ListKeyPolicies(self, ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
        key = self._resolve(ctx, p.get("KeyId"))
        self._authorize(ctx, "kms:ListKeyPolicies", key)
        return {"PolicyNames": [POLICY_NAME], "Truncated": False}

    # ------------------------------------------------------------------ tags

    async def op_TagResource(self, ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
        tags = self._check_tags(p.get("Tags") or [])
        key = self._resolve(ctx, p.get("KeyId"))
        self._authorize(ctx, "kms:TagResource", key, extra={
            "aws:TagKeys": [k for k, _ in tags], **{"aws:RequestTag/" + k: v for k, v in tags}})
        check_state(key, "TagResource")
        async with self._write_lock:
            current = dict(self.keys[key.key_id].tags)
            current.update(tags)
            if len(current) > MAX_TAGS:
                raise errors.LimitExceededException("The request was rejected because a quota was exceeded: "
                                                    "a KMS key can have at most 50 tags.")
            await self._save_key(self.keys[key.key_id].with_(tags=tuple(current.items())))
        return {}

    async def op_UntagResource(self, ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
        tag_keys = list(p.get("TagKeys") or [])
        key = self._resolve(ctx, p.get("KeyId"))
        self._authorize(ctx, "kms:UntagResource", key, extra={"aws:TagKeys": tag_keys})
        check_state(key, "UntagResource")
        async with self._write_lock:
            current = {k: v for k, v in self.keys[key.key_id].tags if k not in tag_keys}
            await self._save_key(self.keys[key.key_id].with_(tags=tuple(current.items())))
        return {}

    async def op_ListResourceTags(self, ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
        key = self._resolve(ctx, p.get("KeyId"))
        self._authorize(ctx, "kms:ListResourceTags", key)
        tags = sorted(key.tags)
        page, extra = self._page(tags, p, lambda t: t[0], 50)
        return {"Tags": [{"TagKey": k, "TagValue": v} for k, v in page], **extra}

    # ------------------------------------------------------------------ grants

    async def op_CreateGrant(self, ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
        self._check_grant_tokens(p)
        key = self._resolve(ctx, p.get("KeyId"))
        ops = list(p.get("Operations") or [])
        grantee = p.get("GranteePrincipal") or p.get("GranteeServicePrincipal")
        retiring = p.get("RetiringPrincipal") or p.get("RetiringServicePrincipal")
        constraints = p.get("Constraints") or {}
        subset, equals = constraints.get("EncryptionContextSubset"), constraints.get("EncryptionContextEquals")
        if not grantee:
            raise errors.ValidationException("1 validation error detected: Value null at 'granteePrincipal' "
                                             "failed to satisfy constraint: Member must not be null")
        if not ops:
            raise errors.ValidationException("1 validation error detected: Value '[]' at 'operations' failed "
                                             "to satisfy constraint: Member must have length greater than or equal to 1")
        if (subset is not None or equals is not None) and any(op not in CONTEXT_GRANT_OPERATIONS for op in ops):
            raise errors.ValidationException("Grant constraints are supported only for grant operations that use "
                                             "an encryption context.")
        ctype = [n for n, v in (("EncryptionContextSubset", subset), ("EncryptionContextEquals", equals)) if v is not None]
        context = dict(subset or equals or {})
        self._authorize(ctx, "kms:CreateGrant", key, grant_op="CreateGrant", context=context, extra={
            "kms:GrantOperations": ops, "kms:GranteePrincipal": grantee,
            **({"kms:RetiringPrincipal": retiring} if retiring else {}),
            "kms:GrantIsForAWSResource": bool(ctx.caller.invoked_by),
            **({"kms:GrantConstraintType": ctype[0]} if ctype else {})})
        check_state(key, "CreateGrant")
        self._dry_run(p)
        name = p.get("Name")
        async with self._write_lock:
            if name:
                for gid in self.grants_by_key.get(key.key_id, ()):
                    g = self.grants[gid]
                    if (g.name == name and g.grantee_principal == grantee and g.operations == tuple(ops)
                            and g.retiring_principal == retiring):
                        ctx.response_elements = {"grantId": g.grant_id, "keyId": key.arn}
                        return {"GrantId": g.grant_id, "GrantToken": g.token}
            grant_id = secrets.token_hex(32)
            token = GRANT_TOKEN_PREFIX + base64.urlsafe_b64encode(
                bytes.fromhex(grant_id) + os.urandom(32)).decode().rstrip("=")
            grant = Grant(grant_id=grant_id, key_id=key.key_id, key_arn=key.arn, token=token, created=self.clock(),
                          issuing_account=self.account, operations=tuple(ops), grantee_principal=grantee,
                          retiring_principal=retiring, name=name,
                          context_subset=tuple(sorted(subset.items())) if subset is not None else None,
                          context_equals=tuple(sorted(equals.items())) if equals is not None else None)
            async with self.store.transaction() as tx:
                await tx.put_grant(grant)
            self._cache_grant(grant)
        ctx.response_elements = {"grantId": grant_id, "keyId": key.arn}
        return {"GrantId": grant_id, "GrantToken": token}

    async def op_ListGrants(self, ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
        key = self._resolve(ctx, p.get("KeyId"))
        self._authorize(ctx, "kms:ListGrants", key, extra={"kms:GrantIsForAWSResource": bool(ctx.caller.invoked_by)})
        grants = [self.grants[g] for g in self.grants_by_key.get(key.key_id, ())]
        if p.get("GrantId"):
            grants = [g for g in grants if g.grant_id == p["GrantId"]]
        grantee = p.get("GranteePrincipal") or p.get("GranteeServicePrincipal")
        if grantee:
            grants = [g for g in grants if g.grantee_principal == grantee]
        grants.sort(key=lambda g: (g.created, g.grant_id))
        page, extra = self._page(grants, p, lambda g: g.grant_id, 50)
        return {"Grants": [g.list_entry() for g in page], **extra}

    async def op_ListRetirableGrants(self, ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
        self._authorize_iam(ctx, "kms:ListRetirableGrants")
        who = p.get("RetiringPrincipal") or p.get("RetiringServicePrincipal")
        grants = sorted((g for g in self.grants.values() if g.retiring_principal == who),
                        key=lambda g: (g.created, g.grant_id))
        page, extra = self._page(grants, p, lambda g: g.grant_id, 50)
        return {"Grants": [g.list_entry() for g in page], **extra}

    async def op_RetireGrant(self, ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
        token, grant_id = p.get("GrantToken"), p.get("GrantId")
        if token:
            gid = self.grant_tokens.get(token)
            if gid is None or gid not in self.grants:
                raise errors.InvalidGrantTokenException("Invalid grant token")
            grant = self.grants[gid]
        else:
            if not (p.get("KeyId") and grant_id):
                raise errors.ValidationException("Either the grant token or both the key ID and the grant ID must "
                                                 "be specified.")
            key = self._resolve(ctx, p.get("KeyId"))
            g = self.grants.get(grant_id or "")
            if g is None or g.key_id != key.key_id:
                raise errors.InvalidGrantIdException("Grant ID not valid")
            grant = g
        key = self.keys[grant.key_id]
        ctx.add_resource(key.arn)
        ctx.additional = {"grantId": grant.grant_id}
        names = self._grantee_names(ctx)
        principal = self._principal(ctx)
        allowed = (grant.retiring_principal in names
                   or (grant.grantee_principal in names and "RetireGrant" in grant.operations)
                   or (principal.kind == "Root" and principal.account == key.account))
        if not allowed:
            self._authorize(ctx, "kms:RetireGrant", key)
        self._dry_run(p)
        await self._delete_grant(grant.grant_id)
        return {}

    async def op_RevokeGrant(self, ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
        key = self._resolve(ctx, p.get("KeyId"))
        self._authorize(ctx, "kms:RevokeGrant", key, extra={"kms:GrantIsForAWSResource": bool(ctx.caller.invoked_by)})
        grant = self.grants.get(p.get("GrantId") or "")
        if grant is None or grant.key_id != key.key_id:
            raise errors.NotFoundException(f"Grant ID {p.get('GrantId')} not found")
        self._dry_run(p)
        await self._delete_grant(grant.grant_id)
        return {}

    async def _delete_grant(self, grant_id: str) -> None:
        async with self._write_lock:
            async with self.store.transaction() as tx:
                await tx.delete_grant(grant_id)
            self._uncache_grant(grant_id)

    # ------------------------------------------------------------------ rotation

    def _rotatable(self, key: Key) -> None:
        info = SPECS[key.spec]
        if info.kind is not Kind.SYMMETRIC:
            raise errors.UnsupportedOperationException(
                f"{key.arn} key spec is {key.spec} which is not valid for this operation.")
        if key.origin != "AWS_KMS":
            raise errors.UnsupportedOperationException(
                f"{key.arn} origin is {key.origin} which is not valid for this operation.")

    async def op_EnableKeyRotation(self, ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
        period = p.get("RotationPeriodInDays") or 365
        key = self._resolve(ctx, p.get("KeyId"))
        self._authorize(ctx, "kms:EnableKeyRotation", key, extra={"kms:RotationPeriodInDays": period})
        check_state(key, "EnableKeyRotation")
        self._rotatable(key)
        async with self._write_lock:
            k = self.keys[key.key_id]
            await self._save_key(k.with_(rotation_enabled=True, rotation_period=period,
                                         next_rotation=self.clock() + timedelta(days=period)))
        return {}

    async def op_DisableKeyRotation(self, ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
        key = self._resolve(ctx, p.get("KeyId"))
        self._authorize(ctx, "kms:DisableKeyRotation", key)
        check_state(key, "DisableKeyRotation")
        self._rotatable(key)
        async with self._write_lock:
            k = self.keys[key.key_id]
            await self._save_key(k.with_(rotation_enabled=False, next_rotation=None))
        return {}

    async def op_GetKeyRotationStatus(self, ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
        key = self._resolve(ctx, p.get("KeyId"))
        self._authorize(ctx, "kms:GetKeyRotationStatus", key)
        check_state(key, "GetKeyRotationStatus")
        self._rotatable(key)
        out: dict[str, Any] = {"KeyId": key.arn, "KeyRotationEnabled": key.rotation_enabled}
        if key.rotation_enabled:
            out["RotationPeriodInDays"] = key.rotation_period
            out["NextRotationDate"] = key.next_rotation
        return out

    async def op_RotateKeyOnDemand(self, ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
        key = self._resolve(ctx, p.get("KeyId"))
        self._authorize(ctx, "kms:RotateKeyOnDemand", key)
        check_state(key, "RotateKeyOnDemand")
        self._rotatable(key)
        if key.on_demand_rotations >= MAX_ON_DEMAND_ROTATIONS:
            raise errors.LimitExceededException(
                f"The on-demand rotations limit has been reached for the given key: {key.arn}")
        await self.rotate(key, "ON_DEMAND")
        return {"KeyId": key.key_id}

    async def rotate(self, key: Key, rotation_type: str) -> KeyMaterial:
        """New HSM object first; then one transaction moves the current version."""
        material = await self._new_material(key.key_id, key.spec, key.usage, rotation_type=rotation_type)
        try:
            async with self._write_lock:
                k = self.keys[key.key_id]
                old = self.materials.get(k.key_id, {}).get(k.current_material or "")
                changes: dict[str, Any] = {"current_material": material.material_id}
                if rotation_type == "ON_DEMAND":
                    changes["on_demand_rotations"] = k.on_demand_rotations + 1
                elif k.rotation_enabled and k.rotation_period:
                    changes["next_rotation"] = self.clock() + timedelta(days=k.rotation_period)
                new_key = k.with_(**changes)
                demoted = None
                if old is not None:
                    demoted = KeyMaterial(**{**old.to_doc(), "state": MaterialState.NON_CURRENT,
                                             "created": old.created, "rotation_date": old.rotation_date,
                                             "valid_to": old.valid_to, "public_key": old.public_key})
                async with self.store.transaction() as tx:
                    await tx.put_material(material)
                    if demoted is not None:
                        await tx.put_material(demoted)
                    await tx.put_key(new_key)
                mats = self.materials.setdefault(k.key_id, {})
                mats[material.material_id] = material
                if demoted is not None:
                    mats[demoted.material_id] = demoted
                self.keys[k.key_id] = new_key
        except BaseException:
            await self.hsm.destroy(material.hsm_label)
            raise
        return material

    async def op_ListKeyRotations(self, ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
        key = self._resolve(ctx, p.get("KeyId"))
        self._authorize(ctx, "kms:ListKeyRotations", key)
        check_state(key, "ListKeyRotations")
        self._rotatable(key)
        include_all = p.get("IncludeKeyMaterial") == "ALL_KEY_MATERIAL"
        mats = sorted(self.materials.get(key.key_id, {}).values(), key=lambda m: (m.created, m.material_id))
        entries = []
        for m in mats:
            if m.rotation_type is None and not include_all:
                continue
            e: dict[str, Any] = {"KeyId": key.key_id, "KeyMaterialId": m.material_id,
                                 "KeyMaterialState": "CURRENT" if m.material_id == key.current_material else "NON_CURRENT"}
            if m.rotation_type:
                e["RotationDate"] = m.rotation_date
                e["RotationType"] = m.rotation_type
            entries.append(e)
        page, extra = self._page(entries, p, lambda e: e["KeyMaterialId"], 100)
        return {"Rotations": page, **extra}

    # ------------------------------------------------------------------ symmetric crypto

    def _crypto_key(self, ctx: Ctx, p: Mapping[str, Any], operation: str, usage: str) -> Key:
        self._check_grant_tokens(p)
        key = self._resolve(ctx, p.get("KeyId"), allow_alias=True)
        if key.usage != usage:
            raise errors.InvalidKeyUsageException(
                f"{key.arn} key usage is {key.usage} which is not valid for {operation}.")
        return key

    def _ec_extra(self, context: Mapping[str, str], **extra: Any) -> dict[str, Any]:
        out: dict[str, Any] = {"kms:EncryptionContext:" + k: v for k, v in context.items()}
        out["kms:EncryptionContextKeys"] = list(context)
        out.update(extra)
        return out

    async def _seal(self, key: Key, plaintext: bytes, context: Mapping[str, str]) -> tuple[bytes, str]:
        material = self._current(key)
        nonce = os.urandom(ct.NONCE_LEN)
        header = ct.CiphertextHeader(key.key_id, material.material_id, nonce).pack()
        body = await self.hsm.aes_gcm_encrypt(material.hsm_label, nonce, plaintext, ct.aad(header, context))
        return header + body, material.material_id

    async def _encrypt_with(self, ctx: Ctx, key: Key, plaintext: bytes, context: Mapping[str, str],
                            algorithm: str) -> tuple[bytes, str | None]:
        info = SPECS[key.spec]
        if algorithm not in info.encryption:
            raise errors.InvalidKeyUsageException(f"Algorithm {algorithm} is incompatible with key spec {key.spec}.")
        if info.kind is Kind.SYMMETRIC:
            return await self._seal(key, plaintext, context)
        if context:
            raise errors.ValidationException("EncryptionContext is not supported with asymmetric KMS keys.")
        limit = RSA_OAEP_MAX[(info.bits, algorithm)]
        if len(plaintext) > limit:
            raise errors.ValidationException(
                f"Algorithm {algorithm} and key spec {key.spec} cannot encrypt data larger than {limit} bytes.")
        material = self._current(key)
        public = _load_public(material.public_key or b"")
        h = HASHES["sha1" if algorithm.endswith("SHA_1") else "sha256"]()
        return public.encrypt(plaintext, padding.OAEP(padding.MGF1(h), h, None)), None

    async def op_Encrypt(self, ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
        key = self._crypto_key(ctx, p, "Encrypt", KeyUsage.ENCRYPT_DECRYPT)
        context = p.get("EncryptionContext") or {}
        algorithm = p.get("EncryptionAlgorithm") or "SYMMETRIC_DEFAULT"
        check_state(key, "Encrypt")
        self._authorize(ctx, "kms:Encrypt", key, grant_op="Encrypt", context=context,
                        extra=self._ec_extra(context, **{"kms:EncryptionAlgorithm": algorithm}))
        self._dry_run(p)
        blob, material_id = await self._encrypt_with(ctx, key, p["Plaintext"], context, algorithm)
        if material_id:
            ctx.additional["keyMaterialId"] = material_id
        self._track(ctx, key)
        return {"CiphertextBlob": blob, "KeyId": key.arn, "EncryptionAlgorithm": algorithm}

    async def _open(self, ctx: Ctx, p: Mapping[str, Any], *, key_member: str, blob_member: str,
                    context_member: str, algorithm_member: str, operation: str, action: str, grant_op: str
                    ) -> tuple[Key, bytes, str | None, str]:
        blob: bytes = p.get(blob_member) or b""
        if not blob:
            raise errors.ValidationException(
                f"1 validation error detected: Value null at '{blob_member[:1].lower() + blob_member[1:]}' "
                "failed to satisfy constraint: Member must not be null")
        context = p.get(context_member) or {}
        algorithm = p.get(algorithm_member) or "SYMMETRIC_DEFAULT"
        requested = self._resolve(ctx, p[key_member], allow_alias=True) if p.get(key_member) else None
        if ct.is_ours(blob):
            header = ct.CiphertextHeader.parse(blob)
            if requested is not None and requested.key_id != header.key_id:
                raise errors.IncorrectKeyException(
                    "The key ID in the request does not identify a CMK that can perform this operation.")
            key = requested or self.keys.get(header.key_id)
            if key is None:
                raise errors.invalid_ciphertext()
            ctx.add_resource(key.arn)
            if algorithm != "SYMMETRIC_DEFAULT":
                raise errors.IncorrectKeyException(
                    "The key ID in the request does not identify a CMK that can perform this operation.")
        else:
            if requested is None or SPECS[requested.spec].kind is not Kind.RSA:
                raise errors.invalid_ciphertext()
            key = requested
            header = None
        if key.usage != KeyUsage.ENCRYPT_DECRYPT:
            raise errors.InvalidKeyUsageException(f"{key.arn} key usage is {key.usage} which is not valid for {operation}.")
        check_state(key, grant_op)
        self._authorize(ctx, action, key, grant_op=grant_op, context=context,
                        extra=self._ec_extra(context, **{"kms:EncryptionAlgorithm": algorithm}))
        if header is not None:
            material = self.materials.get(key.key_id, {}).get(header.material_id)
            if material is None or material.state is MaterialState.DESTROYED:
                raise errors.invalid_ciphertext()
            try:
                plaintext = await self.hsm.aes_gcm_decrypt(
                    material.hsm_label, header.nonce, blob[ct.HEADER_LEN:], ct.aad(blob[:ct.HEADER_LEN], context))
            except HsmAuthenticationError:
                raise errors.invalid_ciphertext() from None
            return key, plaintext, material.material_id, "SYMMETRIC_DEFAULT"
        if algorithm not in SPECS[key.spec].encryption:
            raise errors.InvalidKeyUsageException(f"Algorithm {algorithm} is incompatible with key spec {key.spec}.")
        if context:
            raise errors.invalid_ciphertext()
        material = self._current(key)
        try:
            plaintext = await self.hsm.rsa_decrypt(material.hsm_label, algorithm, blob)
        except HsmAuthenticationError:
            raise errors.invalid_ciphertext() from None
        return key, plaintext, None, algorithm

    async def op_Decrypt(self, ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
        self._check_grant_tokens(p)
        key, plaintext, material_id, algorithm = await self._open(
            ctx, p, key_member="KeyId", blob_member="CiphertextBlob", context_member="EncryptionContext",
            algorithm_member="EncryptionAlgorithm", operation="Decrypt", action="kms:Decrypt", grant_op="Decrypt")
        self._dry_run(p)
        out: dict[str, Any] = {"KeyId": key.arn, "Plaintext": plaintext, "EncryptionAlgorithm": algorithm}
        if material_id:
            out["KeyMaterialId"] = material_id
            ctx.additional["keyMaterialId"] = material_id
        self._track(ctx, key)
        return out

    async def op_ReEncrypt(self, ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
        self._check_grant_tokens(p)
        dest = self._resolve(ctx, p.get("DestinationKeyId"), allow_alias=True, member="DestinationKeyId")
        dest_request_alias = ctx.request_alias
        ctx.request_alias = None
        source, plaintext, src_material, src_alg = await self._open(
            ctx, p, key_member="SourceKeyId", blob_member="CiphertextBlob", context_member="SourceEncryptionContext",
            algorithm_member="SourceEncryptionAlgorithm", operation="ReEncrypt", action="kms:ReEncryptFrom",
            grant_op="ReEncryptFrom")
        ctx.request_alias = dest_request_alias
        ctx.add_resource(dest.arn)
        if dest.usage != KeyUsage.ENCRYPT_DECRYPT:
            raise errors.InvalidKeyUsageException(f"{dest.arn} key usage is {dest.usage} which is not valid for ReEncrypt.")
        check_state(dest, "ReEncryptTo")
        dest_context = p.get("DestinationEncryptionContext") or {}
        dest_alg = p.get("DestinationEncryptionAlgorithm") or "SYMMETRIC_DEFAULT"
        self._authorize(ctx, "kms:ReEncryptTo", dest, grant_op="ReEncryptTo", context=dest_context,
                        extra=self._ec_extra(dest_context, **{"kms:EncryptionAlgorithm": dest_alg,
                                                              "kms:ReEncryptOnSameKey": dest.key_id == source.key_id}))
        self._dry_run(p)
        blob, dest_material = await self._encrypt_with(ctx, dest, plaintext, dest_context, dest_alg)
        out: dict[str, Any] = {"CiphertextBlob": blob, "SourceKeyId": source.arn, "KeyId": dest.arn,
                               "SourceEncryptionAlgorithm": src_alg, "DestinationEncryptionAlgorithm": dest_alg}
        if src_material:
            out["SourceKeyMaterialId"] = src_material
            ctx.additional["sourceKeyMaterialId"] = src_material
        if dest_material:
            out["DestinationKeyMaterialId"] = dest_material
            ctx.additional["destinationKeyMaterialId"] = dest_material
        self._track(ctx, dest)
        return out

    async def _data_key(self, ctx: Ctx, p: Mapping[str, Any], operation: str) -> tuple[Key, bytes, bytes, str]:
        key = self._crypto_key(ctx, p, operation, KeyUsage.ENCRYPT_DECRYPT)
        if SPECS[key.spec].kind is not Kind.SYMMETRIC:
            raise errors.InvalidKeyUsageException(f"{key.arn} key spec is {key.spec} which is not valid for {operation}.")
        spec, count = p.get("KeySpec"), p.get("NumberOfBytes")
        if (spec is None) == (count is None):
            raise errors.ValidationException("Please specify either number of bytes or key spec.")
        n = DATA_KEY_BYTES[spec] if spec else int(count or 0)
        context = p.get("EncryptionContext") or {}
        check_state(key, operation)
        self._authorize(ctx, "kms:" + operation, key, grant_op=operation, context=context,
                        extra=self._ec_extra(context))
        self._dry_run(p)
        plaintext = await self.hsm.random(n)
        blob, material_id = await self._seal(key, plaintext, context)
        ctx.additional["keyMaterialId"] = material_id
        self._track(ctx, key)
        return key, plaintext, blob, material_id

    async def op_GenerateDataKey(self, ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
        key, plaintext, blob, material_id = await self._data_key(ctx, p, "GenerateDataKey")
        return {"CiphertextBlob": blob, "Plaintext": plaintext, "KeyId": key.arn, "KeyMaterialId": material_id}

    async def op_GenerateDataKeyWithoutPlaintext(self, ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
        key, _, blob, material_id = await self._data_key(ctx, p, "GenerateDataKeyWithoutPlaintext")
        return {"CiphertextBlob": blob, "KeyId": key.arn, "KeyMaterialId": material_id}

    async def _data_key_pair(self, ctx: Ctx, p: Mapping[str, Any], operation: str) -> dict[str, Any]:
        key = self._crypto_key(ctx, p, operation, KeyUsage.ENCRYPT_DECRYPT)
        if SPECS[key.spec].kind is not Kind.SYMMETRIC:
            raise errors.InvalidKeyUsageException(f"{key.arn} key spec is {key.spec} which is not valid for {operation}.")
        pair_spec = p.get("KeyPairSpec", "")
        if pair_spec not in DATA_KEY_PAIR_SPECS:
            raise errors.UnsupportedOperationException(f"KeyPairSpec {pair_spec} is not supported in this Region.")
        context = p.get("EncryptionContext") or {}
        check_state(key, operation)
        self._authorize(ctx, "kms:" + operation, key, grant_op=operation, context=context,
                        extra=self._ec_extra(context, **{"kms:DataKeyPairSpec": pair_spec}))
        self._dry_run(p)
        private_der, public_der = await asyncio.get_running_loop().run_in_executor(None, _make_key_pair, pair_spec)
        blob, material_id = await self._seal(key, private_der, context)
        ctx.additional["keyMaterialId"] = material_id
        self._track(ctx, key)
        return {"PrivateKeyCiphertextBlob": blob, "PrivateKeyPlaintext": private_der, "PublicKey": public_der,
                "KeyId": key.arn, "KeyPairSpec": pair_spec, "KeyMaterialId": material_id}

    async def op_GenerateDataKeyPair(self, ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
        return await self._data_key_pair(ctx, p, "GenerateDataKeyPair")

    async def op_GenerateDataKeyPairWithoutPlaintext(self, ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
        out = await self._data_key_pair(ctx, p, "GenerateDataKeyPairWithoutPlaintext")
        out.pop("PrivateKeyPlaintext")
        return out

    async def op_GenerateRandom(self, ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
        if p.get("CustomKeyStoreId"):
            raise errors.CustomKeyStoreNotFoundException(f"Custom key store {p['CustomKeyStoreId']} does not exist.")
        n = p.get("NumberOfBytes")
        if n is None:
            raise errors.ValidationException("NumberOfBytes is required.")
        self._authorize_iam(ctx, "kms:GenerateRandom")
        return {"Plaintext": await self.hsm.random(n)}

    # ------------------------------------------------------------------ signing, MACs, key agreement

    async def op_Sign(self, ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
        key = self._crypto_key(ctx, p, "Sign", KeyUsage.SIGN_VERIFY)
        algorithm, message_type = p.get("SigningAlgorithm", ""), p.get("MessageType") or "RAW"
        data = signing_input(key.spec, algorithm, message_type, p["Message"])
        check_state(key, "Sign")
        self._authorize(ctx, "kms:Sign", key, grant_op="Sign",
                        extra={"kms:SigningAlgorithm": algorithm, "kms:MessageType": message_type})
        self._dry_run(p)
        signature = await self.hsm.sign(self._current(key).hsm_label, key.spec, algorithm, data)
        self._track(ctx, key)
        return {"KeyId": key.arn, "Signature": signature, "SigningAlgorithm": algorithm}

    async def op_Verify(self, ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
        key = self._crypto_key(ctx, p, "Verify", KeyUsage.SIGN_VERIFY)
        algorithm, message_type = p.get("SigningAlgorithm", ""), p.get("MessageType") or "RAW"
        data = signing_input(key.spec, algorithm, message_type, p["Message"])
        check_state(key, "Verify")
        self._authorize(ctx, "kms:Verify", key, grant_op="Verify",
                        extra={"kms:SigningAlgorithm": algorithm, "kms:MessageType": message_type})
        self._dry_run(p)
        public = _load_public(self._current(key).public_key or b"")
        if not _verify(public, algorithm, data, p.get("Signature") or b""):
            self._track(ctx, key)
            raise errors.KMSInvalidSignatureException("")
        self._track(ctx, key)
        return {"KeyId": key.arn, "SignatureValid": True, "SigningAlgorithm": algorithm}

    async def _mac(self, ctx: Ctx, p: Mapping[str, Any], operation: str) -> tuple[Key, bytes, str]:
        key = self._crypto_key(ctx, p, operation, KeyUsage.GENERATE_VERIFY_MAC)
        algorithm = p.get("MacAlgorithm", "")
        if algorithm not in SPECS[key.spec].mac:
            raise errors.InvalidKeyUsageException(f"Algorithm {algorithm} is incompatible with key spec {key.spec}.")
        check_state(key, operation)
        self._authorize(ctx, "kms:" + operation, key, grant_op=operation, extra={"kms:MacAlgorithm": algorithm})
        self._dry_run(p)
        mac = await self.hsm.hmac(self._current(key).hsm_label, HASH_OF_MAC[algorithm], p["Message"])
        self._track(ctx, key)
        return key, mac, algorithm

    async def op_GenerateMac(self, ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
        key, mac, algorithm = await self._mac(ctx, p, "GenerateMac")
        return {"Mac": mac, "MacAlgorithm": algorithm, "KeyId": key.arn}

    async def op_VerifyMac(self, ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
        key, mac, algorithm = await self._mac(ctx, p, "VerifyMac")
        if not hmac.compare_digest(mac, p.get("Mac") or b""):
            raise errors.KMSInvalidMacException("")
        return {"KeyId": key.arn, "MacValid": True, "MacAlgorithm": algorithm}

    async def op_GetPublicKey(self, ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
        self._check_grant_tokens(p)
        key = self._resolve(ctx, p.get("KeyId"), allow_alias=True)
        info = SPECS[key.spec]
        if info.kind in (Kind.SYMMETRIC, Kind.HMAC):
            raise errors.UnsupportedOperationException(
                f"{key.arn} key spec is {key.spec} which is not valid for GetPublicKey.")
        check_state(key, "GetPublicKey")
        self._authorize(ctx, "kms:GetPublicKey", key, grant_op="GetPublicKey")
        out: dict[str, Any] = {"KeyId": key.arn, "PublicKey": self._current(key).public_key,
                               "CustomerMasterKeySpec": key.spec, "KeySpec": key.spec, "KeyUsage": key.usage}
        out.update(metadata_algorithms(info, key.usage))
        self._track(ctx, key)
        return out

    async def op_DeriveSharedSecret(self, ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
        key = self._crypto_key(ctx, p, "DeriveSharedSecret", KeyUsage.KEY_AGREEMENT)
        algorithm = p.get("KeyAgreementAlgorithm", "")
        info = SPECS[key.spec]
        if algorithm not in info.agreement:
            raise errors.InvalidKeyUsageException(f"Algorithm {algorithm} is incompatible with key spec {key.spec}.")
        try:
            peer = serialization.load_der_public_key(p.get("PublicKey") or b"")
        except (ValueError, TypeError):
            raise errors.ValidationException("The public key must be a DER-encoded X.509 SubjectPublicKeyInfo "
                                             "(SPKI).") from None
        if not isinstance(peer, ec.EllipticCurvePublicKey) or peer.curve.name != CURVES[info.curve or ""].name:
            raise errors.ValidationException(f"The public key is not on the curve of key spec {key.spec}.")
        check_state(key, "DeriveSharedSecret")
        self._authorize(ctx, "kms:DeriveSharedSecret", key, grant_op="DeriveSharedSecret",
                        extra={"kms:KeyAgreementAlgorithm": algorithm})
        self._dry_run(p)
        point = peer.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
        try:
            secret = await self.hsm.ecdh(self._current(key).hsm_label, point)
        except HsmAuthenticationError:
            raise errors.ValidationException("The public key is not valid for key agreement.") from None
        self._track(ctx, key)
        return {"KeyId": key.arn, "SharedSecret": secret, "KeyAgreementAlgorithm": algorithm, "KeyOrigin": key.origin}

    async def op_GetKeyLastUsage(self, ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
        key = self._resolve(ctx, p.get("KeyId"))
        self._authorize(ctx, "kms:GetKeyLastUsage", key)
        out: dict[str, Any] = {"KeyId": key.arn, "KeyCreationDate": key.created,
                               "TrackingStartDate": max(key.created, self._started)}
        usage = self.usage.get(key.key_id)
        if usage:
            when = usage["Timestamp"]
            out["KeyLastUsage"] = {"Operation": usage["Operation"],
                                   "Timestamp": when if isinstance(when, datetime) else datetime.fromisoformat(when),
                                   **({"KmsRequestId": usage["KmsRequestId"]} if usage.get("KmsRequestId") else {})}
        return out

    # ------------------------------------------------------------------ imported key material

    def _external(self, key: Key) -> None:
        if key.origin != "EXTERNAL":
            raise errors.UnsupportedOperationException(
                f"{key.arn} origin is {key.origin} which is not valid for this operation.")

    async def op_GetParametersForImport(self, ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
        key = self._resolve(ctx, p.get("KeyId"))
        algorithm, spec = p.get("WrappingAlgorithm", ""), p.get("WrappingKeySpec", "")
        self._authorize(ctx, "kms:GetParametersForImport", key,
                        extra={"kms:WrappingAlgorithm": algorithm, "kms:WrappingKeySpec": spec})
        self._external(key)
        check_state(key, "GetParametersForImport")
        if spec == "SM2" or algorithm == "SM2PKE":
            raise errors.UnsupportedOperationException("SM2 wrapping keys are not supported in this Region.")
        token_id = uuid.uuid4().hex
        label = f"import/{token_id}"
        public = await self.hsm.generate_wrapping_key(label, int(spec.split("_")[1]))
        expires = self.clock() + IMPORT_TOKEN_TTL
        doc = {"key_id": key.key_id, "label": label, "algorithm": algorithm, "spec": spec,
               "expires": expires.isoformat()}
        token = IMPORT_TOKEN_MAGIC + bytes.fromhex(token_id)
        async with self._write_lock:
            async with self.store.transaction() as tx:
                await tx.put_import_token(token_id, key.key_id, doc)
            self.import_tokens[token_id] = doc
        return {"KeyId": key.arn, "ImportToken": token, "PublicKey": public, "ParametersValidTo": expires}

    async def op_ImportKeyMaterial(self, ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
        key = self._resolve(ctx, p.get("KeyId"))
        model = p.get("ExpirationModel")
        valid_to: datetime | None = p.get("ValidTo")
        self._authorize(ctx, "kms:ImportKeyMaterial", key, extra={
            **({"kms:ExpirationModel": model} if model else {}), **({"kms:ValidTo": valid_to} if valid_to else {})})
        self._external(key)
        check_state(key, "ImportKeyMaterial")
        model = model or ("KEY_MATERIAL_EXPIRES" if valid_to else "KEY_MATERIAL_DOES_NOT_EXPIRE")
        if model == "KEY_MATERIAL_EXPIRES" and valid_to is None:
            raise errors.ValidationException("A validTo date must be set if the ExpirationModel is KEY_MATERIAL_EXPIRES")
        if model == "KEY_MATERIAL_DOES_NOT_EXPIRE" and valid_to is not None:
            raise errors.ValidationException(
                "A validTo date must not be set if the ExpirationModel is KEY_MATERIAL_DOES_NOT_EXPIRE")
        if valid_to is not None and valid_to <= self.clock():
            raise errors.ValidationException("The validTo date must be in the future.")
        token: bytes = p.get("ImportToken") or b""
        if len(token) != len(IMPORT_TOKEN_MAGIC) + 16 or not token.startswith(IMPORT_TOKEN_MAGIC):
            raise errors.InvalidImportTokenException("The import token is invalid.")
        doc = self.import_tokens.get(token[len(IMPORT_TOKEN_MAGIC):].hex())
        if doc is None or doc["key_id"] != key.key_id:
            raise errors.InvalidImportTokenException("The import token is invalid for this key.")
        if datetime.fromisoformat(doc["expires"]) <= self.clock():
            raise errors.ExpiredImportTokenException("The import token has expired.")
        label = f"kms/{key.key_id}/imp-{secrets.token_hex(8)}"
        try:
            fingerprint, public = await self.hsm.import_material(
                doc["label"], doc["algorithm"], p.get("EncryptedKeyMaterial") or b"", label, key.spec, key.usage)
        except HsmAuthenticationError:
            raise errors.InvalidCiphertextException(
                "The key material could not be unwrapped with the import token's wrapping key.") from None
        material_id = hashlib.sha256(fingerprint.encode()).hexdigest()
        previous = [m for m in self.materials.get(key.key_id, {}).values() if m.imported]
        if previous and all(m.fingerprint != fingerprint for m in previous):
            await self.hsm.destroy(label)
            raise errors.IncorrectKeyMaterialException(
                "The key material in the request is, expired, invalid, or is not the same key material that was "
                "previously imported into this customer master key (CMK).")
        async with self._write_lock:
            k = self.keys[key.key_id]
            old = self.materials.get(k.key_id, {}).get(material_id)
            if old is not None and old.state is not MaterialState.DESTROYED:
                await self.hsm.destroy(old.hsm_label)
            material = KeyMaterial(material_id=material_id, key_id=k.key_id, hsm_label=label, created=self.clock(),
                                   public_key=public, imported=True, fingerprint=fingerprint, valid_to=valid_to,
                                   expiration_model=model)
            state = k.state if k.state is not KeyState.PENDING_IMPORT else KeyState.ENABLED
            new_key = k.with_(state=state, current_material=material_id, valid_to=valid_to, expiration_model=model)
            try:
                async with self.store.transaction() as tx:
                    await tx.put_material(material)
                    await tx.put_key(new_key)
            except BaseException:
                await self.hsm.destroy(label)
                raise
            self.materials.setdefault(k.key_id, {})[material_id] = material
            self.keys[k.key_id] = new_key
        ctx.additional["keyMaterialId"] = material_id
        return {"KeyId": key.arn, "KeyMaterialId": material_id}

    async def op_DeleteImportedKeyMaterial(self, ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
        key = self._resolve(ctx, p.get("KeyId"))
        self._authorize(ctx, "kms:DeleteImportedKeyMaterial", key)
        self._external(key)
        check_state(key, "DeleteImportedKeyMaterial")
        material_id = await self.delete_imported_material(key)
        return {"KeyId": key.arn, "KeyMaterialId": material_id or ""}

    async def delete_imported_material(self, key: Key) -> str | None:
        async with self._write_lock:
            k = self.keys[key.key_id]
            mats = self.materials.get(k.key_id, {})
            current = mats.get(k.current_material or "")
            destroyed: list[KeyMaterial] = []
            for m in mats.values():
                if m.state is not MaterialState.DESTROYED:
                    await self.hsm.destroy(m.hsm_label)
                    destroyed.append(KeyMaterial(**{**m.to_doc(), "state": MaterialState.DESTROYED,
                                                    "created": m.created, "rotation_date": m.rotation_date,
                                                    "valid_to": m.valid_to, "public_key": m.public_key}))
            state = k.state if k.state is KeyState.PENDING_DELETION else KeyState.PENDING_IMPORT
            new_key = k.with_(state=state, valid_to=None, expiration_model=None)
            async with self.store.transaction() as tx:
                for m in destroyed:
                    await tx.put_material(m)
                await tx.put_key(new_key)
            for m in destroyed:
                mats[m.material_id] = m
            self.keys[k.key_id] = new_key
        return current.material_id if current else None

    # ------------------------------------------------------------------ not offered here

    async def op_DescribeCustomKeyStores(self, ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
        self._authorize_iam(ctx, "kms:DescribeCustomKeyStores")
        if p.get("CustomKeyStoreId") or p.get("CustomKeyStoreName"):
            raise errors.CustomKeyStoreNotFoundException("The specified custom key store does not exist.")
        return {"CustomKeyStores": [], "Truncated": False}

    async def _no_key_store(self, ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
        raise errors.CustomKeyStoreNotFoundException("The specified custom key store does not exist.")

    op_ConnectCustomKeyStore = _no_key_store
    op_DisconnectCustomKeyStore = _no_key_store
    op_DeleteCustomKeyStore = _no_key_store
    op_UpdateCustomKeyStore = _no_key_store

    async def op_CreateCustomKeyStore(self, ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
        raise errors.UnsupportedOperationException("Custom key stores are not supported; keys live in the "
                                                   "service's own PKCS#11 token.")

    async def op_ReplicateKey(self, ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
        key = self._resolve(ctx, p.get("KeyId"))
        self._authorize(ctx, "kms:ReplicateKey", key)
        raise errors.UnsupportedOperationException(f"{key.arn} is not a multi-Region key.")

    async def op_UpdatePrimaryRegion(self, ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
        key = self._resolve(ctx, p.get("KeyId"))
        self._authorize(ctx, "kms:UpdatePrimaryRegion", key)
        raise errors.UnsupportedOperationException(f"{key.arn} is not a multi-Region key.")

    async def _kem(self, ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
        key = self._resolve(ctx, p.get("KeyId"), allow_alias=True)
        raise errors.InvalidKeyUsageException(
            f"{key.arn} key usage is {key.usage} which is not valid for {ctx.operation}.")

    op_Encapsulate = _kem
    op_Decapsulate = _kem

    # ------------------------------------------------------------------ internal

    async def op_GetOrCreateAwsManagedKey(self, ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
        name = p.get("AliasName", "")
        if not name.startswith(RESERVED_ALIAS_PREFIX) or len(name) <= len(RESERVED_ALIAS_PREFIX):
            raise errors.ValidationException("AliasName must be an AWS managed alias (alias/aws/<service>).")
        validate_alias_name(name, allow_reserved=True)
        async with self._managed_lock:
            alias = self.aliases.get(name)
            if alias is not None:
                return {"KeyMetadata": self._metadata(self.keys[alias.key_id])}
            service = name[len(RESERVED_ALIAS_PREFIX):]
            key_id = new_key_id()
            now = self.clock()
            key = Key(key_id=key_id, arn=key_arn(self.region, self.account, key_id), account=self.account,
                      region=self.region, created=now, spec="SYMMETRIC_DEFAULT", usage=KeyUsage.ENCRYPT_DECRYPT,
                      manager="AWS", description=MANAGED_DESCRIPTIONS.get(
                          service, f"Default key that protects my {service} data when no other key is defined"),
                      policy=aws_managed_key_policy(self.account, self.region, service), rotation_enabled=True,
                      rotation_period=365, next_rotation=now + timedelta(days=365))
            key = await self._create(key)
            alias = Alias(name=name, arn=alias_arn(self.region, self.account, name), key_id=key_id,
                          created=now, updated=now)
            async with self._write_lock:
                async with self.store.transaction() as tx:
                    await tx.put_alias(alias)
                self._cache_alias(alias)
            return {"KeyMetadata": self._metadata(key)}

    # ------------------------------------------------------------------ scheduler

    async def run_due_tasks(self) -> None:
        """Deletions, automatic rotations, expired imported material, usage flush."""
        now = self.clock()
        for key in list(self.keys.values()):
            try:
                if key.state is KeyState.PENDING_DELETION and key.deletion_date and key.deletion_date <= now:
                    await self.destroy_key(key)
                    continue
                if (key.rotation_enabled and key.next_rotation and key.next_rotation <= now
                        and key.state is KeyState.ENABLED):
                    await self.rotate(key, "AUTOMATIC")
                    self._service_event("RotateKey", key)
                if (key.origin == "EXTERNAL" and key.valid_to and key.valid_to <= now
                        and key.state is not KeyState.PENDING_IMPORT):
                    await self.delete_imported_material(key)
                    self._service_event("DeleteExpiredKeyMaterial", key)
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - one key's failure must not stop the others
                log.exception("scheduled_task_failed", key_id=key.key_id)
        for token_id, doc in list(self.import_tokens.items()):
            if datetime.fromisoformat(doc["expires"]) <= now:
                await self.hsm.destroy(doc["label"])
                async with self._write_lock:
                    async with self.store.transaction() as tx:
                        await tx.delete_import_token(token_id)
                    self.import_tokens.pop(token_id, None)
        if self._usage_dirty:
            dirty, self._usage_dirty = self._usage_dirty, set()
            async with self._write_lock:
                async with self.store.transaction() as tx:
                    for key_id in dirty:
                        if key_id in self.usage and key_id in self.keys:
                            doc = dict(self.usage[key_id])
                            if isinstance(doc["Timestamp"], datetime):
                                doc["Timestamp"] = doc["Timestamp"].isoformat()
                            await tx.put_usage(key_id, doc)

    async def scheduler(self, interval: float = 5.0) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await self.run_due_tasks()
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001
                log.exception("scheduler_failed")


# ---------------------------------------------------------------------- helpers

def _principal_key(caller: Caller) -> tuple[str, ...]:
    """Every Caller field ``principal_from_caller`` reads: equal keys, equal principals."""
    kind = caller.principal_type
    role = (caller.session_context.session_issuer.arn
            if kind == "AssumedRole" and caller.HasField("session_context") else "")
    return (kind, caller.principal_arn, caller.account_id, caller.service_principal, role, caller.user_name,
            caller.principal_id)


_READ_ONLY: dict[str, bool] = {}


def _read_only(operation: str) -> bool:
    flag = _READ_ONLY.get(operation)
    if flag is None:
        flag = _READ_ONLY[operation] = operation.startswith(READ_ONLY_PREFIXES)
    return flag


def _context_free(policy_text: str) -> bool:
    """No Condition element and no policy variable: the decision ignores the request context."""
    return "Condition" not in policy_text and "${" not in policy_text


def _ct_time(when: datetime) -> str:
    return when.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


_PUBLIC_CACHE: dict[bytes, Any] = {}


def _load_public(der: bytes) -> Any:
    key = _PUBLIC_CACHE.get(der)
    if key is None:
        key = serialization.load_der_public_key(der)
        if len(_PUBLIC_CACHE) > 4096:
            _PUBLIC_CACHE.clear()
        _PUBLIC_CACHE[der] = key
    return key


def _verify(public: Any, algorithm: str, data: bytes, signature: bytes) -> bool:
    try:
        if isinstance(public, ed25519.Ed25519PublicKey):
            public.verify(signature, data)
            return True
        h = HASHES[HASH_OF_SIGNING[algorithm]]()
        pre = utils.Prehashed(h)
        if isinstance(public, rsa.RSAPublicKey):
            pad = (padding.PSS(padding.MGF1(h), h.digest_size) if algorithm.startswith("RSASSA_PSS")
                   else padding.PKCS1v15())
            public.verify(signature, data, pad, pre)
        else:
            public.verify(signature, data, ec.ECDSA(pre))
        return True
    except (InvalidSignature, ValueError):
        return False


def _make_key_pair(spec: str) -> tuple[bytes, bytes]:
    if spec.startswith("RSA_"):
        priv: Any = rsa.generate_private_key(65537, int(spec[4:]))
    elif spec == "ECC_NIST_EDWARDS25519":
        priv = ed25519.Ed25519PrivateKey.generate()
    else:
        curve = {"ECC_NIST_P256": "secp256r1", "ECC_NIST_P384": "secp384r1", "ECC_NIST_P521": "secp521r1",
                 "ECC_SECG_P256K1": "secp256k1"}[spec]
        priv = ec.generate_private_key(CURVES[curve])
    private_der = priv.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption())
    public_der = priv.public_key().public_bytes(serialization.Encoding.DER,
                                                serialization.PublicFormat.SubjectPublicKeyInfo)
    return private_der, public_der
