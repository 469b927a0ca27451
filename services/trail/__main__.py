"""``python -m services.trail``: the audit trail service (strongroom.trail.v1.CloudTrail).

Resources, opened in order and closed in reverse: the SQLite store
(``$STRONGROOM_DATA_DIR/trail/trail.db``), one gRPC channel each to the S3 and KMS services,
the local audit sink (the trail's own API calls), and the delivery loop. On SIGTERM the
server stops taking calls (in-flight PutEvents finish), then the delivery loop makes a last
delivery of everything recorded, bounded in time: what S3 does not accept is retried on
the next start.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence

import grpc
from strongroom.trail.v1 import trail_pb2, trail_pb2_grpc

from common.config import Settings
from common.grpc_server import CHANNEL_OPTIONS, run_service
from common.logging import configure, get_logger
from services.trail.adapters.kms_grpc import KmsDigestSigner, KmsKeyService
from services.trail.adapters.s3_grpc import S3GrpcObjectStore
from services.trail.api import CloudTrailServicer, LocalAuditSink
from services.trail.delivery import Deliverer
from services.trail.domain.insights import InsightDetector
from services.trail.service import TrailService
from services.trail.store.sqlite import TrailStore

log = get_logger(__name__)

SERVICE_NAME = trail_pb2.DESCRIPTOR.services_by_name["CloudTrail"].full_name


def make_setup(settings: Settings):  # type: ignore[no-untyped-def]
    @contextlib.asynccontextmanager
    async def setup(server: grpc.aio.Server) -> AsyncIterator[Sequence[str]]:
        store = await TrailStore.open(settings.service_dir("trail") / "trail.db")
        s3_channel = grpc.aio.insecure_channel(settings.s3_target, options=CHANNEL_OPTIONS)
        kms_channel = grpc.aio.insecure_channel(settings.kms_target, options=CHANNEL_OPTIONS)
        objects = S3GrpcObjectStore(s3_channel, account_id=settings.account_id, region=settings.region)
        keys = KmsKeyService(kms_channel, account_id=settings.account_id, region=settings.region)
        signer = KmsDigestSigner(kms_channel, store, account_id=settings.account_id, region=settings.region)
        deliverer = Deliverer(settings, store, objects, signer)
        insights = insight_detector(settings)
        service = TrailService(
            settings,
            store,
            objects=objects,
            keys=keys,
            signer=signer,
            on_trails_changed=deliverer.kick,
            insights=insights,
        )
        await service.load_insight_history()
        audit = LocalAuditSink(service)
        trail_pb2_grpc.add_CloudTrailServicer_to_server(CloudTrailServicer(service, audit), server)
        audit.start()
        deliverer.start()
        insight_task = asyncio.create_task(
            run_insights(service, insights.bucket_seconds), name="trail-insights"
        )
        try:
            yield [SERVICE_NAME]
        finally:
            insight_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await insight_task
            await audit.aclose()
            await deliverer.aclose()
            await s3_channel.close()
            await kms_channel.close()
            await store.close()

    return setup


def insight_detector(settings: Settings) -> InsightDetector:
    """Insights tuning from Settings (STRONGROOM_TRAIL_INSIGHT_*; see common/config.py)."""
    return InsightDetector(
        account_id=settings.account_id,
        region=settings.region,
        bucket_seconds=settings.trail_insight_bucket_seconds,
        baseline_buckets=settings.trail_insight_baseline_buckets,
        min_history_buckets=settings.trail_insight_min_history_buckets,
        factor=settings.trail_insight_factor,
        min_count=settings.trail_insight_min_count,
    )


async def run_insights(service: TrailService, bucket_seconds: float) -> None:
    while True:
        await asyncio.sleep(max(0.25, bucket_seconds / 4))
        try:
            await service.evaluate_insights()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - keep evaluating
            log.error("insights_failed", exc_info=exc)


def main() -> None:
    settings = Settings.from_env()
    configure("trail", settings.log_level)
    asyncio.run(run_service("trail", settings.grpc_host, settings.trail_port, make_setup(settings)))


if __name__ == "__main__":
    main()
