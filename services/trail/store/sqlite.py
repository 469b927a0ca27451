"""The trail service's SQLite database (aiosqlite, WAL): events, trails, tags, deliveries, keys.

Tables
------
``events``        one row per record, unique by ``event_id`` (PutEvents is idempotent);
                  ``seq`` is the arrival order (AUTOINCREMENT, never reused) that delivery
                  cursors follow; indexed by (category, time). The record's text is line
                  ``chunk_line`` of chunk ``chunk`` (``body`` empty); rows stored before
                  chunks existed keep their text in ``body``.
``event_keys``    what LookupEvents finds records by (EventName, EventSource, Username,
                  AccessKeyId, ResourceType, ResourceName): one row per value per stored
                  batch, with the seq range and time span of the batch's records that have
                  it, instead of one index entry per record per attribute (a KMS record had
                  ten B-tree inserts; now it has three, and a batch a few rows). A lookup
                  walks the ranges newest first and filters their rows (``lookup``).
``event_chunks``  the JSON lines of a batch of records exactly as the sender shipped them
                  (``common.audit_index.pack_records``: zlib-compressed, ~20x smaller than
                  the records). Stored without decoding; read back (and cached) only to
                  return or deliver records.
``trails``        the trail (JSON ``data``), its delivery ``cursor`` (last events.seq it has
                  considered) and the head of its digest chain.
``tags``          (trail_arn, key, value).
``deliveries``    every log / insight / digest file a trail writes. A row is created, with the
                  exact gzip bytes, in the same transaction that advances the trail's cursor
                  (or claims the log files a digest lists); ``delivered_at`` is set once the
                  object store acknowledged the PutObject. Undelivered rows are retried with
                  the same key and bytes, so each record lands in exactly one log file even
                  if the process dies between PutObject and the commit.
``signing_keys``  the digest-signing public keys (ListPublicKeys).
``secrets``       small random values (the NextToken MAC key).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, fields
from datetime import datetime
from pathlib import Path
from typing import Any

import aiosqlite

from common.audit_index import InvalidRecord, unpack_records
from services.trail.domain.event import EventBatch
from services.trail.domain.lookup import LookupQuery, Position
from services.trail.domain.trails import Trail, TrailStatus
from services.trail.store.event_writer import RS, US, EventWriter

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id      TEXT NOT NULL UNIQUE,
    event_time    INTEGER NOT NULL,
    received_at   INTEGER NOT NULL,
    event_name    TEXT NOT NULL,
    event_source  TEXT NOT NULL,
    read_only     INTEGER,
    username      TEXT,
    access_key_id TEXT,
    category      TEXT NOT NULL,
    error_code    TEXT,
    body          TEXT NOT NULL,
    chunk         INTEGER,       -- event_chunks.id, when body is ''
    chunk_line    INTEGER,
    resources     TEXT           -- for ResourceType / ResourceName (event_writer.resource_text)
);
CREATE INDEX IF NOT EXISTS events_by_time ON events(category, event_time, seq);
CREATE TABLE IF NOT EXISTS event_keys (
    attr      TEXT NOT NULL,     -- EventName, EventSource, Username, AccessKeyId, ResourceType, ResourceName
    value     TEXT NOT NULL,
    newest    INTEGER NOT NULL,  -- event_time of the newest record with it in the range
    first_seq INTEGER NOT NULL,  -- the events.seq range of one stored batch's records with it
    last_seq  INTEGER NOT NULL,
    oldest    INTEGER NOT NULL,
    PRIMARY KEY (attr, value, newest, first_seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS event_chunks (
    id       INTEGER PRIMARY KEY,
    encoding INTEGER NOT NULL,  -- strongroom.trail.v1.AuditBatch.RecordsEncoding
    data     BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS trails (
    name                  TEXT PRIMARY KEY,
    data                  TEXT NOT NULL,
    cursor                INTEGER NOT NULL DEFAULT 0,
    digest_bucket         TEXT,
    digest_key            TEXT,
    digest_hash           TEXT,
    digest_signature      TEXT,
    digest_end            TEXT,
    created_at            INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS tags (
    trail_arn TEXT NOT NULL,
    key       TEXT NOT NULL,
    value     TEXT NOT NULL,
    PRIMARY KEY (trail_arn, key)
);
CREATE TABLE IF NOT EXISTS deliveries (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    trail        TEXT NOT NULL,
    kind         TEXT NOT NULL,
    bucket       TEXT NOT NULL,
    key          TEXT NOT NULL,
    body         BLOB,
    sha256       TEXT,
    oldest       TEXT,
    newest       TEXT,
    events       INTEGER NOT NULL DEFAULT 0,
    metadata     TEXT,
    kms_key_id   TEXT,
    created_at   INTEGER NOT NULL,
    delivered_at INTEGER,
    digest_id    INTEGER
);
CREATE INDEX IF NOT EXISTS deliveries_pending ON deliveries(trail, delivered_at, id);
CREATE INDEX IF NOT EXISTS deliveries_digest ON deliveries(trail, kind, digest_id);
CREATE TABLE IF NOT EXISTS signing_keys (
    fingerprint TEXT PRIMARY KEY,
    key_arn     TEXT NOT NULL,
    public_der  BLOB NOT NULL,
    valid_from  INTEGER NOT NULL,
    valid_to    INTEGER
);
CREATE TABLE IF NOT EXISTS secrets (
    name  TEXT PRIMARY KEY,
    value BLOB NOT NULL
);
"""


def now_ms() -> int:
    return int(time.time() * 1000)


# ------------------------------------------------------------------ trail <-> JSON


def _dt_to_text(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _dt_from_text(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def trail_to_json(trail: Trail) -> str:
    data = asdict(trail)
    data["created_at"] = _dt_to_text(trail.created_at)
    data["status"] = {
        f.name: (_dt_to_text(v) if isinstance(v := getattr(trail.status, f.name), datetime) else v)
        for f in fields(TrailStatus)
    }
    return json.dumps(data, separators=(",", ":"))


def trail_from_json(text: str) -> Trail:
    data = json.loads(text)
    status_raw = data.pop("status", {}) or {}
    status_kwargs: dict[str, Any] = {}
    for f in fields(TrailStatus):
        value = status_raw.get(f.name)
        if f.name in ("is_logging",):
            status_kwargs[f.name] = bool(value)
        elif f.name.endswith("_error"):
            status_kwargs[f.name] = value
        else:
            status_kwargs[f.name] = _dt_from_text(value)
    data["created_at"] = _dt_from_text(data.get("created_at"))
    for name in ("event_selectors", "advanced_event_selectors", "insight_selectors"):
        data[name] = tuple(data.get(name) or ())
    known = {f.name for f in fields(Trail)}
    return Trail(**{k: v for k, v in data.items() if k in known}, status=TrailStatus(**status_kwargs))


# ------------------------------------------------------------------ rows


@dataclass(frozen=True, slots=True)
class EventRow:
    seq: int
    event_id: str
    event_time_ms: int
    event_name: str
    event_source: str
    read_only: bool | None
    username: str | None
    access_key_id: str | None
    category: str
    body: str


@dataclass(frozen=True, slots=True)
class Delivery:
    id: int
    trail: str
    kind: str  # log | insight | digest
    bucket: str
    key: str
    body: bytes | None  # gzip bytes while pending
    sha256: str | None
    oldest: str | None
    newest: str | None
    events: int
    metadata: dict[str, str]
    kms_key_id: str | None
    created_at: int
    delivered_at: int | None


@dataclass(frozen=True, slots=True)
class NewLogFile:
    kind: str  # log | insight
    bucket: str
    key: str
    body_gz: bytes
    sha256: str  # of the uncompressed body
    oldest: str | None
    newest: str | None
    events: int
    kms_key_id: str | None


@dataclass(frozen=True, slots=True)
class DigestHead:
    bucket: str | None
    key: str | None
    hash: str | None
    signature: str | None
    end: str | None


@dataclass(frozen=True, slots=True)
class SigningKey:
    fingerprint: str
    key_arn: str
    public_der: bytes
    valid_from_ms: int
    valid_to_ms: int | None


_EVENT_COLS = (
    "seq, event_id, event_time, event_name, event_source, read_only, username, access_key_id, category, body,"
    " chunk, chunk_line"
)
_CHUNKS_CACHED = 8  # decompressed chunks kept (delivery reads a chunk's records in turn)


def _event_row(r: Sequence[Any], body: str) -> EventRow:
    return EventRow(
        seq=r[0],
        event_id=r[1],
        event_time_ms=r[2],
        event_name=r[3],
        event_source=r[4],
        read_only=None if r[5] is None else bool(r[5]),
        username=r[6],
        access_key_id=r[7],
        category=r[8],
        body=body,
    )


def _delivery(r: Sequence[Any]) -> Delivery:
    return Delivery(
        id=r[0],
        trail=r[1],
        kind=r[2],
        bucket=r[3],
        key=r[4],
        body=r[5],
        sha256=r[6],
        oldest=r[7],
        newest=r[8],
        events=r[9],
        metadata=json.loads(r[10] or "{}"),
        kms_key_id=r[11],
        created_at=r[12],
        delivered_at=r[13],
    )


_DELIVERY_COLS = (
    "id, trail, kind, bucket, key, body, sha256, oldest, newest, events, metadata, "
    "kms_key_id, created_at, delivered_at"
)


# LookupEvents attributes found through event_keys, and the events column each filters on
# (the resource attributes filter on events.resources).
_KEYED_ATTRIBUTES = {
    "EventName": "event_name", "EventSource": "event_source", "Username": "username",
    "AccessKeyId": "access_key_id", "ResourceType": "resources", "ResourceName": "resources",
}
_KEY_PAGE_FIRST, _KEY_PAGE = 4, 64  # event_keys ranges read per step of a keyed lookup (growing)


def _newest_first(row: Sequence[Any]) -> tuple[int, int]:
    return (-row[2], -row[0])  # event_time, seq


_SCHEMA_VERSION = 1  # PRAGMA user_version: 1 = event_keys (see _upgrade)
_LEGACY_LOOKUP_INDEXES = ("events_by_name", "events_by_source", "events_by_user", "events_by_akid")


async def _upgrade(db: aiosqlite.Connection, existed: bool) -> None:
    """Bring a database to ``_SCHEMA_VERSION`` (``PRAGMA user_version``), in one transaction.

    Version 1 (``event_keys``): databases from before it had one index entry per record per
    lookup attribute (and an ``event_resources`` table); their keys and resources column are
    built from those, which are then dropped. Rows stored before chunks existed get one key
    row each."""
    await db.execute("BEGIN IMMEDIATE")
    try:
        if existed:
            await _build_event_keys(db)
        await db.execute(f"PRAGMA user_version = {_SCHEMA_VERSION}")
        await db.commit()
    except BaseException:
        await db.rollback()
        raise


async def _build_event_keys(db: aiosqlite.Connection) -> None:
    per_batch = "GROUP BY 2, COALESCE(e.chunk, -e.seq)"
    spans = "MAX(e.event_time), MIN(e.seq), MAX(e.seq), MIN(e.event_time)"
    for attr, column in (("EventName", "event_name"), ("EventSource", "event_source"),
                         ("Username", "username"), ("AccessKeyId", "access_key_id")):
        await db.execute(
            f"INSERT OR IGNORE INTO event_keys SELECT '{attr}', e.{column}, {spans} FROM events e"
            f" WHERE e.{column} IS NOT NULL AND e.{column} != '' {per_batch}"
        )
    legacy = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'event_resources'"
    async with db.execute(legacy) as cur:
        if await cur.fetchone():
            await db.execute(
                "UPDATE events SET resources = (SELECT char(30) || group_concat(type || char(31) || name"
                " || char(30), '') FROM event_resources r WHERE r.seq = events.seq)"
                " WHERE seq IN (SELECT seq FROM event_resources)"
            )
            for attr, column in (("ResourceType", "type"), ("ResourceName", "name")):
                await db.execute(
                    f"INSERT OR IGNORE INTO event_keys SELECT '{attr}', r.{column}, {spans}"
                    f" FROM event_resources r JOIN events e ON e.seq = r.seq {per_batch}"
                )
            await db.execute("DROP TABLE event_resources")
    for index in _LEGACY_LOOKUP_INDEXES:
        await db.execute(f"DROP INDEX IF EXISTS {index}")


class TrailStore:
    """All persistent state of the trail service: one aiosqlite connection, and the event
    writer's own connection for storing records (``event_writer.py``)."""

    def __init__(self, db: aiosqlite.Connection, writer: EventWriter) -> None:
        self._db = db
        self._writer = writer  # stores records (PutEvents), on its own thread and connection
        self._writer_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="trail-event-writer")
        # Writers take turns, on either connection: one write transaction at a time (reads,
        # WAL snapshots, need no lock).
        self._lock = asyncio.Lock()
        self._chunks: OrderedDict[int, list[str]] = OrderedDict()

    @contextlib.asynccontextmanager
    async def _tx(self) -> AsyncIterator[aiosqlite.Connection]:
        async with self._lock:
            try:
                yield self._db
                await self._db.commit()
            except BaseException:
                await self._db.rollback()
                self._chunks.clear()  # may hold a chunk of the rolled-back transaction
                raise

    @classmethod
    async def open(cls, path: str | Path) -> TrailStore:
        """Open (creating) the database file at ``path`` (a file: records are written by a
        second connection to it)."""
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        db = await aiosqlite.connect(path)
        await db.execute("PRAGMA journal_mode=WAL")
        await db.execute("PRAGMA synchronous=NORMAL")
        # Checkpoint the WAL every ~40 MB instead of every 4 MB: the unique eventID index gets
        # random inserts, so a page is rewritten by many commits; a checkpoint copies each
        # page once however often it changed. And keep the hot index pages in memory.
        await db.execute("PRAGMA wal_autocheckpoint=10000")
        await db.execute("PRAGMA cache_size=-65536")
        await db.execute("PRAGMA foreign_keys=ON")
        async with db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'events'") as cur:
            existed = await cur.fetchone() is not None
        async with db.execute("PRAGMA user_version") as cur:
            row = await cur.fetchone()
        version = int(row[0]) if row else 0
        await db.executescript(SCHEMA)
        async with db.execute("PRAGMA table_info(events)") as cur:
            columns = {r[1] for r in await cur.fetchall()}
        for added, kind in (("chunk", "INTEGER"), ("chunk_line", "INTEGER"), ("resources", "TEXT")):
            if added not in columns:  # databases from before event_chunks / event_keys
                await db.execute(f"ALTER TABLE events ADD COLUMN {added} {kind}")
        await db.commit()
        if version < _SCHEMA_VERSION:
            await _upgrade(db, existed)
        store = cls(db, EventWriter(Path(path)))
        await asyncio.get_running_loop().run_in_executor(store._writer_thread, store._writer.open)
        return store

    async def close(self) -> None:
        await asyncio.get_running_loop().run_in_executor(self._writer_thread, self._writer.close)
        self._writer_thread.shutdown(wait=True)
        await self._db.close()

    # ------------------------------------------------------------------ secrets

    async def secret(self, name: str, size: int = 32) -> bytes:
        async with self._db.execute("SELECT value FROM secrets WHERE name = ?", (name,)) as cur:
            row = await cur.fetchone()
        if row:
            return bytes(row[0])
        async with self._tx() as db:
            await db.execute(
                "INSERT OR IGNORE INTO secrets(name, value) VALUES (?, ?)", (name, os.urandom(size))
            )
        return await self.secret(name, size)

    async def setting(self, name: str) -> str | None:
        async with self._db.execute("SELECT value FROM secrets WHERE name = ?", (name,)) as cur:
            row = await cur.fetchone()
        return bytes(row[0]).decode() if row else None

    async def set_setting(self, name: str, value: str) -> None:
        async with self._tx() as db:
            await db.execute(
                "INSERT OR REPLACE INTO secrets(name, value) VALUES (?, ?)", (name, value.encode())
            )

    # ------------------------------------------------------------------ events

    async def put_batches(
        self, batches: Sequence[EventBatch], received_ms: int | None = None
    ) -> list[Sequence[int]]:
        """Store batches of records (idempotent by event id), each as one chunk plus one index
        row per record. Returns, for each batch, the positions of the records that were new.

        Rows are zipped from the index columns in C (no object per record). One
        ``INSERT OR IGNORE`` per record: a record already stored (a sender resending a batch
        whose acknowledgement it lost) is skipped by the unique eventID index, with no look-up
        first; only when some were skipped are the new ones read back (rows of one
        transaction are numbered consecutively after the table's highest ``seq``). A batch
        with no new record leaves no chunk behind. All batches are one transaction, run in
        one hand-off to the event writer's thread (``event_writer.py``).
        """
        received = received_ms if received_ms is not None else now_ms()
        loop = asyncio.get_running_loop()
        async with self._lock:
            try:
                return await loop.run_in_executor(
                    self._writer_thread, self._writer.put_batches, batches, received
                )
            except BaseException:
                self._chunks.clear()  # may hold a chunk of the rolled-back transaction
                raise

    async def _event_rows(self, raw: Sequence[Sequence[Any]]) -> list[EventRow]:
        """Rows with their record text, from ``body`` or from the row's chunk."""
        cache = self._chunks
        missing = {r[10] for r in raw if r[10] is not None and r[10] not in cache}
        if missing:
            marks = ",".join("?" * len(missing))
            async with self._db.execute(
                f"SELECT id, encoding, data FROM event_chunks WHERE id IN ({marks})", tuple(missing)
            ) as cur:
                for chunk, encoding, data in await cur.fetchall():
                    cache[chunk] = unpack_records(encoding, bytes(data))
        rows = []
        for r in raw:
            if r[10] is None:
                rows.append(_event_row(r, r[9]))
                continue
            lines = cache.get(r[10])
            if lines is None or not 0 <= r[11] < len(lines):
                raise InvalidRecord(f"record {r[1]} is missing from chunk {r[10]}")
            cache.move_to_end(r[10])
            rows.append(_event_row(r, lines[r[11]]))
        while len(cache) > _CHUNKS_CACHED:
            cache.popitem(last=False)
        return rows

    async def lookup(self, query: LookupQuery, after: Position | None, limit: int) -> list[EventRow]:
        """Records of the query after ``after``, newest first (event time, then arrival).

        EventId goes through the unique eventID index, ReadOnly and no attribute through the
        (category, time) index. The other attributes go through ``event_keys``: see
        ``_lookup_by_key``.
        """
        category = "Insight" if query.insight else "Management"
        key, value = query.attribute_key, query.attribute_value
        keyed = key in _KEYED_ATTRIBUTES
        # In a keyed lookup the rows come by seq range: the unary + keeps SQLite from
        # walking the time index instead.
        p = "+" if keyed else ""
        where = [f"{p}category = ?", f"{p}event_time >= ?", f"{p}event_time <= ?"]
        args: list[Any] = [category, query.start_ms, query.end_ms]
        if key == "EventId":
            where.append("event_id = ?")
            args.append(value)
        elif key == "ReadOnly":
            where.append("read_only = ?")
            args.append(1 if value == "true" else 0)
        elif key == "ResourceType":
            where.append("instr(resources, ?) > 0")
            args.append(f"{RS}{value}{US}")
        elif key == "ResourceName":
            where.append("instr(resources, ?) > 0")
            args.append(f"{US}{value}{RS}")
        elif keyed:
            where.append(f"{_KEYED_ATTRIBUTES[key]} = ?")
            args.append(value)
        if after is not None:
            where.append(f"({p}event_time < ? OR ({p}event_time = ? AND {p}seq < ?))")
            args.extend([after.event_time_ms, after.event_time_ms, after.seq])
        if keyed:
            upper = min(query.end_ms, after.event_time_ms) if after is not None else query.end_ms
            raw = await self._lookup_by_key(key, value, query.start_ms, upper, where, args, limit)
        else:
            sql = (
                f"SELECT {_EVENT_COLS} FROM events WHERE {' AND '.join(where)} "
                "ORDER BY event_time DESC, seq DESC LIMIT ?"
            )
            async with self._db.execute(sql, [*args, limit]) as cur:
                raw = await cur.fetchall()
        return await self._event_rows(raw)

    async def _lookup_by_key(
        self, attr: str | None, value: str | None, start_ms: int, upper_ms: int,
        where: list[str], args: list[Any], limit: int,
    ) -> list[Any]:
        """The newest ``limit`` rows matching ``where`` among the records that have ``attr`` =
        ``value``: the ``event_keys`` ranges come newest first, a page at a time, and the rows
        of each page are filtered by ``where``. A range not yet read holds nothing newer than
        the ``newest`` of the last one read, and at that same time only lower seqs (a batch's
        seqs are one interval, disjoint from other batches'), so the walk stops once ``limit``
        rows come after (newest, first_seq) of the last range read, or the ranges run out."""
        found: list[Any] = []
        page_end: tuple[int, int] | None = None
        filters = " AND ".join(where)
        page = _KEY_PAGE_FIRST  # a common value's newest ranges alone hold a page of results
        while True:
            sql = (
                "SELECT newest, first_seq, last_seq FROM event_keys WHERE attr = ? AND value = ?"
                " AND newest >= ? AND oldest <= ?"
            )
            key_args: list[Any] = [attr, value, start_ms, upper_ms]
            if page_end is not None:
                sql += " AND (newest < ? OR (newest = ? AND first_seq < ?))"
                key_args += [page_end[0], page_end[0], page_end[1]]
            async with self._db.execute(
                sql + " ORDER BY newest DESC, first_seq DESC LIMIT ?", [*key_args, page]
            ) as cur:
                ranges = await cur.fetchall()
            if not ranges:
                break
            in_ranges = " OR ".join(["seq BETWEEN ? AND ?"] * len(ranges))
            async with self._db.execute(
                f"SELECT {_EVENT_COLS} FROM events WHERE ({in_ranges}) AND {filters}"
                " ORDER BY +event_time DESC, +seq DESC LIMIT ?",  # sorted here, not walked by the time index
                [*(v for r in ranges for v in (r[1], r[2])), *args, limit],
            ) as cur:
                found.extend(await cur.fetchall())
            found.sort(key=_newest_first)
            del found[limit:]
            page_end = (ranges[-1][0], ranges[-1][1])
            if len(ranges) < page or (len(found) == limit and (found[-1][2], found[-1][0]) > page_end):
                break
            page = min(page * 4, _KEY_PAGE)
        return found

    async def events_after(self, seq: int, limit: int) -> list[EventRow]:
        async with self._db.execute(
            f"SELECT {_EVENT_COLS} FROM events WHERE seq > ? ORDER BY seq LIMIT ?", (seq, limit)
        ) as cur:
            raw = await cur.fetchall()
        return await self._event_rows(raw)

    async def recent_events(self, since_ms: int, category: str = "Management") -> list[EventRow]:
        async with self._db.execute(
            f"SELECT {_EVENT_COLS} FROM events WHERE category = ? AND event_time >= ? ORDER BY event_time",
            (category, since_ms),
        ) as cur:
            raw = await cur.fetchall()
        return await self._event_rows(raw)

    async def management_counts(
        self, since_ms: int, bucket_ms: int
    ) -> list[tuple[str, str, bool, bool, int, int]]:
        """(source, name, read_only, failed, bucket, count) of management events since ``since_ms``."""
        async with self._db.execute(
            "SELECT event_source, event_name, read_only, error_code IS NOT NULL, event_time / ?, COUNT(*)"
            " FROM events WHERE category = 'Management' AND event_time >= ? GROUP BY 1, 2, 3, 4, 5",
            (bucket_ms, since_ms),
        ) as cur:
            return [(r[0], r[1], bool(r[2]), bool(r[3]), int(r[4]), int(r[5])) for r in await cur.fetchall()]

    async def max_seq(self) -> int:
        async with self._db.execute("SELECT COALESCE(MAX(seq), 0) FROM events") as cur:
            row = await cur.fetchone()
        return int(row[0]) if row else 0

    async def max_seq_received_before(self, received_ms: int) -> int:
        """The newest record received before ``received_ms`` (scans back from the newest)."""
        async with self._db.execute(
            "SELECT seq FROM events WHERE received_at < ? ORDER BY seq DESC LIMIT 1", (received_ms,)
        ) as cur:
            row = await cur.fetchone()
        return int(row[0]) if row else 0

    async def count_events(self) -> int:
        async with self._db.execute("SELECT COUNT(*) FROM events") as cur:
            row = await cur.fetchone()
        return int(row[0]) if row else 0

    async def purge_events(self, before_ms: int) -> int:
        """Drop records older than ``before_ms`` that every trail has already considered."""
        async with self._tx() as db:
            async with db.execute("SELECT MIN(cursor) FROM trails") as cur:
                row = await cur.fetchone()
            min_cursor = row[0] if row and row[0] is not None else None
            cond = "event_time < ?"
            args: list[Any] = [before_ms]
            if min_cursor is not None:
                cond += " AND seq <= ?"
                args.append(min_cursor)
            cur2 = await db.execute(f"DELETE FROM events WHERE {cond}", args)
            # A key row whose records all went: all older than before_ms, all considered.
            key_cond = "newest < ?" + (" AND last_seq <= ?" if min_cursor is not None else "")
            await db.execute(f"DELETE FROM event_keys WHERE {key_cond}", args)
            # Chunks and sequence numbers both grow with arrival: every chunk older than the
            # oldest remaining record's is no longer referenced.
            await db.execute(
                "DELETE FROM event_chunks WHERE id < COALESCE((SELECT chunk FROM events"
                " WHERE chunk IS NOT NULL ORDER BY seq LIMIT 1), (SELECT MAX(id) + 1 FROM event_chunks))"
            )
            return int(cur2.rowcount or 0)

    # ------------------------------------------------------------------ trails

    async def insert_trail(self, trail: Trail, tags: Iterable[tuple[str, str]], cursor: int) -> None:
        async with self._tx() as db:
            await db.execute(
                "INSERT INTO trails(name, data, cursor, created_at) VALUES (?, ?, ?, ?)",
                (trail.name, trail_to_json(trail), cursor, now_ms()),
            )
            await db.execute("DELETE FROM tags WHERE trail_arn = ?", (trail.arn,))
            await db.executemany(
                "INSERT OR REPLACE INTO tags(trail_arn, key, value) VALUES (?, ?, ?)",
                [(trail.arn, k, v) for k, v in tags],
            )

    async def get_trail(self, name: str) -> Trail | None:
        async with self._db.execute("SELECT data FROM trails WHERE name = ?", (name,)) as cur:
            row = await cur.fetchone()
        return trail_from_json(row[0]) if row else None

    async def list_trails(self) -> list[Trail]:
        async with self._db.execute("SELECT data FROM trails ORDER BY name") as cur:
            return [trail_from_json(r[0]) for r in await cur.fetchall()]

    async def count_trails(self) -> int:
        async with self._db.execute("SELECT COUNT(*) FROM trails") as cur:
            row = await cur.fetchone()
        return int(row[0]) if row else 0

    async def save_trail(self, trail: Trail, *, cursor: int | None = None) -> None:
        async with self._tx() as db:
            if cursor is None:
                await db.execute(
                    "UPDATE trails SET data = ? WHERE name = ?", (trail_to_json(trail), trail.name)
                )
            else:
                await db.execute(
                    "UPDATE trails SET data = ?, cursor = ? WHERE name = ?",
                    (trail_to_json(trail), cursor, trail.name),
                )

    async def modify_trail(
        self, name: str, change: Callable[[Trail], Trail], *, cursor: int | None = None
    ) -> Trail | None:
        """Read-modify-write one trail atomically (None if it no longer exists)."""
        async with self._tx() as db:
            async with db.execute("SELECT data FROM trails WHERE name = ?", (name,)) as cur:
                row = await cur.fetchone()
            if not row:
                return None
            trail = change(trail_from_json(row[0]))
            if cursor is None:
                await db.execute("UPDATE trails SET data = ? WHERE name = ?", (trail_to_json(trail), name))
            else:
                await db.execute(
                    "UPDATE trails SET data = ?, cursor = ? WHERE name = ?",
                    (trail_to_json(trail), cursor, name),
                )
            return trail

    async def update_status(self, name: str, **changes: Any) -> Trail | None:
        return await self.modify_trail(name, lambda t: t.with_status(**changes))

    async def delete_trail(self, trail: Trail) -> None:
        async with self._tx() as db:
            await db.execute("DELETE FROM trails WHERE name = ?", (trail.name,))
            await db.execute("DELETE FROM tags WHERE trail_arn = ?", (trail.arn,))
            await db.execute("DELETE FROM deliveries WHERE trail = ?", (trail.name,))

    async def cursor(self, name: str) -> int:
        async with self._db.execute("SELECT cursor FROM trails WHERE name = ?", (name,)) as cur:
            row = await cur.fetchone()
        return int(row[0]) if row else 0

    async def set_cursor(self, name: str, cursor: int) -> None:
        async with self._tx() as db:
            await db.execute("UPDATE trails SET cursor = ? WHERE name = ?", (cursor, name))

    # ------------------------------------------------------------------ tags

    async def tags(self, trail_arn: str) -> list[tuple[str, str]]:
        async with self._db.execute(
            "SELECT key, value FROM tags WHERE trail_arn = ? ORDER BY key", (trail_arn,)
        ) as cur:
            return [(r[0], r[1]) for r in await cur.fetchall()]

    async def put_tags(self, trail_arn: str, tags: Iterable[tuple[str, str]]) -> None:
        async with self._tx() as db:
            await db.executemany(
                "INSERT OR REPLACE INTO tags(trail_arn, key, value) VALUES (?, ?, ?)",
                [(trail_arn, k, v) for k, v in tags],
            )

    async def remove_tags(self, trail_arn: str, tags: Iterable[tuple[str, str | None]]) -> None:
        async with self._tx() as db:
            for key, value in tags:
                if value is None:
                    await db.execute("DELETE FROM tags WHERE trail_arn = ? AND key = ?", (trail_arn, key))
                else:
                    await db.execute(
                        "DELETE FROM tags WHERE trail_arn = ? AND key = ? AND value = ?",
                        (trail_arn, key, value),
                    )

    # ------------------------------------------------------------------ deliveries

    async def create_log_deliveries(
        self, *, trail: str, files: Sequence[NewLogFile], new_cursor: int
    ) -> list[int]:
        """Record the files to deliver and advance the trail's cursor, atomically."""
        ids: list[int] = []
        async with self._tx() as db:
            for f in files:
                cur = await db.execute(
                    "INSERT INTO deliveries(trail, kind, bucket, key, body, sha256, oldest, newest, events,"
                    " metadata, kms_key_id, created_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                    (
                        trail,
                        f.kind,
                        f.bucket,
                        f.key,
                        f.body_gz,
                        f.sha256,
                        f.oldest,
                        f.newest,
                        f.events,
                        "{}",
                        f.kms_key_id,
                        now_ms(),
                    ),
                )
                ids.append(int(cur.lastrowid or 0))
            await db.execute("UPDATE trails SET cursor = ? WHERE name = ?", (new_cursor, trail))
        return ids

    async def pending_deliveries(self, trail: str) -> list[Delivery]:
        async with self._db.execute(
            f"SELECT {_DELIVERY_COLS} FROM deliveries WHERE trail = ? AND delivered_at IS NULL ORDER BY id",
            (trail,),
        ) as cur:
            return [_delivery(r) for r in await cur.fetchall()]

    async def mark_delivered(self, delivery_id: int, when_ms: int) -> None:
        async with self._tx() as db:
            await db.execute(
                "UPDATE deliveries SET delivered_at = ?, body = NULL WHERE id = ?", (when_ms, delivery_id)
            )

    async def deliveries(self, trail: str, kind: str | None = None) -> list[Delivery]:
        sql = f"SELECT {_DELIVERY_COLS} FROM deliveries WHERE trail = ?"
        args: list[Any] = [trail]
        if kind:
            sql += " AND kind = ?"
            args.append(kind)
        async with self._db.execute(sql + " ORDER BY id", args) as cur:
            return [_delivery(r) for r in await cur.fetchall()]

    async def undigested_logs(self, trail: str, delivered_before_ms: int) -> list[Delivery]:
        async with self._db.execute(
            f"SELECT {_DELIVERY_COLS} FROM deliveries WHERE trail = ? AND kind IN ('log', 'insight')"
            " AND digest_id IS NULL AND delivered_at IS NOT NULL AND delivered_at < ? ORDER BY id",
            (trail, delivered_before_ms),
        ) as cur:
            return [_delivery(r) for r in await cur.fetchall()]

    async def digest_head(self, trail: str) -> DigestHead:
        async with self._db.execute(
            "SELECT digest_bucket, digest_key, digest_hash, digest_signature, digest_end"
            " FROM trails WHERE name = ?",
            (trail,),
        ) as cur:
            row = await cur.fetchone()
        if not row:
            return DigestHead(None, None, None, None, None)
        return DigestHead(*row)

    async def create_digest_delivery(
        self,
        *,
        trail: str,
        bucket: str,
        key: str,
        body_gz: bytes,
        sha256: str,
        signature: str,
        end: str,
        log_ids: Sequence[int],
        metadata: dict[str, str],
    ) -> int:
        """Record a digest to deliver, claim its log files and move the chain head, atomically."""
        async with self._tx() as db:
            cur = await db.execute(
                "INSERT INTO deliveries(trail, kind, bucket, key, body, sha256, events, metadata, created_at)"
                " VALUES (?,?,?,?,?,?,?,?,?)",
                (trail, "digest", bucket, key, body_gz, sha256, len(log_ids), json.dumps(metadata), now_ms()),
            )
            digest_id = int(cur.lastrowid or 0)
            await db.executemany(
                "UPDATE deliveries SET digest_id = ? WHERE id = ?", [(digest_id, i) for i in log_ids]
            )
            await db.execute(
                "UPDATE trails SET digest_bucket = ?, digest_key = ?, digest_hash = ?, digest_signature = ?,"
                " digest_end = ? WHERE name = ?",
                (bucket, key, sha256, signature, end, trail),
            )
            return digest_id

    async def reset_digest_chain(self, trail: str, end: str | None, *, skip_undigested: bool = False) -> None:
        """Start a new digest chain (its first digest covers from ``end``, or from StartLogging).

        ``skip_undigested``: log files delivered so far are never digested (they were delivered
        while log file validation was off).
        """
        async with self._tx() as db:
            await db.execute(
                "UPDATE trails SET digest_bucket = NULL, digest_key = NULL, digest_hash = NULL,"
                " digest_signature = NULL, digest_end = ? WHERE name = ?",
                (end, trail),
            )
            if skip_undigested:
                await db.execute(
                    "UPDATE deliveries SET digest_id = 0 WHERE trail = ? AND digest_id IS NULL"
                    " AND kind IN ('log', 'insight')",
                    (trail,),
                )

    # ------------------------------------------------------------------ signing keys

    async def signing_keys(self) -> list[SigningKey]:
        async with self._db.execute(
            "SELECT fingerprint, key_arn, public_der, valid_from, valid_to FROM signing_keys"
            " ORDER BY valid_from"
        ) as cur:
            return [SigningKey(r[0], r[1], bytes(r[2]), r[3], r[4]) for r in await cur.fetchall()]

    async def add_signing_key(self, key: SigningKey) -> None:
        async with self._tx() as db:
            await db.execute(
                "UPDATE signing_keys SET valid_to = ? WHERE valid_to IS NULL AND fingerprint != ?",
                (key.valid_from_ms, key.fingerprint),
            )
            await db.execute(
                "INSERT OR IGNORE INTO signing_keys(fingerprint, key_arn, public_der, valid_from, valid_to)"
                " VALUES (?, ?, ?, ?, ?)",
                (key.fingerprint, key.key_arn, key.public_der, key.valid_from_ms, key.valid_to_ms),
            )
