"""bench/instructions.py: its help, and one clear line when valgrind is missing.

A real count starts two nodes under valgrind (about a minute): run it by hand,
see bench/RESULTS.md.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "bench" / "instructions.py"


def test_help_names_what_it_counts() -> None:
    done = subprocess.run([sys.executable, str(SCRIPT), "--help"], capture_output=True,
                          text=True, timeout=60, cwd=ROOT, check=False)
    assert done.returncode == 0
    assert "--batch" in done.stdout
    assert "Instructions a node executes" in done.stdout


def test_without_valgrind_it_says_so(tmp_path: Path) -> None:
    env = {**os.environ, "PATH": str(tmp_path)}  # no valgrind on this PATH
    done = subprocess.run([sys.executable, str(SCRIPT), "--json"], capture_output=True,
                          text=True, timeout=60, cwd=ROOT, env=env, check=False)
    assert done.returncode == 1
    assert "valgrind is not installed" in done.stderr
    assert done.stdout == ""
