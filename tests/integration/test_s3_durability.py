"""Large objects and crash safety of the object store (slow)."""

from __future__ import annotations

import hashlib
import os
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3.s3.transfer
import botocore
import pytest

from tests.stackctl import Stack, make_stack, remove

MiB = 1024 * 1024


class _Pattern:
    """A reproducible pseudo-random stream (no 200 MiB buffer in the test process)."""

    def __init__(self, size: int, seed: bytes) -> None:
        self.size, self.pos = size, 0
        self.block = hashlib.sha256(seed).digest() * (MiB // 32)

    def read(self, n: int = -1) -> bytes:
        n = self.size - self.pos if n < 0 else min(n, self.size - self.pos)
        out = bytearray()
        while len(out) < n:
            off = (self.pos + len(out)) % len(self.block)
            out += self.block[off:off + n - len(out)]
        self.pos += n
        return bytes(out)


@pytest.mark.slow
def test_multipart_200mib_sse_kms_roundtrip(stack: Stack) -> None:
    s3, kms = stack.client("s3"), stack.client("kms")
    key = kms.create_key(Description="multipart")["KeyMetadata"]
    bucket = f"big-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=bucket)
    size = 200 * MiB
    expected = hashlib.sha256()
    src = _Pattern(size, b"seed")
    check = _Pattern(size, b"seed")
    while chunk := check.read(8 * MiB):
        expected.update(chunk)
    cfg = boto3.s3.transfer.TransferConfig(multipart_threshold=16 * MiB, multipart_chunksize=16 * MiB, max_concurrency=4)
    started = time.monotonic()
    s3.upload_fileobj(src, bucket, "big.bin", ExtraArgs={"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": key["Arn"]},
                      Config=cfg)
    head = s3.head_object(Bucket=bucket, Key="big.bin")
    assert head["ContentLength"] == size and head["ServerSideEncryption"] == "aws:kms"
    assert head["SSEKMSKeyId"] == key["Arn"] and head["ETag"].endswith('-13"')
    body = s3.get_object(Bucket=bucket, Key="big.bin")["Body"]
    got = hashlib.sha256()
    while chunk := body.read(8 * MiB):
        got.update(chunk)
    assert got.hexdigest() == expected.hexdigest()
    assert time.monotonic() - started < 60
    s3.delete_object(Bucket=bucket, Key="big.bin")
    s3.delete_bucket(Bucket=bucket)


def _s3_pid(stack: Stack) -> int | None:
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes().split(b"\0")
            if b"services.s3" not in cmd:
                continue
            env = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if f"STRONGROOM_DATA_DIR={stack.data_dir}".encode() in env:
            return int(entry.name)
    return None


@pytest.fixture()
def crash_stack() -> Iterator[Stack]:
    s = make_stack()
    try:
        s.start()
        yield s
    finally:
        remove(s)


@pytest.mark.slow
def test_kill_9_during_uploads_leaves_no_torn_or_lost_object(crash_stack: Stack) -> None:
    stack = crash_stack
    s3 = stack.client("s3")
    bucket = "crash-test"
    s3.create_bucket(Bucket=bucket)
    acked: dict[str, str] = {}             # key -> sha256 of the acknowledged content
    same_versions: list[str] = []          # every version ever sent for the key "same"
    lock = threading.Lock()
    stop = threading.Event()

    def writer(n: int) -> None:
        client = stack.client("s3")
        i = 0
        while not stop.is_set() and i < 200:
            i += 1
            data = os.urandom(256 * 1024 + n * 1000 + i)
            digest = hashlib.sha256(data).hexdigest()
            key = "same" if i % 3 == 0 else f"w{n}/{i}"
            if key == "same":
                with lock:
                    same_versions.append(digest)
            extra: dict[str, Any] = {"ServerSideEncryption": "aws:kms"} if i % 2 else {}
            try:
                client.put_object(Bucket=bucket, Key=key, Body=data, **extra)
            except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError):
                continue
            with lock:
                acked[key] = digest

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 30
    while len(acked) < 20 and time.monotonic() < deadline:
        time.sleep(0.05)
    pid = _s3_pid(stack)
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    time.sleep(1.0)
    stop.set()
    for t in threads:
        t.join(60)
    # The supervisor restarts the service; wait until it answers again.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            s3.head_bucket(Bucket=bucket)
            break
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError):
            time.sleep(0.2)
    new_pid = _s3_pid(stack)
    assert new_pid is not None and new_pid != pid
    listed = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        listed += [o["Key"] for o in page.get("Contents", [])]
    for key in listed:                      # nothing torn: every listed object reads back whole
        data = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        digest = hashlib.sha256(data).hexdigest()
        if key == "same":
            assert digest in same_versions
        elif key in acked:
            assert digest == acked[key]
    for key, digest in acked.items():        # nothing acknowledged is lost
        if key != "same":
            assert key in listed
            assert hashlib.sha256(s3.get_object(Bucket=bucket, Key=key)["Body"].read()).hexdigest() == digest
    # No orphan blob is left behind after the restart's garbage collection.
    blobs = [p for p in (stack.data_dir / "s3" / "blobs").rglob("*") if p.is_file()]
    assert len(blobs) == len(listed)
    assert not list((stack.data_dir / "s3" / "tmp").iterdir())


def _pids(stack: Stack, module: bytes) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes().split(b"\0")
            env = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if module in cmd and f"STRONGROOM_DATA_DIR={stack.data_dir}".encode() in env:
            out.append(int(entry.name))
    return out


def _rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


@pytest.mark.slow
def test_1gib_put_and_get_in_bounded_memory(stack: Stack, tmp_path: Path) -> None:
    s3 = stack.client("s3")
    bucket = f"gib-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=bucket)
    size = 1024 * MiB
    path = tmp_path / "gib.bin"
    expected = hashlib.sha256()
    src = _Pattern(size, b"gib")
    with open(path, "wb") as fh:
        while chunk := src.read(16 * MiB):
            expected.update(chunk)
            fh.write(chunk)
    pids = _pids(stack, b"services.s3") + _pids(stack, b"gateway")
    assert len(pids) == 2
    base = {p: _rss(p) for p in pids}
    peak = dict(base)
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            for p in pids:
                peak[p] = max(peak[p], _rss(p))
            time.sleep(0.02)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        with open(path, "rb") as fh:
            s3.put_object(Bucket=bucket, Key="gib", Body=fh, ServerSideEncryption="aws:kms")
        body = s3.get_object(Bucket=bucket, Key="gib")["Body"]
        got = hashlib.sha256()
        while chunk := body.read(4 * MiB):
            got.update(chunk)
    finally:
        done.set()
        sampler.join()
    assert got.hexdigest() == expected.hexdigest()
    growth = {p: peak[p] - base[p] for p in pids}
    print(f"RSS growth during 1 GiB PUT+GET (bytes): {growth}")
    assert all(g < 100 * MiB for g in growth.values()), growth
    s3.delete_object(Bucket=bucket, Key="gib")
    s3.delete_bucket(Bucket=bucket)
