"""A hostile peer is penalised, disconnected and banned; nothing it sends is stored."""

from __future__ import annotations

import contextlib
import struct
from pathlib import Path

import trio

from crypto.keys import SigningKey
from node.errors import NetworkError
from node.net import SYNC_PROTOCOL, now_ms
from node.p2p import Host, Stream, peer_id_of
from protocol import codec
from protocol.envelope import Record
from protocol.feed import Head
from protocol.sync import SyncSession
from protocol.sync_messages import (
    Disconnect,
    Fetch,
    Heads,
    Hello,
    Idle,
    Records,
    Send,
    encode_frame,
)
from tests.examples import GLN, GTIN
from tests.netutil import eventually, make_nodes, make_world, start

TIMEOUT = 60


def dump(ledger) -> dict[bytes, bytes]:  # type: ignore[no-untyped-def]
    return dict(ledger.store._db.iterator())


async def _hostile_stream(attacker: Host, target: bytes, payload: bytes) -> None:
    try:
        stream = await attacker.open_stream(target, SYNC_PROTOCOL)
        await stream.write(payload)
        with trio.move_on_after(2):
            while await stream.read(65536):
                pass
    except Exception:  # noqa: BLE001 - the victim resets us; that is the point
        pass


async def test_hostile_peer_is_banned_and_nothing_it_sent_is_stored(tmp_path: Path) -> None:
    world, parties = make_world(2)
    nodes = make_nodes(tmp_path, world, parties)
    victim = nodes[0]
    net_id = world.genesis.network_id
    mallory = SigningKey.generate()
    # A forged record: claims the carrier's feed, signed by mallory.
    honest = Record.sign(parties[1].key, network=net_id, seq=parties[1].seq + 1,
                         prev=parties[1].prev, ts=world.now, type="scan",
                         body={"object": {"kind": "container", "id": "CSQU3054383"},
                               "place": {"country": "NL"}, "event": "observe"})
    forged = bytearray(honest.wire)
    forged[-5] ^= 0xFF  # break the signature
    before = dump(victim.ledger)
    payloads = [
        b"\x00\x00\x00\x05garbage!",  # malformed frame
        struct.pack(">I", 50 * 1024 * 1024) + b"x" * 100,  # oversized frame
        encode_frame(Hello(network=b"\x00" * 32, version=1)),  # another network
        encode_frame(Hello(network=net_id, version=1))
        + encode_frame(Records(author=parties[1].pub, records=[bytes(forged)], last=True)),
        codec.encode([b"not", b"a frame"]),
    ]
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            net = await start(nursery, victim, gossip=False)
            attacker = Host(mallory)
            await nursery.start(attacker.run)
            for payload in payloads * 3:  # replayed, too
                if not attacker.is_connected(victim.party.pub):
                    try:
                        await attacker.connect(net.addrs[0])
                    except Exception:  # noqa: BLE001 - banned peers are refused
                        break
                await _hostile_stream(attacker, victim.party.pub, payload)
            await eventually(lambda: net.stats.bans > 0)
            with trio.move_on_after(3):
                await eventually(lambda: not attacker.is_connected(victim.party.pub))
            assert not attacker.is_connected(victim.party.pub)
            assert net.stats.bans >= 1
            assert sum(net.stats.penalties.values()) >= net.config.ban_threshold
            nursery.cancel_scope.cancel()
    assert dump(victim.ledger) == before


# -- records the ledger refuses, over sync and gossip; replays ---------------------------------


async def _serve_feed(stream: Stream, network: bytes, records: list[Record]) -> None:
    """Speak the sync protocol honestly, announcing and serving `records` (one feed)."""
    session = SyncSession(network)
    wires = {r.seq: r.wire for r in records}
    last = records[-1]
    done = False

    async def carry(actions: list[object]) -> None:
        nonlocal done
        for a in actions:
            if isinstance(a, Send):
                await stream.write(a.data)
            elif isinstance(a, Fetch):
                got = [wires[s] for s in range(a.from_seq, a.to_seq + 1) if s in wires]
                await carry(session.supply(a.author, got))
            elif isinstance(a, Idle | Disconnect):
                done = True

    with trio.move_on_after(3):
        try:
            await carry(session.start({last.author: Head(last.seq, last.id)}, now_ms()))
            while not done:
                data = await stream.read(65536)
                await carry(session.receive(data, now_ms()))
                if not data:
                    break
        except Exception:  # noqa: BLE001 - the victim may reset us once we are banned
            pass


async def test_validly_signed_unauthorised_records_cost_their_sender_a_ban(tmp_path: Path) -> None:
    world, parties = make_world(3)
    nodes = make_nodes(tmp_path, world, parties)
    victim, carrier = nodes[0], parties[2]  # a carrier credential may not mint
    bad = [r for lot in ("L1", "L2", "L3") for r in world.mint(
        carrier, GTIN, lot, ["S1", "S2"], mark="ACME", markets=["NL"], facility=GLN)]
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            net = await start(nursery, victim, gossip=False, sync_interval_s=0.3, ban_threshold=10)
            hostile = Host(carrier.key)
            hostile.set_stream_handler(SYNC_PROTOCOL,
                                       lambda s: _serve_feed(s, world.network, bad))
            await nursery.start(hostile.run)
            await hostile.connect(net.addrs[0])
            while not net.stats.bans:  # each session costs the first refused mint's penalty
                if hostile.is_connected(victim.party.pub):
                    try:
                        stream = await hostile.open_stream(victim.party.pub, SYNC_PROTOCOL)
                    except NetworkError:
                        continue
                    await _serve_feed(stream, world.network, bad)
                await trio.sleep(0.05)
            assert net.is_banned(carrier.pub)
            assert net.stats.records_rejected >= 2
            assert net.stats.penalties[peer_id_of(carrier.pub)] >= 10
            await eventually(lambda: not hostile.is_connected(victim.party.pub))
            # Reconnecting while banned is refused: the connection is closed at once and
            # no stream gets through.
            refused = net.host.stats.refused
            with contextlib.suppress(NetworkError):
                await hostile.connect(net.addrs[0])
            await eventually(lambda: net.host.stats.refused > refused)
            await eventually(lambda: not hostile.is_connected(victim.party.pub))
            assert carrier.pub not in net.connected()
            nursery.cancel_scope.cancel()
    assert victim.ledger.head(carrier.pub) is None
    assert all(victim.ledger.record(r.id) is None for r in bad)


async def test_hostile_gossip_is_rejected_and_costs_its_signer(tmp_path: Path) -> None:
    world, parties = make_world(3)
    nodes = make_nodes(tmp_path, world, parties)
    victim, carrier = nodes[0], parties[2]
    net_id = world.genesis.network_id
    scan = {"object": {"kind": "container", "id": "CSQU3054383"},
            "place": {"country": "NL"}, "event": "observe"}
    forged = bytearray(Record.sign(carrier.key, network=net_id, seq=1, prev=None, ts=world.now,
                                   type="scan", body=scan).wire)
    forged[-5] ^= 0xFF
    other_net = Record.sign(carrier.key, network=b"\x01" * 32, seq=1, prev=None, ts=world.now,
                            type="scan", body=scan)
    mint = world.mint(carrier, GTIN, "L1", ["S1"], mark="ACME", markets=["NL"], facility=GLN)
    honest = [r.wire for r in world.records[:3]]  # replayed: the victim holds them already
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            net = await start(nursery, victim, sync_interval_s=30, ban_threshold=70)
            topic = world.genesis.topic("records")
            hostile = Host(carrier.key, gossip=True)
            await nursery.start(hostile.run)
            await hostile.subscribe(topic)
            await hostile.connect(net.addrs[0])
            await hostile.wait_for_subscriber(victim.party.pub, topic)
            before = dump(victim.ledger)
            while not net.stats.gossip_in:  # until the mesh carries it: a replay costs nothing
                await hostile.publish(topic, codec.encode(honest))
                await trio.sleep(0.2)
            assert net.stats.penalties[peer_id_of(carrier.pub)] == 0
            assert dump(victim.ledger) == before
            await hostile.publish(topic, codec.encode([r.wire for r in mint]))
            await eventually(lambda: net.stats.records_rejected >= 1)
            assert net.stats.penalties[peer_id_of(carrier.pub)] >= 5
            for junk in (b"\xc1garbage", codec.encode(["not", "wires"]),
                         codec.encode([bytes(forged)]), codec.encode([other_net.wire])):
                await hostile.publish(topic, junk)
            await eventually(lambda: net.stats.gossip_rejected >= 3)
            await eventually(lambda: net.stats.bans >= 1)
            assert net.is_banned(carrier.pub)
            await eventually(lambda: not hostile.is_connected(victim.party.pub))
            nursery.cancel_scope.cancel()
    assert victim.ledger.head(carrier.pub) is None
    assert victim.ledger.record(mint[0].id) is None


async def test_a_replayed_records_frame_stores_nothing_and_costs_points(tmp_path: Path) -> None:
    world, parties = make_world(2)
    nodes = make_nodes(tmp_path, world, parties)
    victim = nodes[0]
    net_id = world.genesis.network_id
    # Captured from an honest session: a batch of the authority's records, sent again
    # to a session that never asked for it.
    authority = world.records[0].author
    replay = (encode_frame(Hello(network=net_id, version=1))
              + encode_frame(Heads(heads=(), done=True))
              + encode_frame(Records(author=authority, records=[r.wire for r in world.records[:2]],
                                     last=True)))
    before = dump(victim.ledger)
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            net = await start(nursery, victim, gossip=False)
            attacker = Host(SigningKey.generate())
            await nursery.start(attacker.run)
            await attacker.connect(net.addrs[0])
            await _hostile_stream(attacker, victim.party.pub, replay)
            await eventually(lambda: net.stats.sync_errors >= 1)
            assert sum(net.stats.penalties.values()) >= 10
            nursery.cancel_scope.cancel()
    assert dump(victim.ledger) == before
