"""IAM/STS storage: one SQLite database (aiosqlite, WAL) at ``DATA_DIR/gateway/iam.db``.

Names of users and roles are unique case-insensitively, as in AWS (``COLLATE NOCASE``).
Secret access keys and session tokens are stored sealed (gateway/iam/keyring.py), never in
plaintext. Times are stored as UNIX seconds (REAL, UTC).
"""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import aiosqlite

from gateway.iam.model import AccessKey, Role, Session, Tag, User

_SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    name        TEXT PRIMARY KEY COLLATE NOCASE,
    user_id     TEXT NOT NULL UNIQUE,
    path        TEXT NOT NULL,
    arn         TEXT NOT NULL,
    created     REAL NOT NULL,
    tags        TEXT NOT NULL DEFAULT '[]'
);
CREATE TABLE IF NOT EXISTS roles (
    name        TEXT PRIMARY KEY COLLATE NOCASE,
    role_id     TEXT NOT NULL UNIQUE,
    path        TEXT NOT NULL,
    arn         TEXT NOT NULL,
    created     REAL NOT NULL,
    trust       TEXT NOT NULL,
    description TEXT,
    max_session INTEGER NOT NULL,
    tags        TEXT NOT NULL DEFAULT '[]'
);
CREATE TABLE IF NOT EXISTS access_keys (
    access_key_id TEXT PRIMARY KEY,
    user_name     TEXT COLLATE NOCASE,          -- NULL: the account root
    secret        BLOB NOT NULL,                -- sealed (keyring.py)
    status        TEXT NOT NULL,
    created       REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS access_keys_user ON access_keys(user_name);
CREATE TABLE IF NOT EXISTS user_policies (
    user_name   TEXT NOT NULL COLLATE NOCASE,
    policy_name TEXT NOT NULL COLLATE NOCASE,
    document    TEXT NOT NULL,
    PRIMARY KEY (user_name, policy_name)
);
CREATE TABLE IF NOT EXISTS role_policies (
    role_name   TEXT NOT NULL COLLATE NOCASE,
    policy_name TEXT NOT NULL COLLATE NOCASE,
    document    TEXT NOT NULL,
    PRIMARY KEY (role_name, policy_name)
);
CREATE TABLE IF NOT EXISTS sessions (
    access_key_id TEXT PRIMARY KEY,
    secret        BLOB NOT NULL,                -- sealed
    token         BLOB NOT NULL,                -- sealed
    role_name     TEXT NOT NULL,
    role_id       TEXT NOT NULL,
    role_arn      TEXT NOT NULL,
    session_name  TEXT NOT NULL,
    source_arn    TEXT NOT NULL,
    created       REAL NOT NULL,
    expires       REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS sessions_expires ON sessions(expires);
"""

_POLICY_TABLES = {"user": ("user_policies", "user_name"), "role": ("role_policies", "role_name")}


def _ts(value: float) -> datetime:
    return datetime.fromtimestamp(value, timezone.utc)


def _tags_json(tags: tuple[Tag, ...]) -> str:
    return json.dumps([[t.key, t.value] for t in tags])


def _tags(text: str) -> tuple[Tag, ...]:
    return tuple(Tag(k, v) for k, v in json.loads(text or "[]"))


def _user(row: Any) -> User:
    return User(name=row[0], user_id=row[1], path=row[2], arn=row[3], create_date=_ts(row[4]),
                tags=_tags(row[5]))


def _role(row: Any) -> Role:
    return Role(name=row[0], role_id=row[1], path=row[2], arn=row[3], create_date=_ts(row[4]),
                assume_role_policy=row[5], description=row[6], max_session_duration=row[7],
                tags=_tags(row[8]))


_USER_COLS = "name, user_id, path, arn, created, tags"
_ROLE_COLS = "name, role_id, path, arn, created, trust, description, max_session, tags"


class AlreadyExists(Exception):
    pass


class IamStore:
    def __init__(self, db: aiosqlite.Connection) -> None:
        self._db = db
        # One connection: writes (statement + commit/rollback) must not interleave.
        self._write_lock = asyncio.Lock()

    @classmethod
    async def open(cls, path: Path) -> IamStore:
        path.parent.mkdir(parents=True, exist_ok=True)
        db = await aiosqlite.connect(path)
        await db.execute("PRAGMA journal_mode=WAL")
        await db.execute("PRAGMA synchronous=NORMAL")
        await db.executescript(_SCHEMA)
        await db.commit()
        return cls(db)

    async def close(self) -> None:
        await self._db.close()

    async def _one(self, sql: str, args: tuple[Any, ...]) -> Any:
        async with self._db.execute(sql, args) as cur:
            return await cur.fetchone()

    async def _all(self, sql: str, args: tuple[Any, ...] = ()) -> list[Any]:
        async with self._db.execute(sql, args) as cur:
            return list(await cur.fetchall())

    async def _write(self, sql: str, args: tuple[Any, ...]) -> int:
        async with self._write_lock:
            try:
                cur = await self._db.execute(sql, args)
                await self._db.commit()
            except aiosqlite.IntegrityError as exc:
                await self._db.rollback()
                raise AlreadyExists(str(exc)) from None
            return cur.rowcount

    # ------------------------------------------------------------------ users

    async def create_user(self, user: User) -> None:
        await self._write(
            f"INSERT INTO users ({_USER_COLS}) VALUES (?, ?, ?, ?, ?, ?)",
            (user.name, user.user_id, user.path, user.arn, user.create_date.timestamp(),
             _tags_json(user.tags)))

    async def get_user(self, name: str) -> User | None:
        row = await self._one(f"SELECT {_USER_COLS} FROM users WHERE name = ?", (name,))
        return _user(row) if row else None

    async def list_users(self, path_prefix: str = "/") -> list[User]:
        rows = await self._all(f"SELECT {_USER_COLS} FROM users WHERE substr(path, 1, ?) = ? "
                               "ORDER BY name COLLATE NOCASE", (len(path_prefix), path_prefix))
        return [_user(r) for r in rows]

    async def delete_user(self, name: str) -> bool:
        return await self._write("DELETE FROM users WHERE name = ?", (name,)) > 0

    # ------------------------------------------------------------------ roles

    async def create_role(self, role: Role) -> None:
        await self._write(
            f"INSERT INTO roles ({_ROLE_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (role.name, role.role_id, role.path, role.arn, role.create_date.timestamp(),
             role.assume_role_policy, role.description, role.max_session_duration,
             _tags_json(role.tags)))

    async def get_role(self, name: str) -> Role | None:
        row = await self._one(f"SELECT {_ROLE_COLS} FROM roles WHERE name = ?", (name,))
        return _role(row) if row else None

    async def list_roles(self, path_prefix: str = "/") -> list[Role]:
        rows = await self._all(f"SELECT {_ROLE_COLS} FROM roles WHERE substr(path, 1, ?) = ? "
                               "ORDER BY name COLLATE NOCASE", (len(path_prefix), path_prefix))
        return [_role(r) for r in rows]

    async def delete_role(self, name: str) -> bool:
        return await self._write("DELETE FROM roles WHERE name = ?", (name,)) > 0

    # ------------------------------------------------------------------ access keys

    async def create_access_key(self, key: AccessKey, sealed_secret: bytes) -> None:
        await self._write(
            "INSERT INTO access_keys (access_key_id, user_name, secret, status, created) "
            "VALUES (?, ?, ?, ?, ?)",
            (key.access_key_id, key.user_name, sealed_secret, key.status,
             key.create_date.timestamp()))

    async def get_access_key(self, access_key_id: str) -> tuple[AccessKey, bytes] | None:
        row = await self._one("SELECT access_key_id, user_name, status, created, secret "
                              "FROM access_keys WHERE access_key_id = ?", (access_key_id,))
        if row is None:
            return None
        return AccessKey(row[0], row[1], row[2], _ts(row[3])), row[4]

    async def list_access_keys(self, user_name: str | None) -> list[AccessKey]:
        if user_name is None:
            rows = await self._all("SELECT access_key_id, user_name, status, created "
                                   "FROM access_keys WHERE user_name IS NULL ORDER BY created")
        else:
            rows = await self._all("SELECT access_key_id, user_name, status, created "
                                   "FROM access_keys WHERE user_name = ? ORDER BY created",
                                   (user_name,))
        return [AccessKey(r[0], r[1], r[2], _ts(r[3])) for r in rows]

    async def update_access_key(self, access_key_id: str, status: str) -> bool:
        return await self._write("UPDATE access_keys SET status = ? WHERE access_key_id = ?",
                                 (status, access_key_id)) > 0

    async def delete_access_key(self, access_key_id: str) -> bool:
        return await self._write("DELETE FROM access_keys WHERE access_key_id = ?",
                                 (access_key_id,)) > 0

    # ------------------------------------------------------------------ inline policies

    async def put_policy(self, kind: str, owner: str, name: str, document: str) -> None:
        table, col = _POLICY_TABLES[kind]
        await self._write(
            f"INSERT INTO {table} ({col}, policy_name, document) VALUES (?, ?, ?) "
            f"ON CONFLICT ({col}, policy_name) DO UPDATE SET document = excluded.document",
            (owner, name, document))

    async def get_policy(self, kind: str, owner: str, name: str) -> tuple[str, str] | None:
        table, col = _POLICY_TABLES[kind]
        row = await self._one(f"SELECT policy_name, document FROM {table} "
                              f"WHERE {col} = ? AND policy_name = ?", (owner, name))
        return (row[0], row[1]) if row else None

    async def delete_policy(self, kind: str, owner: str, name: str) -> bool:
        table, col = _POLICY_TABLES[kind]
        return await self._write(f"DELETE FROM {table} WHERE {col} = ? AND policy_name = ?",
                                 (owner, name)) > 0

    async def list_policies(self, kind: str, owner: str) -> list[tuple[str, str]]:
        table, col = _POLICY_TABLES[kind]
        rows = await self._all(f"SELECT policy_name, document FROM {table} WHERE {col} = ? "
                               "ORDER BY policy_name COLLATE NOCASE", (owner,))
        return [(r[0], r[1]) for r in rows]

    # ------------------------------------------------------------------ STS sessions

    async def create_session(self, session: Session, sealed_secret: bytes,
                             sealed_token: bytes) -> None:
        await self._write(
            "INSERT INTO sessions (access_key_id, secret, token, role_name, role_id, role_arn, "
            "session_name, source_arn, created, expires) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (session.access_key_id, sealed_secret, sealed_token, session.role_name,
             session.role_id, session.role_arn, session.session_name,
             session.source_identity_arn, session.created.timestamp(),
             session.expires.timestamp()))

    async def get_session(self, access_key_id: str) -> tuple[Session, bytes, bytes] | None:
        row = await self._one(
            "SELECT access_key_id, role_name, role_id, role_arn, session_name, created, expires, "
            "source_arn, secret, token FROM sessions WHERE access_key_id = ?", (access_key_id,))
        if row is None:
            return None
        session = Session(access_key_id=row[0], role_name=row[1], role_id=row[2],
                          role_arn=row[3], session_name=row[4], created=_ts(row[5]),
                          expires=_ts(row[6]), source_identity_arn=row[7])
        return session, row[8], row[9]

    async def purge_sessions(self, before: float) -> int:
        """Delete sessions that expired before ``before`` (UNIX seconds)."""
        return await self._write("DELETE FROM sessions WHERE expires < ?", (before,))
