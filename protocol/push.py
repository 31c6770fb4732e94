"""Alert push: filtered subscriptions, pushed at once, acknowledged, resumable.

Theory of operation. A subscriber sends `Subscribe{filter, cursor}`, the last
cursor of the provider's alert log it stored. `PushProvider` reads the log after
it (`Backlog` / `supply()`, a page at a time) and takes live entries from
`offer()` (a fast path only: one that does not follow the last entry examined
is read back from the store). Matches go out in cursor order in chained
`Alerts{after, upto, entries}`: `after` is the previous `upto`, and a message
holds every match in (after, upto]; when idle, an empty one reports progress or
keeps the stream alive. At most `window` entries await an `Ack` (→ `Persist`).
`PushSubscriber` rejects gaps and regressions, drops entries it already has,
and `Deliver`s new ones once, in order; the shell stores them with the new
cursor and calls `stored(upto)` to acknowledge. A new session resumes from the
stored cursor; an entry stored before a crash but not acknowledged comes again
and the shell drops it by alert key. `tick(now)` times out a missing
`Subscribe`, `Ack` or (subscriber) any sign of life. Frames are those of
`protocol.sync_messages`; peer messages are checked against `_TABLE`.
"""

from __future__ import annotations

import enum
import re
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Final

from crypto.errors import Error
from protocol.bodies import SEVERITIES, ObjectRef, alert_key
from protocol.envelope import Record
from protocol.errors import LocalProtocolError, ProtocolError, RemoteProtocolError
from protocol.sync_messages import (
    PENALTY_MALFORMED,
    Bye,
    Disconnect,
    FrameDecoder,
    Message,
    Send,
    encode_frame,
)

PUSH_VERSION: Final = 1  # of the messages; the stream protocol id is /sealchain/push/1
PENALTY_FORGED: Final = 100
MAX_SET: Final = 256  # values per filter field
MAX_ENTRIES: Final = 256  # entries per Alerts message
# Bye reason of a provider whose log ends before the subscriber's cursor (its database
# was replaced): the subscriber starts again from 0 and drops what it has by alert key.
CURSOR_AHEAD: Final = "cursor ahead of the provider's log"
_U63: Final = 2**63 - 1
_SETS: Final = ("brands", "containers", "jurisdictions", "marks", "shipments")
_ENTRY_KEYS: Final = ("evidence", "key", "reason", "retracted", "rule", "severity", "signed",
                      "subject", "ts")
_SUBJECTS: Final = ("token", "container", "shipment", "party")
_COUNTRY: Final = re.compile(r"[A-Z]{2}")
_RULE: Final = re.compile(r"[a-z][a-z0-9_.]{0,63}")


def _need(ok: object, what: str) -> None:
    if not ok:
        raise LocalProtocolError(what)


def _int(v: object, name: str, lo: int = 0, hi: int = _U63) -> int:
    if type(v) is not int or not lo <= v <= hi:
        raise LocalProtocolError(f"{name} is an integer from {lo} to {hi}")
    return v


def _map(m: object, name: str, keys: Iterable[str], required: Iterable[str]) -> dict[str, Any]:
    """A wire map of `keys`, with every `required` one, in key order (one encoding)."""
    if type(m) is not dict or not all(type(k) is str for k in m) or list(m) != sorted(m) \
            or not set(required) <= set(m) <= set(keys):
        raise LocalProtocolError(f"{name} is a map of {sorted(keys)} in key order")
    return m


def _valid(name: str, v: object) -> bool:
    if name == "brands":
        return type(v) is bytes and len(v) == 32
    if name == "jurisdictions":
        return type(v) is str and _COUNTRY.fullmatch(v) is not None
    return type(v) is str and 0 < len(v) <= 100


@dataclass(frozen=True, slots=True, kw_only=True)
class Context:
    """What an alert concerns, computed by the shell (`node.alert_context`): countries
    (declarations, origin, destination), brand keys, marks, containers, shipments."""

    brands: frozenset[bytes] = frozenset()
    containers: frozenset[str] = frozenset()
    jurisdictions: frozenset[str] = frozenset()
    marks: frozenset[str] = frozenset()
    shipments: frozenset[str] = frozenset()


EMPTY: Final = Context()


@dataclass(frozen=True, slots=True, kw_only=True)
class Filter(Context):
    """Which alerts a subscriber wants: each non-empty set must meet the alert's
    context (an empty set is "any"), and the severity must reach `min_severity`."""

    min_severity: str = SEVERITIES[0]

    def __post_init__(self) -> None:
        for name in _SETS:
            values = getattr(self, name)
            _need(isinstance(values, Iterable) and not isinstance(values, str | bytes | Mapping),
                  f"filter.{name} is a set")
            object.__setattr__(self, name, values := frozenset(values))
            _need(len(values) <= MAX_SET and all(_valid(name, v) for v in values),
                  f"filter.{name} holds at most {MAX_SET} valid values")
        _need(self.min_severity in SEVERITIES, f"filter.min_severity is one of {SEVERITIES}")

    @property
    def needs_context(self) -> bool:
        return any(getattr(self, name) for name in _SETS)

    def matches(self, entry: Mapping[str, Any], context: Context = EMPTY) -> bool:
        sev = entry.get("severity")
        if sev not in SEVERITIES or SEVERITIES.index(sev) < SEVERITIES.index(self.min_severity):
            return False
        return all(not getattr(self, n) or getattr(self, n) & getattr(context, n) for n in _SETS)

    def to_map(self) -> dict[str, Any]:
        m = {**{n: sorted(getattr(self, n)) for n in _SETS}, "min_severity": self.min_severity}
        return dict(sorted(m.items()))

    @classmethod
    def from_map(cls, m: object) -> Filter:
        """The filter of a wire map (sets as ascending lists). Raises `LocalProtocolError`."""
        m = _map(m, "filter", (*_SETS, "min_severity"), (*_SETS, "min_severity"))
        for n in _SETS:
            v = m[n]
            _need(type(v) is list and all(_valid(n, x) for x in v) and v == sorted(set(v)),
                  f"filter.{n} is an ascending list of valid values, no repeats")
        return cls(**m)


def wire_entry(entry: Mapping[str, Any]) -> dict[str, Any]:
    """A stored alert entry as pushed: its network-wide fields only, checked (its key
    must be its alert key). An entry that comes from a signed alert record carries the
    record's wire as `signed` (the shell adds it to what it offers): the subscriber
    verifies it rather than trusting the fields. Raises `LocalProtocolError`."""
    m = {k: entry[k] for k in _ENTRY_KEYS if k in entry}
    if isinstance(m.get("subject"), Mapping):
        m["subject"] = {k: m["subject"][k] for k in ("id", "kind") if k in m["subject"]}
    return _check_entry(m)


def _check_entry(m: object) -> dict[str, Any]:
    m = _map(m, "entry", _ENTRY_KEYS, set(_ENTRY_KEYS) - {"retracted", "signed"})
    s, ev = _map(m["subject"], "entry.subject", ("id", "kind"), ("id", "kind")), m["evidence"]
    _need(type(m["rule"]) is str and _RULE.fullmatch(m["rule"]), "entry.rule is a rule name")
    _need(m["severity"] in SEVERITIES, "entry.severity is a severity")
    _need(s["kind"] in _SUBJECTS and type(s["id"]) is str and 0 < len(s["id"]) <= 64,
          "entry.subject is {kind, id}")
    _need(type(m["reason"]) is str and len(m["reason"]) <= 1000, "entry.reason is a string")
    _need(type(ev) in (list, tuple) and 0 < len(ev) <= 64 and
          all(type(e) is bytes and len(e) == 32 for e in ev), "entry.evidence is 1 to 64 ids")
    _int(m["ts"], "entry.ts")
    _int(m.get("retracted", 0), "entry.retracted")
    m["evidence"] = list(ev)
    _need(m["key"] == alert_key(m["rule"], ObjectRef(kind=s["kind"], id=s["id"]), ev,
                                severity=m["severity"], reason=m["reason"]),
          "entry.key is not the alert key of its rule, subject, evidence, severity and reason")
    if "signed" in m:
        _signed_matches(m)
    return m


def signed_record(entry: Mapping[str, Any]) -> Record:
    """The signed alert record of a checked wire entry that carries one."""
    return Record.from_bytes(entry["signed"], verify=False)  # verified by `_check_entry`


def _signed_matches(m: dict[str, Any]) -> None:
    """A signed entry: the record's signature verifies and its body says what the entry
    says. Whether its author may write alerts is for the shell (it holds the credentials)."""
    _need(type(m["signed"]) is bytes, "entry.signed is a record's wire")
    try:
        r = Record.from_bytes(m["signed"])
    except Error as exc:
        raise LocalProtocolError(f"entry.signed is not a valid signed record: {exc}") from exc
    b: Any = r.body
    _need(r.type == "alert" and b.key == m["key"] and b.rule == m["rule"]
          and b.severity == m["severity"] and b.reason == m["reason"]
          and [b.subject.kind, b.subject.id] == [m["subject"]["kind"], m["subject"]["id"]]
          and list(b.evidence) == m["evidence"],
          "entry.signed is not an alert record saying what the entry says")


Entry = tuple[int, dict[str, Any]]  # (provider cursor, wire entry)


@dataclass(frozen=True, slots=True, kw_only=True)
class Subscribe(Message):
    kind: ClassVar[str] = "subscribe"
    _keys: ClassVar[frozenset[str]] = frozenset({"net", "v", "filter", "cursor"})
    network: bytes
    filter: Filter
    cursor: int
    version: int = PUSH_VERSION

    def __post_init__(self) -> None:
        _need(type(self.network) is bytes and len(self.network) == 32, "network is 32 bytes")
        _need(type(self.filter) is Filter, "filter is a Filter")
        _int(self.cursor, "cursor")
        _int(self.version, "version", 0, 2**32 - 1)

    def _fields(self) -> dict[str, Any]:
        return {"net": self.network, "v": self.version, "filter": self.filter.to_map(),
                "cursor": self.cursor}

    @classmethod
    def _build(cls, m: dict[str, Any]) -> Message:
        return cls(network=m["net"], version=m["v"], filter=Filter.from_map(m["filter"]),
                   cursor=m["cursor"])


@dataclass(frozen=True, slots=True, kw_only=True)
class Alerts(Message):  # every entry matching the subscription in (after, upto], in order
    kind: ClassVar[str] = "alerts"
    _keys: ClassVar[frozenset[str]] = frozenset({"after", "upto", "entries"})
    after: int
    upto: int
    entries: Sequence[Entry]  # stored as a tuple

    def __post_init__(self) -> None:
        _int(self.upto, "upto", _int(self.after, "after"))
        _need(type(self.entries) in (list, tuple) and len(self.entries) <= MAX_ENTRIES,
              f"entries is a list of at most {MAX_ENTRIES}")
        object.__setattr__(self, "entries", tuple(self.entries))
        last = self.after
        for e in self.entries:
            _need(type(e) in (tuple, list) and len(e) == 2, "an entry is [cursor, entry]")
            last = _int(e[0], "entry cursor", last + 1, self.upto)
            _check_entry(e[1])

    def _fields(self) -> dict[str, Any]:
        return {"after": self.after, "upto": self.upto, "entries": [list(e) for e in self.entries]}

    @classmethod
    def _build(cls, m: dict[str, Any]) -> Message:
        _need(type(m["entries"]) is list and all(type(e) is list for e in m["entries"]),
              "entries is a list of [cursor, entry]")
        return cls(after=m["after"], upto=m["upto"], entries=[tuple(e) for e in m["entries"]])


@dataclass(frozen=True, slots=True, kw_only=True)
class Ack(Message):  # the subscriber stored everything up to `cursor`
    kind: ClassVar[str] = "ack"
    _keys: ClassVar[frozenset[str]] = frozenset({"cursor"})
    cursor: int

    def __post_init__(self) -> None:
        _int(self.cursor, "cursor")

    def _fields(self) -> dict[str, Any]:
        return {"cursor": self.cursor}

    @classmethod
    def _build(cls, m: dict[str, Any]) -> Message:
        return cls(cursor=m["cursor"])


KINDS: Final[dict[str, type[Message]]] = {c.kind: c for c in (Subscribe, Alerts, Ack, Bye)}


@dataclass(frozen=True, slots=True, kw_only=True)
class Backlog:  # read up to `limit` stored entries after `from_cursor`; `supply()` them
    from_cursor: int
    limit: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Persist:  # record the subscription: its filter, the cursor the subscriber acked
    filter: Filter
    cursor: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Deliver:  # store these new entries (in order), persist `upto`, call `stored(upto)`
    entries: list[Entry]
    upto: int


Action = Send | Backlog | Persist | Deliver | Disconnect


@dataclass(frozen=True, slots=True, kw_only=True)
class PushLimits:
    window: int = 256  # entries sent and not acknowledged
    batch: int = 64  # entries per Alerts message
    page: int = 256  # entries per Backlog read
    subscribe_timeout_ms: int = 10_000
    ack_timeout_ms: int = 30_000
    keepalive_ms: int = 15_000
    idle_timeout_ms: int = 60_000  # subscriber: nothing heard for this long

    def __post_init__(self) -> None:
        _need(1 <= self.batch <= min(self.window, MAX_ENTRIES) and self.page >= 1
              and 0 < min(self.subscribe_timeout_ms, self.ack_timeout_ms, self.keepalive_ms)
              and self.keepalive_ms < self.idle_timeout_ms,
              "limits: 1 <= batch <= window, page >= 1, 0 < keepalive < idle timeout")


class State(enum.Enum):
    NEW = "new"
    AWAIT_SUBSCRIBE = "await_subscribe"  # provider
    STREAMING = "streaming"
    CLOSED = "closed"


_TABLE: Final[dict[tuple[str, State, str], State]] = {
    ("provider", State.AWAIT_SUBSCRIBE, "subscribe"): State.STREAMING,
    ("provider", State.AWAIT_SUBSCRIBE, "bye"): State.CLOSED,
    ("provider", State.STREAMING, "ack"): State.STREAMING,
    ("provider", State.STREAMING, "bye"): State.CLOSED,
    ("subscriber", State.STREAMING, "alerts"): State.STREAMING,
    ("subscriber", State.STREAMING, "bye"): State.CLOSED,
}


class _Machine:
    role: ClassVar[str]

    def __init__(self, network: bytes, limits: PushLimits | None) -> None:
        self.network = network
        self.limits = limits or PushLimits()
        self.state = State.NEW
        self._decoder = FrameDecoder(kinds=KINDS)

    @property
    def closed(self) -> bool:
        return self.state is State.CLOSED

    def close(self, reason: str) -> list[Action]:
        return [] if self.closed else self._close_with(reason)

    def receive(self, data: bytes, now: int) -> list[Action]:
        """Bytes from the peer (b"" at end of stream). Raises `ProtocolError`."""
        _need(self.state not in (State.NEW, State.CLOSED), f"receive() in state {self.state}")
        try:
            if not data:
                self._decoder.eof()
                self.state = State.CLOSED
                return [Disconnect(reason="peer closed the stream")]
            out: list[Action] = []
            for msg in self._decoder.feed(data):
                if self.closed:
                    break
                nxt = _TABLE.get((self.role, self.state, msg.kind))
                if nxt is None:
                    raise RemoteProtocolError(f"{msg.kind} is not allowed in state "
                                              f"{self.state.name}", penalty=PENALTY_MALFORMED)
                self.state = nxt
                if isinstance(msg, Bye):
                    return out + [Disconnect(reason=f"peer said bye: {msg.reason}")]
                out += self._handle(msg, now)
            return out
        except ProtocolError:
            self.state = State.CLOSED
            raise

    def _handle(self, msg: Message, now: int) -> list[Action]:
        raise NotImplementedError

    def _close_with(self, reason: str) -> list[Action]:
        self.state = State.CLOSED
        return [Send(data=encode_frame(Bye(reason=reason[:1024]))), Disconnect(reason=reason)]


Offered = tuple[int, Mapping[str, Any], Context]  # (cursor, stored entry, its context)


class PushProvider(_Machine):
    """Serves one subscriber on one stream, from `now` on. See the module docstring."""

    role: ClassVar[str] = "provider"

    def __init__(self, network: bytes, now: int, limits: PushLimits | None = None) -> None:
        super().__init__(network, limits)
        self.state, self.filter = State.AWAIT_SUBSCRIBE, Filter()
        self.skipped = self.sent = 0  # matches not pushable (`wire_entry`); entries sent
        self._acked = self._scan = self._sent = 0  # subscriber's cursor; examined; last upto
        self._log_end = 0  # the log reaches at least here (offers not taken at once)
        self._reading = self._more = False  # a Backlog is out; the last page was full
        self._queue: deque[Entry] = deque()  # matches not sent yet
        self._inflight: deque[tuple[int, int]] = deque()  # (cursor, sent at)
        self._deadline, self._last_send = now + self.limits.subscribe_timeout_ms, now

    def _handle(self, msg: Message, now: int) -> list[Action]:
        if isinstance(msg, Subscribe):
            if msg.network != self.network or msg.version != PUSH_VERSION:
                return self._close_with(f"not network {self.network.hex()[:16]} push v1")
            self.filter, self._more = msg.filter, True
            self._acked = self._scan = self._sent = msg.cursor
            return [Persist(filter=self.filter, cursor=msg.cursor), *self._pump(now)]
        assert isinstance(msg, Ack)
        if not self._acked <= msg.cursor <= self._sent:
            raise RemoteProtocolError(f"ack {msg.cursor} outside {self._acked}..{self._sent}",
                                      penalty=PENALTY_MALFORMED)
        if msg.cursor == self._acked:
            return []
        self._acked = msg.cursor
        while self._inflight and self._inflight[0][0] <= msg.cursor:
            self._inflight.popleft()
        return [Persist(filter=self.filter, cursor=msg.cursor), *self._pump(now)]

    def supply(self, entries: Sequence[Offered], now: int) -> list[Action]:
        """Answer a `Backlog`: the stored entries after its cursor, in cursor order."""
        if self.closed:
            return []
        cursors = [self._scan, *(e[0] for e in entries)]
        _need(self._reading and all(a < b for a, b in zip(cursors, cursors[1:], strict=False)),
              "supply() answers a Backlog, with entries after its cursor, in order")
        self._reading, self._more = False, len(entries) >= self.limits.page
        if not entries:
            self._log_end = self._scan  # an offered cursor the store lacks: stop looking
        for cursor, entry, context in entries:
            self._examine(cursor, entry, context)
        return self._pump(now)

    def offer(self, entries: Sequence[Offered], now: int, *, log_end: int = 0) -> list[Action]:
        """Entries just stored, in cursor order (taken at once if they follow the scan);
        `log_end`: the log reaches there (entries the shell could not offer: read back)."""
        if self.state is not State.STREAMING:
            return []
        self._log_end = max(self._log_end, log_end)
        for cursor, entry, context in entries:
            if cursor <= self._scan:
                continue
            if cursor == self._scan + 1 and not (self._reading or self._more) \
                    and len(self._queue) < self.limits.page + self.limits.batch:
                self._examine(cursor, entry, context)
            else:
                self._log_end = max(self._log_end, cursor)
        return self._pump(now)

    def tick(self, now: int) -> list[Action]:
        if self.state is State.AWAIT_SUBSCRIBE and now > self._deadline:
            return self._close_with("timeout: no subscribe")
        if self.state is not State.STREAMING:
            return []
        if self._inflight and now - self._inflight[0][1] > self.limits.ack_timeout_ms:
            return self._close_with("timeout: no ack")
        out = self._pump(now)
        idle = not (self._queue or self._inflight or self._reading)
        if idle and (self._scan > self._sent or now - self._last_send >= self.limits.keepalive_ms):
            out.append(self._alerts([], self._scan, now))  # progress, or keepalive
        return out

    def _examine(self, cursor: int, entry: Mapping[str, Any], context: Context) -> None:
        self._scan = cursor
        if self.filter.matches(entry, context):
            try:
                self._queue.append((cursor, wire_entry(entry)))
            except LocalProtocolError:
                self.skipped += 1

    def _alerts(self, entries: list[Entry], upto: int, now: int) -> Send:
        msg = Alerts(after=self._sent, upto=upto, entries=entries)
        self._sent, self._last_send, self.sent = upto, now, self.sent + len(entries)
        self._inflight.extend((c, now) for c, _ in entries)
        return Send(data=encode_frame(msg))

    def _pump(self, now: int) -> list[Action]:
        out: list[Action] = []
        while self._queue and len(self._inflight) < self.limits.window:
            n = min(self.limits.batch, self.limits.window - len(self._inflight), len(self._queue))
            take = [self._queue.popleft() for _ in range(n)]
            out.append(self._alerts(take, self._queue[0][0] - 1 if self._queue else self._scan, now))
        behind = self._more or self._log_end > self._scan
        if behind and not self._reading and len(self._queue) < self.limits.batch:
            self._reading = True
            out.append(Backlog(from_cursor=self._scan, limit=self.limits.page))
        return out


class PushSubscriber(_Machine):
    """Subscribes at one provider on one stream. See the module docstring."""

    role: ClassVar[str] = "subscriber"

    def __init__(self, network: bytes, filter: Filter, cursor: int,
                 limits: PushLimits | None = None) -> None:
        super().__init__(network, limits)
        self.filter = filter
        self.cursor = self.received = _int(cursor, "cursor")  # acknowledged; received
        self.duplicates = self._heard = 0

    def start(self, now: int) -> list[Action]:
        _need(self.state is State.NEW, "start() called twice")
        self.state, self._heard = State.STREAMING, now
        sub = Subscribe(network=self.network, filter=self.filter, cursor=self.cursor)
        return [Send(data=encode_frame(sub))]

    def _handle(self, msg: Message, now: int) -> list[Action]:
        assert isinstance(msg, Alerts)
        self._heard = now
        if msg.after > self.received:
            raise RemoteProtocolError(f"gap: alerts after {msg.after}, we have {self.received}",
                                      penalty=PENALTY_FORGED)
        if msg.upto < self.received:
            raise RemoteProtocolError("alerts went backwards", penalty=PENALTY_MALFORMED)
        fresh = [(c, dict(e)) for c, e in msg.entries if c > self.received]
        self.duplicates += len(msg.entries) - len(fresh)
        if msg.upto == self.received:
            return []
        self.received = msg.upto
        return [Deliver(entries=fresh, upto=msg.upto)]

    def stored(self, upto: int) -> list[Action]:
        """The shell stored everything delivered up to `upto`: acknowledge it."""
        if self.closed or upto == self.cursor:
            return []
        _need(self.cursor < upto <= self.received, f"stored({upto}) is not newly delivered")
        self.cursor = upto
        return [Send(data=encode_frame(Ack(cursor=upto)))]

    def tick(self, now: int) -> list[Action]:
        if self.state is State.STREAMING and now - self._heard > self.limits.idle_timeout_ms:
            return self._close_with("timeout: the provider is silent")
        return []
