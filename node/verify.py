"""Container verification without opening: the customs verdict, from the log alone.

`verify_container()` is pure: it reads facts and records through a `Reader`
and takes the time as an argument, so every node holding the same records
computes the same verdict. It checks, in order:

1. the container exists and its creator and packer hold credentials in force;
2. the manifest: every chunk of the latest packing is present and the Merkle
   root recomputed from the chunks equals the declared root;
3. every item: minted (a token nobody minted is counterfeit), minted once (a
   second mint of the same GTIN + serial is a clone), packed in no other
   container, held by the packer, not recalled, not expired, and its
   destination market among those the brand authorised (diversion);
4. the seal recorded at sealing matches every later scan, and no door-open or
   tamper reading follows the sealing;
5. the custody chain is unbroken and undisputed;
6. declared and measured weight agree within the network's tolerance;
7. the observed route stays within the planned one; no temperature excursion.

The verdict is RED (inspect) if any check fails hard, AMBER (documentary
check) for softer findings, GREEN (fast track) otherwise; every reason names
its evidence record ids.

Steps 2 and 3 cost O(items). What they find without the clock can be kept
between calls (`memo`, `node.item_memo`): then a call judges only what needs the
clock (expiry) or may change with no fact of the items changing (whether an
unminted item's mint has reached us), and the container-level checks.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

from crypto import merkle
from crypto.credentials import CredentialSet
from node import custody
from node import facts as F
from node.item_memo import ItemScan, ManifestCheck, Memo
from protocol.envelope import Record
from protocol.genesis import Params


class Level(enum.IntEnum):
    GREEN = 0
    AMBER = 1
    RED = 2


@dataclass(frozen=True, slots=True)
class Reason:
    level: Level
    code: str
    message: str
    evidence: tuple[bytes, ...] = ()
    alert: str | None = None  # the alert rule this finding raises, if any

    def to_json(self) -> dict[str, Any]:
        return {"level": self.level.name, "code": self.code, "message": self.message,
                "evidence": [e.hex() for e in self.evidence], "alert": self.alert}


@dataclass(frozen=True, slots=True)
class Verdict:
    container: str
    level: Level
    reasons: tuple[Reason, ...]
    items: int
    root: bytes | None
    destination: str | None = None
    brands: tuple[bytes, ...] = field(default=())

    def to_json(self) -> dict[str, Any]:
        return {"container": self.container, "verdict": self.level.name, "items": self.items,
                "root": self.root.hex() if self.root else None,
                "destination": self.destination,
                "brands": [b.hex() for b in self.brands],
                "reasons": [r.to_json() for r in self.reasons]}


class Reader(Protocol):
    def facts(self, key: bytes) -> F.Facts: ...
    def record(self, rid: bytes) -> Record | None: ...
    def record_ids(self, key: bytes) -> Sequence[bytes]: ...


@dataclass
class _Ctx:
    reader: Reader
    creds: CredentialSet
    params: Params
    now: int | None
    memo: Memo | None = None
    reasons: list[Reason] = field(default_factory=list)
    _records: dict[bytes, Record | None] = field(default_factory=dict)

    def record(self, rid: bytes) -> Record | None:
        if rid not in self._records:
            self._records[rid] = self.reader.record(rid)
        return self._records[rid]

    def add(self, level: Level, code: str, message: str, evidence: Sequence[bytes] = (),
            alert: str | None = None) -> None:
        self.reasons.append(Reason(level, code, message, tuple(sorted(set(evidence))), alert))

    def standing_ok(self, author: bytes, at: int) -> bool:
        return self.creds.status(author, at).ok


def verify_container(number: str, reader: Reader, creds: CredentialSet, params: Params,
                     now: int | None, progress: Callable[[int], None] | None = None,
                     *, items: bool = True, memo: Memo | None = None) -> Verdict:
    """The verdict on container `number` at `now`.

    With `now=None` the checks that need the clock (an item's expiry, the
    creator's credential in force today) are skipped: what is left is a pure
    function of the record set, as the ledger's derived alerts need (`node.derived`).
    With `items=False` the manifest and per-item checks (steps 2 and 3) are skipped.

    `memo` keeps what steps 2 and 3 found that the clock does not change, for the
    next call (`node.item_memo`); the verdict is the same with it or without it, as
    long as its owner forgets what later records may change (`Ledger.verify_memo`).
    """
    ctx = _Ctx(reader, creds, params, now, memo)
    cf = reader.facts(F.container_key(number))
    creates = sorted(cf.get("create", ()))
    if not creates:
        ctx.add(Level.RED, "container.unknown", f"no record creates container {number}")
        return Verdict(number, Level.RED, tuple(ctx.reasons), 0, None)
    create_id, creator = creates[0]
    if len(creates) > 1:
        ctx.add(Level.RED, "container.duplicate", "container created twice",
                [c[0] for c in creates], alert="cloned_container")
    if now is not None and not ctx.standing_ok(creator, now):
        ctx.add(Level.AMBER, "author.revoked", "the container's creator has no credential in force",
                [create_id], alert="unauthorised_author")
    destination, markets_ref = _shipment(ctx, cf)
    judged = custody.judge(cf)  # packs, seals and unpacks by the container's holders only
    _custody_actions(ctx, judged)
    root, listed = _manifest(ctx, judged) if items else (None, None)
    if listed is not None and listed.count:
        brands = _items(ctx, number, cf, listed, destination, progress)
    else:
        brands = ()
        if items and memo is not None:
            memo.forget(number)  # no manifest in force: a scan kept of an earlier one is void
    _seal(ctx, cf, judged)
    _custody(ctx, cf, create_id, creator)
    _weight(ctx, cf, judged)
    _route(ctx, number, markets_ref)
    for _at, rid, value in sorted(cf.get("excursions", ())):
        ctx.add(Level.AMBER, "temperature.excursion",
                f"temperature {value / 1000:.1f} °C outside the allowed range", [rid],
                alert="temperature_excursion")
    level = max((r.level for r in ctx.reasons), default=Level.GREEN)
    return Verdict(number, level, tuple(ctx.reasons), listed.count if listed else 0, root,
                   destination, brands)


def _shipment(ctx: _Ctx, cf: F.Facts) -> tuple[str | None, Record | None]:
    """The destination country (from the shipment or a declaration) and the shipment record."""
    for _sid, rid in sorted(cf.get("shipments", ())):
        r = ctx.record(rid)
        if r is not None:
            body: Any = r.body
            return body.destination.country, r
    for _rid, _sid, jurisdiction in sorted(cf.get("declarations", ())):
        return str(jurisdiction), None
    return None, None


def _custody_actions(ctx: _Ctx, judged: custody.Judged) -> None:
    """Packs, seals and unpacks by a party not holding the container, and two manifests
    with no unpack between them: in the words and evidence of `rules._custody_actions`."""
    for type_name, rid, _author, _ts in judged.unauthorised:
        ctx.add(Level.RED, "custody.unauthorised_action",
                f"{type_name} by a party not holding the container", [rid],
                alert="custody_break")
    for a, b in judged.conflicts:
        ctx.add(Level.RED, "manifest.conflict",
                "packed again with no unpack since the previous manifest", sorted((a, b)),
                alert="manifest_conflict")


@dataclass(slots=True)
class _Listed:
    """The manifest in force: its root, chunk records, item count and packer."""

    root: bytes
    chunks: tuple[bytes, ...]  # chunk record ids, in chunk order
    count: int  # items over all chunks
    packer: bytes | None
    items: list[bytes] | None = None  # read on demand (`load`)

    def load(self, ctx: _Ctx) -> list[bytes] | None:
        """The items, chunk after chunk; None if a chunk record is missing (never, once
        stored: records are not deleted)."""
        if self.items is None:
            items: list[bytes] = []
            for rid in self.chunks:
                r = ctx.record(rid)
                if r is None:
                    return None
                items.extend(r.body.items)
            self.items = items
        return self.items


def _manifest(ctx: _Ctx, judged: custody.Judged) -> tuple[bytes | None, _Listed | None]:
    """The latest manifest's root, and its listing when every chunk is here (else None).

    What the chunks add up to (item count, Merkle root, authors) is a function of the
    chunk records alone, so it is worked out once per (root, chunks) (`ctx.memo`).
    """
    packs = sorted(judged.packs, key=lambda p: (p[7], p[5]))  # by ts, id
    if not packs:
        ctx.add(Level.AMBER, "manifest.none", "nothing was packed into the container")
        return None, None
    unpacks = list(judged.unpacks)
    root = packs[-1][0]
    chunks = {p[1]: p for p in packs if p[0] == root}
    n_chunks, count = packs[-1][2], packs[-1][3]
    if unpacks and unpacks[-1][0] >= packs[-1][7]:
        ctx.add(Level.AMBER, "manifest.unpacked", "the container was unpacked after packing",
                [unpacks[-1][1]])
    missing = [c for c in range(n_chunks) if c not in chunks]
    if missing:
        ctx.add(Level.RED, "manifest.incomplete",
                f"{len(missing)} of {n_chunks} manifest chunks are missing",
                [p[5] for p in chunks.values()])
        return root, None
    chunk_ids = tuple(chunks[c][5] for c in range(n_chunks))
    check = ctx.memo.manifest(root, chunk_ids) if ctx.memo is not None else None
    items: list[bytes] | None = None
    if check is None:
        records = []
        for c in range(n_chunks):
            r = ctx.record(chunk_ids[c])
            if r is None:
                ctx.add(Level.RED, "manifest.missing_record", f"chunk {c} record is missing")
                return root, None
            records.append(r)
        check, items = manifest_check(root, records)
        if ctx.memo is not None:
            ctx.memo.keep_manifest(root, chunk_ids, check)
    ids = [p[5] for p in chunks.values()]
    if check.count != count or not check.root_ok:
        ctx.add(Level.RED, "manifest.root", "the manifest does not match its Merkle root", ids,
                alert="manifest_mismatch")
    if len(check.packers) != 1:
        ctx.add(Level.RED, "manifest.packers", "the manifest chunks have different authors", ids)
    packer = min(check.packers)
    if not ctx.standing_ok(packer, chunks[0][7]):
        ctx.add(Level.RED, "author.unauthorised", "the packer had no credential in force", ids,
                alert="unauthorised_author")
    return root, _Listed(root, chunk_ids, check.count, packer, items)


def manifest_check(root: bytes, chunks: Sequence[Record]) -> tuple[ManifestCheck, list[bytes]]:
    """What the chunk records of a manifest (in chunk order) add up to, and their items."""
    items: list[bytes] = []
    for r in chunks:
        items.extend(r.body.items)  # type: ignore[attr-defined]
    return ManifestCheck(len(items), merkle.root(items) == root,
                         frozenset(r.author for r in chunks)), items


def item_mints(number: str, reader: Reader) -> tuple[bytes | None, list[tuple[int, bytes]]]:
    """The latest manifest's root, and (expiry, mint id) of each mint of its items that
    has an expiry (an item minted twice: its first mint, as `_items` judges it). Pure.

    For the time rule on expiry (`node.timers`): worked out once per manifest, then
    compared with the clock at every tick.
    """
    cf = reader.facts(F.container_key(number))
    packs = sorted(custody.judge(cf).packs, key=lambda p: (p[7], p[5]))
    if not packs:
        return None, []
    root = packs[-1][0]
    mints: set[bytes] = set()
    for p in sorted(p for p in packs if p[0] == root):
        r = reader.record(p[5])
        if r is None:
            continue
        for tid in r.body.items:  # type: ignore[attr-defined]
            minted = reader.facts(F.token_key(tid)).get("mint")
            if minted:
                mints.add(min(minted)[0])
    out = []
    for mid in sorted(mints):
        m = reader.record(mid)
        expiry = getattr(m.body, "expiry", None) if m is not None else None
        if expiry is not None:
            out.append((expiry, mid))
    return root, sorted(out)


_PROGRESS_EVERY = 10_000  # items between progress reports


@dataclass(frozen=True, slots=True)
class _MintChecks:
    """What one mint record says about every item it minted."""

    lot_recalls: tuple[bytes, ...]  # recall ids of the lot
    expiry: int | None
    diverted: bool  # the destination is not among the mint's markets


def _holder(tf: F.Facts, root: bytes, holder: bytes) -> tuple[bytes | None, tuple[bytes, ...]]:
    """An item's holder and the offer of the last step of its custody walk (if any).

    The same answer as `custody.walk(tf, root, holder)` (its `holder` and the
    offer of `steps[-1:]`), without building the walk for the usual items: none
    or one hand-over. With no offer, the minter holds. With one offer, it moves
    custody only if it was made at the root by the holder (otherwise it is a
    break, and nothing moves); then the recipient holds if it accepted it at that
    head (the walk ends there: the one offer is at the root, not at the accept),
    else the item is in transit and the giver still holds. Anything else walks.
    """
    offers = tf.get("offers")
    if not offers:
        return holder, ()
    if len(offers) > 1:
        chain = custody.walk(tf, root, holder)
        return chain.holder, tuple(s.offer for s in chain.steps[-1:])
    ((head, oid, giver, to),) = offers
    if head != root or giver != holder:
        return holder, ()
    for a in tf.get("accepts", ()):
        if a[0] == oid and a[2] == to and a[3] == head:
            return to, (oid,)
    return holder, (oid,)


def _held_when_packed(ctx: _Ctx, tf: F.Facts, root: bytes, minter: bytes, at: int
                      ) -> tuple[bytes | None, tuple[bytes, ...]]:
    """Who held an item at time `at` (its packing), and the offer of the last step counted.

    Only custody steps accepted at or before `at` count: goods handed to the
    packer after it packed them were not the packer's to pack. Accept times come
    from the item's facts (`times`), no record read.
    """
    times = dict(tf.get("times", ()))

    def accepted_by(accept: bytes | None) -> bool:
        if accept is None:
            return False
        ts = times.get(accept)
        if ts is None:  # not in the facts: read the record
            r = ctx.record(accept)
            if r is None:
                return False
            ts = r.ts
        return bool(ts <= at)

    holder, last = _holder(tf, root, minter)
    if not last:  # never handed over: the minter held it all along
        return holder, ()
    if len(tf.get("offers", ())) == 1:
        if holder == minter:  # offered, never accepted
            return holder, last
        ok = sorted(a[1] for a in tf.get("accepts", ()) if a[0] == last[0] and a[2] == holder)
        if accepted_by(ok[0] if ok else None):
            return holder, last
        return minter, ()
    chain = custody.walk(tf, root, minter)
    holder, counted = minter, ()
    for step in chain.steps:
        if not accepted_by(step.accept):
            break
        holder, counted = step.taker, (step.offer,)
    return holder, counted


def _packed_elsewhere(ctx: _Ctx, number: str, mine: tuple[int, bytes],
                      packs: Any, unpacked: list[int]) -> list[bytes]:
    """Packs of the item into other containers that overlap our packing (`mine`: ts, id).

    Two packings overlap unless one container was unpacked between them: an item
    unpacked from one container and packed into the next was never in both at once.
    """
    t1, pid1 = mine
    out: list[bytes] = []
    for other, _root, pid in sorted(packs):
        if other == number:
            continue
        of = ctx.reader.facts(F.container_key(other))
        ts = [p[7] for p in of.get("packs", ()) if p[5] == pid]
        if not ts:
            continue
        t2 = ts[0]
        if any(t2 <= u[0] <= t1 for u in of.get("unpacks", ())) or any(
                t1 <= u <= t2 for u in unpacked):
            continue
        out.append(pid)
    return [pid1, *out] if out else []


def _names_unseen_root(ctx: _Ctx, tf: F.Facts) -> bool:
    """Whether an unminted item's hand-overs start at a record we do not hold: its mint
    has not reached us yet (a partial view), so "not minted" cannot be told yet."""
    steps = {o[1] for o in tf.get("offers", ())} | {a[1] for a in tf.get("accepts", ())}
    roots = ({o[0] for o in tf.get("offers", ())} | {a[3] for a in tf.get("accepts", ())}) - steps
    return any(ctx.record(r) is None for r in sorted(roots))


# The per-item findings, in the order a verdict lists them: (level, words, alert rule).
_ITEM_RULES: Final = {
    "item.not_minted": (Level.RED, "items not minted by any trademark owner (counterfeit)",
                        "item_not_minted"),
    "item.mint_unseen": (Level.RED, "items whose custody names a mint record not held here"
                         " (the log is incomplete: wait for sync)", None),
    "item.cloned": (Level.RED, "items whose GTIN + serial was minted twice", "cloned_serial"),
    "item.two_containers": (Level.RED, "items packed in another container too",
                            "cloned_serial"),
    "item.recalled": (Level.RED, "recalled items", "recalled_item"),
    "item.expired": (Level.AMBER, "expired items", "expired_item"),
    "item.diversion": (Level.RED, "items not authorised for sale in {destination}",
                       "diversion"),
    "custody.unseen": (Level.AMBER, "items whose custody hand-overs have not all reached"
                       " us (the log is incomplete: wait for sync)", None),
    "custody.packer_not_holder": (Level.RED, "items the packer did not hold when packing",
                                  "custody_break"),
}
_EVIDENCE: Final = 64  # evidence ids a finding names at most


def _items(ctx: _Ctx, number: str, cf: F.Facts, listed: _Listed, destination: str | None,
           progress: Callable[[int], None] | None) -> tuple[bytes, ...]:
    """Per-item checks; findings of one kind are grouped into one reason.

    The clock-free part is an `ItemScan` (`_scan`), kept in `ctx.memo` for the next
    call; what needs the clock (expiry) or records that may arrive any time without
    changing the item's facts (the mint an unminted item's hand-overs name) is judged
    here, at every call (`_report`).
    """
    key = (number, listed.root, listed.chunks, listed.packer, destination,
           tuple(sorted(u[0] for u in cf.get("unpacks", ()))))
    scan = ctx.memo.scan(number, key) if ctx.memo is not None else None
    if scan is None:
        items = listed.load(ctx)
        if items is None:
            ctx.add(Level.RED, "manifest.missing_record", "a chunk record is missing")
            if ctx.memo is not None:
                ctx.memo.forget(number)
            return ()
        scan = _scan(ctx, number, cf, listed.root, items, listed.packer, destination,
                     progress, key)
        if ctx.memo is not None:
            ctx.memo.keep_scan(number, scan)
    _report(ctx, scan, destination)
    return scan.brands


def _scan(ctx: _Ctx, number: str, cf: F.Facts, root: bytes, items: list[bytes],
          packer: bytes | None, destination: str | None,
          progress: Callable[[int], None] | None, key: tuple[Any, ...]) -> ItemScan:
    """Every item's clock-free checks, over its facts, its mint and its lot.

    The checks that depend only on the mint record (lot recalled, expiry, diversion)
    are worked out once per mint record (`_MintChecks`), and flagged for each item
    it minted in the same order as the per-item ones.
    """
    found: dict[str, list[bytes]] = {}
    brands: set[bytes] = set()
    lots: dict[bytes, F.Facts] = {}
    by_mint: dict[bytes, _MintChecks | None] = {}
    expiries: dict[bytes, list[int]] = {}  # mint id -> [expiry, items], first seen first
    unminted: list[tuple[bytes, tuple[bytes, ...]]] = []
    facts, token_key = ctx.reader.facts, F.token_key
    pack_ts = {p[5]: p[7] for p in cf.get("packs", ()) if p[0] == root}  # chunk id -> ts
    unpacked = [u[0] for u in cf.get("unpacks", ())]
    read_unpacks = False  # whether an item was packed elsewhere too (`_packed_elsewhere`)

    def flag(code: str, *evidence: bytes) -> None:
        found.setdefault(code, []).extend(evidence)

    def mint_checks(mint_id: bytes) -> _MintChecks | None:
        mint = ctx.record(mint_id)
        if mint is None:
            return None
        body: Any = mint.body
        lot_key = F.lot_key(body.gtin, body.lot)
        if lot_key not in lots:
            lots[lot_key] = facts(lot_key)
        return _MintChecks(
            lot_recalls=tuple(r[0] for r in lots[lot_key].get("recalls", ())),
            expiry=body.expiry,
            diverted=destination is not None and destination not in body.markets)

    for start in range(0, len(items), _PROGRESS_EVERY):
        if progress and start:
            progress(start)
        for tid in items[start:start + _PROGRESS_EVERY]:
            tf = facts(token_key(tid))
            mints = tf.get("mint")
            if not mints:  # judged at every call (`_report`): its mint may arrive any time
                unminted.append((tid, tuple(
                    sorted(p[2] for p in tf.get("packs", ()) if p[0] == number)[:1])))
                continue
            if len(mints) > 1:
                ordered = sorted(mints)
                flag("item.cloned", *[m[0] for m in ordered])
                mint_id, brand = ordered[0]
            else:
                ((mint_id, brand),) = mints
            brands.add(brand)
            if mint_id in by_mint:
                checks = by_mint[mint_id]
            else:
                checks = by_mint[mint_id] = mint_checks(mint_id)
            if checks is None:
                flag("item.not_minted")
                continue
            packs = tf.get("packs", ())
            mine = [(pack_ts[p[2]], p[2]) for p in packs if p[0] == number and p[2] in pack_ts]
            if not mine:  # the manifest names it, but no chunk of this root packs it
                continue
            if len(packs) > len(mine):
                read_unpacks = True
                flag("item.two_containers", *_packed_elsewhere(ctx, number, mine[0], packs,
                                                                unpacked))
            if tf.get("recalls"):
                flag("item.recalled", *[r[0] for r in tf["recalls"]])
            if checks.lot_recalls:
                flag("item.recalled", *checks.lot_recalls)
            if checks.expiry is not None:  # expired or not: the clock says (`_report`)
                if mint_id in expiries:
                    expiries[mint_id][1] += 1
                else:
                    expiries[mint_id] = [checks.expiry, 1]
            if checks.diverted:
                flag("item.diversion", mint_id)
            if packer is not None:
                offered = {o[1] for o in tf.get("offers", ())}
                if any(a[0] not in offered for a in tf.get("accepts", ())):
                    # an accept of an offer we do not hold: part of the chain has not
                    # reached us (a partial view), so who held it cannot be told yet
                    flag("custody.unseen", mint_id)
                    continue
                holder, last_offer = _held_when_packed(ctx, tf, mint_id, brand, mine[0][0])
                if holder != packer:
                    flag("custody.packer_not_holder", mint_id, *last_offer)
    return ItemScan(
        key=key if read_unpacks else (*key[:-1], None),  # see `node.item_memo.fits`
        found=tuple((code, tuple(evidence[:_EVIDENCE])) for code, evidence in found.items()),
        expiries=tuple((m, e, n) for m, (e, n) in expiries.items()),
        unminted=tuple(unminted),
        brands=tuple(sorted(brands)))


def _report(ctx: _Ctx, scan: ItemScan, destination: str | None) -> None:
    """The reasons an item scan gives at `ctx.now`, in `_ITEM_RULES` order."""
    found = {code: list(evidence) for code, evidence in scan.found}
    for tid, evidence in scan.unminted:
        tf = ctx.reader.facts(F.token_key(tid))
        code = "item.mint_unseen" if _names_unseen_root(ctx, tf) else "item.not_minted"
        found.setdefault(code, []).extend(evidence)
    if ctx.now is not None:
        # one entry per mint (however many items it minted here): its first 64 are evidence
        expired = [mint_id for mint_id, expiry, _ in scan.expiries if expiry < ctx.now]
        if expired:
            found["item.expired"] = expired
    for code, (level, what, alert) in _ITEM_RULES.items():
        ids = found.get(code)
        if ids is None or (not ids and code == "item.two_containers"):
            continue  # (no evidence of another packing: every one was unpacked in between)
        ctx.add(level, code, what.format(destination=destination), ids[:_EVIDENCE],
                alert=alert)


def _seal(ctx: _Ctx, cf: F.Facts, judged: custody.Judged) -> None:
    seals = list(judged.seals)  # by the container's holders only
    if not seals:
        ctx.add(Level.AMBER, "seal.none", "the container was never sealed")
        return
    for at, scan_id, seen, _author in sorted(cf.get("seal_seen", ())):
        in_force = [s for s in seals if s[0] <= at]
        if in_force and in_force[-1][2] != seen:
            ctx.add(Level.RED, "seal.mismatch",
                    f"seal {seen} seen where {in_force[-1][2]} was recorded",
                    [in_force[-1][1], scan_id], alert="seal_mismatch")
    for at, rid, kind in sorted(cf.get("breaches", ())):
        if at > seals[0][0]:  # the words and evidence of `rules._seal_rules`: one alert
            what = "door opened" if kind == "door" else "tamper detected"
            seal_id = [s for s in seals if s[0] < at][-1][1]
            ctx.add(Level.RED, "seal.breach", f"{what} after sealing", [seal_id, rid],
                    alert="seal_breach")


def _custody(ctx: _Ctx, cf: F.Facts, create_id: bytes, creator: bytes) -> None:
    chain = custody.walk(cf, create_id, creator)
    if chain.is_disputed:
        ctx.add(Level.RED, "custody.disputed", "the holder offered the same custody state twice",
                chain.disputed, alert="double_handover")
    if chain.breaks:
        ctx.add(Level.RED, "custody.break", "a hand-over was offered by someone not holding it",
                chain.breaks, alert="custody_break")
    if chain.in_transit_to is not None:
        ctx.add(Level.AMBER, "custody.pending", "a hand-over is offered but not yet accepted",
                [chain.steps[-1].offer])


def _weight(ctx: _Ctx, cf: F.Facts, judged: custody.Judged) -> None:
    packs = sorted(judged.packs, key=lambda p: (p[7], p[5]))
    weight = cf.get("weight")
    if not packs or weight is None:
        return
    declared, measured = packs[-1][4], weight[2]
    tolerance = max(declared * ctx.params.weight_tolerance_permille // 1000, 1000)
    # A load cell reports the goods (net); a weighbridge or VGM the container too (gross).
    tare = 0
    for rid, _author in sorted(cf.get("create", ()))[:1]:
        r = ctx.record(rid)
        tare = getattr(r.body, "tare_g", None) or 0 if r is not None else 0
    off = min(abs(measured - declared), abs(measured - declared - tare) if tare else 1 << 62)
    if off > tolerance:
        level = Level.RED if off > 2 * tolerance else Level.AMBER
        ctx.add(level, "weight.mismatch",
                f"declared {declared / 1000:.0f} kg, measured {measured / 1000:.0f} kg",
                [packs[-1][5], weight[1]], alert="weight_mismatch")


def _route(ctx: _Ctx, number: str, shipment: Record | None) -> None:
    if shipment is None:
        return
    body: Any = shipment.body
    planned = set(body.route)
    for place in (body.origin, body.destination):
        if place.locode:
            planned.add(place.locode)
    countries = {body.origin.country, body.destination.country} | {p[:2] for p in planned}
    # The distinct places (a fact that does not grow with every scan) say which are off
    # the route; the scans at those, for the evidence, come from their place index.
    places = ctx.reader.facts(F.container_key(number)).get("places", ())
    for locode, country in sorted(places):
        if not ((locode and planned and locode not in planned) or country not in countries):
            continue
        for rid in ctx.reader.record_ids(F.place_key(number, locode, country)):
            r = ctx.record(rid)
            if r is None or r.type != "scan" or (
                    r.body.place.locode or "", r.body.place.country) != (locode, country):
                continue
            ctx.add(Level.AMBER, "route.deviation",
                    f"scanned at {locode or country}, off the planned route",
                    [rid, shipment.id], alert="route_deviation")
