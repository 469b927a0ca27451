"""Micro-benchmark: server CPU per KMS call through a real ``grpc.aio`` channel.

The KMS servicer runs in a child process exactly as ``services/kms/testing.serve`` builds it
(a throw-away SoftHSM2 token, SQLite store, the production server interceptor and options);
this process is the client. It sends ``--calls`` requests per operation at ``--concurrency``
with the caller metadata the gateway sends (a root caller with request fields), and prints
the child's CPU time per call read from ``/proc`` (user + system, all threads), so the
client's own cost is not counted.

Operation ``Health`` (grpc.health.v1 Check on the same server, same metadata) is the floor:
what any unary call costs the server before the servicer does anything.

``--outbox`` gives the servicer the durable audit outbox (common/audit_outbox.OutboxSink)
instead of the in-memory sink, shipping to a stub trail ``PutEvents`` served by this process:
the difference is what the outbox costs the KMS process per record.
``--profile FILE`` writes a cProfile of the child's measured window (pstats format).

Run: ``.venv/bin/python -m services.kms.tools.bench_grpc [--calls 4000] [--outbox]``
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import gc
import multiprocessing as mp
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ACCOUNT = "111122223333"
REGION = "us-east-1"
OPS = ("Health", "Encrypt", "Decrypt", "GenerateDataKey")


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _thread_cpu(pid: int) -> dict[str, tuple[float, float]]:
    """(user, system) seconds per thread, keyed by "name:tid"."""
    out: dict[str, tuple[float, float]] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            name = Path(f"/proc/{pid}/task/{tid}/comm").read_text().strip()
            fields = Path(f"/proc/{pid}/task/{tid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[f"{name}:{tid}"] = (int(fields[11]) / tick, int(fields[12]) / tick)
    return out


def _child(conn: Any, outbox_target: str | None, uvloop: bool, fake_hsm: bool) -> None:
    from services.kms.testing import softhsm_token

    async def run() -> None:
        import grpc

        from common.config import Settings
        try:
            from common.grpc_server import make_server
        except ImportError:  # an older tree (A/B runs against a checkout of an earlier commit)
            from common.grpc_server import GRPC_OPTIONS, ErrorInterceptor

            def make_server() -> Any:
                return grpc.aio.server(interceptors=[ErrorInterceptor()], options=GRPC_OPTIONS)
        from services.kms.api import register
        from services.kms.hsm.pkcs11 import Pkcs11Hsm
        from services.kms.service import KmsService
        from services.kms.store.sqlite import SqliteStore
        from services.kms.testing import SOFTHSM_MODULE

        with softhsm_token() as token, tempfile.TemporaryDirectory() as tmp:
            if fake_hsm:
                from services.kms.hsm.fake import FakeHsm

                hsm: Any = FakeHsm()
            else:
                hsm = Pkcs11Hsm(SOFTHSM_MODULE, token.label, token.pin)
                hsm.open()
            store = SqliteStore(Path(tmp) / "kms.sqlite3")
            await store.open()
            async with contextlib.AsyncExitStack() as stack:
                if outbox_target is not None:
                    from common.audit_outbox import OutboxSink

                    settings = Settings(data_dir=Path(tmp), account_id=ACCOUNT, region=REGION)
                    sink: Any = await stack.enter_async_context(
                        OutboxSink(settings, Path(tmp) / "outbox.db", sender="kms", target=outbox_target))
                else:
                    from common.audit import MemorySink

                    class DroppingSink(MemorySink):
                        def record(self, event: dict[str, Any]) -> None:
                            if len(self.events) < 8:
                                self.events.append(event)

                    sink = DroppingSink()
                service = KmsService(store=store, hsm=hsm, sink=sink, account=ACCOUNT, region=REGION)
                await service.load()
                server = make_server()
                register(server, service, ACCOUNT, REGION)
                from grpc_health.v1 import health, health_pb2_grpc

                health_pb2_grpc.add_HealthServicer_to_server(health.aio.HealthServicer(), server)
                port = server.add_insecure_port("127.0.0.1:0")
                await server.start()
                loop = asyncio.get_running_loop()
                conn.send(port)
                profiler: cProfile.Profile | None = None
                gc_stats: dict[str, float] = {}
                started: list[float] = [0.0]

                def on_gc(phase: str, info: dict[str, int]) -> None:
                    if phase == "start":
                        started[0] = time.thread_time()
                        return
                    gen = f"gen{info['generation']}"
                    gc_stats[gen + " count"] = gc_stats.get(gen + " count", 0) + 1
                    gc_stats[gen + " seconds"] = gc_stats.get(gen + " seconds", 0.0) + time.thread_time() - started[0]
                while True:
                    msg = await loop.run_in_executor(None, conn.recv)
                    if msg == "stop":
                        break
                    if msg == "gc-on":
                        gc_stats.clear()
                        gc.callbacks.append(on_gc)
                    elif msg == "gc-off":
                        gc.callbacks.remove(on_gc)
                        conn.send(dict(gc_stats))
                        continue
                    if msg == "profile-on":
                        profiler = cProfile.Profile()
                        profiler.enable()
                    elif isinstance(msg, tuple) and msg[0] == "profile-off" and profiler is not None:
                        profiler.disable()
                        profiler.dump_stats(msg[1])
                        profiler = None
                    conn.send("ok")
                await server.stop(1)
            await store.close()
            if not fake_hsm:
                await hsm.close()

    if uvloop:
        import uvloop as _uvloop

        _uvloop.install()
    asyncio.run(run())


def _stub_trail() -> Any:
    """A grpc.aio server answering PutEvents with an empty success (runs in this process)."""
    import grpc
    from strongroom.trail.v1 import trail_pb2, trail_pb2_grpc

    class Stub(trail_pb2_grpc.CloudTrailServicer):
        async def PutEvents(self, request: Any, context: Any) -> Any:  # noqa: N802
            return trail_pb2.PutEventsResponse()

    server = grpc.aio.server()
    trail_pb2_grpc.add_CloudTrailServicer_to_server(Stub(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    return server, port


async def _drive(args: argparse.Namespace) -> None:
    import grpc
    from strongroom.common.v1 import caller_pb2
    from strongroom.kms.v1 import kms_pb2, kms_pb2_grpc

    from common.caller import CALLER_METADATA_KEY, root_caller

    outbox_target = None
    trail = None
    if args.outbox:
        trail, trail_port = _stub_trail()
        await trail.start()
        outbox_target = f"127.0.0.1:{trail_port}"
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=_child, args=(child, outbox_target, args.uvloop, args.fake_hsm), daemon=True)
    proc.start()
    loop = asyncio.get_running_loop()
    port = await loop.run_in_executor(None, parent.recv)
    pid = proc.pid
    assert pid is not None
    print(f"server pid {pid} port {port}", file=sys.stderr, flush=True)

    async def control(msg: Any) -> None:
        parent.send(msg)
        await loop.run_in_executor(None, parent.recv)

    identity = root_caller(ACCOUNT, REGION)
    identity.access_key_id = "AKIAROOTROOTROOTROOT"
    head = identity.SerializeToString()

    def metadata(i: int) -> tuple[tuple[str, bytes], ...]:
        part = caller_pb2.Caller(request_id=f"{i:08x}-0000-4000-8000-000000000000", source_ip="127.0.0.1",
                                 user_agent="Boto3/1.40 md/Botocore#1.40 ua/2.1 os/linux", host="127.0.0.1:4566",
                                 region=REGION, signature_version="SigV4", auth_method="AuthHeader")
        return ((CALLER_METADATA_KEY, head + part.SerializeToString()),)

    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = kms_pb2_grpc.KeyManagementServiceStub(channel)
            key = (await stub.CreateKey(kms_pb2.CreateKeyRequest(description="bench"))).key_metadata.key_id
            blob = (await stub.Encrypt(kms_pb2.EncryptRequest(key_id=key, plaintext=b"A" * 64))).ciphertext_blob
            from grpc_health.v1 import health_pb2, health_pb2_grpc

            requests = {
                "Health": (health_pb2_grpc.HealthStub(channel).Check, health_pb2.HealthCheckRequest()),
                "Encrypt": (stub.Encrypt, kms_pb2.EncryptRequest(key_id=key, plaintext=b"A" * 64)),
                "Decrypt": (stub.Decrypt, kms_pb2.DecryptRequest(ciphertext_blob=blob)),
                "GenerateDataKey": (stub.GenerateDataKey,
                                    kms_pb2.GenerateDataKeyRequest(key_id=key, key_spec="AES_256")),
            }
            for op in args.ops.split(","):
                rpc, request = requests[op]
                mds = [metadata(i) for i in range(args.concurrency)]

                async def worker(i: int, n: int) -> None:
                    md = mds[i]
                    for _ in range(n):
                        await rpc(request, metadata=md)

                per = max(1, args.calls // args.concurrency)
                await asyncio.gather(*(worker(i, max(1, per // 4)) for i in range(args.concurrency)))
                if args.profile:
                    await control("profile-on")
                if args.gc_stats:
                    await control("gc-on")
                th0 = _thread_cpu(pid)
                c0, t0 = _cpu_seconds(pid), time.perf_counter()
                await asyncio.gather(*(worker(i, per) for i in range(args.concurrency)))
                c1, t1 = _cpu_seconds(pid), time.perf_counter()
                th1 = _thread_cpu(pid)
                if args.profile:
                    await control(("profile-off", f"{args.profile}.{op}"))
                n = per * args.concurrency
                if args.gc_stats:
                    parent.send("gc-off")
                    stats = await loop.run_in_executor(None, parent.recv)
                    print("   gc: " + ", ".join(
                        f"{k} {v * 1e6 / n:.1f} us/call" if k.endswith("seconds") else f"{k} {v:.0f}"
                        for k, v in sorted(stats.items())), flush=True)
                print(f"{op:16s} server CPU {1e6 * (c1 - c0) / n:7.0f} us/call   "
                      f"({n / (t1 - t0):6.0f} calls/s, c={args.concurrency}, n={n})", flush=True)
                if args.threads:
                    print("   threads (user+sys us/call): " + ", ".join(
                        f"{k}={1e6 * (u - th0.get(k, (0, 0))[0]) / n:.0f}+{1e6 * (y - th0.get(k, (0, 0))[1]) / n:.0f}"
                        for k, (u, y) in th1.items() if (u, y) != th0.get(k, (0, 0))), flush=True)
    finally:
        with contextlib.suppress(Exception):
            parent.send("stop")
        proc.join(10)
        if proc.is_alive():
            proc.terminate()
        if trail is not None:
            await trail.stop(0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=4000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--ops", default=",".join(OPS))
    parser.add_argument("--outbox", action="store_true", help="durable outbox to a stub trail")
    parser.add_argument("--uvloop", action="store_true", help="run the server on uvloop (if installed)")
    parser.add_argument("--fake-hsm", action="store_true", help="services/kms/hsm/fake.py instead of SoftHSM2")
    parser.add_argument("--threads", action="store_true", help="server CPU per thread")
    parser.add_argument("--gc-stats", action="store_true", help="time the server's garbage collections")
    parser.add_argument("--profile", metavar="FILE", help="cProfile the server's measured window")
    args = parser.parse_args()
    asyncio.run(_drive(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
