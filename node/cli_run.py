"""Commands that run nodes: `sealchain run` (one node in the foreground).

More runners (a local testnet, the demo) register here too: add a parser in
`register()` and a `cmd_*` function.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

from node.cli_admin import add_passphrase_option, passphrase
from node.errors import ConfigError

LOG_FORMAT = "ts=%(asctime)s level=%(levelname)s logger=%(name)s %(message)s"


def register(sub: Any) -> None:
    run = sub.add_parser("run", help="run a node in the foreground (SIGINT/SIGTERM stop it)")
    run.add_argument("--data", required=True, type=Path, help="node data directory")
    run.add_argument("--log-level", default=argparse.SUPPRESS,
                     choices=("debug", "info", "warning", "error"),
                     help="log level (default: [node] log_level of the config)")
    run.add_argument("--rpc-port", type=int, default=None,
                     help="RPC port, overriding the config (0: any free port)")
    add_passphrase_option(run, "the passphrase of an encrypted node key")
    run.set_defaults(func=cmd_run)


def setup_logging(level: str) -> None:
    """One line per event: `ts=… level=… logger=… event=… key=value …`."""
    logging.basicConfig(level=level.upper(), format=LOG_FORMAT, force=True)
    for noisy in ("hypercorn", "sealchain.rpc.server"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))


def cmd_run(args: argparse.Namespace) -> int:
    import trio

    from node.daemon import Node
    from node.datadir import DataDir

    d = DataDir(args.data)
    if not d.key_file.exists():
        raise ConfigError(f"{args.data} is not a node directory (no node.key): run `sealchain init`")
    cfg = d.config()
    setup_logging(getattr(args, "log_level", None) or cfg.node.log_level)
    if args.rpc_port is not None and not 0 <= args.rpc_port <= 65535:
        raise ConfigError("--rpc-port must be 0..65535")
    node = Node(d, config=cfg, rpc_port=args.rpc_port, passphrase=passphrase(args))
    try:
        trio.run(node.run)
    except BaseExceptionGroup as group:
        raise _single(group) from group
    return 0


def _single(group: BaseExceptionGroup[Any]) -> BaseException:
    """The one error inside nested nursery groups (so the CLI can print it in one line)."""
    exc: BaseException = group
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc
