"""What a user sees of an object: token, container and shipment views (inclusion
proofs: `node.manifest_proof`).

Pure: every function reads the stored facts (`node.facts`) and records through a
`Reader` of callables and returns plain values (ids as bytes, parties as
did:key), so two nodes holding the same records show the same views. The RPC
turns the bytes into hex.

Custody is a walk over the hand-over facts of one object. It starts at the
object's first record (a token's mint, a container's or shipment's create) as
head, with that record's author as holder. At each head it looks at the offers
the current holder made from that head: none ends the walk; more than one is a
double hand-over and marks the object disputed; exactly one moves the head to
its accept and the holder to the recipient, if the recipient accepted it
(otherwise the offer is reported as pending). A container's custody carries its
contents: a token packed in a container is held by whoever holds the container,
and after an unpack by whoever unpacked it, from where its own walk goes on.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Final

from crypto.didkey import did_from_public
from crypto.errors import Error
from node import custody as C
from node import facts as F
from node.rules import DISPUTE_RULES
from protocol.bodies import token_id
from protocol.envelope import Record

MAX_LISTED = 1000  # readings and scans listed per view (the newest)


class SummaryError(Error):
    """A view or proof cannot be produced."""


class NotFound(SummaryError):
    """The object (or the item in a container) is not known to this node."""


class Conflict(SummaryError):
    """The state does not allow the request (an incomplete manifest, a disputed object)."""


def _no_org(author: bytes) -> str | None:
    return None


def _counts(r: Record) -> bool:
    return True


def _no_alerts() -> Iterable[tuple[int, dict[str, Any]]]:
    return ()


@dataclass(frozen=True, slots=True)
class Reader:
    """How the views read the log: facts by object key, record ids by object key, records."""

    facts: Callable[[bytes], F.Facts]
    record_ids: Callable[[bytes], Sequence[bytes]]
    record: Callable[[bytes], Record | None]
    org: Callable[[bytes], str | None] = _no_org
    counts: Callable[[Record], bool] = _counts  # False for records that no longer count
    alerts: Callable[[], Iterable[tuple[int, dict[str, Any]]]] = _no_alerts  # (cursor, entry)


def party(reader: Reader, key: bytes) -> dict[str, Any]:
    return {"did": did_from_public(key), "org": reader.org(key)}


# -- custody -------------------------------------------------------------------------


@dataclass(slots=True)
class Custody:
    """Where an object's custody walk ended."""

    head: bytes
    holder: bytes
    steps: list[dict[str, Any]] = field(default_factory=list)
    disputed: bool = False
    conflicting: list[bytes] = field(default_factory=list)  # offer ids at the disputed head
    pending: dict[str, Any] | None = None  # an offer not (yet) accepted


def walk(reader: Reader, facts: F.Facts, head: bytes, holder: bytes,
         custody: Custody | None = None) -> Custody:
    """Follow the hand-overs in `facts` from (`head`, `holder`)."""
    c = custody or Custody(head, holder)
    c.head, c.holder, c.pending = head, holder, None
    offers: dict[tuple[bytes, bytes], list[tuple[bytes, bytes]]] = defaultdict(list)
    for h, oid, author, to in facts.get("offers", ()):
        offers[(h, author)].append((oid, to))
    accepts: dict[bytes, list[tuple[bytes, bytes, bytes]]] = defaultdict(list)
    for oid, aid, author, h in facts.get("accepts", ()):
        accepts[oid].append((aid, author, h))
    seen: set[bytes] = set()
    while c.head not in seen:
        seen.add(c.head)
        cands = sorted(offers.get((c.head, c.holder), ()))
        if not cands:
            break
        if len(cands) > 1:
            c.disputed = True
            c.conflicting = [oid for oid, _ in cands]
            break
        oid, to = cands[0]
        ok = sorted(aid for aid, author, h in accepts.get(oid, ()) if author == to and h == c.head)
        if not ok:
            c.pending = {"offer": oid, "to": party(reader, to), "ts": _ts(reader, oid)}
            break
        c.steps.append({"kind": "handover", "offer": oid, "accept": ok[0],
                        "from": party(reader, c.holder), "to": party(reader, to),
                        "ts": _ts(reader, ok[0])})
        c.head, c.holder = ok[0], to
    return c


def _ts(reader: Reader, rid: bytes) -> int | None:
    r = reader.record(rid)
    return r.ts if r is not None else None


def _first(reader: Reader, entries: Iterable[tuple[bytes, bytes]]) -> tuple[bytes, bytes, bool]:
    """The earliest (record id, author) of an object's create or mint records; disputed if
    different authors created it."""
    items = sorted(entries, key=lambda e: (_ts(reader, e[0]) or 0, e[0]))
    return items[0][0], items[0][1], len({a for _, a in items}) > 1


# -- customs and seals ------------------------------------------------------------------


def customs_status(actions: Iterable[tuple[Any, ...]]) -> str:
    """The customs status an object's actions add up to; a seizure is final."""
    status = "none"
    for _when, _rid, action, result in sorted(actions):
        if status == "seized":
            break
        status = {"hold": "held", "inspect": "inspecting", "release": "released",
                  "seize": "seized"}.get(action) or ("conform" if result == "conform"
                                                     else "nonconform")
    return status


def _customs_list(reader: Reader, actions: Iterable[tuple[Any, ...]], subject: str
                  ) -> list[dict[str, Any]]:
    out = []
    for ts, rid, action, result in sorted(actions):
        r = reader.record(rid)
        out.append({"subject": subject, "action": action, "result": result or None, "ts": ts,
                    "record": rid, "by": party(reader, r.author) if r else None,
                    "note": getattr(r.body, "note", None) if r else None})
    return out


def seal_state(facts: F.Facts) -> str:
    """unsealed, sealed or broken, by the seals of the container's holders (`custody.judge`)."""
    seals = C.judge(facts).seals
    if not seals:
        return "unsealed"
    ts, _rid, seal, _author = seals[-1]
    if any(at > ts for at, _sid, _kind in facts.get("breaches", ())):
        return "broken"
    if any(at >= ts and seen != seal for at, _sid, seen, _a in facts.get("seal_seen", ())):
        return "broken"
    return "sealed"


# -- containers ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Manifest:
    root: bytes
    count: int
    chunks: int
    weight_g: int
    present: dict[int, bytes]  # chunk -> pack record id
    ts: int
    by: bytes

    @property
    def complete(self) -> bool:
        return len(self.present) == self.chunks


def manifests(facts: F.Facts) -> dict[bytes, Manifest]:
    """The manifests packed by the container's holders (`custody.judge`), by root."""
    by_root: dict[bytes, list[tuple[Any, ...]]] = defaultdict(list)
    for p in C.judge(facts).packs:
        by_root[p[0]].append(p)
    out = {}
    for root, packs in by_root.items():
        packs.sort(key=lambda p: (p[7], p[5]))
        first = packs[0]
        present: dict[int, bytes] = {}
        for p in packs:
            present.setdefault(p[1], p[5])
        out[root] = Manifest(root, first[3], first[2], first[4], present, packs[-1][7], first[6])
    return out


def current_manifest(reader: Reader, facts: F.Facts) -> Manifest | None:
    """The manifest in force: the latest packed, unless an unpack came after it.

    Only packs and unpacks by the container's holder count; a second manifest with no
    unpack since the first is a conflict (the container is disputed, `container_custody`).
    """
    ms = manifests(facts)
    if not ms:
        return None
    latest = max(ms.values(), key=lambda m: (m.ts, max(m.present.values())))
    for ts, uid, _author in C.judge(facts).unpacks:
        if ts > latest.ts or (ts == latest.ts and _after(reader, uid, latest.present[min(latest.present)])):
            return None
    return latest


def _after(reader: Reader, a: bytes, b: bytes) -> bool:
    """Whether record `a` comes after `b` (same timestamp): by feed order for one author."""
    ra, rb = reader.record(a), reader.record(b)
    if ra is not None and rb is not None and ra.author == rb.author:
        return ra.seq > rb.seq
    return a > b


def container_custody(reader: Reader, number: str, facts: F.Facts | None = None) -> Custody | None:
    facts = facts if facts is not None else reader.facts(F.container_key(number))
    if not facts.get("create"):
        return None
    head, holder, disputed = _first(reader, facts["create"])
    c = walk(reader, facts, head, holder)
    c.disputed = c.disputed or disputed or C.judge(facts).disputed
    return c


def container_view(reader: Reader, number: str) -> dict[str, Any]:
    key = F.container_key(number)
    facts = reader.facts(key)
    if not facts:
        raise NotFound(f"container {number} is not known")
    custody = container_custody(reader, number, facts)
    m = current_manifest(reader, facts)
    judged = C.judge(facts)
    seals = list(judged.seals)  # those that count: by the holder
    records = _observations(reader, key, facts)
    created = None
    if facts.get("create"):
        cid = _first(reader, facts["create"])[0]
        r = reader.record(cid)
        if r is not None:
            created = {"record": cid, "by": party(reader, r.author), "ts": r.ts,
                       "tare_g": r.body.tare_g, "max_gross_g": r.body.max_gross_g,
                       "sscc": r.body.sscc}
    shipments = sorted({s for s, _ in facts.get("shipments", ())})
    declarations = sorted(facts.get("declarations", ()))
    return {
        "container": number,
        "created": created,
        "manifest": None if m is None else {
            "root": m.root, "count": m.count, "chunks": m.chunks, "present": len(m.present),
            "complete": m.complete, "weight_g": m.weight_g, "packed_by": party(reader, m.by),
            "ts": m.ts, "records": [m.present[i] for i in sorted(m.present)],
        },
        # custody actions kept but not counted (by a non-holder), and manifests in conflict
        "disputes": {
            "unauthorised": [{"type": t, "record": rid, "by": party(reader, a), "ts": ts}
                             for t, rid, a, ts in judged.unauthorised],
            "manifest_conflicts": [list(pair) for pair in judged.conflicts],
        },
        "seal": {
            "status": seal_state(facts),
            "current": seals[-1][2] if seals else None,
            "history": [{"seal": s, "ts": ts, "record": rid, "by": party(reader, a),
                         "counts": (ts, rid, s, a) in seals}
                        for ts, rid, s, a in sorted(facts.get("seals", ()))],
            "seen": [{"seal": s, "at": at, "record": rid, "by": party(reader, a),
                      "matches": bool(seals) and _seal_at(seals, at) in (None, s)}
                     for at, rid, s, a in sorted(facts.get("seal_seen", ()))],
            "breaches": [{"kind": k, "at": at, "record": rid}
                         for at, rid, k in sorted(facts.get("breaches", ()))],
        },
        "custody": _custody_json(reader, custody),
        "customs": {"status": customs_status(facts.get("customs", ())),
                    "declarations": [{"record": rid, "shipment": s, "jurisdiction": j}
                                     for rid, s, j in declarations],
                    "actions": _customs_list(reader, facts.get("customs", ()), number)},
        "shipments": shipments,
        "location": _location(reader, facts),
        "sensors": _readings(reader, records, number),
        "latest": {"weight": facts.get("weight"), "temperature": facts.get("temp"),
                   "position": facts.get("position")},
        "unpacks": [{"ts": ts, "record": rid, "by": party(reader, a)}
                    for ts, rid, a in sorted(facts.get("unpacks", ()))],
    }


def _seal_at(seals: list[tuple[Any, ...]], at: int) -> str | None:
    in_force = [s for s in seals if s[0] <= at]
    return in_force[-1][2] if in_force else None


def _custody_json(reader: Reader, c: Custody | None) -> dict[str, Any] | None:
    if c is None:
        return None
    return {"holder": party(reader, c.holder), "head": c.head, "steps": c.steps,
            "disputed": c.disputed, "conflicting_offers": c.conflicting, "pending": c.pending}


# Fact fields whose tuples hold the ids of records other than scans and sensor readings
# (at these positions); `_observations` need not decode those (pack chunks are large).
_NOT_OBSERVATIONS: Final = {"mint": (0,), "packs": (2, 5), "recalls": (0,), "create": (0,),
                            "times": (0,),
                            "seals": (1,), "unpacks": (1,), "offers": (1,), "accepts": (1,),
                            "customs": (1,), "shipments": (1,), "status": (1,),
                            "declarations": (0,)}


def _observations(reader: Reader, key: bytes, facts: F.Facts) -> list[Record]:
    """The scans and sensor readings concerning an object (that still count)."""
    skip: set[Any] = set()
    for name, positions in _NOT_OBSERVATIONS.items():
        value = facts.get(name)
        for t in ([value] if isinstance(value, tuple) else value or ()):
            skip.update(t[i] for i in positions if i < len(t))
    out = []
    for rid in reader.record_ids(key):
        if rid in skip:
            continue
        r = reader.record(rid)
        if r is not None and reader.counts(r):
            out.append(r)
    return out


def _readings(reader: Reader, records: list[Record], number: str,
              limit: int | None = MAX_LISTED) -> list[dict[str, Any]]:
    out = []
    for r in records:
        if r.type != "sensor":
            continue
        b = r.body
        reading: dict[str, Any] = {"container": number, "kind": b.kind, "at": b.at,
                                   "record": r.id, "by": party(reader, r.author)}
        for name in ("value", "open", "lat_udeg", "lon_udeg"):
            if getattr(b, name) is not None:
                reading[name] = getattr(b, name)
        out.append(reading)
    out.sort(key=lambda x: (x["at"], x["record"]))
    return out if limit is None else out[-limit:]


def _scans(reader: Reader, records: list[Record], limit: int | None = MAX_LISTED
           ) -> list[dict[str, Any]]:
    out = []
    for r in records:
        if r.type != "scan":
            continue
        b = r.body
        out.append({"object": {"kind": b.object.kind, "id": b.object.id},
                    "place": b.place.to_value(), "event": b.event, "seal": b.seal,
                    "at": b.at if b.at is not None else r.ts, "record": r.id,
                    "by": party(reader, r.author)})
    out.sort(key=lambda x: (x["at"], x["record"]))
    return out if limit is None else out[-limit:]


def _location(reader: Reader, *facts_list: F.Facts) -> dict[str, Any] | None:
    scans = [f["scan"] for f in facts_list if f.get("scan")]
    if not scans:
        return None
    at, rid = max(scans)
    r = reader.record(rid)
    if r is None:
        return None
    return {"place": r.body.place.to_value(), "at": at, "event": r.body.event, "record": rid,
            "by": party(reader, r.author)}


# -- tokens ----------------------------------------------------------------------------


Cursor = tuple[int, bytes]  # (at, record id): a place in a list of scans or readings
START: Final[Cursor] = (-(2**63), b"")  # before every entry


def cursor_text(c: Cursor) -> str:
    """`AT:RECORD` (the record id in hex), as the RPC shows and parses it."""
    return f"{c[0]}:{c[1].hex()}"


def _page(entries: list[dict[str, Any]], after: Cursor | None, limit: int
          ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """One page of `entries` (scans or readings, sorted by (at, record)) and its description.

    Without a cursor, the newest `limit`; with one, the first `limit` after it, and
    `next` names the cursor to ask for the page after (None once the newest is listed).
    """
    entries.sort(key=lambda e: (e["at"], e["record"]))
    if after is None:
        listed, nxt = entries[-limit:] if limit else [], None
    else:
        i = bisect_left([(e["at"], e["record"]) for e in entries], after)
        if i < len(entries) and (entries[i]["at"], entries[i]["record"]) == after:
            i += 1
        listed = entries[i:i + limit]
        more = i + limit < len(entries)
        nxt = cursor_text((listed[-1]["at"], listed[-1]["record"])) if more and listed else None
    return listed, {"total": len(entries), "listed": len(listed),
                    "truncated": len(listed) < len(entries), "next": nxt}


def token_view(reader: Reader, tid: bytes, now: int, *, scans_from: Cursor | None = None,
               sensors_from: Cursor | None = None, limit: int = MAX_LISTED) -> dict[str, Any]:
    """A token's state and full provenance.

    Scans and sensor readings are listed by (at, record): the newest `limit` of each,
    or, given a cursor (`START` for the beginning), the `limit` after it; `pages`
    says how many there are in all and the cursor of the next page.
    """
    key = F.token_key(tid)
    facts = reader.facts(key)
    if not facts:
        raise NotFound(f"token {tid.hex()} is not known")
    mint_json, lot_recalls = None, set()
    cloned = len(facts.get("mint", ())) > 1
    if facts.get("mint"):
        mid, brand, _ = _first(reader, facts["mint"])
        r = reader.record(mid)
        if r is not None:
            b = r.body
            serial = next((s for s in b.serials if token_id(b.gtin, s) == tid), None)
            mint_json = {"record": mid, "brand": party(reader, brand), "mark": b.mark,
                         "facility": b.facility, "gtin": b.gtin, "serial": serial, "lot": b.lot,
                         "expiry": b.expiry, "markets": list(b.markets),
                         "attrs": dict(b.attrs or {}), "ts": r.ts}
            lot_recalls = reader.facts(F.lot_key(b.gtin, b.lot)).get("recalls", set())
    packed = _by_packing(reader, token_packing(reader, facts))
    custody = token_custody(reader, facts, packed)
    containers = []
    cfacts_all = []
    sensors: list[dict[str, Any]] = []
    scans = _scans(reader, _observations(reader, key, facts), limit=None)
    customs = _customs_list(reader, facts.get("customs", ()), tid.hex())
    for number, root, pid, current, _unpacker in packed:
        cfacts = reader.facts(F.container_key(number))
        cfacts_all.append(cfacts)
        crecs = _observations(reader, F.container_key(number), cfacts)
        ccust = container_custody(reader, number, cfacts)
        containers.append({"container": number, "root": root, "record": pid, "current": current,
                           "seal_status": seal_state(cfacts),
                           "holder": party(reader, ccust.holder) if ccust else None,
                           "shipments": sorted({s for s, _ in cfacts.get("shipments", ())})})
        sensors += _readings(reader, crecs, number, limit=None)
        scans += _scans(reader, crecs, limit=None)
        customs += _customs_list(reader, cfacts.get("customs", ()), number)
    inside = [c for c in containers if c["current"]]
    recalls = sorted(set(facts.get("recalls", ())) | set(lot_recalls))
    status = _token_status(reader, facts, custody, cloned, len(packed) > 1, bool(recalls),
                           inside, cfacts_all)
    expiry = mint_json["expiry"] if mint_json else None
    scans, scans_page = _page(scans, scans_from, limit)
    sensors, sensors_page = _page(sensors, sensors_from, limit)
    return {
        "token": tid,
        "status": status,
        "holder": party(reader, custody.holder) if custody else None,
        "location": _location(reader, facts, *cfacts_all),
        "mint": mint_json,
        "mints": sorted(mid for mid, _ in facts.get("mint", ())),
        "expired": expiry is not None and expiry <= now,
        "recalls": [{"record": rid, "by": party(reader, a), "ts": ts} for rid, a, ts in recalls],
        "custody": _custody_json(reader, custody),
        "scans": scans,
        "sensors": sensors,
        "pages": {"scans": scans_page, "sensors": sensors_page},
        "containers": containers,
        "customs": sorted(customs, key=lambda c: (c["ts"], c["record"])),
    }


def token_packing(reader: Reader, facts: F.Facts
                  ) -> list[tuple[str, bytes, bytes, bool, bytes | None]]:
    """(container, root, pack id, packed now?, unpacker) for every container a token was in."""
    out = []
    for number, root, pid in sorted(facts.get("packs", ())):
        cfacts = reader.facts(F.container_key(number))
        m = current_manifest(reader, cfacts)
        current = m is not None and m.root == root
        unpacker = None
        if not current:
            unpacks = C.judge(cfacts).unpacks  # by the container's holder
            unpacker = unpacks[-1][2] if unpacks else None
        out.append((number, root, pid, current, unpacker))
    return out


def token_custody(reader: Reader, facts: F.Facts,
                  packed: list[tuple[str, bytes, bytes, bool, bytes | None]]) -> Custody | None:
    """A token's custody: its own hand-overs, carried along by each container it was packed
    in, in packing order.

    While packed, every hand-over of the container is a step of the token (kind
    "container", event "handover", with the container number, both parties and the
    accept's time). If the packer did not hold the token, the packing is a step
    (event "pack"), as is an unpack by someone other than the container's holder
    (event "unpack"). After the unpack the token's own walk goes on from the unpacker.
    """
    if not facts.get("mint"):
        return None
    mid, brand, _ = _first(reader, facts["mint"])
    custody = walk(reader, facts, mid, brand)
    for number, _root, pid, current, _unpacker in _by_packing(reader, packed):
        if custody.disputed or custody.pending is not None:
            break
        cfacts = reader.facts(F.container_key(number))
        cc = container_custody(reader, number, cfacts)
        if cc is None:
            continue
        if current and cc.disputed:
            custody.disputed = True
            break
        start = (_ts(reader, pid) or 0, pid)
        unpack = None if current else _unpack_after(cfacts, start)
        if not current and unpack is None:
            continue  # its manifest was replaced, not unpacked: nothing moved the token
        steps = cc.steps
        before = 0  # the container's steps before the packing (in chain order)
        while before < len(steps) and _step_key(steps[before]) <= start:
            before += 1
        inside = []
        for s in steps[before:]:
            if unpack is not None and _step_key(s) >= (unpack[0], unpack[1]):
                break
            inside.append(s)
        holder = _recipient(reader, steps[before - 1]) if before else _first(
            reader, cfacts["create"])[1]
        via = {"kind": "container", "container": number}
        if holder is not None and holder != custody.holder:
            custody.steps.append({**via, "event": "pack", "record": pid,
                                  "from": party(reader, custody.holder),
                                  "to": party(reader, holder), "ts": start[0]})
        for s in inside:
            custody.steps.append({**s, **via, "event": "handover"})
            holder = _recipient(reader, s)
        if current:
            custody.holder = cc.holder
            continue
        assert unpack is not None
        uts, uid, unpacker = unpack
        if holder is not None and unpacker != holder:
            custody.steps.append({**via, "event": "unpack", "record": uid,
                                  "from": party(reader, holder), "to": party(reader, unpacker),
                                  "ts": uts})
        walk(reader, facts, custody.head, unpacker, custody)
    return custody


def _by_packing(reader: Reader, packed: list[tuple[str, bytes, bytes, bool, bytes | None]]
                ) -> list[tuple[str, bytes, bytes, bool, bytes | None]]:
    """A token's containers in the order it was packed into them."""
    return sorted(packed, key=lambda p: (_ts(reader, p[2]) or 0, p[2]))


def _step_key(step: dict[str, Any]) -> tuple[int, bytes]:
    return step["ts"] or 0, step["accept"]


def _recipient(reader: Reader, step: dict[str, Any]) -> bytes | None:
    r = reader.record(step["accept"])
    return r.author if r is not None else None


def _unpack_after(cfacts: F.Facts, start: tuple[int, bytes]) -> tuple[int, bytes, bytes] | None:
    """The first unpack (ts, record, author) of a container after a packing at `start`."""
    after = sorted(u for u in cfacts.get("unpacks", ()) if (u[0], u[1]) > start)
    return tuple(after[0]) if after else None  # type: ignore[return-value]


def _token_status(reader: Reader, facts: F.Facts, custody: Custody | None, cloned: bool,
                  multi: bool, recalled: bool, current: list[dict[str, Any]],
                  cfacts_all: list[F.Facts]) -> str:
    actions = list(facts.get("customs", ()))
    for cf in cfacts_all:
        actions += cf.get("customs", ())
    cs = customs_status(actions)
    if cs == "seized":
        return "seized"
    if recalled:
        return "recalled"
    if cloned or multi or (custody is not None and custody.disputed):
        return "disputed"
    if cs in ("held", "inspecting", "nonconform"):
        return "held"
    if current:
        number = current[0]["container"]
        cfacts = reader.facts(F.container_key(number))
        statuses = [reader.facts(F.shipment_key(s)).get("status") for s in current[0]["shipments"]]
        latest = max((s for s in statuses if s), default=None)
        ccust = container_custody(reader, number, cfacts)
        if (latest is not None and latest[2] == "in_transit") or (
                latest is None and ccust is not None and ccust.steps):
            return "in transit"
        return "packed"
    return "active"


def holder_of(reader: Reader, kind: str, ident: str) -> tuple[Custody | None, str | None]:
    """The custody of a goods object, and the container a token is packed in (if any)."""
    if kind == "container":
        return container_custody(reader, ident), None
    if kind == "shipment":
        facts = reader.facts(F.shipment_key(ident))
        if not facts.get("create"):
            return None, None
        head, holder, disputed = _first(reader, facts["create"])
        c = walk(reader, facts, head, holder)
        c.disputed = c.disputed or disputed
        return c, None
    tid = bytes.fromhex(ident)
    facts = reader.facts(F.token_key(tid))
    packed = token_packing(reader, facts)
    inside = next((number for number, _r, _p, current, _u in packed if current), None)
    return token_custody(reader, facts, packed), inside


# -- shipments -------------------------------------------------------------------------


def shipment_view(reader: Reader, sid: str) -> dict[str, Any]:
    key = F.shipment_key(sid)
    facts = reader.facts(key)
    if not facts:
        raise NotFound(f"shipment {sid} is not known")
    plan = None
    custody = None
    if facts.get("create"):
        head, holder, disputed = _first(reader, facts["create"])
        r = reader.record(head)
        if r is not None:
            plan = {"record": head, "by": party(reader, r.author), "ts": r.ts,
                    **{k: v for k, v in r.body.to_value().items() if k != "shipment"}}
        custody = walk(reader, facts, head, holder)
        custody.disputed = custody.disputed or disputed
    status = facts.get("status")
    containers = []
    for number in (plan or {}).get("containers", []):
        cfacts = reader.facts(F.container_key(number))
        cc = container_custody(reader, number, cfacts)
        m = current_manifest(reader, cfacts)
        containers.append({"container": number, "known": bool(cfacts),
                           "seal_status": seal_state(cfacts),
                           "holder": party(reader, cc.holder) if cc else None,
                           "items": m.count if m else 0,
                           "customs": customs_status(cfacts.get("customs", ()))})
    return {
        "shipment": sid,
        "plan": plan,
        "status": None if status is None else {"status": status[2], "ts": status[0],
                                                "record": status[1]},
        "custody": _custody_json(reader, custody),
        "containers": containers,
        "declarations": [{"record": rid, "jurisdiction": j, "by": party(reader, a)}
                         for rid, j, a in sorted(facts.get("declarations", ()))],
        "customs": {"status": customs_status(facts.get("customs", ())),
                    "actions": _customs_list(reader, facts.get("customs", ()), sid)},
        "location": _location(reader, facts),
    }


# -- open disputes ---------------------------------------------------------------------


def open_disputes(reader: Reader, *, after: tuple[str, str] | None = None,
                  limit: int | None = None) -> tuple[list[dict[str, Any]], tuple[str, str] | None]:
    """Every object disputed now, once each, by (kind, id): its rules, the evidence record
    ids and the live alerts that say so; and the (kind, id) to continue after, if more.

    The alert log is the index: the alerts of `DISPUTE_RULES` this node raised from its
    own facts (withdrawn as soon as the facts no longer call for them) or holds as signed
    alert records; a live one makes its subject disputed. Alerts a peer merely pushed
    (`received`, no record held) are its word, not our facts, and are left out.
    Goods inside a disputed container are disputed through it and not listed apart.
    """
    found: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for cursor, e in reader.alerts():
        if e.get("rule") not in DISPUTE_RULES or "retracted" in e:
            continue
        if "received" in e and "record" not in e:
            continue
        subject = e.get("subject") or {}
        ref = (str(subject.get("kind")), str(subject.get("id")))
        if after is not None and ref <= after:
            continue
        found[ref].append({"cursor": cursor, "rule": e["rule"], "severity": e.get("severity"),
                           "reason": e.get("reason"), "evidence": sorted(e.get("evidence", ())),
                           "ts": e.get("ts")})
    refs = sorted(found)
    more = limit is not None and len(refs) > limit
    refs = refs[:limit] if limit is not None else refs
    out = []
    for kind, ident in refs:
        alerts = sorted(found[(kind, ident)], key=lambda a: (a["rule"], a["evidence"],
                                                             a["cursor"]))
        item: dict[str, Any] = {
            "kind": kind, "id": ident,
            "rules": sorted({a["rule"] for a in alerts}),
            "evidence": sorted({rid for a in alerts for rid in a["evidence"]}),
            "since": min((a["ts"] for a in alerts if a["ts"] is not None), default=None),
            "alerts": alerts,
        }
        if kind == "party":
            try:
                item["party"] = party(reader, bytes.fromhex(ident))
            except (ValueError, Error):
                item["party"] = None
        out.append(item)
    return out, (refs[-1] if more else None)


def verdict_reader(ledger: Any, now: int) -> Reader:
    """`reader_of` for a container verdict: it reads only records that count, as the
    ledger's own findings do (`node.batch_view.BatchView.record`). Which of two records
    at a forked seq a node stores depends on arrival order; what counts does not."""

    def record(rid: bytes) -> Record | None:
        r: Record | None = ledger.record(rid)
        return None if r is None or ledger.excluded(r) else r

    return replace(reader_of(ledger, now), record=record)


def reader_of(ledger: Any, now: int) -> Reader:
    """A `Reader` over a `node.ledger.Ledger` (passed in, so this module does no I/O itself).

    Party names come from the credentials in force at `now`.
    """

    def org(key: bytes) -> str | None:
        auth = ledger.creds.grant_status(key, now)
        if auth.grant is not None:
            return str(auth.grant.org)
        return "network authority" if key in ledger.creds.authorities else None

    def counts(r: Record) -> bool:
        return not ledger.excluded(r)

    return Reader(facts=ledger.facts, record_ids=ledger.store.object_records,
                  record=ledger.record, org=org, counts=counts, alerts=ledger.store.iter_alerts)
