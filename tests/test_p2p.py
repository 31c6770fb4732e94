"""node.p2p against real py-libp2p hosts on 127.0.0.1, port 0.

Policy (as in trio-websocket): loopback only, port 0, an absolute
`trio.fail_after` on every networked test, no sleeps except the short polls
where libp2p offers nothing to wait on. The plaintext test builds a raw
py-libp2p host on purpose: it is the attacker our Noise-only setting refuses.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
import trio
from libp2p.peer.envelope import consume_envelope
from libp2p.peer.peer_record import PEER_RECORD_ENVELOPE_DOMAIN

from crypto.keys import SigningKey
from node import p2p
from node.errors import NetworkError, StreamClosed
from node.p2p import (
    GossipMessage,
    Host,
    PeerEventKind,
    Stream,
    outbound_rpc_drops,
    peer_id_of,
    public_key_of,
)

TIMEOUT = 15  # seconds, per networked test
ECHO = "/sealchain/test/echo/1"


def make(**options: object) -> Host:
    return Host(SigningKey.generate(), **options)  # type: ignore[arg-type]


@asynccontextmanager
async def running(*hosts: Host) -> AsyncIterator[trio.Nursery]:
    async with trio.open_nursery() as nursery:
        for host in hosts:
            await nursery.start(host.run)
        yield nursery
        nursery.cancel_scope.cancel()


async def echo(stream: Stream) -> None:
    while data := await stream.read(65536):
        await stream.write(data)


# --- identities (no network) ------------------------------------------------


def test_peer_id_embeds_the_public_key() -> None:
    key = SigningKey(bytes(range(32)))
    peer_id = peer_id_of(key.public.raw)
    assert peer_id.startswith("12D3KooW")  # identity multihash of an Ed25519 key
    assert public_key_of(peer_id) == key.public.raw
    host = Host(key)
    assert host.peer_id == peer_id
    assert host.public_key == key.public.raw


@pytest.mark.parametrize(
    "peer_id",
    [
        "QmNnooDu7bfjPFoTZYxMNLWUQJyrVwtbZg5gBMjTezGAJN",  # RSA: sha256, no key inside
        "not a peer id",
        "",
    ],
)
def test_public_key_of_rejects_non_ed25519_ids(peer_id: str) -> None:
    with pytest.raises(NetworkError):
        public_key_of(peer_id)


def test_peer_id_of_rejects_bad_keys() -> None:
    with pytest.raises(NetworkError):
        peer_id_of(b"\x01" * 31)


@pytest.mark.parametrize(
    "addr", ["/ip4/127.0.0.1/udp/0/quic-v1", "/ip4/127.0.0.1/tcp/0/ws", "junk"]
)
def test_only_tcp_listen_addrs(addr: str) -> None:
    with pytest.raises(NetworkError):
        make(listen=[addr])


# --- connections ------------------------------------------------------------


async def test_two_hosts_connect_with_authenticated_ids() -> None:
    a, b = make(), make()
    with trio.fail_after(TIMEOUT):
        async with running(a, b):
            assert b.listen_addrs
            assert all(x.endswith(f"/p2p/{b.peer_id}") for x in b.listen_addrs)
            assert await a.connect(b.listen_addrs[0]) == b.public_key
            seen_by_a = await a.peer_events.receive()
            seen_by_b = await b.peer_events.receive()
            assert (seen_by_a.kind, seen_by_a.public_key) == (PeerEventKind.CONNECTED, b.public_key)
            assert seen_by_a.peer_id == b.peer_id
            # b learnt a's key from the Noise handshake alone: a never told it otherwise.
            assert (seen_by_b.kind, seen_by_b.public_key) == (PeerEventKind.CONNECTED, a.public_key)
            assert a.connected_peers() == [b.public_key]
            assert b.connected_peers() == [a.public_key]
            assert a.is_connected(b.peer_id)
            assert b.is_connected(a.public_key)


async def test_disconnect_is_reported_on_both_sides() -> None:
    a, b = make(), make()
    with trio.fail_after(TIMEOUT):
        async with running(a, b):
            await a.connect(b.listen_addrs[0])
            await a.peer_events.receive()
            await b.peer_events.receive()
            await a.disconnect(b.public_key)
            for host, other in ((a, b), (b, a)):
                event = await host.peer_events.receive()
                assert (event.kind, event.public_key) == (
                    PeerEventKind.DISCONNECTED,
                    other.public_key,
                )
            assert a.connected_peers() == []
            assert b.connected_peers() == []


async def test_connect_rejects_bad_addresses() -> None:
    a = make()
    with trio.fail_after(TIMEOUT):
        async with running(a):
            with pytest.raises(NetworkError):
                await a.connect("/ip4/127.0.0.1/tcp/1")  # no /p2p/: identity unknown
            with pytest.raises(NetworkError):
                await a.connect(a.listen_addrs[0])  # ourselves


async def test_private_network_key_is_passed_through() -> None:
    psk = bytes(range(32))
    a, b = make(psk=psk), make(psk=psk)
    with trio.fail_after(TIMEOUT):
        async with running(a, b):
            assert await a.connect(b.listen_addrs[0]) == b.public_key
    with pytest.raises(NetworkError):
        make(psk=b"short")


async def test_plaintext_dialer_is_refused() -> None:
    """A peer offering only /plaintext/2.0.0 could claim any peer id: it must not get in."""
    import libp2p
    import multiaddr
    from libp2p.crypto.ed25519 import create_new_key_pair
    from libp2p.custom_types import TProtocol
    from libp2p.network.exceptions import SwarmException
    from libp2p.peer.peerinfo import info_from_p2p_addr
    from libp2p.security.insecure.transport import PLAINTEXT_PROTOCOL_ID, InsecureTransport
    from libp2p.transport.tcp.tcp import TCP

    ours = make()
    key_pair = create_new_key_pair()
    attacker = libp2p.new_host(
        key_pair=key_pair,
        sec_opt={TProtocol(PLAINTEXT_PROTOCOL_ID): InsecureTransport(key_pair)},
        transports=[TCP()],
    )
    with trio.fail_after(TIMEOUT):
        async with running(ours):
            async with attacker.run(listen_addrs=[multiaddr.Multiaddr("/ip4/127.0.0.1/tcp/0")]):
                with pytest.raises(SwarmException):
                    await attacker.connect(
                        info_from_p2p_addr(multiaddr.Multiaddr(ours.listen_addrs[0]))
                    )
                assert attacker.get_connected_peers() == []
                with pytest.raises(NetworkError):  # nor do we speak plaintext when dialing
                    await ours.connect(str(attacker.get_addrs()[0]))
                assert ours.connected_peers() == []
                assert ours.stats.peer_events_dropped == 0
                with pytest.raises(trio.WouldBlock):
                    ours.peer_events.receive_nowait()


async def test_peer_with_a_non_ed25519_identity_is_dropped() -> None:
    """Noise authenticates any key type; only Ed25519 participants may stay."""
    import libp2p
    import multiaddr
    from libp2p.crypto.secp256k1 import create_new_key_pair
    from libp2p.crypto.x25519 import create_new_key_pair as new_noise_key
    from libp2p.peer.peerinfo import info_from_p2p_addr
    from libp2p.security.noise.transport import PROTOCOL_ID, Transport
    from libp2p.transport.tcp.tcp import TCP

    ours = make()
    key_pair = create_new_key_pair()
    stranger = libp2p.new_host(
        key_pair=key_pair,
        sec_opt={PROTOCOL_ID: Transport(key_pair, noise_privkey=new_noise_key().private_key)},
        transports=[TCP()],
    )
    with trio.fail_after(TIMEOUT):
        async with running(ours):
            async with stranger.run(listen_addrs=[multiaddr.Multiaddr("/ip4/127.0.0.1/tcp/0")]):
                await stranger.connect(
                    info_from_p2p_addr(multiaddr.Multiaddr(ours.listen_addrs[0]))
                )
                while stranger.get_connected_peers():  # noqa: ASYNC110 (no event to wait on)
                    await trio.sleep(0.01)
                assert ours.connected_peers() == []
                with pytest.raises(trio.WouldBlock):
                    ours.peer_events.receive_nowait()


# --- streams ----------------------------------------------------------------


async def test_stream_echo_round_trip_of_a_megabyte() -> None:
    a, b = make(), make()
    handler_saw: list[bytes] = []

    async def recording_echo(stream: Stream) -> None:
        handler_saw.append(stream.remote_public_key)
        await echo(stream)

    b.set_stream_handler(ECHO, recording_echo)
    payload = bytes(range(256)) * 4096  # 1 MiB
    received = bytearray()
    with trio.fail_after(TIMEOUT):
        async with running(a, b):
            await a.connect(b.listen_addrs[0])
            stream = await a.open_stream(b.public_key, ECHO)
            assert stream.remote_public_key == b.public_key
            assert stream.remote_peer_id == b.peer_id

            async def read_all() -> None:
                while data := await stream.read(65536):
                    received.extend(data)

            async with trio.open_nursery() as nursery:
                nursery.start_soon(read_all)
                for offset in range(0, len(payload), 60_000):
                    await stream.write(payload[offset : offset + 60_000])
                await stream.close_write()
            await stream.close()
    assert bytes(received) == payload
    assert handler_saw == [a.public_key]  # the dialer's key, from Noise


async def test_open_stream_by_peer_id_dials_known_peer() -> None:
    a, b = make(), make()
    b.set_stream_handler(ECHO, echo)
    with trio.fail_after(TIMEOUT):
        async with running(a, b):
            await a.connect(b.listen_addrs[0])
            async with await a.open_stream(b.peer_id, ECHO) as stream:
                await stream.write(b"ping")
                assert await stream.read(4) == b"ping"


async def test_failing_handler_resets_the_stream() -> None:
    a, b = make(), make()

    async def broken(stream: Stream) -> None:
        await stream.read(1)
        raise RuntimeError("handler bug")

    b.set_stream_handler(ECHO, broken)
    with trio.fail_after(TIMEOUT):
        async with running(a, b):
            await a.connect(b.listen_addrs[0])
            stream = await a.open_stream(b.public_key, ECHO)
            await stream.write(b"x")
            with pytest.raises(StreamClosed):
                await stream.read(10)
            assert a.connected_peers() == [b.public_key]  # the connection survives


async def test_unsupported_protocol_is_a_network_error() -> None:
    a, b = make(), make()
    with trio.fail_after(TIMEOUT):
        async with running(a, b):
            await a.connect(b.listen_addrs[0])
            with pytest.raises(NetworkError):
                await a.open_stream(b.public_key, "/sealchain/test/nobody-speaks-this/1")


# --- gossip -----------------------------------------------------------------


@asynccontextmanager
async def gossiping(
    topic: str,
) -> AsyncIterator[tuple[Host, Host, trio.MemoryReceiveChannel[GossipMessage]]]:
    a, b = make(gossip=True), make(gossip=True)
    async with running(a, b):
        await a.connect(b.listen_addrs[0])
        inbox = await b.subscribe(topic)
        await a.wait_for_subscriber(b.public_key, topic)
        yield a, b, inbox


async def test_gossip_reaches_the_subscriber() -> None:
    with trio.fail_after(TIMEOUT):
        async with gossiping("records") as (a, b, inbox):
            assert a.topic_peers("records") == [b.public_key]
            await a.publish("records", b"hello")
            message = await inbox.receive()
    assert message.data == b"hello"
    assert message.topic == "records"
    assert message.author == a.public_key


async def test_validator_rejection_prevents_delivery() -> None:
    checked: list[tuple[bytes, bytes]] = []

    def only_good(author: bytes, data: bytes) -> bool:
        checked.append((author, data))
        return data != b"bad"

    with trio.fail_after(TIMEOUT):
        async with gossiping("records") as (a, b, inbox):
            b.set_validator("records", only_good)
            await a.publish("records", b"bad")
            await a.publish("records", b"good")
            first = await inbox.receive()
    assert first.data == b"good"  # b"bad" went out first, in order, and was dropped
    assert (a.public_key, b"bad") in checked


async def test_gossip_burst_is_delivered_whole() -> None:
    """Library defaults deliver a few percent of a burst; ours must deliver all of it."""
    count = 300
    drops_before = outbound_rpc_drops()
    with trio.fail_after(TIMEOUT):
        async with gossiping("burst") as (a, b, inbox):
            for i in range(count):
                await a.publish("burst", i.to_bytes(4, "big") * 75)
            got = [int.from_bytes((await inbox.receive()).data[:4], "big") for _ in range(count)]
    assert sorted(got) == list(range(count))
    assert b.stats.subscription_dropped == 0
    assert outbound_rpc_drops() == drops_before


async def test_unsubscribe_ends_the_channel_and_frees_the_topic() -> None:
    with trio.fail_after(TIMEOUT):
        async with gossiping("records") as (a, b, inbox):
            with pytest.raises(NetworkError):
                await b.subscribe("records")  # one subscriber per topic
            await b.unsubscribe("records")
            with pytest.raises(trio.EndOfChannel):
                await inbox.receive()
            again = await b.subscribe("records")
            await a.publish("records", b"after")
            assert (await again.receive()).data == b"after"


def test_outbound_queue_drops_are_counted() -> None:
    from libp2p.peer.id import ID
    from libp2p.pubsub.pb import rpc_pb2
    from libp2p.pubsub.rpc_queue import drop_rpc

    before = outbound_rpc_drops()
    drop_rpc(ID(b"\x00\x01x"), rpc_pb2.RPC())
    assert outbound_rpc_drops() == before + 1


async def test_gossip_needs_gossip_enabled() -> None:
    a = make()
    with trio.fail_after(TIMEOUT):
        async with running(a):
            with pytest.raises(NetworkError):
                await a.publish("records", b"x")


# --- lifecycle --------------------------------------------------------------


async def test_cancellation_shuts_down_cleanly_and_peers_notice() -> None:
    a, b = make(gossip=True), make(gossip=True)
    with trio.fail_after(TIMEOUT):
        async with running(b):
            async with trio.open_nursery() as nursery:
                await nursery.start(a.run)
                await a.connect(b.listen_addrs[0])
                await b.peer_events.receive()
                started = trio.current_time()
                nursery.cancel_scope.cancel()
            assert trio.current_time() - started < 3
            event = await b.peer_events.receive()
            assert (event.kind, event.public_key) == (PeerEventKind.DISCONNECTED, a.public_key)
            assert b.connected_peers() == []
            # a's own event channel reports the close, then ends.
            kinds = [event.kind async for event in a.peer_events]
            assert kinds == [PeerEventKind.CONNECTED, PeerEventKind.DISCONNECTED]
        with pytest.raises(NetworkError):
            await a.run()


def test_only_a_message_arriving_while_libp2p_stops_is_part_of_stopping() -> None:
    """py-libp2p's pubsub starts a task per message; one read while its service stops
    meets a closed nursery. `Host` lets exactly that pass while stopping, nothing else."""
    from node.p2p import _late_arrivals_only

    late = RuntimeError("Nursery is closed to new arrivals")
    assert _late_arrivals_only(BaseExceptionGroup("g", [late]))
    assert _late_arrivals_only(BaseExceptionGroup("g", [BaseExceptionGroup("h", [late]), late]))
    assert not _late_arrivals_only(BaseExceptionGroup("g", [late, RuntimeError("boom")]))
    assert not _late_arrivals_only(
        BaseExceptionGroup("g", [BaseExceptionGroup("h", [RuntimeError("boom")])]))


async def test_gossip_checks_the_sender_record_once_a_second() -> None:
    """py-libp2p attaches our signed peer record to every gossip RPC and first checks it
    against our addresses, which it builds anew each time (`get_addrs`, ~50 µs); the
    adapter keeps the answer for `SENDER_RECORD_TTL_S` (`p2p._sender_record`)."""
    count = 300
    calls = 0
    with trio.fail_after(TIMEOUT):
        async with gossiping("burst") as (a, _b, inbox):
            lib_host = a._host
            original = lib_host.get_addrs

            def counting() -> list[object]:
                nonlocal calls
                calls += 1
                return original()

            lib_host.get_addrs = counting  # type: ignore[method-assign]
            start = trio.current_time()
            for i in range(count):
                await a.publish("burst", i.to_bytes(4, "big"))
            got = [await inbox.receive() for _ in range(count)]
            elapsed = trio.current_time() - start
            envelope, _ = p2p._sender_record(lib_host)
    assert len(got) == count
    assert calls <= 1 + elapsed / p2p.SENDER_RECORD_TTL_S + 1
    record = consume_envelope(envelope, PEER_RECORD_ENVELOPE_DOMAIN)[1]
    assert record.peer_id == lib_host.get_id()


def test_sender_records_need_the_library_they_were_built_for(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import libp2p.pubsub.gossipsub as gossipsub

    monkeypatch.delattr(gossipsub, "env_to_send_in_RPC")
    with pytest.raises(NetworkError, match="env_to_send_in_RPC"):
        p2p._keep_sender_records()
