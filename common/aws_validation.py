"""Request validation against a botocore input shape, with AWS's exact messages.

Used by the gateway (typed AWS values parsed from JSON or Query requests) and by the KMS service
(AWS-shaped dicts read from gRPC requests), so both answer with the same ValidationException.
Input is the *typed* AWS value of a request: str, int, float, bool, bytes for blobs, datetime for
timestamps, list, dict; wrong types were rejected by whoever built it. This module checks the
model's constraints, which botocore's own ``ParamValidator`` only partly checks (it skips ``max``,
``pattern``, ``enum``):

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

:class:`Rules` selects a dialect; its defaults are the behaviour above. The KMS service's gRPC
API keeps the wording of its own earlier validator, which differs from AWS in ways the flags name
(top-level members only, ``""`` absent, required members first, one violation per member,
``re.search`` patterns, sensitive strings quoted).

Checks are compiled once per (rules, shape) and cached; :class:`OperationValidator` also keeps the
compiled check of each operation's input, so a call costs one dict lookup before the checks run.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from botocore.loaders import Loader
from botocore.model import ServiceModel, Shape

from common.errors import ValidationException

#: ``check(value, path, out)`` appends one message per violation of ``value`` to ``out``.
Check = Callable[[Any, str, list[str]], None]
#: ``describe(value, path, constraint)``: the text of one violation.
Describe = Callable[[Any, str, str], str]


@dataclass(frozen=True, slots=True)
class Rules:
    """A validation dialect. The defaults are AWS's behaviour."""

    #: Check members of members, list elements and map entries (False: top-level members only).
    nested: bool = True
    #: ``""`` counts as a missing member (protobuf cannot tell an empty string from an unset one).
    empty_is_absent: bool = False
    #: Report every missing required member before any other violation (AWS: in member order).
    required_first: bool = False
    #: Report at most one violation per member value (AWS: all of them).
    first_per_member: bool = False


AWS_RULES = Rules()


def _lower_first(name: str) -> str:
    return name[:1].lower() + name[1:]


def _format_value(value: Any) -> str:
    """A value as AWS (Java ``toString``) prints it inside ``Value '...'``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(_format_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}={_format_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def _describer(shape: Shape, rules: Rules) -> Describe:
    """The violation texts of ``shape``'s values: quoted unless blob, structure or (by default) sensitive."""
    hidden = shape.type_name in ("blob", "structure") or bool(shape.metadata.get("sensitive"))
    if hidden:
        def describe_hidden(value: Any, path: str, constraint: str) -> str:
            return f"Value at '{path}' failed to satisfy constraint: {constraint}"
        return describe_hidden

    def describe(value: Any, path: str, constraint: str) -> str:
        return f"Value '{_format_value(value)}' at '{path}' failed to satisfy constraint: {constraint}"
    return describe


def _null(path: str) -> str:
    return f"Value null at '{path}' failed to satisfy constraint: Member must not be null"


_UNICODE_CLASSES = (("\\p{L}", "\\w"), ("\\p{N}", "\\d"), ("\\p{Z}", "\\s"))


def _compile_pattern(pattern: str) -> re.Pattern[str] | None:
    """Java regex -> Python; patterns Python cannot express are skipped (None)."""
    for java, py in _UNICODE_CLASSES:
        pattern = pattern.replace(java, py)
    try:
        return re.compile(pattern, re.DOTALL)
    except re.error:
        return None


def _bounds_check(shape: Shape, describe: Describe, measure: str) -> Check | None:
    """``min``/``max`` of a length (``measure="length"``) or of a number (``"value"``)."""
    lo = shape.metadata.get("min")
    hi = shape.metadata.get("max")
    if measure == "length" and lo is not None and lo <= 0:
        lo = None  # every length satisfies it
    too_small = f"Member must have {measure} greater than or equal to {lo}"
    too_big = f"Member must have {measure} less than or equal to {hi}"
    sized = measure == "length"
    if lo is not None and hi is not None:
        def check_both(value: Any, path: str, out: list[str]) -> None:
            n = len(value) if sized else value
            if n < lo:
                out.append(describe(value, path, too_small))
            elif n > hi:
                out.append(describe(value, path, too_big))
        return check_both
    if lo is not None:
        def check_min(value: Any, path: str, out: list[str]) -> None:
            if (len(value) if sized else value) < lo:
                out.append(describe(value, path, too_small))
        return check_min
    if hi is not None:
        def check_max(value: Any, path: str, out: list[str]) -> None:
            if (len(value) if sized else value) > hi:
                out.append(describe(value, path, too_big))
        return check_max
    return None


_compiled: dict[tuple[Rules, int, str], tuple[Shape, Check | None]] = {}
_building: set[tuple[Rules, int, str]] = set()


def _checker(shape: Shape, rules: Rules) -> Check | None:
    """The compiled checker for values of ``shape`` (None when it has no constraints), cached.

    botocore hands out a new ``Shape`` each time a member is resolved, but a shape's name is
    unique within its model: the key is (rules, the model's shape resolver, name), and the cache
    keeps the shape so that the resolver, and thus its id, stays alive. Recursive shapes get a
    late-bound reference to their own checker.
    """
    key = (rules, id(getattr(shape, "_shape_resolver", None)), shape.name)
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
        check = (_compile(shape, rules, descend=True) if rules.nested
                 else _structure_checker(shape, rules, descend=False))
    finally:
        _building.discard(key)
    _compiled[key] = (shape, check)
    return check


def _compile(shape: Shape, rules: Rules, *, descend: bool) -> Check | None:
    """Checks of a value of ``shape``; ``descend``: also of its members, elements and entries."""
    kind = shape.type_name
    if kind == "structure":
        return _structure_checker(shape, rules, descend=True) if descend else None
    describe = _describer(shape, rules)
    checks: list[Check | None] = []
    if kind == "string":
        checks.append(_bounds_check(shape, describe, "length"))
        enum = shape.metadata.get("enum")
        if enum:
            allowed = frozenset(enum)
            enum_text = "Member must satisfy enum value set: [" + ", ".join(enum) + "]"

            def check_enum(value: Any, path: str, out: list[str]) -> None:
                if value not in allowed:
                    out.append(describe(value, path, enum_text))
            checks.append(check_enum)
        raw = shape.metadata.get("pattern")
        rx = _compile_pattern(raw) if raw else None
        if rx is not None:
            match = rx.fullmatch  # Java's matches(), as AWS
            pattern_text = f"Member must satisfy regular expression pattern: {raw}"

            def check_pattern(value: Any, path: str, out: list[str]) -> None:
                if match(value) is None:
                    out.append(describe(value, path, pattern_text))
            checks.append(check_pattern)
    elif kind == "blob":
        checks.append(_bounds_check(shape, describe, "length"))
    elif kind in ("integer", "long", "float", "double"):
        checks.append(_bounds_check(shape, describe, "value"))
    elif kind == "list":
        checks.append(_bounds_check(shape, describe, "length"))
        element = _checker(shape.member, rules) if descend else None
        if element is not None:
            def check_elements(value: Any, path: str, out: list[str]) -> None:
                for i, item in enumerate(value, 1):
                    if item is not None:
                        element(item, f"{path}.{i}.member", out)
            checks.append(check_elements)
    elif kind == "map":
        checks.append(_bounds_check(shape, describe, "length"))
        key_check = _checker(shape.key, rules) if descend else None
        value_check = _checker(shape.value, rules) if descend else None
        if key_check is not None or value_check is not None:
            def check_entries(value: Any, path: str, out: list[str]) -> None:
                for k, v in value.items():
                    if key_check is not None:
                        key_check(k, f"{path}.key", out)
                    if value_check is not None and v is not None:
                        value_check(v, f"{path}.{k}.value", out)
            checks.append(check_entries)
    return _combine([c for c in checks if c is not None], rules)


def _combine(checks: list[Check], rules: Rules) -> Check | None:
    if not checks:
        return None
    if len(checks) == 1:
        return checks[0]
    if rules.first_per_member:
        def check_first(value: Any, path: str, out: list[str]) -> None:
            n = len(out)
            for c in checks:
                c(value, path, out)
                if len(out) > n:
                    return
        return check_first

    def check_all(value: Any, path: str, out: list[str]) -> None:
        for c in checks:
            c(value, path, out)
    return check_all


def _structure_checker(shape: Shape, rules: Rules, *, descend: bool) -> Check | None:
    required = frozenset(shape.required_members)
    entries: list[tuple[str, str, Check | None, bool]] = []
    for name, member in shape.members.items():
        check = _checker(member, rules) if descend else _compile(member, rules, descend=False)
        if check is not None or name in required:
            entries.append((name, _lower_first(name), check, name in required))
    if not entries:
        return None
    empty = rules.empty_is_absent

    if rules.required_first:
        missing = [(name, lname) for name, lname, _, req in entries if req]
        checked = [(name, lname, check) for name, lname, check, _ in entries if check is not None]

        def check_required_first(value: Any, path: str, out: list[str]) -> None:
            prefix = f"{path}." if path else ""
            for name, lname in missing:
                v = value.get(name)
                if v is None or (empty and v == ""):
                    out.append(_null(prefix + lname))
            for name, lname, check in checked:
                v = value.get(name)
                if v is None or (empty and v == ""):
                    continue
                check(v, prefix + lname, out)
        return check_required_first

    def check_structure(value: Any, path: str, out: list[str]) -> None:
        prefix = f"{path}." if path else ""
        # AWS reports in member order: requiredness and constraints of each member together.
        for name, lname, check, req in entries:
            v = value.get(name)
            if v is None or (empty and v == ""):
                if req:
                    out.append(_null(prefix + lname))
                continue
            if check is not None:
                check(v, prefix + lname, out)
    return check_structure


def violations(shape: Shape | None, params: Mapping[str, Any], rules: Rules = AWS_RULES) -> list[str]:
    """Every constraint violation of ``params`` against the input ``shape``, in order."""
    if shape is None:
        return []
    check = _checker(shape, rules)
    if check is None:
        return []
    out: list[str] = []
    check(params, "", out)
    return out


def message_for(errors: list[str]) -> str:
    n = len(errors)
    noun = "validation error" if n == 1 else "validation errors"
    return f"{n} {noun} detected: " + "; ".join(errors)


def validate(shape: Shape | None, params: Mapping[str, Any], rules: Rules = AWS_RULES) -> None:
    """Raise ValidationException (AWS's message) when ``params`` violates ``shape``."""
    errors = violations(shape, params, rules)
    if errors:
        raise ValidationException(message_for(errors))


@functools.cache
def service_model(service: str) -> ServiceModel:
    """botocore's model of ``service`` (the newest API version botocore ships), loaded once."""
    return ServiceModel(Loader().load_service_model(service, "service-2"), service_name=service)


class OperationValidator:
    """Validates the input of any operation of one service, by operation name.

    Every operation's check is compiled at construction; operations the model does not know,
    and those without input constraints, pass.
    """

    __slots__ = ("_checks",)

    def __init__(self, model: ServiceModel, rules: Rules = AWS_RULES) -> None:
        self._checks: dict[str, Check] = {}
        for name in model.operation_names:
            shape = model.operation_model(name).input_shape
            check = _checker(shape, rules) if shape is not None else None
            if check is not None:
                self._checks[name] = check

    def validate(self, operation: str, params: Mapping[str, Any]) -> None:
        """Raise ValidationException when ``params`` violates ``operation``'s input shape."""
        check = self._checks.get(operation)
        if check is None:
            return
        out: list[str] = []
        check(params, "", out)
        if out:
            raise ValidationException(message_for(out))
