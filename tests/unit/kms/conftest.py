"""Fixtures: a KmsService over the fake HSM, in-memory SQLite, a MemorySink and a fake clock."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta, timezone

import pytest

from common.audit import MemorySink
from common.caller import root_caller
from common.caller import Caller
from services.kms.hsm.fake import FakeHsm
from services.kms.service import KmsService
from services.kms.store.sqlite import SqliteStore

ACCOUNT = "111122223333"
REGION = "us-east-1"


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2024, 1, 1, tzinfo=timezone.utc)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kw: float) -> None:
        self.now += timedelta(**kw)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def kms(clock: Clock, tmp_path) -> AsyncIterator[KmsService]:
    store = SqliteStore(tmp_path / "kms.sqlite3")
    await store.open()
    svc = KmsService(store=store, hsm=FakeHsm(), sink=MemorySink(), account=ACCOUNT, region=REGION, clock=clock)
    await svc.load()
    yield svc
    await store.close()


ROOT = root_caller(ACCOUNT, REGION)


def user(name: str, *policies: str) -> Caller:
    return Caller(principal_type="IAMUser", account_id=ACCOUNT, principal_arn=f"arn:aws:iam::{ACCOUNT}:user/{name}",
                  principal_id="AIDA" + name.upper(), user_name=name, identity_policy_documents=list(policies),
                  source_ip="10.0.0.1")


async def call(kms: KmsService, op: str, caller: Caller = ROOT, **params):
    return await kms.dispatch(op, caller, params)
