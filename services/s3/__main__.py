"""``python -m services.s3``: the S3 object store as a gRPC service (strongroom.s3.v1.S3)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence

import grpc

from common.config import Settings
from common.grpc_server import run_service
from common.logging import configure, get_logger
from services.s3.api import S3Servicer
from services.s3.keys import GrpcKms, ServiceKeyring
from services.s3.service import S3Service
from services.s3.store.blobs import BlobStore
from services.s3.store.meta import MetaStore
from strongroom.s3.v1 import s3_pb2, s3_pb2_grpc

log = get_logger(__name__)


def make_setup(settings: Settings):  # type: ignore[no-untyped-def]
    @contextlib.asynccontextmanager
    async def setup(server: grpc.aio.Server) -> AsyncIterator[Sequence[str]]:
        from common.audit_outbox import OutboxSink

        root = settings.service_dir("s3")
        meta = MetaStore(root / "meta.db")
        await meta.open()
        kms = GrpcKms(settings.kms_target, settings.region)
        try:
            async with OutboxSink(settings, root / "audit-outbox.db", sender="s3") as audit:
                service = S3Service(settings, meta, BlobStore(root), kms, ServiceKeyring(root / "sse-s3.key", kms))
                removed = await service.collect_garbage()
                if removed:
                    log.info("orphan_blobs_removed", count=removed)
                s3_pb2_grpc.add_S3Servicer_to_server(S3Servicer(service, settings, audit), server)
                yield [s3_pb2.DESCRIPTOR.services_by_name["S3"].full_name]
        finally:
            await kms.close()
            await meta.close()

    return setup


def main() -> None:
    settings = Settings.from_env()
    configure("s3", settings.log_level)
    asyncio.run(run_service("s3", settings.grpc_host, settings.s3_port, make_setup(settings)))


if __name__ == "__main__":
    main()
