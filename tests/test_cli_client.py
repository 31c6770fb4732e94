"""Client commands against a real node running as `sealchain run` in a subprocess.

Checks output, exit codes (0 done, 1 rejected with one line, 3 unreachable) and
that SIGTERM stops the node within 5 s with exit status 0.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from crypto.didkey import did_from_public
from tests.rpc_helpers import BOX, GLN, GTIN, ROOT, SEALCHAIN, Provisioned, provision, start, stop

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Provisioned]:
    p = provision(tmp_path_factory.mktemp("cli") / "node")
    proc = start(p.data.path)
    yield p
    stop(proc)


def sc(p: Provisioned, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*SEALCHAIN, *args[:1], "--data", str(p.data.path), *args[1:]],
                          cwd=ROOT, capture_output=True, text=True, input=stdin, timeout=60)


def test_status(node: Provisioned) -> None:
    r = sc(node, "status")
    assert r.returncode == 0, r.stderr
    assert did_from_public(node.me.pub) in r.stdout
    assert "credential  valid" in r.stdout
    r = sc(node, "status", "--json")
    assert json.loads(r.stdout)["did"] == did_from_public(node.me.pub)


def test_mint_ten_thousand_in_batches_with_progress(node: Provisioned) -> None:
    r = sc(node, "mint", "--gtin", GTIN, "--lot", "L1", "--mark", "ACME", "--markets", "NL",
           "--facility", GLN, "--count", "10000")
    assert r.returncode == 0, r.stderr
    assert f"minted 10000 serials of {GTIN} lot L1 in 10 record(s)" in r.stdout
    assert "minting: 10000/10000 serials (100%)" in r.stderr


def test_rejected_request_exits_1_with_one_line(node: Provisioned) -> None:
    r = sc(node, "mint", "--gtin", "09506000134353", "--lot", "L1", "--mark", "ACME",
           "--markets", "NL", "--facility", GLN, "--serials", "X1")
    assert r.returncode == 1
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("sealchain: rejected (400 gtin.check_digit at ")
    assert r.stdout == ""


def test_pack_seal_scan_alerts_container_history(node: Provisioned, tmp_path: Path) -> None:
    serials = [f"K{i:05d}" for i in range(1600)]  # two manifest chunks
    r = sc(node, "mint", "--gtin", GTIN, "--lot", "L2", "--mark", "ACME", "--markets", "NL",
           "--facility", GLN, "--serials", ",".join(serials))
    assert r.returncode == 0, r.stderr
    items = tmp_path / "items.txt"
    items.write_text("".join(f"{GTIN}/{s}\n" for s in serials))
    r = sc(node, "submit", "-", stdin=json.dumps({"type": "container.create", "body": {
        "container": BOX, "tare_g": 2_000_000, "max_gross_g": 30_000_000}}))
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("container.create appended: seq ")
    r = sc(node, "pack", "--container", BOX, "--items-file", str(items), "--weight-g", "80000")
    assert r.returncode == 0, r.stderr
    assert "packed 1600 items into CSQU3054383" in r.stdout
    assert sc(node, "seal", "--container", BOX, "--seal", "ACM-000001").returncode == 0
    r = sc(node, "scan", "--container", BOX, "--country", "NL", "--locode", "NLRTM",
           "--seal", "XYZ-999999")
    assert r.returncode == 0, r.stderr
    r = sc(node, "alerts", "--json")
    alerts = json.loads(r.stdout)["alerts"]
    assert [a["rule"] for a in alerts] == ["seal_mismatch"]
    r = sc(node, "alerts", "--severity", "critical")
    assert "seal_mismatch" in r.stdout
    r = sc(node, "alerts", "--json", "--container", BOX.lower())  # as the RPC's filters
    assert [a["rule"] for a in json.loads(r.stdout)["alerts"]] == ["seal_mismatch"]
    r = sc(node, "alerts", "--json", "--container", "MSCU1234566", "--container", "TGHU1234567")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["alerts"] == []
    r = sc(node, "alerts", "--container", "CSQU3054384")  # wrong check digit
    assert r.returncode == 1
    assert "container" in r.stderr
    r = sc(node, "container", BOX)
    assert r.returncode == 0, r.stderr
    assert "1600 items" in r.stdout
    assert "ACM-000001 (broken)" in r.stdout
    r = sc(node, "history", f"{GTIN}/K00007")
    assert r.returncode == 0, r.stderr
    assert "status         packed" in r.stdout
    assert f"{GTIN} / K00007" in r.stdout
    link = sc(node, "history", f"https://id.gs1.org/01/{GTIN}/21/K00007", "--json")
    assert json.loads(link.stdout)["mint"]["serial"] == "K00007"
    r = sc(node, "handover", "--container", BOX, "--to", did_from_public(node.carrier.pub))
    assert r.returncode == 0, r.stderr
    r = sc(node, "handover", "--container", BOX, "--to", did_from_public(node.carrier.pub))
    assert r.returncode == 1
    assert r.stderr.startswith("sealchain: rejected (409 conflict): ")


def test_bad_identifier_is_a_clear_rejection(node: Provisioned) -> None:
    r = sc(node, "container", "CSQU3054384")
    assert r.returncode == 1
    assert "iso6346.check_digit at id" in r.stderr


@pytest.mark.parametrize("cmd", ["status", "mint", "pack", "seal", "handover", "accept", "scan",
                                 "sensor", "ship", "declare", "customs", "recall", "history",
                                 "container", "alerts", "submit", "run"])
def test_help_everywhere(cmd: str, capsys: pytest.CaptureFixture[str]) -> None:
    from node.cli import build_parser

    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args([cmd, "--help"])
    assert exit_.value.code == 0
    assert "--data" in capsys.readouterr().out


def test_unreachable_node_exits_3(tmp_path: Path) -> None:
    p = provision(tmp_path / "node")
    r = sc(p, "status")
    assert r.returncode == 3
    assert "is the node running" in r.stderr
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    (p.data.path / "rpc.addr").write_text(f"http://127.0.0.1:{port}\n")
    r = sc(p, "status")
    assert r.returncode == 3
    assert "unreachable" in r.stderr


def test_sigterm_stops_the_node_within_5s(tmp_path: Path) -> None:
    p = provision(tmp_path / "node")
    proc = start(p.data.path)
    follow = subprocess.Popen([*SEALCHAIN, "alerts", "--data", str(p.data.path), "--follow"],
                              cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert sc(p, "status").returncode == 0
    url, token = p.data.rpc_url(), p.data.tokens().read
    deadline = time.monotonic() + 20
    while "sealchain_rpc_sse_clients 1.0" not in httpx.get(
            f"{url}/metrics", headers={"Authorization": f"Bearer {token}"}).text:
        assert time.monotonic() < deadline, "the alert stream did not connect"
        time.sleep(0.05)
    took = stop(proc)
    assert proc.returncode == 0, proc.stderr.read() if proc.stderr else ""
    assert took < 5
    assert not (p.data.path / "rpc.addr").exists()
    time.sleep(0.5)
    assert follow.poll() is None  # it waits for the node to come back (test_cli_follow)
    follow.send_signal(signal.SIGINT)  # until interrupted
    follow.wait(10)
    assert follow.returncode == 130
    assert follow.stderr is not None
    assert b"reconnecting" in follow.stderr.read()


def test_rpc_port_in_use_is_one_clear_line(tmp_path: Path) -> None:
    p = provision(tmp_path / "node")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        r = subprocess.run([*SEALCHAIN, "run", "--data", str(p.data.path), "--rpc-port",
                            str(port)], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines()[-1] == (
        f"sealchain: cannot listen for RPC on 127.0.0.1:{port}: Address already in use")


@pytest.mark.parametrize("args", [
    ["pack", "--container", BOX, "--weight-g", "1", "--items-file", "{missing}"],
    ["mint", "--gtin", GTIN, "--lot", "L1", "--mark", "ACME", "--markets", "NL", "--facility",
     GLN, "--serials-file", "{missing}"],
    ["submit", "{missing}"],
    ["submit", "{dir}"],
])
def test_unreadable_input_file_is_one_line_and_exit_2(
        args: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from node.cli import main

    p = provision(tmp_path / "node")
    (p.data.path / "rpc.addr").write_text("http://127.0.0.1:9\n")  # never reached
    missing = tmp_path / "nonexistent.txt"
    argv = [a.format(missing=missing, dir=tmp_path) for a in args]
    code = main([argv[0], "--data", str(p.data.path), *argv[1:]])
    out, errs = capsys.readouterr()
    assert code == 2
    assert out == ""
    lines = errs.strip().splitlines()
    assert len(lines) == 1, errs
    target = str(tmp_path) if "{dir}" in args else str(missing)
    assert lines[0].startswith(f"sealchain: {target}: "), lines
    assert "Traceback" not in errs
