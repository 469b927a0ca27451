"""Identifiers: key ids, key ARNs, alias names and alias ARNs, and their validation.

Which identifier each operation accepts follows the AWS API reference: cryptographic
operations, DescribeKey and GetPublicKey accept all four forms; management operations take a
key id or key ARN only.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

from services.kms.domain import errors

ALIAS_PREFIX = "alias/"
RESERVED_ALIAS_PREFIX = "alias/aws/"
ALIAS_RE = re.compile(r"^alias/[a-zA-Z0-9/_-]+$")
_UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_ARN_RE = re.compile(r"^arn:(?P<partition>aws[a-z-]*):kms:(?P<region>[a-z0-9-]*):(?P<account>\d*):"
                     r"(?P<kind>key|alias)/(?P<rest>.+)$")


def new_key_id() -> str:
    return str(uuid.uuid4())


def key_arn(region: str, account: str, key_id: str) -> str:
    return f"arn:aws:kms:{region}:{account}:key/{key_id}"


def alias_arn(region: str, account: str, alias_name: str) -> str:
    return f"arn:aws:kms:{region}:{account}:{alias_name}"


def is_key_id(value: str) -> bool:
    return bool(_UUID_RE.match(value))


@dataclass(frozen=True, slots=True)
class KeyRef:
    """A parsed KeyId parameter: either a key (by id) or an alias (by name)."""

    raw: str
    key_id: str | None = None
    alias_name: str | None = None
    foreign: bool = False       # an ARN of another account or Region


def parse_key_ref(raw: str, region: str, account: str, *, allow_alias: bool) -> KeyRef:
    """Parse a KeyId parameter; raise NotFoundException as AWS does for malformed ones."""
    m = _ARN_RE.match(raw)
    if m:
        foreign = m["region"] != region or m["account"] != account
        if m["kind"] == "key":
            if not is_key_id(m["rest"]):
                raise errors.NotFoundException(f"Invalid keyId '{raw}'")
            return KeyRef(raw, key_id=m["rest"], foreign=foreign)
        if not allow_alias:
            raise errors.NotFoundException(f"Invalid keyId '{raw}'")
        return KeyRef(raw, alias_name="alias/" + m["rest"], foreign=foreign)
    if raw.startswith("arn:"):
        raise errors.NotFoundException(f"Invalid arn {raw}")
    if raw.startswith(ALIAS_PREFIX):
        if not allow_alias:
            raise errors.NotFoundException(f"Invalid keyId '{raw}'")
        return KeyRef(raw, alias_name=raw)
    if not is_key_id(raw):
        raise errors.NotFoundException(f"Invalid keyId '{raw}'")
    return KeyRef(raw, key_id=raw)


def validate_alias_name(name: str, *, allow_reserved: bool = False) -> None:
    """CreateAlias/UpdateAlias/DeleteAlias alias-name rules."""
    if not name.startswith(ALIAS_PREFIX):
        raise errors.ValidationException(
            'Alias must start with the prefix "alias/". Please see '
            "https://docs.aws.amazon.com/kms/latest/developerguide/kms-alias.html")
    if not ALIAS_RE.match(name) or name == ALIAS_PREFIX:
        raise errors.ValidationException(
            f"1 validation error detected: Value '{name}' at 'aliasName' failed to satisfy constraint: "
            "Member must satisfy regular expression pattern: ^[a-zA-Z0-9:/_-]+$")
    if name.startswith(RESERVED_ALIAS_PREFIX) and not allow_reserved:
        raise errors.NotAuthorizedException("")
