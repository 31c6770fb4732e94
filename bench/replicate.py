"""Replication across a line of real nodes: throughput, catch-up and far-end latency.

    python bench/replicate.py [--json] [--nodes 5] [--records 50000] [--latency-s 10]

Starts N nodes, each its own `sealchain run` process on 127.0.0.1, wired as a
LINE: node i bootstraps only to node i-1, and peer discovery is off
(`[p2p] discover = false`), so every record crosses N-1 hops. Node 0 holds a
carrier credential; every node is provisioned with the authority's records.
Then, measured in this one run:

- `records_per_s`: CLIENTS concurrent clients POST scans to node 0's
  /v1/records/batch (BATCH per request) until RECORDS are written; the clock
  runs from the first POST until every node's GET /v1/status reports the same
  `record_count` and `state_root` (polled every POLL_S).
- `p50_ms` / `p99_ms`: single-record POSTs to /v1/records paced at RATE per
  second for LATENCY_S seconds (several clients take the next send slot);
  from each 201 until the record is visible at the far node (N-1). Visibility
  is polled: one client asks the far node for the writer's feed head
  (GET /v1/feeds/{author}?from=<next>&limit=1) in a loop with a 1 ms pause,
  and a record counts as visible at the first answer whose head seq reaches
  its seq (a feed is stored contiguously, so head >= seq means it is there).
- `catchup_per_s`: a fresh node started at the end of the line once all
  records exist (bootstrapping to node N-1); its record count over the time
  from launching its process until its state_root matches. `catchup_sync_s`
  leaves out process start-up: from the node's "peer connected" log line.
- `raw_verify_per_s`: bare PyNaCl `VerifyKey.verify` over this run's record
  type (CPU time, best of 3), the floor of per-record signature checking.
- `converged`: every node, the fresh one included, agreed at the end.

Goals (issue 5): records_per_s >= 5,000; catchup_per_s >= 2 x raw verify;
p99_ms <= 250 at 500 records/s; converged. `--json` prints exactly one JSON
object. The bench imports nothing from `tests/`.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trio

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import nacl.signing  # noqa: E402

from bench.httpclient import Conn  # noqa: E402
from bench.workload import container  # noqa: E402
from crypto.didkey import did_from_public  # noqa: E402
from node.config import Config, LimitsSection, NodeSection, P2PSection, RpcSection  # noqa: E402
from node.datadir import DataDir  # noqa: E402
from node.ledger import Ledger  # noqa: E402
from node.p2p import peer_id_of  # noqa: E402
from node.scenario import World  # noqa: E402
from node.store import Store  # noqa: E402
from node.testnet import free_port  # noqa: E402
from protocol import codec  # noqa: E402
from protocol.envelope import SIGNING_DOMAIN  # noqa: E402

CLIENTS = 4
BATCH = 1000
RATE = 500
POLL_S = 0.1
CONTAINERS = 500
PLACES = (("NL", "NLRTM"), ("DE", "DEHAM"), ("BE", "BEANR"), ("CN", "CNSHA"), ("SG", "SGSIN"))
EVENTS = ("observe", "gate_in", "gate_out", "load", "discharge")
GOALS = {"records_per_s": 5_000, "catchup_ratio": 2.0, "p99_ms": 250}
KEYS = ("nodes", "records", "records_per_s", "catchup_per_s", "raw_verify_per_s", "p50_ms",
        "p99_ms", "converged")


def scan(i: int) -> dict[str, Any]:
    country, locode = PLACES[i % len(PLACES)]
    return {"type": "scan", "body": {
        "object": {"kind": "container", "id": container(i % CONTAINERS)},
        "place": {"country": country, "locode": locode},
        "event": EVENTS[i % len(EVENTS)], "at": 1_750_000_000_000 + i}}


# -- nodes --------------------------------------------------------------------------------


@dataclass
class Member:
    name: str
    data: DataDir
    multiaddr: str
    process: subprocess.Popen[bytes] | None = None
    url: str = ""

    @property
    def log(self) -> Path:
        return self.data.path.parent / f"{self.name}.log"


def provision(root: Path, n: int) -> tuple[list[Member], bytes]:
    """N line nodes plus one fresh node for the catch-up, each with the authority's records.

    Node 0's key holds a carrier credential. Returns the members and its public key."""
    w = World.create(seed=5, t0=int(time.time() * 1000))
    writer_key = w.key("writer")
    w.party("carrier", "Bench Carrier", ["NL"], key=writer_key)
    members: list[Member] = []
    for i in range(n + 1):
        key = writer_key if i == 0 else w.key(f"node-{i}")
        port = free_port()
        addr = f"/ip4/127.0.0.1/tcp/{port}/p2p/{peer_id_of(key.public.raw)}"
        boot = (members[-1].multiaddr,) if members else ()
        cfg = Config(node=NodeSection(role="carrier" if i == 0 else "observer", log_level="info"),
                     p2p=P2PSection(listen=(f"/ip4/127.0.0.1/tcp/{port}",), bootstrap=boot,
                                    discover=False),
                     rpc=RpcSection(port=0, max_body=16 << 20),
                     limits=LimitsSection(pending=100_000))
        name = f"node{i}" if i < n else "fresh"
        d = DataDir.init(root / name, w.genesis, key=key, config=cfg)
        store = Store.open(d.db_path)
        try:
            Ledger(store, w.genesis).submit([r.wire for r in w.records], w.now)
        finally:
            store.close()
        members.append(Member(name, d, addr))
    return members, writer_key.public.raw


def launch(m: Member) -> None:
    exe = Path(sys.executable).parent / "sealchain"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "node.cli"]
    with open(m.log, "ab") as log:
        m.process = subprocess.Popen([*cmd, "run", "--data", str(m.data.path)], cwd=ROOT,
                                     stdout=log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)


async def wait_rpc(m: Member, limit_s: float = 60.0) -> None:
    with trio.move_on_after(limit_s):
        while not m.data.addr_file.exists():
            assert m.process is not None
            if m.process.poll() is not None:
                raise SystemExit(f"bench: {m.name} exited; see {m.log}")
            await trio.sleep(0.02)
    if not m.data.addr_file.exists():
        raise SystemExit(f"bench: {m.name} did not start within {limit_s:.0f} s; see {m.log}")
    m.url = m.data.addr_file.read_text().strip()


def cpu_s(m: Member) -> float:
    """CPU seconds (user + system) the node's process has used so far (Linux /proc)."""
    try:
        assert m.process is not None
        fields = Path(f"/proc/{m.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError, AssertionError):
        return math.nan


def stop(members: list[Member]) -> None:
    for m in members:
        if m.process is not None and m.process.poll() is None:
            m.process.send_signal(signal.SIGTERM)
    for m in members:
        if m.process is None:
            continue
        try:
            m.process.wait(10)
        except subprocess.TimeoutExpired:
            m.process.kill()
            m.process.wait()


async def status(m: Member) -> dict[str, Any]:
    conn = await Conn.open(m.url, m.data.tokens().read)
    async with conn.stream:
        result: dict[str, Any] = await conn.request("GET", "/v1/status")
        return result


async def statuses(members: list[Member]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = [{} for _ in members]

    async def one(i: int) -> None:
        out[i] = await status(members[i])

    async with trio.open_nursery() as n:
        for i in range(len(members)):
            n.start_soon(one, i)
    return out


async def converge(members: list[Member], count: int, limit_s: float) -> tuple[float, bool]:
    """Poll until every node reports `count` records and one state_root: (time, agreed)."""
    with trio.move_on_after(limit_s):
        while True:
            st = await statuses(members)
            if all(s["record_count"] >= count for s in st) \
                    and len({s["state_root"] for s in st}) == 1:
                return time.perf_counter(), True
            await trio.sleep(POLL_S)
    return time.perf_counter(), False


# -- phases -------------------------------------------------------------------------------


async def wait_line(members: list[Member], limit_s: float = 60.0) -> None:
    """Until each node is connected to exactly its neighbours in the line."""
    want = [2 if 0 < i < len(members) - 1 else 1 for i in range(len(members))]
    if len(members) == 1:
        want = [0]
    got: list[int] = []
    with trio.move_on_after(limit_s):
        while True:
            st = await statuses(members)
            got = [len(s["connected_peers"]) for s in st]
            if got == want:
                return
            await trio.sleep(0.1)
    raise SystemExit(f"bench: the line did not form (peers per node {got}, want {want})")


async def write_batches(m: Member, total: int, offset: int) -> None:
    per_req = min(BATCH, total)
    todo = list(range(offset, offset + total, per_req))

    async def client() -> None:
        conn = await Conn.open(m.url, m.data.tokens().write)
        async with conn.stream:
            while todo:
                start = todo.pop(0)
                n = min(per_req, offset + total - start)
                body = json.dumps({"records": [scan(start + i) for i in range(n)]}).encode()
                await conn.request("POST", "/v1/records/batch", body)

    async with trio.open_nursery() as nursery:
        for _ in range(CLIENTS):
            nursery.start_soon(client)


async def latency(writer: Member, far: Member, author: bytes, seconds: float, rate: int,
                  offset: int) -> tuple[list[float], float]:
    """Write-to-visible latency at the far node, in ms, for records paced at `rate`/s."""
    total = max(1, int(seconds * rate))
    acked: dict[int, float] = {}  # seq -> ack time
    seen: dict[int, float] = {}  # seq -> first time visible at the far node
    next_slot = 0
    did = did_from_public(author)
    t0 = time.perf_counter() + 0.2
    done = trio.Event()

    async def client() -> None:
        nonlocal next_slot
        conn = await Conn.open(writer.url, writer.data.tokens().write)
        async with conn.stream:
            while next_slot < total:
                i, next_slot = next_slot, next_slot + 1
                await trio.sleep_until(trio.current_time() + t0 + i / rate - time.perf_counter())
                ack = await conn.request("POST", "/v1/records",
                                         json.dumps(scan(offset + i)).encode())
                acked[ack["seq"]] = time.perf_counter()

    async def poll() -> None:
        conn = await Conn.open(far.url, far.data.tokens().read)
        high = 0
        async with conn.stream:
            while not done.is_set() or any(s not in seen for s in acked):
                feed = await conn.request("GET", f"/v1/feeds/{did}?from={high + 1}&limit=1")
                now, head = time.perf_counter(), feed["head"]["seq"]
                for s in range(high + 1, head + 1):
                    seen[s] = now
                high = max(high, head)
                await trio.sleep(0.001)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(poll)
        async with trio.open_nursery() as clients:
            for _ in range(max(8, rate // 10)):  # enough in flight to hold the pace
                clients.start_soon(client)
        sent = time.perf_counter() - t0
        done.set()
    return sorted(max(0.0, seen[s] - t) * 1000 for s, t in acked.items()), total / sent


def connected_at(log: Path) -> float | None:
    """Wall-clock time of the first "peer connected" line in a node's log."""
    for line in log.read_text(errors="replace").splitlines():
        if "peer connected" in line and line.startswith("ts="):
            stamp = line[3:].split(" level=")[0]
            return datetime.datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f").timestamp()
    return None


def raw_verify(n: int = 5000, rounds: int = 3) -> float:
    """Bare PyNaCl verify over scans like the bench writes, CPU time, best of `rounds`."""
    w = World.create(seed=9)
    p = w.party("carrier", "Verify Carrier", ["NL"])
    records = [w.sign(p, "scan", scan(i)["body"]) for i in range(n)]
    vk = nacl.signing.VerifyKey(p.pub)
    msgs = [(SIGNING_DOMAIN + codec.decode(r.wire)[0], r.signature) for r in records]
    best = math.inf
    for _ in range(rounds):
        t = time.process_time()
        for m, sig in msgs:
            vk.verify(m, sig)
        best = min(best, time.process_time() - t)
    return n / best


def percentile(xs: list[float], q: float) -> float:
    return xs[min(len(xs) - 1, max(0, math.ceil(q * len(xs)) - 1))] if xs else math.nan


# -- the run ------------------------------------------------------------------------------


async def run(members: list[Member], author: bytes, args: argparse.Namespace,
              say: Any) -> dict[str, Any]:
    line, fresh = members[:-1], members[-1]
    for m in line:
        launch(m)
    for m in line:
        await wait_rpc(m)
    await wait_line(line)
    base = (await status(line[0]))["record_count"]
    # Warm-up: a few records through the whole line (gossip meshes form on heartbeats).
    await write_batches(line[0], 10, 0)
    _, ok = await converge(line, base + 10, 60)
    say(f"line of {len(line)} up and warm (converged={ok})")
    written = 10

    cpu0 = [cpu_s(m) for m in line]
    t0 = time.perf_counter()
    await write_batches(line[0], args.records, written)
    t_acked = time.perf_counter()
    written += args.records
    t1, ok = await converge(line, base + written, args.timeout)
    rate = args.records / (t1 - t0)
    cpu_us = [round((cpu_s(m) - c) / args.records * 1e6, 1) for m, c in zip(line, cpu0, strict=True)]
    say(f"throughput: {args.records:,} records acked in {t_acked - t0:.1f} s, all {len(line)} "
        f"nodes converged after {t1 - t0:.1f} s: {rate:,.0f} records/s (converged={ok}); "
        f"CPU µs per record, node by node: {cpu_us}")

    lat: list[float] = []
    achieved = 0.0
    if args.latency_s > 0:
        lat, achieved = await latency(line[0], line[-1], author, args.latency_s, args.rate,
                                      written)
        written += len(lat)
        say(f"latency at {args.rate}/s (achieved {achieved:,.0f}/s) for {args.latency_s:g} s, "
            f"far node {line[-1].name}: "
            f"p50 {percentile(lat, 0.5):.1f} ms, p99 {percentile(lat, 0.99):.1f} ms, "
            f"max {lat[-1] if lat else math.nan:.1f} ms")
        _, ok2 = await converge(line, base + written, args.timeout)
        ok = ok and ok2

    target = (await status(line[-1]))
    wall0, c0 = time.time(), time.perf_counter()
    launch(fresh)
    await wait_rpc(fresh)
    t_up = time.perf_counter()
    with trio.move_on_after(args.timeout):
        while True:
            s = await status(fresh)
            if s["state_root"] == target["state_root"]:
                break
            await trio.sleep(0.02)
    c1 = time.perf_counter()
    caught = s["state_root"] == target["state_root"]
    synced = s["record_count"] - base
    wall_conn = connected_at(fresh.log)
    sync_s = (c1 - c0) - (wall_conn - wall0) if wall_conn is not None else math.nan
    say(f"catch-up: fresh node up in {t_up - c0:.1f} s, matched {synced:,} records after "
        f"{c1 - c0:.1f} s from launch ({sync_s:.2f} s from its first connection)")
    st = await statuses(members)
    agreed = len({x["state_root"] for x in st}) == 1 and \
        len({x["record_count"] for x in st}) == 1
    return {
        "nodes": len(line), "records": args.records, "records_per_s": round(rate, 1),
        "cpu_us_per_record": cpu_us,
        "catchup_per_s": round(synced / sync_s, 1),
        "catchup_records": synced, "catchup_sync_s": round(sync_s, 3),
        "catchup_launch_s": round(c1 - c0, 3),
        "p50_ms": round(percentile(lat, 0.5), 2), "p99_ms": round(percentile(lat, 0.99), 2),
        "latency_records": len(lat), "latency_rate": round(achieved, 1) if lat else 0,
        "converged": bool(ok and caught and agreed),
    }


def table(r: dict[str, Any]) -> str:
    ratio = r["catchup_per_s"] / r["raw_verify_per_s"]
    rows = [
        ("records/s end to end", f"{r['records_per_s']:,.0f}",
         f">= {GOALS['records_per_s']:,}", r["records_per_s"] >= GOALS["records_per_s"]),
        ("catch-up records/s", f"{r['catchup_per_s']:,.0f} ({ratio:.2f}x raw)",
         f">= {GOALS['catchup_ratio']:g}x raw", ratio >= GOALS["catchup_ratio"]),
        ("raw verify/s (PyNaCl)", f"{r['raw_verify_per_s']:,.0f}", "", None),
        (f"far-end p50 at {RATE}/s", f"{r['p50_ms']:.1f} ms", "", None),
        (f"far-end p99 at {RATE}/s", f"{r['p99_ms']:.1f} ms", f"<= {GOALS['p99_ms']} ms",
         r["p99_ms"] <= GOALS["p99_ms"]),
        ("converged", str(r["converged"]), "true", r["converged"]),
    ]
    lines = [f"nodes: {r['nodes']} in a line, records: {r['records']:,}", "",
             f"{'measure':<26} {'figure':>26}  goal"]
    for name, fig, goal, ok in rows:
        mark = "" if ok is None else ("  ok" if ok else "  MISSED")
        lines.append(f"{name:<26} {fig:>26}  {goal}{mark}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--nodes", type=int, default=5, help="nodes in the line (default 5)")
    ap.add_argument("--records", type=int, default=50_000, help="records to write (default 50000)")
    ap.add_argument("--latency-s", type=float, default=10.0,
                    help="seconds of paced single writes for the latency figures (0: skip)")
    ap.add_argument("--rate", type=int, default=RATE, help="paced writes per second")
    ap.add_argument("--timeout", type=float, default=600.0, help="seconds to wait for convergence")
    ap.add_argument("--keep", type=Path, help="use this (empty) directory and keep it")
    args = ap.parse_args(argv)
    if args.nodes < 2 or args.records < 1:
        ap.error("--nodes must be at least 2 and --records positive")

    def say(msg: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr if args.json else sys.stdout,
              flush=True)

    with tempfile.TemporaryDirectory(prefix="sealchain-replicate-") as tmp:
        root = args.keep or Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        members, author = provision(root, args.nodes)
        try:
            result = trio.run(run, members, author, args, say)
        finally:
            stop(members)
    result["raw_verify_per_s"] = round(raw_verify(), 1)
    result["cpus"] = os.cpu_count()
    ordered = {k: result[k] for k in KEYS} | {k: v for k, v in result.items() if k not in KEYS}
    print(json.dumps(ordered) if args.json else table(ordered))
    return 0


if __name__ == "__main__":
    sys.exit(main())
