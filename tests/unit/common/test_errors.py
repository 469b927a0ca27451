from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence

import grpc
import pytest

from common.errors import AwsError, InternalFailure, error_class, make_error, upper_snake
from common.grpc_errors import from_rpc_error, to_rpc_status
from common.grpc_server import ErrorInterceptor
from tests.stackctl import free_port

NotFound = error_class("NotFoundException", 400)


def test_upper_snake() -> None:
    assert upper_snake("NotFoundException") == "NOT_FOUND_EXCEPTION"
    assert upper_snake("KMSInvalidStateException") == "KMSINVALID_STATE_EXCEPTION"
    assert NotFound("x").reason == "NOT_FOUND_EXCEPTION"


def test_error_class_fields() -> None:
    err = NotFound("Key 'arn' does not exist")
    assert isinstance(err, AwsError)
    assert (err.code, err.http_status, err.grpc_status, err.message) == (
        "NotFoundException", 400, "INVALID_ARGUMENT", "Key 'arn' does not exist")
    assert make_error("AccessDenied", "no", 403).grpc_status == "PERMISSION_DENIED"
    assert InternalFailure().sender_fault is False


async def _serve(handler: grpc.GenericRpcHandler) -> tuple[grpc.aio.Server, int]:
    server = grpc.aio.server(interceptors=[ErrorInterceptor()])
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port(f"127.0.0.1:{free_port()}")
    await server.start()
    return server, port


async def test_aws_error_crosses_grpc_with_code_and_status() -> None:
    async def boom(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        raise NotFound("Alias arn:aws:kms:us-east-1:111122223333:alias/x is not found.")

    async def crash(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        raise ValueError("secret plaintext here")

    handler = grpc.method_handlers_generic_handler("t.T", {
        "Boom": grpc.unary_unary_rpc_method_handler(boom),
        "Crash": grpc.unary_unary_rpc_method_handler(crash),
    })
    server, port = await _serve(handler)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as ch:
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await ch.unary_unary("/t.T/Boom")(b"")
            assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            err = from_rpc_error(info.value)
            assert err.code == "NotFoundException"
            assert err.http_status == 400
            assert err.message == "Alias arn:aws:kms:us-east-1:111122223333:alias/x is not found."

            with pytest.raises(grpc.aio.AioRpcError) as info:
                await ch.unary_unary("/t.T/Crash")(b"")
            err = from_rpc_error(info.value)
            assert err.code == "InternalFailure" and err.http_status == 500
            assert "secret" not in err.message
    finally:
        await server.stop(None)


def test_status_round_trip_without_server() -> None:
    status = to_rpc_status(make_error("DisabledException", "arn is disabled.", 400))
    assert status.code == grpc.StatusCode.INVALID_ARGUMENT
    assert status.details == "arn is disabled."


async def test_unimplemented_method_is_not_an_internal_failure() -> None:
    async def todo(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        raise NotImplementedError("Method not implemented!")

    server, port = await _serve(grpc.method_handlers_generic_handler(
        "t.T", {"Todo": grpc.unary_unary_rpc_method_handler(todo)}))
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as ch:
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await ch.unary_unary("/t.T/Todo")(b"")
            assert info.value.code() == grpc.StatusCode.UNIMPLEMENTED
            err = from_rpc_error(info.value)
            assert (err.code, err.http_status) == ("NotImplemented", 501)
    finally:
        await server.stop(None)
