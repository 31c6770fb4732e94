"""The admin CLI end to end, as an operator runs it: real processes, real LevelDB.

network create → init → credential issue → check (0); corrupt the database →
check (1, naming the problem); rebuild → check (0).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import plyvel

from node import facts as F
from protocol import codec

ROOT = Path(__file__).resolve().parent.parent


def sealchain(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "node.cli", *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)


def ok(*args: str | Path) -> str:
    res = sealchain(*args)
    assert res.returncode == 0, f"{args}: exit {res.returncode}\n{res.stdout}\n{res.stderr}"
    return res.stdout


def test_network_init_issue_check_corrupt_rebuild(tmp_path: Path) -> None:
    authority, node = tmp_path / "authority", tmp_path / "node"
    out = ok("network", "create", "--dir", authority, "--name", "cli-testnet")
    assert "network cli-testnet id" in out
    genesis = authority / "genesis.bin"
    assert genesis.exists()
    did = ok("init", "--data", node, "--genesis", genesis, "--role", "carrier").strip()
    assert did.startswith("did:key:z6Mk")
    assert ok("did", "--data", node).strip() == did
    out = ok("credential", "issue", "--data", authority, "--subject", did, "--org",
             "Rhine Freight B.V.", "--role", "carrier", "--jurisdiction", "NL",
             "--jurisdiction", "DE")
    assert f"issued to {did}" in out
    brand_did = ok("init", "--data", tmp_path / "brand", "--genesis", genesis,
                   "--role", "brand").strip()
    trademark = ('{"mark": "ACME", "classes": [9], "markets": ["NL"],'
                 ' "gs1_prefixes": ["950600"]}')
    ok("credential", "issue", "--data", authority, "--subject", brand_did, "--org", "ACME B.V.",
       "--role", "brand", "--trademark", trademark)

    assert "check: OK" in ok("check", "--data", authority)

    # a bogus derived entry: facts for an object no record mentions
    db = plyvel.DB(str(authority / "db"))
    bogus = F.container_key("BOGU0000000")
    db.put(b"S" + bogus, F.encode_facts({"create": {(b"\x01" * 32, b"\x02" * 32)}}))
    db.close()
    res = sealchain("check", "--data", authority)
    assert res.returncode == 1, res.stdout + res.stderr
    assert "BOGU0000000" in res.stdout
    assert "1 problem" in res.stdout

    out = ok("rebuild", "--data", authority)
    assert "from 2 records" in out
    assert "check: OK" in ok("check", "--data", authority)

    # a value that is not facts at all: named too, and rebuilt away
    db = plyvel.DB(str(authority / "db"))
    db.put(b"S" + F.container_key("JUNK0000000"), b"\xc1 not msgpack")
    db.put(b"S" + F.container_key("ODDS0000000"), codec.encode_local({"no such field": 1}))
    db.close()
    res = sealchain("check", "--data", authority)
    assert res.returncode == 1, res.stdout + res.stderr
    assert "JUNK0000000" in res.stdout
    assert "ODDS0000000" in res.stdout
    assert "Traceback" not in res.stderr
    ok("rebuild", "--data", authority)
    assert "check: OK" in ok("check", "--data", authority)

    # a truncated feed head: a clear error, not a traceback; rebuild rewrites the heads
    db = plyvel.DB(str(authority / "db"))
    head_key = next(k for k, _ in db.iterator(prefix=b"H"))
    db.put(head_key, b"\x00\x01")
    db.close()
    res = sealchain("check", "--data", authority)
    assert res.returncode == 1, res.stdout + res.stderr
    assert "head of" in res.stdout
    assert "corrupt" in res.stdout
    assert "Traceback" not in res.stderr
    ok("rebuild", "--data", authority)
    assert "check: OK" in ok("check", "--data", authority)


def test_check_on_a_directory_that_is_not_a_node(tmp_path: Path) -> None:
    res = sealchain("check", "--data", tmp_path)
    assert res.returncode == 2
    assert "not a node directory" in res.stderr
    assert "Traceback" not in res.stderr
