"""A database an older sealchain wrote: refused with the way out named; `rebuild` upgrades it.

Real node directories (the admin CLI in real processes), real LevelDB; the old schema
is simulated by writing the previous version number into meta by hand, and its stale
derived state by dropping facts and index entries, and the kept verification findings
(table V, which the previous code did not have). Rebuilding a container's database
from schema 2 is in tests/test_item_memo_store.py.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import plyvel
import pytest

from node.audit import check
from node.errors import StorageError
from node.store import SCHEMA, SCHEMA_VERSION, Store
from protocol import codec
from protocol.genesis import Genesis

ROOT = Path(__file__).resolve().parent.parent
OLD = SCHEMA_VERSION - 1


def sealchain(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "node.cli", *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)


def ok(*args: str | Path) -> str:
    res = sealchain(*args)
    assert res.returncode == 0, f"{args}: exit {res.returncode}\n{res.stdout}\n{res.stderr}"
    return res.stdout


def _authority(tmp_path: Path) -> Path:
    """An authority node holding records: its genesis feed and one credential."""
    authority = tmp_path / "authority"
    ok("network", "create", "--dir", authority, "--name", "schema-test")
    did = ok("init", "--data", tmp_path / "carrier", "--genesis", authority / "genesis.bin",
             "--role", "carrier").strip()
    ok("credential", "issue", "--data", authority, "--subject", did, "--org", "Rhine Freight",
       "--role", "carrier")
    return authority


def _make_old(db_path: Path) -> int:
    """Write the previous schema version into meta, and drop the facts and object index
    entries (derived state the previous code wrote differently: it had no index-only
    entries, such as the party a credential names). Returns how many were dropped."""
    db = plyvel.DB(str(db_path))
    try:
        assert codec.decode_local(db.get(b"M" + SCHEMA.encode())) == SCHEMA_VERSION
        db.put(b"M" + SCHEMA.encode(), codec.encode_local(OLD))
        dropped = [k for k in db.iterator(include_value=False) if k[:1] in (b"S", b"O", b"V")]
        for k in dropped:
            db.delete(k)
    finally:
        db.close()
    return len(dropped)


def test_an_older_database_is_refused_naming_rebuild(tmp_path: Path) -> None:
    authority = _authority(tmp_path)
    _make_old(authority / "db")
    with pytest.raises(StorageError) as err:
        Store.open(authority / "db")
    message = str(err.value)
    assert f"schema {OLD}" in message
    assert f"run `sealchain rebuild --data {authority}`" in message
    # a command that runs on the database: one line, exit 1, no traceback, nothing written
    res = sealchain("credential", "issue", "--data", authority, "--subject",
                    ok("did", "--data", tmp_path / "carrier").strip(), "--org", "X",
                    "--role", "carrier")
    assert res.returncode == 1, res.stdout + res.stderr
    assert f"sealchain rebuild --data {authority}" in res.stderr
    assert "Traceback" not in res.stderr
    db = plyvel.DB(str(authority / "db"))
    try:
        assert codec.decode_local(db.get(b"M" + SCHEMA.encode())) == OLD
    finally:
        db.close()


def test_a_newer_database_is_refused_even_by_rebuild(tmp_path: Path) -> None:
    authority = _authority(tmp_path)
    db = plyvel.DB(str(authority / "db"))
    db.put(b"M" + SCHEMA.encode(), codec.encode_local(SCHEMA_VERSION + 1))
    db.close()
    for repair in (False, True):
        with pytest.raises(StorageError, match="newer sealchain"):
            Store.open(authority / "db", repair=repair)
    res = sealchain("rebuild", "--data", authority)
    assert res.returncode == 1
    assert "upgrade sealchain" in res.stderr


def test_check_names_the_old_schema_and_rebuild_upgrades_it(tmp_path: Path) -> None:
    authority = _authority(tmp_path)
    assert _make_old(authority / "db") > 0
    genesis = Genesis.from_bytes((authority / "genesis.bin").read_bytes())
    store = Store.open(authority / "db", create=False, repair=True)
    try:
        problems = check(store, genesis)
    finally:
        store.close()
    assert any(f"schema version {OLD}" in p for p in problems), problems
    assert any(p.startswith("object index entry") and "missing" in p for p in problems), problems

    res = sealchain("check", "--data", authority)
    assert res.returncode == 1
    assert f"schema version {OLD}" in res.stdout

    out = ok("rebuild", "--data", authority)
    assert f"schema upgraded from {OLD} to {SCHEMA_VERSION}" in out
    assert "check: OK" in ok("check", "--data", authority)
    store = Store.open(authority / "db")  # a node runs on it again
    try:
        assert store.meta(SCHEMA) == SCHEMA_VERSION
        assert any(True for _ in store.iter_object_index())  # the dropped entries are back
        assert not check(store, genesis)
    finally:
        store.close()
    # a second rebuild has nothing to upgrade
    out = ok("rebuild", "--data", authority)
    assert "upgraded" not in out


def test_an_interrupted_upgrade_stays_refused_until_rebuilt(tmp_path: Path) -> None:
    """The first rebuild batch lands, the last does not: still the old schema, and
    still refused; running rebuild again finishes it."""
    from node.audit import _batches, derive

    authority = _authority(tmp_path)
    _make_old(authority / "db")
    genesis = Genesis.from_bytes((authority / "genesis.bin").read_bytes())
    store = Store.open(authority / "db", create=False, repair=True)
    try:
        d = derive(store, genesis)
        store.write(next(iter(_batches(store, d, now=1))))
    finally:
        store.close()
    with pytest.raises(StorageError, match="sealchain rebuild"):
        Store.open(authority / "db")
    ok("rebuild", "--data", authority)
    Store.open(authority / "db").close()
