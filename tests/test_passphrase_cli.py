"""An encrypted node key, end to end through the CLI: real processes, real LevelDB.

`network create` and `init` seal the new key with `--passphrase-file`; every
command that signs with it (`credential issue`, `run`) unseals it with
`--passphrase-file FILE` or `SEALCHAIN_PASSPHRASE_FILE`. A missing or wrong
passphrase is one line naming the key file and exit code 2.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from crypto import keyfile
from node.datadir import PASSPHRASE_ENV

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
SEALCHAIN = [sys.executable, "-m", "node.cli"]


def sealchain(*args: str | Path, env: dict[str, str] | None = None
              ) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k != PASSPHRASE_ENV} | (env or {})
    return subprocess.run([*SEALCHAIN, *map(str, args)], cwd=ROOT, capture_output=True,
                          text=True, timeout=60, env=environ)


def ok(*args: str | Path, env: dict[str, str] | None = None) -> str:
    res = sealchain(*args, env=env)
    assert res.returncode == 0, f"{args}: exit {res.returncode}\n{res.stdout}\n{res.stderr}"
    return res.stdout


def refused(res: subprocess.CompletedProcess[str], key_file: Path, what: str) -> None:
    """Exit 2, nothing on stdout, one line on stderr naming `key_file` and saying `what`."""
    assert res.returncode == 2, res.stdout + res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith("sealchain: ")
    assert str(key_file) in lines[0]
    assert what in lines[0]


def sealed_0600(key_file: Path) -> None:
    assert keyfile.is_encrypted(key_file)
    assert key_file.stat().st_mode & 0o777 == 0o600


def test_encrypted_keys_from_create_to_run(tmp_path: Path) -> None:
    secret, wrong = tmp_path / "passphrase", tmp_path / "wrong"
    secret.write_text("correct horse battery staple\n")
    wrong.write_text("Tr0ub4dor&3\n")
    auth, node = tmp_path / "authority", tmp_path / "node"

    ok("network", "create", "--dir", auth, "--passphrase-file", secret)
    sealed_0600(auth / "node.key")
    did = ok("init", "--data", node, "--genesis", auth / "genesis.bin", "--role", "carrier",
             "--passphrase-file", secret).strip()
    sealed_0600(node / "node.key")
    assert ok("did", "--data", node).strip() == did  # the did needs no passphrase

    issue = ("credential", "issue", "--data", auth, "--subject", did, "--org", "Rhine Freight",
             "--role", "carrier")
    refused(sealchain(*issue), auth / "node.key", "is encrypted")
    refused(sealchain(*issue, "--passphrase-file", wrong), auth / "node.key", "wrong passphrase")
    refused(sealchain(*issue, env={PASSPHRASE_ENV: str(wrong)}), auth / "node.key",
            "wrong passphrase")
    assert f"issued to {did}" in ok(*issue, env={PASSPHRASE_ENV: str(secret)})

    run = ("run", "--data", node, "--log-level", "warning")
    refused(sealchain(*run), node / "node.key", "is encrypted")
    refused(sealchain(*run, "--passphrase-file", wrong), node / "node.key", "wrong passphrase")
    assert not (node / "rpc.addr").exists()
    # The flag beats a wrong file in the environment.
    proc = subprocess.Popen([*SEALCHAIN, *map(str, run), "--passphrase-file", str(secret)],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=os.environ | {PASSPHRASE_ENV: str(wrong)})
    try:
        deadline = time.monotonic() + 30
        while not (node / "rpc.addr").exists():
            assert proc.poll() is None, proc.communicate()[1].decode()[-2000:]
            assert time.monotonic() < deadline, "the node did not start in 30 s"
            time.sleep(0.05)
        status = sealchain("status", "--data", node, "--json")
        assert status.returncode == 0, status.stderr
        assert did in status.stdout
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise
    assert code == 0, proc.communicate()[1].decode()[-2000:]


def test_missing_passphrase_file_is_a_usage_error(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-file"
    res = sealchain("init", "--data", tmp_path / "node", "--genesis", tmp_path / "genesis.bin",
                    "--passphrase-file", missing)
    assert res.returncode == 2
    assert res.stderr.strip() == f"sealchain: passphrase file {missing} does not exist"
    assert not (tmp_path / "node").exists()


def test_customs_credential_stands_alone(tmp_path: Path) -> None:
    auth = tmp_path / "authority"
    ok("network", "create", "--dir", auth)
    did = ok("init", "--data", tmp_path / "node", "--genesis", auth / "genesis.bin").strip()
    res = sealchain("credential", "issue", "--data", auth, "--subject", did, "--org", "X",
                    "--role", "customs", "--role", "carrier")
    assert res.returncode == 2
    assert "customs combines with no other role" in res.stderr
    res = sealchain("credential", "issue", "--data", auth, "--subject", did, "--org", "X",
                    "--role", "authority")
    assert res.returncode == 2
    assert "invalid choice: 'authority'" in res.stderr
