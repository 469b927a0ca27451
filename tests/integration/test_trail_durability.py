"""Durability and integrity on a stack of its own (digests every 3 s):

* the trail service is killed (SIGKILL, several times) while calls are made; the supervisor
  restarts it; every call's event then appears exactly once in LookupEvents and exactly once
  in the delivered log files;
* log file integrity: the AWS CLI's ``validate-logs`` accepts our digests; after tampering,
  ``python -m services.trail.validate`` names every modified, deleted and forged file;
* Insights (2-second buckets here): a burst of write calls yields an ApiCallRateInsight
  Start event in event history and in the trail's CloudTrail-Insight log files.
"""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.integration.test_trail_api import trail_bucket
from tests.stackctl import ACCOUNT_ID, REGION, Stack, make_stack, remove

pytestmark = pytest.mark.timeout(600)

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def own_stack() -> Iterator[Stack]:
    s = make_stack(
        STRONGROOM_TRAIL_DIGEST_SECONDS="3",
        STRONGROOM_TRAIL_DELIVERY_SECONDS="1",
        STRONGROOM_TRAIL_INSIGHT_BUCKET_SECONDS="2",
        STRONGROOM_TRAIL_INSIGHT_MIN_HISTORY_BUCKETS="2",
        STRONGROOM_TRAIL_INSIGHT_MIN_COUNT="8",
    )
    try:
        s.start()
        yield s
    finally:
        remove(s)


def children_running(stack: Stack, module: str) -> list[int]:
    """PIDs of the supervisor's children started as ``python -m <module>``."""
    assert stack.proc is not None
    parent = stack.proc.pid
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
        except (OSError, ValueError, IndexError):
            continue
        if ppid == parent and b"-m" in cmdline and module.encode() in cmdline:
            found.append(int(entry))
    return found


def wait_until(fn: Callable[[], Any], timeout: float = 30.0, every: float = 0.3) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached within {timeout}s")
        time.sleep(every)


def delivered_records(stack: Stack, bucket: str) -> list[dict[str, Any]]:
    s3 = stack.client("s3")
    records: list[dict[str, Any]] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix="AWSLogs/"):
        for obj in page.get("Contents", []):
            if "/CloudTrail/" in obj["Key"]:
                body = s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
                records += json.loads(gzip.decompress(body))["Records"]
    return records


def test_events_survive_trail_outage_exactly_once(own_stack: Stack) -> None:
    stack = own_stack
    ct, kms, s3 = stack.client("cloudtrail"), stack.client("kms"), stack.client("s3")
    bucket = trail_bucket(stack, f"outage-{uuid.uuid4().hex[:8]}")
    trail = f"outage-{uuid.uuid4().hex[:6]}"
    ct.create_trail(Name=trail, S3BucketName=bucket)
    ct.start_logging(Name=trail)
    key_id = kms.create_key(Description="outage")["KeyMetadata"]["KeyId"]
    run = uuid.uuid4().hex[:8]
    markers: list[str] = []
    buckets: list[str] = []
    kills = 0
    deadline = time.monotonic() + 6
    i = 0
    while time.monotonic() < deadline:
        for pid in children_running(stack, "services.trail"):
            os.kill(pid, signal.SIGKILL)
            kills += 1
        marker = f"{run}-{i}"
        kms.encrypt(KeyId=key_id, Plaintext=b"secret payload", EncryptionContext={"marker": marker})
        markers.append(marker)
        if i % 5 == 0:
            name = f"outage-{run}-{i}"
            s3.create_bucket(Bucket=name)
            buckets.append(name)
        i += 1
        time.sleep(0.05)
    assert kills >= 2, "the trail service was not killed"
    wait_until(lambda: children_running(stack, "services.trail"), timeout=60)

    def lookup_all(event_name: str) -> list[dict[str, Any]]:
        try:
            return [
                e
                for page in ct.get_paginator("lookup_events").paginate(
                    LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": event_name}]
                )
                for e in page["Events"]
            ]
        except ClientError as exc:  # the restarted trail service is still starting
            if exc.response["Error"]["Code"] != "ServiceUnavailable":
                raise
            return []

    def encrypt_markers() -> Counter[str]:
        counts: Counter[str] = Counter()
        for e in lookup_all("Encrypt"):
            ctx = (json.loads(e["CloudTrailEvent"]).get("requestParameters") or {}).get(
                "encryptionContext"
            ) or {}
            if str(ctx.get("marker", "")).startswith(run):
                counts[ctx["marker"]] += 1
        return counts

    counts = wait_until(lambda: (c := encrypt_markers()) and set(c) == set(markers) and c, timeout=90)
    assert set(counts) == set(markers) and all(n == 1 for n in counts.values()), counts

    def created() -> Counter[str]:
        return Counter(
            str((json.loads(e["CloudTrailEvent"]).get("requestParameters") or {}).get("bucketName"))
            for e in lookup_all("CreateBucket")
        )

    by_bucket = wait_until(lambda: (c := created()) and all(c[b] for b in buckets) and c, timeout=90)
    assert all(by_bucket[b] == 1 for b in buckets), by_bucket

    def delivered() -> Counter[str]:
        out: Counter[str] = Counter()
        for r in delivered_records(stack, bucket):
            ctx = (r.get("requestParameters") or {}).get("encryptionContext") or {}
            if r["eventName"] == "Encrypt" and str(ctx.get("marker", "")).startswith(run):
                out[ctx["marker"]] += 1
        return out

    in_logs = wait_until(lambda: (c := delivered()) and set(c) == set(markers) and c, timeout=90)
    assert all(n == 1 for n in in_logs.values()), in_logs
    ids = [r["eventID"] for r in delivered_records(stack, bucket)]
    assert len(ids) == len(set(ids)), "a record was delivered twice"
    assert "secret payload" not in json.dumps(delivered_records(stack, bucket))
    ct.stop_logging(Name=trail)


def _key_time(digest_key: str) -> datetime:
    return datetime.strptime(digest_key.rsplit("_", 1)[1][:16], "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc)


def _validate(stack: Stack, trail: str, start: datetime) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "services.trail.validate",
            "--trail",
            trail,
            "--start",
            start.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "--verbose",
        ],
        cwd=ROOT,
        env=stack.env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_tampered_files_are_named_by_the_validator(own_stack: Stack) -> None:
    stack = own_stack
    ct, kms, s3 = stack.client("cloudtrail"), stack.client("kms"), stack.client("s3")
    bucket = trail_bucket(stack, f"integrity-{uuid.uuid4().hex[:8]}")
    trail = f"integrity-{uuid.uuid4().hex[:6]}"
    start = datetime.now(timezone.utc) - timedelta(minutes=1)
    arn = ct.create_trail(Name=trail, S3BucketName=bucket, EnableLogFileValidation=True)["TrailARN"]
    ct.start_logging(Name=trail)

    def digest_keys() -> list[str]:
        return sorted(
            o["Key"]
            for o in s3.list_objects_v2(Bucket=bucket, Prefix="AWSLogs/").get("Contents", [])
            if "/CloudTrail-Digest/" in o["Key"]
        )

    def digests_with_logs() -> list[tuple[str, list[str]]]:
        out = []
        for k in digest_keys():
            doc = json.loads(gzip.decompress(s3.get_object(Bucket=bucket, Key=k)["Body"].read()))
            out.append((k, [f["s3Object"] for f in doc["logFiles"]]))
        return out

    # Make calls until at least four digests exist, the first three listing log files.
    def enough() -> list[tuple[str, list[str]]] | None:
        kms.list_keys()
        found = digests_with_logs()
        return found if len(found) >= 4 and all(logs for _, logs in found[:3]) else None

    chain = wait_until(enough, timeout=120, every=1.0)
    assert all(
        k.endswith(".json.gz") and f"_CloudTrail-Digest_{REGION}_{trail}_{REGION}_" in k for k, _ in chain
    )
    head = s3.head_object(Bucket=bucket, Key=chain[0][0])
    assert (
        head["Metadata"]["signature-algorithm"] == "SHA256withRSA"
        and len(head["Metadata"]["signature"]) == 512
    )

    ok = _validate(stack, trail, start)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    # The AWS CLI's own validator agrees.
    cli = stack.aws(
        "cloudtrail",
        "validate-logs",
        "--trail-arn",
        arn,
        "--start-time",
        start.strftime("%Y-%m-%dT%H:%M:%SZ"),
        check=False,
    )
    assert cli.returncode == 0 and "INVALID" not in cli.stdout + cli.stderr, cli.stdout + cli.stderr

    (d0, _), (d1, logs1), (d2, logs2) = chain[0], chain[1], chain[2]
    # A forged log file backdated into d2's period, written now: the digests made after it do
    # not list it, so it is forged (log file names carry minutes only; the validator also uses
    # when the file was written, so a backdated file is not mistaken for one not yet digested).
    forged_at = _key_time(d2) - timedelta(seconds=1)
    forged_log = (
        f"AWSLogs/{ACCOUNT_ID}/CloudTrail/{REGION}/{forged_at:%Y/%m/%d}/"
        f"{ACCOUNT_ID}_CloudTrail_{REGION}_{forged_at:%Y%m%dT%H%MZ}_F0rgedF0rgedF0rg.json.gz"
    )
    s3.put_object(Bucket=bucket, Key=forged_log, Body=gzip.compress(b'{"Records":[]}'))
    written = s3.head_object(Bucket=bucket, Key=forged_log)["LastModified"]
    wait_until(
        lambda: kms.list_keys() and _key_time(digest_keys()[-1]) >= written + timedelta(seconds=3),
        timeout=60,
        every=1.0,
    )
    modified_log, deleted_log = logs2[0], logs1[0]
    body = json.loads(gzip.decompress(s3.get_object(Bucket=bucket, Key=modified_log)["Body"].read()))
    body["Records"][0]["sourceIPAddress"] = "203.0.113.66"
    s3.put_object(Bucket=bucket, Key=modified_log, Body=gzip.compress(json.dumps(body).encode()))
    s3.delete_object(Bucket=bucket, Key=deleted_log)
    doc = json.loads(gzip.decompress(s3.get_object(Bucket=bucket, Key=d1)["Body"].read()))
    doc["newestEventTime"] = "2000-01-01T00:00:00Z"
    meta = s3.head_object(Bucket=bucket, Key=d1)["Metadata"]
    s3.put_object(Bucket=bucket, Key=d1, Body=gzip.compress(json.dumps(doc).encode()), Metadata=meta)
    s3.delete_object(Bucket=bucket, Key=d0)

    bad = _validate(stack, trail, start)
    out = bad.stdout + bad.stderr
    assert bad.returncode == 1, out

    def status_of(key: str) -> str:
        lines = [ln for ln in out.splitlines() if f"s3://{bucket}/{key}\t" in ln]
        assert lines, f"{key} not reported:\n{out}"
        return lines[0].split("\t")[2]

    assert status_of(modified_log).startswith("MODIFIED")
    assert status_of(deleted_log).startswith("DELETED")
    assert status_of(forged_log).startswith("FORGED")
    assert status_of(d1).startswith("MODIFIED")
    assert status_of(d0).startswith("DELETED")
    ct.stop_logging(Name=trail)


def test_insights_from_a_burst_of_writes(own_stack: Stack) -> None:
    stack = own_stack
    ct, kms, s3 = stack.client("cloudtrail"), stack.client("kms"), stack.client("s3")
    bucket = trail_bucket(stack, f"insights-{uuid.uuid4().hex[:8]}")
    trail = f"insights-{uuid.uuid4().hex[:6]}"
    ct.create_trail(Name=trail, S3BucketName=bucket)
    ct.put_insight_selectors(TrailName=trail, InsightSelectors=[{"InsightType": "ApiCallRateInsight"}])
    ct.start_logging(Name=trail)
    key_id = kms.create_key(Description="insights")["KeyMetadata"]["KeyId"]
    for _ in range(3):  # a quiet baseline
        kms.update_key_description(KeyId=key_id, Description="quiet")
        time.sleep(2)
    for i in range(40):  # the burst
        kms.update_key_description(KeyId=key_id, Description=f"burst {i}")

    def insights() -> list[dict[str, Any]]:
        return [
            json.loads(e["CloudTrailEvent"])
            for e in ct.lookup_events(
                EventCategory="insight",
                LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": "UpdateKeyDescription"}],
            )["Events"]
        ]

    found = wait_until(lambda: [r for r in insights() if r["insightDetails"]["state"] == "Start"], timeout=60)
    details = found[0]["insightDetails"]
    assert details["insightType"] == "ApiCallRateInsight" and details["eventSource"] == "kms.amazonaws.com"
    assert found[0]["eventType"] == "AwsCloudTrailInsight" and found[0]["eventCategory"] == "Insight"

    def insight_files() -> list[str]:
        return [
            o["Key"]
            for o in s3.list_objects_v2(Bucket=bucket, Prefix="AWSLogs/").get("Contents", [])
            if "/CloudTrail-Insight/" in o["Key"]
        ]

    keys = wait_until(insight_files, timeout=30)
    records = json.loads(gzip.decompress(s3.get_object(Bucket=bucket, Key=keys[0])["Body"].read()))["Records"]
    assert any(r["insightDetails"]["state"] == "Start" for r in records)
    ct.stop_logging(Name=trail)
