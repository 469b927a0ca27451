"""Trail delivery: log files every ``trail_delivery_seconds``, digest files every
``trail_digest_seconds``, and a last delivery on shutdown.

For each trail, in arrival order (``events.seq``) past the trail's cursor:

1. Undelivered files from an earlier attempt are re-sent first, with the same key and bytes
   (see store/sqlite.py ``deliveries``). A failure stops this trail until the next tick and
   is reported by GetTrailStatus (``LatestDeliveryError``: the S3 error code).
2. New records are filtered by the logging window (``StartLoggingTime`` .. ``StopLoggingTime``,
   compared on eventTime at second precision) and the trail's selectors, written into one
   events file (and one Insights file) per batch of at most ``batch`` records, committed
   together with the new cursor, then PutObject'ed as cloudtrail.amazonaws.com with the
   trail as aws:SourceArn, SSE-KMS under the trail's KmsKeyId when it has one (encryption
   context ``aws:cloudtrail:arn`` = trail ARN; S3 adds ``aws:s3:arn``).
3. With log file validation on, once ``trail_digest_seconds`` have passed since the previous
   digest, a digest listing the log files delivered since is built, signed by the HSM key
   (services/trail/domain/digest.py), committed with the new chain head, and delivered
   (digest files use the bucket's default encryption, as on AWS).

Each record therefore lands in exactly one log file of each trail that selects it, even
across crashes and S3 outages (a file is retried until S3 accepts it).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone

from common.config import Settings
from common.errors import AwsError
from common.logging import get_logger
from services.trail.domain.digest import (
    SIGNATURE_ALGORITHM,
    LogFileEntry,
    PreviousDigest,
    build_digest,
    fingerprint,
    sha256_hex,
    string_to_sign,
)
from services.trail.domain.logfile import (
    digest_file_key,
    gzip_bytes,
    iso,
    log_file_body,
    log_file_key,
    unique_suffix,
)
from services.trail.domain.selectors import trail_matches
from services.trail.domain.trails import Trail
from services.trail.ports import DigestSigner, ObjectStore, PutRequest, Unavailable
from services.trail.store.sqlite import Delivery, EventRow, NewLogFile, TrailStore

log = get_logger(__name__)

RETENTION = timedelta(days=90)


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


def _in_window(trail: Trail, event_time_ms: int) -> bool:
    start = trail.status.start_logging_time
    if start is None:
        return False
    start_ms = int(start.timestamp()) * 1000  # eventTime has second precision
    if event_time_ms < start_ms:
        return False
    stop = trail.status.stop_logging_time
    if trail.status.is_logging or stop is None:
        return True
    return event_time_ms <= int(stop.timestamp()) * 1000 + 999


def _event_time_text(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class Deliverer:
    def __init__(
        self,
        settings: Settings,
        store: TrailStore,
        objects: ObjectStore,
        signer: DigestSigner | None,
        *,
        clock: Callable[[], datetime] = _utc_now,
        batch: int = 5000,
    ) -> None:
        self.settings = settings
        self.store = store
        self.objects = objects
        self.signer = signer
        self.clock = clock
        self.batch = batch
        self.delivery_seconds = max(0.2, settings.trail_delivery_seconds)
        self.digest_seconds = max(1.0, settings.trail_digest_seconds)
        self._task: asyncio.Task[None] | None = None
        self._wakeup = asyncio.Event()
        self._lock = asyncio.Lock()
        self._last_purge = 0.0
        self.files_delivered = 0
        self.records_delivered = 0

    # ------------------------------------------------------------------ lifetime

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="trail-delivery")

    def kick(self) -> None:
        self._wakeup.set()

    async def aclose(self, final_timeout: float = 8.0) -> None:
        """Stop the loop, then deliver what is left (bounded by ``final_timeout``)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        try:
            await asyncio.wait_for(self.deliver_all(final=True), final_timeout)
        except (TimeoutError, asyncio.TimeoutError):
            log.warning("final_delivery_timeout", seconds=final_timeout)
        except Exception as exc:  # noqa: BLE001 - shutdown must go on
            log.error("final_delivery_failed", error=str(exc))

    async def _run(self) -> None:
        tick = min(self.delivery_seconds, self.digest_seconds)
        while True:
            with contextlib.suppress(TimeoutError, asyncio.TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), tick)
            self._wakeup.clear()
            try:
                await self.deliver_all()
                await self._maybe_purge()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - keep delivering
                log.error("delivery_tick_failed", exc_info=exc)

    async def _maybe_purge(self) -> None:
        if time.monotonic() - self._last_purge < 3600:
            return
        self._last_purge = time.monotonic()
        cutoff = int((self.clock() - RETENTION).timestamp() * 1000)
        removed = await self.store.purge_events(cutoff)
        if removed:
            log.info("events_purged", count=removed)

    # ------------------------------------------------------------------ one pass

    async def deliver_all(self, *, final: bool = False) -> None:
        async with self._lock:
            for trail in await self.store.list_trails():
                try:
                    if await self._deliver_trail(trail):
                        await self._maybe_digest(trail.name)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # noqa: BLE001 - one trail must not stop the others
                    log.error("trail_delivery_failed", trail=trail.name, exc_info=exc)

    async def _deliver_trail(self, trail: Trail) -> bool:
        """Deliver this trail's pending and new files; False if S3 refused (try again later)."""
        for pending in await self.store.pending_deliveries(trail.name):
            if not await self._put(trail, pending):
                return False
        while True:
            trail_now = await self.store.get_trail(trail.name)
            if trail_now is None:
                return False
            trail = trail_now
            cursor = await self.store.cursor(trail.name)
            rows = await self.store.events_after(cursor, self.batch)
            if not rows:
                return True
            files = self._files_for(trail, rows)
            ids = await self.store.create_log_deliveries(
                trail=trail.name, files=files, new_cursor=rows[-1].seq
            )
            for delivery_id, f in zip(ids, files, strict=True):
                delivery = Delivery(
                    id=delivery_id,
                    trail=trail.name,
                    kind=f.kind,
                    bucket=f.bucket,
                    key=f.key,
                    body=f.body_gz,
                    sha256=f.sha256,
                    oldest=f.oldest,
                    newest=f.newest,
                    events=f.events,
                    metadata={},
                    kms_key_id=f.kms_key_id,
                    created_at=0,
                    delivered_at=None,
                )
                if not await self._put(trail, delivery):
                    return False
            if len(rows) < self.batch:
                return True

    def _files_for(self, trail: Trail, rows: list[EventRow]) -> list[NewLogFile]:
        selected: dict[str, list[EventRow]] = {"log": [], "insight": []}
        for row in rows:
            if not _in_window(trail, row.event_time_ms):
                continue
            try:
                record = json.loads(row.body)
            except ValueError:
                continue
            if not trail_matches(
                event_selectors=trail.event_selectors,
                advanced_event_selectors=trail.advanced_event_selectors,
                has_insight_selectors=trail.has_insight_selectors,
                record=record,
                insight_types=[s["InsightType"] for s in trail.insight_selectors],
            ):
                continue
            selected["insight" if row.category == "Insight" else "log"].append(row)
        now = self.clock()
        files = []
        for kind, chosen in selected.items():
            if not chosen:
                continue
            body = log_file_body([r.body for r in chosen])
            key = log_file_key(
                prefix=trail.s3_key_prefix,
                account_id=trail.account_id,
                region=trail.region,
                when=now,
                unique=unique_suffix(),
                kind="CloudTrail" if kind == "log" else "CloudTrail-Insight",
            )
            times = [r.event_time_ms for r in chosen]
            files.append(
                NewLogFile(
                    kind=kind,
                    bucket=trail.s3_bucket_name,
                    key=key,
                    body_gz=gzip_bytes(body),
                    sha256=sha256_hex(body),
                    oldest=_event_time_text(min(times)),
                    newest=_event_time_text(max(times)),
                    events=len(chosen),
                    kms_key_id=trail.kms_key_id or None,
                )
            )
        return files

    async def _put(self, trail: Trail, d: Delivery) -> bool:
        assert d.body is not None
        is_digest = d.kind == "digest"
        request = PutRequest(
            bucket=d.bucket,
            key=d.key,
            body=d.body,
            content_type="application/json",
            content_encoding="gzip",
            metadata=d.metadata or None,
            kms_key_id=None if is_digest else d.kms_key_id,
            encryption_context={"aws:cloudtrail:arn": trail.arn}
            if (d.kms_key_id and not is_digest)
            else None,
            source_arn=trail.arn,
            source_account=trail.account_id,
        )
        attempt = self.clock()
        try:
            await self.objects.put_object(request)
        except (AwsError, Unavailable) as exc:
            code = exc.code if isinstance(exc, AwsError) else "ServiceUnavailable"
            log.warning("delivery_failed", trail=trail.name, kind=d.kind, key=d.key, code=code)
            if is_digest:
                await self.store.update_status(trail.name, latest_digest_delivery_error=code)
            else:
                await self.store.update_status(
                    trail.name, latest_delivery_error=code, latest_delivery_attempt_time=attempt
                )
            return False
        done = self.clock()
        await self.store.mark_delivered(d.id, int(done.timestamp() * 1000))
        if is_digest:
            await self.store.update_status(
                trail.name, latest_digest_delivery_time=done, latest_digest_delivery_error=None
            )
        else:
            self.files_delivered += 1
            self.records_delivered += d.events
            await self.store.update_status(
                trail.name,
                latest_delivery_time=done,
                latest_delivery_error=None,
                latest_delivery_attempt_time=attempt,
                latest_delivery_attempt_succeeded=done,
            )
        log.info("delivered", trail=trail.name, kind=d.kind, key=d.key, records=d.events)
        return True

    # ------------------------------------------------------------------ digests

    async def _maybe_digest(self, name: str, *, force: bool = False) -> None:
        trail = await self.store.get_trail(name)
        if trail is None or not trail.log_file_validation_enabled or self.signer is None:
            return
        if trail.status.start_logging_time is None:
            return
        if any(d.kind == "digest" for d in await self.store.pending_deliveries(name)):
            return
        head = await self.store.digest_head(name)
        now = self.clock().replace(microsecond=0)
        start_text = head.end or iso(trail.status.start_logging_time)
        start = datetime.strptime(start_text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
        now_ms = int(now.timestamp() * 1000)
        logs = await self.store.undigested_logs(name, delivered_before_ms=now_ms + 1000)
        if not trail.status.is_logging and not logs:
            return  # stopped: no more digests until logging starts again
        if not force and (now - start).total_seconds() < self.digest_seconds:
            return
        if now <= start:
            return
        end_text = iso(now)
        key = digest_file_key(
            prefix=trail.s3_key_prefix,
            account_id=trail.account_id,
            region=trail.region,
            trail_name=trail.name,
            end=now,
        )
        previous = (
            PreviousDigest(
                s3_bucket=head.bucket or "",
                s3_object=head.key,
                hash_value=head.hash or "",
                signature=head.signature or "",
            )
            if head.key
            else None
        )
        try:
            public = await self.signer.public_key()
            entries = [
                LogFileEntry(
                    s3_bucket=d.bucket,
                    s3_object=d.key,
                    hash_value=d.sha256 or "",
                    oldest_event_time=d.oldest,
                    newest_event_time=d.newest,
                )
                for d in logs
            ]
            body = build_digest(
                account_id=trail.account_id,
                start=start_text,
                end=end_text,
                bucket=trail.s3_bucket_name,
                key=key,
                key_fingerprint=fingerprint(public),
                logs=entries,
                previous=previous,
            )
            message = string_to_sign(
                end=end_text,
                bucket=trail.s3_bucket_name,
                key=key,
                digest_body=body,
                previous_signature=previous.signature if previous else None,
            )
            signature = (await self.signer.sign(message)).hex()
        except (AwsError, Unavailable) as exc:
            code = exc.code if isinstance(exc, AwsError) else "ServiceUnavailable"
            log.warning("digest_signing_failed", trail=name, code=code)
            await self.store.update_status(name, latest_digest_delivery_error=code)
            return
        metadata = {"signature": signature, "signature-algorithm": SIGNATURE_ALGORITHM}
        digest_id = await self.store.create_digest_delivery(
            trail=name,
            bucket=trail.s3_bucket_name,
            key=key,
            body_gz=gzip_bytes(body),
            sha256=sha256_hex(body),
            signature=signature,
            end=end_text,
            log_ids=[d.id for d in logs],
            metadata=metadata,
        )
        delivery = Delivery(
            id=digest_id,
            trail=name,
            kind="digest",
            bucket=trail.s3_bucket_name,
            key=key,
            body=gzip_bytes(body),
            sha256=sha256_hex(body),
            oldest=None,
            newest=None,
            events=len(logs),
            metadata=metadata,
            kms_key_id=None,
            created_at=0,
            delivered_at=None,
        )
        await self._put(trail, delivery)
