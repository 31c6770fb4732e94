"""Real nodes on loopback converge: gossip, sync, restarts, partitions, late joiners."""

from __future__ import annotations

from pathlib import Path

import trio

from tests.netutil import converged, make_nodes, make_world, start

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
            first = await start(nursery, nodes[0], sync_interval_s=30)
            for n in nodes[1:]:
                await start(nursery, n, bootstrap=first.addrs[:1], sync_interval_s=30)
            writers = [n for n in nodes if n.party.role in ("carrier", "manufacturer", "brand")]
            for k, w in enumerate(writers):
                await _write(w, world, 10, offset=100 * k)
            await converged(nodes)
            assert all(n.ledger.head(w.party.pub).seq == 10 for n in nodes for w in writers)
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
            await start(nursery, nodes[4], bootstrap=hub.addrs[:1])
            await converged(nodes)
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
            await _write(nodes[1], world, 8)  # manufacturer, left side
            await _write(nodes[2], world, 8, offset=50)  # carrier, right side
            await converged(nodes[:2])
            await converged(nodes[2:])
            assert nodes[0].root() != nodes[2].root()
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
