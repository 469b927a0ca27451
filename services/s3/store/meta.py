"""Buckets, objects, uploads and parts in SQLite (aiosqlite, WAL, synchronous=FULL).

One writer connection behind an asyncio lock (each change is one ``BEGIN IMMEDIATE``
transaction) and one reader connection. Keys are TEXT compared with SQLite's BINARY
collation (memcmp of UTF-8), which is S3's listing order. A row is written only after the
blobs it names are durable (see store/blobs.py), so a committed row never points at a
missing or torn blob; methods that replace or delete rows return the blob names that became
unreferenced, for the caller to unlink after the commit.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import aiosqlite

from services.s3.domain.model import (
    BucketRecord,
    Encryption,
    ObjectRecord,
    PartRecord,
    Segment,
    UploadRecord,
)

SCHEMA = """
CREATE TABLE IF NOT EXISTS buckets (
    name TEXT PRIMARY KEY,
    owner_account TEXT NOT NULL,
    region TEXT NOT NULL,
    created TEXT NOT NULL,
    ownership TEXT,
    public_access_block TEXT,
    acl TEXT,
    policy TEXT,
    encryption TEXT,
    tags TEXT
);
CREATE TABLE IF NOT EXISTS objects (
    bucket TEXT NOT NULL,
    key TEXT NOT NULL,
    object_id TEXT NOT NULL UNIQUE,
    size INTEGER NOT NULL,
    etag TEXT NOT NULL,
    last_modified TEXT NOT NULL,
    owner_account TEXT NOT NULL,
    sse TEXT NOT NULL,
    kms_key_arn TEXT,
    bucket_key INTEGER NOT NULL DEFAULT 0,
    enc_context TEXT,
    user_context INTEGER NOT NULL DEFAULT 0,
    wrapped_key BLOB NOT NULL,
    headers TEXT NOT NULL,
    metadata TEXT NOT NULL,
    checksums TEXT NOT NULL,
    checksum_type TEXT,
    parts_count INTEGER NOT NULL DEFAULT 0,
    acl TEXT,
    tags TEXT NOT NULL,
    storage_class TEXT NOT NULL,
    PRIMARY KEY (bucket, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS segments (
    object_id TEXT NOT NULL,
    idx INTEGER NOT NULL,
    blob TEXT NOT NULL,
    size INTEGER NOT NULL,
    PRIMARY KEY (object_id, idx)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS uploads (
    upload_id TEXT PRIMARY KEY,
    bucket TEXT NOT NULL,
    key TEXT NOT NULL,
    initiated TEXT NOT NULL,
    owner_account TEXT NOT NULL,
    initiator_arn TEXT NOT NULL,
    sse TEXT NOT NULL,
    kms_key_arn TEXT,
    bucket_key INTEGER NOT NULL DEFAULT 0,
    enc_context TEXT,
    user_context INTEGER NOT NULL DEFAULT 0,
    wrapped_key BLOB NOT NULL,
    headers TEXT NOT NULL,
    metadata TEXT NOT NULL,
    checksum_algorithm TEXT,
    checksum_type TEXT,
    acl TEXT,
    tags TEXT NOT NULL,
    storage_class TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS uploads_by_key ON uploads (bucket, key, initiated);
CREATE TABLE IF NOT EXISTS parts (
    upload_id TEXT NOT NULL,
    part_number INTEGER NOT NULL,
    blob TEXT NOT NULL,
    size INTEGER NOT NULL,
    etag TEXT NOT NULL,
    md5 TEXT NOT NULL,
    last_modified TEXT NOT NULL,
    checksums TEXT NOT NULL,
    PRIMARY KEY (upload_id, part_number)
) WITHOUT ROWID;
"""


def _ts(dt: datetime) -> str:
    return dt.astimezone(timezone.utc).isoformat(timespec="milliseconds")


def _dt(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _enc_cols(e: Encryption) -> tuple[Any, ...]:
    return (e.algorithm, e.kms_key_arn, int(e.bucket_key), json.dumps(e.context, sort_keys=True),
            int(e.user_context), e.wrapped_key)


def _enc(row: aiosqlite.Row) -> Encryption:
    return Encryption(algorithm=row["sse"], wrapped_key=bytes(row["wrapped_key"]),
                      kms_key_arn=row["kms_key_arn"], bucket_key=bool(row["bucket_key"]),
                      context=json.loads(row["enc_context"] or "{}"),
                      user_context=bool(row["user_context"]))


class MetaStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._w: aiosqlite.Connection | None = None
        self._r: aiosqlite.Connection | None = None
        self._lock = asyncio.Lock()

    async def open(self) -> None:
        self._w = await aiosqlite.connect(self.path, isolation_level=None)
        self._w.row_factory = aiosqlite.Row
        await self._w.execute("PRAGMA journal_mode=WAL")
        await self._w.execute("PRAGMA synchronous=FULL")
        await self._w.executescript(SCHEMA)
        self._r = await aiosqlite.connect(self.path, isolation_level=None)
        self._r.row_factory = aiosqlite.Row
        await self._r.execute("PRAGMA query_only=1")

    async def close(self) -> None:
        for conn in (self._r, self._w):
            if conn is not None:
                await conn.close()
        self._r = self._w = None

    @property
    def r(self) -> aiosqlite.Connection:
        assert self._r is not None
        return self._r

    @asynccontextmanager
    async def tx(self) -> AsyncIterator[aiosqlite.Connection]:
        assert self._w is not None
        async with self._lock:
            await self._w.execute("BEGIN IMMEDIATE")
            try:
                yield self._w
            except BaseException:
                await self._w.execute("ROLLBACK")
                raise
            await self._w.execute("COMMIT")

    async def _one(self, sql: str, args: Sequence[Any]) -> aiosqlite.Row | None:
        async with self.r.execute(sql, args) as cur:
            return await cur.fetchone()

    async def _all(self, sql: str, args: Sequence[Any]) -> list[aiosqlite.Row]:
        async with self.r.execute(sql, args) as cur:
            return list(await cur.fetchall())

    # ---- buckets ------------------------------------------------------------------------

    @staticmethod
    def _bucket(row: aiosqlite.Row) -> BucketRecord:
        return BucketRecord(name=row["name"], owner_account=row["owner_account"], region=row["region"],
                            created=_dt(row["created"]), ownership=row["ownership"],
                            public_access_block=row["public_access_block"], acl=row["acl"],
                            policy=row["policy"], encryption=row["encryption"],
                            tags=json.loads(row["tags"]) if row["tags"] is not None else None)

    async def create_bucket(self, b: BucketRecord) -> BucketRecord | None:
        """Insert; returns the existing bucket instead when the name is taken."""
        async with self.tx() as db:
            async with db.execute("SELECT * FROM buckets WHERE name = ?", (b.name,)) as cur:
                row = await cur.fetchone()
            if row is not None:
                return self._bucket(row)
            await db.execute(
                "INSERT INTO buckets VALUES (?,?,?,?,?,?,?,?,?,?)",
                (b.name, b.owner_account, b.region, _ts(b.created), b.ownership, b.public_access_block,
                 b.acl, b.policy, b.encryption, json.dumps(b.tags) if b.tags is not None else None))
        return None

    async def get_bucket(self, name: str) -> BucketRecord | None:
        row = await self._one("SELECT * FROM buckets WHERE name = ?", (name,))
        return self._bucket(row) if row else None

    async def list_buckets(self, owner_account: str) -> list[BucketRecord]:
        rows = await self._all("SELECT * FROM buckets WHERE owner_account = ? ORDER BY name", (owner_account,))
        return [self._bucket(r) for r in rows]

    _BUCKET_FIELDS = frozenset({"ownership", "public_access_block", "acl", "policy", "encryption", "tags"})

    async def update_bucket(self, name: str, **fields: Any) -> bool:
        assert fields and set(fields) <= self._BUCKET_FIELDS
        if "tags" in fields and fields["tags"] is not None:
            fields["tags"] = json.dumps(fields["tags"])
        sets = ", ".join(f"{k} = ?" for k in fields)
        async with self.tx() as db:
            cur = await db.execute(f"UPDATE buckets SET {sets} WHERE name = ?", (*fields.values(), name))  # noqa: S608
            return cur.rowcount == 1

    async def delete_bucket(self, name: str) -> tuple[str, list[str]]:
        """'ok' | 'missing' | 'not_empty', and the blobs of aborted uploads."""
        async with self.tx() as db:
            async with db.execute("SELECT 1 FROM buckets WHERE name = ?", (name,)) as cur:
                if await cur.fetchone() is None:
                    return "missing", []
            async with db.execute("SELECT 1 FROM objects WHERE bucket = ? LIMIT 1", (name,)) as cur:
                if await cur.fetchone() is not None:
                    return "not_empty", []
            async with db.execute(
                    "SELECT p.blob FROM parts p JOIN uploads u ON u.upload_id = p.upload_id "
                    "WHERE u.bucket = ?", (name,)) as cur:
                blobs = [r[0] for r in await cur.fetchall()]
            await db.execute("DELETE FROM parts WHERE upload_id IN "
                             "(SELECT upload_id FROM uploads WHERE bucket = ?)", (name,))
            await db.execute("DELETE FROM uploads WHERE bucket = ?", (name,))
            await db.execute("DELETE FROM buckets WHERE name = ?", (name,))
        return "ok", blobs

    # ---- objects ------------------------------------------------------------------------

    async def _segments(self, object_id: str) -> list[Segment]:
        rows = await self._all("SELECT blob, size FROM segments WHERE object_id = ? ORDER BY idx", (object_id,))
        return [Segment(r["blob"], r["size"]) for r in rows]

    def _object(self, row: aiosqlite.Row, segments: list[Segment]) -> ObjectRecord:
        return ObjectRecord(
            bucket=row["bucket"], key=row["key"], object_id=row["object_id"], size=row["size"],
            etag=row["etag"], last_modified=_dt(row["last_modified"]), owner_account=row["owner_account"],
            encryption=_enc(row), segments=segments, headers=json.loads(row["headers"]),
            metadata=json.loads(row["metadata"]), checksums=json.loads(row["checksums"]),
            checksum_type=row["checksum_type"], parts_count=row["parts_count"], acl=row["acl"],
            tags=json.loads(row["tags"]), storage_class=row["storage_class"])

    async def get_object(self, bucket: str, key: str, *, with_segments: bool = True) -> ObjectRecord | None:
        row = await self._one("SELECT * FROM objects WHERE bucket = ? AND key = ?", (bucket, key))
        if row is None:
            return None
        segs = await self._segments(row["object_id"]) if with_segments else []
        return self._object(row, segs)

    async def _delete_object_tx(self, db: aiosqlite.Connection, bucket: str, key: str) -> list[str]:
        async with db.execute("SELECT object_id FROM objects WHERE bucket = ? AND key = ?", (bucket, key)) as cur:
            row = await cur.fetchone()
        if row is None:
            return []
        oid = row[0]
        async with db.execute("SELECT blob FROM segments WHERE object_id = ?", (oid,)) as cur:
            blobs = [r[0] for r in await cur.fetchall()]
        await db.execute("DELETE FROM segments WHERE object_id = ?", (oid,))
        await db.execute("DELETE FROM objects WHERE object_id = ?", (oid,))
        return blobs

    async def _insert_object_tx(self, db: aiosqlite.Connection, o: ObjectRecord) -> None:
        await db.execute(
            "INSERT INTO objects (bucket, key, object_id, size, etag, last_modified, owner_account, sse, "
            "kms_key_arn, bucket_key, enc_context, user_context, wrapped_key, headers, metadata, checksums, "
            "checksum_type, parts_count, acl, tags, storage_class) VALUES "
            "(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (o.bucket, o.key, o.object_id, o.size, o.etag, _ts(o.last_modified), o.owner_account,
             *_enc_cols(o.encryption), json.dumps(o.headers), json.dumps(o.metadata),
             json.dumps(o.checksums), o.checksum_type, o.parts_count, o.acl, json.dumps(o.tags),
             o.storage_class))
        await db.executemany("INSERT INTO segments VALUES (?,?,?,?)",
                             [(o.object_id, i, s.blob, s.size) for i, s in enumerate(o.segments)])

    async def put_object(self, o: ObjectRecord, *, expect_etag: str | None = None,
                         expect_absent: bool = False) -> list[str] | None:
        """Insert or replace; returns the replaced object's blobs, or None when the bucket is
        gone or a write condition (checked inside the transaction) no longer holds."""
        async with self.tx() as db:
            async with db.execute("SELECT 1 FROM buckets WHERE name = ?", (o.bucket,)) as cur:
                if await cur.fetchone() is None:
                    return None
            if expect_etag is not None or expect_absent:
                async with db.execute("SELECT etag FROM objects WHERE bucket = ? AND key = ?",
                                      (o.bucket, o.key)) as cur:
                    row = await cur.fetchone()
                if expect_absent and row is not None:
                    return None
                if expect_etag is not None and (row is None or row[0] != expect_etag):
                    return None
            old = await self._delete_object_tx(db, o.bucket, o.key)
            await self._insert_object_tx(db, o)
        return old

    async def delete_object(self, bucket: str, key: str) -> list[str]:
        async with self.tx() as db:
            return await self._delete_object_tx(db, bucket, key)

    async def update_object(self, bucket: str, key: str, *, acl: str | None = None,
                            tags: dict[str, str] | None = None) -> bool:
        sets, args = [], []
        if acl is not None:
            sets.append("acl = ?")
            args.append(acl)
        if tags is not None:
            sets.append("tags = ?")
            args.append(json.dumps(tags))
        async with self.tx() as db:
            cur = await db.execute(f"UPDATE objects SET {', '.join(sets)} WHERE bucket = ? AND key = ?",  # noqa: S608
                                   (*args, bucket, key))
            return cur.rowcount == 1

    async def list_objects(self, bucket: str, start: str, inclusive: bool, limit: int) -> list[ObjectRecord]:
        """Objects with key >= / > ``start`` in key order (no segments)."""
        op = ">=" if inclusive else ">"
        rows = await self._all(f"SELECT * FROM objects WHERE bucket = ? AND key {op} ? ORDER BY key LIMIT ?",  # noqa: S608
                               (bucket, start, limit))
        return [self._object(r, []) for r in rows]

    # ---- uploads ------------------------------------------------------------------------

    @staticmethod
    def _upload(row: aiosqlite.Row) -> UploadRecord:
        return UploadRecord(
            upload_id=row["upload_id"], bucket=row["bucket"], key=row["key"], initiated=_dt(row["initiated"]),
            owner_account=row["owner_account"], initiator_arn=row["initiator_arn"], encryption=_enc(row),
            headers=json.loads(row["headers"]), metadata=json.loads(row["metadata"]),
            checksum_algorithm=row["checksum_algorithm"], checksum_type=row["checksum_type"], acl=row["acl"],
            tags=json.loads(row["tags"]), storage_class=row["storage_class"])

    async def create_upload(self, u: UploadRecord) -> None:
        async with self.tx() as db:
            await db.execute(
                "INSERT INTO uploads (upload_id, bucket, key, initiated, owner_account, initiator_arn, sse, "
                "kms_key_arn, bucket_key, enc_context, user_context, wrapped_key, headers, metadata, "
                "checksum_algorithm, checksum_type, acl, tags, storage_class) VALUES "
                "(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (u.upload_id, u.bucket, u.key, _ts(u.initiated), u.owner_account, u.initiator_arn,
                 *_enc_cols(u.encryption), json.dumps(u.headers), json.dumps(u.metadata),
                 u.checksum_algorithm, u.checksum_type, u.acl, json.dumps(u.tags), u.storage_class))

    async def get_upload(self, upload_id: str) -> UploadRecord | None:
        row = await self._one("SELECT * FROM uploads WHERE upload_id = ?", (upload_id,))
        return self._upload(row) if row else None

    async def list_uploads(self, bucket: str, key_marker: str, upload_id_marker: str,
                           limit: int) -> list[UploadRecord]:
        rows = await self._all(
            "SELECT * FROM uploads WHERE bucket = ? AND (key > ? OR (key = ? AND upload_id > ?)) "
            "ORDER BY key, initiated, upload_id LIMIT ?",
            (bucket, key_marker, key_marker, upload_id_marker, limit))
        return [self._upload(r) for r in rows]

    async def put_part(self, p: PartRecord) -> list[str] | None:
        """Insert or replace a part; None when the upload no longer exists."""
        async with self.tx() as db:
            async with db.execute("SELECT 1 FROM uploads WHERE upload_id = ?", (p.upload_id,)) as cur:
                if await cur.fetchone() is None:
                    return None
            async with db.execute("SELECT blob FROM parts WHERE upload_id = ? AND part_number = ?",
                                  (p.upload_id, p.part_number)) as cur:
                old = [r[0] for r in await cur.fetchall()]
            await db.execute("INSERT OR REPLACE INTO parts VALUES (?,?,?,?,?,?,?,?)",
                             (p.upload_id, p.part_number, p.blob, p.size, p.etag, p.md5,
                              _ts(p.last_modified), json.dumps(p.checksums)))
        return old

    async def list_parts(self, upload_id: str, after: int = 0, limit: int = 10001) -> list[PartRecord]:
        rows = await self._all("SELECT * FROM parts WHERE upload_id = ? AND part_number > ? "
                               "ORDER BY part_number LIMIT ?", (upload_id, after, limit))
        return [PartRecord(upload_id=r["upload_id"], part_number=r["part_number"], blob=r["blob"],
                           size=r["size"], etag=r["etag"], md5=r["md5"], last_modified=_dt(r["last_modified"]),
                           checksums=json.loads(r["checksums"])) for r in rows]

    async def delete_upload(self, upload_id: str) -> list[str] | None:
        async with self.tx() as db:
            async with db.execute("SELECT 1 FROM uploads WHERE upload_id = ?", (upload_id,)) as cur:
                if await cur.fetchone() is None:
                    return None
            async with db.execute("SELECT blob FROM parts WHERE upload_id = ?", (upload_id,)) as cur:
                blobs = [r[0] for r in await cur.fetchall()]
            await db.execute("DELETE FROM parts WHERE upload_id = ?", (upload_id,))
            await db.execute("DELETE FROM uploads WHERE upload_id = ?", (upload_id,))
        return blobs

    async def complete_upload(self, upload_id: str, o: ObjectRecord, *, expect_etag: str | None = None,
                              expect_absent: bool = False) -> list[str] | None:
        """Turn the upload into object ``o`` (whose segments are some of its parts' blobs);
        returns blobs now unreferenced (unused parts, replaced object), None if the upload is
        gone or a write condition fails."""
        async with self.tx() as db:
            async with db.execute("SELECT 1 FROM uploads WHERE upload_id = ?", (upload_id,)) as cur:
                if await cur.fetchone() is None:
                    return None
            if expect_etag is not None or expect_absent:
                async with db.execute("SELECT etag FROM objects WHERE bucket = ? AND key = ?",
                                      (o.bucket, o.key)) as cur:
                    row = await cur.fetchone()
                if (expect_absent and row is not None) or (
                        expect_etag is not None and (row is None or row[0] != expect_etag)):
                    raise _ConditionFailed()
            async with db.execute("SELECT blob FROM parts WHERE upload_id = ?", (upload_id,)) as cur:
                part_blobs = {r[0] for r in await cur.fetchall()}
            used = {s.blob for s in o.segments}
            old = await self._delete_object_tx(db, o.bucket, o.key)
            await self._insert_object_tx(db, o)
            await db.execute("DELETE FROM parts WHERE upload_id = ?", (upload_id,))
            await db.execute("DELETE FROM uploads WHERE upload_id = ?", (upload_id,))
        return old + sorted(part_blobs - used)

    # ---- garbage collection -------------------------------------------------------------

    async def referenced_blobs(self) -> set[str]:
        refs: set[str] = set()
        for sql in ("SELECT blob FROM segments", "SELECT blob FROM parts"):
            async with self.r.execute(sql) as cur:
                refs.update(r[0] for r in await cur.fetchall())
        return refs


class _ConditionFailed(Exception):
    pass


ConditionFailed = _ConditionFailed
