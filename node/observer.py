"""Customs observer: verify every container declared into our jurisdiction, at once.

A node with `observer = true` (a customs authority) watches the log. When a
`customs.declaration` into one of its credential's jurisdictions is stored, the
containers it names are verified (`node.verify`); every later record that
concerns a watched container (a scan, a seal, a sensor reading, a hand-over)
verifies it again, and so does the daemon's timer (`recheck`: findings that come
with time, such as an item expiring in transit). Each verdict change is logged;
findings (RED, or AMBER) that name an alert rule become signed `alert` records of
our own feed (customs may write alerts), so they replicate to every node, and
reach the brands concerned. An alert already in our log (same key) is not
raised twice; the key is over rule, container and evidence (`intents`), so two
customs nodes with the same records raise the same alert.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import trio

from node import derived, summary
from node import facts as F
from node.ledger import Ledger
from node.rules import Intent
from node.verify import Level, Verdict, verify_container
from protocol.envelope import Record

log = logging.getLogger("sealchain.observer")

DEBOUNCE_S = 0.1


def intents(verdict: Verdict) -> list[Intent]:
    """The alerts a verdict calls for: each finding that names an alert rule. Pure.

    Each is worded as every node words it (`derived.intent_of`), so when the ledger's
    rules or derived findings raise the same finding, it is the same alert (same key).
    """
    out: dict[bytes, Intent] = {}
    for reason in verdict.reasons:
        if reason.level is Level.GREEN or reason.alert is None or not reason.evidence:
            continue
        intent = derived.intent_of(reason.alert, reason, verdict.container)
        out.setdefault(intent.key, intent)
    return list(out.values())


class Observer:
    def __init__(self, ledger: Ledger, *, append: Callable[[list[tuple[str, Any]]], Awaitable[Any]],
                 lock: trio.Lock, clock: Callable[[], int],
                 jurisdictions: Callable[[], frozenset[str]]) -> None:
        self.ledger = ledger
        self.append = append
        self.lock = lock
        self.clock = clock
        self.jurisdictions = jurisdictions
        self.watched: dict[str, str] = {}  # container -> jurisdiction it was declared into
        self.verdicts: dict[str, Verdict] = {}
        self._dirty: set[str] = set()
        self._wake = trio.Event()
        self._token: trio.lowlevel.TrioToken | None = None
        ledger.on_stored(self._stored)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        self._token = trio.lowlevel.current_trio_token()
        async with self.lock:
            for rid in self.ledger.store.by_type("customs.declaration"):
                r = self.ledger.record(rid)
                if r is not None:
                    self._watch(r)
        task_status.started()
        while True:
            await self._wake.wait()
            self._wake = trio.Event()
            await trio.sleep(DEBOUNCE_S)  # let a burst of records land first
            dirty, self._dirty = self._dirty, set()
            for number in sorted(dirty):
                await self._verify(number)

    def recheck(self) -> None:
        """Verify every watched container again (the clock moved: items may have expired)."""
        if self.watched:
            self._dirty.update(self.watched)
            self._wake.set()

    def _watch(self, r: Record) -> None:
        body: Any = r.body
        if body.jurisdiction not in self.jurisdictions():
            return
        for number in body.containers:
            if number not in self.watched:
                log.info("event=observer.watch container=%s jurisdiction=%s", number,
                         body.jurisdiction)
            self.watched[number] = body.jurisdiction
            self._dirty.add(number)

    def _stored(self, records: list[Record], alerts: list[Any]) -> None:
        # After every durable write, possibly in the writer's worker thread.
        if records and self._token is not None:
            try:
                self._token.run_sync_soon(self._note, list(records))
            except trio.RunFinishedError:
                pass

    def _note(self, records: list[Record]) -> None:
        for r in records:
            if r.type == "customs.declaration":
                self._watch(r)
            elif r.type != "alert":
                for fact in F.contributions(r, self.ledger.params):
                    if fact.key[:1] == b"c":
                        number = fact.key[1:].decode()
                        if number in self.watched:
                            self._dirty.add(number)
        if self._dirty:
            self._wake.set()

    async def _verify(self, number: str) -> None:
        now = self.clock()
        async with self.lock:
            verdict = verify_container(number, summary.reader_of(self.ledger, now),
                                       self.ledger.creds, self.ledger.params, now)
        before = self.verdicts.get(number)
        self.verdicts[number] = verdict
        if before is None or before.level != verdict.level:
            log.warning("event=verdict container=%s verdict=%s reasons=%s", number,
                        verdict.level.name, ",".join(r.code for r in verdict.reasons) or "-")
        entries = [("alert", intent.body()) for intent in intents(verdict)
                   if self.ledger.store.alert_cursor(intent.key) is None]
        if entries:
            try:
                await self.append(entries)
            except Exception as exc:  # noqa: BLE001 - a failed alert must not stop the observer
                log.error("event=observer.alert_failed container=%s error=%s", number, exc)
