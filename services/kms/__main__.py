"""``python -m services.kms``: the KMS gRPC service.

Opens (in order) the SoftHSM2 token (made on first start), the PKCS#11 session pool, the
SQLite store and the audit sink; registers the servicer; runs the scheduler (deletions,
rotations, expiring imported material); closes everything in reverse order on SIGTERM.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator, Sequence
from typing import Any

import grpc

from common import logging as slog
from common.audit import AuditSink, Event, materialize
from common.config import Settings
from common.grpc_server import run_service
from services.kms import service_keys_api
from services.kms.api import register
from services.kms.hsm import softhsm_setup
from services.kms.hsm.pkcs11 import Pkcs11Hsm
from services.kms.service import KmsService
from services.kms.service_keys import ServiceKeyring
from services.kms.store.sqlite import SqliteStore

log = slog.get_logger(__name__)


class BoundedMemorySink:
    """Fallback when the durable outbox is unavailable: keeps the last records only."""

    def __init__(self, size: int = 10000) -> None:
        self.events: deque[dict[str, Any]] = deque(maxlen=size)

    def record(self, event: Event) -> None:
        self.events.append(materialize(event))


@contextlib.asynccontextmanager
async def audit_sink(settings: Settings) -> AsyncIterator[AuditSink]:
    """The durable outbox to the trail service (common/audit_outbox.py)."""
    try:
        from common.audit_outbox import OutboxSink
    except ImportError:  # pragma: no cover - only while the outbox is not installed
        log.warning("audit_outbox_unavailable", fallback="memory")
        yield BoundedMemorySink()
        return
    async with OutboxSink(settings, settings.service_dir("kms") / "audit-outbox.db", sender="kms") as sink:
        yield sink


def setup_factory(settings: Settings) -> Any:
    @contextlib.asynccontextmanager
    async def setup(server: grpc.aio.Server) -> AsyncIterator[Sequence[str]]:
        pin = softhsm_setup.prepare(settings)
        hsm = Pkcs11Hsm(settings.pkcs11_module, settings.pkcs11_token_label, pin)
        hsm.open()
        store = SqliteStore(settings.service_dir("kms") / "kms.sqlite3")
        await store.open()
        sink_cm = audit_sink(settings)
        sink = await sink_cm.__aenter__()
        service = KmsService(store=store, hsm=hsm, sink=sink, account=settings.account_id, region=settings.region)
        await service.load()
        keyring = ServiceKeyring(store, hsm)
        await keyring.load()
        name = register(server, service, settings.account_id, settings.region)
        keys_name = service_keys_api.register(server, keyring, settings.account_id, settings.region)
        scheduler = asyncio.create_task(service.scheduler())
        try:
            yield [name, keys_name]
        finally:
            scheduler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await scheduler
            await service.run_due_tasks()
            await sink_cm.__aexit__(None, None, None)
            await store.close()
            await hsm.close()

    return setup


def main() -> None:
    settings = Settings.from_env()
    slog.configure("kms", settings.log_level)
    asyncio.run(run_service("kms", settings.grpc_host, settings.kms_port, setup_factory(settings)))


if __name__ == "__main__":
    main()
