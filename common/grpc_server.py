"""The process shell every gRPC service shares.

``run_service`` starts a ``grpc.aio`` server on 127.0.0.1 with the standard health service
and server reflection, maps raised :class:`AwsError` to ``google.rpc.Status`` (one
interceptor, so servicers just raise), marks itself SERVING once its resources are open,
and on SIGTERM/SIGINT goes NOT_SERVING, lets in-flight calls finish (grace period), then
closes its resources in reverse order.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from common.errors import AwsError, InternalFailure
from common.grpc_errors import to_rpc_status
from common.heap import settle_heap
from common.logging import get_logger

log = get_logger(__name__)

Setup = Callable[[grpc.aio.Server], contextlib.AbstractAsyncContextManager[Sequence[str]]]
"""An async context manager that opens the service's resources, registers its servicers on
the server and yields the full names of the gRPC services it registered."""


async def _abort_with(context: grpc.aio.ServicerContext, exc: BaseException, method: str) -> None:
    if isinstance(exc, AwsError):
        err = exc
    elif isinstance(exc, NotImplementedError):
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, f"{method} is not implemented")
        return
    else:
        log.error("unhandled_exception", method=method, exc_info=exc)
        err = InternalFailure("We encountered an internal error. Please try again.")
    await context.abort_with_status(to_rpc_status(err))


class ErrorInterceptor(grpc.aio.ServerInterceptor):
    """Turns exceptions raised by servicers into AWS-shaped gRPC statuses.

    The wrapped handler of each method is built once and cached: the per-call cost is one
    dict lookup, not a new handler object per request.
    """

    def __init__(self) -> None:
        self._wrapped: dict[str, Any] = {}

    async def intercept_service(self, continuation: Callable[[Any], Awaitable[Any]],
                                details: grpc.HandlerCallDetails) -> Any:
        method = details.method
        cached = self._wrapped.get(method)
        if cached is not None:
            return cached
        handler = await continuation(details)
        if handler is None:
            return None
        wrapped = self._wrap(handler, method)
        self._wrapped[method] = wrapped
        return wrapped

    @staticmethod
    def _wrap(handler: Any, method: str) -> Any:

        if handler.unary_unary:
            inner_uu = handler.unary_unary

            async def unary_unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
                try:
                    return await inner_uu(request, context)
                except (asyncio.CancelledError, grpc.aio.AbortError):
                    raise
                except Exception as exc:  # noqa: BLE001 - mapped to a status
                    await _abort_with(context, exc, method)

            return grpc.unary_unary_rpc_method_handler(
                unary_unary, handler.request_deserializer, handler.response_serializer)
        if handler.unary_stream:
            inner_us = handler.unary_stream

            async def unary_stream(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
                try:
                    async for item in inner_us(request, context):
                        yield item
                except (asyncio.CancelledError, grpc.aio.AbortError):
                    raise
                except Exception as exc:  # noqa: BLE001
                    await _abort_with(context, exc, method)

            return grpc.unary_stream_rpc_method_handler(
                unary_stream, handler.request_deserializer, handler.response_serializer)
        if handler.stream_unary:
            inner_su = handler.stream_unary

            async def stream_unary(request_iter: Any, context: grpc.aio.ServicerContext) -> Any:
                try:
                    return await inner_su(request_iter, context)
                except (asyncio.CancelledError, grpc.aio.AbortError):
                    raise
                except Exception as exc:  # noqa: BLE001
                    await _abort_with(context, exc, method)

            return grpc.stream_unary_rpc_method_handler(
                stream_unary, handler.request_deserializer, handler.response_serializer)
        if handler.stream_stream:
            inner_ss = handler.stream_stream

            async def stream_stream(request_iter: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
                try:
                    async for item in inner_ss(request_iter, context):
                        yield item
                except (asyncio.CancelledError, grpc.aio.AbortError):
                    raise
                except Exception as exc:  # noqa: BLE001
                    await _abort_with(context, exc, method)

            return grpc.stream_stream_rpc_method_handler(
                stream_stream, handler.request_deserializer, handler.response_serializer)
        return handler


#: Message and HTTP/2 settings for every server and channel between our processes. gRPC's
#: defaults (16 KiB frames, a 64 KiB flow-control window grown by probing) cut a 2.4 MB
#: PutEvents batch into ~150 frames and many window updates, each a wake-up of the event
#: loops at both ends: measured on a loaded KMS, shipping its audit records that way cost
#: ~35 us of KMS CPU per record; with 4 MiB frames and a 32 MiB window it is lost in noise.
CHANNEL_OPTIONS = (
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
    ("grpc.max_send_message_length", 64 * 1024 * 1024),
    ("grpc.http2.max_frame_size", 4 * 1024 * 1024),
    ("grpc.http2.lookahead_bytes", 32 * 1024 * 1024),
)
GRPC_OPTIONS = (*CHANNEL_OPTIONS, ("grpc.so_reuseport", 0))  # servers


class ErrorMappingHandler(grpc.GenericRpcHandler):
    """A generic handler whose method handlers map exceptions as :class:`ErrorInterceptor` does.

    The same mapping without a server interceptor: grpc.aio runs interceptors as an extra
    coroutine chain on every call, whereas this wraps each method's handler once (on its
    first call) and then answers from a dict.
    """

    def __init__(self, inner: grpc.GenericRpcHandler) -> None:
        self._inner = inner
        self._wrapped: dict[str, Any] = {}

    def service(self, handler_call_details: grpc.HandlerCallDetails) -> Any:
        method = handler_call_details.method
        cached = self._wrapped.get(method)
        if cached is not None:
            return cached
        handler = self._inner.service(handler_call_details)
        if handler is None:
            return None  # another generic handler's method (misses are not cached: unbounded)
        wrapped = ErrorInterceptor._wrap(handler, method)
        self._wrapped[method] = wrapped
        return wrapped


def make_server() -> grpc.aio.Server:
    """A ``grpc.aio`` server with the shared options that maps raised errors to statuses.

    Two per-call costs of a plain ``grpc.aio.server(interceptors=[ErrorInterceptor()])`` are
    avoided (same behaviour):

    * Generated ``add_*Servicer_to_server`` functions register every method twice: in a
      generic handler and as a "registered method". grpc.aio's accept loop keeps one pending
      future per registered method and runs ``asyncio.wait`` over all of them for every
      accepted RPC: ~60 done-callbacks added and removed per call for the 57-method KMS
      service. Only the generic copies are kept here (one pending future).
    * The error mapping wraps each generic handler (:class:`ErrorMappingHandler`) instead of
      running a server interceptor coroutine per call.
    """
    server = grpc.aio.server(options=GRPC_OPTIONS)
    add_generic = server.add_generic_rpc_handlers

    def add_generic_rpc_handlers(generic_rpc_handlers: Sequence[grpc.GenericRpcHandler]) -> None:
        add_generic(tuple(ErrorMappingHandler(h) for h in generic_rpc_handlers))

    def add_registered_method_handlers(service_name: str, method_handlers: Any) -> None:
        del service_name, method_handlers  # served by the generic handler added alongside

    setattr(server, "add_generic_rpc_handlers", add_generic_rpc_handlers)
    setattr(server, "add_registered_method_handlers", add_registered_method_handlers)
    return server


async def run_service(name: str, host: str, port: int, setup: Setup,
                      grace_seconds: float = 10.0) -> None:
    """Serve until SIGTERM/SIGINT; see the module docstring."""
    server = make_server()
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    async with setup(server) as service_names:
        names = [*service_names, health.SERVICE_NAME, reflection.SERVICE_NAME]
        reflection.enable_server_reflection(names, server)
        bound = server.add_insecure_port(f"{host}:{port}")
        if bound == 0:
            raise RuntimeError(f"{name}: cannot bind {host}:{port}")
        await server.start()
        for svc in (*service_names, ""):
            await health_servicer.set(svc, health_pb2.HealthCheckResponse.SERVING)
        log.info("service_started", name=name, address=f"{host}:{bound}")
        settle_heap()
        await stop.wait()
        log.info("service_stopping", name=name)
        for svc in (*service_names, ""):
            await health_servicer.set(svc, health_pb2.HealthCheckResponse.NOT_SERVING)
        await server.stop(grace_seconds)
    log.info("service_stopped", name=name)
