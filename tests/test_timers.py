"""The time rules on the daemon's clock (`node.timers`), beyond silence (in
test_alert_rules): an author whose credential never comes, an item expiring in transit.
Real ledgers on LevelDB; trio's autojump clock drives the timer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import trio

from node import summary
from node.ledger import Ledger
from node.observer import intents
from node.scenario import DAY
from node.store import Store
from node.timers import Timers
from node.verify import verify_container
from protocol.bodies import token_id
from protocol.envelope import Record
from tests.test_alert_rules import BOX, GTIN, Story

MINUTE = 60_000


async def write(fn: Any) -> Any:
    return fn()


def alerts(store: Store, rule: str) -> list[dict[str, Any]]:
    return [e for _, e in store.alerts(limit=1000) if e["rule"] == rule]


def stranger_record(s: Story) -> Record:
    key = s.world.key("stranger")
    return Record.sign(key, network=s.world.network, seq=1, prev=None, ts=s.world.now,
                       type="scan", body={"object": {"kind": "container", "id": BOX},
                                          "place": {"country": "NL"}, "event": "observe"})


async def test_an_author_whose_credential_never_comes_is_alerted_once(
        tmp_path: Path, autojump_clock: Any) -> None:
    s = Story()
    s.ship()
    w = s.world
    store = Store.open(tmp_path / "db")
    try:
        led = Ledger(store, w.genesis)
        led.submit([r.wire for r in w.records], w.now)
        r = stranger_record(s)
        assert [o.status for o in led.submit([r.wire], w.now)] == ["pending"]
        clock = [w.now]
        timers = Timers(led, write=write, lock=trio.Lock(), clock=lambda: clock[0],
                        interval_s=60, unknown_author_limit_s=600)
        with trio.fail_after(7200):
            async with trio.open_nursery() as nursery:
                await nursery.start(timers.run)
                for _ in range(9):  # nine minutes: within the limit
                    clock[0] += MINUTE
                    await trio.sleep(60)
                assert alerts(store, "unknown_author") == []
                for _ in range(5):
                    clock[0] += MINUTE
                    await trio.sleep(60)
                [entry] = alerts(store, "unknown_author")
                assert entry["subject"] == {"kind": "party", "id": r.author.hex()}
                assert entry["evidence"] == [r.id]
                assert "not stored" in entry["reason"]
                assert entry["severity"] == "high"
                assert store.record(r.id) is None  # the evidence is pending, not in the log
                r2 = Record.sign(  # the same author writes more: still one alert
                    s.world.key("stranger"), network=w.network, seq=2, prev=r.id,
                    ts=w.now, type="scan", body={"object": {"kind": "container", "id": BOX},
                                                 "place": {"country": "NL"},
                                                 "event": "observe"})
                led.submit([r2.wire], clock[0])
                for _ in range(30):
                    clock[0] += MINUTE
                    await trio.sleep(60)
                assert len(alerts(store, "unknown_author")) == 1
                nursery.cancel_scope.cancel()
    finally:
        store.close()


async def test_an_author_whose_credential_comes_in_time_raises_nothing(
        tmp_path: Path, autojump_clock: Any) -> None:
    s = Story()
    s.ship()
    w = s.world
    late = w.party("carrier", "Late Lines", ["NL"])
    scan = w.scan(late, "container", BOX, country="NL", locode="NLRTM")
    assert late.credential is not None
    store = Store.open(tmp_path / "db")
    try:
        led = Ledger(store, w.genesis)
        early = [r for r in w.records if r.id != late.credential.id]
        outs = led.submit([r.wire for r in early], w.now)
        assert outs[-1].status == "pending"
        clock = [w.now]
        timers = Timers(led, write=write, lock=trio.Lock(), clock=lambda: clock[0],
                        interval_s=60, unknown_author_limit_s=600)
        with trio.fail_after(7200):
            async with trio.open_nursery() as nursery:
                await nursery.start(timers.run)
                for _ in range(5):
                    clock[0] += MINUTE
                    await trio.sleep(60)
                led.submit([late.credential.wire], clock[0])  # the credential arrives
                assert store.record(scan.id) is not None
                for _ in range(60):
                    clock[0] += MINUTE
                    await trio.sleep(60)
                assert alerts(store, "unknown_author") == []
                assert store.alerts() == []  # the honest story: no time rule fires
                nursery.cancel_scope.cancel()
    finally:
        store.close()


async def test_an_item_expiring_in_transit_is_alerted_with_the_observers_key(
        tmp_path: Path, autojump_clock: Any) -> None:
    s = Story()
    w = s.world
    [mint] = s.mint(["E1"], expiry=w.now + 30 * DAY, lot="L3")
    s.ship(tokens=[*s.tokens, token_id(GTIN, "E1")])
    store = Store.open(tmp_path / "db")
    try:
        led = Ledger(store, w.genesis)
        led.submit([r.wire for r in w.records], w.now)
        clock = [w.now]
        timers = Timers(led, write=write, lock=trio.Lock(), clock=lambda: clock[0],
                        interval_s=60, unknown_author_limit_s=600)
        await timers.tick()
        assert alerts(store, "expired_item") == []  # not yet
        clock[0] = w.now + 31 * DAY
        await timers.tick()
        [entry] = alerts(store, "expired_item")
        assert entry["evidence"] == [mint.id]
        assert entry["subject"] == {"kind": "container", "id": BOX}
        verdict = verify_container(BOX, summary.reader_of(led, clock[0]), led.creds,
                                   led.params, clock[0])
        # the customs observer's signed alert for the finding has the same key: one alert
        assert {i.key for i in intents(verdict) if i.rule == "expired_item"} == {entry["key"]}
        await timers.tick()
        assert len(alerts(store, "expired_item")) == 1
        s.world.now = clock[0]
        s.world.sign(s.fwd, "shipment.update", {"shipment": "SHP-7", "status": "delivered"})
        led.submit([w.records[-1].wire], clock[0])
        assert await timers.expiries(clock[0] + DAY) == []  # delivered: no longer in transit
    finally:
        store.close()
