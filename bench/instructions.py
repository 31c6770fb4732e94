"""Instructions a node executes per RPC write, counted by valgrind (cachegrind), not timed.

    python bench/instructions.py [--json] [--requests N] [--batch B]

The machines these benches run on change speed by ±25 % and more from one
minute to the next (shared cores), which hides a 10 % change in a rate. An
instruction count does not move with the machine: this starts `python -m
node.cli run` under `valgrind --tool=cachegrind --cache-sim=no` twice on fresh
data directories (the provisioning of `bench/rpc.py`), sends 8 concurrent
clients' warm-up requests to both, then N one-record requests (or N records in
requests of B with `--batch`) to the second only, and reports the difference
per request (per record with `--batch`): the whole node process, every thread,
user space only (the kernel's share of syscalls is not counted). Run it from
the checkout to measure: the node is started from the current directory, so a
`git worktree` of another commit measures that commit.

Needs valgrind (`apt-get install valgrind`); about a minute per run.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import trio

sys.path.insert(0, os.getcwd())

from bench.rpc import batches, provision, rpc_url, singles  # noqa: E402


def count(requests: int, batch: int | None) -> int:
    """Instructions of a node that served the warm-up, then `requests` more."""
    with tempfile.TemporaryDirectory(prefix="sealchain-instr-") as tmp:
        data = Path(tmp) / "node"
        d = provision(data)
        proc = subprocess.Popen(
            ["valgrind", "--tool=cachegrind", "--cache-sim=no",
             f"--cachegrind-out-file={Path(tmp) / 'cg.out'}",
             sys.executable, "-m", "node.cli", "run", "--data", str(data)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        url, token = rpc_url(proc, data, 300), d.tokens().write
        trio.run(singles, url, token, 8, 160)
        if requests and batch:
            trio.run(batches, url, token, 8, requests, batch)
        elif requests:
            trio.run(singles, url, token, 8, requests)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=300)
    found = re.search(r"I\s+refs:\s+([\d,]+)", err.decode())
    if found is None:
        raise SystemExit("bench: no instruction count in valgrind's output")
    return int(found.group(1).replace(",", ""))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--requests", type=int, default=800, help="requests (records with --batch)")
    ap.add_argument("--batch", type=int, default=None, help="records per /v1/records/batch request")
    args = ap.parse_args()
    if shutil.which("valgrind") is None:
        raise SystemExit("bench: valgrind is not installed (apt-get install valgrind)")
    base = count(0, args.batch)
    total = count(args.requests, args.batch)
    per = (total - base) / args.requests
    what = "record" if args.batch else "request"
    if args.json:
        print(json.dumps({"requests": args.requests, "batch": args.batch, f"instructions_per_{what}":
                          round(per)}))
    else:
        print(f"instructions per {what}: {per:,.0f} ({args.requests} "
              f"{'records in batches of ' + str(args.batch) if args.batch else 'requests'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
