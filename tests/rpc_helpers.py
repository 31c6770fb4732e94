"""Shared by the RPC tests: a node data directory holding a credential, and a client for it."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from node.config import Config, NodeSection, RpcSection
from node.datadir import DataDir
from node.local import open_ledger
from node.scenario import Party, World

GTIN = "09506000134352"
GLN = "9506000000008"
BOX = "CSQU3054383"
BOX2 = "MSCU1234566"
SEALCHAIN = [sys.executable, "-m", "node.cli"]
ROOT = Path(__file__).resolve().parents[1]
TRADEMARK = {"mark": "ACME", "classes": [9], "markets": ["DE", "NL"], "gs1_prefixes": ["950600"]}


@dataclass
class Provisioned:
    world: World
    me: Party  # the node's own party (its key signs what the node appends)
    carrier: Party  # another participant, whose records tests sign and import
    customs: Party
    data: DataDir


def provision(path: Path, *, seed: int = 1, role: str = "brand") -> Provisioned:
    """A node directory in `path` whose key holds a `role` credential, already in its ledger."""
    w = World.create(seed=seed)
    key = w.key("node")
    me = w.party(role, "ACME Brands", ["NL"], key=key,
                 trademarks=[TRADEMARK] if role == "brand" else None)
    carrier = w.party("carrier", "Fast Lines")
    customs = w.party("customs", "NL Customs")
    cfg = Config(node=NodeSection(role=role), rpc=RpcSection(port=0, max_body=1 << 20))
    d = DataDir.init(path, w.genesis, key=key, config=cfg)
    with open_ledger(path) as ledger:
        out = ledger.submit([r.wire for r in w.records], w.now)
        assert all(o.status == "stored" for o in out), out
    return Provisioned(w, me, carrier, customs, d)


def client(url: str, token: str | None, **kw: Any) -> httpx.AsyncClient:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.AsyncClient(base_url=url, headers=headers, timeout=10.0, **kw)


def mint_body(serials: list[str], lot: str = "L1") -> dict[str, Any]:
    return {"gtin": GTIN, "lot": lot, "serials": serials, "mark": "ACME", "markets": ["NL"],
            "facility": GLN}


def start(data: Path) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen([*SEALCHAIN, "run", "--data", str(data), "--log-level", "warning"],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while not (data / "rpc.addr").exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            out, errs = proc.communicate()
            pytest.fail(f"the node did not start: {errs.decode()[-2000:]}")
        time.sleep(0.05)
    return proc


def stop(proc: subprocess.Popen[bytes]) -> float:
    t0 = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    return time.monotonic() - t0
