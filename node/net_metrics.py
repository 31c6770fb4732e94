"""Prometheus collector for the network and alert push (read at scrape time)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from node.p2p import outbound_rpc_drops


class NetCollector(Collector):
    def __init__(self, network: Any, push: Any = None) -> None:
        self.network = network
        self.push = push

    def collect(self) -> Iterator[Any]:
        net = self.network
        s = net.stats
        yield GaugeMetricFamily("sealchain_peers_connected", "Connected peers",
                                value=len(net.connected()))
        gossip = CounterMetricFamily("sealchain_gossip_messages", "Gossip messages, by direction",
                                     labels=["direction"])
        gossip.add_metric(["in"], s.gossip_in)
        gossip.add_metric(["out"], s.gossip_out)
        yield gossip
        gossip_bytes = CounterMetricFamily("sealchain_gossip_bytes", "Gossip payload bytes, by "
                                           "direction", labels=["direction"])
        gossip_bytes.add_metric(["in"], s.gossip_bytes_in)
        gossip_bytes.add_metric(["out"], s.gossip_bytes_out)
        yield gossip_bytes
        dropped = CounterMetricFamily(
            "sealchain_gossip_dropped", "Gossip messages dropped or refused, by reason",
            labels=["reason"])
        host = net.host.stats
        for reason, n in (("invalid", s.gossip_rejected), ("outbox_full", s.gossip_dropped),
                          ("rate_limited", s.gossip_throttled),
                          ("subscription_full", host.subscription_dropped),
                          ("publish_wait_timeout", host.publish_wait_timeouts),
                          # libp2p's per-peer outbound queues (32 RPCs), process-wide
                          ("peer_queue_full", outbound_rpc_drops())):
            dropped.add_metric([reason], n)
        yield dropped
        yield CounterMetricFamily("sealchain_gossip_unsent_records", "Own records not gossiped "
                                  "because no peer subscribed to the records topic (sync "
                                  "delivers them)", value=s.gossip_unsent)
        yield CounterMetricFamily("sealchain_gossip_publish_waits", "Publishes that waited for a "
                                  "peer's outbound queue to drain", value=host.publish_waits)
        yield CounterMetricFamily("sealchain_peer_events_dropped", "Connection events dropped "
                                  "(nobody drained them in time)", value=host.peer_events_dropped)
        yield CounterMetricFamily("sealchain_peers_refused", "Connections, streams and gossip "
                                  "refused from banned peers", value=host.refused)
        yield CounterMetricFamily("sealchain_peer_records_rejected", "Records from peers the ledger "
                                  "refused", value=s.records_rejected)
        yield CounterMetricFamily("sealchain_gossip_records_received",
                                  "Records received by gossip", value=s.gossip_records_in)
        yield CounterMetricFamily("sealchain_sync_sessions", "Sync sessions run",
                                  value=s.sync_sessions)
        yield CounterMetricFamily("sealchain_sync_requests", "Record ranges served to peers",
                                  value=s.sync_requests)
        yield CounterMetricFamily("sealchain_sync_records_received", "Records stored from sync",
                                  value=s.sync_records_in)
        sync_bytes = CounterMetricFamily("sealchain_sync_bytes", "Sync bytes, by direction",
                                         labels=["direction"])
        sync_bytes.add_metric(["in"], s.sync_bytes_in)
        sync_bytes.add_metric(["out"], s.sync_bytes_out)
        yield sync_bytes
        sync_frames = CounterMetricFamily("sealchain_sync_frames", "Sync protocol frames, by "
                                          "direction", labels=["direction"])
        sync_frames.add_metric(["in"], s.sync_frames_in)
        sync_frames.add_metric(["out"], s.sync_frames_out)
        yield sync_frames
        yield CounterMetricFamily("sealchain_sync_errors", "Sync sessions ended by a protocol "
                                  "error", value=s.sync_errors)
        yield CounterMetricFamily("sealchain_sync_throttled", "Reads paused for a peer over its "
                                  "byte rate", value=s.throttled)
        penalties = CounterMetricFamily("sealchain_peer_penalty_points", "Penalty points, by peer",
                                        labels=["peer"])
        for peer, points in sorted(s.penalties.items()):
            penalties.add_metric([peer], points)
        yield penalties
        yield CounterMetricFamily("sealchain_peer_bans", "Peers banned", value=s.bans)
        yield GaugeMetricFamily("sealchain_replication_lag_records", "Records a peer announced "
                                "in its last heads round that we still lack (max over peers)",
                                value=net.sync_lag())
        yield GaugeMetricFamily("sealchain_pending_missing_records", "Records known to exist "
                                "(behind pending ones) that we do not hold yet",
                                value=net.pending_gap())
        if self.push is not None:
            p = self.push.stats
            push = CounterMetricFamily("sealchain_push_alerts", "Alerts pushed to subscribers and "
                                       "received from providers", labels=["direction"])
            push.add_metric(["out"], p.pushed)
            push.add_metric(["in"], p.received)
            yield push
