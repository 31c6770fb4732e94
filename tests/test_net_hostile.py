"""A hostile peer is penalised, disconnected and banned; nothing it sends is stored."""

from __future__ import annotations

import struct
from pathlib import Path

import trio

from crypto.keys import SigningKey
from node.net import SYNC_PROTOCOL
from node.p2p import Host
from protocol import codec
from protocol.envelope import Record
from protocol.sync_messages import Hello, Records, encode_frame
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
