"""Request validation driven by botocore's KMS service model (the source of truth for member
names, lengths, ranges, enums and patterns), with AWS's ValidationException wording:

``1 validation error detected: Value 'x' at 'memberName' failed to satisfy constraint: ...``

Blob values are never echoed (``Value at 'plaintext' ...``), as AWS does. Only top-level
members are checked here; nested structures are checked by the use cases that read them.
An empty string counts as absent (protobuf cannot tell them apart).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from botocore.loaders import Loader

from common.errors import ValidationException

Check = Callable[[Any], "str | None"]


def _camel(name: str) -> str:
    return name[:1].lower() + name[1:]


def _compile_member(member: str, shape: Mapping[str, Any]) -> list[Check]:
    where = _camel(member)
    t = shape["type"]
    checks: list[Check] = []
    lo, hi = shape.get("min"), shape.get("max")
    if t == "string":
        if lo is not None:
            checks.append(lambda v, lo=lo: None if len(v) >= lo else
                          f"Value '{v}' at '{where}' failed to satisfy constraint: "
                          f"Member must have length greater than or equal to {lo}")
        if hi is not None:
            checks.append(lambda v, hi=hi: None if len(v) <= hi else
                          f"Value '{v}' at '{where}' failed to satisfy constraint: "
                          f"Member must have length less than or equal to {hi}")
        if "enum" in shape:
            allowed = frozenset(shape["enum"])
            listing = ", ".join(shape["enum"])
            checks.append(lambda v: None if v in allowed else
                          f"Value '{v}' at '{where}' failed to satisfy constraint: "
                          f"Member must satisfy enum value set: [{listing}]")
        if "pattern" in shape:
            pattern = shape["pattern"]
            try:
                rx = re.compile(pattern)
            except re.error:
                rx = None
            if rx is not None:
                checks.append(lambda v, rx=rx, pattern=pattern: None if rx.search(v) else
                              f"Value '{v}' at '{where}' failed to satisfy constraint: "
                              f"Member must satisfy regular expression pattern: {pattern}")
    elif t == "blob":
        if lo is not None:
            checks.append(lambda v, lo=lo: None if len(v) >= lo else
                          f"Value at '{where}' failed to satisfy constraint: "
                          f"Member must have length greater than or equal to {lo}")
        if hi is not None:
            checks.append(lambda v, hi=hi: None if len(v) <= hi else
                          f"Value at '{where}' failed to satisfy constraint: "
                          f"Member must have length less than or equal to {hi}")
    elif t in ("integer", "long"):
        if lo is not None:
            checks.append(lambda v, lo=lo: None if v >= lo else
                          f"Value '{v}' at '{where}' failed to satisfy constraint: "
                          f"Member must have value greater than or equal to {lo}")
        if hi is not None:
            checks.append(lambda v, hi=hi: None if v <= hi else
                          f"Value '{v}' at '{where}' failed to satisfy constraint: "
                          f"Member must have value less than or equal to {hi}")
    elif t == "list":
        def show(v: list[Any]) -> str:
            return "[" + ", ".join(str(x) for x in v) + "]"
        if lo is not None:
            checks.append(lambda v, lo=lo: None if len(v) >= lo else
                          f"Value '{show(v)}' at '{where}' failed to satisfy constraint: "
                          f"Member must have length greater than or equal to {lo}")
        if hi is not None:
            checks.append(lambda v, hi=hi: None if len(v) <= hi else
                          f"Value '{show(v)}' at '{where}' failed to satisfy constraint: "
                          f"Member must have length less than or equal to {hi}")
    return checks


class Validator:
    def __init__(self) -> None:
        model = Loader().load_service_model("kms", "service-2")
        shapes = model["shapes"]
        self._ops: dict[str, tuple[tuple[str, ...], dict[str, list[Check]]]] = {}
        for name, op in model["operations"].items():
            shape_name = op.get("input", {}).get("shape")
            if not shape_name:
                self._ops[name] = ((), {})
                continue
            shape = shapes[shape_name]
            members = {m: _compile_member(m, shapes[spec["shape"]]) for m, spec in shape["members"].items()}
            self._ops[name] = (tuple(shape.get("required", ())), {m: c for m, c in members.items() if c})

    def validate(self, operation: str, params: Mapping[str, Any]) -> None:
        entry = self._ops.get(operation)
        if entry is None:
            return
        required, checks = entry
        problems: list[str] = []
        for member in required:
            value = params.get(member)
            if value is None or value == "":
                problems.append(f"Value null at '{_camel(member)}' failed to satisfy constraint: "
                                "Member must not be null")
        for member, member_checks in checks.items():
            value = params.get(member)
            if value is None or value == "":
                continue
            for check in member_checks:
                problem = check(value)
                if problem:
                    problems.append(problem)
                    break
        if problems:
            count = len(problems)
            noun = "error" if count == 1 else "errors"
            raise ValidationException(f"{count} validation {noun} detected: " + "; ".join(problems))
