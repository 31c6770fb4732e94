"""LevelDB's table cache (`Store.open(open_files=...)`, `[limits] open_files`).

LevelDB maps each table file it keeps open into memory, and the pages read through
those maps count in the node's resident set until the file is closed. Real LevelDB in
`tmp_path`: a database of ~90 table files, read from end to end, never has more of
them mapped at once than the limit allows (LevelDB keeps 10 of the files for itself),
and with a limit above the file count it maps them all (so the count is a real one).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from node.config import Config
from node.errors import ConfigError
from node.store import OPEN_FILES, Store, WriteSet

VALUE = 100_000  # incompressible bytes a key: ~20 keys a 2 MiB table file
KEYS = 1800


def _key(i: int) -> bytes:
    return i.to_bytes(8, "big")


def _mapped_tables(path: Path) -> int:
    with open("/proc/self/maps") as maps:
        return len({line.split()[-1] for line in maps
                    if line.rstrip().endswith(".ldb") and str(path) in line})


@pytest.fixture(scope="module")
def tables(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tables") / "db"
    store = Store.open(path, write_buffer=1 << 20)
    try:
        for b in range(KEYS // 20):
            ws = WriteSet()
            for i in range(b * 20, b * 20 + 20):
                ws.put(b"S" + _key(i), os.urandom(VALUE))
            store.write(ws, sync=False)
    finally:
        store.close()
    assert len(list(path.glob("*.ldb"))) > 80
    return path


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="needs /proc")
@pytest.mark.parametrize(("open_files", "most"), [(OPEN_FILES, OPEN_FILES - 10), (74, 64),
                                                  (1000, None)])
def test_mapped_table_files_stay_within_the_limit(tables: Path, open_files: int,
                                                  most: int | None) -> None:
    store = Store.open(tables, open_files=open_files)
    try:
        peak = 0
        for i in range(KEYS):
            assert store.facts_raw(_key(i)) is not None
            if i % 25 == 0:
                peak = max(peak, _mapped_tables(tables))
        tables_count = len(list(tables.glob("*.ldb")))
        if most is None:
            assert peak > 80
            assert peak >= tables_count - 5  # all of them, near enough
        else:
            assert 0 < peak <= most
    finally:
        store.close()


def test_open_files_is_checked_and_defaults_to_the_store_default() -> None:
    assert Config().limits.open_files == OPEN_FILES
    assert Config.from_dict({"limits": {"open_files": 500}}).limits.open_files == 500
    for bad in (73, 50_001, 0, "100", True):
        with pytest.raises(ConfigError, match="open_files"):
            Config.from_dict({"limits": {"open_files": bad}})
