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

Offers at a head by someone other than the holder are custody breaks.
"""

from __future__ import annotations

from dataclasses import dataclass, field

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
