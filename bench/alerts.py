"""Alert latency: an offending record submitted at node A, its alert in customs node D's log.

    python bench/alerts.py [--json] [--alerts N] [--no-push]

Four nodes in a line, A — B — C — D, each a real `Ledger` on its own
temporary LevelDB and a real `node.net.Network` (libp2p host, gossipsub, sync)
on 127.0.0.1, all in this one process and one trio thread (as the network
tests run them): B dials A, C dials B, D dials C, peer discovery is off, so
each node is connected to its neighbours only. A is the carrier's node, B a
forwarder's, C a brand's, D the customs office in Hamburg. Every node starts
with the same records: the parties' credentials and N (+ warm-up) containers
the carrier created and sealed, booked on shipments to Hamburg and declared to
DE customs. Every node runs the push service; D subscribes at its neighbour C
with the filter a DE customs office uses (`jurisdictions = {DE}`).

Each measured alert: the carrier's node appends a scan of the next container
showing a wrong seal (`Ledger.append_own`, what the RPC's writer does for
`POST /v1/records`), a fresh container each time so each alert is new. The
record goes out by gossip (A publishes; B and C relay), and each node that
stores it derives the `seal_mismatch` alert by its own rules; C also pushes
its alert to D. The clock stops when the alert enters D's alert log (D's
`Ledger.on_stored` listener), whichever way came first: derived at D from
the gossiped record, or pushed by C (`record_alert` keeps only the first).
The next scan goes out once the alert is in, after a pause of 0 – 50 ms.

Reported: p50 / p99 / max of the latency over N alerts (default 200), how
many came each way, and the p50 of the scan's arrival at B, C and D (hop by
hop). `--no-push` runs without the subscription (D's own rules only). Wall
time (`time.perf_counter`). `--json` prints exactly one JSON object. Goal
(issue 6): p99 ≤ 500 ms.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import trio  # noqa: E402

from node.ledger import Ledger  # noqa: E402
from node.net import NetConfig, Network  # noqa: E402
from node.push import Provider, PushConfig, PushService  # noqa: E402
from node.scenario import DAY, Party, World  # noqa: E402
from node.store import Store  # noqa: E402
from protocol.identifiers import iso6346_check_digit  # noqa: E402
from protocol.push import Filter  # noqa: E402

ALERTS = 200
WARMUP = 5
GOAL_P99_MS = 500.0
WAIT_S = 10.0  # an alert not in D's log by then is counted lost
SEAL = "ML-4512345"
SHIPMENT_SIZE = 100  # containers per shipment (and declaration)
NAMES = ("A", "B", "C", "D")


def container_number(i: int) -> str:
    body = f"HLXU{i:06d}"
    return f"{body}{iso6346_check_digit(body)}"


@dataclass
class Scene:
    world: World
    parties: list[Party]  # A, B, C, D
    containers: list[str]


def scene(n: int) -> Scene:
    """Credentials, and `n` containers created, sealed, booked to Hamburg and declared in DE."""
    w = World.create(seed=12, t0=time.time_ns() // 1_000_000 - DAY)
    carrier = w.party("carrier", "Rhine Freight", ["NL", "DE"])
    forwarder = w.party("forwarder", "Global Forwarding", ["NL"])
    brand = w.party("brand", "ACME Brands", ["NL"], trademarks=[{
        "mark": "ACME", "classes": [9], "markets": ["DE", "FR", "NL"],
        "gs1_prefixes": ["950600"]}])
    customs = w.party("customs", "Zoll Hamburg", ["DE"], observer=True)
    numbers = sorted(container_number(i) for i in range(n))
    for number in numbers:
        w.create_container(carrier, number)
        w.seal(carrier, number, SEAL)
    hamburg = {"country": "DE", "locode": "DEHAM"}
    for k in range(0, n, SHIPMENT_SIZE):
        part = numbers[k:k + SHIPMENT_SIZE]
        shipment = f"SHP-DE-{k // SHIPMENT_SIZE:04d}"
        goods = [{"hs": "851830", "description": "Headphones", "quantity": 1000,
                  "weight_g": 250_000}]
        w.sign(carrier, "shipment.create", {
            "shipment": shipment, "origin": {"country": "NL", "locode": "NLRTM"},
            "destination": hamburg, "route": ["NLRTM", "DEHAM"], "consignor": "ACME Brands",
            "consignee": "ACME GmbH", "containers": part, "goods": goods})
        w.sign(carrier, "customs.declaration", {
            "shipment": shipment, "jurisdiction": "DE", "procedure": "import",
            "declarant": "ACME GmbH", "containers": part, "goods": goods})
    w.tick()
    return Scene(w, [carrier, forwarder, brand, customs], numbers)


@dataclass
class Probe:
    """When each node stored each scan, and when each alert reached D's log (and how)."""

    t0: dict[bytes, float] = field(default_factory=dict)  # scan id -> submitted at A
    stored: dict[tuple[str, bytes], float] = field(default_factory=dict)  # (node, scan id)
    alert_at: dict[str, float] = field(default_factory=dict)  # container -> in D's log
    alert_via: dict[str, str] = field(default_factory=dict)  # container -> pushed | derived
    arrived: dict[str, trio.Event] = field(default_factory=dict)

    def listen(self, name: str, ledger: Ledger) -> None:
        def on_stored(records: Sequence[Any], alerts: Sequence[dict[str, Any]]) -> None:
            now = time.perf_counter()
            for r in records:
                if r.type == "scan":
                    self.stored.setdefault((name, r.id), now)
            if name != "D":
                return
            for entry in alerts:
                number = entry["subject"]["id"]
                if entry["rule"] != "seal_mismatch" or number in self.alert_at:
                    continue
                self.alert_at[number] = now
                self.alert_via[number] = "pushed" if "via" in entry else "derived"
                event = self.arrived.get(number)
                if event is not None:
                    event.set()

        ledger.on_stored(on_stored)


def open_nodes(tmp: Path, s: Scene, probe: Probe) -> list[Ledger]:
    ledgers = []
    wires = [r.wire for r in s.world.records]
    for name, party in zip(NAMES, s.parties, strict=True):
        ledger = Ledger(Store.open(tmp / name), s.world.genesis, own=party.key)
        outcomes = ledger.submit(wires, s.world.now)
        if any(o.status != "stored" for o in outcomes):
            raise SystemExit(f"node {name}: the scene's records were not all stored")
        probe.listen(name, ledger)
        ledgers.append(ledger)
    return ledgers


async def run(s: Scene, ledgers: list[Ledger], probe: Probe, alerts: int, push: bool,
              seed: int) -> tuple[list[float], list[str]]:
    """Start the line, warm it up, then time `alerts` alerts one after another."""
    rng = random.Random(seed)
    latencies: list[float] = []
    lost: list[str] = []
    carrier_node = ledgers[0]
    async with trio.open_nursery() as nursery:
        nets: list[Network] = []
        for ledger in ledgers:
            boot = tuple(nets[-1].addrs[:1]) if nets else ()
            net = Network(ledger, NetConfig(bootstrap=boot, discover=False))
            await nursery.start(net.run)
            nets.append(net)
        services: list[PushService] = []
        for name, net in zip(NAMES, nets, strict=True):
            config = PushConfig()
            if push and name == "D":  # customs subscribes at its neighbour, the brand's node
                config = PushConfig(providers=(
                    Provider(s.parties[2].pub, Filter(jurisdictions={"DE"})),))
            services.append(PushService.over(net, config))
            await nursery.start(services[-1].run)
        with trio.fail_after(30):
            await until(lambda: [len(n.connected()) for n in nets] == [1, 2, 2, 1])
            if push:
                await until(lambda: s.parties[3].pub in services[2].subscriptions())
        await trio.sleep(2.0)  # two gossipsub heartbeats: the mesh forms along the line
        for k, number in enumerate(s.containers):
            ms = await one(carrier_node, probe, number, k, timed=k >= WARMUP)
            if k < WARMUP:
                continue
            if ms is None:
                lost.append(number)
            else:
                latencies.append(ms)
            if len(latencies) + len(lost) >= alerts:
                break
            await trio.sleep(rng.uniform(0.0, 0.05))
        nursery.cancel_scope.cancel()
    return latencies, lost


async def until(check: Callable[[], bool], poll: float = 0.05) -> None:
    """Poll `check`: neither peer counts nor subscriptions have an event to wait on."""
    while True:
        if check():
            return
        await trio.sleep(poll)


async def one(carrier: Ledger, probe: Probe, number: str, k: int, *, timed: bool
              ) -> float | None:
    """Submit one offending scan at A; the ms until its alert is in D's log (None: lost).

    The scan's hops are timed (`Probe.t0`) only if `timed` (not for the warm-up)."""
    probe.arrived[number] = event = trio.Event()
    now = time.time_ns() // 1_000_000
    body = {"object": {"kind": "container", "id": number},
            "place": {"country": "DE", "locode": "DEHAM"}, "event": "observe", "at": now,
            "seal": f"XX-{k:07d}"}
    t0 = time.perf_counter()
    (record,) = carrier.append_own([("scan", body)], now)
    if timed:
        probe.t0[record.id] = t0
    with trio.move_on_after(WAIT_S):
        await event.wait()
    if number not in probe.alert_at:
        return None
    return (probe.alert_at[number] - t0) * 1000


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty sample."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def hops(probe: Probe) -> dict[str, float]:
    """p50 ms from submission at A to the scan stored at B, C and D."""
    out: dict[str, float] = {}
    for name in NAMES[1:]:
        times = [(at - probe.t0[rid]) * 1000 for (node, rid), at in probe.stored.items()
                 if node == name and rid in probe.t0]
        if times:
            out[name] = round(statistics.median(times), 1)
    return out


def measure(alerts: int, push: bool, seed: int = 1) -> dict[str, Any]:
    s = scene(alerts + WARMUP)
    probe = Probe()
    with tempfile.TemporaryDirectory(prefix="sealchain-bench-alerts-") as tmp:
        ledgers = open_nodes(Path(tmp), s, probe)
        try:
            latencies, lost = trio.run(run, s, ledgers, probe, alerts, push, seed)
        finally:
            for ledger in ledgers:
                ledger.store.close()
    measured = [n for n in s.containers[WARMUP:] if n in probe.alert_at and n not in lost]
    via = [probe.alert_via[n] for n in measured]
    if not latencies:
        raise SystemExit("alerts: no alert reached D")
    return {
        "alerts": len(latencies) + len(lost),
        "p50_ms": round(percentile(latencies, 50), 1),
        "p99_ms": round(percentile(latencies, 99), 1),
        "max_ms": round(max(latencies), 1),
        "mean_ms": round(statistics.fmean(latencies), 1),
        "lost": len(lost),
        "derived_at_d": via.count("derived"),
        "pushed_by_c": via.count("pushed"),
        "scan_stored_p50_ms": hops(probe),
        "push": push,
        "process": "in-process (4 nodes, one trio thread)",
    }


def table(r: dict[str, Any]) -> str:
    ok = "ok" if r["p99_ms"] <= GOAL_P99_MS and not r["lost"] else "MISSED"
    h = r["scan_stored_p50_ms"]
    return "\n".join([
        f"alerts: {r['alerts']} (lost: {r['lost']}), A — B — C — D, {r['process']}, "
        f"push {'on' if r['push'] else 'off'}",
        "",
        f"{'submitted at A → in D’s alert log':<36} {'ms':>8}",
        f"{'  p50':<36} {r['p50_ms']:>8.1f}",
        f"{'  p99':<36} {r['p99_ms']:>8.1f}  goal ≤ {GOAL_P99_MS:g} ms {ok}",
        f"{'  max':<36} {r['max_ms']:>8.1f}",
        f"{'  mean':<36} {r['mean_ms']:>8.1f}",
        "",
        f"first to D: derived at D {r['derived_at_d']}, pushed by C {r['pushed_by_c']}",
        "scan stored, p50 ms: " + ", ".join(f"{k} {v:.1f}" for k, v in h.items()),
    ])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--alerts", type=int, default=ALERTS, help="alerts to time (default 200)")
    p.add_argument("--no-push", action="store_true", help="D relies on its own rules only")
    args = p.parse_args(argv)
    if args.alerts < 1:
        p.error("--alerts must be positive")
    logging.disable(logging.WARNING)  # every alert is logged at WARNING by each node
    result = measure(args.alerts, not args.no_push)
    print(json.dumps(result) if args.json else table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
