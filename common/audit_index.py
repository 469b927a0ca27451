"""What LookupEvents filters a CloudTrail record by, computed once from the record's dict.

Senders call :func:`index_of` on the record they built and ship the index beside the JSON
text (``strongroom.trail.v1.RecordIndex``), so the trail stores a record without decoding
it; the trail calls the same function for records that arrive without an index.

| LookupEvents attribute | taken from |
| --- | --- |
| EventId | ``eventID`` |
| EventName / EventSource | ``eventName`` / ``eventSource`` (Insights: inside ``insightDetails``) |
| ReadOnly | ``readOnly`` ("true" / "false") |
| Username | Root: ``root``; IAMUser: ``userName``; AssumedRole / FederatedUser: the |
|          | session name (last part of the ARN); AWSService: ``invokedBy`` |
| AccessKeyId | ``userIdentity.accessKeyId`` |
| ResourceType / ResourceName | ``resources[].type`` / ``resources[].ARN`` (S3 buckets also |
|                             | by name, as AWS shows them) |

Record contents: https://docs.aws.amazon.com/awscloudtrail/latest/userguide/cloudtrail-event-reference-record-contents.html
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from strongroom.trail.v1 import trail_pb2

CATEGORY_MANAGEMENT = "Management"
CATEGORY_DATA = "Data"
CATEGORY_INSIGHT = "Insight"
_S3_ARN = "arn:aws:s3:::"


class InvalidRecord(ValueError):
    """The record can never be stored (not a CloudTrail record)."""


_TIME_CACHE: dict[str, int] = {}


def parse_event_time(text: str) -> int:
    """``2025-10-27T00:00:52Z`` (or with fractions / offset) -> epoch milliseconds."""
    # Records share a handful of whole-second times: remember recent ones.
    cached = _TIME_CACHE.get(text)
    if cached is not None:
        return cached
    value = text.strip()
    if value.endswith("Z"):
        value = value[:-1] + "+00:00"
    when = datetime.fromisoformat(value)
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    ms = int(when.timestamp() * 1000)
    if len(_TIME_CACHE) >= 4096:
        _TIME_CACHE.clear()
    _TIME_CACHE[text] = ms
    return ms


def username_of(identity: Mapping[str, Any] | None) -> str | None:
    if not isinstance(identity, Mapping):
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


def category_of(record: Mapping[str, Any]) -> str:
    cat = record.get("eventCategory")
    if cat in (CATEGORY_MANAGEMENT, CATEGORY_DATA, CATEGORY_INSIGHT):
        return str(cat)
    if record.get("eventType") == "AwsCloudTrailInsight":
        return CATEGORY_INSIGHT
    return CATEGORY_MANAGEMENT if record.get("managementEvent", True) else CATEGORY_DATA


def index_of(record: Mapping[str, Any]) -> trail_pb2.RecordIndex:
    """The record's index; raises :class:`InvalidRecord` if the record is not storable."""
    event_id = record.get("eventID")
    if not isinstance(event_id, str) or not event_id or "\n" in event_id:
        raise InvalidRecord("no eventID")
    event_time = record.get("eventTime")
    if not isinstance(event_time, str):
        raise InvalidRecord("no eventTime")
    try:
        time_ms = parse_event_time(event_time)
    except ValueError as exc:
        raise InvalidRecord("bad eventTime") from exc
    named = record
    insight = record.get("insightDetails")
    if isinstance(insight, Mapping) and "eventName" not in record:
        named = insight  # Insights events name the API inside insightDetails
    index = trail_pb2.RecordIndex(
        event_id=event_id,
        event_time_ms=time_ms,
        event_name=str(named.get("eventName") or ""),
        event_source=str(named.get("eventSource") or ""),
        category=category_of(record),
    )
    read_only = record.get("readOnly")
    if isinstance(read_only, bool):
        index.read_only = read_only
    identity = record.get("userIdentity")
    if isinstance(identity, Mapping):
        username = username_of(identity)
        if username is not None:
            index.username = username
        akid = identity.get("accessKeyId")
        if akid:
            index.access_key_id = str(akid)
    if record.get("errorCode"):
        index.error_code = str(record["errorCode"])
    for res in record.get("resources") or ():
        if not isinstance(res, Mapping):
            continue
        rtype = str(res.get("type") or "")
        arn = str(res.get("ARN") or res.get("arn") or "")
        if not rtype and not arn:
            continue
        name = arn[len(_S3_ARN) :] if rtype == "AWS::S3::Bucket" and arn.startswith(_S3_ARN) else arn
        index.resources.add(type=rtype, name=name, arn=arn)
    return index
