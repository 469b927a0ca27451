"""The S3 gRPC API as other services use it (the trail delivers log files through it)."""

from __future__ import annotations

import json
import uuid

import grpc
import pytest

from common.caller import caller_metadata, service_caller
from common.grpc_errors import from_rpc_error
from strongroom.s3.v1 import s3_pb2 as pb
from strongroom.s3.v1 import s3_pb2_grpc
from tests.stackctl import ACCOUNT_ID, REGION, Stack

TRAIL_ARN = f"arn:aws:cloudtrail:{REGION}:{ACCOUNT_ID}:trail/myTrail"


def _policy(bucket: str) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": [
        {"Sid": "AWSCloudTrailAclCheck", "Effect": "Allow", "Principal": {"Service": "cloudtrail.amazonaws.com"},
         "Action": "s3:GetBucketAcl", "Resource": f"arn:aws:s3:::{bucket}",
         "Condition": {"StringEquals": {"aws:SourceArn": TRAIL_ARN}}},
        {"Sid": "AWSCloudTrailWrite", "Effect": "Allow", "Principal": {"Service": "cloudtrail.amazonaws.com"},
         "Action": "s3:PutObject", "Resource": f"arn:aws:s3:::{bucket}/AWSLogs/{ACCOUNT_ID}/*",
         "Condition": {"StringEquals": {"s3:x-amz-acl": "bucket-owner-full-control",
                                        "aws:SourceArn": TRAIL_ARN}}}]})


async def test_service_principal_put_object_with_source_arn(stack: Stack) -> None:
    s3 = stack.client("s3")
    bucket = f"trail-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_policy(Bucket=bucket, Policy=_policy(bucket))
    md = caller_metadata(service_caller(ACCOUNT_ID, "cloudtrail.amazonaws.com", REGION))
    key = f"AWSLogs/{ACCOUNT_ID}/CloudTrail/{REGION}/2026/01/01/file.json.gz"
    async with grpc.aio.insecure_channel(f"127.0.0.1:{stack.port_of('s3')}") as channel:
        stub = s3_pb2_grpc.S3Stub(channel)

        async def put(source_arn: str, k: str = key, complete: bool = True) -> pb.PutObjectResponse:
            async def messages():  # type: ignore[no-untyped-def]
                yield pb.PutObjectRequest(bucket=bucket, key=k, acl="bucket-owner-full-control",
                                          content_type="application/x-gzip", source_arn=source_arn,
                                          source_account=ACCOUNT_ID, body_chunk=b"\x1f\x8b part one ")
                yield pb.PutObjectRequest(body_chunk=b"part two", body_complete=complete)
            return await stub.PutObject(messages(), metadata=md)

        acl = await stub.GetBucketAcl(pb.GetBucketAclRequest(bucket=bucket, source_arn=TRAIL_ARN), metadata=md)
        assert acl.owner.id
        resp = await put(TRAIL_ARN)
        assert resp.e_tag and resp.server_side_encryption == "AES256"
        with pytest.raises(grpc.RpcError) as exc:
            await put("arn:aws:cloudtrail:us-east-1:999999999999:trail/other")
        assert from_rpc_error(exc.value).code == "AccessDenied"
        with pytest.raises(grpc.RpcError) as exc:
            await put(TRAIL_ARN, k="elsewhere/file")
        assert from_rpc_error(exc.value).code == "AccessDenied"
        with pytest.raises(grpc.RpcError) as exc:
            await put(TRAIL_ARN, k=key + ".incomplete", complete=False)
        assert from_rpc_error(exc.value).code == "IncompleteBody"
        chunks = [m async for m in stub.GetObject(pb.GetObjectRequest(bucket=bucket, key=key))]
        assert chunks[0].content_length == len(b"\x1f\x8b part one part two")
        assert b"".join(c.body_chunk for c in chunks) == b"\x1f\x8b part one part two"
    got = s3.get_object(Bucket=bucket, Key=key)
    assert got["Body"].read() == b"\x1f\x8b part one part two" and got["ContentType"] == "application/x-gzip"
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket, Prefix=key + ".incomplete")
    s3.delete_object(Bucket=bucket, Key=key)
    s3.delete_bucket(Bucket=bucket)
