"""The durable audit sink every service uses: memory -> SQLite outbox -> trail ``PutEvents``.

``OutboxSink(settings, path)`` implements :class:`common.audit.AuditSink`. Use it as an async
context manager (or ``await start()`` / ``await aclose()``) around the service's lifetime::

    async with OutboxSink(settings, settings.service_dir("kms") / "audit-outbox.db",
                          sender="kms") as audit:
        ...  # audit.record(build_event(...)) on every call

Pipeline and guarantees
-----------------------
1. ``record(event)`` appends the record, or the function that builds it (see
   ``common.audit.AuditSink``), to an in-memory deque. It never blocks, never does I/O and
   never raises (well under a microsecond).
2. A writer task moves the deque into a local SQLite outbox (WAL) ``flush_interval``
   seconds (50 ms) after the first record of a batch, or as soon as ``flush_max`` (256)
   records are waiting: on the event loop, in tight loops of ``ENCODE_SLICE`` records
   (requests get their turn between slices), each record is built, indexed
   (``common.audit_index.index_of``) and encoded; then, in one hand-off to the sink's own
   database thread (so the event loop never waits on SQLite or zlib), the batch becomes one
   ``strongroom.trail.v1.AuditBatch`` (JSON lines, zlib-compressed, + their index; a batch
   of KMS records is ~20x smaller compressed), committed as **one row** (one INSERT, one
   commit). Nothing runs while nothing is recorded.
3. A shipper task sends committed batches, oldest first, to the trail service's
   ``PutEvents`` RPC over one ``grpc.aio`` channel kept for the sink's lifetime: every
   ``ship_interval`` (500 ms), or at once when ``ship_max`` (2000) records are ready. A gRPC
   call costs far more than a record, so shipping less often than committing keeps the sink
   cheap; durability comes from the commit, not from the shipping. Committed batches stay in
   memory too (up to ``memory_records``), so shipping normally reads nothing back from disk;
   beyond that, or after a restart, batches are paged in from the outbox. A batch leaves the
   outbox only after the trail acknowledged it (deleted in bulk every ``delete_interval``).
   While the trail is unreachable the shipper retries with exponential back-off
   (``min_backoff`` doubling to ``max_backoff``, with jitter). Because the index travels
   with the records, the trail stores them without decoding the JSON.
4. The trail stores records idempotently by eventID, so a batch whose acknowledgement was
   lost, or batches acknowledged but not yet deleted when the process stopped, are simply
   sent again: every record is stored exactly once.
5. ``aclose()`` commits whatever is still in memory, then ships for at most
   ``close_timeout`` seconds; what is left stays in the outbox file and is shipped by the
   next ``start()`` on the same path.

Cost: per record, one JSON encoding (orjson), its share of a zlib stream and one small index
entry, plus a share of one INSERT and of one gRPC call (measured by services/trail/bench.py).
The committed bytes are what is shipped: requests are assembled from them, never re-encoded. Why not aiosqlite: it is
the same design (one thread owning the connection), but each execute/commit/fetch is a
separate hand-off to that thread; a batch here is one hand-off, and rows are never read
back while the trail keeps up.

Durability window (honest version)
----------------------------------
* A record is durable once the writer committed it: at most ``flush_interval`` (50 ms) or
  ``flush_max`` records after ``record()`` returned. Records still in memory are lost if the
  process is killed with SIGKILL or crashes hard inside that window. SIGTERM / SIGINT go
  through ``aclose()`` and lose nothing.
* The outbox runs ``synchronous=NORMAL`` in WAL mode by default: committed rows survive a
  process crash, but the last transactions may be lost on power failure or kernel panic.
  Pass ``synchronous="FULL"`` to pay an fsync per batch and survive those too.
* Records that cannot be indexed (no eventTime...) are logged and dropped by ``record()``;
  records the trail rejects as malformed are logged and dropped; retrying cannot help.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import grpc
from strongroom.trail.v1 import trail_pb2

from common.audit import Event, encode_record, materialize, new_event_id
from common.audit_index import IndexEntry, index_of, pack_records, put_columns
from common.config import Settings
from common.grpc_server import CHANNEL_OPTIONS
from common.logging import get_logger

log = get_logger(__name__)
T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    seq     INTEGER PRIMARY KEY AUTOINCREMENT,
    n       INTEGER NOT NULL,   -- records in the batch
    batch   BLOB NOT NULL       -- a serialised strongroom.trail.v1.AuditBatch
);
"""
# The first layout (before batches carried their index): eventIDs and JSON texts, one per
# line. Rows left in it are moved into ``outbox`` (without an index) when the sink opens.
_LEGACY_TABLE = "outbox_batches"


@dataclass(frozen=True, slots=True)
class Batch:
    seq: int
    n: int
    blob: bytes  # a serialised strongroom.trail.v1.AuditBatch, shipped as it is


def _varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    out.append(value)
    return bytes(out)


# PutEventsRequest.batches (field 3, length-delimited): protobuf's wire form of an embedded
# message is its tag, its length and its bytes, so a request is built from the committed
# batch bytes without parsing or serialising them again.
_BATCHES_TAG = _varint(
    (trail_pb2.PutEventsRequest.DESCRIPTOR.fields_by_name["batches"].number << 3) | 2
)
_PUT_EVENTS = "/{}/PutEvents".format(trail_pb2.DESCRIPTOR.services_by_name["CloudTrail"].full_name)


def put_events_request(sender: str, blobs: list[bytes]) -> bytes:
    """A serialised ``PutEventsRequest`` carrying serialised ``AuditBatch`` messages."""
    parts = [trail_pb2.PutEventsRequest(sender=sender).SerializeToString()]
    for blob in blobs:
        parts += (_BATCHES_TAG, _varint(len(blob)), blob)
    return b"".join(parts)


@dataclass(slots=True)
class OutboxStats:
    recorded: int = 0  # record() calls accepted
    written: int = 0  # rows committed to the outbox
    shipped: int = 0  # rows acknowledged by the trail (accepted + duplicates)
    rejected: int = 0  # rows the trail refused as malformed (dropped)
    ship_failures: int = 0  # PutEvents attempts that failed (trail down, timeout...)


def _log(level: str, event: str, **fields: Any) -> None:
    """Log from the sink's background work; a broken log stream must not stop the sink."""
    with contextlib.suppress(Exception):
        getattr(log, level)(event, **fields)


ENCODE_SLICE = 16  # records encoded between two turns of the event loop


def _encode_records(events: list[Event], bodies: list[bytes], entries: list[IndexEntry]) -> None:
    """Build, index and encode records (appended to ``bodies`` / ``entries``); drops (and
    logs) unstorable ones.

    Runs on the event loop's thread, a slice of a batch at a time: measured in the KMS
    process, the same work done per call inside ``record()`` cost 2.5x more CPU (37 us vs
    about 15 us per record), the encoder's code and data being cold between requests; and
    done on the database thread it made that thread fight the event loop for the GIL.
    The writer works in slices of ``ENCODE_SLICE`` records and lets the event loop turn in
    between, so a request waits behind at most one slice (16 records, a few hundred
    microseconds in the loaded KMS) instead of a whole batch (up to ``flush_max``).
    """
    for item in events:
        try:
            event = materialize(item)
            event_id = event.get("eventID")
            if not isinstance(event_id, str) or not event_id or "\n" in event_id:
                event["eventID"] = new_event_id()
            entry = index_of(event)
            bodies.append(encode_record(event))
            entries.append(entry)
        except Exception as exc:  # noqa: BLE001 - one bad record must not block the rest
            _log("error", "audit_record_unstorable", error=type(exc).__name__, reason=str(exc)[:200])


def _index_message(entries: list[IndexEntry]) -> bytes:
    """A serialised AuditBatch holding only the records' index (on the event loop: building
    protobuf is Python work, which on the database thread would contend for the GIL)."""
    batch = trail_pb2.AuditBatch()
    put_columns(batch, entries)
    return batch.SerializeToString()


def _pack_batch(bodies: list[bytes], index: bytes) -> bytes:
    """The whole serialised AuditBatch: the index message plus the JSON lines, compressed
    (``pack_records``). Runs on the database thread: zlib releases the GIL while it
    compresses, so requests go on being served meanwhile. (Serialised protobuf messages
    concatenate into one message holding the fields of both.)"""
    encoding, data = pack_records(bodies)
    records = trail_pb2.AuditBatch(records_jsonl=data, records_encoding=encoding)  # type: ignore[arg-type]
    return index + records.SerializeToString()


class _OutboxDb:
    """The outbox file; every method runs on the sink's single database thread."""

    def __init__(self, path: Path, synchronous: str) -> None:
        self.path = path
        self.synchronous = synchronous
        self.conn: sqlite3.Connection | None = None

    def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={self.synchronous}")
        conn.executescript(_SCHEMA)
        self.conn = conn
        self._move_legacy_rows()

    def _move_legacy_rows(self) -> None:
        conn = self.conn
        assert conn is not None
        if not conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (_LEGACY_TABLE,)
        ).fetchone():
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            for n, bodies in conn.execute(f"SELECT n, bodies FROM {_LEGACY_TABLE} ORDER BY seq").fetchall():
                blob = trail_pb2.AuditBatch(records_jsonl=str(bodies).encode()).SerializeToString()
                conn.execute("INSERT INTO outbox(n, batch) VALUES (?, ?)", (int(n), blob))
            conn.execute(f"DROP TABLE {_LEGACY_TABLE}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def write(self, batches: list[tuple[int, bytes]]) -> list[int]:
        """Commit serialised batches (record count, AuditBatch bytes) in one transaction;
        returns their sequence numbers."""
        assert self.conn is not None
        conn = self.conn
        seqs: list[int] = []
        conn.execute("BEGIN")
        try:
            for n, blob in batches:
                cur = conn.execute("INSERT INTO outbox(n, batch) VALUES (?, ?)", (n, blob))
                seqs.append(int(cur.lastrowid or 0))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return seqs

    def read_after(self, seq: int, limit: int) -> list[Batch]:
        assert self.conn is not None
        rows = self.conn.execute(
            "SELECT seq, n, batch FROM outbox WHERE seq > ? ORDER BY seq LIMIT ?", (seq, limit)
        ).fetchall()
        return [Batch(int(r[0]), int(r[1]), bytes(r[2])) for r in rows]

    def delete_through(self, seq: int) -> None:
        assert self.conn is not None
        self.conn.execute("DELETE FROM outbox WHERE seq <= ?", (seq,))

    def count(self, after: int = 0) -> int:
        """Records (not batches) with a batch seq above ``after``."""
        assert self.conn is not None
        row = self.conn.execute("SELECT COALESCE(SUM(n), 0) FROM outbox WHERE seq > ?", (after,)).fetchone()
        return int(row[0])


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
        ship_interval: float = 0.5,
        ship_max: int = 2000,
        memory_records: int = 20_000,
        delete_interval: float = 0.5,
        min_backoff: float = 0.05,
        max_backoff: float = 5.0,
        rpc_timeout: float = 10.0,
        close_timeout: float = 3.0,
        synchronous: str = "NORMAL",
        channel_factory: Callable[[str], grpc.aio.Channel] | None = None,
    ) -> None:
        if synchronous.upper() not in ("OFF", "NORMAL", "FULL", "EXTRA"):
            raise ValueError(f"synchronous must be OFF/NORMAL/FULL/EXTRA, not {synchronous!r}")
        self._settings = settings
        self._path = Path(path)
        self._sender = sender
        self._target = target or settings.trail_target
        self._flush_interval = flush_interval
        self._flush_max = flush_max
        self._ship_interval = ship_interval
        self._ship_max = ship_max
        self._memory_rows = memory_records
        self._delete_interval = delete_interval
        self._min_backoff = min_backoff
        self._max_backoff = max_backoff
        self._rpc_timeout = rpc_timeout
        self._close_timeout = close_timeout
        self._channel_factory = channel_factory or (
            lambda t: grpc.aio.insecure_channel(t, options=CHANNEL_OPTIONS)
        )

        self._db = _OutboxDb(self._path, synchronous.upper())
        self._executor: ThreadPoolExecutor | None = None
        self._pending: deque[Event] = deque()  # recorded, not yet committed
        self._ready: deque[Batch] = deque()  # committed, not yet acknowledged
        self._ready_records = 0
        self._ready_high = 0  # highest seq ever put in _ready
        self._backlog = False  # committed rows exist beyond _ready_high, only on disk
        self._acked_seq = 0  # everything <= this was acknowledged
        self._deleted_seq = 0  # everything <= this was deleted from the outbox
        self._last_delete = 0.0
        self._channel: grpc.aio.Channel | None = None
        self._put_events: Any = None
        self._writer: asyncio.Task[None] | None = None
        self._shipper: asyncio.Task[None] | None = None
        self._write_wakeup = asyncio.Event()
        self._ship_wakeup = asyncio.Event()
        self._closing = False
        self._started = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        self._kicked = False
        self._trail_down_since: float | None = None
        self.stats = OutboxStats()

    # ------------------------------------------------------------------ AuditSink

    def record(self, event: Event) -> None:
        """Queue one CloudTrail record (or its builder). Cheap, non-blocking, never raises."""
        try:
            pending = self._pending
            pending.append(event)
            self.stats.recorded += 1
            waiting = len(pending)
            # Wake the writer for the first record of a batch (it starts the flush window)
            # and once more when the batch is full.
            if (waiting == 1 or (waiting >= self._flush_max and not self._kicked)) and self._loop is not None:
                self._kicked = waiting >= self._flush_max
                if threading.get_ident() == self._loop_thread:
                    self._write_wakeup.set()
                else:
                    self._loop.call_soon_threadsafe(self._write_wakeup.set)
        except Exception:  # noqa: BLE001 - record() must never fail the request path
            pass

    # ------------------------------------------------------------------ lifetime

    async def _on_db(self, fn: Callable[..., T], *args: Any) -> T:
        assert self._loop is not None and self._executor is not None
        return await self._loop.run_in_executor(self._executor, fn, *args)

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="audit-outbox")
        await self._on_db(self._db.open)
        self._backlog = await self._on_db(self._db.count) > 0  # leftovers of an earlier run
        self._channel = self._channel_factory(self._target)
        # Requests go out as bytes already serialised (see put_events_request).
        self._put_events = self._channel.unary_unary(
            _PUT_EVENTS, request_serializer=None, response_deserializer=trail_pb2.PutEventsResponse.FromString
        )
        self._started = True
        self._writer = asyncio.create_task(self._write_loop(), name="audit-outbox-writer")
        self._shipper = asyncio.create_task(self._ship_loop(), name="audit-outbox-shipper")
        self._ship_wakeup.set()

    async def aclose(self) -> None:
        if not self._started:
            return
        self._started = False
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
        await self._delete_acked(force=True)
        left = await self._on_db(self._db.count)
        if left:
            _log("warning", "audit_outbox_left_for_next_start", rows=left, path=str(self._path))
        if self._channel is not None:
            await self._channel.close()
        await self._on_db(self._db.close)
        assert self._executor is not None
        self._executor.shutdown(wait=True)

    async def __aenter__(self) -> OutboxSink:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    # ------------------------------------------------------------------ helpers for tests / ops

    async def flush(self) -> None:
        """Commit what is in memory to the outbox now."""
        await self._write_pending()

    async def outbox_size(self) -> int:
        """Rows in the outbox not yet acknowledged by the trail."""
        if self._executor is None or self._db.conn is None:
            return 0
        return await self._on_db(self._db.count, self._acked_seq)

    async def drain(self, timeout: float = 10.0) -> bool:
        """Wait until memory and outbox are empty (everything acknowledged); False on timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self._pending and not self._ready and not self._backlog:
                await self._delete_acked(force=True)
                if await self._on_db(self._db.count) == 0:
                    return True
            self._write_wakeup.set()
            self._ship_wakeup.set()
            await asyncio.sleep(0.02)
        return False

    # ------------------------------------------------------------------ writer

    async def _write_loop(self) -> None:
        # Idle until a record arrives; then let the batch fill for flush_interval (or until
        # flush_max records wait) and commit it. No timer runs while nothing is recorded.
        while True:
            if not self._pending and not self._closing:
                await self._write_wakeup.wait()
            self._write_wakeup.clear()
            if not self._closing and len(self._pending) < self._flush_max:
                with contextlib.suppress(TimeoutError, asyncio.TimeoutError):
                    await asyncio.wait_for(self._write_wakeup.wait(), self._flush_interval)
                self._write_wakeup.clear()
            try:
                await self._write_pending()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - keep the writer alive
                _log("error", "audit_outbox_write_failed", error=str(exc))
                await asyncio.sleep(self._flush_interval)
            if self._closing and not self._pending:
                return

    def _pack_and_write(
        self, parts: list[tuple[list[bytes], bytes, int]]
    ) -> tuple[list[tuple[int, bytes]], list[int]]:
        """On the database thread: (records, their index message, count) -> batches, all
        committed together."""
        encoded = [(n, _pack_batch(bodies, index)) for bodies, index, n in parts]
        return encoded, self._db.write(encoded)

    async def _write_pending(self) -> None:
        pending = self._pending
        if not pending:
            self._kicked = False
            return
        taken: list[Event] = []
        while pending:
            taken.append(pending.popleft())
        self._kicked = False
        bodies: list[bytes] = []
        entries: list[IndexEntry] = []
        for i in range(0, len(taken), ENCODE_SLICE):
            if i:
                await asyncio.sleep(0)  # requests waiting meanwhile go first
            _encode_records(taken[i : i + ENCODE_SLICE], bodies, entries)
        step = self._ship_max
        parts = [(bodies[i : i + step], _index_message(entries[i : i + step]), len(entries[i : i + step]))
                 for i in range(0, len(entries), step)]
        try:
            encoded, seqs = await self._on_db(self._pack_and_write, parts)
        except BaseException:
            pending.extendleft(reversed(taken))  # nothing is lost; retried next tick
            raise
        for seq, (n, blob) in zip(seqs, encoded, strict=True):
            b = Batch(seq=seq, n=n, blob=blob)
            self.stats.written += b.n
            if self._backlog or self._ready_records + b.n > self._memory_rows:
                self._backlog = True  # the shipper pages them in from disk, in order
            else:
                self._ready.append(b)
                self._ready_records += b.n
                self._ready_high = b.seq
        if seqs and (self._ready_records >= self._ship_max or self._backlog or len(self._ready) == len(seqs)):
            self._ship_wakeup.set()

    # ------------------------------------------------------------------ shipper

    async def _next_batches(self) -> list[Batch]:
        """The oldest committed batches, up to ``ship_max`` records (at least one batch)."""
        if not self._ready and self._backlog:
            loaded = await self._on_db(self._db.read_after, max(self._ready_high, self._acked_seq), 64)
            if loaded:
                self._ready.extend(loaded)
                self._ready_records += sum(b.n for b in loaded)
                self._ready_high = loaded[-1].seq
            else:
                self._backlog = False
        out: list[Batch] = []
        count = 0
        for batch in self._ready:
            if out and count + batch.n > self._ship_max:
                break
            out.append(batch)
            count += batch.n
        return out

    async def _delete_acked(self, force: bool = False) -> None:
        if self._acked_seq <= self._deleted_seq or self._executor is None or self._db.conn is None:
            return
        if not force and time.monotonic() - self._last_delete < self._delete_interval:
            return
        self._last_delete = time.monotonic()
        upto = self._acked_seq
        await self._on_db(self._db.delete_through, upto)
        self._deleted_seq = upto

    async def _ship_loop(self) -> None:
        backoff = self._min_backoff
        while True:
            batches = await self._next_batches()
            if not batches:
                await self._delete_acked()
                if self._closing and (self._writer is None or self._writer.done()) and not self._pending:
                    return
                self._ship_wakeup.clear()
                if self._acked_seq > self._deleted_seq:  # come back to delete what was acknowledged
                    with contextlib.suppress(TimeoutError, asyncio.TimeoutError):
                        await asyncio.wait_for(self._ship_wakeup.wait(), self._delete_interval)
                else:  # idle: the writer wakes us when a batch is committed
                    await self._ship_wakeup.wait()
                continue
            request = put_events_request(self._sender, [b.blob for b in batches])
            shipped = sum(b.n for b in batches)
            try:
                response = await self._put_events(request, timeout=self._rpc_timeout)
            except asyncio.CancelledError:
                raise
            except grpc.aio.AioRpcError as exc:
                self.stats.ship_failures += 1
                if self._trail_down_since is None:
                    self._trail_down_since = time.monotonic()
                    _log(
                        "warning",
                        "audit_trail_unreachable",
                        target=self._target,
                        code=exc.code().name,
                        queued=self._ready_records,
                    )
                if self._closing:
                    return
                await asyncio.sleep(backoff * (0.5 + random.random()))
                backoff = min(backoff * 2, self._max_backoff)
                continue
            if self._trail_down_since is not None:
                _log(
                    "info",
                    "audit_trail_reachable_again",
                    after_seconds=round(time.monotonic() - self._trail_down_since, 3),
                )
                self._trail_down_since = None
            backoff = self._min_backoff
            sent_at = time.monotonic()
            if response.rejected_event_ids:
                self.stats.rejected += len(response.rejected_event_ids)
                _log("error", "audit_records_rejected", count=len(response.rejected_event_ids))
            for _ in batches:
                self._ready_records -= self._ready.popleft().n
            self._acked_seq = batches[-1].seq
            self.stats.shipped += shipped
            await self._delete_acked()
            # Let the next batch fill up, unless it already is full or we are closing.
            while (
                not self._closing
                and self._ready_records < self._ship_max
                and not self._backlog
                and time.monotonic() - sent_at < self._ship_interval
            ):
                self._ship_wakeup.clear()
                with contextlib.suppress(TimeoutError, asyncio.TimeoutError):
                    await asyncio.wait_for(
                        self._ship_wakeup.wait(), self._ship_interval - (time.monotonic() - sent_at)
                    )
