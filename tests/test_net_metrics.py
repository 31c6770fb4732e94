"""The network's figures are in /metrics: peers, gossip, sync, penalties, lag."""

from __future__ import annotations

from pathlib import Path

import trio

from node.daemon import Node
from tests.rpc_helpers import client, provision


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
