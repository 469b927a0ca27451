"""Validate a trail's log and digest files: ``python -m services.trail.validate``.

Usage::

    python -m services.trail.validate --trail NAME_OR_ARN --start 2026-01-01T00:00:00Z [--end ...] [--verbose]

Reads the trail (GetTrail, GetTrailStatus, ListPublicKeys) from the trail service and the files
from the object store over gRPC (as the account root), then reports every file that is

* **modified**: a digest whose signature does not verify, or whose hash no longer matches
  what the next digest recorded; a log file whose SHA-256 differs from its digest entry;
* **deleted**: a digest named as ``previousDigestS3Object`` by a valid digest but missing, the
  newest digests when GetTrailStatus's LatestDigestDeliveryTime is more than a minute after
  the newest digest found, or a log file a valid digest lists but the bucket no longer has;
* **forged**: a digest file of this trail that no valid chain accounts for and whose
  signature fails, or a log file under the trail's prefix, inside a period covered by valid
  digests, that no digest lists (for buckets shared by several trails these can also be
  another trail's files).

* **unverified**: a log file in a period whose digest is missing or invalid (nothing can
  vouch for it).

Log files delivered after the newest digest are reported as "not yet digested" (not an
error): named in the newest digest's last minute or later *and* written (LastModified) after
it, so a forged file backdated into a digested period is reported as forged. Exit status: 0 when nothing is modified, deleted or forged, 1 otherwise, 2 on usage
or connection errors. The digest rules are AWS's (services/trail/domain/digest.py), so
``aws cloudtrail validate-logs`` accepts the same files.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from common.errors import AwsError
from services.trail.domain.digest import sha256_hex, string_to_sign_of, verify_signature
from services.trail.domain.logfile import digest_prefix, gunzip_bytes, key_timestamp, log_prefix
from services.trail.ports import ObjectStore, Unavailable

VALID = "valid"
MODIFIED = "modified"
DELETED = "deleted"
FORGED = "forged"
PENDING = "not yet digested"
UNVERIFIED = "unverified"
PROBLEMS = (MODIFIED, DELETED, FORGED, UNVERIFIED)
# A log file written this close before a digest may still be missing from it (the object
# store acknowledged it while the digest was being made): it counts as not yet digested.
WRITE_SLACK = timedelta(seconds=2)


@dataclass(frozen=True, slots=True)
class Finding:
    kind: str  # "digest" | "log"
    status: str  # valid | modified | deleted | forged | not yet digested
    bucket: str
    key: str
    detail: str = ""

    def line(self) -> str:
        text = f"{'Digest' if self.kind == 'digest' else 'Log'} file\ts3://{self.bucket}/{self.key}\t"
        text += self.status.upper() if self.status in PROBLEMS else self.status
        return text + (f": {self.detail}" if self.detail else "")


@dataclass(slots=True)
class Report:
    findings: list[Finding] = field(default_factory=list)

    def add(self, finding: Finding) -> None:
        self.findings.append(finding)

    @property
    def problems(self) -> list[Finding]:
        return [f for f in self.findings if f.status in PROBLEMS]

    def of(self, status: str, kind: str | None = None) -> list[Finding]:
        return [f for f in self.findings if f.status == status and (kind is None or f.kind == kind)]


@dataclass(frozen=True, slots=True)
class TrailInfo:
    name: str
    account_id: str
    region: str
    bucket: str
    prefix: str
    latest_digest_delivery: datetime | None = None


@dataclass(slots=True)
class _Digest:
    key: str
    end: datetime
    raw: bytes | None = None  # uncompressed body
    data: dict | None = None  # type: ignore[type-arg]
    signature: str | None = None
    signature_ok: bool = False
    problem: str = ""


def _digest_key_re(info: TrailInfo) -> re.Pattern[str]:
    base = digest_prefix(prefix=info.prefix, account_id=info.account_id, region=info.region)
    return re.compile(
        "^"
        + re.escape(base)
        + r"\d{4}/\d{2}/\d{2}/"
        + re.escape(f"{info.account_id}_CloudTrail-Digest_{info.region}_{info.name}_{info.region}_")
        + r"(\d{8}T\d{6}Z)\.json\.gz$"
    )


async def _load_digest(
    objects: ObjectStore, bucket: str, key: str, end: datetime, public_keys: Mapping[str, bytes]
) -> _Digest | None:
    """None when the object does not exist."""
    d = _Digest(key=key, end=end)
    try:
        obj = await objects.get_object(bucket, key)
    except AwsError as exc:
        if exc.code in ("NoSuchKey", "NotFound"):
            return None
        raise
    try:
        d.raw = gunzip_bytes(obj.body)
        data = json.loads(d.raw)
        if not isinstance(data, dict):
            raise ValueError("not an object")
        d.data = data
    except (OSError, ValueError, EOFError):
        d.problem = "not a gzip-compressed JSON digest"
        return d
    d.signature = obj.metadata.get("signature")
    if not d.signature or obj.metadata.get("signature-algorithm") != "SHA256withRSA":
        d.problem = "signature metadata missing"
        return d
    if data.get("digestS3Bucket") != bucket or data.get("digestS3Object") != key:
        d.problem = "moved from its original location"
        return d
    fingerprint = str(data.get("digestPublicKeyFingerprint") or "")
    public = public_keys.get(fingerprint)
    if public is None:
        d.problem = f"no public key with fingerprint {fingerprint}"
        return d
    try:
        message = string_to_sign_of(data, d.raw)
    except KeyError:
        d.problem = "required fields missing"
        return d
    if not verify_signature(public, message, d.signature):
        d.problem = "signature verification failed"
        return d
    d.signature_ok = True
    return d


async def validate_trail(
    objects: ObjectStore, info: TrailInfo, public_keys: Mapping[str, bytes], start: datetime, end: datetime
) -> Report:
    report = Report()
    bucket = info.bucket
    pattern = _digest_key_re(info)
    listed = await objects.list_keys(
        bucket, digest_prefix(prefix=info.prefix, account_id=info.account_id, region=info.region)
    )
    window_end = end + timedelta(hours=1)
    digests: dict[str, _Digest] = {}
    for obj in listed:
        m = pattern.match(obj.key)
        if not m:
            continue
        when = datetime.strptime(m.group(1), "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc)
        if when < start or when > window_end:
            continue
        loaded = await _load_digest(objects, bucket, obj.key, when, public_keys)
        if loaded is not None:
            digests[obj.key] = loaded

    # Chain checks: each valid digest vouches for its predecessor. A digest that failed
    # validation still names its predecessor; a missing one is reported as deleted.
    vouched: dict[str, str] = {}  # key -> problem found through the successor ("" = fine)
    for d in sorted(digests.values(), key=lambda x: x.end):
        if d.data is None:
            continue
        prev_key = d.data.get("previousDigestS3Object")
        prev_bucket = d.data.get("previousDigestS3Bucket") or bucket
        if not prev_key or not isinstance(prev_key, str):
            continue
        prev = digests.get(prev_key)
        if prev is None and prev_bucket == bucket:
            prev_when = key_timestamp(prev_key) or start
            if prev_when < start:
                continue  # before the requested range: not checked
            prev = await _load_digest(objects, bucket, prev_key, prev_when, public_keys)
            if prev is None:
                note = "" if d.signature_ok else " (which itself failed validation)"
                report.add(
                    Finding(
                        "digest",
                        DELETED,
                        prev_bucket,
                        prev_key,
                        f"named as the previous digest by {d.key}{note}",
                    )
                )
                vouched[prev_key] = "deleted"
                continue
            digests[prev_key] = prev
        if prev is None or not d.signature_ok:
            continue
        problem = ""
        if prev.raw is None or sha256_hex(prev.raw) != d.data.get("previousDigestHashValue"):
            problem = f"hash differs from previousDigestHashValue in {d.key}"
        elif prev.signature != d.data.get("previousDigestSignature"):
            problem = f"signature differs from previousDigestSignature in {d.key}"
        vouched[prev_key] = problem

    for d in sorted(digests.values(), key=lambda x: x.end):
        if vouched.get(d.key) == "deleted":
            continue
        through_chain = vouched.get(d.key)
        if d.signature_ok and not through_chain:
            report.add(Finding("digest", VALID, bucket, d.key))
        elif d.key in vouched:
            report.add(Finding("digest", MODIFIED, bucket, d.key, through_chain or d.problem))
        else:
            newest = d is max(digests.values(), key=lambda x: x.end)
            status = MODIFIED if newest and d.signature else FORGED
            report.add(Finding("digest", status, bucket, d.key, d.problem))

    newest_any = max((d.end for d in digests.values()), default=None)
    if (
        info.latest_digest_delivery
        and (newest_any is None or info.latest_digest_delivery - newest_any > timedelta(seconds=60))
        and start <= info.latest_digest_delivery <= window_end
    ):
        report.add(
            Finding(
                "digest",
                DELETED,
                bucket,
                "(newest digests)",
                f"the trail delivered a digest at {info.latest_digest_delivery:%Y-%m-%dT%H:%M:%SZ} "
                f"but the newest found ends at "
                f"{newest_any:%Y-%m-%dT%H:%M:%SZ}"
                if newest_any
                else "no digest found",
            )
        )

    # Log files listed by valid digests.
    valid_digests = [
        d for d in digests.values() if d.signature_ok and d.data is not None and not vouched.get(d.key)
    ]
    referenced: set[str] = set()
    for d in valid_digests:
        assert d.data is not None
        for entry in d.data.get("logFiles") or []:
            log_bucket, log_key = entry.get("s3Bucket", bucket), entry.get("s3Object", "")
            referenced.add(log_key)
            listed_at = key_timestamp(log_key)
            if listed_at is not None and (
                listed_at < start - timedelta(minutes=1) or listed_at > end + timedelta(minutes=1)
            ):
                continue
            try:
                stored = await objects.get_object(log_bucket, log_key)
            except AwsError as exc:
                if exc.code in ("NoSuchKey", "NotFound"):
                    report.add(Finding("log", DELETED, log_bucket, log_key, f"listed in {d.key}"))
                    continue
                raise
            try:
                digest_ok = sha256_hex(gunzip_bytes(stored.body)) == entry.get("hashValue")
            except (OSError, EOFError, ValueError):
                digest_ok = False
            if digest_ok:
                report.add(Finding("log", VALID, log_bucket, log_key))
            else:
                report.add(Finding("log", MODIFIED, log_bucket, log_key, f"hash differs from {d.key}"))

    # Log files named only by digests that failed validation: at least tell whether they exist.
    present: set[str] = set()
    log_objects = []
    for kind in ("CloudTrail", "CloudTrail-Insight"):
        log_objects += await objects.list_keys(
            bucket, log_prefix(prefix=info.prefix, account_id=info.account_id, region=info.region, kind=kind)
        )
    present = {o.key for o in log_objects}
    for d in digests.values():
        if d in valid_digests or d.data is None:
            continue
        for entry in d.data.get("logFiles") or []:
            log_key = entry.get("s3Object", "")
            if (
                log_key
                and log_key not in referenced
                and log_key not in present
                and entry.get("s3Bucket", bucket) == bucket
            ):
                referenced.add(log_key)
                report.add(
                    Finding("log", DELETED, bucket, log_key, f"listed in {d.key}, which failed validation")
                )

    # Log files no valid digest vouches for.
    intervals = []
    for d in valid_digests:
        assert d.data is not None
        try:
            d_start = datetime.strptime(str(d.data.get("digestStartTime")), "%Y-%m-%dT%H:%M:%SZ")
        except ValueError:
            continue
        intervals.append((d_start.replace(tzinfo=timezone.utc) - timedelta(minutes=1), d.end))
    newest_end = max((d.end for d in digests.values()), default=None)
    for obj in log_objects:
        if obj.key in referenced or not obj.key.endswith(".json.gz"):
            continue
        named_at = key_timestamp(obj.key)
        if named_at is None or named_at < start - timedelta(minutes=1) or named_at > end:
            continue
        when = named_at
        # Not yet digested: a log file named after the newest digest's start of minute (names
        # carry minutes only) and written after that digest (a digest lists every log file
        # delivered before it; the object store's time has whole seconds, hence the slack).
        # A file written earlier that no digest lists is judged by its name below.
        written_late = obj.last_modified is None or obj.last_modified >= (newest_end or when) - WRITE_SLACK
        if newest_end is None or (when >= newest_end - timedelta(minutes=1) and written_late):
            report.add(Finding("log", PENDING, bucket, obj.key))
        elif any(lo <= when <= hi for lo, hi in intervals):
            report.add(Finding("log", FORGED, bucket, obj.key, "not listed in the digest covering its time"))
        else:
            report.add(
                Finding(
                    "log",
                    UNVERIFIED,
                    bucket,
                    obj.key,
                    "no valid digest covers it (its digest is missing or invalid)",
                )
            )
    return report


# ------------------------------------------------------------------ command line


def _parse_time(text: str) -> datetime:
    value = text.strip().replace("Z", "+00:00")
    when = datetime.fromisoformat(value)
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)


async def _main(args: argparse.Namespace) -> int:
    import grpc
    from google.protobuf.timestamp_pb2 import Timestamp
    from strongroom.trail.v1 import trail_pb2 as pb
    from strongroom.trail.v1 import trail_pb2_grpc

    from common.config import Settings
    from common.grpc_errors import from_rpc_error
    from services.trail.adapters.s3_grpc import S3GrpcObjectStore

    settings = Settings.from_env()
    start = _parse_time(args.start)
    end = _parse_time(args.end) if args.end else datetime.now(timezone.utc)
    async with (
        grpc.aio.insecure_channel(settings.trail_target) as trail_ch,
        grpc.aio.insecure_channel(settings.s3_target) as s3_ch,
    ):
        stub = trail_pb2_grpc.CloudTrailStub(trail_ch)
        try:
            trail = (await stub.GetTrail(pb.GetTrailRequest(name=args.trail), timeout=30)).trail
            status = await stub.GetTrailStatus(pb.GetTrailStatusRequest(name=args.trail), timeout=30)
            ks, ke = Timestamp(), Timestamp()
            ks.FromDatetime(start - timedelta(hours=1))
            ke.FromDatetime(end + timedelta(hours=2))
            keys = await stub.ListPublicKeys(pb.ListPublicKeysRequest(start_time=ks, end_time=ke), timeout=30)
        except grpc.aio.AioRpcError as exc:
            print(f"cannot read trail {args.trail}: {from_rpc_error(exc)}", file=sys.stderr)
            return 2
        arn = trail.trail_arn.split(":")
        info = TrailInfo(
            name=trail.name,
            account_id=arn[4],
            region=trail.home_region,
            bucket=trail.s3_bucket_name,
            prefix=trail.s3_key_prefix,
            latest_digest_delivery=status.latest_digest_delivery_time.ToDatetime(tzinfo=timezone.utc)
            if status.HasField("latest_digest_delivery_time")
            else None,
        )
        objects = S3GrpcObjectStore(s3_ch, account_id=info.account_id, region=info.region)
        try:
            report = await validate_trail(
                objects, info, {k.fingerprint: k.value for k in keys.public_key_list}, start, end
            )
        except (AwsError, Unavailable) as exc:
            print(f"cannot read s3://{info.bucket}: {exc}", file=sys.stderr)
            return 2
    for f in report.findings:
        if args.verbose or f.status != VALID:
            print(f.line(), file=sys.stderr if f.status in PROBLEMS else sys.stdout)
    digests_ok = len(report.of(VALID, "digest"))
    logs_ok = len(report.of(VALID, "log"))
    print(f"\nResults requested for {start:%Y-%m-%dT%H:%M:%SZ} to {end:%Y-%m-%dT%H:%M:%SZ}")
    print(
        f"{digests_ok} digest files valid, {len([p for p in report.problems if p.kind == 'digest'])} "
        f"digest files with problems"
    )
    print(
        f"{logs_ok} log files valid, {len([p for p in report.problems if p.kind == 'log'])} "
        f"log files with problems, {len(report.of(PENDING))} not yet digested"
    )
    return 1 if report.problems else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m services.trail.validate",
        description="Validate a trail's CloudTrail log and digest files.",
    )
    parser.add_argument("--trail", required=True, help="trail name or ARN")
    parser.add_argument("--start", required=True, help="UTC start, e.g. 2026-01-01T00:00:00Z")
    parser.add_argument("--end", help="UTC end (default: now)")
    parser.add_argument("--verbose", action="store_true", help="also list valid files")
    return asyncio.run(_main(parser.parse_args(argv)))


if __name__ == "__main__":
    raise SystemExit(main())
