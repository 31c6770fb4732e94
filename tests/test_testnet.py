"""`sealchain testnet`: real `sealchain run` processes on 127.0.0.1, wired as a sparse mesh."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from node import testnet

pytestmark = pytest.mark.slow

NODES = 4  # plus the authority's node: five processes
LINKS = 1 + 2 + 3 + 3  # each node dials the authority's and the two before it (see testnet.py)
SCAN = {"object": {"kind": "container", "id": "CSQU3054383"}, "place": {"country": "NL"},
        "event": "observe"}


async def _get(c: httpx.AsyncClient, url: str, token: str) -> httpx.Response:
    return await c.get(url, headers={"Authorization": f"Bearer {token}"})


async def test_a_five_node_testnet_is_a_sparse_mesh_that_replicates_and_stops_cleanly(
        tmp_path: Path) -> None:
    net = testnet.Testnet.create(tmp_path / "tn", NODES)
    described = json.loads((tmp_path / "tn" / "testnet.json").read_text())["nodes"]
    assert len(described) == NODES + 1
    for n in described:
        for key in ("role", "did", "peer_id", "multiaddr", "rpc_url", "write_token"):
            assert n[key], key
        assert n["multiaddr"].endswith("/p2p/" + n["peer_id"])
        assert n["did"].startswith("did:key:z6Mk")
    codes: list[int] = []
    try:
        with trio.fail_after(90):  # ~15 s on an idle 2-core machine; five imports of libp2p
            await trio.to_thread.run_sync(lambda: net.start(timeout=60))
            async with httpx.AsyncClient(timeout=5) as c:
                status: dict[str, Any] = {}
                for n in described:  # each answers with its own token, and refuses without
                    r = await _get(c, n["rpc_url"] + "/v1/status", n["read_token"])
                    assert r.status_code == 200
                    assert r.json()["did"] == n["did"]
                    assert r.json()["peer_id"] == n["peer_id"]
                    assert (await c.get(n["rpc_url"] + "/v1/status")).status_code == 401
                # The bootstrap links come up: then the mesh is what the bootstrap lists make.
                links = {n["did"]: 0 for n in described}
                while sum(links.values()) < 2 * LINKS:
                    for n in described:
                        r = await _get(c, n["rpc_url"] + "/v1/status", n["read_token"])
                        status[n["did"]] = r.json()
                        links[n["did"]] = len(status[n["did"]]["connected_peers"])
                    await trio.sleep(0.2)
                await trio.sleep(1)  # no discovery: no more links come up
                for n in described:
                    r = await _get(c, n["rpc_url"] + "/v1/status", n["read_token"])
                    links[n["did"]] = len(r.json()["connected_peers"])
                assert sum(links.values()) == 2 * LINKS
                assert min(links.values()) < NODES  # not all-to-all
                assert links[described[0]["did"]] == NODES  # the authority's node is the hub
                carrier = next(n for n in described if n["role"] == "carrier")
                r = await c.post(carrier["rpc_url"] + "/v1/records",
                                 json={"type": "scan", "body": SCAN},
                                 headers={"Authorization": f"Bearer {carrier['write_token']}"})
                assert r.status_code == 201, r.text
                rid = r.json()["id"]
                for n in described:  # it reaches every node, several hops away from some
                    while True:
                        r = await _get(c, f"{n['rpc_url']}/v1/records/{rid}", n["read_token"])
                        if r.status_code == 200:
                            break
                        await trio.sleep(0.1)
    finally:
        codes = await trio.to_thread.run_sync(net.stop)
    assert codes == [0] * (NODES + 1)
