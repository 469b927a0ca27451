"""gRPC servicer of strongroom.s3.v1.S3: messages <-> S3Service, and one CloudTrail record
per call (S3 data events for object operations, management events for bucket operations,
as https://docs.aws.amazon.com/AmazonS3/latest/userguide/cloudtrail-logging-s3-info.html).

Streaming RPCs follow the contract in protos/strongroom/s3/v1/s3.proto: PutObject /
UploadPart read a header message then body chunks and store nothing unless the last
message set ``body_complete``; GetObject sends the response members first, then chunks.
"""

from __future__ import annotations

import base64
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc

from common.audit import AuditSink, build_event
from common.caller import caller_from_metadata
from common.config import Settings
from common.errors import AwsError
from common.logging import get_logger
from services.s3.domain import errors as e
from services.s3.domain import names
from services.s3.service import S3Service, Upload
from strongroom.common.v1 import caller_pb2
from strongroom.s3.v1 import s3_pb2 as pb
from strongroom.s3.v1 import s3_pb2_grpc

log = get_logger(__name__)

#: Operations CloudTrail records as S3 data events (object-level); the rest are management.
DATA_EVENTS = frozenset({
    "PutObject", "GetObject", "HeadObject", "DeleteObject", "DeleteObjects", "CopyObject",
    "PutObjectAcl", "GetObjectAcl", "PutObjectTagging", "GetObjectTagging", "DeleteObjectTagging",
    "CreateMultipartUpload", "UploadPart", "UploadPartCopy", "CompleteMultipartUpload",
    "AbortMultipartUpload", "ListParts", "ListObjects", "ListObjectsV2", "ListMultipartUploads",
})
READ_ONLY_PREFIXES = ("Get", "Head", "List")

#: requestParameters CloudTrail records per operation (besides bucketName / Host / key).
_QUERY_MARKERS = {
    "GetBucketAcl": "acl", "PutBucketAcl": "acl", "GetObjectAcl": "acl", "PutObjectAcl": "acl",
    "GetBucketPolicy": "policy", "PutBucketPolicy": "policy", "DeleteBucketPolicy": "policy",
    "GetBucketEncryption": "encryption", "PutBucketEncryption": "encryption",
    "DeleteBucketEncryption": "encryption", "GetPublicAccessBlock": "publicAccessBlock",
    "PutPublicAccessBlock": "publicAccessBlock", "DeletePublicAccessBlock": "publicAccessBlock",
    "GetBucketOwnershipControls": "ownershipControls", "PutBucketOwnershipControls": "ownershipControls",
    "DeleteBucketOwnershipControls": "ownershipControls", "GetBucketLocation": "location",
    "GetBucketVersioning": "versioning", "GetBucketPolicyStatus": "policyStatus",
    "GetBucketTagging": "tagging", "PutBucketTagging": "tagging", "DeleteBucketTagging": "tagging",
    "GetObjectTagging": "tagging", "PutObjectTagging": "tagging", "DeleteObjectTagging": "tagging",
    "CreateMultipartUpload": "uploads", "ListMultipartUploads": "uploads", "DeleteObjects": "delete",
}
_CHECKSUM_FIELDS = {"checksum_crc32": "CRC32", "checksum_crc32c": "CRC32C", "checksum_crc64nvme": "CRC64NVME",
                    "checksum_sha1": "SHA1", "checksum_sha256": "SHA256"}


def _snake(op: str) -> str:
    out = []
    for i, ch in enumerate(op):
        if ch.isupper() and i and (not op[i - 1].isupper() or (i + 1 < len(op) and op[i + 1].islower())):
            out.append("_")
        out.append(ch.lower())
    return "".join(out)


class S3Servicer(s3_pb2_grpc.S3Servicer):
    def __init__(self, service: S3Service, settings: Settings, audit: AuditSink) -> None:
        self.service = service
        self.settings = settings
        self.audit = audit

    # ---- plumbing ----------------------------------------------------------------------

    def _caller(self, context: grpc.aio.ServicerContext) -> caller_pb2.Caller:
        return caller_from_metadata(context.invocation_metadata(), self.settings.account_id, self.settings.region)

    def _record(self, op: str, req: Any, caller: caller_pb2.Caller, *, error: AwsError | None = None,
                bytes_in: int = 0, bytes_out: int = 0, response: Any = None) -> None:
        try:
            bucket = getattr(req, "bucket", "") or ""
            key = getattr(req, "key", "") if "key" in req.DESCRIPTOR.fields_by_name else ""
            params: dict[str, Any] = {}
            if bucket:
                params["bucketName"] = bucket
            params["Host"] = caller.host or (f"{bucket}.s3.{self.settings.region}.amazonaws.com" if bucket
                                             else f"s3.{self.settings.region}.amazonaws.com")
            if key:
                params["key"] = key
            marker = _QUERY_MARKERS.get(op)
            if marker:
                params[marker] = ""
            for fname, pname in (("prefix", "prefix"), ("delimiter", "delimiter"), ("upload_id", "uploadId"),
                                 ("part_number", "partNumber"), ("copy_source", "x-amz-copy-source")):
                if fname in req.DESCRIPTOR.fields_by_name and req.HasField(fname):
                    params[pname] = getattr(req, fname)
            if op == "ListObjectsV2":
                params["list-type"] = "2"
            resources: list[dict[str, str]] = []
            if key:
                resources.append({"type": "AWS::S3::Object", "ARN": names.object_arn(bucket, key)})
            if bucket:
                resources.append({"accountId": self.settings.account_id, "type": "AWS::S3::Bucket",
                                  "ARN": names.bucket_arn(bucket)})
            extra: dict[str, Any] = {}
            if caller.signature_version:
                extra["SignatureVersion"] = caller.signature_version
            extra["CipherSuite"] = "ECDHE-RSA-AES128-GCM-SHA256" if caller.tls_version else ""
            extra["bytesTransferredIn"] = bytes_in
            if caller.auth_method:
                extra["AuthenticationMethod"] = caller.auth_method
            extra["x-amz-id-2"] = base64.b64encode(os.urandom(48)).decode()
            extra["bytesTransferredOut"] = bytes_out
            if not extra["CipherSuite"]:
                del extra["CipherSuite"]
            elements = None
            if response is not None and error is None and "server_side_encryption" in response.DESCRIPTOR.fields_by_name \
                    and response.HasField("server_side_encryption") and op in ("PutObject", "CopyObject",
                                                                                "CompleteMultipartUpload",
                                                                                "CreateMultipartUpload", "UploadPart"):
                elements = {"x-amz-server-side-encryption": response.server_side_encryption}
                if response.HasField("ssekms_key_id"):
                    elements["x-amz-server-side-encryption-aws-kms-key-id"] = response.ssekms_key_id
                if response.HasField("bucket_key_enabled") and response.bucket_key_enabled:
                    elements["x-amz-server-side-encryption-bucket-key-enabled"] = "true"
            event = build_event(
                caller=caller, event_source="s3.amazonaws.com", event_name=op, region=self.settings.region,
                recipient_account_id=self.settings.account_id, request_parameters=params,
                response_elements=elements, resources=resources, read_only=op.startswith(READ_ONLY_PREFIXES),
                management_event=op not in DATA_EVENTS, error_code=error.code if error else None,
                error_message=error.message if error else None, additional_event_data=extra,
                request_id=caller.request_id or None)
            self.audit.record(event)
        except Exception:  # noqa: BLE001 - auditing must not break the call
            log.error("audit_record_failed", operation=op, exc_info=True)

    async def _unary(self, op: str, req: Any, context: grpc.aio.ServicerContext) -> Any:
        caller = self._caller(context)
        method: Callable[[Any, caller_pb2.Caller], Awaitable[Any]] = getattr(self.service, _snake(op))
        try:
            resp = await method(req, caller)
        except AwsError as err:
            self._record(op, req, caller, error=err)
            raise
        self._record(op, req, caller, response=resp, bytes_in=req.ByteSize() if op.startswith("Put") else 0,
                     bytes_out=resp.ByteSize())
        return resp

    # ---- streaming -----------------------------------------------------------------------

    async def _stream_in(self, op: str, request_iterator: AsyncIterator[Any], context: grpc.aio.ServicerContext,
                         begin: Callable[..., Awaitable[tuple[Upload, dict[str, Any]]]],
                         finish: Callable[..., Awaitable[Any]]) -> Any:
        caller = self._caller(context)
        it = request_iterator.__aiter__()
        try:
            first = await it.__anext__()
        except StopAsyncIteration:
            raise e.IncompleteBody("The request body terminated unexpectedly") from None
        header = type(first)()
        header.CopyFrom(first)
        header.ClearField("body_chunk")
        up: Upload | None = None
        try:
            up, state = await begin(header, caller)
            up.feed(first.body_chunk)
            complete = first.body_complete
            trailer: dict[str, str] = {}
            async for msg in it:
                if complete:
                    raise e.InvalidRequest("Data after the end of the body")
                if msg.body_chunk:
                    up.feed(msg.body_chunk)
                for fname, algo in _CHECKSUM_FIELDS.items():
                    if msg.HasField(fname):
                        trailer[algo] = getattr(msg, fname)
                complete = msg.body_complete
            if not complete:
                raise e.IncompleteBody("The request body terminated unexpectedly")
            resp = await finish(header, caller, up, state, trailer)
        except AwsError as err:
            if up is not None:
                up.writer.abort()
            self._record(op, header, caller, error=err, bytes_in=up.size if up else 0)
            raise
        except BaseException:
            if up is not None:
                up.writer.abort()
            raise
        self._record(op, header, caller, response=resp, bytes_in=up.size)
        return resp

    async def PutObject(self, request_iterator: AsyncIterator[pb.PutObjectRequest],  # noqa: N802
                        context: grpc.aio.ServicerContext) -> pb.PutObjectResponse:
        return await self._stream_in("PutObject", request_iterator, context,
                                     self.service.begin_put_object, self.service.finish_put_object)

    async def UploadPart(self, request_iterator: AsyncIterator[pb.UploadPartRequest],  # noqa: N802
                         context: grpc.aio.ServicerContext) -> pb.UploadPartResponse:
        return await self._stream_in("UploadPart", request_iterator, context,
                                     self.service.begin_upload_part, self.service.finish_upload_part)

    async def GetObject(self, request: pb.GetObjectRequest,  # noqa: N802
                        context: grpc.aio.ServicerContext) -> AsyncIterator[pb.GetObjectResponse]:
        caller = self._caller(context)
        sent = 0
        try:
            resp, body, _partial = await self.service.get_object(request, caller)
        except AwsError as err:
            self._record("GetObject", request, caller, error=err)
            raise
        try:
            yield resp
            async for piece in body:
                sent += len(piece)
                yield pb.GetObjectResponse(body_chunk=piece)
        finally:
            self._record("GetObject", request, caller, bytes_out=sent)


def _install_unary(op: str) -> None:
    async def handler(self: S3Servicer, request: Any, context: grpc.aio.ServicerContext) -> Any:
        return await self._unary(op, request, context)

    handler.__name__ = op
    setattr(S3Servicer, op, handler)


for _op in pb.DESCRIPTOR.services_by_name["S3"].methods_by_name:
    if _op not in ("PutObject", "UploadPart", "GetObject"):
        _install_unary(_op)
