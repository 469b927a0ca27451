"""Wildcard, Action, Resource and ARN matching primitives.

Semantics mirrored from:

* Action element -- https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_action.html
  Actions are matched **case-insensitively**; ``*`` matches any run of
  characters (including none) and ``?`` exactly one character.
* Resource element -- https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_resource.html
  Resources are matched **case-sensitively** over the whole ARN string; the
  wildcards are not stopped by ``:`` or ``/`` (``arn:aws:s3:::bucket/*``
  matches every object key, ``arn:aws:kms:*`` matches every KMS ARN).
* ARN condition operators -- https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html#Conditions_ARN
  ``ArnEquals``/``ArnLike`` compare each of the six ``:``-separated ARN
  components separately; a wildcard never crosses a ``:`` there.

Patterns are represented as tuples of *elements*: either a one-character
literal string or one of the :class:`Wild` markers.  This lets a policy
variable substitute a value containing ``*`` or ``?`` that is matched
literally (AWS: ``${*}`` is a literal asterisk, and substituted user names are
never wildcards).

The matcher is the classic greedy two-pointer algorithm with single-star
backtracking: worst case ``O(len(pattern) * len(text))``, never exponential,
so hostile patterns such as ``a*a*a*a*b`` cannot be used for ReDoS.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence

__all__ = [
    "Wild",
    "PatternElem",
    "Pattern",
    "compile_glob",
    "literal_pattern",
    "match_pattern",
    "wildcard_match",
    "action_matches",
    "resource_matches",
    "pattern_to_text",
    "arn_pattern_matches",
]


class Wild(enum.Enum):
    """Wildcard markers inside a compiled pattern."""

    STAR = "*"
    QMARK = "?"


PatternElem = str | Wild
Pattern = tuple[PatternElem, ...]


def compile_glob(text: str) -> Pattern:
    """Compile ``text`` where ``*`` and ``?`` are wildcards."""
    out: list[PatternElem] = []
    for ch in text:
        if ch == "*":
            out.append(Wild.STAR)
        elif ch == "?":
            out.append(Wild.QMARK)
        else:
            out.append(ch)
    return tuple(out)


def literal_pattern(text: str) -> Pattern:
    """A pattern that matches ``text`` only (``*``/``?`` are literal)."""
    return tuple(text)


def pattern_to_text(pattern: Sequence[PatternElem]) -> str:
    """Render a pattern back to a plain string (wildcards as ``*``/``?``)."""
    return "".join(e.value if isinstance(e, Wild) else e for e in pattern)


def match_pattern(pattern: Sequence[PatternElem], text: str) -> bool:
    """Return True when ``pattern`` matches the whole of ``text``."""
    p = 0
    t = 0
    star_p = -1
    star_t = 0
    n_p = len(pattern)
    n_t = len(text)
    while t < n_t:
        if p < n_p:
            elem = pattern[p]
            if elem is Wild.STAR:
                star_p = p
                star_t = t
                p += 1
                continue
            if elem is Wild.QMARK or elem == text[t]:
                p += 1
                t += 1
                continue
        if star_p >= 0:
            # Let the last star absorb one more character and retry.
            star_t += 1
            t = star_t
            p = star_p + 1
            continue
        return False
    while p < n_p and pattern[p] is Wild.STAR:
        p += 1
    return p == n_p


def wildcard_match(pattern: str, value: str, *, case_sensitive: bool = True) -> bool:
    """Match ``value`` against a ``*``/``?`` glob ``pattern`` (whole string)."""
    if not case_sensitive:
        pattern = pattern.lower()
        value = value.lower()
    return match_pattern(compile_glob(pattern), value)


def action_matches(pattern: str, action: str) -> bool:
    """``kms:*``, ``s3:Get*``, ``*`` ... -- case-insensitive."""
    return wildcard_match(pattern, action, case_sensitive=False)


def resource_matches(pattern: Sequence[PatternElem], resource: str) -> bool:
    """Resource element matching: case-sensitive glob over the whole ARN."""
    return match_pattern(pattern, resource)


def _split_pattern(pattern: Sequence[PatternElem], sep: str, maxsplit: int) -> list[Pattern]:
    parts: list[list[PatternElem]] = [[]]
    for elem in pattern:
        if elem == sep and len(parts) <= maxsplit:
            parts.append([])
        else:
            parts[-1].append(elem)
    return [tuple(p) for p in parts]


def arn_pattern_matches(pattern: Sequence[PatternElem], value: str) -> bool:
    """ArnEquals/ArnLike semantics.

    When the pattern has the six ARN components (``arn:partition:service:
    region:account:resource``) each component is matched separately against
    the value's component, so wildcards cannot cross ``:`` except inside the
    final resource component (which may itself contain ``:``).  A pattern
    without any ``:`` (e.g. a bare ``*``) is matched against the whole value;
    any other pattern with fewer than six components matches nothing.
    """
    p_parts = _split_pattern(pattern, ":", 5)
    if len(p_parts) == 1:
        return match_pattern(pattern, value)
    if len(p_parts) != 6:
        return False
    v_parts = value.split(":", 5)
    if len(v_parts) != 6:
        return False
    return all(match_pattern(pp, vp) for pp, vp in zip(p_parts, v_parts))
