"""Clients written in JavaScript, run with the machine's Node.js (tests/e2e/js/).

* ``kms_s3.mjs``: the AWS SDK for JavaScript v3 (``@aws-sdk/client-kms``, ``@aws-sdk/client-s3``
  from the npm registry) through the gateway: KMS round trip, S3 PutObject/GetObject SSE-KMS.
* ``grpc_kms.mjs``: ``@grpc/grpc-js`` + ``@grpc/proto-loader`` straight to the KMS service port,
  from ``protos/`` only, decoding errors from ``grpc-status-details-bin``.

The packages are pinned in tests/e2e/js/package.json and package-lock.json; ``npm ci`` installs
them (done here once if ``node_modules`` is missing). Skipped only when ``node`` is absent.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import google.rpc
import pytest

from tests.e2e.labkit import suffix
from tests.stackctl import ACCOUNT_ID, REGION, Stack

JS_DIR = Path(__file__).resolve().parent / "js"
REPO = JS_DIR.parents[2]
NODE = shutil.which("node")

pytestmark = pytest.mark.skipif(NODE is None, reason="Node.js (`node`) is not installed on this machine")


@pytest.fixture(scope="module")
def node_modules() -> Path:
    modules = JS_DIR / "node_modules"
    if not (modules / "@aws-sdk" / "client-kms").is_dir():
        npm = shutil.which("npm")
        assert npm, "node is installed but npm is not: cannot install tests/e2e/js's packages"
        subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=JS_DIR,
                       check=True, timeout=300)
    return modules


def run_node(script: str, env: dict[str, str]) -> dict[str, Any]:
    assert NODE is not None
    base = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    result = subprocess.run([NODE, script], cwd=JS_DIR, env={**base, **env}, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, f"{script} failed:\n{result.stderr[-3000:]}\n{result.stdout[-1000:]}"
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    assert lines, f"{script} printed nothing"
    return json.loads(lines[-1])


def test_aws_sdk_js_v3_kms_and_s3_sse_kms(stack: Stack, node_modules: Path) -> None:
    bucket = f"js-sdk-e2e-{suffix()}"
    summary = run_node("kms_s3.mjs", {
        "STRONGROOM_ENDPOINT": stack.endpoint,
        "AWS_ACCESS_KEY_ID": stack.access_key_id,
        "AWS_SECRET_ACCESS_KEY": stack.secret_access_key,
        "AWS_REGION": REGION,
        "E2E_BUCKET": bucket,
    })
    assert summary["kms_round_trip"] is True
    assert summary["wrong_context_error"] == "InvalidCiphertextException"
    assert summary["data_key"] is True
    assert summary["key_arn"].startswith(f"arn:aws:kms:{REGION}:{ACCOUNT_ID}:key/")
    assert summary["s3_sse_kms"]["key"] == summary["key_arn"]
    assert summary["s3_sse_kms"]["bytes"] == 256 * 1024 + 3
    # The script cleaned up after itself.
    assert bucket not in [b["Name"] for b in stack.client("s3").list_buckets()["Buckets"]]
    key = stack.client("kms").describe_key(KeyId=summary["key_arn"])["KeyMetadata"]
    assert key["KeyState"] == "PendingDeletion"


def test_grpc_js_calls_the_kms_service_from_the_protos(stack: Stack, node_modules: Path) -> None:
    googleapis = Path(google.rpc.__path__[0]).parent.parent  # holds google/rpc/*.proto
    assert (googleapis / "google" / "rpc" / "status.proto").is_file(), googleapis
    summary = run_node("grpc_kms.mjs", {
        "STRONGROOM_KMS_TARGET": f"127.0.0.1:{stack.port_of('kms')}",
        "STRONGROOM_PROTOS": str(REPO / "protos"),
        "GOOGLEAPIS_PROTOS": str(googleapis),
    })
    assert summary["round_trip"] is True
    assert summary["key_arn"].startswith(f"arn:aws:kms:{REGION}:{ACCOUNT_ID}:key/")

    def expect(got: dict[str, Any], grpc_code: str, aws_code: str, reason: str) -> None:
        assert got["grpc_code"] == grpc_code, got
        assert got["domain"] == "strongroom.dev", got
        assert got["reason"] == reason, got
        assert got["metadata"] == {"aws_code": aws_code, "http_status": "400"}, got

    expect(summary["wrong_context"], "INVALID_ARGUMENT", "InvalidCiphertextException",
           "INVALID_CIPHERTEXT_EXCEPTION")
    assert summary["wrong_context"]["message"] == ""  # one uninformative decryption error
    expect(summary["not_found"], "NOT_FOUND", "NotFoundException", "NOT_FOUND_EXCEPTION")
    assert summary["not_found"]["message"] == (
        f"Key 'arn:aws:kms:{REGION}:{ACCOUNT_ID}:key/11111111-2222-3333-4444-555555555555' "
        "does not exist")
    expect(summary["validation"], "INVALID_ARGUMENT", "ValidationException",
           "VALIDATION_EXCEPTION")
    assert summary["validation"]["message"].startswith("1 validation error detected: ")
