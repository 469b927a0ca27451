"""Audit trail benchmark: ``python -m services.trail.bench [--seconds 4] [--rounds 3]``.

Measurements on real processes over 127.0.0.1 (numbers are for the machine it runs on):

1. **Ingest.** Senders push batches of 500 KMS-sized records (about 1.3 KB each) to the trail
   service's PutEvents RPC for ``--seconds``; the rate is records acknowledged per second.
2. **Delivery.** On a whole stack (gateway, kms, s3, trail; delivery every second) a trail
   logs into a bucket; records are ingested as fast as possible and the time until the last
   one lands in a delivered log file (read back and counted) gives records delivered per
   second, end to end (ingest, selection, gzip, PutObject through S3).
3. **Recording cost on KMS Encrypt.** Two KMS service processes run beside one real trail, on
   their own data directories and tokens: one as ``python -m services.kms`` runs ("on": every
   call builds a CloudTrail record and the durable outbox ships it), one without recording
   ("off"), each behind its own gateway. The 10% budget is judged at steady rates
   (``--steady-rates``, 300 and 450 Encrypts/s per stack): both stacks are loaded at the same
   moments, open loop, through their gateways with signed HTTP requests as the AWS SDKs send
   them, and the servers' CPU per Encrypt (KMS + gateway, + trail for "on") is compared window
   by window; the machine's drift hits both stacks alike, so windows agree within about a
   point (exit status 1 if recording takes more than 10%). Latency counts from each call's
   scheduled start. The same at the first rate against a stand-in trail that only
   acknowledges gives the sender's own cost. Also reported, not judged: saturation, where the
   load (``--concurrency`` calls in flight) switches between the two stacks every
   ``--seconds`` in ABBA order for ``--rounds`` pairs, over gRPC and through the gateways:
   throughput loss and CPU per Encrypt of every process, median over pairs, and latency one
   call at a time. Single pairs there range over 20 points (the machine's speed drifts by
   +-15% over seconds; an A/A run with one mode in both slots scatters as much).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gzip
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import grpc

from stack.launcher import REGION, free_port, make_stack, remove

ROOT = Path(__file__).resolve().parents[2]
ACCOUNT = "111122223333"


# ------------------------------------------------------------------ KMS server modes (subprocess)


def _serve_kms(mode: str) -> None:
    """Run the KMS service as ``python -m services.kms`` does, optionally without recording."""
    import services.kms.__main__ as kms_main
    from services.kms.service import KmsService

    @contextlib.asynccontextmanager
    async def no_sink(settings: Any) -> AsyncIterator[Any]:
        class Null:
            def record(self, event: Any) -> None:
                pass

        yield Null()

    if mode == "off":
        kms_main.audit_sink = no_sink
        KmsService._record = lambda self, ctx, code, message: None  # type: ignore[method-assign,assignment]
    kms_main.main()


def _serve_acking_trail(port: int) -> None:
    """A trail stand-in that acknowledges PutEvents without storing (isolates the sender's cost)."""
    from strongroom.trail.v1 import trail_pb2 as pb
    from strongroom.trail.v1 import trail_pb2_grpc

    class Ack(trail_pb2_grpc.CloudTrailServicer):  # type: ignore[misc]
        async def PutEvents(self, request: Any, context: Any) -> Any:
            return pb.PutEventsResponse(accepted=len(request.records))

    async def run() -> None:
        from grpc_health.v1 import health, health_pb2, health_pb2_grpc

        server = grpc.aio.server()
        trail_pb2_grpc.add_CloudTrailServicer_to_server(Ack(), server)
        hs = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(hs, server)
        server.add_insecure_port(f"127.0.0.1:{port}")
        await server.start()
        await hs.set("", health_pb2.HealthCheckResponse.SERVING)
        await server.wait_for_termination()

    asyncio.run(run())


# ------------------------------------------------------------------ helpers


def _env(data_dir: Path, ports: dict[str, int]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STRONGROOM_", "AWS_"))}
    env.update(
        STRONGROOM_DATA_DIR=str(data_dir),
        STRONGROOM_ACCOUNT_ID=ACCOUNT,
        STRONGROOM_REGION=REGION,
        STRONGROOM_KMS_PORT=str(ports["kms"]),
        STRONGROOM_S3_PORT=str(ports["s3"]),
        STRONGROOM_TRAIL_PORT=str(ports["trail"]),
        STRONGROOM_LOG_LEVEL="warning",
        PYTHONUNBUFFERED="1",
    )
    return env


async def _wait_serving(target: str, timeout: float = 60.0) -> None:
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    deadline = time.monotonic() + timeout
    async with grpc.aio.insecure_channel(target) as ch:
        stub = health_pb2_grpc.HealthStub(ch)
        while time.monotonic() < deadline:
            try:
                resp = await stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=1)
                if resp.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.aio.AioRpcError:
                pass
            await asyncio.sleep(0.2)
    raise RuntimeError(f"{target} not serving within {timeout}s")


async def _wait_listening(port: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.2)
            continue
        writer.close()
        return
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} within {timeout}s")


def _start(args: Sequence[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, *args],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=open(log, "ab"),
        stderr=subprocess.STDOUT,
    )  # noqa: SIM115


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _kms_event(i: int) -> dict[str, Any]:
    """A record the size and shape of a KMS Encrypt event, as common.audit builds them."""
    from common.audit import new_event_id

    event_id = new_event_id()
    record = {
        "eventVersion": "1.11",
        "userIdentity": {
            "type": "AssumedRole",
            "principalId": "AROAEXAMPLE:bench",
            "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/Bench/bench",
            "accountId": ACCOUNT,
            "accessKeyId": "ASIAEXAMPLEEXAMPLE",
            "sessionContext": {
                "sessionIssuer": {
                    "type": "Role",
                    "principalId": "AROAEXAMPLE",
                    "arn": f"arn:aws:iam::{ACCOUNT}:role/Bench",
                    "accountId": ACCOUNT,
                    "userName": "Bench",
                },
                "attributes": {"creationDate": "2026-01-01T00:00:00Z", "mfaAuthenticated": "false"},
            },
        },
        "eventTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "eventSource": "kms.amazonaws.com",
        "eventName": "Encrypt",
        "awsRegion": REGION,
        "sourceIPAddress": "127.0.0.1",
        "userAgent": "aws-cli/1.46 bench",
        "requestParameters": {
            "keyId": "alias/bench",
            "encryptionAlgorithm": "SYMMETRIC_DEFAULT",
            "encryptionContext": {"n": str(i)},
        },
        "responseElements": None,
        "requestID": str(uuid.uuid4()),
        "eventID": event_id,
        "readOnly": True,
        "resources": [
            {
                "accountId": ACCOUNT,
                "type": "AWS::KMS::Key",
                "ARN": f"arn:aws:kms:{REGION}:{ACCOUNT}:key/0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0",
            }
        ],
        "eventType": "AwsApiCall",
        "managementEvent": True,
        "recipientAccountId": ACCOUNT,
        "eventCategory": "Management",
    }
    return record


async def _ingest(target: str, seconds: float, senders: int = 4, batch: int = 500) -> tuple[int, float]:
    from strongroom.trail.v1 import trail_pb2 as pb
    from strongroom.trail.v1 import trail_pb2_grpc

    from common.audit import encode_record
    from common.audit_index import index_of, pack_records, put_columns

    acknowledged = 0
    counter = 0
    async with grpc.aio.insecure_channel(target, options=[("grpc.max_send_message_length", 64 << 20)]) as ch:
        stub = trail_pb2_grpc.CloudTrailStub(ch)
        stop_at = time.monotonic() + seconds

        async def sender() -> None:
            nonlocal acknowledged, counter
            while time.monotonic() < stop_at:
                # What a service's outbox ships: JSON lines and their index (common/audit_outbox.py).
                events = []
                for _ in range(batch):
                    counter += 1
                    events.append(_kms_event(counter))
                encoding, data = pack_records([encode_record(e) for e in events])
                message = pb.AuditBatch(records_jsonl=data, records_encoding=encoding)  # type: ignore[arg-type]
                put_columns(message, [index_of(e) for e in events])
                resp = await stub.PutEvents(pb.PutEventsRequest(batches=[message], sender="bench"), timeout=60)
                acknowledged += resp.accepted + resp.duplicates

        t0 = time.monotonic()
        await asyncio.gather(*(sender() for _ in range(senders)))
        return acknowledged, time.monotonic() - t0


# ------------------------------------------------------------------ 1. KMS Encrypt overhead


def _percentiles(samples: list[float]) -> dict[str, float]:
    """p50 / p90 / p99 of latencies in seconds, as milliseconds."""
    if len(samples) < 2:
        return {}
    q = statistics.quantiles(samples, n=100, method="inclusive")
    return {"p50": round(q[49] * 1e3, 3), "p90": round(q[89] * 1e3, 3), "p99": round(q[98] * 1e3, 3),
            "calls": len(samples)}


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


ROOT_KEY_ID, ROOT_SECRET = "AKIABENCHROOTBENCHRT", "bench-root-secret-" + os.urandom(8).hex()


class _GrpcEncrypts:
    """Encrypt calls over gRPC, ``concurrency`` in flight, on one channel kept open."""

    def __init__(self, target: str, concurrency: int) -> None:
        self.target, self.concurrency = target, concurrency

    async def open(self) -> None:
        from strongroom.kms.v1 import kms_pb2, kms_pb2_grpc

        self.channel = grpc.aio.insecure_channel(self.target)
        self.stub = kms_pb2_grpc.KeyManagementServiceStub(self.channel)
        key = (await self.stub.CreateKey(kms_pb2.CreateKeyRequest(description="bench"), timeout=30)).key_metadata
        self.request = kms_pb2.EncryptRequest(key_id=key.key_id, plaintext=os.urandom(64))

    async def run(self, seconds: float, workers: int | None = None, latencies: list[float] | None = None) -> int:
        """Encrypt calls for ``seconds`` (``workers`` in flight, default ``concurrency``);
        each call's latency is appended to ``latencies`` if given."""
        ops = 0
        until = time.monotonic() + seconds

        async def worker() -> None:
            nonlocal ops
            while (t0 := time.monotonic()) < until:
                await self.stub.Encrypt(self.request, timeout=30)
                if latencies is not None:
                    latencies.append(time.monotonic() - t0)
                ops += 1

        await asyncio.gather(*(worker() for _ in range(workers or self.concurrency)))
        return ops

    async def close(self) -> None:
        await self.channel.close()


class _HttpEncrypts:
    """Encrypt calls through the gateway: SigV4-signed JSON 1.1 requests, as AWS SDKs send them,
    on keep-alive connections (the load generator of ``make bench``)."""

    def __init__(self, endpoint: str, concurrency: int) -> None:
        self.endpoint, self.concurrency = endpoint, concurrency

    def _signed(self, op: str, payload: dict[str, Any]) -> Any:
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest
        from botocore.credentials import Credentials

        from bench.http import serialise

        req = AWSRequest("POST", self.endpoint + "/", data=json.dumps(payload).encode(), headers={
            "X-Amz-Target": f"TrentService.{op}", "Content-Type": "application/x-amz-json-1.1"})
        SigV4Auth(Credentials(ROOT_KEY_ID, ROOT_SECRET), "kms", REGION).add_auth(req)
        return serialise("POST", req.url, dict(req.headers.items()), req.body)

    async def open(self) -> None:
        import base64

        from bench.http import Connection

        setup = self._signed("CreateKey", {"Description": "bench"})
        self.conns = [Connection(setup.host, setup.port) for _ in range(self.concurrency)]
        status, body = await self.conns[0].send(setup)
        if status != 200:
            raise RuntimeError(f"CreateKey through the gateway failed: {status} {body[:200]!r}")
        key_id = json.loads(body)["KeyMetadata"]["KeyId"]
        self.request = self._signed(
            "Encrypt", {"KeyId": key_id, "Plaintext": base64.b64encode(os.urandom(64)).decode()}
        )

    async def run(
        self, seconds: float, workers: int | None = None, latencies: list[float] | None = None,
        rate: float | None = None,
    ) -> int:
        """As :meth:`_GrpcEncrypts.run`, one keep-alive connection per worker. With ``rate``,
        calls start on a fixed schedule (``rate`` per second, open loop) instead of as fast
        as they complete; a call's latency is counted from its scheduled start."""
        ops = 0
        until = time.monotonic() + seconds
        schedule = [time.monotonic()]

        async def worker(conn: Any) -> None:
            nonlocal ops
            while True:
                if rate:
                    t0 = schedule[0]
                    schedule[0] += 1 / rate
                    if t0 >= until:
                        return
                    if (wait := t0 - time.monotonic()) > 0:
                        await asyncio.sleep(wait)
                elif (t0 := time.monotonic()) >= until:
                    return
                status, body = await conn.send(self.request)
                if status != 200:
                    raise RuntimeError(f"Encrypt through the gateway failed: {status} {body[:200]!r}")
                if latencies is not None:
                    latencies.append(time.monotonic() - t0)
                ops += 1

        await asyncio.gather(*(worker(c) for c in self.conns[: workers or self.concurrency]))
        return ops

    async def close(self) -> None:
        for c in self.conns:
            await c.close()


@contextlib.asynccontextmanager
async def _off_on_stacks(
    prefix: str, concurrency: int, via_gateway: bool, acking_trail: bool = False
) -> AsyncIterator[tuple[subprocess.Popen[bytes], dict[str, Any], dict[str, Any], dict[str, Any]]]:
    """A real trail (or, with ``acking_trail``, a stand-in that only acknowledges) and two KMS
    processes sending to it, recording "off" and "on" (each with its own data directory and
    token), each behind its own gateway when ``via_gateway``; yields (trail, KMS processes,
    gateways, load drivers), the last three by mode. All stopped after."""
    data = Path(tempfile.mkdtemp(prefix=prefix))
    trail_port = free_port()
    procs: list[subprocess.Popen[bytes]] = []
    kms: dict[str, subprocess.Popen[bytes]] = {}
    gateways: dict[str, subprocess.Popen[bytes]] = {}
    drivers: dict[str, Any] = {}
    try:
        trail_env = _env(data / "trail-side", {"kms": free_port(), "s3": free_port(), "trail": trail_port})
        trail_module = ["services.trail.bench", "--acking-trail", str(trail_port)] if acking_trail else [
            "services.trail"]
        trail = _start(["-m", *trail_module], trail_env, data / "trail.log")
        procs.append(trail)
        await _wait_serving(f"127.0.0.1:{trail_port}")
        for mode in ("off", "on"):
            ports = {"kms": free_port(), "s3": free_port(), "trail": trail_port}
            env = _env(data / mode, ports)
            kms[mode] = _start(["-m", "services.trail.bench", "--kms-server", mode], env, data / f"kms-{mode}.log")
            procs.append(kms[mode])
            await _wait_serving(f"127.0.0.1:{ports['kms']}")
            if via_gateway:
                gw_port = free_port()
                gw_env = dict(env, STRONGROOM_HOST="127.0.0.1", STRONGROOM_PORT=str(gw_port),
                              STRONGROOM_ROOT_ACCESS_KEY_ID=ROOT_KEY_ID,
                              STRONGROOM_ROOT_SECRET_ACCESS_KEY=ROOT_SECRET)
                gateways[mode] = _start(["-m", "gateway"], gw_env, data / f"gateway-{mode}.log")
                procs.append(gateways[mode])
                await _wait_listening(gw_port)
                drivers[mode] = _HttpEncrypts(f"http://127.0.0.1:{gw_port}", concurrency)
            else:
                drivers[mode] = _GrpcEncrypts(f"127.0.0.1:{ports['kms']}", concurrency)
            await drivers[mode].open()
        yield trail, kms, gateways, drivers
    finally:
        for d in drivers.values():
            with contextlib.suppress(Exception):
                await d.close()
        for proc in reversed(procs):
            _stop(proc)
        shutil.rmtree(data, ignore_errors=True)


async def bench_kms_overhead_interleaved(
    seconds: float, concurrency: int, pairs: int = 8, via_gateway: bool = False, gap: float = 0.7,
    latency_pairs: int = 4,
) -> dict[str, Any]:
    """KMS Encrypt with recording off and on, both KMS processes up at once (each with its own
    data directory and token; the same real trail), the load switching between them every
    ``seconds`` in ABBA order. The machine's speed drifts on a scale of seconds (other tenants
    of the host); windows this short and this close see the same machine, so the paired losses
    are steadier than runs of freshly started processes. After each window the load pauses
    ``gap`` seconds, so that the "on" KMS ships what it holds and the trail stores it before
    the next window: that CPU is counted for the window (CPU per Encrypt), its time is not."""
    stacks = _off_on_stacks("trail-bench-interleaved-", concurrency, via_gateway)
    async with stacks as (trail, kms, gateways, drivers):
        for mode in ("off", "on"):  # warm-up
            await drivers[mode].run(1.0)
        await asyncio.sleep(gap)
        rates: dict[str, list[float]] = {"off": [], "on": []}
        cpu: dict[str, list[float]] = {"off": [], "on": []}
        kms_cpu: dict[str, list[float]] = {"off": [], "on": []}
        trail_cpu: list[float] = []
        for i in range(pairs):
            for mode in ("off", "on") if i % 2 == 0 else ("on", "off"):
                pids = [kms[mode].pid, trail.pid, os.getpid()] + ([gateways[mode].pid] if via_gateway else [])
                cpu0 = [_cpu_seconds(p) for p in pids]
                t0 = time.monotonic()
                ops = await drivers[mode].run(seconds)
                elapsed = time.monotonic() - t0
                await asyncio.sleep(gap)
                used = [_cpu_seconds(p) - c for p, c in zip(pids, cpu0, strict=True)]
                rates[mode].append(ops / elapsed)
                cpu[mode].append(sum(used) / max(ops, 1))
                kms_cpu[mode].append(used[0] / max(ops, 1))
                if mode == "on":
                    trail_cpu.append(used[1] / max(ops, 1))
        # Latency under light load (one call at a time): what a single client waits.
        latencies: dict[str, list[float]] = {"off": [], "on": []}
        for i in range(latency_pairs):
            for mode in ("off", "on") if i % 2 == 0 else ("on", "off"):
                await drivers[mode].run(seconds / 2, workers=1, latencies=latencies[mode])
                await asyncio.sleep(gap)
    paired = [100 * (a - b) / a for a, b in zip(rates["off"], rates["on"], strict=True)]
    # CPU per Encrypt compared within each pair too: the machine's speed (and so CPU time
    # per unit of work) drifts between pairs as much as the recording's cost.
    cpu_paired = [100 * (b - a) / b for a, b in zip(cpu["off"], cpu["on"], strict=True)]
    med = statistics.median
    return {
        "encrypt_ops_s_recording_off": round(med(rates["off"])),
        "encrypt_ops_s_recording_on": round(med(rates["on"])),
        "throughput_loss_pct": round(med(paired), 1),
        "throughput_loss_pct_per_pair": [round(x, 1) for x in paired],
        "kms_cpu_us_per_encrypt_off": round(med(kms_cpu["off"]) * 1e6, 1),
        "kms_cpu_us_per_encrypt_on": round(med(kms_cpu["on"]) * 1e6, 1),
        "trail_cpu_us_per_encrypt_on": round(med(trail_cpu) * 1e6, 1),
        "all_cpu_us_per_encrypt_off": round(med(cpu["off"]) * 1e6, 1),
        "all_cpu_us_per_encrypt_on": round(med(cpu["on"]) * 1e6, 1),
        "recording_cpu_share_pct": round(med(cpu_paired), 1),
        "recording_cpu_share_pct_per_pair": [round(x, 1) for x in cpu_paired],
        "recording_cpu_share_pct_of_medians": round(100 * (med(cpu["on"]) - med(cpu["off"])) / med(cpu["on"]), 1),
        **{f"latency_ms_c1_{mode}": _percentiles(lat) for mode, lat in latencies.items()},
        "runs_ops_s": {k: [round(v) for v in vs] for k, vs in rates.items()},
        "concurrency": concurrency,
        "pairs": pairs,
        "window_seconds": seconds,
        "statistic": "loss: median over ABBA pairs of (off - on) / off; both KMS processes up at once",
    }


async def bench_kms_steady(
    seconds: float, rate: float, reps: int = 6, concurrency: int = 16, acking_trail: bool = False
) -> dict[str, Any]:
    """KMS Encrypt through the gateway at a steady ``rate`` per second on *both* stacks at the
    same time (recording off and on, open loop), for ``reps`` windows of ``seconds``.

    The saturation pairs above measure what a load test sees, but each process's CPU per call
    there depends on how fast the whole machine goes at that moment (other tenants), so their
    pairs scatter by +-10 points. Here both stacks do the same work at the same moments: the
    drift hits both alike and the CPU each server process spends per Encrypt compares
    directly (the load generator, shared by both, is left out). The trail's CPU is charged to
    the "on" stack, which alone sends to it."""
    stacks = _off_on_stacks("trail-bench-steady-", concurrency, True, acking_trail)
    async with stacks as (trail, kms, gateways, drivers):
        await asyncio.gather(*(d.run(1.0, rate=rate) for d in drivers.values()))  # warm-up
        await asyncio.sleep(1.0)
        pids = {"kms_off": kms["off"].pid, "kms_on": kms["on"].pid, "gateway_off": gateways["off"].pid,
                "gateway_on": gateways["on"].pid, "trail": trail.pid}
        parts: dict[str, list[float]] = {k: [] for k in pids}  # CPU seconds per Encrypt, per window
        latencies: dict[str, list[float]] = {"off": [], "on": []}
        achieved: dict[str, list[float]] = {"off": [], "on": []}
        for _ in range(reps):
            before = {k: _cpu_seconds(p) for k, p in pids.items()}
            ops_off, ops_on = await asyncio.gather(
                *(drivers[m].run(seconds, rate=rate, latencies=latencies[m]) for m in ("off", "on"))
            )
            await asyncio.sleep(1.0)  # the "on" KMS ships what it holds, the trail stores it
            ops = {"off": max(ops_off, 1), "on": max(ops_on, 1)}
            for key, pid in pids.items():
                used = _cpu_seconds(pid) - before[key]
                parts[key].append(used / ops["off" if key.endswith("_off") else "on"])
            achieved["off"].append(ops_off / seconds)
            achieved["on"].append(ops_on / seconds)
    # The servers' CPU per Encrypt, window by window; the trail's is charged to "on".
    per_op = {
        "off": [k + g for k, g in zip(parts["kms_off"], parts["gateway_off"], strict=True)],
        "on": [k + g + t
               for k, g, t in zip(parts["kms_on"], parts["gateway_on"], parts["trail"], strict=True)],
    }
    med = statistics.median
    share = [100 * (b - a) / b for a, b in zip(per_op["off"], per_op["on"], strict=True)]
    return {
        "rate_per_stack": rate,
        "achieved_ops_s": {k: round(med(v)) for k, v in achieved.items()},
        "server_cpu_us_per_encrypt_off": round(med(per_op["off"]) * 1e6, 1),
        "server_cpu_us_per_encrypt_on": round(med(per_op["on"]) * 1e6, 1),
        **{f"{k}_cpu_us_per_encrypt": round(med(v) * 1e6, 1) for k, v in parts.items()},
        "recording_cpu_share_pct": round(med(share), 1),
        "recording_cpu_share_pct_per_rep": [round(x, 1) for x in share],
        **{f"latency_ms_{mode}": _percentiles(lat) for mode, lat in latencies.items()},
        "reps": reps,
        "window_seconds": seconds,
        "statistic": "share: median over windows of (on - off) / on, server CPU per Encrypt, "
        "both stacks loaded at once",
    }


# ------------------------------------------------------------------ 2. ingest


async def bench_ingest(seconds: float) -> dict[str, Any]:
    data = Path(tempfile.mkdtemp(prefix="trail-bench-ingest-"))
    ports = {"kms": free_port(), "s3": free_port(), "trail": free_port()}
    trail = _start(["-m", "services.trail"], _env(data, ports), data / "trail.log")
    try:
        await _wait_serving(f"127.0.0.1:{ports['trail']}")
        count, took = await _ingest(f"127.0.0.1:{ports['trail']}", seconds)
    finally:
        _stop(trail)
        shutil.rmtree(data, ignore_errors=True)
    return {"records": count, "seconds": round(took, 2), "records_per_s": round(count / took)}


# ------------------------------------------------------------------ 3. delivery


async def bench_delivery(seconds: float) -> dict[str, Any]:
    stack = make_stack(STRONGROOM_TRAIL_DELIVERY_SECONDS="1", STRONGROOM_LOG_LEVEL="warning")
    try:
        stack.start()
        s3, ct = stack.client("s3"), stack.client("cloudtrail")
        bucket = f"bench-trail-{uuid.uuid4().hex[:8]}"
        s3.create_bucket(Bucket=bucket)
        s3.put_bucket_policy(
            Bucket=bucket,
            Policy=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"Service": "cloudtrail.amazonaws.com"},
                            "Action": "s3:GetBucketAcl",
                            "Resource": f"arn:aws:s3:::{bucket}",
                        },
                        {
                            "Effect": "Allow",
                            "Principal": {"Service": "cloudtrail.amazonaws.com"},
                            "Action": "s3:PutObject",
                            "Resource": f"arn:aws:s3:::{bucket}/AWSLogs/*",
                        },
                    ],
                }
            ),
        )
        ct.create_trail(Name="bench", S3BucketName=bucket)
        ct.start_logging(Name="bench")
        time.sleep(1.5)
        t0 = time.monotonic()
        count, _ = await _ingest(f"127.0.0.1:{stack.port_of('trail')}", seconds)
        ingested = time.monotonic()

        seen: dict[str, int] = {}

        def delivered() -> int:
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix="AWSLogs/"):
                for obj in page.get("Contents", []):
                    if obj["Key"] in seen:
                        continue
                    body = s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
                    seen[obj["Key"]] = sum(
                        1
                        for r in json.loads(gzip.decompress(body))["Records"]
                        if r.get("userAgent") == "aws-cli/1.46 bench"
                    )
            return sum(seen.values())

        deadline = time.monotonic() + 120
        total = delivered()
        while total < count and time.monotonic() < deadline:
            time.sleep(0.2)
            total = delivered()
        end = time.monotonic()
        status = ct.get_trail_status(Name="bench")
        return {
            "records_ingested": count,
            "records_delivered": total,
            "log_files": sum(1 for n in seen.values() if n),
            "ingest_seconds": round(ingested - t0, 2),
            "all_delivered_after_s": round(end - t0, 2),
            "delivered_records_per_s": round(total / (end - t0)) if total else 0,
            "latest_delivery_error": status.get("LatestDeliveryError", ""),
            "note": "delivery every 1 s; the time includes reading the files back through S3",
        }
    finally:
        remove(stack)


async def _main(args: argparse.Namespace) -> int:
    out: dict[str, Any] = {}
    print("== trail ingest (PutEvents, 500-record batches, 4 senders)", flush=True)
    out["ingest"] = await bench_ingest(args.seconds)
    print(json.dumps(out["ingest"]), flush=True)
    print("== trail delivery (whole stack, 1 s interval)", flush=True)
    out["delivery"] = await bench_delivery(args.seconds)
    print(json.dumps(out["delivery"]), flush=True)
    print(f"== KMS Encrypt, recording off / on, over gRPC (c={args.concurrency}), real trail", flush=True)
    out["kms_encrypt"] = await bench_kms_overhead_interleaved(args.seconds, args.concurrency, pairs=args.rounds)
    print(json.dumps(out["kms_encrypt"]), flush=True)
    print("== the same through the gateway (signed HTTP requests, as AWS SDKs send them), real trail", flush=True)
    out["kms_encrypt_via_gateway"] = await bench_kms_overhead_interleaved(
        args.seconds, args.concurrency, pairs=args.rounds, via_gateway=True
    )
    print(json.dumps(out["kms_encrypt_via_gateway"]), flush=True)
    out["kms_encrypt_steady"] = {}
    for rate in args.steady_rates:
        print(f"== the same at a steady {rate:g} Encrypts/s on each stack, off and on at once", flush=True)
        out["kms_encrypt_steady"][f"{rate:g}"] = await bench_kms_steady(max(args.seconds, 5.0), rate)
        print(json.dumps(out["kms_encrypt_steady"][f"{rate:g}"]), flush=True)
    rate = args.steady_rates[0]
    print(f"== the same at {rate:g}/s against a trail stand-in that only acknowledges (sender cost alone)",
          flush=True)
    out["kms_encrypt_acking_trail"] = await bench_kms_steady(max(args.seconds, 5.0), rate, acking_trail=True)
    print(json.dumps(out["kms_encrypt_acking_trail"]), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2))
    k, g, a = out["kms_encrypt"], out["kms_encrypt_via_gateway"], out["kms_encrypt_acking_trail"]
    st = out["kms_encrypt_steady"][f"{rate:g}"]
    print(
        f"\nper Encrypt at a steady {rate:g}/s through the gateway, KMS process CPU: "
        f"{st['kms_off_cpu_us_per_encrypt']} us without recording, "
        f"{st['kms_on_cpu_us_per_encrypt'] - st['kms_off_cpu_us_per_encrypt']:+.1f} us with it "
        f"({a['kms_on_cpu_us_per_encrypt'] - a['kms_off_cpu_us_per_encrypt']:+.1f} us against a trail that "
        f"only acknowledges: building, encoding, committing and shipping the record); the trail spends "
        f"{st['trail_cpu_us_per_encrypt']} us storing it (its own process)"
    )
    # The budget applies to KMS Encrypt as AWS clients call it: through the endpoint. It is judged
    # on the steady-rate comparisons: both stacks do the same work at the same moments, so the
    # machine's drift cancels and windows agree within about a point. The saturation pairs
    # (below) are reported too, but their median moves by several points from run to run even
    # when both slots run the same mode (an A/A test: pairs -12% to +15%), so they cannot decide
    # a 10% budget either way.
    steady = out["kms_encrypt_steady"]
    ok = bool(steady) and all(st["recording_cpu_share_pct"] <= 10 for st in steady.values())
    for st in steady.values():
        print(
            f"\nKMS Encrypt through the gateway at a steady {st['rate_per_stack']:g}/s, off and on loaded "
            f"at once: recording takes {st['recording_cpu_share_pct']}% of the servers' CPU per Encrypt "
            f"({st['server_cpu_us_per_encrypt_off']} -> {st['server_cpu_us_per_encrypt_on']} us; per "
            f"window {st['recording_cpu_share_pct_per_rep']}); latency p50 {st['latency_ms_off'].get('p50')}"
            f" -> {st['latency_ms_on'].get('p50')} ms, p99 {st['latency_ms_off'].get('p99')} -> "
            f"{st['latency_ms_on'].get('p99')} ms"
        )
    for label, r in (("through the gateway (AWS SDK requests)", g), ("over gRPC, straight to the KMS", k)):
        print(
            f"\nKMS Encrypt {label}, at saturation, recording on: {r['throughput_loss_pct']}% lower "
            f"throughput ({r['encrypt_ops_s_recording_off']} -> {r['encrypt_ops_s_recording_on']} ops/s; "
            f"median of {r['pairs']} off/on pairs of {r['window_seconds']} s windows, pairs "
            f"{min(r['throughput_loss_pct_per_pair'])}% to {max(r['throughput_loss_pct_per_pair'])}%); "
            f"recording takes {r['recording_cpu_share_pct']}% of all CPU per Encrypt "
            f"({r['all_cpu_us_per_encrypt_off']} -> {r['all_cpu_us_per_encrypt_on']} us, every process); "
            f"one call at a time, latency p50 {r['latency_ms_c1_off'].get('p50')} -> "
            f"{r['latency_ms_c1_on'].get('p50')} ms, p99 {r['latency_ms_c1_off'].get('p99')} -> "
            f"{r['latency_ms_c1_on'].get('p99')} ms"
        )
    print(
        f"\n{'within' if ok else 'OVER'} the 10% budget for KMS Encrypt through the endpoint (the servers' "
        f"CPU per Encrypt at steady rates of {', '.join(f'{r:g}' for r in args.steady_rates)}/s per stack); "
        f"load generator and servers share {os.cpu_count()} cores"
    )
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.trail.bench")
    parser.add_argument("--seconds", type=float, default=float(os.environ.get("BENCH_SECONDS", "3")))
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=12, help="off/on window pairs against the real trail")
    parser.add_argument("--steady-rates", type=lambda text: [float(r) for r in text.split(",")],
                        default=[300.0, 450.0],
                        help="Encrypts/s on each stack in the steady-rate comparisons (comma-separated): "
                        "a moderate load, and one near what this 2-core machine can serve")
    parser.add_argument("--json", help="also write the results to this file")
    parser.add_argument("--kms-server", choices=("on", "off"), help=argparse.SUPPRESS)
    parser.add_argument("--acking-trail", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.kms_server:
        _serve_kms(args.kms_server)
        return 0
    if args.acking_trail:
        _serve_acking_trail(args.acking_trail)
        return 0
    # SIGTERM (e.g. `timeout`) must still run the finally blocks that stop the child processes.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    return asyncio.run(_main(args))


if __name__ == "__main__":
    raise SystemExit(main())
