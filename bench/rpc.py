"""RPC write throughput of a real node, each record acknowledged only once durable.

Starts `sealchain run` in a subprocess on a fresh data directory (a brand node
holding its credential), then:

- `acked_per_s`: CLIENTS concurrent clients each POST one scan per request to
  /v1/records; a request returns 201 only after the synced write, so this is
  durable records per second (the node's group commit shares one synced write
  among the requests waiting);
- `batch_acked_per_s`: the same clients POST /v1/records/batch with BATCH scans
  per request.

    python bench/rpc.py [--json] [--records N] [--batch-records N] [--clients N]

Goals: acked_per_s >= 1,000; batch_acked_per_s >= 10,000.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import trio

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.httpclient import Conn  # noqa: E402
from node.config import Config, NodeSection, RpcSection  # noqa: E402
from node.datadir import DataDir  # noqa: E402
from node.local import open_ledger  # noqa: E402
from node.scenario import World  # noqa: E402

CONTAINER = "CSQU3054383"


def provision(path: Path) -> DataDir:
    w = World.create(seed=42)
    key = w.key("bench-node")
    w.party("carrier", "Bench Carrier", ["NL"], key=key)
    cfg = Config(node=NodeSection(role="carrier", log_level="warning"),
                 rpc=RpcSection(port=0, max_body=16 << 20))
    d = DataDir.init(path, w.genesis, key=key, config=cfg)
    with open_ledger(path) as ledger:
        ledger.submit([r.wire for r in w.records], w.now)
    return d


def scan(i: int) -> dict[str, Any]:
    return {"type": "scan", "body": {"object": {"kind": "container", "id": CONTAINER},
                                     "place": {"country": "NL", "locode": "NLRTM"},
                                     "event": "observe", "at": 1_750_000_000_000 + i}}


async def singles(url: str, token: str, clients: int, total: int,
                  latencies: list[float] | None = None) -> float:
    per = total // clients

    async def one(c: int) -> None:
        conn = await Conn.open(url, token)
        async with conn.stream:
            for i in range(per):
                t = time.perf_counter()
                status, body = await conn.post("/v1/records", json.dumps(scan(c * per + i)).encode())
                assert status == 201, body
                if latencies is not None:
                    latencies.append(time.perf_counter() - t)

    t0 = time.perf_counter()
    async with trio.open_nursery() as n:
        for c in range(clients):
            n.start_soon(one, c)
    return per * clients / (time.perf_counter() - t0)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


async def batches(url: str, token: str, clients: int, total: int, size: int) -> float:
    per = max(1, total // clients // size)

    async def one(c: int) -> None:
        conn = await Conn.open(url, token)
        async with conn.stream:
            for b in range(per):
                base = 10_000_000 + (c * per + b) * size
                body = json.dumps({"records": [scan(base + i) for i in range(size)]}).encode()
                status, resp = await conn.post("/v1/records/batch", body)
                assert status == 201, resp

    t0 = time.perf_counter()
    async with trio.open_nursery() as n:
        for c in range(clients):
            n.start_soon(one, c)
    return per * clients * size / (time.perf_counter() - t0)


def start_node(data: Path) -> tuple[subprocess.Popen[bytes], str]:
    exe = Path(sys.executable).parent / "sealchain"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "node.cli"]
    proc = subprocess.Popen([*cmd, "run", "--data", str(data)], cwd=ROOT)
    return proc, rpc_url(proc, data, 30)


def rpc_url(proc: subprocess.Popen[bytes], data: Path, timeout: float) -> str:
    """The RPC URL the node `proc` writes to DATA/rpc.addr once it listens."""
    addr = data / "rpc.addr"
    deadline = time.monotonic() + timeout
    while not addr.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise SystemExit("bench: the node did not start")
        time.sleep(0.05)
    return addr.read_text().strip()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--records", type=int, default=8000, help="records for the one-per-request run")
    ap.add_argument("--batch-records", type=int, default=80_000, help="records for the batch run")
    ap.add_argument("--batch", type=int, default=1000, help="records per batch request")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="sealchain-bench-") as tmp:
        data = Path(tmp) / "node"
        d = provision(data)
        proc, url = start_node(data)
        try:
            token = d.tokens().write
            trio.run(singles, url, token, args.clients, min(400, args.records))  # warm up
            lat: list[float] = []
            acked = trio.run(singles, url, token, args.clients, args.records, lat)
            batch = trio.run(batches, url, token, args.clients, args.batch_records, args.batch)
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
    result = {"clients": args.clients, "records": args.records, "acked_per_s": round(acked),
              "batch_records": args.batch_records, "batch_size": args.batch,
              "batch_acked_per_s": round(batch), "p50_ms": round(percentile(lat, 0.5) * 1000, 2),
              "p99_ms": round(percentile(lat, 0.99) * 1000, 2), "cpus": os.cpu_count(),
              "load_avg": round(os.getloadavg()[0], 2)}
    if args.json:
        print(json.dumps(result))
    else:
        print(f"rpc: {args.clients} clients, one record per request: {acked:,.0f} acked/s "
              f"(goal 1,000), latency p50 {result['p50_ms']} ms, p99 {result['p99_ms']} ms")
        print(f"rpc: {args.clients} clients, {args.batch} records per batch: {batch:,.0f} acked/s "
              f"(goal 10,000)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
