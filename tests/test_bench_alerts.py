"""Smoke test of `bench/alerts.py`: four real nodes on loopback time a few alerts and the
bench prints the agreed JSON. Never its speed: the figures belong in bench/RESULTS.md."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ALERTS = 5


def test_alerts_bench_prints_one_json_object() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "alerts.py"), "--alerts", str(ALERTS), "--json"],
        cwd=ROOT, capture_output=True, text=True, timeout=30, check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout)  # exactly one JSON document, nothing else on stdout
    assert isinstance(result, dict)
    assert {"alerts", "p50_ms", "p99_ms"} <= set(result)
    assert result["alerts"] == ALERTS
    assert result["derived_at_d"] + result["pushed_by_c"] + result["lost"] == ALERTS
    for key in ("p50_ms", "p99_ms"):
        assert isinstance(result[key], float | int)
        assert result[key] > 0, key
    assert result["p50_ms"] <= result["p99_ms"]
