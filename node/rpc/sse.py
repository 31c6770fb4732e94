"""The alert stream: Server-Sent Events, live, resumable with Last-Event-ID.

Alerts are read from the store in cursor order (`Store.alerts`), never from an
in-memory queue, so a stream cannot drop or repeat one: each event's `id` is
the alert's cursor, and a client that reconnects with `Last-Event-ID: n` (or
`?since=n`) gets exactly the alerts after n. The `AlertHub` only wakes the
streams when a write stored new alerts; a comment line every `heartbeat`
seconds keeps idle connections (and proxies) alive.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Final

import trio

from node.rpc import jsonio
from protocol.bodies import SEVERITIES
from protocol.errors import ValidationError

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


@dataclass(frozen=True, slots=True)
class AlertFilter:
    min_severity: int = 0
    subject_kind: str | None = None
    subject_id: str | None = None

    @classmethod
    def parse(cls, severity: str | None, subject: str | None) -> AlertFilter:
        level = 0
        if severity is not None:
            if severity not in SEVERITIES:
                raise ValidationError("severity", "enum",
                                      f"expected one of {', '.join(SEVERITIES)}")
            level = SEVERITIES.index(severity)
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
        return cls(level, kind, ident)

    def matches(self, entry: dict[str, Any]) -> bool:
        sev = entry.get("severity")
        if sev not in SEVERITIES or SEVERITIES.index(sev) < self.min_severity:
            return False
        subject = entry.get("subject") or {}
        if self.subject_kind is not None and subject.get("kind") != self.subject_kind:
            return False
        return self.subject_id is None or subject.get("id") == self.subject_id


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
            if flt.matches(entry):
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
            if flt.matches(entry):
                data = jsonio.dumps(alert_json(c, entry))
                yield b"id: %d\nevent: alert\ndata: %s\n\n" % (c, data)
        if len(batch) == PAGE:
            await trio.lowlevel.checkpoint()
            continue
        with trio.move_on_after(heartbeat) as idle:
            await wake.wait()
        if idle.cancelled_caught:
            yield b": keepalive\n\n"
