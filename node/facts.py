"""Derived state as grow-only facts: the pure fold over the set of records.

Theory of operation. Every record contributes *facts* to the objects it
concerns (a token, a container, a shipment, a lot, an author). Each object's
facts are a map of named fields, and every field is a join-semilattice:

- SET fields are sets of tuples, joined by union;
- MAX fields keep the greatest tuple (e.g. the latest scan, ordered by
  (time, record id)).

A fact may also be an INDEX fact: it adds nothing to the object's state, only
the record to the object's index (the store's `O objkey id` entries), so that
a seal number, a lot or a party finds the records that name it.

Union and max are commutative, associative and idempotent, so an object's facts
are a pure function of the *set* of records applied, whatever their arrival
order, and applying a record twice changes nothing. Summaries a user sees
(holder, seal status, disputes) are computed from the facts on demand
(`node.summary`), and alerts are derived from facts by monotonic rules
(`node.rules`): a rule that fires on some subset of the records fires on every
superset, so every arrival order yields the same alerts.

Records that must not count (those of a forked author from the fork on, or of
an author whose credential was revoked) are simply not folded; when such a
condition is discovered after the fact, the affected objects are recomputed
from their records (`fold()` over the object's record set).

Nothing here does I/O.
"""

from __future__ import annotations

import enum
import threading
from collections.abc import Iterable, Iterator
from typing import Any, Final, NamedTuple

import msgpack

from protocol import codec
from protocol.bodies import token_id
from protocol.envelope import Record
from protocol.genesis import Params


class Kind(enum.Enum):
    SET = "set"
    MAX = "max"
    INDEX = "index"  # no state: only an entry in the object index


# Every fact field, by object kind. An object key starts with the kind's letter.
FIELDS: Final[dict[str, Kind]] = {
    # tokens (t), containers (c), shipments (p), lots (l), authors (a), seals (s)
    "mint": Kind.SET,  # t: (mint id, author)
    "packs": Kind.SET,  # t: (container, root, pack id); c: (root, chunk, chunks, count, weight_g, id, author, ts)
    "recalls": Kind.SET,  # t, l: (recall id, author, ts)
    "create": Kind.SET,  # c, p: (id, author)
    "seals": Kind.SET,  # c: (ts, id, seal, author)
    "seal_seen": Kind.SET,  # c: (at, scan id, seal seen, author)
    "places": Kind.SET,  # c: (UN/LOCODE or "", country): the distinct places it was scanned at
    "breaches": Kind.SET,  # c: (at, sensor id, kind)
    "weight": Kind.MAX,  # c: (at, id, grams)
    "temp": Kind.MAX,  # c: (at, id, milli-degrees)
    "excursions": Kind.SET,  # c: (at, id, milli-degrees)
    "position": Kind.MAX,  # c: (at, id, lat, lon)
    "unpacks": Kind.SET,  # c: (ts, id, author)
    "times": Kind.SET,  # c: (id, ts) of its creates; t, c, p: of its accepted hand-overs
    "offers": Kind.SET,  # t, c: (head, offer id, author, to)
    "accepts": Kind.SET,  # t, c: (offer id, accept id, author, head)
    "scan": Kind.MAX,  # t, c, p: (at, id)
    "customs": Kind.SET,  # t, c, p: (ts, id, action, result)
    "shipments": Kind.SET,  # c: (shipment, id)
    "status": Kind.MAX,  # p: (ts, id, status)
    "declarations": Kind.SET,  # p: (id, jurisdiction, author); c: (id, shipment, jurisdiction)
    "fork": Kind.SET,  # a: (seq, record id)
    "alert_records": Kind.SET,  # x: (alert record id, author)
    "index": Kind.INDEX,  # l: mints of the lot; s: seal and scan records naming the seal;
    #                       r: a container's scans at one place;
    #                       a: records naming the party (hand-over recipient, credential subject)
}

INDEX: Final = "index"


_SET_FIELDS: Final = frozenset(k for k, kind in FIELDS.items() if kind is Kind.SET)


def token_key(tid: bytes) -> bytes:
    return b"t" + tid


def container_key(number: str) -> bytes:
    return b"c" + number.encode()


def shipment_key(sid: str) -> bytes:
    return b"p" + sid.encode()


def lot_key(gtin: str, lot: str) -> bytes:
    return b"l" + f"{gtin}/{lot}".encode()


def author_key(author: bytes) -> bytes:
    return b"a" + author


def seal_key(seal: str) -> bytes:
    return b"s" + seal.encode()


def head_key(rid: bytes, objkey: bytes) -> bytes:
    """The index of the hand-over offers of object `objkey` that name record `rid` as their
    custody head: every such key of one record starts with `head_prefix(rid)`, so one scan
    of the object index names the objects, with no offer read."""
    return head_prefix(rid) + objkey


def head_prefix(rid: bytes) -> bytes:
    return b"h" + rid


def place_key(container: str, locode: str, country: str) -> bytes:
    """The index of a container's scans at one place (UN/LOCODE, else the country)."""
    return b"r" + f"{container}/{locode or country}".encode()


def alert_key(key: bytes) -> bytes:
    return b"x" + key


def ref_key(kind: str, ident: str) -> bytes:
    """The object key of an `ObjectRef` (kind, id)."""
    if kind == "token":
        return token_key(bytes.fromhex(ident))
    if kind == "container":
        return container_key(ident)
    if kind == "party":
        return author_key(bytes.fromhex(ident))
    return shipment_key(ident)


def key_ref(key: bytes) -> tuple[str, str] | None:
    """The (kind, id) of an object key, for alert subjects; None for lots, seals and alerts."""
    tag, rest = key[:1], key[1:]
    if tag == b"t":
        return ("token", rest.hex())
    if tag == b"c":
        return ("container", rest.decode())
    if tag == b"p":
        return ("shipment", rest.decode())
    if tag == b"a":
        return ("party", rest.hex())
    return None


class Fact(NamedTuple):
    """One fact a record adds to one object (a tuple: a mint makes one per serial, and a
    frozen dataclass took 2.5 times as long to build)."""

    key: bytes
    field: str
    value: tuple[Any, ...]


def contributions(r: Record, params: Params) -> Iterator[Fact]:
    """The facts one record adds. Pure; the record is already validated."""
    b: Any = r.body
    t = r.type
    rid, author, ts = r.id, r.author, r.ts
    if t == "product.mint":
        for serial in b.serials:
            yield Fact(token_key(token_id(b.gtin, serial)), "mint", (rid, author))
        yield Fact(lot_key(b.gtin, b.lot), INDEX, ())
    elif t == "container.create":
        yield Fact(container_key(b.container), "create", (rid, author))
        yield Fact(container_key(b.container), "times", (rid, ts))
    elif t == "container.pack":
        ck = container_key(b.container)
        yield Fact(ck, "packs", (b.root, b.chunk, b.chunks, b.count, b.weight_g, rid, author, ts))
        for item in b.items:
            yield Fact(token_key(item), "packs", (b.container, b.root, rid))
    elif t == "container.seal":
        yield Fact(container_key(b.container), "seals", (ts, rid, b.seal, author))
        yield Fact(seal_key(b.seal), INDEX, ())
    elif t == "container.unpack":
        yield Fact(container_key(b.container), "unpacks", (ts, rid, author))
    elif t == "handover.offer":
        k = ref_key(b.object.kind, b.object.id)
        yield Fact(k, "offers", (b.head, rid, author, b.to))
        yield Fact(author_key(b.to), INDEX, ())
        yield Fact(head_key(b.head, k), INDEX, ())  # see `node.derived.named_as_head`
    elif t == "handover.accept":
        k = ref_key(b.object.kind, b.object.id)
        yield Fact(k, "accepts", (b.offer, rid, author, b.head))
        yield Fact(k, "times", (rid, ts))
    elif t == "scan":
        at = b.at if b.at is not None else ts
        k = ref_key(b.object.kind, b.object.id)
        yield Fact(k, "scan", (at, rid))
        if b.object.kind == "container":
            yield Fact(k, "places", (b.place.locode or "", b.place.country))
            yield Fact(place_key(b.object.id, b.place.locode or "", b.place.country), INDEX, ())
            if b.seal is not None:
                yield Fact(k, "seal_seen", (at, rid, b.seal, author))
        if b.seal is not None:
            yield Fact(seal_key(b.seal), INDEX, ())
    elif t == "sensor":
        yield from _sensor(r, b, params)
    elif t == "shipment.create":
        yield Fact(shipment_key(b.shipment), "create", (rid, author))
        for c in b.containers:
            yield Fact(container_key(c), "shipments", (b.shipment, rid))
    elif t == "shipment.update":
        yield Fact(shipment_key(b.shipment), "status", (ts, rid, b.status))
    elif t == "customs.declaration":
        yield Fact(shipment_key(b.shipment), "declarations", (rid, b.jurisdiction, author))
        for c in b.containers:
            yield Fact(container_key(c), "declarations", (rid, b.shipment, b.jurisdiction))
    elif t == "customs.action":
        k = ref_key(b.subject.kind, b.subject.id)
        yield Fact(k, "customs", (ts, rid, b.action, b.result or ""))
    elif t == "recall":
        fact = (rid, author, ts)
        if b.lot is not None:
            yield Fact(lot_key(b.gtin, b.lot), "recalls", fact)
        else:
            for serial in b.serials:
                yield Fact(token_key(token_id(b.gtin, serial)), "recalls", fact)
    elif t == "alert":
        yield Fact(alert_key(b.key), "alert_records", (rid, author))
    elif t == "credential.issue":  # credentials feed the CredentialSet; indexed by subject
        yield Fact(author_key(b.subject), INDEX, ())
    elif t == "credential.delegate":
        yield Fact(author_key(b.delegate), INDEX, ())


def _sensor(r: Record, b: Any, params: Params) -> Iterator[Fact]:
    k = container_key(b.container)
    if b.kind == "door":
        if b.open:
            yield Fact(k, "breaches", (b.at, r.id, "door"))
    elif b.kind == "tamper":
        yield Fact(k, "breaches", (b.at, r.id, "tamper"))
    elif b.kind == "weight":
        yield Fact(k, "weight", (b.at, r.id, b.value))
    elif b.kind == "temperature":
        yield Fact(k, "temp", (b.at, r.id, b.value))
        if not params.min_temperature_mc <= b.value <= params.max_temperature_mc:
            yield Fact(k, "excursions", (b.at, r.id, b.value))
    elif b.kind == "position":
        yield Fact(k, "position", (b.at, r.id, b.lat_udeg, b.lon_udeg))


# -- facts of one object -------------------------------------------------------------

Facts = dict[str, Any]  # field -> set[tuple] (SET) or tuple (MAX)


def join(facts: Facts, fact: Fact) -> bool:
    """Add one fact in place; True when it changed anything (an INDEX fact never does)."""
    kind = FIELDS[fact.field]
    if kind is Kind.INDEX:
        return False
    if kind is Kind.SET:
        s = facts.get(fact.field)
        if s is None:
            facts[fact.field] = {fact.value}
            return True
        if fact.value in s:
            return False
        s.add(fact.value)
        return True
    cur = facts.get(fact.field)
    if cur is None or fact.value > cur:
        facts[fact.field] = fact.value
        return True
    return False


def join_cow(facts: Facts, fact: Fact, shared: set[str]) -> bool:
    """`join`, where the SET fields named in `shared` belong to someone else too.

    (`shared` may name other fields as well: only SET fields are ever changed in place.)

    Such a set is replaced by a copy before it changes (copy on write), and its
    name leaves `shared`: the caller owns it from then on.
    """
    if fact.field in shared and fact.field in _SET_FIELDS:
        s = facts.get(fact.field)
        if s is not None:
            if fact.value in s:
                return False
            facts[fact.field] = set(s)
        shared.discard(fact.field)
    return join(facts, fact)


def fold(facts: Iterable[Fact]) -> dict[bytes, Facts]:
    """The facts of every object, from scratch: the reference the incremental path must match."""
    out: dict[bytes, Facts] = {}
    for fact in facts:
        if fact.field != INDEX:  # an object only indexed has no facts
            join(out.setdefault(fact.key, {}), fact)
    return out


def encode_facts(facts: Facts) -> bytes:
    """Canonical bytes of one object's facts (sets as sorted lists).

    The same bytes as `codec.encode_local` of that map, packed directly: fields in
    sorted order, tuples as arrays (as msgpack packs them), and every value a
    tuple of the str, bytes and int a validated record gives, so there is
    nothing else for the canonical copy to check or convert. That copy walked
    every element of every set, on every change of every object.
    """
    packer = getattr(_local, "packer", None)
    if packer is None:  # one per thread: a Packer is reused, never shared
        packer = _local.packer = msgpack.Packer(use_bin_type=True)
    out: bytes = packer.pack(
        {k: (sorted(v) if len(v) > 1 else [*v]) if k in _SET_FIELDS else v
         for k, v in sorted(facts.items())}
    )
    return out


_local = threading.local()


def decode_facts(data: bytes) -> Facts:
    raw = codec.decode_local(data, use_list=False)  # arrays come back as tuples
    return {k: set(v) if FIELDS[k] is Kind.SET else v for k, v in raw.items()}
