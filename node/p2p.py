# ruff: noqa: E402  (PY_YAMUX_RELEASE_ON_READ must be set before libp2p is imported)
"""The one adapter around py-libp2p: host, streams and gossip.

Nothing else in sealchain imports libp2p. Peers are named by their 32-byte
Ed25519 public key (the same key that signs their records) or by its libp2p
peer-id string; multiaddrs are strings; stream and gossip payloads are bytes.

Theory of operation. A `Host` is built from our `SigningKey`: the seed becomes
the libp2p identity, so our peer id embeds our public key and a connection's
remote peer id, authenticated by the Noise handshake, *is* the remote
participant. Only Noise is offered (the library default also offers plaintext,
where a dialer may claim any peer id) and only yamux. `run()` is a trio service:
it listens, starts gossipsub if asked, reports `task_status.started()`, and on
cancellation closes every connection within a short, shielded grace period.

Gossip is best effort (DESIGN invariant 3); this module only keeps libp2p from
dropping more than it must: spam limits off, publishers wait while a peer's
outbound queue is long, every subscription drained at once into a bounded
channel, and every drop counted. Measured library behaviour: /work/shared/LIBP2P.md.
"""

from __future__ import annotations

import os

# Must precede the libp2p import. Yamux sends a window update on every read by
# default; batching them measured +25% throughput (LIBP2P.md). Read at call time,
# so an operator can still override it in the environment.
os.environ.setdefault("PY_YAMUX_RELEASE_ON_READ", "0")

import logging
import math
import time
import weakref
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AsyncExitStack
from pathlib import Path

import libp2p
import libp2p.pubsub.gossipsub as _gossipsub_module
import libp2p.pubsub.pubsub as _pubsub_module
import multiaddr
import trio
from libp2p.abc import IHost, INetConn, INetStream, INetwork, INotifee, ISubscriptionAPI
from libp2p.crypto.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from libp2p.crypto.keys import KeyPair, KeyType
from libp2p.crypto.x25519 import create_new_key_pair as new_x25519_key_pair
from libp2p.custom_types import TProtocol
from libp2p.exceptions import BaseLibp2pError
from libp2p.network.stream.exceptions import StreamClosed as _Lp2pStreamClosed
from libp2p.network.stream.exceptions import StreamEOF, StreamReset
from libp2p.peer.id import ID
from libp2p.peer.peerinfo import info_from_p2p_addr
from libp2p.peer.peerstore import env_to_send_in_RPC
from libp2p.pubsub.gossipsub import GossipSub
from libp2p.pubsub.pb import rpc_pb2
from libp2p.pubsub.pubsub import Pubsub
from libp2p.security.noise.transport import PROTOCOL_ID as NOISE_PROTOCOL_ID
from libp2p.security.noise.transport import Transport as NoiseTransport
from libp2p.stream_muxer.yamux.yamux import PROTOCOL_ID as YAMUX_PROTOCOL_ID
from libp2p.stream_muxer.yamux.yamux import Yamux
from libp2p.tools.anyio_service import background_trio_service
from libp2p.transport.tcp.tcp import TCP

from crypto.keys import PUBLIC_KEY_SIZE, SigningKey
from node.errors import NetworkError, StreamClosed
from node.p2p_types import GossipMessage, NetStats, PeerEvent, PeerEventKind

__all__ = [
    "GOSSIP_PROTOCOL",
    "GossipMessage",
    "Host",
    "NetStats",
    "PeerEvent",
    "PeerEventKind",
    "Stream",
    "outbound_rpc_drops",
    "peer_id_of",
    "public_key_of",
]

logger = logging.getLogger(__name__)

GOSSIP_PROTOCOL = "/meshsub/1.1.0"  # 1.2.0 adds one IDONTWANT per message and halves throughput
SHUTDOWN_GRACE = 3.0  # seconds an orderly shutdown may take before it is abandoned
_RESET_TIMEOUT = 1.0  # a reset is one frame; a stuck connection must not hold it longer
_QUEUE_POLL = 0.005  # libp2p's RpcQueue signals pushes, never pops: waiting means polling
_DELIVERIES_CLEAR_INTERVAL = 30.0  # see Host._housekeeping

# Exceptions py-libp2p lets out of its I/O paths; mapped to NetworkError here.
_FOREIGN = (BaseLibp2pError, OSError, EOFError, trio.BrokenResourceError, trio.ClosedResourceError)

Peer = bytes | str
"""A peer: its 32-byte Ed25519 public key or its peer-id string."""


# --- logging ----------------------------------------------------------------

_LIBP2P_DIR = str(Path(libp2p.__file__).resolve().parent)
_rpc_drops = 0


SENDER_RECORD_TTL_S = 1.0  # see `_sender_record`
_sender_records: weakref.WeakKeyDictionary[IHost, tuple[float, bytes]] = \
    weakref.WeakKeyDictionary()


def _sender_record(host: IHost) -> tuple[bytes, bool]:
    """`env_to_send_in_RPC`, kept per host for `SENDER_RECORD_TTL_S`.

    py-libp2p attaches our signed peer record to every gossip RPC it sends, and each
    time first checks that its cached record still lists our addresses, which it
    builds and parses as multiaddrs: 50 µs per message here, about a tenth of a
    relaying node's CPU per record (bench/replicate.py, py-spy). A running node's
    addresses do not change from one message to the next; a change still shows
    within the TTL."""
    now = time.monotonic()
    kept = _sender_records.get(host)
    if kept is not None and now - kept[0] < SENDER_RECORD_TTL_S:
        return kept[1], False
    envelope, fresh = env_to_send_in_RPC(host)
    _sender_records[host] = (now, envelope)
    return envelope, fresh


def _keep_sender_records() -> None:
    """Route pubsub's and gossipsub's calls of `env_to_send_in_RPC` (each module imported
    the function by name) through `_sender_record`; refuse to run on a py-libp2p that no
    longer calls it from there (the saving would go unnoticed)."""
    for module in (_pubsub_module, _gossipsub_module):
        current = getattr(module, "env_to_send_in_RPC", None)
        if current is None:
            raise NetworkError(f"{module.__name__} no longer has env_to_send_in_RPC:"
                               " this py-libp2p is not the one sealchain was built for")
        module.env_to_send_in_RPC = _sender_record  # type: ignore[attr-defined]


def _late_arrivals_only(group: BaseExceptionGroup[RuntimeError]) -> bool:
    """Whether every error of `group` is trio refusing a task to a closed nursery."""
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            if not _late_arrivals_only(exc):
                return False
        elif "closed to new arrivals" not in str(exc):
            return False
    return True

class _Libp2pRootNoise(logging.Filter):
    """Drop sub-ERROR records some libp2p modules log straight on the root logger."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.ERROR or not record.pathname.startswith(_LIBP2P_DIR)


class _RpcDropCounter(logging.Handler):
    """Counts `pubsub.rpc_queue.drop_rpc` calls: libp2p's only trace of a full queue."""

    def emit(self, record: logging.LogRecord) -> None:
        global _rpc_drops
        _rpc_drops += 1


def outbound_rpc_drops() -> int:
    """Gossip RPCs libp2p dropped on full per-peer queues, process-wide."""
    return _rpc_drops


def _tame_libp2p_logging() -> None:
    # `import libp2p` sets its logger to WARNING without handlers and without
    # propagation, so every warning lands on stderr via logging.lastResort.
    # Unless LIBP2P_DEBUG asks for libp2p's own setup, keep errors only and let
    # them reach the handlers the daemon configures.
    if not os.environ.get("LIBP2P_DEBUG"):
        root = logging.getLogger("libp2p")
        root.setLevel(logging.ERROR)
        root.propagate = True
        for name, child in logging.root.manager.loggerDict.items():
            # Some modules pin their own level (auto_connector: INFO) at import.
            if name.startswith("libp2p.") and isinstance(child, logging.Logger):
                child.setLevel(logging.NOTSET)
        logging.getLogger().addFilter(_Libp2pRootNoise())
    drops = logging.getLogger("libp2p.pubsub.rpc_queue")
    drops.setLevel(logging.DEBUG)
    drops.propagate = False  # its only record is the drop notice, counted here
    drops.handlers[:] = [_RpcDropCounter()]


_tame_libp2p_logging()


# --- identities -------------------------------------------------------------


def _key_of(peer_id: ID) -> bytes | None:
    """The Ed25519 public key a peer id embeds, or None for any other key type."""
    key = peer_id.extract_public_key()
    if key is None or key.get_type() != KeyType.Ed25519:
        return None
    return key.to_bytes()


def _id_of(public_key: bytes) -> ID:
    if type(public_key) is not bytes or len(public_key) != PUBLIC_KEY_SIZE:
        raise NetworkError("an Ed25519 public key is 32 bytes")
    try:
        return ID.from_pubkey(Ed25519PublicKey.from_bytes(public_key))
    except ValueError as exc:
        raise NetworkError("not an Ed25519 public key") from exc


def _parse_peer_id(peer_id: str) -> ID:
    try:
        parsed = ID.from_base58(peer_id)
    except ValueError as exc:
        raise NetworkError(f"malformed peer id {peer_id!r}") from exc
    if _key_of(parsed) is None:
        raise NetworkError(f"peer id {peer_id!r} is not an Ed25519 identity")
    return parsed


def peer_id_of(public_key: bytes) -> str:
    """The libp2p peer id (base58, `12D3KooW…`) of an Ed25519 public key."""
    return _id_of(public_key).to_base58()


def public_key_of(peer_id: str) -> bytes:
    """The Ed25519 public key embedded in a peer id; `NetworkError` for any other."""
    key = _key_of(_parse_peer_id(peer_id))
    assert key is not None  # _parse_peer_id checked it
    return key


def _to_id(peer: Peer) -> ID:
    return _parse_peer_id(peer) if isinstance(peer, str) else _id_of(peer)


def _check_listen_addr(addr: str) -> multiaddr.Multiaddr:
    try:
        parsed = multiaddr.Multiaddr(addr)
    except ValueError as exc:
        raise NetworkError(f"malformed listen multiaddr {addr!r}") from exc
    if [p.name for p in parsed.protocols()] not in (["ip4", "tcp"], ["ip6", "tcp"]):
        raise NetworkError(f"listen on /ip4|ip6/…/tcp/<port> only, not {addr!r}")
    return parsed


# --- streams ----------------------------------------------------------------


class Stream:
    """One libp2p stream to an authenticated peer.

    `remote_public_key` comes from the Noise handshake of the connection the
    stream runs on, so it is the peer's proven identity. Every libp2p failure
    surfaces as `StreamClosed` (reset or closed by the other side) or
    `NetworkError`. A yamux writer facing a zero window for 5 s fails: a
    receiver must keep reading (flow control belongs in our protocols).
    """

    __slots__ = ("_stream", "protocol_id", "remote_peer_id", "remote_public_key")

    def __init__(self, stream: INetStream, remote_public_key: bytes, protocol_id: str) -> None:
        self._stream = stream
        self.remote_public_key = remote_public_key
        self.remote_peer_id = stream.muxed_conn.peer_id.to_base58()
        self.protocol_id = protocol_id

    async def read(self, max_bytes: int = 65536) -> bytes:
        """Up to `max_bytes` of what has arrived; b"" once the peer closed its side."""
        if max_bytes < 1:
            raise ValueError("max_bytes must be positive")
        try:
            return await self._stream.read(max_bytes)
        except StreamEOF as exc:
            # py-libp2p reports a remote RST as EOF; yamux still flags it.
            if getattr(self._stream.muxed_stream, "reset_received", False):
                raise StreamClosed(f"{self.protocol_id} stream reset by peer") from exc
            return b""
        except (StreamReset, _Lp2pStreamClosed) as exc:
            raise StreamClosed(f"{self.protocol_id} stream reset by peer") from exc
        except _FOREIGN as exc:
            raise NetworkError(f"{self.protocol_id} stream read failed") from exc

    async def write(self, data: bytes) -> None:
        """Send all of `data` (one write per call is the cost unit: batch small frames)."""
        if not data:
            return
        try:
            await self._stream.write(data)
        except (StreamReset, _Lp2pStreamClosed) as exc:
            raise StreamClosed(f"{self.protocol_id} stream closed or reset") from exc
        except _FOREIGN as exc:
            raise NetworkError(f"{self.protocol_id} stream write failed") from exc

    async def close_write(self) -> None:
        """Half-close: the peer reads EOF; we may still read its reply."""
        try:
            await self._stream.close_write()
        except _FOREIGN as exc:
            raise NetworkError(f"{self.protocol_id} stream close failed") from exc

    async def close(self) -> None:
        """Finish with the stream: the peer reads EOF. Idempotent."""
        try:
            await self._stream.close()
        except _FOREIGN as exc:
            raise NetworkError(f"{self.protocol_id} stream close failed") from exc

    async def reset(self) -> None:
        """Abort both directions at once. Never raises; works while being cancelled."""
        with trio.move_on_after(_RESET_TIMEOUT) as scope:
            scope.shield = True
            await self._stream.reset()

    async def __aenter__(self) -> Stream:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        if exc_type is None:
            await self.close()
        else:
            await self.reset()


StreamHandler = Callable[[Stream], Awaitable[None]]
Validator = Callable[[bytes, bytes], bool]


# --- connection events ------------------------------------------------------


class _Notifee(INotifee):
    """Forwards swarm connection events to the Host (called inside libp2p tasks)."""

    def __init__(self, host: Host) -> None:
        self._host = host

    async def connected(self, network: INetwork, conn: INetConn) -> None:
        self._host._on_connected(conn)

    async def disconnected(self, network: INetwork, conn: INetConn) -> None:
        self._host._on_disconnected(conn)

    async def opened_stream(self, network: INetwork, stream: INetStream) -> None:
        return None

    async def closed_stream(self, network: INetwork, stream: INetStream) -> None:
        return None

    async def listen(self, network: INetwork, multiaddr: multiaddr.Multiaddr) -> None:
        return None

    async def listen_close(self, network: INetwork, multiaddr: multiaddr.Multiaddr) -> None:
        return None


# --- the host ---------------------------------------------------------------


class Host:
    """Our libp2p node: Noise-only TCP host, streams, optional gossipsub.

    Runs once: `await nursery.start(host.run)`; cancel the nursery to stop.
    `psk` (32 bytes) makes a private network; it is py-libp2p's own format
    (Salsa20, 8-byte nonce), so it only works between py nodes, and a wrong
    key shows up as a dial that hangs until its timeout.
    """

    def __init__(
        self,
        key: SigningKey,
        *,
        listen: Sequence[str] = ("/ip4/127.0.0.1/tcp/0",),
        announce: Sequence[str] | None = None,
        psk: bytes | None = None,
        gossip: bool = False,
        heartbeat_interval: int = 1,
        subscription_buffer: int = 1024,
        peer_event_buffer: int = 256,
        publish_queue_high: int = 16,
        publish_max_wait: float = 5.0,
    ) -> None:
        if psk is not None and len(psk) != 32:
            raise NetworkError("a private-network key is 32 bytes")
        self.public_key = key.public.raw
        self.peer_id = peer_id_of(self.public_key)
        self.listen_addrs: list[str] = []  # with /p2p/<peer id>, once started
        self.stats = NetStats()
        self._listen = [_check_listen_addr(a) for a in listen]
        try:
            announce_addrs = [multiaddr.Multiaddr(a) for a in announce] if announce else None
        except ValueError as exc:
            raise NetworkError(f"malformed announce multiaddr in {announce!r}") from exc
        private = Ed25519PrivateKey.from_bytes(key.seed)
        key_pair = KeyPair(private, private.get_public_key())
        self._id = ID.from_pubkey(key_pair.public_key)
        noise = NoiseTransport(key_pair, noise_privkey=new_x25519_key_pair().private_key)
        self._host = libp2p.new_host(
            key_pair=key_pair,
            # Noise only: the default adds plaintext, where peer ids are unauthenticated.
            sec_opt={NOISE_PROTOCOL_ID: noise},
            # Yamux only: mplex has no flow control, and go/js peers speak yamux.
            muxer_opt={TProtocol(YAMUX_PROTOCOL_ID): Yamux},
            transports=[TCP()],
            psk=psk.hex() if psk is not None else None,
            announce_addrs=announce_addrs,
        )
        self._host.get_network().register_notifee(_Notifee(self))
        self._gossip = gossip
        self._heartbeat_interval = heartbeat_interval
        self._subscription_buffer = subscription_buffer
        self._publish_queue_high = publish_queue_high
        self._publish_max_wait = publish_max_wait
        self._events_send, self.peer_events = trio.open_memory_channel[PeerEvent](peer_event_buffer)
        self._announced: set[ID] = set()
        self._validators: dict[str, Validator] = {}
        self._subscriptions: dict[str, trio.MemorySendChannel[GossipMessage]] = {}
        self._slow: set[ID] = set()
        self._pubsub: Pubsub | None = None
        self._router: GossipSub | None = None
        self._nursery: trio.Nursery | None = None
        self._ran = False
        # `refuse(public_key)` true: that peer's connections are closed at once, its
        # inbound streams reset and gossip it signed or forwarded rejected (bans).
        self.refuse: Callable[[bytes], bool] = lambda key: False

    # --- lifecycle ---

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Listen (and gossip) until cancelled; then close connections gracefully.

        libp2p runs under a shielded scope: a plain cancellation would kill its
        tasks mid-cleanup and leak sockets the peers never see closed. Our
        cancellation instead triggers an orderly close with a hard deadline.
        """
        if self._ran:
            raise NetworkError("a Host runs once")
        self._ran = True
        service = trio.CancelScope(shield=True)
        stopping = trio.Event()
        async with trio.open_nursery() as nursery:
            try:
                await nursery.start(self._serve, service, stopping)
                task_status.started()
                await trio.sleep_forever()
            finally:
                service.deadline = trio.current_time() + SHUTDOWN_GRACE
                stopping.set()

    async def _serve(
        self,
        service: trio.CancelScope,
        stopping: trio.Event,
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        network = self._host.get_network()
        try:
            with service, self._events_send:  # peer_events ends when the host stops
                async with AsyncExitStack() as stack:
                    await stack.enter_async_context(self._host.run(listen_addrs=self._listen))
                    # The auto-connector redials any peer in the peerstore: it would
                    # undo disconnect(), and which peers to keep is the node's call.
                    await network.auto_connector.stop()
                    self._nursery = await stack.enter_async_context(trio.open_nursery())
                    if self._gossip:
                        await self._start_gossip(stack)
                    self.listen_addrs = [str(a) for a in self._host.get_addrs()]
                    task_status.started()
                    await stopping.wait()
                    await self._close_gracefully()
                    self._nursery.cancel_scope.cancel()
        except* RuntimeError as group:
            # py-libp2p's pubsub starts a task per message it reads; a message read while
            # its service is stopping finds the service's nursery closed. Only then, and
            # only that, is part of stopping; anything else is a real failure.
            if not stopping.is_set() or not _late_arrivals_only(group):
                raise
            logger.info("event=p2p.late_message note=a message arrived while libp2p was stopping")
        finally:
            self._nursery = None

    async def _start_gossip(self, stack: AsyncExitStack) -> None:
        _keep_sender_records()
        router = GossipSub(
            protocols=[TProtocol(GOSSIP_PROTOCOL)],
            degree=6,
            degree_low=4,
            degree_high=12,
            # Default 120 s: mesh repair and IHAVE gossip would take minutes.
            heartbeat_interval=self._heartbeat_interval,
            # Default on: 10 msg/s per (peer, topic), our own publishes included,
            # and a rejected message is marked seen so gossip never repairs it.
            # Per-peer limits belong in our validator.
            spam_protection_enabled=False,
            # Default on: stretches the heartbeat to 30-60 s on a small mesh.
            # Off, it never prunes recent_message_deliveries: _housekeeping does.
            adaptive_gossip_enabled=False,
        )
        # Defaults kept on purpose: strict signing and the (from, seqno) message
        # id, which go/js gossipsub expect.
        pubsub = Pubsub(self._host, router)
        stack.callback(pubsub.seen_messages.stop)  # its sweeper thread is never stopped otherwise
        await stack.enter_async_context(background_trio_service(pubsub))
        await stack.enter_async_context(background_trio_service(router))
        await pubsub.wait_until_ready()
        self._pubsub, self._router = pubsub, router
        for topic in self._validators:
            self._install_validator(topic)
        assert self._nursery is not None
        self._nursery.start_soon(self._housekeeping, router)

    async def _close_gracefully(self) -> None:
        for service in (self._router, self._pubsub):
            if service is not None:
                await service.manager.stop()
        network = self._host.get_network()
        # Concurrently: each SwarmConn.close() sleeps 0.1 s, one peer after another.
        async with trio.open_nursery() as nursery:
            for conns in list(network.connections.values()):
                for conn in list(conns):
                    nursery.start_soon(self._close_conn, conn)
        await self._host.close()

    @staticmethod
    async def _close_conn(conn: INetConn) -> None:
        try:
            await conn.close()
        except _FOREIGN:
            logger.debug("closing a connection failed", exc_info=True)

    async def _housekeeping(self, router: GossipSub) -> None:
        while True:
            await trio.sleep(_DELIVERIES_CLEAR_INTERVAL)
            router.recent_message_deliveries.clear()

    # --- connections ---

    async def connect(self, address: str) -> bytes:
        """Dial `/ip4/…/tcp/…/p2p/<peer id>`; returns the peer's public key once connected."""
        try:
            info = info_from_p2p_addr(multiaddr.Multiaddr(address))
        except (ValueError, BaseLibp2pError) as exc:
            raise NetworkError(f"not a dialable /p2p/ multiaddr: {address!r}") from exc
        key = _key_of(info.peer_id)
        if key is None:
            raise NetworkError(f"{address!r} does not name an Ed25519 peer")
        if info.peer_id == self._id:
            raise NetworkError("a host does not dial itself")
        try:
            await self._host.connect(info)
        except _FOREIGN as exc:
            raise NetworkError(f"cannot connect to {address}") from exc
        return key

    async def disconnect(self, peer: Peer) -> None:
        """Close every connection to `peer` (it may dial again: refuse it in handlers)."""
        try:
            await self._host.disconnect(_to_id(peer))
        except _FOREIGN as exc:
            raise NetworkError("disconnect failed") from exc

    def connected_peers(self) -> list[bytes]:
        """Public keys of the peers with an open connection."""
        keys = (_key_of(p) for p in self._host.get_connected_peers())
        return [k for k in keys if k is not None]

    def is_connected(self, peer: Peer) -> bool:
        """Whether `peer` has at least one open connection."""
        return _to_id(peer) in self._host.get_network().connections

    def _emit(self, kind: PeerEventKind, peer_id: ID, key: bytes) -> None:
        event = PeerEvent(kind=kind, public_key=key, peer_id=peer_id.to_base58())
        try:
            self._events_send.send_nowait(event)
        except trio.WouldBlock:
            self.stats.peer_events_dropped += 1

    def _on_connected(self, conn: INetConn) -> None:
        peer_id = conn.muxed_conn.peer_id
        key = _key_of(peer_id)
        if key is None:
            # Noise accepts any key type; our network is Ed25519 participants only.
            logger.info("closing connection from non-Ed25519 peer %s", peer_id)
            if self._nursery is not None:
                self._nursery.start_soon(self._close_conn, conn)
            return
        if self.refuse(key):
            self.stats.refused += 1
            if self._nursery is not None:
                self._nursery.start_soon(self._close_conn, conn)
            return
        if peer_id not in self._announced:
            self._announced.add(peer_id)
            self._emit(PeerEventKind.CONNECTED, peer_id, key)

    def _on_disconnected(self, conn: INetConn) -> None:
        peer_id = conn.muxed_conn.peer_id
        if peer_id in self._announced and not self._host.get_network().connections.get(peer_id):
            self._announced.discard(peer_id)
            key = _key_of(peer_id)
            assert key is not None
            self._emit(PeerEventKind.DISCONNECTED, peer_id, key)

    # --- streams ---

    def set_stream_handler(self, protocol_id: str, handler: StreamHandler) -> None:
        """Serve `protocol_id`: each inbound stream runs `handler(stream)` in its own task.

        The stream is closed when the handler returns and reset if it raises;
        handler errors are logged, never propagated into libp2p.
        """

        async def dispatch(net_stream: INetStream) -> None:
            key = _key_of(net_stream.muxed_conn.peer_id)
            if key is None or self.refuse(key):
                self.stats.refused += key is not None
                await net_stream.reset()
                return
            stream = Stream(net_stream, key, protocol_id)
            try:
                await handler(stream)
            except NetworkError as exc:
                logger.debug("%s handler: peer %s: %s", protocol_id, stream.remote_peer_id, exc)
                await stream.reset()
            except Exception:
                logger.exception(
                    "%s handler failed for peer %s", protocol_id, stream.remote_peer_id
                )
                await stream.reset()
            else:
                try:
                    await stream.close()
                except NetworkError:
                    await stream.reset()

        self._host.set_stream_handler(TProtocol(protocol_id), dispatch)

    async def open_stream(self, peer: Peer, protocol_id: str) -> Stream:
        """A new stream to `peer` speaking `protocol_id` (dials if not connected)."""
        peer_id = _to_id(peer)
        key = _key_of(peer_id)
        assert key is not None
        try:
            net_stream = await self._host.new_stream(peer_id, [TProtocol(protocol_id)])
        except _FOREIGN as exc:
            raise NetworkError(f"cannot open {protocol_id} to {peer_id}") from exc
        return Stream(net_stream, key, protocol_id)

    # --- gossip ---

    def _require_pubsub(self) -> Pubsub:
        if self._pubsub is None:
            raise NetworkError("gossip is off or the host is not running")
        return self._pubsub

    def set_validator(self, topic: str, validator: Validator) -> None:
        """Accept a message on `topic` only if `validator(author_key, data)` is true.

        Synchronous only (async validators crash the service, libp2p #1118).
        Rejections are cached for 300 s by message id, so reject only what is
        permanently invalid, never "predecessor not seen yet". Our own
        publishes are validated too. An exception counts as a rejection.
        """
        self._validators[topic] = validator
        if self._pubsub is not None:
            self._install_validator(topic)

    def _install_validator(self, topic: str) -> None:
        def check(forwarder: ID, msg: rpc_pb2.Message) -> bool:
            author = _key_of(ID(msg.from_id))
            if author is None:
                return False
            relay = _key_of(forwarder)
            if self.refuse(author) or (relay is not None and self.refuse(relay)):
                self.stats.refused += 1
                return False
            try:
                return bool(self._validators[topic](author, msg.data))
            except Exception:
                logger.exception("gossip validator for %s raised", topic)
                return False

        assert self._pubsub is not None
        self._pubsub.set_topic_validator(topic, check, is_async_validator=False)

    async def subscribe(self, topic: str) -> trio.MemoryReceiveChannel[GossipMessage]:
        """Messages from other peers on `topic`; one subscriber per topic.

        Closing the returned channel unsubscribes. When it is full, messages
        are dropped and counted in `stats.subscription_dropped`.
        """
        pubsub = self._require_pubsub()
        if topic in self._subscriptions:
            raise NetworkError(f"already subscribed to {topic!r}")
        send, receive = trio.open_memory_channel[GossipMessage](self._subscription_buffer)
        try:
            subscription = await pubsub.subscribe(topic)
        except _FOREIGN as exc:
            raise NetworkError(f"cannot subscribe to {topic!r}") from exc
        self._subscriptions[topic] = send
        assert self._nursery is not None
        self._nursery.start_soon(self._drain, topic, subscription, send)
        return receive

    async def _drain(
        self,
        topic: str,
        subscription: ISubscriptionAPI,
        send: trio.MemorySendChannel[GossipMessage],
    ) -> None:
        # libp2p's own channel holds 32 messages and then drops: empty it at once.
        own = self._id.to_bytes()
        try:
            async with send:
                async for msg in subscription:
                    if msg.from_id == own:
                        continue  # our publishes are delivered to ourselves too
                    author = _key_of(ID(msg.from_id))
                    if author is None:
                        continue
                    seqno = int.from_bytes(msg.seqno, "big")
                    try:
                        send.send_nowait(
                            GossipMessage(topic=topic, data=msg.data, author=author, seqno=seqno)
                        )
                    except trio.WouldBlock:
                        self.stats.subscription_dropped += 1
                    except trio.BrokenResourceError:  # the subscriber closed its end
                        try:
                            await self.unsubscribe(topic)
                        except NetworkError:
                            logger.debug("unsubscribing from %s failed", topic, exc_info=True)
                        return
        finally:
            if self._subscriptions.get(topic) is send:
                del self._subscriptions[topic]

    async def unsubscribe(self, topic: str) -> None:
        """Leave `topic`; its subscriber channel ends."""
        pubsub = self._require_pubsub()
        self._subscriptions.pop(topic, None)  # free the name now; _drain ends shortly
        try:
            await pubsub.unsubscribe(topic)
        except _FOREIGN as exc:
            raise NetworkError(f"cannot unsubscribe from {topic!r}") from exc

    def topic_peers(self, topic: str) -> list[bytes]:
        """Public keys of the peers we know to be subscribed to `topic`."""
        peers = self._require_pubsub().peer_topics.get(topic, set())
        keys = (_key_of(p) for p in peers)
        return [k for k in keys if k is not None]

    def mesh_peers(self, topic: str) -> list[bytes]:
        """Public keys of the peers in our gossipsub mesh for `topic` (those we forward to)."""
        mesh = getattr(self._require_pubsub().router, "mesh", {}).get(topic, set())
        keys = (_key_of(p) for p in mesh)
        return [k for k in keys if k is not None]

    async def wait_for_subscriber(self, peer: Peer, topic: str) -> None:
        """Return once `peer` has told us it subscribes to `topic` (no timeout of its own)."""
        await self._require_pubsub().wait_for_subscription(_to_id(peer), topic, timeout=math.inf)

    async def publish(self, topic: str, data: bytes) -> None:
        """Sign and gossip `data` on `topic`, waiting first while a peer's queue is long."""
        pubsub = self._require_pubsub()
        await self._wait_for_queues(pubsub)
        try:
            await pubsub.publish(topic, data)
        except _FOREIGN as exc:
            raise NetworkError(f"cannot publish on {topic!r}") from exc

    def _congested(self, pubsub: Pubsub) -> list[ID]:
        congested = []
        for peer_id, queue in list(pubsub.peer_queues.items()):
            if len(queue) < self._publish_queue_high:
                self._slow.discard(peer_id)
            elif peer_id not in self._slow:
                congested.append(peer_id)
        self._slow.intersection_update(pubsub.peer_queues)  # forget departed peers
        return congested

    async def _wait_for_queues(self, pubsub: Pubsub) -> None:
        # Each peer's outbound queue holds 32 RPCs and drops silently beyond that
        # (pubsub/rpc_queue.py, no knob). A peer that stays congested past
        # publish_max_wait is marked slow and not waited for until it drains.
        if not self._congested(pubsub):
            return
        self.stats.publish_waits += 1
        with trio.move_on_after(self._publish_max_wait):
            while self._congested(pubsub):  # noqa: ASYNC110 (no event fires on pop)
                await trio.sleep(_QUEUE_POLL)
            return
        self.stats.publish_wait_timeouts += 1
        self._slow.update(self._congested(pubsub))
