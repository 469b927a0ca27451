"""Model-driven validation with AWS's exact messages (pinned), and the Rules that change them."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.model import Shape

from common import aws_validation as validate
from common.aws_validation import OperationValidator, Rules, service_model
from common.errors import ValidationException


def _input(service: str, op: str) -> Shape:
    shape = service_model(service).operation_model(op).input_shape
    assert shape is not None
    return shape


def _message(service: str, op: str, params: dict[str, Any], rules: Rules = validate.AWS_RULES) -> str:
    with pytest.raises(ValidationException) as info:
        validate.validate(_input(service, op), params, rules)
    return str(info.value.message)


def test_blob_too_long_hides_the_value() -> None:
    assert _message("kms", "Encrypt", {"KeyId": "k", "Plaintext": b"x" * 4097}) == (
        "1 validation error detected: Value at 'plaintext' failed to satisfy constraint: "
        "Member must have length less than or equal to 4096")


def test_exactly_at_the_limit_passes() -> None:
    validate.validate(_input("kms", "Encrypt"), {"KeyId": "k", "Plaintext": b"x" * 4096})


def test_required_member_missing() -> None:
    assert _message("kms", "DescribeKey", {}) == (
        "1 validation error detected: Value null at 'keyId' failed to satisfy constraint: "
        "Member must not be null")


def test_string_too_short_quotes_the_value() -> None:
    assert _message("kms", "DescribeKey", {"KeyId": ""}) == (
        "1 validation error detected: Value '' at 'keyId' failed to satisfy constraint: "
        "Member must have length greater than or equal to 1")


def test_two_errors_in_member_order() -> None:
    assert _message("kms", "Encrypt", {"KeyId": "", "Plaintext": b""}) == (
        "2 validation errors detected: "
        "Value '' at 'keyId' failed to satisfy constraint: Member must have length greater than or equal to 1; "
        "Value at 'plaintext' failed to satisfy constraint: Member must have length greater than or equal to 1")


def test_enum() -> None:
    assert _message("kms", "Encrypt", {"KeyId": "k", "Plaintext": b"x",
                                       "EncryptionAlgorithm": "ROT13"}) == (
        "1 validation error detected: Value 'ROT13' at 'encryptionAlgorithm' failed to satisfy "
        "constraint: Member must satisfy enum value set: "
        "[SYMMETRIC_DEFAULT, RSAES_OAEP_SHA_1, RSAES_OAEP_SHA_256, SM2PKE]")


def test_integer_range() -> None:
    assert _message("kms", "GenerateRandom", {"NumberOfBytes": 0}) == (
        "1 validation error detected: Value '0' at 'numberOfBytes' failed to satisfy constraint: "
        "Member must have value greater than or equal to 1")
    assert _message("kms", "GenerateRandom", {"NumberOfBytes": 1025}) == (
        "1 validation error detected: Value '1025' at 'numberOfBytes' failed to satisfy "
        "constraint: Member must have value less than or equal to 1024")


def test_list_length() -> None:
    msg = _message("kms", "Encrypt", {"KeyId": "k", "Plaintext": b"x",
                                      "GrantTokens": ["t"] * 11})
    assert msg == ("1 validation error detected: Value '[t, t, t, t, t, t, t, t, t, t, t]' at "
                   "'grantTokens' failed to satisfy constraint: Member must have length less "
                   "than or equal to 10")


def test_nested_list_element_path() -> None:
    msg = _message("kms", "CreateKey", {"Tags": [{"TagKey": "ok", "TagValue": "v"},
                                                 {"TagKey": "", "TagValue": "v"}]})
    assert msg == ("1 validation error detected: Value '' at 'tags.2.member.tagKey' failed to "
                   "satisfy constraint: Member must have length greater than or equal to 1")


def test_nested_required_member() -> None:
    msg = _message("kms", "CreateKey", {"Tags": [{"TagKey": "k"}]})
    assert msg == ("1 validation error detected: Value null at 'tags.1.member.tagValue' failed "
                   "to satisfy constraint: Member must not be null")


def test_pattern_full_match() -> None:
    msg = _message("iam", "CreateUser", {"UserName": "bad name"})
    assert msg == ("1 validation error detected: Value 'bad name' at 'userName' failed to satisfy "
                   "constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]+")
    validate.validate(_input("iam", "CreateUser"), {"UserName": "good.name@x-1"})


def test_unicode_property_patterns_are_translated() -> None:
    validate.validate(_input("iam", "CreateUser"),
                      {"UserName": "u", "Tags": [{"Key": "Team Ünïcode", "Value": "ÄÖ 1"}]})
    msg = _message("iam", "CreateUser", {"UserName": "u", "Tags": [{"Key": "bad#key", "Value": "v"}]})
    assert "at 'tags.1.member.key' failed to satisfy constraint: Member must satisfy regular " \
           "expression pattern" in msg


def test_sensitive_string_value_not_echoed() -> None:
    # CreateCustomKeyStore.KeyStorePassword is a sensitive string (min 7).
    msg = _message("kms", "CreateCustomKeyStore", {"CustomKeyStoreName": "s",
                                                   "KeyStorePassword": "short"})
    assert msg == ("1 validation error detected: Value at 'keyStorePassword' failed to satisfy "
                   "constraint: Member must have length greater than or equal to 7")
    assert "short" not in msg


def test_map_entries_checked() -> None:
    # IAM has no map inputs; KMS EncryptionContext values have no constraints: a valid call.
    validate.validate(_input("kms", "Encrypt"), {"KeyId": "k", "Plaintext": b"x",
                                                 "EncryptionContext": {"": ""}})


def test_no_input_shape() -> None:
    assert validate.violations(None, {"x": 1}) == []


def test_botocore_param_validator_would_miss_these() -> None:
    """The reason this module exists (FACTS.md): botocore skips max/enum/pattern."""
    from botocore.validate import ParamValidator

    shape = _input("kms", "Encrypt")
    report = ParamValidator().validate({"KeyId": "k", "Plaintext": b"x" * 5000,
                                        "EncryptionAlgorithm": "ROT13"}, shape)
    assert not report.has_errors()
    assert len(validate.violations(shape, {"KeyId": "k", "Plaintext": b"x" * 5000,
                                           "EncryptionAlgorithm": "ROT13"})) == 2


# ---------------------------------------------------------------- Rules: each flag against AWS's default

def test_nested_false_checks_only_top_level_members() -> None:
    top = Rules(nested=False)
    bad_tag = {"Tags": [{"TagKey": "", "TagValue": "v"}]}
    assert validate.violations(_input("kms", "CreateKey"), bad_tag, top) == []
    assert len(validate.violations(_input("kms", "CreateKey"), bad_tag)) == 1
    # The top-level list's own length still counts.
    assert _message("kms", "Encrypt", {"KeyId": "k", "Plaintext": b"x", "GrantTokens": ["t"] * 11}, top) == (
        "1 validation error detected: Value '[t, t, t, t, t, t, t, t, t, t, t]' at 'grantTokens' failed to "
        "satisfy constraint: Member must have length less than or equal to 10")


def test_empty_is_absent() -> None:
    rules = Rules(empty_is_absent=True)
    assert _message("kms", "DescribeKey", {"KeyId": ""}, rules) == (
        "1 validation error detected: Value null at 'keyId' failed to satisfy constraint: "
        "Member must not be null")
    assert validate.violations(_input("kms", "ListAliases"), {"Marker": ""}, rules) == []
    # Only the empty *string*: an empty blob is still too short.
    assert _message("kms", "Encrypt", {"KeyId": "k", "Plaintext": b""}, rules) == (
        "1 validation error detected: Value at 'plaintext' failed to satisfy constraint: "
        "Member must have length greater than or equal to 1")


def test_required_first() -> None:
    limit = "Value '0' at 'limit' failed to satisfy constraint: Member must have value greater than or equal to 1"
    key_id = "Value null at 'keyId' failed to satisfy constraint: Member must not be null"
    assert validate.violations(_input("kms", "ListGrants"), {"Limit": 0}) == [limit, key_id]
    assert validate.violations(_input("kms", "ListGrants"), {"Limit": 0}, Rules(required_first=True)) == [
        key_id, limit]


def test_first_per_member() -> None:
    name = "alias/" + "a b" * 100  # too long, and a space
    at = f"Value '{name}' at 'aliasName' failed to satisfy constraint: "
    too_long = at + "Member must have length less than or equal to 256"
    pattern = at + "Member must satisfy regular expression pattern: ^[a-zA-Z0-9:/_-]+$"
    params = {"AliasName": name, "TargetKeyId": "k"}
    assert validate.violations(_input("kms", "CreateAlias"), params) == [too_long, pattern]
    assert validate.violations(_input("kms", "CreateAlias"), params, Rules(first_per_member=True)) == [too_long]


def test_patterns_match_whole_values() -> None:
    params = {"KeyId": "k", "PolicyName": "default policy", "Policy": "{}"}
    assert _message("kms", "PutKeyPolicy", params) == (
        "1 validation error detected: Value 'default policy' at 'policyName' failed to satisfy constraint: "
        "Member must satisfy regular expression pattern: [\\w]+")


def test_sensitive_values_and_blobs_are_never_echoed() -> None:
    assert _message("kms", "CreateCustomKeyStore", {"CustomKeyStoreName": "s", "KeyStorePassword": "short"}) == (
        "1 validation error detected: Value at 'keyStorePassword' failed to satisfy constraint: "
        "Member must have length greater than or equal to 7")
    assert "Value at 'plaintext'" in _message("kms", "Encrypt", {"KeyId": "k", "Plaintext": b""})


def test_rules_compile_separately_for_one_shape() -> None:
    shape = _input("kms", "DescribeKey")
    assert validate.violations(shape, {"KeyId": ""}) != validate.violations(
        shape, {"KeyId": ""}, Rules(empty_is_absent=True))


# ---------------------------------------------------------------- OperationValidator

def test_operation_validator_by_name() -> None:
    validator = OperationValidator(service_model("kms"))
    with pytest.raises(ValidationException) as info:
        validator.validate("Encrypt", {"KeyId": "k", "Plaintext": b"x" * 4097})
    assert info.value.message == _message("kms", "Encrypt", {"KeyId": "k", "Plaintext": b"x" * 4097})
    validator.validate("Encrypt", {"KeyId": "k", "Plaintext": b"x"})


def test_operation_validator_passes_unknown_operations() -> None:
    OperationValidator(service_model("kms")).validate("NoSuchOperation", {"KeyId": ""})
