"""DESIGN invariant 4: acknowledged means durable; a node killed at any instant restarts clean.

A child process (`tests/crash_child.py`) ingests foreign records and appends
its own as fast as it can, printing `ACK <id>` after every call for the
records it was told are stored. The parent kills it with SIGKILL at random
moments, over and over, on the same data directory, and after every kill checks
that the database is consistent (`node.audit.check`), that every acknowledged
record is there, and that the node's own feed never forked.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from node import audit
from node.datadir import DataDir
from node.ledger import Ledger
from node.store import Store
from protocol.envelope import Record
from tests.crash_child import NODE_KEY, build_world, write_wires

ROOT = Path(__file__).resolve().parent.parent
KILLS = 24
STARTUP_TIMEOUT = 20.0


class Child:
    """One run of the child; a thread drains its stdout so it never blocks on the pipe."""

    def __init__(self, data: Path, wires: Path, seed: int) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.crash_child", str(data), str(wires), str(seed)],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )
        self.acked: list[bytes] = []
        self.ready = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def wait_ready(self) -> bool:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not self.ready.wait(0.05):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                return False
        return True

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if not line.endswith(b"\n"):
                break  # cut off by the kill: promised nothing
            if line == b"READY\n":
                self.ready.set()
            elif line.startswith(b"ACK "):
                self.acked.append(bytes.fromhex(line[4:].decode().strip()))

    def kill(self) -> str:
        """SIGKILL, reap, and return whatever it said on stderr (for failure messages)."""
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)
        self._reader.join(timeout=10)
        assert self.proc.stderr is not None
        err = self.proc.stderr.read().decode(errors="replace")
        self.proc.stdout.close()  # type: ignore[union-attr]
        self.proc.stderr.close()
        return err


def verify(data: DataDir, acked: set[bytes]) -> tuple[int, int]:
    """Everything the invariants promise after a crash; returns (records, own feed length)."""
    genesis = data.genesis()
    store = Store.open(data.db_path)
    try:
        assert audit.check(store, genesis) == []
        missing = [i.hex()[:16] for i in acked if not store.has_record(i)]
        assert missing == [], f"acknowledged but lost: {missing}"
        me = NODE_KEY.public.raw
        own = [Record.from_bytes(raw) for raw in store.feed(me, 1, 1_000_000)]
        prev = None
        for n, r in enumerate(own, start=1):
            assert (r.seq, r.prev) == (n, prev), f"own feed broken at seq {n}"
            prev = r.id
        head = store.head(me)
        if own:
            assert head is not None
            assert (head.seq, head.id) == (len(own), prev)
        else:
            assert head is None
        assert list(store.proofs(me)) == [], "our own feed forked"
        led = Ledger(store, genesis, own=NODE_KEY)  # and it opens for business
        assert me not in led.forked
        return sum(1 for _ in store.iter_records()), len(own)
    finally:
        store.close()


def stores_more(data: DataDir, records: list[Record]) -> bool:
    """Whether the node, not killed this time, would store any foreign record it lacks.

    Not a count to compare with: what is storable depends on the order of arrival
    (once a fork's twin is in, the author's later records are refused).
    """
    store = Store.open(data.db_path)
    try:
        led = Ledger(store, data.genesis(), own=NODE_KEY)
        outcomes = led.submit([r.wire for r in records], int(time.time() * 1000))
        return any(o.status == "stored" for o in outcomes)
    finally:
        store.close()


def test_killed_at_random_moments_never_loses_or_forks(tmp_path: Path) -> None:
    world, records = build_world(containers=60)
    data = DataDir.init(tmp_path / "node", world.genesis, role="carrier", key=NODE_KEY)
    wires = tmp_path / "wires.bin"
    write_wires(wires, [r.wire for r in records])
    seed = int.from_bytes(os.urandom(4), "big")
    rnd = random.Random(seed)
    acked: set[bytes] = set()
    counts: list[tuple[int, int]] = []
    for run in range(KILLS):
        child = Child(data.path, wires, rnd.randrange(2**32))
        try:
            # mostly while it works; sometimes while it starts
            started = rnd.random() < 0.2 or child.wait_ready()
            time.sleep(rnd.uniform(0.0, 0.3))
            exited = child.proc.poll()
        finally:
            err = child.kill()
        assert started, f"seed {seed} run {run}: the child did not start:\n{err}"
        assert exited is None, f"seed {seed} run {run}: the child died on its own:\n{err}"
        acked |= set(child.acked)
        counts.append(verify(data, acked))
    # progress: records accumulated across restarts, ours and foreign ones
    total, own = counts[-1]
    assert own > counts[0][1]
    foreign = [t - o for t, o in counts]
    assert foreign == sorted(foreign)
    # foreign ingest went on after the first run, unless that run already stored all it
    # could (checked last: it writes to the store)
    assert foreign[-1] > foreign[0] or not stores_more(data, records), counts
    grew = sum(1 for a, b in zip(counts, counts[1:], strict=False) if b[0] > a[0])
    assert grew >= KILLS // 2, counts
