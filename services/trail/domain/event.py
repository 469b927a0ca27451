"""A stored CloudTrail record and the fields LookupEvents indexes.

The record itself is kept byte for byte as its sender serialised it (the trail never
re-serialises a record: log files and ``CloudTrailEvent`` carry the sender's JSON text).
What event history filters on comes from :func:`common.audit_index.index_of`: senders ship
it beside the record (:func:`from_index`); a record that arrives without one is decoded and
indexed here (:func:`index_record`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from strongroom.trail.v1.trail_pb2 import RecordIndex

from common.audit_index import (
    CATEGORY_DATA,
    CATEGORY_INSIGHT,
    CATEGORY_MANAGEMENT,
    InvalidRecord,
    index_of,
    parse_event_time,
    username_of,
)

__all__ = [
    "CATEGORY_DATA",
    "CATEGORY_INSIGHT",
    "CATEGORY_MANAGEMENT",
    "IndexedEvent",
    "InvalidRecord",
    "LookupResource",
    "RecordIndex",
    "from_index",
    "index_record",
    "parse_event_time",
    "username_of",
]


@dataclass(frozen=True, slots=True)
class LookupResource:
    type: str
    name: str  # what LookupEvents returns as ResourceName
    arn: str  # the record's ARN (also matched by ResourceName lookups)


@dataclass(frozen=True, slots=True)
class IndexedEvent:
    event_id: str
    event_time_ms: int
    event_name: str
    event_source: str
    read_only: bool | None
    username: str | None
    access_key_id: str | None
    category: str  # Management | Data | Insight
    error_code: str | None
    resources: tuple[LookupResource, ...]
    body: str  # the record as JSON text, exactly as received


def from_index(index: RecordIndex, body: str) -> IndexedEvent:
    """A record and the index its sender computed with ``common.audit_index.index_of``."""
    if not index.event_id:
        raise InvalidRecord("no eventID")
    return IndexedEvent(
        event_id=index.event_id,
        event_time_ms=index.event_time_ms,
        event_name=index.event_name,
        event_source=index.event_source,
        read_only=index.read_only if index.HasField("read_only") else None,
        username=index.username if index.HasField("username") else None,
        access_key_id=index.access_key_id if index.HasField("access_key_id") else None,
        category=index.category or CATEGORY_MANAGEMENT,
        error_code=index.error_code if index.HasField("error_code") else None,
        resources=tuple(LookupResource(type=r.type, name=r.name, arn=r.arn) for r in index.resources),
        body=body,
    )


def index_record(body: str, expected_event_id: str | None = None) -> IndexedEvent:
    """Decode and index one record; raises :class:`InvalidRecord` if it is not storable."""
    try:
        record = json.loads(body)
    except (ValueError, TypeError) as exc:
        raise InvalidRecord("not JSON") from exc
    if not isinstance(record, dict):
        raise InvalidRecord("not a JSON object")
    index = index_of(record)
    if expected_event_id and expected_event_id != index.event_id:
        raise InvalidRecord("event id does not match the record")
    return from_index(index, body)
