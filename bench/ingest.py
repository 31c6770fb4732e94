"""Ingest throughput: how fast a node stores signed records, against its floors.

    python bench/ingest.py [--json] [--records N] [--batch B]

A child process (`bench/ingest_workload.py`) makes N realistic signed records
from 100+ authors and writes them to a temporary directory, so signing them
counts neither in the timings nor in this process's peak RSS. Then, each on a
fresh LevelDB store and each streaming the records back B at a time:

- `ingest_per_s`: `Ledger.submit(wires)`, as records come from clients and
  gossip: decode, one signature check per record, ingest, one synced batch.
- `range_ingest_per_s`: the same records as sync delivers them, contiguous
  runs of one feed: `Record.from_bytes(verify=False)`, `feed.verify_range`
  per run (one signature per run), `Ledger.submit_run`, one synced batch.
- `raw_verify_per_s`: bare PyNaCl `VerifyKey.verify` over the same signed
  messages (the floor of per-record signature checking).
- `raw_put_per_s`: bare plyvel: a synced write batch per B records, putting
  each record's wire bytes under its id (the floor of durable storage).
- `range_floor_per_s`: what no range ingest in this stack can beat: the range
  path's decoding (`Record.from_bytes(verify=False)`, schemas included),
  `feed.verify_range` per run, and one synced batch (`Store.write`) of each
  record under its id, its feed entry and its author's head;
  no object index, no derived state, no alert rule. The distance from it to
  `range_ingest_per_s` is what the ledger's own work costs.
- `peak_rss_mb`: this process's peak resident set (`ru_maxrss`). It counts
  the pages of LevelDB's table files that LevelDB maps into memory to read
  them (file-backed, shared with the page cache, given back under pressure), so
  `peak_anon_mb` also reports the peak of the process's own memory (`RssAnon`
  of /proc/self/status, sampled after every batch; 0 where there is no /proc).

Goals (issue 3): ingest ≥ 0.5 × raw verify, range ingest ≥ 2 × raw verify,
peak RSS ≤ 300 MB at 1,000,000 records. Only elapsed time inside the measured
calls counts; reading the temporary files does not.
"""

from __future__ import annotations

import argparse
import datetime
import json
import logging
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import msgpack  # noqa: E402
import nacl.signing  # noqa: E402
import plyvel  # noqa: E402
from ingest_workload import read_frames  # noqa: E402

from node.ledger import Ledger  # noqa: E402
from node.store import Store, WriteSet  # noqa: E402
from protocol.envelope import SIGNING_DOMAIN, Record, record_id  # noqa: E402
from protocol.feed import Head, verify_range  # noqa: E402
from protocol.genesis import Genesis  # noqa: E402

NOW = 1_900_000_000_000  # ms: after every record's timestamp
GOAL_RSS_MB = 300.0
KEYS = ("records", "ingest_per_s", "range_ingest_per_s", "raw_verify_per_s", "raw_put_per_s",
        "range_floor_per_s", "peak_rss_mb", "peak_anon_mb")
_peak_anon_kb = 0


def sample_anon() -> None:
    """Note this process's anonymous resident memory (kB) if it is the highest yet."""
    global _peak_anon_kb
    try:
        with open("/proc/self/status", "rb") as f:
            for line in f:
                if line.startswith(b"RssAnon:"):
                    _peak_anon_kb = max(_peak_anon_kb, int(line.split()[1]))
                    return
    except OSError:
        return


def chunks(path: Path, size: int) -> Iterator[list[bytes]]:
    with open(path, "rb") as f:
        chunk: list[bytes] = []
        for wire in read_frames(f):
            chunk.append(wire)
            if len(chunk) == size:
                yield chunk
                chunk = []
        if chunk:
            yield chunk


def generate(n: int, out: Path) -> str:
    cmd = [sys.executable, str(HERE / "ingest_workload.py"), "--records", str(n), "--out", str(out)]
    done = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return done.stdout.strip()


def bench_raw_verify(path: Path, batch: int) -> float:
    keys: dict[bytes, Any] = {}
    elapsed = 0.0
    count = 0
    for chunk in chunks(path, batch):
        work = []
        for wire in chunk:
            unsigned, sig = msgpack.unpackb(wire)
            author = msgpack.unpackb(unsigned)["author"]
            vk = keys.get(author)
            if vk is None:
                vk = keys[author] = nacl.signing.VerifyKey(author)
            work.append((vk, SIGNING_DOMAIN + unsigned, sig))
        t = time.perf_counter()
        for vk, msg, sig in work:
            vk.verify(msg, sig)
        elapsed += time.perf_counter() - t
        count += len(work)
    return count / elapsed


def bench_raw_put(path: Path, batch: int, db_path: Path) -> float:
    db = plyvel.DB(str(db_path), create_if_missing=True)
    elapsed = 0.0
    count = 0
    try:
        for chunk in chunks(path, batch):
            items = [(b"R" + record_id(w), w) for w in chunk]
            t = time.perf_counter()
            with db.write_batch(transaction=True, sync=True) as wb:
                for k, v in items:
                    wb.put(k, v)
            elapsed += time.perf_counter() - t
            count += len(items)
    finally:
        db.close()
    return count / elapsed


def decode_runs(chunk: list[bytes], anchor: Callable[[bytes], Head | None]) -> list[Record]:
    """Decode records as sync receives them (no signature each) and authenticate each
    run of one feed by `verify_range`, anchored at `anchor(author)`."""
    records = [Record.from_bytes(w, verify=False) for w in chunk]
    start = 0
    for i in range(1, len(records) + 1):
        if i == len(records) or records[i].author != records[start].author:
            verify_range(records[start:i], anchor(records[start].author))
            start = i
    return records


def bench_range_floor(path: Path, batch: int, db_path: Path) -> float:
    """Decode, `verify_range` per run and store records, feed entries and heads only,
    through the node's own store (`Store.open`'s options, `Store.write`)."""
    store = Store.open(db_path)
    heads: dict[bytes, Head] = {}
    elapsed = 0.0
    count = 0
    try:
        for chunk in chunks(path, batch):
            t = time.perf_counter()
            records = decode_runs(chunk, heads.get)
            ws = WriteSet()
            for r in records:
                ws.put(b"R" + r.id, r.wire)
                ws.put(b"F" + r.author + r.seq.to_bytes(8, "big"), r.id)
                heads[r.author] = Head(r.seq, r.id)
            for author, head in heads.items():
                ws.put(b"H" + author, head.seq.to_bytes(8, "big") + head.id)
            store.write(ws)
            elapsed += time.perf_counter() - t
            count += len(chunk)
    finally:
        store.close()
    return count / elapsed


def _ledger(genesis: Genesis, db_path: Path) -> tuple[Store, Ledger]:
    store = Store.open(db_path)
    return store, Ledger(store, genesis)


def bench_ingest(path: Path, batch: int, genesis: Genesis, db_path: Path) -> tuple[float, Counter[str]]:
    store, ledger = _ledger(genesis, db_path)
    statuses: Counter[str] = Counter()
    elapsed = 0.0
    count = 0
    try:
        for chunk in chunks(path, batch):
            t = time.perf_counter()
            outcomes = ledger.submit(chunk, NOW)
            elapsed += time.perf_counter() - t
            count += len(chunk)
            statuses.update(o.status for o in outcomes)
            sample_anon()
    finally:
        store.close()
    return count / elapsed, statuses


def bench_range_ingest(path: Path, batch: int, genesis: Genesis, db_path: Path
                       ) -> tuple[float, Counter[str]]:
    store, ledger = _ledger(genesis, db_path)
    statuses: Counter[str] = Counter()
    elapsed = 0.0
    count = 0
    try:
        for chunk in chunks(path, batch):
            t = time.perf_counter()
            outcomes = ledger.submit_run(decode_runs(chunk, ledger.head), NOW)
            elapsed += time.perf_counter() - t
            count += len(chunk)
            statuses.update(o.status for o in outcomes)
            sample_anon()
    finally:
        store.close()
    return count / elapsed, statuses


def run(n: int, batch: int, *, progress: bool) -> tuple[dict[str, Any], dict[str, Any]]:
    def say(msg: str) -> None:
        if progress:
            print(msg, file=sys.stderr, flush=True)

    with tempfile.TemporaryDirectory(prefix="sealchain-bench-ingest-") as tmp:
        d = Path(tmp)
        t = time.perf_counter()
        info = generate(n, d / "records")
        say(f"generated and signed in {time.perf_counter() - t:.1f}s (child process): {info}")
        genesis = Genesis.from_bytes((d / "records" / "genesis.bin").read_bytes())
        arrival, runs = d / "records" / "arrival.bin", d / "records" / "runs.bin"

        raw_verify = bench_raw_verify(arrival, batch)
        say(f"raw verify      {raw_verify:12,.0f} /s")
        raw_put = bench_raw_put(arrival, batch, d / "raw.db")
        say(f"raw put         {raw_put:12,.0f} /s")
        floor = bench_range_floor(runs, batch, d / "floor.db")
        say(f"range floor     {floor:12,.0f} /s")
        ingest, st1 = bench_ingest(arrival, batch, genesis, d / "ingest.db")
        say(f"ingest          {ingest:12,.0f} /s   {dict(st1)}")
        range_ingest, st2 = bench_range_ingest(runs, batch, genesis, d / "range.db")
        say(f"range ingest    {range_ingest:12,.0f} /s   {dict(st2)}")
        for name, st in (("ingest", st1), ("range ingest", st2)):
            if st["stored"] != n:
                raise SystemExit(f"{name}: expected {n} records stored, got {dict(st)}")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    figures = {
        "records": n,
        "ingest_per_s": round(ingest, 1),
        "range_ingest_per_s": round(range_ingest, 1),
        "raw_verify_per_s": round(raw_verify, 1),
        "raw_put_per_s": round(raw_put, 1),
        "range_floor_per_s": round(floor, 1),
        "peak_rss_mb": round(peak, 1),
        "peak_anon_mb": round(_peak_anon_kb / 1024, 1),
    }
    return figures, {"workload": info}


def table(fig: dict[str, Any], batch: int) -> str:
    rv = fig["raw_verify_per_s"]
    rows = [
        ("ingest (submit)", f"{fig['ingest_per_s']:,.0f} /s", f"≥ 0.5 × raw verify = {0.5 * rv:,.0f}",
         fig["ingest_per_s"] / (0.5 * rv)),
        ("range ingest (sync)", f"{fig['range_ingest_per_s']:,.0f} /s",
         f"≥ 2 × raw verify = {2 * rv:,.0f}", fig["range_ingest_per_s"] / (2 * rv)),
        ("raw verify (nacl)", f"{rv:,.0f} /s", "reference", None),
        ("raw put (plyvel, synced)", f"{fig['raw_put_per_s']:,.0f} /s", "reference", None),
        ("range floor", f"{fig['range_floor_per_s']:,.0f} /s",
         "reference: no index, no derived state", None),
        ("peak RSS", f"{fig['peak_rss_mb']:,.1f} MB", f"≤ {GOAL_RSS_MB:.0f} MB at 1M records",
         GOAL_RSS_MB / fig["peak_rss_mb"]),
        ("peak anonymous RSS", f"{fig['peak_anon_mb']:,.1f} MB", "(without mapped table files)",
         None),
    ]
    out = [f"ingest benchmark: {fig['records']:,} records, batch {batch}, "
           f"python {platform.python_version()}, nproc {os.cpu_count()}, "
           f"{datetime.date.today().isoformat()}", ""]
    out.append(f"{'figure':<26} {'value':>14}  {'goal':<36} {'of goal':>8}")
    for name, value, goal, ratio in rows:
        r = f"{ratio:.2f}×" if ratio is not None else ""
        mark = "" if ratio is None else ("  ok" if ratio >= 1 else "  below")
        out.append(f"{name:<26} {value:>14}  {goal:<36} {r:>8}{mark}")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--records", type=int, default=100_000, help="records to ingest")
    ap.add_argument("--batch", type=int, default=1_000, help="records per submit call")
    args = ap.parse_args(argv)
    if args.records < 1 or args.batch < 1:
        ap.error("--records and --batch must be positive")
    # The workload raises a few alerts (temperature excursions): their log lines would
    # go to stderr through logging's last-resort handler, which is no daemon's setup.
    logging.getLogger("sealchain").setLevel(logging.ERROR)
    figures, _ = run(args.records, args.batch, progress=not args.json)
    if args.json:
        print(json.dumps({k: figures[k] for k in KEYS}))
    else:
        print(table(figures, args.batch))
    return 0


if __name__ == "__main__":
    sys.exit(main())
