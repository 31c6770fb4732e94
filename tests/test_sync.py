"""Sync protocol machine: two sessions wired together in memory, and a hand-driven
peer for the misbehaviour cases.

`Node` is the test's stand-in for the daemon shell: it answers `Fetch` from a
dict of feeds and appends `Deliver`ed records to it (records that do not extend
the feed are kept aside, as fork evidence). `CreditMonitor` watches both
directions of the wire and fails if a side ever sends more record bytes than
its peer has granted.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from typing import TypeVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crypto.keys import SigningKey
from protocol import codec
from protocol.envelope import MAX_RECORD, Record
from protocol.errors import DecodeError, LocalProtocolError, ProtocolError, RemoteProtocolError
from protocol.feed import Head
from protocol.sync import PENALTY_FORGED, Limits, State, SyncSession
from protocol.sync_messages import (
    MAX_FRAME,
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
from tests import examples as ex

A = TypeVar("A")
NET = ex.NETWORK
OTHER_NET = bytes(32)
TIGHT = Limits(max_outstanding=2, max_range=97, initial_credit=MAX_RECORD, max_batch_bytes=MAX_RECORD)
_TYPES = ("scan", "sensor", "shipment.update")


def key(n: int) -> SigningKey:
    return SigningKey(n.to_bytes(4, "big") * 8)


def make_feed(k: SigningKey, n: int, *, after: Sequence[Record] = (), salt: int = 0) -> list[Record]:
    """`n` records of `k`'s feed, continuing `after`; `salt` makes a different (forked) history."""
    out = list(after)
    for _ in range(n):
        seq = len(out) + 1
        t = _TYPES[seq % len(_TYPES)]
        out.append(
            Record.sign(
                k,
                network=NET,
                seq=seq,
                prev=out[-1].id if out else None,
                ts=ex.T0 + seq * 1000 + salt,
                type=t,
                body=ex.EXAMPLES[t](),
            )
        )
    return out[len(after) :]


class Node:
    """A tiny fake shell around one `SyncSession`."""

    def __init__(self, feeds: dict[bytes, list[Record]], limits: Limits | None = None) -> None:
        self.feeds = {a: list(rs) for a, rs in feeds.items()}
        self.session = SyncSession(NET, limits)
        self.forks: list[Fork] = []
        self.fork_records: list[Record] = []
        self.penalties: list[Penalise] = []
        self.idle = 0
        self.disconnected: str | None = None

    def heads(self) -> dict[bytes, Head]:
        return {a: Head(rs[-1].seq, rs[-1].id) for a, rs in self.feeds.items() if rs}

    def ids(self) -> dict[bytes, list[bytes]]:
        return {a: [r.id for r in rs] for a, rs in self.feeds.items()}

    def run(self, actions: Iterable[Action]) -> bytes:
        """Carry out `actions`; return the bytes to send to the peer."""
        out = bytearray()
        todo = list(actions)
        while todo:
            a = todo.pop(0)
            match a:
                case Send():
                    out += a.data
                case Fetch():
                    feed = self.feeds.get(a.author, [])
                    wires = [r.wire for r in feed[a.from_seq - 1 : a.to_seq]]
                    todo += self.session.supply(a.author, wires)
                case Deliver():
                    for r in a.records:
                        feed = self.feeds.setdefault(r.author, [])
                        if r.seq == len(feed) + 1 and r.prev == (feed[-1].id if feed else None):
                            feed.append(r)
                        else:
                            self.fork_records.append(r)
                case Fork():
                    self.forks.append(a)
                case Penalise():
                    self.penalties.append(a)
                case Idle():
                    self.idle += 1
                case Disconnect():
                    self.disconnected = a.reason
        return bytes(out)


class CreditMonitor:
    """Decodes both directions; fails if record bytes ever exceed the credit granted."""

    def __init__(self) -> None:
        self.decoders = {"a": FrameDecoder(), "b": FrameDecoder()}
        self.allowance = {"a": 0, "b": 0}  # record bytes each side may still send
        self.held_back = False  # a side sent all it was allowed at some point
        self.records_bytes = 0
        self.sent = {"a": bytearray(), "b": bytearray()}

    def observe(self, sender: str, data: bytes) -> None:
        other = "b" if sender == "a" else "a"
        self.sent[sender] += data
        for msg in self.decoders[sender].feed(data):
            if isinstance(msg, Credit):
                self.allowance[other] += msg.bytes
            elif isinstance(msg, Records):
                self.allowance[sender] -= msg.size
                self.records_bytes += msg.size
                assert self.allowance[sender] >= 0, "sent more record bytes than granted"
                if self.allowance[sender] < MAX_RECORD:
                    self.held_back = True


def sync(a: Node, b: Node, *, rng: random.Random | None = None, now: int = 0) -> CreditMonitor:
    """Run two nodes to quiescence, passing bytes (in random pieces if `rng`)."""
    mon = CreditMonitor()
    wire = {"a": a.run(a.session.start(a.heads(), now)), "b": b.run(b.session.start(b.heads(), now))}
    return pump(a, b, wire, mon, rng=rng, now=now)


def pump(
    a: Node,
    b: Node,
    wire: dict[str, bytes],
    mon: CreditMonitor,
    *,
    rng: random.Random | None = None,
    now: int = 0,
) -> CreditMonitor:
    nodes = {"a": (a, b, "b"), "b": (b, a, "a")}
    for _ in range(100_000):
        if not wire["a"] and not wire["b"]:
            return mon
        for side in ("a", "b"):
            data, wire[side] = wire[side], b""
            mon.observe(side, data)
            _, receiver, rside = nodes[side]
            while data:
                n = rng.randint(1, 70_000) if rng else len(data)
                piece, data = data[:n], data[n:]
                wire[rside] += receiver.run(receiver.session.receive(piece, now))
    raise AssertionError("sync did not quiesce")


def frames(*msgs: Message) -> bytes:
    return b"".join(encode_frame(m) for m in msgs)


def sent(actions: Iterable[Action]) -> list[Message]:
    dec = FrameDecoder()
    return [m for a in actions if isinstance(a, Send) for m in dec.feed(a.data)]


def of(actions: Iterable[Action], kind: type[A]) -> list[A]:
    return [a for a in actions if isinstance(a, kind)]


# -- fixtures: feeds are signed once per module ---------------------------------------

K = [key(i) for i in range(1, 40)]
FEEDS: dict[int, list[Record]] = {}


def feed(i: int, n: int) -> list[Record]:
    """The first `n` records of author `i`'s (cached) feed."""
    if len(FEEDS.get(i, [])) < n:
        FEEDS[i] = FEEDS.get(i, []) + make_feed(K[i], n - len(FEEDS.get(i, [])), after=FEEDS.get(i, []))
    return FEEDS[i][:n]


def author(i: int) -> bytes:
    return K[i].public.raw


# -- convergence -------------------------------------------------------------------------


def test_disjoint_feeds_converge() -> None:
    a = Node({author(0): feed(0, 30), author(1): feed(1, 12)})
    b = Node({author(2): feed(2, 50)})
    sync(a, b)
    assert a.ids() == b.ids()
    assert set(a.ids()) == {author(0), author(1), author(2)}
    assert a.idle == b.idle == 1
    assert not a.forks
    assert not b.forks
    assert not a.penalties
    assert not b.penalties
    assert a.session.state is b.session.state is State.READY


@pytest.mark.parametrize("limits", [None, TIGHT], ids=["default", "tight"])
def test_empty_node_catches_up_5000_records_from_many_authors(limits: Limits | None) -> None:
    feeds = {author(0): feed(0, 2500)} | {author(i): feed(i, 100) for i in range(1, 26)}
    assert sum(map(len, feeds.values())) == 5000
    a = Node(feeds, limits)
    b = Node({}, limits)
    mon = sync(a, b, rng=random.Random(7) if limits else None)
    assert b.ids() == a.ids()
    assert a.idle == b.idle == 1
    assert mon.records_bytes == sum(len(r.wire) for rs in feeds.values() for r in rs)


def test_partial_overlap_converges() -> None:
    a = Node({author(3): feed(3, 100), author(4): feed(4, 10), author(5): feed(5, 20)})
    b = Node({author(3): feed(3, 60), author(4): feed(4, 40), author(5): feed(5, 20), author(6): feed(6, 3)})
    sync(a, b, rng=random.Random(1))
    assert a.ids() == b.ids()
    assert {a_: len(v) for a_, v in a.ids().items()} == {author(3): 100, author(4): 40, author(5): 20, author(6): 3}
    assert a.idle == b.idle == 1


def test_up_to_date_nodes_exchange_no_records() -> None:
    a = Node({author(7): feed(7, 5)})
    b = Node({author(7): feed(7, 5)})
    mon = sync(a, b)
    assert mon.records_bytes == 0
    assert a.idle == b.idle == 1


def test_resync_on_a_kept_session() -> None:
    a = Node({author(8): feed(8, 5)})
    b = Node({})
    mon = sync(a, b)
    assert b.ids() == a.ids()
    assert a.idle == b.idle == 1
    # a gets more records elsewhere (gossip), then re-syncs on the same stream
    a.feeds[author(8)] = feed(8, 9)
    a.feeds[author(9)] = feed(9, 4)
    a.session.update_heads(a.heads())
    pump(a, b, {"a": a.run(a.session.resync(0)), "b": b""}, mon)
    assert b.ids() == a.ids()
    assert a.idle == b.idle == 2


# -- flow control ----------------------------------------------------------------------------


def test_flow_control_never_exceeds_credit() -> None:
    a = Node({author(0): feed(0, 2500)}, TIGHT)
    b = Node({}, TIGHT)
    mon = sync(a, b, rng=random.Random(3))
    assert mon.held_back  # the responder really was throttled
    assert b.ids() == a.ids()


def test_records_wait_for_credit() -> None:
    a = Node({author(0): feed(0, 300)})
    acts = a.session.start(a.heads(), 0)
    acts = a.session.receive(frames(Hello(network=NET), Heads(heads=(), done=True)), 0)
    acts = a.session.receive(frames(Credit(bytes=MAX_RECORD), Want(author=author(0), from_seq=1, to_seq=300)), 0)
    (fetch,) = of(acts, Fetch)
    wires = [r.wire for r in feed(0, 300)]
    out = sent(a.session.supply(author(0), wires))
    assert sum(m.size for m in out if isinstance(m, Records)) <= MAX_RECORD
    got = [w for m in out if isinstance(m, Records) for w in m.records]
    granted = MAX_RECORD
    while not (out and isinstance(out[-1], Records) and out[-1].last):
        out = sent(a.session.receive(frames(Credit(bytes=MAX_RECORD)), 0))
        granted += MAX_RECORD
        got += [w for m in out if isinstance(m, Records) for w in m.records]
        assert sum(map(len, got)) <= granted
    assert got == wires


def test_records_over_the_granted_credit_are_an_error() -> None:
    b, want = requester_waiting(author(0), feed(0, 300))
    batch = [r.wire for r in feed(0, 300)]  # ~110 KiB, over the 64 KiB granted
    with pytest.raises(RemoteProtocolError, match="credit"):
        b.receive(frames(Records(author=author(0), records=batch, last=True)), 0)


# -- forks ---------------------------------------------------------------------------------------


def test_fork_at_the_same_seq_is_reported_and_both_records_kept() -> None:
    base = feed(10, 4)
    mine = make_feed(K[10], 1, after=base, salt=1)
    theirs = make_feed(K[10], 1, after=base, salt=2)
    a = Node({author(10): base + mine})
    b = Node({author(10): base + theirs})
    sync(a, b)
    assert a.forks == [Fork(author=author(10), seq=5, their_id=theirs[0].id)]
    assert b.forks == [Fork(author=author(10), seq=5, their_id=mine[0].id)]
    assert [r.id for r in a.fork_records] == [theirs[0].id]
    assert [r.id for r in b.fork_records] == [mine[0].id]
    assert a.idle == b.idle == 1
    assert not a.penalties
    assert not b.penalties


def test_fork_below_our_head_is_the_authors_fault_not_the_peers() -> None:
    base = feed(11, 3)
    mine = make_feed(K[11], 2, after=base, salt=1)  # seq 4, 5
    theirs = make_feed(K[11], 5, after=base, salt=2)  # seq 4..8
    a = Node({author(11): base + mine})
    b = Node({author(11): base + theirs})
    sync(a, b)  # no error: the author forked, the peer only relayed
    assert a.forks == [Fork(author=author(11), seq=5, their_id=theirs[1].id)]
    assert [r.id for r in a.fork_records] == [theirs[2].id]  # seq 6, which skips our seq 5
    assert a.feeds[author(11)] == base + mine
    assert a.idle == b.idle == 1


# -- a hand-driven peer -------------------------------------------------------------------------


def requester_waiting(who: bytes, records: Sequence[Record], limits: Limits = TIGHT) -> tuple[SyncSession, Want]:
    """An empty session that has announced nothing and wants `records` from us."""
    s = SyncSession(NET, limits)
    s.start({}, 0)
    head = records[-1]
    out = sent(s.receive(frames(Hello(network=NET), Heads(heads=[(who, head.seq, head.id)], done=True)), 0))
    wants = [m for m in out if isinstance(m, Want)]
    assert [m for m in out if isinstance(m, Credit)] == [Credit(bytes=limits.initial_credit)]
    assert len(wants) == 1
    assert wants[0].author == who
    assert wants[0].from_seq == 1
    return s, wants[0]


def forge(record: Record, sig: bytes = bytes(64)) -> bytes:
    unsigned, _ = codec.decode(record.wire)
    return codec.encode([unsigned, sig])


def test_forged_head_of_a_batch_is_an_error() -> None:
    recs = feed(12, 10)
    s, want = requester_waiting(author(12), recs)
    batch = [r.wire for r in recs[:9]] + [forge(recs[9])]
    with pytest.raises(RemoteProtocolError) as info:
        s.receive(frames(Records(author=author(12), records=batch, last=True)), 0)
    assert info.value.penalty == PENALTY_FORGED
    assert s.state is State.CLOSED
    with pytest.raises(LocalProtocolError):
        s.receive(b"\x00", 0)


def test_record_signed_by_another_key_is_an_error() -> None:
    recs = feed(12, 10)
    s, _ = requester_waiting(author(12), recs)
    impostor = make_feed(K[13], 1)[0]
    unsigned, _ = codec.decode(recs[9].wire)
    batch = [r.wire for r in recs[:9]] + [forge(recs[9], impostor.signature)]
    assert codec.decode(batch[9])[0] == unsigned
    with pytest.raises(RemoteProtocolError, match="verification"):
        s.receive(frames(Records(author=author(12), records=batch, last=True)), 0)


def test_broken_link_inside_a_batch_is_an_error() -> None:
    recs = feed(12, 10)
    s, _ = requester_waiting(author(12), recs)
    other = make_feed(K[12], 10, salt=9)  # validly signed, but another history
    batch = [r.wire for r in recs[:5]] + [r.wire for r in other[5:]]
    with pytest.raises(RemoteProtocolError) as info:
        s.receive(frames(Records(author=author(12), records=batch, last=True)), 0)
    assert info.value.penalty == PENALTY_FORGED


def test_records_not_requested_are_an_error() -> None:
    recs = feed(12, 10)
    s, _ = requester_waiting(author(12), recs)
    stranger = [r.wire for r in feed(14, 2)]
    with pytest.raises(RemoteProtocolError, match="not requested"):
        s.receive(frames(Records(author=author(14), records=stranger, last=True)), 0)


def test_records_beyond_the_range_are_an_error() -> None:
    recs = feed(12, 10)
    s, _ = requester_waiting(author(12), recs[:5])  # we asked for 1..5
    with pytest.raises(RemoteProtocolError, match="beyond the requested range"):
        s.receive(frames(Records(author=author(12), records=[r.wire for r in recs[:6]], last=True)), 0)


def test_a_record_of_another_feed_inside_a_batch_is_an_error() -> None:
    recs = feed(12, 10)
    s, _ = requester_waiting(author(12), recs)
    batch = [recs[0].wire, feed(14, 2)[1].wire]
    with pytest.raises(RemoteProtocolError, match="outside the requested range"):
        s.receive(frames(Records(author=author(12), records=batch, last=False)), 0)


def test_batches_stream_and_a_short_range_is_penalised() -> None:
    recs = feed(12, 10)
    s, _ = requester_waiting(author(12), recs)
    acts = s.receive(frames(Records(author=author(12), records=[r.wire for r in recs[:4]], last=False)), 0)
    assert [r.id for d in of(acts, Deliver) for r in d.records] == [r.id for r in recs[:4]]
    acts = s.receive(frames(Records(author=author(12), records=[r.wire for r in recs[4:7]], last=True)), 0)
    assert [r.seq for d in of(acts, Deliver) for r in d.records] == [5, 6, 7]
    assert [p.points for p in of(acts, Penalise)] == [1]
    assert Synced(round=1) in sent(acts)


def test_timeout_via_tick_disconnects() -> None:
    s, _ = requester_waiting(author(12), feed(12, 10), Limits(request_timeout_ms=5_000))
    assert s.tick(5_000) == []
    acts = s.tick(5_001)
    assert [d.reason for d in of(acts, Disconnect)] == ["timeout: want for feed " + author(12).hex()[:16]]
    assert isinstance(sent(acts)[0], Bye)
    assert s.state is State.CLOSED
    assert s.tick(10_000) == []


def test_progress_resets_the_timeout() -> None:
    recs = feed(12, 10)
    s, _ = requester_waiting(author(12), recs, Limits(request_timeout_ms=5_000))
    s.receive(frames(Records(author=author(12), records=[recs[0].wire], last=False)), 4_000)
    assert s.tick(8_000) == []
    assert of(s.tick(9_001), Disconnect)


def test_silent_peer_times_out() -> None:
    s = SyncSession(NET)
    s.start({}, 1_000)
    assert s.tick(31_000) == []
    assert of(s.tick(31_001), Disconnect)


def test_peer_that_stops_granting_credit_times_out() -> None:
    a = Node({author(0): feed(0, 300)})
    a.session.start(a.heads(), 0)
    a.session.receive(frames(Hello(network=NET), Heads(heads=(), done=True)), 0)
    want = Want(author=author(0), from_seq=1, to_seq=300)
    a.run(a.session.receive(frames(Credit(bytes=MAX_RECORD), want), 0))  # supplies; most is held back
    assert a.session.tick(1_000) == []
    assert a.session.tick(31_000) == []
    assert [d.reason for d in of(a.session.tick(31_001), Disconnect)] == [
        "timeout: the peer grants no credit"
    ]


def test_too_many_wants_in_flight_is_an_error() -> None:
    s = SyncSession(NET, Limits(max_served=1))
    s.start({author(0): Head(1, feed(0, 1)[0].id), author(1): Head(1, feed(1, 1)[0].id)}, 0)
    s.receive(frames(Hello(network=NET), Heads(heads=(), done=True)), 0)
    s.receive(frames(Want(author=author(0), from_seq=1, to_seq=1)), 0)
    with pytest.raises(RemoteProtocolError, match="too many wants"):
        s.receive(frames(Want(author=author(1), from_seq=1, to_seq=1)), 0)


def test_fork_record_must_be_the_announced_one() -> None:
    recs = feed(12, 5)
    s = SyncSession(NET, TIGHT)
    s.start({author(12): Head(5, recs[4].id)}, 0)
    acts = s.receive(frames(Hello(network=NET), Heads(heads=[(author(12), 5, bytes(32))], done=True)), 0)
    assert of(acts, Fork) == [Fork(author=author(12), seq=5, their_id=bytes(32))]
    assert Want(author=author(12), from_seq=5, to_seq=5) in sent(acts)
    with pytest.raises(RemoteProtocolError, match="not the announced one"):
        s.receive(frames(Records(author=author(12), records=[recs[4].wire], last=True)), 0)


def test_queued_wants_skip_feeds_caught_up_elsewhere() -> None:
    s = SyncSession(NET, Limits(max_outstanding=1))
    s.start({}, 0)
    heads = sorted([(author(0), 1, feed(0, 1)[0].id), (author(1), 1, feed(1, 1)[0].id)])
    out = sent(s.receive(frames(Hello(network=NET), Heads(heads=heads, done=True)), 0))
    (first,) = [m for m in out if isinstance(m, Want)]
    other = heads[1] if first.author == heads[0][0] else heads[0]
    s.update_heads({other[0]: Head(1, other[2])})  # gossip brought it meanwhile
    got = feed(0 if first.author == author(0) else 1, 1)
    out = sent(s.receive(frames(Records(author=first.author, records=[got[0].wire], last=True)), 0))
    assert not [m for m in out if isinstance(m, Want)]
    assert Synced(round=1) in out


def test_network_mismatch_disconnects() -> None:
    s = SyncSession(NET)
    s.start({}, 0)
    acts = s.receive(frames(Hello(network=OTHER_NET), Heads(heads=(), done=True)), 0)
    assert [d.reason for d in of(acts, Disconnect)] == ["peer is on another network"]
    assert s.state is State.CLOSED


def test_bye_and_end_of_stream() -> None:
    s = SyncSession(NET)
    s.start({}, 0)
    assert of(s.receive(frames(Hello(network=NET), Bye(reason="shutting down")), 0), Disconnect)
    s = SyncSession(NET)
    s.start({}, 0)
    assert of(s.receive(b"", 0), Disconnect)


def test_want_for_records_never_announced_is_an_error() -> None:
    s = SyncSession(NET)
    s.start({author(0): Head(3, feed(0, 3)[2].id)}, 0)
    s.receive(frames(Hello(network=NET), Heads(heads=(), done=True)), 0)
    assert of(s.receive(frames(Want(author=author(0), from_seq=1, to_seq=3)), 0), Fetch)
    with pytest.raises(RemoteProtocolError, match="a second want"):
        s.receive(frames(Want(author=author(0), from_seq=1, to_seq=3)), 0)
    s = SyncSession(NET)
    s.start({author(0): Head(3, feed(0, 3)[2].id)}, 0)
    s.receive(frames(Hello(network=NET), Heads(heads=(), done=True)), 0)
    with pytest.raises(RemoteProtocolError, match="never announced"):
        s.receive(frames(Want(author=author(0), from_seq=1, to_seq=4)), 0)


def test_heads_out_of_order_are_an_error() -> None:
    s = SyncSession(NET)
    s.start({}, 0)
    hi, lo = sorted([author(0), author(1)], reverse=True)
    with pytest.raises(RemoteProtocolError, match="order"):
        s.receive(frames(Hello(network=NET), Heads(heads=[(hi, 1, bytes(32)), (lo, 1, bytes(32))], done=True)), 0)


def test_heads_arrive_in_chunks() -> None:
    many = {i.to_bytes(32, "big"): Head(1, bytes(32)) for i in range(5000)}
    s = SyncSession(NET)
    msgs = sent(s.start(many, 0))
    assert [type(m) for m in msgs] == [Hello, Heads, Heads]
    assert [len(m.heads) for m in msgs[1:]] == [4096, 904]  # type: ignore[attr-defined]
    assert [m.done for m in msgs[1:]] == [False, True]  # type: ignore[attr-defined]


def test_misuse_is_a_local_error() -> None:
    s = SyncSession(NET)
    with pytest.raises(LocalProtocolError):
        s.receive(b"\x00", 0)
    s.start({}, 0)
    with pytest.raises(LocalProtocolError):
        s.start({}, 0)
    with pytest.raises(LocalProtocolError):
        s.supply(author(0), [])
    with pytest.raises(LocalProtocolError):
        Limits(initial_credit=1000)


# -- framing -------------------------------------------------------------------------------------


def started() -> SyncSession:
    s = SyncSession(NET)
    s.start({}, 0)
    return s


def test_oversized_frame_is_an_error_before_its_payload_arrives() -> None:
    with pytest.raises(RemoteProtocolError, match="frame length"):
        started().receive((MAX_FRAME + 1).to_bytes(4, "big"), 0)


def test_zero_length_frame_is_an_error() -> None:
    with pytest.raises(RemoteProtocolError, match="frame length"):
        started().receive(bytes(4), 0)


def test_truncated_frame_then_eof_is_an_error() -> None:
    s = started()
    data = frames(Hello(network=NET))
    assert s.receive(data[:-3], 0) == []
    with pytest.raises(RemoteProtocolError, match="inside a frame"):
        s.receive(b"", 0)


@pytest.mark.parametrize(
    "payload",
    [
        codec.encode({"k": "hello", "net": NET, "v": 1})[:-1] + b"\xcc\x01",  # long-form int
        b"\x82\xa1v\x01\xa1k\xa5hello",  # keys out of order
        codec.encode({"k": "nope"}),
        codec.encode({"k": "hello", "net": NET, "v": 1, "x": 1}),
        codec.encode({"k": "hello", "net": NET}),
        codec.encode({"k": "credit", "bytes": 0}),
        codec.encode({"k": "credit", "bytes": True}),
        codec.encode(["hello"]),
        b"\xcb" + bytes(8),  # a float
        b"\xc1",
    ],
)
def test_bad_payloads_are_decode_errors(payload: bytes) -> None:
    with pytest.raises(DecodeError):
        started().receive(len(payload).to_bytes(4, "big") + payload, 0)


def test_decoder_takes_bytes_one_at_a_time() -> None:
    msgs = [Hello(network=NET), Heads(heads=[(author(0), 3, bytes(32))], done=True), Bye(reason="x")]
    dec = FrameDecoder()
    got = [m for byte in frames(*msgs) for m in dec.feed(bytes([byte]))]
    assert got == msgs
    assert not dec.pending


def test_message_not_allowed_in_state_is_an_error() -> None:
    with pytest.raises(RemoteProtocolError, match="not allowed"):
        started().receive(frames(Want(author=author(0), from_seq=1, to_seq=1)), 0)
    with pytest.raises(RemoteProtocolError, match="not allowed"):
        started().receive(frames(Hello(network=NET), Hello(network=NET)), 0)


# -- hypothesis: nothing but ProtocolError comes out of receive() -----------------------------

b32 = st.binary(min_size=32, max_size=32)
seqs = st.integers(1, 2**63 - 1)
MESSAGES = st.one_of(
    st.builds(Hello, network=st.sampled_from([NET, OTHER_NET]), version=st.integers(0, 3)),
    st.builds(Heads, heads=st.lists(st.tuples(b32, seqs, b32), max_size=4), done=st.booleans()),
    st.builds(
        lambda a, f, n: Want(author=a, from_seq=f, to_seq=f + n),
        st.sampled_from([author(0), author(12)]) | b32,
        st.integers(1, 20),
        st.integers(0, 3000),
    ),
    st.builds(
        Records,
        author=st.sampled_from([author(12)]) | b32,
        records=st.lists(st.sampled_from([r.wire for r in feed(12, 10)]) | st.binary(min_size=1), max_size=4),
        last=st.booleans(),
    ),
    st.builds(Credit, bytes=st.integers(1, 2**32 - 1)),
    st.builds(Synced, round=st.integers(1, 3)),
    st.builds(Bye, reason=st.text(max_size=20)),
)
_fast = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _feed_all(s: SyncSession, chunks: Iterable[bytes]) -> None:
    try:
        for c in chunks:
            if s.state is State.CLOSED:
                return
            for a in s.receive(c, 0):
                if isinstance(a, Fetch):
                    s.supply(a.author, [r.wire for r in feed(0, a.to_seq)[a.from_seq - 1 :]][:3])
    except ProtocolError:
        pass


PREFIXES = [  # reach every state before the random messages: h2's (state, input) coverage
    (),
    (Hello(network=NET),),
    (Hello(network=NET), Heads(heads=[(author(0), 12, bytes(32))], done=False)),
    (Hello(network=NET), Heads(heads=[(author(12), 10, feed(12, 10)[9].id)], done=True)),
]


@_fast
@given(st.sampled_from(PREFIXES), st.lists(MESSAGES, max_size=12))
def test_any_message_sequence_raises_only_protocol_errors(
    prefix: tuple[Message, ...], msgs: list[Message]
) -> None:
    s = SyncSession(NET, TIGHT)
    s.start({author(0): Head(10, feed(0, 10)[9].id)}, 0)
    _feed_all(s, [encode_frame(m) for m in (*prefix, *msgs)])


@_fast
@given(st.binary(max_size=300), st.booleans())
def test_random_bytes_raise_only_protocol_errors(data: bytes, prefix: bool) -> None:
    s = started()
    head = frames(Hello(network=NET), Heads(heads=[(author(12), 10, feed(12, 10)[9].id)], done=True))
    _feed_all(s, [head, data, b""] if prefix else [data, b""])


def transcript() -> bytes:
    """What a real peer sends while serving 10 records of one feed."""
    a = Node({author(12): feed(12, 10)})
    return bytes(sync(a, Node({})).sent["a"])


TRANSCRIPT = transcript()


@_fast
@given(st.lists(st.tuples(st.integers(0, len(TRANSCRIPT) - 1), st.integers(0, 255)), min_size=1, max_size=6))
def test_mutated_transcripts_raise_only_protocol_errors(flips: list[tuple[int, int]]) -> None:
    data = bytearray(TRANSCRIPT)
    for pos, byte in flips:
        data[pos] = byte
    s = started()
    # the requester side of the real exchange, fed the mutated bytes in uneven pieces
    _feed_all(s, [bytes(data[i : i + 97]) for i in range(0, len(data), 97)] + [b""])


@_fast
@given(MESSAGES)
def test_messages_round_trip(msg: Message) -> None:
    assert Message.from_bytes(msg.to_bytes()) == msg
