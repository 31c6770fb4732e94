"""Record throughput: signing, validating and range-verifying realistic records.

    python bench/records.py [--json] [--records N] [--repeat R]

Builds N records (default 20,000) with `bench/workload.py`: scans, sensor
readings, hand-overs and mints of 100 serials, from 8 interleaved authors, each
author's records chained by seq and prev. Then measures, in records per second:

- `sign_per_s`: `Record.sign` (schema check of the body, canonical encoding,
  Ed25519 signature, record id);
- `validate_per_s`: `Record.from_bytes` with the signature check, i.e. what
  a node does to one record from a peer: size limit, canonical decode of the
  envelope and its unsigned map, header rules, signature, body schema, id;
- `raw_verify_per_s`: bare PyNaCl `VerifyKey.verify` over the same signed
  messages (domain + unsigned bytes), keys built once: the floor;
- `range_verify_per_s`: each author's feed in runs of 1,000 records decoded
  with `verify=False` and checked by `feed.verify_range` (one signature per
  run), as sync delivers them.

Goals (issue 2): validate ≥ 0.7 × raw verify; range ≥ 3 × raw verify.

Each measure is timed in chunks of 1,000 records by this process's CPU time,
the measures alternating chunk by chunk, in R rounds (default 3); per chunk the
best round counts. So a busy machine disturbs the figures, and their ratios,
less. The bench imports nothing from `tests/`. `--json` prints exactly one JSON
object (the four figures, `records`, and the two ratios).
"""

from __future__ import annotations

import argparse
import functools
import gc
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import nacl.signing  # noqa: E402

from bench import workload  # noqa: E402
from protocol import codec  # noqa: E402
from protocol.envelope import SIGNING_DOMAIN, Record  # noqa: E402
from protocol.feed import Head, verify_range  # noqa: E402

RUN: int = 1_000
VALIDATE_GOAL = 0.7
RANGE_GOAL = 3.0


def timed(fn: Callable[[], Any]) -> float:
    """CPU time of this process for one call of `fn`, in seconds.

    CPU time rather than wall time: on a shared machine, time spent waiting for
    a core is not the code's cost. On an idle machine the two agree (the
    measured work is single-threaded and does no I/O).
    """
    t = time.process_time()
    fn()
    return time.process_time() - t


def measure(n: int, repeat: int) -> dict[str, Any]:
    specs = workload.specs(n)
    signers = workload.keys(max(s.author for s in specs) + 1)
    signed: list[Record] = workload.sign(specs, signers)

    # Signing, in arrival order, in slices that continue each author's feed.
    sign_chunks: list[tuple[list[workload.Spec], dict[int, Record], bytes]] = []
    heads: dict[int, Record] = {}
    for i in range(0, n, RUN):
        sign_chunks.append((specs[i : i + RUN], dict(heads), signed[min(i + RUN, n) - 1].wire))
        for s, r in zip(specs[i : i + RUN], signed[i : i + RUN], strict=True):
            heads[s.author] = r

    # Validation, raw verification and range verification, on each author's feed in
    # runs of RUN records (as sync delivers them): the same records for all three.
    verify_keys = {r.author: nacl.signing.VerifyKey(r.author) for r in signed}
    runs: list[tuple[list[bytes], list[tuple[Any, bytes, bytes]], Head | None]] = []
    for feed in workload.feeds(signed).values():
        for i in range(0, len(feed), RUN):
            part = feed[i : i + RUN]
            messages = [
                (verify_keys[r.author], SIGNING_DOMAIN + codec.decode(r.wire)[0], r.signature)
                for r in part
            ]
            anchor = Head(feed[i - 1].seq, feed[i - 1].id) if i else None
            runs.append(([r.wire for r in part], messages, anchor))
    assert sum(len(w) for w, _, _ in runs) == n

    def sign(
        chunk: list[workload.Spec], start: dict[int, Record], last: bytes
    ) -> Callable[[], None]:
        def go() -> None:
            out = workload.sign(chunk, signers, heads=dict(start))
            assert out[-1].wire == last

        return go

    def validate(wires: list[bytes]) -> None:
        for w in wires:
            Record.from_bytes(w)

    def raw_verify(messages: list[tuple[Any, bytes, bytes]]) -> None:
        for vk, message, sig in messages:
            vk.verify(message, sig)

    def range_verify(wires: list[bytes], anchor: Head | None) -> None:
        verify_range([Record.from_bytes(w, verify=False) for w in wires], anchor)

    # Each measure is timed chunk by chunk, the measures alternating, in `repeat`
    # rounds; per chunk the best round counts. A burst of load on a shared machine
    # then spoils single chunks of single rounds, not whole measures or their ratios.
    tasks: dict[str, list[Callable[[], None]]] = {
        "sign": [sign(*c) for c in sign_chunks],
        "validate": [functools.partial(validate, w) for w, _, _ in runs],
        "raw": [functools.partial(raw_verify, m) for _, m, _ in runs],
        "range": [functools.partial(range_verify, w, a) for w, _, a in runs],
    }
    best = {name: [float("inf")] * len(fns) for name, fns in tasks.items()}
    for _ in range(repeat):
        gc.collect()
        for c in range(max(len(fns) for fns in tasks.values())):
            for name, fns in tasks.items():
                if c < len(fns):
                    best[name][c] = min(best[name][c], timed(fns[c]))
    total = {name: sum(times) for name, times in best.items()}

    raw = n / total["raw"]
    return {
        "records": n,
        "sign_per_s": round(n / total["sign"], 1),
        "validate_per_s": round(n / total["validate"], 1),
        "raw_verify_per_s": round(raw, 1),
        "range_verify_per_s": round(n / total["range"], 1),
        "validate_ratio": round(n / total["validate"] / raw, 3),
        "range_ratio": round(n / total["range"] / raw, 3),
    }


def table(r: dict[str, Any]) -> str:
    rows = [
        ("sign", r["sign_per_s"], "", ""),
        ("validate (decode + verify)", r["validate_per_s"], f"{r['validate_ratio']:.2f}×",
         f"≥ {VALIDATE_GOAL}× raw"),
        ("raw verify (PyNaCl)", r["raw_verify_per_s"], "1.00×", ""),
        (f"range verify (runs of {RUN})", r["range_verify_per_s"], f"{r['range_ratio']:.2f}×",
         f"≥ {RANGE_GOAL:g}× raw"),
    ]
    ok = {
        "validate": r["validate_ratio"] >= VALIDATE_GOAL,
        "range": r["range_ratio"] >= RANGE_GOAL,
    }
    lines = [f"records: {r['records']:,}", "",
             f"{'measure':<30} {'records/s':>12} {'vs raw':>8}  goal"]
    for name, rate, ratio, goal in rows:
        mark = ""
        if goal:
            mark = "  ok" if ok[name.split()[0]] else "  MISSED"
        lines.append(f"{name:<30} {rate:>12,.0f} {ratio:>8}  {goal}{mark}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--records", type=int, default=20_000, help="records to make (default 20000)")
    p.add_argument("--repeat", type=int, default=3, help="rounds; per chunk the best counts")
    args = p.parse_args(argv)
    if args.records < 1 or args.repeat < 1:
        p.error("--records and --repeat must be positive")
    result = measure(args.records, args.repeat)
    print(json.dumps(result) if args.json else table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
