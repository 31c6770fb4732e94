"""The node's LevelDB database (plyvel): layout, reads, and atomic writes.

One database per node. Every ingest is one `WriteSet` written as one synced
LevelDB write batch: records, feed entries, heads, indexes, facts and alerts
land together or not at all, so a node killed at any instant reopens
consistent.

Key layout (first byte is the table):

    M name                 -> meta (schema version, network id, counters)
    R id                   -> record wire bytes
    F author seq(8)        -> record id              (author's feed)
    H author               -> seq(8) id              (feed head)
    O objkey 0x00 id       -> ""                     (records concerning an object)
    S objkey               -> facts                  (derived state, see node.facts)
    E author seq(8) a b    -> equivocation proof bytes
    A cursor(8)            -> alert entry            (alerts in arrival order)
    K alert key            -> cursor(8)
    T type 0x00 id         -> ""                     (records by type, e.g. credentials)
    V c number             -> item scan              (kept verification findings,
    V m root chunk-ids     -> manifest check          see node.item_memo)

The `V` table is derived too: a batch puts and deletes its entries in the same
write as the records that made them (`node.item_memo.Staged`); `sealchain check`
compares them with findings worked out afresh, `sealchain rebuild` rewrites them.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final

import plyvel

from node.errors import StorageError
from node.item_memo import TABLE as FINDINGS
from protocol import codec
from protocol.feed import Head

# 2: container `times` facts and index-only object entries (lot mints, seal numbers,
# parties); derived tables written by schema 1 lack them, so `sealchain rebuild` rewrites
# them from the records (which are unchanged) before a node runs on the database.
# 3: kept verification findings (table V). A schema-2 sealchain would not delete the
# findings its batches make stale, so it must refuse these databases (it does: a newer
# schema); a schema-2 database is rebuilt, which writes the findings from the records.
# 4: the index of hand-over offers by the custody head they name (`facts.head_key`),
# which tells the ledger whose findings a record arriving after those offers changes.
# 5: a kept item scan that read no other container's unpacks keys itself without its own
# (`item_memo.fits`): a schema-4 database keeps scans keyed the old way, which `check`
# would find differ from the ones the records imply.
SCHEMA_VERSION: Final = 5
SCHEMA: Final = "schema"  # meta name of the schema version
# Meta flag set by `sealchain rebuild` in its first batch and cleared in its last: while
# set, the derived tables are half rewritten, and a node must not run on them.
REBUILDING: Final = "rebuilding"
_U64 = struct.Struct(">Q")


def u64(n: int) -> bytes:
    return _U64.pack(n)


def from_u64(b: bytes) -> int:
    return int(_U64.unpack(b)[0])


def _head(author: bytes, raw: bytes) -> Head:
    if len(raw) != 40:  # seq(8) + id(32)
        raise StorageError(f"feed head of {author.hex()[:16]} is corrupt ({len(raw)} bytes):"
                           " run `sealchain rebuild`")
    return Head(from_u64(raw[:8]), raw[8:])


# LevelDB's memtable: puts collect here before they go to a table file. Ingest puts the
# same keys again and again (an object's facts after every batch that changes it), and
# at LevelDB's default 4 MiB they were flushed so often that compacting the copies away
# took most of a second core. Measured 2026-12-02, `Ledger.submit` of 100,000 records,
# alternating runs: 9.5 - 9.7 s of compaction CPU at 4 MiB, 3.7 - 4.4 s at 16 MiB (0.5 s
# at 64 MiB, where nearly all of it stays in the memtable). Larger is not free: memory
# (up to twice this: one memtable flushed while the next fills), and the RPC's batch
# writes measured ~8 % slower at 32 MiB than at 4 or 16 (a larger skip list to insert
# into). `[limits] write_buffer_mb` sets it for a node.
WRITE_BUFFER: Final = 16 << 20

# LevelDB's table cache: the table files it keeps open. It maps each one it opens into
# memory (up to 1,000 maps: a limit plyvel cannot change), and every page it reads
# through a map counts in the node's resident set until the file is closed. At LevelDB's
# default of 1,000 that was nearly the whole database read so far: measured 2026-12-02,
# 1,000,000 records by contiguous feed ranges (`bench/ingest.py`, 731 MB of tables):
# 465 MB of mapped table pages at the peak, 119 MB at 100, at the same ingest rate
# (5,476 and 5,552 records/s). LevelDB keeps 10 of them for itself and clamps the value
# to 74..50,000. `[limits] open_files` sets it for a node.
OPEN_FILES: Final = 100

# LevelDB compresses each table block with snappy by default; we do not. Records are
# mostly keys, signatures and ids, and every block is compressed again at every
# compaction and decompressed at every read: measured 2026-12-02, range ingest of
# 100,000 records (`bench/ingest.py`'s workload): 17.9 s of the process's CPU with
# snappy, 13.2 without (the ingesting thread's work is the same; the rest is
# LevelDB's compaction thread, on the core the signature helper and the other
# nodes need), for 77 MB of tables against 95 MB. `[limits] compress` turns it on
# for a node short of disk (a database holds blocks of both kinds, so it can change).
COMPRESS: Final = False


class WriteSet:
    """Puts and deletes gathered for one atomic batch (last write to a key wins)."""

    __slots__ = ("ops",)

    def __init__(self) -> None:
        self.ops: dict[bytes, bytes | None] = {}

    def put(self, key: bytes, value: bytes) -> None:
        self.ops[key] = value

    def delete(self, key: bytes) -> None:
        self.ops[key] = None

    def __len__(self) -> int:
        return len(self.ops)


class Store:
    """A node's database. Open with `Store.open(path)`; close with `close()`."""

    def __init__(self, db: Any, path: Path) -> None:
        self._db = db
        self.path = path
        # `last_alert_cursor`, kept until a write touches an alert (every write comes
        # through `write`): the iterator it opened for every batch showed as ~2 % of the
        # event loop's time under one-record RPC writes (py-spy; LevelDB drops the GIL).
        self._last_alert: int | None = None

    @classmethod
    def open(cls, path: Path | str, *, create: bool = True, repair: bool = False,
             write_buffer: int = WRITE_BUFFER, open_files: int = OPEN_FILES,
             compress: bool = COMPRESS) -> Store:
        """Open (or create) the database. A database an interrupted `sealchain rebuild`
        left half rewritten, or one an older sealchain wrote (an older schema), is refused
        unless `repair` (for `check` and `rebuild`, which writes the current schema)."""
        path = Path(path)
        try:
            # Bloom filters: ingest looks up many keys that do not exist yet (new
            # objects' facts), and a filter answers those without reading a block.
            db = plyvel.DB(str(path), create_if_missing=create, bloom_filter_bits=10,
                           write_buffer_size=write_buffer, max_open_files=open_files,
                           compression="snappy" if compress else None)
        except plyvel.IOError as exc:
            raise StorageError(f"cannot open database {path}: {exc}") from exc
        except plyvel.Error as exc:
            raise StorageError(f"database {path} is unusable: {exc}") from exc
        store = cls(db, path)
        version = store.meta(SCHEMA)
        if version is None:
            if store._has_data():
                db.close()
                raise StorageError(f"database {path} has data but no schema version")
            db.put(b"M" + SCHEMA.encode(), codec.encode_local(SCHEMA_VERSION), sync=True)
        elif version > SCHEMA_VERSION:
            db.close()
            raise StorageError(
                f"database {path} was written by a newer sealchain (schema {version},"
                f" this version reads {SCHEMA_VERSION}): upgrade sealchain"
            )
        elif version < SCHEMA_VERSION and not repair:
            db.close()
            data = path.parent if path.name == "db" else "DIR"  # DataDir keeps it in DIR/db
            raise StorageError(
                f"database {path} was written by an older sealchain (schema {version}, this"
                f" version reads {SCHEMA_VERSION}): its derived state must be rebuilt from its"
                f" records: run `sealchain rebuild --data {data}`"
            )
        if not repair and store.meta(REBUILDING) is not None:
            db.close()
            raise StorageError(f"database {path} was left half rebuilt (`sealchain rebuild` was"
                               " interrupted): run `sealchain rebuild` again")
        return store

    def close(self) -> None:
        if not self._db.closed:
            self._db.close()

    def _has_data(self) -> bool:
        with self._db.iterator(include_value=False) as it:
            return any(True for _ in it)

    # -- writes ------------------------------------------------------------------------

    def write(self, ws: WriteSet, *, sync: bool = True) -> None:
        """Write everything in `ws` as one atomic batch (synced: durable on return)."""
        try:
            with self._db.write_batch(transaction=True, sync=sync) as wb:
                put, delete = wb.put, wb.delete
                for k, v in ws.ops.items():
                    if v is None:
                        delete(k)
                    else:
                        put(k, v)
        except plyvel.Error as exc:
            self._last_alert = None
            raise StorageError(f"write to {self.path} failed: {exc}") from exc
        if self._last_alert is not None and any(k[:1] == b"A" for k in ws.ops):
            self._last_alert = None

    # -- meta --------------------------------------------------------------------------

    def meta(self, name: str) -> Any:
        raw = self._db.get(b"M" + name.encode())
        return None if raw is None else codec.decode_local(raw)

    @staticmethod
    def meta_put(ws: WriteSet, name: str, value: Any) -> None:
        ws.put(b"M" + name.encode(), codec.encode_local(value))

    def iter_meta(self, prefix: str) -> Iterator[tuple[str, Any]]:
        """(name, value) of every meta entry whose name starts with `prefix`."""
        for k, v in self._db.iterator(prefix=b"M" + prefix.encode()):
            yield k[1:].decode(), codec.decode_local(v)

    def iter_keys(self, table: bytes) -> Iterator[bytes]:
        """Every key of one table (its first byte), with that byte: for `sealchain rebuild`."""
        with self._db.iterator(prefix=table, include_value=False) as it:
            yield from it

    def iter_table(self, table: bytes) -> Iterator[tuple[bytes, bytes]]:
        """Every (key, value) of one table, keys with their first byte: for `sealchain check`."""
        with self._db.iterator(prefix=table) as it:
            yield from it

    # -- records and feeds -------------------------------------------------------------

    def record(self, rid: bytes) -> bytes | None:
        raw: bytes | None = self._db.get(b"R" + rid)
        return raw

    def has_record(self, rid: bytes) -> bool:
        return self._db.get(b"R" + rid) is not None

    def feed_id(self, author: bytes, seq: int) -> bytes | None:
        raw: bytes | None = self._db.get(b"F" + author + u64(seq))
        return raw

    def head(self, author: bytes) -> Head | None:
        raw = self._db.get(b"H" + author)
        return None if raw is None else _head(author, raw)

    def heads(self) -> Iterator[tuple[bytes, Head]]:
        for k, v in self._db.iterator(prefix=b"H"):
            yield k[1:], _head(k[1:], v)

    def feed(self, author: bytes, from_seq: int, limit: int) -> list[bytes]:
        """Up to `limit` record wires of `author` from `from_seq` on, in seq order."""
        out: list[bytes] = []
        start = b"F" + author + u64(from_seq)
        stop = b"F" + author + b"\xff" * 9
        for _, rid in self._db.iterator(start=start, stop=stop):
            raw = self._db.get(b"R" + rid)
            if raw is None:
                raise StorageError(f"feed entry without record {rid.hex()}")
            out.append(raw)
            if len(out) >= limit:
                break
        return out

    def iter_records(self) -> Iterator[tuple[bytes, bytes]]:
        for k, v in self._db.iterator(prefix=b"R"):
            yield k[1:], v

    def iter_feed_entries(self) -> Iterator[tuple[bytes, int, bytes]]:
        for k, v in self._db.iterator(prefix=b"F"):
            if len(k) != 41:  # author(32) + seq(8)
                raise StorageError(f"feed entry key {k.hex()} is corrupt: run `sealchain rebuild`")
            yield k[1:33], from_u64(k[33:41]), v

    # -- kept verification findings -----------------------------------------------------

    def finding(self, key: bytes) -> bytes | None:
        """The stored bytes of a kept finding (`node.item_memo`: its key starts with V)."""
        if key[:1] != FINDINGS:
            raise StorageError(f"{key[:1]!r} is not the findings table")
        raw: bytes | None = self._db.get(key)
        return raw

    # -- objects -----------------------------------------------------------------------

    def facts_raw(self, objkey: bytes) -> bytes | None:
        raw: bytes | None = self._db.get(b"S" + objkey)
        return raw

    def iter_facts(self, kind: bytes = b"") -> Iterator[tuple[bytes, bytes]]:
        """(object key, facts) of every object, or of one kind (its key's first byte)."""
        for k, v in self._db.iterator(prefix=b"S" + kind):
            yield k[1:], v

    def object_records(self, objkey: bytes) -> list[bytes]:
        """Ids of the records concerning one object."""
        prefix = b"O" + objkey + b"\x00"
        return [k[len(prefix):] for k in self._db.iterator(prefix=prefix, include_value=False)]

    def object_keys(self, prefix: bytes) -> list[bytes]:
        """The object keys starting with `prefix` that index a record, each once."""
        with self.object_keys_lookup() as keys:
            return keys(prefix)

    @contextmanager
    def object_keys_lookup(self) -> Iterator[Callable[[bytes], list[bytes]]]:
        """`object_keys` for many prefixes in a row, through one iterator that seeks to
        each (setting up an iterator for each costs more than the lookup)."""
        it = self._db.iterator(include_value=False)
        try:
            def keys(prefix: bytes) -> list[bytes]:
                start = b"O" + prefix
                it.seek(start)
                found = []
                for k in it:
                    if not k.startswith(start):
                        break
                    found.append(k[1:-33])  # less b"\x00" + the record id
                return list(dict.fromkeys(found))

            yield keys
        finally:
            it.close()

    def iter_object_index(self) -> Iterator[bytes]:
        for k in self._db.iterator(prefix=b"O", include_value=False):
            yield k[1:]

    def by_type(self, type_name: str) -> list[bytes]:
        prefix = b"T" + type_name.encode() + b"\x00"
        return [k[len(prefix):] for k in self._db.iterator(prefix=prefix, include_value=False)]

    # -- forks and alerts --------------------------------------------------------------

    def proofs(self, author: bytes | None = None) -> Iterator[bytes]:
        prefix = b"E" + (author or b"")
        for _, v in self._db.iterator(prefix=prefix):
            yield v

    def alert_cursor(self, key: bytes) -> int | None:
        raw = self._db.get(b"K" + key)
        return None if raw is None else from_u64(raw)

    def alerts(self, since: int = 0, limit: int = 100) -> list[tuple[int, dict[str, Any]]]:
        """Alert entries with cursor > `since`, oldest first."""
        out = []
        for k, v in self._db.iterator(start=b"A" + u64(since + 1), stop=b"B"):
            out.append((from_u64(k[1:]), codec.decode_local(v)))
            if len(out) >= limit:
                break
        return out

    def iter_alerts(self) -> Iterator[tuple[int, dict[str, Any]]]:
        """Every alert entry, oldest first."""
        for k, v in self._db.iterator(prefix=b"A"):
            yield from_u64(k[1:]), codec.decode_local(v)

    def last_alert_cursor(self) -> int:
        if self._last_alert is None:
            self._last_alert = 0
            with self._db.iterator(prefix=b"A", reverse=True, include_value=False) as it:
                for k in it:
                    self._last_alert = from_u64(k[1:])
                    break
        return self._last_alert
