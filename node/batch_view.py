"""A read-only view of the log as a batch being written sees it (moved out of `node.ledger`).

The ledger's derived alerts (`Ledger._derived_alerts`) run the container
verification before the batch is written: this `node.verify.Reader` reads the
batch's facts and records first, then the ledger's facts cache, then the store.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from node import facts as F
from protocol.envelope import Record

if TYPE_CHECKING:
    from node.ledger import Ledger
    from node.ledger_batch import Batch


class BatchView:
    """A `node.verify.Reader` over the store with a batch's changes on top (read only)."""

    def __init__(self, ledger: Ledger, b: Batch) -> None:
        self.ledger, self.b = ledger, b

    def facts(self, key: bytes) -> F.Facts:
        f = self.b.facts.get(key)
        if f is None:
            f = self.ledger._facts_cache.get(key)
        if f is None:
            raw = self.ledger.store.facts_raw(key)
            f = F.decode_facts(raw) if raw is not None else {}
        return f

    def record(self, rid: bytes) -> Record | None:
        """A record that counts (None for one held that does not: its author's feed forked
        at or before it, or its author lacks the right). Which of two records at a forked
        seq a node stores depends on arrival order; what counts does not."""
        r = self.b.records.get(rid) or self.ledger.record(rid)
        return None if r is None or self.ledger.excluded(r) else r

    def record_ids(self, key: bytes) -> list[bytes]:
        ids = set(self.ledger.store.object_records(key)) | set(self.b.object_ids.get(key, ()))
        return [rid for rid in sorted(ids) if self.record(rid) is not None]
