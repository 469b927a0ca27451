"""A stored CloudTrail record and the fields LookupEvents indexes.

The record itself is kept byte for byte as its sender serialised it (the trail never
re-serialises a record: log files and ``CloudTrailEvent`` carry the sender's JSON text).
:func:`index_record` extracts what event history filters on:

| LookupEvents attribute | taken from |
| --- | --- |
| EventId | ``eventID`` |
| EventName / EventSource | ``eventName`` / ``eventSource`` |
| ReadOnly | ``readOnly`` ("true" / "false") |
| Username | Root: ``root``; IAMUser: ``userName``; AssumedRole / FederatedUser: the |
|          | session name (last part of the ARN); AWSService: ``invokedBy`` |
| AccessKeyId | ``userIdentity.accessKeyId`` |
| ResourceType / ResourceName | ``resources[].type`` / ``resources[].ARN`` (S3 buckets also |
|                             | by name, as AWS shows them) |

Record contents: https://docs.aws.amazon.com/awscloudtrail/latest/userguide/cloudtrail-event-reference-record-contents.html
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

CATEGORY_MANAGEMENT = "Management"
CATEGORY_DATA = "Data"
CATEGORY_INSIGHT = "Insight"


class InvalidRecord(ValueError):
    """The record can never be stored (not a CloudTrail record)."""


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
    record: dict[str, Any]  # the decoded record (selector matching, insights)


_TIME_CACHE: dict[str, int] = {}


def parse_event_time(text: str) -> int:
    """``2025-10-27T00:00:52Z`` (or with fractions / offset) -> epoch milliseconds."""
    # The records of a batch share a handful of whole-second times: remember recent ones.
    cached = _TIME_CACHE.get(text)
    if cached is not None:
        return cached
    ms = _parse_event_time(text)
    if len(_TIME_CACHE) >= 4096:
        _TIME_CACHE.clear()
    _TIME_CACHE[text] = ms
    return ms


def _parse_event_time(text: str) -> int:
    value = text.strip()
    if value.endswith("Z"):
        value = value[:-1] + "+00:00"
    when = datetime.fromisoformat(value)
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return int(when.timestamp() * 1000)


def username_of(identity: dict[str, Any] | None) -> str | None:
    if not isinstance(identity, dict):
        return None
    kind = identity.get("type")
    if kind == "Root":
        return "root"
    if kind == "IAMUser":
        name = identity.get("userName")
        if name:
            return str(name)
        arn = str(identity.get("arn") or "")
        return arn.rsplit("/", 1)[-1] or None
    if kind in ("AssumedRole", "FederatedUser"):
        arn = str(identity.get("arn") or "")
        return arn.rsplit("/", 1)[-1] if "/" in arn else None
    if kind == "AWSService":
        invoked = identity.get("invokedBy")
        return str(invoked) if invoked else None
    return None


def lookup_resources(record: dict[str, Any]) -> tuple[LookupResource, ...]:
    out: list[LookupResource] = []
    for res in record.get("resources") or ():
        if not isinstance(res, dict):
            continue
        rtype = str(res.get("type") or "")
        arn = str(res.get("ARN") or res.get("arn") or "")
        if not rtype and not arn:
            continue
        name = arn
        if rtype == "AWS::S3::Bucket" and arn.startswith("arn:aws:s3:::"):
            name = arn[len("arn:aws:s3:::") :]
        out.append(LookupResource(type=rtype, name=name, arn=arn))
    return tuple(out)


def category_of(record: dict[str, Any]) -> str:
    cat = record.get("eventCategory")
    if cat in (CATEGORY_MANAGEMENT, CATEGORY_DATA, CATEGORY_INSIGHT):
        return str(cat)
    if record.get("eventType") == "AwsCloudTrailInsight":
        return CATEGORY_INSIGHT
    return CATEGORY_MANAGEMENT if record.get("managementEvent", True) else CATEGORY_DATA


def index_record(body: str, expected_event_id: str | None = None) -> IndexedEvent:
    """Decode and index one record; raises :class:`InvalidRecord` if it is not storable."""
    try:
        record = json.loads(body)
    except (ValueError, TypeError) as exc:
        raise InvalidRecord("not JSON") from exc
    if not isinstance(record, dict):
        raise InvalidRecord("not a JSON object")
    event_id = record.get("eventID")
    if not isinstance(event_id, str) or not event_id:
        raise InvalidRecord("no eventID")
    if expected_event_id and expected_event_id != event_id:
        raise InvalidRecord("event id does not match the record")
    event_time = record.get("eventTime")
    if not isinstance(event_time, str):
        raise InvalidRecord("no eventTime")
    try:
        time_ms = parse_event_time(event_time)
    except ValueError as exc:
        raise InvalidRecord("bad eventTime") from exc
    identity = record.get("userIdentity")
    akid = identity.get("accessKeyId") if isinstance(identity, dict) else None
    read_only = record.get("readOnly")
    named = record
    insight = record.get("insightDetails")
    if isinstance(insight, dict) and "eventName" not in record:
        named = insight  # Insights events name the API inside insightDetails
    return IndexedEvent(
        event_id=event_id,
        event_time_ms=time_ms,
        event_name=str(named.get("eventName") or ""),
        event_source=str(named.get("eventSource") or ""),
        read_only=read_only if isinstance(read_only, bool) else None,
        username=username_of(identity if isinstance(identity, dict) else None),
        access_key_id=str(akid) if akid else None,
        category=category_of(record),
        error_code=str(record["errorCode"]) if record.get("errorCode") else None,
        resources=lookup_resources(record),
        body=body,
        record=record,
    )
