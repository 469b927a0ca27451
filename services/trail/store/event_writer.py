"""Stores batches of records in the trail database: one transaction, one thread hand-off.

The trail's other tables go through aiosqlite (``services/trail/store/sqlite.py``), where every
``execute``, ``executemany`` and ``commit`` is a hand-off to aiosqlite's thread and back (a
queue put, a thread wake-up, a ``call_soon_threadsafe`` and a loop wake-up, about 0.1 ms of
CPU each). Storing one batch took seven of them, so a batch cost ~1 ms before its first
record: at 300 KMS calls per second (the outbox ships ten 15-record batches per call) that
was ~50 us per record, more than the SQL itself. Here the whole of ``put_batches`` (every
batch of a PutEvents, all their statements and the commit) is one plain function run on this
writer's own thread, with its own connection to the same database file (WAL: readers on the
other connection see each commit).

The caller serialises writers (``TrailStore`` holds its write lock around every call), so
the two connections never wait on each other's write lock.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from itertools import repeat
from pathlib import Path
from typing import Any

from services.trail.domain.event import EventBatch, IndexColumns, LookupResource

_READ_ONLY_INT = {None: None, True: 1, False: 0}.get
_INSERT_EVENTS = (
    "INSERT OR IGNORE INTO events(event_id, event_time, received_at, event_name, event_source,"
    " read_only, username, access_key_id, category, error_code, resources, body, chunk, chunk_line)"
    " VALUES (?,?,?,?,?,?,?,?,?,?,?,'',?,?)"
)


class EventWriter:
    """The connection that stores records; every method runs on one thread (the caller's
    executor) and :meth:`put_batches` is one transaction."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.conn: sqlite3.Connection | None = None

    def open(self) -> None:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA busy_timeout=10000")
        # As on the main connection: checkpoint the WAL every ~40 MB (pages of the eventID
        # index are rewritten by many commits; a checkpoint copies each one once), and keep
        # the hot index pages in memory.
        conn.execute("PRAGMA wal_autocheckpoint=10000")
        conn.execute("PRAGMA cache_size=-65536")
        self.conn = conn

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def put_batches(self, batches: Sequence[EventBatch], received_ms: int) -> list[Sequence[int]]:
        """Store the batches in one transaction; for each, the positions of its new records
        (see ``TrailStore.put_batches``)."""
        conn = self.conn
        assert conn is not None
        conn.execute("BEGIN IMMEDIATE")
        try:
            out = [self._put_batch(conn, batch, received_ms) for batch in batches]
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return out

    @staticmethod
    def _put_batch(conn: sqlite3.Connection, batch: EventBatch, received: int) -> Sequence[int]:
        cols = batch.index
        n = len(cols.event_ids)
        if not n:
            return ()
        row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'events'").fetchone()
        last = int(row[0]) if row else 0
        chunk = conn.execute(
            "INSERT INTO event_chunks(encoding, data) VALUES (?, ?)", (batch.encoding, batch.data)
        ).lastrowid
        by_record = cols.resources_by_record() if cols.resources else None
        resources = map(resource_text, by_record) if by_record else repeat(None)
        before = conn.total_changes
        conn.executemany(
            _INSERT_EVENTS,
            zip(cols.event_ids, cols.event_times_ms, repeat(received), cols.event_names, cols.event_sources,
                map(_READ_ONLY_INT, cols.read_only), cols.usernames, cols.access_key_ids, cols.categories,
                cols.error_codes, resources, repeat(chunk), range(n)),
        )
        inserted = conn.total_changes - before
        positions: Sequence[int]
        if inserted == n:
            positions = range(n)
            seqs: Sequence[int] = range(last + 1, last + 1 + n)
        elif inserted == 0:
            conn.execute("DELETE FROM event_chunks WHERE id = ?", (chunk,))
            return ()
        else:
            stored = sorted(
                (int(r[1]), int(r[0]))
                for r in conn.execute("SELECT seq, chunk_line FROM events WHERE seq > ?", (last,))
            )
            positions = [p for p, _ in stored]
            seqs = [q for _, q in stored]
        conn.executemany(_INSERT_KEYS, lookup_keys(cols, by_record, positions, seqs))
        return positions


_INSERT_KEYS = (
    "INSERT OR IGNORE INTO event_keys(attr, value, newest, first_seq, last_seq, oldest) VALUES (?,?,?,?,?,?)"
)
RS, US = "\x1e", "\x1f"  # separators of events.resources (ASCII record / unit separators)


def _names(r: LookupResource) -> tuple[str, ...]:
    """What ResourceName finds a resource by: its name, and its ARN when that differs (a bucket)."""
    return (r.name, r.arn) if r.arn != r.name else (r.name,)


def resource_text(resources: Iterable[LookupResource]) -> str | None:
    """``events.resources``: each resource as type US name (and type US ARN when that differs:
    ResourceName matches a bucket by either), each followed by RS, the whole preceded by RS; so
    ``RS type US`` finds a type and ``US name RS`` a name (``TrailStore.lookup``)."""
    parts = [f"{r.type}{US}{name}{RS}" for r in resources for name in _names(r)]
    return RS + "".join(parts) if parts else None


def lookup_keys(
    cols: IndexColumns, by_record: Sequence[tuple[LookupResource, ...]] | None,
    positions: Sequence[int], seqs: Sequence[int],
) -> list[tuple[str, str, int, int, int, int]]:
    """The ``event_keys`` rows of a stored batch: for each (attribute, value) its records have,
    (attribute, value, newest event time, first seq, last seq, oldest event time). One row per
    value per batch stands in for one index entry per record per attribute. (A batch's
    records mostly share their values: a column with one value is done in C.) ``by_record``:
    each record's resources (``IndexColumns.resources_by_record``), None when there are none."""
    every = len(positions) == len(cols.event_ids)

    def picked(column: Sequence[Any]) -> Sequence[Any]:
        return column if every else [column[p] for p in positions]

    times = picked(cols.event_times_ms)
    rows: list[tuple[str, str, int, int, int, int]] = []
    columns: list[tuple[str, Sequence[Any], Sequence[int], Sequence[int]]] = [
        (attr, picked(column), seqs, times)
        for attr, column in (("EventName", cols.event_names), ("EventSource", cols.event_sources),
                             ("Username", cols.usernames), ("AccessKeyId", cols.access_key_ids))
    ]
    if by_record:  # one (value, seq, time) per resource, and per name of a resource
        types: list[str] = []
        names: list[str] = []
        name_seqs: list[int] = []
        name_times: list[int] = []
        res_seqs: list[int] = []
        res_times: list[int] = []
        for pos, seq, when in zip(positions, seqs, times, strict=True):
            for r in by_record[pos]:
                types.append(r.type)
                res_seqs.append(seq)
                res_times.append(when)
                for name in _names(r):
                    names.append(name)
                    name_seqs.append(seq)
                    name_times.append(when)
        columns.append(("ResourceType", types, res_seqs, res_times))
        columns.append(("ResourceName", names, name_seqs, name_times))
    for attr, values, value_seqs, value_times in columns:
        if not values:
            continue
        if len(set(values)) == 1:
            if values[0]:
                rows.append(
                    (attr, values[0], max(value_times), value_seqs[0], value_seqs[-1], min(value_times))
                )
            continue
        spans: dict[str, list[int]] = {}
        for value, seq, when in zip(values, value_seqs, value_times):
            if not value:
                continue
            span = spans.get(value)
            if span is None:
                spans[value] = [when, seq, seq, when]
                continue
            if when > span[0]:
                span[0] = when
            elif when < span[3]:
                span[3] = when
            span[2] = seq  # seqs come in increasing order
        rows.extend((attr, value, s[0], s[1], s[2], s[3]) for value, s in spans.items())
    return rows
