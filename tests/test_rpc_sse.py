"""The alert stream (SSE) over real HTTP: live delivery, resumption with Last-Event-ID, shutdown."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from node.daemon import Node
from tests.rpc_helpers import BOX, Provisioned, client, provision

TIMEOUT = 30


@pytest.fixture
async def running(tmp_path: Path, nursery: trio.Nursery) -> AsyncIterator[tuple[Node, str,
                                                                                Provisioned]]:
    p = provision(tmp_path / "node")
    node = Node(p.data, handle_signals=False)
    with trio.fail_after(TIMEOUT):
        url = await nursery.start(node.run)
    yield node, url, p
    node.stop()


async def events(lines: AsyncIterator[str]) -> AsyncIterator[dict[str, Any]]:
    """Parse an SSE line stream into events (comments and retry lines skipped)."""
    ev: dict[str, Any] = {}
    async for line in lines:
        if line == "":
            if "data" in ev:
                yield ev
            ev = {}
        elif not line.startswith(":"):
            name, _, value = line.partition(":")
            ev[name] = value.lstrip(" ")


async def mismatch(c: httpx.AsyncClient, n: int) -> None:
    """A scan that reads the wrong seal: one new seal_mismatch alert per call."""
    r = await c.post("/v1/records", json={"type": "scan", "body": {
        "object": {"kind": "container", "id": BOX}, "place": {"country": "NL"},
        "event": "observe", "seal": f"BAD-{n:06d}"}})
    assert r.status_code == 201, r.text


async def sealed_box(c: httpx.AsyncClient) -> None:
    for t, body in (("container.create", {"container": BOX, "tare_g": 1, "max_gross_g": 2}),
                    ("container.seal", {"container": BOX, "seal": "ACM-000001",
                                        "seal_class": "H"})):
        r = await c.post("/v1/records", json={"type": t, "body": body})
        assert r.status_code == 201, r.text


async def test_stream_delivers_live_and_resumes_without_loss_or_duplicates(
        running: tuple[Node, str, Provisioned]) -> None:
    node, url, p = running
    tokens = p.data.tokens()
    with trio.fail_after(TIMEOUT):
        async with client(url, tokens.write) as w, client(url, tokens.read) as r:
            await sealed_box(w)
            seen: list[dict[str, Any]] = []
            async with r.stream("GET", "/v1/alerts/stream") as resp:
                assert resp.status_code == 200
                assert resp.headers["content-type"].startswith("text/event-stream")
                stream = events(resp.aiter_lines())
                await mismatch(w, 1)  # live, after the stream opened
                seen.append(await stream.__anext__())
                await mismatch(w, 2)
                seen.append(await stream.__anext__())
            # Disconnected: two more alerts happen meanwhile.
            await mismatch(w, 3)
            await mismatch(w, 4)
            last = seen[-1]["id"]
            async with r.stream("GET", "/v1/alerts/stream",
                                headers={"Last-Event-ID": last}) as resp:
                stream = events(resp.aiter_lines())
                seen.append(await stream.__anext__())
                seen.append(await stream.__anext__())
                await mismatch(w, 5)  # and live again after the catch-up
                seen.append(await stream.__anext__())
        ids = [int(e["id"]) for e in seen]
        assert ids == sorted(set(ids))
        assert len(ids) == 5
        assert all(e["event"] == "alert" for e in seen)
        data = [json.loads(e["data"]) for e in seen]
        assert [d["cursor"] for d in data] == ids
        assert {d["rule"] for d in data} == {"seal_mismatch"}
        assert [d["reason"].split()[1] for d in data] == [f"BAD-{n:06d}" for n in range(1, 6)]


async def test_stream_since_and_filters(running: tuple[Node, str, Provisioned]) -> None:
    node, url, p = running
    tokens = p.data.tokens()
    with trio.fail_after(TIMEOUT):
        async with client(url, tokens.write) as w, client(url, tokens.read) as r:
            await sealed_box(w)
            for n in range(3):
                await mismatch(w, n)
            async with r.stream("GET", "/v1/alerts/stream", params={"since": 1}) as resp:
                got = await events(resp.aiter_lines()).__anext__()
                assert got["id"] == "2"
            q = {"severity": "critical", "subject": f"container:{BOX}"}
            async with r.stream("GET", "/v1/alerts/stream", params=q) as resp:
                assert (await events(resp.aiter_lines()).__anext__())["id"] == "1"
            bad = await r.get("/v1/alerts/stream", params={"severity": "loud"})
            assert bad.status_code == 400
            bad = await r.get("/v1/alerts/stream", headers={"Last-Event-ID": "x"})
            assert bad.status_code == 400
            assert bad.json()["error"]["field"] == "Last-Event-ID"


async def test_open_streams_end_when_the_node_stops(running: tuple[Node, str, Provisioned]
                                                    ) -> None:
    node, url, p = running
    with trio.fail_after(TIMEOUT):
        async with client(url, p.data.tokens().read) as r, \
                r.stream("GET", "/v1/alerts/stream") as resp:
            assert resp.status_code == 200
            t0 = trio.current_time()
            node.stop()
            async for _ in resp.aiter_lines():
                pass
            assert trio.current_time() - t0 < 5
