"""Alert rules over one object's facts: pure, deterministic, order-independent.

`evaluate(key, facts)` returns the alerts an object's facts call for *now*. It
reads nothing but the facts, and facts are a function of the set of records
(see `node.facts`), so two nodes holding the same records derive the same
alerts, whatever the arrival order. Each alert has a key over (rule, subject,
evidence): the same finding gets the same key on every node, which is how one
finding makes one alert network-wide.

Conflicts are reported pairwise (one alert per pair of conflicting records),
so the set of alerts does not depend on which conflicting record came first.

A container's custody actions (pack, seal, unpack) by a party not holding it are
`custody_break`s, two manifests with no unpack between them a `manifest_conflict`
(`node.custody.judge`); a seal by a non-holder explains no seal mismatch.

Rules that need several objects or the clock (offers by a non-holder, route deviation,
silence, container verification) live in `node.verify` and the daemon's timers
(`node.timers`). `unauthorised_author` is the alert for a record whose author had
no right to write it: the ledger raises it when it refuses such a record, or
when a revocation makes a stored one stop counting (the same key either way).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import combinations
from typing import Any, Final

from node.custody import Judged, judge
from node.facts import Facts, key_ref
from protocol.bodies import ObjectRef, alert_key

# The alert rules that mark their subject disputed: conflicting records about one object
# (this module, `node.derived`, the customs observer's `cloned_container`), a fork of a feed.
DISPUTE_RULES: Final = frozenset({"double_handover", "custody_break", "manifest_conflict",
                                  "cloned_serial", "cloned_container", "feed_fork"})


@dataclass(frozen=True, slots=True)
class Intent:
    """An alert the facts call for, before anyone signs it."""

    rule: str
    severity: str
    subject: tuple[str, str]  # (kind, id) as in ObjectRef
    reason: str
    evidence: tuple[bytes, ...]  # sorted record ids

    @property
    def key(self) -> bytes:
        return alert_key(self.rule, ObjectRef(kind=self.subject[0], id=self.subject[1]),
                         self.evidence, severity=self.severity, reason=self.reason)

    def body(self) -> dict[str, Any]:
        """The wire body of the `alert` record that reports this intent."""
        return {
            "rule": self.rule,
            "severity": self.severity,
            "subject": {"kind": self.subject[0], "id": self.subject[1]},
            "reason": self.reason,
            "evidence": list(self.evidence),
            "key": self.key,
        }


def _pairs(ids: Iterable[bytes]) -> Iterator[tuple[bytes, bytes]]:
    yield from combinations(sorted(set(ids)), 2)


def evaluate(key: bytes, facts: Facts) -> list[Intent]:
    subject = key_ref(key)
    if subject is None:
        return []
    out: list[Intent] = []
    # Each rule only where its facts are (rules run on every change of every object).
    if "fork" in facts:
        out += _feed_fork(subject, facts)
    if "offers" in facts:
        out += _double_handover(subject, facts)
    if "mint" in facts:
        out += _cloned_serial(subject, facts)
    if subject[0] == "container" and (facts.get("packs") or facts.get("seals")
                                      or facts.get("unpacks")):
        judged = judge(facts)
        out += _custody_actions(subject, judged)
        out += _seal_rules(subject, facts, judged)
    if "excursions" in facts:
        out += _temperature(subject, facts)
    return out


def _feed_fork(subject: tuple[str, str], facts: Facts) -> Iterator[Intent]:
    if len(facts.get("fork", ())) < 2:  # a pair needs two (rules run on every change)
        return
    by_seq: dict[int, list[bytes]] = defaultdict(list)
    for seq, rid in facts.get("fork", ()):
        by_seq[seq].append(rid)
    for seq, ids in sorted(by_seq.items()):
        for a, b in _pairs(ids):
            yield Intent("feed_fork", "critical", subject,
                         f"author signed two different records at seq {seq}", (a, b))


def _double_handover(subject: tuple[str, str], facts: Facts) -> Iterator[Intent]:
    if len(facts.get("offers", ())) < 2:
        return
    offers: dict[tuple[bytes, bytes], list[bytes]] = defaultdict(list)
    for head, oid, author, _to in facts.get("offers", ()):
        offers[(head, author)].append(oid)
    for (_head, _author), ids in sorted(offers.items()):
        for a, b in _pairs(ids):
            yield Intent("double_handover", "critical", subject,
                         "the holder offered the same custody state twice", (a, b))


def _cloned_serial(subject: tuple[str, str], facts: Facts) -> Iterator[Intent]:
    if len(facts.get("mint", ())) >= 2:
        for a, b in _pairs(mid for mid, _ in facts["mint"]):
            yield Intent("cloned_serial", "critical", subject,
                         "the same GTIN and serial were minted twice", (a, b))
    # An item in two containers at once needs the containers' pack and unpack times (an
    # item unpacked and packed again is fine): a derived rule (`node.derived`).


def _custody_actions(subject: tuple[str, str], judged: Judged) -> Iterator[Intent]:
    """A pack, seal or unpack by a party not holding the container; two manifests with no
    unpack between them. Both keep the record and dispute the container (`custody.judge`)."""
    for type_name, rid, _author, _ts in judged.unauthorised:
        yield Intent("custody_break", "critical", subject,
                     f"{type_name} by a party not holding the container", (rid,))
    for a, b in judged.conflicts:
        yield Intent("manifest_conflict", "critical", subject,
                     "packed again with no unpack since the previous manifest",
                     tuple(sorted((a, b))))


def _seal_rules(subject: tuple[str, str], facts: Facts, judged: Judged) -> Iterator[Intent]:
    seals = list(judged.seals)  # (ts, id, seal, author), by the container's holder only
    if not seals:
        return
    first_ts = seals[0][0]
    for at, scan_id, seen, _author in sorted(facts.get("seal_seen", ())):
        in_force = [s for s in seals if s[0] <= at]
        if in_force and in_force[-1][2] != seen:
            yield Intent("seal_mismatch", "critical", subject,
                         f"seal {seen} seen where {in_force[-1][2]} was recorded",
                         tuple(sorted((in_force[-1][1], scan_id))))
    for at, sid, kind in sorted(facts.get("breaches", ())):
        if at > first_ts:
            seal_id = [s for s in seals if s[0] < at][-1][1]
            what = "door opened" if kind == "door" else "tamper detected"
            yield Intent("seal_breach", "critical", subject, f"{what} after sealing",
                         tuple(sorted((seal_id, sid))))


def _temperature(subject: tuple[str, str], facts: Facts) -> Iterator[Intent]:
    for _at, rid, value in sorted(facts.get("excursions", ())):
        yield Intent("temperature_excursion", "high", subject,
                     f"temperature {value / 1000:.1f} °C outside the allowed range", (rid,))


# `RoleError` rules that show an author writing without the right to (`protocol.authz`).
# An unknown author is not among them: its credential may simply not have reached us yet.
UNAUTHORISED: Final = {
    "author.expired": "its credential had expired",
    "author.revoked": "its credential was revoked",
    "author.not_yet_valid": "its credential was not yet valid",
    "role": "its role may not write this record type",
    "trademark": "it does not own the trademark (goods not minted by the trademark owner)",
    "delegation": "its delegation does not allow it",
}


def unauthorised_author(record_id: bytes, author: bytes, type_name: str, rule: str
                        ) -> Intent | None:
    """The alert for a record its author had no right to write (rejected, or no longer
    counting after a revocation); None for other rejection rules."""
    why = UNAUTHORISED.get(rule)
    if why is None:
        return None
    return Intent("unauthorised_author", "high", ("party", author.hex()),
                  f"{type_name} refused: {why} [{rule}]", (record_id,))
