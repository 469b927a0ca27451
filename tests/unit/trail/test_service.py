"""Trail use cases against a real SQLite store and in-memory S3/KMS fakes: ingest, event
history, trails and their checks, tags, selectors, delivery, digests and the validator."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from strongroom.common.v1 import caller_pb2

from common.audit import build_event, encode_record
from common.audit_index import IndexColumns, index_of, pack_records
from common.caller import root_caller
from common.config import Settings
from common.errors import AwsError
from services.trail.api import CloudTrailServicer, LocalAuditSink
from services.trail.delivery import Deliverer
from services.trail.domain.event import EventBatch
from services.trail.service import TrailService
from services.trail.store.sqlite import TrailStore
from services.trail.validate import (
    DELETED,
    FORGED,
    MODIFIED,
    PENDING,
    UNVERIFIED,
    VALID,
    TrailInfo,
    validate_trail,
)
from tests.unit.trail.fakes import (
    ACCOUNT,
    REGION,
    Clock,
    FakeKeyService,
    FakeObjectStore,
    FakeSigner,
    bucket_policy,
)

BUCKET = "trail-bucket"


class Env:
    def __init__(
        self,
        store: TrailStore,
        clock: Clock,
        objects: FakeObjectStore,
        keys: FakeKeyService,
        signer: FakeSigner,
        digest_seconds: float = 3600,
    ) -> None:
        self.settings = Settings(
            account_id=ACCOUNT, region=REGION, trail_delivery_seconds=1, trail_digest_seconds=digest_seconds
        )
        self.store, self.clock, self.objects, self.keys, self.signer = store, clock, objects, keys, signer
        self.service = TrailService(
            self.settings, store, objects=objects, keys=keys, signer=signer, clock=clock
        )
        self.deliverer = Deliverer(self.settings, store, objects, signer, clock=clock, batch=50)

    def event(
        self,
        name: str = "Encrypt",
        *,
        source: str = "kms.amazonaws.com",
        read_only: bool = False,
        caller: caller_pb2.Caller | None = None,
        when: datetime | None = None,
        **kw: Any,
    ) -> dict[str, Any]:
        return build_event(
            caller=caller or root_caller(ACCOUNT, REGION),
            event_source=source,
            event_name=name,
            region=REGION,
            recipient_account_id=ACCOUNT,
            request_parameters={"x": 1},
            read_only=read_only,
            event_time=when or self.clock(),
            **kw,
        )

    async def put(self, *events: dict[str, Any]) -> tuple[int, int, list[str]]:
        return await self.service.put_events([(e["eventID"], json.dumps(e)) for e in events])


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    store = await TrailStore.open(tmp_path / "trail.db")
    clock = Clock()
    objects = FakeObjectStore(clock=clock)
    objects.add_bucket(BUCKET, bucket_policy(BUCKET))
    yield Env(store, clock, objects, FakeKeyService(), FakeSigner())
    await store.close()


async def code_of(coro: Any) -> str:
    with pytest.raises(AwsError) as exc:
        await coro
    return exc.value.code


# ------------------------------------------------------------------ ingest + event history


async def test_put_events_is_idempotent(env: Env) -> None:
    a, b = env.event(), env.event()
    assert await env.put(a, b, a) == (2, 1, [])
    assert await env.put(a, b) == (0, 2, [])
    assert await env.store.count_events() == 2
    accepted, dups, rejected = await env.service.put_events(
        [("bad", "{"), ("x", json.dumps({"eventID": "y"}))]
    )
    assert (accepted, rejected) == (0, ["bad", "x"])


async def test_a_record_printed_over_several_lines_is_stored_whole(env: Env) -> None:
    pretty, other = env.event(), env.event()
    assert await env.service.put_events([(pretty["eventID"], json.dumps(pretty, indent=2)),
                                         (other["eventID"], json.dumps(other))]) == (2, 0, [])
    assert [json.loads(r.body) for r in await env.store.events_after(0, 10)] == [pretty, other]


async def test_indexed_records_with_some_already_stored(env: Env) -> None:
    """Senders ship the index (common.audit_index); a resent batch mixing stored and new
    records stores only the new ones, each findable by its own resources."""
    key = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/"
    events = [env.event(resources=[{"accountId": ACCOUNT, "type": "AWS::KMS::Key", "ARN": key + str(i)}])
              for i in range(4)]

    def indexed(*evs: dict[str, Any]) -> list[tuple[Any, str]]:
        return [(index_of(e), json.dumps(e)) for e in evs]

    assert await env.service.put_events([], indexed(events[0], events[1])) == (2, 0, [])
    assert await env.service.put_events([], indexed(events[1], events[2], events[0], events[3])) == (2, 2, [])
    assert await env.store.count_events() == 4
    for i, e in enumerate(events):
        result = await _lookup(env, attributes=[("ResourceName", key + str(i))])
        assert [row.event_id for row, _ in result.events] == [e["eventID"]]
        assert result.events[0][1] == (("AWS::KMS::Key", key + str(i)),)
    # An index without an event id is refused, the rest of the batch is stored.
    bad = index_of(env.event())._replace(event_id="")
    assert await env.service.put_events([], [(bad, "{}"), *indexed(env.event())]) == (1, 0, [""])


def shipped(*events: dict[str, Any], compress: bool = True) -> EventBatch:
    """Records as a sender's outbox ships them (common/audit_outbox.py)."""
    encoding, data = pack_records([encode_record(e) for e in events], compress=compress)
    return EventBatch(encoding, data, IndexColumns.of([index_of(e) for e in events]))


async def test_batches_are_stored_as_shipped_and_read_back(env: Env) -> None:
    """A batch is stored as it came (one chunk, still compressed) plus an index row per
    record; records come back byte for byte, resent ones are not stored twice, and a batch
    with nothing new leaves no chunk."""
    key = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/"
    events = [env.event(resources=[{"accountId": ACCOUNT, "type": "AWS::KMS::Key", "ARN": key + str(i)}])
              for i in range(5)]
    events[2]["resources"].append({"type": "AWS::S3::Bucket", "ARN": "arn:aws:s3:::b2"})
    first = shipped(*events[:3])
    assert await env.service.put_batches([first]) == (3, 0)
    async with env.store._db.execute("SELECT encoding, data FROM event_chunks") as cur:
        assert [tuple(r) for r in await cur.fetchall()] == [(first.encoding, first.data)]
    # Resent with new records mixed in (the sender lost an acknowledgement), and plain.
    again = shipped(events[1], events[3], events[0], events[4], events[3], compress=False)
    assert await env.service.put_batches([again]) == (2, 3)
    assert await env.service.put_batches([shipped(events[0])]) == (0, 1)
    async with env.store._db.execute("SELECT COUNT(*) FROM event_chunks") as cur:
        assert (await cur.fetchone())[0] == 2
    rows = await env.store.events_after(0, 100)
    assert [r.event_id for r in rows] == [e["eventID"] for e in (events[0], events[1], events[2], events[3], events[4])]
    assert [r.body for r in rows] == [encode_record(e).decode() for e in (events[:3] + events[3:])]
    for i, e in enumerate(events):
        result = await _lookup(env, attributes=[("ResourceName", key + str(i))])
        assert [json.loads(row.body) for row, _ in result.events] == [e]
    result = await _lookup(env, attributes=[("ResourceName", "b2")])
    assert [row.event_id for row, _ in result.events] == [events[2]["eventID"]]
    assert await env.store.count_events() == 5


async def test_purging_records_drops_their_chunks(env: Env) -> None:
    old = [env.event(when=env.clock() - timedelta(days=100)) for _ in range(3)]
    await env.service.put_batches([shipped(*old[:2])])
    await env.service.put_batches([shipped(old[2])])
    new = env.event()
    await env.service.put_batches([shipped(new)])
    assert await env.store.purge_events(int((env.clock() - timedelta(days=90)).timestamp() * 1000)) == 3
    async with env.store._db.execute("SELECT COUNT(*) FROM event_chunks") as cur:
        assert (await cur.fetchone())[0] == 1
    assert [json.loads(r.body) for r in await env.store.events_after(0, 10)] == [new]


async def test_a_store_from_before_chunks_is_upgraded(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "old.db"
    db = sqlite3.connect(path)
    db.executescript(
        "CREATE TABLE events (seq INTEGER PRIMARY KEY AUTOINCREMENT, event_id TEXT NOT NULL UNIQUE,"
        " event_time INTEGER NOT NULL, received_at INTEGER NOT NULL, event_name TEXT NOT NULL,"
        " event_source TEXT NOT NULL, read_only INTEGER, username TEXT, access_key_id TEXT,"
        " category TEXT NOT NULL, error_code TEXT, body TEXT NOT NULL);"
        "INSERT INTO events VALUES (NULL, 'e1', 1767225600000, 1767225600000, 'Encrypt',"
        " 'kms.amazonaws.com', 0, 'root', NULL, 'Management', NULL, '{\"eventID\":\"e1\"}');"
    )
    db.commit()
    db.close()
    store = await TrailStore.open(path)
    try:
        clock = Clock()
        service = TrailService(Settings(account_id=ACCOUNT, region=REGION), store, objects=FakeObjectStore(clock=clock),
                               keys=FakeKeyService(), signer=FakeSigner(), clock=clock)
        event = build_event(caller=root_caller(ACCOUNT, REGION), event_source="kms.amazonaws.com",
                            event_name="Decrypt", region=REGION, recipient_account_id=ACCOUNT,
                            request_parameters=None, read_only=False, event_time=clock())
        assert await service.put_batches([shipped(event)]) == (1, 0)
        assert [r.body for r in await store.events_after(0, 10)] == ['{"eventID":"e1"}', encode_record(event).decode()]
    finally:
        await store.close()


async def test_put_events_rejects_a_batch_it_cannot_read(env: Env) -> None:
    """A batch whose records cannot be read back (not a zlib stream) is refused with its
    event ids; one whose index does not match its records is indexed by the trail itself;
    the other batches of the call are stored."""
    from strongroom.trail.v1 import trail_pb2 as pb

    from common.audit_index import put_columns

    def message(batch: EventBatch, data: bytes | None = None) -> pb.AuditBatch:
        m = pb.AuditBatch(records_jsonl=batch.data if data is None else data, records_encoding=batch.encoding)  # type: ignore[arg-type]
        put_columns(m, batch.index.entries())
        return m

    bad, good, one, two = env.event(), env.event(), env.event(), env.event()
    broken = message(shipped(bad), data=b"x\x9c not zlib")
    mismatched = message(shipped(one), data=pack_records([encode_record(one), encode_record(two)])[1])
    servicer = CloudTrailServicer(env.service, LocalAuditSink(env.service))
    response = await servicer.PutEvents(
        pb.PutEventsRequest(sender="test", batches=[broken, message(shipped(good)), mismatched]),
        None,  # type: ignore[arg-type]
    )
    assert (response.accepted, list(response.rejected_event_ids)) == (3, [bad["eventID"]])
    stored = await env.store.events_after(0, 10)
    assert [r.event_id for r in stored] == [good["eventID"], one["eventID"], two["eventID"]]
    assert [r.body for r in stored] == [encode_record(e).decode() for e in (good, one, two)]


async def _lookup(env: Env, **kw: Any) -> Any:
    args: dict[str, Any] = {
        "attributes": [],
        "start": None,
        "end": None,
        "event_category": "",
        "max_results": None,
        "next_token": "",
    }
    args.update(kw)
    return await env.service.lookup_events(**args)


async def test_lookup_every_attribute(env: Env) -> None:
    user = caller_pb2.Caller(
        principal_type="IAMUser",
        account_id=ACCOUNT,
        user_name="alice",
        principal_arn=f"arn:aws:iam::{ACCOUNT}:user/alice",
        principal_id="AIDA1",
        access_key_id="AKIAALICE",
    )
    key_arn = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/k-1"
    e1 = env.event("CreateKey", resources=[{"accountId": ACCOUNT, "type": "AWS::KMS::Key", "ARN": key_arn}])
    e2 = env.event("DescribeKey", read_only=True, caller=user)
    e3 = env.event(
        "CreateBucket",
        source="s3.amazonaws.com",
        resources=[{"accountId": ACCOUNT, "type": "AWS::S3::Bucket", "ARN": "arn:aws:s3:::photos"}],
    )
    await env.put(e1, e2, e3)

    async def ids(key: str, value: str) -> set[str]:
        return {row.event_id for row, _ in (await _lookup(env, attributes=[(key, value)])).events}

    assert await ids("EventId", e2["eventID"]) == {e2["eventID"]}
    assert await ids("EventName", "CreateKey") == {e1["eventID"]}
    assert await ids("ReadOnly", "true") == {e2["eventID"]}
    assert await ids("ReadOnly", "false") == {e1["eventID"], e3["eventID"]}
    assert await ids("Username", "alice") == {e2["eventID"]}
    assert await ids("Username", "root") == {e1["eventID"], e3["eventID"]}
    assert await ids("AccessKeyId", "AKIAALICE") == {e2["eventID"]}
    assert await ids("EventSource", "s3.amazonaws.com") == {e3["eventID"]}
    assert await ids("ResourceType", "AWS::KMS::Key") == {e1["eventID"]}
    assert await ids("ResourceName", key_arn) == {e1["eventID"]}
    assert await ids("ResourceName", "photos") == {e3["eventID"]}  # buckets by name
    assert await ids("ResourceName", "arn:aws:s3:::photos") == {e3["eventID"]}
    assert await ids("EventName", "Nothing") == set()
    result = await _lookup(env, attributes=[("EventId", e1["eventID"])])
    row, resources = result.events[0]
    assert resources == (("AWS::KMS::Key", key_arn),)
    assert json.loads(row.body) == e1


async def test_lookup_newest_first_pagination_and_time_range(env: Env) -> None:
    base = env.clock()
    events = [env.event(f"Op{i}", when=base + timedelta(seconds=i)) for i in range(7)]
    events.append(env.event("Op6b", when=base + timedelta(seconds=6)))  # same second as Op6
    await env.put(*events)
    env.clock.advance(10)
    seen: list[str] = []
    token = ""
    pages = 0
    while True:
        page = await _lookup(env, max_results=3, next_token=token)
        pages += 1
        seen += [row.event_name for row, _ in page.events]
        if not page.next_token:
            break
        token = page.next_token
    assert seen == ["Op6b", "Op6", "Op5", "Op4", "Op3", "Op2", "Op1", "Op0"] and pages == 3
    with pytest.raises(AwsError) as exc:
        await _lookup(env, max_results=3, next_token=token, attributes=[("EventName", "Op1")])
    assert exc.value.code == "InvalidNextTokenException"
    window = await _lookup(env, start=base + timedelta(seconds=2), end=base + timedelta(seconds=4))
    assert [r.event_name for r, _ in window.events] == ["Op4", "Op3", "Op2"]


async def test_lookup_excludes_data_events_and_old_events(env: Env) -> None:
    data = env.event("GetObject", source="s3.amazonaws.com", management_event=False)
    old = env.event("Ancient", when=env.clock() - timedelta(days=91))
    insight = dict(env.event("Encrypt"), eventType="AwsCloudTrailInsight", eventCategory="Insight")
    await env.put(data, old, insight, env.event("Kept"))
    assert [r.event_name for r, _ in (await _lookup(env)).events] == ["Kept"]
    assert [r.event_id for r, _ in (await _lookup(env, event_category="insight")).events] == [
        insight["eventID"]
    ]


# ------------------------------------------------------------------ trails


async def test_create_trail_checks_bucket_and_policy(env: Env) -> None:
    svc = env.service
    assert (
        await code_of(svc.create_trail(name="tr1", s3_bucket_name="missing-bucket"))
        == "S3BucketDoesNotExistException"
    )
    env.objects.add_bucket("nopolicy")
    assert (
        await code_of(svc.create_trail(name="tr1", s3_bucket_name="nopolicy"))
        == "InsufficientS3BucketPolicyException"
    )
    env.objects.add_bucket("aclonly", bucket_policy("aclonly", put=False))
    assert (
        await code_of(svc.create_trail(name="tr1", s3_bucket_name="aclonly"))
        == "InsufficientS3BucketPolicyException"
    )
    env.objects.add_bucket("putonly", bucket_policy("putonly", acl=False))
    assert (
        await code_of(svc.create_trail(name="tr1", s3_bucket_name="putonly"))
        == "InsufficientS3BucketPolicyException"
    )
    env.objects.add_bucket("wrongprefix", bucket_policy("wrongprefix", prefix="other"))
    assert (
        await code_of(svc.create_trail(name="tr1", s3_bucket_name="wrongprefix", s3_key_prefix="mine"))
        == "InsufficientS3BucketPolicyException"
    )
    arn = f"arn:aws:cloudtrail:{REGION}:{ACCOUNT}:trail/tr1"
    env.objects.add_bucket("scoped", bucket_policy("scoped", source_arn=arn))
    trail = await svc.create_trail(name="tr1", s3_bucket_name="scoped")
    assert trail.arn == arn and not trail.status.is_logging
    with pytest.raises(AwsError) as exc:
        await svc.create_trail(name="tr1", s3_bucket_name=BUCKET)
    assert exc.value.code == "TrailAlreadyExistsException"
    assert exc.value.message == f"Trail tr1 already exists for customer: {ACCOUNT}"
    assert (
        await code_of(svc.create_trail(name="bad name", s3_bucket_name=BUCKET)) == "InvalidTrailNameException"
    )
    assert (
        await code_of(svc.create_trail(name="tr9", s3_bucket_name="Bad_Bucket"))
        == "InvalidS3BucketNameException"
    )
    assert (
        await code_of(svc.create_trail(name="tr9", s3_bucket_name=BUCKET, sns_topic_name="topic"))
        == "InsufficientSnsTopicPolicyException"
    )


async def test_trail_limit_and_not_found(env: Env) -> None:
    for i in range(5):
        await env.service.create_trail(name=f"trail{i}", s3_bucket_name=BUCKET)
    assert (
        await code_of(env.service.create_trail(name="trail5", s3_bucket_name=BUCKET))
        == "MaximumNumberOfTrailsExceededException"
    )
    with pytest.raises(AwsError) as exc:
        await env.service.get_trail("nosuch")
    assert exc.value.code == "TrailNotFoundException"
    assert exc.value.message == (
        f"Unknown trail: arn:aws:cloudtrail:{REGION}:{ACCOUNT}:trail/nosuch for the user: {ACCOUNT}"
    )
    await env.service.delete_trail(f"arn:aws:cloudtrail:{REGION}:{ACCOUNT}:trail/trail0")
    assert [t.name for t in await env.service.list_trails()] == [f"trail{i}" for i in range(1, 5)]
    assert [t.name for t in await env.service.describe_trails(["trail2", "nosuch"], None)] == ["trail2"]


async def test_kms_key_checks(env: Env) -> None:
    svc = env.service
    good = env.keys.add("11111111-1111-1111-1111-111111111111", alias="alias/trail-key")
    env.keys.add("22222222-2222-2222-2222-222222222222", allow=False)
    env.keys.add("33333333-3333-3333-3333-333333333333", state="Disabled")
    env.keys.add("44444444-4444-4444-4444-444444444444", usage="SIGN_VERIFY")
    assert (
        await code_of(svc.create_trail(name="tr1", s3_bucket_name=BUCKET, kms_key_id="not a key"))
        == "InvalidKmsKeyIdException"
    )
    assert (
        await code_of(
            svc.create_trail(
                name="tr1", s3_bucket_name=BUCKET, kms_key_id="99999999-9999-9999-9999-999999999999"
            )
        )
        == "KmsKeyNotFoundException"
    )
    assert (
        await code_of(
            svc.create_trail(
                name="tr1", s3_bucket_name=BUCKET, kms_key_id="22222222-2222-2222-2222-222222222222"
            )
        )
        == "InsufficientEncryptionPolicyException"
    )
    assert (
        await code_of(
            svc.create_trail(
                name="tr1", s3_bucket_name=BUCKET, kms_key_id="33333333-3333-3333-3333-333333333333"
            )
        )
        == "KmsException"
    )
    assert (
        await code_of(
            svc.create_trail(
                name="tr1", s3_bucket_name=BUCKET, kms_key_id="44444444-4444-4444-4444-444444444444"
            )
        )
        == "InvalidKmsKeyIdException"
    )
    trail = await svc.create_trail(name="tr1", s3_bucket_name=BUCKET, kms_key_id="alias/trail-key")
    assert trail.kms_key_id == good
    updated = await svc.update_trail(name="tr1", kms_key_id="")
    assert updated.kms_key_id == ""


async def test_logging_status(env: Env) -> None:
    await env.service.create_trail(name="tr1", s3_bucket_name=BUCKET)
    await env.service.start_logging("tr1")
    status = (await env.service.get_trail_status("tr1")).status
    assert status.is_logging and status.start_logging_time == env.clock()
    env.clock.advance(5)
    await env.service.stop_logging("tr1")
    status = (await env.service.get_trail_status("tr1")).status
    assert not status.is_logging and status.stop_logging_time == env.clock()


async def test_tags(env: Env) -> None:
    trail = await env.service.create_trail(name="tr1", s3_bucket_name=BUCKET, tags=[("team", "sec")])
    await env.service.add_tags(trail.arn, [("env", "prod"), ("team", "audit")])
    assert await env.service.list_tags([trail.arn]) == [(trail.arn, [("env", "prod"), ("team", "audit")])]
    await env.service.remove_tags(trail.arn, [("team", None), ("env", "other")])
    assert await env.service.list_tags([trail.arn]) == [(trail.arn, [("env", "prod")])]
    assert await code_of(env.service.add_tags("tr1", [("a", "b")])) == "CloudTrailARNInvalidException"
    assert await code_of(env.service.add_tags(trail.arn + "x", [("a", "b")])) == "ResourceNotFoundException"
    assert (
        await code_of(env.service.add_tags(trail.arn, [(f"k{i}", "v") for i in range(50)]))
        == "TagsLimitExceededException"
    )


async def test_event_selectors(env: Env) -> None:
    await env.service.create_trail(name="tr1", s3_bucket_name=BUCKET)
    trail = await env.service.get_event_selectors("tr1")
    assert trail.event_selectors[0]["ReadWriteType"] == "All" and not trail.has_custom_event_selectors
    assert (
        await code_of(env.service.put_event_selectors("tr1", [{}], [{"FieldSelectors": []}]))
        == "InvalidEventSelectorsException"
    )
    assert await code_of(env.service.put_event_selectors("tr1", [], [])) == "InvalidEventSelectorsException"
    trail = await env.service.put_event_selectors("tr1", [{"ReadWriteType": "WriteOnly"}], None)
    assert trail.has_custom_event_selectors and trail.event_selectors[0]["IncludeManagementEvents"] is True
    adv = [{"FieldSelectors": [{"Field": "eventCategory", "Equals": ["Management"]}]}]
    trail = await env.service.put_event_selectors("tr1", None, adv)
    assert trail.advanced_event_selectors and not trail.event_selectors
    assert await code_of(env.service.get_insight_selectors("tr1", "")) == "InsightNotEnabledException"
    trail = await env.service.put_insight_selectors("tr1", [{"InsightType": "ApiCallRateInsight"}], "", "")
    assert trail.has_insight_selectors


# ------------------------------------------------------------------ delivery


async def _logging_trail(env: Env, name: str = "tr1", **kw: Any) -> None:
    await env.service.create_trail(name=name, s3_bucket_name=BUCKET, **kw)
    await env.service.start_logging(name)


async def test_delivery_writes_each_selected_record_once(env: Env) -> None:
    before = env.event("BeforeLogging", when=env.clock() - timedelta(seconds=30))
    await env.put(before)
    await _logging_trail(env)
    events = [env.event(f"Op{i}") for i in range(120)]  # > batch (50): several files
    data = env.event("PutObject", source="s3.amazonaws.com", management_event=False)
    await env.put(*events, data)
    await env.deliverer.deliver_all()
    keys = env.objects.keys(BUCKET, "/CloudTrail/")
    assert len(keys) >= 3
    pattern = (
        rf"AWSLogs/{ACCOUNT}/CloudTrail/{REGION}/\d{{4}}/\d{{2}}/\d{{2}}/{ACCOUNT}_CloudTrail_{REGION}_"
        r"\d{8}T\d{4}Z_[A-Za-z0-9]{16}\.json\.gz"
    )
    assert all(re.fullmatch(pattern, k) for k in keys)
    delivered = [r["eventID"] for k in keys for r in env.objects.records(BUCKET, k)]
    assert sorted(delivered) == sorted(e["eventID"] for e in events)  # no duplicates, no data event
    put = env.objects.puts[0]
    assert put.source_arn.endswith(":trail/tr1") and put.content_encoding == "gzip" and put.kms_key_id is None
    await env.deliverer.deliver_all()
    assert len(env.objects.keys(BUCKET, "/CloudTrail/")) == len(keys)
    status = (await env.service.get_trail_status("tr1")).status
    assert status.latest_delivery_time == env.clock() and status.latest_delivery_error is None


async def test_delivery_retries_same_file_after_s3_errors(env: Env) -> None:
    await _logging_trail(env)
    ev = env.event("Encrypt")
    await env.put(ev)
    env.objects.fail_puts = 1
    await env.deliverer.deliver_all()
    assert env.objects.keys(BUCKET) == []
    assert (await env.service.get_trail_status("tr1")).status.latest_delivery_error == "AccessDenied"
    env.objects.fail_puts, env.objects.fail_with = 1, "unavailable"
    await env.deliverer.deliver_all()
    assert (await env.service.get_trail_status("tr1")).status.latest_delivery_error == "ServiceUnavailable"
    await env.deliverer.deliver_all()
    keys = env.objects.keys(BUCKET)
    assert len(keys) == 1 and [r["eventID"] for r in env.objects.records(BUCKET, keys[0])] == [ev["eventID"]]
    assert len({p.key for p in env.objects.puts}) == 1
    assert (await env.service.get_trail_status("tr1")).status.latest_delivery_error is None


async def test_delivery_survives_restart_between_put_and_commit(env: Env, tmp_path: Path) -> None:
    await _logging_trail(env)
    ev = env.event("Encrypt")
    await env.put(ev)
    # A crash after the file was recorded but before S3 acknowledged it:
    env.objects.fail_puts, env.objects.fail_with = 1, "unavailable"
    await env.deliverer.deliver_all()
    pending = await env.store.pending_deliveries("tr1")
    assert len(pending) == 1
    fresh = Deliverer(env.settings, env.store, env.objects, env.signer, clock=env.clock)
    await fresh.aclose()  # the shutdown delivery of a new process
    assert env.objects.keys(BUCKET) == [pending[0].key]
    assert [r["eventID"] for r in env.objects.records(BUCKET, pending[0].key)] == [ev["eventID"]]


async def test_kms_encrypted_delivery_and_stopped_window(env: Env) -> None:
    env.keys.add("11111111-1111-1111-1111-111111111111")
    await _logging_trail(env, kms_key_id="11111111-1111-1111-1111-111111111111")
    in_window = env.event("InWindow")
    await env.put(in_window)
    env.clock.advance(2)
    await env.service.stop_logging("tr1")
    env.clock.advance(2)
    late_but_inside = env.event("Late", when=env.clock() - timedelta(seconds=3))
    after = env.event("AfterStop")
    await env.put(late_but_inside, after)
    await env.deliverer.deliver_all()
    names = {r["eventName"] for k in env.objects.keys(BUCKET) for r in env.objects.records(BUCKET, k)}
    assert names == {"InWindow", "Late"}
    put = env.objects.puts[0]
    assert put.kms_key_id and put.kms_key_id.endswith("11111111-1111-1111-1111-111111111111")
    assert put.encryption_context == {
        "aws:cloudtrail:arn": f"arn:aws:cloudtrail:{REGION}:{ACCOUNT}:trail/tr1"
    }


async def test_selectors_apply_to_delivery(env: Env) -> None:
    await _logging_trail(env)
    await env.service.put_event_selectors(
        "tr1",
        [
            {
                "ReadWriteType": "WriteOnly",
                "IncludeManagementEvents": True,
                "DataResources": [{"Type": "AWS::S3::Object", "Values": [f"arn:aws:s3:::{BUCKET}/data/"]}],
            }
        ],
        None,
    )
    obj = {"accountId": ACCOUNT, "type": "AWS::S3::Object", "ARN": f"arn:aws:s3:::{BUCKET}/data/x"}
    events = [
        env.event("Write"),
        env.event("Read", read_only=True),
        env.event("PutObject", source="s3.amazonaws.com", management_event=False, resources=[obj]),
        env.event(
            "GetObject", source="s3.amazonaws.com", management_event=False, resources=[obj], read_only=True
        ),
    ]
    await env.put(*events)
    await env.deliverer.deliver_all()
    names = sorted(r["eventName"] for k in env.objects.keys(BUCKET) for r in env.objects.records(BUCKET, k))
    assert names == ["PutObject", "Write"]


# ------------------------------------------------------------------ digests + validator


async def _validated(env: Env) -> tuple[Any, TrailInfo]:
    env.deliverer.digest_seconds = 60
    await _logging_trail(env, enable_log_file_validation=True)
    start = env.clock() - timedelta(minutes=1)
    for round_ in range(3):
        await env.put(*[env.event(f"R{round_}E{i}") for i in range(3)])
        env.clock.advance(30)
        await env.deliverer.deliver_all()
        env.clock.advance(31)
        await env.deliverer.deliver_all()  # digest due
    info = TrailInfo(name="tr1", account_id=ACCOUNT, region=REGION, bucket=BUCKET, prefix="")
    return start, info


async def _report(env: Env, start: datetime, info: TrailInfo) -> Any:
    keys = {(await env.signer.public_key()): None}
    from services.trail.domain.digest import fingerprint

    pub = next(iter(keys))
    return await validate_trail(
        env.objects, info, {fingerprint(pub): pub}, start, env.clock() + timedelta(minutes=1)
    )


async def test_digests_chain_and_validate(env: Env) -> None:
    start, info = await _validated(env)
    digests = env.objects.keys(BUCKET, "CloudTrail-Digest")
    assert len(digests) == 3
    assert all(
        re.search(rf"{ACCOUNT}_CloudTrail-Digest_{REGION}_tr1_{REGION}_\d{{8}}T\d{{6}}Z\.json\.gz$", k)
        for k in digests
    )
    docs = [json.loads(__import__("gzip").decompress(env.objects.buckets[BUCKET][k][0])) for k in digests]
    assert docs[0]["previousDigestSignature"] is None
    assert docs[1]["previousDigestS3Object"] == digests[0]
    assert docs[2]["previousDigestSignature"] == env.objects.buckets[BUCKET][digests[1]][1]["signature"]
    assert sum(len(d["logFiles"]) for d in docs) == len(env.objects.keys(BUCKET, "/CloudTrail/"))
    assert env.objects.buckets[BUCKET][digests[0]][1]["signature-algorithm"] == "SHA256withRSA"
    report = await _report(env, start, info)
    assert report.problems == []
    assert len(report.of(VALID, "digest")) == 3 and len(report.of(VALID, "log")) == 3


async def test_validator_names_modified_deleted_and_forged_files(env: Env) -> None:
    import gzip

    start, info = await _validated(env)
    logs = [d.key for d in await env.store.deliveries("tr1", "log")]  # in delivery order
    digests = [d.key for d in await env.store.deliveries("tr1", "digest")]
    bucket = env.objects.buckets[BUCKET]
    # modify log files (valid gzip, one record changed): the one listed by the valid digest is caught
    for key in (logs[0], logs[2]):
        body = json.loads(gzip.decompress(bucket[key][0]))
        body["Records"][0]["eventName"] = "Tampered"
        bucket[key] = (gzip.compress(json.dumps(body).encode()), {})
    # delete a log file
    del bucket[logs[1]]
    # forge a log file inside the period the last (valid) digest covers
    from services.trail.domain.logfile import key_timestamp, log_file_key

    forged_at = (key_timestamp(digests[2]) or env.clock()) - timedelta(seconds=60)
    forged = log_file_key(
        prefix="", account_id=ACCOUNT, region=REGION, when=forged_at, unique="FORGEDFORGEDFORG"
    )
    bucket[forged] = (gzip.compress(b'{"Records":[]}'), {})
    # modify the middle digest, delete the first
    doc = json.loads(gzip.decompress(bucket[digests[1]][0]))
    doc["newestEventTime"] = "2000-01-01T00:00:00Z"
    bucket[digests[1]] = (gzip.compress(json.dumps(doc).encode()), bucket[digests[1]][1])
    del bucket[digests[0]]
    report = await _report(env, start, info)
    problems = {(f.kind, f.status, f.key) for f in report.problems}
    assert ("digest", MODIFIED, digests[1]) in problems
    assert ("digest", DELETED, digests[0]) in problems
    assert ("log", MODIFIED, logs[2]) in problems
    assert ("log", FORGED, forged) in problems
    assert ("log", DELETED, logs[1]) in problems  # listed by the modified digest
    assert ("log", UNVERIFIED, logs[0]) in problems  # its digest was deleted
    assert ("digest", VALID, digests[2]) in {(f.kind, f.status, f.key) for f in report.findings}


async def test_unlisted_log_in_the_newest_digests_last_minute(env: Env) -> None:
    """Log file names carry minutes only: one named in the newest digest's last minute is
    pending if it was written after that digest, forged if it was written before."""
    import gzip

    from services.trail.domain.logfile import key_timestamp, log_file_key

    start, info = await _validated(env)
    newest = [d.key for d in await env.store.deliveries("tr1", "digest")][-1]
    digest_end = key_timestamp(newest)
    assert digest_end is not None

    def put(unique: str, written: datetime) -> str:
        key = log_file_key(prefix="", account_id=ACCOUNT, region=REGION, when=digest_end, unique=unique)
        env.objects.buckets[BUCKET][key] = (gzip.compress(b'{"Records":[]}'), {})
        env.objects.modified[(BUCKET, key)] = written
        return key

    before = put("WRITTENBEFOREDIG", digest_end - timedelta(seconds=5))
    after = put("WRITTENAFTERDIGE", digest_end + timedelta(seconds=1))
    report = await _report(env, start, info)
    found = {f.key: f.status for f in report.findings}
    assert found[before] == FORGED and found[after] == PENDING
    assert [(f.kind, f.status, f.key) for f in report.problems] == [("log", FORGED, before)]


async def test_validator_detects_deleted_log_listed_by_valid_digest(env: Env) -> None:
    start, info = await _validated(env)
    logs = [d.key for d in await env.store.deliveries("tr1", "log")]
    del env.objects.buckets[BUCKET][logs[-1]]
    report = await _report(env, start, info)
    assert [(f.kind, f.status, f.key) for f in report.problems] == [("log", DELETED, logs[-1])]


async def test_logs_after_newest_digest_are_pending(env: Env) -> None:
    start, info = await _validated(env)
    await env.put(env.event("Late"))
    await env.deliverer.deliver_all()
    report = await _report(env, start, info)
    assert report.problems == [] and len(report.of(PENDING)) == 1


async def test_list_public_keys(env: Env) -> None:
    keys = await env.service.list_public_keys(None, None)
    assert keys == []  # the fake signer is not recorded in the store: only real keys are
    with pytest.raises(AwsError) as exc:
        await env.service.list_public_keys(env.clock(), env.clock() - timedelta(hours=1))
    assert exc.value.code == "InvalidTimeRangeException"
    assert datetime.now(timezone.utc) > env.clock() - timedelta(days=1)


async def test_insights_are_stored_looked_up_and_delivered(env: Env) -> None:
    from services.trail.domain.insights import InsightDetector

    env.service.insights = InsightDetector(
        account_id=ACCOUNT,
        region=REGION,
        bucket_seconds=10,
        baseline_buckets=6,
        min_history_buckets=3,
        min_count=5,
    )
    base = env.clock().replace(second=0)
    env.clock.now = base
    await _logging_trail(env)
    await env.service.put_insight_selectors("tr1", [{"InsightType": "ApiCallRateInsight"}], "", "")
    for b in range(4):
        await env.put(env.event("CreateKey", when=base + timedelta(seconds=b * 10 + 1)))
    await env.put(*[env.event("CreateKey", when=base + timedelta(seconds=41)) for _ in range(30)])
    env.clock.now = base + timedelta(seconds=50)
    assert await env.service.evaluate_insights() == 1
    await env.put(env.event("CreateKey", when=base + timedelta(seconds=51)))
    env.clock.now = base + timedelta(seconds=60)
    assert await env.service.evaluate_insights() == 1
    found = await _lookup(env, event_category="insight", attributes=[("EventName", "CreateKey")])
    states = [json.loads(row.body)["insightDetails"]["state"] for row, _ in found.events]
    assert states == ["End", "Start"]
    await env.deliverer.deliver_all()
    insight_files = env.objects.keys(BUCKET, "/CloudTrail-Insight/")
    assert len(insight_files) == 1
    assert [r["insightDetails"]["state"] for r in env.objects.records(BUCKET, insight_files[0])] == [
        "Start",
        "End",
    ]
    assert all(
        "Insight" not in json.dumps(r.get("eventCategory"))
        for k in env.objects.keys(BUCKET, "/CloudTrail/")
        for r in env.objects.records(BUCKET, k)
    )
