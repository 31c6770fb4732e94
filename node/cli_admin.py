"""Admin commands: network create, init, credential issue/revoke, check, rebuild, show-did."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from crypto.didkey import did_from_public, public_from_did
from crypto.keys import SigningKey
from node.errors import ConfigError
from node.store import SCHEMA, SCHEMA_VERSION, Store
from protocol.bodies import ROLES
from protocol.bodies.identity import GRANTABLE_ROLES
from protocol.genesis import Genesis

DAY_MS = 86_400_000


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def register(sub: Any) -> None:
    net = sub.add_parser("network", help="create a network (genesis and authority node)")
    net_sub = net.add_subparsers(dest="network_command", metavar="ACTION")
    create = net_sub.add_parser("create", help="make a genesis signed by a new authority key; "
                                "DIR becomes the authority's node")
    create.add_argument("--dir", required=True, type=Path, help="directory for the authority node")
    create.add_argument("--name", default="sealchain", help="network name")
    add_passphrase_option(create, "encrypt the authority key with the passphrase in FILE")
    create.set_defaults(func=cmd_network_create)
    net.set_defaults(func=lambda a: (net.print_help(), 2)[1])

    init = sub.add_parser("init", help="create a node: key, config, RPC tokens")
    init.add_argument("--data", required=True, type=Path, help="node data directory")
    init.add_argument("--genesis", required=True, type=Path, help="the network's genesis.bin")
    init.add_argument("--role", default="observer", choices=ROLES, help="this node's role")
    init.add_argument("--observer", action="store_true", help="customs observer mode")
    init.add_argument("--rpc-port", type=int, default=None, help="RPC port (0: any free port)")
    add_passphrase_option(init, "encrypt the node key with the passphrase in FILE")
    init.set_defaults(func=cmd_init)

    cred = sub.add_parser("credential", help="issue or revoke credentials (authority node)")
    cred_sub = cred.add_subparsers(dest="credential_command", metavar="ACTION")
    issue = cred_sub.add_parser("issue", help="issue a credential to a node's did")
    issue.add_argument("--data", required=True, type=Path, help="the authority's data directory")
    issue.add_argument("--subject", required=True, help="did:key of the node to credential")
    issue.add_argument("--org", required=True, help="organisation name")
    issue.add_argument("--role", required=True, action="append", choices=GRANTABLE_ROLES,
                       help="a role (repeatable; customs combines with no other)")
    issue.add_argument("--jurisdiction", action="append", default=None,
                       help="ISO 3166 alpha-2 country (repeatable; default NL)")
    issue.add_argument("--trademark", action="append", default=[], metavar="JSON",
                       help='for brands: {"mark","classes","markets","gs1_prefixes"} (repeatable)')
    issue.add_argument("--days", type=int, default=365, help="validity in days (default 365)")
    issue.add_argument("--observer", action="store_true", help="customs observer credential")
    add_passphrase_option(issue, "the passphrase of the authority's encrypted key")
    issue.set_defaults(func=cmd_credential_issue)
    cred.set_defaults(func=lambda a: (cred.print_help(), 2)[1])

    check = sub.add_parser("check", help="re-verify every record and compare derived state")
    check.add_argument("--data", required=True, type=Path, help="node data directory")
    check.set_defaults(func=cmd_check)
    rebuild = sub.add_parser("rebuild", help="rebuild indexes and state from the records")
    rebuild.add_argument("--data", required=True, type=Path, help="node data directory")
    rebuild.set_defaults(func=cmd_rebuild)

    did = sub.add_parser("did", help="print this node's did:key")
    did.add_argument("--data", required=True, type=Path, help="node data directory")
    did.set_defaults(func=lambda a: _print(_datadir(a.data).did()))


def add_passphrase_option(parser: argparse.ArgumentParser, what: str) -> None:
    """`--passphrase-file FILE`, falling back to the file `$SEALCHAIN_PASSPHRASE_FILE` names."""
    parser.add_argument("--passphrase-file", type=Path, default=None, metavar="FILE",
                        help=f"{what} (default: the file $SEALCHAIN_PASSPHRASE_FILE names; "
                             "never the passphrase itself on the command line)")


def passphrase(args: argparse.Namespace) -> bytes | None:
    """The passphrase the command was given (flag, then environment), or None."""
    from node.datadir import load_passphrase

    return load_passphrase(getattr(args, "passphrase_file", None))


def _print(text: str) -> int:
    print(text)
    return 0


def _datadir(path: Path) -> Any:
    from node.datadir import DataDir

    d = DataDir(path)
    if not d.key_file.exists():
        raise ConfigError(f"{path} is not a node directory (no node.key): run `sealchain init`")
    return d


def cmd_network_create(args: argparse.Namespace) -> int:
    from node.config import Config, NodeSection
    from node.datadir import DataDir

    secret = passphrase(args)
    key = SigningKey.generate()
    genesis = Genesis.create(key, name=args.name, ts=now_ms())
    DataDir.init(args.dir, genesis, key=key, passphrase=secret,
                 config=Config(node=NodeSection(role="authority")))
    print(f"network {genesis.name} id {genesis.network_id.hex()}")
    print(f"genesis   {args.dir / 'genesis.bin'}")
    print(f"authority {did_from_public(key.public)}")
    return 0


def cmd_init(args: argparse.Namespace) -> int:
    from node.config import Config, NodeSection, RpcSection
    from node.datadir import DataDir

    secret = passphrase(args)
    try:
        genesis = Genesis.from_bytes(args.genesis.read_bytes())
    except FileNotFoundError as exc:
        raise ConfigError(f"{args.genesis}: no such file") from exc
    rpc = RpcSection(port=args.rpc_port) if args.rpc_port is not None else RpcSection()
    cfg = Config(node=NodeSection(role=args.role, observer=args.observer), rpc=rpc)
    d = DataDir.init(args.data, genesis, role=args.role, observer=args.observer,
                     passphrase=secret, config=cfg)
    print(d.did())
    return 0


def cmd_credential_issue(args: argparse.Namespace) -> int:
    from node.local import open_ledger

    if "customs" in args.role and len(set(args.role)) > 1:
        raise ConfigError("--role customs combines with no other role")
    subject = public_from_did(args.subject).raw
    trademarks = []
    for raw in args.trademark:
        try:
            trademarks.append(json.loads(raw))
        except ValueError as exc:
            raise ConfigError(f"--trademark is not JSON: {exc}") from exc
    now = now_ms()
    body: dict[str, Any] = {
        "subject": subject,
        "org": args.org,
        "roles": sorted(set(args.role)),
        "jurisdictions": sorted(set(args.jurisdiction or ["NL"])),
        "valid_from": now - 60_000,
        "valid_until": now + args.days * DAY_MS,
    }
    if trademarks:
        body["trademarks"] = trademarks
    if args.observer:
        body["observer"] = True
    with open_ledger(args.data, passphrase(args)) as ledger:
        (r,) = ledger.append_own([("credential.issue", body)], now)
    print(f"credential {r.id.hex()} issued to {args.subject}")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from node.audit import check

    d = _datadir(args.data)
    store = Store.open(d.db_path, create=False, repair=True)  # names an interrupted rebuild
    try:
        problems = check(store, d.genesis(), _progress)
    finally:
        store.close()
    for p in problems:
        print(p)
    print("check: OK" if not problems else f"check: {len(problems)} problem(s)")
    return 0 if not problems else 1


def cmd_rebuild(args: argparse.Namespace) -> int:
    from node.audit import rebuild

    d = _datadir(args.data)
    # repair: finishes an interrupted rebuild, and upgrades a database of an older schema
    store = Store.open(d.db_path, create=False, repair=True)
    try:
        was = store.meta(SCHEMA)
        n = rebuild(store, d.genesis(), _progress)
    finally:
        store.close()
    print(f"rebuilt derived state from {n} records")
    if was != SCHEMA_VERSION:
        print(f"schema upgraded from {was} to {SCHEMA_VERSION}")
    return 0


def _progress(what: str, n: int) -> None:
    print(f"  {what}: {n}", file=sys.stderr, flush=True)
