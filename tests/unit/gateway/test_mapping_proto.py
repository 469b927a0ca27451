"""shapes.py against a test proto (tests/unit/gateway/protos/mapping_test.proto) covering
recursive messages, maps of messages, proto enums and non-Timestamp timestamp fields, with
botocore's JSON serialiser/parser on the other end."""

from __future__ import annotations

import base64
import importlib
import sys
from datetime import datetime, timezone
from pathlib import Path
from types import ModuleType

import pytest
from botocore import parsers, serialize

from common.aws_validation import validate
from gateway.aws import shapes, spec
from gateway.aws.protocols import json as json_protocol

PROTO_DIR = Path(__file__).parent / "protos"


@pytest.fixture(scope="module")
def pb(tmp_path_factory: pytest.TempPathFactory) -> ModuleType:
    from grpc_tools import protoc

    out = tmp_path_factory.mktemp("gen")
    include = Path(protoc.__file__).parent / "_proto"
    rc = protoc.main(["protoc", f"-I{PROTO_DIR}", f"-I{include}", f"--python_out={out}",
                      str(PROTO_DIR / "mapping_test.proto")])
    assert rc == 0
    sys.path.insert(0, str(out))
    try:
        return importlib.import_module("mapping_test_pb2")
    finally:
        sys.path.remove(str(out))


def test_recursive_maps_enums_round_trip(pb: ModuleType) -> None:
    ddb = spec.load("dynamodb")
    op = ddb.operation("GetItem")
    value = {
        "TableName": "t1",
        "Key": {"pk": {"S": "a"}, "nested": {"M": {"x": {"L": [{"N": "1"}, {"B": b"\x00\x01"},
                                                              {"M": {"deep": {"BOOL": False}}}]}}},
                "set": {"SS": ["a", "b"]}, "bin": {"BS": [b"1", b"2"]}},
        "ConsistentRead": False,
        "ReturnConsumedCapacity": "TOTAL",
    }
    wire = serialize.create_serializer("json").serialize_to_request(value, op)
    parsed = json_protocol.parse_request(op.input_shape, wire["body"])
    validate(op.input_shape, parsed)
    msg = shapes.to_message(op.input_shape, pb.GetItemRequest.DESCRIPTOR, parsed)
    assert msg.table_name == "t1"
    assert msg.HasField("consistent_read") and msg.consistent_read is False
    assert msg.return_consumed_capacity == pb.TOTAL
    deep = msg.key["nested"].m["x"].l
    assert [deep[0].n, deep[1].b] == ["1", b"\x00\x01"]
    assert deep[2].m["deep"].HasField("bool") and deep[2].m["deep"].bool is False
    assert list(msg.key["set"].ss) == ["a", "b"]
    assert msg.not_an_aws_member == ""

    back = shapes.from_message(op.input_shape, msg, shapes.VALUE)
    assert back == value

    out_msg = pb.GetItemResponse(item=msg.key)
    out = shapes.from_message(op.output_shape, out_msg, shapes.JSON)
    assert out["Item"]["nested"]["M"]["x"]["L"][1] == {"B": base64.b64encode(b"\x00\x01").decode()}
    body = json_protocol.response(out, "r").body
    got = parsers.create_parser("json").parse({"body": body, "headers": {}, "status_code": 200},
                                              op.output_shape)
    assert got["Item"] == value["Key"]


def test_unknown_enum_value_maps_to_unspecified(pb: ModuleType) -> None:
    op = spec.load("dynamodb").operation("GetItem")
    msg = shapes.to_message(op.input_shape, pb.GetItemRequest.DESCRIPTOR,
                            {"TableName": "t", "Key": {}, "ReturnConsumedCapacity": "SOMETHING"})
    assert msg.return_consumed_capacity == 0


def test_timestamps_as_int_and_string_fields(pb: ModuleType) -> None:
    op = spec.load("cloudtrail").operation("LookupEvents")
    start = datetime(2024, 5, 1, 0, 0, 0, tzinfo=timezone.utc)
    end = datetime(2024, 5, 2, 12, 30, 0, tzinfo=timezone.utc)
    wire = serialize.create_serializer("json").serialize_to_request(
        {"StartTime": start, "EndTime": end, "MaxResults": 5}, op)
    parsed = json_protocol.parse_request(op.input_shape, wire["body"])
    msg = shapes.to_message(op.input_shape, pb.LookupEventsRequest.DESCRIPTOR, parsed)
    assert msg.start_time == int(start.timestamp())
    assert msg.end_time == "2024-05-02T12:30:00Z"
    assert msg.max_results == 5

    resp = pb.LookupEventsResponse(events=[pb.Event(event_id="e1")])
    resp.events[0].event_time.FromDatetime(end)
    out = shapes.from_message(op.output_shape, resp, shapes.JSON)
    assert out == {"Events": [{"EventId": "e1", "EventTime": end.timestamp()}]}
    got = parsers.create_parser("json").parse(
        {"body": json_protocol.response(out, "r").body, "headers": {}, "status_code": 200},
        op.output_shape)
    assert got["Events"][0]["EventTime"].timestamp() == end.timestamp()


def test_binding_check_finds_type_mismatches(pb: ModuleType) -> None:
    op = spec.load("dynamodb").operation("GetItem")
    assert shapes.binding_problems(op.input_shape, pb.GetItemRequest.DESCRIPTOR, response=False) == []
    problems = shapes.binding_problems(op.input_shape, pb.BrokenGetItemRequest.DESCRIPTOR,
                                       response=False)
    assert sorted(problems) == sorted([
        "strongroom.testing.v1.BrokenGetItemRequest.key: singular field for AWS map",
        "strongroom.testing.v1.BrokenGetItemRequest.table_name: repeated field for AWS string",
        "strongroom.testing.v1.BrokenGetItemRequest.consistent_read: Timestamp field for AWS boolean",
    ])
