"""DESIGN invariant 2: derived state is a pure function of the set of records.

Hypothesis builds realistic record sets with `node.scenario.World` (brands
minting, containers packed, sealed, handed over and scanned with right and
wrong seals, sensors with excursions and door openings, a double hand-over, a
reseal (a scan's "wrong" seal explained by a record that may arrive after it),
a fork (at times with more equivocations by the same author: a third record at
the forked seq, a second fork earlier or later, a record naming an unseen
predecessor), a revocation, an author whose credential arrives after its
records, a stranger repacking and resealing a container it does not hold, the
holder packing again with no unpack), delivers them in several arrival orders (permutations; random chunks through
separate `submit()` calls, some duplicated; credentials last) into fresh
stores, and checks that every node ends with the same `state_root`, the same
alerts, and exactly the facts `node.facts.fold` gives for the records that
count.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crypto.credentials import CredentialSet
from node import audit, derived, rules
from node import facts as F
from node.ledger import Ledger
from node.scenario import DAY, YEAR, Party, World, tokens_of
from node.store import Store
from protocol.authz import apply_statement, authorise
from protocol.envelope import Record
from protocol.errors import RoleError
from tests import examples as ex

T0 = 1_750_000_000_000
SEAL_SEEN = "ML-4512345"
CONTAINERS = (ex.CONTAINER, ex.CONTAINER_2, ex.CONTAINER_3)
BRANDS = (  # (mark, gtin, gs1 prefix)
    ("ACME", ex.GTIN, "950600"),
    ("BOLT", ex.GTIN_2, "400638"),
)


@dataclass(frozen=True)
class Plan:
    seed: int
    brands: int
    carriers: int
    containers: int
    serials: int
    wrong_seal: bool
    door: bool
    excursion: bool
    fork_author: int  # index into the carriers (and the late party), modulo
    fork_at: int  # position in that author's feed, modulo
    revoke_author: int  # index into the carriers, modulo
    late_first: bool  # the late party writes before or after the revocation
    more_forks: str = "none"  # further equivocations by the forked author
    reseal: bool = False  # the holder reseals the first container, then scans the new seal
    stranger: bool = False  # a stranger repacks and reseals the first container, then scans
    repack: bool = False  # the first container's holder packs again with no unpack
    shipment: bool = False  # the first container's route (CN - SG - NL): scans elsewhere are
    # route deviations, one of them uploaded late (older than the rest, at a place seen)


plans = st.builds(
    Plan,
    seed=st.integers(0, 2**16),
    brands=st.integers(1, 2),
    carriers=st.integers(2, 3),
    containers=st.integers(1, 2),
    serials=st.integers(1, 3),
    wrong_seal=st.booleans(),
    door=st.booleans(),
    excursion=st.booleans(),
    fork_author=st.integers(0, 3),
    fork_at=st.integers(0, 20),
    revoke_author=st.integers(0, 3),
    late_first=st.booleans(),
    more_forks=st.sampled_from(["none", "none", "triple", "earlier", "later", "claim"]),
    reseal=st.booleans(),
    stranger=st.booleans(),
    repack=st.booleans(),
    shipment=st.booleans(),
)


@dataclass
class Built:
    world: World
    records: list[Record]  # every record, the fork's twins included
    fork_author: bytes


def _issue_late(w: World, p: Party) -> Record:
    """A credential for `p` signed now, valid from before `p`'s first record."""
    return w.sign(w.authority, "credential.issue", {
        "subject": p.pub, "org": p.org, "roles": [p.role], "jurisdictions": ["NL"],
        "valid_from": T0 - DAY, "valid_until": T0 + 5 * YEAR,
    })


def build(plan: Plan) -> Built:
    w = World.create(seed=plan.seed, t0=T0)
    brands = []
    for mark, _gtin, prefix in BRANDS[:plan.brands]:
        tm = ex.trademark(mark=mark, gs1_prefixes=[prefix])
        brands.append(w.party("brand", f"{mark} B.V.", ["NL"], trademarks=[tm]))
    carriers = [w.party("carrier", f"Carrier {i}", ["NL", "DE"]) for i in range(plan.carriers)]
    late = Party(w.key("late"), "carrier", "Late Logistics")
    stranger = w.party("carrier", "Stranger Freight", ["NL"]) if plan.stranger else None
    fwd = w.party("forwarder", "Forwarder", ["NL"]) if plan.shipment else None  # never forked
    revoked = carriers[plan.revoke_author % len(carriers)]
    holders: dict[str, tuple[Party, bytes]] = {}  # container -> (holder, custody head)
    seals: dict[str, str] = {}
    w.tick()
    for j in range(plan.containers):
        number = CONTAINERS[j]
        b = j % plan.brands
        brand, (mark, gtin, _) = brands[b], BRANDS[b]
        serials = [f"C{j}S{i}" for i in range(plan.serials)]
        w.mint(brand, gtin, ex.LOT, serials, mark=mark, markets=["DE", "NL"], facility=ex.GLN)
        create = w.create_container(brand, number)
        w.tick()
        w.pack(brand, number, tokens_of(gtin, serials), weight_g=1_000 * plan.serials)
        seals[number] = f"ML-45{j}0001"
        w.seal(brand, number, seals[number])
        w.tick()
        carrier = carriers[j % len(carriers)]
        # custody heads: the create, then each accept (`node.custody`)
        _offer, accept = w.handover(brand, carrier, "container", number, create.id)
        holders[number] = (carrier, accept.id)
        w.tick()
        w.scan(carrier, "container", number, country="NL", locode="NLRTM", seal=seals[number])
        w.sensor(carrier, number, "temperature", value=5_000)
    first = CONTAINERS[0]
    holder, head = holders[first]
    if fwd is not None:
        w.sign(fwd, "shipment.create", {
            "shipment": "SHP-1", "origin": {"country": "CN", "locode": "CNSHA"},
            "destination": {"country": "NL", "locode": "NLRTM"}, "route": ["SGSIN"],
            "consignor": "Maker", "consignee": "Buyer", "containers": [first],
            "goods": [{"hs": "851830", "description": "Headphones", "quantity": 1,
                       "weight_g": 1_000 * plan.serials}]})
    # a double hand-over: the holder offers the same custody state to two parties
    w.tick()
    o1 = w.sign(holder, "handover.offer", {"object": ex.container_ref(first),
                                           "to": carriers[-1].pub, "head": head})
    w.tick()
    w.sign(holder, "handover.offer", {"object": ex.container_ref(first), "to": late.pub,
                                      "head": head})
    w.tick()
    acc = w.sign(carriers[-1], "handover.accept", {"offer": o1.id, "object": ex.container_ref(first),
                                                   "head": head})
    holders[first] = (carriers[-1], acc.id)
    if plan.reseal:  # a late reseal explains a scan's "wrong" seal: alerts must follow
        w.tick()
        seals[first] = "ML-4560009"
        w.seal(carriers[-1], first, seals[first])
        w.tick()
        w.scan(carriers[-1], "container", first, country="DE", seal=seals[first])
    if stranger is not None:  # kept, but replaces neither manifest nor seal: disputed
        w.tick()
        w.pack(stranger, first, tokens_of(BRANDS[0][1], ["C0S0"]), weight_g=1)
        w.seal(stranger, first, "ML-4570001")
        w.tick()
        w.scan(stranger, "container", first, country="DE", seal="ML-4570001")
    if plan.repack:  # the holder packs again with no unpack: a manifest conflict
        w.tick()
        w.pack(carriers[-1], first, tokens_of(BRANDS[0][1], ["C0S0"]), weight_g=1)

    def late_party_writes() -> None:
        w.tick()
        w.scan(late, "container", first, country="DE", seal=seals[first])
        w.sensor(late, first, "position", lat_udeg=52_000_000, lon_udeg=5_000_000)

    if plan.late_first:
        late_party_writes()
    for number, (p, _) in holders.items():
        w.tick()
        if plan.wrong_seal:
            w.scan(p, "container", number, country="DE", seal="ML-9990001")
        if plan.door:
            w.sensor(p, number, "door", open=True)
        if plan.excursion:
            w.sensor(p, number, "temperature", value=41_000)
    # the revocation, then the revoked author goes on writing (wrong seal and all)
    w.tick()
    w.revoke(revoked)
    w.tick()
    w.scan(revoked, "container", first, country="PL", seal="ML-9990002")
    w.sensor(revoked, first, "door", open=True)
    if not plan.late_first:
        late_party_writes()
    if fwd is not None:  # a scanner uploads late: older than every other scan, in DE (seen)
        w.tick()
        w.sign(fwd, "scan", {"object": ex.container_ref(first),
                                     "place": {"country": "DE"}, "event": "observe",
                                     "at": T0 + 1})
    w.tick()
    _issue_late(w, late)
    # a fork: some author signs a second, different record at a seq it already used
    candidates = [c for c in [*carriers, late] if c is not revoked and c.seq > 0]
    author = candidates[plan.fork_author % len(candidates)]
    feed = [r for r in w.records if r.author == author.pub]
    at = feed[plan.fork_at % len(feed)]

    def twin(seq: int, prev: bytes | None, n: int) -> Record:
        ts = feed[min(seq, len(feed)) - 1].ts
        return Record.sign(author.key, network=w.network, seq=seq, prev=prev, ts=ts, type="scan",
                           body=ex.scan(object=ex.container_ref(first), at=ts,
                                        seal=f"ML-999000{n}", place={"country": "BE"}))

    twins = [twin(at.seq, at.prev, 3)]
    if plan.more_forks == "triple":
        twins.append(twin(at.seq, at.prev, 4))
    elif plan.more_forks == "earlier" and at.seq > 1:
        twins.append(twin(at.seq - 1, feed[at.seq - 3].id if at.seq > 2 else None, 5))
    elif plan.more_forks == "later" and at.seq < len(feed):
        twins.append(twin(at.seq + 1, at.id, 6))
    elif plan.more_forks == "claim" and at.seq < len(feed):
        twins.append(twin(at.seq + 1, ex.record_id("never seen"), 7))
    return Built(w, [*w.records, *twins], author.pub)


# -- the reference ----------------------------------------------------------------------


def reference(b: Built) -> tuple[dict[bytes, F.Facts], dict[bytes, str]]:
    """Facts and alert keys straight from the record set: fold what counts, then the rules."""
    creds = CredentialSet(b.world.genesis.authorities)
    for r in b.records:
        apply_statement(creds, r)
    fork_author = b.fork_author
    # The earliest seq in dispute, and every record id known to sit there: records at
    # that seq, and those that records at the next seq name as their predecessor.
    feed = [r for r in b.records if r.author == fork_author]
    ids: dict[int, set[bytes]] = {}
    for r in feed:
        ids.setdefault(r.seq, set()).add(r.id)
        if r.prev is not None:
            ids.setdefault(r.seq - 1, set()).add(r.prev)
    fork_seq = min((seq for seq, held in ids.items() if len(held) > 1), default=None)

    def counts(r: Record) -> bool:
        if r.author == fork_author and fork_seq is not None and r.seq >= fork_seq:
            return False
        try:
            authorise(creds, r)
        except RoleError:
            return False
        return True

    params = b.world.genesis.params
    facts = F.fold(f for r in b.records if counts(r) for f in F.contributions(r, params))
    ak = F.author_key(fork_author)
    for rid in ids.get(fork_seq, ()) if fork_seq is not None else ():
        F.join(facts.setdefault(ak, {}), F.Fact(ak, "fork", (fork_seq, rid)))
    alerts = {i.key: i.rule for key, f in facts.items() for i in rules.evaluate(key, f)}
    # findings across objects (`node.derived`), over the same folded facts
    by_id = {r.id: r for r in b.records if counts(r)}
    ids: dict[bytes, list[bytes]] = {}
    for r in by_id.values():
        for f in {f.key for f in F.contributions(r, params)}:
            ids.setdefault(f, []).append(r.id)
    view = derived.FoldReader(facts, by_id, ids)
    alerts |= {i.key: i.rule for key in facts if key[:1] == b"c"
               for v in derived.container_intents(key[1:].decode(), view, creds, params).values()
               for i in v}
    return facts, alerts


# -- arrival orders ---------------------------------------------------------------------


@dataclass
class Result:
    root: bytes
    alerts: dict[bytes, str]  # live alerts: key -> rule
    facts: dict[bytes, F.Facts]
    problems: list[str]


def ingest(path: Path, b: Built, deliveries: list[list[Record]]) -> Result:
    store = Store.open(path)
    try:
        led = Ledger(store, b.world.genesis)
        for chunk in deliveries:
            led.submit([r.wire for r in chunk], b.world.now)
        entries = [e for _, e in store.alerts(limit=100_000)]
        assert len(entries) == len({e["key"] for e in entries}), "an alert raised twice"
        # alerts whose evidence stopped counting are withdrawn (kept in the log, marked)
        alerts = {e["key"]: e["rule"] for e in entries if "retracted" not in e}
        return Result(led.state_root(), alerts,
                      {k: F.decode_facts(v) for k, v in store.iter_facts()},
                      audit.check(store, b.world.genesis))
    finally:
        store.close()


# Alerts about single records (an author without the right), not derived from facts:
# the reference (a fold over facts) does not make them; they are compared across orders.
RECORD_RULES = frozenset({"unauthorised_author"})


def fact_alerts(res: Result) -> set[bytes]:
    return {k for k, rule in res.alerts.items() if rule not in RECORD_RULES}


def chunked(order: list[Record], rnd: random.Random) -> list[list[Record]]:
    """`order` cut into random chunks, a few records repeated in later chunks."""
    out, i = [], 0
    while i < len(order):
        n = rnd.randint(1, 12)
        chunk = list(order[i:i + n])
        if out and rnd.random() < 0.3:
            chunk += rnd.sample(order[:i], min(3, i))
        rnd.shuffle(chunk)
        out.append(chunk)
        i += n
    return out


@pytest.mark.filterwarnings("ignore::hypothesis.errors.NonInteractiveExampleWarning")
@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(plan=plans, data=st.data())
def test_state_is_a_function_of_the_record_set(
        plan: Plan, data: st.DataObject, tmp_path_factory: pytest.TempPathFactory) -> None:
    b = build(plan)
    facts, alerts = reference(b)
    authority = b.world.authority.pub
    orders: dict[str, list[list[Record]]] = {
        "world order": [b.records],
        "reversed, one by one": [[r] for r in reversed(b.records)],
        "credentials last": [[r for r in b.records if r.author != authority],
                             [r for r in b.records if r.author == authority]],
    }
    n = len(b.records)
    for i in range(2):  # permutations of indices: readable when hypothesis reports them
        perm = data.draw(st.permutations(range(n)), label=f"permutation {i}")
        orders[f"permutation {i}"] = [[b.records[j] for j in perm]]
    seed = data.draw(st.integers(0, 2**32), label="chunking seed")
    perm = data.draw(st.permutations(range(n)), label="chunked permutation")
    orders["random chunks"] = chunked([b.records[j] for j in perm], random.Random(seed))
    base = tmp_path_factory.mktemp("order")
    results = {name: ingest(base / f"db{i}", b, d) for i, (name, d) in enumerate(orders.items())}
    for name, res in results.items():
        assert res.problems == [], name
        assert res.facts == facts, name
        assert fact_alerts(res) == set(alerts), name
    assert len({frozenset(res.alerts) for res in results.values()}) == 1
    roots = {name: res.root.hex() for name, res in results.items()}
    assert len(set(roots.values())) == 1, roots
    assert "feed_fork" in alerts.values()


_STOPS_COUNTING = {  # (plan, chunking seed): the records in world order, chunked
    "the latest scan": (Plan(
        seed=0, brands=1, carriers=3, containers=2, serials=1, wrong_seal=False, door=True,
        excursion=True, fork_author=2, fork_at=0, revoke_author=0, late_first=False,
        more_forks="none", reseal=False, stranger=True, repack=True, shipment=True), 10),
    "an earlier scan": (Plan(
        seed=0, brands=1, carriers=2, containers=1, serials=1, wrong_seal=True, door=False,
        excursion=False, fork_author=1, fork_at=0, revoke_author=0, late_first=True,
        more_forks="none", reseal=False, stranger=False, repack=False, shipment=True), 202),
}


@pytest.mark.parametrize("case", sorted(_STOPS_COUNTING))
def test_a_scan_that_stops_counting_withdraws_its_route_finding(tmp_path: Path, case: str
                                                                ) -> None:
    """Found by the property test above (2026-12-02): a carrier's scan off the planned
    route raised a route deviation; the carrier's other record at the same seq (a fork)
    came in the last chunk, so its records stopped counting, while the container's
    places stayed as they were (others were scanned there too). The finding stayed
    live, and `sealchain check` did not see it (it checked only the findings of single
    objects). Now the recomputed place index names the container (`derived.affected`),
    and check reads every derived rule."""
    plan, seed = _STOPS_COUNTING[case]
    b = build(plan)
    _facts, alerts = reference(b)
    assert "route_deviation" in alerts.values()
    res = ingest(tmp_path / "db", b, chunked(list(b.records), random.Random(seed)))
    assert res.problems == []
    assert fact_alerts(res) == set(alerts)


# A brand's second record at a seq it used: (seq, type, body, ts offset from the
# record it replaces). Which of the two a node gets first is the one it stores.
_TWINS: dict[str, tuple[int, str, Any, int]] = {
    # a fork: neither counts
    "a scan at the mint's seq": (1, "scan", ex.scan(place={"country": "BE"}), 0),
    # refused had it come first (no right to the type): refused after, too, not a fork
    "a customs action at the mint's seq": (1, "customs.action", ex.customs_action(), 0),
    # refused had it come first (timed before its predecessor): the same
    "a scan at seq 2 timed before seq 1": (2, "scan", ex.scan(place={"country": "BE"}), -1),
}


@pytest.mark.parametrize("twin_of", sorted(_TWINS))
def test_a_brand_signing_twice_at_a_seq_is_judged_alike_in_any_order(
        tmp_path: Path, twin_of: str) -> None:
    """Found 2026-12-02: a node that stored the brand's mint judged the goods
    `item_not_minted` after the fork (their custody names a record it holds that mints
    nothing that counts), one that stored the other record `mint_unseen`: findings now
    read only records that count (`BatchView.record`, `summary.verdict_reader`, check).
    And a second record the brand had no right to, or timed before its predecessor,
    was refused when it came first but proved a fork when it came second: `Ledger._fork`
    now refuses it as placement would have."""
    from node import summary
    from node.verify import verify_container
    from tests.test_verify import BOX, Story

    s = Story()
    s.ship()
    w = s.world
    seq, type_name, body, dt = _TWINS[twin_of]
    feed = sorted((r for r in w.records if r.author == s.brand.pub), key=lambda r: r.seq)
    was = feed[seq - 1]
    at = feed[seq - 2].ts + dt if dt else was.ts
    twin = Record.sign(s.brand.key, network=w.network, seq=seq, prev=was.prev, ts=at,
                       type=type_name, body=body)
    records = [*w.records, twin]
    orders = {"the brand's own first": [records], "the other first": [[twin], list(w.records)]}
    for n in range(3):
        shuffled = list(records)
        random.Random(n).shuffle(shuffled)
        orders[f"shuffled {n}"] = [shuffled[i:i + 5] for i in range(0, len(shuffled), 5)]
    seen = set()
    for i, (name, chunks) in enumerate(orders.items()):
        store = Store.open(tmp_path / f"db{i}")
        try:
            led = Ledger(store, w.genesis)
            for chunk in chunks:
                led.submit([r.wire for r in chunk], w.now)
            live = frozenset(e["key"] for _, e in store.alerts(limit=1000)
                             if "retracted" not in e)
            assert audit.check(store, w.genesis) == [], name
            verdict = verify_container(BOX, summary.verdict_reader(led, w.now), led.creds,
                                       led.params, w.now)  # a customs verdict, the RPC's
            seen.add((live, led.state_root(), verdict))
        finally:
            store.close()
    assert len(seen) == 1


def test_builder_makes_what_it_promises() -> None:
    """The builder's records are valid, and the scenario really exercises each case."""
    found = set()
    for fork_author, more in enumerate(["none", "triple", "earlier", "later", "claim"]):
        plan = Plan(seed=1, brands=2, carriers=3, containers=2, serials=2, wrong_seal=True,
                    door=True, excursion=True, fork_author=fork_author, fork_at=2,
                    revoke_author=1, late_first=True, more_forks=more, reseal=True,
                    stranger=True, repack=True)
        b = build(plan)
        _facts, alerts = reference(b)
        assert "feed_fork" in alerts.values()
        found |= set(alerts.values())
    assert {"feed_fork", "double_handover", "seal_mismatch", "seal_breach",
            "temperature_excursion", "custody_break", "manifest_conflict"} <= found
    types = {r.type for r in b.records}
    assert {"product.mint", "container.pack", "container.seal", "handover.offer",
            "handover.accept", "scan", "sensor", "credential.revoke"} <= types
    assert all(Record.from_bytes(r.wire).id == r.id for r in b.records)
    assert len({r.id for r in b.records}) == len(b.records)



def test_objects_of_records_that_stop_counting_leave_no_facts(tmp_path: Path) -> None:
    """A token minted only by a record that a later revocation excludes: no facts, either way.

    Stored first and excluded after, its object must not linger as an empty facts entry
    (that would change `state_root` against a node that got the revocation first).
    """
    w = World.create(seed=5, t0=T0)
    brand = w.party("brand", "ACME B.V.", ["NL"], trademarks=[ex.trademark(gs1_prefixes=["950600"])])
    w.tick()
    w.mint(brand, ex.GTIN, ex.LOT, ["K1"], mark="ACME", markets=["NL"], facility=ex.GLN)
    w.tick()
    revoke = w.revoke(brand)
    w.tick()
    (late_mint,) = w.mint(brand, ex.GTIN, ex.LOT, ["K2"], mark="ACME", markets=["NL"],
                          facility=ex.GLN)
    w.tick()
    w.create_container(brand, ex.CONTAINER_2)  # an object touched by nothing else
    early = [r for r in w.records if r.id != revoke.id]
    b = Built(w, list(w.records), b"")
    first = ingest(tmp_path / "a", b, [early, [revoke]])
    second = ingest(tmp_path / "b", b, [[revoke], early])
    gone = (F.token_key(tokens_of(ex.GTIN, ["K2"])[0]), F.container_key(ex.CONTAINER_2))
    for res in (first, second):
        assert res.problems == []
        assert not set(gone) & set(res.facts)
        assert F.token_key(tokens_of(ex.GTIN, ["K1"])[0]) in res.facts
    assert first.facts == second.facts
    assert first.root == second.root
    assert late_mint.ts >= revoke.body.effective


def test_revocation_and_renewal_reach_delegated_devices(tmp_path: Path) -> None:
    """A carrier's e-seal writes under its delegation; the carrier is revoked, then renewed.

    Whatever the order, once every record has arrived (and sync has offered the ones
    refused while the renewal was unknown), the device's and the carrier's records
    count exactly as the full credential set says.
    """
    w = World.create(seed=6, t0=T0)
    carrier = w.party("carrier", "Rhine Freight", ["NL"])
    device = Party(w.key("eseal"), "device", "e-seal 17")
    w.tick()
    w.sign(carrier, "credential.delegate", {
        "delegate": device.pub, "device": "eseal", "types": ["sensor"],
        "valid_from": w.now - DAY, "valid_until": w.now + YEAR})
    w.sensor(device, ex.CONTAINER, "temperature", value=4_000)
    w.tick()
    w.revoke(carrier)
    w.tick()
    w.sensor(device, ex.CONTAINER, "door", open=True)
    w.scan(carrier, "container", ex.CONTAINER, country="NL", seal=SEAL_SEEN)
    w.tick()
    _issue_late(w, carrier)  # a renewal, valid over the revoked span
    b = Built(w, list(w.records), b"")
    facts, alerts = reference(b)
    assert "seal_breach" not in alerts.values()  # no seal: a door event alone is no breach
    ck = F.container_key(ex.CONTAINER)
    assert len(facts[ck]["breaches"]) == 1  # the device's door event, under the renewal
    assert len(facts[ck]["seal_seen"]) == 1  # the carrier's scan, under the renewal
    rnd = random.Random(6)
    roots, keys = set(), set()
    for i in range(24):
        order = list(b.records)
        rnd.shuffle(order)
        res = ingest(tmp_path / f"db{i}", b, [[r] for r in order] + [b.records])
        assert res.problems == [], i
        assert res.facts == facts, i
        assert fact_alerts(res) == set(alerts), i
        keys.add(frozenset(res.alerts))
        roots.add(res.root)
    assert len(roots) == 1
    assert len(keys) == 1
