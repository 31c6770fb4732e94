"""`sealchain alerts --follow` across a node restart: it reconnects and resumes, losing nothing.

The node runs in this process (two incarnations on the same data directory, each
on a fresh port 0), the follower is the real CLI in a subprocess. One absolute
timeout covers the whole story.
"""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path

import httpx
import pytest
import trio

from node.daemon import Node
from tests.rpc_helpers import BOX, ROOT, SEALCHAIN, client, provision

pytestmark = pytest.mark.slow
TIMEOUT = 25


class Output:
    """Lines a subprocess writes, read as they come."""

    def __init__(self, stream: trio.abc.ReceiveStream) -> None:
        self.stream = stream
        self.buf = b""
        self.lines: list[str] = []

    async def until(self, done: object) -> list[str]:
        while not done(self.lines):  # type: ignore[operator]
            chunk = await self.stream.receive_some()
            assert chunk, f"the follower exited; it printed {self.lines}"
            self.buf += chunk
            *full, self.buf = self.buf.split(b"\n")
            self.lines += [x.decode() for x in full]
        return self.lines


async def post(c: httpx.AsyncClient, type_name: str, body: dict[str, object]) -> None:
    r = await c.post("/v1/records", json={"type": type_name, "body": body})
    assert r.status_code == 201, r.text


async def mismatch(c: httpx.AsyncClient, n: int) -> None:
    """A scan reading the wrong seal: one new seal_mismatch alert."""
    await post(c, "scan", {"object": {"kind": "container", "id": BOX},
                           "place": {"country": "NL"}, "event": "observe",
                           "seal": f"BAD-{n:06d}"})


def cursors(lines: list[str]) -> list[int]:
    return [json.loads(x)["cursor"] for x in lines]


async def test_follow_resumes_after_a_restart_without_loss_or_duplicates(tmp_path: Path) -> None:
    p = provision(tmp_path / "node")
    token = p.data.tokens().write
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as n1:
            node = Node(p.data, handle_signals=False)
            url = await n1.start(node.run)
            async with client(url, token) as c:
                await post(c, "container.create", {"container": BOX, "tare_g": 1,
                                                   "max_gross_g": 2})
                await post(c, "container.seal", {"container": BOX, "seal": "ACM-000001",
                                                 "seal_class": "H"})
                await mismatch(c, 1)
            follower = await trio.lowlevel.open_process(
                [*SEALCHAIN, "alerts", "--data", str(p.data.path), "--follow", "--json"],
                cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            assert follower.stdout is not None
            assert follower.stderr is not None
            out, err = Output(follower.stdout), Output(follower.stderr)
            try:
                assert cursors(await out.until(lambda lines: len(lines) >= 1)) == [1]
                node.stop()  # the stream ends with the node
            except BaseException:
                follower.kill()
                raise
        try:
            await err.until(lambda lines: any("reconnecting" in x for x in lines))
            async with trio.open_nursery() as n2:
                node = Node(p.data, handle_signals=False)
                url2 = await n2.start(node.run)
                async with client(url2, token) as c:
                    # Raised before the follower is back (it resumes from #1) ...
                    await mismatch(c, 2)
                    await mismatch(c, 3)
                    await out.until(lambda lines: len(lines) >= 3)
                    await mismatch(c, 4)  # ... and after, live
                    lines = await out.until(lambda lines: len(lines) >= 4)
                    await trio.sleep(0.3)  # a duplicate, if any, would come now
                    assert cursors(out.lines) == [1, 2, 3, 4], lines
                    assert {json.loads(x)["rule"] for x in lines} == {"seal_mismatch"}
                follower.send_signal(signal.SIGINT)  # Ctrl-C
                assert await follower.wait() == 130
                await err.until(lambda lines: any("reconnected" in x for x in lines))
                node.stop()
        finally:
            if follower.returncode is None:
                follower.kill()
                await follower.wait()
