"""Commands for local networks: `sealchain testnet` and `sealchain demo`."""

from __future__ import annotations

import argparse
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

START_TIMEOUT_S = 120.0  # nodes start in ~2 s, much slower on a loaded machine


def register(sub: Any) -> None:
    tn = sub.add_parser("testnet", help="run N real nodes on 127.0.0.1 until interrupted")
    tn.add_argument("--nodes", type=int, default=5, help="nodes besides the authority (default 5)")
    tn.add_argument("--dir", required=True, type=Path, help="directory for the testnet (empty)")
    tn.set_defaults(func=cmd_testnet)

    demo = sub.add_parser("demo", help="play the customs story on a local testnet")
    demo.add_argument("--dir", type=Path, default=None,
                      help="testnet directory (default: a fresh temporary one)")
    demo.add_argument("--once", action="store_true",
                      help="play the story and exit: 0 when every verdict and alert came out"
                           " as expected, 1 otherwise")
    demo.set_defaults(func=cmd_demo)


def _wait_for_interrupt() -> None:
    stop = {"now": False}

    def handler(signum: int, frame: Any) -> None:
        stop["now"] = True

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGHUP, handler)  # the nodes have process groups of their own
    while not stop["now"]:
        time.sleep(0.2)


def _print_nodes(net: Any) -> None:
    print(f"{'node':16} {'role':13} {'RPC':24} did")
    for m in net.members:
        info = m.describe()
        print(f"{m.name:16} {m.role:13} {info['rpc_url']:24} {m.did[:30]}…")


def cmd_testnet(args: argparse.Namespace) -> int:
    from node.testnet import Testnet

    net = Testnet.create(args.dir, args.nodes)
    print(f"starting {len(net.members)} nodes in {args.dir} …", flush=True)
    try:
        net.start(timeout=START_TIMEOUT_S)
        _print_nodes(net)
        print(f"\nnode list with tokens: {args.dir / 'testnet.json'}; logs: {args.dir}/*.log")
        print("Ctrl-C stops every node.", flush=True)
        _wait_for_interrupt()
    finally:
        codes = net.stop()
        print(f"stopped {len(codes)} nodes (exit codes {sorted(set(codes))})")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """The demo; a signal (`node.demo.SIGNALS`) stops every node and exits 128 + its number."""
    from node.demo import Interrupted, interruptible

    try:
        with interruptible() as guard:
            return _demo(args, guard)
    except Interrupted as exc:
        print(f"sealchain demo: interrupted ({exc.name}); every node stopped", file=sys.stderr)
        return exc.exit_code


def _demo(args: argparse.Namespace, guard: Any) -> int:
    from node.demo import DemoError, follow, locked, play, wait_for_interrupt
    from node.testnet import Testnet

    root = args.dir or Path(tempfile.mkdtemp(prefix="sealchain-demo-"))
    net = Testnet.create(root, 5, name="sealchain-demo")
    print(f"sealchain demo: a local network of {len(net.members)} nodes in {root}", flush=True)
    ok = False
    followers: dict[str, Any] = {}

    @locked
    def say(line: str) -> None:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()

    try:
        net.start(timeout=START_TIMEOUT_S)
        _print_nodes(net)
        followers = follow(net, say)
        try:
            outcome = play(net, followers, say)
            problems = outcome.problems()
            ok = not problems
            for p in problems:
                say(f"   not as expected: {p}")
        except DemoError as exc:
            print(f"\ndemo: {exc}", file=sys.stderr)
        say("\n" + ("The story came out as expected: A fast-tracked, B flagged for inspection,"
                    " the alerts at customs and the brand." if ok
                    else "The story did NOT come out as expected."))
        customs = next(m for m in net.members if m.role == "customs")
        brand = next(m for m in net.members if m.role == "brand")
        say("\nWhere to look next:")
        say(f"  customs RPC     {customs.describe()['rpc_url']}/v1/alerts   (token in "
            f"{root / 'testnet.json'})")
        say(f"  brand alerts    sealchain alerts --follow --data {brand.data.path}")
        say(f"  a verdict       sealchain verify MSKU2666542 --data {customs.data.path}")
        if not args.once:
            say("\nThe network keeps running (new alerts are printed as they arrive);"
                " Ctrl-C stops it.")
            wait_for_interrupt()
    finally:
        with guard.hold():  # a signal now waits until every node is stopped
            for f in followers.values():
                f.stop()
            net.stop()
            for f in followers.values():
                f.join(2.0)
            if args.once and args.dir is None:
                shutil.rmtree(root, ignore_errors=True)
    return 0 if ok else 1
