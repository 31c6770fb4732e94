"""The network service: gossip for speed, anti-entropy sync for truth.

Theory of operation. `Network` owns the libp2p `Host` (node.p2p) and drives
three things over it:

- **Sync** (`/sealchain/sync/1`): one `protocol.sync.SyncSession` per stream.
  For each connected pair, the peer with the smaller public key opens a sync
  stream when they connect, every `sync_interval_s`, and at once whenever
  gossip delivers a record whose predecessor we lack. A session runs one round
  (heads, wants, records) and closes when idle. Delivered runs are already
  authenticated (one signature per run) and go to `Ledger.submit_run`.
- **Gossip** (topic `records` of the network): our own fresh records are
  batched (up to `GOSSIP_BATCH` records or `GOSSIP_LINGER_S`) into one gossip
  message, a canonical list of record wires. The validator rejects only what is
  permanently invalid (malformed, wrong network, bad signature), so gossipsub
  never forwards garbage; decoded records are cached for the ingest that
  follows. Gossip is best effort: sync repairs whatever it drops.
- **Peers** (`/sealchain/peers/1`): on connect we ask a peer for the addresses
  of its peers and dial some of them, up to `max_peers` (unless discovery is
  off); bootstrap peers are redialled with exponential backoff.

Misbehaving peers lose points (`Penalise`, malformed frames, forged records,
rejected gossip, and records the ledger rejects: see `_charge`); past
`ban_threshold` they are disconnected and refused for `ban_seconds`. The ban
holds everywhere: the host drops a banned peer's connections and resets its
inbound streams on every protocol (sync, peers, push), and gossip it signs or
forwards is rejected.

Alerts have no gossip topic of their own. An alert raised by a node is a
signed record (type `alert`) in its feed, so it travels in the `records` topic
and in sync like any record, with the same validation, ordering and repair; a
second topic would carry the same bytes twice. Alerts a node *derives* from the
records are not sent at all: every node derives the same ones from the same
records (DESIGN invariant 2). Pushing alert entries at once to subscribers that
asked for them (customs, brands) is `/sealchain/push/1` (node.push).

`lag` is what sync learns: for each peer, the records its last heads round
announced that we still lack (`SyncSession.behind()`), refreshed as records
arrive; `sync_lag()` reports the largest.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import trio

from crypto.errors import Error
from node.errors import NetworkError
from node.ledger import Ledger
from node.p2p import Host, PeerEventKind, Stream, peer_id_of, public_key_of
from protocol import codec
from protocol.envelope import Record
from protocol.errors import ProtocolError
from protocol.feed import Head, verify_range
from protocol.sync import Limits, SyncSession
from protocol.sync_messages import Deliver, Disconnect, Fetch, Fork, Idle, Penalise, Send

log = logging.getLogger("sealchain.net")

SYNC_PROTOCOL = "/sealchain/sync/1"
PEERS_PROTOCOL = "/sealchain/peers/1"
GOSSIP_BATCH = 256
GOSSIP_LINGER_S = 0.02
GOSSIP_INGEST_MESSAGES = 16  # gossip messages ingested in one write, at most
MAX_PEER_LIST = 64


def now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass
class NetConfig:
    listen: tuple[str, ...] = ("/ip4/127.0.0.1/tcp/0",)
    bootstrap: tuple[str, ...] = ()
    gossip: bool = True
    discover: bool = True
    max_peers: int = 8
    psk: bytes | None = None
    sync_interval_s: float = 10.0
    ban_threshold: int = 100
    ban_seconds: float = 600.0
    sync_bytes_per_s: int = 32 * 1024 * 1024  # per peer: reading slows down beyond it
    gossip_messages_per_s: int = 500  # per peer: more is refused (sync repairs the rest)


@dataclass
class NetStats:
    gossip_in: int = 0
    gossip_out: int = 0
    gossip_rejected: int = 0
    gossip_dropped: int = 0
    gossip_unsent: int = 0  # own records not gossiped: no peer subscribed (sync carries them)
    gossip_records_in: int = 0
    gossip_bytes_in: int = 0
    gossip_bytes_out: int = 0
    sync_sessions: int = 0
    sync_requests: int = 0
    sync_records_in: int = 0
    sync_bytes_in: int = 0
    sync_bytes_out: int = 0
    sync_frames_in: int = 0
    sync_frames_out: int = 0
    records_rejected: int = 0  # records from peers the ledger refused (each may cost points)
    sync_errors: int = 0
    bans: int = 0
    throttled: int = 0
    gossip_throttled: int = 0
    penalties: Counter[str] = field(default_factory=Counter)  # peer id -> points


class Bucket:
    """A token bucket: `take(n)` says how long to wait before `n` more units may pass."""

    def __init__(self, rate: float, burst: float) -> None:
        self.rate, self.burst = rate, burst
        self.level = burst
        self.at = time.monotonic()

    def take(self, n: float) -> float:
        now = time.monotonic()
        self.level = min(self.burst, self.level + (now - self.at) * self.rate)
        self.at = now
        self.level -= n
        return 0.0 if self.level >= 0 else -self.level / self.rate


class Network:
    def __init__(self, ledger: Ledger, config: NetConfig, *,
                 write: Callable[[Callable[[], Any]], Awaitable[Any]] | None = None,
                 lock: trio.Lock | None = None) -> None:
        """`write(fn)` runs a ledger write where the node serialises them (the daemon's
        writer, in a worker thread); `lock` guards reads of the ledger's in-memory state.
        Without them (tests, tools) the ledger is used directly from the trio thread."""
        assert ledger.own is not None
        self.ledger = ledger
        self._write_fn = write
        self._lock = lock or trio.Lock()
        self._token: trio.lowlevel.TrioToken | None = None
        self._trio_thread: int | None = None
        self.config = config
        self.host = Host(ledger.own, listen=config.listen, psk=config.psk, gossip=config.gossip)
        self.topic = ledger.genesis.topic("records")
        self.stats = NetStats()
        self.lag: dict[bytes, int] = {}  # peer -> records it announced that we lack
        self._scores: Counter[bytes] = Counter()
        self._banned: dict[bytes, float] = {}
        self._known: dict[bytes, str] = {}  # peer key -> multiaddr
        self._sync_buckets: dict[bytes, Bucket] = {}
        self._last_lag = 0
        self._gossip_buckets: dict[bytes, Bucket] = {}
        self._syncing: Counter[bytes] = Counter()  # peer -> sync sessions running (both ways)
        self._again: set[bytes] = set()  # peers to sync with once their session ends
        self._gone: dict[bytes, trio.Event] = {}  # peer -> set when it disconnects
        self._outbox_send, self._outbox = trio.open_memory_channel[Record](10_000)
        self._decoded: OrderedDict[bytes, list[Record]] = OrderedDict()
        self._nursery: trio.Nursery | None = None
        self._listeners: list[Callable[[bytes, bool], None]] = []
        ledger.on_stored(self._on_stored)

    # -- lifecycle ---------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        self._token = trio.lowlevel.current_trio_token()
        self._trio_thread = threading.get_ident()
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            self.host.set_stream_handler(SYNC_PROTOCOL, self._serve_sync)
            self.host.set_stream_handler(PEERS_PROTOCOL, self._serve_peers)
            self.host.refuse = self.is_banned  # every protocol, every connection
            await nursery.start(self.host.run)
            if self.config.gossip:
                self.host.set_validator(self.topic, self._validate)
                channel = await self.host.subscribe(self.topic)
                nursery.start_soon(self._gossip_in, channel)
                nursery.start_soon(self._gossip_out)
            nursery.start_soon(self._peer_events)
            for addr in self.config.bootstrap:
                nursery.start_soon(self._keep_dialled, addr)
            nursery.start_soon(self._periodic_sync)
            log.info("network started peer_id=%s listen=%s", self.host.peer_id,
                     ",".join(self.host.listen_addrs))
            task_status.started()
            await trio.sleep_forever()

    @property
    def addrs(self) -> list[str]:
        return list(self.host.listen_addrs)

    def connected(self) -> list[bytes]:
        return self.host.connected_peers()

    def sync_lag(self) -> int:
        """Records a peer announced in its last heads round that we still lack (max over peers)."""
        return max(self.lag.values(), default=0)

    def pending_gap(self) -> int:
        """Records we know exist but do not hold yet: the gaps behind the pending area."""
        try:
            missing = self.ledger.pending.missing()
            heads = {a: self.ledger.head(a) for a in missing}
        except RuntimeError:  # the writer thread changed the pending area mid-read
            return self._last_lag
        self._last_lag = sum(top - (h.seq if h else 0) for a, top in missing.items()
                             for h in [heads[a]])
        return self._last_lag

    def on_peer(self, callback: Callable[[bytes, bool], None]) -> None:
        self._listeners.append(callback)

    # -- peers -------------------------------------------------------------------------------

    async def _keep_dialled(self, addr: str) -> None:
        # Known before the dial returns: py-libp2p reports the connection (and peers may
        # ask us for our peers) well before `connect` comes back.
        named = _addr_key(addr)
        if named is not None:
            self._known[named] = addr
        delay = 0.5
        while True:
            try:
                key = await self.host.connect(addr)
                self._known[key] = addr
                if self.is_banned(key):  # the host refused it; try again once the ban ends
                    await trio.sleep(max(delay, self._banned.get(key, 0) - trio.current_time()))
                    continue
                delay = 0.5
                gone = self._gone.setdefault(key, trio.Event())
                if self.host.is_connected(key):
                    await gone.wait()
            except NetworkError as exc:
                log.debug("dial failed addr=%s error=%s", addr, exc)
            await trio.sleep(delay)
            delay = min(delay * 2, 30.0)

    async def _peer_events(self) -> None:
        async for ev in self.host.peer_events:
            if ev.kind is PeerEventKind.CONNECTED:
                if self.is_banned(ev.public_key):
                    await self.host.disconnect(ev.public_key)
                    continue
                log.info("peer connected peer=%s", ev.peer_id)
                assert self._nursery is not None
                if self.host.public_key < ev.public_key:
                    self._nursery.start_soon(self._sync_with, ev.public_key)
                if self.config.discover:
                    self._nursery.start_soon(self._discover, ev.public_key)
            else:
                log.info("peer disconnected peer=%s", ev.peer_id)
                self.lag.pop(ev.public_key, None)
                gone = self._gone.pop(ev.public_key, None)
                if gone is not None:
                    gone.set()
            for cb in self._listeners:
                cb(ev.public_key, ev.kind is PeerEventKind.CONNECTED)

    async def _serve_peers(self, stream: Stream) -> None:
        addrs = [a for k, a in sorted(self._known.items())
                 if k != stream.remote_public_key and self.host.is_connected(k)]  # live ones
        addrs += self.host.listen_addrs
        await stream.write(codec.encode(addrs[:MAX_PEER_LIST]))
        await stream.close_write()

    async def _discover(self, peer: bytes) -> None:
        try:
            with trio.fail_after(10):
                stream = await self.host.open_stream(peer, PEERS_PROTOCOL)
                data = b""
                while len(data) < codec.MAX_DOCUMENT:
                    chunk = await stream.read(65536)
                    if not chunk:
                        break
                    data += chunk
                await stream.close()
            addrs = codec.decode(data)
            if not isinstance(addrs, list) or not all(isinstance(a, str) for a in addrs):
                raise ProtocolError("peer list is not a list of strings")
        except (trio.TooSlowError, Error) as exc:
            log.debug("peer discovery failed peer=%s error=%s", peer.hex()[:16], exc)
            return
        for addr in addrs:
            if "/p2p/" not in addr:
                continue
            if len(self.host.connected_peers()) >= self.config.max_peers:
                return
            try:
                key = await self.host.connect(addr)
            except NetworkError:
                continue
            self._known.setdefault(key, addr)

    # -- penalties ---------------------------------------------------------------------------

    def penalise(self, peer: bytes, points: int, reason: str) -> None:
        if points <= 0:
            return
        self._scores[peer] += points
        self.stats.penalties[peer_id_of(peer)] += points
        log.warning("peer penalised peer=%s points=%d total=%d reason=%s", peer_id_of(peer),
                    points, self._scores[peer], reason)
        if self._scores[peer] >= self.config.ban_threshold:
            self._banned[peer] = trio.current_time() + self.config.ban_seconds
            self._scores[peer] = 0
            self.stats.bans += 1
            log.warning("peer banned peer=%s seconds=%d", peer_id_of(peer), self.config.ban_seconds)
            if self._nursery is not None:
                self._nursery.start_soon(self.host.disconnect, peer)

    def is_banned(self, peer: bytes) -> bool:
        """Whether `peer` is banned now (its connections and streams are refused)."""
        until = self._banned.get(peer)
        if until is None:
            return False
        if trio.current_time() >= until:
            del self._banned[peer]
            return False
        return True

    # -- sync --------------------------------------------------------------------------------

    async def _periodic_sync(self) -> None:
        while True:
            await trio.sleep(self.config.sync_interval_s)
            self.request_sync()

    def request_sync(self, peer: bytes | None = None) -> None:
        """Start a sync round with `peer` (or every connected peer); if a session with it is
        running (either side opened it: a session syncs both ways), one more after it."""
        assert self._nursery is not None
        for p in [peer] if peer else self.host.connected_peers():
            if self._syncing[p]:
                self._again.add(p)
            else:
                self._nursery.start_soon(self._sync_with, p)

    async def _sync_with(self, peer: bytes) -> None:
        if self._syncing[peer] or self.is_banned(peer):
            return
        self._syncing[peer] += 1
        try:
            stream = await self.host.open_stream(peer, SYNC_PROTOCOL)
        except NetworkError as exc:
            log.debug("sync open failed peer=%s error=%s", peer_id_of(peer), exc)
            self._session_ended(peer)
            return
        try:
            await self._run_session(stream)
        finally:
            self._session_ended(peer)

    async def _serve_sync(self, stream: Stream) -> None:
        peer = stream.remote_public_key
        if self.is_banned(peer):
            await stream.reset()
            return
        self._syncing[peer] += 1
        try:
            await self._run_session(stream)
        finally:
            self._session_ended(peer)

    def _session_ended(self, peer: bytes) -> None:
        self._syncing[peer] -= 1
        if self._syncing[peer] <= 0:
            del self._syncing[peer]
            if peer in self._again:
                self._again.discard(peer)
                if self._nursery is not None and self.host.is_connected(peer):
                    self._nursery.start_soon(self._sync_with, peer)

    async def _run_session(self, stream: Stream) -> None:
        peer = stream.remote_public_key
        session = SyncSession(self.ledger.network, Limits())
        self.stats.sync_sessions += 1
        done = trio.Event()
        frames_in = FrameCounter()

        async def carry_out(actions: list[Any]) -> None:
            for a in actions:
                if isinstance(a, Send):
                    self.stats.sync_bytes_out += len(a.data)
                    self.stats.sync_frames_out += count_frames(a.data)
                    await stream.write(a.data)
                elif isinstance(a, Fetch):
                    self.stats.sync_requests += 1
                    wires = self.ledger.store.feed(a.author, a.from_seq, a.to_seq - a.from_seq + 1)
                    await carry_out(session.supply(a.author, wires))
                elif isinstance(a, Deliver):
                    outcomes = await self._ingest(a.records)
                    self.stats.sync_records_in += sum(o.status == "stored" for o in outcomes)
                    self._charge(peer, a.records, outcomes, via="sync", relay=True)
                    session.update_heads(await self._heads())
                elif isinstance(a, Fork):
                    log.warning("fork seen in sync author=%s seq=%d", a.author.hex()[:16], a.seq)
                elif isinstance(a, Penalise):
                    self.penalise(peer, a.points, a.reason)
                elif isinstance(a, Disconnect | Idle):
                    done.set()

        async def ticker() -> None:
            try:
                while not done.is_set():
                    await trio.sleep(1.0)
                    await carry_out(session.tick(now_ms()))
            except NetworkError:
                done.set()

        failure: ProtocolError | NetworkError | None = None
        async with trio.open_nursery() as nursery:
            nursery.start_soon(ticker)
            try:
                await carry_out(session.start(await self._heads(), now_ms()))
                while not done.is_set():
                    data = await stream.read(65536)
                    self.stats.sync_bytes_in += len(data)
                    self.stats.sync_frames_in += frames_in.feed(data)
                    wait = self._bucket(self._sync_buckets, peer,
                                        self.config.sync_bytes_per_s).take(len(data))
                    if wait > 0:  # over its byte rate: stop reading a while (flow control)
                        self.stats.throttled += 1
                        await trio.sleep(wait)
                    await carry_out(session.receive(data, now_ms()))
                    self.lag[peer] = session.behind()
                    if not data:
                        break
            except (ProtocolError, NetworkError) as exc:
                failure = exc
            finally:
                nursery.cancel_scope.cancel()
        if isinstance(failure, ProtocolError):
            self.stats.sync_errors += 1
            self.penalise(peer, getattr(failure, "penalty", 10), f"sync: {failure}")
            await stream.reset()
            return
        if failure is not None:
            log.debug("sync stream ended peer=%s error=%s", peer_id_of(peer), failure)
            return
        self.lag[peer] = session.behind()
        await stream.close()

    # -- gossip ------------------------------------------------------------------------------

    async def _ingest(self, records: list[Record]) -> list[Any]:
        def write() -> list[Any]:
            return self.ledger.submit_run(records, now_ms())

        if self._write_fn is not None:
            result: list[Any] = await self._write_fn(write)
            return result
        return write()

    def _charge(self, peer: bytes, records: list[Record], outcomes: list[Any], *, via: str,
                relay: bool) -> None:
        """Records the ledger rejected cost `peer` their penalty (role or credential
        violations, invalid bodies, records of another network).

        Over sync (`relay=True`) a peer also relays other authors' records, and an
        honest relay may hold one stored under the credentials it knew then (a
        revocation it had not seen yet): those cost the relay nothing, only its own
        records and other-network ones (which no honest node stores) do. Gossip carries
        only what its signer published, so the signer pays for all of it.
        """
        points, first = 0, ""
        for r, o in zip(records, outcomes, strict=True):
            if o.status != "rejected":
                continue
            self.stats.records_rejected += 1
            if not relay or r.author == peer or r.network != self.ledger.network:
                points += o.penalty
                first = first or str(o.reason)
        if points:
            self.penalise(peer, points, f"{via}: rejected records ({first})")

    async def _heads(self) -> dict[bytes, Any]:
        async with self._lock:
            return self.ledger.heads()

    def _on_stored(self, records: list[Record], alerts: list[dict[str, Any]]) -> None:
        # Called after every durable write, possibly in the writer's worker thread:
        # hand our own fresh records to the trio thread for gossip.
        own = self.ledger.own.public.raw if self.ledger.own else b""
        fresh = [r for r in records if r.author == own]
        if fresh and self._token is not None and self.config.gossip:
            if threading.get_ident() == self._trio_thread:  # a group staged in the trio thread
                self._enqueue(fresh)
                return
            try:
                self._token.run_sync_soon(self._enqueue, fresh)
            except trio.RunFinishedError:
                pass

    def _enqueue(self, records: list[Record]) -> None:
        if not self.host.topic_peers(self.topic):
            # Nobody would receive them: skip signing (and libp2p's check of our own
            # signature on) messages for no one. Sync gives peers that come later
            # everything they lack, gossip or not.
            self.stats.gossip_unsent += len(records)
            return
        for r in records:
            try:
                self._outbox_send.send_nowait(r)
            except trio.WouldBlock:  # sync will carry it
                self.stats.gossip_dropped += 1

    async def _gossip_out(self) -> None:
        while True:
            first = await self._outbox.receive()
            batch = [first.wire]
            with trio.move_on_after(GOSSIP_LINGER_S):
                while len(batch) < GOSSIP_BATCH:
                    batch.append((await self._outbox.receive()).wire)
            while len(batch) < GOSSIP_BATCH:
                try:
                    batch.append(self._outbox.receive_nowait().wire)
                except trio.WouldBlock:
                    break
            for message in _messages(batch):
                try:
                    await self.host.publish(self.topic, message)
                    self.stats.gossip_out += 1
                    self.stats.gossip_bytes_out += len(message)
                except (NetworkError, Error) as exc:
                    self.stats.gossip_dropped += 1
                    log.debug("gossip publish failed error=%s", exc)

    def _bucket(self, table: dict[bytes, Bucket], peer: bytes, rate: int) -> Bucket:
        b = table.get(peer)
        if b is None:
            if len(table) > 4096:  # forget idle peers rather than grow without bound
                table.clear()
            b = table[peer] = Bucket(rate, rate)
        return b

    def _validate(self, author: bytes, data: bytes) -> bool:
        """Permanently invalid gossip is rejected (and costs its sender points)."""
        if author == self.host.public_key:
            # Our own publish (libp2p validates those too): made from our stored records.
            # Strict signing means no one else can publish under our key.
            return True
        if self.is_banned(author):
            return False
        if self._bucket(self._gossip_buckets, author,
                        self.config.gossip_messages_per_s).take(1) > 0:
            self.stats.gossip_throttled += 1
            self.penalise(author, 1, "gossip over its message rate")
            return False
        try:
            wires = codec.decode(data)
            if not isinstance(wires, list) or not all(isinstance(w, bytes) for w in wires):
                raise ProtocolError("a records message is a list of record wires")
            records = [Record.from_bytes(w, verify=False) for w in wires]
            if any(r.network != self.ledger.network for r in records):
                raise ProtocolError("record of another network")
            authenticate(records)
        except Error as exc:
            self.stats.gossip_rejected += 1
            self.penalise(author, 20, f"gossip: {exc}")
            return False
        self._decoded[data] = records
        while len(self._decoded) > 1024:
            self._decoded.popitem(last=False)
        return True

    async def _gossip_in(self, channel: Any) -> None:
        async for first in channel:
            # Whatever else has arrived meanwhile goes into the same write (one synced batch).
            messages = [first]
            while len(messages) < GOSSIP_INGEST_MESSAGES:
                try:
                    messages.append(channel.receive_nowait())
                except trio.WouldBlock:
                    break
            records: list[Record] = []
            signers: list[bytes] = []  # per record, who signed the message that carried it
            for msg in messages:
                self.stats.gossip_in += 1
                self.stats.gossip_bytes_in += len(msg.data)
                decoded = self._decoded.pop(msg.data, None)
                if decoded is None:
                    try:
                        decoded = [Record.from_bytes(w, verify=False)
                                   for w in codec.decode(msg.data)]
                        authenticate(decoded)
                    except Error:
                        continue
                records += decoded
                signers += [msg.author] * len(decoded)
            if not records:
                continue
            self.stats.gossip_records_in += len(records)
            outcomes = await self._ingest(records)
            for signer in dict.fromkeys(signers):
                mine = [i for i, s in enumerate(signers) if s == signer]
                self._charge(signer, [records[i] for i in mine], [outcomes[i] for i in mine],
                             via="gossip", relay=False)
            if any(o.status == "pending" for o in outcomes):
                self.request_sync()


def _addr_key(addr: str) -> bytes | None:
    """The public key a `/p2p/` multiaddr names, or None."""
    if "/p2p/" not in addr:
        return None
    try:
        return public_key_of(addr.rsplit("/p2p/", 1)[1])
    except NetworkError:
        return None


def authenticate(records: list[Record]) -> None:
    """Check the signatures of gossiped records as sync does: one per contiguous run.

    Our own records go out in seq order, so a gossip message holds runs of one
    feed. Each maximal run (same author, each seq one more and each prev naming
    the record before) is authenticated by `feed.verify_range` anchored at its
    first record's own prev: the author's signature on the run's last record
    commits to every earlier one through the ids. A record in no longer run is
    a run of one, checked by its own signature. Whether the first record links
    to the feed we hold is the ledger's placement check, as for any record.
    Raises `VerificationError` or `FeedError`.
    """
    i = 0
    while i < len(records):
        j = i + 1
        while j < len(records) and records[j].author == records[i].author \
                and records[j].seq == records[j - 1].seq + 1 and records[j].prev == records[j - 1].id:
            j += 1
        first = records[i]
        verify_range(records[i:j], None if first.prev is None else Head(first.seq - 1, first.prev))
        i = j


def count_frames(data: bytes) -> int:
    """Frames in `data`, a run of whole length-prefixed sync frames (what a `Send` holds)."""
    n = i = 0
    while i + 4 <= len(data):
        i += 4 + int.from_bytes(data[i:i + 4], "big")
        n += 1
    return n


class FrameCounter:
    """Counts sync frames completed in a byte stream by their length prefixes only
    (the sync machine decodes them; this is for the metrics)."""

    def __init__(self) -> None:
        self._header = b""
        self._skip = 0  # payload bytes of the current frame still to come

    def feed(self, data: bytes) -> int:
        done, i = 0, 0
        while i < len(data):
            if self._skip:
                take = min(self._skip, len(data) - i)
                self._skip -= take
                i += take
                done += self._skip == 0
                continue
            take = min(4 - len(self._header), len(data) - i)
            self._header += data[i:i + take]
            i += take
            if len(self._header) == 4:
                self._skip = int.from_bytes(self._header, "big")
                self._header = b""
                done += self._skip == 0
        return done


def _messages(wires: list[bytes]) -> list[bytes]:
    """Pack record wires into as few gossip messages as fit the document limit."""
    out: list[bytes] = []
    batch: list[bytes] = []
    size = 8
    for w in wires:
        if batch and size + len(w) + 5 > codec.MAX_DOCUMENT:
            out.append(codec.encode(batch))
            batch, size = [], 8
        batch.append(w)
        size += len(w) + 5
    if batch:
        out.append(codec.encode(batch))
    return out
