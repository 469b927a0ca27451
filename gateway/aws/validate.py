"""Input validation against a botocore input shape, with AWS's exact messages.

Input is the *typed* AWS value of a request (see gateway/aws/shapes.py: str, int, float, bool,
bytes for blobs, datetime for timestamps, list, dict), produced by a protocol parser that has
already rejected wrong JSON types. This module checks the model's constraints, which
botocore's own ``ParamValidator`` only partly checks (it skips ``max``, ``pattern``, ``enum``):

* required members:        ``Value null at 'keyId' failed to satisfy constraint: Member must not be null``
* string / blob / list / map length (``min``/``max``; strings in characters, blobs in bytes):
  ``Member must have length greater than or equal to 1`` / ``... less than or equal to 4096``
* integer / long / float range: ``Member must have value greater than or equal to 1``
* enums:                   ``Member must satisfy enum value set: [A, B]``
* patterns (Java ``matches`` semantics, i.e. full match):
  ``Member must satisfy regular expression pattern: <pattern>``

Messages name the member by its path in lowerCamelCase (``advancedSecurityOptions.sAMLOptions.x``;
list elements ``tags.1.member.key``, 1-based) and quote the value (``Value 'abc' at 'name'``) unless
the shape is ``sensitive`` or a blob, whose values AWS never echoes (``Value at 'plaintext'``).
All violations are collected, and reported as AWS does::

    1 validation error detected: Value at 'plaintext' failed to satisfy constraint: Member must have length less than or equal to 4096
    2 validation errors detected: <first>; <second>

(ValidationException for JSON services; the Query protocol renders the code ValidationError.)
Validators are compiled once per shape and cached.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

from botocore.model import Shape

from common.errors import ValidationException
from gateway.aws.spec import shape_key

Check = Callable[[Any, str, list[str]], None]


def lower_first(name: str) -> str:
    return name[:1].lower() + name[1:]


def format_value(value: Any) -> str:
    """A value as AWS (Java ``toString``) prints it inside ``Value '...'``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(format_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}={format_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def _violation(shape: Shape, value: Any, path: str, constraint: str) -> str:
    if value is None:
        return f"Value null at '{path}' failed to satisfy constraint: {constraint}"
    if shape.type_name in ("blob", "structure") or shape.metadata.get("sensitive"):
        return f"Value at '{path}' failed to satisfy constraint: {constraint}"
    return f"Value '{format_value(value)}' at '{path}' failed to satisfy constraint: {constraint}"


_UNICODE_CLASSES = (("\\p{L}", "\\w"), ("\\p{N}", "\\d"), ("\\p{Z}", "\\s"))


def _compile_pattern(pattern: str) -> re.Pattern[str] | None:
    """Java regex -> Python; patterns Python cannot express are skipped (None)."""
    for java, py in _UNICODE_CLASSES:
        pattern = pattern.replace(java, py)
    try:
        return re.compile(pattern, re.DOTALL)
    except re.error:
        return None


def _length_checks(shape: Shape) -> list[Check]:
    checks: list[Check] = []
    lo = shape.metadata.get("min")
    hi = shape.metadata.get("max")
    if lo is not None and lo > 0:
        def check_min(value: Any, path: str, out: list[str], lo: int = lo) -> None:
            if len(value) < lo:
                out.append(_violation(shape, value, path,
                                      f"Member must have length greater than or equal to {lo}"))
        checks.append(check_min)
    if hi is not None:
        def check_max(value: Any, path: str, out: list[str], hi: int = hi) -> None:
            if len(value) > hi:
                out.append(_violation(shape, value, path,
                                      f"Member must have length less than or equal to {hi}"))
        checks.append(check_max)
    return checks


def _range_checks(shape: Shape) -> list[Check]:
    checks: list[Check] = []
    lo = shape.metadata.get("min")
    hi = shape.metadata.get("max")
    if lo is not None:
        def check_min(value: Any, path: str, out: list[str], lo: Any = lo) -> None:
            if value < lo:
                out.append(_violation(shape, value, path,
                                      f"Member must have value greater than or equal to {lo}"))
        checks.append(check_min)
    if hi is not None:
        def check_max(value: Any, path: str, out: list[str], hi: Any = hi) -> None:
            if value > hi:
                out.append(_violation(shape, value, path,
                                      f"Member must have value less than or equal to {hi}"))
        checks.append(check_max)
    return checks


_compiled: dict[tuple[int, str], tuple[Shape, Check | None]] = {}
_building: set[tuple[int, str]] = set()


def _checker(shape: Shape) -> Check | None:
    """A compiled checker for values of ``shape`` (None when the shape has no constraints).

    Cached per shape (spec.shape_key); recursive shapes get a late-bound reference to their
    own checker.
    """
    key = shape_key(shape)
    hit = _compiled.get(key)
    if hit is not None:
        return hit[1]
    if key in _building:
        def late(value: Any, path: str, out: list[str]) -> None:
            c = _compiled[key][1]
            if c is not None:
                c(value, path, out)
        return late
    _building.add(key)
    try:
        check = _compile(shape)
    finally:
        _building.discard(key)
    _compiled[key] = (shape, check)
    return check


def _compile(shape: Shape) -> Check | None:
    kind = shape.type_name
    checks: list[Check] = []
    if kind == "string":
        checks += _length_checks(shape)
        enum = shape.metadata.get("enum")
        if enum:
            allowed = frozenset(enum)
            text = "Member must satisfy enum value set: [" + ", ".join(enum) + "]"

            def check_enum(value: Any, path: str, out: list[str]) -> None:
                if value not in allowed:
                    out.append(_violation(shape, value, path, text))
            checks.append(check_enum)
        raw = shape.metadata.get("pattern")
        rx = _compile_pattern(raw) if raw else None
        if rx is not None:
            ptext = f"Member must satisfy regular expression pattern: {raw}"

            def check_pattern(value: Any, path: str, out: list[str]) -> None:
                if rx.fullmatch(value) is None:
                    out.append(_violation(shape, value, path, ptext))
            checks.append(check_pattern)
    elif kind == "blob":
        checks += _length_checks(shape)
    elif kind in ("integer", "long", "float", "double"):
        checks += _range_checks(shape)
    elif kind == "list":
        checks += _length_checks(shape)
        element = _checker(shape.member)
        if element is not None:
            def check_elements(value: Any, path: str, out: list[str]) -> None:
                for i, item in enumerate(value, 1):
                    if item is not None:
                        element(item, f"{path}.{i}.member", out)
            checks.append(check_elements)
    elif kind == "map":
        checks += _length_checks(shape)
        key_check = _checker(shape.key)
        value_check = _checker(shape.value)
        if key_check is not None or value_check is not None:
            def check_entries(value: Any, path: str, out: list[str]) -> None:
                for k, v in value.items():
                    if key_check is not None:
                        key_check(k, f"{path}.key", out)
                    if value_check is not None and v is not None:
                        value_check(v, f"{path}.{k}.value", out)
            checks.append(check_entries)
    elif kind == "structure":
        return _structure_checker(shape)
    if not checks:
        return None
    if len(checks) == 1:
        return checks[0]

    def check_all(value: Any, path: str, out: list[str]) -> None:
        for c in checks:
            c(value, path, out)
    return check_all


def _structure_checker(shape: Shape) -> Check | None:
    required = tuple(shape.required_members)
    members = [(name, lower_first(name), member, _checker(member))
               for name, member in shape.members.items()]
    active = [(n, p, m, c) for n, p, m, c in members if c is not None]
    req = [(n, lower_first(n), shape.members[n]) for n in required if n in shape.members]
    if not active and not req:
        return None

    def check_structure(value: Any, path: str, out: list[str]) -> None:
        prefix = f"{path}." if path else ""
        # AWS reports in member order: requiredness and constraints of each member together.
        for name, lname, member, check in members:
            v = value.get(name)
            if v is None:
                if name in required:
                    out.append(_violation(member, None, prefix + lname, "Member must not be null"))
                continue
            if check is not None:
                check(v, prefix + lname, out)
    return check_structure


def violations(shape: Shape | None, params: dict[str, Any]) -> list[str]:
    """Every constraint violation of ``params`` against the input ``shape``, in AWS's order."""
    if shape is None:
        return []
    check = _checker(shape)
    if check is None:
        return []
    out: list[str] = []
    check(params, "", out)
    return out


def message_for(errors: list[str]) -> str:
    n = len(errors)
    noun = "validation error" if n == 1 else "validation errors"
    return f"{n} {noun} detected: " + "; ".join(errors)


def validate(shape: Shape | None, params: dict[str, Any]) -> None:
    """Raise ValidationException (AWS's message) when ``params`` violates ``shape``."""
    errors = violations(shape, params)
    if errors:
        raise ValidationException(message_for(errors))
