"""The seed lab's task 5 (reference 001, "Monitor KMS activity using CloudTrail logs"):
after an SSE-KMS upload into the trail's bucket, a .json.gz log file appears under
AWSLogs/<account>/CloudTrail/<region>/YYYY/MM/DD/ within the delivery interval, and its
records include the GenerateDataKey call with the key ARN in resources and aws:s3:arn in the
encryption context. Then, as the student does, the file is downloaded with the CLI and the
key id searched for in it."""

from __future__ import annotations

import gzip
import json
import re
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from tests.integration.test_trail_api import trail_bucket
from tests.stackctl import ACCOUNT_ID, REGION, Stack

pytestmark = pytest.mark.timeout(300)


def test_task5_sse_kms_upload_shows_up_in_delivered_logs(stack: Stack, tmp_path: Path) -> None:
    ct, kms, s3 = stack.client("cloudtrail"), stack.client("kms"), stack.client("s3")
    suffix = uuid.uuid4().hex[:8]
    bucket = trail_bucket(stack, f"mycloudtrailbucket{suffix}")
    trail = f"myTrail-{suffix}"
    ct.create_trail(Name=trail, S3BucketName=bucket)
    ct.start_logging(Name=trail)
    key = kms.create_key(Description="myFirstKey")["KeyMetadata"]
    kms.create_alias(AliasName=f"alias/myFirstKey-{suffix}", TargetKeyId=key["KeyId"])
    image = f"Eiffel-{suffix}.jpg"
    uploaded = time.monotonic()
    s3.put_object(
        Bucket=bucket,
        Key=image,
        Body=b"\xff\xd8\xff" + b"jpeg" * 4000,
        ServerSideEncryption="aws:kms",
        SSEKMSKeyId=key["KeyId"],
    )
    interval = float(stack.env["STRONGROOM_TRAIL_DELIVERY_SECONDS"])
    today = datetime.now(timezone.utc)
    prefix = f"AWSLogs/{ACCOUNT_ID}/CloudTrail/{REGION}/{today:%Y/%m/%d}/"
    name_re = re.compile(
        rf"^{re.escape(prefix)}{ACCOUNT_ID}_CloudTrail_{REGION}_\d{{8}}T\d{{4}}Z_[A-Za-z0-9]{{16}}"
        r"\.json\.gz$"
    )

    def find() -> tuple[str, dict[str, Any]] | None:
        for obj in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", []):
            assert name_re.match(obj["Key"]), obj["Key"]
            body = s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
            for record in json.loads(gzip.decompress(body))["Records"]:
                if record["eventName"] == "GenerateDataKey" and any(
                    r.get("ARN") == key["Arn"] for r in record.get("resources", [])
                ):
                    return obj["Key"], record
        return None

    found = None
    deadline = uploaded + 10 * interval + 10
    while found is None and time.monotonic() < deadline:
        found = find()
        if found is None:
            time.sleep(0.25)
    assert found is not None, "no delivered log file holds the GenerateDataKey event"
    elapsed = time.monotonic() - uploaded
    # delivery every `interval` seconds; allow one more tick plus the senders' batching
    assert elapsed <= 2 * interval + 3, f"log file took {elapsed:.1f}s (interval {interval}s)"
    log_key, gdk = found
    assert gdk["eventSource"] == "kms.amazonaws.com" and gdk["eventVersion"]
    assert gdk["recipientAccountId"] == ACCOUNT_ID and gdk["awsRegion"] == REGION
    context = gdk["requestParameters"]["encryptionContext"]
    assert context["aws:s3:arn"] in (f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/{image}")
    assert {"accountId": ACCOUNT_ID, "type": "AWS::KMS::Key", "ARN": key["Arn"]} in gdk["resources"]
    assert "Plaintext" not in json.dumps(gdk) and "plaintext" not in json.dumps(gdk)

    # What the student does: download the .json.gz with the CLI and search it.
    local = tmp_path / "log.json.gz"
    stack.aws("s3", "cp", f"s3://{bucket}/{log_key}", str(local))
    text = gzip.decompress(local.read_bytes()).decode()
    assert key["KeyId"] in text and json.loads(text)["Records"]
    listing = stack.aws("s3", "ls", "--recursive", f"s3://{bucket}/AWSLogs/").stdout
    assert log_key in listing
    ct.delete_trail(Name=trail)
