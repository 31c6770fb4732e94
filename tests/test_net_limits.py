"""Per-peer limits: a sync peer over its byte rate is slowed down, not trusted more."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from node.config import Config
from node.errors import ConfigError
from node.net import Bucket, NetConfig, Network
from tests.netutil import converged, make_nodes, make_world
from tests.test_net import _write


def test_bucket_allows_a_burst_then_asks_to_wait() -> None:
    b = Bucket(rate=1000, burst=1000)
    assert b.take(600) == 0
    assert b.take(400) == 0
    wait = b.take(500)
    assert 0.4 < wait <= 0.5


async def test_sync_over_the_byte_rate_is_throttled_and_still_converges(tmp_path: Path) -> None:
    world, parties = make_world(3)
    nodes = make_nodes(tmp_path, world, parties)
    await _write(nodes[2], world, 200)
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            nets = []
            for i, n in enumerate(nodes):
                cfg = NetConfig(gossip=False, discover=False, sync_interval_s=0.5,
                                sync_bytes_per_s=20_000,
                                bootstrap=tuple(nets[-1].addrs[:1]) if i else ())
                n.net = Network(n.ledger, cfg)
                await nursery.start(n.net.run)
                nets.append(n.net)
            await converged(nodes)
            assert sum(net.stats.throttled for net in nets) > 0
            nursery.cancel_scope.cancel()


def test_network_limits_are_config_keys_with_the_old_defaults() -> None:
    default = Config.from_dict({})
    assert default.limits.sync_bytes_per_s == NetConfig().sync_bytes_per_s
    assert default.limits.gossip_messages_per_s == NetConfig().gossip_messages_per_s
    assert default.p2p.max_peers == NetConfig().max_peers
    cfg = Config.from_dict({"limits": {"sync_bytes_per_s": 50_000, "gossip_messages_per_s": 20},
                            "p2p": {"max_peers": 3}})
    assert (cfg.limits.sync_bytes_per_s, cfg.limits.gossip_messages_per_s) == (50_000, 20)
    assert cfg.p2p.max_peers == 3
    for bad in ({"sync_bytes_per_s": 10}, {"gossip_messages_per_s": 0},
                {"sync_bytes_per_s": "fast"}):
        with pytest.raises(ConfigError):
            Config.from_dict({"limits": bad})
