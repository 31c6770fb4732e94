"""Container verdicts computed from the log alone: GREEN, AMBER, RED with reasons."""

from __future__ import annotations

import types
from pathlib import Path
from typing import Any

from crypto import merkle
from node.ledger import Ledger
from node.scenario import World, tokens_of
from node.store import Store
from node.verify import Level, Verdict, verify_container
from protocol.bodies import MANIFEST_CHUNK, token_id

GTIN = "09506000134352"
BOX = "CSQU3054383"
TM = [{"mark": "ACME", "classes": [9], "markets": ["DE", "FR", "NL"], "gs1_prefixes": ["950600"]}]


class Story:
    def __init__(self) -> None:
        w = self.world = World.create(seed=3)
        self.brand = w.party("brand", "Acme", ["NL"], trademarks=TM)
        self.maker = w.party("manufacturer", "Maker", ["CN"])
        self.carrier = w.party("carrier", "Ship Co", ["NL"])
        self.fwd = w.party("forwarder", "Fwd", ["NL"])
        self.serials = [f"S{i:04d}" for i in range(50)]
        self.mints = w.mint(self.brand, GTIN, "L1", self.serials, mark="ACME",
                            markets=["DE", "NL"], facility="9506000000008")
        self.tokens = tokens_of(GTIN, self.serials)
        for tid in self.tokens:  # the brand hands the goods to the manufacturer
            w.handover(self.brand, self.maker, "token", tid.hex(), self.mints[0].id)

    def ship(self, *, tokens: list[bytes] | None = None, destination: str = "NL",
             seal_seen: str = "SEAL123", weight_g: int = 500_000, route_stop: str = "SGSIN",
             double: bool = False, manifest: dict[str, Any] | None = None) -> None:
        w = self.world
        c = w.create_container(self.maker, BOX)
        if manifest is None:
            w.pack(self.maker, BOX, tokens or self.tokens, weight_g=weight_g)
        else:  # one pack record, as given (a forged root, a chunk of several)
            w.sign(self.maker, "container.pack", {"container": BOX, "weight_g": weight_g,
                                                  **manifest})
        w.seal(self.maker, BOX, "SEAL123")
        w.sign(self.fwd, "shipment.create", {
            "shipment": "SHP1", "origin": {"country": "CN", "locode": "CNSHA"},
            "destination": {"country": destination},
            "route": ["SGSIN"], "consignor": "Maker", "consignee": "Acme",
            "containers": [BOX], "goods": [{"hs": "851830", "description": "Headphones",
                                            "quantity": 50, "weight_g": weight_g}]})
        w.handover(self.maker, self.carrier, "container", BOX, c.id)
        if double:
            w.sign(self.maker, "handover.offer", {"object": {"kind": "container", "id": BOX},
                                                  "to": self.fwd.pub, "head": c.id})
        w.tick()
        w.scan(self.carrier, "container", BOX, country=route_stop[:2], locode=route_stop,
               seal=seal_seen)
        w.sensor(self.carrier, BOX, "weight", value=weight_g)

    def verify(self, tmp_path: Path) -> Verdict:
        store = Store.open(tmp_path / "db")
        ledger = Ledger(store, self.world.genesis)
        outcomes = ledger.submit([r.wire for r in self.world.records], self.world.now)
        assert {o.status for o in outcomes} == {"stored"}, [o.reason for o in outcomes]
        reader: Any = types.SimpleNamespace(facts=ledger.facts, record=ledger.record,
                                            record_ids=store.object_records)
        v = verify_container(BOX, reader, ledger.creds, ledger.params, self.world.now)
        again = verify_container(BOX, reader, ledger.creds, ledger.params, self.world.now)
        assert again == v  # deterministic
        store.close()
        return v


def codes(v: Verdict) -> set[str]:
    return {r.code for r in v.reasons}


def test_honest_container_is_green(tmp_path: Path) -> None:
    s = Story()
    s.ship()
    v = s.verify(tmp_path)
    assert v.level is Level.GREEN, v.reasons
    assert v.items == 50
    assert v.destination == "NL"
    assert v.brands == (s.brand.pub,)


def test_counterfeit_item_is_red(tmp_path: Path) -> None:
    s = Story()
    fake = token_id(GTIN, "FAKE0001")
    s.ship(tokens=[*s.tokens, fake])
    v = s.verify(tmp_path)
    assert v.level is Level.RED
    assert "item.not_minted" in codes(v)


def test_swapped_seal_is_red(tmp_path: Path) -> None:
    s = Story()
    s.ship(seal_seen="SEAL999")
    v = s.verify(tmp_path)
    assert v.level is Level.RED
    (reason,) = [r for r in v.reasons if r.code == "seal.mismatch"]
    assert reason.alert == "seal_mismatch"
    assert len(reason.evidence) == 2


def test_diversion_outside_authorised_markets_is_red(tmp_path: Path) -> None:
    s = Story()
    s.ship(destination="US")
    v = s.verify(tmp_path)
    assert "item.diversion" in codes(v)
    assert v.level is Level.RED


def test_route_deviation_is_amber(tmp_path: Path) -> None:
    s = Story()
    s.ship(route_stop="AEJEA")
    v = s.verify(tmp_path)
    assert codes(v) == {"route.deviation"}
    assert v.level is Level.AMBER


def test_weight_mismatch(tmp_path: Path) -> None:
    s = Story()
    s.ship()
    s.world.sensor(s.carrier, BOX, "weight", value=900_000)
    v = s.verify(tmp_path)
    assert "weight.mismatch" in codes(v)


def test_double_handover_is_red(tmp_path: Path) -> None:
    s = Story()
    s.ship(double=True)
    v = s.verify(tmp_path)
    assert "custody.disputed" in codes(v)
    assert v.level is Level.RED


def test_items_not_held_by_the_packer_are_red(tmp_path: Path) -> None:
    s = Story()
    extra_serials = ["X0001"]
    (m,) = s.world.mint(s.brand, GTIN, "L2", extra_serials, mark="ACME", markets=["NL"],
                        facility="9506000000008")
    s.ship(tokens=[*s.tokens, *tokens_of(GTIN, extra_serials)])
    v = s.verify(tmp_path)
    assert "custody.packer_not_holder" in codes(v)


def test_recalled_lot_is_red(tmp_path: Path) -> None:
    s = Story()
    s.ship()
    s.world.sign(s.brand, "recall", {"gtin": GTIN, "lot": "L1", "reason": "battery fault"})
    v = s.verify(tmp_path)
    assert "item.recalled" in codes(v)


def test_unknown_container_is_red(tmp_path: Path) -> None:
    s = Story()
    v = s.verify(tmp_path)
    assert v.level is Level.RED
    assert codes(v) == {"container.unknown"}


def test_a_manifest_that_does_not_match_its_root_is_red(tmp_path: Path) -> None:
    s = Story()
    items = sorted(s.tokens)
    forged = merkle.root(items[:-1])  # the root of a manifest without the last item
    s.ship(manifest={"root": forged, "count": len(items), "chunk": 0, "chunks": 1,
                     "items": items})
    v = s.verify(tmp_path)
    assert v.level is Level.RED
    [reason] = [r for r in v.reasons if r.code == "manifest.root"]
    assert reason.alert == "manifest_mismatch"


def test_a_manifest_with_missing_chunks_is_red(tmp_path: Path) -> None:
    s = Story()
    items = sorted(tokens_of(GTIN, [f"M{i:05d}" for i in range(MANIFEST_CHUNK + 1)]))
    s.ship(manifest={"root": merkle.root(items), "count": len(items), "chunk": 0,
                     "chunks": 2, "items": items[:MANIFEST_CHUNK]})  # chunk 1 never came
    v = s.verify(tmp_path)
    assert v.level is Level.RED
    [reason] = [r for r in v.reasons if r.code == "manifest.incomplete"]
    assert "1 of 2" in reason.message
    assert v.items == 0  # nothing is judged on half a manifest


def test_items_handed_to_the_packer_after_packing_are_red(tmp_path: Path) -> None:
    s = Story()
    w = s.world
    [late] = w.mint(s.brand, GTIN, "L2", ["LATE1"], mark="ACME", markets=["NL"],
                    facility="9506000000008")
    tid = token_id(GTIN, "LATE1")
    s.ship(tokens=[*s.tokens, tid])
    w.tick()  # the packer holds it now, but did not when it packed it
    w.handover(s.brand, s.maker, "token", tid.hex(), late.id)
    v = s.verify(tmp_path)
    assert v.level is Level.RED
    [reason] = [r for r in v.reasons if r.code == "custody.packer_not_holder"]
    assert late.id in reason.evidence
