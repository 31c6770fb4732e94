"""What container verification keeps between calls: manifest checks and per-item findings.

Theory of operation. Verifying a container of n items costs O(n): the Merkle
root recomputed from the manifest chunks, and every item's facts read and
judged (`node.verify._items`). Neither depends on the clock, so both can be kept:

- `ManifestCheck`, keyed by (root, chunk record ids): the chunks' contents are
  fixed by their ids, so what they add up to never changes. Kept for good.
- `ItemScan`, keyed by container: the clock-free outcome of the per-item
  checks (evidence by finding, each mint's expiry and how many of the items it
  minted, for the expiry check, which needs the clock, and the items no one minted, which
  are judged again at every call). It holds only while none of its inputs
  changes: the items' facts, their lots', the other containers they were packed
  in. The ledger forgets a container's scan whenever a batch may change them
  (`node.derived.affected`: the containers whose per-item findings it works out
  again), and every scan also names the container-level inputs it was worked out
  for (`ItemScan.key`), so a scan that does not fit is never used.

Both live in memory (bounded, least recently used first out) and in the ledger's
database (table `V`, see `node.store`), so they survive a restart. A batch being
written works its scans out before its write (`Staged`): it puts what it works out
and deletes what it forgets in the batch's own `WriteSet`, so the table changes
with the records that made it change, atomically, or not at all. Its scans join the
memory only once the write returns (`Staged.settle`); a batch that fails leaves the
memo as it was, less what it forgot. On a miss in memory the memo reads the table
through the `read` function it is given: nothing here does I/O. A stored entry that
does not decode to a well-formed finding is treated as absent (and reported once,
through `corrupt`), never trusted. The memo is only ever used with the log it was
worked out from (one ledger's).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, Protocol

from protocol import codec
from protocol.errors import DecodeError, LocalProtocolError

MANIFESTS: Final = 4096  # (root, chunks) -> check, by default
SCANS: Final = 1024  # containers' item scans, by default
TABLE: Final = b"V"  # the database table of kept findings (`node.store`)
_SCAN: Final = b"c"  # V c <container number>               -> ItemScan
_MANIFEST: Final = b"m"  # V m <root> <chunk ids, in order>  -> ManifestCheck
# The first element of every stored finding. A change to what verification finds (or how
# it keys a scan) must also bump `node.store.SCHEMA_VERSION`: the findings a database
# holds are then rebuilt, never read by code that would have found otherwise.
FORMAT: Final = 1

Read = Callable[[bytes], bytes | None]
Corrupt = Callable[[bytes, str], None]


class Writes(Protocol):
    """Where a batch gathers its puts and deletes (`node.store.WriteSet`)."""

    def put(self, key: bytes, value: bytes) -> None: ...
    def delete(self, key: bytes) -> None: ...


@dataclass(frozen=True, slots=True)
class ManifestCheck:
    """What the chunk records of a manifest add up to."""

    count: int  # items listed over all chunks
    root_ok: bool  # the Merkle root over them is the root the chunks name
    packers: frozenset[bytes]  # the chunks' authors

    def to_bytes(self) -> bytes:
        return codec.encode_local([FORMAT, self.count, self.root_ok, sorted(self.packers)])

    @classmethod
    def from_bytes(cls, raw: bytes) -> ManifestCheck:
        """Raises `ValueError` (or `DecodeError`) unless `raw` is a well-formed check."""
        fmt, count, root_ok, packers = _decode(raw, 4)
        if fmt != FORMAT or type(count) is not int or count < 0 or type(root_ok) is not bool \
                or not _bytes_tuple(packers) or not packers:
            raise ValueError("not a manifest check")
        return cls(count, root_ok, frozenset(packers))


@dataclass(frozen=True, slots=True)
class ItemScan:
    """The per-item findings of one container's manifest, before the clock is read."""

    key: tuple[Any, ...]  # the container-level inputs it was worked out for (`fits`)
    found: tuple[tuple[str, tuple[bytes, ...]], ...]  # code -> its first 64 evidence ids
    expiries: tuple[tuple[bytes, int, int], ...]  # (mint id, expiry, items), one per mint
    unminted: tuple[tuple[bytes, tuple[bytes, ...]], ...]  # (token id, evidence) no one minted
    brands: tuple[bytes, ...]

    def to_bytes(self) -> bytes:
        return codec.encode_local([FORMAT, self.key, self.found, self.expiries, self.unminted,
                                   self.brands])

    @classmethod
    def from_bytes(cls, raw: bytes) -> ItemScan:
        """Raises `ValueError` (or `DecodeError`) unless `raw` is a well-formed scan. Its
        `key` comes back as stored (tuples for arrays): a key of any other shape than the
        one verification works out never equals it, so is never used."""
        fmt, key, found, expiries, unminted, brands = _decode(raw, 6)
        if fmt != FORMAT or type(key) is not tuple or not _bytes_tuple(brands) or not (
                type(found) is type(expiries) is type(unminted) is tuple):
            raise ValueError("not an item scan")
        for f in found:
            if type(f) is not tuple or len(f) != 2 or type(f[0]) is not str \
                    or not _bytes_tuple(f[1]):
                raise ValueError("not an item scan: a finding is malformed")
        for e in expiries:
            if type(e) is not tuple or len(e) != 3 or type(e[0]) is not bytes \
                    or type(e[1]) is not int or type(e[2]) is not int or e[2] < 1:
                raise ValueError("not an item scan: an expiry run is malformed")
        for u in unminted:
            if type(u) is not tuple or len(u) != 2 or type(u[0]) is not bytes \
                    or not _bytes_tuple(u[1]):
                raise ValueError("not an item scan: an unminted item is malformed")
        return cls(key, found, expiries, unminted, brands)


def _decode(raw: bytes, n: int) -> tuple[Any, ...]:
    value = codec.decode_local(raw, use_list=False)
    if type(value) is not tuple or len(value) != n:
        raise ValueError(f"not an array of {n}")
    return value  # (its shape is checked by the caller; `sealchain check` compares bytes)


def _bytes_tuple(value: Any) -> bool:
    return type(value) is tuple and all(type(v) is bytes for v in value)


def fits(kept: tuple[Any, ...], key: tuple[Any, ...]) -> bool:
    """Whether a scan kept for inputs `kept` holds for inputs `key`. The last input is
    the container's unpack times, which only the items also packed in another container
    read (`node.verify._packed_elsewhere`): a scan with none of those keeps None there,
    and holds whenever the container is unpacked."""
    return kept == key or (kept[-1:] == (None,) and len(kept) == len(key)
                           and kept[:-1] == key[:-1])


def scan_key(number: str) -> bytes:
    """The database key of container `number`'s item scan."""
    return TABLE + _SCAN + number.encode()


def manifest_key(root: bytes, chunks: tuple[bytes, ...]) -> bytes:
    """The database key of a manifest check (root and chunk ids have fixed lengths)."""
    return TABLE + _MANIFEST + root + b"".join(chunks)


def describe(key: bytes) -> str:
    """A stored finding's key, for people (`sealchain check`)."""
    kind, rest = key[1:2], key[2:]
    if kind == _SCAN:
        return f"item scan of container {rest.decode(errors='replace')}"
    if kind == _MANIFEST:
        return f"manifest check of root {rest[:32].hex()[:16]} ({len(rest[32:]) // 32} chunks)"
    return f"kept finding {key!r}"


class ItemMemo:
    """Manifest checks and item scans: bounded in memory, the rest read through `read`."""

    def __init__(self, manifests: int = MANIFESTS, scans: int = SCANS, *,
                 read: Read | None = None, corrupt: Corrupt | None = None) -> None:
        # (root, chunks) -> (check, whether the database holds it too)
        self._manifests: OrderedDict[tuple[bytes, tuple[bytes, ...]],
                                     tuple[ManifestCheck, bool]] = OrderedDict()
        self._scans: OrderedDict[str, ItemScan] = OrderedDict()
        self._limits = (manifests, scans)
        self._read = read
        self._corrupt = corrupt
        self._reported: set[bytes] = set()

    def manifest(self, root: bytes, chunks: tuple[bytes, ...]) -> ManifestCheck | None:
        got = self._manifests.get((root, chunks))
        if got is not None:
            self._manifests.move_to_end((root, chunks))
            return got[0]
        check = self._load(manifest_key(root, chunks), ManifestCheck.from_bytes)
        if check is not None:
            _put(self._manifests, (root, chunks), (check, True), self._limits[0])
        return check

    def manifest_stored(self, root: bytes, chunks: tuple[bytes, ...]) -> bool:
        got = self._manifests.get((root, chunks))
        return got is not None and got[1]

    def keep_manifest(self, root: bytes, chunks: tuple[bytes, ...], check: ManifestCheck,
                      *, stored: bool = False) -> None:
        stored = stored or self.manifest_stored(root, chunks)
        _put(self._manifests, (root, chunks), (check, stored), self._limits[0])

    def scan(self, number: str, key: tuple[Any, ...]) -> ItemScan | None:
        """Container `number`'s scan, if one is kept and was worked out for `key`."""
        got = self._scans.get(number)
        if got is None:
            got = self._load(scan_key(number), ItemScan.from_bytes)
            if got is None:
                return None
            _put(self._scans, number, got, self._limits[1])
        if not fits(got.key, key):
            return None
        self._scans.move_to_end(number)
        return got

    def keep_scan(self, number: str, scan: ItemScan) -> None:
        """Keep a scan in memory (a batch keeps it in the database too: `Staged`)."""
        _put(self._scans, number, scan, self._limits[1])

    def forget(self, number: str) -> None:
        """Container `number`'s item findings may have changed: its scan is gone from
        memory (a batch deletes it from the database too: `Staged.forget`)."""
        self._scans.pop(number, None)

    def __len__(self) -> int:
        return len(self._scans)

    def staged(self, ws: Writes) -> Staged:
        return Staged(self, ws)

    def _load(self, key: bytes, decode: Callable[[bytes], Any]) -> Any:
        raw = self._read(key) if self._read is not None else None
        if raw is None:
            return None
        try:
            return decode(raw)
        except (DecodeError, LocalProtocolError, ValueError, TypeError) as exc:
            if key not in self._reported:  # once: it stays until a batch replaces it
                self._reported.add(key)
                if self._corrupt is not None:
                    self._corrupt(key, f"{type(exc).__name__}: {exc}")
            return None


class Staged:
    """The memo as a batch not yet written sees it.

    It finds a kept scan unless the batch forgot it (a batch works out again the findings
    whose inputs it may change), forgets at once, and keeps its scans aside until
    `settle` (called once the batch is durable).
    Everything it keeps it also puts, and everything it forgets it deletes, in the
    batch's `ws`: the database's findings change in the same atomic write as the
    records. Manifest checks join the memory at once: they hold whatever the log.
    """

    def __init__(self, memo: ItemMemo, ws: Writes) -> None:
        self.memo = memo
        self.ws = ws
        self._scans: dict[str, ItemScan] = {}
        self._forgot: set[str] = set()  # the memo still reads the database's copy: unused
        self._manifests: dict[tuple[bytes, tuple[bytes, ...]], ManifestCheck] = {}

    def manifest(self, root: bytes, chunks: tuple[bytes, ...]) -> ManifestCheck | None:
        got = self.memo.manifest(root, chunks)
        if got is not None and not self.memo.manifest_stored(root, chunks):
            self._store_manifest(root, chunks, got)  # worked out outside a batch
        return got

    def keep_manifest(self, root: bytes, chunks: tuple[bytes, ...], check: ManifestCheck
                      ) -> None:
        self.memo.keep_manifest(root, chunks, check)
        self._store_manifest(root, chunks, check)

    def _store_manifest(self, root: bytes, chunks: tuple[bytes, ...], check: ManifestCheck
                        ) -> None:
        if (root, chunks) not in self._manifests:
            self._manifests[(root, chunks)] = check
            self.ws.put(manifest_key(root, chunks), check.to_bytes())

    def scan(self, number: str, key: tuple[Any, ...]) -> ItemScan | None:
        got = self._scans.get(number)
        if got is not None:
            return got if fits(got.key, key) else None
        return None if number in self._forgot else self.memo.scan(number, key)

    def keep_scan(self, number: str, scan: ItemScan) -> None:
        self._scans[number] = scan
        self.ws.put(scan_key(number), scan.to_bytes())

    def forget(self, number: str) -> None:
        self.memo.forget(number)
        self._scans.pop(number, None)
        self._forgot.add(number)
        self.ws.delete(scan_key(number))

    def settle(self) -> None:
        """The batch is written: its scans join the memo, its manifest checks are stored."""
        for number, scan in self._scans.items():
            self.memo.keep_scan(number, scan)
        for (root, chunks), check in self._manifests.items():
            self.memo.keep_manifest(root, chunks, check, stored=True)
        self._scans.clear()
        self._forgot.clear()
        self._manifests.clear()


def _put(table: OrderedDict[Any, Any], key: Any, value: Any, limit: int) -> None:
    table[key] = value
    table.move_to_end(key)
    while len(table) > limit:
        table.popitem(last=False)


Memo = ItemMemo | Staged
