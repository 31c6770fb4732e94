"""`check` and `rebuild`: the database against what its records alone imply.

`check()` re-verifies every record (signature, canonical form, feed links),
re-derives in memory the credential set, the forks, every object's facts and
index entries and the feed heads from the records and equivocation proofs
alone, and lists every difference with what is stored. `rebuild()` rewrites
the derived tables (heads, object index, type index, facts) from the records,
in bounded batches; alert history is kept.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from crypto.credentials import CredentialSet
from crypto.errors import Error
from node import facts as F
from node.ledger import _CREDENTIAL_TYPES, _TYPE_INDEXED
from node.rules import evaluate
from node.store import Store, WriteSet, u64
from protocol.authz import apply_statement, authorise
from protocol.envelope import Record
from protocol.errors import RoleError
from protocol.feed import EquivocationProof, Head
from protocol.genesis import Genesis

Progress = Callable[[str, int], None]


@dataclass(frozen=True, slots=True)
class Derived:
    records: int
    heads: dict[bytes, Head]
    facts: dict[bytes, F.Facts]
    objects: set[bytes]  # objkey + 0x00 + id
    types: set[bytes]  # type + 0x00 + id
    problems: list[str]


def _records(store: Store, progress: Progress | None, problems: list[str]) -> Iterator[Record]:
    n = 0
    for rid, raw in store.iter_records():
        n += 1
        if progress and n % 10_000 == 0:
            progress("records verified", n)
        try:
            r = Record.from_bytes(raw)
        except Error as exc:
            problems.append(f"record {rid.hex()}: {exc}")
            continue
        if r.id != rid:
            problems.append(f"record stored under {rid.hex()} has id {r.id.hex()}")
            continue
        yield r


def derive(store: Store, genesis: Genesis, progress: Progress | None = None) -> Derived:
    problems: list[str] = []
    records = list(_records(store, progress, problems))
    by_author: dict[bytes, list[Record]] = defaultdict(list)
    creds = CredentialSet(genesis.authorities)
    for r in records:
        by_author[r.author].append(r)
        if r.type in _CREDENTIAL_TYPES:
            apply_statement(creds, r)
    heads: dict[bytes, Head] = {}
    for author, rs in by_author.items():
        rs.sort(key=lambda r: r.seq)
        prev: Record | None = None
        for r in rs:
            ok = (r.seq == 1 and r.prev is None) if prev is None else (
                r.seq == prev.seq + 1 and r.prev == prev.id)
            if not ok:
                problems.append(f"feed {author.hex()[:16]}: seq {r.seq} does not follow its predecessor")
            prev = r
        heads[author] = Head(rs[-1].seq, rs[-1].id)
    forked: dict[bytes, int] = {}
    fork_facts: list[F.Fact] = []
    for raw in store.proofs():
        try:
            p = EquivocationProof.from_bytes(raw)
        except Error as exc:
            problems.append(f"equivocation proof does not verify: {exc}")
            continue
        forked[p.author] = min(forked.get(p.author, p.seq), p.seq)
        ids = sorted({p.first.id, p.second.id}) if p.first.seq == p.second.seq \
            else sorted({p.first.id, p.second.prev or b""})
        fork_facts += [F.Fact(F.author_key(p.author), "fork", (p.seq, i)) for i in ids]
    facts: dict[bytes, F.Facts] = {}
    objects: set[bytes] = set()
    types: set[bytes] = set()
    for r in records:
        if r.type in _TYPE_INDEXED:
            types.add(r.type.encode() + b"\x00" + r.id)
        excluded = r.author in forked and r.seq >= forked[r.author]
        if not excluded:
            try:
                authorise(creds, r)
            except RoleError:
                excluded = True
        for fact in F.contributions(r, genesis.params):
            objects.add(fact.key + b"\x00" + r.id)
            if not excluded:
                F.join(facts.setdefault(fact.key, {}), fact)
    for fact in fork_facts:  # the earliest dispute of each author only
        if fact.value[0] == forked[fact.key[1:]]:
            F.join(facts.setdefault(fact.key, {}), fact)
    return Derived(len(records), heads, facts, objects, types, problems)


def check(store: Store, genesis: Genesis, progress: Progress | None = None) -> list[str]:
    """Every difference between the stored derived tables and the records; [] when all agree."""
    d = derive(store, genesis, progress)
    problems = list(d.problems)
    stored_heads = dict(store.heads())
    for author in sorted(set(stored_heads) | set(d.heads)):
        if stored_heads.get(author) != d.heads.get(author):
            problems.append(f"head of {author.hex()[:16]}: stored {stored_heads.get(author)},"
                            f" records say {d.heads.get(author)}")
    for author, seq, rid in store.iter_feed_entries():
        if store.record(rid) is None:
            problems.append(f"feed entry {author.hex()[:16]}#{seq} names a missing record")
    stored_facts: dict[bytes, F.Facts] = {}
    unreadable: set[bytes] = set()
    for k, v in store.iter_facts():
        try:
            stored_facts[k] = F.decode_facts(v)
        except (Error, KeyError, TypeError, ValueError) as exc:  # corrupt: report, go on
            unreadable.add(k)
            problems.append(f"facts of {k!r}: unreadable ({type(exc).__name__}: {exc})")
    for key in sorted((set(stored_facts) | set(d.facts)) - unreadable):
        a, b = stored_facts.get(key, {}), d.facts.get(key, {})
        if {k: v for k, v in a.items() if v} != {k: v for k, v in b.items() if v}:
            problems.append(f"facts of {key!r}: stored and derived differ")
    stored_objects = set(store.iter_object_index())
    for missing in sorted(d.objects - stored_objects)[:20]:
        problems.append(f"object index lacks {missing!r}")
    for extra in sorted(stored_objects - d.objects)[:20]:
        problems.append(f"object index has stray {extra!r}")
    stored_types = {t.encode() + b"\x00" + rid for t in _TYPE_INDEXED for rid in store.by_type(t)}
    if stored_types != d.types:
        problems.append(f"type index differs ({len(stored_types ^ d.types)} entries)")
    for key, f in d.facts.items():
        for intent in evaluate(key, f):
            if store.alert_cursor(intent.key) is None:
                problems.append(f"alert {intent.rule} on {intent.subject} was never raised")
    return problems


def rebuild(store: Store, genesis: Genesis, progress: Progress | None = None) -> int:
    """Rewrite heads, indexes and facts from the records. Returns the number of records."""
    d = derive(store, genesis, progress)
    ws = WriteSet()
    for prefix in (b"H", b"O", b"T", b"S"):
        for k in list(_keys(store, prefix)):
            ws.delete(k)
    store.write(ws)
    ws = WriteSet()

    def flush() -> None:
        nonlocal ws
        if len(ws) >= 50_000:
            store.write(ws)
            ws = WriteSet()

    for author, h in d.heads.items():
        ws.put(b"H" + author, u64(h.seq) + h.id)
    for entry in d.objects:
        ws.put(b"O" + entry, b"")
        flush()
    for entry in d.types:
        ws.put(b"T" + entry, b"")
    for key, f in d.facts.items():
        ws.put(b"S" + key, F.encode_facts(f))
        flush()
    store.write(ws)
    return d.records


def _keys(store: Store, prefix: bytes) -> Iterator[bytes]:
    with store._db.iterator(prefix=prefix, include_value=False) as it:
        yield from it
