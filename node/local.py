"""Open a node's ledger directly (the daemon not running), for admin commands."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from node.datadir import DataDir
from node.errors import ConfigError, StorageError
from node.ledger import Ledger
from node.store import Store


@contextmanager
def open_ledger(path: Path, passphrase: bytes | None = None) -> Iterator[Ledger]:
    d = DataDir(path)
    if not d.key_file.exists():
        raise ConfigError(f"{path} is not a node directory (no node.key)")
    try:
        store = Store.open(d.db_path)
    except StorageError as exc:
        if "lock" in str(exc).lower():
            raise StorageError(f"{path} is in use by a running node: stop it or use its RPC") from exc
        raise
    try:
        yield Ledger(store, d.genesis(), own=d.key(passphrase))
    finally:
        store.close()
