"""node.summary: custody walks, container and token views, inclusion proofs a third party checks."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from crypto import merkle
from crypto.didkey import did_from_public
from crypto.errors import VerificationError
from node import summary as S
from node.ledger import Ledger
from node.manifest_proof import inclusion_proof
from node.scenario import World, tokens_of
from node.store import Store
from protocol.bodies import MANIFEST_CHUNK
from protocol.envelope import Record

GTIN = "09506000134352"
BOX = "CSQU3054383"
BOX2 = "MSCU1234566"
TM = {"mark": "ACME", "classes": [9], "markets": ["DE", "NL"], "gs1_prefixes": ["950600"]}


class Journey:
    """A brand packs goods into a container that goes brand -> carrier -> retailer."""

    def __init__(self, n_items: int = 3) -> None:
        w = self.w = World.create(seed=7)
        self.brand = w.party("brand", "ACME Brands", ["NL"], trademarks=[TM])
        self.carrier = w.party("carrier", "Fast Lines")
        self.retailer = w.party("retailer", "Shop BV")
        self.customs = w.party("customs", "NL Customs")
        w.tick()
        self.serials = [f"S{i:05d}" for i in range(n_items)]
        self.mints = w.mint(self.brand, GTIN, "L1", self.serials, mark="ACME", markets=["NL"],
                            facility="9506000000008")
        self.tokens = sorted(tokens_of(GTIN, self.serials))
        w.tick()
        self.create = w.create_container(self.brand, BOX)
        self.packs = w.pack(self.brand, BOX, self.tokens, weight_g=1000)
        self.seal = w.seal(self.brand, BOX, "ACM-000001")
        w.tick()

    def move_container(self) -> None:
        w = self.w
        self.o1, self.a1 = w.handover(self.brand, self.carrier, "container", BOX, self.create.id)
        w.tick()
        self.o2, self.a2 = w.handover(self.carrier, self.retailer, "container", BOX, self.a1.id)
        w.tick()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store.open(tmp_path / "db")
    yield s
    s.close()


def load(store: Store, w: World, records: list[Record] | None = None, *,
         strict: bool = True) -> S.Reader:
    led = Ledger(store, w.genesis)
    out = led.submit([r.wire for r in (records or w.records)], w.now)
    assert not strict or all(o.status in ("stored", "duplicate") for o in out), out
    return S.reader_of(led, w.now)


def did(p: object) -> str:
    return did_from_public(p.pub)  # type: ignore[attr-defined]


def test_container_custody_walks_every_accepted_handover(store: Store) -> None:
    j = Journey()
    j.move_container()
    view = S.container_view(load(store, j.w), BOX)
    c = view["custody"]
    assert c["holder"]["did"] == did(j.retailer)
    assert c["holder"]["org"] == "Shop BV"
    assert [(s["from"]["did"], s["to"]["did"]) for s in c["steps"]] == [
        (did(j.brand), did(j.carrier)), (did(j.carrier), did(j.retailer))]
    assert c["head"] == j.a2.id
    assert not c["disputed"]
    assert c["pending"] is None
    assert view["manifest"]["root"] == merkle.root(j.tokens)
    assert view["manifest"]["complete"]
    assert view["manifest"]["count"] == 3
    assert view["seal"]["status"] == "sealed"
    assert view["seal"]["current"] == "ACM-000001"


def test_offer_not_accepted_is_pending_and_holder_stays(store: Store) -> None:
    j = Journey()
    offer = j.w.sign(j.brand, "handover.offer", {"object": {"kind": "container", "id": BOX},
                                                  "to": j.carrier.pub, "head": j.create.id})
    c = S.container_view(load(store, j.w), BOX)["custody"]
    assert c["holder"]["did"] == did(j.brand)
    assert c["pending"]["offer"] == offer.id
    assert c["pending"]["to"]["did"] == did(j.carrier)


def test_accept_by_someone_else_does_not_move_custody(store: Store) -> None:
    j = Journey()
    obj = {"kind": "container", "id": BOX}
    offer = j.w.sign(j.brand, "handover.offer", {"object": obj, "to": j.carrier.pub,
                                                  "head": j.create.id})
    j.w.sign(j.retailer, "handover.accept", {"offer": offer.id, "object": obj, "head": j.create.id})
    c = S.container_view(load(store, j.w), BOX)["custody"]
    assert c["holder"]["did"] == did(j.brand)
    assert c["steps"] == []


def test_double_handover_marks_the_object_disputed(store: Store) -> None:
    j = Journey()
    obj = {"kind": "container", "id": BOX}
    o1 = j.w.sign(j.brand, "handover.offer", {"object": obj, "to": j.carrier.pub,
                                               "head": j.create.id})
    j.w.tick()
    o2 = j.w.sign(j.brand, "handover.offer", {"object": obj, "to": j.retailer.pub,
                                               "head": j.create.id})
    reader = load(store, j.w)
    c = S.container_view(reader, BOX)["custody"]
    assert c["disputed"]
    assert c["conflicting_offers"] == sorted([o1.id, o2.id])
    assert c["holder"]["did"] == did(j.brand)
    assert S.token_view(reader, j.tokens[0], j.w.now)["status"] == "disputed"


def test_token_view_follows_its_container_and_goes_on_after_unpack(store: Store) -> None:
    j = Journey()
    j.move_container()
    w = j.w
    scan = w.scan(j.carrier, "container", BOX, country="NL", locode="NLRTM", event="discharge",
                  seal="ACM-000001")
    w.sensor(j.carrier, BOX, "temperature", value=4_000)
    w.tick()
    w.sign(j.retailer, "container.unpack", {"container": BOX})
    w.tick()
    tid = j.tokens[1]
    o, a = w.handover(j.retailer, j.brand, "token", tid.hex(), j.mints[0].id)
    view = S.token_view(load(store, w), tid, w.now)
    assert view["holder"]["did"] == did(j.brand)
    steps = view["custody"]["steps"]
    # Every hand-over of the container while the token was in it, then the token's own.
    assert [(s["kind"], s.get("event"), s.get("container")) for s in steps] == [
        ("container", "handover", BOX), ("container", "handover", BOX), ("handover", None, None)]
    assert [(s["from"]["did"], s["to"]["did"]) for s in steps] == [
        (did(j.brand), did(j.carrier)), (did(j.carrier), did(j.retailer)),
        (did(j.retailer), did(j.brand))]
    assert [(s["offer"], s["accept"]) for s in steps] == [
        (j.o1.id, j.a1.id), (j.o2.id, j.a2.id), (o.id, a.id)]
    assert [s["ts"] for s in steps] == [j.a1.ts, j.a2.ts, a.ts]
    assert view["custody"]["head"] == a.id
    assert view["mint"]["brand"]["did"] == did(j.brand)
    assert view["mint"]["facility"] == "9506000000008"
    assert view["mint"]["serial"] in j.serials
    assert view["mint"]["lot"] == "L1"
    assert view["containers"][0]["container"] == BOX
    assert not view["containers"][0]["current"]
    assert view["location"]["record"] == scan.id
    assert [s["kind"] for s in view["sensors"]] == ["temperature"]
    assert view["status"] == "active"


def test_token_custody_counts_only_container_steps_while_packed(store: Store) -> None:
    """A container handed over empty, then packed by its new holder with goods the brand
    holds: the packing moves the goods, later hand-overs carry them, earlier ones do not."""
    j = Journey()
    w = j.w
    create = w.create_container(j.brand, BOX2)
    w.tick()
    _o1, a1 = w.handover(j.brand, j.carrier, "container", BOX2, create.id)
    w.tick()
    tid = j.tokens[0]
    w.sign(j.brand, "container.unpack", {"container": BOX})  # out of the first box
    w.tick()
    pack = w.pack(j.carrier, BOX2, [tid], weight_g=10)[0]
    w.tick()
    _o2, a2 = w.handover(j.carrier, j.retailer, "container", BOX2, a1.id)
    w.tick()
    view = S.token_view(load(store, w), tid, w.now)
    steps = view["custody"]["steps"]
    assert [(s.get("event"), s.get("container")) for s in steps] == [
        ("pack", BOX2), ("handover", BOX2)]
    assert (steps[0]["from"]["did"], steps[0]["to"]["did"]) == (did(j.brand), did(j.carrier))
    assert steps[0]["record"] == pack.id
    assert steps[0]["ts"] == pack.ts
    assert (steps[1]["from"]["did"], steps[1]["to"]["did"]) == (did(j.carrier), did(j.retailer))
    assert steps[1]["accept"] == a2.id
    assert view["holder"]["did"] == did(j.retailer)
    assert [c["container"] for c in view["containers"]] == [BOX, BOX2]  # in packing order


def test_token_status_in_transit_held_seized_recalled(store: Store) -> None:
    j = Journey()
    j.move_container()
    w = j.w
    reader = load(store, w)
    assert S.token_view(reader, j.tokens[0], w.now)["status"] == "in transit"
    assert S.token_view(reader, j.tokens[0], w.now)["holder"]["did"] == did(j.retailer)
    hold = w.sign(j.customs, "customs.action", {"subject": {"kind": "container", "id": BOX},
                                                 "action": "hold"})
    reader = load(store, w, [hold])
    view = S.token_view(reader, j.tokens[0], w.now)
    assert view["status"] == "held"
    assert view["customs"][0]["action"] == "hold"
    w.tick()
    recall = w.sign(j.brand, "recall", {"gtin": GTIN, "lot": "L1", "reason": "faulty"})
    assert S.token_view(load(store, w, [recall]), j.tokens[0], w.now)["status"] == "recalled"
    w.tick()
    seize = w.sign(j.customs, "customs.action", {"subject": {"kind": "container", "id": BOX},
                                                  "action": "seize"})
    reader = load(store, w, [seize])
    assert S.token_view(reader, j.tokens[0], w.now)["status"] == "seized"
    assert S.container_view(reader, BOX)["customs"]["status"] == "seized"


def test_seal_mismatch_breaks_the_seal(store: Store) -> None:
    j = Journey()
    j.w.tick()
    j.w.scan(j.brand, "container", BOX, country="NL", seal="XYZ-999999")
    view = S.container_view(load(store, j.w), BOX)
    assert view["seal"]["status"] == "broken"
    assert [s["matches"] for s in view["seal"]["seen"]] == [False]


def test_inclusion_proof_checks_out_for_a_third_party(store: Store) -> None:
    n = MANIFEST_CHUNK + 17  # two chunks
    j = Journey(n)
    reader = load(store, j.w)
    assert len(j.packs) == 2
    for tid in (j.tokens[0], j.tokens[MANIFEST_CHUNK], j.tokens[-1]):
        p = inclusion_proof(reader, BOX, tid)
        # The third party holds only the signed pack record that names the root.
        pack = Record.from_bytes(reader.record(p["record"]).wire)  # type: ignore[union-attr]
        assert pack.body.root == p["root"]
        assert pack.body.container == BOX
        merkle.verify_inclusion(tid, p["index"], p["size"], p["proof"], pack.body.root)
        assert p["size"] == n
        with pytest.raises(VerificationError):
            merkle.verify_inclusion(tid, p["index"] ^ 1, p["size"], p["proof"], pack.body.root)


def test_inclusion_proof_errors(store: Store) -> None:
    j = Journey(MANIFEST_CHUNK + 1)
    records = [r for r in j.w.records if r.id != j.packs[1].id]
    reader = load(store, j.w, records, strict=False)
    with pytest.raises(S.Conflict):
        inclusion_proof(reader, BOX, j.tokens[0])
    with pytest.raises(S.NotFound):
        inclusion_proof(reader, BOX2, j.tokens[0])


def test_inclusion_proof_of_an_item_not_packed(store: Store) -> None:
    j = Journey()
    outsider = tokens_of(GTIN, ["ZZZ"])[0]
    with pytest.raises(S.NotFound):
        inclusion_proof(load(store, j.w), BOX, outsider)


def test_views_do_not_depend_on_arrival_order(tmp_path: Path) -> None:
    j = Journey()
    j.move_container()
    j.w.scan(j.carrier, "container", BOX, country="NL", seal="ACM-000001")
    views = []
    for i in range(3):
        records = list(j.w.records)
        random.Random(i).shuffle(records)
        store = Store.open(tmp_path / f"db{i}")
        led = Ledger(store, j.w.genesis)
        for r in records:
            led.submit([r.wire], j.w.now)
        reader = S.reader_of(led, j.w.now)
        views.append((S.container_view(reader, BOX), S.token_view(reader, j.tokens[0], j.w.now)))
        store.close()
    assert views[0] == views[1] == views[2]


def test_shipment_view(store: Store) -> None:
    j = Journey()
    w = j.w
    place = {"country": "NL", "locode": "NLRTM"}
    w.sign(j.brand, "shipment.create", {
        "shipment": "SHP-1", "origin": place, "destination": {"country": "DE"}, "route": ["NLRTM"],
        "consignor": "ACME", "consignee": "Shop", "containers": [BOX],
        "goods": [{"hs": "851712", "description": "Phones", "quantity": 3, "weight_g": 1000}]})
    w.tick()
    w.sign(j.brand, "shipment.update", {"shipment": "SHP-1", "status": "in_transit"})
    reader = load(store, w)
    view = S.shipment_view(reader, "SHP-1")
    assert view["status"]["status"] == "in_transit"
    assert view["plan"]["containers"] == [BOX]
    assert view["containers"][0]["items"] == 3
    assert view["containers"][0]["seal_status"] == "sealed"
    assert view["custody"]["holder"]["did"] == did(j.brand)
    assert S.token_view(reader, j.tokens[0], w.now)["status"] == "in transit"
    with pytest.raises(S.NotFound):
        S.shipment_view(reader, "NOPE")


def test_inclusion_proof_reuses_a_cached_tree(store: Store) -> None:
    j = Journey(10)
    reader = load(store, j.w)
    cache: dict[object, object] = {}
    first = inclusion_proof(reader, BOX, j.tokens[3], cache)
    assert len(cache) == 1
    again = inclusion_proof(reader, BOX, j.tokens[3], cache)
    assert again == first
    other = inclusion_proof(reader, BOX, j.tokens[9], cache)
    merkle.verify_inclusion(j.tokens[9], other["index"], other["size"], other["proof"],
                            other["root"])
