"""Container findings across objects, derived on every node at ingest (`node.derived`).

No customs office is needed: a plain node holding the records raises them, the same
key whatever the arrival order, and withholds a "not minted" it cannot judge yet
(the mint named by the item's hand-overs has not reached it).
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from node import audit, summary
from node.ledger import Ledger
from node.store import Store
from node.verify import Level, verify_container
from protocol.envelope import Record
from tests.test_alert_rules import BOX, GTIN, Story

DERIVED = {"custody_break", "item_not_minted", "recalled_item", "diversion",
           "route_deviation", "weight_mismatch", "cloned_serial"}


def live(path: Path, s: Story, deliveries: list[list[Record]]) -> tuple[dict[bytes, str], Any]:
    """Ingest the deliveries in turn; the live alert log (key -> rule) and the verdict."""
    store = Store.open(path)
    try:
        led = Ledger(store, s.world.genesis)
        for chunk in deliveries:
            led.submit([r.wire for r in chunk], s.world.now)
        assert audit.check(store, s.world.genesis) == []
        verdict = verify_container(BOX, summary.reader_of(led, s.world.now), led.creds,
                                   led.params, s.world.now)
        return ({e["key"]: e["rule"] for _, e in store.alerts(limit=1000)
                 if "retracted" not in e}, verdict)
    finally:
        store.close()


def test_a_diversion_is_alerted_with_no_customs_office_involved(tmp_path: Path) -> None:
    s = Story()
    s.ship(destination="US")
    records = [r for r in s.world.records if r.type != "customs.declaration"]
    alerts, _ = live(tmp_path / "db", s, [records])
    assert set(alerts.values()) == {"diversion"}


def test_the_same_findings_in_any_arrival_order(tmp_path: Path) -> None:
    s = Story()
    s.ship(destination="US", stop="AEJEA", weight_g=900_000)
    s.world.tick()
    s.world.sign(s.brand, "recall", {"gtin": GTIN, "lot": "L1", "reason": "battery fault"})
    records = list(s.world.records)
    rnd = random.Random(7)
    shuffled = rnd.sample(records, len(records))
    orders = {
        "world": [records],
        "reversed, one by one": [[r] for r in reversed(records)],
        "shuffled, in chunks": [shuffled[i:i + 5] for i in range(0, len(shuffled), 5)],
    }
    found = {name: live(tmp_path / f"db{i}", s, d)[0] for i, (name, d) in enumerate(orders.items())}
    assert len({frozenset(a.items()) for a in found.values()}) == 1, found
    assert {"diversion", "route_deviation", "weight_mismatch", "recalled_item"} <= set(
        found["world"].values())


def test_not_minted_waits_while_the_items_mint_is_missing(tmp_path: Path) -> None:
    s = Story()
    s.ship()
    [mint] = [r for r in s.world.records if r.type == "product.mint"]
    rest = [r for r in s.world.records if r.id != mint.id]
    alerts, verdict = live(tmp_path / "a", s, [rest])
    assert "item_not_minted" not in alerts.values()
    assert verdict.level is Level.RED  # customs does not fast-track what it cannot check
    assert "item.mint_unseen" in {r.code for r in verdict.reasons}
    alerts, verdict = live(tmp_path / "b", s, [rest, [mint]])
    assert alerts == {}
    assert verdict.level is Level.GREEN, verdict.reasons


def test_a_recall_arriving_later_raises_the_alert_then(tmp_path: Path) -> None:
    s = Story()
    s.ship()
    s.world.tick()
    recall = s.world.sign(s.brand, "recall", {"gtin": GTIN, "lot": "L1", "reason": "fault"})
    before = [r for r in s.world.records if r.id != recall.id]
    alerts, _ = live(tmp_path / "db", s, [before, [recall]])
    assert list(alerts.values()) == ["recalled_item"]


def test_custody_is_not_judged_while_hand_overs_are_missing(tmp_path: Path) -> None:
    s = Story()
    s.ship()
    offers = {r.id for r in s.world.records if r.type == "handover.offer"
              and r.author == s.brand.pub}
    rest = [r for r in s.world.records if r.id not in offers]  # the brand's offers: not yet
    alerts, verdict = live(tmp_path / "a", s, [rest])
    assert "custody_break" not in alerts.values()
    assert "custody.unseen" in {r.code for r in verdict.reasons}
    alerts, verdict = live(tmp_path / "b", s, [rest, [r for r in s.world.records
                                                      if r.id in offers]])
    assert alerts == {}
    assert verdict.level is Level.GREEN, verdict.reasons


def test_a_forged_custody_root_arriving_last_raises_the_alert_too(tmp_path: Path) -> None:
    """An item no one minted, its hand-over rooted at a record that is not its mint (a
    counterfeiter's own scan). Until that record arrives the item's mint may simply be
    missing (`item.mint_unseen`, no alert); once it is here, nothing minted the item. Its
    arrival changes no fact of the item, yet the alert must be the same in either order."""
    from node.scenario import tokens_of

    s = Story()
    w = s.world
    fake, other = tokens_of(GTIN, ["FAKE0001", "FAKE0002"])
    shady = w.party("manufacturer", "Shady Works", ["CN"])
    root = w.scan(shady, "token", other.hex(), country="CN")  # not a mint, not of the item
    w.tick()
    w.handover(s.brand, s.maker, "token", fake.hex(), root.id)  # the chain starts at it
    s.ship(tokens=[*s.tokens, fake])
    records = list(s.world.records)
    first, _ = live(tmp_path / "first", s, [records])
    assert "item_not_minted" in first.values()
    rest = [r for r in records if r.id != root.id]
    waiting, verdict = live(tmp_path / "waiting", s, [rest])
    assert "item_not_minted" not in waiting.values()  # its mint may be on its way
    assert "item.mint_unseen" in {r.code for r in verdict.reasons}
    last, verdict = live(tmp_path / "last", s, [rest, [root]])
    assert "item.not_minted" in {r.code for r in verdict.reasons}
    assert last == first


def test_a_late_uploaded_scan_off_the_route_is_alerted_in_any_order(tmp_path: Path) -> None:
    """A scanner uploads late: its scan at an off-route port is older than the container's
    latest scan and at a place already seen, so no fact of the container changes. It is
    still a route deviation of its own, alerted whichever order the records come in."""
    s = Story()
    s.ship(stop="AEJEA")  # off the planned route (SGSIN)
    w = s.world
    early = w.now
    w.tick()
    w.scan(s.carrier, "container", BOX, country="NL", locode="NLRTM")  # on the route, later
    w.tick()
    late = w.sign(s.carrier, "scan", {"object": {"kind": "container", "id": BOX},
                                      "place": {"country": "AE", "locode": "AEJEA"},
                                      "event": "observe", "at": early - 500})
    records = list(w.records)
    together, _ = live(tmp_path / "together", s, [records])
    deviations = [k for k, rule in together.items() if rule == "route_deviation"]
    assert len(deviations) == 2  # one per scan off the route
    last, _ = live(tmp_path / "last", s, [records[:-1], [late]])
    assert last == together
