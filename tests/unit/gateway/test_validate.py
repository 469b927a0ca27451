"""Model-driven validation with AWS's exact messages (pinned)."""

from __future__ import annotations

import pytest

from common.errors import ValidationException
from gateway.aws import spec, validate


def _input(service: str, op: str):  # type: ignore[no-untyped-def]
    model = spec.load(service).operation(op)
    assert model is not None
    return model.input_shape


def _message(service: str, op: str, params: dict) -> str:
    with pytest.raises(ValidationException) as info:
        validate.validate(_input(service, op), params)
    return info.value.message


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
