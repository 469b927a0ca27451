from __future__ import annotations

from datetime import datetime, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from common.policy.conditions import RequestContext
from common.policy.matching import Wild, match_pattern, pattern_to_text
from common.policy.variables import expand_template, has_variables

CTX = RequestContext(
    {
        "aws:username": "bob",
        "aws:userid": "AIDAEXAMPLE",
        "aws:PrincipalAccount": "111122223333",
        "aws:TagKeys": ["a", "b"],
        "aws:SecureTransport": True,
        "aws:CurrentTime": datetime(2024, 1, 1, tzinfo=timezone.utc),
        "x:star": "a*b",
    }
)


def text(template: str) -> str | None:
    pat = expand_template(template, CTX.get, enabled=True)
    return None if pat is None else pattern_to_text(pat)


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("home/${aws:username}/*", "home/bob/*"),
        ("${AWS:UserName}", "bob"),  # key lookup is case-insensitive
        ("${aws:userid}", "AIDAEXAMPLE"),
        ("arn:aws:iam::${aws:PrincipalAccount}:user/x", "arn:aws:iam::111122223333:user/x"),
        ("${ aws:username }", "bob"),
        ("${aws:SecureTransport}", "true"),
        ("${aws:CurrentTime}", "2024-01-01T00:00:00+00:00"),
        ("${*}${?}${$}", "*?$"),
        ("${aws:missing, 'anon'}", "anon"),
        ("${aws:username, 'anon'}", "bob"),
        ("${aws:missing, 'it''s'}", "it's"),
        ("${aws:missing}", None),
        ("${aws:TagKeys}", None),  # multivalued keys cannot be variables
        ("${aws:TagKeys, 'd'}", "d"),
        ("cost $5 ${notclosed", "cost $5 ${notclosed"),
        ("no variables", "no variables"),
    ],
)
def test_expand(template: str, expected: str | None) -> None:
    assert text(template) == expected


def test_special_characters_are_literal_not_wildcards() -> None:
    pat = expand_template("a${*}b${?}", CTX.get, enabled=True)
    assert pat is not None
    assert Wild.STAR not in pat and Wild.QMARK not in pat
    assert match_pattern(pat, "a*b?")
    assert not match_pattern(pat, "axxbz")


def test_substituted_values_are_literal() -> None:
    # A user called "a*b" must not turn into a wildcard.
    pat = expand_template("home/${x:star}/*", CTX.get, enabled=True)
    assert pat is not None
    assert match_pattern(pat, "home/a*b/file")
    assert not match_pattern(pat, "home/aXXb/file")


def test_single_pass_substitution() -> None:
    ctx = RequestContext({"x:a": "${x:b}", "x:b": "nope"})
    pat = expand_template("${x:a}", ctx.get, enabled=True)
    assert pat is not None and pattern_to_text(pat) == "${x:b}"


def test_disabled_means_literal() -> None:
    pat = expand_template("home/${aws:username}/*", CTX.get, enabled=False)
    assert pat is not None
    assert match_pattern(pat, "home/${aws:username}/x")
    assert not match_pattern(pat, "home/bob/x")


def test_has_variables() -> None:
    assert has_variables("${aws:username}")
    assert not has_variables("arn:aws:s3:::b/*")


@given(st.text(alphabet=st.characters(blacklist_characters="$"), max_size=20))
def test_templates_without_dollar_are_unchanged(s: str) -> None:
    pat = expand_template(s, CTX.get, enabled=True)
    assert pat is not None and pattern_to_text(pat) == s
