"""Kept verification findings survive a restart (table V, `node.item_memo`), never stale.

Real LevelDB on tmp_path, real ledgers. Each test closes the store and opens it
again, as a restarted node does: the first verdict then comes from the stored
scan (no item's facts read), and equals the one worked out in full and the one
from the stored records alone (`node.audit.derive`). A later record changes it;
a batch that fails stores nothing (a real write failure: the file size limit,
in a child process); `sealchain check` catches a tampered or corrupt finding;
`sealchain rebuild` writes them afresh for a database an older sealchain wrote.
"""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from node import audit
from node.item_memo import ItemScan, ManifestCheck, manifest_key, scan_key
from node.store import SCHEMA, Store, WriteSet
from node.summary import reader_of
from node.verify import Level, Verdict, verify_container
from protocol import codec
from tests.test_item_memo import BOX, BOX2, CHANGES, Node, codes
from tests.test_verify import Story

ROOT = Path(__file__).resolve().parent.parent


def reopen(node: Node, path: Path) -> Node:
    node.close()
    return Node(path, node.world)


def cold(node: Node, number: str = BOX) -> tuple[Verdict, list[bytes]]:
    """The first verdict of a reopened node, and the token facts it read."""
    led, now = node.ledger, node.world.now
    read: list[bytes] = []

    def facts(key: bytes) -> Any:
        read.append(key)
        return led.facts(key)

    reader = reader_of(led, now)
    counting = type(reader)(facts=facts, record_ids=reader.record_ids, record=reader.record)
    v = verify_container(number, counting, led.creds, led.params, now, memo=led.verify_memo)
    return v, [k for k in read if k[:1] == b"t"]


def shipped(tmp_path: Path) -> tuple[Story, Node, Path]:
    s = Story()
    s.ship()
    path = tmp_path / "db"
    node = Node(path, s.world)
    node.deliver(s.world.records)
    return s, node, path


def test_a_reopened_node_verifies_from_the_stored_scan(tmp_path: Path) -> None:
    s, node, path = shipped(tmp_path)
    try:
        before = node.verdict()
        node = reopen(node, path)
        assert len(node.ledger.verify_memo) == 0  # nothing in memory
        first, tokens_read = cold(node)
        assert tokens_read == []  # the stored scan, no item judged again
        assert first == before == node.full(BOX, s.world.now)
        assert first == node.reference(BOX, s.world.now)
        assert first.level is Level.GREEN
        assert node.store.finding(scan_key(BOX)) is not None
        assert not audit.check(node.store, s.world.genesis)
    finally:
        node.close()


@pytest.mark.parametrize("change", sorted(CHANGES))
def test_a_later_record_after_a_restart_changes_the_verdict(tmp_path: Path, change: str
                                                            ) -> None:
    s, node, path = shipped(tmp_path)
    try:
        assert node.verdict().level is Level.GREEN
        stored = node.store.finding(scan_key(BOX))
        node = reopen(node, path)
        make, code = CHANGES[change]
        n = len(s.world.records)
        s.world.tick()
        make(s)
        node.deliver(s.world.records[n:])
        assert node.store.finding(scan_key(BOX)) != stored  # replaced in the same batch
        after = node.verdict()  # warm = full = from the records alone
        assert after.level is Level.RED, after.reasons
        assert code in codes(after)
        node = reopen(node, path)
        again, _ = cold(node)
        assert again == after
        assert not audit.check(node.store, s.world.genesis)
    finally:
        node.close()


_FAIL = """
import os, resource, signal, sys
from pathlib import Path
from node.errors import StorageError
from node.item_memo import scan_key
from tests.test_item_memo import BOX, CHANGES, Node
from tests.test_verify import Story

s = Story(); s.ship()
node = Node(Path(sys.argv[1]), s.world)
node.deliver(s.world.records)
node.verdict()
n = len(s.world.records)
s.world.tick()
CHANGES["packed in another container"][0](s)
logs = sorted(Path(sys.argv[1]).glob("*.log"))
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG
limit = max(p.stat().st_size for p in logs) + 64
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))
try:
    node.deliver(s.world.records[n:])
except StorageError as exc:
    print("FAILED", exc, flush=True)
    assert node.ledger.verify_memo.scan(BOX, ("no such key",)) is None
else:
    print("WRITTEN", flush=True)
os._exit(0)  # no clean close: as if killed right after
"""


def test_a_failed_batch_stores_no_finding(tmp_path: Path) -> None:
    """The batch packing BOX's items into BOX2 too would store BOX2's scan and replace
    BOX's; its write fails for real (the file size limit), so neither happens."""
    path = tmp_path / "db"
    res = subprocess.run([sys.executable, "-c", _FAIL, str(path)], cwd=ROOT,
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("FAILED"), res.stdout + res.stderr
    s = Story()
    s.ship()
    node = Node(path, s.world)
    try:
        stored = kept_of(node)
        assert scan_key(BOX) in stored
        assert scan_key(BOX2) not in stored
        assert not node.ledger.facts(b"c" + BOX2.encode())  # nor any record of the batch
        v, tokens_read = cold(node)
        assert tokens_read == []
        assert v.level is Level.GREEN
        assert v == node.reference(BOX, s.world.now)
        assert not audit.check(node.store, s.world.genesis)
        # the same records again, with room to write: stored, and BOX's scan replaced
        n = len(s.world.records)
        s.world.tick()
        CHANGES["packed in another container"][0](s)
        node.deliver(s.world.records[n:])
        assert scan_key(BOX2) in kept_of(node)
        assert "item.two_containers" in codes(node.verdict())
    finally:
        node.close()


def kept_of(node: Node) -> dict[bytes, bytes]:
    return dict(node.store.iter_table(b"V"))


def _put(node: Node, key: bytes, value: bytes) -> None:
    ws = WriteSet()
    ws.put(key, value)
    node.store.write(ws)


def test_a_manifest_no_longer_in_force_takes_its_scan_along(tmp_path: Path) -> None:
    """The maker had handed the container over before it packed it; the carrier's accept
    arrives last. Until then the pack counts and its scan is kept; with the accept, the
    pack was not the holder's to make, no manifest is in force, and the kept scan goes
    in the same batch (no item's facts changed, yet `check` finds nothing stale)."""
    s = Story()
    w = s.world
    c = w.create_container(s.maker, BOX)
    offer, accept = w.handover(s.maker, s.carrier, "container", BOX, c.id)
    w.tick()
    w.pack(s.maker, BOX, s.tokens, weight_g=500_000)
    path = tmp_path / "db"
    node = Node(path, w)
    try:
        node.deliver([r for r in w.records if r.id != accept.id])
        assert "manifest.none" not in codes(node.verdict())
        assert node.store.finding(scan_key(BOX)) is not None
        node.deliver([accept])
        assert "manifest.none" in codes(node.verdict())
        assert node.store.finding(scan_key(BOX)) is None
        assert not audit.check(node.store, w.genesis)
    finally:
        node.close()


def test_check_catches_a_tampered_scan(tmp_path: Path) -> None:
    s, node, path = shipped(tmp_path)
    try:
        n = len(s.world.records)
        s.world.tick()
        CHANGES["recall of serials"][0](s)
        node.deliver(s.world.records[n:])
        real = node.verdict()
        assert "item.recalled" in codes(real)
        scan = ItemScan.from_bytes(node.store.finding(scan_key(BOX)) or b"")
        clean = ItemScan(scan.key, (), (), (), scan.brands)  # the recall hidden
        _put(node, scan_key(BOX), clean.to_bytes())
        problems = audit.check(node.store, s.world.genesis)
        assert problems == [f"item scan of container {BOX}: stored, but the records imply"
                            " another"], problems
        # a scan no container calls for, and a manifest check its chunks do not add up to
        _put(node, scan_key(BOX2), clean.to_bytes())
        [(root, chunks)] = [(k[2:34], k[34:]) for k in kept_of(node) if k[1:2] == b"m"]
        _put(node, manifest_key(root, (chunks,)),
             ManifestCheck(1, True, frozenset({b"x" * 32})).to_bytes())
        problems = audit.check(node.store, s.world.genesis)
        assert any(f"item scan of container {BOX2}" in p and "no record implies it" in p
                   for p in problems), problems
        assert any("manifest check" in p for p in problems), problems
        # rebuild puts back what the records imply
        audit.rebuild(node.store, s.world.genesis, now=s.world.now)
        assert not audit.check(node.store, s.world.genesis)
        node = reopen(node, path)
        assert cold(node)[0] == real
    finally:
        node.close()


def test_a_corrupt_finding_is_absent_and_reported(tmp_path: Path,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    s, node, path = shipped(tmp_path)
    try:
        real = node.verdict()
        good = node.store.finding(scan_key(BOX))
        assert good is not None
        for bad in (b"\xc1garbage", codec.encode_local([1, "not", "a", "scan", 5, 6]),
                    good[:-1]):
            _put(node, scan_key(BOX), bad)
            node = reopen(node, path)
            with caplog.at_level(logging.WARNING, logger="sealchain.ledger"):
                v, tokens_read = cold(node)
                assert cold(node)[0] == v
            assert v == real
            assert tokens_read  # judged again from the items, not from the corrupt entry
            assert len([r for r in caplog.records if "corrupt" in r.getMessage()]) == 1
            caplog.clear()
            assert any(f"item scan of container {BOX}" in p
                       for p in audit.check(node.store, s.world.genesis))
    finally:
        node.close()


def test_an_earlier_manifest_stays_a_true_finding(tmp_path: Path) -> None:
    """Unpacked and packed again: the first manifest's check stays stored; `check` finds
    it is what its chunks add up to."""
    s, node, path = shipped(tmp_path)
    try:
        w = s.world
        n = len(w.records)
        w.tick()
        w.sign(s.carrier, "container.unpack", {"container": BOX})
        w.tick()
        w.pack(s.carrier, BOX, s.tokens[:10], weight_g=100_000)
        node.deliver(w.records[n:])
        assert node.verdict().items == 10
        assert len([k for k in kept_of(node) if k[1:2] == b"m"]) == 2
        assert not audit.check(node.store, w.genesis)
        node = reopen(node, path)
        assert cold(node)[0].items == 10
    finally:
        node.close()


def test_rebuild_of_an_old_database_writes_the_findings(tmp_path: Path) -> None:
    s, node, path = shipped(tmp_path)
    want = kept_of(node)
    real = node.verdict()
    node.close()
    assert scan_key(BOX) in want
    assert len(want) == 2
    store = Store.open(path)
    ws = WriteSet()
    Store.meta_put(ws, SCHEMA, 2)  # as the previous sealchain wrote it: no table V
    for k in want:
        ws.delete(k)
    store.write(ws)
    store.close()
    with pytest.raises(Exception, match="sealchain rebuild"):
        Store.open(path)
    store = Store.open(path, repair=True)
    try:
        assert any("schema version 2" in p for p in audit.check(store, s.world.genesis))
        audit.rebuild(store, s.world.genesis, now=s.world.now)
        assert dict(store.iter_table(b"V")) == want
    finally:
        store.close()
    node = Node(path, s.world)
    try:
        v, tokens_read = cold(node)
        assert tokens_read == []
        assert v == real
        assert not audit.check(node.store, s.world.genesis)
    finally:
        node.close()
