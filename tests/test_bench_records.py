"""Smoke test of `bench/records.py`: it runs and prints the agreed JSON. Never its speed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
KEYS = {"sign_per_s", "validate_per_s", "raw_verify_per_s", "range_verify_per_s"}
OPTIONAL = {"records", "validate_ratio", "range_ratio"}


def test_records_bench_prints_one_json_object() -> None:
    out = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "records.py"), "--records", "200", "--json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    result = json.loads(out.stdout)  # exactly one JSON document, nothing else on stdout
    assert isinstance(result, dict)
    assert KEYS <= set(result) <= KEYS | OPTIONAL
    assert result["records"] == 200
    for key in KEYS:
        assert isinstance(result[key], float | int)
        assert result[key] > 0
