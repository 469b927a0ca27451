"""``python -m gateway`` as a process: SIGTERM lets in-flight requests finish, then it exits 0.

Uses a slow fake KMS (Encrypt takes 1.5 s) in this test process; the stack is not needed.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from strongroom.kms.v1 import kms_pb2, kms_pb2_grpc

from tests.stackctl import free_port

ROOT = Path(__file__).resolve().parents[2]


class SlowKms(kms_pb2_grpc.KeyManagementServiceServicer):
    async def Encrypt(self, request: Any, context: Any) -> Any:
        await asyncio.sleep(1.5)
        return kms_pb2.EncryptResponse(ciphertext_blob=b"c", key_id=request.key_id)


async def _serve(ports: list[int]) -> list[grpc.aio.Server]:
    servers = []
    for i, port in enumerate(ports):
        s = grpc.aio.server()
        hs = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(hs, s)
        if i == 0:
            kms_pb2_grpc.add_KeyManagementServiceServicer_to_server(SlowKms(), s)
        s.add_insecure_port(f"127.0.0.1:{port}")
        await s.start()
        await hs.set("", health_pb2.HealthCheckResponse.SERVING)
        servers.append(s)
    return servers


async def test_sigterm_finishes_in_flight_requests(tmp_path: Path) -> None:
    import boto3
    from botocore.config import Config

    gw_port, kms_port, s3_port, trail_port = (free_port() for _ in range(4))
    servers = await _serve([kms_port, s3_port, trail_port])
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STRONGROOM_", "AWS_"))}
    env.update(STRONGROOM_PORT=str(gw_port), STRONGROOM_KMS_PORT=str(kms_port),
               STRONGROOM_S3_PORT=str(s3_port), STRONGROOM_TRAIL_PORT=str(trail_port),
               STRONGROOM_DATA_DIR=str(tmp_path), STRONGROOM_ACCOUNT_ID="111122223333",
               STRONGROOM_ROOT_ACCESS_KEY_ID="AKIASHUTDOWNTEST0000",
               STRONGROOM_ROOT_SECRET_ACCESS_KEY="shutdown-secret")
    proc = subprocess.Popen([sys.executable, "-m", "gateway"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        kms = boto3.session.Session(
            aws_access_key_id="AKIASHUTDOWNTEST0000", aws_secret_access_key="shutdown-secret",
            region_name="us-east-1").client(
                "kms", endpoint_url=f"http://127.0.0.1:{gw_port}",
                config=Config(retries={"max_attempts": 1}, read_timeout=30))
        def healthy() -> bool:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{gw_port}/_strongroom/health") as r:
                    return r.status == 200
            except OSError:
                return False

        deadline = time.monotonic() + 30
        # the fake backends run on this event loop: never block it
        while not await asyncio.to_thread(healthy):
            assert time.monotonic() < deadline, "gateway did not become healthy"
            await asyncio.sleep(0.1)

        call = asyncio.create_task(asyncio.to_thread(kms.encrypt, KeyId="k", Plaintext=b"p"))
        await asyncio.sleep(0.5)                  # the request is now waiting on the backend
        proc.send_signal(signal.SIGTERM)
        result = await call
        assert result["CiphertextBlob"] == b"c"
        code = await asyncio.to_thread(proc.wait, 30)
        assert code == 0
        out = proc.stdout.read().decode() if proc.stdout else ""
        assert "gateway_stopped" in out
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for s in servers:
            await s.stop(None)
