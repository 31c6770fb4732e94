"""Customs observer: verify every container declared into our jurisdiction, at once.

A node with `observer = true` (a customs authority) watches the log. When a
`customs.declaration` into one of its credential's jurisdictions is stored, the
containers it names are verified (`node.verify`); every later record that
concerns a watched container (a scan, a seal, a sensor reading, a hand-over)
verifies it again at once, and so does a record about what it holds: a recall of
one of its items or their lot, a second mint of an item, an item packed elsewhere
(`_note`). The daemon's timer verifies them all again (`recheck`: findings that
come with time, such as an item expiring in transit). Each verdict change is
logged; findings (RED, or AMBER) that name an alert rule become signed `alert`
records of our own feed (customs may write alerts), so they replicate to every
node, and reach the brands concerned. A finding some office already signed (an
`alert` record with its key) is not signed again; the key is over rule,
container, evidence, severity and words (`intents`), the same as the ledger's
own derived alert for the finding, so it stays one alert network-wide.

A partial view makes false findings (the brand's mint not synced yet reads as an
item nobody minted), and a signed alert is forever. So with a `readiness`
probe (the daemon's: no sync lag, no gap pending, and the count of completed
sync sessions), findings are signed only once the node is caught up *and* a sync
round has completed since they were first seen; until then the container is
held and verified again every `HOLD_RETRY_S`. Findings gone by then are never
signed.
"""

from __future__ import annotations

import logging
import math
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
HOLD_RETRY_S = 1.0  # held findings: verified again this often until the node is caught up

# (caught up now: no sync lag and no gap pending; sync rounds completed so far, or None
# with no peer to sync with). See the module docstring.
Readiness = Callable[[], tuple[bool, int | None]]


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
                 jurisdictions: Callable[[], frozenset[str]],
                 readiness: Readiness | None = None) -> None:
        self.ledger = ledger
        self.append = append
        self.lock = lock
        self.clock = clock
        self.jurisdictions = jurisdictions
        self.readiness = readiness
        self.held: dict[str, int | None] = {}  # container -> sync rounds when first held
        self.watched: dict[str, str] = {}  # container -> jurisdiction it was declared into
        self.verdicts: dict[str, Verdict] = {}
        self._dirty: set[str] = set()
        self._wake = trio.Event()
        self._passing = False  # between a wake-up and the end of its verification pass
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
            with trio.move_on_after(HOLD_RETRY_S if self.held else math.inf):
                await self._wake.wait()
            self._wake = trio.Event()
            self._passing = True
            self._dirty.update(self.held)
            await trio.sleep(DEBOUNCE_S)  # let a burst of records land first
            dirty, self._dirty = self._dirty, set()
            try:
                for number in sorted(dirty):
                    await self._verify(number)
            finally:
                self._passing = False

    @property
    def settled(self) -> bool:
        """Whether every change noted so far is verified, and its findings signed (held
        ones aside): nothing waits for a pass and none is under way."""
        return not (self._passing or self._dirty or self._wake.is_set())

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
            elif r.type != "alert" and self.watched:
                for fact in F.contributions(r, self.ledger.params):
                    self._dirty.update(self._concerned(fact.key))
        if self._dirty:
            self._wake.set()

    def _concerned(self, key: bytes) -> set[str]:
        """The watched containers a change to object `key` may change the verdict of."""
        tag = key[:1]
        if tag == b"c":
            number = key[1:].decode()
            return {number} if number in self.watched else set()
        if tag == b"t":  # a recall, a second mint, a pack elsewhere, a hand-over of an item
            raw = self.ledger.store.facts_raw(key)  # the store: safe beside the writer thread
            packs = F.decode_facts(raw).get("packs", ()) if raw is not None else ()
            return {p[0] for p in packs if p[0] in self.watched}
        if tag == b"l":  # a lot recalled: no fact maps a lot to containers (recalls are rare)
            return set(self.watched)
        return set()

    def _may_sign(self, number: str) -> bool:
        """Whether findings on `number` may be signed now (see the module docstring)."""
        if self.readiness is None:
            return True
        caught_up, rounds = self.readiness()
        if number not in self.held:
            self.held[number] = rounds
            if rounds is not None:
                log.info("event=observer.hold container=%s: until a sync round completes",
                         number)
                return False
        first = self.held[number]
        if caught_up and (rounds is None or first is None or rounds > first):
            del self.held[number]
            return True
        return False

    async def _verify(self, number: str) -> None:
        now = self.clock()
        async with self.lock:
            verdict = verify_container(number, summary.verdict_reader(self.ledger, now),
                                       self.ledger.creds, self.ledger.params, now,
                                       memo=self.ledger.verify_memo)
        before = self.verdicts.get(number)
        self.verdicts[number] = verdict
        if before is None or before.level != verdict.level:
            log.warning("event=verdict container=%s verdict=%s reasons=%s", number,
                        verdict.level.name, ",".join(r.code for r in verdict.reasons) or "-")
        entries = [("alert", intent.body()) for intent in intents(verdict)
                   if not self.ledger.facts(F.alert_key(intent.key)).get("alert_records")]
        if not entries:
            self.held.pop(number, None)  # nothing (left) to sign
        elif self._may_sign(number):
            try:
                await self.append(entries)
            except Exception as exc:  # noqa: BLE001 - a failed alert must not stop the observer
                log.error("event=observer.alert_failed container=%s error=%s", number, exc)
