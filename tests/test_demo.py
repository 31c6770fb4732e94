"""`sealchain demo --once`: the whole story on a real local testnet, as a script runs it.

Six node processes (authority, brand, manufacturer, carrier, forwarder, customs)
on 127.0.0.1; the story is played through their RPC. The command must exit 0
(every verdict and alert as the story expects), print both verdicts and the
alerts as they arrive, and leave no node process behind. Interrupted (Ctrl-C),
it must stop every node cleanly and exit 130 (143 for SIGTERM), never 0. Also the
pure part of the demo: what counts as "as expected".
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import trio

from node.demo import HONEST, TAMPERED, Interrupted, Outcome, alert_line, interruptible

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


def kill_all(pid: int, root: Path) -> None:
    """SIGKILL the demo and the nodes it started (each in a process group of its own)."""
    os.killpg(pid, signal.SIGKILL)
    for node in node_processes(root):
        os.kill(node, signal.SIGKILL)


@pytest.mark.slow
def test_demo_once_plays_the_story_and_exits_zero(tmp_path: Path) -> None:
    root = tmp_path / "demo"
    proc = subprocess.Popen([sys.executable, "-m", "node.cli", "demo", "--once", "--dir",
                             str(root)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        kill_all(proc.pid, root)
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


@pytest.mark.slow
async def test_demo_interrupted_by_ctrl_c_stops_every_node_and_exits_130(tmp_path: Path) -> None:
    root = tmp_path / "demo"
    proc = await trio.lowlevel.open_process(
        [sys.executable, "-m", "node.cli", "demo", "--dir", str(root)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    assert proc.stdout is not None
    text = ""
    try:
        with trio.fail_after(TIMEOUT):  # ~25 s on an idle 2-core machine, as --once
            while "Ctrl-C stops it." not in text:  # the story is over, the network runs on
                chunk = await proc.stdout.receive_some()
                assert chunk, f"the demo exited early ({await proc.wait()}):\n{text}"
                text += chunk.decode(errors="replace")
            os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C: the terminal signals the foreground group
            while chunk := await proc.stdout.receive_some():
                text += chunk.decode(errors="replace")
            code = await proc.wait()
    finally:
        if proc.returncode is None:
            kill_all(proc.pid, root)
            await proc.wait()
    assert code == 130, text
    assert "interrupted (SIGINT)" in text, text
    assert node_processes(root) == []
    logs = sorted(root.glob("*.log"))
    assert len(logs) == 6
    for log in logs:  # each node shut down in order, none was killed
        assert "event=node.stopped" in log.read_text(errors="replace"), log.name


def signal_me(signum: int, then_sleep: float) -> None:
    os.kill(os.getpid(), signum)
    time.sleep(then_sleep)  # a raising handler cuts this short


def clean_up(guard: Any, steps: list[str]) -> None:
    with guard.hold():
        signal_me(signal.SIGINT, 0.05)
        steps.append("nodes stopped")
    steps.append("after the clean-up")


def test_the_first_signal_interrupts_later_ones_wait_for_the_clean_up() -> None:
    before = signal.getsignal(signal.SIGTERM)
    steps: list[str] = []
    with interruptible() as guard:
        with pytest.raises(Interrupted) as caught:
            signal_me(signal.SIGTERM, 5)
        assert caught.value.exit_code == 143
        assert caught.value.name == "SIGTERM"
        clean_up(guard, steps)  # after the first signal: the second is ignored
    assert steps == ["nodes stopped", "after the clean-up"]
    assert signal.getsignal(signal.SIGTERM) is before


def test_a_signal_during_the_clean_up_is_raised_after_it() -> None:
    steps: list[str] = []
    with interruptible() as guard, pytest.raises(Interrupted) as caught:
        clean_up(guard, steps)
    assert steps == ["nodes stopped"]
    assert caught.value.exit_code == 130


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
