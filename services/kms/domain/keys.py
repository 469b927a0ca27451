"""Keys (the AWS resource), their key material versions, aliases and grants.

A ``Key`` is the AWS KMS key; each ``KeyMaterial`` is one version of its material, held in the
HSM under ``hsm_label`` and named on the wire by ``material_id`` (64 hex digits, AWS's
KeyMaterialId). Key states gate operations through one table, ``STATE_RULES``: for each
operation, the states it may run in and the error it fails with otherwise (AWS KMS
developer guide, "Key states of AWS KMS keys"). All values here are immutable; the service
changes a key by writing a replaced value to storage first, then to its cache.
"""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from typing import Any

from services.kms.domain import errors
from services.kms.domain.specs import SPECS, metadata_algorithms


class KeyState(enum.StrEnum):
    ENABLED = "Enabled"
    DISABLED = "Disabled"
    PENDING_DELETION = "PendingDeletion"
    PENDING_IMPORT = "PendingImport"


class MaterialState(enum.StrEnum):
    CURRENT = "CURRENT"
    NON_CURRENT = "NON_CURRENT"
    DESTROYED = "DESTROYED"


E, D, PD, PI = KeyState.ENABLED, KeyState.DISABLED, KeyState.PENDING_DELETION, KeyState.PENDING_IMPORT
ALL_STATES = frozenset(KeyState)
CRYPTO = frozenset({E})
MANAGE = frozenset({E, D, PI})

CRYPTO_OPS = frozenset({
    "Encrypt", "Decrypt", "ReEncryptFrom", "ReEncryptTo", "GenerateDataKey",
    "GenerateDataKeyWithoutPlaintext", "GenerateDataKeyPair", "GenerateDataKeyPairWithoutPlaintext",
    "Sign", "Verify", "GenerateMac", "VerifyMac", "GetPublicKey", "DeriveSharedSecret",
})

# operation -> states in which it may run. Outside them: Disabled -> DisabledException (for
# crypto operations, CreateGrant and rotation settings), anything else -> KMSInvalidStateException.
STATE_RULES: dict[str, frozenset[KeyState]] = {
    **{op: CRYPTO for op in CRYPTO_OPS},
    "DescribeKey": ALL_STATES, "GetKeyPolicy": ALL_STATES, "ListKeyPolicies": ALL_STATES,
    "ListResourceTags": ALL_STATES, "ListGrants": ALL_STATES, "ListAliases": ALL_STATES,
    "DeleteAlias": ALL_STATES, "RetireGrant": ALL_STATES, "RevokeGrant": ALL_STATES,
    "GetKeyLastUsage": ALL_STATES, "ListKeyRotations": frozenset({E, D, PD}),
    "PutKeyPolicy": MANAGE, "TagResource": MANAGE, "UntagResource": MANAGE,
    "UpdateKeyDescription": MANAGE, "CreateAlias": MANAGE, "UpdateAlias": MANAGE,
    "CreateGrant": CRYPTO,
    "EnableKey": frozenset({E, D}), "DisableKey": frozenset({E, D}),
    "EnableKeyRotation": CRYPTO, "DisableKeyRotation": CRYPTO, "RotateKeyOnDemand": CRYPTO,
    "GetKeyRotationStatus": frozenset({E, D, PD}),
    "ScheduleKeyDeletion": MANAGE, "CancelKeyDeletion": frozenset({PD}),
    "GetParametersForImport": MANAGE, "ImportKeyMaterial": MANAGE,
    "DeleteImportedKeyMaterial": MANAGE,
}
DISABLED_ERROR_OPS = CRYPTO_OPS | {"CreateGrant", "EnableKeyRotation", "DisableKeyRotation",
                                   "RotateKeyOnDemand"}

_STATE_PHRASE = {PD: "is pending deletion.", PI: "is pending import.", D: "is disabled.",
                 E: "is enabled."}


def check_state(key: Key, operation: str) -> None:
    """Raise AWS's error when ``operation`` may not run on ``key`` in its current state."""
    allowed = STATE_RULES.get(operation, ALL_STATES)
    if key.state in allowed:
        return
    if operation == "CancelKeyDeletion":
        raise errors.KMSInvalidStateException(f"{key.arn} is not pending deletion.")
    if key.state is D and operation in DISABLED_ERROR_OPS:
        raise errors.DisabledException(f"{key.arn} is disabled.")
    raise errors.KMSInvalidStateException(f"{key.arn} {_STATE_PHRASE[key.state]}")


def utc(when: datetime) -> datetime:
    return when.astimezone(timezone.utc)


def _dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


@dataclass(frozen=True, slots=True)
class KeyMaterial:
    material_id: str
    key_id: str
    hsm_label: str
    created: datetime
    state: MaterialState = MaterialState.CURRENT
    rotation_type: str | None = None          # AUTOMATIC | ON_DEMAND; None for the first material
    rotation_date: datetime | None = None
    public_key: bytes | None = None           # DER SubjectPublicKeyInfo (asymmetric keys)
    imported: bool = False
    fingerprint: str | None = None            # key check value of imported material
    valid_to: datetime | None = None
    expiration_model: str | None = None

    def to_doc(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["created"] = _iso(self.created)
        doc["rotation_date"] = _iso(self.rotation_date)
        doc["valid_to"] = _iso(self.valid_to)
        doc["public_key"] = self.public_key.hex() if self.public_key else None
        return doc

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> KeyMaterial:
        d = dict(doc)
        d["created"] = _dt(d["created"])
        d["rotation_date"] = _dt(d.get("rotation_date"))
        d["valid_to"] = _dt(d.get("valid_to"))
        d["state"] = MaterialState(d["state"])
        d["public_key"] = bytes.fromhex(d["public_key"]) if d.get("public_key") else None
        return cls(**d)


@dataclass(frozen=True, slots=True)
class Key:
    key_id: str
    arn: str
    account: str
    region: str
    created: datetime
    spec: str
    usage: str
    origin: str = "AWS_KMS"
    manager: str = "CUSTOMER"
    description: str = ""
    state: KeyState = KeyState.ENABLED
    policy: str = ""
    deletion_date: datetime | None = None
    pending_window: int | None = None
    state_before_deletion: KeyState | None = None
    rotation_enabled: bool = False
    rotation_period: int | None = None
    next_rotation: datetime | None = None
    on_demand_rotations: int = 0
    current_material: str | None = None
    valid_to: datetime | None = None
    expiration_model: str | None = None
    tags: tuple[tuple[str, str], ...] = field(default_factory=tuple)

    @property
    def enabled(self) -> bool:
        return self.state is KeyState.ENABLED

    def with_(self, **changes: Any) -> Key:
        return replace(self, **changes)

    def tag_dict(self) -> dict[str, str]:
        return dict(self.tags)

    def metadata(self) -> dict[str, Any]:
        """DescribeKey's KeyMetadata (AWS member names)."""
        info = SPECS[self.spec]
        md: dict[str, Any] = {
            "AWSAccountId": self.account, "KeyId": self.key_id, "Arn": self.arn,
            "CreationDate": self.created, "Enabled": self.enabled, "Description": self.description,
            "KeyUsage": self.usage, "KeyState": str(self.state), "Origin": self.origin,
            "KeyManager": self.manager, "CustomerMasterKeySpec": self.spec, "KeySpec": self.spec,
            "MultiRegion": False,
        }
        md.update(metadata_algorithms(info, self.usage))
        if self.state is KeyState.PENDING_DELETION:
            md["DeletionDate"] = self.deletion_date
            md["PendingDeletionWindowInDays"] = self.pending_window
        if self.origin == "EXTERNAL" and self.state is not KeyState.PENDING_IMPORT:
            md["ExpirationModel"] = self.expiration_model or "KEY_MATERIAL_DOES_NOT_EXPIRE"
            if self.valid_to is not None:
                md["ValidTo"] = self.valid_to
        if self.current_material and self.state is not KeyState.PENDING_IMPORT and info.kind == "symmetric":
            md["CurrentKeyMaterialId"] = self.current_material
        return md

    def to_doc(self) -> dict[str, Any]:
        doc = asdict(self)
        for name in ("created", "deletion_date", "next_rotation", "valid_to"):
            doc[name] = _iso(getattr(self, name))
        doc["tags"] = [list(t) for t in self.tags]
        return doc

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> Key:
        d = dict(doc)
        for name in ("created", "deletion_date", "next_rotation", "valid_to"):
            d[name] = _dt(d.get(name))
        d["state"] = KeyState(d["state"])
        if d.get("state_before_deletion"):
            d["state_before_deletion"] = KeyState(d["state_before_deletion"])
        d["tags"] = tuple((k, v) for k, v in d.get("tags", ()))
        return cls(**d)


@dataclass(frozen=True, slots=True)
class Alias:
    name: str            # "alias/..."
    arn: str
    key_id: str
    created: datetime
    updated: datetime

    def to_doc(self) -> dict[str, Any]:
        return {"name": self.name, "arn": self.arn, "key_id": self.key_id,
                "created": _iso(self.created), "updated": _iso(self.updated)}

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> Alias:
        return cls(name=doc["name"], arn=doc["arn"], key_id=doc["key_id"],
                   created=_dt(doc["created"]), updated=_dt(doc["updated"]))  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class Grant:
    grant_id: str
    key_id: str
    key_arn: str
    token: str
    created: datetime
    issuing_account: str
    operations: tuple[str, ...]
    grantee_principal: str | None = None
    retiring_principal: str | None = None
    name: str | None = None
    context_subset: tuple[tuple[str, str], ...] | None = None
    context_equals: tuple[tuple[str, str], ...] | None = None

    def to_doc(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["created"] = _iso(self.created)
        return doc

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> Grant:
        d = dict(doc)
        d["created"] = _dt(d["created"])
        d["operations"] = tuple(d["operations"])
        for name in ("context_subset", "context_equals"):
            if d.get(name) is not None:
                d[name] = tuple((k, v) for k, v in d[name])
        return cls(**d)

    def list_entry(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"KeyId": self.key_arn, "GrantId": self.grant_id, "CreationDate": self.created,
                                 "IssuingAccount": f"arn:aws:iam::{self.issuing_account}:root",
                                 "Operations": list(self.operations)}
        if self.name:
            entry["Name"] = self.name
        if self.grantee_principal:
            entry["GranteePrincipal"] = self.grantee_principal
        if self.retiring_principal:
            entry["RetiringPrincipal"] = self.retiring_principal
        constraints: dict[str, Any] = {}
        if self.context_subset is not None:
            constraints["EncryptionContextSubset"] = dict(self.context_subset)
        if self.context_equals is not None:
            constraints["EncryptionContextEquals"] = dict(self.context_equals)
        if constraints:
            entry["Constraints"] = constraints
        return entry

    def constraints_hold(self, context: dict[str, str]) -> bool:
        if self.context_equals is not None and dict(self.context_equals) != context:
            return False
        if self.context_subset is not None:
            for k, v in self.context_subset:
                if context.get(k) != v:
                    return False
        return True


GRANT_OPERATIONS = (
    "Decrypt", "Encrypt", "GenerateDataKey", "GenerateDataKeyWithoutPlaintext", "ReEncryptFrom",
    "ReEncryptTo", "Sign", "Verify", "GetPublicKey", "CreateGrant", "RetireGrant", "DescribeKey",
    "GenerateDataKeyPair", "GenerateDataKeyPairWithoutPlaintext", "GenerateMac", "VerifyMac",
    "DeriveSharedSecret",
)
# Grant operations that take an encryption context (the only ones a constraint may go with).
CONTEXT_GRANT_OPERATIONS = frozenset({
    "Decrypt", "Encrypt", "GenerateDataKey", "GenerateDataKeyWithoutPlaintext", "ReEncryptFrom",
    "ReEncryptTo", "GenerateDataKeyPair", "GenerateDataKeyPairWithoutPlaintext", "CreateGrant",
    "RetireGrant",
})
