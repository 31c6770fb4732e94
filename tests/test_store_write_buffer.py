"""LevelDB's write buffer (`Store.open(write_buffer=...)`, `[limits] write_buffer_mb`).

Real LevelDB in `tmp_path`: the same incompressible puts leave no table file
behind a large write buffer (they are all still in the memtable and its log),
and several behind a small one (flushed); both read back everything. The config key is
checked like the others.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from node.config import Config
from node.errors import ConfigError
from node.store import WRITE_BUFFER, Store, WriteSet

VALUE = 4096
PUTS = 1500  # ~6 MiB: over 1 MiB several times, well under the default 32 MiB


def _fill(store: Store) -> None:
    for b in range(PUTS // 100):
        ws = WriteSet()
        for i in range(100):
            ws.put(b"B" + (b * 100 + i).to_bytes(8, "big"), os.urandom(VALUE))
        store.write(ws, sync=False)


def _tables(path: Path) -> list[Path]:
    return sorted(path.glob("*.ldb"))


@pytest.mark.parametrize(("buffer", "flushed"), [(1 << 20, True), (WRITE_BUFFER, False)])
def test_the_write_buffer_decides_when_tables_are_written(tmp_path: Path, buffer: int,
                                                          flushed: bool) -> None:
    path = tmp_path / "db"
    store = Store.open(path, write_buffer=buffer)
    try:
        _fill(store)
        assert bool(_tables(path)) is flushed
        assert sum(1 for _ in store._db.iterator(prefix=b"B")) == PUTS
    finally:
        store.close()


def test_write_buffer_mb_is_checked_and_defaults_to_the_store_default() -> None:
    assert Config().limits.write_buffer_mb << 20 == WRITE_BUFFER
    assert Config.from_dict({"limits": {"write_buffer_mb": 64}}).limits.write_buffer_mb == 64
    for bad in (0, 1025, -1, "32", True):
        with pytest.raises(ConfigError, match="write_buffer_mb"):
            Config.from_dict({"limits": {"write_buffer_mb": bad}})
