"""boto3 -> gateway (in-process) -> fake KMS over gRPC: the JSON 1.1 path end to end."""

from __future__ import annotations

import base64
from typing import Any
import json
import urllib.request

import botocore.exceptions
import pytest

from tests.unit.gateway.conftest import ACCOUNT, ROOT_AKID, GatewayHarness


async def test_create_describe_encrypt_round_trip(gw: GatewayHarness) -> None:
    kms = gw.client("kms")
    created = await gw.call(kms.create_key, Description="d1", Tags=[{"TagKey": "a", "TagValue": "b"}])
    md = created["KeyMetadata"]
    assert md["Description"] == "d1"
    assert md["Enabled"] is True
    assert md["MultiRegion"] is False            # optional bool: written even when false
    assert md["EncryptionAlgorithms"] == ["SYMMETRIC_DEFAULT"]
    assert "SigningAlgorithms" not in md         # empty nested list: absent, as AWS
    assert "DeletionDate" not in md              # unset message: absent
    assert md["CreationDate"].timestamp() == pytest.approx(1714564800.25)
    # the request reached the service typed: nested list of structures
    assert [(t.tag_key, t.tag_value) for t in gw.kms.requests[0].tags] == [("a", "b")]

    out = await gw.call(kms.encrypt, KeyId=md["KeyId"], Plaintext=b"hello",
                        EncryptionContext={"purpose": "test"})
    assert out["KeyId"] == md["Arn"]
    assert out["CiphertextBlob"].startswith(b"CT") and out["CiphertextBlob"].endswith(b"olleh")
    assert b"purpose" in out["CiphertextBlob"]
    assert out["EncryptionAlgorithm"] == "SYMMETRIC_DEFAULT"

    keys = await gw.call(kms.list_keys)
    assert keys["Keys"] == [{"KeyId": md["KeyId"], "KeyArn": md["Arn"]}]
    assert keys["Truncated"] is False


async def test_empty_top_level_list_is_written(gw: GatewayHarness) -> None:
    keys = await gw.call(gw.client("kms").list_keys)
    assert keys["Keys"] == []


async def test_caller_reaches_the_service(gw: GatewayHarness) -> None:
    kms = gw.client("kms")
    await gw.call(kms.list_keys)
    caller = gw.kms.callers[-1]
    assert caller.principal_type == "Root"
    assert caller.principal_arn == f"arn:aws:iam::{ACCOUNT}:root"
    assert caller.account_id == ACCOUNT
    assert caller.access_key_id == ROOT_AKID
    assert caller.signature_version == "SigV4"
    assert caller.auth_method == "AuthHeader"
    assert caller.source_ip == "127.0.0.1"
    assert "Botocore" in caller.user_agent or "Boto3" in caller.user_agent
    assert caller.region == "us-east-1"
    assert len(caller.request_id) == 36


async def test_request_id_header_matches_caller(gw: GatewayHarness) -> None:
    out = await gw.call(gw.client("kms").list_keys)
    assert out["ResponseMetadata"]["RequestId"] == gw.kms.callers[-1].request_id


async def test_service_error_keeps_code_message_and_status(gw: GatewayHarness) -> None:
    kms = gw.client("kms")
    with pytest.raises(kms.exceptions.NotFoundException) as info:
        await gw.call(kms.describe_key, KeyId="1234abcd-12ab-34cd-56ef-1234567890ab")
    err = info.value.response
    assert err["Error"]["Message"] == "Key '1234abcd-12ab-34cd-56ef-1234567890ab' does not exist"
    assert err["ResponseMetadata"]["HTTPStatusCode"] == 400


async def test_unexpected_service_failure_is_internal_failure_without_details(gw: GatewayHarness) -> None:
    kms = gw.client("kms")
    with pytest.raises(botocore.exceptions.ClientError) as info:
        await gw.call(kms.generate_random, NumberOfBytes=16)
    err = info.value.response
    assert err["ResponseMetadata"]["HTTPStatusCode"] == 500
    assert "boom" not in err["Error"]["Message"]


async def test_validation_happens_before_the_rpc(gw: GatewayHarness) -> None:
    kms = gw.client("kms")
    with pytest.raises(botocore.exceptions.ClientError) as info:
        await gw.call(kms.encrypt, KeyId="k", Plaintext=b"x" * 4097)
    err = info.value.response["Error"]
    assert err["Code"] == "ValidationException"
    assert err["Message"] == ("1 validation error detected: Value at 'plaintext' failed to satisfy "
                              "constraint: Member must have length less than or equal to 4096")
    assert gw.kms.requests == []


async def test_rpc_the_backend_does_not_serve_is_unsupported(gw: GatewayHarness) -> None:
    # The fake trail server registers no CloudTrail servicer: gRPC answers UNIMPLEMENTED
    # without an ErrorInfo, which must become AWS's 400, not a 500.
    trail = gw.client("cloudtrail")
    with pytest.raises(botocore.exceptions.ClientError) as info:
        await gw.call(trail.describe_trails)
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert info.value.response["Error"] == {
        "Code": "UnsupportedOperationException",
        "Message": "DescribeTrails is not supported by this endpoint."}


def _raw(gw: GatewayHarness, target: str | None, body: bytes, sign: bool = True) -> tuple[int, dict]:
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    headers = {"Content-Type": "application/x-amz-json-1.1"}
    if target:
        headers["X-Amz-Target"] = target
    req = AWSRequest(method="POST", url=gw.endpoint + "/", data=body, headers=headers)
    if sign:
        SigV4Auth(Credentials(ROOT_AKID, "root/secret+key"), "kms", "us-east-1").add_auth(req)
    prepared = req.prepare()
    r = urllib.request.Request(prepared.url, data=body, headers=dict(prepared.headers), method="POST")
    try:
        with urllib.request.urlopen(r) as resp:
            return resp.status, json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as e:
        assert e.headers["x-amzn-RequestId"]
        return e.code, json.loads(e.read())


async def test_unknown_operation(gw: GatewayHarness) -> None:
    status, body = await gw.call(_raw, gw, "TrentService.FlyToTheMoon", b"{}")
    assert status == 400
    assert body["__type"] == "UnknownOperationException"


async def test_malformed_json_is_serialization_exception(gw: GatewayHarness) -> None:
    status, body = await gw.call(_raw, gw, "TrentService.ListKeys", b"{not json")
    assert (status, body["__type"]) == (400, "SerializationException")
    status, body = await gw.call(_raw, gw, "TrentService.ListKeys", b"[1, 2]")
    assert (status, body["__type"]) == (400, "SerializationException")
    status, body = await gw.call(_raw, gw, "TrentService.ListKeys", b'{"Limit": "ten"}')
    assert (status, body) == (400, {"__type": "SerializationException",
                                    "message": "STRING_VALUE can not be converted to an Integer"})
    status, body = await gw.call(_raw, gw, "TrentService.Encrypt",
                                 b'{"KeyId": "k", "Plaintext": "***not base64***"}')
    assert (status, body["__type"]) == (400, "SerializationException")


async def test_integer_out_of_range_is_serialization_exception(gw: GatewayHarness) -> None:
    status, body = await gw.call(_raw, gw, "TrentService.ListKeys", b'{"Limit": 99999999999}')
    assert (status, body["__type"]) == (400, "SerializationException")


async def test_anonymous_json_request_is_refused(gw: GatewayHarness) -> None:
    status, body = await gw.call(_raw, gw, "TrentService.ListKeys", b"{}", False)
    assert status == 403
    assert body["__type"] == "MissingAuthenticationTokenException"


async def test_wrong_secret(gw: GatewayHarness) -> None:
    kms = gw.client("kms", secret="not-the-secret")
    with pytest.raises(botocore.exceptions.ClientError) as info:
        await gw.call(kms.list_keys)
    assert info.value.response["Error"]["Code"] == "InvalidSignatureException"
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


async def test_unknown_access_key(gw: GatewayHarness) -> None:
    kms = gw.client("kms", akid="AKIAUNKNOWNUNKNOWN00")
    with pytest.raises(botocore.exceptions.ClientError) as info:
        await gw.call(kms.list_keys)
    assert info.value.response["Error"]["Code"] == "UnrecognizedClientException"


async def test_plaintext_never_in_error_or_log(gw: GatewayHarness, capsys: pytest.CaptureFixture[str]) -> None:
    kms = gw.client("kms")
    secret = b"TOP-SECRET-PLAINTEXT"
    with pytest.raises(botocore.exceptions.ClientError) as info:
        await gw.call(kms.encrypt, KeyId="nope", Plaintext=secret)
    assert b"TOP-SECRET" not in json.dumps(info.value.response, default=str).encode()
    assert base64.b64encode(secret).decode() not in json.dumps(info.value.response, default=str)
    captured = capsys.readouterr()
    assert "TOP-SECRET" not in captured.out + captured.err


async def test_health(gw: GatewayHarness) -> None:
    def get() -> tuple[int, dict]:
        with urllib.request.urlopen(gw.endpoint + "/_strongroom/health") as r:
            return r.status, json.loads(r.read())
    status, body = await gw.call(get)
    assert status == 200
    assert body == {"status": "ok", "services": {"kms": "SERVING", "s3": "SERVING",
                                                 "trail": "SERVING", "gateway": "SERVING"}}


async def test_health_503_when_a_backend_is_down(gw: GatewayHarness) -> None:
    await gw.grpc_servers[2].stop(None)   # the trail

    def get() -> tuple[int, dict]:
        try:
            with urllib.request.urlopen(gw.endpoint + "/_strongroom/health") as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read())
    status, body = await gw.call(get)
    assert status == 503
    assert body["services"]["trail"] != "SERVING"
    assert body["services"]["kms"] == "SERVING"


async def test_s3_auth_errors_are_s3_xml(gw: GatewayHarness) -> None:
    s3 = gw.client("s3", secret="wrong")
    with pytest.raises(botocore.exceptions.ClientError) as info:
        await gw.call(s3.list_buckets)
    r = info.value.response
    assert (r["Error"]["Code"], r["ResponseMetadata"]["HTTPStatusCode"]) == ("SignatureDoesNotMatch", 403)
    assert r["ResponseMetadata"]["HTTPHeaders"]["x-amz-request-id"]


async def test_s3_skewed_clock(gw: GatewayHarness) -> None:
    import datetime
    from unittest import mock

    then = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=20)

    def fake_now(remove_tzinfo: bool = True) -> datetime.datetime:
        return then.replace(tzinfo=None) if remove_tzinfo else then

    s3 = gw.client("s3")

    def call() -> Any:
        with mock.patch("botocore.auth.get_current_datetime", fake_now):
            try:
                import botocore.crt.auth  # noqa: F401
                patcher: Any = mock.patch("botocore.crt.auth.get_current_datetime", fake_now)
            except ImportError:
                patcher = mock.MagicMock()
            with patcher:
                return s3.list_buckets()
    with pytest.raises(botocore.exceptions.ClientError) as info:
        await gw.call(call)
    r = info.value.response
    assert (r["Error"]["Code"], r["ResponseMetadata"]["HTTPStatusCode"]) == ("RequestTimeTooSkewed", 403)


async def test_oversized_body_is_an_aws_error(gw: GatewayHarness) -> None:
    from gateway.app import CLIENT_MAX_SIZE

    status, body = await gw.call(_raw, gw, "TrentService.Encrypt", b" " * (CLIENT_MAX_SIZE + 1), False)
    assert status == 413
    assert body["__type"] == "RequestEntityTooLarge"


async def test_s3_without_backend_module_is_not_implemented(gw: GatewayHarness) -> None:
    from gateway.app import GATEWAY

    gw.server.app[GATEWAY].s3_handle = None
    s3 = gw.client("s3")
    with pytest.raises(botocore.exceptions.ClientError) as info:
        await gw.call(s3.list_buckets)
    r = info.value.response
    assert (r["Error"]["Code"], r["ResponseMetadata"]["HTTPStatusCode"]) == ("NotImplemented", 501)


async def test_anonymous_s3_request_reaches_the_backend_as_anonymous(gw: GatewayHarness) -> None:
    from gateway.app import GATEWAY
    from aiohttp import web

    seen = {}

    async def handle(request: Any, ctx: Any) -> Any:
        seen["ctx"] = ctx
        return web.Response(status=204, headers={"x-amz-request-id": ctx.request_id})

    gw.server.app[GATEWAY].s3_handle = handle

    def get() -> int:
        with urllib.request.urlopen(urllib.request.Request(gw.endpoint + "/bucket/key", method="GET")) as r:
            return r.status
    assert await gw.call(get) == 204
    ctx = seen["ctx"]
    assert ctx.anonymous and ctx.auth.anonymous
    assert ctx.caller.principal_type == "Anonymous"
    assert ctx.service == "s3" and ctx.bucket is None
    assert ctx.metadata[0][0] == "strongroom-caller-bin"
