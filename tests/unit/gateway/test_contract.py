"""Contract tests: botocore's own client serialisers and parsers on the other end of our
protocol layer, for every operation of the services we serve (no network).

* requests: a sample input value for each operation is serialised by botocore exactly as a
  client would send it, parsed by gateway/aws/protocols/{json,query}.py and must come back
  equal (and, for KMS/CloudTrail, survive the trip through the ``<Op>Request`` message);
* responses: a sample output value goes value -> ``<Op>Response`` -> our JSON (or our XML for
  IAM/STS) and botocore's parser must read back the same value.
"""

from __future__ import annotations

import base64
import json
from datetime import datetime, timezone
from typing import Any
from urllib.parse import parse_qsl

import pytest
from botocore import parsers, serialize
from botocore.model import Shape

from gateway.aws import shapes, spec
from gateway.aws.protocols import json as json_protocol
from gateway.aws.protocols import query as query_protocol
from gateway.backends import cloudtrail, kms

WHEN = datetime(2024, 5, 1, 12, 30, 15, tzinfo=timezone.utc)


def sample(shape: Shape, depth: int = 0, seed: int = 0) -> Any:
    """A deterministic value satisfying ``shape``'s constraints."""
    kind = shape.type_name
    if kind == "structure":
        if depth > 10:
            return {}
        out = {}
        for i, (name, member) in enumerate(shape.members.items()):
            if member.serialization.get("location"):  # REST-only members (not JSON/Query)
                continue
            out[name] = sample(member, depth + 1, seed + i)
            if shape.metadata.get("union"):
                break  # a tagged union carries exactly one member
        return out
    if kind == "list":
        if depth > 10:
            return []
        n = max(1, min(2, shape.metadata.get("max", 2)))
        return [sample(shape.member, depth + 1, seed + i) for i in range(n)]
    if kind == "map":
        if depth > 10:
            return {}
        return {f"k{seed}": sample(shape.value, depth + 1, seed)}
    if kind == "string":
        enum = shape.metadata.get("enum")
        if enum:
            return enum[seed % len(enum)]
        lo = shape.metadata.get("min", 1)
        text = f"v{seed}x"
        return (text * (lo // len(text) + 1))[: max(lo, len(text))][: shape.metadata.get("max", 10_000)]
    if kind in ("integer", "long"):
        lo = shape.metadata.get("min", 1)
        hi = shape.metadata.get("max", lo + 100)
        return min(max(lo, 7 + seed), hi)
    if kind in ("float", "double"):
        return 1.5
    if kind == "boolean":
        return seed % 2 == 0
    if kind == "blob":
        return bytes([65 + seed % 26]) * max(1, shape.metadata.get("min", 1))
    if kind == "timestamp":
        return WHEN
    raise AssertionError(kind)


def _norm(value: Any) -> Any:
    """Compare values after a wire trip: botocore gives tz-aware datetimes in local tz."""
    if isinstance(value, dict):
        return {k: _norm(v) for k, v in value.items() if k != "ResponseMetadata"}
    if isinstance(value, list):
        return [_norm(v) for v in value]
    if isinstance(value, datetime):
        return value.timestamp()
    return value


def _ops(binding: Any) -> list[str]:
    return sorted(n for n in binding.spec.operation_names if binding.operation(n) is not None)


def _proto_members(shape: Shape, descriptor: Any, value: Any) -> Any:
    """``value`` restricted to the members the proto carries (recursively)."""
    if shape.type_name == "structure" and isinstance(value, dict):
        fields = {f.json_name: f for f in descriptor.fields}
        out = {}
        for name, v in value.items():
            fd = fields.get(name)
            if fd is None:
                continue
            member = shape.members[name]
            if member.type_name == "structure":
                out[name] = _proto_members(member, fd.message_type, v)
            elif member.type_name == "list" and member.member.type_name == "structure":
                out[name] = [_proto_members(member.member, fd.message_type, x) for x in v]
            elif member.type_name == "map" and member.value.type_name == "structure":
                vd = fd.message_type.fields_by_name["value"].message_type
                out[name] = {k: _proto_members(member.value, vd, x) for k, x in v.items()}
            else:
                out[name] = v
        return out
    return value


JSON_BINDINGS = [kms.BINDING, cloudtrail.BINDING]


@pytest.mark.parametrize("binding", JSON_BINDINGS, ids=lambda b: b.service)
def test_json_requests_round_trip(binding: Any) -> None:
    serializer = serialize.create_serializer("json")
    checked = 0
    for name in _ops(binding):
        op = binding.operation(name)
        model = op.model
        value = sample(model.input_shape) if model.input_shape is not None else {}
        wire = serializer.serialize_to_request(value, model)
        target = wire["headers"]["X-Amz-Target"]
        assert target.rpartition(".")[2] == name
        parsed = json_protocol.parse_request(model.input_shape, wire["body"])
        assert _norm(parsed) == _norm(value), name
        message = shapes.to_message(model.input_shape, op.request, parsed)
        back = shapes.from_message(model.input_shape, message, shapes.VALUE) \
            if model.input_shape is not None else {}
        expected = _proto_members(model.input_shape, op.request, value) \
            if model.input_shape is not None else {}
        # from_message writes top-level lists even when absent; compare the sent members
        back = {k: v for k, v in back.items() if k in expected or v not in ([], {})}
        assert _norm(back) == _norm(expected), name
        checked += 1
    assert checked >= (20 if binding.service == "kms" else 5)


@pytest.mark.parametrize("binding", JSON_BINDINGS, ids=lambda b: b.service)
def test_json_responses_parse_with_botocore(binding: Any) -> None:
    parser = parsers.create_parser("json")
    service = binding.module.DESCRIPTOR.services_by_name[binding.grpc_service.rsplit(".", 1)[-1]]
    for name in _ops(binding):
        model = binding.operation(name).model
        if model.output_shape is None:
            continue
        descriptor = service.methods_by_name[name].output_type
        value = sample(model.output_shape)
        message = shapes.to_message(model.output_shape, descriptor, value)
        out = shapes.from_message(model.output_shape, message, shapes.JSON)
        body = json_protocol.response(out, "rid").body
        parsed = parser.parse({"body": body, "headers": {}, "status_code": 200}, model.output_shape)
        expected = _proto_members(model.output_shape, descriptor, value)
        parsed = {k: v for k, v in parsed.items() if k in expected or v not in ([], {})}
        assert _norm(parsed) == _norm(expected), name


@pytest.mark.parametrize("service", ["iam", "sts"])
def test_query_requests_round_trip(service: str) -> None:
    serializer = serialize.create_serializer("query")
    svc = spec.load(service)
    for name in sorted(svc.operation_names):
        model = svc.operation(name)
        value = sample(model.input_shape) if model.input_shape is not None else {}
        wire = serializer.serialize_to_request(value, model)
        body = wire["body"]
        pairs = list(body.items()) if isinstance(body, dict) else parse_qsl(body, keep_blank_values=True)
        parsed = query_protocol.parse_request(model.input_shape, pairs)
        assert _norm(parsed) == _norm(value), name


@pytest.mark.parametrize("service", ["iam", "sts"])
def test_query_responses_parse_with_botocore(service: str) -> None:
    parser = parsers.create_parser("query")
    svc = spec.load(service)
    for name in sorted(svc.operation_names):
        model = svc.operation(name)
        if model.output_shape is None:
            continue
        value = sample(model.output_shape)
        body = query_protocol.serialize(name, model.output_shape, value, svc.xml_namespace, "rid-1")
        parsed = parser.parse({"body": body, "headers": {}, "status_code": 200}, model.output_shape)
        assert parsed["ResponseMetadata"]["RequestId"] == "rid-1"
        assert _norm(parsed) == _norm(value), name


def test_query_empty_list_and_blank_values() -> None:
    model = spec.load("iam").operation("CreateUser")
    parsed = query_protocol.parse_request(model.input_shape, [("UserName", "u"), ("Tags", "")])
    assert parsed == {"UserName": "u", "Tags": []}


def test_query_bad_integer() -> None:
    from common.errors import AwsError

    model = spec.load("sts").operation("AssumeRole")
    with pytest.raises(AwsError) as info:
        query_protocol.parse_request(model.input_shape, [("DurationSeconds", "soon")])
    assert info.value.code == "InvalidParameterValue"


def test_query_xml_escapes_text() -> None:
    model = spec.load("iam").operation("GetUserPolicy")
    value = {"UserName": "u", "PolicyName": "p<&>", "PolicyDocument": "%7B%7D"}
    body = query_protocol.serialize("GetUserPolicy", model.output_shape, value,
                                    spec.load("iam").xml_namespace, "r")
    parsed = parsers.create_parser("query").parse(
        {"body": body, "headers": {}, "status_code": 200}, model.output_shape)
    assert parsed["PolicyName"] == "p<&>"


def test_json_blob_is_base64_and_timestamp_epoch() -> None:
    binding = kms.BINDING
    model = binding.operation("Encrypt").model
    from strongroom.kms.v1 import kms_pb2

    out = shapes.from_message(model.output_shape,
                              kms_pb2.EncryptResponse(ciphertext_blob=b"\x00\xff", key_id="k"),
                              shapes.JSON)
    assert out == {"CiphertextBlob": base64.b64encode(b"\x00\xff").decode(), "KeyId": "k"}
    md = kms_pb2.KeyMetadata(key_id="k")
    md.creation_date.FromDatetime(WHEN)
    desc = binding.operation("DescribeKey").model.output_shape
    value = shapes.from_message(desc, kms_pb2.DescribeKeyResponse(key_metadata=md), shapes.JSON)
    assert json.loads(json.dumps(value)) == {"KeyMetadata": {"KeyId": "k",
                                                             "CreationDate": WHEN.timestamp()}}


def test_optional_presence_rules() -> None:
    from strongroom.kms.v1 import kms_pb2

    shape = kms.BINDING.operation("DescribeKey").model.output_shape
    md = kms_pb2.KeyMetadata(key_id="k", enabled=False, description="")
    out = shapes.from_message(shape, kms_pb2.DescribeKeyResponse(key_metadata=md))
    # optional bool set to false is written; plain empty string is not
    assert out == {"KeyMetadata": {"KeyId": "k", "Enabled": False}}


def test_every_json_operation_binds_without_type_mismatch() -> None:
    problems: list[str] = []
    for binding in JSON_BINDINGS:
        service = binding.module.DESCRIPTOR.services_by_name[binding.grpc_service.rsplit(".", 1)[-1]]
        for name in _ops(binding):
            op = binding.operation(name)
            problems += shapes.binding_problems(op.model.input_shape, op.request, response=False)
            problems += shapes.binding_problems(op.model.output_shape,
                                                service.methods_by_name[name].output_type,
                                                response=True)
    assert problems == []


def test_every_kms_operation_has_an_rpc() -> None:
    assert [n for n in sorted(kms.BINDING.spec.operation_names)
            if kms.BINDING.operation(n) is None] == []


def test_internal_rpcs_are_not_operations() -> None:
    assert kms.BINDING.operation("GetOrCreateAwsManagedKey") is None
    assert cloudtrail.BINDING.operation("PutEvents") is None
