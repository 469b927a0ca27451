"""``python -m stack`` (what ``make run`` starts).

Starts the KMS, S3 and trail services and the gateway as child processes, each with the
same environment, restarts a child that dies unexpectedly (with back-off), and on
SIGTERM/SIGINT sends SIGTERM to all of them, waits for them to finish in-flight work and
exits. Needs nothing on stdin.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time

from common.config import Settings
from common.credentials import credentials_path, ensure_root_credentials

CHILDREN: tuple[tuple[str, str], ...] = (
    ("kms", "services.kms"),
    ("trail", "services.trail"),
    ("s3", "services.s3"),
    ("gateway", "gateway"),
)
STOP_TIMEOUT = 20.0


class Supervisor:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.procs: dict[str, asyncio.subprocess.Process] = {}
        self.stopping = asyncio.Event()

    async def spawn(self, name: str, module: str) -> asyncio.subprocess.Process:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", module, stdin=asyncio.subprocess.DEVNULL, env=os.environ.copy())
        self.procs[name] = proc
        return proc

    async def watch(self, name: str, module: str) -> None:
        backoff = 0.5
        while not self.stopping.is_set():
            started = time.monotonic()
            proc = await self.spawn(name, module)
            code = await proc.wait()
            if self.stopping.is_set():
                return
            print(f"stack: {name} exited with {code}; restarting", file=sys.stderr, flush=True)
            backoff = 0.5 if time.monotonic() - started > 30 else min(backoff * 2, 10.0)
            try:
                await asyncio.wait_for(self.stopping.wait(), backoff)
            except TimeoutError:
                pass

    async def stop_all(self) -> None:
        # The gateway first (no new requests); the trail before s3 (its last log files are
        # delivered through s3); kms last (s3 and trail use it while they stop).
        for name in ("gateway", "trail", "s3", "kms"):
            proc = self.procs.get(name)
            if proc and proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    await asyncio.wait_for(proc.wait(), STOP_TIMEOUT)
                except TimeoutError:
                    proc.kill()
                    await proc.wait()

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stopping.set)
        watchers = [asyncio.create_task(self.watch(n, m)) for n, m in CHILDREN]
        await self.stopping.wait()
        await self.stop_all()
        for w in watchers:
            w.cancel()
        await asyncio.gather(*watchers, return_exceptions=True)
        return 0


def main() -> int:
    settings = Settings.from_env()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    os.environ["STRONGROOM_DATA_DIR"] = str(settings.data_dir)
    akid, secret = ensure_root_credentials(settings)
    os.environ["STRONGROOM_ROOT_ACCESS_KEY_ID"] = akid
    os.environ["STRONGROOM_ROOT_SECRET_ACCESS_KEY"] = secret
    endpoint = f"http://{settings.host}:{settings.port}"
    print(
        "Strongroom is starting\n"
        f"  endpoint:          {endpoint}\n"
        f"  account:           {settings.account_id} ({settings.region})\n"
        f"  access key id:     {akid}\n"
        f"  secret access key: {secret}\n"
        f"  credentials file:  {credentials_path(settings)}\n"
        f"  try: AWS_ACCESS_KEY_ID={akid} AWS_SECRET_ACCESS_KEY=... "
        f"aws --endpoint-url {endpoint} --region {settings.region} sts get-caller-identity",
        flush=True,
    )
    return asyncio.run(Supervisor(settings).run())


if __name__ == "__main__":
    raise SystemExit(main())
