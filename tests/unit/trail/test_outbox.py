"""common/audit_outbox.py against a fake trail gRPC server: cost of record(), batching,
retry while the trail is down, de-duplication when acknowledgements are lost, leftovers
shipped by the next start, rejected records dropped."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from strongroom.trail.v1 import trail_pb2 as pb
from strongroom.trail.v1 import trail_pb2_grpc

from common.audit_index import IndexEntry, from_columns, index_of, unpack_records
from common.audit_outbox import OutboxSink
from common.config import Settings
from stack.launcher import free_port


class FakeTrail(trail_pb2_grpc.CloudTrailServicer):
    """Stores records by event id, like the real trail; can fail or lose acknowledgements."""

    def __init__(self) -> None:
        self.stored: dict[str, dict[str, Any]] = {}
        self.indexes: dict[str, IndexEntry] = {}
        self.receipts = 0
        self.calls = 0
        self.encodings: list[int] = []
        self.bytes_received = 0
        self.fail_calls = 0  # answer UNAVAILABLE without storing
        self.lose_acks = 0  # store, then answer UNAVAILABLE (the sender must resend)
        self.reject: set[str] = set()

    async def PutEvents(
        self, request: pb.PutEventsRequest, context: grpc.aio.ServicerContext
    ) -> pb.PutEventsResponse:
        self.calls += 1
        if self.fail_calls > 0:
            self.fail_calls -= 1
            await context.abort(grpc.StatusCode.UNAVAILABLE, "down")
        accepted = duplicates = 0
        rejected = []
        received = [(r.event_id, json.loads(r.record_json)) for r in request.records]
        for batch in request.batches:
            self.encodings.append(batch.records_encoding)
            self.bytes_received += len(batch.records_jsonl)
            bodies = unpack_records(batch.records_encoding, batch.records_jsonl)
            entries = from_columns(batch)
            if entries is None:  # rows of the first outbox layout carry no index
                received.extend((r["eventID"], r) for r in map(json.loads, bodies))
                continue
            assert len(entries) == len(bodies)
            for entry, body in zip(entries, bodies, strict=True):
                record = json.loads(body)
                assert entry == index_of(record)  # the index is the record's
                self.indexes[entry.event_id] = entry
                received.append((entry.event_id, record))
        for event_id, record in received:
            self.receipts += 1
            if event_id in self.reject:
                rejected.append(event_id)
                continue
            if event_id in self.stored:
                duplicates += 1
            else:
                self.stored[event_id] = record
                accepted += 1
        if self.lose_acks > 0:
            self.lose_acks -= 1
            await context.abort(grpc.StatusCode.UNAVAILABLE, "ack lost")
        return pb.PutEventsResponse(accepted=accepted, duplicates=duplicates, rejected_event_ids=rejected)


class TrailServer:
    def __init__(self, port: int) -> None:
        self.port = port
        self.fake = FakeTrail()
        self.server: grpc.aio.Server | None = None

    async def start(self) -> None:
        self.server = grpc.aio.server()
        trail_pb2_grpc.add_CloudTrailServicer_to_server(self.fake, self.server)
        assert self.server.add_insecure_port(f"127.0.0.1:{self.port}") == self.port
        await self.server.start()

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.stop(0)
            self.server = None


@pytest.fixture
async def trail() -> AsyncIterator[TrailServer]:
    server = TrailServer(free_port())
    await server.start()
    yield server
    await server.stop()


def settings_for(port: int) -> Settings:
    return Settings(grpc_host="127.0.0.1", trail_port=port)


def event(i: int = 0) -> dict[str, Any]:
    return {
        "eventVersion": "1.11",
        "eventTime": "2026-01-01T00:00:00Z",
        "eventSource": "kms.amazonaws.com",
        "eventName": f"Op{i}",
        "eventID": str(uuid.uuid4()),
        "readOnly": False,
    }


def sink(tmp_path: Path, port: int, **kw: Any) -> OutboxSink:
    kw.setdefault("max_backoff", 0.2)
    return OutboxSink(settings_for(port), tmp_path / "outbox.db", sender="test", **kw)


async def wait_for(predicate: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached")
        await asyncio.sleep(0.02)


async def test_records_ship_with_their_lookup_index(tmp_path: Path, trail: TrailServer) -> None:
    async with sink(tmp_path, trail.port) as audit:
        events = [event(i) for i in range(50_000)]
        events[7]["userIdentity"] = {"type": "IAMUser", "userName": "alice", "accessKeyId": "AKIAEXAMPLE"}
        events[7]["resources"] = [{"type": "AWS::KMS::Key", "ARN": "arn:aws:kms:us-east-1:1:key/k"}]
        events[8]["errorCode"] = "AccessDenied"
        for e in events:
            audit.record(e)
        assert await audit.drain(30)
    assert len(trail.fake.stored) == 50_000
    # Batches travel zlib-compressed: their records repeat most of their text.
    assert set(trail.fake.encodings) == {pb.AuditBatch.RECORDS_ENCODING_ZLIB}
    plain = sum(len(json.dumps(e, separators=(",", ":"))) + 1 for e in events)
    assert trail.fake.bytes_received < plain / 5
    seven = trail.fake.indexes[events[7]["eventID"]]
    assert (seven.username, seven.access_key_id, seven.read_only) == ("alice", "AKIAEXAMPLE", False)
    assert [(r.type, r.arn) for r in seven.resources] == [("AWS::KMS::Key", "arn:aws:kms:us-east-1:1:key/k")]
    assert seven.event_time_ms == 1767225600000 and seven.category == "Management"
    eight = trail.fake.indexes[events[8]["eventID"]]
    assert eight.error_code == "AccessDenied" and eight.username is None and eight.resources == ()


async def test_rows_of_the_first_outbox_layout_are_shipped(tmp_path: Path, trail: TrailServer) -> None:
    import sqlite3

    old = [event(i) for i in range(3)]
    db = sqlite3.connect(tmp_path / "outbox.db")
    db.execute("CREATE TABLE outbox_batches (seq INTEGER PRIMARY KEY AUTOINCREMENT, n INTEGER NOT NULL,"
               " event_ids TEXT NOT NULL, bodies TEXT NOT NULL)")
    db.execute("INSERT INTO outbox_batches(n, event_ids, bodies) VALUES (?, ?, ?)",
               (3, "\n".join(e["eventID"] for e in old), "\n".join(json.dumps(e) for e in old)))
    db.commit()
    db.close()
    trail.fake.stored.clear()

    async with sink(tmp_path, trail.port) as audit:
        assert await audit.drain(10)
    assert sorted(trail.fake.stored) == sorted(e["eventID"] for e in old)
    db = sqlite3.connect(tmp_path / "outbox.db")
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    db.close()
    assert "outbox_batches" not in tables


async def test_everything_shipped_once_in_batches(tmp_path: Path, trail: TrailServer) -> None:
    async with sink(tmp_path, trail.port, ship_max=100) as audit:
        events = [event(i) for i in range(1000)]
        for e in events:
            audit.record(e)
        assert await audit.drain()
        assert audit.stats.shipped == 1000 and audit.stats.written == 1000
    assert set(trail.fake.stored) == {e["eventID"] for e in events}
    assert trail.fake.receipts == 1000 and trail.fake.calls >= 10
    assert trail.fake.stored[events[5]["eventID"]]["eventName"] == "Op5"


async def test_retries_while_trail_is_down(tmp_path: Path) -> None:
    port = free_port()
    async with sink(tmp_path, port) as audit:  # trail not started yet
        events = [event(i) for i in range(300)]
        for e in events:
            audit.record(e)
        await asyncio.sleep(0.5)
        assert await audit.outbox_size() == 300  # durable while the trail is away
        assert audit.stats.ship_failures > 0
        server = TrailServer(port)
        await server.start()
        try:
            assert await audit.drain()
        finally:
            await server.stop()
    assert set(server.fake.stored) == {e["eventID"] for e in events}


async def test_lost_acknowledgements_are_resent_and_deduplicated(tmp_path: Path, trail: TrailServer) -> None:
    trail.fake.lose_acks = 2
    trail.fake.fail_calls = 1
    async with sink(tmp_path, trail.port) as audit:
        events = [event(i) for i in range(50)]
        for e in events:
            audit.record(e)
        assert await audit.drain()
    assert len(trail.fake.stored) == 50
    assert trail.fake.receipts >= 150  # the same records arrived three times...
    assert set(trail.fake.stored) == {e["eventID"] for e in events}  # ...and are stored once


async def test_leftovers_are_shipped_by_the_next_start(tmp_path: Path) -> None:
    port = free_port()
    audit = sink(tmp_path, port, close_timeout=0.3)
    await audit.start()
    events = [event(i) for i in range(40)]
    for e in events:
        audit.record(e)
    await audit.aclose()  # trail down: rows stay in the file
    server = TrailServer(port)
    await server.start()
    try:
        async with sink(tmp_path, port) as again:
            assert await again.drain()
    finally:
        await server.stop()
    assert set(server.fake.stored) == {e["eventID"] for e in events}


async def test_rejected_records_are_dropped(tmp_path: Path, trail: TrailServer) -> None:
    bad, good = event(1), event(2)
    trail.fake.reject.add(bad["eventID"])
    async with sink(tmp_path, trail.port) as audit:
        audit.record(bad)
        audit.record(good)
        assert await audit.drain()
        assert audit.stats.rejected == 1
    assert set(trail.fake.stored) == {good["eventID"]}


async def test_missing_event_id_gets_one(tmp_path: Path, trail: TrailServer) -> None:
    async with sink(tmp_path, trail.port) as audit:
        e = event()
        del e["eventID"]
        audit.record(e)
        assert await audit.drain()
    assert len(trail.fake.stored) == 1


async def test_record_from_another_thread(tmp_path: Path, trail: TrailServer) -> None:
    async with sink(tmp_path, trail.port, flush_max=10) as audit:
        events = [event(i) for i in range(100)]
        await asyncio.to_thread(lambda: [audit.record(e) for e in events])
        assert await audit.drain()
    assert len(trail.fake.stored) == 100


async def test_flush_is_prompt(tmp_path: Path, trail: TrailServer) -> None:
    async with sink(tmp_path, trail.port) as audit:
        audit.record(event())
        await wait_for(lambda: len(trail.fake.stored) == 1, timeout=2.0)


async def test_requests_get_turns_while_a_batch_is_encoded(tmp_path: Path, trail: TrailServer) -> None:
    """The writer encodes a big batch in slices and lets the event loop turn in between, so
    a request never waits behind the whole batch."""
    from common.audit_outbox import ENCODE_SLICE

    turns = 0
    seen: list[int] = []

    async def other_work() -> None:
        nonlocal turns
        while True:
            turns += 1
            await asyncio.sleep(0)

    def builder(i: int) -> Any:
        def build() -> dict[str, Any]:
            seen.append(turns)
            return event(i)
        return build

    async with sink(tmp_path, trail.port, flush_interval=60, flush_max=100_000) as audit:
        ticker = asyncio.create_task(other_work())
        for i in range(ENCODE_SLICE * 8):
            audit.record(builder(i))
        await audit.flush()
        ticker.cancel()
        assert await audit.drain(10)
    slices = [seen[i : i + ENCODE_SLICE] for i in range(0, len(seen), ENCODE_SLICE)]
    assert all(len(set(s)) == 1 for s in slices)  # one slice runs without a break
    assert len({s[0] for s in slices}) == len(slices)  # other work ran between slices
    assert len(trail.fake.stored) == ENCODE_SLICE * 8


def test_put_events_requests_are_assembled_from_committed_bytes() -> None:
    from common.audit_outbox import put_events_request

    batches = [pb.AuditBatch(records_jsonl=b"a" * n, event_ids=[f"id{n}"]) for n in (0, 1, 200, 70_000)]
    raw = put_events_request("kms", [b.SerializeToString() for b in batches])
    request = pb.PutEventsRequest.FromString(raw)
    assert request.sender == "kms" and list(request.batches) == batches
    assert pb.PutEventsRequest.FromString(put_events_request("s3", [])) == pb.PutEventsRequest(sender="s3")
