from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from common.policy.matching import (
    Wild,
    action_matches,
    arn_pattern_matches,
    compile_glob,
    literal_pattern,
    match_pattern,
    pattern_to_text,
    resource_matches,
    wildcard_match,
)


def _oracle(pattern: str, value: str) -> bool:
    rx = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(rx, value, flags=re.DOTALL) is not None


ALPHABET = st.sampled_from("ab*?:/")


@settings(max_examples=400, deadline=None)
@given(st.text(ALPHABET, max_size=8), st.text(st.sampled_from("ab:/*?"), max_size=10))
def test_wildcard_matches_regex_oracle(pattern: str, value: str) -> None:
    assert wildcard_match(pattern, value) == _oracle(pattern, value)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=12))
def test_literal_pattern_only_matches_itself(value: str) -> None:
    assert match_pattern(literal_pattern(value), value)
    assert not match_pattern(literal_pattern(value), value + "x")


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=12))
def test_star_matches_everything(value: str) -> None:
    assert wildcard_match("*", value)


def test_pathological_pattern_is_fast() -> None:
    assert not wildcard_match("a*" * 40 + "b", "a" * 2000)


@pytest.mark.parametrize(
    ("pattern", "action", "expected"),
    [
        ("kms:*", "kms:Encrypt", True),
        ("KMS:encrypt", "kms:Encrypt", True),
        ("s3:Get*", "s3:GetObject", True),
        ("s3:Get*", "s3:PutObject", False),
        ("s3:Get?bject", "s3:GetObject", True),
        ("*", "iam:CreateUser", True),
        ("kms:Encrypt", "kms:EncryptX", False),
        ("kms:*", "s3:GetObject", False),
        ("kms:ReEncrypt*", "kms:ReEncryptFrom", True),
        ("kms:GenerateDataKey*", "kms:GenerateDataKeyWithoutPlaintext", True),
    ],
)
def test_action_matching(pattern: str, action: str, expected: bool) -> None:
    assert action_matches(pattern, action) is expected


@pytest.mark.parametrize(
    ("pattern", "resource", "expected"),
    [
        ("*", "arn:aws:s3:::bucket/key", True),
        ("arn:aws:s3:::bucket/*", "arn:aws:s3:::bucket/a/b/c", True),
        ("arn:aws:s3:::bucket/*", "arn:aws:s3:::bucket", False),
        ("arn:aws:s3:::Bucket/*", "arn:aws:s3:::bucket/a", False),  # case-sensitive
        ("arn:aws:kms:*", "arn:aws:kms:us-east-1:111122223333:key/abc", True),  # crosses ':'
        ("arn:aws:kms:*:111122223333:key/*", "arn:aws:kms:eu-west-1:111122223333:key/k", True),
        ("arn:aws:kms:*:111122223333:key/*", "arn:aws:kms:eu-west-1:444455556666:key/k", False),
        ("arn:aws:s3:::b?cket", "arn:aws:s3:::bucket", True),
    ],
)
def test_resource_matching(pattern: str, resource: str, expected: bool) -> None:
    assert resource_matches(compile_glob(pattern), resource) is expected


@pytest.mark.parametrize(
    ("pattern", "value", "expected"),
    [
        ("arn:aws:cloudtrail:*:111122223333:trail/*", "arn:aws:cloudtrail:us-east-1:111122223333:trail/t", True),
        # In ARN operators a wildcard does not cross ':' separators.
        ("arn:aws:iam::111122223333:*", "arn:aws:iam::111122223333:user/a", True),
        ("arn:aws:*:111122223333:user/a", "arn:aws:iam::111122223333:user/a", False),
        ("arn:aws:*:us-east-1:111122223333:key/k", "arn:aws:kms:x:us-east-1:111122223333:key/k", False),
        ("arn:aws:kms:*:*:key/k", "arn:aws:kms:us-east-1:111122223333:key/k", True),
        ("arn:aws:iam::*:role/x", "arn:aws:iam::111122223333:role/x", True),
        ("arn:aws:iam::*:role/x", "arn:aws:iam::111122223333:role/y", False),
        # The resource part may itself contain ':'.
        ("arn:aws:logs:us-east-1:111122223333:log-group:*", "arn:aws:logs:us-east-1:111122223333:log-group:g:*", True),
        # Not ARN-shaped pattern: plain glob.
        ("*", "anything", True),
        ("arn:aws:s3:::b", "not-an-arn", False),
    ],
)
def test_arn_pattern_matching(pattern: str, value: str, expected: bool) -> None:
    assert arn_pattern_matches(compile_glob(pattern), value) is expected


def test_pattern_round_trip() -> None:
    pat = compile_glob("a*b?c")
    assert pat == ("a", Wild.STAR, "b", Wild.QMARK, "c")
    assert pattern_to_text(pat) == "a*b?c"
