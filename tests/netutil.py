"""Helpers for multi-node tests: real ledgers on real LevelDB, real libp2p hosts on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trio

from node.ledger import Ledger
from node.net import NetConfig, Network
from node.scenario import Party, World
from node.store import Store

TRADEMARK = {"mark": "ACME", "classes": [9], "markets": ["DE", "FR", "NL"],
             "gs1_prefixes": ["950600"]}
ROLES = ("brand", "manufacturer", "carrier", "forwarder", "customs", "brand", "carrier", "retailer")


@dataclass
class TestNode:
    party: Party
    ledger: Ledger
    net: Network | None = None

    def root(self) -> bytes:
        return self.ledger.state_root()


def make_world(n: int) -> tuple[World, list[Party]]:
    w = World.create(seed=7)
    parties = []
    for i in range(n):
        role = ROLES[i % len(ROLES)]
        tm = [TRADEMARK] if role == "brand" else None
        parties.append(w.party(role, f"{role}-{i}", ["DE", "NL"], trademarks=tm,
                               observer=role == "customs"))
    return w, parties


def make_nodes(tmp_path: Path, world: World, parties: Sequence[Party]) -> list[TestNode]:
    nodes = []
    for i, p in enumerate(parties):
        store = Store.open(tmp_path / f"node{i}")
        ledger = Ledger(store, world.genesis, own=p.key)
        ledger.submit([r.wire for r in world.records], world.now)
        nodes.append(TestNode(p, ledger))
    return nodes


async def start(nursery: trio.Nursery, node: TestNode, *, gossip: bool = True,
                bootstrap: Sequence[str] = (), discover: bool = False,
                sync_interval_s: float = 0.5, **extra: Any) -> Network:
    cfg = NetConfig(gossip=gossip, bootstrap=tuple(bootstrap), discover=discover,
                    sync_interval_s=sync_interval_s, **extra)
    node.net = Network(node.ledger, cfg)
    await nursery.start(node.net.run)
    return node.net


async def converged(nodes: Sequence[TestNode], *, poll: float = 0.05) -> bytes:
    """Wait until every node reports the same state_root and the same heads."""
    while True:
        roots = {n.root() for n in nodes}
        heads = [n.ledger.heads() for n in nodes]
        if len(roots) == 1 and all(h == heads[0] for h in heads):
            return roots.pop()
        await trio.sleep(poll)


async def eventually(predicate: Callable[[], bool], *, poll: float = 0.05) -> None:
    """Wait until `predicate()` holds (for state libp2p offers no event for)."""
    while not predicate():  # noqa: ASYNC110 - polled: connection state has no event to wait on
        await trio.sleep(poll)
