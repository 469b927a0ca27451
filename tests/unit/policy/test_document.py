from __future__ import annotations

import json
from typing import Any

import pytest

from common.policy import MalformedPolicyError, Policy, PrincipalSpec, Statement, parse_policy
from common.policy.conditions import SetQualifier


def test_parse_single_statement_object_and_string_values() -> None:
    policy = parse_policy(
        '{"Version":"2012-10-17","Statement":{"Sid":"A","Effect":"Allow",'
        '"Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*"}}'
    )
    assert isinstance(policy, Policy)
    assert policy.version == "2012-10-17"
    assert policy.variables_enabled
    assert policy.statements == (
        Statement(effect="Allow", sid="A", action=("s3:GetObject",), resource=("arn:aws:s3:::b/*",)),
    )


def test_parse_list_of_statements_from_dict_and_bytes() -> None:
    doc: dict[str, Any] = {
        "Version": "2008-10-17",
        "Id": "key-default-1",
        "Statement": [
            {"Effect": "Allow", "Action": ["kms:Encrypt", "kms:Decrypt"], "Resource": "*"},
            {"Effect": "Deny", "NotAction": "kms:*", "NotResource": ["arn:aws:kms:*"]},
        ],
    }
    a = parse_policy(doc)
    b = parse_policy(json.dumps(doc).encode())
    assert a == b
    assert a.id == "key-default-1"
    assert not a.variables_enabled
    assert a.statements[0].action == ("kms:Encrypt", "kms:Decrypt")
    assert a.statements[1].not_action == ("kms:*",)
    assert a.statements[1].not_resource == ("arn:aws:kms:*",)


def test_missing_version_defaults_to_2008() -> None:
    p = parse_policy({"Statement": {"Effect": "Allow", "Action": "*", "Resource": "*"}})
    assert p.version == "2008-10-17"
    assert not p.variables_enabled


@pytest.mark.parametrize(
    ("principal", "expected"),
    [
        ("*", PrincipalSpec(wildcard=True)),
        ({"AWS": "*"}, PrincipalSpec(wildcard=True)),
        ({"AWS": "111122223333"}, PrincipalSpec(aws=("111122223333",))),
        (
            {"AWS": ["arn:aws:iam::111122223333:root", "arn:aws:iam::111122223333:user/bob"]},
            PrincipalSpec(aws=("arn:aws:iam::111122223333:root", "arn:aws:iam::111122223333:user/bob")),
        ),
        ({"Service": "cloudtrail.amazonaws.com"}, PrincipalSpec(service=("cloudtrail.amazonaws.com",))),
        ({"Federated": "cognito-identity.amazonaws.com"}, PrincipalSpec(federated=("cognito-identity.amazonaws.com",))),
        ({"CanonicalUser": "79a59df900b949e55d96a1e698fbaced"}, PrincipalSpec(canonical_user=("79a59df900b949e55d96a1e698fbaced",))),
        ({"AWS": "AIDAJQABLZS4A3QDU576Q"}, PrincipalSpec(aws=("AIDAJQABLZS4A3QDU576Q",))),
    ],
)
def test_principal_forms(principal: Any, expected: PrincipalSpec) -> None:
    p = parse_policy({"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Principal": principal, "Action": "s3:*", "Resource": "*"}})
    assert p.statements[0].principal == expected


def test_not_principal_parsed() -> None:
    p = parse_policy({"Statement": {"Effect": "Deny", "NotPrincipal": {"AWS": "111122223333"}, "Action": "s3:*", "Resource": "*"}})
    assert p.statements[0].not_principal == PrincipalSpec(aws=("111122223333",))
    assert p.statements[0].principal is None


def test_condition_parsing() -> None:
    p = parse_policy(
        {
            "Statement": {
                "Effect": "Allow",
                "Action": "s3:*",
                "Resource": "*",
                "Condition": {
                    "forallvalues:stringlikeifexists": {"aws:TagKeys": ["a*", "b"]},
                    "Bool": {"aws:SecureTransport": True},
                    "NumericLessThan": {"s3:max-keys": 10},
                },
            }
        }
    )
    clauses = p.statements[0].conditions
    assert [c.operator for c in clauses] == ["ForAllValues:StringLikeIfExists", "Bool", "NumericLessThan"]
    assert clauses[0].qualifier is SetQualifier.FOR_ALL_VALUES and clauses[0].if_exists
    assert clauses[0].base == "StringLike"
    assert clauses[1].values == ("true",)
    assert clauses[2].values == ("10",)


MALFORMED: list[tuple[Any, str]] = [
    ("not json", "Syntax errors in policy."),
    ("[]", "Syntax errors in policy."),
    ('{"Statement": {"Effect": "Allow", "Action": "*", "Resource": "*"}, "Statement": []}', "duplicate"),
    ('{"Statement": {"Effect": "Allow", "Action": "*", "Resource": "*", "Condition": {"NumericEquals": {"a:b": NaN}}}}', "NaN"),
    ({"Version": "2020-01-01", "Statement": []}, "legacy parsing"),
    ({"Version": "2012-10-17"}, "Statement"),
    ({"Statement": {"Action": "*", "Resource": "*"}}, "Effect"),
    ({"Statement": {"Effect": "Permit", "Action": "*", "Resource": "*"}}, "Invalid effect"),
    ({"Statement": {"Effect": "allow", "Action": "*", "Resource": "*"}}, "Invalid effect"),
    ({"Statement": {"Effect": "Allow", "Resource": "*"}}, "Action"),
    ({"Statement": {"Effect": "Allow", "Action": [], "Resource": "*"}}, "actions"),
    ({"Statement": {"Effect": "Allow", "Action": "s3:*", "NotAction": "s3:Get*", "Resource": "*"}}, "both Action and NotAction"),
    ({"Statement": {"Effect": "Allow", "Action": "*", "Resource": "*", "NotResource": "*"}}, "both Resource and NotResource"),
    ({"Statement": {"Effect": "Allow", "Action": "*", "Principal": "*", "NotPrincipal": "*"}}, "both Principal and NotPrincipal"),
    ({"Statement": {"Effect": "Allow", "Action": "GetObject", "Resource": "*"}}, "vendor"),
    ({"Statement": {"Effect": "Allow", "Action": "s*:GetObject", "Resource": "*"}}, "wildcards"),
    ({"Statement": {"Effect": "Allow", "Action": 5, "Resource": "*"}}, "strings"),
    ({"Statement": {"Effect": "Allow", "Action": "*", "Resource": "bucket"}}, "ARN format"),
    ({"Statement": {"Effect": "Allow", "Action": "*", "Resource": "*", "Extra": 1}}, "unknown field"),
    ({"Statement": {"Effect": "Allow", "Action": "*", "Resource": "*"}, "Foo": 1}, "unknown field"),
    ({"Statement": {"Effect": "Allow", "Action": "*", "Resource": "*", "Condition": {"StringEqualz": {"a:b": "c"}}}}, "Invalid Condition type"),
    ({"Statement": {"Effect": "Allow", "Action": "*", "Resource": "*", "Condition": {"ForSomeValues:StringEquals": {"a:b": "c"}}}}, "Invalid Condition type"),
    ({"Statement": {"Effect": "Allow", "Action": "*", "Resource": "*", "Condition": {"NullIfExists": {"a:b": "true"}}}}, "Invalid Condition type"),
    ({"Statement": {"Effect": "Allow", "Action": "*", "Resource": "*", "Condition": {"StringEquals": {"nokey": "c"}}}}, "vendor"),
    ({"Statement": {"Effect": "Allow", "Action": "*", "Resource": "*", "Condition": {"StringEquals": {"a:b": {"x": 1}}}}}, "Condition value"),
    ({"Statement": {"Effect": "Allow", "Action": "*", "Resource": "*", "Condition": {"StringEquals": "x"}}}, "Syntax errors"),
    ({"Statement": {"Effect": "Allow", "Action": "*", "Resource": "*", "Condition": []}}, "Condition must be an object"),
    ({"Statement": {"Effect": "Allow", "Action": "*", "Resource": "*", "Condition": {"NumericLessThan": {"a:b": "ten"}}}}, "Invalid value"),
    ({"Statement": {"Effect": "Allow", "Action": "*", "Resource": "*", "Condition": {"DateLessThan": {"a:b": "tomorrow"}}}}, "Invalid value"),
    ({"Statement": {"Effect": "Allow", "Action": "*", "Resource": "*", "Condition": {"IpAddress": {"aws:SourceIp": "300.1.1.1/8"}}}}, "Invalid value"),
    ({"Statement": {"Effect": "Allow", "Action": "*", "Resource": "*", "Condition": {"Bool": {"aws:SecureTransport": "yes"}}}}, "Invalid value"),
    ({"Statement": {"Effect": "Allow", "Action": "*", "Resource": "*", "Condition": {"Null": {"a:b": "maybe"}}}}, "Invalid value"),
    ({"Statement": {"Effect": "Allow", "Action": "*", "Resource": "*", "Condition": {"BinaryEquals": {"a:b": "!!notbase64"}}}}, "Invalid value"),
    ({"Statement": {"Effect": "Allow", "Action": "*", "Resource": "*", "Principal": "someone"}}, "Invalid principal"),
    ({"Statement": {"Effect": "Allow", "Action": "*", "Resource": "*", "Principal": {"AWS": "arn:aws:iam::111122223333:user/*"}}}, "Invalid principal"),
    ({"Statement": {"Effect": "Allow", "Action": "*", "Resource": "*", "Principal": {"AWS": "bob"}}}, "Invalid principal"),
    ({"Statement": {"Effect": "Allow", "Action": "*", "Resource": "*", "Principal": {"Service": "*"}}}, "Invalid principal"),
    ({"Statement": {"Effect": "Allow", "Action": "*", "Resource": "*", "Principal": {"User": "x"}}}, "Invalid principal"),
    ({"Statement": {"Effect": "Allow", "Action": "*", "Resource": "*", "Principal": {}}}, "Invalid principal"),
    ({"Statement": {"Effect": "Allow", "Action": "*", "Resource": "*", "Sid": 3}}, "Sid"),
    ({"Statement": ["not an object"]}, "Statement must be an object"),
]


@pytest.mark.parametrize(("doc", "fragment"), MALFORMED)
def test_malformed_documents(doc: Any, fragment: str) -> None:
    with pytest.raises(MalformedPolicyError) as info:
        parse_policy(doc)
    assert fragment.lower() in info.value.message.lower()
    assert str(info.value) == info.value.message


def test_malformed_json_message_matches_iam() -> None:
    with pytest.raises(MalformedPolicyError) as info:
        parse_policy("{")
    assert info.value.message == "Syntax errors in policy."


IDENTITY_STMT = {"Effect": "Allow", "Action": "s3:*", "Resource": "*"}


def test_policy_type_identity_rules() -> None:
    parse_policy({"Statement": IDENTITY_STMT}, policy_type="identity")
    with pytest.raises(MalformedPolicyError, match="principal"):
        parse_policy({"Statement": {**IDENTITY_STMT, "Principal": "*"}}, policy_type="identity")
    with pytest.raises(MalformedPolicyError, match="resources"):
        parse_policy({"Statement": {"Effect": "Allow", "Action": "s3:*"}}, policy_type="identity")


def test_policy_type_resource_rules() -> None:
    parse_policy({"Statement": {**IDENTITY_STMT, "Principal": "*"}}, policy_type="resource")
    with pytest.raises(MalformedPolicyError, match="Principal"):
        parse_policy({"Statement": IDENTITY_STMT}, policy_type="resource")
    with pytest.raises(MalformedPolicyError, match="resources"):
        parse_policy({"Statement": {"Effect": "Allow", "Action": "s3:*", "Principal": "*"}}, policy_type="resource")


def test_policy_type_trust_rules() -> None:
    trust = {"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"Service": "ec2.amazonaws.com"}}
    parse_policy({"Statement": trust}, policy_type="trust")
    with pytest.raises(MalformedPolicyError, match="prohibited field Resource"):
        parse_policy({"Statement": {**trust, "Resource": "*"}}, policy_type="trust")
    with pytest.raises(MalformedPolicyError, match="Principal"):
        parse_policy({"Statement": {"Effect": "Allow", "Action": "sts:AssumeRole"}}, policy_type="trust")


def test_empty_statement_list_is_valid_and_grants_nothing() -> None:
    assert parse_policy({"Version": "2012-10-17", "Statement": []}).statements == ()


def test_parsed_objects_are_frozen() -> None:
    p = parse_policy({"Statement": IDENTITY_STMT})
    with pytest.raises(AttributeError):
        p.version = "x"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        p.statements[0].effect = "Deny"  # type: ignore[misc]
