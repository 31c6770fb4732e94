"""`check` and `rebuild`: the database against what its records alone imply.

`derive()` reads every stored record and authenticates each author's feed the
way ingest does (`protocol.feed.verify_range`: hash links from seq 1 up, and
the head's signature, which commits to every earlier record; a record whose
own signature is bad but which a good signature later in its feed covers is
authentic, as sync stores it). From the authentic records and the stored
equivocation proofs it re-derives in memory the credential set, the forks,
every object's facts and index entries, the feed entries and heads, the type
index, each author's first record written without the right, and the alerts
the records call for.

`check()` lists every difference between that and what is stored, one line
each, none left out. The kept verification findings (table `V`, `node.item_memo`)
are worked out afresh too, for every container: a stored one that differs from its
fresh one, or that no container calls for, is a problem (an absent one is not: it is
worked out on demand). `rebuild()` rewrites the derived tables to match, in
bounded batches. Its first batch writes the right heads and sets the meta flag
`store.REBUILDING`; its last clears the flag. While the flag is set
`Store.open` refuses the database (a node started on half-rebuilt tables could
fork its own feed or miss state), so an interrupted rebuild is only ever
finished by running `sealchain rebuild` again. The last batch also writes the current
schema version, so a database an older sealchain wrote (which `Store.open` refuses
outside `check` and `rebuild`) is fit to run on once its rebuild is done.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from crypto.credentials import CredentialSet
from crypto.errors import Error
from node import derived as derived_alerts
from node import facts as F
from node import rules
from node.item_memo import ItemMemo, describe
from node.ledger import _CREDENTIAL_TYPES, _TYPE_INDEXED
from node.ledger_alerts import _UNAUTHORISED
from node.store import REBUILDING, SCHEMA, SCHEMA_VERSION, Store, WriteSet, u64
from node.verify import manifest_check
from protocol import codec
from protocol.authz import apply_statement, authorise
from protocol.envelope import Record
from protocol.errors import RoleError
from protocol.feed import EquivocationProof, Head, verify_range
from protocol.genesis import Genesis

Progress = Callable[[str, int], None]
BATCH = 50_000  # keys per rebuild write batch
# The alerts an object's own facts call for (`rules.evaluate`) and `unauthorised_author`:
# the ones derived here, so a live one the records do not call for is stale. Findings
# over several objects (`node.verify`, the timers) are judged elsewhere, not here.
_DERIVED_RULES = frozenset({
    "feed_fork", "double_handover", "cloned_serial", "custody_break", "manifest_conflict",
    "seal_mismatch", "seal_breach", "temperature_excursion", "unauthorised_author",
    *derived_alerts.CODES.values(),  # the findings across objects (`node.derived`)
})


@dataclass(frozen=True, slots=True)
class Derived:
    """The derived tables as the stored records alone imply them (keys with their table byte)."""

    records: int  # authentic records
    heads: dict[bytes, Head]
    tables: dict[bytes, dict[bytes, bytes]]  # table (b"H" … b"S", b"V") -> key -> value
    facts: dict[bytes, F.Facts]
    unauthorised: dict[str, list[Any]]  # meta name -> [record wire, rule]
    alerts: dict[bytes, dict[str, Any]]  # key -> alert entry (no cursor) the records call for
    signed: dict[bytes, dict[str, Any]]  # key -> entry of a signed alert record (logged once)
    problems: list[str] = field(default_factory=list)


def _short(b: bytes) -> str:
    return b.hex()[:16]


def _records(store: Store, network: bytes, progress: Progress | None,
             problems: list[str]) -> Iterator[Record]:
    n = 0
    for rid, raw in store.iter_records():
        n += 1
        if progress and n % 10_000 == 0:
            progress("records read", n)
        try:  # canonical form and schema here; signatures per feed, in `_authentic`
            r = Record.from_bytes(raw, verify=False)
        except Error as exc:
            problems.append(f"record {rid.hex()}: {exc}")
            continue
        if r.id != rid:
            problems.append(f"record stored under {rid.hex()} has id {r.id.hex()}")
            continue
        if r.network != network:
            problems.append(f"record {rid.hex()} belongs to another network")
            continue
        yield r


def _authentic(author: bytes, rs: list[Record], problems: list[str]) -> list[Record]:
    """The authentic part of one author's stored records, as ingest authenticates a feed.

    The chain linked from seq 1, up to the last record whose own signature holds
    (`verify_range` on that run: it commits to every record before it). Every
    record outside it is reported.
    """
    chain: list[Record] = []
    for r in sorted(rs, key=lambda r: (r.seq, r.id)):
        seq, prev = (chain[-1].seq + 1, chain[-1].id) if chain else (1, None)
        if r.seq == seq and r.prev == prev:
            chain.append(r)
        else:
            problems.append(f"feed {_short(author)}: record {r.id.hex()} at seq {r.seq} does not"
                            f" link to the feed (expected seq {seq} naming"
                            f" {prev.hex() if prev else 'nothing'})")
    end = len(chain)
    while end:
        try:
            verify_range(chain[:end], None)
            break
        except Error:  # the head's signature fails: fall back to the last one that holds
            end -= 1
            problems.append(f"feed {_short(author)}: record {chain[end].id.hex()} at seq"
                            f" {chain[end].seq} is covered by no valid signature")
            while end and not _signed(chain[end - 1]):
                end -= 1
                problems.append(f"feed {_short(author)}: record {chain[end].id.hex()} at seq"
                                f" {chain[end].seq} is covered by no valid signature")
    return chain[:end]


def _signed(r: Record) -> bool:
    try:
        r.verify_signature()
    except Error:
        return False
    return True


def _without_right(creds: CredentialSet, r: Record) -> str | None:
    try:
        authorise(creds, r)
    except RoleError as exc:
        if exc.rule in rules.UNAUTHORISED:
            return exc.rule
    return None


def _entry(intent: rules.Intent) -> dict[str, Any]:
    return {"key": intent.key, "rule": intent.rule, "severity": intent.severity,
            "subject": {"kind": intent.subject[0], "id": intent.subject[1]},
            "reason": intent.reason, "evidence": list(intent.evidence)}


def _signed_entry(r: Record) -> dict[str, Any]:
    body: Any = r.body
    return {"key": body.key, "rule": body.rule, "severity": body.severity,
            "subject": {"kind": body.subject.kind, "id": body.subject.id},
            "reason": body.reason, "evidence": list(body.evidence), "record": r.id,
            "author": r.author}


def derive(store: Store, genesis: Genesis, progress: Progress | None = None) -> Derived:
    problems: list[str] = []
    by_author: dict[bytes, list[Record]] = defaultdict(list)
    for r in _records(store, genesis.network_id, progress, problems):
        by_author[r.author].append(r)
    feeds = {a: _authentic(a, rs, problems) for a, rs in sorted(by_author.items())}
    records = [r for chain in feeds.values() for r in chain]
    creds = CredentialSet(genesis.authorities)
    for r in records:
        if r.type in _CREDENTIAL_TYPES:
            apply_statement(creds, r)

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

    tables: dict[bytes, dict[bytes, bytes]] = {t: {} for t in (b"H", b"F", b"O", b"T", b"S")}
    heads: dict[bytes, Head] = {}
    for author, chain in feeds.items():
        for r in chain:
            tables[b"F"][b"F" + author + u64(r.seq)] = r.id
        if chain:
            heads[author] = Head(chain[-1].seq, chain[-1].id)
            tables[b"H"][b"H" + author] = u64(chain[-1].seq) + chain[-1].id
    facts: dict[bytes, F.Facts] = {}
    for r in records:
        if r.type in _TYPE_INDEXED:
            tables[b"T"][b"T" + r.type.encode() + b"\x00" + r.id] = b""
        excluded = r.author in forked and r.seq >= forked[r.author]
        if not excluded:
            try:
                authorise(creds, r)
            except RoleError:
                excluded = True
        for fact in F.contributions(r, genesis.params):
            tables[b"O"][b"O" + fact.key + b"\x00" + r.id] = b""
            if not excluded:
                f = facts.get(fact.key, {})
                if F.join(f, fact):  # an index-only fact makes no facts entry
                    facts[fact.key] = f
    for fact in fork_facts:  # the earliest dispute of each author only
        if fact.value[0] == forked[fact.key[1:]]:
            F.join(facts.setdefault(fact.key, {}), fact)
    for key, f in facts.items():
        if any(f.values()):
            tables[b"S"][b"S" + key] = F.encode_facts(f)

    # Each author's first record written without the right, stored or refused (a refused
    # one is known only from meta, see `Ledger._unauthorised`): the earliest that still is.
    first: dict[bytes, tuple[Record, str]] = {}
    for author, chain in feeds.items():
        for r in chain:
            rule = _without_right(creds, r)
            if rule is not None:
                first[author] = (r, rule)
                break
    for name, held in store.iter_meta(_UNAUTHORISED):
        try:
            r = Record.from_bytes(held[0], verify=False)
        except (Error, IndexError, TypeError) as exc:
            problems.append(f"meta {name}: unreadable ({type(exc).__name__}: {exc})")
            continue
        if store.has_record(r.id):
            continue  # stored: judged with its feed above
        rule = _without_right(creds, r)
        cur = first.get(r.author)
        if rule is not None and (cur is None or (r.seq, r.id) < (cur[0].seq, cur[0].id)):
            first[r.author] = (r, rule)
    unauthorised = {_UNAUTHORISED + a.hex(): [r.wire, rule] for a, (r, rule) in first.items()}

    alerts: dict[bytes, dict[str, Any]] = {}
    for key, f in facts.items():
        for intent in rules.evaluate(key, f):
            alerts[intent.key] = _entry(intent)
    tables[b"V"] = _derived_alerts(alerts, facts, records, tables[b"O"], creds, forked,
                                   genesis)
    for author, (r, rule) in first.items():
        unauth = rules.unauthorised_author(r.id, author, r.type, rule)
        if unauth is not None:
            alerts[unauth.key] = _entry(unauth)
    signed = {e["key"]: e for e in (_signed_entry(r) for r in records if r.type == "alert")}
    return Derived(len(records), heads, tables, facts, unauthorised, alerts, signed, problems)


_TABLES = {b"H": "feed head", b"F": "feed entry", b"O": "object index entry",
           b"T": "type index entry", b"S": "facts", b"V": "kept finding"}


def _name(key: bytes) -> str:
    table, rest = key[:1], key[1:]
    if table == b"H":
        return f"head of {_short(rest)}"
    if table == b"F":
        return f"feed entry {_short(rest[:32])}#{int.from_bytes(rest[32:], 'big')}"
    if table == b"V":
        return describe(key)
    return f"{_TABLES[table]} {rest!r}"


def _show(table: bytes, value: bytes) -> str:
    if table == b"H":
        if len(value) != 40:
            return f"a corrupt value ({len(value)} bytes)"
        return f"seq {int.from_bytes(value[:8], 'big')} id {value[8:].hex()}"
    if table == b"F":
        return value.hex()
    return f"{len(value)} bytes"


def check(store: Store, genesis: Genesis, progress: Progress | None = None) -> list[str]:
    """Every difference between the stored derived tables and the records; [] when all agree."""
    problems: list[str] = []
    if store.meta(REBUILDING) is not None:
        problems.append("a rebuild was interrupted: run `sealchain rebuild`")
    schema = store.meta(SCHEMA)
    if schema != SCHEMA_VERSION:
        problems.append(f"schema version {schema}, this sealchain writes {SCHEMA_VERSION}:"
                        " run `sealchain rebuild`")
    d = derive(store, genesis, progress)
    problems += d.problems
    for table, derived in d.tables.items():
        stored = dict(store.iter_table(table))
        for key in sorted(stored.keys() | derived.keys()):
            have, want = stored.get(key), derived.get(key)
            if have == want:
                continue
            if want is None and table == b"V" and key[1:2] == b"m":
                problems.append(_manifest_difference(store, key, have))  # an earlier manifest
            elif want is None:
                problems.append(f"{_name(key)}: stored, but no record implies it")
            elif have is None and table == b"V":
                continue  # not kept (yet): worked out when a verification needs it
            elif have is None:
                problems.append(f"{_name(key)}: missing ({_show(table, want)} by the records)")
            elif table == b"S":
                problems.append(_facts_difference(key, have, d.facts[key[1:]]))
            elif table == b"V":
                problems.append(f"{_name(key)}: stored, but the records imply another")
            else:
                problems.append(f"{_name(key)}: stored {_show(table, have)},"
                                f" records say {_show(table, want)}")
    problems = [p for p in problems if p]
    stored_meta = dict(store.iter_meta(_UNAUTHORISED))
    for name in sorted(stored_meta.keys() | d.unauthorised.keys()):
        if stored_meta.get(name) != d.unauthorised.get(name):
            problems.append(f"meta {name}: stored and derived first unauthorised record differ")
    problems += _alert_differences(store, d)
    return problems


def _manifest_difference(store: Store, key: bytes, have: bytes | None) -> str:
    """A stored manifest check no container's manifest in force names: it holds for good,
    so it must be what its chunk records add up to."""
    rest = key[2:]
    ids = [rest[i:i + 32] for i in range(32, len(rest), 32)]
    if len(rest) % 32 or not ids:
        return f"{describe(key)}: a malformed key"
    chunks = []
    for rid in ids:
        raw = store.record(rid)
        r = Record.from_bytes(raw, verify=False) if raw is not None else None
        if r is None or r.type != "container.pack":
            return f"{describe(key)}: names {rid.hex()}, which is no stored chunk record"
        chunks.append(r)
    if manifest_check(rest[:32], chunks)[0].to_bytes() != have:
        return f"{describe(key)}: stored, but its chunk records add up to another"
    return ""


def _facts_difference(key: bytes, have: bytes, want: F.Facts) -> str:
    try:
        stored = F.decode_facts(have)
    except (Error, KeyError, TypeError, ValueError) as exc:  # corrupt: report, go on
        return f"facts of {key[1:]!r}: unreadable ({type(exc).__name__}: {exc})"
    if {k: v for k, v in stored.items() if v} == {k: v for k, v in want.items() if v}:
        return ""  # the same facts in another encoding
    return f"facts of {key[1:]!r}: stored and derived differ"


def _derived_alerts(alerts: dict[bytes, dict[str, Any]], facts: dict[bytes, F.Facts],
                    records: list[Record], index: dict[bytes, bytes], creds: CredentialSet,
                    forked: dict[bytes, int], genesis: Genesis) -> dict[bytes, bytes]:
    """Add the container findings across objects (`node.derived`) the records call for.
    Returns the verification findings worked out on the way (table `V`: key -> value),
    as a batch that ingested the records would keep them (`node.item_memo.Staged`)."""
    by_id = {r.id: r for r in records}
    ids: dict[bytes, list[bytes]] = defaultdict(list)
    for k in index:  # b"O" + object key + b"\x00" + 32-byte record id
        ids[k[1:-33]].append(k[-32:])

    def counts(rid: bytes) -> bool:
        r = by_id.get(rid)
        if r is None or (r.author in forked and r.seq >= forked[r.author]):
            return False
        try:
            authorise(creds, r)
        except RoleError:
            return False
        return True

    reader = derived_alerts.FoldReader(
        facts, {rid: r for rid, r in by_id.items() if counts(rid)},  # as `BatchView.record`
        {k: [rid for rid in v if counts(rid)] for k, v in ids.items()
                       if k[:1] == b"r"})  # only the scans at a place are read (route)
    kept = WriteSet()
    memo = ItemMemo().staged(kept)  # reads nothing stored: every finding is fresh
    for key in sorted(facts):
        if key[:1] == b"c":
            number = key[1:].decode()
            found = derived_alerts.container_intents(number, reader, creds, genesis.params,
                                                     memo=memo)
            for intent in (i for v in found.values() for i in v):
                alerts[intent.key] = _entry(intent)
    return {k: v for k, v in kept.ops.items() if v is not None}


def _alert_differences(store: Store, d: Derived) -> list[str]:
    """The live alert set against the one the records call for.

    Called for: logged and not retracted. Logged, live and called for by nothing:
    stale (unless a peer pushed it, `received`, or a signed alert record holds it).
    """
    out: list[str] = []
    logged: dict[bytes, tuple[int, dict[str, Any]]] = {}
    for cursor, entry in store.iter_alerts():
        key = entry.get("key")
        if not isinstance(key, bytes) or store.alert_cursor(key) != cursor:
            out.append(f"alert log entry {cursor}: not indexed under its key")
            continue
        logged[key] = (cursor, entry)
    for key, want in sorted(d.alerts.items()):
        what = f"alert {want['rule']} on {want['subject']['kind']}:{want['subject']['id']}"
        if key not in logged:
            out.append(f"{what} was never raised")
        elif "retracted" in logged[key][1]:
            out.append(f"{what} is retracted, but the records call for it")
    for key, want in sorted(d.signed.items()):
        if key not in logged:
            out.append(f"signed alert {want['rule']} of record {want['record'].hex()}"
                       " is not in the alert log")
    for key, (cursor, entry) in sorted(logged.items()):
        if not _stale(key, entry, d):
            continue
        out.append(f"alert {entry.get('rule')} (cursor {cursor}) is live, but no record calls for it")
    return out


def _stale(key: bytes, entry: dict[str, Any], d: Derived) -> bool:
    """A live alert derived here that the records no longer call for."""
    return ("retracted" not in entry and "received" not in entry and "record" not in entry
            and entry.get("rule") in _DERIVED_RULES and key not in d.alerts
            and key not in d.signed)


def rebuild(store: Store, genesis: Genesis, progress: Progress | None = None,
            *, now: int | None = None) -> int:
    """Rewrite heads, indexes, facts and alerts from the records. Returns the number of records."""
    d = derive(store, genesis, progress)
    for ws in _batches(store, d, time.time_ns() // 1_000_000 if now is None else now):
        store.write(ws)
    return d.records


def _batches(store: Store, d: Derived, now: int, limit: int = BATCH) -> Iterator[WriteSet]:
    """The rebuild's write batches, in order. The first sets `REBUILDING` and writes the
    right heads (so no instant ever holds wrong ones), the last writes the current schema
    version and clears the flag."""
    ws = WriteSet()
    Store.meta_put(ws, REBUILDING, True)
    heads = d.tables[b"H"]
    for key in store.iter_keys(b"H"):
        if key not in heads:
            ws.delete(key)
    ws.ops.update(heads)
    yield ws
    ws = WriteSet()
    for table in (b"F", b"O", b"T", b"S", b"V"):
        derived = d.tables[table]
        seen: set[bytes] = set()
        for key, value in store.iter_table(table):  # a snapshot: our writes do not show
            seen.add(key)
            want = derived.get(key)
            if want is None:
                ws.delete(key)
            elif want != value:
                ws.put(key, want)
            else:
                continue
            if len(ws) >= limit:
                yield ws
                ws = WriteSet()
        for key, want in derived.items():
            if key not in seen:
                ws.put(key, want)
                if len(ws) >= limit:
                    yield ws
                    ws = WriteSet()
    stored_meta = dict(store.iter_meta(_UNAUTHORISED))
    for name in stored_meta.keys() - d.unauthorised.keys():
        ws.delete(b"M" + name.encode())
    for name, value in d.unauthorised.items():
        Store.meta_put(ws, name, value)
    ws.ops.update(_alert_repairs(store, d, now).ops)
    Store.meta_put(ws, SCHEMA, SCHEMA_VERSION)
    ws.delete(b"M" + REBUILDING.encode())
    yield ws


def _alert_repairs(store: Store, d: Derived, now: int) -> WriteSet:
    """Bring the live alert set in line with the records: cursors are never reused, so
    a missing alert is appended, a stale one marked retracted, a wrongly retracted one
    restored (as the ledger does)."""
    ws = WriteSet()
    cursor = store.last_alert_cursor()
    logged = {e["key"]: (c, e) for c, e in store.iter_alerts() if isinstance(e.get("key"), bytes)}
    for key, want in [*sorted(d.alerts.items()), *sorted(d.signed.items())]:
        if key in logged:
            c, entry = logged[key]
            if key in d.alerts and entry.pop("retracted", None) is not None:
                ws.put(b"A" + u64(c), codec.encode_local(entry))
            continue
        cursor += 1
        logged[key] = (cursor, {**want, "cursor": cursor, "ts": now})
        ws.put(b"A" + u64(cursor), codec.encode_local(logged[key][1]))
        ws.put(b"K" + key, u64(cursor))
    for key, (c, entry) in logged.items():
        if not _stale(key, entry, d):
            continue
        entry["retracted"] = now
        ws.put(b"A" + u64(c), codec.encode_local(entry))
    return ws
