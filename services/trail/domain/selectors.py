"""Event selectors: which records a trail delivers.

Basic selectors (https://docs.aws.amazon.com/awscloudtrail/latest/APIReference/API_EventSelector.html):
a record matches a selector when its read/write kind matches ``ReadWriteType`` and either it
is a management event, ``IncludeManagementEvents`` is true and its source is not in
``ExcludeManagementEventSources``, or it is a data event on a resource named by
``DataResources`` (``AWS::S3::Object`` values are ARN prefixes: ``arn:aws:s3`` = every bucket,
``arn:aws:s3:::bucket/`` = one bucket, ``arn:aws:s3:::bucket/prefix`` = a prefix).

Advanced selectors (https://docs.aws.amazon.com/awscloudtrail/latest/APIReference/API_AdvancedFieldSelector.html):
a selector matches when every field selector matches; a field selector matches when some
value of the field satisfies some positive operator (Equals / StartsWith / EndsWith), if any
is given, and no value satisfies any negative operator (NotEquals / NotStartsWith /
NotEndsWith). A trail matches a record when any of its selectors matches. Insights events are
delivered when the trail has Insights selectors, whatever its event selectors.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from services.trail.domain.errors import err

MAX_EVENT_SELECTORS = 5
MAX_DATA_RESOURCE_VALUES = 250
MAX_ADVANCED_SELECTORS = 500
READ_WRITE_TYPES = ("ReadOnly", "WriteOnly", "All")
DATA_RESOURCE_TYPES = ("AWS::S3::Object", "AWS::Lambda::Function", "AWS::DynamoDB::Table")
ADVANCED_FIELDS = (
    "eventCategory",
    "eventSource",
    "eventName",
    "eventType",
    "readOnly",
    "resources.type",
    "resources.ARN",
    "userIdentity.arn",
    "errorCode",
    "sessionCredentialFromConsole",
    "vpcEndpointId",
    "eventTypeVersion",
)
OPERATORS = ("Equals", "StartsWith", "EndsWith", "NotEquals", "NotStartsWith", "NotEndsWith")
INSIGHT_TYPES = ("ApiCallRateInsight", "ApiErrorRateInsight")

DEFAULT_EVENT_SELECTORS: tuple[dict[str, Any], ...] = (
    {
        "ReadWriteType": "All",
        "IncludeManagementEvents": True,
        "DataResources": [],
        "ExcludeManagementEventSources": [],
    },
)


def _bad(message: str) -> Exception:
    return err("InvalidEventSelectorsException", message)


def normalise_event_selectors(selectors: Sequence[dict[str, Any]]) -> tuple[dict[str, Any], ...]:
    """Validate basic selectors and fill AWS's defaults."""
    if len(selectors) > MAX_EVENT_SELECTORS:
        raise _bad(f"You can have up to {MAX_EVENT_SELECTORS} event selectors per trail.")
    out: list[dict[str, Any]] = []
    total_values = 0
    for sel in selectors:
        rw = sel.get("ReadWriteType") or "All"
        if rw not in READ_WRITE_TYPES:
            raise _bad(f"Value {rw} for ReadWriteType is invalid. Valid values are ReadOnly, WriteOnly, All.")
        include = sel.get("IncludeManagementEvents")
        include = True if include is None else bool(include)
        resources = []
        for res in sel.get("DataResources") or []:
            rtype = res.get("Type") or ""
            values = list(res.get("Values") or [])
            if rtype not in DATA_RESOURCE_TYPES:
                raise _bad(f"Value {rtype} for DataResources.Type is invalid.")
            for value in values:
                if rtype == "AWS::S3::Object":
                    if not (
                        value in ("arn:aws:s3", "arn:aws:s3:::")
                        or (value.startswith("arn:aws:s3:::") and "/" in value)
                    ):
                        raise _bad(f"Value {value} for DataResources.Values is invalid.")
                elif not value.startswith("arn:aws:"):
                    raise _bad(f"Value {value} for DataResources.Values is invalid.")
            total_values += len(values)
            resources.append({"Type": rtype, "Values": values})
        excluded = list(sel.get("ExcludeManagementEventSources") or [])
        for source in excluded:
            if source not in ("kms.amazonaws.com", "rdsdata.amazonaws.com"):
                raise _bad(
                    f"Value {source} for ExcludeManagementEventSources is invalid. Valid "
                    "values are kms.amazonaws.com and rdsdata.amazonaws.com."
                )
        out.append(
            {
                "ReadWriteType": rw,
                "IncludeManagementEvents": include,
                "DataResources": resources,
                "ExcludeManagementEventSources": excluded,
            }
        )
    if total_values > MAX_DATA_RESOURCE_VALUES:
        raise _bad(f"You can specify up to {MAX_DATA_RESOURCE_VALUES} data resources per trail.")
    return tuple(out)


def normalise_advanced_selectors(selectors: Sequence[dict[str, Any]]) -> tuple[dict[str, Any], ...]:
    if len(selectors) > MAX_ADVANCED_SELECTORS:
        raise _bad("Too many advanced event selectors.")
    out: list[dict[str, Any]] = []
    for sel in selectors:
        fields = sel.get("FieldSelectors") or []
        if not fields:
            raise _bad("Each advanced event selector must have at least one field selector.")
        normalised = []
        categories: list[str] = []
        for fs in fields:
            name = fs.get("Field") or ""
            if name not in ADVANCED_FIELDS:
                raise _bad(f"Invalid field name: {name}.")
            entry: dict[str, Any] = {"Field": name}
            for op in OPERATORS:
                values = list(fs.get(op) or [])
                if values:
                    entry[op] = values
            if len(entry) == 1:
                raise _bad(f"Field {name} must have at least one operator.")
            if name == "eventCategory":
                eq = entry.get("Equals") or []
                if set(entry) != {"Field", "Equals"}:
                    raise _bad("eventCategory supports only the Equals operator.")
                for value in eq:
                    if value not in ("Management", "Data"):
                        raise _bad(
                            f"Invalid value {value} for eventCategory. Valid values are Management and Data."
                        )
                categories.extend(eq)
            if name == "readOnly":
                for op, values in entry.items():
                    if op != "Field" and any(v not in ("true", "false") for v in values):
                        raise _bad("readOnly accepts only true or false.")
            normalised.append(entry)
        if not categories:
            raise _bad("Each advanced event selector must include an eventCategory field selector.")
        item: dict[str, Any] = {"FieldSelectors": normalised}
        if sel.get("Name"):
            item["Name"] = sel["Name"]
        out.append(item)
    return tuple(out)


def normalise_insight_selectors(selectors: Sequence[dict[str, Any]]) -> tuple[dict[str, Any], ...]:
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for sel in selectors:
        kind = sel.get("InsightType") or ""
        if kind not in INSIGHT_TYPES:
            raise err(
                "InvalidInsightSelectorsException",
                f"Invalid InsightType {kind}. Valid values are ApiCallRateInsight and ApiErrorRateInsight.",
            )
        if kind in seen:
            raise err("InvalidInsightSelectorsException", f"Duplicate InsightType {kind}.")
        seen.add(kind)
        cats = list(sel.get("EventCategories") or [])
        for cat in cats:
            if cat not in ("Management", "Data"):
                raise err(
                    "InvalidInsightSelectorsException",
                    f"Invalid event category {cat}. Valid values are Management and Data.",
                )
        item: dict[str, Any] = {"InsightType": kind}
        if cats:
            item["EventCategories"] = cats
        out.append(item)
    return tuple(out)


# ------------------------------------------------------------------ matching


def _is_management(record: dict[str, Any]) -> bool:
    cat = record.get("eventCategory")
    if cat:
        return bool(cat == "Management")
    return bool(record.get("managementEvent", True))


def _rw_ok(rw: str, read_only: object) -> bool:
    if rw == "All":
        return True
    return (read_only is True) if rw == "ReadOnly" else (read_only is False)


def _data_resource_match(
    resources: Sequence[dict[str, Any]], data_resources: Sequence[dict[str, Any]]
) -> bool:
    for res in resources:
        rtype = res.get("type")
        arn = str(res.get("ARN") or "")
        for dr in data_resources:
            if dr.get("Type") != rtype:
                continue
            for value in dr.get("Values") or []:
                if value in ("arn:aws:s3", "arn:aws:s3:::") and arn.startswith("arn:aws:s3:::"):
                    return True
                if arn.startswith(value):
                    return True
    return False


def basic_matches(selectors: Iterable[dict[str, Any]], record: dict[str, Any]) -> bool:
    management = _is_management(record)
    read_only = record.get("readOnly")
    for sel in selectors:
        if not _rw_ok(sel.get("ReadWriteType", "All"), read_only):
            continue
        if management:
            if sel.get("IncludeManagementEvents", True) and record.get("eventSource") not in (
                sel.get("ExcludeManagementEventSources") or ()
            ):
                return True
        elif _data_resource_match(record.get("resources") or (), sel.get("DataResources") or ()):
            return True
    return False


def _field_values(record: dict[str, Any], name: str) -> list[str]:
    if name == "eventCategory":
        return ["Management" if _is_management(record) else "Data"]
    if name == "readOnly":
        ro = record.get("readOnly")
        return [str(ro).lower()] if isinstance(ro, bool) else []
    if name == "resources.type":
        return [str(r.get("type")) for r in record.get("resources") or () if r.get("type")]
    if name == "resources.ARN":
        return [str(r.get("ARN")) for r in record.get("resources") or () if r.get("ARN")]
    if name == "userIdentity.arn":
        arn = (record.get("userIdentity") or {}).get("arn")
        return [str(arn)] if arn else []
    value = record.get(name)
    return [str(value).lower() if isinstance(value, bool) else str(value)] if value is not None else []


def _field_matches(fs: dict[str, Any], record: dict[str, Any]) -> bool:
    values = _field_values(record, fs["Field"])
    positive = [(op, v) for op in ("Equals", "StartsWith", "EndsWith") for v in fs.get(op) or ()]
    negative = [(op, v) for op in ("NotEquals", "NotStartsWith", "NotEndsWith") for v in fs.get(op) or ()]

    def hit(op: str, pattern: str, value: str) -> bool:
        if op in ("Equals", "NotEquals"):
            return value == pattern
        if op in ("StartsWith", "NotStartsWith"):
            return value.startswith(pattern)
        return value.endswith(pattern)

    if positive and not any(hit(op, p, v) for op, p in positive for v in values):
        return False
    return not any(hit(op, p, v) for op, p in negative for v in values)


def advanced_matches(selectors: Iterable[dict[str, Any]], record: dict[str, Any]) -> bool:
    return any(all(_field_matches(fs, record) for fs in sel["FieldSelectors"]) for sel in selectors)


def trail_matches(
    *,
    event_selectors: Sequence[dict[str, Any]],
    advanced_event_selectors: Sequence[dict[str, Any]],
    has_insight_selectors: bool,
    record: dict[str, Any],
    insight_types: Sequence[str] | None = None,
) -> bool:
    """Whether a trail with these selectors delivers ``record``.

    ``insight_types``: the trail's Insights types (None: any type when it has selectors).
    """
    if record.get("eventCategory") == "Insight" or record.get("eventType") == "AwsCloudTrailInsight":
        if not has_insight_selectors:
            return False
        kind = (record.get("insightDetails") or {}).get("insightType")
        return insight_types is None or kind in insight_types
    if advanced_event_selectors:
        return advanced_matches(advanced_event_selectors, record)
    return basic_matches(event_selectors or DEFAULT_EVENT_SELECTORS, record)
