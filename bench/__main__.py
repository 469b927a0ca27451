"""``make bench``: Strongroom against moto's server, same load, same run.

Method: both servers run on free 127.0.0.1 ports of this machine; one load generator (this
process, asyncio with a lean keep-alive HTTP/1.1 client, bench/http.py) sends requests signed with botocore's SigV4 signer. A request is
signed once and sent many times (both servers accept a signature for 15 minutes), so the
load generator spends its CPU on sending, not signing. Each scenario runs for a fixed time
after a warm-up at each concurrency; every response is checked for success (errors counted
and reported). Results: ops/s, MB/s for object scenarios, p50/p99 latency, and the ratio
Strongroom / moto. The table is printed and written to docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from botocore.auth import S3SigV4Auth, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from bench.http import Connection, RawRequest, serialise
from stack.launcher import REGION, Stack, free_port, make_stack, remove

ROOT = Path(__file__).resolve().parent.parent
SCENARIO_SECONDS = float(os.environ.get("BENCH_SECONDS", "4"))
WARMUP_SECONDS = 0.5
CONCURRENCY = (1, 8, 32)


Prepared = RawRequest


@dataclass
class Result:
    scenario: str
    target: str
    concurrency: int
    ops: int = 0
    errors: int = 0
    seconds: float = 0.0
    bytes_moved: int = 0
    latencies: list[float] = field(default_factory=list)
    first_error: str = ""

    @property
    def ops_per_s(self) -> float:
        return self.ops / self.seconds if self.seconds else 0.0

    @property
    def mb_per_s(self) -> float:
        return self.bytes_moved / self.seconds / 1e6 if self.seconds else 0.0

    def pct(self, p: float) -> float:
        if not self.latencies:
            return float("nan")
        xs = sorted(self.latencies)
        return xs[min(len(xs) - 1, int(p * len(xs)))] * 1000


class Target:
    def __init__(self, name: str, endpoint: str, akid: str, secret: str) -> None:
        self.name = name
        self.endpoint = endpoint
        self.creds = Credentials(akid, secret)

    def kms(self, op: str, payload: dict[str, object]) -> Prepared:
        req = AWSRequest("POST", self.endpoint + "/", data=json.dumps(payload).encode(), headers={
            "X-Amz-Target": f"TrentService.{op}",
            "Content-Type": "application/x-amz-json-1.1",
        })
        SigV4Auth(self.creds, "kms", REGION).add_auth(req)
        return serialise("POST", req.url, dict(req.headers.items()), req.body)

    def s3(self, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None) -> Prepared:
        import hashlib

        hdrs = dict(headers or {})
        hdrs["x-amz-content-sha256"] = hashlib.sha256(body).hexdigest()
        req = AWSRequest(method, self.endpoint + path, data=body, headers=hdrs)
        S3SigV4Auth(self.creds, "s3", REGION).add_auth(req)
        return serialise(method, req.url, dict(req.headers.items()), body)

    async def call(self, conn: Connection, p: Prepared) -> tuple[int, bytes]:
        return await conn.send(p)


async def drive(target: Target, scenario: str, concurrency: int,
                make: Callable[[int], Prepared], bytes_per_op: int = 0) -> Result:
    result = Result(scenario, target.name, concurrency)
    prepared = [make(i) for i in range(max(concurrency, 1))]
    stop_at = 0.0
    measuring = False

    conns = [Connection(prepared[0].host, prepared[0].port) for _ in range(concurrency)]

    async def worker(i: int) -> None:
        p = prepared[i % len(prepared)]
        conn = conns[i]
        while True:
            t0 = time.perf_counter()
            if t0 >= stop_at:
                return
            try:
                status, body = await target.call(conn, p)
                ok = 200 <= status < 300
                if not ok and not result.first_error:
                    result.first_error = f"{status}: {body[:200]!r}"
            except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
                ok = False
                if not result.first_error:
                    result.first_error = repr(exc)
            t1 = time.perf_counter()
            if measuring and t1 <= stop_at:
                if ok:
                    result.ops += 1
                    result.bytes_moved += bytes_per_op
                    result.latencies.append(t1 - t0)
                else:
                    result.errors += 1

    stop_at = time.perf_counter() + WARMUP_SECONDS
    await asyncio.gather(*(worker(i) for i in range(concurrency)))
    measuring = True
    start = time.perf_counter()
    stop_at = start + SCENARIO_SECONDS
    await asyncio.gather(*(worker(i) for i in range(concurrency)))
    result.seconds = min(time.perf_counter(), stop_at) - start
    for conn in conns:
        await conn.close()
    return result


async def kms_setup(session: Connection, t: Target) -> dict[str, str]:
    status, body = await t.call(session, t.kms("CreateKey", {"Description": "bench"}))
    if status != 200:
        raise RuntimeError(f"{t.name} CreateKey failed: {status} {body[:300]!r}")
    key_id = json.loads(body)["KeyMetadata"]["KeyId"]
    status, body = await t.call(session, t.kms("Encrypt", {"KeyId": key_id, "Plaintext": "aGVsbG8gd29ybGQ="}))
    if status != 200:
        raise RuntimeError(f"{t.name} Encrypt failed: {status} {body[:300]!r}")
    return {"key_id": key_id, "ciphertext": json.loads(body)["CiphertextBlob"]}


async def s3_setup(session: Connection, t: Target, key_id: str) -> str:
    bucket = "bench-" + os.urandom(4).hex()
    status, body = await t.call(session, t.s3("PUT", f"/{bucket}"))
    if status != 200:
        raise RuntimeError(f"{t.name} CreateBucket failed: {status} {body[:300]!r}")
    return bucket


def kms_scenarios(state: dict[str, str]) -> list[tuple[str, Callable[[Target], Callable[[int], Prepared]], int]]:
    plaintext = "A" * 88  # 64 bytes, base64
    return [
        ("KMS Encrypt 64 B", lambda t: (lambda i: t.kms("Encrypt", {"KeyId": state[t.name + "key"], "Plaintext": plaintext})), 0),
        ("KMS Decrypt", lambda t: (lambda i: t.kms("Decrypt", {"CiphertextBlob": state[t.name + "ct"]})), 0),
        ("KMS GenerateDataKey", lambda t: (lambda i: t.kms("GenerateDataKey", {"KeyId": state[t.name + "key"], "KeySpec": "AES_256"})), 0),
    ]


def s3_scenarios(state: dict[str, str]) -> list[tuple[str, Callable[[Target], Callable[[int], Prepared]], int]]:
    out: list[tuple[str, Callable[[Target], Callable[[int], Prepared]], int]] = []
    for label, size in (("4 KiB", 4096), ("1 MiB", 1 << 20)):
        body = os.urandom(size)

        def put(t: Target, size: int = size, body: bytes = body, label: str = label) -> Callable[[int], Prepared]:
            return lambda i: t.s3("PUT", f"/{state[t.name + 'bucket']}/obj-{label.replace(' ', '')}-{i}", body, {
                "x-amz-server-side-encryption": "aws:kms",
                "x-amz-server-side-encryption-aws-kms-key-id": state[t.name + "key"]})

        def get(t: Target, label: str = label) -> Callable[[int], Prepared]:
            return lambda i: t.s3("GET", f"/{state[t.name + 'bucket']}/obj-{label.replace(' ', '')}-{i}")

        out.append((f"S3 PutObject SSE-KMS {label}", put, size))
        out.append((f"S3 GetObject SSE-KMS {label}", get, size))
    return out


def start_moto(moto_server: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = subprocess.Popen([moto_server, "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL, start_new_session=True)
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return proc, endpoint
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("moto_server did not start")


def stop_proc(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def fmt(results: list[Result]) -> str:
    by_key = {(r.scenario, r.target, r.concurrency): r for r in results}
    lines = ["| scenario | c | Strongroom ops/s | p50 ms | p99 ms | moto ops/s | p50 ms | p99 ms | ratio | errors (ours/moto) |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
    seen: list[tuple[str, int]] = []
    for r in results:
        if (r.scenario, r.concurrency) not in seen:
            seen.append((r.scenario, r.concurrency))
    for scenario, c in seen:
        ours = by_key.get((scenario, "strongroom", c))
        moto = by_key.get((scenario, "moto", c))

        def cell(r: Result | None) -> str:
            if r is None:
                return "n/a | | "
            ops = f"{r.ops_per_s:,.0f}"
            if r.bytes_moved:
                ops += f" ({r.mb_per_s:,.1f} MB/s)"
            return f"{ops} | {r.pct(0.5):.2f} | {r.pct(0.99):.2f}"

        ratio = (f"{ours.ops_per_s / moto.ops_per_s:.1f}x" if ours and moto and moto.ops_per_s else "n/a")
        errs = f"{ours.errors if ours else '-'}/{moto.errors if moto else '-'}"
        lines.append(f"| {scenario} | {c} | {cell(ours)} | {cell(moto)} | {ratio} | {errs} |")
    return "\n".join(lines)


async def run_all(stack: Stack, moto_endpoint: str | None, include_s3: bool) -> list[Result]:
    targets = [Target("strongroom", stack.endpoint, stack.access_key_id, stack.secret_access_key)]
    if moto_endpoint:
        targets.append(Target("moto", moto_endpoint, "testing", "testing"))
    results: list[Result] = []
    state: dict[str, str] = {}
    for t in targets:
        host, port = t.endpoint.rsplit("/", 1)[-1].split(":")
        session = Connection(host, int(port))
        s = await kms_setup(session, t)
        state[t.name + "key"] = s["key_id"]
        state[t.name + "ct"] = s["ciphertext"]
        if include_s3:
            try:
                state[t.name + "bucket"] = await s3_setup(session, t, s["key_id"])
            except RuntimeError as exc:
                print(f"  S3 skipped for {t.name}: {exc}", flush=True)
        await session.close()
    scenarios = kms_scenarios(state) + (s3_scenarios(state) if include_s3 else [])
    for name, factory, size in scenarios:
        for c in CONCURRENCY:
            for t in targets:
                if name.startswith("S3") and t.name + "bucket" not in state:
                    continue
                r = await drive(t, name, c, factory(t), size)
                results.append(r)
                print(f"  {name:28s} c={c:<3d} {t.name:10s} {r.ops_per_s:9.0f} ops/s  "
                      f"p50 {r.pct(0.5):7.2f} ms  p99 {r.pct(0.99):7.2f} ms  errors {r.errors}"
                      + (f"  first error: {r.first_error}" if r.first_error else ""), flush=True)
    return results


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--moto", help="path to moto_server (omit to measure Strongroom alone)")
    ap.add_argument("--no-s3", action="store_true")
    ap.add_argument("--no-trail", action="store_true", help="skip the audit trail benchmark")
    ap.add_argument("--out", default=str(ROOT / "docs" / "benchmarks.md"))
    args = ap.parse_args()

    stack = make_stack(STRONGROOM_LOG_LEVEL="warning", STRONGROOM_TRAIL_DELIVERY_SECONDS="60")
    moto_proc = None
    started = time.time()
    try:
        print("starting Strongroom ...", flush=True)
        stack.start()
        moto_endpoint = None
        if args.moto:
            print("starting moto_server ...", flush=True)
            moto_proc, moto_endpoint = start_moto(args.moto)
        results = asyncio.run(run_all(stack, moto_endpoint, not args.no_s3))
    finally:
        if moto_proc:
            stop_proc(moto_proc)
        remove(stack)
    table = fmt(results)
    print()
    print(table)
    trail_section = "" if args.no_trail else run_trail_bench()
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    method = " ".join((__doc__ or "").split("\n\n", 1)[-1].split())
    report = f"""# Benchmarks

Generated by `make bench` on {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M UTC}.

- Machine: {os.cpu_count()} cores, {cpu}, Python {platform.python_version()}, {platform.system()} {platform.release()}
- {method}
- Each scenario: {WARMUP_SECONDS}s warm-up then {SCENARIO_SECONDS}s measured, per concurrency level.
- Strongroom: the full stack (gateway -> gRPC -> KMS with SoftHSM2; S3 with SSE-KMS envelope encryption),
  SigV4 verified, policies evaluated, every call recorded as a CloudTrail event.
- moto: `moto_server` {moto_version()} on the same machine, same requests.
- Total run time: {time.time() - started:.0f}s.

{table}
{trail_section}"""
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(report)
    print(f"\nwritten to {args.out}")
    return 0


def run_trail_bench() -> str:
    """The audit trail's own benchmark (services/trail/bench.py): ingest, delivery, and the
    cost of recording on KMS Encrypt. Its figures are added to the report as it prints them."""
    print("\nrunning the audit trail benchmark (python -m services.trail.bench) ...", flush=True)
    proc = subprocess.run([sys.executable, "-m", "services.trail.bench"], cwd=ROOT,
                          capture_output=True, text=True, timeout=720, stdin=subprocess.DEVNULL)
    print(proc.stdout, flush=True)
    if proc.returncode not in (0, 1):
        print(proc.stderr[-2000:], file=sys.stderr)
    lines = "\n".join("    " + line for line in proc.stdout.strip().splitlines())
    return ("\n## Audit trail\n\n`python -m services.trail.bench` (ingest into PutEvents, delivery end to end, "
            "and what recording costs KMS Encrypt; exit status "
            f"{proc.returncode}: 0 = recording within the 10% budget):\n\n{lines}\n")


def moto_version() -> str:
    try:
        lock = (ROOT / "bench" / "moto-requirements.lock").read_text()
        for line in lock.splitlines():
            if line.lower().startswith("moto=="):
                return line.split("==", 1)[1]
    except OSError:
        pass
    return "?"


if __name__ == "__main__":
    sys.exit(main())
