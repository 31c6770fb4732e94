"""Time rules, on the daemon's clock: a shipment gone silent for longer than its limit,
an item expired in transit, an author whose credential never came.

Theory of operation. The alert rules in `node.rules` fire on records; a rule that
fires because time passed needs a clock, which the core never reads. The rule
itself is pure (`silent`): a shipment in transit (created, not delivered or
cancelled) whose last activity, the latest record concerning the shipment or
one of its containers, is older than its `silence_limit_ms` (or the network's)
calls for a `shipment_silent` alert, with that last record as evidence. The key
is over (rule, shipment, last record), so one silence is one alert, on every
node whose clock passes the limit (one key network-wide), and the next record
ends the episode: a later silence names another record, so it is a new alert.

Expiry (`expired`): a container of a shipment in transit holding items whose
mint's expiry is past raises `expired_item`, with those mint ids as evidence:
the key of the customs observer's alert for the same finding
(`derived.intent_of`), so one alert network-wide; an item expiring later makes
a new finding (more evidence).

Unknown author (`unknown_authors`): records of an author whose credential has
not arrived wait in the pending area; an author whose records have waited longer
than `unknown_author_limit_s` raises `unknown_author` once, naming the records
held then. Pending records live in memory only: the evidence ids are not in the
log (the alert says so), and a restart starts the wait again.

`Timers` is the shell: every `interval_s` it reads the time, lists the shipments
in transit straight from the store, runs the rules and logs each new finding in
the alert log through the writer (`Ledger.record_alert`, once by key), then
calls its `ticks` (the customs observer re-verifies its containers).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any, Final

import trio

from node import derived, summary
from node import facts as F
from node.ledger import Ledger
from node.rules import Intent
from node.verify import Level, Reason, item_mints
from protocol.envelope import Record
from protocol.genesis import Params

log = logging.getLogger("sealchain.timers")

RULE: Final = "shipment_silent"
UNKNOWN: Final = "unknown_author"
EXPIRED: Final = "expired_item"
MINTS_REFRESH: Final = 10  # ticks between re-reading an unchanged manifest's mints
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


def containers_of(sid: str, facts: FactsReader, record: RecordReader) -> list[str]:
    """The containers a shipment's create records name."""
    out: set[str] = set()
    for rid, _author in sorted(facts(F.shipment_key(sid)).get("create", ())):
        r = record(rid)
        if r is not None and r.type == "shipment.create":
            out.update(r.body.containers)  # type: ignore[attr-defined]
    return sorted(out)


def expired(number: str, mints: Sequence[tuple[int, bytes]], now: int) -> Intent | None:
    """The `expired_item` alert container `number` calls for at `now`, given the
    (expiry, mint id) of its items' mints (`verify.item_mints`)."""
    ids = tuple(sorted({mid for expiry, mid in mints if expiry < now}))
    if not ids:
        return None
    return derived.intent_of(EXPIRED, Reason(Level.AMBER, "item.expired", "expired items",
                                             ids), number)


def unknown_authors(pending: Mapping[bytes, Sequence[bytes]], since: Mapping[bytes, int],
                    now: int, limit_ms: int) -> list[Intent]:
    """An `unknown_author` alert for each author whose records have waited for its
    credential (`pending`: author -> held record ids) since `since[author]`, past the limit."""
    out = []
    for author, ids in sorted(pending.items()):
        first = since.get(author)
        if not ids or first is None or now - first <= limit_ms:
            continue
        out.append(Intent(UNKNOWN, "high", ("party", author.hex()),
                          f"{len(ids)} records waited {_duration(now - first)} for a credential"
                          " that has not come (the evidence records are held in memory, not"
                          " stored)", tuple(sorted(ids)[:64])))
    return out


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
                 ticks: Sequence[Callable[[], None]] = (),
                 unknown_author_limit_s: float = 600) -> None:
        self.ledger = ledger
        self.write = write
        self.lock = lock
        self.clock = clock
        self.interval_s = interval_s
        self.ticks = list(ticks)
        self.raised = 0
        self._ts: dict[bytes, int | None] = {}  # record timestamps, of the last pass's records
        self.unknown_limit_ms = int(unknown_author_limit_s * 1000)
        self._unknown_since: dict[bytes, int] = {}  # author -> when first seen waiting
        self._unknown_raised: set[bytes] = set()  # authors alerted (once each)
        self._mints: dict[str, tuple[bytes | None, int, list[tuple[int, bytes]]]] = {}
        self._ticks = 0

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        while True:
            await trio.sleep(self.interval_s)
            await self.tick()

    async def tick(self) -> list[Intent]:
        """One pass: log the silences found now; then the other time-driven checks."""
        now = self.clock()
        found = await self.silences(now)
        found += await self.unknown(now)
        found += await self.expiries(now)
        self._ticks += 1
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

    async def unknown(self, now: int) -> list[Intent]:
        """Log `unknown_author` for authors whose records waited past the limit (once each)."""
        pending = self.ledger.pending.unknown()
        for author in list(self._unknown_since):
            if author not in pending:  # its credential came (or its records were dropped)
                del self._unknown_since[author]
        for author in pending:
            self._unknown_since.setdefault(author, now)
        waiting = {a: ids for a, ids in pending.items() if a not in self._unknown_raised}
        found = unknown_authors(waiting, self._unknown_since, now, self.unknown_limit_ms)
        await self._log(found, now)
        self._unknown_raised.update(bytes.fromhex(i.subject[1]) for i in found)
        return found

    async def expiries(self, now: int) -> list[Intent]:
        """Log `expired_item` for containers in transit holding items past their expiry."""
        store = self.ledger.store
        found = []
        for key, raw in store.iter_facts(b"p"):
            if not in_transit(F.decode_facts(raw)):
                continue
            async with self.lock:
                for number in containers_of(key[1:].decode(), self.ledger.facts,
                                            self.ledger.record):
                    intent = expired(number, self._mints_of(number, now), now)
                    if intent is not None and store.alert_cursor(intent.key) is None:
                        found.append(intent)
        await self._log(found, now)
        return found

    def _mints_of(self, number: str, now: int) -> list[tuple[int, bytes]]:
        """A container's item mints, re-read when its manifest changes or every few ticks."""
        packs = self.ledger.facts(F.container_key(number)).get("packs", ())
        root = max(packs, key=lambda p: (p[7], p[5]))[0] if packs else None
        held = self._mints.get(number)
        if held is None or held[0] != root or self._ticks - held[1] >= MINTS_REFRESH:
            root, mints = item_mints(number, summary.reader_of(self.ledger, now))
            held = self._mints[number] = (root, self._ticks, mints)
        return held[2]

    async def _log(self, found: list[Intent], now: int) -> None:
        entries = [entry_of(i, now) for i in found]
        if not entries:
            return
        fresh = await self.write(lambda: [self.ledger.record_alert(e, now) for e in entries])
        for intent, new in zip(found, fresh, strict=True):
            if new:
                self.raised += 1
                log.warning("event=alert rule=%s subject=%s:%s reason=%r", intent.rule,
                            intent.subject[0], intent.subject[1][:16], intent.reason)

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
