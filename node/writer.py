"""Group commit: one task writes the node's log; every request waits until its records are durable.

Theory of operation. Requests that write (RPC posts, raw imports, and any other
service's ledger writes through `call`) put a job on a bounded channel and wait
for it. The writer task takes the first job, then everything else already
queued (up to `MAX_GROUP` records), and writes them with as few synced LevelDB
batches as it can: the node's own entries of every job in one `append_own`, the
foreign wires of every job in one `submit`. A synced write costs a
millisecond or more whatever its size, so many concurrent requests share one.

One job must not fail another. The group is first appended as it is (the
ledger validates, authorises and signs every entry, all or nothing). If that
fails, or the group holds hand-overs or credentials, each entry is checked on
its own first: its body against the schema, our credential against its type
(the same `authorise` the ledger runs), and a hand-over against the custody
state (we must hold what we offer, an accept must answer the pending offer to
us; a missing `head` is filled in). A failing entry fails its job only, with
its index; the rest are appended together. Should that append still fail, each
job is retried alone.

The ledger is written only here, while holding `lock`, in a worker thread (the
synced LevelDB write releases the GIL, so the RPC goes on parsing requests
meanwhile). A small group of plain entries (up to `SMALL_GROUP` records, the
usual group of one-record requests) is signed and placed in the trio thread
instead (`Ledger.stage_own`, under a millisecond or two), and only its synced
write goes to the worker thread: the two threads no longer pass the GIL back
and forth at every signature and every LevelDB read, which cost more CPU than
the work itself (measured: about 250 µs per one-record request). Readers of the
ledger's in-memory state in the trio thread take `lock` too; reads that go
straight to LevelDB (records, feeds, alerts) need not.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import trio

from crypto.didkey import did_from_public
from node import facts as F
from node import summary
from node.errors import RpcError
from node.ledger import Ledger, Outcome
from protocol import schema
from protocol.authz import authorise
from protocol.envelope import Record
from protocol.errors import Error, ValidationError

log = logging.getLogger("sealchain.writer")

QUEUE_BOUND: Final = 1024  # jobs waiting for the writer; senders wait beyond it
MAX_GROUP: Final = 5_000  # records in one group commit (bounds how long readers wait for `lock`)
SMALL_GROUP: Final = 32  # up to this many plain records are staged in the trio thread
_HANDOVER: Final = ("handover.offer", "handover.accept")
_CREDENTIALS: Final = ("credential.issue", "credential.delegate", "credential.revoke")
_CHECKED: Final = frozenset({*_HANDOVER, *_CREDENTIALS})  # always checked one by one
_NO_HEAD: Final = b"\x00" * 32


class EntryError(Error):
    """Entry `index` of a job failed with `error`; nothing of the job was written."""

    def __init__(self, index: int, error: Error) -> None:
        super().__init__(f"entry {index}: {error}")
        self.index = index
        self.error = error


@dataclass(eq=False)
class _Job:
    entries: Sequence[tuple[str, dict[str, Any]]] | None = None
    wires: Sequence[bytes] | None = None
    fn: Callable[[], Any] | None = None
    done: trio.Event = field(default_factory=trio.Event)
    prepared: list[tuple[str, schema.Body]] = field(default_factory=list)
    result: Any = None
    error: BaseException | None = None
    finished: bool = False

    @property
    def size(self) -> int:
        return len(self.entries or ()) + len(self.wires or ()) + (1 if self.fn else 0)


@dataclass(frozen=True, slots=True)
class _Probe:
    """What `authorise` reads of a record, for checking an entry before it is signed."""

    author: bytes
    ts: int
    type: str
    body: Any


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class Writer:
    def __init__(self, ledger: Ledger, *, clock: Callable[[], int] = now_ms,
                 metrics: Any = None, bound: int = QUEUE_BOUND) -> None:
        self.ledger = ledger
        self.clock = clock
        self.metrics = metrics
        self._send, self._recv = trio.open_memory_channel[_Job](bound)
        self.groups = 0
        self.staged_groups = 0  # of `groups`, those staged in the trio thread (`_write_small`)
        # Held while a group is written (in a worker thread): whoever reads the ledger's
        # in-memory state (facts cache, heads, credentials) from the trio thread takes it.
        self.lock = trio.Lock()
        self.after_group: Callable[[], None] | None = None

    # -- requests ----------------------------------------------------------------------

    async def append(self, entries: Sequence[tuple[str, dict[str, Any]]]) -> list[Record]:
        """Sign and append entries (type, wire body) to our feed, all or nothing; durable on return.

        Raises `EntryError` (wrapping `ValidationError`, `RoleError`, `summary.Conflict`) or
        the ledger's error.
        """
        result: list[Record] = await self._run(_Job(entries=entries))
        return result

    async def submit(self, wires: Sequence[bytes]) -> list[Outcome]:
        """Ingest foreign record wires (`Ledger.submit`)."""
        result: list[Outcome] = await self._run(_Job(wires=wires))
        return result

    async def call(self, fn: Callable[[], Any]) -> Any:
        """Run any other ledger write (e.g. the sync machine's `submit_run`) in the writer.

        `fn` runs in the writer's worker thread, holding `lock`: it must not touch trio.
        """
        return await self._run(_Job(fn=fn))

    async def _run(self, job: _Job) -> Any:
        try:
            await self._send.send(job)
        except (trio.ClosedResourceError, trio.BrokenResourceError) as exc:
            raise RpcError(503, "shutting_down", "the node is shutting down") from exc
        await job.done.wait()
        if job.error is not None:
            raise job.error
        return job.result

    # -- the writer task ---------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        async with self._recv:
            async for job in self._recv:
                group, n = [job], job.size
                while n < MAX_GROUP:
                    try:
                        more = self._recv.receive_nowait()
                    except trio.WouldBlock:
                        break
                    group.append(more)
                    n += more.size
                try:
                    async with self.lock:
                        # The synced write releases the GIL: the RPC keeps reading requests
                        # meanwhile, so the next group is larger. Not abandoned on
                        # cancellation: a write in flight always completes.
                        if not await self._write_small(group, n):
                            await trio.to_thread.run_sync(self.process, group)
                finally:
                    for j in group:
                        if not j.finished:  # cancelled before it was written
                            j.error = RpcError(503, "shutting_down", "the node is shutting down")
                        j.done.set()
                if self.after_group is not None:
                    self.after_group()

    async def _write_small(self, group: Sequence[_Job], n: int) -> bool:
        """Write a small group of plain own entries, staged here and written in a worker
        thread. False, having changed nothing, for any other group and for one that
        fails to stage (`process` then finds the failing entries)."""
        if n > SMALL_GROUP or any(j.entries is None for j in group):
            return False
        entries = [e for j in group for e in j.entries or ()]
        if any(t in _CHECKED for t, _ in entries):
            return False
        t0 = time.perf_counter()
        try:
            staged = self.ledger.stage_own(entries, self.clock())
        except Error:
            return False
        except Exception as exc:  # a bug: as `_guard` does, the jobs carry it
            self.groups += 1
            self._fail(group, exc)
            return True
        self.groups += 1
        try:
            await trio.to_thread.run_sync(self.ledger.write_staged, staged)
            self.ledger.settle_staged(staged)
        except Exception as exc:
            self._fail(group, exc)
            return True
        self.staged_groups += 1
        self._split(group, staged.records, t0)
        for j in group:
            j.finished = True
        return True

    @staticmethod
    def _fail(group: Sequence[_Job], exc: Exception) -> None:
        log.exception("event=write.failed error=%s", type(exc).__name__)
        for j in group:
            j.error, j.finished = exc, True

    def process(self, group: Sequence[_Job]) -> None:
        now = self.clock()
        self.groups += 1
        own = [j for j in group if j.entries is not None]
        raw = [j for j in group if j.wires is not None]
        if own:
            self._guard(own, lambda: self._write_own(own, now))
        if raw:
            self._guard(raw, lambda: self._write_raw(raw, now))
        for j in group:
            if j.fn is not None:
                self._guard([j], lambda j=j: setattr(j, "result", j.fn()))  # type: ignore[misc]
        for j in group:
            j.finished = True

    @staticmethod
    def _guard(jobs: Sequence[_Job], fn: Callable[[], Any]) -> None:
        try:
            fn()
        except Exception as exc:  # the writer outlives any one failure; the jobs carry it
            log.exception("event=write.failed error=%s", type(exc).__name__)
            for j in jobs:
                if j.error is None and j.result is None:
                    j.error = exc

    def _observe(self, source: str, t0: float, n: int) -> None:
        if self.metrics is not None:
            self.metrics.ingest_seconds.labels(source).observe(time.perf_counter() - t0)
            self.metrics.batch_records.observe(n)

    def _write_own(self, jobs: Sequence[_Job], now: int) -> None:
        t0 = time.perf_counter()
        plain = all(t not in _CHECKED for j in jobs for t, _ in (j.entries or ()))
        if plain:
            # Fast path: the ledger parses, authorises and signs each entry anyway, so try
            # the whole group at once; only if that fails, find the failing entries below.
            entries = [e for j in jobs for e in (j.entries or ())]
            try:
                records = self.ledger.append_own(entries, now)
            except Error:
                pass
            else:
                self._split(jobs, records, t0)
                return
        self._write_checked(jobs, now, t0)

    def _split(self, jobs: Sequence[_Job], records: list[Record], t0: float) -> None:
        self._observe("rpc", t0, len(records))
        i = 0
        for j in jobs:
            n = len(j.entries or ())
            j.result = records[i:i + n]
            i += n
        log.debug("event=write.group jobs=%d records=%d", len(jobs), len(records))

    def _write_checked(self, jobs: Sequence[_Job], now: int, t0: float) -> None:
        """Check every entry on its own first, so a failing one fails only its job."""
        reader = summary.reader_of(self.ledger, now)
        touched: set[bytes] = set()
        ready = []
        for j in jobs:
            mine: set[bytes] = set()
            try:
                assert j.entries is not None
                j.prepared = [self._prepare(i, t, b, now, reader, touched, mine)
                              for i, (t, b) in enumerate(j.entries)]
            except EntryError as exc:
                j.error = exc
                continue
            touched |= mine
            ready.append(j)
        if not ready:
            return
        entries = [e for j in ready for e in j.prepared]
        try:
            records = self.ledger.append_own(entries, now)
        except Error as exc:
            log.info("event=write.group_failed jobs=%d error=%s; retrying one by one",
                     len(ready), _kv(str(exc)))
            for j in ready:
                try:
                    j.result = self.ledger.append_own(j.prepared, now)
                except Error as one:
                    j.error = one
            self._observe("rpc", t0, len(entries))
            return
        self._split(ready, records, t0)

    def _write_raw(self, jobs: Sequence[_Job], now: int) -> None:
        t0 = time.perf_counter()
        wires = [w for j in jobs for w in (j.wires or ())]
        outcomes = self.ledger.submit(wires, now)
        self._observe("import", t0, len(wires))
        i = 0
        for j in jobs:
            n = len(j.wires or ())
            j.result = outcomes[i:i + n]
            i += n

    # -- checking one entry ------------------------------------------------------------

    def _prepare(self, index: int, type_name: str, body: dict[str, Any], now: int,
                 reader: summary.Reader, touched: set[bytes], mine: set[bytes]
                 ) -> tuple[str, schema.Body]:
        try:
            if type_name in _HANDOVER:
                body = self._handover(type_name, body, reader, touched | mine, mine)
            parsed = schema.parse_body(type_name, body)
            if type_name not in _CREDENTIALS:
                assert self.ledger.own is not None
                authorise(self.ledger.creds, _Probe(self.ledger.own.public.raw, now, type_name,
                                                    parsed))  # type: ignore[arg-type]
        except (Error, AssertionError) as exc:
            if isinstance(exc, AssertionError):
                exc = RpcError(403, "no_key", "this node has no signing key")
            raise EntryError(index, exc) from exc
        return type_name, parsed

    def _handover(self, type_name: str, body: dict[str, Any], reader: summary.Reader,
                  busy: set[bytes], mine: set[bytes]) -> dict[str, Any]:
        """Check a hand-over against custody and fill in its `head`."""
        assert self.ledger.own is not None
        me = self.ledger.own.public.raw
        probe: Any = schema.parse_body(type_name, {"head": _NO_HEAD, **body})
        given: bytes | None = probe.head if "head" in body else None
        kind, ident = probe.object.kind, probe.object.id
        what = f"{kind} {ident}"
        key = F.ref_key(kind, ident)
        offer: Any = None
        if type_name == "handover.accept":
            offer = self.ledger.record(probe.offer)
            if offer is None or offer.type != "handover.offer":
                raise summary.Conflict(f"offer {probe.offer.hex()} is not known to this node")
            if offer.body.to != me:
                raise summary.Conflict(f"offer {probe.offer.hex()} is not addressed to this node")
            if offer.body.object != probe.object:
                raise ValidationError("body.object", "offer", "the offer is for "
                                      f"{offer.body.object.kind} {offer.body.object.id}, not {what}")
        custody, inside = summary.holder_of(reader, kind, ident)
        if custody is None:
            raise summary.Conflict(f"{what} is not known to this node")
        if custody.disputed:
            raise summary.Conflict(f"the custody of {what} is disputed")
        if key in busy:
            raise summary.Conflict(f"another hand-over of {what} is being written: retry")
        if type_name == "handover.offer":
            if inside is not None:
                raise summary.Conflict(f"{what} is packed in container {inside}: hand over the "
                                       "container")
            if custody.holder != me:
                raise summary.Conflict(f"this node does not hold {what} (the holder is "
                                       f"{did_from_public(custody.holder)})")
            if custody.pending is not None:
                raise summary.Conflict(f"{what} is already offered (offer "
                                       f"{custody.pending['offer'].hex()})")
            head = custody.head
        else:
            if custody.pending is None or custody.pending["offer"] != probe.offer:
                raise summary.Conflict(f"offer {probe.offer.hex()} is not the pending hand-over "
                                       f"of {what}")
            head = offer.body.head
        if given is not None and given != head:
            raise summary.Conflict(f"head {given.hex()} is not the custody head of {what} "
                                   f"({head.hex()})")
        mine.add(key)
        return {**body, "head": head}


def _kv(v: str) -> str:
    return '"' + v.replace('"', "'") + '"' if (" " in v or "=" in v) else v
