"""Signature checks of a batch of records in a helper process, ahead of the ingest that needs them.

Ingest is Python work, and one Ed25519 check costs about a third of a record's
ingest, so a batch's checks go to a second core. Threads barely get there:
PyNaCl releases the GIL inside libsodium, but a checking thread needs the GIL
back between two checks, and the ingesting thread holds it while it places
records. So the checks run in one helper process (`node/sigcheck_worker.py`,
which imports only msgpack and PyNaCl), fed chunks of records through its
standard streams. Measured 2026-12-02 on 2 cores, `Ledger.submit` of 100,000
records in batches of 1,000, runs alternating: a pool of two threads
4,881 – 4,938 records/s, the helper 5,298 – 6,023/s.

`checked` yields each record with its verdict, in order, as soon as its chunk
is done: `Ledger.submit` places the first records while the helper still
checks the later ones, and the helper starts on the first chunks while the
caller still decodes the later ones (`checked` pulls its records lazily). The
helper is kept a few chunks ahead of the caller; when the caller needs a chunk
the helper has not answered yet, the caller's thread checks records from the
far end of the batch instead of waiting, chunks already sent to the helper
included (the helper then checks those in vain, at a time it would otherwise
idle until the next batch), so the caller never waits while there is a record
left to check. Measured 2026-12-02, `Ledger.submit` of 100,000 records in
batches of 1,000: the caller checked 28,000 – 30,000 signatures itself when the
helper started after the whole batch was decoded; 6,000 – 10,000, waiting 1.6 s
for answers, once it started early; 22,000 – 25,000, waiting 0.07 s, now.
Small batches, and any batch while another thread uses the helper, are checked
on the caller's thread. A record the helper finds bad is checked again on the
caller's thread, which gives the exact error and has the last word. A helper
that dies, answers garbage or cannot be started is dropped (logged) and the
rest of the batch is checked on the caller's thread; the next batch starts a
new one. No record is yielded before its own signature has been checked.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import itertools
import logging
import os
import select
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Final

import msgpack

from crypto.errors import VerificationError
from protocol.envelope import SIGNING_DOMAIN, Record

log = logging.getLogger("sealchain.sigcheck")

CHUNK: Final = 64  # records per frame: each frame's hand-off is amortised over this many checks
INLINE_BELOW: Final = 2 * CHUNK  # smaller batches are checked on the caller's thread
DEPTH: Final = 8  # chunks sent to the helper ahead of the one the caller is at
PIPE_BYTES: Final = 1 << 20  # the helper's input pipe
STALL_S: Final = 10.0  # a helper that neither reads nor answers for this long is dropped
RETRY_S: Final = 60.0  # after a helper failed, checks stay on the callers' threads this long
_F_SETPIPE_SZ: Final = getattr(fcntl, "F_SETPIPE_SZ", 1031)
HELPER_ARGV: Final = (sys.executable, str(Path(__file__).with_name("sigcheck_worker.py")),
                      SIGNING_DOMAIN.hex())


def check(record: Record) -> VerificationError | None:
    """None when the author's signature holds, else the error saying why not."""
    try:
        record.verify_signature()
    except VerificationError as exc:
        return exc
    return None


def _inline(records: Sequence[Record]) -> Iterator[tuple[Record, VerificationError | None]]:
    for r in records:
        yield r, check(r)


class HelperError(Exception):
    """The helper process died or broke the protocol: it is dropped."""


class Helper:
    """One checking process and the answers it owes us.

    Every frame carries a sequence number, which its answer repeats: an answer is
    taken only for the frame it names, and answers to frames of a batch whose
    caller stopped early are skipped when they come.
    """

    def __init__(self, argv: Sequence[str] | None = None) -> None:
        self.proc = subprocess.Popen(
            list(argv or HELPER_ARGV),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0, close_fds=True,
        )
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        self.wfd = self.proc.stdin.fileno()
        self.rfd = self.proc.stdout.fileno()
        os.set_blocking(self.wfd, False)  # a helper that stops reading cannot hang us
        self.buf = bytearray()
        self.seq = 0  # of the next frame
        self.capacity = 64 << 10  # bytes the input pipe holds: frames in flight stay under it
        with contextlib.suppress(OSError):  # F_SETPIPE_SZ (Linux): at most pipe-max-size
            self.capacity = fcntl.fcntl(self.wfd, _F_SETPIPE_SZ, PIPE_BYTES)
        self.in_flight: dict[int, int] = {}  # the size of each frame sent and not answered

    def room(self, records: Sequence[Record]) -> bool:
        """Whether a frame of these records fits in the pipe now (writing it will not wait)."""
        size = sum(len(r.wire) for r in records) + 16 * len(records)
        return not self.in_flight or sum(self.in_flight.values()) + size <= self.capacity

    def alive(self) -> bool:
        return self.proc.poll() is None

    def send(self, records: Sequence[Record]) -> int:
        """One frame: the author, unsigned bytes and signature of each record. Its number."""
        seq = self.seq
        self.seq += 1
        frame = msgpack.packb([seq, [[r.author, r.unsigned_bytes(), r.signature]
                                     for r in records]])
        data = memoryview(struct.pack(">I", len(frame)) + frame)
        self.in_flight[seq] = len(data)
        try:
            while data:
                try:
                    data = data[os.write(self.wfd, data):]
                except BlockingIOError:
                    self._wait([], [self.wfd], "take a frame")
        except OSError as exc:
            raise HelperError(f"cannot write to the helper: {exc}") from exc
        return seq

    def ready(self, seq: int) -> bool:
        """Whether the answer to frame `seq` can be read without waiting."""
        if not self._whole():
            try:
                readable, _, _ = select.select([self.rfd], [], [], 0)
            except (OSError, ValueError) as exc:
                raise HelperError(f"cannot poll the helper: {exc}") from exc
            if readable:
                self._fill()
        while self._whole():
            if self._peek_seq() == seq:
                return True
            self._next()  # an answer nobody waits for any more (or a bad one: it raises)
        return False

    def receive(self, seq: int, count: int) -> set[int]:
        """The indexes found bad in frame `seq` of `count` records (waiting for the answer)."""
        if seq not in self.in_flight:
            raise HelperError(f"no answer is owed for frame {seq}")
        while True:
            while not self._whole():
                self._fill()
            got, n, bad = self._next()
            if got == seq:
                break
        if n != count:
            raise HelperError(f"the helper checked {n} records, expected {count}")
        return bad

    def _peek_seq(self) -> int:
        size = struct.unpack_from(">I", self.buf)[0]
        return self._parse(bytes(self.buf[4 : 4 + size]))[0]

    def _next(self) -> tuple[int, int, set[int]]:
        """The next whole answer, taken from the buffer: (frame, records checked, bad)."""
        size = struct.unpack_from(">I", self.buf)[0]
        data = bytes(self.buf[4 : 4 + size])
        del self.buf[: 4 + size]
        got, n, bad = self._parse(data)
        oldest = min(self.in_flight, default=None)  # the helper answers in the order sent
        if got != oldest:
            raise HelperError(f"the helper answered frame {got}, expected {oldest}")
        del self.in_flight[got]
        return got, n, bad

    @staticmethod
    def _parse(data: bytes) -> tuple[int, int, set[int]]:
        try:
            got, n, bad = msgpack.unpackb(data)
        except (ValueError, TypeError, msgpack.UnpackException) as exc:
            raise HelperError(f"unreadable answer from the helper: {exc}") from exc
        if type(got) is not int or type(n) is not int or type(bad) is not list \
                or any(type(i) is not int or not 0 <= i < n for i in bad):
            raise HelperError("the helper's answer is malformed")
        return got, n, set(bad)

    def _whole(self) -> bool:
        return len(self.buf) >= 4 and len(self.buf) >= 4 + struct.unpack_from(">I", self.buf)[0]

    def _wait(self, read: list[int], write: list[int], what: str) -> None:
        ready = select.select(read, write, [], STALL_S)
        if not any(ready):
            raise HelperError(f"the helper did not {what} within {STALL_S:.0f} s")

    def _fill(self) -> None:
        try:
            self._wait([self.rfd], [], "answer")
            data = os.read(self.rfd, 1 << 16)
        except OSError as exc:
            raise HelperError(f"cannot read from the helper: {exc}") from exc
        if not data:
            raise HelperError(f"the helper exited (code {self.proc.poll()})")
        self.buf += data

    def close(self) -> None:
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        with contextlib.suppress(OSError):
            self.proc.stdin.close()
        try:
            self.proc.wait(2)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        with contextlib.suppress(OSError):
            self.proc.stdout.close()


_lock = threading.Lock()  # held by the one batch using the helper
_helper: Helper | None = None
_retry_at = 0.0  # no helper is started before this (time.monotonic())


def start(argv: Sequence[str] | None = None) -> None:
    """(Re)start the helper now rather than at the first large batch (`HELPER_ARGV` by default)."""
    global _helper, _retry_at
    with _lock:
        _drop(None)
        _retry_at = 0.0
        _helper = Helper(argv)


def stop() -> None:
    """Stop the helper process, if one runs (it also stops by itself when we exit)."""
    held = _lock.acquire(timeout=STALL_S)  # a batch abandoned unfinished may still hold it
    try:
        _drop(None)
    finally:
        if held:
            _lock.release()


atexit.register(stop)


def _ready_helper() -> Helper | None:
    """The helper, started if need be; None if it cannot run."""
    global _helper
    h = _helper
    if h is not None and not h.alive():
        _drop("the helper exited")
        h = None
    if h is None:
        if time.monotonic() < _retry_at:
            return None
        try:
            h = _helper = Helper()
        except OSError as exc:
            log.warning("event=sigcheck.helper_failed error=%r: checking on this thread", exc)
            _failed()
            return None
    return h


def _drop(why: str | None) -> None:
    global _helper
    if _helper is not None:
        if why is not None:
            log.warning("event=sigcheck.helper_dropped reason=%r: checking on this thread"
                        " for %.0f s", why, RETRY_S)
            _failed()
        _helper.close()
        _helper = None


def _failed() -> None:
    global _retry_at
    _retry_at = time.monotonic() + RETRY_S


def checked(records: Iterable[Record], count: int | None = None
            ) -> Iterator[tuple[Record, VerificationError | None]]:
    """Each record with its signature check (None: it holds), in the order given.

    `records` may be produced lazily (`count` of them, by default `len(records)`):
    the helper starts on the first chunks while the caller still produces (decodes)
    the later ones.
    """
    n = len(records) if count is None else count  # type: ignore[arg-type]
    if n < INLINE_BELOW or not _lock.acquire(blocking=False):
        yield from _inline(records)
        return
    try:
        yield from _Batch(records).run()
    finally:
        _lock.release()


class _Batch:
    """One batch's chunks, checked by the helper from the front and by this thread from the back.

    The helper gets up to DEPTH chunks ahead of the one the caller is at. When
    the caller needs a chunk whose answer has not come yet, this thread checks
    records of the last chunks instead of waiting (`_steal`): it never idles
    while the helper is behind. Chunks [tail, n) are this thread's, whether or
    not they were sent too; the rest below `sent` the helper's.
    """

    def __init__(self, records: Iterable[Record]) -> None:
        self.records = iter(records)
        self.chunks: list[Sequence[Record]] = []
        self.sent = 0
        self.seqs: list[int] = []  # the helper's frame number of each chunk sent
        self.tail = 0
        self.mine: dict[int, list[VerificationError | None]] = {}  # verdicts of chunks >= tail

    def run(self) -> Iterator[tuple[Record, VerificationError | None]]:
        h = _ready_helper()
        while chunk := list(itertools.islice(self.records, CHUNK)):  # the helper starts early
            self.chunks.append(chunk)
            self.tail = len(self.chunks)
            if h is not None:
                h = self._top_up(h, 0)
        for k, chunk in enumerate(self.chunks):
            if h is not None:
                h = self._top_up(h, k)
            if k >= self.tail:
                self._finish(k)
                yield from zip(chunk, self.mine.pop(k), strict=True)
            elif h is None or k >= self.sent:
                yield from _inline(chunk)
            else:
                bad = self._answer(h, k)
                if bad is None:  # the helper failed: this chunk and the rest here
                    h = None
                    self.sent = k
                    yield from _inline(chunk)
                else:
                    for i, r in enumerate(chunk):
                        yield r, (check(r) if i in bad else None)

    def _top_up(self, h: Helper, k: int) -> Helper | None:
        try:
            while (self.sent < self.tail and self.sent < k + DEPTH
                   and h.room(self.chunks[self.sent])):
                self.seqs.append(h.send(self.chunks[self.sent]))
                self.sent += 1
        except HelperError as exc:
            _drop(str(exc))
            self.sent = k  # what was sent and not answered (chunks k on): checked here
            return None
        return h

    def _answer(self, h: Helper, k: int) -> set[int] | None:
        """The helper's verdicts on chunk `k` (None if it failed), checking chunks from
        the far end here while they are not in."""
        seq = self.seqs[k]
        try:
            while not h.ready(seq) and self._steal(k):
                pass
            bad = h.receive(seq, len(self.chunks[k]))
        except HelperError as exc:
            _drop(str(exc))
            return None
        return bad

    def _steal(self, awaited: int) -> bool:
        """Check one record of the last chunk not taken; False when none is left to take.

        Chunks sent to the helper are taken too, from the far end (all but the one
        awaited): the helper checks them in vain, but this thread would otherwise wait
        for them (with a batch's last chunks all sent, it did: 1.6 s per 100,000
        records), while the helper has nothing else to do until the next batch.
        """
        k = self.tail - 1 if self.tail not in self.mine or self._done(self.tail) else self.tail
        if k == self.tail - 1:
            if k <= awaited:
                return False
            self.tail = k
            self.mine[k] = []
        verdicts = self.mine[k]
        verdicts.append(check(self.chunks[k][len(verdicts)]))
        return True

    def _done(self, k: int) -> bool:
        return len(self.mine[k]) == len(self.chunks[k])

    def _finish(self, k: int) -> None:
        verdicts = self.mine[k]
        for r in self.chunks[k][len(verdicts):]:
            verdicts.append(check(r))
