"""A lean HTTP/1.1 keep-alive client for the benches: they measure the node, not a client library.

One request at a time per connection, bearer-token auth, JSON bodies. A response
is read up to its Content-Length, which the node's RPC always sends; bytes that
arrive past it stay buffered for the next response on the connection.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

import trio


class Conn:
    """One keep-alive connection to a node's RPC, authenticated with `token`."""

    def __init__(self, stream: trio.SocketStream, host: str, token: str) -> None:
        self.stream = stream
        self.head = f"Host: {host}\r\nAuthorization: Bearer {token}\r\n"
        self.buf = b""

    @classmethod
    async def open(cls, url: str, token: str) -> Conn:
        u = urlsplit(url)
        assert u.hostname is not None
        assert u.port is not None
        return cls(await trio.open_tcp_stream(u.hostname, u.port), u.netloc, token)

    async def send(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        """Send one request and read its response: (status, body bytes)."""
        extra = "" if body is None else \
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        await self.stream.send_all(f"{method} {path} HTTP/1.1\r\n{self.head}{extra}\r\n"
                                   .encode() + (body or b""))
        while b"\r\n\r\n" not in self.buf:
            self.buf += await self._recv()
        head, _, rest = self.buf.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split()[1])
        length = next(int(v) for k, _, v in (x.partition(b":") for x in lines[1:])
                      if k.strip().lower() == b"content-length")
        while len(rest) < length:
            rest += await self._recv()
        self.buf = rest[length:]
        return status, rest[:length]

    async def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        """POST a JSON body: (status, body bytes), whatever the status."""
        return await self.send("POST", path, body)

    async def request(self, method: str, path: str, body: bytes | None = None) -> Any:
        """The decoded JSON answer; any status from 300 up ends the bench with its body."""
        status, data = await self.send(method, path, body)
        if status >= 300:
            raise SystemExit(f"bench: {method} {path} answered {status}: {data!r}")
        return json.loads(data)

    async def _recv(self) -> bytes:
        data = await self.stream.receive_some(1 << 20)
        if not data:
            raise ConnectionError("the node closed the connection")
        return data
