"""The gateway's S3 front: REST-XML over HTTP <-> the S3 service's gRPC API.

``handle(request, ctx)`` routes the request to an S3 operation (gateway/aws/protocols/rest_xml.py),
reads and verifies its body, calls the RPC of the same name with the caller's metadata and
renders the response or the S3 XML error. Bodies stream both ways:

* PutObject / UploadPart: the request body is read in pieces, aws-chunked framing is decoded
  and its chunk signatures and trailing checksums verified (gateway.auth.ChunkedBodyDecoder),
  a signed payload hash is computed as the bytes pass (XAmzContentSHA256Mismatch at the
  end), and the pieces go to the client-streaming RPC; ``body_complete`` is sent only once
  every check passed, so a failed check stores nothing.
* GetObject: headers come from the first stream message, then each chunk is written as it
  arrives (206 with Content-Range for ranges).

Memory per request is bounded by the read size and gRPC flow control, not by object size.
"""

from __future__ import annotations

import hashlib
import hmac
import urllib.parse
from collections.abc import AsyncIterator
from typing import Any

import grpc
from aiohttp import web
from botocore.model import OperationModel

from common.errors import AwsError, error_class
from common.grpc_errors import from_rpc_error
from gateway.aws.protocols import s3_error
from gateway.aws.protocols.rest_xml import s3_protocol
from gateway.aws.shapes import VALUE, from_message, to_message
from gateway.context import RequestContext

try:
    from gateway.auth import AuthError, ChunkedBodyDecoder, PayloadMode, verify_payload_hash
    from gateway.auth import errors as auth_errors
except ImportError:  # pragma: no cover - the auth package is written in parallel
    AuthError = None  # type: ignore[assignment,misc]

READ_SIZE = 256 * 1024
MAX_CONFIG_BODY = 16 * 1024 * 1024
STREAM_IN = frozenset({"PutObject", "UploadPart"})

MissingContentLength = error_class("MissingContentLength", 411)
EntityTooLarge = error_class("EntityTooLarge", 400)
InvalidURI = error_class("InvalidURI", 400)

_TRAILER_FIELDS = {"x-amz-checksum-crc32": "checksum_crc32", "x-amz-checksum-crc32c": "checksum_crc32c",
                   "x-amz-checksum-crc64nvme": "checksum_crc64nvme", "x-amz-checksum-sha1": "checksum_sha1",
                   "x-amz-checksum-sha256": "checksum_sha256"}


def _pb() -> Any:
    from strongroom.s3.v1 import s3_pb2

    return s3_pb2


def split_path(request: web.Request, vhost_bucket: str | None) -> tuple[str | None, str | None]:
    raw = request.raw_path.partition("?")[0]
    try:
        path = urllib.parse.unquote(raw, errors="strict")
    except UnicodeDecodeError:
        raise InvalidURI("Couldn't parse the specified URI.") from None
    if vhost_bucket:
        key = path[1:] if path.startswith("/") else path
        return vhost_bucket, key or None
    trimmed = path[1:] if path.startswith("/") else path
    if not trimmed:
        return None, None
    bucket, _, key = trimmed.partition("/")
    return bucket or None, key or None


def _query(request: web.Request) -> dict[str, str]:
    out: dict[str, str] = {}
    for k, v in urllib.parse.parse_qsl(request.query_string, keep_blank_values=True):
        out.setdefault(k, v)
    return out


def _base_headers(ctx: RequestContext) -> dict[str, str]:
    return {"x-amz-request-id": ctx.request_id, "x-amz-id-2": s3_error.host_id(ctx.request_id)}


def error_response(err: Any, ctx: RequestContext, request: web.Request, bucket: str | None,
                   key: str | None) -> web.Response:
    code, message, status = err.code, err.message, err.http_status
    details: dict[str, str] = dict(getattr(err, "details", None) or {})
    if code == "NoSuchBucket" and bucket:
        details.setdefault("BucketName", bucket)
    elif code == "NoSuchKey" and key:
        details.setdefault("Key", key)
    elif code in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists") and bucket:
        details.setdefault("BucketName", bucket)
    elif code == "InvalidArgument" and message.startswith("Requests specifying Server Side Encryption with AWS KMS"):
        details = {"ArgumentName": "Authorization",
                   "ArgumentValue": request.headers.get("Authorization") or "null"}
    elif code == "NoSuchUpload":
        upload = _query(request).get("uploadId")
        if upload:
            details.setdefault("UploadId", upload)
    if status == 304:
        return web.Response(status=304, headers=_base_headers(ctx))
    resp = s3_error.error_response(code, message, status, ctx.request_id, details=details,
                                   head=request.method == "HEAD")
    resp.headers.update(_base_headers(ctx))
    return resp


async def handle(request: web.Request, ctx: RequestContext) -> web.StreamResponse:
    bucket: str | None = None
    key: str | None = None
    try:
        bucket, key = split_path(request, ctx.bucket)
        query = _query(request)
        proto = s3_protocol()
        op = proto.route(request.method, bucket, key, query, request.headers)
        if op.name in STREAM_IN:
            return await _stream_in(request, ctx, op, bucket, key, query)
        body = await _read_body(request, ctx) if request.method in ("PUT", "POST") else None
        value = proto.parse_request(op, bucket=bucket, key=key, query=query, headers=request.headers, body=body)
        pb = _pb()
        message = to_message(op.input_shape, getattr(pb, f"{op.name}Request").DESCRIPTOR, value)
        stub = ctx.stub
        if op.name == "GetObject":
            return await _get_object(request, ctx, op, message)
        reply = await getattr(stub, op.name)(message, metadata=ctx.metadata, timeout=ctx.timeout)
        status, headers, payload = proto.render(op, from_message(op.output_shape, reply, VALUE))
        headers.update(_base_headers(ctx))
        if op.name == "HeadObject":
            return await _head_response(request, status, headers)
        return web.Response(status=status, body=payload, headers=headers)
    except grpc.RpcError as exc:
        return error_response(from_rpc_error(exc), ctx, request, bucket, key)
    except AwsError as err:
        return error_response(err, ctx, request, bucket, key)
    except Exception as err:  # noqa: BLE001
        if AuthError is not None and isinstance(err, AuthError):
            return error_response(err, ctx, request, bucket, key)
        raise


async def _head_response(request: web.Request, status: int, headers: dict[str, str]) -> web.StreamResponse:
    length = headers.pop("Content-Length", None)
    resp = web.StreamResponse(status=status, headers=headers)
    if length is not None:
        resp.content_length = int(length)
    await resp.prepare(request)
    await resp.write_eof()
    return resp


async def _read_body(request: web.Request, ctx: RequestContext) -> bytes:
    """A whole (small) request body, aws-chunked decoded and checked against its signature."""
    buf = bytearray()
    payload = ctx.auth.payload if ctx.auth is not None else None
    decoder = ChunkedBodyDecoder(ctx.auth, request.headers) if payload is not None and payload.is_streaming else None
    async for data in request.content.iter_chunked(READ_SIZE):
        if decoder is not None:
            for piece in decoder.feed(data):
                buf += piece
        else:
            buf += data
        if len(buf) > MAX_CONFIG_BODY:
            raise EntityTooLarge("Your proposed upload exceeds the maximum allowed size")
    if decoder is not None:
        decoder.finish()
    elif ctx.auth is not None:
        verify_payload_hash(ctx.auth, buf)
    return bytes(buf)


async def _stream_in(request: web.Request, ctx: RequestContext, op: OperationModel, bucket: str | None,
                     key: str | None, query: dict[str, str]) -> web.StreamResponse:
    proto = s3_protocol()
    pb = _pb()
    value = proto.parse_request(op, bucket=bucket, key=key, query=query, headers=request.headers, body=None)
    payload = ctx.auth.payload if ctx.auth is not None else None
    decoder = None
    if payload is not None and payload.is_streaming:
        decoder = ChunkedBodyDecoder(ctx.auth, request.headers)
        decoded = request.headers.get("x-amz-decoded-content-length")
        if decoded is not None and decoded.isdigit():
            value["ContentLength"] = int(decoded)
        else:
            value.pop("ContentLength", None)
    elif request.headers.get("Content-Encoding", "").strip() == "aws-chunked" and payload is None:
        raise error_class("InvalidRequest", 400)("aws-chunked bodies must be signed requests")
    req_cls = getattr(pb, f"{op.name}Request")
    header = to_message(op.input_shape, req_cls.DESCRIPTOR, value)
    sha = hashlib.sha256() if payload is not None and payload.mode is PayloadMode.SHA256 else None
    failure: list[BaseException] = []

    async def messages() -> AsyncIterator[Any]:
        yield header
        try:
            pending = bytearray()
            async for data in request.content.iter_chunked(READ_SIZE):
                if sha is not None:
                    sha.update(data)
                pieces = decoder.feed(data) if decoder is not None else [data]
                for piece in pieces:
                    pending += piece
                if len(pending) >= READ_SIZE:
                    yield req_cls(body_chunk=bytes(pending))
                    pending.clear()
            if pending:
                yield req_cls(body_chunk=bytes(pending))
            last = req_cls(body_complete=True)
            if decoder is not None:
                for name, val in decoder.finish().items():
                    fname = _TRAILER_FIELDS.get(name.lower())
                    if fname:
                        setattr(last, fname, val)
            if sha is not None:
                computed = sha.hexdigest()
                expected = payload.sha256 or ""
                if not hmac.compare_digest(computed, expected):
                    raise auth_errors.content_sha256_mismatch(True, client=expected, computed=computed)
            yield last
        except Exception as exc:  # noqa: BLE001 - ends the stream without body_complete
            failure.append(exc)

    try:
        reply = await getattr(ctx.stub, op.name)(messages(), metadata=ctx.metadata, timeout=max(ctx.timeout, 3600))
    except grpc.RpcError:
        if failure:
            raise failure[0] from None
        raise
    status, headers, body = proto.render(op, from_message(op.output_shape, reply, VALUE))
    headers.update(_base_headers(ctx))
    return web.Response(status=status, body=body, headers=headers)


async def _get_object(request: web.Request, ctx: RequestContext, op: OperationModel, message: Any) -> web.StreamResponse:
    proto = s3_protocol()
    call = ctx.stub.GetObject(message, metadata=ctx.metadata, timeout=max(ctx.timeout, 3600))
    it = call.__aiter__()
    try:
        first = await it.__anext__()
    except StopAsyncIteration:
        raise error_class("InternalError", 500)("We encountered an internal error. Please try again.") from None
    status, headers, _ = proto.render(op, from_message(op.output_shape, first, VALUE))
    if "Content-Range" in headers:
        status = 206
    headers.update(_base_headers(ctx))
    length = int(headers.pop("Content-Length", "0"))
    resp = web.StreamResponse(status=status, headers=headers)
    resp.content_length = length
    await resp.prepare(request)
    if first.body_chunk:
        await resp.write(first.body_chunk)
    try:
        async for msg in it:
            if msg.body_chunk:
                await resp.write(msg.body_chunk)
    except grpc.RpcError:
        # Headers are gone: all we can do is cut the connection short, as S3 does.
        call.cancel()
        raise
    await resp.write_eof()
    return resp
