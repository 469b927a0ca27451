"""S3's REST-XML protocol, server side, driven by botocore's ``s3`` service model.

botocore serialises requests and parses responses; this module is the inverse, written
once over the same model (LocalStack's approach): it routes an HTTP request to an operation
(method + bucket/key presence + the query keys and required members in ``requestUri``),
parses URI labels, query string, headers (``x-amz-meta-*`` maps included) and the XML (or
raw) payload into *AWS values* (see gateway/aws/shapes.py), and renders an operation's
output value as status, headers and XML body. Handlers never touch HTTP.

Wire details follow https://docs.aws.amazon.com/AmazonS3/latest/API/Welcome.html and
botocore's parsers: header timestamps are RFC 7231 dates, body timestamps ISO 8601 with
milliseconds, flattened lists repeat the member element, ``xmlAttribute`` members (Grantee
``xsi:type``) are attributes, and every result document is in the
``http://s3.amazonaws.com/doc/2006-03-01/`` namespace.
"""

from __future__ import annotations

import base64
import functools
from collections.abc import Mapping
from datetime import datetime, timezone
from email.utils import format_datetime, parsedate_to_datetime
from typing import Any
from xml.etree import ElementTree
from xml.sax.saxutils import escape, quoteattr

from botocore.model import OperationModel, Shape, StructureShape

from common.errors import AwsError, error_class
from gateway.aws.spec import ServiceSpec, load

S3_NS = "http://s3.amazonaws.com/doc/2006-03-01/"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"

MalformedXML = error_class("MalformedXML", 400)
InvalidArgument = error_class("InvalidArgument", 400)
MethodNotAllowed = error_class("MethodNotAllowed", 405)
NotImplementedS3 = error_class("NotImplemented", 501)

#: S3 sub-resources: a request naming one its operation does not consume is not that operation.
SUBRESOURCES = frozenset({
    "accelerate", "acl", "analytics", "attributes", "cors", "delete", "encryption",
    "intelligent-tiering", "inventory", "legal-hold", "lifecycle", "location", "logging",
    "metadataTable", "metrics", "notification", "object-lock", "ownershipControls", "policy",
    "policyStatus", "publicAccessBlock", "replication", "requestPayment", "restore", "retention",
    "select", "session", "tagging", "torrent", "uploads", "versioning", "versions", "website",
    "renameObject",
})

#: Root element of output documents that are not a payload member.
ROOT_ELEMENTS = {
    "ListBuckets": "ListAllMyBucketsResult", "ListObjects": "ListBucketResult",
    "ListObjectsV2": "ListBucketResult", "GetBucketAcl": "AccessControlPolicy",
    "GetObjectAcl": "AccessControlPolicy", "CreateMultipartUpload": "InitiateMultipartUploadResult",
    "CompleteMultipartUpload": "CompleteMultipartUploadResult", "ListParts": "ListPartsResult",
    "ListMultipartUploads": "ListMultipartUploadsResult", "DeleteObjects": "DeleteResult",
    "GetObjectTagging": "Tagging", "GetBucketTagging": "Tagging",
    "GetBucketVersioning": "VersioningConfiguration", "GetObjectAttributes": "GetObjectAttributesResponse",
}

MALFORMED_XML_MESSAGE = ("The XML you provided was not well-formed or did not validate against our "
                         "published schema")


def _malformed() -> AwsError:
    return MalformedXML(MALFORMED_XML_MESSAGE)


class Route:
    __slots__ = ("name", "method", "has_bucket", "has_key", "uri_query", "required_query", "required_headers")

    def __init__(self, op: OperationModel) -> None:
        http = op.http
        self.name = op.name
        self.method = http["method"]
        path, _, query = http["requestUri"].partition("?")
        self.has_bucket = "{Bucket}" in path
        self.has_key = "{Key+}" in path
        self.uri_query: dict[str, str | None] = {}
        for item in filter(None, query.split("&")):
            k, eq, v = item.partition("=")
            if k != "x-id":
                self.uri_query[k] = v if eq else None
        shape = op.input_shape
        required = set(shape.required_members) if shape is not None else set()
        self.required_query: list[str] = []
        self.required_headers: list[str] = []
        if shape is not None:
            for name, member in shape.members.items():
                loc = member.serialization.get("location")
                if name in required and loc == "querystring":
                    self.required_query.append(member.serialization.get("name", name))
                elif name in required and loc == "header":
                    self.required_headers.append(member.serialization.get("name", name).lower())

    def score(self, query: Mapping[str, str], headers: Mapping[str, str]) -> tuple[int, int, int] | None:
        for k, v in self.uri_query.items():
            if k not in query or (v is not None and query[k] != v):
                return None
        if any(q not in query for q in self.required_query):
            return None
        if any(h not in headers for h in self.required_headers):
            return None
        return (len(self.uri_query), len(self.required_query), len(self.required_headers))


class RestXmlProtocol:
    """Routing, request parsing and response rendering for one REST-XML service."""

    def __init__(self, spec: ServiceSpec, operations: tuple[str, ...]) -> None:
        self.spec = spec
        self.routes: list[Route] = []
        for name in operations:
            op = spec.operation(name)
            if op is not None:
                self.routes.append(Route(op))

    # ---- routing -----------------------------------------------------------------------

    def route(self, method: str, bucket: str | None, key: str | None, query: Mapping[str, str],
              headers: Mapping[str, str]) -> OperationModel:
        lower_headers = {k.lower(): v for k, v in headers.items()}
        best: tuple[tuple[int, int, int], Route] | None = None
        method_seen = False
        for r in self.routes:
            if r.has_bucket != bool(bucket) or r.has_key != bool(key):
                continue
            if r.method != method:
                continue
            method_seen = True
            score = r.score(query, lower_headers)
            if score is not None and (best is None or score > best[0]):
                best = (score, r)
        if best is None:
            if not method_seen:
                raise MethodNotAllowed("The specified method is not allowed against this resource.")
            raise NotImplementedS3("A header you provided implies functionality that is not implemented")
        route = best[1]
        extra = {k for k in query if k in SUBRESOURCES} - set(route.uri_query)
        if extra:
            raise NotImplementedS3("A header you provided implies functionality that is not implemented")
        op = self.spec.operation(route.name)
        assert op is not None
        return op

    # ---- requests ----------------------------------------------------------------------

    def parse_request(self, op: OperationModel, *, bucket: str | None, key: str | None,
                      query: Mapping[str, str], headers: Mapping[str, str], body: bytes | None) -> dict[str, Any]:
        """AWS value of the operation's input (streaming payloads are left out)."""
        shape = op.input_shape
        if shape is None:
            return {}
        lower = {k.lower(): v for k, v in headers.items()}
        out: dict[str, Any] = {}
        payload = shape.serialization.get("payload")
        for name, member in shape.members.items():
            loc = member.serialization.get("location")
            wire = member.serialization.get("name", name)
            if loc == "uri":
                value = bucket if wire == "Bucket" else key
                if value:
                    out[name] = value
            elif loc == "querystring":
                if wire in query:
                    out[name] = _scalar_from_text(member, query[wire], where="query")
            elif loc == "header":
                raw = lower.get(wire.lower())
                if raw is not None:
                    value = _scalar_from_text(member, raw, where="header")
                    if value is not None:
                        out[name] = value
            elif loc == "headers":
                prefix = wire.lower()
                values = {k[len(prefix):]: v for k, v in lower.items() if k.startswith(prefix) and len(k) > len(prefix)}
                if values:
                    out[name] = values
            elif name == payload:
                if member.type_name == "structure":
                    if body:
                        out[name] = parse_xml_document(body, member)
                elif member.type_name in ("string",) and body is not None:
                    try:
                        out[name] = body.decode("utf-8")
                    except UnicodeDecodeError:
                        raise _malformed() from None
                elif member.type_name == "blob" and not member.serialization.get("streaming") \
                        and not getattr(member, "serialization", {}).get("eventstream") and body is not None:
                    out[name] = body
        return out

    # ---- responses ---------------------------------------------------------------------

    def render(self, op: OperationModel, value: Mapping[str, Any]) -> tuple[int, dict[str, str], bytes | None]:
        """(status, headers, body) of an output value; body None when the operation has none
        (streaming payloads are written by the caller)."""
        status = int(op.http.get("responseCode", 200))
        headers: dict[str, str] = {}
        shape = op.output_shape
        if shape is None:
            return status, headers, None
        payload = shape.serialization.get("payload")
        body_members: dict[str, tuple[Shape, Any]] = {}
        for name, member in shape.members.items():
            if name not in value:
                continue
            v = value[name]
            loc = member.serialization.get("location")
            wire = member.serialization.get("name", name)
            if loc == "header":
                headers[wire] = _header_text(member, v)
            elif loc == "headers":
                for k, x in v.items():
                    headers[f"{wire}{k}"] = str(x)
            elif loc == "statusCode":
                status = int(v)
            elif loc is None:
                body_members[name] = (member, v)
        body: bytes | None = None
        if payload is not None:
            if payload in body_members:
                member, v = body_members[payload]
                if member.type_name == "structure":
                    root = member.serialization.get("name", member.name)
                    body = xml_document(root, member, v)
                elif member.type_name == "string":
                    body = str(v).encode()
                elif member.type_name == "blob" and not member.serialization.get("streaming"):
                    body = bytes(v)
        elif op.name == "GetBucketLocation":
            text = escape(value.get("LocationConstraint") or "")
            body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<LocationConstraint xmlns="{S3_NS}">'
                    f"{text}</LocationConstraint>").encode()
        elif any(m.serialization.get("location") is None for m in shape.members.values()):
            root = ROOT_ELEMENTS.get(op.name, shape.name)
            body = xml_document(root, shape, {k: v for k, (_, v) in body_members.items()})
        if body is not None:
            headers["Content-Type"] = "application/xml"
        return status, headers, body


@functools.lru_cache(maxsize=1)
def s3_protocol() -> RestXmlProtocol:
    """S3's protocol over the operations the S3 service's proto has RPCs for."""
    from strongroom.s3.v1 import s3_pb2

    operations = tuple(s3_pb2.DESCRIPTOR.services_by_name["S3"].methods_by_name)
    return RestXmlProtocol(load("s3"), operations)


# ---- scalars ------------------------------------------------------------------------------

def parse_http_date(text: str) -> datetime | None:
    text = text.strip()
    try:
        dt = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        dt = None
    if dt is None:
        try:
            dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            return None
    return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)


def _scalar_from_text(shape: Shape, text: str, where: str) -> Any:
    kind = shape.type_name
    if kind == "string":
        return text
    if kind in ("integer", "long"):
        try:
            return int(text.strip())
        except ValueError:
            if where == "header" and shape.name in ("ContentLength",):
                raise InvalidArgument(f"Invalid {shape.name}") from None
            raise InvalidArgument(f"Provided {shape.name} not an integer or within integer range") from None
    if kind == "boolean":
        return text.strip().lower() == "true"
    if kind == "timestamp":
        return parse_http_date(text)   # an unparsable date is ignored, as S3 does
    if kind == "blob":
        return text.encode()
    if kind == "list":
        return [t.strip() for t in text.split(",") if t.strip()]
    return text


def _header_text(shape: Shape, v: Any) -> str:
    kind = shape.type_name
    if kind == "timestamp":
        return format_datetime(v.astimezone(timezone.utc), usegmt=True)
    if kind == "boolean":
        return "true" if v else "false"
    if kind == "list":
        return ",".join(str(x) for x in v)
    if kind == "blob":
        return base64.b64encode(v).decode()
    return str(v)


def _xml_text(shape: Shape, v: Any) -> str:
    kind = shape.type_name
    if kind == "timestamp":
        v = v.astimezone(timezone.utc)
        return v.strftime("%Y-%m-%dT%H:%M:%S.") + f"{v.microsecond // 1000:03d}Z"
    if kind == "boolean":
        return "true" if v else "false"
    if kind == "blob":
        return base64.b64encode(v).decode()
    return escape(str(v))


# ---- XML out ------------------------------------------------------------------------------

def xml_document(root: str, shape: Shape, value: Mapping[str, Any]) -> bytes:
    parts = ['<?xml version="1.0" encoding="UTF-8"?>\n']
    _write_structure(parts, root, shape, value, root_ns=S3_NS)
    return "".join(parts).encode("utf-8")


def _write(parts: list[str], name: str, shape: Shape, v: Any) -> None:
    kind = shape.type_name
    if kind == "structure":
        _write_structure(parts, name, shape, v)
    elif kind == "list":
        parts.append(f"<{name}>")
        item = shape.member.serialization.get("name", "member")
        for x in v:
            _write(parts, item, shape.member, x)
        parts.append(f"</{name}>")
    elif kind == "map":
        parts.append(f"<{name}>")
        for k, x in v.items():
            parts.append(f"<entry><key>{escape(str(k))}</key>")
            _write(parts, "value", shape.value, x)
            parts.append("</entry>")
        parts.append(f"</{name}>")
    else:
        parts.append(f"<{name}>{_xml_text(shape, v)}</{name}>")


def _write_structure(parts: list[str], name: str, shape: Shape, v: Mapping[str, Any], root_ns: str | None = None) -> None:
    attrs = []
    if root_ns:
        attrs.append(f' xmlns="{root_ns}"')
    ns = shape.serialization.get("xmlNamespace")
    if isinstance(ns, dict) and ns.get("prefix"):
        attrs.append(f' xmlns:{ns["prefix"]}="{ns["uri"]}"')
    members = shape.members if isinstance(shape, StructureShape) else {}
    for mname, member in members.items():
        if member.serialization.get("xmlAttribute") and mname in v:
            attrs.append(f" {member.serialization.get('name', mname)}={quoteattr(str(v[mname]))}")
    parts.append(f"<{name}{''.join(attrs)}>")
    for mname, member in members.items():
        if mname not in v or member.serialization.get("xmlAttribute") or member.serialization.get("location"):
            continue
        x = v[mname]
        wire = member.serialization.get("name", mname)
        if member.type_name == "list" and (member.serialization.get("flattened")
                                           or getattr(member, "serialization", {}).get("flattened")):
            for item in x:
                _write(parts, wire, member.member, item)
        else:
            _write(parts, wire, member, x)
    parts.append(f"</{name}>")


# ---- XML in -------------------------------------------------------------------------------

MAX_XML_BYTES = 8 * 1024 * 1024


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def parse_xml_document(body: bytes, shape: Shape) -> dict[str, Any]:
    if len(body) > MAX_XML_BYTES:
        raise _malformed()
    if b"<!DOCTYPE" in body or b"<!ENTITY" in body:
        raise _malformed()
    try:
        root = ElementTree.fromstring(body)
    except ElementTree.ParseError:
        raise _malformed() from None
    value = _read(root, shape)
    return value if isinstance(value, dict) else {}


def _read(elem: ElementTree.Element, shape: Shape) -> Any:
    kind = shape.type_name
    if kind == "structure":
        out: dict[str, Any] = {}
        children: dict[str, list[ElementTree.Element]] = {}
        for child in elem:
            children.setdefault(_local(child.tag), []).append(child)
        attrs = {(_local(k) if k.startswith("{") else k.split(":")[-1]): val for k, val in elem.attrib.items()}
        for mname, member in shape.members.items():
            wire = member.serialization.get("name", mname)
            if member.serialization.get("xmlAttribute"):
                local = wire.split(":")[-1]
                if local in attrs:
                    out[mname] = attrs[local]
                continue
            found = children.get(wire)
            if not found:
                continue
            if member.type_name == "list" and member.serialization.get("flattened"):
                out[mname] = [_read(c, member.member) for c in found]
            else:
                out[mname] = _read(found[0], member)
        return out
    if kind == "list":
        item = shape.member.serialization.get("name", "member")
        return [_read(c, shape.member) for c in elem if _local(c.tag) == item]
    if kind == "map":
        result = {}
        for entry in elem:
            k = entry.find("key")
            val = entry.find("value")
            if k is not None and val is not None:
                result[k.text or ""] = _read(val, shape.value)
        return result
    text = elem.text or ""
    if kind == "boolean":
        t = text.strip().lower()
        if t not in ("true", "false"):
            raise _malformed()
        return t == "true"
    if kind in ("integer", "long"):
        try:
            return int(text.strip())
        except ValueError:
            raise _malformed() from None
    if kind == "timestamp":
        dt = parse_http_date(text)
        if dt is None:
            raise _malformed()
        return dt
    if kind == "blob":
        try:
            return base64.b64decode(text)
        except ValueError:
            raise _malformed() from None
    return text
