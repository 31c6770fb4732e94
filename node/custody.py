"""Custody chains: who holds an object, computed from its facts alone (pure).

An object's custody starts at its *root head* (the record that created it: the
mint of a token, the `container.create` of a container) held by that record's
author. At each head, the hand-over offers made by the current holder decide
what happens next:

- none: the chain ends here; the holder holds;
- more than one: a double hand-over: the object is disputed at this head, and
  the chain stops (no offer wins, whatever the arrival order);
- exactly one: if its recipient accepted it (an accept naming the offer and the
  same head), the accept becomes the new head and the recipient the holder;
  otherwise the object is in transit to the recipient.

Offers at a head by someone other than the holder are custody breaks, and so are
packs, seals and unpacks of a container by someone not holding it (`judge`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from node.facts import Facts


@dataclass(frozen=True, slots=True)
class Step:
    head: bytes  # the custody head the offer named
    offer: bytes
    accept: bytes | None
    giver: bytes
    taker: bytes


@dataclass(frozen=True, slots=True)
class Custody:
    holder: bytes | None
    head: bytes | None
    steps: tuple[Step, ...] = ()
    in_transit_to: bytes | None = None
    disputed: tuple[bytes, ...] = ()  # conflicting offer ids at the head where it stopped
    breaks: tuple[bytes, ...] = field(default=())  # offers by a non-holder

    @property
    def is_disputed(self) -> bool:
        return bool(self.disputed)


def walk(facts: Facts, root: bytes | None, root_holder: bytes | None) -> Custody:
    """The custody chain of one object from its root head."""
    if root is None or root_holder is None:
        return Custody(None, None)
    offers: dict[bytes, list[tuple[bytes, bytes, bytes]]] = {}
    for head, oid, author, to in facts.get("offers", ()):
        offers.setdefault(head, []).append((oid, author, to))
    accepts: dict[bytes, list[tuple[bytes, bytes, bytes]]] = {}
    for oid, aid, author, head in facts.get("accepts", ()):
        accepts.setdefault(oid, []).append((aid, author, head))
    holder, head = root_holder, root
    steps: list[Step] = []
    breaks: list[bytes] = []
    seen: set[bytes] = set()
    while head not in seen:
        seen.add(head)
        here = sorted(offers.get(head, ()))
        mine = [o for o in here if o[1] == holder]
        breaks += [o[0] for o in here if o[1] != holder]
        if not mine:
            return Custody(holder, head, tuple(steps), breaks=tuple(breaks))
        if len({o[0] for o in mine}) > 1:
            return Custody(holder, head, tuple(steps), disputed=tuple(o[0] for o in mine),
                           breaks=tuple(breaks))
        oid, giver, taker = mine[0]
        ok = sorted(a for a in accepts.get(oid, ()) if a[1] == taker and a[2] == head)
        if not ok:
            steps.append(Step(head, oid, None, giver, taker))
            return Custody(holder, head, tuple(steps), in_transit_to=taker, breaks=tuple(breaks))
        aid = ok[0][0]
        steps.append(Step(head, oid, aid, giver, taker))
        holder, head = taker, aid
    return Custody(holder, head, tuple(steps), breaks=tuple(breaks))


# -- who may pack, seal and unpack a container ------------------------------------------
#
# Packing, sealing and unpacking are custody actions: only the container's holder at the
# record's time may do them. Tenures come from the custody walk: the creator holds from
# the start (the earliest `container.create`, by time then id), each accepted hand-over
# passes custody at the accept's time. At a double hand-over the walk stops; the giver
# keeps holding and each recipient that accepted one of the conflicting offers may act too
# (the container is disputed already). An action by anyone else is kept but does not
# count (it neither replaces the manifest nor the seal) and is a custody break. Two
# manifests with no counted unpack between them are a conflict, never a silent replace.
# Everything here reads one container's facts only, so it is order-independent.


@dataclass(frozen=True, slots=True)
class Tenure:
    holder: bytes
    start: int | None  # None: from the beginning
    end: int | None  # None: still holds


@dataclass(frozen=True, slots=True)
class Judged:
    """A container's custody actions, sorted into those that count and those that do not."""

    packs: tuple[tuple[Any, ...], ...]  # the "packs" facts that count
    seals: tuple[tuple[Any, ...], ...]  # (ts, id, seal, author), sorted
    unpacks: tuple[tuple[Any, ...], ...]  # (ts, id, author), sorted
    unauthorised: tuple[tuple[str, bytes, bytes, int], ...]  # (type, record id, author, ts)
    conflicts: tuple[tuple[bytes, bytes], ...]  # pack ids of two manifests with no unpack between

    @property
    def disputed(self) -> bool:
        return bool(self.unauthorised or self.conflicts)


def tenures(facts: Facts) -> list[Tenure] | None:
    """Who held the container when; None when no record creates it (nothing to judge by)."""
    creates = facts.get("create")
    if not creates:
        return None
    times = dict(facts.get("times", ()))
    root, creator = min(creates, key=lambda c: (times.get(c[0], 0), c[0]))
    chain = walk(facts, root, creator)
    out: list[Tenure] = []
    holder, start = creator, None
    for step in chain.steps:
        if step.accept is None:
            break
        at = times.get(step.accept, 0)
        out.append(Tenure(holder, start, at))
        holder, start = step.taker, at
    out.append(Tenure(holder, start, None))
    for oid in chain.disputed:
        for o_head, o_id, _giver, to in facts.get("offers", ()):
            if o_id != oid or o_head != chain.head:
                continue
            for a_oid, aid, author, a_head in facts.get("accepts", ()):
                if a_oid == oid and author == to and a_head == chain.head:
                    out.append(Tenure(to, times.get(aid, 0), None))
    return out


def may_act(held: list[Tenure], author: bytes, ts: int) -> bool:
    """Whether `author` held the container at `ts` (both ends of a tenure included: a
    hand-over and an action in the same millisecond are not told apart)."""
    return any(t.holder == author and (t.start is None or t.start <= ts)
               and (t.end is None or ts <= t.end) for t in held)


_PACK_ID, _PACK_AUTHOR, _PACK_TS = 5, 6, 7


def judge(facts: Facts) -> Judged:
    """Sort a container's packs, seals and unpacks by whether their author held it."""
    held = tenures(facts)
    packs = sorted(facts.get("packs", ()), key=lambda p: (p[_PACK_TS], p[_PACK_ID]))
    seals = sorted(facts.get("seals", ()))
    unpacks = sorted(facts.get("unpacks", ()))
    bad: list[tuple[str, bytes, bytes, int]] = []
    if held is not None:
        def ok(kind: str, rid: bytes, author: bytes, ts: int) -> bool:
            if may_act(held, author, ts):
                return True
            bad.append((kind, rid, author, ts))
            return False
        packs = [p for p in packs if ok("container.pack", p[_PACK_ID], p[_PACK_AUTHOR],
                                        p[_PACK_TS])]
        seals = [s for s in seals if ok("container.seal", s[1], s[3], s[0])]
        unpacks = [u for u in unpacks if ok("container.unpack", u[1], u[2], u[0])]
    conflicts = []
    for p, q in zip(packs, packs[1:], strict=False):
        if p[0] == q[0]:  # chunks (or a repack) of the same manifest
            continue
        if not any(p[_PACK_TS] <= u[0] <= q[_PACK_TS] for u in unpacks):
            conflicts.append((p[_PACK_ID], q[_PACK_ID]))
    return Judged(tuple(packs), tuple(seals), tuple(unpacks), tuple(sorted(bad)),
                  tuple(conflicts))
