"""A gateway in-process (aiohttp TestServer on a real 127.0.0.1 port) in front of small fake
gRPC backends: a KMS fake that keeps keys in a dict and records the caller metadata of every
call, and health-only servers for S3 and the trail. boto3 clients talk to it for real.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import grpc
import pytest
from aiohttp.test_utils import TestServer
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from strongroom.common.v1 import caller_pb2
from strongroom.kms.v1 import kms_pb2, kms_pb2_grpc

from common.audit import MemorySink
from common.caller import CALLER_METADATA_KEY
from common.config import Settings
from common.errors import error_class
from common.grpc_server import ErrorInterceptor
from gateway.app import make_app

ACCOUNT = "111122223333"
REGION = "us-east-1"
ROOT_AKID = "AKIAROOTROOTROOTROOT"
ROOT_SECRET = "root/secret+key"

NotFoundException = error_class("NotFoundException", 400)
DisabledException = error_class("DisabledException", 400)


class FakeKms(kms_pb2_grpc.KeyManagementServiceServicer):
    """Just enough KMS to exercise the gateway's generic mapping (not a KMS)."""

    def __init__(self) -> None:
        self.keys: dict[str, kms_pb2.KeyMetadata] = {}
        self.callers: list[caller_pb2.Caller] = []
        self.requests: list[Any] = []

    def _caller(self, context: grpc.aio.ServicerContext) -> None:
        for key, value in context.invocation_metadata() or ():
            if key == CALLER_METADATA_KEY:
                c = caller_pb2.Caller()
                c.ParseFromString(value)
                self.callers.append(c)

    def _key(self, key_id: str) -> kms_pb2.KeyMetadata:
        k = self.keys.get(key_id.rsplit("/", 1)[-1])
        if k is None:
            raise NotFoundException(f"Key '{key_id}' does not exist")
        return k

    async def CreateKey(self, request: Any, context: Any) -> Any:
        self._caller(context)
        self.requests.append(request)
        key_id = str(uuid.uuid4())
        md = kms_pb2.KeyMetadata(
            aws_account_id=ACCOUNT, key_id=key_id,
            arn=f"arn:aws:kms:{REGION}:{ACCOUNT}:key/{key_id}",
            enabled=True, description=request.description, key_usage="ENCRYPT_DECRYPT",
            key_state="Enabled", origin="AWS_KMS", key_manager="CUSTOMER",
            key_spec=request.key_spec or "SYMMETRIC_DEFAULT",
            customer_master_key_spec=request.key_spec or "SYMMETRIC_DEFAULT",
            encryption_algorithms=["SYMMETRIC_DEFAULT"], multi_region=False)
        md.creation_date.FromDatetime(datetime(2024, 5, 1, 12, 0, 0, 250000, tzinfo=timezone.utc))
        self.keys[key_id] = md
        return kms_pb2.CreateKeyResponse(key_metadata=md)

    async def DescribeKey(self, request: Any, context: Any) -> Any:
        self._caller(context)
        return kms_pb2.DescribeKeyResponse(key_metadata=self._key(request.key_id))

    async def ListKeys(self, request: Any, context: Any) -> Any:
        self._caller(context)
        entries = [kms_pb2.KeyListEntry(key_id=k.key_id, key_arn=k.arn) for k in self.keys.values()]
        return kms_pb2.ListKeysResponse(keys=entries, truncated=False)

    async def Encrypt(self, request: Any, context: Any) -> Any:
        self._caller(context)
        self.requests.append(request)
        md = self._key(request.key_id)
        if not md.enabled:
            raise DisabledException(f"{md.arn} is disabled.")
        context_bytes = repr(sorted(request.encryption_context.items())).encode()
        return kms_pb2.EncryptResponse(ciphertext_blob=b"CT" + context_bytes + request.plaintext[::-1],
                                       key_id=md.arn, encryption_algorithm="SYMMETRIC_DEFAULT")

    async def DisableKey(self, request: Any, context: Any) -> Any:
        self._caller(context)
        self._key(request.key_id).enabled = False
        return kms_pb2.DisableKeyResponse()

    async def GenerateRandom(self, request: Any, context: Any) -> Any:
        self._caller(context)
        raise RuntimeError("boom: an unexpected failure inside the service")


async def _grpc_server(register: Any = None) -> tuple[grpc.aio.Server, int]:
    server = grpc.aio.server(interceptors=[ErrorInterceptor()])
    hs = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(hs, server)
    if register is not None:
        register(server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    await hs.set("", health_pb2.HealthCheckResponse.SERVING)
    return server, port


@dataclass
class GatewayHarness:
    server: TestServer
    settings: Settings
    kms: FakeKms
    audit: MemorySink
    grpc_servers: list[grpc.aio.Server] = field(default_factory=list)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server.port}"

    def client(self, service: str, akid: str = ROOT_AKID, secret: str = ROOT_SECRET,
               token: str | None = None, **kwargs: Any) -> Any:
        import boto3
        from botocore.config import Config

        session = boto3.session.Session(aws_access_key_id=akid, aws_secret_access_key=secret,
                                        aws_session_token=token, region_name=REGION)
        return session.client(service, endpoint_url=self.endpoint,
                              config=kwargs.pop("config", Config(retries={"max_attempts": 1})),
                              **kwargs)

    async def call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        return await asyncio.to_thread(fn, *args, **kwargs)


@pytest.fixture
async def gw(tmp_path: Path) -> AsyncIterator[GatewayHarness]:
    kms = FakeKms()
    kms_server, kms_port = await _grpc_server(
        lambda s: kms_pb2_grpc.add_KeyManagementServiceServicer_to_server(kms, s))
    s3_server, s3_port = await _grpc_server()
    trail_server, trail_port = await _grpc_server()
    settings = Settings(data_dir=tmp_path, account_id=ACCOUNT, region=REGION,
                        root_access_key_id=ROOT_AKID, root_secret_access_key=ROOT_SECRET,
                        kms_port=kms_port, s3_port=s3_port, trail_port=trail_port)
    audit = MemorySink()
    app = make_app(settings, (ROOT_AKID, ROOT_SECRET), audit=audit)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    harness = GatewayHarness(server, settings, kms, audit, [kms_server, s3_server, trail_server])
    try:
        yield harness
    finally:
        await server.close()
        for s in harness.grpc_servers:
            await s.stop(None)
