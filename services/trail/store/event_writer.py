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
from collections.abc import Sequence
from itertools import repeat
from pathlib import Path

from services.trail.domain.event import EventBatch

_READ_ONLY_INT = {None: None, True: 1, False: 0}.get
_INSERT_EVENTS = (
    "INSERT OR IGNORE INTO events(event_id, event_time, received_at, event_name, event_source,"
    " read_only, username, access_key_id, category, error_code, body, chunk, chunk_line)"
    " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)"
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
        before = conn.total_changes
        conn.executemany(
            _INSERT_EVENTS,
            zip(cols.event_ids, cols.event_times_ms, repeat(received), cols.event_names, cols.event_sources,
                map(_READ_ONLY_INT, cols.read_only), cols.usernames, cols.access_key_ids, cols.categories,
                cols.error_codes, repeat(""), repeat(chunk), range(n)),
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
        if cols.resources:
            starts = [0]
            for c in cols.resource_counts:
                starts.append(starts[-1] + c)
            resources = []
            for pos, seq in zip(positions, seqs, strict=True):
                for r in cols.resources[starts[pos] : starts[pos + 1]]:
                    resources.append((seq, r.type, r.name))
                    if r.arn != r.name:
                        resources.append((seq, r.type, r.arn))
            if resources:
                conn.executemany("INSERT INTO event_resources(seq, type, name) VALUES (?,?,?)", resources)
        return positions
