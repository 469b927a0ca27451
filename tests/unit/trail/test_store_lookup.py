"""Event history in the SQLite store: lookups by attribute go through ``event_keys`` (one row
per value per stored batch) and must return exactly what a scan of every record returns,
newest first, page by page; databases with the older per-record indexes are upgraded."""

from __future__ import annotations

import random
import sqlite3
from collections.abc import AsyncIterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from common.audit import build_event, encode_record
from common.audit_index import IndexColumns, IndexEntry, index_of, pack_records
from common.caller import root_caller
from services.trail.domain.event import EventBatch
from services.trail.domain.lookup import LookupQuery, Position
from services.trail.store import sqlite as store_module
from services.trail.store.sqlite import TrailStore
from tests.unit.trail.fakes import ACCOUNT, REGION

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=timezone.utc)
KEY = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/"
ATTRIBUTES = ("EventName", "EventSource", "Username", "AccessKeyId", "ResourceType", "ResourceName")


def _record(rng: random.Random, i: int) -> dict[str, Any]:
    caller = root_caller(ACCOUNT, REGION)
    caller.access_key_id = rng.choice(["AKIAONE", "AKIATWO", ""])
    if rng.random() < 0.3:
        caller.principal_type, caller.user_name = "IAMUser", rng.choice(["alice", "bob"])
        caller.principal_arn = f"arn:aws:iam::{ACCOUNT}:user/{caller.user_name}"
    source, name = rng.choice([("kms.amazonaws.com", "Encrypt"), ("kms.amazonaws.com", "Decrypt"),
                               ("s3.amazonaws.com", "CreateBucket")])
    resources = []
    if source == "kms.amazonaws.com":
        resources.append({"accountId": ACCOUNT, "type": "AWS::KMS::Key", "ARN": KEY + rng.choice("abc")})
    else:
        resources.append({"type": "AWS::S3::Bucket", "ARN": "arn:aws:s3:::" + rng.choice(["b1", "b2"])})
    # Times jump about, so batches overlap in time; many share a second (ties broken by seq).
    when = NOW - timedelta(seconds=rng.randrange(0, 40))
    return build_event(caller=caller, event_source=source, event_name=name, region=REGION,
                       recipient_account_id=ACCOUNT, request_parameters={"i": i}, read_only=name == "Decrypt",
                       resources=resources, event_time=when)


def _batch(events: list[dict[str, Any]]) -> EventBatch:
    encoding, data = pack_records([encode_record(e) for e in events])
    return EventBatch(encoding, data, IndexColumns.of([index_of(e) for e in events]))


def _matches(entry: IndexEntry, attr: str, value: str) -> bool:
    if attr == "ResourceType":
        return any(r.type == value for r in entry.resources)
    if attr == "ResourceName":
        return any(value in (r.name, r.arn) for r in entry.resources)
    column = {"EventName": "event_name", "EventSource": "event_source", "Username": "username",
              "AccessKeyId": "access_key_id"}[attr]
    return getattr(entry, column) == value


def _query(attr: str | None, value: str | None, limit: int, start: datetime, end: datetime) -> LookupQuery:
    return LookupQuery(attribute_key=attr, attribute_value=value, start_ms=int(start.timestamp() * 1000),
                       end_ms=int(end.timestamp() * 1000), insight=False, max_results=limit)


async def _all_pages(store: TrailStore, query: LookupQuery) -> list[str]:
    out: list[str] = []
    after: Position | None = None
    while True:
        rows = await store.lookup(query, after, query.max_results)
        assert len(rows) <= query.max_results
        out.extend(r.event_id for r in rows)
        if len(rows) < query.max_results:
            return out
        after = Position(rows[-1].event_time_ms, rows[-1].seq)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[TrailStore]:
    s = await TrailStore.open(tmp_path / "trail.db")
    yield s
    await s.close()


async def test_keyed_lookups_return_what_a_scan_of_every_record_returns(
    store: TrailStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store_module, "_KEY_PAGE_FIRST", 1)  # walk the key ranges in several steps
    monkeypatch.setattr(store_module, "_KEY_PAGE", 3)
    rng = random.Random(5)
    events = [_record(rng, i) for i in range(240)]
    for i in range(0, len(events), 12):
        await store.put_batches([_batch(events[i : i + 12])])
    # A resent batch mixing stored records with new ones (their keys cover only the new).
    extra = [_record(rng, 1000 + i) for i in range(6)]
    await store.put_batches([_batch([events[3], *extra, events[100]])])
    events += extra
    entries = {e["eventID"]: index_of(e) for e in events}
    rows = {r.event_id: r for r in await store.events_after(0, 10_000)}
    assert set(rows) == set(entries)

    def expected(attr: str, value: str, start: datetime, end: datetime) -> list[str]:
        lo, hi = int(start.timestamp() * 1000), int(end.timestamp() * 1000)
        hits = [r for eid, r in rows.items()
                if _matches(entries[eid], attr, value) and lo <= r.event_time_ms <= hi]
        return [r.event_id for r in sorted(hits, key=lambda r: (r.event_time_ms, r.seq), reverse=True)]

    values = {
        "EventName": ["Encrypt", "Decrypt", "CreateBucket", "Sign"],
        "EventSource": ["kms.amazonaws.com", "s3.amazonaws.com"],
        "Username": ["root", "alice", "bob", "carol"],
        "AccessKeyId": ["AKIAONE", "AKIATWO"],
        "ResourceType": ["AWS::KMS::Key", "AWS::S3::Bucket", "AWS::S3::Object"],
        "ResourceName": [KEY + "a", KEY + "c", "b1", "arn:aws:s3:::b2", "b3"],
    }
    windows = [(NOW - timedelta(days=1), NOW), (NOW - timedelta(seconds=25), NOW - timedelta(seconds=10))]
    for attr in ATTRIBUTES:
        for value in values[attr]:
            for start, end in windows:
                want = expected(attr, value, start, end)
                for limit in (1, 7, 50):
                    got = await _all_pages(store, _query(attr, value, limit, start, end))
                    assert got == want, (attr, value, limit, start)
    assert expected("EventName", "Encrypt", *windows[0])  # the data does hold matches


async def test_purging_old_records_drops_their_key_rows(store: TrailStore) -> None:
    rng = random.Random(1)
    old = [_record(rng, i) for i in range(4)]
    for e in old:
        e["eventTime"] = "2025-01-01T00:00:00Z"
    new = [_record(rng, 10 + i) for i in range(3)]
    await store.put_batches([_batch(old)])
    await store.put_batches([_batch(new)])
    assert await store.purge_events(int((NOW - timedelta(days=90)).timestamp() * 1000)) == 4
    async with store._db.execute("SELECT MIN(first_seq) FROM event_keys") as cur:
        assert (await cur.fetchone())[0] == 5  # only the second batch's records are left
    window = (NOW - timedelta(days=1), NOW)
    got = await _all_pages(store, _query("EventSource", new[0]["eventSource"], 50, *window))
    assert set(got) <= {e["eventID"] for e in new} and got


_OLD_SCHEMA = """
CREATE TABLE events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, event_id TEXT NOT NULL UNIQUE, event_time INTEGER NOT NULL,
    received_at INTEGER NOT NULL, event_name TEXT NOT NULL, event_source TEXT NOT NULL, read_only INTEGER,
    username TEXT, access_key_id TEXT, category TEXT NOT NULL, error_code TEXT, body TEXT NOT NULL,
    chunk INTEGER, chunk_line INTEGER);
CREATE INDEX events_by_time ON events(category, event_time, seq);
CREATE INDEX events_by_name ON events(event_name, event_time);
CREATE INDEX events_by_source ON events(event_source, event_time);
CREATE INDEX events_by_user ON events(username, event_time);
CREATE INDEX events_by_akid ON events(access_key_id, event_time);
CREATE TABLE event_resources (seq INTEGER NOT NULL, type TEXT NOT NULL, name TEXT NOT NULL);
CREATE INDEX resources_by_type ON event_resources(type);
CREATE INDEX resources_by_name ON event_resources(name);
CREATE INDEX resources_by_seq ON event_resources(seq);
"""


async def test_a_store_with_per_record_indexes_is_upgraded(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    t = int(NOW.timestamp() * 1000)
    db = sqlite3.connect(path)
    db.executescript(_OLD_SCHEMA)
    rows = [  # (event id, time, name, source, user, akid, resources)
        ("e1", t - 3000, "CreateBucket", "s3.amazonaws.com", "root", "AKIAONE",
         [("AWS::S3::Bucket", "b1"), ("AWS::S3::Bucket", "arn:aws:s3:::b1")]),
        ("e2", t - 2000, "Encrypt", "kms.amazonaws.com", "alice", None, [("AWS::KMS::Key", KEY + "a")]),
        ("e3", t - 1000, "Encrypt", "kms.amazonaws.com", "root", "AKIAONE", [("AWS::KMS::Key", KEY + "b")]),
    ]
    for seq, (eid, when, name, source, user, akid, resources) in enumerate(rows, 1):
        db.execute("INSERT INTO events VALUES (?,?,?,?,?,?,0,?,?,'Management',NULL,?,NULL,NULL)",
                   (seq, eid, when, when, name, source, user, akid, f'{{"eventID":"{eid}"}}'))
        db.executemany("INSERT INTO event_resources VALUES (?,?,?)", [(seq, *r) for r in resources])
    db.commit()
    db.close()
    store = await TrailStore.open(path)
    try:
        window = (NOW - timedelta(days=1), NOW)
        for attr, value, want in [
            ("EventName", "Encrypt", ["e3", "e2"]), ("EventSource", "s3.amazonaws.com", ["e1"]),
            ("Username", "root", ["e3", "e1"]), ("AccessKeyId", "AKIAONE", ["e3", "e1"]),
            ("ResourceType", "AWS::KMS::Key", ["e3", "e2"]), ("ResourceName", "b1", ["e1"]),
            ("ResourceName", "arn:aws:s3:::b1", ["e1"]), ("ResourceName", KEY + "a", ["e2"]),
        ]:
            assert await _all_pages(store, _query(attr, value, 1, *window)) == want, (attr, value)
        # New records are found beside the upgraded ones.
        new = _record(random.Random(3), 0)
        new["eventName"], new["eventTime"] = "Encrypt", "2026-06-01T12:00:00Z"  # NOW: the newest
        await store.put_batches([_batch([new])])
        newest_first = [new["eventID"], "e3", "e2"]
        assert await _all_pages(store, _query("EventName", "Encrypt", 50, *window)) == newest_first
        async with store._db.execute("SELECT name FROM sqlite_master WHERE name LIKE '%resources%'"
                                     " OR name LIKE 'events_by_%'") as cur:
            assert [r[0] for r in await cur.fetchall()] == ["events_by_time"]
        async with store._db.execute("PRAGMA user_version") as cur:
            assert (await cur.fetchone())[0] == 1
    finally:
        await store.close()
