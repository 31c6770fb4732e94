"""A local testnet: N real nodes on 127.0.0.1, each its own `sealchain run` process.

`create()` makes a fresh network (genesis and authority), N node directories
with realistic roles (brand, manufacturer, carrier, forwarder, customs
observer, then more brands and carriers), issues each a credential, and wires
them as a sparse mesh: each node bootstraps to the authority's node and to the
one or two nodes before it, never to all, and peer discovery is off (with it,
every node would soon dial every other: a handful of nodes is under
`max_peers`), so records really travel over several hops. `Testnet.start()` launches every
node as a separate process and waits for their RPC; `describe()` is what
`DIR/testnet.json` holds (role, did, peer id, multiaddr, RPC URL, write token).
"""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from crypto.didkey import did_from_public
from crypto.keys import SigningKey
from node.config import Config, LimitsSection, NodeSection, P2PSection, RpcSection
from node.datadir import DataDir
from node.errors import ConfigError
from node.ledger import Ledger
from node.p2p import peer_id_of
from node.store import Store
from protocol.genesis import Genesis

DAY_MS = 86_400_000
ROLE_CYCLE = ("brand", "manufacturer", "carrier", "forwarder", "customs")
EXTRA_ROLES = ("brand", "carrier")
ORGS = {
    "authority": "Network Authority (IP office)",
    "brand": "Acme Audio BV",
    "manufacturer": "Shenzhen Precision Manufacturing Ltd",
    "carrier": "Oceanic Container Lines",
    "forwarder": "Rotterdam Freight Forwarding BV",
    "customs": "Dutch Customs (Douane)",
    "retailer": "Retail Europe NV",
}
JURISDICTIONS = {"manufacturer": ["CN"], "customs": ["NL"]}


def brand_trademark(i: int) -> dict[str, Any]:
    """The trademark of the i-th brand: its own mark and GS1 company prefix."""
    return {"mark": "ACME" if i == 0 else f"BRAND{i}", "classes": [9],
            "markets": ["BE", "DE", "FR", "NL"], "gs1_prefixes": [f"95060{i}"]}


def roles_for(n: int) -> list[str]:
    roles = list(ROLE_CYCLE[:n])
    i = 0
    while len(roles) < n:
        roles.append(EXTRA_ROLES[i % len(EXTRA_ROLES)])
        i += 1
    return roles


def free_port() -> int:
    """A port on 127.0.0.1 that is free now and that no outgoing connection will take.

    The nodes of a testnet are told their ports before they start. A port picked by
    binding port 0 comes from the kernel's ephemeral range, the same one outgoing
    connections draw their local ports from: nodes that start first and dial their
    peers can take a later node's port before it binds it ("Address already in use").
    So the port is drawn below that range and checked to be bindable.
    """
    low = _ephemeral_low()
    start = max(1024, low - 12_000)
    for _ in range(200):
        port = random.randrange(start, low)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise ConfigError(f"no free port on 127.0.0.1 between {start} and {low}")


def _ephemeral_low() -> int:
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return max(2048, int(f.read().split()[0]))
    except (OSError, ValueError, IndexError):
        return 32768


@dataclass
class Member:
    name: str
    role: str
    org: str
    data: DataDir
    did: str
    peer_id: str
    multiaddr: str
    rpc_port: int
    process: subprocess.Popen[bytes] | None = None

    def describe(self) -> dict[str, Any]:
        tokens = self.data.tokens()
        return {"name": self.name, "role": self.role, "org": self.org, "did": self.did,
                "peer_id": self.peer_id, "multiaddr": self.multiaddr,
                "rpc_url": f"http://127.0.0.1:{self.rpc_port}", "write_token": tokens.write,
                "read_token": tokens.read, "data": str(self.data.path)}


class Testnet:
    def __init__(self, root: Path, members: list[Member]) -> None:
        self.root = root
        self.members = members

    @classmethod
    def create(cls, root: Path, nodes: int, *, name: str = "sealchain-testnet",
               gossip: bool = True) -> Testnet:
        if nodes < 1:
            raise ConfigError("a testnet needs at least one node")
        root.mkdir(parents=True, exist_ok=True)
        if (root / "testnet.json").exists():
            raise ConfigError(f"{root} already holds a testnet: choose an empty directory")
        now = time.time_ns() // 1_000_000
        auth_key = SigningKey.generate()
        genesis = Genesis.create(auth_key, name=name, ts=now)
        specs = [("authority", "authority", auth_key)]
        brand_no = 0
        for i, role in enumerate(roles_for(nodes)):
            specs.append((f"{role}-{i}", role, SigningKey.generate()))
        members: list[Member] = []
        for mname, role, key in specs:
            port, rpc_port = free_port(), free_port()
            pid = peer_id_of(key.public.raw)
            addr = f"/ip4/127.0.0.1/tcp/{port}/p2p/{pid}"
            # Sparse mesh: the authority, and the one or two members before this one.
            boot = [m.multiaddr for m in members[-2:]]
            if members and members[0].multiaddr not in boot:
                boot.insert(0, members[0].multiaddr)
            cfg = Config(
                node=NodeSection(role=role, observer=role == "customs", log_level="info"),
                p2p=P2PSection(listen=(f"/ip4/127.0.0.1/tcp/{port}",), bootstrap=tuple(boot),
                               gossip=gossip, discover=False),
                rpc=RpcSection(port=rpc_port),
                limits=LimitsSection(sync_interval_s=5),
            )
            data = DataDir.init(root / mname, genesis, role=role, key=key, config=cfg)
            org = ORGS[role]
            if role == "brand":
                org = org if brand_no == 0 else f"Brand {brand_no} GmbH"
                brand_no += 1
            members.append(Member(mname, role, org, data, did_from_public(key.public), pid, addr,
                                  rpc_port))
        cls._credential(genesis, auth_key, members)
        net = cls(root, members)
        (root / "testnet.json").write_text(json.dumps(net.describe(), indent=2))
        os.chmod(root / "testnet.json", 0o600)
        return net

    @staticmethod
    def _credential(genesis: Genesis, auth_key: SigningKey, members: list[Member]) -> None:
        """Issue every node's credential in the authority's feed, and give each node a copy."""
        now = time.time_ns() // 1_000_000
        entries = []
        brand_no = 0
        for m in members[1:]:
            body: dict[str, Any] = {
                "subject": m.data.key().public.raw, "org": m.org, "roles": [m.role],
                "jurisdictions": JURISDICTIONS.get(m.role, ["NL"]),
                "valid_from": now - DAY_MS, "valid_until": now + 365 * DAY_MS,
            }
            if m.role == "brand":
                body["trademarks"] = [brand_trademark(brand_no)]
                brand_no += 1
            if m.role == "customs":
                body["observer"] = True
            entries.append(("credential.issue", body))
        auth = members[0]
        store = Store.open(auth.data.db_path)
        try:
            records = Ledger(store, genesis, own=auth_key).append_own(entries, now)
        finally:
            store.close()
        wires = [r.wire for r in records]
        for m in members[1:]:
            store = Store.open(m.data.db_path)
            try:
                Ledger(store, genesis).submit(wires, now)
            finally:
                store.close()

    def describe(self) -> dict[str, Any]:
        return {"nodes": [m.describe() for m in self.members]}

    # -- processes ---------------------------------------------------------------------

    def start(self, *, timeout: float = 30.0, log_dir: Path | None = None) -> None:
        log_dir = log_dir or self.root
        for m in self.members:
            log = open(log_dir / f"{m.name}.log", "ab")  # noqa: SIM115 - owned by the child
            # Each node in its own process group: Ctrl-C at the terminal reaches only the
            # command that started the testnet, which stops each node once (`stop`); a node
            # signalled twice dies of the second signal mid-shutdown, its store not closed.
            m.process = subprocess.Popen(
                [sys.executable, "-m", "node.cli", "run", "--data", str(m.data.path)],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                process_group=0,
            )
        deadline = time.monotonic() + timeout
        for m in self.members:
            while not m.data.addr_file.exists():
                assert m.process is not None
                if m.process.poll() is not None:
                    raise ConfigError(f"node {m.name} exited with code {m.process.returncode};"
                                      f" see {log_dir / (m.name + '.log')}")
                if time.monotonic() > deadline:
                    raise ConfigError(f"node {m.name} did not start within {timeout:.0f} s")
                time.sleep(0.05)

    def stop(self, grace: float = 6.0) -> list[int]:
        """SIGTERM every node, wait up to `grace` seconds, then kill. Returns the exit codes."""
        for m in self.members:
            if m.process and m.process.poll() is None:
                m.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace
        codes = []
        for m in self.members:
            if m.process is None:
                continue
            try:
                codes.append(m.process.wait(timeout=max(0.1, deadline - time.monotonic())))
            except subprocess.TimeoutExpired:
                m.process.kill()
                codes.append(m.process.wait())
        return codes
