"""Arbitrary JSON / Query input never escapes as anything but an AWS error (never a 500)."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from common.aws_validation import validate
from common.errors import AwsError
from gateway.aws import shapes, spec
from gateway.aws.protocols import json as json_protocol
from gateway.aws.protocols import query as query_protocol
from gateway.backends import kms

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12)

KMS_OPS = ["Encrypt", "CreateKey", "ListKeys", "CreateGrant", "GenerateDataKey", "ReEncrypt", "TagResource"]


def _run_json(op_name: str, body: bytes) -> None:
    op = kms.BINDING.operation(op_name)
    assert op is not None
    try:
        params = json_protocol.parse_request(op.model.input_shape, body)
        validate(op.model.input_shape, params)
        shapes.to_message(op.model.input_shape, op.request, params)
    except AwsError:
        pass


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(op=st.sampled_from(KMS_OPS),
       members=st.dictionaries(st.sampled_from(["KeyId", "Plaintext", "EncryptionContext", "GrantTokens",
                                                "Tags", "Limit", "Operations", "Constraints",
                                                "NumberOfBytes", "KeySpec", "DryRun", "Policy",
                                                "SourceCiphertextBlob", "DestinationKeyId"]),
                               json_values, max_size=6))
def test_json_members_of_any_type(op: str, members: dict[str, Any]) -> None:
    _run_json(op, json.dumps(members).encode())


@settings(max_examples=200, deadline=None)
@given(op=st.sampled_from(KMS_OPS), body=st.binary(max_size=64))
def test_json_arbitrary_bytes(op: str, body: bytes) -> None:
    _run_json(op, body)


def test_json_pathological_inputs() -> None:
    for body in (b"[" * 100_000, b'{"KeyId": "\\ud800", "Plaintext": "QQ=="}',
                 b'{"EncryptionContext": {"\\udfff": "x"}, "KeyId": "k", "Plaintext": "QQ=="}',
                 b'{"Limit": 1e400}', b'{"Limit": NaN}', b"\xff\xfe"):
        _run_json("Encrypt" if b"Plaintext" in body else "ListKeys", body)


@settings(max_examples=300, deadline=None)
@given(pairs=st.lists(st.tuples(
    st.sampled_from(["UserName", "Path", "Tags", "Tags.member.1.Key", "Tags.member.x.Value",
                     "Tags.member.1", "MaxItems", "Marker", "Tags.member", "UserName.x", ""]),
    st.text(max_size=10)), max_size=6),
    op=st.sampled_from(["CreateUser", "ListUsers", "AssumeRole"]))
def test_query_parameters_of_any_shape(pairs: list[tuple[str, str]], op: str) -> None:
    service = "sts" if op == "AssumeRole" else "iam"
    model = spec.load(service).operation(op)
    try:
        params = query_protocol.parse_request(model.input_shape, pairs)
        validate(model.input_shape, params)
    except AwsError:
        pass
