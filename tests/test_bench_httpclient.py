"""The benches' own HTTP/1.1 client (`bench/httpclient.py`) against a real node over real HTTP.

bench/rpc.py and bench/replicate.py time the node through this client, so it must
read every response whole, keep the connection alive across requests, and stop a
bench on an error answer instead of counting it. Loopback only, port 0, each test
under an absolute timeout.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import trio

from bench.httpclient import Conn
from node.daemon import Node
from tests.rpc_helpers import BOX, Provisioned, provision

TIMEOUT = 30


def scan(i: int) -> dict[str, Any]:
    return {"type": "scan", "body": {"object": {"kind": "container", "id": BOX},
                                     "place": {"country": "NL", "locode": "NLRTM"},
                                     "event": "observe", "at": 1_750_000_000_000 + i}}


@pytest.fixture
async def node(tmp_path: Path, nursery: trio.Nursery) -> AsyncIterator[tuple[str, Provisioned]]:
    p = provision(tmp_path / "node", role="carrier")
    n = Node(p.data, handle_signals=False)
    with trio.fail_after(TIMEOUT):
        url = await nursery.start(n.run)
    yield url, p
    n.stop()


async def test_requests_share_one_connection(node: tuple[str, Provisioned]) -> None:
    url, p = node
    with trio.fail_after(TIMEOUT):
        conn = await Conn.open(url, p.data.tokens().write)
        async with conn.stream:
            before = (await conn.request("GET", "/v1/status"))["record_count"]
            for i in range(3):
                status, body = await conn.post("/v1/records", json.dumps(scan(i)).encode())
                assert status == 201, body
                assert json.loads(body)["id"]
            batch = json.dumps({"records": [scan(10 + i) for i in range(5)]}).encode()
            status, body = await conn.post("/v1/records/batch", batch)
            assert status == 201, body
            assert len(json.loads(body)["records"]) == 5
            after = await conn.request("GET", "/v1/status")
            assert after["record_count"] == before + 8
            assert conn.buf == b""  # nothing of one response is left to spoil the next


async def test_error_answers_are_returned_or_stop_the_bench(
        node: tuple[str, Provisioned]) -> None:
    url, p = node
    with trio.fail_after(TIMEOUT):
        conn = await Conn.open(url, p.data.tokens().read)
        async with conn.stream:
            status, body = await conn.post("/v1/records", json.dumps(scan(0)).encode())
            assert status == 403  # a read token cannot write
            assert "error" in json.loads(body)
            with pytest.raises(SystemExit, match="answered 403"):
                await conn.request("POST", "/v1/records", json.dumps(scan(1)).encode())
            assert (await conn.request("GET", "/v1/status"))["record_count"] > 0
