"""The KMS service validates every request against botocore's model before its use case runs.

Messages are pinned as the KMS API gives them to direct gRPC clients (services/kms/service.py
VALIDATION_RULES): top-level members only, "" is absent, missing required members first, one
violation per member, patterns found with ``re.search``, sensitive strings quoted.
"""

from __future__ import annotations

from typing import Any

import pytest

from common.errors import AwsError
from services.kms.service import KmsService
from tests.unit.kms.conftest import ROOT

PREFIX_1 = "1 validation error detected: "
PREFIX_2 = "2 validation errors detected: "


async def _message(kms: KmsService, op: str, **params: Any) -> str:
    with pytest.raises(AwsError) as info:
        await kms.dispatch(op, ROOT, params)
    assert info.value.code == "ValidationException"
    return str(info.value.message)


async def test_blob_too_long_is_not_echoed(kms: KmsService) -> None:
    assert await _message(kms, "Encrypt", KeyId="k", Plaintext=b"x" * 4097) == PREFIX_1 + (
        "Value at 'plaintext' failed to satisfy constraint: Member must have length less than or equal to 4096")


async def test_empty_string_is_absent_but_empty_blob_is_short(kms: KmsService) -> None:
    assert await _message(kms, "Encrypt", KeyId="", Plaintext=b"") == PREFIX_2 + (
        "Value null at 'keyId' failed to satisfy constraint: Member must not be null; "
        "Value at 'plaintext' failed to satisfy constraint: Member must have length greater than or equal to 1")


async def test_missing_required_members_come_first(kms: KmsService) -> None:
    assert await _message(kms, "ListGrants", Limit=0) == PREFIX_2 + (
        "Value null at 'keyId' failed to satisfy constraint: Member must not be null; "
        "Value '0' at 'limit' failed to satisfy constraint: Member must have value greater than or equal to 1")
    assert await _message(kms, "Sign", KeyId="k", Message=b"m", MessageType="X") == PREFIX_2 + (
        "Value null at 'signingAlgorithm' failed to satisfy constraint: Member must not be null; "
        "Value 'X' at 'messageType' failed to satisfy constraint: Member must satisfy enum value set: "
        "[RAW, DIGEST, EXTERNAL_MU]")


async def test_one_violation_per_member(kms: KmsService) -> None:
    name = "alias/" + "a b" * 100
    assert await _message(kms, "CreateAlias", AliasName=name, TargetKeyId="k") == PREFIX_1 + (
        f"Value '{name}' at 'aliasName' failed to satisfy constraint: "
        "Member must have length less than or equal to 256")


async def test_patterns_must_match_the_whole_value(kms: KmsService) -> None:
    assert await _message(kms, "PutKeyPolicy", KeyId="k", PolicyName="x", Policy="\u20ac") == PREFIX_1 + (
        "Value '\u20ac' at 'policy' failed to satisfy constraint: Member must satisfy regular expression "
        "pattern: [\\u0009\\u000A\\u000D\\u0020-\\u00FF]+")
    # As AWS (Java's matches): "default policy" contains a match of [\w]+ but is not one.
    assert await _message(kms, "GetKeyPolicy", KeyId="k", PolicyName="default policy") == PREFIX_1 + (
        "Value 'default policy' at 'policyName' failed to satisfy constraint: Member must satisfy "
        "regular expression pattern: [\\w]+")


async def test_sensitive_values_are_not_echoed(kms: KmsService) -> None:
    # The password must not reach the error message (nor the CloudTrail errorMessage).
    message = await _message(kms, "CreateCustomKeyStore", CustomKeyStoreName="s", KeyStorePassword="short")
    assert message == PREFIX_1 + (
        "Value at 'keyStorePassword' failed to satisfy constraint: "
        "Member must have length greater than or equal to 7")
    assert "short" not in message


async def test_nested_members_are_left_to_the_use_case(kms: KmsService) -> None:
    with pytest.raises(AwsError) as info:
        await kms.dispatch("CreateKey", ROOT, {"Tags": [{"TagKey": "", "TagValue": "v"}]})
    assert (info.value.code, info.value.message) == (
        "TagException", "Tag keys must be 1-128 characters and values 0-256 characters.")
