"""Condition operators, following the examples on
https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html
and the multivalued-key pages."""

from __future__ import annotations

import base64
import ipaddress
from datetime import datetime, timedelta, timezone
from collections.abc import Mapping
from typing import Any

import pytest

from common.policy.conditions import RequestContext, evaluate_conditions, parse_condition_block


def holds(condition: dict[str, Any], context: Mapping[str, object], *, variables: bool = True) -> bool:
    return evaluate_conditions(
        parse_condition_block(condition), RequestContext(context), variables_enabled=variables
    )


# ---------------------------------------------------------------- strings


@pytest.mark.parametrize(
    ("op", "policy", "value", "expected"),
    [
        ("StringEquals", "JohnDoe", "JohnDoe", True),
        ("StringEquals", "JohnDoe", "johndoe", False),
        ("StringEquals", "John*", "JohnDoe", False),  # no wildcards
        ("StringEquals", "John*", "John*", True),
        ("StringNotEquals", "JohnDoe", "JaneDoe", True),
        ("StringNotEquals", "JohnDoe", "JohnDoe", False),
        ("StringEqualsIgnoreCase", "JohnDoe", "JOHNDOE", True),
        ("StringNotEqualsIgnoreCase", "JohnDoe", "JOHNDOE", False),
        ("StringNotEqualsIgnoreCase", "JohnDoe", "Jane", True),
        ("StringLike", "home/JohnDoe/*", "home/JohnDoe/docs/a.txt", True),
        ("StringLike", "home/JohnDoe/*", "home/JaneDoe/a", False),
        ("StringLike", "ab?d", "abcd", True),
        ("StringLike", "ab?d", "ABCD", False),
        ("StringNotLike", "home/*", "tmp/x", True),
        ("StringNotLike", "home/*", "home/x", False),
    ],
)
def test_string_operators(op: str, policy: str, value: str, expected: bool) -> None:
    assert holds({op: {"aws:username": policy}}, {"aws:username": value}) is expected


def test_multiple_values_are_ored_and_negated_values_are_nored() -> None:
    cond = {"StringEquals": {"aws:PrincipalTag/job-category": ["iamuser-admin", "iamuser-read-only"]}}
    assert holds(cond, {"aws:PrincipalTag/job-category": "iamuser-read-only"})
    assert not holds(cond, {"aws:PrincipalTag/job-category": "other"})
    neg = {"StringNotEquals": {"aws:PrincipalTag/job-category": ["a", "b"]}}
    assert holds(neg, {"aws:PrincipalTag/job-category": "c"})
    assert not holds(neg, {"aws:PrincipalTag/job-category": "a"})
    assert not holds(neg, {"aws:PrincipalTag/job-category": "b"})


def test_multiple_keys_and_operators_are_anded() -> None:
    cond = {
        "StringEquals": {"aws:PrincipalTag/department": "finance", "aws:PrincipalTag/role": "audit"},
        "ArnLike": {"aws:PrincipalArn": "arn:aws:iam::222222222222:user/*"},
    }
    good = {
        "aws:PrincipalTag/department": "finance",
        "aws:PrincipalTag/role": "audit",
        "aws:PrincipalArn": "arn:aws:iam::222222222222:user/Mary",
    }
    assert holds(cond, good)
    assert not holds(cond, {**good, "aws:PrincipalTag/role": "dev"})
    assert not holds(cond, {**good, "aws:PrincipalArn": "arn:aws:iam::333333333333:user/Mary"})
    del good["aws:PrincipalTag/role"]
    assert not holds(cond, good)


def test_condition_keys_are_case_insensitive() -> None:
    assert holds({"StringEquals": {"AWS:UserName": "bob"}}, {"aws:username": "bob"})
    assert holds({"StringEquals": {"aws:username": "bob"}}, {"AWS:USERNAME": "bob"})
    # ... but values are not (except the IgnoreCase operators).
    assert not holds({"StringEquals": {"aws:username": "Bob"}}, {"aws:username": "bob"})


def test_empty_condition_block_holds() -> None:
    assert evaluate_conditions((), RequestContext({}))


def test_non_string_context_values_are_stringified() -> None:
    assert holds({"StringEquals": {"s3:max-keys": "10"}}, {"s3:max-keys": 10})
    assert holds({"StringEquals": {"aws:SecureTransport": "true"}}, {"aws:SecureTransport": True})


# ---------------------------------------------------------------- missing keys


@pytest.mark.parametrize(
    ("op", "expected"),
    [
        ("StringEquals", False),
        ("StringNotEquals", True),
        ("StringLike", False),
        ("StringNotLike", True),
        ("StringEqualsIgnoreCase", False),
        ("StringNotEqualsIgnoreCase", True),
        ("ArnLike", False),
        ("ArnNotLike", True),
        ("ArnEquals", False),
        ("ArnNotEquals", True),
        ("StringEqualsIfExists", True),
        ("StringNotEqualsIfExists", True),
        ("ArnLikeIfExists", True),
        ("ForAnyValue:StringEquals", False),
        ("ForAnyValue:StringNotEquals", False),
        ("ForAllValues:StringEquals", True),
        ("ForAllValues:StringNotEquals", True),
        ("ForAnyValue:StringEqualsIfExists", True),
    ],
)
def test_missing_key_semantics(op: str, expected: bool) -> None:
    assert holds({op: {"aws:SourceArn": "arn:aws:s3:::x"}}, {}) is expected


@pytest.mark.parametrize(
    ("op", "value", "expected"),
    [
        ("NumericLessThan", "10", False),
        ("NumericNotEquals", "10", True),
        ("NumericLessThanIfExists", "10", True),
        ("DateGreaterThan", "2020-01-01T00:00:00Z", False),
        ("DateNotEquals", "2020-01-01T00:00:00Z", True),
        ("IpAddress", "10.0.0.0/8", False),
        ("NotIpAddress", "10.0.0.0/8", True),
        ("IpAddressIfExists", "10.0.0.0/8", True),
        ("Bool", "true", False),
        ("BoolIfExists", "true", True),
        ("BinaryEquals", "QmluYXJ5", False),
    ],
)
def test_missing_key_semantics_other_families(op: str, value: str, expected: bool) -> None:
    assert holds({op: {"x:absent": value}}, {"x:other": "1"}) is expected


def test_if_exists_checks_value_when_present() -> None:
    # AWS example: "StringLikeIfExists": {"ec2:InstanceType": ["t1.*", "t2.*", "m3.*"]}
    cond = {"StringLikeIfExists": {"ec2:InstanceType": ["t1.*", "t2.*", "m3.*"]}}
    assert holds(cond, {"ec2:InstanceType": "t2.micro"})
    assert not holds(cond, {"ec2:InstanceType": "r5.large"})
    assert holds(cond, {})
    neg = {"StringNotEqualsIfExists": {"aws:RequestedRegion": "us-east-1"}}
    assert holds(neg, {})
    assert holds(neg, {"aws:RequestedRegion": "eu-west-1"})
    assert not holds(neg, {"aws:RequestedRegion": "us-east-1"})


# ---------------------------------------------------------------- Null


def test_null_operator() -> None:
    # AWS example: allow only when aws:TokenIssueTime is absent (no temporary credentials).
    absent = {"Null": {"aws:TokenIssueTime": "true"}}
    present = {"Null": {"aws:TokenIssueTime": "false"}}
    ctx = {"aws:TokenIssueTime": "2024-01-01T00:00:00Z"}
    assert holds(absent, {})
    assert not holds(absent, ctx)
    assert holds(present, ctx)
    assert not holds(present, {})
    # JSON booleans are accepted too; an empty list counts as absent.
    assert holds({"Null": {"aws:TagKeys": True}}, {"aws:TagKeys": []})
    assert holds({"Null": {"aws:TagKeys": False}}, {"aws:TagKeys": ["a"]})
    # None in the context is "absent".
    assert holds(absent, {"aws:TokenIssueTime": None})


# ---------------------------------------------------------------- numeric


@pytest.mark.parametrize(
    ("op", "policy", "value", "expected"),
    [
        ("NumericEquals", "10", 10, True),
        ("NumericEquals", "10", "10.0", True),
        ("NumericEquals", "10", 11, False),
        ("NumericNotEquals", "10", 11, True),
        ("NumericLessThan", "10", 9, True),
        ("NumericLessThan", "10", 10, False),
        ("NumericLessThanEquals", "10", 10, True),
        ("NumericGreaterThan", "10", 10.5, True),
        ("NumericGreaterThan", "10", 10, False),
        ("NumericGreaterThanEquals", "10", "10", True),
        ("NumericLessThan", "-1.5", -2, True),
        ("NumericLessThan", "10", "ten", False),  # non-numeric request value never matches
        ("NumericNotEquals", "10", "ten", True),
        ("NumericEquals", "1", True, False),  # booleans are not numbers
    ],
)
def test_numeric_operators(op: str, policy: str, value: object, expected: bool) -> None:
    assert holds({op: {"s3:max-keys": policy}}, {"s3:max-keys": value}) is expected


def test_numeric_policy_value_may_be_json_number() -> None:
    assert holds({"NumericLessThanEquals": {"s3:max-keys": 10}}, {"s3:max-keys": "10"})


# ---------------------------------------------------------------- dates


T = datetime(2024, 6, 1, 12, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    ("op", "policy", "value", "expected"),
    [
        ("DateEquals", "2024-06-01T12:00:00Z", T, True),
        ("DateEquals", "2024-06-01T14:00:00+02:00", T, True),
        ("DateEquals", str(int(T.timestamp())), T, True),  # epoch seconds
        ("DateNotEquals", "2024-06-01T12:00:00Z", T + timedelta(seconds=1), True),
        ("DateLessThan", "2024-06-01T12:00:01Z", T, True),
        ("DateLessThan", "2024-06-01T12:00:00Z", T, False),
        ("DateLessThanEquals", "2024-06-01T12:00:00Z", T, True),
        ("DateGreaterThan", "2024-06-01", T, True),  # date-only = midnight UTC
        ("DateGreaterThan", "2024-06-02", T, False),
        ("DateGreaterThanEquals", "2024-06-01T12:00:00.000Z", T, True),
        ("DateLessThan", "2024-06-02T00:00:00Z", "2024-06-01T23:59:59Z", True),  # ISO request value
        ("DateLessThan", "2024-06-02T00:00:00Z", int(T.timestamp()), True),  # epoch request value
        ("DateLessThan", "2024-06-02T00:00:00Z", datetime(2024, 6, 1), True),  # naive = UTC
        ("DateLessThan", "2024-06-02T00:00:00Z", "garbage", False),
    ],
)
def test_date_operators(op: str, policy: str, value: object, expected: bool) -> None:
    assert holds({op: {"aws:CurrentTime": policy}}, {"aws:CurrentTime": value}) is expected


def test_date_window_from_aws_docs() -> None:
    cond = {
        "DateGreaterThan": {"aws:CurrentTime": "2020-04-01T00:00:00Z"},
        "DateLessThan": {"aws:CurrentTime": "2020-06-30T23:59:59Z"},
    }
    assert holds(cond, {"aws:CurrentTime": "2020-05-15T08:00:00Z"})
    assert not holds(cond, {"aws:CurrentTime": "2020-07-01T00:00:00Z"})
    assert not holds(cond, {"aws:CurrentTime": "2020-03-31T23:59:59Z"})


# ---------------------------------------------------------------- bool / binary


@pytest.mark.parametrize(
    ("policy", "value", "expected"),
    [
        ("true", True, True),
        ("true", "true", True),
        ("TRUE", "True", True),
        ("false", False, True),
        ("false", True, False),
        ("true", "yes", False),
        ("true", 1, False),
    ],
)
def test_bool(policy: str, value: object, expected: bool) -> None:
    assert holds({"Bool": {"aws:SecureTransport": policy}}, {"aws:SecureTransport": value}) is expected


def test_deny_insecure_transport_pattern() -> None:
    # Typical bucket policy: Deny when aws:SecureTransport is false.
    cond = {"Bool": {"aws:SecureTransport": "false"}}
    assert holds(cond, {"aws:SecureTransport": False})
    assert not holds(cond, {"aws:SecureTransport": True})
    assert not holds(cond, {})


def test_binary_equals() -> None:
    blob = b"\x00\x01binary"
    b64 = base64.b64encode(blob).decode()
    assert holds({"BinaryEquals": {"x:key": b64}}, {"x:key": blob})
    assert holds({"BinaryEquals": {"x:key": b64}}, {"x:key": b64})
    assert not holds({"BinaryEquals": {"x:key": b64}}, {"x:key": b"other"})


# ---------------------------------------------------------------- IP


@pytest.mark.parametrize(
    ("op", "policy", "value", "expected"),
    [
        ("IpAddress", "203.0.113.0/24", "203.0.113.7", True),
        ("IpAddress", "203.0.113.0/24", "203.0.114.7", False),
        ("IpAddress", "203.0.113.7", "203.0.113.7", True),  # single address
        ("IpAddress", "203.0.113.0/24", "::ffff:203.0.113.9", True),  # IPv4-mapped
        ("IpAddress", "2001:DB8:1234:5678::/64", "2001:db8:1234:5678::1", True),
        ("IpAddress", "2001:DB8:1234:5678::/64", "2001:db8:1234:5679::1", False),
        ("IpAddress", "0.0.0.0/0", "2001:db8::1", False),  # families never mix
        ("IpAddress", "10.0.0.0/8", "not-an-ip", False),
        ("NotIpAddress", "203.0.113.0/24", "198.51.100.1", True),
        ("NotIpAddress", "203.0.113.0/24", "203.0.113.1", False),
        ("NotIpAddress", "2001:DB8::/32", "2001:db8::5", False),
    ],
)
def test_ip_operators(op: str, policy: str, value: object, expected: bool) -> None:
    assert holds({op: {"aws:SourceIp": policy}}, {"aws:SourceIp": value}) is expected


def test_ip_multiple_ranges_and_ip_objects() -> None:
    cond = {"IpAddress": {"aws:SourceIp": ["192.0.2.0/24", "2001:DB8:1234:5678::/64"]}}
    assert holds(cond, {"aws:SourceIp": ipaddress.ip_address("192.0.2.10")})
    assert holds(cond, {"aws:SourceIp": "2001:db8:1234:5678::abcd"})
    assert not holds(cond, {"aws:SourceIp": "198.51.100.1"})
    not_cond = {"NotIpAddress": {"aws:SourceIp": ["192.0.2.0/24", "203.0.113.0/24"]}}
    assert not holds(not_cond, {"aws:SourceIp": "203.0.113.5"})
    assert holds(not_cond, {"aws:SourceIp": "198.51.100.5"})


# ---------------------------------------------------------------- ARN


@pytest.mark.parametrize(
    ("op", "policy", "value", "expected"),
    [
        ("ArnEquals", "arn:aws:sns:us-west-2:123456789012:TopicA", "arn:aws:sns:us-west-2:123456789012:TopicA", True),
        ("ArnEquals", "arn:aws:sns:*:123456789012:Topic*", "arn:aws:sns:us-west-2:123456789012:TopicA", True),
        ("ArnLike", "arn:aws:cloudtrail:*:111122223333:trail/*", "arn:aws:cloudtrail:us-east-1:111122223333:trail/t", True),
        ("ArnLike", "arn:aws:cloudtrail:*:111122223333:trail/*", "arn:aws:cloudtrail:us-east-1:999999999999:trail/t", False),
        ("ArnLike", "arn:aws:cloudtrail:*:111122223333:trail/*", "not-an-arn", False),
        ("ArnNotEquals", "arn:aws:sns:us-west-2:123456789012:TopicA", "arn:aws:sns:us-west-2:123456789012:TopicB", True),
        ("ArnNotLike", "arn:aws:iam::*:role/Admin*", "arn:aws:iam::111122223333:role/AdminX", False),
        ("ArnNotLike", "arn:aws:iam::*:role/Admin*", "arn:aws:iam::111122223333:role/Dev", True),
    ],
)
def test_arn_operators(op: str, policy: str, value: str, expected: bool) -> None:
    assert holds({op: {"aws:SourceArn": policy}}, {"aws:SourceArn": value}) is expected


# ---------------------------------------------------------------- set operators


def test_for_all_values() -> None:
    # AWS example: only allow tag keys from an approved list.
    cond = {"ForAllValues:StringEquals": {"aws:TagKeys": ["environment", "cost-center"]}}
    assert holds(cond, {"aws:TagKeys": ["environment"]})
    assert holds(cond, {"aws:TagKeys": ["environment", "cost-center"]})
    assert not holds(cond, {"aws:TagKeys": ["environment", "owner"]})
    # Missing or empty key: ForAllValues is (vacuously) true.
    assert holds(cond, {})
    assert holds(cond, {"aws:TagKeys": []})


def test_for_all_values_like() -> None:
    cond = {"ForAllValues:StringLike": {"aws:TagKeys": "Created*"}}
    assert holds(cond, {"aws:TagKeys": ["CreatedBy", "CreatedAt"]})
    assert not holds(cond, {"aws:TagKeys": ["CreatedBy", "Owner"]})


def test_for_any_value() -> None:
    cond = {"ForAnyValue:StringEquals": {"aws:TagKeys": ["environment", "cost-center"]}}
    assert holds(cond, {"aws:TagKeys": ["owner", "environment"]})
    assert not holds(cond, {"aws:TagKeys": ["owner"]})
    assert not holds(cond, {})
    assert not holds(cond, {"aws:TagKeys": []})


def test_negated_set_operators() -> None:
    # ForAllValues:StringNotEquals: no request value may be in the list.
    all_not = {"ForAllValues:StringNotEquals": {"aws:TagKeys": ["secret", "internal"]}}
    assert holds(all_not, {"aws:TagKeys": ["a", "b"]})
    assert not holds(all_not, {"aws:TagKeys": ["a", "secret"]})
    assert holds(all_not, {})
    # ForAnyValue:StringNotEquals: at least one request value outside the list.
    any_not = {"ForAnyValue:StringNotEquals": {"aws:TagKeys": ["secret", "internal"]}}
    assert holds(any_not, {"aws:TagKeys": ["secret", "other"]})
    assert not holds(any_not, {"aws:TagKeys": ["secret", "internal"]})
    assert not holds(any_not, {})


def test_multivalued_key_without_set_operator() -> None:
    assert holds({"StringEquals": {"aws:TagKeys": "a"}}, {"aws:TagKeys": ["b", "a"]})
    assert not holds({"StringNotEquals": {"aws:TagKeys": "a"}}, {"aws:TagKeys": ["b", "a"]})
    assert holds({"StringNotEquals": {"aws:TagKeys": "a"}}, {"aws:TagKeys": ["b", "c"]})


def test_set_operator_with_if_exists() -> None:
    cond = {"ForAllValues:StringEqualsIfExists": {"aws:TagKeys": ["a"]}}
    assert holds(cond, {})
    assert not holds(cond, {"aws:TagKeys": ["b"]})


def test_set_operators_with_other_families() -> None:
    assert holds({"ForAnyValue:ArnLike": {"x:arns": "arn:aws:iam::*:role/a"}}, {"x:arns": ["arn:aws:iam::1:user/b", "arn:aws:iam::2:role/a"]})
    assert holds({"ForAllValues:IpAddress": {"x:ips": "10.0.0.0/8"}}, {"x:ips": ["10.1.1.1", "10.2.2.2"]})
    assert not holds({"ForAllValues:IpAddress": {"x:ips": "10.0.0.0/8"}}, {"x:ips": ["10.1.1.1", "11.2.2.2"]})
    assert holds({"ForAnyValue:NumericGreaterThan": {"x:nums": "5"}}, {"x:nums": [1, 9]})


# ---------------------------------------------------------------- variables in conditions


def test_variables_in_string_conditions() -> None:
    cond = {"StringLike": {"s3:prefix": ["home/${aws:username}/*"]}}
    assert holds(cond, {"aws:username": "bob", "s3:prefix": "home/bob/docs"})
    assert not holds(cond, {"aws:username": "bob", "s3:prefix": "home/alice/docs"})
    # Unresolvable variable -> that value matches nothing.
    assert not holds(cond, {"s3:prefix": "home/bob/docs"})
    assert holds({"StringNotLike": {"s3:prefix": "home/${aws:username}/*"}}, {"s3:prefix": "home/bob/x"})


def test_variables_are_literal_in_2008_policies() -> None:
    cond = {"StringEquals": {"x:key": "${aws:username}"}}
    assert not holds(cond, {"aws:username": "bob", "x:key": "bob"}, variables=False)
    assert holds(cond, {"aws:username": "bob", "x:key": "${aws:username}"}, variables=False)


def test_variables_in_arn_and_bool_conditions() -> None:
    assert holds(
        {"ArnEquals": {"aws:SourceArn": "arn:aws:iam::${aws:PrincipalAccount}:user/*"}},
        {"aws:PrincipalAccount": "111122223333", "aws:SourceArn": "arn:aws:iam::111122223333:user/x"},
    )
    assert holds({"Bool": {"x:flag": "${x:expected}"}}, {"x:expected": "true", "x:flag": True})


def test_principal_tag_variable() -> None:
    cond = {"StringEquals": {"aws:ResourceTag/project": "${aws:PrincipalTag/project}"}}
    ctx = {"aws:PrincipalTag/project": "apollo", "aws:ResourceTag/project": "apollo"}
    assert holds(cond, ctx)
    assert not holds(cond, {**ctx, "aws:ResourceTag/project": "gemini"})
