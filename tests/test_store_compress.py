"""LevelDB's block compression (`Store.open(compress=...)`, `[limits] compress`).

Real LevelDB in `tmp_path`: the same compressible puts, flushed to table files,
take less disk with compression on than off (the default), and both read back
every value; a database written one way opens and reads the other way. The
config key is checked like the others.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from node.config import Config
from node.errors import ConfigError
from node.store import COMPRESS, Store, WriteSet

PUTS = 3000
VALUE = b"sealchain scan SCBU0000001 at NLRTM " * 40  # ~1.4 KiB, compresses well


def _value(i: int) -> bytes:
    return i.to_bytes(4, "big") + VALUE


def _fill(path: Path, compress: bool) -> int:
    """Write PUTS values through a 1 MiB write buffer; the bytes of table files left."""
    store = Store.open(path, write_buffer=1 << 20, compress=compress)
    try:
        for b in range(PUTS // 100):
            ws = WriteSet()
            for i in range(b * 100, b * 100 + 100):
                ws.put(b"B" + i.to_bytes(8, "big"), _value(i))
            store.write(ws, sync=False)
        store._db.compact_range()  # every value into table files
    finally:
        store.close()
    return sum(p.stat().st_size for p in path.glob("*.ldb"))


def _read_all(path: Path, compress: bool) -> list[bytes]:
    store = Store.open(path, compress=compress)
    try:
        return [v for _, v in store._db.iterator(prefix=b"B")]
    finally:
        store.close()


def test_compression_is_off_by_default_and_costs_disk(tmp_path: Path) -> None:
    assert COMPRESS is False
    plain = _fill(tmp_path / "plain", False)
    packed = _fill(tmp_path / "packed", True)
    assert plain > PUTS * len(VALUE)  # every byte on disk
    assert packed * 4 < plain  # snappy on a repetitive value
    want = [_value(i) for i in range(PUTS)]
    assert _read_all(tmp_path / "plain", False) == want
    assert _read_all(tmp_path / "packed", True) == want


def test_a_database_reads_back_with_the_setting_changed(tmp_path: Path) -> None:
    _fill(tmp_path / "db", True)
    assert _read_all(tmp_path / "db", False) == [_value(i) for i in range(PUTS)]


def test_compress_is_checked_and_defaults_to_the_store_default() -> None:
    assert Config().limits.compress is COMPRESS
    assert Config.from_dict({"limits": {"compress": True}}).limits.compress is True
    for bad in (0, 1, "true", "snappy"):
        with pytest.raises(ConfigError, match="compress"):
            Config.from_dict({"limits": {"compress": bad}})
