"""common/audit_index.py: the LookupEvents index of a record, and its columns in an AuditBatch."""

from __future__ import annotations

from typing import Any

import pytest
from strongroom.trail.v1 import trail_pb2

from common.audit_index import IndexEntry, InvalidRecord, LookupResource, from_columns, index_of, put_columns

ACCOUNT = "111122223333"


def record(i: int, **kw: Any) -> dict[str, Any]:
    r: dict[str, Any] = {
        "eventTime": "2026-01-01T00:00:01Z",
        "eventSource": "kms.amazonaws.com",
        "eventName": f"Op{i}",
        "eventID": f"id-{i}",
        "eventCategory": "Management",
    }
    r.update(kw)
    return r


def test_index_of_every_field() -> None:
    entry = index_of(record(
        1,
        readOnly=False,
        errorCode="AccessDenied",
        userIdentity={"type": "AssumedRole", "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/Admin/s1",
                      "accessKeyId": "ASIAEXAMPLE"},
        resources=[{"type": "AWS::S3::Bucket", "ARN": "arn:aws:s3:::b1"},
                   {"type": "AWS::KMS::Key", "ARN": f"arn:aws:kms:us-east-1:{ACCOUNT}:key/k"}],
    ))
    assert entry == IndexEntry(
        "id-1", 1767225601000, "Op1", "kms.amazonaws.com", False, "s1", "ASIAEXAMPLE", "Management",
        "AccessDenied",
        (LookupResource("AWS::S3::Bucket", "b1", "arn:aws:s3:::b1"),
         LookupResource("AWS::KMS::Key", f"arn:aws:kms:us-east-1:{ACCOUNT}:key/k",
                        f"arn:aws:kms:us-east-1:{ACCOUNT}:key/k")))
    bare = index_of(record(2))
    assert (bare.read_only, bare.username, bare.access_key_id, bare.error_code, bare.resources) == (
        None, None, None, None, ())
    with pytest.raises(InvalidRecord):
        index_of({"eventTime": "2026-01-01T00:00:01Z"})
    with pytest.raises(InvalidRecord):
        index_of(record(3, eventTime="yesterday"))


def test_columns_round_trip() -> None:
    entries = [
        index_of(record(0, readOnly=True, resources=[{"type": "AWS::KMS::Key", "ARN": "arn:k0"}])),
        index_of(record(1)),
        index_of(record(2, readOnly=False, errorCode="X", userIdentity={"type": "Root"},
                        resources=[{"type": "T", "ARN": "arn:a"}, {"type": "U", "ARN": "arn:b"}])),
    ]
    batch = trail_pb2.AuditBatch(records_jsonl=b"{}\n{}\n{}")
    put_columns(batch, entries)
    again = trail_pb2.AuditBatch.FromString(batch.SerializeToString())
    assert from_columns(again) == entries
    assert list(again.resource_counts) == [1, 0, 2]


def test_inconsistent_or_missing_columns_mean_no_index() -> None:
    assert from_columns(trail_pb2.AuditBatch(records_jsonl=b"{}")) is None
    batch = trail_pb2.AuditBatch()
    put_columns(batch, [index_of(record(0)), index_of(record(1))])
    batch.event_names.pop()
    assert from_columns(batch) is None
    batch = trail_pb2.AuditBatch()
    put_columns(batch, [index_of(record(0, resources=[{"type": "T", "ARN": "arn:a"}]))])
    batch.resource_arns.append("arn:extra")
    assert from_columns(batch) is None
