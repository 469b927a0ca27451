"""Gateway throughput / overhead benchmark (not collected by pytest).

Replays one SigV4-signed ``TrentService.Encrypt`` request (valid for the 15-minute skew window,
so the load generator spends no CPU on signing) from ``--concurrency`` aiohttp connections and
prints ops/s and latency percentiles.

    # against a running stack (python -m stack) with the root credentials:
    .venv/bin/python -m tests.unit.gateway.bench_gateway --endpoint http://127.0.0.1:4566 \\
        --akid ... --secret ... --key-id <existing key id>

    # gateway alone in front of a trivial in-process fake KMS (measures gateway overhead):
    .venv/bin/python -m tests.unit.gateway.bench_gateway --fake
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import aiohttp


def signed_encrypt(endpoint: str, akid: str, secret: str, key_id: str, token: str | None = None
                   ) -> tuple[str, dict[str, str], bytes]:
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    body = json.dumps({"KeyId": key_id, "Plaintext": base64.b64encode(os.urandom(64)).decode(),
                       "EncryptionContext": {"bench": "1"}}).encode()
    req = AWSRequest(method="POST", url=endpoint + "/", data=body, headers={
        "Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "TrentService.Encrypt"})
    SigV4Auth(Credentials(akid, secret, token), "kms", "us-east-1").add_auth(req)
    prepared = req.prepare()
    return prepared.url, dict(prepared.headers), body


async def load(url: str, headers: dict[str, str], body: bytes, concurrency: int, seconds: float
               ) -> tuple[int, list[float], int]:
    latencies: list[float] = []
    errors = 0
    done = 0
    deadline = time.perf_counter() + seconds
    conn = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=conn) as session:
        async def worker() -> None:
            nonlocal done, errors
            while time.perf_counter() < deadline:
                t0 = time.perf_counter()
                async with session.post(url, data=body, headers=headers) as resp:
                    await resp.read()
                    if resp.status != 200:
                        errors += 1
                latencies.append(time.perf_counter() - t0)
                done += 1
        # warm up
        for _ in range(50):
            async with session.post(url, data=body, headers=headers) as resp:
                await resp.read()
                if resp.status != 200:
                    raise SystemExit(f"warm-up failed: {resp.status} {await resp.text()}")
        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return done, latencies, errors


def report(label: str, done: int, lat: list[float], errors: int, seconds: float) -> None:
    lat.sort()
    p = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] * 1000  # noqa: E731
    print(f"{label}: {done / seconds:,.0f} ops/s  p50 {p(0.5):.2f} ms  p99 {p(0.99):.2f} ms  "
          f"mean {statistics.fmean(lat) * 1000:.2f} ms  errors {errors}")


FAKE_KMS = r'''
import asyncio, sys
import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from strongroom.kms.v1 import kms_pb2, kms_pb2_grpc

class K(kms_pb2_grpc.KeyManagementServiceServicer):
    async def Encrypt(self, request, context):
        return kms_pb2.EncryptResponse(ciphertext_blob=request.plaintext[::-1],
                                       key_id=request.key_id, encryption_algorithm="SYMMETRIC_DEFAULT")

async def main(ports):
    servers = []
    for i, port in enumerate(ports):
        s = grpc.aio.server()
        hs = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(hs, s)
        if i == 0:
            kms_pb2_grpc.add_KeyManagementServiceServicer_to_server(K(), s)
        s.add_insecure_port(f"127.0.0.1:{port}")
        await s.start()
        await hs.set("", health_pb2.HealthCheckResponse.SERVING)
        servers.append(s)
    await asyncio.Event().wait()

asyncio.run(main([int(p) for p in sys.argv[1:]]))
'''


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--endpoint")
    ap.add_argument("--akid")
    ap.add_argument("--secret")
    ap.add_argument("--key-id")
    ap.add_argument("--fake", action="store_true")
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--seconds", type=float, default=10.0)
    args = ap.parse_args()
    procs: list[subprocess.Popen[bytes]] = []
    try:
        if args.fake:
            ports = [_free_port() for _ in range(4)]
            procs.append(subprocess.Popen([sys.executable, "-c", FAKE_KMS, *map(str, ports[1:])]))
            data = tempfile.mkdtemp(prefix="gw-bench-")
            env = dict(os.environ, STRONGROOM_PORT=str(ports[0]), STRONGROOM_KMS_PORT=str(ports[1]),
                       STRONGROOM_S3_PORT=str(ports[2]), STRONGROOM_TRAIL_PORT=str(ports[3]),
                       STRONGROOM_DATA_DIR=data, STRONGROOM_ROOT_ACCESS_KEY_ID="AKIABENCHBENCHBENCH0",
                       STRONGROOM_ROOT_SECRET_ACCESS_KEY="bench-secret", STRONGROOM_LOG_LEVEL="warning")
            prof = ["-m", "cProfile", "-o", os.environ["GW_PROFILE"]] if os.environ.get("GW_PROFILE") else []
            procs.append(subprocess.Popen([sys.executable, *prof, "-m", "gateway"], env=env))
            args.endpoint = f"http://127.0.0.1:{ports[0]}"
            args.akid, args.secret, args.key_id = "AKIABENCHBENCHBENCH0", "bench-secret", "bench-key"
            for _ in range(100):
                try:
                    async with aiohttp.ClientSession() as s, s.get(args.endpoint + "/_strongroom/health") as r:
                        if r.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.1)
        url, headers, body = signed_encrypt(args.endpoint, args.akid, args.secret, args.key_id)
        gw_pid = procs[-1].pid if procs else None
        cpu0 = _cpu_seconds(gw_pid) if gw_pid else 0.0
        done, lat, errors = await load(url, headers, body, args.concurrency, args.seconds)
        report(f"Encrypt c={args.concurrency}", done, lat, errors, args.seconds)
        if gw_pid:
            used = _cpu_seconds(gw_pid) - cpu0
            print(f"gateway process CPU: {used / (done + 50) * 1e6:.0f} us per request "
                  f"(incl. its gRPC client side)")
        done, lat, errors = await load(url, headers, body, 1, min(args.seconds, 5.0))
        report("Encrypt c=1", done, lat, errors, min(args.seconds, 5.0))
    finally:
        for p in procs:
            p.terminate()
            p.wait(20)


if __name__ == "__main__":
    asyncio.run(main())
