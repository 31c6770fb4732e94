"""Prometheus metrics of one node, in its own registry (several nodes may share a process).

Counters the ledger keeps itself (`Ledger.stats`: ingested by type, alerts by
rule, pending and forks; `Ledger.rejections`: rejected by type and rule, type
"unknown" for bytes that did not decode) are read at scrape time by a custom
collector, so the ledger stays free of Prometheus. The RPC and the writer
observe their own. Other services (the p2p network) register their collectors
in `Metrics.registry`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client import Counter as PCounter
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0)


class _LedgerCollector(Collector):
    def __init__(self, ledger: Any, rejected: Counter[tuple[str, str]]) -> None:
        self.ledger = ledger
        self.rejected = rejected

    def collect(self) -> Iterator[Any]:
        stats: Counter[tuple[str, str]] = self.ledger.stats
        ingested = CounterMetricFamily("sealchain_records_ingested", "Records stored, by type",
                                       labels=["type"])
        rejected = CounterMetricFamily(
            "sealchain_records_rejected",
            "Records rejected, by type (\"unknown\" where it did not decode) and reason",
            labels=["type", "reason"])
        alerts = CounterMetricFamily("sealchain_alerts", "Alerts raised, by rule", labels=["rule"])
        pending = CounterMetricFamily("sealchain_records_pended", "Records put in the pending "
                                      "area, by cause", labels=["cause"])
        forks = CounterMetricFamily("sealchain_feed_forks", "Feed forks detected")
        fork_n = 0
        for (what, label), n in sorted(stats.items()):
            if what == "ingested":
                ingested.add_metric([label], n)
            elif what == "alert":
                alerts.add_metric([label], n)
            elif what == "pending":
                pending.add_metric([label], n)
            elif what == "fork":
                fork_n += n
        # The ledger's (records from peers and raw imports) and the RPC's (records this
        # node was asked to sign) are disjoint: a (type, reason) seen by both adds up.
        both: Counter[tuple[str, str]] = Counter(self.ledger.rejections)
        both.update(self.rejected)
        for (type_name, reason), n in sorted(both.items()):
            rejected.add_metric([type_name, reason], n)
        forks.add_metric([], fork_n)
        yield from (ingested, rejected, alerts, pending, forks)
        yield GaugeMetricFamily("sealchain_pending_records", "Records waiting in the pending area",
                                value=len(self.ledger.pending))
        heads = self.ledger.heads()
        yield GaugeMetricFamily("sealchain_log_height", "Records in all feeds held",
                                value=sum(h.seq for h in heads.values()))
        yield GaugeMetricFamily("sealchain_authors", "Feeds (authors) held", value=len(heads))


class Metrics:
    def __init__(self, ledger: Any) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.rejected: Counter[tuple[str, str]] = Counter()  # (type, reason) seen at the RPC
        self.registry.register(_LedgerCollector(ledger, self.rejected))
        r = self.registry
        self.requests = PCounter("sealchain_rpc_requests", "RPC requests, by route, method and "
                                 "status", ["route", "method", "status"], registry=r)
        self.request_seconds = Histogram("sealchain_rpc_request_seconds", "RPC request latency",
                                         ["route"], buckets=_LATENCY_BUCKETS, registry=r)
        self.ingest_seconds = Histogram("sealchain_ingest_latency_seconds", "Time to validate, "
                                        "sign and durably write one batch", ["source"],
                                        buckets=_LATENCY_BUCKETS, registry=r)
        self.batch_records = Histogram("sealchain_write_batch_records", "Records per synced "
                                       "write (group commit)",
                                       buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096),
                                       registry=r)
        self.sse_clients = 0
        self.add_gauge("sealchain_rpc_sse_clients", "Open alert streams", lambda: self.sse_clients)

    def add_gauge(self, name: str, doc: str, fn: Callable[[], float]) -> None:
        """Register a gauge read at scrape time (e.g. connected peers)."""
        self.registry.register(_FnGauge(name, doc, fn))

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _FnGauge(Collector):
    def __init__(self, name: str, doc: str, fn: Callable[[], float]) -> None:
        self.name, self.doc, self.fn = name, doc, fn

    def collect(self) -> Iterator[Any]:
        yield GaugeMetricFamily(self.name, self.doc, value=self.fn())
