"""The durable audit sink every service uses: memory -> SQLite outbox -> trail ``PutEvents``.

``OutboxSink(settings, path)`` implements :class:`common.audit.AuditSink`. Use it as an async
context manager (or ``await start()`` / ``await aclose()``) around the service's lifetime::

    async with OutboxSink(settings, settings.service_dir("kms") / "audit-outbox.db",
                          sender="kms") as audit:
        ...  # audit.record(build_event(...)) on every call

Pipeline and guarantees
-----------------------
1. ``record(event)`` appends the record to an in-memory deque and returns. It never blocks,
   never does I/O and never raises (about a microsecond; measured in tests/unit/trail).
2. A writer task moves the deque into a local SQLite outbox (aiosqlite, WAL) every
   ``flush_interval`` seconds (50 ms) or as soon as ``flush_max`` (256) records are waiting,
   one transaction per batch; ``INSERT OR IGNORE`` keyed by eventID.
3. A shipper task sends the oldest outbox rows, in batches of ``ship_max``, to the trail
   service's ``PutEvents`` RPC over one ``grpc.aio`` channel kept for the sink's lifetime,
   and deletes rows from the outbox only after the trail acknowledged the batch. While the
   trail is unreachable it retries with exponential back-off (``min_backoff`` doubling to
   ``max_backoff``, with jitter); the outbox keeps growing on disk meanwhile.
4. The trail stores records idempotently by eventID, so a batch that was stored but whose
   acknowledgement was lost is simply resent: every record is stored exactly once.
5. ``aclose()`` writes whatever is still in memory to the outbox, then ships for at most
   ``close_timeout`` seconds; rows left over stay in the outbox file and are shipped by the
   next ``start()`` on the same path.

Durability window (honest version)
----------------------------------
* A record is durable once the writer committed it to the outbox: at most ``flush_interval``
  (50 ms) or ``flush_max`` records after ``record()`` returned. Records still in memory are
  lost if the process is killed with SIGKILL or crashes hard inside that window. SIGTERM /
  SIGINT go through ``aclose()`` and lose nothing.
* The outbox uses ``synchronous=NORMAL`` in WAL mode by default: committed rows survive a
  process crash but the last transactions may be lost on power failure / kernel panic.
  Pass ``synchronous="FULL"`` to pay an fsync per batch and survive those as well.
* Records the trail rejects as malformed (never storable: not JSON, no eventID) are logged
  and dropped; retrying cannot help.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import aiosqlite
import grpc

from common.config import Settings
from common.logging import get_logger

log = get_logger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    seq      INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL UNIQUE,
    body     TEXT NOT NULL
);
"""


@dataclass(slots=True)
class OutboxStats:
    recorded: int = 0      # record() calls accepted
    written: int = 0       # rows committed to the outbox
    shipped: int = 0       # rows acknowledged by the trail (accepted + duplicates)
    rejected: int = 0      # rows the trail refused as malformed (dropped)
    ship_failures: int = 0 # PutEvents attempts that failed (trail down, timeout...)


def _dumps(event: Mapping[str, Any]) -> str:
    return json.dumps(event, separators=(",", ":"), ensure_ascii=False, default=str)


class OutboxSink:
    """AuditSink with a durable local outbox; see the module docstring."""

    def __init__(
        self,
        settings: Settings,
        path: str | Path,
        *,
        sender: str = "",
        target: str | None = None,
        flush_interval: float = 0.05,
        flush_max: int = 256,
        ship_max: int = 500,
        min_backoff: float = 0.05,
        max_backoff: float = 5.0,
        rpc_timeout: float = 10.0,
        close_timeout: float = 3.0,
        synchronous: str = "NORMAL",
        channel_factory: Callable[[str], grpc.aio.Channel] | None = None,
    ) -> None:
        self._settings = settings
        self._path = Path(path)
        self._sender = sender
        self._target = target or settings.trail_target
        self._flush_interval = flush_interval
        self._flush_max = flush_max
        self._ship_max = ship_max
        self._min_backoff = min_backoff
        self._max_backoff = max_backoff
        self._rpc_timeout = rpc_timeout
        self._close_timeout = close_timeout
        if synchronous.upper() not in ("OFF", "NORMAL", "FULL", "EXTRA"):
            raise ValueError(f"synchronous must be OFF/NORMAL/FULL/EXTRA, not {synchronous!r}")
        self._synchronous = synchronous.upper()
        self._channel_factory = channel_factory or (lambda t: grpc.aio.insecure_channel(t))

        self._pending: deque[dict[str, Any]] = deque()
        self._db: aiosqlite.Connection | None = None
        self._channel: grpc.aio.Channel | None = None
        self._put_events: Any = None
        self._writer: asyncio.Task[None] | None = None
        self._shipper: asyncio.Task[None] | None = None
        self._write_wakeup = asyncio.Event()
        self._ship_wakeup = asyncio.Event()
        self._closing = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        self._kicked = False
        self._trail_down_since: float | None = None
        self.stats = OutboxStats()

    # ------------------------------------------------------------------ AuditSink

    def record(self, event: dict[str, Any]) -> None:
        """Queue one CloudTrail record. Cheap, non-blocking, never raises."""
        try:
            self._pending.append(event)
            self.stats.recorded += 1
            if len(self._pending) >= self._flush_max and not self._kicked and self._loop is not None:
                self._kicked = True
                if threading.get_ident() == self._loop_thread:
                    self._write_wakeup.set()
                else:
                    self._loop.call_soon_threadsafe(self._write_wakeup.set)
        except Exception:  # noqa: BLE001 - record() must never fail the request path
            pass

    # ------------------------------------------------------------------ lifetime

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._path.parent.mkdir(parents=True, exist_ok=True)
        self._db = await aiosqlite.connect(self._path)
        await self._db.execute("PRAGMA journal_mode=WAL")
        await self._db.execute(f"PRAGMA synchronous={self._synchronous}")
        await self._db.executescript(_SCHEMA)
        await self._db.commit()
        self._channel = self._channel_factory(self._target)
        from strongroom.trail.v1 import trail_pb2_grpc  # generated code, imported lazily

        self._put_events = trail_pb2_grpc.CloudTrailStub(self._channel).PutEvents
        self._writer = asyncio.create_task(self._write_loop(), name="audit-outbox-writer")
        self._shipper = asyncio.create_task(self._ship_loop(), name="audit-outbox-shipper")
        self._ship_wakeup.set()  # ship leftovers from a previous run right away

    async def aclose(self) -> None:
        if self._db is None:
            return
        self._closing = True
        self._write_wakeup.set()
        self._ship_wakeup.set()
        if self._writer is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer
        if self._shipper is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._shipper), self._close_timeout)
            except (TimeoutError, asyncio.TimeoutError):
                self._shipper.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._shipper
        left = await self.outbox_size()
        if left:
            log.warning("audit_outbox_left_for_next_start", rows=left, path=str(self._path))
        if self._channel is not None:
            await self._channel.close()
        await self._db.close()
        self._db = None

    async def __aenter__(self) -> OutboxSink:
        await self.start()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.aclose()

    # ------------------------------------------------------------------ helpers for tests / ops

    async def flush(self) -> None:
        """Write what is in memory to the outbox now."""
        await self._write_pending()

    async def outbox_size(self) -> int:
        if self._db is None:
            return 0
        async with self._db.execute("SELECT COUNT(*) FROM outbox") as cur:
            row = await cur.fetchone()
        return int(row[0]) if row else 0

    async def drain(self, timeout: float = 10.0) -> bool:
        """Wait until memory and outbox are empty (everything acknowledged); False on timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self._pending and await self.outbox_size() == 0:
                return True
            self._write_wakeup.set()
            self._ship_wakeup.set()
            await asyncio.sleep(0.02)
        return False

    # ------------------------------------------------------------------ writer

    async def _write_loop(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError, asyncio.TimeoutError):
                await asyncio.wait_for(self._write_wakeup.wait(), self._flush_interval)
            self._write_wakeup.clear()
            try:
                await self._write_pending()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - keep the writer alive
                log.error("audit_outbox_write_failed", error=str(exc))
                await asyncio.sleep(self._flush_interval)
            if self._closing and not self._pending:
                return

    async def _write_pending(self) -> None:
        if not self._pending or self._db is None:
            self._kicked = False
            return
        batch: list[dict[str, Any]] = []
        pending = self._pending
        while pending:
            batch.append(pending.popleft())
        self._kicked = False
        rows = []
        for event in batch:
            try:
                event_id = event.get("eventID")
                if not isinstance(event_id, str) or not event_id:
                    event_id = str(uuid.uuid4())
                    event["eventID"] = event_id
                rows.append((event_id, _dumps(event)))
            except Exception as exc:  # noqa: BLE001 - one bad record must not block the rest
                log.error("audit_record_unserialisable", error=type(exc).__name__)
        try:
            await self._db.executemany(
                "INSERT OR IGNORE INTO outbox(event_id, body) VALUES (?, ?)", rows)
            await self._db.commit()
        except BaseException:
            # Put the batch back in front so nothing is lost, then let the caller decide.
            pending.extendleft(reversed(batch))
            raise
        self.stats.written += len(rows)
        self._ship_wakeup.set()

    # ------------------------------------------------------------------ shipper

    async def _ship_loop(self) -> None:
        from strongroom.trail.v1 import trail_pb2

        backoff = self._min_backoff
        while True:
            assert self._db is not None
            async with self._db.execute(
                    "SELECT seq, event_id, body FROM outbox ORDER BY seq LIMIT ?",
                    (self._ship_max,)) as cur:
                rows = list(await cur.fetchall())
            if not rows:
                if self._closing and (self._writer is None or self._writer.done()):
                    return
                self._ship_wakeup.clear()
                with contextlib.suppress(TimeoutError, asyncio.TimeoutError):
                    await asyncio.wait_for(self._ship_wakeup.wait(), 1.0)
                continue
            request = trail_pb2.PutEventsRequest(
                sender=self._sender,
                records=[trail_pb2.AuditRecord(event_id=r[1], record_json=r[2]) for r in rows])
            try:
                response = await self._put_events(request, timeout=self._rpc_timeout)
            except asyncio.CancelledError:
                raise
            except grpc.aio.AioRpcError as exc:
                self.stats.ship_failures += 1
                if self._trail_down_since is None:
                    self._trail_down_since = time.monotonic()
                    log.warning("audit_trail_unreachable", target=self._target,
                                code=exc.code().name, queued=len(rows))
                if self._closing:
                    return
                await asyncio.sleep(backoff * (0.5 + random.random()))
                backoff = min(backoff * 2, self._max_backoff)
                continue
            if self._trail_down_since is not None:
                log.info("audit_trail_reachable_again",
                         after_seconds=round(time.monotonic() - self._trail_down_since, 3))
                self._trail_down_since = None
            backoff = self._min_backoff
            if response.rejected_event_ids:
                self.stats.rejected += len(response.rejected_event_ids)
                log.error("audit_records_rejected", count=len(response.rejected_event_ids))
            await self._db.execute("DELETE FROM outbox WHERE seq <= ?", (rows[-1][0],))
            await self._db.commit()
            self.stats.shipped += len(rows)
