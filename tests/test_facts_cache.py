"""The ledger's facts cache is bounded by objects and by size, and never changes an answer."""

from __future__ import annotations

from pathlib import Path

from node.ledger import Ledger
from node.store import Store
from tests.test_ledger import scene


def test_a_small_cache_stays_in_bounds_and_gives_the_same_state(tmp_path: Path) -> None:
    s = scene()
    wires = [r.wire for r in s.w.records]
    roots = []
    for name, kwargs in (("big", {}), ("small", {"facts_cache": 4, "facts_cache_tuples": 10})):
        store = Store.open(tmp_path / name)
        try:
            led = Ledger(store, s.w.genesis, **kwargs)  # type: ignore[arg-type]
            for w in wires:  # one by one: every record goes through the cache
                led.submit([w], s.w.now)
            if name == "small":
                assert len(led._facts_cache) <= 4
                weights = sum(1 + sum(len(v) for v in f.values() if isinstance(v, set))
                              for f in led._facts_cache.values())
                # the newest entry stays even when it alone is over the bound
                assert weights <= 10 or len(led._facts_cache) == 1
                assert weights == led._facts_cache_load
            roots.append((led.state_root(), sorted(led.heads().items())))
        finally:
            store.close()
    assert roots[0] == roots[1]
