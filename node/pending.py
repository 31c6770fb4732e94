"""The bounded pending area: records that arrived before what they need.

A record waits here when its feed predecessor is missing (a gap) or its author's
credential has not arrived yet. It is released when that arrives. The area is
bounded: past `limit` records the newest arrivals are dropped and counted
(anti-entropy sync fetches them again later), so memory never grows without
bound. Pending records are not durable; losing them on a crash is harmless.
"""

from __future__ import annotations

from collections import defaultdict

from protocol.envelope import Record


class Pending:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.dropped = 0
        self._gaps: dict[bytes, dict[int, Record]] = defaultdict(dict)  # author -> seq -> record
        self._unknown: dict[bytes, dict[int, Record]] = defaultdict(dict)  # author -> seq -> record
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def _add(self, table: dict[bytes, dict[int, Record]], r: Record) -> bool:
        slot = table[r.author]
        if r.seq in slot:
            return True
        if self._count >= self.limit:
            self.dropped += 1
            return False
        slot[r.seq] = r
        self._count += 1
        return True

    def add_gap(self, r: Record) -> bool:
        """Hold `r` until its predecessor arrives. False when dropped for space."""
        return self._add(self._gaps, r)

    def add_unknown_author(self, r: Record) -> bool:
        """Hold `r` until its author's credential arrives. False when dropped for space."""
        return self._add(self._unknown, r)

    def next_in_feed(self, author: bytes, seq: int) -> Record | None:
        """Take the held record of `author` at `seq`, if any."""
        slot = self._gaps.get(author)
        if not slot or seq not in slot:
            return None
        r = slot.pop(seq)
        self._count -= 1
        if not slot:
            del self._gaps[author]
        return r

    def by_author(self, author: bytes) -> list[Record]:
        """Take every record held for lack of `author`'s credential, in seq order."""
        slot = self._unknown.pop(author, None)
        if not slot:
            return []
        self._count -= len(slot)
        return [slot[s] for s in sorted(slot)]

    def missing(self) -> dict[bytes, int]:
        """For each author with a gap: the highest seq held (sync should fetch up to it)."""
        return {a: max(s) for a, s in self._gaps.items() if s}

    def drop_author(self, author: bytes) -> None:
        for table in (self._gaps, self._unknown):
            slot = table.pop(author, None)
            if slot:
                self._count -= len(slot)
