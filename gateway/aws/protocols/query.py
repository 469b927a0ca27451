"""AWS Query protocol (IAM, STS): form-encoded input, XML output and errors.

Input: ``Action=<Op>&Version=<api version>&...`` in a ``application/x-www-form-urlencoded``
POST body or in the query string of a GET. Members are named by their ``locationName`` (else
the member name); nesting uses dots:

* structure member:  ``Parent.Child=v``
* list (not flattened): ``Tags.member.1.Key=k`` (1-based; the element name is the list
  member's ``locationName``, default ``member``); an empty list is ``Tags=``
* flattened list:     ``Name.1=v``
* map:                ``Attributes.entry.1.key=k&Attributes.entry.1.value=v``

:func:`parse_request` yields the typed AWS value (see gateway/aws/shapes.py); values that
cannot be converted to the member's type give ``InvalidParameterValue``.

Output::

    <OpResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/">
      <OpResult>...members...</OpResult>            (absent when the operation has no output)
      <ResponseMetadata><RequestId>uuid</RequestId></ResponseMetadata>
    </OpResponse>

Errors (HTTP status per error)::

    <ErrorResponse xmlns="..."><Error><Type>Sender</Type><Code>NoSuchEntity</Code>
      <Message>...</Message></Error><RequestId>uuid</RequestId></ErrorResponse>

https://smithy.io/2.0/aws/protocols/aws-query-protocol.html
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Iterable
from datetime import datetime, timezone
from typing import Any
from xml.sax.saxutils import escape

from aiohttp import web
from botocore.model import Shape

from common.errors import AwsError
from gateway.aws.errors import InvalidParameterValue, for_query

CONTENT_TYPE = "text/xml"

Tree = dict[str, Any]


def build_tree(params: Iterable[tuple[str, str]]) -> Tree:
    """``a.b.1.c=v`` pairs -> nested dicts; a node that is only a value stays a str."""
    root: Tree = {}
    for key, value in params:
        parts = key.split(".")
        node = root
        for part in parts[:-1]:
            child = node.get(part)
            if child is None or isinstance(child, str):
                child = node[part] = {} if child is None else {"": child}
            node = child
        last = parts[-1]
        existing = node.get(last)
        if isinstance(existing, dict):
            existing[""] = value
        else:
            node[last] = value
    return root


def _wire_name(name: str, member: Shape) -> str:
    return str(member.serialization.get("name", name))


def _bad_value(path: str, value: str, kind: str) -> AwsError:
    return InvalidParameterValue(f"Value ({value}) for parameter {path} is invalid. "
                                 f"Expected {kind}.")


def _scalar(shape: Shape, raw: Any, path: str) -> Any:
    if isinstance(raw, dict):
        raw = raw.get("", None)
        if raw is None:
            raise InvalidParameterValue(f"Parameter {path} must be a single value.")
    kind = shape.type_name
    if kind == "string":
        return raw
    if kind in ("integer", "long"):
        try:
            return int(raw)
        except ValueError:
            raise _bad_value(path, raw, "an integer") from None
    if kind in ("float", "double"):
        try:
            return float(raw)
        except ValueError:
            raise _bad_value(path, raw, "a number") from None
    if kind == "boolean":
        low = raw.lower()
        if low in ("true", "false"):
            return low == "true"
        raise _bad_value(path, raw, "a boolean")
    if kind == "blob":
        try:
            return base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError):
            raise _bad_value(path, "...", "base64 data") from None
    if kind == "timestamp":
        try:
            if raw.replace(".", "", 1).isdigit():
                return datetime.fromtimestamp(float(raw), timezone.utc)
            parsed = datetime.fromisoformat(raw.replace("Z", "+00:00"))
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
        except (ValueError, OverflowError, OSError):
            raise _bad_value(path, raw, "an ISO 8601 timestamp") from None
    return raw


def _indexed(node: Any) -> list[Any]:
    if not isinstance(node, dict):
        return []
    items = []
    for k, v in node.items():
        if k.isdigit():
            items.append((int(k), v))
    items.sort(key=lambda kv: kv[0])
    return [v for _, v in items]


def _value(shape: Shape, node: Any, path: str) -> Any:
    kind = shape.type_name
    if kind == "structure":
        if isinstance(node, str):
            if node == "":
                return {}
            raise InvalidParameterValue(f"Parameter {path} must be a structure.")
        return _structure(shape, node, path)
    if kind == "list":
        if isinstance(node, str):
            if node == "":
                return []
            raise InvalidParameterValue(f"Parameter {path} must be a list.")
        if shape.serialization.get("flattened"):
            elements = _indexed(node)
        else:
            elements = _indexed(node.get(_wire_name("member", shape.member), {}))
        return [_value(shape.member, e, path) for e in elements]
    if kind == "map":
        if isinstance(node, str):
            if node == "":
                return {}
            raise InvalidParameterValue(f"Parameter {path} must be a map.")
        entries = _indexed(node if shape.serialization.get("flattened") else node.get("entry", {}))
        kname = _wire_name("key", shape.key)
        vname = _wire_name("value", shape.value)
        out: dict[str, Any] = {}
        for e in entries:
            if not isinstance(e, dict) or kname not in e:
                continue
            out[_scalar(shape.key, e[kname], path)] = (
                _value(shape.value, e[vname], path) if vname in e else None)
        return out
    return _scalar(shape, node, path)


def _structure(shape: Shape, node: Tree, path: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, member in shape.members.items():
        wire = _wire_name(name, member)
        if wire in node:
            out[name] = _value(member, node[wire], f"{path}.{wire}" if path else wire)
    return out


def parse_request(shape: Shape | None, params: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """The typed AWS input value of Query parameters (Action/Version included or not)."""
    if shape is None:
        return {}
    return _structure(shape, build_tree(params), "")


# ---------------------------------------------------------------------------------------------
# XML output


def iso8601(value: datetime) -> str:
    value = value.astimezone(timezone.utc)
    if value.microsecond:
        return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def _text(shape: Shape, value: Any) -> str:
    kind = shape.type_name
    if kind == "boolean":
        return "true" if value else "false"
    if kind == "timestamp":
        if isinstance(value, (int, float)):
            value = datetime.fromtimestamp(value, timezone.utc)
        return iso8601(value)
    if kind == "blob":
        if isinstance(value, str):
            return value
        return base64.b64encode(value).decode("ascii")
    return escape(str(value))


def _write(shape: Shape, value: Any, tag: str, out: list[str]) -> None:
    kind = shape.type_name
    if kind == "structure":
        out.append(f"<{tag}>")
        _write_members(shape, value, out)
        out.append(f"</{tag}>")
    elif kind == "list":
        item_tag = _wire_name("member", shape.member)
        if shape.serialization.get("flattened"):
            for item in value:
                _write(shape.member, item, tag, out)
        else:
            out.append(f"<{tag}>")
            for item in value:
                _write(shape.member, item, item_tag, out)
            out.append(f"</{tag}>")
    elif kind == "map":
        kname = _wire_name("key", shape.key)
        vname = _wire_name("value", shape.value)
        flat = shape.serialization.get("flattened")
        if not flat:
            out.append(f"<{tag}>")
        for k, v in value.items():
            out.append(f"<{tag}>" if flat else "<entry>")
            _write(shape.key, k, kname, out)
            _write(shape.value, v, vname, out)
            out.append(f"</{tag}>" if flat else "</entry>")
        if not flat:
            out.append(f"</{tag}>")
    else:
        out.append(f"<{tag}>{_text(shape, value)}</{tag}>")


def _write_members(shape: Shape, value: dict[str, Any], out: list[str]) -> None:
    for name, member in shape.members.items():
        v = value.get(name)
        if v is None:
            continue
        _write(member, v, _wire_name(name, member), out)


def serialize(operation: str, output: Shape | None, value: dict[str, Any], namespace: str,
              request_id: str) -> bytes:
    out = [f'<{operation}Response xmlns="{namespace}">']
    if output is not None:
        wrapper = output.serialization.get("resultWrapper", f"{operation}Result")
        out.append(f"<{wrapper}>")
        _write_members(output, value, out)
        out.append(f"</{wrapper}>")
    out.append(f"<ResponseMetadata><RequestId>{request_id}</RequestId></ResponseMetadata>"
               f"</{operation}Response>")
    return "".join(out).encode("utf-8")


def response(operation: str, output: Shape | None, value: dict[str, Any], namespace: str,
             request_id: str) -> web.Response:
    return web.Response(
        body=serialize(operation, output, value, namespace, request_id),
        headers={"Content-Type": CONTENT_TYPE, "x-amzn-RequestId": request_id},
    )


def error_body(err: AwsError, namespace: str, request_id: str) -> tuple[bytes, int]:
    code, status = for_query(err)
    fault = "Sender" if status < 500 else "Receiver"
    ns = f' xmlns="{namespace}"' if namespace else ""
    body = (f"<ErrorResponse{ns}><Error><Type>{fault}</Type><Code>{escape(code)}</Code>"
            f"<Message>{escape(err.message)}</Message></Error>"
            f"<RequestId>{request_id}</RequestId></ErrorResponse>")
    return body.encode("utf-8"), status


def error_response(err: AwsError, namespace: str, request_id: str) -> web.Response:
    body, status = error_body(err, namespace, request_id)
    return web.Response(status=status, body=body,
                        headers={"Content-Type": CONTENT_TYPE, "x-amzn-RequestId": request_id})


Parser = Callable[[Shape | None, Iterable[tuple[str, str]]], dict[str, Any]]
