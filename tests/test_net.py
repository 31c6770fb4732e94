"""Real nodes on loopback converge: gossip, sync, restarts, partitions, late joiners."""

from __future__ import annotations

from pathlib import Path

import trio

from node.ledger import Ledger
from node.store import Store
from node.testnet import free_port
from tests.netutil import converged, eventually, make_nodes, make_world, start

TIMEOUT = 60


def scan_body(i: int) -> dict[str, object]:
    return {"object": {"kind": "container", "id": "CSQU3054383"},
            "place": {"country": "NL"}, "event": "observe", "at": 1_750_000_000_000 + i}


async def test_three_nodes_in_a_line_converge_by_gossip_and_sync(tmp_path: Path) -> None:
    world, parties = make_world(3)
    nodes = make_nodes(tmp_path, world, parties)
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            a = await start(nursery, nodes[0])
            b = await start(nursery, nodes[1], bootstrap=a.addrs[:1])
            await start(nursery, nodes[2], bootstrap=b.addrs[:1])
            carrier = nodes[2]
            for i in range(20):
                carrier.ledger.append_own([("scan", scan_body(i))], world.now + i)
            root = await converged(nodes)
            assert all(n.ledger.head(carrier.party.pub).seq == 20 for n in nodes)
            assert root == nodes[0].root()
            nursery.cancel_scope.cancel()


async def _write(node, world, n: int, offset: int = 0) -> None:  # type: ignore[no-untyped-def]
    for i in range(n):
        node.ledger.append_own([("scan", scan_body(offset + i))], world.now + offset + i)


async def test_five_nodes_converge_through_ordinary_gossip(tmp_path: Path) -> None:
    world, parties = make_world(5)
    nodes = make_nodes(tmp_path, world, parties)
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            # No periodic sync within the test: only the sessions opened on connect.
            first = await start(nursery, nodes[0], sync_interval_s=3600)
            nets = [first] + [await start(nursery, n, bootstrap=first.addrs[:1],
                                          sync_interval_s=3600) for n in nodes[1:]]
            await eventually(lambda: len(first.connected()) == 4 and all(
                net.stats.sync_sessions and not net._syncing for net in nets))
            # The topic mesh forms on a heartbeat: until then a publish reaches no one.
            await eventually(lambda: all(len(net.host.mesh_peers(net.topic))
                                         == len(net.connected()) for net in nets))
            synced = [net.stats.sync_records_in for net in nets]
            writers = [n for n in nodes if n.party.role in ("carrier", "manufacturer", "brand")]
            for k, w in enumerate(writers):
                await _write(w, world, 10, offset=100 * k)
            await converged(nodes)
            assert all(n.ledger.head(w.party.pub).seq == 10 for n in nodes for w in writers)
            # Gossip carried every record: sync stored none of them.
            assert [net.stats.sync_records_in for net in nets] == synced
            assert all(net.stats.gossip_records_in > 0 for net in nets)
            nursery.cancel_scope.cancel()


async def test_a_stopped_node_catches_up_after_restart(tmp_path: Path) -> None:
    world, parties = make_world(5)
    nodes = make_nodes(tmp_path, world, parties)
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            hub = await start(nursery, nodes[0])
            for n in nodes[1:4]:
                await start(nursery, n, bootstrap=hub.addrs[:1])
            async with trio.open_nursery() as inner:  # the node that will be stopped
                await start(inner, nodes[4], bootstrap=hub.addrs[:1])
                await converged(nodes)
                inner.cancel_scope.cancel()
            await _write(nodes[2], world, 15)  # carrier writes while node 4 is down
            await converged(nodes[:4])
            assert nodes[4].ledger.head(nodes[2].party.pub) is None or \
                nodes[4].ledger.head(nodes[2].party.pub).seq < 15
            # A real restart: the store closed, a new ledger opened on the same directory.
            nodes[4].ledger.store.close()
            store = Store.open(tmp_path / "node4")
            nodes[4].ledger = Ledger(store, world.genesis, own=nodes[4].party.key)
            await start(nursery, nodes[4], bootstrap=hub.addrs[:1])
            await converged(nodes)
            assert nodes[4].ledger.head(nodes[2].party.pub).seq == 15
            nursery.cancel_scope.cancel()


async def test_a_partition_heals(tmp_path: Path) -> None:
    world, parties = make_world(5)
    nodes = make_nodes(tmp_path, world, parties)
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            left = [await start(nursery, nodes[0])]
            left.append(await start(nursery, nodes[1], bootstrap=left[0].addrs[:1]))
            right = [await start(nursery, nodes[2])]
            for n in nodes[3:]:
                right.append(await start(nursery, n, bootstrap=right[0].addrs[:1]))
            # One live bridge (not a bootstrap link, and discovery is off: nothing redials it).
            bridge = await left[0].host.connect(right[0].addrs[0])
            await _write(nodes[3], world, 5, offset=900)
            await converged(nodes)
            await left[0].host.disconnect(bridge)  # cut it
            await eventually(lambda: bridge not in left[0].connected()
                             and nodes[0].party.pub not in right[0].connected())
            await _write(nodes[1], world, 8)  # manufacturer, left side
            await _write(nodes[2], world, 8, offset=50)  # carrier, right side
            await converged(nodes[:2])
            await converged(nodes[2:])
            # Apart: neither side has the other's writes.
            assert nodes[0].ledger.head(nodes[2].party.pub) is None
            assert nodes[2].ledger.head(nodes[1].party.pub) is None
            await left[0].host.connect(right[0].addrs[0])  # heal
            await converged(nodes)
            nursery.cancel_scope.cancel()


async def test_a_late_joiner_catches_up_through_sync_alone(tmp_path: Path) -> None:
    world, parties = make_world(5)
    nodes = make_nodes(tmp_path, world, parties)
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            hub = await start(nursery, nodes[0])
            for n in nodes[1:4]:
                await start(nursery, n, bootstrap=hub.addrs[:1])
            await _write(nodes[2], world, 300)
            await _write(nodes[1], world, 50, offset=1000)
            await converged(nodes[:4])
            late = await start(nursery, nodes[4], gossip=False, bootstrap=hub.addrs[:1])
            await converged(nodes)
            assert late.stats.sync_records_in >= 350
            assert late.stats.gossip_in == 0
            nursery.cancel_scope.cancel()


async def test_sync_alone_converges_with_gossip_disabled(tmp_path: Path) -> None:
    world, parties = make_world(5)
    nodes = make_nodes(tmp_path, world, parties)
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            nets = [await start(nursery, nodes[0], gossip=False)]
            for n in nodes[1:]:
                nets.append(await start(nursery, n, gossip=False, bootstrap=nets[-1].addrs[:1]))
            await _write(nodes[2], world, 40)
            await _write(nodes[1], world, 40, offset=500)
            await converged(nodes)
            assert all(net.stats.gossip_in == 0 for net in nets)
            nursery.cancel_scope.cancel()


async def test_discovery_finds_the_peers_of_a_bootstrap_peer(tmp_path: Path) -> None:
    world, parties = make_world(3)
    nodes = make_nodes(tmp_path, world, parties)
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            a = await start(nursery, nodes[0])
            b = await start(nursery, nodes[1], bootstrap=a.addrs[:1])
            await eventually(lambda: nodes[0].party.pub in b.connected())
            c = await start(nursery, nodes[2], bootstrap=b.addrs[:1], discover=True)
            await eventually(lambda: nodes[0].party.pub in c.connected())  # B told C of A
            assert nodes[2].party.pub in a.connected()
            nursery.cancel_scope.cancel()


async def test_a_restarted_bootstrap_peer_is_redialled(tmp_path: Path) -> None:
    world, parties = make_world(2)
    nodes = make_nodes(tmp_path, world, parties)
    listen = (f"/ip4/127.0.0.1/tcp/{free_port()}",)  # the same address after the restart
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            async with trio.open_nursery() as inner:
                a = await start(inner, nodes[0], listen=listen)
                b = await start(nursery, nodes[1], bootstrap=a.addrs[:1])
                await eventually(lambda: nodes[0].party.pub in b.connected())
                inner.cancel_scope.cancel()
            await eventually(lambda: nodes[0].party.pub not in b.connected())
            a = await start(nursery, nodes[0], listen=listen)
            await eventually(lambda: nodes[0].party.pub in b.connected())
            await _write(nodes[0], world, 3)
            await converged(nodes)
            nursery.cancel_scope.cancel()
