"""The LevelDB store: schema version, network binding, atomic write sets, paging reads."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import plyvel
import pytest

from node.errors import StorageError
from node.ledger import Ledger
from node.scenario import World
from node.store import SCHEMA_VERSION, Store, WriteSet, from_u64, u64
from protocol import codec
from protocol.feed import Head

T0 = 1_750_000_000_000


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store.open(tmp_path / "db")
    yield s
    s.close()


def raw_db(path: Path) -> plyvel.DB:
    return plyvel.DB(str(path), create_if_missing=False)


# -- schema version and network ---------------------------------------------------------


def test_schema_version_is_written_on_create(tmp_path: Path) -> None:
    Store.open(tmp_path / "db").close()
    db = raw_db(tmp_path / "db")
    try:
        assert codec.decode_local(db.get(b"Mschema")) == SCHEMA_VERSION
    finally:
        db.close()
    s = Store.open(tmp_path / "db", create=False)
    assert s.meta("schema") == SCHEMA_VERSION
    s.close()


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    Store.open(tmp_path / "db").close()
    db = raw_db(tmp_path / "db")
    db.put(b"Mschema", codec.encode_local(SCHEMA_VERSION + 1))
    db.close()
    with pytest.raises(StorageError, match="newer"):
        Store.open(tmp_path / "db")
    # The refusal closed the database: it can be opened again (no stale lock).
    db = raw_db(tmp_path / "db")
    db.close()


def test_older_schema_asks_for_rebuild(tmp_path: Path) -> None:
    Store.open(tmp_path / "db").close()
    db = raw_db(tmp_path / "db")
    db.put(b"Mschema", codec.encode_local(SCHEMA_VERSION - 1))
    db.close()
    with pytest.raises(StorageError, match="rebuild"):
        Store.open(tmp_path / "db")


def test_data_without_schema_is_refused(tmp_path: Path) -> None:
    db = plyvel.DB(str(tmp_path / "db"), create_if_missing=True)
    db.put(b"Rsomething", b"x")
    db.close()
    with pytest.raises(StorageError, match="no schema version"):
        Store.open(tmp_path / "db")


def test_missing_database_without_create(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="does not exist"):
        Store.open(tmp_path / "nothing", create=False)


def test_open_twice_is_a_storage_error(store: Store) -> None:
    with pytest.raises(StorageError):
        Store.open(store.path)


def test_database_of_another_network_is_refused(tmp_path: Path) -> None:
    a = World.create(seed=1, t0=T0, name="network-a")
    b = World.create(seed=1, t0=T0, name="network-b")
    assert a.network != b.network
    s = Store.open(tmp_path / "db")
    Ledger(s, a.genesis)
    assert s.meta("network") == a.network
    with pytest.raises(StorageError, match="another network"):
        Ledger(s, b.genesis)
    s.close()
    s = Store.open(tmp_path / "db")  # and again after reopening
    with pytest.raises(StorageError, match="another network"):
        Ledger(s, b.genesis)
    Ledger(s, a.genesis)
    s.close()


# -- write sets --------------------------------------------------------------------------


def test_write_set_last_write_wins() -> None:
    ws = WriteSet()
    ws.put(b"k", b"1")
    ws.delete(b"k")
    ws.put(b"j", b"2")
    ws.put(b"j", b"3")
    assert len(ws) == 2
    assert ws.ops == {b"k": None, b"j": b"3"}


def test_write_set_lands_whole(tmp_path: Path) -> None:
    s = Store.open(tmp_path / "db")
    ws = WriteSet()
    for i in range(2000):
        ws.put(b"R" + u64(i), bytes([i % 256]) * 100)
    Store.meta_put(ws, "counter", 7)
    s.write(ws)
    s.close()
    s = Store.open(tmp_path / "db")
    assert sum(1 for _ in s.iter_records()) == 2000
    assert s.record(u64(1999)) == bytes([1999 % 256]) * 100
    assert s.meta("counter") == 7
    ws = WriteSet()
    for i in range(0, 2000, 2):
        ws.delete(b"R" + u64(i))
    s.write(ws)
    assert sum(1 for _ in s.iter_records()) == 1000
    assert not s.has_record(u64(0))
    assert s.has_record(u64(1))
    s.close()


def test_write_set_failing_midway_writes_nothing(store: Store) -> None:
    """A batch that fails while being built is discarded: no key of it lands."""
    ws = WriteSet()
    for i in range(100):
        ws.put(b"R" + u64(i), b"ok")
    ws.ops[b"R" + u64(100)] = 12345  # type: ignore[assignment]  # not bytes: plyvel refuses
    for i in range(101, 200):
        ws.put(b"R" + u64(i), b"ok")
    with pytest.raises(TypeError):
        store.write(ws)
    assert list(store.iter_records()) == []


def test_write_to_closed_store_is_an_error(tmp_path: Path) -> None:
    s = Store.open(tmp_path / "db")
    s.close()
    s.close()  # idempotent
    ws = WriteSet()
    ws.put(b"Mx", b"1")
    with pytest.raises((StorageError, RuntimeError)):
        s.write(ws)


# -- paging reads ------------------------------------------------------------------------


def _fake_feed(ws: WriteSet, author: bytes, n: int) -> list[bytes]:
    ids = []
    for seq in range(1, n + 1):
        rid = bytes([seq]) + author[:31]
        ws.put(b"R" + rid, b"wire-%d" % seq)
        ws.put(b"F" + author + u64(seq), rid)
        ids.append(rid)
    ws.put(b"H" + author, u64(n) + ids[-1])
    return ids


def test_feed_paging(store: Store) -> None:
    alice, bob = b"\x01" * 32, b"\x02" * 32
    ws = WriteSet()
    _fake_feed(ws, alice, 25)
    _fake_feed(ws, bob, 3)
    store.write(ws)
    assert store.feed(alice, 1, 10) == [b"wire-%d" % i for i in range(1, 11)]
    assert store.feed(alice, 11, 10) == [b"wire-%d" % i for i in range(11, 21)]
    assert store.feed(alice, 21, 10) == [b"wire-%d" % i for i in range(21, 26)]
    assert store.feed(alice, 26, 10) == []
    assert store.feed(bob, 1, 100) == [b"wire-1", b"wire-2", b"wire-3"]  # never into alice's
    assert store.feed(b"\x03" * 32, 1, 10) == []
    # Paging by the last seq seen walks the whole feed exactly once.
    seen, nxt = [], 1
    while page := store.feed(alice, nxt, 4):
        seen += page
        nxt += len(page)
    assert len(seen) == 25 == len(set(seen))


def test_feed_entry_without_record_is_a_storage_error(store: Store) -> None:
    author = b"\x05" * 32
    ws = WriteSet()
    ws.put(b"F" + author + u64(1), b"\x09" * 32)
    store.write(ws)
    with pytest.raises(StorageError, match="without record"):
        store.feed(author, 1, 10)


def test_heads(store: Store) -> None:
    assert list(store.heads()) == []
    ws = WriteSet()
    authors = [bytes([i]) * 32 for i in (3, 1, 2)]
    ids = {a: _fake_feed(ws, a, i + 1) for i, a in enumerate(authors)}
    store.write(ws)
    heads = dict(store.heads())
    assert set(heads) == set(authors)
    for i, a in enumerate(authors):
        assert heads[a] == Head(i + 1, ids[a][-1]) == store.head(a)
    assert [a for a, _ in store.heads()] == sorted(authors)  # key order
    assert store.head(b"\x09" * 32) is None
    entries = [(a, s) for a, s, _ in store.iter_feed_entries()]
    assert entries == sorted((a, s) for i, a in enumerate(authors) for s in range(1, i + 2))


def test_alerts_paging(store: Store) -> None:
    assert store.alerts() == []
    assert store.last_alert_cursor() == 0
    ws = WriteSet()
    for c in range(1, 251):
        key = b"alert-%03d" % c
        ws.put(b"A" + u64(c), codec.encode_local({"cursor": c, "key": key}))
        ws.put(b"K" + key, u64(c))
    # Neighbouring tables must not leak into alert reads.
    ws.put(b"B" + b"\x00" * 8, b"x")
    ws.put(b"H" + b"\x01" * 32, u64(1) + b"\x02" * 32)
    store.write(ws)
    assert store.last_alert_cursor() == 250
    first = store.alerts()
    assert [c for c, _ in first] == list(range(1, 101))  # default limit 100
    assert first[0][1] == {"cursor": 1, "key": b"alert-001"}
    assert [c for c, _ in store.alerts(since=100, limit=100)] == list(range(101, 201))
    assert [c for c, _ in store.alerts(since=200, limit=100)] == list(range(201, 251))
    assert store.alerts(since=250) == []
    assert [c for c, _ in store.alerts(since=7, limit=3)] == [8, 9, 10]
    got, since = [], 0
    while page := store.alerts(since=since, limit=33):
        got += [c for c, _ in page]
        since = page[-1][0]
    assert got == list(range(1, 251))
    assert store.alert_cursor(b"alert-042") == 42
    assert store.alert_cursor(b"nope") is None


def test_u64_round_trip_and_order() -> None:
    for n in (0, 1, 255, 256, 2**32, 2**64 - 1):
        assert from_u64(u64(n)) == n
    assert sorted([u64(300), u64(2), u64(70000)]) == [u64(2), u64(300), u64(70000)]


def test_corrupt_head_is_a_storage_error(store: Store) -> None:
    author = b"\x04" * 32
    ws = WriteSet()
    ws.put(b"H" + author, b"\x00\x01")
    store.write(ws)
    with pytest.raises(StorageError, match="corrupt"):
        store.head(author)
    with pytest.raises(StorageError, match="rebuild"):
        dict(store.heads())


def test_object_keys_lookup_agrees_with_object_keys(store: Store) -> None:
    ws = WriteSet()
    keys = [b"hAAA", b"hAAAB", b"hAB", b"tX", b"tXY", b"cCSQU3054383"]
    for n, key in enumerate(keys):
        for i in range(n % 3 + 1):  # some objects indexed by several records
            ws.put(b"O" + key + b"\x00" + bytes([n, i]) * 16, b"")
    ws.put(b"P" + b"hAAA", b"x")  # another table right after the index
    store.write(ws)
    prefixes = [b"hAB", b"hAAA", b"h", b"t", b"tXY", b"zz", b"", b"hAAAB", b"c", b"hA"]
    with store.object_keys_lookup() as lookup:
        for prefix in prefixes + prefixes[::-1]:  # seeking backwards too
            assert lookup(prefix) == store.object_keys(prefix), prefix
    assert store.object_keys(b"hAAA") == [b"hAAA", b"hAAAB"]


def test_last_alert_cursor_follows_every_write(store: Store) -> None:
    assert store.last_alert_cursor() == 0
    ws = WriteSet()
    ws.put(b"B" + b"\x00" * 8, b"x")  # a write with no alert keeps what it knew
    store.write(ws)
    assert store.last_alert_cursor() == 0
    for top in (3, 9):
        ws = WriteSet()
        ws.put(b"A" + u64(top), codec.encode_local({"cursor": top}))
        store.write(ws)
        assert store.last_alert_cursor() == top
    ws = WriteSet()
    ws.delete(b"A" + u64(9))
    store.write(ws)
    assert store.last_alert_cursor() == 3
    store.close()
    reopened = Store.open(store.path)  # what the next process reads agrees
    try:
        assert reopened.last_alert_cursor() == 3
    finally:
        reopened.close()
