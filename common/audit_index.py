"""What LookupEvents filters a CloudTrail record by, computed once from the record's dict.

Senders call :func:`index_of` on the record they built and ship the index beside the JSON
text, in the columns of a ``strongroom.trail.v1.AuditBatch`` (:func:`put_columns`), so the
trail stores a record without decoding it (:func:`from_columns`); the trail calls the same
function for records that arrive without an index.

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

from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from itertools import islice
from typing import Any, NamedTuple

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


class LookupResource(NamedTuple):
    type: str
    name: str  # what LookupEvents returns as ResourceName
    arn: str  # the record's ARN (also matched by ResourceName lookups)


class IndexEntry(NamedTuple):
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


def index_of(record: Mapping[str, Any]) -> IndexEntry:
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
    read_only = record.get("readOnly")
    identity = record.get("userIdentity")
    akid = identity.get("accessKeyId") if isinstance(identity, Mapping) else None
    resources = []
    for res in record.get("resources") or ():
        if not isinstance(res, Mapping):
            continue
        rtype = str(res.get("type") or "")
        arn = str(res.get("ARN") or res.get("arn") or "")
        if not rtype and not arn:
            continue
        name = arn[len(_S3_ARN) :] if rtype == "AWS::S3::Bucket" and arn.startswith(_S3_ARN) else arn
        resources.append(LookupResource(rtype, name, arn))
    return IndexEntry(
        event_id,
        time_ms,
        str(named.get("eventName") or ""),
        str(named.get("eventSource") or ""),
        read_only if isinstance(read_only, bool) else None,
        username_of(identity) if isinstance(identity, Mapping) else None,
        str(akid) if akid else None,
        category_of(record),
        str(record["errorCode"]) if record.get("errorCode") else None,
        tuple(resources),
    )


_READ_ONLY = {None: trail_pb2.AuditBatch.READ_ONLY_UNSPECIFIED, True: trail_pb2.AuditBatch.READ_ONLY_TRUE,
              False: trail_pb2.AuditBatch.READ_ONLY_FALSE}
_READ_ONLY_BACK = {v: k for k, v in _READ_ONLY.items()}


def put_columns(batch: trail_pb2.AuditBatch, entries: Sequence[IndexEntry]) -> None:
    """Write the index of a batch's records (in their order) into its columns."""
    if not entries:
        return
    (ids, times, names, sources, read_only, users, akids, categories, errors, resources) = zip(
        *entries, strict=True
    )
    batch.event_ids.extend(ids)
    batch.event_times_ms.extend(times)
    batch.event_names.extend(names)
    batch.event_sources.extend(sources)
    batch.read_only.extend(map(_READ_ONLY.__getitem__, read_only))
    batch.usernames.extend(u or "" for u in users)
    batch.access_key_ids.extend(a or "" for a in akids)
    batch.categories.extend(categories)
    batch.error_codes.extend(e or "" for e in errors)
    batch.resource_counts.extend(map(len, resources))
    flat = [r for rs in resources for r in rs]
    if flat:
        types, rnames, arns = zip(*flat, strict=True)
        batch.resource_types.extend(types)
        batch.resource_names.extend(rnames)
        batch.resource_arns.extend(arns)


def from_columns(batch: trail_pb2.AuditBatch) -> list[IndexEntry] | None:
    """The index entries of a batch's records; None when it has no (consistent) index."""
    n = len(batch.event_ids)
    columns = (batch.event_times_ms, batch.event_names, batch.event_sources, batch.read_only,
               batch.usernames, batch.access_key_ids, batch.categories, batch.error_codes,
               batch.resource_counts)
    if n == 0 or any(len(c) != n for c in columns):
        return None
    counts = list(batch.resource_counts)
    total = sum(counts)
    if not (len(batch.resource_types) == len(batch.resource_names) == len(batch.resource_arns) == total):
        return None
    flat = iter(map(LookupResource._make, zip(batch.resource_types, batch.resource_names, batch.resource_arns)))
    resources = [tuple(islice(flat, c)) if c else () for c in counts]
    return list(map(IndexEntry._make, zip(
        batch.event_ids,
        batch.event_times_ms,
        batch.event_names,
        batch.event_sources,
        map(_READ_ONLY_BACK.get, batch.read_only),
        (u or None for u in batch.usernames),
        (a or None for a in batch.access_key_ids),
        batch.categories,
        (e or None for e in batch.error_codes),
        resources,
        strict=True,
    )))
