"""Time never goes backwards within a feed (`protocol.feed.check_time`), at ingest and in runs.

The case it closes: a holder backdating a reseal to before a scan that already saw a
different seal, to explain the `seal_mismatch` after the fact.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from node.ledger import Ledger
from node.scenario import World
from node.store import Store
from protocol.errors import FeedError
from protocol.feed import check_time, verify_range

BOX = "CSQU3054383"


def test_check_time() -> None:
    w = World.create(seed=31)
    p = w.party("carrier", "Fast Lines")
    r = w.scan(p, "container", BOX, country="NL")
    check_time(r, r.ts)  # equal is fine: several records in one millisecond
    with pytest.raises(FeedError, match="time goes backwards"):
        check_time(r, r.ts + 1)


def test_a_run_going_back_in_time_is_refused() -> None:
    w = World.create(seed=32)
    p = w.party("carrier", "Fast Lines")
    w.tick()
    a = w.scan(p, "container", BOX, country="NL")
    b = w.sign(p, "scan", {"object": {"kind": "container", "id": BOX},
                           "place": {"country": "NL"}, "event": "observe"}, ts=a.ts - 1)
    with pytest.raises(FeedError, match="time goes backwards"):
        verify_range([a, b], None)


def test_a_backdated_reseal_does_not_explain_a_seal_mismatch(tmp_path: Path) -> None:
    w = World.create(seed=33)
    brand = w.party("brand", "ACME Brands", ["NL"], trademarks=[
        {"mark": "ACME", "classes": [9], "markets": ["NL"], "gs1_prefixes": ["950600"]}])
    carrier = w.party("carrier", "Fast Lines")
    w.tick()
    w.create_container(brand, BOX)
    w.seal(brand, BOX, "ACM-000001")
    w.tick(10_000)
    w.scan(brand, "container", BOX, country="NL", seal="ACM-000001")
    scan = w.scan(carrier, "container", BOX, country="NL", seal="ACM-000777")
    w.tick()
    # the holder "reseals" after the fact, timestamped before the carrier's scan
    backdated = w.sign(brand, "container.seal", {"container": BOX, "seal": "ACM-000777",
                                                 "seal_class": "H"}, ts=scan.ts - 5_000)
    honest = [r for r in w.records if r.id != backdated.id]
    for name, order in {"in order": [honest, [backdated]],
                        "together": [w.records]}.items():
        store = Store.open(tmp_path / name)
        try:
            led = Ledger(store, w.genesis)
            outcomes = [o for chunk in order for o in led.submit([r.wire for r in chunk], w.now)]
            last = outcomes[-1]
            assert last.status == "rejected", name
            assert last.reason is not None
            assert "time goes backwards" in last.reason
            assert not store.has_record(backdated.id)
            live = [e for _, e in store.alerts(limit=100) if "retracted" not in e]
            assert [e["rule"] for e in live].count("seal_mismatch") == 1, name
            assert led.stats[("rejected", "feed.time")] == 1
        finally:
            store.close()
