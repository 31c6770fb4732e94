"""Time rules, on the daemon's clock: a shipment gone silent for longer than its limit.

Theory of operation. The alert rules in `node.rules` fire on records; a rule that
fires because time passed needs a clock, which the core never reads. The rule
itself is pure (`silent`): a shipment in transit (created, not delivered or
cancelled) whose last activity, the latest record concerning the shipment or
one of its containers, is older than its `silence_limit_ms` (or the network's)
calls for a `shipment_silent` alert, with that last record as evidence. The key
is over (rule, shipment, last record), so one silence is one alert, on every
node whose clock passes the limit (one key network-wide), and the next record
ends the episode: a later silence names another record, so it is a new alert.

`Timers` is the shell: every `interval_s` it reads the time, lists the shipments
in transit straight from the store, runs the rule and logs each new finding in
the alert log through the writer (`Ledger.record_alert`, once by key), then
calls its `ticks` (the customs observer re-verifies its containers: items expire
in transit).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, Final

import trio

from node import facts as F
from node.ledger import Ledger
from node.rules import Intent
from protocol.envelope import Record
from protocol.genesis import Params

log = logging.getLogger("sealchain.timers")

RULE: Final = "shipment_silent"
ENDED: Final = frozenset({"delivered", "cancelled"})  # statuses after which silence is fine

FactsReader = Callable[[bytes], F.Facts]  # object key -> its facts ({} if none)
RecordReader = Callable[[bytes], Record | None]
IdsReader = Callable[[bytes], Sequence[bytes]]  # object key -> ids of the records concerning it
TsReader = Callable[[bytes], int | None]  # record id -> its timestamp (None: missing)
WriteCall = Callable[[Callable[[], Any]], Awaitable[Any]]  # e.g. `Writer.call`


# -- the rule (pure) ---------------------------------------------------------------------


def in_transit(facts: F.Facts) -> bool:
    """A shipment booked and not yet delivered or cancelled (its latest status)."""
    status = facts.get("status")  # (ts, id, status), the latest
    return bool(facts.get("create")) and (status is None or status[2] not in ENDED)


def last_activity(keys: Iterable[bytes], ids: IdsReader, ts: TsReader,
                  counts: Callable[[bytes], bool] = lambda rid: True) -> tuple[int, bytes] | None:
    """The latest (ts, id) among the records concerning `keys` that count."""
    seen = sorted({(t, rid) for key in keys for rid in ids(key)
                   if (t := ts(rid)) is not None}, reverse=True)
    return next((x for x in seen if counts(x[1])), None)


def silent(sid: str, facts: FactsReader, record: RecordReader, ids: IdsReader, ts: TsReader,
           params: Params, now: int, counts: Callable[[bytes], bool] = lambda rid: True
           ) -> Intent | None:
    """The `shipment_silent` alert shipment `sid` calls for at `now`, if any."""
    pf = facts(F.shipment_key(sid))
    if not in_transit(pf):
        return None
    containers: set[str] = set()
    limits = []
    for rid, _author in sorted(pf["create"]):
        r = record(rid)
        if r is None or r.type != "shipment.create":
            continue
        body: Any = r.body
        containers.update(body.containers)
        limits.append(body.silence_limit_ms or params.silence_limit_ms)
    if not limits:
        return None
    limit = min(limits)
    keys = [F.shipment_key(sid), *(F.container_key(c) for c in sorted(containers))]
    last = last_activity(keys, ids, ts, counts)
    if last is None or now - last[0] <= limit:
        return None
    quiet = now - last[0]
    return Intent(RULE, "medium", ("shipment", sid),
                  f"no record for {_duration(quiet)} (limit {_duration(limit)})", (last[1],))


def _duration(ms: int) -> str:
    minutes = ms // 60_000
    if minutes < 120:
        return f"{minutes} min"
    hours = minutes // 60
    return f"{hours} h" if hours < 48 else f"{hours // 24} days"


def entry_of(intent: Intent, now: int) -> dict[str, Any]:
    """The alert log entry for a time rule's finding (`Ledger.record_alert` adds the cursor)."""
    return {"key": intent.key, "rule": intent.rule, "severity": intent.severity,
            "subject": {"kind": intent.subject[0], "id": intent.subject[1]},
            "reason": intent.reason, "evidence": list(intent.evidence), "ts": now}


# -- the service -------------------------------------------------------------------------


class Timers:
    """Runs the time rules every `interval_s` seconds of the trio clock."""

    def __init__(self, ledger: Ledger, *, write: WriteCall, lock: trio.Lock,
                 clock: Callable[[], int], interval_s: float,
                 ticks: Sequence[Callable[[], None]] = ()) -> None:
        self.ledger = ledger
        self.write = write
        self.lock = lock
        self.clock = clock
        self.interval_s = interval_s
        self.ticks = list(ticks)
        self.raised = 0
        self._ts: dict[bytes, int | None] = {}  # record timestamps, of the last pass's records

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        while True:
            await trio.sleep(self.interval_s)
            await self.tick()

    async def tick(self) -> list[Intent]:
        """One pass: log the silences found now; then the other time-driven checks."""
        found = await self.silences(self.clock())
        for fn in self.ticks:
            fn()
        return found

    async def silences(self, now: int) -> list[Intent]:
        store = self.ledger.store
        sids = [key[1:].decode() for key, raw in store.iter_facts(b"p")
                if in_transit(F.decode_facts(raw))]
        cache, self._ts = self._ts, {}
        found = []
        for sid in sids:
            async with self.lock:  # `excluded` reads the credential set the writer changes
                intent = silent(sid, self.ledger.facts, self.ledger.record,
                                store.object_records, lambda rid: self._ts_of(rid, cache),
                                self.ledger.params, now, self._counts)
            if intent is not None and store.alert_cursor(intent.key) is None:
                found.append(intent)
        entries = [entry_of(i, now) for i in found]
        if entries:
            fresh = await self.write(lambda: [self.ledger.record_alert(e, now) for e in entries])
            for intent, new in zip(found, fresh, strict=True):
                if new:
                    self.raised += 1
                    log.warning("event=alert rule=%s shipment=%s reason=%r", intent.rule,
                                intent.subject[1], intent.reason)
        return found

    def _ts_of(self, rid: bytes, cache: dict[bytes, int | None]) -> int | None:
        if rid in self._ts:
            return self._ts[rid]
        if rid in cache:
            t = cache[rid]
        else:
            r = self.ledger.record(rid)
            t = None if r is None else r.ts
        self._ts[rid] = t
        return t

    def _counts(self, rid: bytes) -> bool:
        r = self.ledger.record(rid)
        return r is not None and not self.ledger.excluded(r)
