"""Test helpers (used by tests only): a throw-away SoftHSM2 token and an in-process server."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

from common.audit import MemorySink
from common.grpc_server import make_server
from services.kms.api import register
from services.kms.hsm.pkcs11 import Pkcs11Hsm
from services.kms.service import KmsService
from services.kms.store.sqlite import SqliteStore

SOFTHSM_MODULE = "/usr/lib/softhsm/libsofthsm2.so"


@dataclass
class Token:
    directory: Path
    conf: Path
    label: str
    pin: str


@contextlib.contextmanager
def softhsm_token(label: str = "kms-test") -> Iterator[Token]:
    """A fresh SoftHSM2 token in a temporary directory; SOFTHSM2_CONF points at it meanwhile."""
    directory = Path(tempfile.mkdtemp(prefix="strongroom-hsm-"))
    tokens = directory / "tokens"
    tokens.mkdir()
    conf = directory / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {tokens}\nobjectstore.backend = file\nlog.level = ERROR\n")
    pin = secrets.token_hex(8)
    previous = os.environ.get("SOFTHSM2_CONF")
    os.environ["SOFTHSM2_CONF"] = str(conf)
    try:
        subprocess.run(["softhsm2-util", "--init-token", "--free", "--label", label, "--pin", pin,
                        "--so-pin", secrets.token_hex(8)], check=True, capture_output=True, timeout=60)
        yield Token(directory, conf, label, pin)
    finally:
        if previous is None:
            os.environ.pop("SOFTHSM2_CONF", None)
        else:
            os.environ["SOFTHSM2_CONF"] = previous
        shutil.rmtree(directory, ignore_errors=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Served:
    target: str
    service: KmsService
    sink: MemorySink
    hsm: Pkcs11Hsm


@contextlib.asynccontextmanager
async def serve(token: Token, db_path: Path, account: str, region: str) -> AsyncIterator[Served]:
    """The KMS servicer on a free port of this process, over a real token."""
    hsm = Pkcs11Hsm(SOFTHSM_MODULE, token.label, token.pin)
    hsm.open()
    store = SqliteStore(db_path)
    await store.open()
    sink = MemorySink()
    service = KmsService(store=store, hsm=hsm, sink=sink, account=account, region=region)
    await service.load()
    server = make_server()
    register(server, service, account, region)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield Served(f"127.0.0.1:{port}", service, sink, hsm)
    finally:
        await server.stop(1)
        await store.close()
        await hsm.close()
