"""Object indexes (issue 3 item 1): lot, seal and party lookups on a real LevelDB store.

Index-only facts (`node.facts.INDEX`) put a record under an object key with no state:
the mints of a lot, the seals and scans naming a seal number, the hand-overs and
credentials naming a party. `audit.check` derives the same entries from the records.
"""

from __future__ import annotations

from pathlib import Path

from node import audit
from node import facts as F
from node.ledger import Ledger
from node.scenario import World
from node.store import Store

GTIN = "09506000134352"
BOX = "CSQU3054383"
TM = {"mark": "ACME", "classes": [9], "markets": ["DE", "NL"], "gs1_prefixes": ["950600"]}


def test_lot_seal_and_party_lookups(tmp_path: Path) -> None:
    w = World.create(seed=21)
    brand = w.party("brand", "ACME Brands", ["NL"], trademarks=[TM])
    carrier = w.party("carrier", "Fast Lines")
    w.tick()
    lot1 = w.mint(brand, GTIN, "L1", ["A1", "A2"], mark="ACME", markets=["NL"],
                  facility="9506000000008")
    lot1 += w.mint(brand, GTIN, "L1", ["A3"], mark="ACME", markets=["NL"],
                   facility="9506000000008")
    w.mint(brand, GTIN, "L2", ["B1"], mark="ACME", markets=["NL"], facility="9506000000008")
    create = w.create_container(brand, BOX)
    seal = w.seal(brand, BOX, "ACM-000001")
    w.tick()
    offer, accept = w.handover(brand, carrier, "container", BOX, create.id)
    scan = w.scan(carrier, "container", BOX, country="NL", seal="ACM-000001")
    other = w.scan(carrier, "container", BOX, country="NL", seal="ACM-000002")
    store = Store.open(tmp_path / "db")
    try:
        led = Ledger(store, w.genesis)
        assert all(o.status == "stored" for o in led.submit([r.wire for r in w.records], w.now))
        assert sorted(store.object_records(F.lot_key(GTIN, "L1"))) == sorted(r.id for r in lot1)
        assert sorted(store.object_records(F.seal_key("ACM-000001"))) == sorted([seal.id, scan.id])
        assert store.object_records(F.seal_key("ACM-000002")) == [other.id]
        named = set(store.object_records(F.author_key(carrier.pub)))
        assert carrier.credential is not None
        assert named == {offer.id, carrier.credential.id}
        assert accept.id not in named  # its own records are its feed
        # index-only: no facts (and so no state) for a seal or a lot without recalls
        assert store.facts_raw(F.seal_key("ACM-000001")) is None
        assert store.facts_raw(F.lot_key(GTIN, "L1")) is None
        assert audit.check(store, w.genesis) == []
        root = led.state_root()
        audit.rebuild(store, w.genesis)
        led2 = Ledger(store, w.genesis)
        assert led2.state_root() == root
        assert sorted(store.object_records(F.seal_key("ACM-000001"))) == sorted([seal.id, scan.id])
    finally:
        store.close()


def test_scans_at_one_place_keep_the_container_facts_small(tmp_path: Path) -> None:
    """A container scanned a thousand times at one place has one place in its facts (the
    facts are rewritten at every scan); the scans are found through the place index."""
    w = World.create(seed=22)
    brand = w.party("brand", "ACME Brands", ["NL"], trademarks=[TM])
    w.create_container(brand, BOX)
    scans = [w.scan(brand, "container", BOX, country="NL", locode="NLRTM") for _ in range(1000)]
    elsewhere = w.scan(brand, "container", BOX, country="DE")
    store = Store.open(tmp_path / "db")
    try:
        led = Ledger(store, w.genesis)
        led.submit([r.wire for r in w.records], w.now)
        facts = led.facts(F.container_key(BOX))
        assert facts["places"] == {("NLRTM", "NL"), ("", "DE")}
        assert sorted(store.object_records(F.place_key(BOX, "NLRTM", "NL"))) == sorted(
            r.id for r in scans)
        assert store.object_records(F.place_key(BOX, "", "DE")) == [elsewhere.id]
        assert audit.check(store, w.genesis) == []
    finally:
        store.close()
