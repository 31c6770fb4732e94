"""The overlay one atomic write of the ledger builds on the store (`Batch`), and an
append of our own records staged before its write (`StagedAppend`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from node import facts as F
from node.store import WriteSet
from protocol.envelope import Record
from protocol.feed import Head

if TYPE_CHECKING:
    from node.ledger import Ledger


class Batch:
    """The overlay one atomic write builds on top of the store."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.ws = WriteSet()
        self.heads: dict[bytes, Head] = {}
        self.facts: dict[bytes, F.Facts] = {}
        # Per key, the SET fields of `facts[key]` still shared with the ledger's facts
        # cache: copied on their first change (`join`), so an uncommitted batch never
        # alters the cache and loading cached facts costs no deep copy.
        self.shared: dict[bytes, set[str]] = {}
        # What the store held for the keys the cache did not (`Ledger._before` decodes it
        # once more, for the rules and findings that compare before with after).
        self.stored_facts: dict[bytes, bytes | None] = {}
        self.before: dict[bytes, F.Facts] = {}  # by `Ledger._before`: never changed
        self.called: dict[bytes, frozenset[bytes]] = {}  # key -> what its rules call for now
        self.dirty: set[bytes] = set()
        self.records: dict[bytes, Record] = {}
        self.object_ids: dict[bytes, list[bytes]] = {}
        self.alerts: list[dict[str, Any]] = []
        self.stored: list[Record] = []
        self.retract: dict[bytes, str] = {}  # alert key -> rule, called for before a recompute
        # author -> (its first record written without the right, the RoleError rule), or
        # None: changes to what meta `unauthorised.<author>` holds (see `Ledger._unauthorised`)
        self.standing: dict[bytes, tuple[Record, str] | None] = {}
        self.rules_changed: set[str] = set()  # rules of alerts withdrawn or again in force
        self.memo = ledger.verify_memo.staged(self.ws)  # item scans: `node.item_memo`
        # Ids of the records this node signed for this batch (`Ledger.stage_own`): new
        # hashes that no other record can name yet, and already authorised.
        self.signed: set[bytes] = set()

    def head(self, author: bytes) -> Head | None:
        h = self.heads.get(author)
        return h if h is not None else self.ledger.head(author)

    def has(self, rid: bytes) -> bool:
        return rid in self.records or self.ledger.store.has_record(rid)

    def get_facts(self, key: bytes) -> F.Facts:
        """An object's facts as this batch sees them: read them, change them with `join`."""
        f = self.facts.get(key)
        if f is None:
            f, shared = self.ledger._batch_facts(key, self.stored_facts)
            if shared:
                self.shared[key] = shared
            self.facts[key] = f
        return f

    def join(self, fact: F.Fact) -> None:
        if fact.field == F.INDEX:  # changes no facts: nothing to read (an index entry only)
            return
        key = fact.key
        f = self.facts.get(key)
        if f is None:
            f = self.get_facts(key)
        shared = self.shared.get(key)
        if F.join_cow(f, fact, shared) if shared else F.join(f, fact):
            self.dirty.add(key)


class StagedAppend:
    """Own records signed and placed, and the batch that stores them (`Ledger.stage_own`)."""

    __slots__ = ("records", "batch")

    def __init__(self, records: list[Record], batch: Batch) -> None:
        self.records = records
        self.batch = batch
