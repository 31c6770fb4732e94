"""A node's data directory: key, genesis, config, RPC tokens and database.

    DATA/node.key       Ed25519 key file (crypto.keyfile), mode 0600
    DATA/genesis.bin    the network genesis (protocol.genesis)
    DATA/config.toml    configuration (node.config)
    DATA/rpc.tokens     {"write": ..., "read": ...} bearer tokens, mode 0600
    DATA/rpc.addr       the RPC URL of the running daemon (written at start)
    DATA/db/            LevelDB

The node key may be sealed with a passphrase. The passphrase is never given on
the command line: it is read from a file named by `--passphrase-file` or by the
environment variable `SEALCHAIN_PASSPHRASE_FILE` (see `load_passphrase`).
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from crypto import keyfile
from crypto.errors import KeyFileError
from crypto.keys import SigningKey
from node.config import Config, NodeSection
from node.errors import ConfigError
from protocol.errors import Error
from protocol.genesis import Genesis

PASSPHRASE_ENV = "SEALCHAIN_PASSPHRASE_FILE"
_MAX_PASSPHRASE_FILE = 4096


def load_passphrase(path: Path | None, environ: Mapping[str, str] = os.environ) -> bytes | None:
    """The passphrase in `path`, else in the file `environ[PASSPHRASE_ENV]` names, else None.

    The file holds the passphrase alone; one trailing newline is dropped (so
    `echo secret > file` works). `ConfigError` naming the file if it is
    missing, unreadable, empty or implausibly large.
    """
    if path is None:
        named = environ.get(PASSPHRASE_ENV)
        if not named:
            return None
        path = Path(named)
    try:
        with open(path, "rb") as fh:
            raw = fh.read(_MAX_PASSPHRASE_FILE + 1)
    except FileNotFoundError as exc:
        raise ConfigError(f"passphrase file {path} does not exist") from exc
    except OSError as exc:
        raise ConfigError(f"passphrase file {path} cannot be read: {exc.strerror}") from exc
    if len(raw) > _MAX_PASSPHRASE_FILE:
        raise ConfigError(f"passphrase file {path} is larger than {_MAX_PASSPHRASE_FILE} bytes")
    if raw.endswith(b"\r\n"):
        raw = raw[:-2]
    elif raw.endswith(b"\n"):
        raw = raw[:-1]
    if not raw:
        raise ConfigError(f"passphrase file {path} is empty")
    return raw


@dataclass(frozen=True, slots=True)
class Tokens:
    write: str
    read: str


class DataDir:
    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)

    key_file = property(lambda self: self.path / "node.key")
    genesis_file = property(lambda self: self.path / "genesis.bin")
    config_file = property(lambda self: self.path / "config.toml")
    tokens_file = property(lambda self: self.path / "rpc.tokens")
    addr_file = property(lambda self: self.path / "rpc.addr")
    db_path = property(lambda self: self.path / "db")

    @classmethod
    def init(cls, path: Path | str, genesis: Genesis, *, role: str = "observer",
             observer: bool = False, key: SigningKey | None = None,
             passphrase: bytes | None = None, config: Config | None = None) -> DataDir:
        """Create a node: key, genesis copy, config and RPC tokens. Refuses to overwrite a key."""
        d = cls(path)
        d.path.mkdir(parents=True, exist_ok=True)
        if d.key_file.exists():
            raise ConfigError(f"{d.key_file} exists: this directory already holds a node")
        keyfile.write_key(d.key_file, key or SigningKey.generate(), passphrase)
        d.genesis_file.write_bytes(genesis.to_bytes())
        cfg = config or Config(node=NodeSection(role=role, observer=observer))
        d.config_file.write_text(cfg.to_toml())
        tokens = {"write": secrets.token_urlsafe(32), "read": secrets.token_urlsafe(32)}
        fd = os.open(d.tokens_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(tokens, fh)
        return d

    def key(self, passphrase: bytes | None = None) -> SigningKey:
        """The node key, unsealed with `passphrase` if it is encrypted.

        Every failure (missing, corrupt, encrypted without a passphrase, wrong
        passphrase) is a one-line `ConfigError` naming the key file.
        """
        try:
            if passphrase is None and keyfile.is_encrypted(self.key_file):
                raise ConfigError(
                    f"key file {self.key_file} is encrypted: give its passphrase with "
                    f"--passphrase-file FILE or {PASSPHRASE_ENV}=FILE"
                )
            return keyfile.read_key(self.key_file, passphrase)
        except KeyFileError as exc:
            raise ConfigError(str(exc)) from exc

    def did(self) -> str:
        """The node's did:key, as the key file records it (no passphrase needed)."""
        try:
            return keyfile.read_did(self.key_file)
        except KeyFileError as exc:
            raise ConfigError(str(exc)) from exc

    def genesis(self) -> Genesis:
        try:
            return Genesis.from_bytes(self.genesis_file.read_bytes())
        except FileNotFoundError as exc:
            raise ConfigError(f"{self.genesis_file} is missing: run `sealchain init`") from exc
        except Error as exc:
            raise ConfigError(f"{self.genesis_file} is not a valid genesis: {exc}") from exc

    def config(self) -> Config:
        return Config.load(self.config_file)

    def tokens(self) -> Tokens:
        try:
            raw = json.loads(self.tokens_file.read_text())
            return Tokens(write=str(raw["write"]), read=str(raw["read"]))
        except FileNotFoundError as exc:
            raise ConfigError(f"{self.tokens_file} is missing: run `sealchain init`") from exc
        except (ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"{self.tokens_file} is malformed") from exc

    def rpc_url(self) -> str:
        try:
            return self.addr_file.read_text().strip()
        except FileNotFoundError as exc:
            raise ConfigError(f"{self.addr_file} is missing: is the node running?") from exc
