"""The gateway in the real stack: health, CLI, routing errors, clock skew, no 500s."""

from __future__ import annotations

import contextlib
import datetime
import json
import urllib.request
from collections.abc import Iterator
from unittest import mock

import botocore.exceptions
import pytest

from tests.stackctl import ACCOUNT_ID, Stack


def test_health_names_every_service(stack: Stack) -> None:
    status, body = stack.health()
    assert status == 200
    assert body == {"status": "ok", "services": {"kms": "SERVING", "s3": "SERVING",
                                                 "trail": "SERVING", "gateway": "SERVING"}}


def test_cli_get_caller_identity_prints_root_arn(stack: Stack) -> None:
    out = stack.aws_json("sts", "get-caller-identity")
    assert out["Arn"] == f"arn:aws:iam::{ACCOUNT_ID}:root"
    assert out["Account"] == ACCOUNT_ID


def test_unknown_operation(stack: Stack) -> None:
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    req = AWSRequest(method="POST", url=stack.endpoint + "/", data=b"{}",
                     headers={"Content-Type": "application/x-amz-json-1.1",
                              "X-Amz-Target": "TrentService.MakeCoffee"})
    SigV4Auth(Credentials(stack.access_key_id, stack.secret_access_key), "kms", "us-east-1").add_auth(req)
    p = req.prepare()
    r = urllib.request.Request(p.url, data=b"{}", headers=dict(p.headers), method="POST")
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(r)
    assert info.value.code == 400
    assert json.loads(info.value.read())["__type"] == "UnknownOperationException"
    assert info.value.headers["x-amzn-RequestId"]


def test_unknown_query_action(stack: Stack) -> None:
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    body = "Action=MakeCoffee&Version=2010-05-08"
    req = AWSRequest(method="POST", url=stack.endpoint + "/", data=body,
                     headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"})
    SigV4Auth(Credentials(stack.access_key_id, stack.secret_access_key), "iam", "us-east-1").add_auth(req)
    p = req.prepare()
    r = urllib.request.Request(p.url, data=body.encode(), headers=dict(p.headers), method="POST")
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(r)
    assert info.value.code == 400
    text = info.value.read().decode()
    assert "<Code>InvalidAction</Code>" in text
    assert "<Message>Could not find operation MakeCoffee for version 2010-05-08</Message>" in text


@contextlib.contextmanager
def _skewed(minutes: int) -> Iterator[None]:
    """Sign requests with a clock ``minutes`` behind (botocore's and, if present, CRT's signer)."""
    then = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=minutes)

    def fake_now(remove_tzinfo: bool = True) -> datetime.datetime:
        return then.replace(tzinfo=None) if remove_tzinfo else then

    with contextlib.ExitStack() as stack:
        stack.enter_context(mock.patch("botocore.auth.get_current_datetime", fake_now))
        try:
            import botocore.crt.auth  # noqa: F401 - only when awscrt is installed
        except ImportError:
            pass
        else:
            stack.enter_context(mock.patch("botocore.crt.auth.get_current_datetime", fake_now))
        yield


def test_request_dated_20_minutes_ago_s3(stack: Stack) -> None:
    s3 = stack.client("s3")
    with _skewed(20), pytest.raises(botocore.exceptions.ClientError) as info:
        s3.list_buckets()
    assert info.value.response["Error"]["Code"] == "RequestTimeTooSkewed"
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_request_dated_20_minutes_ago_kms_and_sts(stack: Stack) -> None:
    # AWS's JSON and Query services name the same failure differently.
    kms = stack.client("kms")
    with _skewed(20), pytest.raises(botocore.exceptions.ClientError) as info:
        kms.list_keys()
    assert info.value.response["Error"]["Code"] == "InvalidSignatureException"
    assert "Signature expired" in info.value.response["Error"]["Message"]
    sts = stack.client("sts")
    with _skewed(20), pytest.raises(botocore.exceptions.ClientError) as info:
        sts.get_caller_identity()
    assert info.value.response["Error"]["Code"] == "SignatureDoesNotMatch"
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_request_within_skew_is_accepted(stack: Stack) -> None:
    with _skewed(10):
        assert stack.client("sts").get_caller_identity()["Account"] == ACCOUNT_ID


def test_wrong_secret_each_protocol(stack: Stack) -> None:
    for service, call, code, status in (
        ("sts", "get_caller_identity", "SignatureDoesNotMatch", 403),
        ("kms", "list_keys", "InvalidSignatureException", 400),
        ("s3", "list_buckets", "SignatureDoesNotMatch", 403),
    ):
        client = stack.client(service, aws_secret_access_key="wrong-secret")
        with pytest.raises(botocore.exceptions.ClientError) as info:
            getattr(client, call)()
        err = info.value.response
        assert (err["Error"]["Code"], err["ResponseMetadata"]["HTTPStatusCode"]) == (code, status), service


def test_kms_through_the_gateway(stack: Stack) -> None:
    kms = stack.client("kms")
    key = kms.create_key(Description="gateway integration")["KeyMetadata"]
    ct = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"hello", EncryptionContext={"a": "b"})
    pt = kms.decrypt(CiphertextBlob=ct["CiphertextBlob"], EncryptionContext={"a": "b"})
    assert pt["Plaintext"] == b"hello"
    with pytest.raises(botocore.exceptions.ClientError) as info:
        kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x" * 4097)
    assert info.value.response["Error"]["Message"] == (
        "1 validation error detected: Value at 'plaintext' failed to satisfy constraint: Member "
        "must have length less than or equal to 4096")
