"""The RPC against a real node over real HTTP: every endpoint, auth, bad input, conflicts.

Policy: loopback only, port 0, an absolute timeout on every test (`trio.fail_after`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from crypto import merkle
from crypto.didkey import did_from_public
from node import audit
from node.daemon import Node, peer_id
from node.scenario import tokens_of
from node.writer import SMALL_GROUP
from protocol.bodies import token_id
from protocol.envelope import Record
from tests.rpc_helpers import BOX, BOX2, GTIN, Provisioned, client, mint_body, provision

TIMEOUT = 30


@dataclass
class Running:
    node: Node
    url: str
    p: Provisioned
    write: httpx.AsyncClient
    read: httpx.AsyncClient


@pytest.fixture
async def rpc(tmp_path: Path, nursery: trio.Nursery) -> AsyncIterator[Running]:
    p = provision(tmp_path / "node")
    node = Node(p.data, handle_signals=False)
    with trio.fail_after(TIMEOUT):
        url = await nursery.start(node.run)
    tokens = p.data.tokens()
    async with client(url, tokens.write) as w, client(url, tokens.read) as r:
        yield Running(node, url, p, w, r)
    node.stop()


def err(resp: httpx.Response) -> dict[str, Any]:
    body = resp.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "field", "message"}
    return body["error"]  # type: ignore[no-any-return]


async def post(rpc: Running, type_name: str, body: dict[str, Any]) -> httpx.Response:
    return await rpc.write.post("/v1/records", json={"type": type_name, "body": body})


async def create_box(rpc: Running, number: str = BOX) -> str:
    r = await post(rpc, "container.create", {"container": number, "tare_g": 2_000_000,
                                             "max_gross_g": 30_000_000})
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


# -- status and auth -----------------------------------------------------------------------


async def test_status(rpc: Running) -> None:
    with trio.fail_after(TIMEOUT):
        r = await rpc.read.get("/v1/status")
        assert r.status_code == 200
        assert "server" not in r.headers  # no software banner
        assert "date" in r.headers
        s = r.json()
        me = rpc.p.me.pub
        assert s["did"] == did_from_public(me)
        assert s["peer_id"] == peer_id(me)
        assert s["peer_id"].startswith("12D3KooW")
        assert s["roles"] == ["brand"]
        assert s["credential"] == "valid"
        assert s["network_id"] == rpc.p.world.genesis.network_id.hex()
        assert s["record_count"] == len(rpc.p.world.records)
        assert s["author_count"] == 1
        assert len(s["state_root"]) == 64
        assert s["connected_peers"] == []
        assert s["version"]


async def test_peer_id_matches_libp2p() -> None:
    p2p = pytest.importorskip("node.p2p")
    key = bytes(range(32))
    assert peer_id(key) == p2p.peer_id_of(key)


async def test_tokens_are_required(rpc: Running) -> None:
    with trio.fail_after(TIMEOUT):
        async with client(rpc.url, None) as anon, client(rpc.url, "wrong-token") as wrong:
            for c in (anon, wrong):
                r = await c.get("/v1/status")
                assert r.status_code == 401
                assert r.headers["www-authenticate"] == "Bearer"
                assert err(r)["code"] == "unauthorized"
                r = await c.post("/v1/records", json={"type": "scan", "body": {}})
                assert r.status_code == 401
            r = await anon.get("/metrics")
            assert r.status_code == 401
            r = await anon.get("/v1/openapi.json")  # the API description is public
            assert r.status_code == 200
            r = await anon.get("/v1/status", headers={"Authorization": "Basic Zm9vOmJhcg=="})
            assert r.status_code == 401


async def test_read_only_token_cannot_write(rpc: Running) -> None:
    with trio.fail_after(TIMEOUT):
        for path in ("/v1/records", "/v1/records/batch", "/v1/records/raw"):
            r = await rpc.read.post(path, json={"type": "product.mint", "body": mint_body(["A"])})
            assert r.status_code == 403
            assert err(r)["code"] == "read_only"
        assert (await rpc.read.get("/v1/status")).status_code == 200
        assert (await rpc.write.get("/v1/status")).status_code == 200


# -- writes ----------------------------------------------------------------------------------


async def test_post_record_is_signed_durable_and_readable(rpc: Running) -> None:
    with trio.fail_after(TIMEOUT):
        r = await post(rpc, "product.mint", mint_body(["A1", "A2"]))
        assert r.status_code == 201
        ack = r.json()
        assert ack["seq"] == 1
        assert ack["type"] == "product.mint"
        got = (await rpc.read.get(f"/v1/records/{ack['id']}")).json()
        assert got["author"] == did_from_public(rpc.p.me.pub)
        assert got["body"]["serials"] == ["A1", "A2"]
        assert got["prev"] is None
        # The wire is the signed record: anyone can check it.
        rec = Record.from_bytes(bytes.fromhex(got["wire"]))
        assert rec.id.hex() == ack["id"]
        # Durable: it is in the store the moment the 201 came back.
        assert rpc.node.store.record(rec.id) == rec.wire


async def test_batch_is_all_or_nothing(rpc: Running) -> None:
    with trio.fail_after(TIMEOUT):
        good = {"type": "product.mint", "body": mint_body(["B1"])}
        bad = {"type": "container.create", "body": {"container": "CSQU3054384", "tare_g": 1,
                                                    "max_gross_g": 2}}
        r = await rpc.write.post("/v1/records/batch", json={"records": [good, bad, good]})
        assert r.status_code == 400
        e = err(r)
        assert e["field"] == "records[1].body.container"
        assert e["code"] == "iso6346.check_digit"
        assert rpc.node.ledger.head(rpc.p.me.pub) is None  # nothing written
        r = await rpc.write.post("/v1/records/batch", json={"records": [
            good, {"type": "product.mint", "body": mint_body(["B2"])}]})
        assert r.status_code == 201
        assert [a["seq"] for a in r.json()["records"]] == [1, 2]


async def test_batch_limits(rpc: Running) -> None:
    with trio.fail_after(TIMEOUT):
        r = await rpc.write.post("/v1/records/batch", json={"records": []})
        assert err(r)["field"] == "records"
        entry = {"type": "scan", "body": {}}
        r = await rpc.write.post("/v1/records/batch", json={"records": [entry] * 1001})
        assert r.status_code == 400
        assert err(r)["code"] == "length"
        r = await rpc.write.post("/v1/records/batch", json={"records": [], "extra": 1})
        assert err(r)["field"] == "extra"
        r = await rpc.write.post("/v1/records/batch", json=[entry])
        assert r.status_code == 400


@pytest.mark.parametrize(("payload", "status", "field", "code"), [
    (b"{not json", 400, "body", "json"),
    (b"\xff\xfe", 400, "body", "json"),
    (b'{"type": "scan", "body": NaN}', 400, "body", "json"),
    (b"[" * 100_000 + b"]" * 100_000, 400, "body", "json"),
    (b'"just a string"', 400, "body", "type"),
    (b'{"type": "scan"}', 400, "body", "required"),
    (b'{"body": {}}', 400, "type", "required"),
    (b'{"type": "nope", "body": {}}', 400, "type", "unknown"),
    (b'{"type": 7, "body": {}}', 400, "type", "type"),
    (b'{"type": "scan", "body": [], "x": 1}', 400, "x", "unknown"),
    (b'{"type": "scan", "body": []}', 400, "body", "type"),
])
async def test_malformed_requests(rpc: Running, payload: bytes, status: int, field: str,
                                  code: str) -> None:
    with trio.fail_after(TIMEOUT):
        r = await rpc.write.post("/v1/records", content=payload,
                                 headers={"Content-Type": "application/json"})
        assert r.status_code == status, r.text
        e = err(r)
        assert e["field"] == field
        assert e["code"] == code


@pytest.mark.parametrize(("body", "field", "code"), [
    ({**mint_body(["A"]), "serials": "A"}, "body.serials", "type"),
    ({**mint_body(["A"]), "serials": ["B", "A"]}, "body.serials[1]", "order"),
    ({**mint_body(["A"]), "extra": 1}, "body.extra", "unknown"),
    ({**mint_body(["A"]), "expiry": 1.5}, "body.expiry", "type"),
    ({**mint_body(["A"]), "expiry": True}, "body.expiry", "type"),
    ({**mint_body(["A"]), "expiry": None}, "body.expiry", "null"),
    ({**mint_body(["A"]), "gtin": "09506000134353"}, "body.gtin", "gtin.check_digit"),
    ({k: v for k, v in mint_body(["A"]).items() if k != "lot"}, "body.lot", "required"),
])
async def test_invalid_bodies_name_the_field(rpc: Running, body: dict[str, Any], field: str,
                                             code: str) -> None:
    with trio.fail_after(TIMEOUT):
        r = await post(rpc, "product.mint", body)
        assert r.status_code == 400, r.text
        e = err(r)
        assert e["field"] == field
        assert e["code"] == code


async def test_bad_bytes_fields(rpc: Running) -> None:
    with trio.fail_after(TIMEOUT):
        obj = {"kind": "container", "id": BOX}
        for to, code in (("zz" * 32, "hex"), (12, "type"), ("did:key:zBad", "did"),
                         ("ab", "length")):
            r = await post(rpc, "handover.offer", {"object": obj, "to": to})
            assert r.status_code == 400, r.text
            e = err(r)
            assert e["field"] == "body.to"
            assert e["code"] == code


async def test_oversized_body_is_413(rpc: Running) -> None:
    with trio.fail_after(TIMEOUT):
        big = b'{"type": "scan", "body": {"x": "' + b"a" * (2 << 20) + b'"}}'
        r = await rpc.write.post("/v1/records", content=big,
                                 headers={"Content-Type": "application/json"})
        assert r.status_code == 413
        assert err(r)["code"] == "too_large"

        async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted as it streams
            for _ in range(40):
                yield b" " * 65536

        r = await rpc.write.post("/v1/records", content=chunks())
        assert r.status_code == 413


async def test_role_the_credential_does_not_grant_is_403(rpc: Running) -> None:
    with trio.fail_after(TIMEOUT):
        r = await post(rpc, "customs.action", {"subject": {"kind": "container", "id": BOX},
                                               "action": "hold"})
        assert r.status_code == 403
        e = err(r)
        assert e["code"] == "role"
        assert e["field"] == "type"
        foreign = {**mint_body(["A"]), "gtin": "04006381333931"}  # not our GS1 prefix
        r = await post(rpc, "product.mint", foreign)
        assert r.status_code == 403
        assert err(r)["code"] == "trademark"


async def test_concurrent_posts_share_writes_and_fail_alone(rpc: Running) -> None:
    with trio.fail_after(TIMEOUT):
        results: dict[int, httpx.Response] = {}

        async def one(i: int) -> None:
            body = mint_body([f"C{i:03d}"])
            if i == 7:
                body["gtin"] = "123"
            results[i] = await post(rpc, "product.mint", body)

        async with trio.open_nursery() as n:
            for i in range(40):
                n.start_soon(one, i)
        assert results.pop(7).status_code == 400
        assert all(r.status_code == 201 for r in results.values())
        assert sorted(r.json()["seq"] for r in results.values()) == list(range(1, 40))
        assert rpc.node.writer.groups < 40  # some requests shared a synced write


async def test_small_groups_are_staged_in_the_trio_thread_and_large_ones_are_not(
        rpc: Running) -> None:
    with trio.fail_after(TIMEOUT):
        writer = rpc.node.writer
        before = writer.staged_groups
        r = await post(rpc, "product.mint", mint_body(["S001"]))
        assert r.status_code == 201, r.text
        assert writer.staged_groups == before + 1
        batch = {"records": [{"type": "product.mint", "body": mint_body([f"S{i:03d}"])}
                             for i in range(2, 2 + SMALL_GROUP + 1)]}
        r = await rpc.write.post("/v1/records/batch", json=batch)
        assert r.status_code == 201, r.text
        assert writer.staged_groups == before + 1  # over SMALL_GROUP: the worker thread's
        seqs = [x["seq"] for x in r.json()["records"]]
        assert seqs == list(range(2, 2 + SMALL_GROUP + 1))
        async with writer.lock:  # both ways: what is stored agrees with the records alone
            assert audit.check(rpc.node.ledger.store, rpc.node.genesis) == []


# -- custody conflicts -----------------------------------------------------------------------


async def test_handover_conflicts_are_409(rpc: Running) -> None:
    with trio.fail_after(TIMEOUT):
        w, carrier = rpc.p.world, rpc.p.carrier
        head = await create_box(rpc)
        obj = {"kind": "container", "id": BOX}
        r = await post(rpc, "handover.offer", {"object": obj, "to": did_from_public(carrier.pub)})
        assert r.status_code == 201, r.text
        offer = r.json()["id"]
        r = await post(rpc, "handover.offer", {"object": obj, "to": carrier.pub.hex()})
        assert r.status_code == 409
        assert "already offered" in err(r)["message"]
        # The carrier accepts (signed elsewhere, imported as a signed record).
        accept = w.sign(carrier, "handover.accept", {"offer": bytes.fromhex(offer), "object": obj,
                                                     "head": bytes.fromhex(head)})
        r = await rpc.write.post("/v1/records/raw", json={"records": [accept.wire.hex()]})
        assert r.status_code == 201
        assert r.json()["results"][0]["status"] == "stored"
        view = (await rpc.read.get(f"/v1/containers/{BOX}")).json()
        assert view["custody"]["holder"]["did"] == did_from_public(carrier.pub)
        r = await post(rpc, "handover.offer", {"object": obj, "to": carrier.pub.hex()})
        assert r.status_code == 409
        assert "does not hold" in err(r)["message"]
        # Unknown objects and stale heads are conflicts too.
        r = await post(rpc, "handover.offer", {"object": {"kind": "container", "id": BOX2},
                                               "to": carrier.pub.hex()})
        assert r.status_code == 409


async def test_accept_an_offer_made_to_the_node(rpc: Running) -> None:
    with trio.fail_after(TIMEOUT):
        w, carrier, me = rpc.p.world, rpc.p.carrier, rpc.p.me
        create = w.create_container(carrier, BOX2)
        obj = {"kind": "container", "id": BOX2}
        offer = w.sign(carrier, "handover.offer", {"object": obj, "to": me.pub,
                                                   "head": create.id})
        r = await rpc.write.post("/v1/records/raw", json={"records": [
            w.records[-2].wire.hex(), offer.wire.hex()]})
        assert r.status_code == 201
        r = await post(rpc, "handover.accept", {"offer": offer.id.hex(),
                                                "object": {"kind": "container", "id": BOX}})
        assert r.status_code == 400
        assert err(r)["field"] == "body.object"
        r = await post(rpc, "handover.accept", {"offer": "ab" * 32, "object": obj})
        assert r.status_code == 409
        r = await post(rpc, "handover.accept", {"offer": offer.id.hex(), "object": obj})
        assert r.status_code == 201, r.text
        view = (await rpc.read.get(f"/v1/containers/{BOX2}")).json()
        assert view["custody"]["holder"]["did"] == did_from_public(me.pub)
        assert view["custody"]["steps"][0]["offer"] == offer.id.hex()


# -- raw imports: forged and replayed input ------------------------------------------------------


async def test_raw_submit_is_idempotent_and_rejects_forgeries(rpc: Running) -> None:
    with trio.fail_after(TIMEOUT):
        w, carrier = rpc.p.world, rpc.p.carrier
        rec = w.scan(carrier, "container", BOX, country="NL")
        r = await rpc.write.post("/v1/records/raw", json={"records": [rec.wire.hex()]})
        assert r.status_code == 201
        assert r.json()["results"] == [{"id": rec.id.hex(), "status": "stored", "reason": None}]
        r = await rpc.write.post("/v1/records/raw", json={"records": [rec.wire.hex()]})
        assert r.status_code == 200
        assert r.json()["results"][0]["status"] == "duplicate"
        forged = bytearray(rec.wire)
        forged[-1] ^= 1  # the signature
        r = await rpc.write.post("/v1/records/raw", json={"records": [bytes(forged).hex()]})
        assert r.status_code == 400
        assert err(r)["field"] == "records[0]"
        r = await rpc.write.post("/v1/records/raw", json={"records": ["zz"]})
        assert err(r)["field"] == "records[0]"
        r = await rpc.write.post("/v1/records/raw", json={"records": ["00"]})
        assert r.status_code == 400
        feed = (await rpc.read.get(f"/v1/feeds/{carrier.pub.hex()}")).json()
        assert [x["id"] for x in feed["records"]][-1] == rec.id.hex()


# -- reads ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("path", "status", "field", "code"), [
    ("/v1/containers/CSQU3054384", 400, "id", "iso6346.check_digit"),
    ("/v1/containers/nonsense", 400, "id", "length"),
    ("/v1/containers/" + BOX2, 404, None, "not_found"),
    ("/v1/tokens/xyz", 400, "id", "format"),
    ("/v1/tokens/" + "ab" * 32, 404, None, "not_found"),
    ("/v1/records/" + "AB" * 32, 400, "id", "format"),
    ("/v1/records/" + "ab" * 32, 404, None, "not_found"),
    ("/v1/feeds/did:key:z6MkBad", 400, "author", "did"),
    ("/v1/feeds/" + "ab" * 32, 404, None, "not_found"),
    ("/v1/shipments/bad id!", 400, "id", "format"),
    ("/v1/shipments/SHP-404", 404, None, "not_found"),
    ("/v1/alerts?since=-1", 400, "since", "type"),
    ("/v1/alerts?severity=loud", 400, "severity", "enum"),
    ("/v1/alerts?subject=planet:x", 400, "subject", "enum"),
    ("/v1/alerts?limit=0", 400, "limit", "range"),
    ("/v1/containers/" + BOX + "/items/" + "ab" * 32 + "/proof", 404, None, "not_found"),
    ("/v1/nowhere", 404, None, "not_found"),
])
async def test_bad_identifiers_and_unknown_ids(rpc: Running, path: str, status: int,
                                               field: str | None, code: str) -> None:
    with trio.fail_after(TIMEOUT):
        r = await rpc.read.get(path)
        assert r.status_code == status, r.text
        e = err(r)
        assert e["field"] == field
        assert e["code"] == code


async def test_wrong_method_is_405(rpc: Running) -> None:
    with trio.fail_after(TIMEOUT):
        r = await rpc.write.delete("/v1/status")
        assert r.status_code == 405
        assert err(r)["code"] == "method_not_allowed"


async def test_feed_paging(rpc: Running) -> None:
    with trio.fail_after(TIMEOUT):
        for i in range(5):
            assert (await post(rpc, "product.mint", mint_body([f"F{i}"]))).status_code == 201
        me = did_from_public(rpc.p.me.pub)
        page = (await rpc.read.get(f"/v1/feeds/{me}", params={"limit": 2})).json()
        assert [x["seq"] for x in page["records"]] == [1, 2]
        assert page["next"] == 3
        assert page["head"]["seq"] == 5
        page = (await rpc.read.get(f"/v1/feeds/{me}", params={"from": 4})).json()
        assert [x["seq"] for x in page["records"]] == [4, 5]
        assert page["next"] is None


async def test_token_container_proof_and_shipment_views(rpc: Running) -> None:
    with trio.fail_after(TIMEOUT):
        serials = [f"P{i:03d}" for i in range(5)]
        assert (await post(rpc, "product.mint", mint_body(serials))).status_code == 201
        await create_box(rpc)
        items = sorted(tokens_of(GTIN, serials))
        pack = {"container": BOX, "root": merkle.root(items).hex(), "count": 5, "chunk": 0,
                "chunks": 1, "items": [t.hex() for t in items], "weight_g": 5000}
        r = await post(rpc, "container.pack", pack)
        assert r.status_code == 201, r.text
        r = await post(rpc, "container.seal", {"container": BOX, "seal": "ACM-000001",
                                               "seal_class": "H"})
        assert r.status_code == 201, r.text
        tid = token_id(GTIN, "P002")
        tok = (await rpc.read.get(f"/v1/tokens/{tid.hex()}")).json()
        assert tok["status"] == "packed"
        assert tok["mint"]["serial"] == "P002"
        assert tok["holder"]["did"] == did_from_public(rpc.p.me.pub)
        assert tok["containers"][0]["container"] == BOX
        box = (await rpc.read.get("/v1/containers/csqu 305438 3")).json()  # normalised
        assert box["manifest"]["count"] == 5
        assert box["manifest"]["complete"] is True
        assert box["seal"]["status"] == "sealed"
        proof = (await rpc.read.get(f"/v1/containers/{BOX}/items/{tid.hex()}/proof")).json()
        # A third party needs only the pack record (which it can verify) and the proof.
        pack_rec = Record.from_bytes(bytes.fromhex(
            (await rpc.read.get(f"/v1/records/{proof['record']}")).json()["wire"]))
        merkle.verify_inclusion(tid, proof["index"], proof["size"],
                                [bytes.fromhex(h) for h in proof["proof"]], pack_rec.body.root)
        goods = [{"hs": "851712", "description": "Phones", "quantity": 5, "weight_g": 5000}]
        r = await post(rpc, "shipment.create", {
            "shipment": "SHP-1", "origin": {"country": "NL"}, "destination": {"country": "DE"},
            "route": [], "consignor": "ACME", "consignee": "Shop", "containers": [BOX],
            "goods": goods})
        assert r.status_code == 201, r.text
        ship = (await rpc.read.get("/v1/shipments/SHP-1")).json()
        assert ship["containers"][0]["items"] == 5
        assert ship["plan"]["consignee"] == "Shop"


async def test_token_scans_are_paged_not_silently_cut(rpc: Running) -> None:
    with trio.fail_after(TIMEOUT):
        assert (await post(rpc, "product.mint", mint_body(["Q1"]))).status_code == 201
        tid = token_id(GTIN, "Q1").hex()
        at0 = rpc.p.world.now
        scans = [{"type": "scan", "body": {"object": {"kind": "token", "id": tid},
                                           "place": {"country": "NL"}, "event": "observe",
                                           "at": at0 + (i % 3)}} for i in range(7)]
        r = await rpc.write.post("/v1/records/batch", json={"records": scans})
        assert r.status_code == 201, r.text
        ids = [a["id"] for a in r.json()["records"]]
        order = [x[1] for x in sorted((at0 + (i % 3), ids[i]) for i in range(7))]
        path = f"/v1/tokens/{tid}"
        tok = (await rpc.read.get(path, params={"limit": 3})).json()
        assert [s["record"] for s in tok["scans"]] == order[-3:]  # the newest, oldest first
        assert tok["pages"]["scans"] == {"total": 7, "listed": 3, "truncated": True,
                                         "next": None}
        assert tok["pages"]["sensors"] == {"total": 0, "listed": 0, "truncated": False,
                                           "next": None}
        full = (await rpc.read.get(path)).json()["pages"]["scans"]
        assert (full["listed"], full["truncated"]) == (7, False)
        seen: list[str] = []
        cursor: str | None = "0"
        while cursor is not None:
            page = (await rpc.read.get(path, params={"limit": 3, "scans_from": cursor})).json()
            seen += [s["record"] for s in page["scans"]]
            cursor = page["pages"]["scans"]["next"]
            assert len(seen) <= 7
        assert seen == order  # every scan once, in order
        for bad in ("1", "x:" + "ab" * 32, "5:abc", ""):
            r = await rpc.read.get(path, params={"scans_from": bad})
            assert r.status_code == 400, bad
            assert err(r)["field"] == "scans_from"
        r = await rpc.read.get(path, params={"limit": 1001})
        assert err(r)["field"] == "limit"


async def test_alerts_paging_filters_and_metrics(rpc: Running) -> None:
    with trio.fail_after(TIMEOUT):
        await create_box(rpc)
        await post(rpc, "container.seal", {"container": BOX, "seal": "ACM-000001",
                                           "seal_class": "H"})
        r = await post(rpc, "scan", {"object": {"kind": "container", "id": BOX},
                                     "place": {"country": "NL"}, "event": "observe",
                                     "seal": "XYZ-999999"})
        assert r.status_code == 201, r.text
        alerts = (await rpc.read.get("/v1/alerts")).json()
        assert [a["rule"] for a in alerts["alerts"]] == ["seal_mismatch"]
        a = alerts["alerts"][0]
        assert a["subject"] == {"kind": "container", "id": BOX}
        assert r.json()["id"] in a["evidence"]
        assert alerts["next"] == a["cursor"]
        q = {"severity": "critical", "subject": f"container:{BOX}"}
        assert len((await rpc.read.get("/v1/alerts", params=q)).json()["alerts"]) == 1
        q = {"subject": BOX2}
        assert (await rpc.read.get("/v1/alerts", params=q)).json()["alerts"] == []
        later = (await rpc.read.get("/v1/alerts", params={"since": a["cursor"]})).json()
        assert later["alerts"] == []
        m = (await rpc.read.get("/metrics")).text
        assert 'sealchain_alerts_total{rule="seal_mismatch"} 1.0' in m
        assert 'sealchain_records_ingested_total{type="scan"} 1.0' in m
        assert 'sealchain_rpc_requests_total{method="GET",route="/v1/alerts",status="200"}' in m
        assert "sealchain_ingest_latency_seconds_bucket" in m
        assert "sealchain_log_height" in m


async def test_rejections_are_counted_by_type_and_reason(rpc: Running) -> None:
    with trio.fail_after(TIMEOUT):
        w, carrier = rpc.p.world, rpc.p.carrier
        mint = w.sign(carrier, "product.mint", mint_body(["C1"]))  # carriers do not mint
        label = 'sealchain_records_rejected_total{reason="role",type="product.mint"}'

        async def count(label: str) -> float:
            for line in (await rpc.read.get("/metrics")).text.splitlines():
                if line.startswith(label + " "):
                    return float(line.split()[-1])
            return 0.0

        assert await count(label) == 0
        r = await rpc.write.post("/v1/records/raw", json={"records": [mint.wire.hex()]})
        assert r.status_code == 400, r.text
        assert await count(label) == 1
        r = await rpc.write.post("/v1/records/raw", json={"records": ["00"]})  # not a record
        assert r.status_code == 400
        m = (await rpc.read.get("/metrics")).text
        assert 'sealchain_records_rejected_total{reason="' in m
        assert 'type="any"' not in m
        unknown = [x for x in m.splitlines()
                   if x.startswith("sealchain_records_rejected_total{") and 'type="unknown"' in x]
        assert len(unknown) == 1, unknown
        assert unknown[0].endswith(" 1.0"), unknown
        # A body this node refuses to sign is counted by its type too.
        r = await post(rpc, "customs.action", {"subject": {"kind": "container", "id": BOX},
                                               "action": "hold"})
        assert r.status_code == 403
        assert await count('sealchain_records_rejected_total{reason="role",'
                           'type="customs.action"}') == 1


async def test_openapi_describes_every_route(rpc: Running) -> None:
    with trio.fail_after(TIMEOUT):
        doc = (await rpc.read.get("/v1/openapi.json")).json()
        assert doc["openapi"].startswith("3.")
        paths = set(doc["paths"])
        assert paths == {"/v1/status", "/v1/records", "/v1/records/batch", "/v1/records/raw",
                         "/v1/records/{id}", "/v1/feeds/{author}", "/v1/tokens/{id}",
                         "/v1/containers/{id}", "/v1/containers/{id}/verify",
                         "/v1/containers/{id}/items/{token}/proof",
                         "/v1/shipments/{id}", "/v1/alerts", "/v1/alerts/stream", "/metrics",
                         "/v1/disputes", "/v1/openapi.json"}
        schemas = doc["components"]["schemas"]
        assert "Body_product_mint" in schemas
        assert "head" not in schemas["Body_handover_offer"]["required"]


async def test_on_stored_reports_durable_writes_in_the_trio_thread(rpc: Running) -> None:
    with trio.fail_after(TIMEOUT):
        seen: list[tuple[list[str], int]] = []

        def cb(records: list[Any], alerts: list[Any]) -> None:
            trio.lowlevel.current_task()  # raises outside the trio thread
            seen.append(([r.type for r in records], len(alerts)))

        rpc.node.on_stored(cb)
        r = await post(rpc, "product.mint", mint_body(["S1"]))
        assert r.status_code == 201
        assert seen == [(["product.mint"], 0)]


async def test_a_bug_is_a_json_500_and_the_node_keeps_serving(
        rpc: Running, monkeypatch: pytest.MonkeyPatch) -> None:
    with trio.fail_after(TIMEOUT):
        def broken(*args: Any) -> Any:
            raise KeyError("bug")

        monkeypatch.setattr("node.summary.token_view", broken)
        r = await rpc.read.get(f"/v1/tokens/{'ab' * 32}")
        assert r.status_code == 500
        assert err(r)["code"] == "internal"
        assert (await rpc.read.get("/v1/status")).status_code == 200


async def test_writer_call_runs_other_ledger_writes_in_turn(rpc: Running) -> None:
    with trio.fail_after(TIMEOUT):
        w = rpc.p.world
        rec = w.scan(rpc.p.carrier, "container", BOX, country="NL")
        out = await rpc.node.writer.call(lambda: rpc.node.ledger.submit([rec.wire], w.now))
        assert out[0].status == "stored"
        assert await rpc.node.writer.call(lambda: None) is None

        def boom() -> None:
            raise ValueError("boom")

        with pytest.raises(ValueError, match="boom"):
            await rpc.node.writer.call(boom)
        assert (await rpc.read.get("/v1/status")).json()["author_count"] == 2
