"""Condition block parsing and evaluation.

Mirrors:

* Condition operators -- https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html
* Multiple keys / values -- https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-logic-multiple-context-keys-or-values.html
* Set operators -- https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-single-vs-multi-valued-context-keys.html

Semantics implemented:

* Several operators in one block, and several keys under one operator, are
  AND'ed.  Several values for one key are OR'ed; for a *negated* operator
  (``StringNotEquals``, ``NotIpAddress``, ...) they are NOR'ed: the condition
  holds when the request value matches **none** of them.
* Condition keys are case-insensitive; operator names are accepted in any
  case and canonicalised.
* Missing key, no set prefix: positive operators are false, negated operators
  are true.  ``...IfExists``: true when the key is absent, otherwise the
  ordinary test.  ``Null``: ``"true"`` matches when the key is absent (or an
  empty list), ``"false"`` when it is present.
* ``ForAllValues:`` -- true when every request value satisfies the operator
  against at least one policy value (for negated operators: matches none of
  them); true when the key is absent or empty.
* ``ForAnyValue:`` -- true when at least one request value satisfies the
  operator; false when the key is absent or empty (true with ``IfExists``).
* A list-valued key used without a set prefix behaves like ``ForAnyValue``
  for positive operators and as "no request value matches" for negated ones.
* Policy variables are substituted in String, ARN and Bool operator values
  (see :mod:`common.policy.variables`).  Wildcards are honoured by
  ``StringLike``/``StringNotLike`` and by all ARN operators (``ArnEquals``
  and ``ArnLike`` are identical in AWS).
* Dates: ISO 8601 (``2020-01-01``, ``2020-01-01T00:00:00Z``, offsets) or
  epoch seconds; naive times are UTC.  Numbers: integers or decimals.
  IPs: IPv4/IPv6 addresses or CIDRs (``IpAddress`` never matches across
  address families; IPv4-mapped IPv6 request addresses are unwrapped).
  ``BinaryEquals``: base64 policy value compared byte-wise.
* A request value of the wrong type (e.g. a non-numeric string for a
  ``Numeric*`` operator) simply does not match that value.

Policy values of non-variable operator families are validated at parse time
and :class:`MalformedPolicyError` is raised for garbage such as
``"NumericLessThan": {"k": "ten"}`` or an invalid CIDR.
"""

from __future__ import annotations

import base64
import binascii
import enum
import ipaddress
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Final

from .errors import MalformedPolicyError
from .matching import Pattern, arn_pattern_matches, match_pattern, pattern_to_text
from .variables import context_value_to_str, expand_template

__all__ = [
    "SetQualifier",
    "ConditionClause",
    "RequestContext",
    "parse_condition_block",
    "evaluate_conditions",
    "OPERATOR_NAMES",
]

IPAddr = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNet = ipaddress.IPv4Network | ipaddress.IPv6Network


class SetQualifier(enum.Enum):
    FOR_ANY_VALUE = "ForAnyValue"
    FOR_ALL_VALUES = "ForAllValues"


class _Family(enum.Enum):
    STRING = "string"
    STRING_IC = "string_ic"
    STRING_LIKE = "string_like"
    NUMERIC = "numeric"
    DATE = "date"
    BOOL = "bool"
    BINARY = "binary"
    IP = "ip"
    ARN = "arn"
    NULL = "null"


class _Cmp(enum.Enum):
    EQ = "eq"
    LT = "lt"
    LE = "le"
    GT = "gt"
    GE = "ge"


@dataclass(frozen=True, slots=True)
class _OpSpec:
    name: str
    family: _Family
    negated: bool = False
    cmp: _Cmp = _Cmp.EQ

    @property
    def allows_variables(self) -> bool:
        return self.family in (
            _Family.STRING,
            _Family.STRING_IC,
            _Family.STRING_LIKE,
            _Family.ARN,
            _Family.BOOL,
        )


def _ops() -> dict[str, _OpSpec]:
    specs = [
        _OpSpec("StringEquals", _Family.STRING),
        _OpSpec("StringNotEquals", _Family.STRING, negated=True),
        _OpSpec("StringEqualsIgnoreCase", _Family.STRING_IC),
        _OpSpec("StringNotEqualsIgnoreCase", _Family.STRING_IC, negated=True),
        _OpSpec("StringLike", _Family.STRING_LIKE),
        _OpSpec("StringNotLike", _Family.STRING_LIKE, negated=True),
        _OpSpec("NumericEquals", _Family.NUMERIC),
        _OpSpec("NumericNotEquals", _Family.NUMERIC, negated=True),
        _OpSpec("NumericLessThan", _Family.NUMERIC, cmp=_Cmp.LT),
        _OpSpec("NumericLessThanEquals", _Family.NUMERIC, cmp=_Cmp.LE),
        _OpSpec("NumericGreaterThan", _Family.NUMERIC, cmp=_Cmp.GT),
        _OpSpec("NumericGreaterThanEquals", _Family.NUMERIC, cmp=_Cmp.GE),
        _OpSpec("DateEquals", _Family.DATE),
        _OpSpec("DateNotEquals", _Family.DATE, negated=True),
        _OpSpec("DateLessThan", _Family.DATE, cmp=_Cmp.LT),
        _OpSpec("DateLessThanEquals", _Family.DATE, cmp=_Cmp.LE),
        _OpSpec("DateGreaterThan", _Family.DATE, cmp=_Cmp.GT),
        _OpSpec("DateGreaterThanEquals", _Family.DATE, cmp=_Cmp.GE),
        _OpSpec("Bool", _Family.BOOL),
        _OpSpec("BinaryEquals", _Family.BINARY),
        _OpSpec("IpAddress", _Family.IP),
        _OpSpec("NotIpAddress", _Family.IP, negated=True),
        _OpSpec("ArnEquals", _Family.ARN),
        _OpSpec("ArnLike", _Family.ARN),
        _OpSpec("ArnNotEquals", _Family.ARN, negated=True),
        _OpSpec("ArnNotLike", _Family.ARN, negated=True),
        _OpSpec("Null", _Family.NULL),
    ]
    return {s.name.lower(): s for s in specs}


_OPERATORS: Final[dict[str, _OpSpec]] = _ops()
OPERATOR_NAMES: Final[tuple[str, ...]] = tuple(s.name for s in _OPERATORS.values())


@dataclass(frozen=True, slots=True)
class ConditionClause:
    """One ``operator -> key -> values`` triple of a Condition block."""

    operator: str  # canonical full name, e.g. "ForAnyValue:StringLikeIfExists"
    base: str  # canonical base operator, e.g. "StringLike"
    qualifier: SetQualifier | None
    if_exists: bool
    key: str  # as written in the policy
    values: tuple[str, ...]

    @property
    def negated(self) -> bool:
        return _OPERATORS[self.base.lower()].negated


# --------------------------------------------------------------------------
# Request context
# --------------------------------------------------------------------------


class RequestContext:
    """Case-insensitive, normalised view of the request's condition keys.

    Every key maps to a tuple of values; scalars become 1-tuples, lists and
    tuples keep their members, ``None`` means "absent".
    """

    __slots__ = ("_data",)

    def __init__(self, data: Mapping[str, object] | None = None) -> None:
        self._data: dict[str, tuple[object, ...]] = {}
        if data:
            for key, value in data.items():
                self.set(key, value)

    def set(self, key: str, value: object) -> None:
        norm = _normalise_value(value)
        if norm is None:
            self._data.pop(key.lower(), None)
        else:
            self._data[key.lower()] = norm

    def get(self, key: str) -> tuple[object, ...] | None:
        return self._data.get(key.lower())

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key.lower() in self._data

    def keys(self) -> Iterable[str]:
        return self._data.keys()


def _normalise_value(value: object) -> tuple[object, ...] | None:
    if value is None:
        return None
    if isinstance(value, (str, bytes, bytearray)):
        return (value,)
    if isinstance(value, (list, tuple, set, frozenset)):
        return tuple(v for v in value if v is not None)
    return (value,)


# --------------------------------------------------------------------------
# Value parsers (policy side is validated at parse time, cached afterwards)
# --------------------------------------------------------------------------

_EPOCH_RE = re.compile(r"^-?\d+(\.\d+)?$")


@lru_cache(maxsize=4096)
def _parse_decimal(text: str) -> Decimal | None:
    try:
        d = Decimal(text.strip())
    except (InvalidOperation, ValueError):
        return None
    return d if d.is_finite() else None


@lru_cache(maxsize=4096)
def _parse_date(text: str) -> datetime | None:
    s = text.strip()
    if not s:
        return None
    if _EPOCH_RE.match(s):
        try:
            return datetime.fromtimestamp(float(s), tz=timezone.utc)
        except (OverflowError, OSError, ValueError):
            return None
    try:
        dt = datetime.fromisoformat(s)
    except ValueError:
        return None
    return _aware(dt)


def _aware(dt: datetime) -> datetime:
    return dt.replace(tzinfo=timezone.utc) if dt.tzinfo is None else dt


@lru_cache(maxsize=4096)
def _parse_network(text: str) -> IPNet | None:
    try:
        return ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        return None


@lru_cache(maxsize=4096)
def _parse_b64(text: str) -> bytes | None:
    try:
        return base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None


def _parse_bool(text: str) -> bool | None:
    low = text.strip().lower()
    if low == "true":
        return True
    if low == "false":
        return False
    return None


def _req_decimal(value: object) -> Decimal | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, Decimal)):
        return Decimal(value)
    if isinstance(value, float):
        return _parse_decimal(repr(value))
    if isinstance(value, str):
        return _parse_decimal(value)
    return None


def _req_date(value: object) -> datetime | None:
    if isinstance(value, datetime):
        return _aware(value)
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        try:
            return datetime.fromtimestamp(value, tz=timezone.utc)
        except (OverflowError, OSError, ValueError):
            return None
    if isinstance(value, str):
        return _parse_date(value)
    return None


def _req_ip(value: object) -> IPAddr | None:
    if isinstance(value, (ipaddress.IPv4Address, ipaddress.IPv6Address)):
        addr: IPAddr = value
    elif isinstance(value, str):
        try:
            addr = ipaddress.ip_address(value.strip())
        except ValueError:
            return None
    else:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


def _req_bytes(value: object) -> bytes | None:
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    if isinstance(value, str):
        return _parse_b64(value)
    return None


def _cmp(op: _Cmp, left: Decimal | datetime, right: Decimal | datetime) -> bool:
    # ``left`` is the request value, ``right`` the policy value (both the
    # same type; checked by the callers).
    if op is _Cmp.EQ:
        return left == right
    if op is _Cmp.LT:
        return left < right  # type: ignore[operator]
    if op is _Cmp.LE:
        return left <= right  # type: ignore[operator]
    if op is _Cmp.GT:
        return left > right  # type: ignore[operator]
    return left >= right  # type: ignore[operator]


# --------------------------------------------------------------------------
# Parsing
# --------------------------------------------------------------------------


def _split_operator(raw: str) -> tuple[_OpSpec, SetQualifier | None, bool, str]:
    name = raw.strip()
    qualifier: SetQualifier | None = None
    prefix = ""
    if ":" in name:
        pre, _, rest = name.partition(":")
        low = pre.lower()
        if low == "foranyvalue":
            qualifier = SetQualifier.FOR_ANY_VALUE
        elif low == "forallvalues":
            qualifier = SetQualifier.FOR_ALL_VALUES
        else:
            raise MalformedPolicyError(f"Invalid Condition type : {raw}.")
        prefix = qualifier.value + ":"
        name = rest
    if_exists = False
    if name.lower().endswith("ifexists"):
        if_exists = True
        name = name[: -len("ifexists")]
    spec = _OPERATORS.get(name.lower())
    if spec is None:
        raise MalformedPolicyError(f"Invalid Condition type : {raw}.")
    if spec.family is _Family.NULL and (if_exists or qualifier is not None):
        raise MalformedPolicyError(f"Invalid Condition type : {raw}.")
    canonical = prefix + spec.name + ("IfExists" if if_exists else "")
    return spec, qualifier, if_exists, canonical


def _value_to_text(raw: object, where: str) -> str:
    if isinstance(raw, bool):
        return "true" if raw else "false"
    if isinstance(raw, (int, float)):
        return repr(raw) if isinstance(raw, float) else str(raw)
    if isinstance(raw, str):
        return raw
    raise MalformedPolicyError(f"Condition value for {where} must be a string, number or boolean.")


def _validate_value(spec: _OpSpec, text: str, where: str) -> None:
    family = spec.family
    ok = True
    if family is _Family.NUMERIC:
        ok = _parse_decimal(text) is not None
    elif family is _Family.DATE:
        ok = _parse_date(text) is not None
    elif family is _Family.IP:
        ok = _parse_network(text) is not None
    elif family is _Family.BINARY:
        ok = _parse_b64(text) is not None
    elif family is _Family.NULL:
        ok = _parse_bool(text) is not None
    elif family is _Family.BOOL:
        ok = _parse_bool(text) is not None or "${" in text
    if not ok:
        raise MalformedPolicyError(f"Invalid value {text!r} for condition {where}.")


def parse_condition_block(raw: object) -> tuple[ConditionClause, ...]:
    """Parse the JSON value of a ``Condition`` element."""
    if not isinstance(raw, Mapping):
        raise MalformedPolicyError("Syntax errors in policy: Condition must be an object.")
    clauses: list[ConditionClause] = []
    for op_raw, body in raw.items():
        if not isinstance(op_raw, str):
            raise MalformedPolicyError("Syntax errors in policy.")
        spec, qualifier, if_exists, canonical = _split_operator(op_raw)
        if not isinstance(body, Mapping) or not body:
            raise MalformedPolicyError(
                f"Syntax errors in policy: condition {op_raw} must map keys to values."
            )
        for key, values_raw in body.items():
            if not isinstance(key, str) or ":" not in key or key.startswith(":"):
                raise MalformedPolicyError(
                    "Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc."
                )
            where = f"{canonical}/{key}"
            items = values_raw if isinstance(values_raw, list) else [values_raw]
            values = tuple(_value_to_text(v, where) for v in items)
            for v in values:
                _validate_value(spec, v, where)
            clauses.append(
                ConditionClause(
                    operator=canonical,
                    base=spec.name,
                    qualifier=qualifier,
                    if_exists=if_exists,
                    key=key,
                    values=values,
                )
            )
    return tuple(clauses)


# --------------------------------------------------------------------------
# Evaluation
# --------------------------------------------------------------------------

_Matcher = Callable[[object], bool]


def _make_matcher(spec: _OpSpec, policy_value: str, ctx: RequestContext, vars_on: bool) -> _Matcher | None:
    """Build a predicate ``request_value -> bool`` for one policy value.

    Returns ``None`` when the value contains an unresolvable policy variable
    (the value then matches nothing).
    """
    family = spec.family
    pattern: Pattern | None = None
    if spec.allows_variables:
        pattern = expand_template(policy_value, ctx.get, enabled=vars_on)
        if pattern is None:
            return None

    if family is _Family.STRING:
        assert pattern is not None
        lit = pattern_to_text(pattern)
        return lambda r: context_value_to_str(r) == lit
    if family is _Family.STRING_IC:
        assert pattern is not None
        lit_low = pattern_to_text(pattern).lower()
        return lambda r: context_value_to_str(r).lower() == lit_low
    if family is _Family.STRING_LIKE:
        assert pattern is not None
        pat = pattern
        return lambda r: match_pattern(pat, context_value_to_str(r))
    if family is _Family.ARN:
        assert pattern is not None
        arn_pat = pattern
        return lambda r: isinstance(r, str) and arn_pattern_matches(arn_pat, r)
    if family is _Family.BOOL:
        assert pattern is not None
        want = _parse_bool(pattern_to_text(pattern))
        if want is None:
            return None
        return lambda r: (r is want) if isinstance(r, bool) else (
            isinstance(r, str) and _parse_bool(r) is want
        )
    if family is _Family.NUMERIC:
        num = _parse_decimal(policy_value)
        if num is None:
            return None
        op = spec.cmp

        def numeric(r: object) -> bool:
            rv = _req_decimal(r)
            return rv is not None and _cmp(op, rv, num)

        return numeric
    if family is _Family.DATE:
        when = _parse_date(policy_value)
        if when is None:
            return None
        dop = spec.cmp

        def date(r: object) -> bool:
            rv = _req_date(r)
            return rv is not None and _cmp(dop, rv, when)

        return date
    if family is _Family.IP:
        net = _parse_network(policy_value)
        if net is None:
            return None

        def ip(r: object) -> bool:
            addr = _req_ip(r)
            return addr is not None and addr.version == net.version and addr in net

        return ip
    if family is _Family.BINARY:
        blob = _parse_b64(policy_value)
        if blob is None:
            return None
        return lambda r: _req_bytes(r) == blob
    raise AssertionError(f"unhandled family {family}")  # pragma: no cover


def _clause_holds(clause: ConditionClause, ctx: RequestContext, vars_on: bool) -> bool:
    spec = _OPERATORS[clause.base.lower()]
    request_values = ctx.get(clause.key)
    present = bool(request_values)

    if spec.family is _Family.NULL:
        return any(_parse_bool(v) is (not present) for v in clause.values)

    if not present:
        if clause.if_exists:
            return True
        if clause.qualifier is SetQualifier.FOR_ALL_VALUES:
            return True
        if clause.qualifier is SetQualifier.FOR_ANY_VALUE:
            return False
        return spec.negated

    assert request_values is not None
    matchers = [
        m for m in (_make_matcher(spec, v, ctx, vars_on) for v in clause.values) if m is not None
    ]

    def hits(r: object) -> bool:
        return any(m(r) for m in matchers)

    def satisfied(r: object) -> bool:
        return not hits(r) if spec.negated else hits(r)

    if clause.qualifier is SetQualifier.FOR_ALL_VALUES:
        return all(satisfied(r) for r in request_values)
    if clause.qualifier is SetQualifier.FOR_ANY_VALUE:
        return any(satisfied(r) for r in request_values)
    # No set operator: a multivalued request key matches positively when any
    # value matches; a negated operator requires that no value matches.
    any_hit = any(hits(r) for r in request_values)
    return not any_hit if spec.negated else any_hit


def evaluate_conditions(
    clauses: Iterable[ConditionClause], ctx: RequestContext, *, variables_enabled: bool = True
) -> bool:
    """True when every clause holds (logical AND); an empty block is true."""
    return all(_clause_holds(c, ctx, variables_enabled) for c in clauses)
