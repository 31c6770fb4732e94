"""The ledger: ingest (stored, duplicate, pending, rejected, fork), alerts, repair, own feed.

Everything runs on a real LevelDB in `tmp_path` with records built by
`node.scenario.World`: parties with credentials, goods minted, packed, sealed,
handed over and scanned.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import plyvel
import pytest

from crypto.keys import SigningKey
from node import audit, cli
from node import facts as F
from node.datadir import DataDir
from node.ledger import Ledger
from node.scenario import DAY, YEAR, Party, World, tokens_of
from node.store import Store
from protocol import codec
from protocol.envelope import Record
from protocol.feed import EquivocationProof
from tests import examples as ex

T0 = 1_750_000_000_000
SEAL = "ML-4512345"
WRONG_SEAL = "ML-9999999"
MY_KEY = SigningKey(bytes([77]) * 32)


@dataclass
class Scene:
    """One brand's goods travelling in one sealed container, handed to a carrier."""

    w: World
    brand: Party
    carrier: Party
    carrier2: Party
    me: Party  # the key of the node under test: credentialed carrier, feed written by the node
    mint: list[Record]
    create: Record
    seal: Record
    offer: Record
    accept: Record
    scans: list[Record]


def scene(seed: int = 1) -> Scene:
    w = World.create(seed=seed, t0=T0)
    brand = w.party("brand", "ACME Brands B.V.", ["NL"], trademarks=[ex.trademark()])
    carrier = w.party("carrier", "Rhine Freight", ["NL", "DE"])
    carrier2 = w.party("carrier", "Baltic Lines", ["DE"])
    me = w.party("carrier", "Our Node B.V.", ["NL"], key=MY_KEY)
    w.tick()
    mint = w.mint(brand, ex.GTIN, ex.LOT, list(ex.SERIALS), mark="ACME", markets=["DE", "NL"],
                  facility=ex.GLN, expiry=T0 + YEAR)
    create = w.create_container(brand, ex.CONTAINER)
    w.tick()
    w.pack(brand, ex.CONTAINER, tokens_of(ex.GTIN, ex.SERIALS), weight_g=3_600,
           shipment=ex.SHIPMENT)
    w.sign(brand, "shipment.create", ex.shipment_create(  # on to Duisburg, by the Rhine
        containers=[ex.CONTAINER], route=["CNSHA", "SGSIN", "NLRTM", "DEDUI"]))
    seal = w.seal(brand, ex.CONTAINER, SEAL)
    w.tick()
    offer, accept = w.handover(brand, carrier, "container", ex.CONTAINER, seal.id)
    w.tick()
    scans = [w.scan(carrier, "container", ex.CONTAINER, country="NL", locode="NLRTM",
                    event="gate_in", seal=SEAL)]
    w.tick()
    w.sensor(carrier, ex.CONTAINER, "temperature", value=4_000)
    w.sensor(carrier, ex.CONTAINER, "weight", value=2_203_600)
    w.tick()
    scans.append(w.scan(carrier, "container", ex.CONTAINER, country="DE", event="observe",
                        seal=SEAL))
    return Scene(w, brand, carrier, carrier2, me, mint, create, seal, offer, accept, scans)


def forge(w: World, p: Party, type_name: str, body: Any, *, ts: int | None = None,
          network: bytes | None = None, seq: int | None = None,
          prev: bytes | None | str = "head") -> Record:
    """A record of `p` at its next seq that does NOT advance `p`'s feed in the World."""
    return Record.sign(p.key, network=network or w.network, seq=p.seq + 1 if seq is None else seq,
                       prev=p.prev if prev == "head" else prev,  # type: ignore[arg-type]
                       ts=w.now if ts is None else ts, type=type_name, body=body)


def dump(store: Store) -> dict[bytes, bytes]:
    return dict(store._db.iterator())


def statuses(outcomes: Any) -> list[str]:
    return [o.status for o in outcomes]


def alert_rules(store: Store) -> list[str]:
    return sorted(e["rule"] for _, e in store.alerts(limit=10_000))


def expected_facts(ledger: Ledger) -> dict[bytes, F.Facts]:
    """The reference: `facts.fold` over the stored records that still count, plus fork facts."""
    records = [Record.from_bytes(raw, verify=False) for _, raw in ledger.store.iter_records()]
    out = F.fold(
        fact for r in records if not ledger.excluded(r)
        for fact in F.contributions(r, ledger.params)
    )
    for raw in ledger.store.proofs():
        p = EquivocationProof.from_bytes(raw)
        for rid in {p.first.id, p.second.id if p.first.seq == p.second.seq else p.second.prev}:
            assert rid is not None
            F.join(out.setdefault(F.author_key(p.author), {}), F.Fact(F.author_key(p.author),
                                                                      "fork", (p.seq, rid)))
    return out


def stored_facts(store: Store) -> dict[bytes, F.Facts]:
    return {k: F.decode_facts(v) for k, v in store.iter_facts()}


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Store]:
    s = Store.open(tmp_path / "db")
    yield s
    s.close()


def ledger_for(store: Store, s: Scene, **kw: Any) -> Ledger:
    return Ledger(store, s.w.genesis, **kw)


# -- the happy path --------------------------------------------------------------------


def test_scenario_is_stored_whole(db: Store) -> None:
    s = scene()
    led = ledger_for(db, s)
    outcomes = led.submit([r.wire for r in s.w.records], s.w.now)
    assert statuses(outcomes) == ["stored"] * len(s.w.records)
    assert [o.id for o in outcomes] == [r.id for r in s.w.records]
    for r in s.w.records:
        assert db.record(r.id) == r.wire
    assert led.head(s.carrier.pub).seq == s.carrier.seq == db.head(s.carrier.pub).seq
    assert led.stats[("ingested", "credential.issue")] == 4
    assert sum(n for (what, _), n in led.stats.items() if what == "ingested") == len(s.w.records)
    token = led.facts(F.token_key(tokens_of(ex.GTIN, ex.SERIALS)[0]))
    assert token["mint"] == {(s.mint[0].id, s.brand.pub)}
    container = led.facts(F.container_key(ex.CONTAINER))
    assert container["seals"] == {(s.seal.ts, s.seal.id, SEAL, s.brand.pub)}
    assert len(container["seal_seen"]) == 2
    assert container["accepts"] == {(s.offer.id, s.accept.id, s.carrier.pub, s.seal.id)}
    assert stored_facts(db) == expected_facts(led)
    assert db.alerts() == []  # an honest journey raises nothing
    assert audit.check(db, s.w.genesis) == []
    assert len(led.pending) == 0


def test_records_read_back_are_the_stored_ones_and_the_kept_ones_are_bounded(
        db: Store) -> None:
    s = scene()
    total = sum(len(r.wire) for r in s.w.records)
    led = ledger_for(db, s, record_cache_bytes=total // 3)
    led.submit([r.wire for r in s.w.records], s.w.now)
    for _ in range(2):  # read from the store, then from what the ledger kept
        for r in s.w.records:
            got = led.record(r.id)
            assert got is not None
            assert (got.id, got.wire, got.body) == (r.id, r.wire, r.body)
        assert 0 < len(led._records) < len(s.w.records)  # emptied when over the bound
        assert 0 < led._records_bytes <= total // 3
    assert led.record(b"\x00" * 32) is None


def test_state_root_changes_with_state_and_survives_reopen(tmp_path: Path) -> None:
    s = scene()
    store = Store.open(tmp_path / "db")
    led = ledger_for(store, s)
    empty = led.state_root()
    led.submit([r.wire for r in s.w.records], s.w.now)
    root = led.state_root()
    assert root != empty
    store.close()
    store = Store.open(tmp_path / "db")
    assert ledger_for(store, s).state_root() == root
    store.close()


def test_duplicates_change_nothing(db: Store) -> None:
    s = scene()
    led = ledger_for(db, s)
    wires = [r.wire for r in s.w.records]
    led.submit(wires, s.w.now)
    before, root = dump(db), led.state_root()
    outcomes = led.submit(wires, s.w.now + 1)
    assert statuses(outcomes) == ["duplicate"] * len(wires)
    assert dump(db) == before
    assert led.state_root() == root
    # twice in one batch: the second is a duplicate of the first
    s.w.tick()
    r = s.w.scan(s.carrier, "container", ex.CONTAINER, country="NL", seal=SEAL)
    assert statuses(led.submit([r.wire, r.wire], s.w.now)) == ["stored", "duplicate"]


# -- the pending area --------------------------------------------------------------------


def test_gap_waits_and_is_released_by_its_predecessor(db: Store) -> None:
    s = scene()
    led = ledger_for(db, s)
    authority = [r for r in s.w.records if r.author == s.w.authority.pub]
    led.submit([r.wire for r in authority], s.w.now)
    brand = [r for r in s.w.records if r.author == s.brand.pub]
    assert len(brand) >= 5
    # In reverse, one call per record: every one but seq 1 waits.
    for r in reversed(brand[1:]):
        (out,) = led.submit([r.wire], s.w.now)
        assert out.status == "pending"
        assert "earlier record" in (out.reason or "")
        assert not db.has_record(r.id)
    assert len(led.pending) == len(brand) - 1
    assert led.pending.missing() == {s.brand.pub: brand[-1].seq}
    (out,) = led.submit([brand[0].wire], s.w.now)
    assert out.status == "stored"
    assert len(led.pending) == 0
    assert all(db.has_record(r.id) for r in brand)
    assert led.head(s.brand.pub).id == brand[-1].id
    # and in reverse within one call
    rest = [r for r in s.w.records if r.author not in (s.w.authority.pub, s.brand.pub)]
    carrier = [r for r in rest if r.author == s.carrier.pub]
    outs = led.submit([r.wire for r in reversed(carrier)], s.w.now)
    assert statuses(outs) == ["pending"] * (len(carrier) - 1) + ["stored"]
    assert all(db.has_record(r.id) for r in carrier)
    assert stored_facts(db) == expected_facts(led)
    assert audit.check(db, s.w.genesis) == []


def test_unknown_author_waits_for_its_credential(db: Store) -> None:
    s = scene()
    led = ledger_for(db, s)
    others = [r for r in s.w.records if r.author != s.w.authority.pub]
    outs = led.submit([r.wire for r in others], s.w.now)
    assert set(statuses(outs)) == {"pending"}
    assert any("credential" in (o.reason or "") for o in outs)
    assert list(db.iter_records()) == []
    assert led.stats[("pending", "author")] > 0
    authority = [r for r in s.w.records if r.author == s.w.authority.pub]
    outs = led.submit([r.wire for r in authority], s.w.now)
    assert statuses(outs) == ["stored"] * len(authority)
    assert all(db.has_record(r.id) for r in s.w.records)
    assert len(led.pending) == 0
    assert stored_facts(db) == expected_facts(led)
    assert audit.check(db, s.w.genesis) == []


def test_pending_area_is_bounded(db: Store) -> None:
    s = scene()
    led = ledger_for(db, s, pending_limit=5)
    led.submit([s.brand.credential.wire, s.carrier.credential.wire], s.w.now)
    scans = []
    for _ in range(12):
        s.w.tick()
        scans.append(s.w.scan(s.carrier2, "container", ex.CONTAINER, country="DE", seal=SEAL))
    # carrier2's credential is withheld and its seq 1 too: 11 gaps, 5 fit.
    outs = led.submit([r.wire for r in scans[1:]], s.w.now)
    assert statuses(outs) == ["pending"] * 11
    assert sum("dropped" in (o.reason or "") for o in outs) == 6
    assert len(led.pending) == 5
    assert led.pending.dropped == 6
    assert led.stats[("dropped", "pending_full")] == 6
    # unknown authors share the same bound
    stranger = SigningKey(bytes([99]) * 32)
    stray = Record.sign(stranger, network=s.w.network, seq=1, prev=None, ts=T0, type="scan",
                        body=ex.scan())
    (out,) = led.submit([stray.wire], s.w.now)
    assert out.status == "pending"
    assert len(led.pending) == 5
    assert led.pending.dropped == 7
    assert led.stats[("dropped", "pending_full")] == 7
    # the predecessor releases what was kept; sync refetches the rest
    led.submit([s.carrier2.credential.wire, scans[0].wire], s.w.now)
    assert db.head(s.carrier2.pub).seq == 6
    assert len(led.pending) == 0
    outs = led.submit([r.wire for r in scans], s.w.now)
    assert statuses(outs) == ["duplicate"] * 6 + ["stored"] * 6
    assert db.head(s.carrier2.pub).seq == 12
    assert audit.check(db, s.w.genesis) == []


# -- rejected records ----------------------------------------------------------------------


def bad_records(s: Scene) -> dict[str, bytes]:
    """Wires that must each be rejected, keyed by the stats rule they count under."""
    w = s.w
    scan_body = ex.scan(at=w.now)
    good = forge(w, s.carrier, "scan", scan_body)
    unsigned, sig = codec.decode(good.wire)
    other_net = World.create(seed=1, t0=T0, name="another network").network
    flipped = bytearray(good.wire)
    flipped[len(flipped) // 2] ^= 0x01
    return {
        "network": forge(w, s.carrier, "scan", scan_body, network=other_net).wire,
        "VerificationError": codec.encode([unsigned, bytes(64)]),
        "mutated": bytes(flipped),
        "role": forge(w, s.carrier, "product.mint", ex.mint(serials=["B1"], expiry=None)).wire,
        "trademark": forge(w, s.brand, "product.mint",
                           ex.mint(gtin=ex.GTIN_2, serials=["C1"], expiry=None)).wire,
        "trademark/mark": forge(w, s.brand, "product.mint",
                                ex.mint(mark="OTHER", serials=["C2"], expiry=None)).wire,
        "author.expired": forge(w, s.carrier, "scan", scan_body, ts=w.now + 6 * YEAR).wire,
        "author.not_yet_valid": forge(w, s.carrier, "scan", scan_body, ts=T0 - 2 * DAY).wire,
        "DecodeError": b"\x92\xc4\x01x",
        "oversize": b"\x00" * (70 * 1024),
    }


def test_rejected_records_leave_no_trace(db: Store) -> None:
    s = scene()
    led = ledger_for(db, s)
    led.submit([r.wire for r in s.w.records], s.w.now)
    # a revoked author too: revoke carrier2, then it writes
    s.w.tick()
    revoke = s.w.revoke(s.carrier2)
    led.submit([revoke.wire], s.w.now)
    s.w.tick()
    revoked = forge(s.w, s.carrier2, "scan", ex.scan(at=s.w.now))
    bad = {**bad_records(s), "author.revoked": revoked.wire}
    before, root = dump(db), led.state_root()
    rejected_before = sum(n for (k, _), n in led.stats.items() if k == "rejected")
    for name, wire in bad.items():
        outs = led.submit([wire], s.w.now)
        assert statuses(outs) == ["rejected"], name
        assert outs[0].reason, name
        assert outs[0].penalty > 0, name
    # No trace but an alert for each author writing without the right to: the carrier, the
    # brand and the revoked carrier, each by its first such record (the lowest seq, then id).
    after, alerted = dump(db), led.version
    logged = {k: v for k, v in after.items() if k not in before}
    assert {k: v for k, v in after.items() if k not in logged} == before
    assert {k[:1] for k in logged} == {b"A", b"K", b"M"}
    live = [e for _, e in db.alerts(limit=100)
            if e["rule"] == "unauthorised_author" and "retracted" not in e]
    assert {e["subject"]["id"] for e in live} == {
        p.pub.hex() for p in (s.carrier, s.brand, s.carrier2)}
    assert len(live) == 3
    assert led.state_root() == root
    outs = led.submit(list(bad.values()), s.w.now)  # and all in one batch: nothing new
    assert statuses(outs) == ["rejected"] * len(bad)
    assert dump(db) == after
    assert led.version == alerted
    assert len(led.pending) == 0
    rejected = sum(n for (k, _), n in led.stats.items() if k == "rejected")
    assert rejected - rejected_before == 2 * len(bad)
    for rule in ("network", "VerificationError", "role", "trademark", "author.expired",
                 "author.not_yet_valid", "author.revoked"):
        assert led.stats[("rejected", rule)] >= 2, rule
    # a bad record in a batch of good ones: the good ones land, the bad one does not
    s.w.tick()
    ok = s.w.scan(s.carrier, "container", ex.CONTAINER, country="NL", seal=SEAL)
    outs = led.submit([bad["role"], ok.wire, bad["network"]], s.w.now)
    assert statuses(outs) == ["rejected", "stored", "rejected"]
    assert set(dump(db)) - set(before) >= {b"R" + ok.id}
    assert audit.check(db, s.w.genesis) == []


# -- forks -----------------------------------------------------------------------------------


def test_fork_is_proved_flagged_and_alerted_once(db: Store) -> None:
    s = scene()
    w = s.w
    led = ledger_for(db, s)
    led.submit([r.wire for r in w.records], w.now)
    carrier = [r for r in w.records if r.author == s.carrier.pub]
    assert len(carrier) >= 4
    at = carrier[2]  # the carrier's third record
    twin = forge(w, s.carrier, "scan", ex.scan(at=at.ts, seal=WRONG_SEAL), seq=at.seq,
                 prev=at.prev, ts=at.ts)
    assert twin.seq == at.seq
    assert twin.id != at.id
    (out,) = led.submit([twin.wire], w.now)
    assert out.status == "fork"
    assert led.forked == {s.carrier.pub: at.seq}
    proofs = [EquivocationProof.from_bytes(p) for p in db.proofs(s.carrier.pub)]
    assert len(proofs) == 1
    assert {proofs[0].first.id, proofs[0].second.id} == {at.id, twin.id}
    assert led.stats[("fork", "detected")] == 1
    forks = [e for _, e in db.alerts() if e["rule"] == "feed_fork"]
    assert len(forks) == 1
    assert forks[0]["subject"] == {"kind": "party", "id": s.carrier.pub.hex()}
    assert forks[0]["evidence"] == sorted([at.id, twin.id])
    # the twin's wrong seal never counted: no seal alert
    assert "seal_mismatch" not in alert_rules(db)
    # records of the author from the fork on stop counting; earlier ones still count
    for r in carrier:
        assert led.excluded(r) == (r.seq >= at.seq)
    c = led.facts(F.container_key(ex.CONTAINER))
    assert {x[1] for x in c.get("seal_seen", ())} == {x.id for x in carrier[:2] if x.type == "scan"}
    assert stored_facts(db) == expected_facts(led)
    # later records of the author are refused, the fork is not alerted again
    w.tick()
    later = w.scan(s.carrier, "container", ex.CONTAINER, country="NL", seal=SEAL)
    assert statuses(led.submit([later.wire, twin.wire], w.now)) == ["rejected", "duplicate"]
    assert led.stats[("rejected", "author.forked")] == 1
    assert led.stats[("fork", "detected")] == 1
    assert not db.has_record(later.id)
    assert len([e for _, e in db.alerts() if e["rule"] == "feed_fork"]) == 1
    assert audit.check(db, w.genesis) == []
    # the flag survives a restart
    assert ledger_for(db, s).forked == {s.carrier.pub: at.seq}


def test_more_equivocations_converge_whatever_the_order(tmp_path: Path) -> None:
    """A later second fork, a third record at the forked seq, a record naming an unseen
    predecessor: every order ends with the earliest dispute and every record in it."""
    w = World.create(seed=2, t0=T0)
    c = w.party("carrier", "Twister", ["NL"])
    xs = []
    for _ in range(6):
        w.tick()
        xs.append(w.scan(c, "container", ex.CONTAINER, country="NL", seal=SEAL))

    def twin(seq: int, prev: bytes | None, seal: str) -> Record:
        at = xs[seq - 1]
        return Record.sign(c.key, network=w.network, seq=seq, prev=prev, ts=at.ts, type="scan",
                           body=ex.scan(at=at.ts, seal=seal))

    unseen = ex.record_id("never seen")
    extra = [twin(5, xs[3].id, "ML-9990001"), twin(3, xs[1].id, "ML-9990002"),
             twin(3, xs[1].id, "ML-9990003"), twin(4, unseen, "ML-9990004")]
    results = set()
    for i, order in enumerate(itertools.permutations([*xs, *extra][3:])):
        if i % 211:  # a spread of the 5040 orders
            continue
        store = Store.open(tmp_path / f"db{i}")
        led = Ledger(store, w.genesis)
        led.submit([r.wire for r in w.records[:1] + xs[:3]], w.now)
        for r in order:
            led.submit([r.wire], w.now)
        assert audit.check(store, w.genesis) == []
        assert led.forked == {c.pub: 3}
        forks = led.facts(F.author_key(c.pub))["fork"]
        assert forks == {(3, rid) for rid in (xs[2].id, extra[1].id, extra[2].id, unseen)}
        alerts = frozenset(e["key"] for _, e in store.alerts() if "retracted" not in e)
        assert len(alerts) == 6  # every pair of the four
        results.add((led.state_root(), alerts))
        store.close()
    assert len(results) == 1


def test_broken_link_is_a_fork(db: Store) -> None:
    s = scene()
    w = s.w
    led = ledger_for(db, s)
    led.submit([r.wire for r in w.records], w.now)
    w.tick()
    bent = forge(w, s.brand, "scan", ex.scan(at=w.now), prev=ex.record_id("elsewhere"))
    (out,) = led.submit([bent.wire], w.now)
    assert out.status == "fork"
    assert led.forked == {s.brand.pub: s.brand.seq}
    assert len([e for _, e in db.alerts() if e["rule"] == "feed_fork"]) == 1
    assert stored_facts(db) == expected_facts(led)
    assert audit.check(db, w.genesis) == []


# -- alerts -------------------------------------------------------------------------------------


def test_double_handover_raises_one_alert(db: Store) -> None:
    s = scene()
    w = s.w
    led = ledger_for(db, s)
    led.submit([r.wire for r in w.records], w.now)
    head = s.accept.id  # the carrier now holds the container
    w.tick()
    o1 = w.sign(s.carrier, "handover.offer",
                {"object": ex.container_ref(), "to": s.carrier2.pub, "head": head})
    w.tick()
    o2 = w.sign(s.carrier, "handover.offer",
                {"object": ex.container_ref(), "to": s.me.pub, "head": head})
    assert statuses(led.submit([o1.wire], w.now)) == ["stored"]
    assert db.alerts() == []
    assert statuses(led.submit([o2.wire], w.now)) == ["stored"]
    alerts = [e for _, e in db.alerts()]
    assert [e["rule"] for e in alerts] == ["double_handover"]
    assert alerts[0]["evidence"] == sorted([o1.id, o2.id])
    assert alerts[0]["subject"] == {"kind": "container", "id": ex.CONTAINER}
    assert alerts[0]["ts"] == w.now
    w.tick()
    led.submit([w.scan(s.carrier, "container", ex.CONTAINER, country="NL", seal=SEAL).wire],
               w.now)
    assert alert_rules(db) == ["double_handover"]
    assert audit.check(db, w.genesis) == []


def test_seal_mismatch_alert(db: Store) -> None:
    s = scene()
    w = s.w
    led = ledger_for(db, s)
    seen: list[Any] = []
    led.on_stored(lambda records, alerts: seen.extend(alerts))
    led.submit([r.wire for r in w.records], w.now)
    w.tick()
    bad = w.scan(s.carrier, "container", ex.CONTAINER, country="DE", seal=WRONG_SEAL)
    led.submit([bad.wire], w.now)
    alerts = [e for _, e in db.alerts()]
    assert [e["rule"] for e in alerts] == ["seal_mismatch"]
    assert alerts[0]["evidence"] == sorted([s.seal.id, bad.id])
    assert WRONG_SEAL in alerts[0]["reason"]
    assert seen == alerts  # pushed to listeners as it was stored
    assert led.stats[("alert", "seal_mismatch")] == 1
    # the same finding again (a duplicate, or a rebuild) is not a second alert
    led.submit([bad.wire], w.now)
    assert len(db.alerts()) == 1
    assert audit.check(db, w.genesis) == []


# -- revocation after the fact ------------------------------------------------------------------


def test_revocation_after_the_fact_recomputes_facts(db: Store) -> None:
    s = scene()
    w = s.w
    led = ledger_for(db, s)
    w.tick()
    revoke = w.revoke(s.carrier)  # effective now
    effective = revoke.body.effective
    w.tick()
    after = w.scan(s.carrier, "container", ex.CONTAINER, country="BE", event="gate_out", seal=SEAL)
    w.sensor(s.carrier, ex.CONTAINER, "position", lat_udeg=51_000_000, lon_udeg=4_000_000)
    # everything but the revocation first: the late scan counts, for now
    led.submit([r.wire for r in w.records if r.id != revoke.id], w.now)
    ck = F.container_key(ex.CONTAINER)
    assert led.facts(ck)["scan"][1] == after.id
    assert "position" in led.facts(ck)
    root = led.state_root()
    (out,) = led.submit([revoke.wire], w.now)
    assert out.status == "stored"
    carrier = [r for r in w.records if r.author == s.carrier.pub]
    assert any(r.ts < effective for r in carrier)
    for r in carrier:
        assert led.excluded(r) == (r.ts >= effective)
        assert db.has_record(r.id)  # stored records stay; they stop counting
    facts = led.facts(ck)
    assert facts["scan"][1] == s.scans[1].id
    assert "position" not in facts
    assert after.id not in {x[1] for x in facts["seal_seen"]}
    assert led.state_root() != root
    assert stored_facts(db) == expected_facts(led)
    # the author's new records are refused now
    w.tick()
    late = forge(w, s.carrier, "scan", ex.scan(at=w.now))
    assert statuses(led.submit([late.wire], w.now)) == ["rejected"]
    assert audit.check(db, w.genesis) == []


def test_alerts_whose_evidence_stops_counting_are_retracted(db: Store) -> None:
    s = scene()
    w = s.w
    led = ledger_for(db, s)
    w.tick()
    revoke = w.revoke(s.carrier)
    w.tick()
    bad = w.scan(s.carrier, "container", ex.CONTAINER, country="PL", seal=WRONG_SEAL)
    door = w.sensor(s.carrier, ex.CONTAINER, "door", open=True)
    led.submit([r.wire for r in w.records if r.id != revoke.id], w.now)
    raised = {e["rule"]: (c, e) for c, e in db.alerts()}
    # (the scan in Poland is off the shipment's route too: a derived finding, `node.derived`)
    assert set(raised) == {"seal_mismatch", "seal_breach", "route_deviation"}
    assert bad.id in raised["seal_mismatch"][1]["evidence"]
    assert door.id in raised["seal_breach"][1]["evidence"]
    w.tick()
    led.submit([revoke.wire], w.now)
    after = db.alerts()
    withdrawn = [(c, e) for c, e in after if e["rule"] != "unauthorised_author"]
    # the log keeps its cursors; the withdrawn entries are marked with when
    assert [c for c, _ in withdrawn] == sorted(c for c, _ in raised.values())
    assert all(e["retracted"] == w.now for _, e in withdrawn)
    # the author writing without the right is alerted, by its first such record, as if
    # that had been refused on arrival
    voided = [e["evidence"] for _, e in after if e["rule"] == "unauthorised_author"]
    assert voided == [[bad.id]]
    assert led.stats[("alert_retracted", "seal_mismatch")] == 1
    assert led.stats[("alert_retracted", "seal_breach")] == 1
    assert led.stats[("alert_retracted", "route_deviation")] == 1
    assert audit.check(db, w.genesis) == []
    # a new finding gets a new cursor, never a retracted one's
    w.tick()
    w.sign(s.brand, "handover.offer", {"object": ex.container_ref(), "to": s.carrier2.pub,
                                       "head": s.seal.id})
    led.submit([w.records[-1].wire], w.now)
    [(_, entry)] = db.alerts(since=max(c for c, _ in after))
    assert entry["rule"] == "double_handover"
    assert "retracted" not in entry


def test_alert_withdrawn_when_a_late_record_explains_it_and_back_when_that_stops_counting(
        tmp_path: Path) -> None:
    w = World.create(seed=8, t0=T0)
    brand = w.party("brand", "ACME B.V.", ["NL"], trademarks=[ex.trademark()])
    carrier = w.party("carrier", "Rhine Freight", ["NL"])
    w.tick()
    create = w.create_container(brand, ex.CONTAINER)
    w.tick()
    seal1 = w.seal(brand, ex.CONTAINER, "ML-1110001")
    w.tick()
    between = w.now
    w.tick()
    seal2 = w.seal(brand, ex.CONTAINER, "ML-2220002")  # resealed
    w.tick()
    scan = w.scan(carrier, "container", ex.CONTAINER, country="NL", seal="ML-2220002")
    revoke = w.sign(w.authority, "credential.revoke", {  # the reseal came after the end
        "credential": brand.credential.id, "reason": "key compromised", "effective": between})
    creds = [brand.credential, carrier.credential]

    def live(store: Store) -> list[tuple[str, list[bytes]]]:  # from facts (not refusals)
        return [(e["rule"], e["evidence"]) for _, e in store.alerts()
                if "retracted" not in e and e["rule"] != "unauthorised_author"]

    store = Store.open(tmp_path / "a")
    led = Ledger(store, w.genesis)
    led.submit([r.wire for r in [*creds, create, seal1, scan]], w.now)
    assert live(store) == [("seal_mismatch", sorted([seal1.id, scan.id]))]
    led.submit([seal2.wire], w.now)  # the reseal explains the seal seen
    assert live(store) == []
    assert led.stats[("alert_retracted", "seal_mismatch")] == 1
    led.submit([revoke.wire], w.now + 1)  # ... until it stops counting
    assert live(store) == [("seal_mismatch", sorted([seal1.id, scan.id]))]
    assert [e["rule"] for _, e in store.alerts()].count("seal_mismatch") == 1  # back in force
    assert audit.check(store, w.genesis) == []
    root = led.state_root()
    store.close()

    store = Store.open(tmp_path / "b")  # the revocation first: the reseal is refused
    led = Ledger(store, w.genesis)
    led.submit([r.wire for r in [*creds, revoke, create, seal1, seal2, scan]], w.now)
    assert live(store) == [("seal_mismatch", sorted([seal1.id, scan.id]))]
    assert led.state_root() == root
    store.close()


def own_scan(at: int, seal: str = SEAL) -> tuple[str, dict[str, Any]]:
    """An entry of our own feed (the appends are tested in tests/test_ledger_own.py)."""
    return ("scan", {"object": ex.container_ref(), "place": {"country": "NL"},
                     "event": "observe", "at": at, "seal": seal})


# -- check and rebuild ------------------------------------------------------------------------


def everything(led: Ledger, s: Scene) -> None:
    """Drive a ledger through the whole repertoire: pending, forks, alerts, revocation, own feed."""
    w = s.w
    wires = [r.wire for r in w.records]
    led.submit(wires[::-1], w.now)
    led.submit(wires, w.now)
    w.tick()
    head = s.accept.id
    for to in (s.carrier2, s.me):
        w.sign(s.carrier, "handover.offer", {"object": ex.container_ref(), "to": to.pub,
                                             "head": head})
    w.scan(s.carrier2, "container", ex.CONTAINER, country="DE", seal=WRONG_SEAL)
    w.sensor(s.carrier, ex.CONTAINER, "door", open=True)
    w.sensor(s.carrier, ex.CONTAINER, "temperature", value=45_000)
    w.tick()
    w.revoke(s.carrier2)
    w.tick()
    w.scan(s.carrier2, "container", ex.CONTAINER, country="PL", seal=SEAL)
    led.submit([r.wire for r in w.records[len(wires):]], w.now)
    b = [r for r in w.records if r.author == s.brand.pub]
    twin = forge(w, s.brand, "scan", ex.scan(at=w.now), seq=b[-1].seq, prev=b[-1].prev)
    led.submit([twin.wire], w.now)
    led.append_own([own_scan(w.now), own_scan(w.now, WRONG_SEAL)], w.now)


def test_check_passes_after_everything_and_catches_corruption(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    s = scene()
    d = DataDir.init(tmp_path / "node", s.w.genesis, role="carrier", key=MY_KEY)
    store = Store.open(d.db_path)
    led = ledger_for(store, s, own=MY_KEY)
    everything(led, s)
    rules = set(alert_rules(store))
    assert {"double_handover", "seal_mismatch", "seal_breach", "temperature_excursion",
            "feed_fork"} <= rules
    assert stored_facts(store) == expected_facts(led)
    assert audit.check(store, s.w.genesis) == []
    store.close()

    assert cli.main(["check", "--data", str(d.path)]) == 0
    assert "check: OK" in capsys.readouterr().out

    # corrupt one stored facts value: check names it, exit code 1
    db = plyvel.DB(str(d.db_path))
    key = b"S" + F.container_key(ex.CONTAINER)
    facts = F.decode_facts(db.get(key))
    facts["seals"] = {(1, b"\x00" * 32, "XX-1", b"\x01" * 32)}
    db.put(key, F.encode_facts(facts))
    db.close()
    store = Store.open(d.db_path)
    problems = audit.check(store, s.w.genesis)
    store.close()
    assert len(problems) == 1
    assert ex.CONTAINER in problems[0]
    assert cli.main(["check", "--data", str(d.path)]) == 1
    out = capsys.readouterr().out
    assert ex.CONTAINER in out
    assert "1 problem" in out

    assert cli.main(["rebuild", "--data", str(d.path)]) == 0
    assert cli.main(["check", "--data", str(d.path)]) == 0
    store = Store.open(d.db_path)
    assert audit.check(store, s.w.genesis) == []
    led = ledger_for(store, s, own=MY_KEY)
    assert stored_facts(store) == expected_facts(led)
    store.close()


def test_check_reports_a_record_stored_under_the_wrong_id(db: Store) -> None:
    s = scene()
    led = ledger_for(db, s)
    led.submit([r.wire for r in s.w.records], s.w.now)
    assert audit.check(db, s.w.genesis) == []
    db._db.put(b"R" + b"\x07" * 32, s.mint[0].wire)
    assert any("has id" in p for p in audit.check(db, s.w.genesis))
    db._db.delete(b"R" + b"\x07" * 32)
    db._db.delete(b"H" + s.carrier.pub)
    assert any("head of" in p for p in audit.check(db, s.w.genesis))
    assert audit.rebuild(db, s.w.genesis) == len(s.w.records)
    assert audit.check(db, s.w.genesis) == []
