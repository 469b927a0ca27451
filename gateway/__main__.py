"""``python -m gateway``: the AWS-compatible HTTP endpoint (see gateway/app.py).

Reads Settings from the environment, makes sure the root credentials exist, serves on
``STRONGROOM_HOST:STRONGROOM_PORT`` and, on SIGTERM/SIGINT, stops accepting connections,
lets in-flight requests finish (up to ``SHUTDOWN_TIMEOUT`` seconds), then closes the app's
resources (audit outbox flushed, IAM store and gRPC channels closed).
"""

from __future__ import annotations

import asyncio
import signal

from aiohttp import web

from common.config import Settings
from common.credentials import ensure_root_credentials
from common.heap import settle_heap
from common.logging import configure, get_logger
from gateway.app import make_app

SHUTDOWN_TIMEOUT = 20.0


async def serve(settings: Settings) -> None:
    log = get_logger("gateway")
    root = ensure_root_credentials(settings)
    app = make_app(settings, root)
    runner = web.AppRunner(app, access_log=None, handle_signals=False,
                           shutdown_timeout=SHUTDOWN_TIMEOUT)
    await runner.setup()
    site = web.TCPSite(runner, settings.host, settings.port, backlog=1024, reuse_address=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await site.start()
        log.info("gateway_started", address=f"http://{settings.host}:{settings.port}",
                 account=settings.account_id, region=settings.region)
        settle_heap()
        await stop.wait()
        log.info("gateway_stopping")
    finally:
        await runner.cleanup()
    log.info("gateway_stopped")


def main() -> int:
    settings = Settings.from_env()
    configure("gateway", settings.log_level)
    asyncio.run(serve(settings))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
