"""`sealchain demo --once`: the whole story on a real local testnet, as a script runs it.

Six node processes (authority, brand, manufacturer, carrier, forwarder, customs)
on 127.0.0.1; the story is played through their RPC. The command must exit 0
(every verdict and alert as the story expects), print both verdicts and the
alerts as they arrive, and leave no node process behind. Also the pure part of
the demo: what counts as "as expected".
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from node.demo import HONEST, TAMPERED, Outcome, alert_line

TIMEOUT = 300  # ~25 s on an idle 2-core machine, ~110 s at load 10 (nodes start slowly)


def node_processes(root: Path) -> list[int]:
    """Pids of processes whose command line names a directory under `root`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if any(arg.startswith(str(root).encode()) for arg in cmdline) and b"run" in cmdline:
            found.append(int(entry.name))
    return found


@pytest.mark.slow
def test_demo_once_plays_the_story_and_exits_zero(tmp_path: Path) -> None:
    root = tmp_path / "demo"
    proc = subprocess.Popen([sys.executable, "-m", "node.cli", "demo", "--once", "--dir",
                             str(root)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the demo and the nodes it started
        out, _ = proc.communicate()
        pytest.fail("demo --once did not finish in time:\n" + out.decode(errors="replace"))
    text = out.decode(errors="replace")
    assert proc.returncode == 0, text
    assert f"{HONEST}: GREEN" in text, text
    assert f"{TAMPERED}: RED" in text, text
    assert "came out as expected" in text
    live = [line for line in text.splitlines() if line.lstrip().startswith("! ")]
    for role, rule in (("customs", "seal_mismatch"), ("customs", "item_not_minted"),
                       ("brand", "seal_mismatch"), ("brand", "item_not_minted")):
        assert any(f"at {role}" in line and rule in line and TAMPERED in line
                   for line in live), (role, rule, text)
    assert not any(HONEST in line for line in live), text
    assert "sealchain alerts --follow" in text
    assert node_processes(root) == []


def alert(rule: str, subject: str, kind: str = "container") -> dict[str, Any]:
    return {"rule": rule, "severity": "critical", "subject": {"kind": kind, "id": subject},
            "reason": f"{rule} on {subject}", "ts": 1_700_000_000_000, "cursor": 1}


def good() -> Outcome:
    bad = [alert("seal_mismatch", TAMPERED), alert("item_not_minted", TAMPERED)]
    return Outcome(
        verdicts={HONEST: {"verdict": "GREEN", "reasons": []},
                  TAMPERED: {"verdict": "RED", "reasons": [{"code": "seal.mismatch"},
                                                           {"code": "item.not_minted"}]}},
        alerts={"customs": list(bad), "brand": list(bad)})


def test_the_expected_outcome() -> None:
    assert good().as_expected
    assert good().problems() == []


@pytest.mark.parametrize("spoil", ["amber", "no_counterfeit_reason", "customs_no_item",
                                   "customs_no_seal", "brand_no_item", "honest_alert"])
def test_any_deviation_is_not_as_expected(spoil: str) -> None:
    o = good()
    if spoil == "amber":
        o.verdicts[HONEST]["verdict"] = "AMBER"
    elif spoil == "no_counterfeit_reason":
        o.verdicts[TAMPERED]["reasons"] = [{"code": "seal.mismatch"}]
    elif spoil == "customs_no_item":
        o.alerts["customs"] = [alert("seal_mismatch", TAMPERED)]
    elif spoil == "customs_no_seal":
        o.alerts["customs"] = [alert("item_not_minted", TAMPERED)]
    elif spoil == "brand_no_item":
        o.alerts["brand"] = [alert("seal_mismatch", TAMPERED)]
    else:
        o.honest_alerts = [f"carrier-2: seal_mismatch container {HONEST}"]
    assert not o.as_expected
    assert len(o.problems()) == 1


def test_an_alert_reads_as_one_line() -> None:
    token = "ab" * 32
    line = alert_line("brand", alert("item_not_minted", token, kind="token"))
    assert "\n" not in line
    assert line.lstrip().startswith("! ")
    for part in ("at brand", "critical", "item_not_minted", "token abababab", "on " + token):
        assert part in line
