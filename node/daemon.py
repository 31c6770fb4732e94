"""The node daemon: one trio nursery running the node's services over one ledger.

`Node` opens the data directory, the store and the ledger (with the node's own
key), then `run()` starts the services in one nursery: the writer (the only
task that writes the ledger, see `node.writer`), the RPC (Starlette on
Hypercorn's trio worker), and whatever is in `services` (the p2p network, the
customs observer and the time rules of `node.timers` belong there:
`node.services.append(fn)` where `fn(task_status=...)` is a trio service). It
writes DATA/rpc.addr once the RPC listens.

Services write the ledger only through `node.writer` (`append`, `submit`, or
`call(fn)` for e.g. the sync machine's `submit_run`), which serialises every
write; `node.on_stored(cb)` reports each durable write in the trio thread;
`node.peers` / `node.sync_lag` feed /v1/status; `node.metrics.registry` takes
their Prometheus collectors.

Shutdown (SIGINT / SIGTERM, or `stop()`): alert streams are closed, the RPC
stops accepting and finishes the requests in flight (up to `GRACE_S`), then the
nursery is cancelled with a hard deadline, so the node is down within
`SHUTDOWN_S` seconds; the store is closed last. Logs are one line per event,
`event=… key=value …`.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from functools import partial
from importlib import metadata
from pathlib import Path
from typing import Any, Final

import trio
from hypercorn.config import Config as HypercornConfig
from hypercorn.trio import serve

from crypto.didkey import did_from_public
from node.config import Config
from node.datadir import DataDir
from node.errors import ConfigError
from node.ledger import Ledger
from node.rpc import keepalive, sse
from node.rpc.app import Api, create_app
from node.rpc.auth import Auth
from node.rpc.metrics import Metrics
from node.store import Store
from node.writer import Writer, now_ms

log = logging.getLogger("sealchain.node")

GRACE_S: Final = 2.0  # for RPC requests in flight at shutdown
SHUTDOWN_S: Final = 4.0  # everything down within this (the goal is < 5 s)
SWITCH_INTERVAL_S: Final = 0.0005

Service = Callable[..., Awaitable[Any]]  # async def svc(*, task_status=...)


def public_key_of_did(did: str) -> bytes:
    from crypto.didkey import public_from_did

    return public_from_did(did).raw


def peer_id(public_key: bytes) -> str:
    """The libp2p peer id of an Ed25519 key: identity multihash of its protobuf PublicKey."""
    import base58

    proto = b"\x08\x01\x12\x20" + public_key  # KeyType Ed25519 (1), Data: 32 bytes
    return str(base58.b58encode(b"\x00" + bytes([len(proto)]) + proto).decode())


def _version() -> str:
    try:
        return metadata.version("sealchain")
    except metadata.PackageNotFoundError:  # pragma: no cover (source checkout)
        return "0.0.0"


class Node:
    """A sealchain node over DATA: `await node.run()`; `close()` if it never runs."""

    def __init__(self, data: Path | str | DataDir, *, config: Config | None = None,
                 rpc_host: str | None = None, rpc_port: int | None = None,
                 handle_signals: bool = True, clock: Callable[[], int] = now_ms,
                 passphrase: bytes | None = None, network: bool = True) -> None:
        self.data = data if isinstance(data, DataDir) else DataDir(data)
        self.config = config or self.data.config()
        self.key = self.data.key(passphrase)
        self.genesis = self.data.genesis()
        self.tokens = self.data.tokens()
        mode = self.data.tokens_file.stat().st_mode & 0o777
        if mode & 0o077:
            log.warning("event=rpc.tokens_exposed file=%s mode=%o advice=chmod_600",
                        self.data.tokens_file, mode)
        self.clock = clock
        self.handle_signals = handle_signals
        self.rpc_host = rpc_host if rpc_host is not None else self.config.rpc.host
        self.rpc_port = rpc_port if rpc_port is not None else self.config.rpc.port
        self.store = Store.open(self.data.db_path,
                                write_buffer=self.config.limits.write_buffer_mb << 20,
                                open_files=self.config.limits.open_files,
                                compress=self.config.limits.compress)
        try:
            self.ledger = Ledger(self.store, self.genesis, own=self.key,
                                 pending_limit=self.config.limits.pending)
        except BaseException:
            self.store.close()
            raise
        self.metrics = Metrics(self.ledger)
        self.writer = Writer(self.ledger, clock=clock, metrics=self.metrics)
        self.hub = sse.AlertHub()
        self._written: list[tuple[list[Any], list[dict[str, Any]]]] = []
        self._listeners: list[Callable[[list[Any], list[dict[str, Any]]], None]] = []
        self.ledger.on_stored(self._stored)
        self.writer.after_group = self._after_group
        # Further services go here; each `fn(*, task_status)`.
        self.services: list[Service] = []
        # What the network reports for /v1/status.
        self.peers: Callable[[], list[bytes]] = list
        self.sync_lag: Callable[[], int | None] = lambda: None
        self.network: Any = None
        self.push: Any = None
        if network:
            self._add_network()
        self.observer: Any = None
        if self.config.node.observer:
            self._add_observer()
        self.timers: Any = None
        if self.config.limits.silence_check_s:
            self._add_timers()
        self.url: str | None = None
        self._stopping = trio.Event()
        self._cancel: trio.CancelScope | None = None
        self._closed = False

    @property
    def did(self) -> str:
        return did_from_public(self.key.public)

    def _add_observer(self) -> None:
        """Customs observer mode: verify every container declared into our jurisdictions."""
        from node.observer import Observer

        def jurisdictions() -> frozenset[str]:
            grant = self.ledger.creds.grant_status(self.key.public.raw, self.clock()).grant
            return grant.jurisdictions if grant is not None else frozenset()

        net = self.network

        def readiness() -> tuple[bool, int | None]:  # see node.observer: no false alerts
            if net is None:
                return True, None
            caught_up = net.sync_lag() == 0 and net.pending_gap() == 0
            return caught_up, net.stats.sync_sessions if net.connected() else None

        self.observer = Observer(self.ledger, append=self.writer.append, lock=self.writer.lock,
                                 clock=self.clock, jurisdictions=jurisdictions,
                                 readiness=readiness)
        self.services.append(self.observer.run)

    def _add_timers(self) -> None:
        """Time rules on the node's clock (`node.timers`): shipments gone silent; an
        observer's containers verified again (items expire in transit)."""
        from node.timers import Timers

        self.timers = Timers(self.ledger, write=self.writer.call, lock=self.writer.lock,
                             clock=self.clock, interval_s=self.config.limits.silence_check_s,
                             ticks=[self.observer.recheck] if self.observer is not None else [])
        self.services.append(self.timers.run)

    def _add_network(self) -> None:
        """The p2p network (sync, gossip) and alert push, over one libp2p host."""
        from node.net import NetConfig, Network
        from node.p2p import public_key_of
        from node.push import Provider, PushConfig, PushService
        from protocol.push import Filter

        p2p, limits, push = self.config.p2p, self.config.limits, self.config.push
        self.network = Network(
            self.ledger,
            NetConfig(listen=p2p.listen, bootstrap=p2p.bootstrap, gossip=p2p.gossip,
                      discover=p2p.discover, max_peers=p2p.max_peers,
                      sync_bytes_per_s=limits.sync_bytes_per_s,
                      gossip_messages_per_s=limits.gossip_messages_per_s,
                      psk=bytes.fromhex(p2p.psk) if p2p.psk else None,
                      sync_interval_s=limits.sync_interval_s,
                      ban_threshold=limits.ban_threshold, ban_seconds=limits.ban_seconds),
            write=self.writer.call, lock=self.writer.lock)
        flt = Filter(jurisdictions=frozenset(push.jurisdictions), marks=frozenset(push.marks),
                     brands=frozenset(public_key_of_did(d) for d in push.brands),
                     containers=frozenset(push.containers), shipments=frozenset(push.shipments),
                     min_severity=push.min_severity)
        providers = tuple(Provider(peer=public_key_of(a.rsplit("/p2p/", 1)[1]), filter=flt, addr=a)
                          for a in push.providers)
        self.push = PushService.over(self.network, PushConfig(providers=providers),
                                     write=self.writer.call)
        self.services += [self.network.run, self.push.run]
        from node.net_metrics import NetCollector

        self.metrics.registry.register(NetCollector(self.network, self.push))
        self.peers = self.network.connected
        self.sync_lag = self.network.sync_lag

    # -- state -------------------------------------------------------------------------

    def on_stored(self, callback: Callable[[list[Any], list[dict[str, Any]]], None]) -> None:
        """Call `callback(records, alerts)` in the trio thread after each durable write.

        (The ledger's own `on_stored` runs in the writer's worker thread: use this one for
        anything that touches trio, such as publishing new records to peers.)
        """
        self._listeners.append(callback)

    def _stored(self, records: Any, alerts: list[Any]) -> None:
        # Called by the ledger after a durable write, in the writer's worker thread.
        self._written.append((list(records), list(alerts)))

    def _after_group(self) -> None:
        written, self._written = self._written, []
        if any(alerts for _, alerts in written):
            self.hub.notify()
        for records, alerts in written:
            for callback in self._listeners:
                try:
                    callback(records, alerts)
                except Exception:  # one listener's bug must not stop the writer
                    log.exception("event=listener.failed callback=%r", callback)

    def status(self) -> dict[str, Any]:
        me = self.key.public.raw
        heads = self.ledger.heads()
        auth = self.ledger.creds.grant_status(me, self.clock())
        roles = sorted(auth.roles)
        return {
            "did": self.did,
            "peer_id": peer_id(me),
            "listen": self.network.addrs if self.network is not None else [],
            "role": self.config.node.role,
            "roles": roles,
            "credential": auth.standing.value,
            "network_id": self.genesis.network_id,
            "network": self.genesis.name,
            "record_count": sum(h.seq for h in heads.values()),
            "author_count": len(heads),
            "state_root": self.ledger.state_root(),
            "connected_peers": [did_from_public(p) for p in self.peers()],
            "sync_lag": self.sync_lag(),
            "pending": len(self.ledger.pending),
            "version": _version(),
        }

    # -- running -----------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED) -> None:
        """Run until stopped (a signal, `stop()`, or cancellation); started() with the RPC URL."""
        # The writer thread and the RPC take turns at the GIL; hand it over sooner than the
        # default 5 ms so a finished synced write is answered promptly.
        sys.setswitchinterval(SWITCH_INTERVAL_S)
        try:
            with trio.CancelScope() as cancel:
                self._cancel = cancel
                async with trio.open_nursery() as nursery:
                    if self.handle_signals:
                        await nursery.start(self._watch_signals)
                    await nursery.start(self.writer.run)
                    for service in self.services:
                        await nursery.start(service)
                    url: str = await nursery.start(self._serve_rpc)
                    self.url = url
                    self._write_addr(url)
                    log.info("event=node.started did=%s url=%s network=%s", self.did, url,
                             self.genesis.network_id.hex()[:16])
                    task_status.started(url)
        finally:
            with signals_ignored(self.handle_signals):  # a second Ctrl-C must not cut it short
                self.close()
            log.info("event=node.stopped did=%s", self.did)

    async def _serve_rpc(self, *, task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED
                         ) -> None:
        api = Api(ledger=self.ledger, writer=self.writer, auth=Auth(self.tokens),
                  metrics=self.metrics, hub=self.hub, max_body=self.config.rpc.max_body,
                  status=self.status, clock=self.clock)
        keepalive.install()  # idle timeouts without a task per request
        cfg = HypercornConfig()
        host = f"[{self.rpc_host}]" if ":" in self.rpc_host else self.rpc_host
        cfg.bind = [f"{host}:{self.rpc_port}"]
        cfg.graceful_timeout = GRACE_S
        cfg.accesslog = None
        cfg.errorlog = logging.getLogger("sealchain.rpc.server")
        cfg.keep_alive_timeout = 30
        cfg.include_server_header = False  # no software banner (and one header less to build)
        cfg.keep_alive_max_requests = 1_000_000
        cfg.backlog = 1024

        try:  # fail early, with one clear line, if the address is taken
            for sock in cfg.create_sockets().insecure_sockets:
                sock.close()
        except OSError as exc:
            raise ConfigError(f"cannot listen for RPC on {host}:{self.rpc_port}: "
                              f"{exc.strerror or exc}") from exc
        async with trio.open_nursery() as inner:
            binds = await inner.start(partial(serve, create_app(api), cfg,  # type: ignore[arg-type]
                                              shutdown_trigger=self._stopping.wait))
            url = str(binds[0])
            log.info("event=rpc.listening url=%s", url)
            task_status.started(url)
        # The RPC has drained: the other services have nothing left to serve.
        if self._cancel is not None:
            self._cancel.cancel()

    async def _watch_signals(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
                             ) -> None:
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            task_status.started()
            async for signum in signals:
                log.info("event=node.stopping signal=%s", signal.Signals(signum).name)
                self.stop()

    def stop(self) -> None:
        """Begin a graceful shutdown; the node is down within `SHUTDOWN_S` seconds."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        self.hub.close()
        if self._cancel is not None:
            self._cancel.deadline = min(self._cancel.deadline, trio.current_time() + SHUTDOWN_S)

    def _write_addr(self, url: str) -> None:
        tmp = self.data.addr_file.with_suffix(".tmp")
        tmp.write_text(url + "\n")
        os.replace(tmp, self.data.addr_file)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.hub.close()
        try:
            if self.url is not None and self.data.addr_file.exists() \
                    and self.data.addr_file.read_text().strip() == self.url:
                self.data.addr_file.unlink()
        except OSError:
            pass
        self.store.close()


@contextmanager
def signals_ignored(enabled: bool = True) -> Iterator[None]:
    """SIGINT and SIGTERM ignored for the block (closing the store): the first signal began
    the shutdown, and a second one (Ctrl-C pressed twice) must not cut it short. Only in
    the main thread, where Python delivers signals; the handlers are restored after."""
    if not enabled or threading.current_thread() is not threading.main_thread():
        yield
        return
    old = {s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for signum, handler in old.items():
            if handler is not None:  # None: a handler not set from Python, left alone
                signal.signal(signum, handler)
