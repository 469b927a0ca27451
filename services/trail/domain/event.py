"""A stored CloudTrail record and the fields LookupEvents indexes.

The record itself is kept byte for byte as its sender serialised it (the trail never
re-serialises a record: log files and ``CloudTrailEvent`` carry the sender's JSON text).
What event history filters on comes from :func:`common.audit_index.index_of`: senders ship
it beside their records, a batch at a time (:class:`EventBatch`, stored as it came); a record
that arrives without one is decoded and indexed here (:func:`index_record`).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import orjson

from common.audit_index import (
    CATEGORY_DATA,
    CATEGORY_INSIGHT,
    CATEGORY_MANAGEMENT,
    IndexColumns,
    IndexEntry,
    InvalidRecord,
    LookupResource,
    index_of,
    parse_event_time,
    username_of,
)

__all__ = [
    "CATEGORY_DATA",
    "CATEGORY_INSIGHT",
    "CATEGORY_MANAGEMENT",
    "EventBatch",
    "IndexColumns",
    "IndexEntry",
    "IndexedEvent",
    "InvalidRecord",
    "LookupResource",
    "from_index",
    "index_record",
    "parse_event_time",
    "username_of",
]


class IndexedEvent(NamedTuple):
    """A record's index and its text. The index's fields read through (``ev.event_name``)."""

    entry: IndexEntry
    body: str  # the record as JSON text, exactly as received

    def __getattr__(self, name: str) -> Any:
        return getattr(self.entry, name)


class EventBatch(NamedTuple):
    """Records shipped together, kept as they came: their JSON lines, encoded as ``encoding``
    says (``common.audit_index.pack_records``), and their index, column by column."""

    encoding: int
    data: bytes
    index: IndexColumns


def from_index(entry: IndexEntry, body: str) -> IndexedEvent:
    """A record and the index its sender computed with ``common.audit_index.index_of``."""
    if not entry.event_id:
        raise InvalidRecord("no eventID")
    return IndexedEvent(entry, body)


def index_record(body: str, expected_event_id: str | None = None) -> IndexedEvent:
    """Decode and index one record; raises :class:`InvalidRecord` if it is not storable."""
    try:
        record = orjson.loads(body)
    except (ValueError, TypeError) as exc:
        raise InvalidRecord("not JSON") from exc
    if not isinstance(record, dict):
        raise InvalidRecord("not a JSON object")
    index = index_of(record)
    if expected_event_id and expected_event_id != index.event_id:
        raise InvalidRecord("event id does not match the record")
    return from_index(index, body)
