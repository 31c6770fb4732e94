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
from tests import examples as ex
from tests.rpc_helpers import BOX, BOX2, Provisioned, client, provision

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


# -- the push filter for local clients: what the alert concerns --------------------


def import_story(p: Provisioned) -> list[str]:
    """Carrier records (hex wires): BOX shipped to Hamburg and declared in DE; BOX2
    shipped Shanghai → Rotterdam; a wrong seal seen on each (one alert each)."""
    w, c = p.world, p.carrier
    start = len(w.records)
    for number in (BOX, BOX2):
        w.tick()
        w.create_container(c, number)
        w.seal(c, number, "ML-4512345")
    hamburg = ex.place(country="DE", locode="DEHAM", gln=None, name="Hamburg")
    w.sign(c, "shipment.create", ex.shipment_create(shipment="SHP-DE", destination=hamburg,
                                                    containers=[BOX]))
    w.sign(c, "shipment.create", ex.shipment_create(shipment="SHP-NL", containers=[BOX2]))
    w.sign(c, "customs.declaration", ex.customs_declaration(
        shipment="SHP-DE", jurisdiction="DE", containers=[BOX]))
    for number in (BOX, BOX2):
        w.tick()
        w.scan(c, "container", number, country="DE", seal="XX-0000001")
    return [r.wire.hex() for r in w.records[start:]]


async def test_alerts_filtered_by_what_they_concern(running: tuple[Node, str, Provisioned]
                                                    ) -> None:
    node, url, p = running
    tokens = p.data.tokens()
    with trio.fail_after(TIMEOUT):
        async with client(url, tokens.write) as w, client(url, tokens.read) as r:
            resp = await w.post("/v1/records/raw", json={"records": import_story(p)})
            assert resp.status_code == 201, resp.text

            async def subjects(params: Any) -> set[str]:
                resp = await r.get("/v1/alerts", params=params)
                assert resp.status_code == 200, resp.text
                return {a["subject"]["id"] for a in resp.json()["alerts"]
                        if a["rule"] == "seal_mismatch"}

            assert await subjects({}) == {BOX, BOX2}
            assert await subjects({"jurisdiction": "de"}) == {BOX}  # declared in, bound for
            assert await subjects({"jurisdiction": "CN"}) == {BOX, BOX2}  # both from Shanghai
            assert await subjects({"container": BOX2}) == {BOX2}
            assert await subjects({"container": f"{BOX2},{BOX}"}) == {BOX, BOX2}
            assert await subjects([("shipment", "SHP-NL"), ("shipment", "SHP-DE")]) == {BOX, BOX2}
            assert await subjects({"shipment": "SHP-NL", "jurisdiction": "DE"}) == set()
            assert await subjects({"mark": "ACME"}) == set()  # no goods in these containers
            assert await subjects({"brand": p.me.pub.hex()}) == set()
            assert await subjects({"container": BOX, "severity": "critical"}) == {BOX}

            before = (await r.get("/v1/alerts", params={"limit": 1000})).json()["next"]
            q = {"jurisdiction": "NL", "container": BOX2}
            async with r.stream("GET", "/v1/alerts/stream", params=q) as resp:
                assert resp.status_code == 200
                stream = events(resp.aiter_lines())
                got = [json.loads((await stream.__anext__())["data"])]
                p.world.tick()
                wires = [p.world.scan(p.carrier, "container", n, country="DE",
                                      seal=f"XX-{n}").wire.hex() for n in (BOX, BOX2)]
                assert (await w.post("/v1/records/raw", json={"records": wires})).status_code \
                    == 201
                while got[-1]["cursor"] <= before:  # the backlog, then the live one
                    got.append(json.loads((await stream.__anext__())["data"]))
            assert {a["subject"]["id"] for a in got} == {BOX2}
            live = got[-1]
            assert live["rule"] == "seal_mismatch"
            assert f"XX-{BOX2}" in live["reason"]
            everything = (await r.get("/v1/alerts", params={"since": before})).json()["alerts"]
            assert {a["subject"]["id"] for a in everything if a["cursor"] < live["cursor"]} \
                == {BOX}  # BOX's new alert came first, and the stream skipped it

            for bad, name in (({"container": "CSQU3054384"}, "container"),
                              ({"jurisdiction": "NLD"}, "jurisdiction"),
                              ({"brand": "did:key:zzz"}, "brand"),
                              ({"shipment": "no spaces"}, "shipment")):
                for path in ("/v1/alerts", "/v1/alerts/stream"):
                    resp = await r.get(path, params=bad)
                    assert resp.status_code == 400, (bad, resp.text)
                    assert resp.json()["error"]["field"] == name
