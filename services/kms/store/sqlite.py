"""Durable KMS metadata in SQLite (aiosqlite): keys, key materials, aliases, grants,
import tokens, and the keys AWS services own (services/kms/service_keys.py). WAL journal,
``synchronous=FULL``; every change is one transaction.

Each row keeps the record as JSON (``doc``) next to the columns it is looked up by. The
service loads everything at start and keeps it in memory; writes go here first and reach
the in-memory cache only after the transaction commits (write-through).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiosqlite

from services.kms.domain.keys import Alias, Grant, Key, KeyMaterial

SCHEMA = """
CREATE TABLE IF NOT EXISTS keys (key_id TEXT PRIMARY KEY, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS materials (material_id TEXT NOT NULL, key_id TEXT NOT NULL, doc TEXT NOT NULL,
                                      PRIMARY KEY (key_id, material_id));
CREATE TABLE IF NOT EXISTS aliases (name TEXT PRIMARY KEY, key_id TEXT NOT NULL, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS grants (grant_id TEXT PRIMARY KEY, key_id TEXT NOT NULL, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS import_tokens (token TEXT PRIMARY KEY, key_id TEXT NOT NULL, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS usage (key_id TEXT PRIMARY KEY, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS service_keys (name TEXT PRIMARY KEY, doc TEXT NOT NULL);
"""


class Tx:
    """Writes inside one transaction."""

    def __init__(self, db: aiosqlite.Connection) -> None:
        self.db = db

    async def put_key(self, key: Key) -> None:
        await self.db.execute("INSERT OR REPLACE INTO keys (key_id, doc) VALUES (?, ?)",
                              (key.key_id, json.dumps(key.to_doc())))

    async def delete_key(self, key_id: str) -> None:
        for table in ("keys", "materials", "aliases", "grants", "import_tokens", "usage"):
            await self.db.execute(f"DELETE FROM {table} WHERE key_id = ?", (key_id,))  # noqa: S608

    async def put_material(self, m: KeyMaterial) -> None:
        await self.db.execute("INSERT OR REPLACE INTO materials (material_id, key_id, doc) VALUES (?, ?, ?)",
                              (m.material_id, m.key_id, json.dumps(m.to_doc())))

    async def put_alias(self, alias: Alias) -> None:
        await self.db.execute("INSERT OR REPLACE INTO aliases (name, key_id, doc) VALUES (?, ?, ?)",
                              (alias.name, alias.key_id, json.dumps(alias.to_doc())))

    async def delete_alias(self, name: str) -> None:
        await self.db.execute("DELETE FROM aliases WHERE name = ?", (name,))

    async def put_grant(self, grant: Grant) -> None:
        await self.db.execute("INSERT OR REPLACE INTO grants (grant_id, key_id, doc) VALUES (?, ?, ?)",
                              (grant.grant_id, grant.key_id, json.dumps(grant.to_doc())))

    async def delete_grant(self, grant_id: str) -> None:
        await self.db.execute("DELETE FROM grants WHERE grant_id = ?", (grant_id,))

    async def put_import_token(self, token: str, key_id: str, doc: dict[str, Any]) -> None:
        await self.db.execute("INSERT OR REPLACE INTO import_tokens (token, key_id, doc) VALUES (?, ?, ?)",
                              (token, key_id, json.dumps(doc)))

    async def delete_import_token(self, token: str) -> None:
        await self.db.execute("DELETE FROM import_tokens WHERE token = ?", (token,))

    async def put_usage(self, key_id: str, doc: dict[str, Any]) -> None:
        await self.db.execute("INSERT OR REPLACE INTO usage (key_id, doc) VALUES (?, ?)", (key_id, json.dumps(doc)))


    async def put_service_key(self, name: str, doc: dict[str, Any]) -> None:
        await self.db.execute("INSERT INTO service_keys (name, doc) VALUES (?, ?)", (name, json.dumps(doc)))


class SqliteStore:
    def __init__(self, path: Path | str) -> None:
        self.path = str(path)
        self.db: aiosqlite.Connection | None = None

    async def open(self) -> None:
        self.db = await aiosqlite.connect(self.path, isolation_level=None)
        await self.db.execute("PRAGMA journal_mode=WAL")
        await self.db.execute("PRAGMA synchronous=FULL")
        await self.db.execute("PRAGMA foreign_keys=ON")
        await self.db.executescript(SCHEMA)

    async def close(self) -> None:
        if self.db is not None:
            await self.db.close()
            self.db = None

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Tx]:
        assert self.db is not None
        await self.db.execute("BEGIN IMMEDIATE")
        try:
            yield Tx(self.db)
        except BaseException:
            await self.db.execute("ROLLBACK")
            raise
        await self.db.execute("COMMIT")

    async def _docs(self, table: str) -> list[dict[str, Any]]:
        assert self.db is not None
        async with self.db.execute(f"SELECT doc FROM {table}") as cur:  # noqa: S608
            return [json.loads(row[0]) async for row in cur]

    async def load(self) -> dict[str, list[Any]]:
        return {
            "keys": [Key.from_doc(d) for d in await self._docs("keys")],
            "materials": [KeyMaterial.from_doc(d) for d in await self._docs("materials")],
            "aliases": [Alias.from_doc(d) for d in await self._docs("aliases")],
            "grants": [Grant.from_doc(d) for d in await self._docs("grants")],
            "import_tokens": await self._import_tokens(),
            "usage": await self._usage(),
        }

    async def service_keys(self) -> list[dict[str, Any]]:
        return await self._docs("service_keys")

    async def _import_tokens(self) -> list[tuple[str, dict[str, Any]]]:
        assert self.db is not None
        async with self.db.execute("SELECT token, doc FROM import_tokens") as cur:
            return [(row[0], json.loads(row[1])) async for row in cur]

    async def _usage(self) -> list[tuple[str, dict[str, Any]]]:
        assert self.db is not None
        async with self.db.execute("SELECT key_id, doc FROM usage") as cur:
            return [(row[0], json.loads(row[1])) async for row in cur]
