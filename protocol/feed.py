"""Feed rules: each author's records form one append-only hash-linked chain.

Theory of operation. Record n of an author names record n-1 by id in `prev`,
and ids cover whole signed records, so the author's signature on a head commits
to every earlier record of the feed. From that follow the three rules here:

- `classify(record, head)`: where a new record falls relative to the feed head
  we hold: it extends the head (APPEND), leaves a gap we must fetch first (GAP),
  or sits at or below the head (KNOWN: the caller compares it with the record
  it holds at that seq; a different one is a fork). A record at head+1 whose
  prev is not the head's id is a fork too (BROKEN_LINK).
- `EquivocationProof`: two records by the same author that cannot both belong
  to one feed (same seq with different ids, or a link at n+1 that skips the
  record at n). It checks on its own, with no other context: anyone can verify
  that the author signed both.
- `verify_range(records, anchor)`: a contiguous run of one feed is authentic
  when its last record's signature holds and every prev links to the record
  before it, back to a record we already hold (`anchor`). One signature check
  per run instead of one per record is what makes bulk sync fast.
- `check_time(record, prev_ts)`: within one feed time never goes backwards (a
  record's ts is at least its predecessor's). Without it an author could write a
  record "earlier" than its own later ones, e.g. a reseal backdated before a
  scan that already showed a different seal, explaining the mismatch after the
  fact. (An author silent since before that scan can still backdate into the
  gap: no log can order records that name nothing of each other.)

  Note: a record inside a run whose *own* signature is bad is accepted by
  `verify_range` (its author signed the commitment to its exact bytes in the
  head) while single-record ingestion would refuse it. Only its author can make
  such a record, and sync delivers runs, so every node still converges.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass

from crypto.errors import VerificationError
from protocol import codec
from protocol.envelope import Record
from protocol.errors import DecodeError, FeedError


class Placement(enum.Enum):
    APPEND = "append"
    GAP = "gap"
    KNOWN = "known"
    BROKEN_LINK = "broken_link"


@dataclass(frozen=True, slots=True)
class Head:
    """The newest record we hold of one feed."""

    seq: int
    id: bytes


def classify(record: Record, head: Head | None) -> Placement:
    if head is None:
        return Placement.APPEND if record.seq == 1 else Placement.GAP
    if record.seq == head.seq + 1:
        return Placement.APPEND if record.prev == head.id else Placement.BROKEN_LINK
    if record.seq > head.seq + 1:
        return Placement.GAP
    return Placement.KNOWN


@dataclass(frozen=True, slots=True)
class EquivocationProof:
    """Two signed records of one author that cannot both be in one feed."""

    first: Record
    second: Record

    def __post_init__(self) -> None:
        self.verify()

    @classmethod
    def of(cls, a: Record, b: Record) -> EquivocationProof:
        """The proof with its records in canonical order (lower seq, then lower id, first)."""
        first, second = sorted((a, b), key=lambda r: (r.seq, r.id))
        return cls(first, second)

    def verify(self) -> None:
        a, b = self.first, self.second
        if a.author != b.author or a.network != b.network:
            raise VerificationError("equivocation proof: records of different authors or networks")
        if a.seq == b.seq:
            if a.id == b.id:
                raise VerificationError("equivocation proof: the two records are the same")
            if a.id > b.id:  # one proof, one encoding: `of` puts the lower id first
                raise VerificationError("equivocation proof: records out of canonical order")
        elif b.seq == a.seq + 1:
            if b.prev == a.id:
                raise VerificationError("equivocation proof: the records link correctly")
        else:
            raise VerificationError("equivocation proof: seqs are neither equal nor adjacent")
        a.verify_signature()
        b.verify_signature()

    @property
    def author(self) -> bytes:
        return self.first.author

    @property
    def seq(self) -> int:
        """The first seq at which the author's feed is in dispute."""
        return self.first.seq if self.first.seq == self.second.seq else self.second.seq - 1

    def to_bytes(self) -> bytes:
        return codec.encode([self.first.wire, self.second.wire])

    @classmethod
    def from_bytes(cls, data: bytes) -> EquivocationProof:
        v = codec.decode(data)
        if type(v) is not list or len(v) != 2 or not all(type(x) is bytes for x in v):
            raise DecodeError("an equivocation proof is a 2-array of records")
        return cls(Record.from_bytes(v[0]), Record.from_bytes(v[1]))


def check_time(record: Record, prev_ts: int) -> None:
    """Raise `FeedError` if `record` is timestamped before its predecessor (`prev_ts`)."""
    if record.ts < prev_ts:
        raise FeedError(f"seq {record.seq} is timestamped {record.ts}, before its"
                        f" predecessor ({prev_ts}): time goes backwards in the feed")


def verify_range(records: Sequence[Record], anchor: Head | None) -> None:
    """Authenticate a contiguous run of one feed with one signature check.

    `records` were decoded with `verify=False`. `anchor` is the record we hold
    just before the run (None when the run starts at seq 1). Raises
    `FeedError` for a run that is not contiguous or does not link to the
    anchor, `VerificationError` when the head's signature fails.
    """
    if not records:
        return
    first = records[0]
    if anchor is None:
        if first.seq != 1:
            raise FeedError("a run without an anchor must start at seq 1")
    elif first.seq != anchor.seq + 1 or first.prev != anchor.id:
        raise FeedError(f"run starting at seq {first.seq} does not link to the anchor")
    author, network = first.author, first.network
    for before, after in zip(records, records[1:], strict=False):
        if after.author != author or after.network != network:
            raise FeedError("a run mixes feeds")
        if after.seq != before.seq + 1 or after.prev != before.id:
            raise FeedError(f"run breaks between seq {before.seq} and {after.seq}")
        check_time(after, before.ts)
    records[-1].verify_signature()
