"""Derived container alerts: the findings of `node.verify` that every node raises itself.

Theory of operation. The rules in `node.rules` read one object's facts. Some
findings need several objects: an item's mint, lot and custody chain, the
container's shipment and scans. `node.verify` computes them for a customs
verdict; this module makes them alerts on *every* node, not only on a customs
observer watching a declared container, so that a brand hears of the diversion
of its goods with no customs office involved.

`container_intents` runs the verification with no clock (`now=None`: expiry is a
time rule, `node.timers`) and keeps the findings listed in `CODES`. It reads
only the records, so it is a pure function of the record set. Each intent's key
is over (rule, container, evidence), the same key the customs observer's signed
alert for that finding has (`node.observer.intents`): one finding, one alert
network-wide, whoever raises it first.

`affected` says which containers a batch of changed objects may have changed
the findings of: a container itself (when a field a finding reads changed, or it
was scanned: `scanned`), the containers a changed token was packed in (when a
field a finding reads changed, or a new record roots its custody:
`named_as_head`), the neighbours of an unpacked container (items it shares with
others), and for a recall of a lot the containers its items were packed in
(`lot_containers`: the lot's mint records name its serials, whose facts name
their containers). Some of these change no fact, yet change a finding: without
them, the alerts would depend on the order records arrive in. The ledger re-evaluates those, logs new findings, and withdraws those no longer
called for (`Ledger._derived_alerts`); which findings a container had is kept in
meta, so withdrawal works in any arrival order.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final, NamedTuple

from crypto.credentials import CredentialSet
from node import facts as F
from node.item_memo import Memo
from node.rules import Intent
from node.verify import Level, Reader, Reason, verify_container
from protocol.bodies import token_id
from protocol.envelope import Record
from protocol.genesis import Params

# verify finding code -> the alert rule it raises here. Left out: what `node.rules`
# already raises per object (seal, double hand-over, cloned mint, temperature), what
# needs the clock (expiry), and what is not an anomaly of the goods (a missing seal).
CODES: Final = {
    "custody.break": "custody_break",
    "custody.packer_not_holder": "custody_break",
    "item.not_minted": "item_not_minted",
    "item.two_containers": "cloned_serial",
    "item.recalled": "recalled_item",
    "item.diversion": "diversion",
    "route.deviation": "route_deviation",
    "weight.mismatch": "weight_mismatch",
    "manifest.root": "manifest_mismatch",
}
SEVERITY: Final = {Level.RED: "critical", Level.AMBER: "medium"}
RULE_SEVERITY: Final = {"temperature_excursion": "high"}  # as `node.rules` raises it
META: Final = "derived."  # meta name prefix: the keys of a container's live findings


def container_intents(number: str, reader: Reader, creds: CredentialSet, params: Params,
                      *, items: bool = True, memo: Memo | None = None, stale: bool = True
                      ) -> dict[str, list[Intent]]:
    """The derived alerts container `number` calls for, by part (`PARTS`), each sorted by
    key. Pure. With `items=False` only the container's own part ("c") is worked out.

    With `items=True` the container's per-item findings may have changed: `memo`
    keeps what is worked out now (`node.item_memo`), and with `stale` (what they read
    outside the container may have changed: `affected`) first forgets what it kept.
    """
    out: dict[str, dict[bytes, Intent]] = {"c": {}, "i": {}} if items else {"c": {}}
    if items and stale and memo is not None:
        memo.forget(number)
    if reader.facts(F.container_key(number)).get("create"):
        verdict = verify_container(number, reader, creds, params, None, items=items,
                                   memo=memo)
        for reason in verdict.reasons:
            rule = CODES.get(reason.code)
            if rule is None or reason.level is Level.GREEN or not reason.evidence:
                continue
            intent = intent_of(rule, reason, number)
            out[part(reason.code)].setdefault(intent.key, intent)
    return {p: [found[k] for k in sorted(found)] for p, found in out.items()}


def intent_of(rule: str, reason: Reason, number: str) -> Intent:
    """The alert for one verification finding on container `number`: the same rule,
    subject, evidence, severity and words whoever raises it (this module, a customs
    observer, `node.rules` for the findings it raises too), so the same key."""
    severity = RULE_SEVERITY.get(rule) or SEVERITY[reason.level]
    return Intent(rule, severity, ("container", number), reason.message, reason.evidence[:64])


def part(code: str) -> str:
    """ "i" for the manifest and per-item findings (costly: every item), "c" for the rest."""
    return "i" if code.startswith(("item.", "manifest.")) or code == "custody.packer_not_holder" \
        else "c"


# Container fields the per-item findings read: a change to any other field (a scan, a
# sensor reading, a seal, a hand-over of the container) leaves them as they were.
# Custody (`times`, `offers`, `accepts`) decides which packs and unpacks count
# (`custody.judge`), so the manifest in force.
ITEM_FIELDS: Final = ("create", "packs", "unpacks", "shipments", "declarations", "times",
                      "offers", "accepts")


# Container fields the container's own derived findings read besides those: the places
# it was scanned at (route), its weight, its seals (which packs its holders made). The
# rest (temperature, position, breaches, seals seen, the latest scan) feed the rules of
# `node.rules` only. A scan is also evidence of a route deviation by itself, even when
# it changes no fact (a late upload at a place already seen): see `scanned`; and a scan
# that stops counting (its author forked or revoked) takes its finding along while the
# places may stay as they were (others were scanned there too): the ledger recomputes
# the index of the container's scans at that place (`facts.place_key`), see `affected`.
CONTAINER_FIELDS: Final = (*ITEM_FIELDS, "places", "weight", "seals")
_OWN_FIELDS: Final = CONTAINER_FIELDS[len(ITEM_FIELDS):]


# Token fields the per-item findings read (`node.verify._scan`, `node.custody.walk`): a
# scan of an item or a customs action on it changes none of its containers' findings.
TOKEN_FIELDS: Final = ("mint", "packs", "recalls", "offers", "accepts", "times")


class Affected(NamedTuple):
    """What a batch may change of the derived findings (`affected`)."""

    containers: dict[str, bool]  # container -> whether its per-item findings may change
    stale: set[str]  # containers whose kept item scan may no longer hold (`item_memo`)


def affected(dirty: Iterable[bytes], before: Callable[[bytes], F.Facts],
             after: Callable[[bytes], F.Facts], neighbours: Callable[[str], Iterable[str]],
             lot: Callable[[bytes], Iterable[str]], rooted: frozenset[bytes] = frozenset(),
             scanned: Iterable[str] = ()) -> Affected:
    """The containers whose derived findings the changed objects `dirty` may change, each
    with whether its per-item findings may have changed too. `rooted`: tokens judged
    again with no fact of theirs changed (`named_as_head`); `scanned`: containers scanned
    in the batch (`scanned`).

    A container's per-item findings change with its own fields (`ITEM_FIELDS`: which
    manifest is in force, who packed it, where it goes) or with what its items' findings
    read outside it: their facts, their lots', the other containers they were packed
    in. An item scan names the container-level inputs it was worked out for
    (`node.item_memo`), so only the second kind makes a kept scan `stale`.

    A container's place index (`facts.place_key`) changes no facts; it is among the
    changed objects only when the ledger recomputed it, because scans there stopped
    counting (`Ledger._repair_author`): the container's route finding may change."""
    out: dict[str, bool] = dict.fromkeys(scanned, False)
    stale: set[str] = set()
    for key in sorted({*dirty, *rooted}):
        tag = key[:1]
        if tag == b"c":
            number = key[1:].decode()
            was, now = before(key), after(key)
            items = any(was.get(f) != now.get(f) for f in ITEM_FIELDS)
            if items or any(was.get(f) != now.get(f) for f in _OWN_FIELDS):
                out[number] = out.get(number, False) or items
            if was.get("unpacks") != now.get("unpacks"):
                stale.update(neighbours(number))
        elif tag == b"t":
            was, now = before(key), after(key)
            if not was:  # a new token: only the containers it is packed in already
                stale.update(p[0] for p in now.get("packs", ()))
            elif key in rooted or any(was.get(f) != now.get(f) for f in TOKEN_FIELDS):
                for f in (was, now):
                    stale.update(p[0] for p in f.get("packs", ()))
        elif tag == b"l":
            stale.update(lot(key))
        elif tag == b"r":  # an index only, so recomputed: the scans there that count changed
            out.setdefault(key[1:].decode().split("/", 1)[0], False)
    out.update(dict.fromkeys(stale, True))
    return Affected(out, stale)


def items_of(number: str, reader: Reader) -> set[bytes]:
    """Every item ever packed into a container (all its manifests' chunks)."""
    out: set[bytes] = set()
    for p in reader.facts(F.container_key(number)).get("packs", ()):
        r = reader.record(p[5])
        if r is not None and r.type == "container.pack":
            out.update(r.body.items)  # type: ignore[attr-defined]
    return out


def scanned(records: Iterable[Record]) -> set[str]:
    """The containers `records` scan: each scan may be evidence of a route deviation."""
    out: set[str] = set()
    for r in records:
        if r.type == "scan":
            obj: Any = r.body.object
            if obj.kind == "container":
                out.add(obj.id)
    return out


def named_as_head(records: Iterable[Record], indexed: Callable[[bytes], Iterable[bytes]]
                  ) -> set[bytes]:
    """The tokens whose hand-overs name one of `records` as their custody head.

    A record arriving after the offers that start a token's custody at it changes what
    verification can tell of the token (an unminted item rooted at a record not held is
    `item.mint_unseen`: its mint may be on its way; rooted at a record held that is not
    its mint, `item.not_minted`) while no fact of the token changes: the ledger treats
    these tokens as changed, so the alert does not depend on the order of arrival.

    `indexed(prefix)` gives the stored object keys under `prefix` (`facts.head_key`);
    offers in the same batch need no lookup: their tokens have changed anyway."""
    out: set[bytes] = set()
    for r in records:
        for key in indexed(F.head_prefix(r.id)):
            objkey = key[33:]  # after b"h" + the record id
            if objkey[:1] == b"t":
                out.add(objkey)
    return out


def lot_containers(key: bytes, reader: Reader) -> set[str]:
    """The containers any item of the lot `key` was packed in, through the lot's mint
    records (a mint indexes its lot). A mint not held yet adds its items when it comes:
    their facts change then."""
    out: set[str] = set()
    for rid in reader.record_ids(key):
        r = reader.record(rid)
        if r is not None and r.type == "product.mint":
            b: Any = r.body
            for serial in b.serials:
                tf = reader.facts(F.token_key(token_id(b.gtin, serial)))
                out.update(p[0] for p in tf.get("packs", ()))
    return out


def neighbours(number: str, reader: Reader) -> set[str]:
    """The other containers any item of `number` was packed in."""
    out: set[str] = set()
    for tid in items_of(number, reader):
        out.update(p[0] for p in reader.facts(F.token_key(tid)).get("packs", ()))
    out.discard(number)
    return out


class FoldReader:
    """A `Reader` over facts and records held in memory (a reference fold, an audit)."""

    def __init__(self, facts: Mapping[bytes, F.Facts], records: Mapping[bytes, Record],
                 ids: Mapping[bytes, Iterable[bytes]]) -> None:
        self._facts, self._records, self._ids = facts, records, ids

    def facts(self, key: bytes) -> F.Facts:
        return self._facts.get(key, {})

    def record(self, rid: bytes) -> Record | None:
        return self._records.get(rid)

    def record_ids(self, key: bytes) -> list[bytes]:
        """The ids of the records concerning `key` (the caller keeps only those that count)."""
        return sorted(self._ids.get(key, ()))
