"""The ledger's own feed: appends chain, are durable, all or nothing, and need a credential.

Split from tests/test_ledger.py (same scene and helpers), on a real LevelDB in `tmp_path`.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from crypto.keys import SigningKey
from node import audit
from node.ledger import Ledger
from node.scenario import DAY, World
from node.store import Store
from protocol.envelope import Record
from protocol.errors import RoleError, ValidationError
from tests import examples as ex
from tests.test_ledger import MY_KEY, T0, db, dump, ledger_for, own_scan, scene, statuses

__all__ = ["db"]  # the fixture, shared with tests/test_ledger.py



def test_append_own_chains_and_is_durable(tmp_path: Path) -> None:
    s = scene()
    w = s.w
    store = Store.open(tmp_path / "db")
    led = ledger_for(store, s, own=MY_KEY)
    led.submit([r.wire for r in w.records], w.now)
    first = led.append_own([own_scan(w.now), ("sensor", {"container": ex.CONTAINER,
                                                         "kind": "temperature", "at": w.now,
                                                         "value": 5_000})], w.now)
    assert [r.seq for r in first] == [1, 2]
    assert first[0].prev is None
    assert first[1].prev == first[0].id
    assert all(r.author == MY_KEY.public.raw for r in first)
    # a clock that went backwards does not make our timestamps go back
    (third,) = led.append_own([own_scan(w.now - 60_000)], w.now - 60_000)
    assert (third.seq, third.prev, third.ts) == (3, first[1].id, w.now)
    store.close()
    store = Store.open(tmp_path / "db")
    led = ledger_for(store, s, own=MY_KEY)
    assert store.head(MY_KEY.public.raw).id == third.id
    assert [Record.from_bytes(x).id for x in store.feed(MY_KEY.public.raw, 1, 10)] == \
        [first[0].id, first[1].id, third.id]
    (fourth,) = led.append_own([own_scan(w.now + 1)], w.now + 1)
    assert (fourth.seq, fourth.prev) == (4, third.id)
    assert audit.check(store, w.genesis) == []
    store.close()


def test_append_own_is_all_or_nothing(db: Store) -> None:
    s = scene()
    w = s.w
    led = ledger_for(db, s, own=MY_KEY)
    led.submit([r.wire for r in w.records], w.now)
    (one,) = led.append_own([own_scan(w.now)], w.now)
    before, root = dump(db), led.state_root()
    bad_body = ("scan", {"place": {"country": "NL"}, "event": "observe"})  # no object
    with pytest.raises(ValidationError):
        led.append_own([own_scan(w.now), own_scan(w.now), bad_body], w.now)
    assert dump(db) == before
    mint = ("product.mint", ex.mint(serials=["Z1"], expiry=None))
    with pytest.raises(RoleError) as exc:
        led.append_own([own_scan(w.now), own_scan(w.now), mint], w.now)
    assert exc.value.rule == "role"
    assert dump(db) == before
    cred = ("credential.issue", ex.credential_issue(subject=SigningKey(bytes([5]) * 32).public.raw))
    with pytest.raises(RoleError):
        led.append_own([own_scan(w.now), own_scan(w.now), cred], w.now)
    assert dump(db) == before
    assert led.state_root() == root
    assert len(led.pending) == 0
    # nothing of the failed batches lingers: the next append continues the chain
    (two,) = led.append_own([own_scan(w.now)], w.now)
    assert (two.seq, two.prev) == (2, one.id)
    assert audit.check(db, w.genesis) == []


def test_failed_append_leaves_no_credential_behind(db: Store) -> None:
    """An authority batch [issue X, something it may not write] fails whole: X stays unknown."""
    w = World.create(seed=4, t0=T0)
    led = Ledger(db, w.genesis, own=w.authority.key)
    x = SigningKey(bytes([44]) * 32)
    issue = ("credential.issue", ex.credential_issue(subject=x.public.raw, valid_from=T0 - DAY))
    with pytest.raises(RoleError):
        led.append_own([issue, own_scan(T0)], T0)
    assert list(db.iter_records()) == []
    by_x = Record.sign(x, network=w.network, seq=1, prev=None, ts=T0, type="product.mint",
                       body=ex.mint(expiry=None))
    assert statuses(led.submit([by_x.wire], T0)) == ["pending"]
    assert not db.has_record(by_x.id)
    (stored,) = led.append_own([issue], T0)  # issued for real, X's record is released
    assert db.has_record(stored.id)
    assert db.has_record(by_x.id)


def test_append_own_without_credential_or_key(db: Store) -> None:
    w = World.create(seed=3, t0=T0)
    led = Ledger(db, w.genesis, own=SigningKey(bytes([8]) * 32))
    before = dump(db)
    with pytest.raises(RoleError):
        led.append_own([own_scan(T0)], T0)
    assert dump(db) == before
    led = Ledger(db, w.genesis)
    with pytest.raises(Exception, match="no signing key"):
        led.append_own([own_scan(T0)], T0)


