"""The alert push service: subscriptions over `/sealchain/push/1` (`protocol.push`).

Theory of operation. `PushService` shares the node's libp2p `Host` with the
network service and plays both parts of the push protocol:

- **Provider.** Every inbound push stream is a subscriber (its Noise-proven
  key; a credential in force is required) running one `PushProvider`. Backlog
  reads come from `Store.alerts`; live alerts come from the ledger's
  `on_stored` callback (which may run in the writer's worker thread, so it only
  schedules `_offer` into the trio thread) and are pushed at once. Each
  subscription (filter, acknowledged cursor) is kept in the store's meta table
  (`push.sub.<key hex>`, listed in `push.subs`), so it survives restarts; a new
  stream from the same subscriber replaces its old one.
- **Subscriber.** For each configured `Provider` a task keeps one stream open:
  it dials (if an address is given), subscribes from the cursor persisted in
  `push.cur.<key hex>`, and retries with backoff, at once when the network
  reports the peer connected (`peer_changed`). Delivered entries go to the local
  alert log through `Ledger.record_alert` (exactly once, by alert key; the
  cursor is written in the same synced batch), then are acknowledged; the
  ledger's listeners (the RPC's SSE stream) see them like local alerts. Each
  is marked with the peer that reported it (`via`). An alert from a signed
  alert record travels with the record, whose signature and contents the
  decoder checks and whose author's credential we check; a derived alert's
  key commits to its severity and reason, so an altered copy cannot take the
  real one's place. A
  changed filter starts again from cursor 0 (duplicates are dropped by key).

Each session is one task draining one bounded inbox (peer bytes, ticks,
wake-ups for new alerts), so the machine sees one event at a time and frames go
out in the order it produced them. Protocol errors cost the peer the error's
penalty (`penalise`, the network's) and reset the stream.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import trio

from crypto.errors import Error
from node import facts as F
from node.alert_context import alert_context
from node.errors import NetworkError
from node.ledger import Ledger
from node.p2p import Host, Stream, peer_id_of
from node.store import Store, WriteSet
from protocol.authz import authorise
from protocol.errors import LocalProtocolError, ProtocolError, RemoteProtocolError
from protocol.push import (
    CURSOR_AHEAD,
    EMPTY,
    PENALTY_FORGED,
    Backlog,
    Context,
    Deliver,
    Filter,
    Offered,
    Persist,
    PushLimits,
    PushProvider,
    PushSubscriber,
    signed_record,
)
from protocol.sync_messages import Disconnect, Send

log = logging.getLogger("sealchain.push")

PUSH_PROTOCOL: Final = "/sealchain/push/1"
INBOX: Final = 64  # events waiting for a session's task
PENDING: Final = 4096  # live entries waiting for one session; beyond, it reads them back
OPEN_TIMEOUT_S: Final = 10.0

Penalise = Callable[[bytes, int, str], None]
WriteCall = Callable[[Callable[[], Any]], Awaitable[Any]]  # e.g. `Writer.call`


def now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(frozen=True, slots=True)
class Provider:
    """A node we subscribe at: its key, our filter, optionally an address to dial."""

    peer: bytes
    filter: Filter = field(default_factory=Filter)
    addr: str | None = None


@dataclass
class PushConfig:
    providers: tuple[Provider, ...] = ()
    serve: bool = True  # accept subscriptions
    max_subscribers: int = 64
    limits: PushLimits = field(default_factory=PushLimits)
    tick_s: float = 1.0
    retry_min_s: float = 0.2
    retry_max_s: float = 10.0


@dataclass
class PushStats:
    served: int = 0  # provider sessions
    subscribed: int = 0  # subscriber sessions
    pushed: int = 0  # entries sent
    received: int = 0  # entries stored from providers
    duplicates: int = 0  # delivered entries already in the log
    refused: int = 0
    errors: int = 0
    pending_overflow: int = 0


class _Session:
    """One stream and its machine, driven by one task from one inbox."""

    def __init__(self, stream: Stream, machine: PushProvider | PushSubscriber) -> None:
        self.stream = stream
        self.machine = machine
        self.inbox, self.events = trio.open_memory_channel[tuple[str, bytes]](INBOX)
        self.scope = trio.CancelScope()
        self.pending: list[Offered] = []  # provider: live entries to offer
        self.log_end = 0  # provider: the log reaches here (entries past PENDING)
        self.heard = False

    def wake(self) -> None:
        try:
            self.inbox.send_nowait(("wake", b""))
        except (trio.WouldBlock, trio.ClosedResourceError, trio.BrokenResourceError):
            pass  # the session is busy (it takes `pending` at its next event) or over


class PushService:
    def __init__(self, ledger: Ledger, host: Host, config: PushConfig | None = None, *,
                 penalise: Penalise | None = None, write: WriteCall | None = None) -> None:
        assert ledger.own is not None
        self.ledger = ledger
        self.store = ledger.store
        self.host = host
        self.config = config or PushConfig()
        self.stats = PushStats()
        self._penalise = penalise
        self._write = write
        self._me = ledger.own.public.raw
        self._served: dict[bytes, _Session] = {}
        self._subs: dict[bytes, dict[str, Any]] = {}  # subscriber -> {filter, cursor, ts}
        self._wake: dict[bytes, trio.Event] = {}  # provider -> set when it connects
        self._token: trio.lowlevel.TrioToken | None = None
        self._running = False
        ledger.on_stored(self._on_stored)

    @classmethod
    def over(cls, net: Any, config: PushConfig | None = None, *,
             write: WriteCall | None = None) -> PushService:
        """A service on `net`'s host (a `node.net.Network`), with its penalties and peer events."""
        service = cls(net.ledger, net.host, config, penalise=net.penalise, write=write)
        net.on_peer(service.peer_changed)
        return service

    # -- lifecycle and state -----------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        self._token = trio.lowlevel.current_trio_token()
        for key in self.store.meta("push.subs") or []:
            self._subs[key] = self.store.meta(f"push.sub.{key.hex()}")
        try:
            async with trio.open_nursery() as nursery:
                if self.config.serve:
                    self.host.set_stream_handler(PUSH_PROTOCOL, self._serve)
                for spec in {p.peer: p for p in self.config.providers}.values():  # one each
                    if spec.peer == self._me:
                        log.warning("push: not subscribing at ourselves")
                        continue
                    nursery.start_soon(self._subscribe_loop, spec)
                self._running = True
                log.info("push started providers=%d subscriptions=%d",
                         len(self.config.providers), len(self._subs))
                task_status.started()
                await trio.sleep_forever()
        finally:
            self._running = False
            for s in list(self._served.values()):
                s.scope.cancel()

    def subscriptions(self) -> dict[bytes, dict[str, Any]]:
        """Subscriptions served here: subscriber key -> {filter (wire map), cursor, ts}."""
        return {k: dict(v) for k, v in self._subs.items()}

    def cursor(self, provider: bytes) -> int:
        """The last cursor of `provider` we stored and acknowledged."""
        saved = self.store.meta(f"push.cur.{provider.hex()}")
        return int(saved["cursor"]) if saved else 0

    def peer_changed(self, peer: bytes, connected: bool) -> None:
        """Network peer events: a provider that connects is subscribed at once."""
        if connected and (ev := self._wake.pop(peer, None)) is not None:
            ev.set()

    # -- provider side -----------------------------------------------------------------

    def _on_stored(self, records: Sequence[Any], alerts: Sequence[dict[str, Any]]) -> None:
        if alerts and self._running and self._token is not None:
            try:  # may be the writer's worker thread: hand over to the trio thread
                self._token.run_sync_soon(self._offer, list(alerts))
            except trio.RunFinishedError:
                pass

    def _offer(self, alerts: list[dict[str, Any]]) -> None:
        try:
            contexts: dict[int, Context] = {}
            for s in list(self._served.values()):
                flt = s.machine.filter
                for entry in map(self._signed, alerts):
                    c = entry["cursor"]
                    if len(s.pending) >= PENDING:
                        s.log_end = max(s.log_end, c)
                        self.stats.pending_overflow += 1
                        continue
                    if c not in contexts and self._wants_context(flt, entry):
                        contexts[c] = self._context(entry)
                    s.pending.append((c, entry, contexts.get(c, EMPTY)))
                s.wake()
        except Exception:  # a callback from run_sync_soon must never raise into trio
            log.exception("push: offering alerts failed")

    def _signed(self, entry: dict[str, Any]) -> dict[str, Any]:
        """An entry from a signed alert record, with the record's wire to push (`signed`)."""
        rid = entry.get("record")
        wire = self.store.record(rid) if isinstance(rid, bytes) else None
        return entry if wire is None else {**entry, "signed": wire}

    @staticmethod
    def _wants_context(flt: Filter, entry: dict[str, Any]) -> bool:
        return flt.needs_context and Filter(min_severity=flt.min_severity).matches(entry)

    def _context(self, entry: dict[str, Any]) -> Context:
        def facts(key: bytes) -> F.Facts:  # straight from LevelDB: safe beside the writer
            raw = self.store.facts_raw(key)
            return F.decode_facts(raw) if raw is not None else {}

        return alert_context(entry, facts, self.ledger.record)

    async def _serve(self, stream: Stream) -> None:
        peer = stream.remote_public_key
        refusal = self._refusal(peer)
        if refusal is not None:
            self.stats.refused += 1
            log.info("push subscription refused peer=%s reason=%s", peer_id_of(peer), refusal)
            session = _Session(stream, PushProvider(self.ledger.network, now_ms()))
            await self._carry_out(session, session.machine.close(refusal))
            return
        old = self._served.pop(peer, None)
        if old is not None:
            old.scope.cancel()
        session = _Session(stream, PushProvider(self.ledger.network, now_ms(), self.config.limits))
        self._served[peer] = session
        self.stats.served += 1
        try:
            with session.scope:
                await self._drive(session)
        finally:
            if self._served.get(peer) is session:
                del self._served[peer]

    def _refusal(self, peer: bytes) -> str | None:
        if not self._running:
            return "push service stopping"
        if peer not in self._served and len(self._served) >= self.config.max_subscribers:
            return "too many subscribers"
        if not self.ledger.creds.grant_status(peer, now_ms()).standing.ok:
            return "no credential in force"
        return None

    def _persist(self, peer: bytes, a: Persist) -> None:
        ws = WriteSet()
        sub = {"filter": a.filter.to_map(), "cursor": a.cursor, "ts": now_ms()}
        if peer not in self._subs:
            Store.meta_put(ws, "push.subs", sorted([*self._subs, peer]))
            log.info("push subscription new peer=%s", peer_id_of(peer))
        Store.meta_put(ws, f"push.sub.{peer.hex()}", sub)
        # Unsynced: the subscriber's own cursor is the truth; this one is for operators.
        self.store.write(ws, sync=False)
        self._subs[peer] = sub

    def _backlog(self, session: _Session, a: Backlog) -> list[Any]:
        machine = session.machine
        assert isinstance(machine, PushProvider)
        if a.from_cursor > self.store.last_alert_cursor():
            return machine.close(CURSOR_AHEAD)
        flt = machine.filter
        offered = [(c, self._signed(e), self._context(e) if self._wants_context(flt, e) else EMPTY)
                   for c, e in self.store.alerts(a.from_cursor, a.limit)]
        return machine.supply(offered, now_ms())

    # -- subscriber side ---------------------------------------------------------------

    async def _subscribe_loop(self, spec: Provider) -> None:
        delay = self.config.retry_min_s
        while True:
            wake = self._wake.setdefault(spec.peer, trio.Event())
            healthy = False
            try:
                with trio.fail_after(OPEN_TIMEOUT_S):
                    if spec.addr and not self.host.is_connected(spec.peer):
                        await self.host.connect(spec.addr)
                    stream = await self.host.open_stream(spec.peer, PUSH_PROTOCOL)
            except (NetworkError, trio.TooSlowError) as exc:
                log.debug("push: cannot reach provider peer=%s error=%s", peer_id_of(spec.peer),
                          exc)
            else:
                try:
                    healthy = await self._subscribe(stream, spec)
                except Error as exc:  # e.g. storage: keep the node up, try again later
                    log.error("push subscription failed peer=%s error=%s",
                              peer_id_of(spec.peer), exc)
                    await stream.reset()
            delay = self.config.retry_min_s if healthy else min(delay * 2, self.config.retry_max_s)
            with trio.move_on_after(delay):
                await wake.wait()  # `peer_changed` sets it (and forgets it) on connect

    async def _subscribe(self, stream: Stream, spec: Provider) -> bool:
        """One subscriber session; True if the provider answered."""
        saved = self.store.meta(f"push.cur.{spec.peer.hex()}")
        cursor = 0
        if saved and saved.get("filter") == spec.filter.to_map():
            cursor = int(saved["cursor"])
        machine = PushSubscriber(self.ledger.network, spec.filter, cursor, self.config.limits)
        session = _Session(stream, machine)
        self.stats.subscribed += 1
        log.info("push subscribing peer=%s cursor=%d", peer_id_of(spec.peer), cursor)
        with session.scope:
            await self._drive(session, spec)
        return session.heard

    async def _deliver(self, session: _Session, spec: Provider, a: Deliver) -> list[Any]:
        now = now_ms()
        extra = WriteSet()
        Store.meta_put(extra, f"push.cur.{spec.peer.hex()}",
                       {"cursor": a.upto, "filter": spec.filter.to_map()})
        entries = [self._received(e, spec.peer) for _c, e in a.entries]

        def write() -> int:
            fresh = 0
            for i, e in enumerate(entries):
                last = i == len(entries) - 1
                fresh += self.ledger.record_alert(e, now, extra=extra if last else None)
            if not entries:
                self.store.write(extra)
            return fresh

        fresh: int = await self._write(write) if self._write is not None else write()
        self.stats.received += fresh
        self.stats.duplicates += len(entries) - fresh
        assert isinstance(session.machine, PushSubscriber)
        return session.machine.stored(a.upto)

    def _received(self, entry: dict[str, Any], peer: bytes) -> dict[str, Any]:
        """A pushed entry as logged here: marked with the peer that reported it; one from a
        signed alert record (its signature and contents checked on decoding) only if its
        author may write alerts in this network (`RoleError`, `RemoteProtocolError`)."""
        out = {k: v for k, v in entry.items() if k != "signed"}
        out["via"] = peer
        if "signed" in entry:
            r = signed_record(entry)
            if r.network != self.ledger.network:
                raise RemoteProtocolError("a signed alert of another network",
                                          penalty=PENALTY_FORGED)
            authorise(self.ledger.creds, r)
            out["record"], out["author"] = r.id, r.author
        return out

    # -- both: one session, one task ---------------------------------------------------

    async def _drive(self, session: _Session, spec: Provider | None = None) -> None:
        stream, machine = session.stream, session.machine
        peer = stream.remote_public_key

        async def reader() -> None:
            try:
                while True:
                    data = await stream.read(65536)
                    await session.inbox.send(("data", data))
                    if not data:
                        return
            except NetworkError as exc:
                await session.inbox.send(("gone", str(exc).encode()))

        async def ticker() -> None:
            while True:
                await trio.sleep(self.config.tick_s)
                await session.inbox.send(("tick", b""))

        failure: BaseException | None = None
        async with trio.open_nursery() as nursery:
            nursery.start_soon(reader)
            nursery.start_soon(ticker)
            try:
                actions = machine.start(now_ms()) if isinstance(machine, PushSubscriber) else []
                done = await self._carry_out(session, actions, spec)
                while not done:
                    kind, data = await session.events.receive()
                    now = now_ms()
                    if kind == "gone":
                        raise NetworkError(data.decode())
                    if kind == "data":
                        session.heard = True
                        actions = machine.receive(data, now)
                    elif kind == "tick":
                        actions = machine.tick(now)
                    else:
                        actions = []
                    if isinstance(machine, PushProvider) and (session.pending or session.log_end):
                        pending, session.pending = session.pending, []
                        actions += machine.offer(pending, now, log_end=session.log_end)
                        session.log_end = 0
                    done = await self._carry_out(session, actions, spec)
            except (ProtocolError, NetworkError) as exc:
                failure = exc
            finally:
                nursery.cancel_scope.cancel()
                if isinstance(machine, PushProvider):
                    self.stats.pushed += machine.sent
        if isinstance(failure, LocalProtocolError):
            log.error("push session bug peer=%s error=%s", peer_id_of(peer), failure)
        elif isinstance(failure, ProtocolError):
            self.stats.errors += 1
            if self._penalise is not None:
                self._penalise(peer, getattr(failure, "penalty", 10), f"push: {failure}")
        if isinstance(failure, ProtocolError):
            await stream.reset()
        elif failure is not None:
            log.debug("push stream ended peer=%s error=%s", peer_id_of(peer), failure)
        else:
            try:
                await stream.close()
            except NetworkError:
                await stream.reset()

    async def _carry_out(self, session: _Session, actions: list[Any],
                         spec: Provider | None = None) -> bool:
        """Carry out the machine's actions; True once the session is over."""
        peer = session.stream.remote_public_key
        queue = list(actions)
        out = b""
        done = False
        while queue:
            a = queue.pop(0)
            if isinstance(a, Send):
                out += a.data
            elif isinstance(a, Backlog):
                queue += self._backlog(session, a)
            elif isinstance(a, Persist):
                self._persist(peer, a)
            elif isinstance(a, Deliver):
                assert spec is not None
                if out:  # acks of earlier deliveries first
                    await session.stream.write(out)
                    out = b""
                queue += await self._deliver(session, spec, a)
            elif isinstance(a, Disconnect):
                log.info("push session over peer=%s reason=%s", peer_id_of(peer), a.reason)
                if spec is not None and CURSOR_AHEAD in a.reason:
                    log.warning("push: provider's log is behind our cursor, starting over "
                                "peer=%s", peer_id_of(peer))
                    ws = WriteSet()
                    Store.meta_put(ws, f"push.cur.{spec.peer.hex()}",
                                   {"cursor": 0, "filter": spec.filter.to_map()})
                    self.store.write(ws)
                done = True
        if out:
            await session.stream.write(out)
        return done
