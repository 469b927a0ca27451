"""CloudTrail Insights: unusual API call rates and error rates (pure, clock passed in).

https://docs.aws.amazon.com/awscloudtrail/latest/userguide/logging-insights-events-with-cloudtrail.html

* **ApiCallRateInsight** watches write management API calls (``readOnly`` false) per
  (eventSource, eventName); **ApiErrorRateInsight** watches management calls that returned
  an error, per (eventSource, eventName).
* Counts are kept per time bucket (``bucket_seconds``, AWS: one minute). A completed bucket
  is unusual when its count is at least ``min_count`` and at least ``factor`` times the
  baseline, the mean count of the previous ``baseline_buckets`` buckets (AWS uses a seven-day
  baseline; ours is shorter and configurable). Nothing is reported before
  ``min_history_buckets`` buckets have been observed.
* An unusual period produces an Insights event with ``insightDetails.state`` "Start", and,
  once a bucket is back under the threshold, one with "End" carrying the averages and the
  duration; both share ``sharedEventID``. They are ordinary records of category "Insight":
  stored for LookupEvents (``EventCategory=insight``) and delivered to trails whose
  Insights selectors ask for their type, under ``CloudTrail-Insight/``.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from common.audit import new_event_id

CALL_RATE = "ApiCallRateInsight"
ERROR_RATE = "ApiErrorRateInsight"
INSIGHT_EVENT_VERSION = "1.08"

Key = tuple[str, str, str]  # (insight type, eventSource, eventName)


@dataclass(slots=True)
class _Active:
    start_bucket: int
    shared_id: str
    baseline_average: float
    counts: list[int] = field(default_factory=list)


@dataclass(slots=True)
class InsightDetector:
    account_id: str
    region: str
    bucket_seconds: float = 60.0
    baseline_buckets: int = 60
    min_history_buckets: int = 5
    factor: float = 3.0
    min_count: int = 10
    counts: dict[Key, dict[int, int]] = field(default_factory=lambda: defaultdict(dict))
    active: dict[Key, _Active] = field(default_factory=dict)
    first_bucket: int | None = None
    last_evaluated: int | None = None

    def bucket_of(self, time_ms: int) -> int:
        return int(time_ms / 1000 // self.bucket_seconds)

    def observe(self, record: Mapping[str, Any], time_ms: int, n: int = 1) -> None:
        """Count ``n`` stored records like ``record`` (management events only)."""
        if record.get("eventCategory", "Management") != "Management" or not record.get(
            "managementEvent", True
        ):
            return
        self.count(
            str(record.get("eventSource", "")),
            str(record.get("eventName", "")),
            read_only=record.get("readOnly") is not False,
            failed=bool(record.get("errorCode")),
            time_ms=time_ms,
            n=n,
        )

    def count(self, source: str, name: str, *, read_only: bool, failed: bool, time_ms: int, n: int = 1) -> None:
        """Count ``n`` management events of one API (a write unless ``read_only``)."""
        bucket = self.bucket_of(time_ms)
        if self.first_bucket is None or bucket < self.first_bucket:
            self.first_bucket = bucket
        if not read_only:
            per = self.counts[(CALL_RATE, source, name)]
            per[bucket] = per.get(bucket, 0) + n
        if failed:
            per = self.counts[(ERROR_RATE, source, name)]
            per[bucket] = per.get(bucket, 0) + n

    def evaluate(self, now: datetime) -> list[dict[str, Any]]:
        """Insights records for every bucket completed since the last call."""
        current = self.bucket_of(int(now.timestamp() * 1000))
        last_done = current - 1
        start = last_done if self.last_evaluated is None else self.last_evaluated + 1
        out: list[dict[str, Any]] = []
        for bucket in range(start, last_done + 1):
            out.extend(self._evaluate_bucket(bucket))
        if last_done >= start:
            self.last_evaluated = last_done
        self._forget(last_done - self.baseline_buckets - 1)
        return out

    def _evaluate_bucket(self, bucket: int) -> list[dict[str, Any]]:
        if self.first_bucket is None or bucket - self.first_bucket < self.min_history_buckets:
            return []
        out = []
        for key in list(self.counts.keys() | self.active.keys()):
            per = self.counts.get(key, {})
            count = per.get(bucket, 0)
            lo = max(bucket - self.baseline_buckets, self.first_bucket)
            history = [per.get(b, 0) for b in range(lo, bucket)]
            active = self.active.get(key)
            baseline = (
                active.baseline_average if active else (sum(history) / len(history) if history else 0.0)
            )
            threshold = max(float(self.min_count), self.factor * max(baseline, 1.0))
            if active is None and count >= threshold:
                state = _Active(
                    start_bucket=bucket,
                    shared_id=str(uuid.uuid4()),
                    baseline_average=baseline,
                    counts=[count],
                )
                self.active[key] = state
                out.append(self._record(key, "Start", bucket, state))
            elif active is not None:
                if count >= threshold:
                    active.counts.append(count)
                else:
                    del self.active[key]
                    out.append(self._record(key, "End", bucket, active))
        return out

    def _forget(self, before: int) -> None:
        for key in list(self.counts):
            per = self.counts[key]
            for b in [b for b in per if b < before]:
                del per[b]
            if not per and key not in self.active:
                del self.counts[key]

    def _record(self, key: Key, state: str, bucket: int, active: _Active) -> dict[str, Any]:
        kind, source, name = key
        when = datetime.fromtimestamp(bucket * self.bucket_seconds, timezone.utc)
        per_minute = 60.0 / self.bucket_seconds
        statistics: dict[str, Any] = {
            "baseline": {"average": round(active.baseline_average * per_minute, 4)},
            "insight": {"average": round(sum(active.counts) / len(active.counts) * per_minute, 4)},
        }
        if state == "End":
            statistics["insightDuration"] = round(len(active.counts) * self.bucket_seconds / 60, 4)
            statistics["baselineDuration"] = round(self.baseline_buckets * self.bucket_seconds / 60, 4)
        details: dict[str, Any] = {
            "state": state,
            "eventSource": source,
            "eventName": name,
            "insightType": kind,
            "insightContext": {"statistics": statistics},
        }
        if kind == ERROR_RATE:
            details["errorCode"] = "All"
        return {
            "eventVersion": INSIGHT_EVENT_VERSION,
            "eventTime": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "awsRegion": self.region,
            "eventID": new_event_id(),
            "eventType": "AwsCloudTrailInsight",
            "recipientAccountId": self.account_id,
            "sharedEventID": active.shared_id,
            "insightDetails": details,
            "eventCategory": "Insight",
        }
