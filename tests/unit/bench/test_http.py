"""The benchmark's load-generator client against a real aiohttp server on 127.0.0.1."""

from __future__ import annotations

from aiohttp import web

import bench.__main__ as bench_main
from bench.http import Connection, serialise
from tests.stackctl import free_port


async def test_keep_alive_round_trips_and_framing() -> None:
    async def echo(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        if request.path == "/chunked":
            resp = web.StreamResponse(status=201)
            resp.enable_chunked_encoding()
            await resp.prepare(request)
            await resp.write(body[:3])
            await resp.write(body[3:])
            await resp.write_eof()
            return resp
        return web.Response(status=200, body=body + request.headers["X-Extra"].encode())

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", echo)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        conn = Connection("127.0.0.1", port)
        req = serialise("POST", f"http://127.0.0.1:{port}/x?a=1", {"X-Extra": "!"}, b"hello")
        for _ in range(3):
            assert await conn.send(req) == (200, b"hello!")
        chunked = serialise("PUT", f"http://127.0.0.1:{port}/chunked", {}, b"abcdef")
        assert await conn.send(chunked) == (201, b"abcdef")
        await conn.close()
    finally:
        await runner.cleanup()


def test_report_table_formats_ratio() -> None:
    ours = bench_main.Result("KMS Encrypt 64 B", "strongroom", 32, ops=400, seconds=2.0, latencies=[0.01] * 10)
    moto = bench_main.Result("KMS Encrypt 64 B", "moto", 32, ops=100, seconds=2.0, latencies=[0.02] * 10)
    table = bench_main.fmt([ours, moto])
    assert "| KMS Encrypt 64 B | 32 | 200 | 10.00 | 10.00 | 50 | 20.00 | 20.00 | 4.0x | 0/0 |" in table
