"""ObjectStore over the S3 service's gRPC API (strongroom.s3.v1).

Deliveries run as the CloudTrail service principal (``cloudtrail.amazonaws.com``) with
``source_arn`` / ``source_account`` = the trail, so the bucket policy decides, and with
``x-amz-acl: bucket-owner-full-control`` as AWS CloudTrail writes. Reads that only the
bucket owner may do (GetBucketPolicy for the CreateTrail check, the validator's listing and
downloads) run as the account root, invoked by cloudtrail.amazonaws.com.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from datetime import timezone
from typing import Any

import grpc

from common.caller import caller_metadata, root_caller, service_caller
from common.errors import AwsError
from common.grpc_errors import from_rpc_error
from services.trail.ports import ListedObject, PutRequest, StoredObject, Unavailable

CLOUDTRAIL = "cloudtrail.amazonaws.com"
CHUNK = 1024 * 1024
_TRANSPORT = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.CANCELLED)


def _translate(exc: grpc.aio.AioRpcError) -> Exception:
    if exc.code() in _TRANSPORT:
        return Unavailable(f"s3: {exc.code().name}")
    return from_rpc_error(exc)


class S3GrpcObjectStore:
    def __init__(
        self, channel: grpc.aio.Channel, *, account_id: str, region: str, timeout: float = 30.0
    ) -> None:
        from strongroom.s3.v1 import s3_pb2, s3_pb2_grpc

        self._pb = s3_pb2
        self._stub = s3_pb2_grpc.S3Stub(channel)
        self._timeout = timeout
        owner = root_caller(account_id, region)
        owner.invoked_by = CLOUDTRAIL
        self._owner_md = caller_metadata(owner)
        self._service_md = caller_metadata(service_caller(account_id, CLOUDTRAIL, region))

    async def get_bucket_policy(self, bucket: str) -> str | None:
        try:
            resp = await self._stub.GetBucketPolicy(
                self._pb.GetBucketPolicyRequest(bucket=bucket), metadata=self._owner_md, timeout=self._timeout
            )
        except grpc.aio.AioRpcError as exc:
            err = _translate(exc)
            if isinstance(err, AwsError) and err.code == "NoSuchBucketPolicy":
                return None
            raise err from None
        return resp.policy if resp.HasField("policy") else None

    async def check_bucket_acl_access(self, bucket: str, *, source_arn: str, source_account: str) -> None:
        try:
            await self._stub.GetBucketAcl(
                self._pb.GetBucketAclRequest(
                    bucket=bucket, source_arn=source_arn, source_account=source_account
                ),
                metadata=self._service_md,
                timeout=self._timeout,
            )
        except grpc.aio.AioRpcError as exc:
            raise _translate(exc) from None

    async def put_object(self, request: PutRequest) -> None:
        pb = self._pb
        header: dict[str, Any] = {
            "bucket": request.bucket,
            "key": request.key,
            "acl": "bucket-owner-full-control",
            "content_type": request.content_type,
            "content_length": len(request.body),
            "source_arn": request.source_arn,
            "source_account": request.source_account,
        }
        if request.content_encoding:
            header["content_encoding"] = request.content_encoding
        if request.kms_key_id:
            header["server_side_encryption"] = "aws:kms"
            header["ssekms_key_id"] = request.kms_key_id
            if request.encryption_context:
                header["ssekms_encryption_context"] = base64.b64encode(
                    json.dumps(dict(request.encryption_context), separators=(",", ":")).encode()
                ).decode()
        first = pb.PutObjectRequest(**header)
        if request.metadata:
            first.metadata.update(dict(request.metadata))
        body = request.body

        async def messages() -> AsyncIterator[Any]:
            if len(body) <= CHUNK:
                first.body_chunk = body
                first.body_complete = True
                yield first
                return
            first.body_chunk = body[:CHUNK]
            yield first
            for i in range(CHUNK, len(body), CHUNK):
                chunk = body[i : i + CHUNK]
                yield pb.PutObjectRequest(body_chunk=chunk, body_complete=i + CHUNK >= len(body))

        try:
            await self._stub.PutObject(messages(), metadata=self._service_md, timeout=self._timeout)
        except grpc.aio.AioRpcError as exc:
            raise _translate(exc) from None

    async def get_object(self, bucket: str, key: str) -> StoredObject:
        parts: list[bytes] = []
        metadata: dict[str, str] = {}
        first = True
        try:
            call = self._stub.GetObject(
                self._pb.GetObjectRequest(bucket=bucket, key=key),
                metadata=self._owner_md,
                timeout=self._timeout,
            )
            async for msg in call:
                if first:
                    metadata = dict(msg.metadata)
                    if msg.HasField("body"):
                        parts.append(msg.body)
                    first = False
                if msg.body_chunk:
                    parts.append(msg.body_chunk)
        except grpc.aio.AioRpcError as exc:
            raise _translate(exc) from None
        return StoredObject(body=b"".join(parts), metadata=metadata)

    async def list_keys(self, bucket: str, prefix: str) -> list[ListedObject]:
        out: list[ListedObject] = []
        token: str | None = None
        while True:
            req = self._pb.ListObjectsV2Request(bucket=bucket, prefix=prefix, max_keys=1000)
            if token:
                req.continuation_token = token
            try:
                resp = await self._stub.ListObjectsV2(req, metadata=self._owner_md, timeout=self._timeout)
            except grpc.aio.AioRpcError as exc:
                raise _translate(exc) from None
            out.extend(
                ListedObject(
                    key=o.key,
                    size=o.size,
                    last_modified=o.last_modified.ToDatetime(tzinfo=timezone.utc)
                    if o.HasField("last_modified")
                    else None,
                )
                for o in resp.contents
            )
            if not resp.is_truncated or not resp.next_continuation_token:
                return out
            token = resp.next_continuation_token
