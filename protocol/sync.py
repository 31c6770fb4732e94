"""Anti-entropy sync: the pull protocol that makes connected nodes converge.

Theory of operation. One `SyncSession` runs per stream between two peers, and
both ends run the same machine: each is at once a *requester* (it asks for
what the peer has and it lacks) and a *responder* (it serves what the peer asks
for). The machine does no I/O and reads no clock: the shell feeds it bytes
(`receive`, with b"" for end of stream), time (`tick`) and records from storage
(`supply`), and carries out the actions it returns.

1. `start()` sends `Hello`, then a *round* of heads: every feed head we hold,
   sorted by author, in chunks of at most 4096 with `done` on the last.
2. For each peer head ahead of ours we keep a target; at most
   `max_outstanding` `Want`s are in flight, each for at most `max_range`
   records and anchored at the record we hold just before the range. An equal
   seq with a different id is a fork: we emit `Fork` and want the peer's record
   too, so we hold both. A lower seq needs nothing: the peer will ask us.
3. A peer's `Want` becomes a `Fetch` for the shell; `supply()` hands back the
   records, which go out as `Records` batches (at most `max_batch_bytes` each)
   as the requester's `Credit` allows. Credit counts record bytes: the
   requester grants `initial_credit` with its first want and gives back what
   each batch cost once it has been delivered, so at most `initial_credit`
   bytes are ever in flight towards it.
4. Each batch is decoded without per-record signatures and authenticated as a
   run (`feed.verify_range`: it links back to the anchor, and one signature on
   its last record covers it all), then `Deliver`ed. Records not asked for, not
   linked or not signed raise `RemoteProtocolError` (the session is then dead
   and the shell penalises the peer). A run whose first record is validly
   signed by its author but does not link to our anchor is the *author's*
   fork, not the peer's fault: it is reported as `Fork` and the rest of that
   range is dropped.
5. With the peer's round done and our wants answered we send `Synced(round)`;
   once both sides are synced and nothing is left to serve, the machine emits
   `Idle` (once). `resync()` starts a new round on the same session.

Every peer message is checked against `_TABLE`, (state, input) -> next state;
a pair missing from it is a `RemoteProtocolError`. Timeouts (`tick`) measure
time without progress: no hello and heads, no batch for an outstanding want,
or a peer that grants no credit while we have records queued for it.
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

from crypto.errors import Error
from protocol.envelope import MAX_RECORD, Record
from protocol.errors import LocalProtocolError, ProtocolError, RemoteProtocolError
from protocol.feed import Head, verify_range
from protocol.sync_messages import (
    HEADS_PER_MESSAGE,
    MAX_BATCH_BYTES,
    MAX_BATCH_RECORDS,
    MAX_FRAME,
    PENALTY_MALFORMED,
    PROTOCOL_VERSION,
    Action,
    Bye,
    Credit,
    Deliver,
    Disconnect,
    Fetch,
    Fork,
    FrameDecoder,
    Heads,
    Hello,
    Idle,
    Message,
    Penalise,
    Records,
    Send,
    Synced,
    Want,
    encode_frame,
)

PENALTY_FORGED: Final = 100
_MAX_CREDIT: Final = 2**40


@dataclass(frozen=True, slots=True, kw_only=True)
class Limits:
    max_frame: int = MAX_FRAME
    max_outstanding: int = 8  # our wants in flight
    max_range: int = 2000  # records per want (ours and the peer's)
    initial_credit: int = 4 * 1024 * 1024  # record bytes the peer may have in flight to us
    request_timeout_ms: int = 30_000
    max_heads: int = 1_000_000  # heads per round
    max_batch_bytes: int = MAX_BATCH_BYTES  # record bytes per Records message we send
    max_served: int = 16  # peer wants in flight

    def __post_init__(self) -> None:
        if min(self.max_outstanding, self.max_range, self.max_served, self.max_heads) < 1:
            raise LocalProtocolError("limits: counts must be at least 1")
        if self.request_timeout_ms < 1:
            raise LocalProtocolError("limits: request_timeout_ms must be positive")
        if not MAX_RECORD <= self.max_batch_bytes <= self.initial_credit < 2**32:
            raise LocalProtocolError("limits: need MAX_RECORD <= max_batch_bytes <= initial_credit")
        if self.max_frame < max(self.max_batch_bytes + 32 * 1024, 100 * HEADS_PER_MESSAGE):
            raise LocalProtocolError("limits: max_frame too small for a batch or a heads chunk")


# -- the machine ------------------------------------------------------------------


class State(enum.Enum):
    NEW = "new"  # start() not called yet
    AWAIT_HELLO = "await_hello"
    AWAIT_HEADS = "await_heads"  # inside a round of the peer's heads
    READY = "ready"  # between rounds: wants, records and credit flow
    CLOSED = "closed"


class Input(enum.Enum):
    HELLO = "hello"
    HEADS = "heads"
    HEADS_DONE = "heads_done"
    WANT = "want"
    RECORDS = "records"
    CREDIT = "credit"
    SYNCED = "synced"
    BYE = "bye"


_S, _I = State, Input
_TABLE: Final[dict[tuple[State, Input], State]] = {
    (_S.AWAIT_HELLO, _I.HELLO): _S.AWAIT_HEADS,
    (_S.AWAIT_HELLO, _I.BYE): _S.CLOSED,
    # A round's chunks are written back to back, so nothing else comes between them.
    (_S.AWAIT_HEADS, _I.HEADS): _S.AWAIT_HEADS,
    (_S.AWAIT_HEADS, _I.HEADS_DONE): _S.READY,
    (_S.AWAIT_HEADS, _I.BYE): _S.CLOSED,
    (_S.READY, _I.HEADS): _S.AWAIT_HEADS,
    (_S.READY, _I.HEADS_DONE): _S.READY,
    (_S.READY, _I.WANT): _S.READY,
    (_S.READY, _I.RECORDS): _S.READY,
    (_S.READY, _I.CREDIT): _S.READY,
    (_S.READY, _I.SYNCED): _S.READY,
    (_S.READY, _I.BYE): _S.CLOSED,
}


@dataclass(frozen=True, slots=True)
class _Target:
    head: Head  # the peer's head
    fork: bool  # want only the peer's record at head.seq


@dataclass(slots=True)
class _Request:
    author: bytes
    next_seq: int
    to_seq: int
    anchor: Head | None
    deadline: int
    expect_id: bytes | None = None  # a fork want: exactly this record
    discard: bool = False  # the range forked off ours: drain what is still coming


@dataclass(slots=True)
class _Serve:
    from_seq: int
    to_seq: int
    queue: deque[bytes] | None = field(default=None)  # None until supplied


class SyncSession:
    """One sync stream with one peer, both directions. See the module docstring."""

    def __init__(self, our_network: bytes, limits: Limits | None = None) -> None:
        self.network = our_network
        self.limits = limits = limits or Limits()
        self.state = State.NEW
        self._decoder = FrameDecoder(max_frame=limits.max_frame)
        self._ours: dict[bytes, Head] = {}
        self._advertised: dict[bytes, int] = {}  # highest seq we announced, per author
        self._hello_deadline: int | None = None
        # requester
        self._targets: dict[bytes, _Target] = {}
        self._queue: deque[bytes] = deque()  # authors with a target and no request in flight
        self._requests: dict[bytes, _Request] = {}
        self._window = 0  # record bytes the peer may still send us
        self._forks_seen: set[tuple[bytes, int, bytes]] = set()
        self._round_last: bytes | None = None
        self._round_count = 0
        self._peer_rounds = 0  # peer's rounds of heads fully received
        self._synced_sent = 0
        # responder
        self._serving: dict[bytes, _Serve] = {}
        self._outq: deque[bytes] = deque()  # supplied authors, in order
        self._credit = 0  # record bytes we may still send
        self._stalled_since: int | None = None
        self._rounds_sent = 0
        self._peer_synced = 0
        self._idle = False

    @property
    def closed(self) -> bool:
        return self.state is State.CLOSED

    # -- the shell's calls -------------------------------------------------------

    def start(self, our_heads: Mapping[bytes, Head], now: int) -> list[Action]:
        """Open the session: Hello and our first round of heads."""
        if self.state is not State.NEW:
            raise LocalProtocolError("start() called twice")
        self.state = State.AWAIT_HELLO
        self._ours = dict(our_heads)
        self._hello_deadline = now + self.limits.request_timeout_ms
        hello = encode_frame(Hello(network=self.network, version=PROTOCOL_VERSION))
        return [Send(data=hello), *self._heads_round()]

    def update_heads(self, heads: Mapping[bytes, Head]) -> None:
        """Tell the machine about records the shell got elsewhere (gossip, other peers)."""
        self._ours.update(heads)

    def behind(self) -> int:
        """Records the peer announced (its heads ahead of ours) that we do not hold yet."""
        return sum(max(0, t.head.seq - (self._ours[a].seq if a in self._ours else 0))
                   for a, t in self._targets.items())

    def resync(self, now: int) -> list[Action]:
        """Send a new round of our heads (periodic re-sync on a kept session)."""
        if self.state not in (State.AWAIT_HEADS, State.READY):
            raise LocalProtocolError(f"cannot resync in state {self.state.name}")
        return self._heads_round()

    def close(self, reason: str) -> list[Action]:
        return [] if self.closed else self._close_with(reason)

    def receive(self, data: bytes, now: int) -> list[Action]:
        """Bytes from the peer (b"" at end of stream). Raises `ProtocolError`."""
        if self.state is State.NEW:
            raise LocalProtocolError("start() the session before receiving")
        if self.state is State.CLOSED:
            raise LocalProtocolError("the session is closed")
        try:
            if not data:
                self._decoder.eof()
                self.state = State.CLOSED
                return [Disconnect(reason="peer closed the stream")]
            out: list[Action] = []
            for msg in self._decoder.feed(data):
                if self.closed:
                    break
                out += self._handle(msg, now)
            if not self.closed:
                out += self._settle(now)
            return out
        except ProtocolError:
            self.state = State.CLOSED
            raise

    def supply(self, author: bytes, records: Sequence[bytes]) -> list[Action]:
        """Answer a `Fetch`: the wire records we hold of that range, in seq order."""
        if self.state is State.CLOSED:
            return []  # the session ended while the shell was reading
        s = self._serving.get(author)
        if s is None or s.queue is not None:
            raise LocalProtocolError("supply() without a pending Fetch for that author")
        if len(records) > s.to_seq - s.from_seq + 1:
            raise LocalProtocolError("supply() got more records than were fetched")
        if any(not 0 < len(w) <= MAX_RECORD for w in records):
            raise LocalProtocolError("supply() got a record of an impossible size")
        s.queue = deque(bytes(w) for w in records)
        self._outq.append(author)
        return self._flush() + self._maybe_idle()

    def tick(self, now: int) -> list[Action]:
        """Check timeouts; `now` is in milliseconds."""
        if self.state in (State.NEW, State.CLOSED):
            return []
        if self._hello_deadline is not None and now > self._hello_deadline:
            return self._close_with("timeout: no hello and heads from the peer")
        for req in self._requests.values():
            if now > req.deadline:
                return self._close_with(f"timeout: want for feed {req.author.hex()[:16]}")
        if not self._outq:
            self._stalled_since = None
        elif self._stalled_since is None:
            self._stalled_since = now
        elif now - self._stalled_since > self.limits.request_timeout_ms:
            return self._close_with("timeout: the peer grants no credit")
        return []

    # -- peer messages -------------------------------------------------------------

    def _handle(self, msg: Message, now: int) -> list[Action]:
        inp = Input(msg.kind)
        if isinstance(msg, Heads) and msg.done:
            inp = Input.HEADS_DONE
        nxt = _TABLE.get((self.state, inp))
        if nxt is None:
            raise RemoteProtocolError(
                f"{msg.kind} is not allowed in state {self.state.name}", penalty=PENALTY_MALFORMED
            )
        self.state = nxt
        match msg:
            case Hello():
                if msg.network != self.network:
                    return self._close_with("peer is on another network")
                if msg.version != PROTOCOL_VERSION:
                    return self._close_with(f"unsupported sync version {msg.version}")
                return []
            case Heads():
                return self._on_heads(msg)
            case Want():
                return self._on_want(msg)
            case Records():
                return self._on_records(msg, now)
            case Credit():
                self._credit += msg.bytes
                if self._credit > _MAX_CREDIT:
                    raise RemoteProtocolError("absurd credit", penalty=PENALTY_MALFORMED)
                return self._flush()
            case Synced():
                if msg.round > self._rounds_sent:
                    raise RemoteProtocolError("synced for a round never sent", penalty=PENALTY_MALFORMED)
                self._peer_synced = max(self._peer_synced, msg.round)
                return []
            case Bye():
                return [Disconnect(reason=f"peer said bye: {msg.reason}")]
        raise AssertionError(msg)  # pragma: no cover  (every kind is in the table)

    def _on_heads(self, msg: Heads) -> list[Action]:
        self._round_count += len(msg.heads)
        if self._round_count > self.limits.max_heads:
            raise RemoteProtocolError("too many heads in one round", penalty=PENALTY_MALFORMED)
        self._idle = False
        out: list[Action] = []
        for author, seq, hid in msg.heads:
            if self._round_last is not None and author <= self._round_last:
                raise RemoteProtocolError("heads out of order", penalty=PENALTY_MALFORMED)
            self._round_last = author
            ours = self._ours.get(author)
            if ours is None or seq > ours.seq:
                self._target(author, _Target(Head(seq, hid), fork=False))
            elif seq == ours.seq and hid != ours.id and (author, seq, hid) not in self._forks_seen:
                self._forks_seen.add((author, seq, hid))
                out.append(Fork(author=author, seq=seq, their_id=hid))
                self._target(author, _Target(Head(seq, hid), fork=True))
        if msg.done:
            self._peer_rounds += 1
            self._round_last, self._round_count = None, 0
            self._hello_deadline = None
        return out

    def _on_want(self, msg: Want) -> list[Action]:
        if msg.author in self._serving:
            raise RemoteProtocolError("a second want for a feed being served", penalty=PENALTY_MALFORMED)
        if len(self._serving) >= self.limits.max_served:
            raise RemoteProtocolError("too many wants in flight", penalty=PENALTY_MALFORMED)
        if msg.to_seq - msg.from_seq >= self.limits.max_range:
            raise RemoteProtocolError("want over the range limit", penalty=PENALTY_MALFORMED)
        if msg.to_seq > self._advertised.get(msg.author, 0):
            raise RemoteProtocolError("want for records never announced", penalty=PENALTY_MALFORMED)
        self._serving[msg.author] = _Serve(msg.from_seq, msg.to_seq)
        self._idle = False
        return [Fetch(author=msg.author, from_seq=msg.from_seq, to_seq=msg.to_seq, anchor=msg.anchor)]

    def _on_records(self, msg: Records, now: int) -> list[Action]:
        req = self._requests.get(msg.author)
        if req is None:
            raise RemoteProtocolError("records that were not requested", penalty=PENALTY_FORGED)
        size = msg.size
        if size > self._window:
            raise RemoteProtocolError("records beyond the credit granted", penalty=PENALTY_MALFORMED)
        out: list[Action] = []
        if size:  # delivered: the buffer is free again
            out.append(Send(data=encode_frame(Credit(bytes=size))))
        recs = self._decode_batch(msg, req)
        if req.discard or not recs:
            pass
        elif req.expect_id is not None:
            if recs[0].id != req.expect_id:
                raise RemoteProtocolError("fork record is not the announced one", penalty=PENALTY_FORGED)
            _verify(recs, None if recs[0].prev is None else Head(recs[0].seq - 1, recs[0].prev))
            out.append(Deliver(records=recs))
        elif req.anchor is not None and recs[0].prev != req.anchor.id:
            first = recs[0]
            assert first.prev is not None  # seq > 1: checked by the envelope
            _verify([first], Head(req.anchor.seq, first.prev))
            out += [Fork(author=req.author, seq=req.anchor.seq, their_id=first.prev)]
            out.append(Deliver(records=[first]))
            req.discard = True
        else:
            _verify(recs, req.anchor)
            out.append(Deliver(records=recs))
            req.anchor = Head(recs[-1].seq, recs[-1].id)
            ours = self._ours.get(req.author)
            if ours is None or ours.seq < req.anchor.seq:
                self._ours[req.author] = req.anchor
        req.next_seq += len(recs)
        req.deadline = now + self.limits.request_timeout_ms
        if msg.last:
            out += self._finish(req)
        return out

    def _decode_batch(self, msg: Records, req: _Request) -> list[Record]:
        if len(msg.records) > req.to_seq - req.next_seq + 1:
            raise RemoteProtocolError("records beyond the requested range", penalty=PENALTY_FORGED)
        recs = []
        for i, wire in enumerate(msg.records):
            try:
                r = Record.from_bytes(wire, verify=False)
            except Error as exc:
                penalty = max(getattr(exc, "penalty", 0), PENALTY_MALFORMED)
                raise RemoteProtocolError(f"bad record in batch: {exc}", penalty=penalty) from exc
            if r.author != req.author or r.network != self.network or r.seq != req.next_seq + i:
                raise RemoteProtocolError("record outside the requested range", penalty=PENALTY_FORGED)
            recs.append(r)
        return recs

    def _finish(self, req: _Request) -> list[Action]:
        del self._requests[req.author]
        target = self._targets[req.author]
        if req.next_seq <= req.to_seq and not req.discard:
            del self._targets[req.author]
            return [Penalise(points=1, reason=f"short range for feed {req.author.hex()[:16]}")]
        if req.discard or target.fork or target.head.seq <= req.to_seq:
            del self._targets[req.author]
        else:
            self._queue.append(req.author)
        return []

    # -- our side ---------------------------------------------------------------------

    def _target(self, author: bytes, target: _Target) -> None:
        old = self._targets.get(author)
        if old is None:
            self._targets[author] = target
            self._queue.append(author)
        elif not old.fork and not target.fork and target.head.seq > old.head.seq:
            self._targets[author] = target

    def _heads_round(self) -> list[Action]:
        entries = sorted((a, h.seq, h.id) for a, h in self._ours.items())
        chunks = [entries[i : i + HEADS_PER_MESSAGE] for i in range(0, len(entries), HEADS_PER_MESSAGE)]
        chunks = chunks or [[]]
        data = b"".join(
            encode_frame(Heads(heads=tuple(c), done=i == len(chunks) - 1), max_frame=self.limits.max_frame)
            for i, c in enumerate(chunks)
        )
        for a, seq, _ in entries:
            self._advertised[a] = max(seq, self._advertised.get(a, 0))
        self._rounds_sent += 1
        self._idle = False
        return [Send(data=data)]

    def _pump(self, now: int) -> list[Action]:
        out: list[Action] = []
        while self._queue and len(self._requests) < self.limits.max_outstanding:
            author = self._queue.popleft()
            t = self._targets[author]
            deadline = now + self.limits.request_timeout_ms
            if t.fork:
                want = Want(author=author, from_seq=t.head.seq, to_seq=t.head.seq)
                req = _Request(author, t.head.seq, t.head.seq, None, deadline, expect_id=t.head.id)
            else:
                ours = self._ours.get(author)
                if ours is not None and ours.seq >= t.head.seq:
                    del self._targets[author]
                    continue
                first = 1 if ours is None else ours.seq + 1
                last = min(t.head.seq, first + self.limits.max_range - 1)
                want = Want(author=author, from_seq=first, to_seq=last, anchor=ours)
                req = _Request(author, first, last, ours, deadline)
            self._requests[author] = req
            if not self._window:
                self._window = self.limits.initial_credit
                out.append(Send(data=encode_frame(Credit(bytes=self._window))))
            out.append(Send(data=encode_frame(want)))
        return out

    def _flush(self) -> list[Action]:
        out: list[Action] = []
        while self._outq:
            author = self._outq[0]
            q = self._serving[author].queue
            assert q is not None
            budget, size = min(self._credit, self.limits.max_batch_bytes), 0
            take: list[bytes] = []
            while q and len(take) < MAX_BATCH_RECORDS and size + len(q[0]) <= budget:
                take.append(q.popleft())
                size += len(take[-1])
            if q and not take:
                break  # wait for credit
            self._credit -= size
            batch = Records(author=author, records=tuple(take), last=not q)
            out.append(Send(data=encode_frame(batch, max_frame=self.limits.max_frame)))
            if not q:
                self._outq.popleft()
                del self._serving[author]
        if out:
            self._stalled_since = None
        return out

    def _settle(self, now: int) -> list[Action]:
        out = self._pump(now)
        done = not self._queue and not self._requests
        if self.state is State.READY and done and self._synced_sent < self._peer_rounds:
            self._synced_sent = self._peer_rounds
            out.append(Send(data=encode_frame(Synced(round=self._peer_rounds))))
        return out + self._maybe_idle()

    def _maybe_idle(self) -> list[Action]:
        if (
            self._idle
            or self.state is not State.READY
            or self._queue
            or self._requests
            or self._serving
            or self._synced_sent < self._peer_rounds
            or self._peer_synced < self._rounds_sent
        ):
            return []
        self._idle = True
        return [Idle()]

    def _close_with(self, reason: str) -> list[Action]:
        self.state = State.CLOSED
        return [Send(data=encode_frame(Bye(reason=reason[:1024]))), Disconnect(reason=reason)]


def _verify(records: Sequence[Record], anchor: Head | None) -> None:
    """`feed.verify_range`, with its failures mapped to a heavy remote penalty."""
    try:
        verify_range(records, anchor)
    except Error as exc:  # FeedError (links) or VerificationError (signature)
        raise RemoteProtocolError(f"batch fails verification: {exc}", penalty=PENALTY_FORGED) from exc

