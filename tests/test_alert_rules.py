"""Every alert rule of the network, on real ledgers: each fires on its anomaly and stays
silent on the honest story; the same finding has the same key on every node.

Three sources of alerts, all pure over the records (plus the time, passed in):
the ledger's rules over facts (`node.rules`, logged at ingest, and records refused
for want of a right), the customs verdict (`node.verify`, raised by the observer as
signed `alert` records: `node.observer.intents`), and the time rules
(`node.timers`). `examine()` gathers the three for one story, as a node holding
its records would.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import trio

from node import summary
from node.ledger import Ledger
from node.observer import intents
from node.rules import Intent
from node.scenario import DAY, YEAR, World, tokens_of
from node.store import Store
from node.timers import Timers, silent
from node.verify import Level, Verdict, verify_container
from protocol.bodies import token_id
from protocol.envelope import Record

GTIN = "09506000134352"  # in ACME's GS1 prefix 950600
GLN = "9506000000008"
BOX, BOX2 = "CSQU3054383", "MSKU2666542"
SEAL = "SEAL-0001"
SHIPMENT = "SHP-7"
HOUR = 3_600_000
SILENCE = 6 * HOUR
WEIGHT = 500_000
TM = [{"mark": "ACME", "classes": [9], "markets": ["DE", "FR", "NL"], "gs1_prefixes": ["950600"]}]
TM2 = [{"mark": "OTHER", "classes": [9], "markets": ["DE"], "gs1_prefixes": ["950601"]}]

RULES = ("seal_mismatch", "seal_breach", "custody_break", "double_handover", "feed_fork",
         "unauthorised_author", "item_not_minted", "cloned_serial", "recalled_item",
         "expired_item", "diversion", "route_deviation", "weight_mismatch",
         "temperature_excursion", "shipment_silent", "unknown_author", "manifest_mismatch")


class Story:
    """The honest journey: a brand's goods, packed and sealed by its manufacturer in
    China, carried to Rotterdam through Singapore, declared to Dutch customs."""

    def __init__(self, seed: int = 21) -> None:
        w = self.world = World.create(seed=seed)
        self.brand = w.party("brand", "Acme", ["NL"], trademarks=TM)
        self.brand2 = w.party("brand", "Other Brand", ["DE"], trademarks=TM2)
        self.maker = w.party("manufacturer", "Maker", ["CN"])
        self.carrier = w.party("carrier", "Ship Co", ["NL"])
        self.fwd = w.party("forwarder", "Fwd", ["NL"])
        self.customs = w.party("customs", "Douane", ["NL"], observer=True)
        self.customs2 = w.party("customs", "Douane Rotterdam", ["NL"], observer=True)
        w.tick()
        self.serials = [f"S{i:03d}" for i in range(20)]
        self.tokens = tokens_of(GTIN, self.serials)
        self.mint(self.serials)
        self.create: Record | None = None
        self.accept: Record | None = None

    def mint(self, serials: list[str], *, expiry: int | None = None, lot: str = "L1"
             ) -> list[Record]:
        w = self.world
        mints = w.mint(self.brand, GTIN, lot, serials, mark="ACME", markets=["DE", "NL"],
                       facility=GLN, expiry=expiry if expiry is not None else w.now + YEAR)
        for tid in tokens_of(GTIN, serials):  # the brand hands the goods to its manufacturer
            w.handover(self.brand, self.maker, "token", tid.hex(), mints[0].id)
        return mints

    def ship(self, *, tokens: list[bytes] | None = None, destination: str = "NL",
             seal_seen: str = SEAL, stop: str = "SGSIN", weight_g: int = WEIGHT,
             temperature: int = 5_000) -> None:
        w = self.world
        self.create = w.create_container(self.maker, BOX)
        w.pack(self.maker, BOX, tokens or self.tokens, weight_g=WEIGHT)
        w.seal(self.maker, BOX, SEAL)
        dest: dict[str, Any] = {"country": destination}
        if destination == "NL":
            dest["locode"] = "NLRTM"
        goods = [{"hs": "851830", "description": "Headphones", "quantity": 20,
                  "weight_g": WEIGHT}]
        w.sign(self.fwd, "shipment.create", {
            "shipment": SHIPMENT, "origin": {"country": "CN", "locode": "CNSHA"},
            "destination": dest, "route": ["SGSIN"], "consignor": "Maker",
            "consignee": "Acme", "containers": [BOX], "goods": goods,
            "silence_limit_ms": SILENCE})
        w.sign(self.fwd, "customs.declaration", {
            "shipment": SHIPMENT, "jurisdiction": "NL", "procedure": "import",
            "declarant": "Fwd", "containers": [BOX], "goods": goods})
        _offer, self.accept = w.handover(self.maker, self.carrier, "container", BOX,
                                         self.create.id)
        w.tick()
        w.scan(self.carrier, "container", BOX, country=stop[:2], locode=stop, seal=seal_seen)
        w.sensor(self.carrier, BOX, "weight", value=weight_g)
        w.sensor(self.carrier, BOX, "temperature", value=temperature)


@dataclass
class Findings:
    logged: list[dict[str, Any]]  # the node's live alert log
    verdict: Verdict
    raised: list[Intent]  # what a customs observer raises from the verdict
    silence: Intent | None
    outcomes: list[str]

    def rules(self) -> set[str]:
        out = {e["rule"] for e in self.logged} | {i.rule for i in self.raised}
        return out | ({self.silence.rule} if self.silence else set())

    def logged_keys(self, rule: str) -> set[bytes]:
        return {e["key"] for e in self.logged if e["rule"] == rule}

    def raised_keys(self, rule: str) -> set[bytes]:
        return {i.key for i in self.raised if i.rule == rule}


def examine(s: Story, path: Path, records: list[Record] | None = None,
            now: int | None = None) -> Findings:
    """What a node holding the story's records finds, at `now` (default: the story's)."""
    w = s.world
    now = w.now if now is None else now
    store = Store.open(path)
    try:
        led = Ledger(store, w.genesis)
        outs = led.submit([r.wire for r in (records or w.records)], now)
        verdict = verify_container(BOX, summary.reader_of(led, now), led.creds, led.params, now)
        found = silent(SHIPMENT, led.facts, led.record, store.object_records,
                       lambda rid: (r.ts if (r := led.record(rid)) else None), led.params, now)
        logged = [e for _, e in store.alerts(limit=1000) if "retracted" not in e]
        return Findings(logged, verdict, intents(verdict), found, [o.status for o in outs])
    finally:
        store.close()


def latest(records: list[Record]) -> Record:
    """The last activity: the latest record (ties broken by id, as every node does)."""
    return max(records, key=lambda r: (r.ts, r.id))


@pytest.fixture(scope="module")
def honest(tmp_path_factory: pytest.TempPathFactory) -> Findings:
    s = Story()
    s.ship()
    return examine(s, tmp_path_factory.mktemp("honest") / "db")


def test_the_honest_story_is_green_and_raises_nothing(honest: Findings) -> None:
    assert honest.verdict.level is Level.GREEN, honest.verdict.reasons
    assert honest.verdict.items == 20
    assert set(honest.outcomes) == {"stored"}
    assert honest.logged == []
    assert honest.raised == []
    assert honest.silence is None


@pytest.mark.parametrize("rule", RULES)
def test_rule_stays_silent_on_the_honest_story(honest: Findings, rule: str) -> None:
    assert rule not in honest.rules()


# -- each rule fires on its anomaly --------------------------------------------------


def test_seal_mismatch(tmp_path: Path) -> None:
    s = Story()
    s.ship(seal_seen="SEAL-9999")
    f = examine(s, tmp_path / "db")
    assert f.verdict.level is Level.RED
    # the ledger's rule and the customs verdict name the same evidence: one alert
    assert f.logged_keys("seal_mismatch") == f.raised_keys("seal_mismatch") != set()
    [entry] = [e for e in f.logged if e["rule"] == "seal_mismatch"]
    assert entry["severity"] == "critical"
    assert entry["subject"] == {"kind": "container", "id": BOX}


@pytest.mark.parametrize("kind", ["door", "tamper"])
def test_seal_breach_door_opened_or_tamper_after_sealing(tmp_path: Path, kind: str) -> None:
    s = Story()
    s.ship()
    s.world.tick()
    if kind == "door":
        breach = s.world.sensor(s.carrier, BOX, "door", open=True)
    else:
        breach = s.world.sensor(s.carrier, BOX, "tamper")
    f = examine(s, tmp_path / "db")
    [entry] = [e for e in f.logged if e["rule"] == "seal_breach"]
    assert breach.id in entry["evidence"]
    assert f.raised_keys("seal_breach") == {entry["key"]}
    assert f.verdict.level is Level.RED


def test_custody_break(tmp_path: Path) -> None:
    s = Story()
    s.ship()
    assert s.accept is not None
    s.world.tick()  # the manufacturer, no longer holding the container, hands it on
    offer = s.world.sign(s.maker, "handover.offer", {
        "object": {"kind": "container", "id": BOX}, "to": s.fwd.pub, "head": s.accept.id})
    f = examine(s, tmp_path / "db")
    [intent] = [i for i in f.raised if i.rule == "custody_break"]
    assert intent.evidence == (offer.id,)
    assert f.verdict.level is Level.RED
    assert intent.key in f.logged_keys("custody_break")  # every node derives it: one alert


def test_custody_break_items_the_packer_did_not_hold(tmp_path: Path) -> None:
    s = Story()
    w = s.world
    w.mint(s.brand, GTIN, "L2", ["X1"], mark="ACME", markets=["NL"], facility=GLN,
           expiry=w.now + YEAR)  # never handed to the manufacturer
    s.ship(tokens=[*s.tokens, token_id(GTIN, "X1")])
    f = examine(s, tmp_path / "db")
    assert "custody_break" in {i.rule for i in f.raised}
    assert "custody.packer_not_holder" in {r.code for r in f.verdict.reasons}
    assert f.raised_keys("custody_break") <= f.logged_keys("custody_break")


def test_double_handover(tmp_path: Path) -> None:
    s = Story()
    s.ship()
    assert s.create is not None
    s.world.tick()  # the manufacturer offers the same custody state a second time
    s.world.sign(s.maker, "handover.offer", {
        "object": {"kind": "container", "id": BOX}, "to": s.fwd.pub, "head": s.create.id})
    f = examine(s, tmp_path / "db")
    [entry] = [e for e in f.logged if e["rule"] == "double_handover"]
    assert f.raised_keys("double_handover") == {entry["key"]}  # one alert, whoever raises it
    assert "custody.disputed" in {r.code for r in f.verdict.reasons}


def test_feed_fork(tmp_path: Path) -> None:
    s = Story()
    s.ship()
    w = s.world
    last = [r for r in w.records if r.author == s.carrier.pub][-1]
    twin = Record.sign(s.carrier.key, network=w.network, seq=last.seq, prev=last.prev,
                       ts=last.ts, type="scan", body={
                           "object": {"kind": "container", "id": BOX2},
                           "place": {"country": "NL"}, "event": "observe", "at": last.ts})
    f = examine(s, tmp_path / "db", [*w.records, twin])
    [entry] = [e for e in f.logged if e["rule"] == "feed_fork"]
    assert entry["subject"] == {"kind": "party", "id": s.carrier.pub.hex()}
    assert sorted(entry["evidence"]) == sorted([last.id, twin.id])
    assert entry["severity"] == "critical"


def test_unauthorised_author_revoked(tmp_path: Path) -> None:
    s = Story()
    s.ship()
    w = s.world
    w.tick()
    revoke = w.revoke(s.carrier)
    w.tick()
    late = w.scan(s.carrier, "container", BOX, country="NL", locode="NLRTM", seal=SEAL)
    w.sensor(s.carrier, BOX, "temperature", value=6_000)
    f = examine(s, tmp_path / "db")
    [entry] = [e for e in f.logged if e["rule"] == "unauthorised_author"]
    assert entry["subject"] == {"kind": "party", "id": s.carrier.pub.hex()}
    assert entry["evidence"] == [late.id]  # its first record without the right
    assert entry["severity"] == "high"
    assert "revoked" in entry["reason"]
    # the revocation arriving last (the scan stored first, then voided): the same alert
    first = [r for r in w.records if r.id != revoke.id]
    g = examine(s, tmp_path / "db2", [*first, revoke])
    assert g.logged_keys("unauthorised_author") == {entry["key"]}


@pytest.mark.parametrize("case", ["role", "expired", "trademark"])
def test_unauthorised_author_refused(tmp_path: Path, case: str) -> None:
    s = Story()
    s.ship()
    w = s.world
    w.tick()
    if case == "role":  # a carrier may not mint
        author = s.carrier
        bad = w.sign(s.carrier, "product.mint", {
            "gtin": GTIN, "lot": "L9", "serials": ["Z1"], "mark": "ACME", "markets": ["NL"],
            "facility": GLN})
    elif case == "expired":  # written after its credential ran out
        author = s.carrier
        bad = w.sign(s.carrier, "scan", {"object": {"kind": "container", "id": BOX},
                                         "place": {"country": "NL"}, "event": "observe",
                                         "at": w.now}, ts=w.now + 6 * YEAR)
    else:  # another brand minting in ACME's GS1 prefix: not the trademark owner
        author = s.brand2
        bad = w.sign(s.brand2, "product.mint", {
            "gtin": GTIN, "lot": "L9", "serials": ["Z1"], "mark": "OTHER", "markets": ["DE"],
            "facility": GLN})
    f = examine(s, tmp_path / "db")
    assert f.outcomes[-1] == "rejected"
    [entry] = [e for e in f.logged if e["rule"] == "unauthorised_author"]
    assert entry["subject"]["id"] == author.pub.hex()
    assert entry["evidence"] == [bad.id]


def test_an_unknown_author_waits_and_raises_nothing(tmp_path: Path) -> None:
    s = Story()
    s.ship()
    stranger = s.world.key("stranger")
    r = Record.sign(stranger, network=s.world.network, seq=1, prev=None, ts=s.world.now,
                    type="scan", body={"object": {"kind": "container", "id": BOX},
                                       "place": {"country": "NL"}, "event": "observe"})
    f = examine(s, tmp_path / "db", [*s.world.records, r])
    assert f.outcomes[-1] == "pending"  # its credential may still come
    assert f.logged == []  # at ingest: past a limit, a time rule alerts (tests/test_timers.py)


def test_item_not_minted_by_the_trademark_owner(tmp_path: Path) -> None:
    s = Story()
    w = s.world
    # another brand "mints" an ACME serial: refused, so the item was never minted
    bogus = w.sign(s.brand2, "product.mint", {
        "gtin": GTIN, "lot": "L1", "serials": ["FAKE1"], "mark": "OTHER", "markets": ["DE"],
        "facility": GLN})
    fake, nobody = token_id(GTIN, "FAKE1"), token_id(GTIN, "FAKE2")  # ... or never at all
    s.ship(tokens=[*s.tokens, fake, nobody])
    f = examine(s, tmp_path / "db")
    assert f.verdict.level is Level.RED
    [intent] = [i for i in f.raised if i.rule == "item_not_minted"]
    assert intent.severity == "critical"
    assert f.logged_keys("item_not_minted") == {intent.key}
    assert "item.not_minted" in {r.code for r in f.verdict.reasons}
    [entry] = [e for e in f.logged if e["rule"] == "unauthorised_author"]
    assert entry["evidence"] == [bogus.id]


def test_cloned_serial_minted_twice(tmp_path: Path) -> None:
    s = Story()
    w = s.world
    w.mint(s.brand, GTIN, "L7", s.serials[:1], mark="ACME", markets=["NL"], facility=GLN)
    s.ship()
    f = examine(s, tmp_path / "db")
    [entry] = [e for e in f.logged if e["rule"] == "cloned_serial"]
    assert entry["subject"] == {"kind": "token", "id": s.tokens[0].hex()}
    assert "cloned_serial" in {i.rule for i in f.raised}  # the verdict sees it too


def test_cloned_serial_packed_in_two_containers(tmp_path: Path) -> None:
    s = Story()
    s.ship()
    w = s.world
    w.create_container(s.maker, BOX2)
    w.pack(s.maker, BOX2, s.tokens[:3], weight_g=75_000)
    f = examine(s, tmp_path / "db")
    assert len(f.logged_keys("cloned_serial")) == 2  # one per container, naming the packs
    assert "item.two_containers" in {r.code for r in f.verdict.reasons}
    assert f.raised_keys("cloned_serial") < f.logged_keys("cloned_serial")


def test_an_item_unpacked_and_packed_again_is_in_one_container_at_a_time(tmp_path: Path
                                                                         ) -> None:
    s = Story()
    w = s.world
    w.create_container(s.maker, BOX2)
    w.pack(s.maker, BOX2, s.tokens, weight_g=WEIGHT)
    w.tick()
    w.sign(s.maker, "container.unpack", {"container": BOX2, "reason": "wrong box"})
    w.tick()
    s.ship()  # the same goods, packed into BOX now
    f = examine(s, tmp_path / "db")
    assert "cloned_serial" not in f.rules()
    assert f.verdict.level is Level.GREEN, f.verdict.reasons


@pytest.mark.parametrize("by", ["lot", "serials"])
def test_recalled_item_in_transit(tmp_path: Path, by: str) -> None:
    s = Story()
    s.ship()
    body: dict[str, Any] = {"gtin": GTIN, "reason": "battery fault"}
    if by == "lot":
        body["lot"] = "L1"
    else:
        body["serials"] = s.serials[:2]
    recall = s.world.sign(s.brand, "recall", body)
    f = examine(s, tmp_path / "db")
    [intent] = [i for i in f.raised if i.rule == "recalled_item"]
    assert intent.evidence == (recall.id,)
    assert intent.severity == "critical"
    assert f.logged_keys("recalled_item") == {intent.key}
    assert f.verdict.level is Level.RED


def test_expired_item_in_transit(tmp_path: Path) -> None:
    s = Story()
    w = s.world
    [mint] = s.mint(["E1"], expiry=w.now + 30 * DAY, lot="L3")
    s.ship(tokens=[*s.tokens, token_id(GTIN, "E1")])
    assert examine(s, tmp_path / "db").raised == []  # not yet
    f = examine(s, tmp_path / "db2", now=w.now + 31 * DAY)
    [intent] = f.raised
    assert (intent.rule, intent.severity, intent.evidence) == ("expired_item", "medium",
                                                               (mint.id,))
    assert f.verdict.level is Level.AMBER  # a documentary check, but alerted all the same


def test_diversion_outside_the_authorised_markets(tmp_path: Path) -> None:
    s = Story()
    s.ship(destination="US")
    f = examine(s, tmp_path / "db")
    [intent] = [i for i in f.raised if i.rule == "diversion"]
    assert intent.subject == ("container", BOX)
    assert f.logged_keys("diversion") == {intent.key}
    assert f.verdict.level is Level.RED
    assert f.verdict.brands == (s.brand.pub,)  # whom the alert concerns


def test_route_deviation(tmp_path: Path) -> None:
    s = Story()
    s.ship(stop="AEJEA")
    f = examine(s, tmp_path / "db")
    [intent] = f.raised
    assert (intent.rule, intent.severity) == ("route_deviation", "medium")
    assert f.verdict.level is Level.AMBER
    assert f.logged_keys("route_deviation") == {intent.key}


@pytest.mark.parametrize(("measured", "level"), [(530_000, Level.AMBER), (900_000, Level.RED)])
def test_weight_mismatch(tmp_path: Path, measured: int, level: Level) -> None:
    s = Story()
    s.ship(weight_g=measured)
    f = examine(s, tmp_path / "db")
    [intent] = f.raised
    assert intent.rule == "weight_mismatch"
    assert f.verdict.level is level
    assert f.logged_keys("weight_mismatch") == {intent.key}


def test_temperature_excursion(tmp_path: Path) -> None:
    s = Story()
    s.ship(temperature=41_000)
    f = examine(s, tmp_path / "db")
    [entry] = [e for e in f.logged if e["rule"] == "temperature_excursion"]
    assert f.raised_keys("temperature_excursion") == {entry["key"]}


def test_shipment_silent_past_its_limit(tmp_path: Path) -> None:
    s = Story()
    s.ship()
    w = s.world
    last = latest(w.records)
    assert examine(s, tmp_path / "a", now=w.now + SILENCE).silence is None  # at the limit
    f = examine(s, tmp_path / "b", now=w.now + SILENCE + 1)
    assert f.silence is not None
    assert f.silence.rule == "shipment_silent"
    assert f.silence.subject == ("shipment", SHIPMENT)
    assert f.silence.evidence == (last.id,)
    assert f.silence.severity == "medium"
    # activity on a container of the shipment ends the episode: a later silence is new
    w.tick(HOUR)
    scan = w.scan(s.carrier, "container", BOX, country="NL", locode="NLRTM", seal=SEAL)
    g = examine(s, tmp_path / "c", now=w.now + SILENCE + 1)
    assert g.silence is not None
    assert g.silence.evidence == (scan.id,)
    assert g.silence.key != f.silence.key


def test_a_delivered_shipment_is_never_silent(tmp_path: Path) -> None:
    s = Story()
    s.ship()
    s.world.sign(s.fwd, "shipment.update", {"shipment": SHIPMENT, "status": "delivered"})
    assert examine(s, tmp_path / "db", now=s.world.now + 30 * DAY).silence is None


def test_a_shipment_without_its_own_limit_uses_the_networks(tmp_path: Path) -> None:
    s = Story()
    s.ship()
    w = s.world
    w.sign(s.fwd, "shipment.create", {  # a second shipment, no limit of its own
        "shipment": "SHP-8", "origin": {"country": "CN"}, "destination": {"country": "NL"},
        "route": [], "consignor": "Maker", "consignee": "Acme", "containers": [BOX2],
        "goods": [{"hs": "851830", "description": "Headphones", "quantity": 1,
                   "weight_g": 1}]})
    store = Store.open(tmp_path / "db")
    try:
        led = Ledger(store, w.genesis)
        led.submit([r.wire for r in w.records], w.now)

        def at(now: int) -> Intent | None:
            return silent("SHP-8", led.facts, led.record, store.object_records,
                          lambda rid: (r.ts if (r := led.record(rid)) else None), led.params,
                          now)

        assert at(w.now + SILENCE + 1) is None
        assert at(w.now + led.params.silence_limit_ms + 1) is not None
    finally:
        store.close()


# -- the time rules run on the daemon's clock ---------------------------------------


async def test_the_timer_logs_each_silence_once(tmp_path: Path, autojump_clock: Any) -> None:
    s = Story()
    s.ship()
    w = s.world
    store = Store.open(tmp_path / "db")
    led = Ledger(store, w.genesis)
    led.submit([r.wire for r in w.records], w.now)
    clock = [w.now]
    ticked: list[int] = []

    async def write(fn: Any) -> Any:
        return fn()

    timers = Timers(led, write=write, lock=trio.Lock(), clock=lambda: clock[0], interval_s=60,
                    ticks=[lambda: ticked.append(clock[0])])

    def silences() -> list[dict[str, Any]]:
        return [e for _, e in store.alerts() if e["rule"] == "shipment_silent"]

    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(timers.run)
            await trio.sleep(61)
            assert silences() == []
            assert len(ticked) == 1
            clock[0] += SILENCE + 1  # six hours without a word
            await trio.sleep(60)
            [entry] = silences()
            first = latest(w.records)
            assert entry["evidence"] == [first.id]
            assert entry["subject"] == {"kind": "shipment", "id": SHIPMENT}
            await trio.sleep(600)  # still silent: the same alert, not raised again
            assert len(silences()) == 1
            assert timers.raised == 1
            w.now = clock[0]  # a scan ends the silence; the next one is a new alert
            scan = w.scan(s.carrier, "container", BOX, country="NL", locode="NLRTM", seal=SEAL)
            led.submit([scan.wire], clock[0])
            await trio.sleep(60)
            assert len(silences()) == 1
            clock[0] += SILENCE + 1
            await trio.sleep(60)
            assert [e["evidence"] for e in silences()] == [[first.id], [scan.id]]
            w.sign(s.fwd, "shipment.update", {"shipment": SHIPMENT, "status": "delivered"})
            led.submit([w.records[-1].wire], clock[0])
            clock[0] += 30 * DAY
            await trio.sleep(600)
            assert len(silences()) == 2  # delivered: silence is fine
            nursery.cancel_scope.cancel()
    finally:
        store.close()


# -- one finding, one alert, network-wide -------------------------------------------


def test_two_nodes_deriving_the_same_finding_produce_the_same_alert_keys(tmp_path: Path
                                                                        ) -> None:
    """Two nodes, the records in opposite orders: the same alert keys, from every source;
    two customs offices signing the same finding make one alert on a third node."""
    s = Story()
    s.ship(seal_seen="SEAL-9999", temperature=41_000)
    w = s.world
    assert s.create is not None
    w.sign(s.maker, "handover.offer", {  # a double hand-over
        "object": {"kind": "container", "id": BOX}, "to": s.fwd.pub, "head": s.create.id})
    w.tick()
    w.revoke(s.carrier)
    w.tick()
    w.scan(s.carrier, "container", BOX, country="NL", locode="NLRTM", seal=SEAL)
    later = w.now + SILENCE + 1
    a = examine(s, tmp_path / "a", list(w.records), now=later)
    b = examine(s, tmp_path / "b", list(reversed(w.records)), now=later)
    assert {e["key"] for e in a.logged} == {e["key"] for e in b.logged}
    assert {"seal_mismatch", "double_handover", "temperature_excursion",
            "unauthorised_author"} <= {e["rule"] for e in a.logged}
    assert {i.key for i in a.raised} == {i.key for i in b.raised} != set()
    assert a.silence is not None
    assert b.silence is not None
    assert a.silence.key == b.silence.key
    # Both customs offices raise the verdict's findings as signed alert records.
    signed = [w.sign(office, "alert", i.body()) for office in (s.customs, s.customs2)
              for i in a.raised]
    c = examine(s, tmp_path / "c", now=later)
    assert {r.id for r in signed} <= {r.id for r in w.records}
    keys = [e["key"] for e in c.logged]
    assert len(keys) == len(set(keys))  # each finding once, however many raised it
    assert {i.key for i in a.raised} | {e["key"] for e in a.logged} == set(keys)
