"""Open disputes: `GET /v1/disputes` and `sealchain disputes`, against a real node.

A real double hand-over (two signed offers of one container from the same custody
head, imported as signed records) makes the container disputed: listed once, with
the rule and both offers as evidence, and counted in `GET /v1/status` and
`sealchain status` as `open_disputes`. An honest log lists none and counts 0.

Policy: loopback only, port 0, an absolute timeout on every networked test.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from node.daemon import Node
from node.scenario import Party, World
from tests.rpc_helpers import BOX, BOX2, ROOT, SEALCHAIN, client, provision, start, stop

TIMEOUT = 30


def double_handover(w: World, holder: Party, to: tuple[Party, Party], number: str
                    ) -> list[Any]:
    """`holder` creates container `number` and offers it, from the same head, to two parties."""
    create = w.create_container(holder, number)
    obj = {"kind": "container", "id": number}
    offers = [w.sign(holder, "handover.offer", {"object": obj, "to": p.pub, "head": create.id})
              for p in to]
    return [create, *offers]


async def open_disputes(read: httpx.AsyncClient) -> int:
    r = await read.get("/v1/status")
    assert r.status_code == 200, r.text
    count = r.json()["open_disputes"]
    assert isinstance(count, int)
    return count


async def import_raw(http: httpx.AsyncClient, records: list[Any]) -> None:
    r = await http.post("/v1/records/raw", json={"records": [x.wire.hex() for x in records]})
    assert r.status_code == 201, r.text
    assert all(o["status"] == "stored" for o in r.json()["results"]), r.text


@pytest.fixture
async def running(tmp_path: Path, nursery: trio.Nursery) -> AsyncIterator[tuple[Any, ...]]:
    p = provision(tmp_path / "node")
    node = Node(p.data, handle_signals=False)
    with trio.fail_after(TIMEOUT):
        url = await nursery.start(node.run)
    tokens = p.data.tokens()
    async with client(url, tokens.write) as w, client(url, tokens.read) as r, \
            client(url, None) as anon:
        yield p, w, r, anon
    node.stop()


async def test_double_handover_is_listed_once_and_an_honest_log_lists_none(
        running: tuple[Any, ...]) -> None:
    p, write, read, anon = running
    w, me, carrier, customs = p.world, p.me, p.carrier, p.customs
    with trio.fail_after(TIMEOUT):
        # honest traffic, with an alert that is not a dispute (a seal seen that differs)
        r = await write.post("/v1/records", json={"type": "container.create", "body": {
            "container": BOX, "tare_g": 2_000_000, "max_gross_g": 30_000_000}})
        assert r.status_code == 201, r.text
        r = await write.post("/v1/records", json={"type": "container.seal", "body": {
            "container": BOX, "seal": "ACM-000001", "seal_class": "H"}})
        assert r.status_code == 201, r.text
        r = await write.post("/v1/records", json={"type": "scan", "body": {
            "object": {"kind": "container", "id": BOX}, "place": {"country": "NL"},
            "event": "observe", "seal": "XYZ-999999"}})
        assert r.status_code == 201, r.text
        alerts = (await read.get("/v1/alerts")).json()["alerts"]
        assert [a["rule"] for a in alerts] == ["seal_mismatch"]
        assert (await read.get("/v1/disputes")).json() == {"disputes": [], "next": None}
        assert await open_disputes(read) == 0  # an alert, but no dispute

        records = double_handover(w, carrier, (me, customs), BOX2)
        await import_raw(write, records)
        assert await open_disputes(read) == 1
        offers = sorted(x.id.hex() for x in records[1:])
        body = (await read.get("/v1/disputes")).json()  # the read token suffices
        assert body["next"] is None
        (d,) = body["disputes"]
        assert (d["kind"], d["id"]) == ("container", BOX2)
        assert d["rules"] == ["double_handover"]
        assert d["evidence"] == offers
        assert [a["rule"] for a in d["alerts"]] == ["double_handover"]
        assert d["alerts"][0]["evidence"] == offers
        # the container's own view agrees: disputed at the head both offers name
        view = (await read.get(f"/v1/containers/{BOX2}")).json()
        assert view["custody"]["disputed"] is True
        assert sorted(view["custody"]["conflicting_offers"]) == offers

        # the same records again change nothing: still one object, one alert
        r = await write.post("/v1/records/raw", json={"records": [x.wire.hex()
                                                                  for x in records]})
        assert {o["status"] for o in r.json()["results"]} == {"duplicate"}
        assert len((await read.get("/v1/disputes")).json()["disputes"]) == 1
        assert await open_disputes(read) == 1

        assert (await anon.get("/v1/disputes")).status_code == 401


async def test_disputes_are_paged_in_kind_and_id_order(running: tuple[Any, ...]) -> None:
    p, write, read, _anon = running
    w, me, carrier, customs = p.world, p.me, p.carrier, p.customs
    with trio.fail_after(TIMEOUT):
        # BOX2 (MSCU…) first, then BOX (CSQU…): the listing is by id, not arrival
        await import_raw(write, double_handover(w, carrier, (me, customs), BOX2))
        await import_raw(write, double_handover(w, carrier, (me, customs), BOX))
        first = (await read.get("/v1/disputes", params={"limit": 1})).json()
        assert [d["id"] for d in first["disputes"]] == [BOX]
        assert first["next"] == f"container:{BOX}"
        second = (await read.get("/v1/disputes", params={"limit": 1,
                                                         "after": first["next"]})).json()
        assert [d["id"] for d in second["disputes"]] == [BOX2]
        assert second["next"] is None
        everything = (await read.get("/v1/disputes")).json()
        assert [d["id"] for d in everything["disputes"]] == [BOX, BOX2]
        assert await open_disputes(read) == 2  # objects, whatever the page size
        for bad in ("container", "nothing:X", ":X", "container:"):
            r = await read.get("/v1/disputes", params={"after": bad})
            assert r.status_code == 400, bad
            assert r.json()["error"]["field"] == "after"
        r = await read.get("/v1/disputes", params={"limit": 0})
        assert r.status_code == 400
        assert r.json()["error"]["field"] == "limit"


def test_cli_disputes_table_json_and_help(tmp_path: Path) -> None:
    p = provision(tmp_path / "node")
    proc = start(p.data.path)
    try:
        def sc(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run([*SEALCHAIN, *args], cwd=ROOT, capture_output=True,
                                  text=True, timeout=60)

        res = sc("disputes", "--help")
        assert res.returncode == 0
        assert "--json" in res.stdout
        res = sc("disputes", "--data", str(p.data.path))
        assert res.returncode == 0, res.stderr
        assert "0 disputed" in res.stdout
        res = sc("status", "--data", str(p.data.path))
        assert res.returncode == 0, res.stderr
        assert status_row(res.stdout, "disputes") == "0"

        records = double_handover(p.world, p.carrier, (p.me, p.customs), BOX2)
        url = p.data.rpc_url()
        with httpx.Client(base_url=url, timeout=10.0, headers={
                "Authorization": f"Bearer {p.data.tokens().write}"}) as http:
            r = http.post("/v1/records/raw", json={"records": [x.wire.hex() for x in records]})
            assert r.status_code == 201, r.text

        res = sc("disputes", "--data", str(p.data.path))
        assert res.returncode == 0, res.stderr
        lines = res.stdout.splitlines()
        assert lines[0].split() == ["kind", "id", "rules", "since", "evidence"]
        (row,) = [ln for ln in lines if BOX2 in ln]
        assert row.split()[:3] == ["container", BOX2, "double_handover"]
        assert "1 disputed" in res.stdout

        res = sc("disputes", "--data", str(p.data.path), "--json")
        assert res.returncode == 0, res.stderr
        (d,) = json.loads(res.stdout)["disputes"]
        assert d["id"] == BOX2
        assert d["evidence"] == sorted(x.id.hex() for x in records[1:])

        res = sc("status", "--data", str(p.data.path))
        assert res.returncode == 0, res.stderr
        assert status_row(res.stdout, "disputes") == "1"
        res = sc("status", "--data", str(p.data.path), "--json")
        assert res.returncode == 0, res.stderr
        assert json.loads(res.stdout)["open_disputes"] == 1
    finally:
        stop(proc)


def status_row(table: str, name: str) -> str:
    """The value of row `name` in `sealchain status`'s table."""
    (row,) = [ln for ln in table.splitlines() if ln.startswith(name + " ")]
    return row[len(name):].strip()


async def test_openapi_documents_the_count(running: tuple[Any, ...]) -> None:
    _p, _write, read, _anon = running
    with trio.fail_after(TIMEOUT):
        doc = (await read.get("/v1/openapi.json")).json()
        status = doc["components"]["schemas"]["Status"]
        assert "open_disputes" in status["required"]
        assert status["properties"]["open_disputes"]["type"] == "integer"
        assert set(status["required"]) <= set((await read.get("/v1/status")).json())


def test_the_dispute_count_is_recounted_when_a_dispute_comes_and_goes(tmp_path: Path) -> None:
    """`Ledger.disputes_version`, which keeps the status count, goes up when a dispute is
    raised and when it is withdrawn (the double hand-over's author turns out revoked before
    it), and not for records that change no dispute."""
    from node.ledger import Ledger
    from node.store import Store
    from node.summary import open_disputes, reader_of

    w = World.create(seed=21)
    holder = w.party("carrier", "Rhine Freight", ["NL"])
    to = (w.party("carrier", "Fast Lines", ["NL"]), w.party("carrier", "Slow Lines", ["NL"]))
    w.tick()
    revoke = w.revoke(holder)
    w.tick()
    offers = double_handover(w, holder, to, BOX2)
    scan = w.scan(to[0], "container", BOX, country="NL")
    store = Store.open(tmp_path / "db")
    try:
        led = Ledger(store, w.genesis)

        def count() -> int:
            return len(open_disputes(reader_of(led, w.now))[0])

        held = [r for r in w.records if r.id not in {revoke.id, scan.id, *(o.id for o in offers)}]
        led.submit([r.wire for r in held], w.now)
        assert (led.disputes_version, count()) == (0, 0)
        led.submit([o.wire for o in offers], w.now)
        assert (led.disputes_version, count()) == (1, 1)
        led.submit([scan.wire], w.now)
        assert (led.disputes_version, count()) == (1, 1)  # no dispute changed
        led.submit([revoke.wire], w.now)  # the offers stop counting: withdrawn
        assert (led.disputes_version, count()) == (2, 0)
    finally:
        store.close()
