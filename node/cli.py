"""The `sealchain` command line: one entry point, subcommands in their own modules.

Each command module exposes `register(subparsers)`, adding its commands with a
`func(args) -> int` default. Modules that need libp2p import it inside their
functions, so client commands start fast.

Exit codes: 0 success; 1 the command ran and found a problem (a failed check,
a RED verdict, a rejected request); 2 usage or configuration error; 3 the node
is unreachable; 130 interrupted.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from crypto.errors import Error
from node.errors import ConfigError

EXIT_OK = 0
EXIT_PROBLEM = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3
EXIT_INTERRUPTED = 130

COMMAND_MODULES = ("node.cli_admin", "node.cli_client", "node.cli_run", "node.cli_net")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sealchain",
        description="Peer-to-peer logistics node: signed custody records, sealed-container "
        "verification and customs alerts.",
    )
    parser.add_argument("--log-level", default=None, choices=("debug", "info", "warning", "error"),
                        help="override the configured log level")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USAGE
    logging.basicConfig(
        level=(args.log_level or "warning").upper(),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    try:
        code: int = args.func(args)
        return code
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except ConfigError as exc:
        print(f"sealchain: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:  # a file named on the command line that cannot be read or written
        print(f"sealchain: {_os_error(exc)}", file=sys.stderr)
        return EXIT_USAGE
    except Error as exc:
        print(f"sealchain: {exc}", file=sys.stderr)
        return EXIT_PROBLEM


def _os_error(exc: OSError) -> str:
    """One line for a failed file operation: `PATH: reason` (no traceback)."""
    reason = exc.strerror or str(exc)
    if exc.filename is None:
        return reason
    return f"{exc.filename}: {reason}"


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
