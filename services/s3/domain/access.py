"""S3 access control values: ACLs, Block Public Access, Object Ownership, public policies.

* ACLs: https://docs.aws.amazon.com/AmazonS3/latest/userguide/acl-overview.html (canned
  ACLs, grantee types, permissions). A grant is (grantee kind, grantee value, permission);
  kinds are ``id`` (canonical user id), ``uri`` (group) and ``email``.
* Object Ownership: https://docs.aws.amazon.com/AmazonS3/latest/userguide/about-object-ownership.html
  BucketOwnerEnforced (the default for new buckets) disables ACLs: they grant nothing and
  requests that set any ACL other than the owner's full control fail with
  AccessControlListNotSupported.
* Block Public Access: https://docs.aws.amazon.com/AmazonS3/latest/userguide/access-control-block-public-access.html
  (all four settings on for new buckets); "public" for ACLs and policies as defined there.

Pure functions; the service decides with them.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any

from services.s3.domain.errors import InvalidArgument, MalformedACLError

ALL_USERS = "http://acs.amazonaws.com/groups/global/AllUsers"
AUTHENTICATED_USERS = "http://acs.amazonaws.com/groups/global/AuthenticatedUsers"
LOG_DELIVERY = "http://acs.amazonaws.com/groups/s3/LogDelivery"
PUBLIC_GROUPS = frozenset({ALL_USERS, AUTHENTICATED_USERS})
PERMISSIONS = ("FULL_CONTROL", "WRITE", "WRITE_ACP", "READ", "READ_ACP")

BUCKET_CANNED = ("private", "public-read", "public-read-write", "authenticated-read", "log-delivery-write")
OBJECT_CANNED = ("private", "public-read", "public-read-write", "authenticated-read", "aws-exec-read",
                 "bucket-owner-read", "bucket-owner-full-control")

OWNERSHIP_VALUES = ("BucketOwnerPreferred", "ObjectWriter", "BucketOwnerEnforced")


def canonical_id(account_id: str) -> str:
    """A stable 64-hex canonical user id for an account (S3's canonical ID format)."""
    return hashlib.sha256(f"strongroom-canonical-user:{account_id}".encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Grant:
    kind: str          # "id" | "uri" | "email"
    value: str
    permission: str

    def to_json(self) -> list[str]:
        return [self.kind, self.value, self.permission]


@dataclass(frozen=True, slots=True)
class Acl:
    owner_id: str
    grants: tuple[Grant, ...] = field(default_factory=tuple)

    def to_json(self) -> str:
        return json.dumps({"owner": self.owner_id, "grants": [g.to_json() for g in self.grants]})

    @classmethod
    def from_json(cls, text: str | None, default_owner: str) -> Acl:
        if not text:
            return cls(default_owner, (Grant("id", default_owner, "FULL_CONTROL"),))
        raw = json.loads(text)
        return cls(raw["owner"], tuple(Grant(*g) for g in raw["grants"]))

    def is_public(self) -> bool:
        return any(g.kind == "uri" and g.value in PUBLIC_GROUPS for g in self.grants)

    def only_owner_full_control(self) -> bool:
        return all(g.kind == "id" and g.value == self.owner_id and g.permission == "FULL_CONTROL"
                   for g in self.grants)


def canned_acl(name: str, owner_id: str, *, bucket_owner_id: str | None = None,
               for_bucket: bool) -> Acl:
    allowed = BUCKET_CANNED if for_bucket else OBJECT_CANNED
    if name not in allowed:
        raise InvalidArgument("")
    own = Grant("id", owner_id, "FULL_CONTROL")
    grants: list[Grant] = [own]
    if name == "public-read":
        grants.append(Grant("uri", ALL_USERS, "READ"))
    elif name == "public-read-write":
        grants += [Grant("uri", ALL_USERS, "READ"), Grant("uri", ALL_USERS, "WRITE")]
    elif name == "authenticated-read":
        grants.append(Grant("uri", AUTHENTICATED_USERS, "READ"))
    elif name == "log-delivery-write":
        grants += [Grant("uri", LOG_DELIVERY, "WRITE"), Grant("uri", LOG_DELIVERY, "READ_ACP")]
    elif name in ("bucket-owner-read", "bucket-owner-full-control") and bucket_owner_id \
            and bucket_owner_id != owner_id:
        grants.append(Grant("id", bucket_owner_id, "READ" if name == "bucket-owner-read" else "FULL_CONTROL"))
    return Acl(owner_id, tuple(grants))


_GRANT_ITEM = re.compile(r'\s*(id|uri|emailAddress)\s*=\s*"?([^",]*)"?\s*(?:,|$)', re.IGNORECASE)

GRANT_HEADERS = {  # member name -> permission
    "GrantFullControl": "FULL_CONTROL", "GrantRead": "READ", "GrantReadACP": "READ_ACP",
    "GrantWrite": "WRITE", "GrantWriteACP": "WRITE_ACP",
}


def grants_from_headers(headers: dict[str, str]) -> list[Grant]:
    """``x-amz-grant-*`` values (``id="..", uri=".."`` lists) -> grants."""
    out: list[Grant] = []
    for member, permission in GRANT_HEADERS.items():
        text = headers.get(member)
        if not text:
            continue
        pos = 0
        while pos < len(text):
            m = _GRANT_ITEM.match(text, pos)
            if not m or m.end() == pos:
                raise InvalidArgument("Invalid grantee in header")
            kind = m.group(1).lower()
            out.append(Grant("email" if kind == "emailaddress" else kind, m.group(2), permission))
            pos = m.end()
    return out


def acl_from_policy_doc(doc: dict[str, Any], owner_id: str) -> Acl:
    """An AccessControlPolicy (as parsed from XML into AWS member names) -> Acl."""
    owner = (doc.get("Owner") or {}).get("ID") or owner_id
    grants: list[Grant] = []
    for g in doc.get("Grants") or []:
        grantee = g.get("Grantee") or {}
        perm = g.get("Permission")
        if perm not in PERMISSIONS:
            raise MalformedACLError("The XML you provided was not well-formed or did not validate "
                                    "against our published schema")
        gtype = grantee.get("Type")
        if gtype == "CanonicalUser" and grantee.get("ID"):
            grants.append(Grant("id", grantee["ID"], perm))
        elif gtype == "Group" and grantee.get("URI"):
            grants.append(Grant("uri", grantee["URI"], perm))
        elif gtype == "AmazonCustomerByEmail" and grantee.get("EmailAddress"):
            grants.append(Grant("email", grantee["EmailAddress"], perm))
        else:
            raise MalformedACLError("The XML you provided was not well-formed or did not validate "
                                    "against our published schema")
    return Acl(owner, tuple(grants))


def acl_to_members(acl: Acl) -> dict[str, Any]:
    """Acl -> the AWS members Owner / Grants of GetBucketAcl / GetObjectAcl."""
    grants = []
    for g in acl.grants:
        if g.kind == "id":
            grantee = {"Type": "CanonicalUser", "ID": g.value}
        elif g.kind == "uri":
            grantee = {"Type": "Group", "URI": g.value}
        else:
            grantee = {"Type": "AmazonCustomerByEmail", "EmailAddress": g.value}
        grants.append({"Grantee": grantee, "Permission": g.permission})
    return {"Owner": {"ID": acl.owner_id}, "Grants": grants}


def acl_allows(acl: Acl, *, caller_canonical_id: str | None, authenticated: bool, permission: str,
               ignore_public: bool) -> bool:
    """Does the ACL give ``permission`` to this caller? FULL_CONTROL implies every permission."""
    for g in acl.grants:
        if g.permission not in (permission, "FULL_CONTROL"):
            continue
        if g.kind == "id" and caller_canonical_id and g.value == caller_canonical_id:
            return True
        if g.kind == "uri" and not ignore_public:
            if g.value == ALL_USERS:
                return True
            if g.value == AUTHENTICATED_USERS and authenticated:
                return True
    return False


# ---- Block Public Access ---------------------------------------------------------------

BPA_FIELDS = ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")


@dataclass(frozen=True, slots=True)
class PublicAccessBlock:
    block_public_acls: bool = False
    ignore_public_acls: bool = False
    block_public_policy: bool = False
    restrict_public_buckets: bool = False

    @classmethod
    def all_on(cls) -> PublicAccessBlock:
        return cls(True, True, True, True)

    def to_members(self) -> dict[str, bool]:
        return dict(zip(BPA_FIELDS, (self.block_public_acls, self.ignore_public_acls,
                                     self.block_public_policy, self.restrict_public_buckets)))

    def to_json(self) -> str:
        return json.dumps(self.to_members())

    @classmethod
    def from_members(cls, members: dict[str, Any]) -> PublicAccessBlock:
        return cls(*(bool(members.get(f, False)) for f in BPA_FIELDS))

    @classmethod
    def from_json(cls, text: str | None) -> PublicAccessBlock | None:
        return None if text is None else cls.from_members(json.loads(text))


# ---- public bucket policies ------------------------------------------------------------

# Condition keys whose fixed values make a statement non-public (AWS's list, abridged).
_RESTRICTING_KEYS = frozenset(k.lower() for k in (
    "aws:SourceArn", "aws:SourceAccount", "aws:SourceOwner", "aws:SourceVpc", "aws:SourceVpce",
    "aws:SourceIp", "aws:PrincipalAccount", "aws:PrincipalArn", "aws:PrincipalOrgID",
    "aws:PrincipalOrgPaths", "aws:userid", "aws:username", "s3:DataAccessPointAccount",
    "s3:DataAccessPointArn", "aws:SourceOrgID", "aws:SourceOrgPaths",
))


def _principal_is_wildcard(principal: Any) -> bool:
    if principal == "*":
        return True
    if isinstance(principal, dict):
        aws = principal.get("AWS")
        values = aws if isinstance(aws, list) else [aws]
        return "*" in values
    return False


def policy_is_public(policy_text: str | None) -> bool:
    """Whether a bucket policy grants public access (an Allow to ``*`` not pinned by a
    restricting condition with fixed values)."""
    if not policy_text:
        return False
    try:
        doc = json.loads(policy_text)
    except ValueError:
        return False
    statements = doc.get("Statement", [])
    if isinstance(statements, dict):
        statements = [statements]
    for st in statements:
        if not isinstance(st, dict) or st.get("Effect") != "Allow":
            continue
        if "NotPrincipal" in st:
            return True
        if not _principal_is_wildcard(st.get("Principal")):
            continue
        restricted = False
        for op, block in (st.get("Condition") or {}).items():
            if not isinstance(block, dict):
                continue
            if "like" in op.lower() or op.lower().startswith("null"):
                pass
            for key, values in block.items():
                vals = values if isinstance(values, list) else [values]
                if key.lower() in _RESTRICTING_KEYS and not any("*" in str(v) for v in vals):
                    if key.lower() == "aws:sourceip" and any(str(v).endswith("/0") for v in vals):
                        continue
                    restricted = True
        if not restricted:
            return True
    return False
