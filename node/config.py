"""Node configuration: `DATA/config.toml`, with sane defaults for every key.

    [node]
    role = "carrier"          # informational; rights come from the credential
    observer = false          # customs observer mode
    log_level = "info"

    [p2p]
    listen = ["/ip4/127.0.0.1/tcp/0"]
    bootstrap = []            # multiaddrs with /p2p/<peer id>
    gossip = true
    discover = true           # ask peers for their peers and dial some (off: bootstrap only)
    max_peers = 8             # discovery dials no more once this many peers are connected
    psk = ""                  # optional private-network key (64 hex chars)

    [rpc]
    host = "127.0.0.1"
    port = 8470               # 0 picks a free port (written to DATA/rpc.addr)
    max_body = 4194304

    [limits]
    pending = 10000
    sync_interval_s = 10
    ban_threshold = 100
    ban_seconds = 600
    silence_check_s = 60      # how often time rules run (shipment gone silent); 0: never
    sync_bytes_per_s = 33554432  # per peer: sync reads slow down beyond it
    gossip_messages_per_s = 500  # per peer: more is refused (sync repairs the rest)
    write_buffer_mb = 16      # LevelDB memtable, 1..1024 MiB: less compaction CPU, more memory
    open_files = 100          # LevelDB table files kept open (and mapped), 74..50000
    compress = false          # snappy-compress LevelDB tables: ~20 % less disk, more CPU

    [push]                    # subscribe at other nodes for the alerts matching a filter
    providers = []            # multiaddrs with /p2p/<peer id>
    jurisdictions = []        # e.g. ["NL"]: an empty list means any
    marks = []
    brands = []               # did:key of trademark owners
    containers = []           # ISO 6346 numbers
    shipments = []
    min_severity = "info"     # info, low, medium, high or critical
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from node.errors import ConfigError

LEVELS = ("debug", "info", "warning", "error")


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeSection:
    role: str = "observer"
    observer: bool = False
    log_level: str = "info"


@dataclass(frozen=True, slots=True, kw_only=True)
class P2PSection:
    listen: tuple[str, ...] = ("/ip4/127.0.0.1/tcp/0",)
    bootstrap: tuple[str, ...] = ()
    gossip: bool = True
    discover: bool = True
    max_peers: int = 8
    psk: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class RpcSection:
    host: str = "127.0.0.1"
    port: int = 8470
    max_body: int = 4 * 1024 * 1024


@dataclass(frozen=True, slots=True, kw_only=True)
class LimitsSection:
    pending: int = 10_000
    sync_interval_s: int = 10
    ban_threshold: int = 100
    ban_seconds: int = 600
    silence_check_s: int = 60
    sync_bytes_per_s: int = 32 * 1024 * 1024
    gossip_messages_per_s: int = 500
    write_buffer_mb: int = 16
    open_files: int = 100
    compress: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class PushSection:
    providers: tuple[str, ...] = ()
    jurisdictions: tuple[str, ...] = ()
    marks: tuple[str, ...] = ()
    brands: tuple[str, ...] = ()
    containers: tuple[str, ...] = ()  # ISO 6346 numbers (normalised on load)
    shipments: tuple[str, ...] = ()
    min_severity: str = "info"


@dataclass(frozen=True, slots=True, kw_only=True)
class Config:
    node: NodeSection = field(default_factory=NodeSection)
    p2p: P2PSection = field(default_factory=P2PSection)
    rpc: RpcSection = field(default_factory=RpcSection)
    limits: LimitsSection = field(default_factory=LimitsSection)
    push: PushSection = field(default_factory=PushSection)

    @classmethod
    def load(cls, path: Path) -> Config:
        try:
            raw = tomllib.loads(path.read_text())
        except FileNotFoundError:
            return cls()
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: cannot read: {exc}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: invalid TOML: {exc}") from exc
        return cls.from_dict(raw, str(path))

    @classmethod
    def from_dict(cls, raw: dict[str, Any], where: str = "config") -> Config:
        sections: dict[str, Any] = {}
        for f in fields(cls):
            sub = raw.get(f.name, {})
            if not isinstance(sub, dict):
                raise ConfigError(f"{where}: [{f.name}] must be a table")
            sections[f.name] = _section(f.default_factory, sub, f"{where}: [{f.name}]")  # type: ignore[misc,arg-type]
        extra = set(raw) - {f.name for f in fields(cls)}
        if extra:
            raise ConfigError(f"{where}: unknown section [{sorted(extra)[0]}]")
        cfg = cls(**sections)
        if cfg.node.log_level not in LEVELS:
            raise ConfigError(f"{where}: [node] log_level must be one of {', '.join(LEVELS)}")
        if not 0 <= cfg.rpc.port <= 65535:
            raise ConfigError(f"{where}: [rpc] port must be 0..65535")
        if cfg.push.min_severity not in ("info", "low", "medium", "high", "critical"):
            raise ConfigError(f"{where}: [push] min_severity must be info, low, medium, high or critical")
        cfg = replace(cfg, push=_push_filter(cfg.push, where))
        if any("/p2p/" not in a for a in cfg.push.providers + cfg.p2p.bootstrap):
            raise ConfigError(f"{where}: peer addresses must end in /p2p/<peer id>")
        if cfg.limits.sync_bytes_per_s < 1024 or cfg.limits.gossip_messages_per_s < 1:
            raise ConfigError(f"{where}: [limits] sync_bytes_per_s must be at least 1024 and "
                              "gossip_messages_per_s at least 1")
        if not 1 <= cfg.limits.write_buffer_mb <= 1024:
            raise ConfigError(f"{where}: [limits] write_buffer_mb must be 1..1024")
        if not 74 <= cfg.limits.open_files <= 50_000:
            raise ConfigError(f"{where}: [limits] open_files must be 74..50000")
        if cfg.p2p.psk and len(cfg.p2p.psk) != 64:
            raise ConfigError(f"{where}: [p2p] psk must be 64 hex characters")
        return cfg

    def to_toml(self) -> str:
        lines = []
        for f in fields(self):
            lines.append(f"[{f.name}]")
            sec = getattr(self, f.name)
            for sf in fields(sec):
                lines.append(f"{sf.name} = {_toml_value(getattr(sec, sf.name))}")
            lines.append("")
        return "\n".join(lines)


def _push_filter(push: PushSection, where: str) -> PushSection:
    """[push]'s filter values checked (a typed error, not a crash at start), containers
    normalised as the log holds them ("csqu 305438 3" -> "CSQU3054383")."""
    from protocol.errors import ValidationError
    from protocol.identifiers import container_number

    for name, ok in (("jurisdictions", lambda v: len(v) == 2 and v.isascii() and v.isupper()),
                     ("marks", lambda v: 0 < len(v) <= 100),
                     ("shipments", lambda v: 0 < len(v) <= 100)):
        bad = [v for v in getattr(push, name) if not ok(v)]
        if bad:
            raise ConfigError(f"{where}: [push] {name}: {bad[0]!r} is not valid")
    try:
        containers = tuple(container_number(c, "containers") for c in push.containers)
    except ValidationError as exc:
        raise ConfigError(f"{where}: [push] containers: {exc}") from exc
    return replace(push, containers=containers)


def _section(factory: Any, sub: dict[str, Any], where: str) -> Any:
    default = factory()
    known = {f.name: f for f in fields(default)}
    kwargs: dict[str, Any] = {}
    for k, v in sub.items():
        if k not in known:
            raise ConfigError(f"{where}: unknown key {k!r}")
        want = getattr(default, k)
        if isinstance(want, tuple):
            if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
                raise ConfigError(f"{where}: {k} must be a list of strings")
            v = tuple(v)
        elif isinstance(want, bool):
            if not isinstance(v, bool):
                raise ConfigError(f"{where}: {k} must be true or false")
        elif isinstance(want, int):
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise ConfigError(f"{where}: {k} must be a non-negative integer")
        elif not isinstance(v, type(want)):
            raise ConfigError(f"{where}: {k} must be a {type(want).__name__}")
        kwargs[k] = v
    return type(default)(**kwargs)


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, tuple):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    return '"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"'
