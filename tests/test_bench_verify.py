"""Smoke test of `bench/verify.py`: it runs on small containers and prints the agreed JSON.

Never its speed: the figures belong in bench/RESULTS.md, not in a test.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SIZES = ("100", "1000")


def test_verify_bench_prints_one_json_object() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "verify.py"), "--sizes", ",".join(SIZES),
         "--repeat", "1", "--json"],
        cwd=ROOT, capture_output=True, text=True, timeout=30, check=False,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)  # exactly one JSON document, nothing else on stdout
    assert isinstance(result, dict)
    assert {"verify_ms", "proofs_per_s", "verify_cold_ms", "verify_full_ms",
            "raw_verify_per_s"} <= set(result)
    for key in ("verify_ms", "verify_cold_ms", "verify_full_ms"):
        assert set(result[key]) == set(SIZES), key
        assert all(isinstance(v, float | int) and v > 0 for v in result[key].values()), key
    for key in ("proofs_per_s", "raw_verify_per_s"):
        assert isinstance(result[key], float | int)
        assert result[key] > 0, key


def test_verify_bench_rejects_bad_sizes() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "verify.py"), "--sizes", "10,x", "--json"],
        cwd=ROOT, capture_output=True, text=True, timeout=30, check=False,
    )
    assert done.returncode == 2
    assert done.stdout == ""
