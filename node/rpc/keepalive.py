"""Hypercorn's keep-alive timeout without a new task for every request.

Hypercorn's trio worker (0.17, 0.18) times out idle keep-alive connections with
a `TrioSingleTask` per connection, and restarts it at every request: stop (cancel
the task) when a request arrives, then `nursery.start` a fresh task once the
response is out. That is a task spawn, a start handshake and a cancellation per
request: 12 % of the instructions of a one-record `POST /v1/records` at the node
(cachegrind, 2026-12-02: 3.23 M instructions per request, 2.83 M without any idle
task; `bench/rpc.py` measures the rate).

`LazyIdleTask` has the same two methods, `restart(task_group, action)` and
`stop()`, and keeps the same contract on the connection (an idle connection is
closed by `action`, which waits the keep-alive timeout or the server's shutdown,
then closes it), but per request it only sets two fields. One watcher task per
connection wakes up every `GRACE` seconds at most: once the connection has been
idle for `GRACE` it runs `action` (so an idle connection is closed after
`keep_alive_timeout` + at most `GRACE`), and when it finds the connection busy
it ends, so a connection that closes mid-request leaves nothing behind for more
than `GRACE`. A request that arrives while `action` runs cancels it, as `stop`
always did. `install()` puts it in place of `TrioSingleTask` in Hypercorn's trio
TCP server, the one name that server builds its idle task from.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Final

import trio

GRACE: Final = 0.5  # seconds of idleness before the keep-alive timeout starts to run


class LazyIdleTask:
    """One connection's idle timeout (see the module's docstring)."""

    def __init__(self) -> None:
        self._armed = False
        self._since = 0.0
        self._action: Callable[[], Awaitable[None]] | None = None
        self._watching = False
        self._running: trio.CancelScope | None = None

    async def restart(self, task_group: Any, action: Callable[[], Awaitable[None]]) -> None:
        """The connection is idle from now on: `action` runs if it stays so."""
        self._armed = True
        self._since = trio.current_time()
        self._action = action
        if self._running is not None:  # idle twice in a row: the timeout starts again
            self._running.cancel()
        if not self._watching:
            self._watching = True
            task_group._nursery.start_soon(self._watch)

    async def stop(self) -> None:
        """The connection is busy: no timeout until the next `restart`."""
        self._armed = False
        if self._running is not None:
            self._running.cancel()

    async def _watch(self) -> None:
        try:
            while self._armed:
                wait = self._since + GRACE - trio.current_time()
                if wait > 0:
                    await trio.sleep(wait)
                    continue
                assert self._action is not None
                with trio.CancelScope() as scope:
                    self._running = scope
                    await self._action()
                self._running = None
                if not scope.cancelled_caught:
                    return  # the action ran to its end: it closed the connection
        finally:
            self._watching = False
            self._running = None


def install() -> None:
    """Make Hypercorn's trio TCP server time out idle connections with `LazyIdleTask`."""
    from hypercorn.trio import tcp_server

    if not hasattr(tcp_server, "TrioSingleTask"):  # a Hypercorn this module was not made for
        raise RuntimeError("hypercorn.trio.tcp_server has no TrioSingleTask: update "
                           "node/rpc/keepalive.py for this Hypercorn version")
    tcp_server.TrioSingleTask = LazyIdleTask  # type: ignore[misc,assignment]
