"""The alert stream: Server-Sent Events, live, resumable with Last-Event-ID.

Alerts are read from the store in cursor order (`Store.alerts`), never from an
in-memory queue, so a stream cannot drop or repeat one: each event's `id` is
the alert's cursor, and a client that reconnects with `Last-Event-ID: n` (or
`?since=n`) gets exactly the alerts after n. `AlertFilter` is a push
subscription's filter (`protocol.push.Filter`: severity, jurisdictions,
brands, marks, containers, shipments) plus an optional subject, so local
clients get what peers subscribe to. The `AlertHub` only wakes the
streams when a write stored new alerts; a comment line every `heartbeat`
seconds keeps idle connections (and proxies) alive.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import trio

from node import facts as F
from node.alert_context import alert_context
from node.rpc import jsonio
from protocol.bodies import SEVERITIES
from protocol.envelope import Record
from protocol.errors import ValidationError
from protocol.push import Context, Filter

PAGE: Final = 200


class AlertHub:
    """Wakes alert streams after a write stored new alerts; `close()` ends them."""

    def __init__(self) -> None:
        self.event = trio.Event()
        self.closed = False

    def notify(self) -> None:
        self.event.set()
        self.event = trio.Event()

    def close(self) -> None:
        self.closed = True
        self.notify()


# Query parameters that narrow alerts by what they concern, as a push subscription does
# (`protocol.push.Filter`): each repeatable or comma-separated, any value may match.
CONTEXT_PARAMS: Final = ("jurisdiction", "brand", "mark", "container", "shipment")
MAX_VALUES: Final = 64  # per parameter


@dataclass(frozen=True, slots=True)
class AlertFilter:
    """Which alerts a local client wants: the push `Filter` (severity, jurisdictions,
    brands, marks, containers, shipments, matched against `node.alert_context`) and
    optionally one subject."""

    push: Filter = Filter()
    subject_kind: str | None = None
    subject_id: str | None = None

    @property
    def min_severity(self) -> int:
        return SEVERITIES.index(self.push.min_severity)

    @classmethod
    def parse(cls, severity: str | None, subject: str | None,
              context: Mapping[str, Sequence[str]] | None = None) -> AlertFilter:
        """`context`: each of `CONTEXT_PARAMS` to its values (each may hold commas).
        Raises `ValidationError` naming the parameter."""
        if severity is not None and severity not in SEVERITIES:
            raise ValidationError("severity", "enum", f"expected one of {', '.join(SEVERITIES)}")
        kind = ident = None
        if subject is not None:
            if not 1 <= len(subject) <= 80:
                raise ValidationError("subject", "length", "expected [kind:]id, 1..80 characters")
            kind, sep, ident = subject.partition(":")
            if not sep:
                kind, ident = None, subject
            elif kind not in ("token", "container", "shipment", "party"):
                raise ValidationError("subject", "enum",
                                      "kind is token, container, shipment or party")
        sets: dict[str, frozenset[Any]] = {}
        for name in CONTEXT_PARAMS:
            values = [v.strip() for raw in (context or {}).get(name, ()) for v in raw.split(",")]
            values = [v for v in values if v]
            if len(values) > MAX_VALUES:
                raise ValidationError(name, "length", f"at most {MAX_VALUES} values")
            sets[name] = frozenset(_context_value(name, v) for v in values)
        push = Filter(jurisdictions=sets["jurisdiction"], brands=sets["brand"],
                      marks=sets["mark"], containers=sets["container"],
                      shipments=sets["shipment"], min_severity=severity or SEVERITIES[0])
        return cls(push, kind, ident)

    @classmethod
    def from_query(cls, q: Any) -> AlertFilter:
        """The filter of request query parameters (a Starlette `QueryParams`)."""
        return cls.parse(q.get("severity"), q.get("subject"),
                         {n: q.getlist(n) for n in CONTEXT_PARAMS})

    def matches(self, entry: dict[str, Any], store: Any = None) -> bool:
        """Does `entry` match? The context filters read the log through `store`."""
        subject = entry.get("subject") or {}
        if self.subject_kind is not None and subject.get("kind") != self.subject_kind:
            return False
        if self.subject_id is not None and subject.get("id") != self.subject_id:
            return False
        sev = entry.get("severity")
        if sev not in SEVERITIES or SEVERITIES.index(sev) < self.min_severity:
            return False  # before the context, which costs store reads
        return not self.push.needs_context or self.push.matches(entry, _context(store, entry))


def _context_value(name: str, v: str) -> Any:
    if name == "jurisdiction":
        if len(v) != 2 or not v.isascii() or not v.isalpha():
            raise ValidationError(name, "format", "expected an ISO 3166 country code, e.g. NL")
        return v.upper()
    if name == "brand":
        return jsonio.parse_key(v, name)
    if name == "container":
        return jsonio.parse_container(v, name)
    if name == "shipment":
        return jsonio.parse_shipment(v, name)
    if len(v) > 100:
        raise ValidationError(name, "length", "at most 100 characters")
    return v


def _context(store: Any, entry: dict[str, Any]) -> Context:
    def facts(key: bytes) -> F.Facts:
        raw = store.facts_raw(key)
        return F.decode_facts(raw) if raw is not None else {}

    def record(rid: bytes) -> Record | None:
        raw = store.record(rid)
        return None if raw is None else Record.from_bytes(raw, verify=False)

    return alert_context(entry, facts, record)


def alert_json(cursor: int, entry: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = jsonio.jsonable({k: v for k, v in entry.items() if k != "cursor"})
    out["cursor"] = cursor
    return out


def page(store: Any, since: int, flt: AlertFilter, limit: int) -> tuple[list[dict[str, Any]], int]:
    """Up to `limit` matching alerts after `since`, and the cursor to continue from.

    Scans at most 20 pages of non-matching alerts per call, so a narrow filter
    over a long history answers quickly (and the client follows `next`).
    """
    out: list[dict[str, Any]] = []
    cursor = since
    for _ in range(20):
        batch = store.alerts(cursor, PAGE)
        for c, entry in batch:
            cursor = c
            if flt.matches(entry, store):
                out.append(alert_json(c, entry))
                if len(out) >= limit:
                    return out, cursor
        if len(batch) < PAGE:
            break
    return out, cursor


async def events(store: Any, hub: AlertHub, since: int, flt: AlertFilter, *,
                 heartbeat: float = 15.0) -> AsyncIterator[bytes]:
    """The SSE body: every matching alert after `since`, then each new one as it is stored."""
    cursor = since
    yield b"retry: 2000\n\n"
    while not hub.closed:
        wake = hub.event  # taken before reading, so no alert stored after the read is missed
        batch = store.alerts(cursor, PAGE)
        for c, entry in batch:
            cursor = c
            if flt.matches(entry, store):
                data = jsonio.dumps(alert_json(c, entry))
                yield b"id: %d\nevent: alert\ndata: %s\n\n" % (c, data)
        if len(batch) == PAGE:
            await trio.lowlevel.checkpoint()
            continue
        with trio.move_on_after(heartbeat) as idle:
            await wake.wait()
        if idle.cancelled_caught:
            yield b": keepalive\n\n"
