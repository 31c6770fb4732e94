"""Keep-alive timeouts of the RPC's Hypercorn with `node.rpc.keepalive` installed.

Real Hypercorn trio worker, a small Starlette app, real TCP on 127.0.0.1 with a
short keep-alive timeout: a busy connection stays open however long it is used,
an idle one is closed after the timeout (and not before it), a slow request is
not cut, and the server shuts down promptly with idle connections open.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import trio
from hypercorn.config import Config
from hypercorn.trio import serve
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from node.rpc import keepalive

KEEP_ALIVE = 0.4


async def hello(request: Request) -> PlainTextResponse:
    delay = float(request.query_params.get("sleep", "0"))
    if delay:
        await trio.sleep(delay)
    return PlainTextResponse("hi")


@asynccontextmanager
async def server() -> AsyncIterator[tuple[int, trio.Event, trio.Event]]:
    """The port of a running server, the event that stops it, and the one set when it has."""
    keepalive.install()
    cfg = Config()
    cfg.bind = ["127.0.0.1:0"]
    cfg.keep_alive_timeout = KEEP_ALIVE
    cfg.graceful_timeout = 5
    cfg.accesslog = None
    stop = trio.Event()
    stopped = trio.Event()
    app = Starlette(routes=[Route("/", hello)])

    async def run(task_status: trio.TaskStatus[list[str]]) -> None:
        await serve(app, cfg, shutdown_trigger=stop.wait, task_status=task_status)  # type: ignore[arg-type]
        stopped.set()

    async with trio.open_nursery() as n:
        binds = await n.start(run)
        yield int(binds[0].rsplit(":", 1)[1]), stop, stopped
        stop.set()


async def get(stream: trio.SocketStream, path: str = "/") -> bytes:
    await stream.send_all(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    data = b""
    while not data.endswith(b"hi"):
        chunk = await stream.receive_some(4096)
        assert chunk, "the server closed the connection"
        data += chunk
    return data


async def closed_by_server(stream: trio.SocketStream) -> bool:
    return await stream.receive_some(4096) == b""


async def test_a_busy_connection_stays_open_past_the_timeout() -> None:
    with trio.fail_after(20):
        async with server() as (port, _, _):
            stream = await trio.open_tcp_stream("127.0.0.1", port)
            t0 = trio.current_time()
            n = 0
            while trio.current_time() - t0 < 3 * (KEEP_ALIVE + keepalive.GRACE):
                assert (await get(stream)).startswith(b"HTTP/1.1 200")
                await trio.sleep(0.01)
                n += 1
            assert n > 50
            await stream.aclose()


async def test_an_idle_connection_is_closed_after_the_timeout_and_not_before() -> None:
    with trio.fail_after(20):
        async with server() as (port, _, _):
            stream = await trio.open_tcp_stream("127.0.0.1", port)
            await get(stream)
            await trio.sleep(KEEP_ALIVE / 2)  # idle, but not long enough
            assert (await get(stream)).startswith(b"HTTP/1.1 200")
            t0 = trio.current_time()
            assert await closed_by_server(stream)
            idle = trio.current_time() - t0
            assert KEEP_ALIVE <= idle <= KEEP_ALIVE + keepalive.GRACE + 1.0, idle
            # a connection that never sends a request is timed out the same way
            silent = await trio.open_tcp_stream("127.0.0.1", port)
            t0 = trio.current_time()
            assert await closed_by_server(silent)
            assert KEEP_ALIVE <= trio.current_time() - t0 <= KEEP_ALIVE + keepalive.GRACE + 1.0


async def test_a_slow_request_is_not_cut() -> None:
    with trio.fail_after(20):
        async with server() as (port, _, _):
            stream = await trio.open_tcp_stream("127.0.0.1", port)
            slow = 2 * (KEEP_ALIVE + keepalive.GRACE)
            assert (await get(stream, f"/?sleep={slow}")).startswith(b"HTTP/1.1 200")
            assert (await get(stream)).startswith(b"HTTP/1.1 200")


async def test_shutdown_is_prompt_with_idle_and_abandoned_connections() -> None:
    with trio.fail_after(20):
        async with server() as (port, stop, stopped):
            idle = await trio.open_tcp_stream("127.0.0.1", port)
            await get(idle)
            gone = await trio.open_tcp_stream("127.0.0.1", port)
            await gone.send_all(b"GET /?sleep=0.2 HTTP/1.1\r\nHost: x\r\n\r\n")
            await gone.aclose()  # the client leaves in the middle of its request
            await trio.sleep(0.3)
            t0 = trio.current_time()
            stop.set()
            await stopped.wait()
            assert trio.current_time() - t0 <= keepalive.GRACE + 1.0
            assert await closed_by_server(idle)
