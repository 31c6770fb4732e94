"""Smoke test of the ingest benchmark: it runs and reports every figure (never its speed)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
KEYS = {"records", "ingest_per_s", "range_ingest_per_s", "raw_verify_per_s", "raw_put_per_s",
        "range_floor_per_s",
        "peak_rss_mb", "peak_anon_mb"}


def test_ingest_bench_reports_every_figure() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "ingest.py"), "--records", "300", "--json"],
        capture_output=True, text=True, timeout=300, cwd=ROOT, check=False,
    )
    assert done.returncode == 0, done.stderr
    figures = json.loads(done.stdout)
    assert set(figures) == KEYS
    assert figures["records"] == 300
    for key in KEYS - {"records"}:
        assert isinstance(figures[key], (int, float)), key
        assert figures[key] > 0, key
