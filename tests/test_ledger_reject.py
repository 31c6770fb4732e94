"""A rejected record leaves no trace but a counter and one log line (issue 3, item 9).

Real LevelDB in `tmp_path`, records signed by `node.scenario.World`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from node.ledger import Ledger
from node.scenario import World
from node.store import Store
from tests import examples as ex

T0 = 1_750_000_000_000


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store.open(tmp_path / "db")
    yield s
    s.close()


def _world() -> tuple[World, bytes]:
    w = World.create(seed=3, t0=T0)
    carrier = w.party("carrier", "Rhine Freight", ["NL"])
    w.tick()
    scan = w.scan(carrier, "container", ex.CONTAINER, country="NL")
    return w, scan.wire


def _rejections(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.name == "sealchain.ledger" and r.getMessage().startswith("record rejected")]


@pytest.mark.parametrize(("what", "rule"), [
    ("bad_signature", "VerificationError"),
    ("garbage", None),
    ("truncated", None),
])
def test_rejected_wire_is_counted_logged_once_and_not_stored(
        store: Store, caplog: pytest.LogCaptureFixture, what: str, rule: str | None) -> None:
    w, good = _world()
    led = Ledger(store, w.genesis)
    assert [o.status for o in led.submit([r.wire for r in w.records[:-1]], w.now)] \
        == ["stored"] * (len(w.records) - 1)
    before = dict(store._db.iterator())
    bad = {"bad_signature": good[:-1] + bytes([good[-1] ^ 1]),
           "garbage": b"\xc1\x00 not a record",
           "truncated": good[:-10]}[what]
    counted = sum(n for (k, _), n in led.stats.items() if k == "rejected")
    with caplog.at_level(logging.INFO, logger="sealchain.ledger"):
        [out] = led.submit([bad], w.now)
    assert out.status == "rejected"
    assert out.penalty > 0
    lines = _rejections(caplog)
    assert len(lines) == 1, lines
    [line] = lines
    assert "\n" not in line
    rejected = {k: n for k, n in led.stats.items() if k[0] == "rejected"}
    assert sum(rejected.values()) == counted + 1
    [(_, got_rule)] = rejected
    assert line.startswith(f"record rejected rule={got_rule} reason=")
    assert out.reason is not None
    assert line == f"record rejected rule={got_rule} reason={' '.join(out.reason.split())}"
    if rule is not None:
        assert got_rule == rule
    assert dict(store._db.iterator()) == before  # nothing stored, no meta, no alert

    # the genuine record is still welcome afterwards
    assert [o.status for o in led.submit([good], w.now)] == ["stored"]


def test_record_of_another_network_is_logged_once(store: Store,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    w, wire = _world()
    led = Ledger(store, World.create(seed=9, t0=T0).genesis)
    before = dict(store._db.iterator())
    with caplog.at_level(logging.INFO, logger="sealchain.ledger"):
        [out] = led.submit([wire], w.now)
    assert out.status == "rejected"
    assert _rejections(caplog) == ["record rejected rule=network reason=record of another network"]
    assert led.stats[("rejected", "network")] == 1
    assert dict(store._db.iterator()) == before
