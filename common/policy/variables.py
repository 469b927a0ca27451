"""Policy variable substitution (``${aws:username}`` and friends).

Mirrors https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_variables.html

* Variables are only recognised in policies whose ``Version`` is
  ``2012-10-17``; in ``2008-10-17`` documents (or when ``Version`` is
  omitted) ``${...}`` is literal text.
* ``${key}`` is replaced by the single value of condition context key ``key``
  (looked up case-insensitively).  If the key is absent or multivalued the
  variable cannot be resolved and the policy *value* containing it matches
  nothing (the Resource entry does not match; in a condition that value is
  treated as "not equal").
* ``${key, 'default'}`` supplies a default for an unresolvable key; inside the
  quotes ``''`` stands for one ``'``.
* ``${*}``, ``${?}`` and ``${$}`` are the literal characters ``*``, ``?``,
  ``$``.
* Substitution is a single pass; substituted text (and the special
  characters above) is always matched literally, never as a wildcard.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from datetime import datetime

from .matching import Pattern, PatternElem, compile_glob

__all__ = ["expand_template", "context_value_to_str", "has_variables"]

_VAR_RE = re.compile(
    r"\$\{\s*(?P<key>[^\s,'}]+)\s*(?:,\s*'(?P<default>(?:[^']|'')*)'\s*)?\}"
)
_SPECIAL = {"*": "*", "?": "?", "$": "$"}

Lookup = Callable[[str], "tuple[object, ...] | None"]


def context_value_to_str(value: object) -> str:
    """Canonical string form of a request-context value."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(bytes(value)).decode("ascii")
    return str(value)


def has_variables(text: str) -> bool:
    """True when ``text`` contains at least one ``${...}`` variable."""
    return _VAR_RE.search(text) is not None


def expand_template(text: str, lookup: Lookup, *, enabled: bool) -> Pattern | None:
    """Expand policy variables in ``text`` and compile it to a pattern.

    Literal parts of ``text`` keep ``*``/``?`` as wildcards; substituted
    values are literal.  Returns ``None`` when a variable cannot be resolved.
    """
    if not enabled or "${" not in text:
        return compile_glob(text)
    out: list[PatternElem] = []
    pos = 0
    while True:
        start = text.find("${", pos)
        if start < 0:
            out.extend(compile_glob(text[pos:]))
            return tuple(out)
        out.extend(compile_glob(text[pos:start]))
        m = _VAR_RE.match(text, start)
        if m is None:
            # Not a well-formed variable: keep "$" literally and continue.
            out.append("$")
            pos = start + 1
            continue
        key = m.group("key")
        default = m.group("default")
        if key in _SPECIAL and default is None:
            out.append(_SPECIAL[key])
        else:
            values = lookup(key.lower())
            if values is not None and len(values) == 1:
                out.extend(context_value_to_str(values[0]))
            elif default is not None:
                out.extend(default.replace("''", "'"))
            else:
                return None
        pos = m.end()
