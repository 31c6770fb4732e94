"""The ledger's alert log: the alerts a batch calls for, logged, withdrawn, in force again.

Part of `node.ledger.Ledger` (a mixin: the same object, its store and caches).
For every object a batch changed, the rules of `node.rules` run over its facts
before and after; the findings across objects (`node.derived`) run for the
containers the batch may have changed; signed alert records are logged as they
are; an author's first record written without the right is alerted once. An alert
the records no longer call for is withdrawn in place (its cursor is never reused),
and comes back in force if called for again. Alerts pushed by peers join the log
through `record_alert`.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from node import derived, rules
from node import facts as F
from node.batch_view import BatchView
from node.store import Store, WriteSet, u64
from protocol import codec
from protocol.envelope import Record

if TYPE_CHECKING:
    from collections import Counter, OrderedDict

    from crypto.credentials import CredentialSet
    from node.ledger_batch import Batch
    from protocol.genesis import Params

log = logging.getLogger("sealchain.ledger")

_NONE: frozenset[bytes] = frozenset()
_UNAUTHORISED = "unauthorised."  # meta: an author's first record written without the right


class LedgerAlerts:
    """The alert half of `node.ledger.Ledger`, which sets every attribute named here."""

    store: Store
    creds: CredentialSet
    params: Params
    stats: Counter[tuple[str, str]]
    disputes_version: int
    _listeners: list[Any]
    _facts_cache: OrderedDict[bytes, F.Facts]
    _called: dict[bytes, tuple[F.Facts, frozenset[bytes]]]
    _before: Any  # (b: Batch, key: bytes) -> F.Facts, `Ledger._before`

    def record_alert(self, entry: dict[str, Any], now: int, *, extra: WriteSet | None = None
                     ) -> bool:
        """Add an alert entry found elsewhere (pushed by a peer) to the alert log, once.

        The entry goes under the next cursor, with `received` set to `now`, in one
        synced batch (with `extra`'s operations, written even for a duplicate),
        unless an alert with its key is already logged: then False. Listeners see it
        as `callback([], [entry])`, like an alert derived here.
        """
        key = entry["key"]
        ws = WriteSet()
        if extra is not None:
            ws.ops.update(extra.ops)
        fresh = self.store.alert_cursor(key) is None
        if fresh:
            cursor = self.store.last_alert_cursor() + 1
            entry = {**entry, "cursor": cursor, "received": now}
            ws.put(b"A" + u64(cursor), codec.encode_local(entry))
            ws.put(b"K" + key, u64(cursor))
        if ws.ops:
            self.store.write(ws)
        if fresh:
            self.stats[("alert_received", str(entry.get("rule")))] += 1
            if entry.get("rule") in rules.DISPUTE_RULES:
                self.disputes_version += 1
            for cb in self._listeners:
                cb([], [entry])
        return fresh

    def _evaluate_alerts(self, b: Batch, now: int) -> None:
        cursor = self.store.last_alert_cursor()
        fresh: set[bytes] = set()
        called: set[bytes] = set()
        for key in sorted(b.dirty):
            # Rules are not all monotonic (a late reseal explains a seal mismatch), so
            # alerts the facts called for before this batch and no longer do are
            # withdrawn: the live alerts stay a function of the records, in any order.
            before = self._before(b, key)
            known = self._called.get(key)
            was = known[1] if known is not None and known[0] is before else frozenset(
                i.key for i in rules.evaluate(key, before)) if before else _NONE
            for k in was:
                b.retract.setdefault(k, "")
            now_called = rules.evaluate(key, b.facts[key])
            b.called[key] = frozenset(i.key for i in now_called) if now_called else _NONE
            for intent in now_called:
                called.add(intent.key)
                if intent.key not in fresh and intent.key not in was:
                    cursor = self._log_intent(intent, b, now, cursor, fresh)
        cursor = self._derived_alerts(b, now, cursor, fresh, called)
        for r in b.stored:  # signed alert records (a customs verdict, a time rule) are logged too
            if r.type != "alert":
                continue
            body: Any = r.body
            if body.key in fresh or self.store.alert_cursor(body.key) is not None:
                continue
            fresh.add(body.key)
            cursor += 1
            entry = {"cursor": cursor, "key": body.key, "rule": body.rule, "severity": body.severity,
                     "subject": {"kind": body.subject.kind, "id": body.subject.id},
                     "reason": body.reason, "evidence": list(body.evidence), "ts": now,
                     "record": r.id, "author": r.author}
            b.ws.put(b"A" + u64(cursor), codec.encode_local(entry))
            b.ws.put(b"K" + body.key, u64(cursor))
            b.alerts.append(entry)
            self.stats[("alert", body.rule)] += 1
            log.warning("alert rule=%s severity=%s subject=%s:%s (signed by %s)", body.rule,
                        body.severity, body.subject.kind, body.subject.id[:16], r.author.hex()[:16])
        for author, now_first in sorted(b.standing.items()):  # see `_unauthorised`
            name = _UNAUTHORISED + author.hex()
            held = self.store.meta(name)
            if held is not None:
                if now_first is not None and held[0] == now_first[0].wire:
                    continue
                old = Record.from_bytes(held[0], verify=False)
                self._withdraw(rules.unauthorised_author(old.id, author, old.type, held[1]),
                               b, now)
            if now_first is None:
                if held is not None:
                    b.ws.delete(b"M" + name.encode())
                continue
            r, rule = now_first
            Store.meta_put(b.ws, name, [r.wire, rule])
            intent = rules.unauthorised_author(r.id, author, r.type, rule)
            assert intent is not None
            cursor = self._log_intent(intent, b, now, cursor, fresh)
        for k in sorted(b.retract):
            if k not in called:
                self._retract(k, b, now)

    def _derived_alerts(self, b: Batch, now: int, cursor: int, fresh: set[bytes],
                        called: set[bytes]) -> int:
        """Container findings across objects (`node.derived`), for the containers the batch
        may have changed: new ones logged, those no longer called for withdrawn."""
        view = BatchView(self, b)
        # A record this node just signed has an id no offer can name yet: no lookup.
        others = [r for r in b.stored if r.id not in b.signed]
        rooted: frozenset[bytes] = frozenset()
        if others:
            with self.store.object_keys_lookup() as indexed:
                rooted = frozenset(derived.named_as_head(others, indexed))
        numbers, stale = derived.affected(b.dirty, lambda k: self._before(b, k), view.facts,
                                          lambda n: derived.neighbours(n, view),
                                          lambda k: derived.lot_containers(k, view), rooted,
                                          derived.scanned(b.stored))
        for number, items in sorted(numbers.items()):
            name = derived.META + number
            was: dict[str, list[bytes]] = self.store.meta(name) or {}
            found = derived.container_intents(number, view, self.creds, self.params,
                                              items=items, memo=b.memo,
                                              stale=number in stale)
            keys = {**was, **{p: [i.key for i in v] for p, v in found.items()}}
            keys = {p: v for p, v in sorted(keys.items()) if v}
            if keys != was:
                if keys:
                    Store.meta_put(b.ws, name, keys)
                else:
                    b.ws.delete(b"M" + name.encode())
            for p in found:
                for k in was.get(p, ()):
                    b.retract.setdefault(k, "")
            for p, ks in was.items():
                if p not in found:
                    called.update(ks)  # not worked out again: still called for
            live = {k for v in was.values() for k in v}
            for intent in (i for v in found.values() for i in v):
                called.add(intent.key)
                if intent.key in fresh or intent.key in live:
                    continue
                cursor = self._log_intent(intent, b, now, cursor, fresh)
        return cursor

    def _log_intent(self, intent: rules.Intent, b: Batch, now: int, cursor: int,
                    fresh: set[bytes]) -> int:
        """Log a derived finding once by key (again in force if it was withdrawn)."""
        k = intent.key
        cur = self.store.alert_cursor(k)
        if cur is not None:
            [(_, entry)] = self.store.alerts(since=cur - 1, limit=1)
            if entry.pop("retracted", None) is not None:
                b.ws.put(b"A" + u64(cur), codec.encode_local(entry))
                b.rules_changed.add(entry["rule"])
            return cursor
        fresh.add(k)
        cursor += 1
        entry = {"cursor": cursor, "key": k, "rule": intent.rule, "severity": intent.severity,
                 "subject": {"kind": intent.subject[0], "id": intent.subject[1]},
                 "reason": intent.reason, "evidence": list(intent.evidence), "ts": now}
        b.ws.put(b"A" + u64(cursor), codec.encode_local(entry))
        b.ws.put(b"K" + k, u64(cursor))
        b.alerts.append(entry)
        self.stats[("alert", intent.rule)] += 1
        log.warning("alert rule=%s severity=%s subject=%s:%s", intent.rule, intent.severity,
                    intent.subject[0], intent.subject[1][:16])
        return cursor

    def _withdraw(self, intent: rules.Intent | None, b: Batch, now: int) -> None:
        if intent is not None:
            self._retract(intent.key, b, now)

    def _retract(self, key: bytes, b: Batch, now: int) -> None:
        """Mark the alert logged under `key` withdrawn, in place (cursors are never reused;
        the key stays taken, so the alert comes back in force if called for again)."""
        cur = self.store.alert_cursor(key)
        if cur is None:
            return
        [(_, entry)] = self.store.alerts(since=cur - 1, limit=1)
        if "retracted" not in entry:
            entry["retracted"] = now
            b.ws.put(b"A" + u64(cur), codec.encode_local(entry))
            b.rules_changed.add(entry["rule"])
            self.stats[("alert_retracted", entry["rule"])] += 1
            log.warning("alert retracted rule=%s: no longer called for", entry["rule"])
