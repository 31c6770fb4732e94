"""What container verification keeps between calls: manifest checks and per-item findings.

Theory of operation. Verifying a container of n items costs O(n): the Merkle
root recomputed from the manifest chunks, and every item's facts read and
judged (`node.verify._items`). Neither depends on the clock, so both can be kept:

- `ManifestCheck`, keyed by (root, chunk record ids): the chunks' contents are
  fixed by their ids, so what they add up to never changes. Kept for good
  (bounded, least recently used first out).
- `ItemScan`, keyed by container: the clock-free outcome of the per-item
  checks (evidence by finding, the items' mints and expiries in item order for
  the expiry check, which needs the clock, and the items no one minted, which
  are judged again at every call). It holds only while none of its inputs
  changes: the items' facts, their lots', the other containers they were packed
  in. The ledger forgets a container's scan whenever a batch may change them
  (`node.derived.affected`: the containers whose per-item findings it works out
  again), and every scan also names the container-level inputs it was worked out
  for (`ItemScan.key`), so a scan that does not fit is never used.

A batch being written works its scans out before its write (`Staged`): they join
the memo only once the write returns (`Staged.settle`); a batch that fails
leaves the memo as it was, less what it forgot. Nothing here does I/O; the
memo is only ever used with the log it was worked out from (one ledger's).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Final

MANIFESTS: Final = 4096  # (root, chunks) -> check, by default
SCANS: Final = 1024  # containers' item scans, by default


@dataclass(frozen=True, slots=True)
class ManifestCheck:
    """What the chunk records of a manifest add up to."""

    count: int  # items listed over all chunks
    root_ok: bool  # the Merkle root over them is the root the chunks name
    packers: frozenset[bytes]  # the chunks' authors


@dataclass(frozen=True, slots=True)
class ItemScan:
    """The per-item findings of one container's manifest, before the clock is read."""

    key: tuple[Any, ...]  # the container-level inputs it was worked out for
    found: tuple[tuple[str, tuple[bytes, ...]], ...]  # code -> its first 64 evidence ids
    expiries: tuple[tuple[bytes, int, int], ...]  # (mint id, expiry, items) runs, item order
    unminted: tuple[tuple[bytes, tuple[bytes, ...]], ...]  # (token id, evidence) no one minted
    brands: tuple[bytes, ...]


class ItemMemo:
    """Manifest checks and item scans, bounded; least recently used first out."""

    def __init__(self, manifests: int = MANIFESTS, scans: int = SCANS) -> None:
        self._manifests: OrderedDict[tuple[bytes, tuple[bytes, ...]], ManifestCheck] = \
            OrderedDict()
        self._scans: OrderedDict[str, ItemScan] = OrderedDict()
        self._limits = (manifests, scans)

    def manifest(self, root: bytes, chunks: tuple[bytes, ...]) -> ManifestCheck | None:
        got = self._manifests.get((root, chunks))
        if got is not None:
            self._manifests.move_to_end((root, chunks))
        return got

    def keep_manifest(self, root: bytes, chunks: tuple[bytes, ...], check: ManifestCheck
                      ) -> None:
        _put(self._manifests, (root, chunks), check, self._limits[0])

    def scan(self, number: str, key: tuple[Any, ...]) -> ItemScan | None:
        """Container `number`'s scan, if one is kept and was worked out for `key`."""
        got = self._scans.get(number)
        if got is None or got.key != key:
            return None
        self._scans.move_to_end(number)
        return got

    def keep_scan(self, number: str, scan: ItemScan) -> None:
        _put(self._scans, number, scan, self._limits[1])

    def forget(self, number: str) -> None:
        """Container `number`'s item findings may have changed: its scan is gone."""
        self._scans.pop(number, None)

    def __len__(self) -> int:
        return len(self._scans)

    def staged(self) -> Staged:
        return Staged(self)


class Staged:
    """The memo as a batch not yet written sees it.

    It finds no scan (a batch works out again the findings it may change), forgets at
    once, and keeps its scans aside until `settle` (called once the batch is durable).
    Manifest checks need no staging: they hold whatever the log, once worked out.
    """

    def __init__(self, memo: ItemMemo) -> None:
        self.memo = memo
        self._scans: dict[str, ItemScan] = {}

    def manifest(self, root: bytes, chunks: tuple[bytes, ...]) -> ManifestCheck | None:
        return self.memo.manifest(root, chunks)

    def keep_manifest(self, root: bytes, chunks: tuple[bytes, ...], check: ManifestCheck
                      ) -> None:
        self.memo.keep_manifest(root, chunks, check)

    def scan(self, number: str, key: tuple[Any, ...]) -> ItemScan | None:
        return None

    def keep_scan(self, number: str, scan: ItemScan) -> None:
        self._scans[number] = scan

    def forget(self, number: str) -> None:
        self.memo.forget(number)
        self._scans.pop(number, None)

    def settle(self) -> None:
        """The batch is written: its scans join the memo."""
        for number, scan in self._scans.items():
            self.memo.keep_scan(number, scan)
        self._scans.clear()


def _put(table: OrderedDict[Any, Any], key: Any, value: Any, limit: int) -> None:
    table[key] = value
    table.move_to_end(key)
    while len(table) > limit:
        table.popitem(last=False)


Memo = ItemMemo | Staged
