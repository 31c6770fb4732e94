"""Signature checks in a helper process (`node.sigcheck`) and `Ledger.submit` built on them.

A batch large enough to go to the helper, with forged signatures at the edges
of its chunks: every verdict matches the one-by-one check, outcomes come back
in submission order, nothing forged is stored, and a feed's records after a
forged one wait instead of being placed. A helper that is killed, answers
garbage or stalls is dropped and the verdicts stay right; the helper script
itself refuses malformed frames. Real processes, real LevelDB in `tmp_path`.
"""

from __future__ import annotations

import logging
import os
import signal
import struct
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import msgpack
import pytest

from node import sigcheck
from node.ledger import Ledger
from node.scenario import World
from node.store import Store
from protocol.envelope import SIGNING_DOMAIN, Record
from tests import examples as ex

T0 = 1_750_000_000_000
N = 3 * sigcheck.CHUNK + 5  # past INLINE_BELOW: the helper's path, with a short last chunk


@pytest.fixture(autouse=True)
def helper() -> Iterator[None]:
    sigcheck.start()  # a fresh helper, whatever an earlier test left
    yield
    sigcheck.stop()


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


def test_helper_verdicts_match_one_by_one_checks_in_order() -> None:
    _, _, scans = _world(N)
    forged_at = {0, sigcheck.CHUNK - 1, sigcheck.CHUNK, 2 * sigcheck.CHUNK + 1, N - 1}
    records = [Record.from_bytes(_forge(r), verify=False) if i in forged_at else r
               for i, r in enumerate(scans)]
    assert len(records) >= sigcheck.INLINE_BELOW
    got = list(sigcheck.checked(records))
    assert sigcheck._helper is not None
    assert sigcheck._helper.alive()
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


def _forged_batch() -> tuple[list[Record], set[int]]:
    _, _, scans = _world(N)
    forged_at = {1, sigcheck.CHUNK + 2, N - 2}
    return [Record.from_bytes(_forge(r), verify=False) if i in forged_at else r
            for i, r in enumerate(scans)], forged_at


def _bad(got: list[tuple[Record, object]]) -> set[int]:
    return {i for i, (_, bad) in enumerate(got) if bad is not None}


def test_a_killed_helper_is_dropped_and_a_batch_it_dies_in_is_finished_here(
        monkeypatch: pytest.MonkeyPatch) -> None:
    records, forged_at = _forged_batch()
    assert sigcheck._helper is not None
    os.kill(sigcheck._helper.proc.pid, signal.SIGKILL)
    sigcheck._helper.proc.wait()
    assert _bad(list(sigcheck.checked(records))) == forged_at  # checked here
    assert sigcheck._helper is None  # not restarted at once: a helper that keeps dying ...
    monkeypatch.setattr(sigcheck, "RETRY_S", 0.0)
    sigcheck._failed()  # ... is tried again after RETRY_S
    assert _bad(list(sigcheck.checked(records))) == forged_at
    assert sigcheck._helper is not None
    assert sigcheck._helper.alive()

    it = sigcheck.checked(records)
    got = [next(it)]
    os.kill(sigcheck._helper.proc.pid, signal.SIGKILL)  # mid-batch
    got += list(it)
    assert [r for r, _ in got] == records
    assert _bad(got) == forged_at


def test_a_helper_answering_garbage_is_dropped(caplog: pytest.LogCaptureFixture) -> None:
    records, forged_at = _forged_batch()
    sigcheck.start(["cat"])  # echoes our frames back: answers of the wrong shape
    with caplog.at_level(logging.WARNING, logger="sealchain.sigcheck"):
        assert _bad(list(sigcheck.checked(records))) == forged_at
    assert sigcheck._helper is None
    assert "event=sigcheck.helper_dropped" in caplog.text
    # and for a while after a failure, batches are checked on the caller's thread
    assert _bad(list(sigcheck.checked(records))) == forged_at
    assert sigcheck._helper is None


# A helper that says every signature holds, but numbers its answers one frame ahead.
LIAR = """
import struct, sys, msgpack
inp, out = sys.stdin.buffer, sys.stdout.buffer
while True:
    head = inp.read(4)
    if len(head) < 4:
        break
    seq, items = msgpack.unpackb(inp.read(struct.unpack(">I", head)[0]))
    reply = msgpack.packb([seq + 1, len(items), []])
    out.write(struct.pack(">I", len(reply)) + reply)
    out.flush()
"""


def test_an_answer_for_another_frame_is_refused(caplog: pytest.LogCaptureFixture) -> None:
    records, forged_at = _forged_batch()
    sigcheck.start([sys.executable, "-c", LIAR])
    with caplog.at_level(logging.WARNING, logger="sealchain.sigcheck"):
        assert _bad(list(sigcheck.checked(records))) == forged_at
    assert sigcheck._helper is None
    assert "answered frame" in caplog.text


def test_a_stalled_helper_is_dropped(monkeypatch: pytest.MonkeyPatch) -> None:
    records, forged_at = _forged_batch()
    monkeypatch.setattr(sigcheck, "STALL_S", 0.3)
    sigcheck.start(["sleep", "30"])  # reads nothing, answers nothing
    assert _bad(list(sigcheck.checked(records))) == forged_at
    assert sigcheck._helper is None


# The real helper script, 0.3 s slower per frame.
SLOW = """
import sys, time
sys.path.insert(0, sys.argv.pop(1))
import sigcheck_worker as w
check = w.bad_indexes
def slow(domain, items):
    time.sleep(0.3)
    return check(domain, items)
w.bad_indexes = slow
sys.exit(w.main())
"""


def test_a_slow_helper_leaves_the_caller_checking_sent_chunks_from_the_far_end(
        monkeypatch: pytest.MonkeyPatch) -> None:
    records, forged_at = _forged_batch()  # 4 chunks, all sent to the helper at once
    assert len(records) <= sigcheck.DEPTH * sigcheck.CHUNK
    worker = Path(sigcheck.HELPER_ARGV[1])
    sigcheck.start([sys.executable, "-c", SLOW, str(worker.parent), *sigcheck.HELPER_ARGV[2:]])
    here: list[Record] = []
    check = sigcheck.check

    def counted(r: Record) -> object:
        here.append(r)
        return check(r)

    monkeypatch.setattr(sigcheck, "check", counted)
    assert _bad(list(sigcheck.checked(records))) == forged_at
    # While the first frame's answer was on its way, this thread checked the other
    # chunks, which the helper had too, from the last chunk back.
    assert len(here) >= len(records) - 2 * sigcheck.CHUNK
    assert here[0] is records[3 * sigcheck.CHUNK]
    assert sigcheck._helper is not None  # slow is not broken


def test_two_threads_at_once_get_their_own_verdicts() -> None:
    records, forged_at = _forged_batch()
    results: list[set[int]] = []

    def run() -> None:
        for _ in range(3):
            results.append(_bad(list(sigcheck.checked(records))))

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert results == [forged_at] * 6


def test_stale_answers_of_an_abandoned_batch_are_not_taken_for_the_next() -> None:
    records, forged_at = _forged_batch()
    good = _world(N)[2]
    for _ in range(3):
        it = sigcheck.checked(good)
        next(it)
        it.close()  # frames sent, answers (all good) still owed
        assert _bad(list(sigcheck.checked(records))) == forged_at


def _ask(frames: list[bytes]) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(list(sigcheck.HELPER_ARGV), input=b"".join(frames),
                          capture_output=True, timeout=30, check=False)


def _frame(value: object) -> bytes:
    data = msgpack.packb(value)
    return struct.pack(">I", len(data)) + data


def test_the_helper_script_checks_and_refuses_malformed_frames() -> None:
    _, _, scans = _world(2)
    r = scans[0]
    unsigned = r.unsigned_bytes()
    items = [[r.author, unsigned, r.signature],            # good
             [r.author, unsigned + b"x", r.signature],     # another message
             [r.author, unsigned, r.signature[:63]],       # short signature
             [r.author[:31], unsigned, r.signature],       # short key
             [scans[1].author, unsigned, r.signature]]     # another key
    done = _ask([_frame([7, items]), _frame([8, items[:1]])])
    assert done.returncode == 0  # input ended: a clean exit
    answers = []
    out = done.stdout
    while out:
        (size,) = struct.unpack(">I", out[:4])
        answers.append(msgpack.unpackb(out[4 : 4 + size]))
        out = out[4 + size :]
    assert answers == [[7, 5, [1, 2, 3, 4]], [8, 1, []]]
    assert SIGNING_DOMAIN.hex() in sigcheck.HELPER_ARGV
    for garbage in (b"\x00\x00\x00\x03\xc1\xc1\xc1",            # not msgpack
                    _frame([[b"a", b"b"]]),                      # no frame number
                    _frame(["1", [items[0]]]),                   # a frame number not an int
                    _frame([1, [[b"a", b"b"]]]),                 # not triples
                    _frame(7),                                   # not a list
                    struct.pack(">I", 1 << 30),                  # over the frame bound
                    b"\x00\x00\x00\x10abc"):                     # cut short
        assert _ask([garbage]).returncode == 2, garbage
