"""The bounded pending area: records that arrived before what they need.

A record waits here when its feed predecessor is missing (a gap) or its author's
credential has not arrived yet. It is released when that arrives. The area is
bounded: past `limit` records the newest arrivals are dropped and counted
(anti-entropy sync fetches them again later), so memory never grows without
bound. Pending records are not durable; losing them on a crash is harmless.

A record whose *referenced* record is missing (an accept whose offer, an offer
whose custody head, a pack whose items have not arrived) does not wait: it is
stored at once. Derived state is a fold of grow-only facts over the record set
(`node.facts`), and every rule reads the facts as they stand, so the referenced
record arriving later gives the same state as arriving first (the state-order
property test shuffles exactly this). Holding such records back would only
delay them, and make the bound of this area a way to lose them. Where a
missing reference would change a verdict, verification says so
(`item.mint_unseen`, `custody.unseen`: "the log is incomplete") instead of
alerting.
"""

from __future__ import annotations

from collections import defaultdict

from protocol.envelope import Record


class Pending:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.dropped = 0
        # author -> seq -> id -> record. Two records held at one (author, seq) are a
        # fork: both are kept, so the ledger sees both when they are released.
        self._gaps: dict[bytes, dict[int, dict[bytes, Record]]] = defaultdict(dict)
        self._unknown: dict[bytes, dict[int, dict[bytes, Record]]] = defaultdict(dict)
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def _add(self, table: dict[bytes, dict[int, dict[bytes, Record]]], r: Record) -> bool:
        held = table.get(r.author, {}).get(r.seq)
        if held is not None and r.id in held:
            return True
        if self._count >= self.limit:
            self.dropped += 1
            return False
        table[r.author].setdefault(r.seq, {})[r.id] = r
        self._count += 1
        return True

    def add_gap(self, r: Record) -> bool:
        """Hold `r` until its predecessor arrives. False when dropped for space."""
        return self._add(self._gaps, r)

    def add_unknown_author(self, r: Record) -> bool:
        """Hold `r` until its author's credential arrives. False when dropped for space."""
        return self._add(self._unknown, r)

    def next_in_feed(self, author: bytes, seq: int) -> list[Record]:
        """Take the records held of `author` at `seq` (more than one: a fork)."""
        slot = self._gaps.get(author)
        if not slot or seq not in slot:
            return []
        held = slot.pop(seq)
        self._count -= len(held)
        if not slot:
            del self._gaps[author]
        return [held[i] for i in sorted(held)]

    def by_author(self, author: bytes) -> list[Record]:
        """Take every record held for lack of `author`'s credential, in seq order."""
        slot = self._unknown.pop(author, None)
        if not slot:
            return []
        out = [slot[s][i] for s in sorted(slot) for i in sorted(slot[s])]
        self._count -= len(out)
        return out

    def unknown(self) -> dict[bytes, list[bytes]]:
        """For each author whose credential has not arrived: the ids of its held records."""
        return {a: sorted(i for held in slot.values() for i in held)
                for a, slot in self._unknown.items() if slot}

    def missing(self) -> dict[bytes, int]:
        """For each author with a gap: the highest seq held (sync should fetch up to it)."""
        return {a: max(s) for a, s in self._gaps.items() if s}

    def drop_author(self, author: bytes) -> None:
        for table in (self._gaps, self._unknown):
            slot = table.pop(author, None)
            if slot:
                self._count -= sum(len(held) for held in slot.values())
