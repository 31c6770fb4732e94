"""node.custody: who may pack, seal and unpack a container (`judge`), on real ledgers.

A pack, seal or unpack by a party not holding the container is kept but does not
count, disputes the container and raises `custody_break`; a second manifest with no
unpack since the first raises `manifest_conflict`. Neither depends on arrival order.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from node import custody as C
from node import facts as F
from node import summary as S
from node.ledger import Ledger
from node.scenario import World, tokens_of
from node.store import Store
from node.verify import Level, verify_container
from protocol.envelope import Record

GTIN = "09506000134352"
BOX = "CSQU3054383"
TM = {"mark": "ACME", "classes": [9], "markets": ["DE", "NL"], "gs1_prefixes": ["950600"]}


class Story:
    """A brand packs two items and seals; it hands the container to a carrier."""

    def __init__(self) -> None:
        w = self.w = World.create(seed=11)
        self.brand = w.party("brand", "ACME Brands", ["NL"], trademarks=[TM])
        self.carrier = w.party("carrier", "Fast Lines")
        self.stranger = w.party("carrier", "Stranger Freight")
        w.tick()
        w.mint(self.brand, GTIN, "L1", ["S1", "S2", "S3"], mark="ACME", markets=["NL"],
               facility="9506000000008")
        self.tokens = sorted(tokens_of(GTIN, ["S1", "S2", "S3"]))
        w.tick()
        self.create = w.create_container(self.brand, BOX)
        (self.pack,) = w.pack(self.brand, BOX, self.tokens[:2], weight_g=1000)
        self.seal = w.seal(self.brand, BOX, "ACM-000001")
        w.tick()
        self.offer, self.accept = w.handover(self.brand, self.carrier, "container", BOX,
                                             self.create.id)
        w.tick()


def ingest(path: Path, w: World, records: list[Record], *, one_by_one: bool = False
           ) -> tuple[dict[str, Any], dict[bytes, str], bytes, list[dict[str, Any]]]:
    store = Store.open(path)
    try:
        led = Ledger(store, w.genesis)
        for chunk in ([[r] for r in records] if one_by_one else [records]):
            out = led.submit([r.wire for r in chunk], w.now)
            assert all(o.status in ("stored", "duplicate", "pending") for o in out), out
        view = S.container_view(S.reader_of(led, w.now), BOX)
        entries = [e for _, e in store.alerts(limit=1000)]
        live = {e["key"]: e["rule"] for e in entries if "retracted" not in e}
        return view, live, led.state_root(), entries
    finally:
        store.close()


def breaks(entries: list[dict[str, Any]], w: World) -> set[bytes]:
    """The pack, seal and unpack records live `custody_break` alerts name.

    (Cross-object findings, `node.derived`, raise `custody_break` for items a packer did
    not hold too: their evidence is mint and offer records.)
    """
    actions = {r.id for r in w.records if r.type in
               ("container.pack", "container.seal", "container.unpack")}
    return {rid for e in entries if e["rule"] == "custody_break" and "retracted" not in e
            for rid in e["evidence"] if rid in actions}


def test_a_strangers_repack_and_reseal_dispute_the_container_and_replace_nothing(
        tmp_path: Path) -> None:
    s = Story()
    w = s.w
    (repack,) = w.pack(s.stranger, BOX, s.tokens[2:], weight_g=500)
    reseal = w.seal(s.stranger, BOX, "XXX-000009")
    view, _live, _root, entries = ingest(tmp_path / "db", w, w.records)
    m = view["manifest"]
    assert m is not None
    assert m["count"] == 2  # the brand's manifest stays in force
    assert m["records"] == [s.pack.id]
    assert view["seal"]["status"] == "sealed"
    assert view["seal"]["current"] == "ACM-000001"
    assert {h["record"]: h["counts"] for h in view["seal"]["history"]} == {
        s.seal.id: True, reseal.id: False}
    assert view["custody"]["disputed"] is True
    assert {d["record"] for d in view["disputes"]["unauthorised"]} == {repack.id, reseal.id}
    assert breaks(entries, w) == {repack.id, reseal.id}
    store = Store.open(tmp_path / "db")
    try:  # the item in the stranger's manifest is not packed in the container for it
        tv = S.token_view(S.reader_of(Ledger(store, w.genesis), w.now), s.tokens[2], w.now)
        assert [c["current"] for c in tv["containers"]] == [False]
    finally:
        store.close()


def test_the_holder_repacks_after_an_unpack_without_dispute(tmp_path: Path) -> None:
    s = Story()
    w = s.w
    unpack = w.sign(s.carrier, "container.unpack", {"container": BOX})
    w.tick()
    w.pack(s.carrier, BOX, s.tokens[:1], weight_g=500)  # an item it holds (unpacked)
    w.seal(s.carrier, BOX, "FLS-000002")
    view, live, _root, entries = ingest(tmp_path / "db", w, w.records)
    assert view["manifest"]["count"] == 1
    assert view["seal"]["current"] == "FLS-000002"
    assert view["custody"]["disputed"] is False
    assert view["disputes"] == {"unauthorised": [], "manifest_conflicts": []}
    assert breaks(entries, w) == set()
    assert "manifest_conflict" not in live.values()
    assert unpack.id in [u["record"] for u in view["unpacks"]]


def test_a_second_manifest_with_no_unpack_is_a_conflict(tmp_path: Path) -> None:
    s = Story()
    w = s.w
    (second,) = w.pack(s.carrier, BOX, s.tokens[2:], weight_g=500)  # the holder, no unpack
    view, live, _root, _ = ingest(tmp_path / "db", w, w.records)
    assert view["custody"]["disputed"] is True
    assert view["disputes"]["manifest_conflicts"] == [[s.pack.id, second.id]]
    assert list(live.values()).count("manifest_conflict") == 1


def test_the_former_holder_may_no_longer_act(tmp_path: Path) -> None:
    """Custody passed at the accept: the brand's later unpack does not count."""
    s = Story()
    w = s.w
    unpack = w.sign(s.brand, "container.unpack", {"container": BOX})
    view, _live, _root, entries = ingest(tmp_path / "db", w, w.records)
    assert view["manifest"] is not None  # the unpack did not empty the container
    assert [d["record"] for d in view["disputes"]["unauthorised"]] == [unpack.id]
    assert breaks(entries, w) == {unpack.id}


def test_judge_without_a_create_judges_nothing() -> None:
    facts: F.Facts = {"packs": {(b"r" * 32, 0, 1, 1, 10, b"p" * 32, b"a" * 32, 5)},
                      "seals": {(6, b"s" * 32, "X-1", b"b" * 32)}}
    j = C.judge(facts)
    assert not j.disputed
    assert len(j.packs) == 1
    assert len(j.seals) == 1


def test_tenures_follow_accept_times() -> None:
    a, b = b"A" * 32, b"B" * 32
    create, offer, accept = b"c" * 32, b"o" * 32, b"k" * 32
    facts: F.Facts = {"create": {(create, a)}, "times": {(create, 100), (accept, 200)},
                      "offers": {(create, offer, a, b)}, "accepts": {(offer, accept, b, create)}}
    held = C.tenures(facts)
    assert held == [C.Tenure(a, None, 200), C.Tenure(b, 200, None)]
    assert C.may_act(held, a, 150)
    assert C.may_act(held, a, 200)  # same millisecond as the hand-over
    assert not C.may_act(held, a, 201)
    assert not C.may_act(held, b, 199)
    assert C.may_act(held, b, 10**13)


def test_every_arrival_order_gives_the_same_state_and_alerts(tmp_path: Path) -> None:
    s = Story()
    w = s.w
    w.pack(s.stranger, BOX, s.tokens[2:], weight_g=500)
    w.seal(s.stranger, BOX, "XXX-000009")
    w.tick()
    w.pack(s.carrier, BOX, s.tokens[2:], weight_g=500)
    w.scan(s.carrier, "container", BOX, country="NL", seal="XXX-000009")
    rnd = random.Random(3)
    roots, alerts = set(), set()
    entries: list[dict[str, Any]] = []
    for i in range(8):
        order = list(w.records)
        if i:
            rnd.shuffle(order)
        _view, live, root, entries = ingest(tmp_path / f"db{i}", w, order, one_by_one=i % 2 == 1)
        assert len(entries) == len({e["key"] for e in entries})
        roots.add(root)
        alerts.add(frozenset(live.items()))
    assert len(roots) == 1
    assert len(alerts) == 1
    rules = sorted(next(iter(alerts)), key=lambda kv: kv[1])
    assert len(breaks(entries, w)) == 2
    assert "manifest_conflict" in {r for _, r in rules}
    assert "seal_mismatch" in {r for _, r in rules}  # the stranger's seal explains nothing


def test_the_verdict_counts_only_the_holders_manifest_and_seal(tmp_path: Path) -> None:
    """A customs verdict reads the container as the state does: a stranger's repack and
    reseal do not replace the manifest or the seal; they are RED findings of their own."""
    s = Story()
    w = s.w
    (repack,) = w.pack(s.stranger, BOX, s.tokens[2:], weight_g=500)
    reseal = w.seal(s.stranger, BOX, "XXX-000009")
    w.tick()
    w.scan(s.carrier, "container", BOX, country="NL", seal="ACM-000001")
    store = Store.open(tmp_path / "db")
    try:
        led = Ledger(store, w.genesis)
        led.submit([r.wire for r in w.records], w.now)
        v = verify_container(BOX, S.reader_of(led, w.now), led.creds, led.params, w.now)
    finally:
        store.close()
    assert v.level is Level.RED
    assert v.root == s.pack.body.root  # type: ignore[attr-defined]
    assert v.items == 2
    found = {(r.code, tuple(r.evidence)) for r in v.reasons}
    assert ("custody.unauthorised_action", (repack.id,)) in found
    assert ("custody.unauthorised_action", (reseal.id,)) in found
    assert not any(code == "seal.mismatch" for code, _ in found)  # the holder's seal was seen
