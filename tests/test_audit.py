"""`node.audit`: check agrees with ingest, reports every difference; rebuild is crash safe.

Real LevelDB in `tmp_path`, records from `node.scenario.World` (the ledger tests' scene).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from node import audit
from node.errors import StorageError
from node.ledger import Ledger
from node.store import REBUILDING, Store, u64
from protocol import codec
from protocol.envelope import Record
from protocol.feed import verify_range
from tests.test_ledger import MY_KEY, Scene, own_scan, scene


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Store]:
    s = Store.open(tmp_path / "db")
    yield s
    s.close()


def stored(s: Scene, store: Store) -> Ledger:
    led = Ledger(store, s.w.genesis, own=MY_KEY)
    assert {o.status for o in led.submit([r.wire for r in s.w.records], s.w.now)} == {"stored"}
    assert audit.check(store, s.w.genesis) == []
    return led


def badly_signed(r: Record) -> Record:
    """`r` with a broken signature (so a different id)."""
    wire = r.wire[:-1] + bytes([r.wire[-1] ^ 1])
    return Record.from_bytes(wire, verify=False)


# -- check and ingest agree on what authenticates a feed (item 1) ------------------------


def _synced_run(s: Scene) -> tuple[Record, Record]:
    """Two records of the carrier: the first with a bad own signature, the second (well
    signed) naming it: a run sync authenticates by its last signature."""
    w, c = s.w, s.carrier
    first = badly_signed(Record.sign(c.key, network=w.network, seq=c.seq + 1, prev=c.prev,
                                     ts=w.now, type="scan", body=own_scan(w.now)[1]))
    second = Record.sign(c.key, network=w.network, seq=c.seq + 2, prev=first.id, ts=w.now,
                         type="scan", body=own_scan(w.now)[1])
    return first, second


def test_a_synced_run_with_a_badly_signed_record_checks_clean(db: Store) -> None:
    s = scene()
    led = stored(s, db)
    first, second = _synced_run(s)
    with pytest.raises(Exception, match="signature"):
        first.verify_signature()
    verify_range([first, second], led.head(s.carrier.pub))  # what sync does
    assert [o.status for o in led.submit_run([first, second], s.w.now)] == ["stored", "stored"]
    assert audit.check(db, s.w.genesis) == []
    assert audit.rebuild(db, s.w.genesis) == len(s.w.records) + 2
    assert audit.check(db, s.w.genesis) == []


def test_a_head_no_valid_signature_covers_is_reported(db: Store) -> None:
    s = scene()
    led = stored(s, db)
    first, second = _synced_run(s)
    led.submit_run([first, second], s.w.now)
    db._db.delete(b"R" + second.id)  # now the badly signed record is the head
    problems = audit.check(db, s.w.genesis)
    assert any(f"record {first.id.hex()} at seq {first.seq} is covered by no valid signature"
               in p for p in problems), problems
    assert any(p.startswith("head of") for p in problems)


def test_a_broken_link_is_reported(db: Store) -> None:
    s = scene()
    stored(s, db)
    mid = s.scans[0]
    db._db.delete(b"R" + mid.id)
    problems = audit.check(db, s.w.genesis)
    later = [r for r in s.w.records if r.author == s.carrier.pub and r.seq > mid.seq]
    assert later
    for r in later:
        assert any(f"record {r.id.hex()} at seq {r.seq} does not link" in p for p in problems)


# -- the feed index (item 2) -------------------------------------------------------------


def test_feed_entries_are_checked_and_rebuilt(db: Store) -> None:
    s = scene()
    stored(s, db)
    a = s.carrier.pub
    one = db.feed_id(a, 1)
    assert one is not None
    db._db.delete(b"F" + a + u64(1))
    db._db.put(b"F" + a + u64(2), one)
    problems = audit.check(db, s.w.genesis)
    assert len(problems) == 2, problems
    assert any(p.startswith(f"feed entry {a.hex()[:16]}#1: missing") for p in problems)
    assert any(p.startswith(f"feed entry {a.hex()[:16]}#2: stored {one.hex()}") for p in problems)
    audit.rebuild(db, s.w.genesis)
    assert audit.check(db, s.w.genesis) == []
    assert db.feed_id(a, 1) == one


# -- every difference (item 3) -----------------------------------------------------------


def test_every_index_difference_is_reported(db: Store) -> None:
    s = scene()
    stored(s, db)
    objects = list(db.iter_keys(b"O"))
    types = list(db.iter_keys(b"T"))
    assert len(objects) > 20
    assert len(types) > 1
    for k in objects + types:
        db._db.delete(k)
    problems = audit.check(db, s.w.genesis)
    assert len([p for p in problems if p.startswith("object index entry")]) == len(objects)
    assert len([p for p in problems if p.startswith("type index entry")]) == len(types)
    assert len(problems) == len(objects) + len(types)
    audit.rebuild(db, s.w.genesis)
    assert audit.check(db, s.w.genesis) == []


def test_live_alert_set_is_compared(db: Store) -> None:
    s = scene()
    led = stored(s, db)
    w = s.w
    # two different seals seen: a seal mismatch the records call for
    led.submit([w.scan(s.carrier, "container", s.create.body.container, country="DE",  # type: ignore[attr-defined]
                       seal="ML-9999999").wire], w.now)
    [(cursor, entry)] = [(c, e) for c, e in db.alerts(limit=1000) if e["rule"] == "seal_mismatch"]
    assert audit.check(db, w.genesis) == []
    db._db.put(b"A" + u64(cursor), codec.encode_local({**entry, "retracted": w.now}))
    stale = {**entry, "key": b"\x09" * 32, "cursor": cursor + 100, "evidence": [b"\x01" * 32]}
    db._db.put(b"A" + u64(cursor + 100), codec.encode_local(stale))
    db._db.put(b"K" + b"\x09" * 32, u64(cursor + 100))
    problems = audit.check(db, w.genesis)
    assert len(problems) == 2, problems
    assert any("seal_mismatch" in p and "retracted, but the records call for it" in p
               for p in problems)
    assert any(f"(cursor {cursor + 100}) is live, but no record calls for it" in p
               for p in problems)
    audit.rebuild(db, w.genesis, now=w.now)
    assert audit.check(db, w.genesis) == []
    assert "retracted" not in dict(db.alerts(limit=1000))[cursor]


# -- an interrupted rebuild never forks the node's own feed (item 4) ----------------------


def test_interrupted_rebuild_is_refused_then_finished(tmp_path: Path) -> None:
    s = scene()
    store = Store.open(tmp_path / "db")
    led = stored(s, store)
    led.append_own([own_scan(s.w.now)], s.w.now)
    me = MY_KEY.public.raw
    heads = dict(store.heads())
    for k in list(store.iter_keys(b"S"))[:3] + list(store.iter_keys(b"O"))[:5]:
        store._db.delete(k)  # something for the rebuild to do
    d = audit.derive(store, s.w.genesis)
    n_batches = len(list(audit._batches(store, d, s.w.now, limit=4)))
    assert n_batches > 3
    store.close()
    for stop in range(1, n_batches):  # killed after `stop` batches were written
        store = Store.open(tmp_path / "db", repair=True)
        batches = list(audit._batches(store, audit.derive(store, s.w.genesis), s.w.now, limit=4))
        for ws in batches[:min(stop, len(batches) - 1)]:  # never the last one
            store.write(ws)
        assert dict(store.heads()) == heads  # at no instant wrong
        store.close()
        with pytest.raises(StorageError, match="run `sealchain rebuild` again"):
            Store.open(tmp_path / "db")
        store = Store.open(tmp_path / "db", repair=True)
        assert audit.check(store, s.w.genesis)[0] == \
            "a rebuild was interrupted: run `sealchain rebuild`"
        store.close()
    store = Store.open(tmp_path / "db", repair=True)
    audit.rebuild(store, s.w.genesis, now=s.w.now)
    assert store.meta(REBUILDING) is None
    assert audit.check(store, s.w.genesis) == []
    store.close()
    store = Store.open(tmp_path / "db")
    led = Ledger(store, s.w.genesis, own=MY_KEY)
    [r] = led.append_own([own_scan(s.w.now)], s.w.now)
    assert r.seq == heads[me].seq + 1
    assert r.prev == heads[me].id
    assert audit.check(store, s.w.genesis) == []
    store.close()
