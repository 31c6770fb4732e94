"""Signature checks on worker threads (`node.sigcheck`) and `Ledger.submit` built on them.

A batch large enough to go to the pool, with forged signatures at the edges of
its chunks: every verdict matches the one-by-one check, outcomes come back in
submission order, nothing forged is stored, and a feed's records after a
forged one wait instead of being placed. Real LevelDB in `tmp_path`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from node import sigcheck
from node.ledger import Ledger
from node.scenario import World
from node.store import Store
from protocol.envelope import Record
from tests import examples as ex

T0 = 1_750_000_000_000
N = 3 * sigcheck.CHUNK + 5  # past INLINE_BELOW: the pool path, with a short last chunk


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store.open(tmp_path / "db")
    yield s
    s.close()


def _world(scans: int) -> tuple[World, list[Record], list[Record]]:
    """The credentials, then `scans` scans by two carriers (two feeds, interleaved)."""
    w = World.create(seed=5, t0=T0)
    carriers = [w.party("carrier", f"Carrier {i}", ["NL"]) for i in range(2)]
    setup = list(w.records)
    scans_made = []
    for i in range(scans):
        w.tick()
        scans_made.append(w.scan(carriers[i % 2], "container", ex.CONTAINER, country="NL"))
    return w, setup, scans_made


def _forge(r: Record) -> bytes:
    return r.wire[:-1] + bytes([r.wire[-1] ^ 1])  # the last byte of the signature


def test_pool_verdicts_match_one_by_one_checks_in_order() -> None:
    _, _, scans = _world(N)
    forged_at = {0, sigcheck.CHUNK - 1, sigcheck.CHUNK, 2 * sigcheck.CHUNK + 1, N - 1}
    records = [Record.from_bytes(_forge(r), verify=False) if i in forged_at else r
               for i, r in enumerate(scans)]
    assert len(records) >= sigcheck.INLINE_BELOW
    got = list(sigcheck.checked(records))
    assert [r for r, _ in got] == records
    assert {i for i, (_, bad) in enumerate(got) if bad is not None} == forged_at
    assert [bad is None for _, bad in got] == [sigcheck.check(r) is None for r in records]
    # the caller's thread path (a small batch) gives the same verdicts
    small = records[: sigcheck.INLINE_BELOW - 1]
    assert [bad is None for _, bad in sigcheck.checked(small)] == \
        [i not in forged_at for i in range(len(small))]


def test_stopping_early_leaves_nothing_running() -> None:
    _, _, scans = _world(N)
    it = sigcheck.checked(scans)
    assert next(it)[1] is None
    it.close()  # the caller gave up: the remaining chunks are cancelled or finish unused
    assert list(sigcheck.checked(scans[:3])) == [(r, None) for r in scans[:3]]


def test_submit_rejects_forged_records_in_a_large_batch_and_stores_the_rest(store: Store) -> None:
    w, setup, scans = _world(N)
    led = Ledger(store, w.genesis)
    assert {o.status for o in led.submit([r.wire for r in setup], w.now)} == {"stored"}
    forged = {3, sigcheck.CHUNK + 7}
    wires = [_forge(r) if i in forged else r.wire for i, r in enumerate(scans)]
    wires.insert(10, b"\xc1 not a record")
    outcomes = led.submit(wires, w.now)
    assert len(outcomes) == len(wires)
    assert outcomes[10].status == "rejected"
    del outcomes[10]
    for i, (r, out) in enumerate(zip(scans, outcomes, strict=True)):
        if i in forged:
            assert (out.status, out.reason) == ("rejected", "bad signature"), i
            assert not store.has_record(r.id)
        elif i > 3 and i % 2 == 1:
            # the same feed as the forged record at 3 (odd positions: carrier 1): its
            # later records wait for the genuine seq, they are not placed
            assert out.status == "pending", (i, out)
        else:
            assert (out.status, out.id) == ("stored", r.id), (i, out)
    assert led.stats[("rejected", "VerificationError")] == len(forged)

    # the genuine records arrive: the waiting ones follow, and the feed is whole
    outcomes = led.submit([scans[i].wire for i in sorted(forged)], w.now)
    assert [o.status for o in outcomes] == ["stored"] * len(forged)
    assert all(store.has_record(r.id) for r in scans)
