"""The network's figures are in /metrics: peers, gossip, sync, penalties, lag."""

from __future__ import annotations

from pathlib import Path

import trio
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from node.daemon import Node
from node.net import Network
from node.net_metrics import NetCollector
from tests.netutil import converged, eventually, make_nodes, make_world, start
from tests.rpc_helpers import client, provision
from tests.test_net import _write


async def test_metrics_include_the_network(tmp_path: Path) -> None:
    p = provision(tmp_path / "n")
    node = Node(p.data, handle_signals=False)
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            url = await nursery.start(node.run)
            async with client(url, p.data.tokens().read) as c:
                r = await c.get("/metrics")
            assert r.status_code == 200
            text = r.text
            for name in ("sealchain_peers_connected", "sealchain_gossip_messages_total",
                         "sealchain_gossip_dropped_total", "sealchain_sync_requests_total",
                         "sealchain_sync_records_received_total", "sealchain_sync_bytes_total",
                         "sealchain_peer_bans_total", "sealchain_replication_lag_records",
                         "sealchain_push_alerts_total"):
                assert name in text, name
            node.stop()


def _samples(net: Network) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    registry = CollectorRegistry()
    registry.register(NetCollector(net))
    out = {}
    for family in text_string_to_metric_families(generate_latest(registry).decode()):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


async def test_lag_gossip_and_sync_figures_have_real_values(tmp_path: Path) -> None:
    world, parties = make_world(3)
    nodes = make_nodes(tmp_path, world, parties)
    await _write(nodes[2], world, 300)  # the carrier is 300 records ahead of the others
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            ahead = await start(nursery, nodes[2], sync_interval_s=30)
            # Slow reads keep the catching-up session open long enough to be watched.
            behind = await start(nursery, nodes[0], bootstrap=ahead.addrs[:1], sync_interval_s=30,
                                 sync_bytes_per_s=30_000)
            peak = 0
            while not (peak and behind.sync_lag() == 0):
                peak = max(peak, behind.sync_lag())
                await trio.sleep(0.02)
            assert 0 < peak <= 300
            await converged([nodes[0], nodes[2]])
            assert behind.sync_lag() == 0
            await _write(nodes[2], world, 5, offset=1000)  # fresh records go out by gossip
            await eventually(lambda: behind.stats.gossip_records_in >= 5)
            got, sent = _samples(behind), _samples(ahead)
            nursery.cancel_scope.cancel()
    inn, out = (("direction", "in"),), (("direction", "out"),)
    assert got[("sealchain_replication_lag_records", ())] == 0
    assert got[("sealchain_sync_frames_total", inn)] > 0
    assert got[("sealchain_sync_frames_total", out)] > 0
    assert sent[("sealchain_sync_frames_total", inn)] == got[("sealchain_sync_frames_total", out)]
    assert got[("sealchain_sync_bytes_total", inn)] > 300 * 100
    assert got[("sealchain_gossip_bytes_total", inn)] > 0
    assert sent[("sealchain_gossip_bytes_total", out)] >= got[("sealchain_gossip_bytes_total", inn)]
    for reason in ("peer_queue_full", "invalid", "outbox_full", "subscription_full"):
        assert ("sealchain_gossip_dropped_total", (("reason", reason),)) in got
    for name in ("sealchain_gossip_publish_waits_total", "sealchain_peer_events_dropped_total",
                 "sealchain_peers_refused_total", "sealchain_peer_records_rejected_total",
                 "sealchain_pending_missing_records"):
        assert (name, ()) in got, name


async def test_own_records_are_not_gossiped_to_no_one_and_are_once_a_peer_listens(
        tmp_path: Path) -> None:
    world, parties = make_world(2)
    nodes = make_nodes(tmp_path, world, parties)
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            alone = await start(nursery, nodes[0], sync_interval_s=3600)
            await _write(nodes[0], world, 5)
            await eventually(lambda: alone.stats.gossip_unsent == 5)
            assert alone.stats.gossip_out == 0
            assert _samples(alone)[("sealchain_gossip_unsent_records_total", ())] == 5
            other = await start(nursery, nodes[1], bootstrap=alone.addrs[:1],
                                sync_interval_s=3600)
            await eventually(lambda: bool(alone.host.topic_peers(alone.topic))
                             and other.stats.sync_sessions > 0)
            await converged(nodes)  # the first five came by sync, on connect
            await _write(nodes[0], world, 5, offset=1000)
            await eventually(lambda: other.stats.gossip_records_in >= 5)
            assert alone.stats.gossip_out > 0
            assert alone.stats.gossip_unsent == 5
            await converged(nodes)
            nursery.cancel_scope.cancel()
