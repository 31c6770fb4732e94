"""The node's log: ingest pipeline, own feed, derived state and alerts.

Theory of operation. `Ledger` sits between the wire and the `Store`. Every call
that changes anything (`submit`, `submit_run`, `append_own`) processes its
records into one `WriteSet` and writes it as one synced LevelDB batch: records,
feed entries, heads, object indexes, facts and new alerts together. In-memory
caches (heads, facts, credentials) are updated only after that write returns;
if it fails they are reloaded from the store. So an acknowledged record is
durable, and a crash at any instant leaves a consistent database.

For each record, in order: network id, duplicate, author standing (a record of
an author whose credential we have not seen waits in the pending area;
one whose credential is expired, revoked or lacks the role is rejected, and
alerted as `unauthorised_author`, see `_unauthorised`), feed
placement (append; a gap waits in the pending area; a different record at a
known seq is a fork: both are kept as an equivocation proof and the author's
later records stop counting). An appended record's facts are joined into its
objects' facts (`node.facts`), then the alert rules run over every object the
batch touched (`node.rules`; the alert log is `node.ledger_alerts`, a mixin of `Ledger`).

This class does I/O only through `Store`; the clock is passed in.
"""

from __future__ import annotations

import logging
from collections import Counter, OrderedDict, deque
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from crypto import hashing, merkle
from crypto.credentials import CredentialSet, Delegation
from crypto.errors import VerificationError
from crypto.keys import SigningKey
from node import facts as F
from node import rules, sigcheck
from node.errors import StorageError
from node.item_memo import ItemMemo
from node.ledger_alerts import _UNAUTHORISED, LedgerAlerts
from node.ledger_batch import Batch, StagedAppend
from node.outcome import AppendError, Outcome
from node.pending import Pending
from node.store import Store, WriteSet, u64
from protocol.authz import apply_statement, authorise
from protocol.envelope import Record
from protocol.errors import Error, FeedError, RemoteProtocolError, RoleError
from protocol.feed import EquivocationProof, Head, Placement, check_time, classify
from protocol.genesis import Genesis

log = logging.getLogger("sealchain.ledger")

_CREDENTIAL_TYPES = ("credential.issue", "credential.delegate", "credential.revoke")
_TYPE_INDEXED = frozenset({*_CREDENTIAL_TYPES, "alert", "customs.declaration"})
_RECORD_CACHE = 4096  # decoded records `Ledger.record` keeps, at most


class Ledger(LedgerAlerts):
    def __init__(
        self,
        store: Store,
        genesis: Genesis,
        *,
        own: SigningKey | None = None,
        pending_limit: int = 10_000,
        facts_cache: int = 50_000,
        facts_cache_tuples: int = 250_000,
        record_cache_bytes: int = 8 << 20,
    ) -> None:
        self.store = store
        self.genesis = genesis
        self.network = genesis.network_id
        self.params = genesis.params
        self.own = own
        self.pending = Pending(pending_limit)
        self.stats: Counter[tuple[str, str]] = Counter()
        self.rejections: Counter[tuple[str, str]] = Counter()  # (record type, rule)
        self.version = 0
        self.disputes_version = 0  # goes up whenever the live alerts of a dispute rule change
        self._facts_cache: OrderedDict[bytes, F.Facts] = OrderedDict()
        self._facts_cache_size = facts_cache
        # Bounded by size too: a busy container's facts hold hundreds of tuples (scans,
        # seals seen, custody), so 50,000 of them would not fit the memory goal.
        self._facts_cache_tuples = facts_cache_tuples
        self._facts_weight: dict[bytes, int] = {}
        # Per cached key, the alert keys the rules call for on its cached facts (the same
        # object): a batch changing the object needs them, and need not work them out.
        self._called: dict[bytes, tuple[F.Facts, frozenset[bytes]]] = {}
        self._facts_cache_load = 0
        self._heads: dict[bytes, Head] = {}
        # Decoded stored records by id (a record never changes), for the reads that
        # verification and custody make again batch after batch: mints, seals,
        # hand-overs, shipments. Emptied when full (no eviction order to keep: the
        # writer thread and the trio thread both read it).
        # Bounded by wire bytes too: a manifest chunk is ~50 KiB (about twice that decoded).
        self._records: dict[bytes, Record] = {}
        self._records_bytes = 0
        self._records_max_bytes = record_cache_bytes
        self._root: tuple[int, bytes] | None = None
        self._listeners: list[Any] = []
        self._ts_of: dict[bytes, tuple[bytes, int]] = {}  # author -> (head id, its ts)
        net = store.meta("network")
        if net is None:
            ws = WriteSet()
            Store.meta_put(ws, "network", self.network)
            store.write(ws)
        elif net != self.network:
            raise StorageError(f"database {store.path} belongs to another network ({net.hex()[:16]}…)")
        self._load()

    # -- loading -------------------------------------------------------------------------

    def _load(self) -> None:
        self._heads = dict(self.store.heads())
        self._facts_cache.clear()
        self._facts_weight.clear()
        self._called.clear()
        self._facts_cache_load = 0
        # What container verification keeps between calls, in memory and in table V.
        self.verify_memo = ItemMemo(read=self.store.finding, corrupt=lambda key, why: log.warning(
            "kept finding %r is corrupt (%s): ignored, worked out again", key[:40], why))
        self.creds = CredentialSet(self.genesis.authorities)
        for t in _CREDENTIAL_TYPES:
            for rid in self.store.by_type(t):
                raw = self.store.record(rid)
                if raw is None:
                    raise StorageError(f"type index names missing record {rid.hex()}")
                apply_statement(self.creds, Record.from_bytes(raw, verify=False))
        self.forked: dict[bytes, int] = {}
        for raw in self.store.proofs():
            p = EquivocationProof.from_bytes(raw)
            self.forked[p.author] = min(self.forked.get(p.author, p.seq), p.seq)

    def on_stored(self, callback: Any) -> None:
        """Call `callback(records, alerts)` after every durable write."""
        self._listeners.append(callback)

    # -- reads ---------------------------------------------------------------------------

    def head(self, author: bytes) -> Head | None:
        return self._heads.get(author)

    def heads(self) -> dict[bytes, Head]:
        return dict(self._heads)

    def record(self, rid: bytes) -> Record | None:
        r = self._records.get(rid)
        if r is None:
            raw = self.store.record(rid)
            if raw is None:
                return None
            r = Record.from_bytes(raw, verify=False)
            if (len(self._records) >= _RECORD_CACHE
                    or self._records_bytes + len(raw) > self._records_max_bytes):
                self._records.clear()
                self._records_bytes = 0
            self._records[rid] = r
            self._records_bytes += len(raw)
        return r

    def facts(self, key: bytes) -> F.Facts:
        return self._load_facts(key)

    def _load_facts(self, key: bytes) -> F.Facts:
        f = self._facts_cache.get(key)
        if f is not None:
            self._facts_cache.move_to_end(key)
            return {k: set(v) if isinstance(v, set) else v for k, v in f.items()}
        raw = self.store.facts_raw(key)
        return F.decode_facts(raw) if raw is not None else {}

    def _batch_facts(self, key: bytes, stored: dict[bytes, bytes | None]
                     ) -> tuple[F.Facts, set[str] | None]:
        """Facts for a batch to build on, and which of their SET fields the cache shares.
        What it reads from the store it also puts in `stored`."""
        f = self._facts_cache.get(key)
        if f is not None:
            self._facts_cache.move_to_end(key)
            return dict(f), set(f)  # every field shared until `join` copies it
        raw = stored[key] = self.store.facts_raw(key)
        return (F.decode_facts(raw) if raw is not None else {}), None

    def _before(self, b: Batch, key: bytes) -> F.Facts:
        """An object's facts as they were before batch `b` (read only: shared)."""
        f = b.before.get(key)
        if f is None:
            f = self._facts_cache.get(key)  # never changed by a batch (copy on write)
            if f is None:
                raw = b.stored_facts[key] if key in b.stored_facts \
                    else self.store.facts_raw(key)
                f = F.decode_facts(raw) if raw is not None else {}
            b.before[key] = f
        return f

    def state_root(self) -> bytes:
        """One hash over the whole derived state: a Merkle root over the sorted facts."""
        if self._root is not None and self._root[0] == self.version:
            return self._root[1]
        leaves = [
            hashing.h(hashing.STATE_ROOT, u64(len(k)) + k + v) for k, v in self.store.iter_facts()
        ]
        root = merkle.root_from_leaf_hashes(leaves)
        self._root = (self.version, root)
        return root

    def excluded(self, r: Record) -> bool:
        """Whether a stored record no longer counts (forked author, revoked credential)."""
        fork = self.forked.get(r.author)
        if fork is not None and r.seq >= fork:
            return True
        try:
            authorise(self.creds, r)
        except RoleError:
            return True
        return False

    # -- writes --------------------------------------------------------------------------

    def submit(self, wires: Sequence[bytes], now: int) -> list[Outcome]:
        """Decode, verify (one signature per record, on every core: `node.sigcheck`) and
        ingest records from a peer or client. Nothing is placed before its signature holds."""
        early: dict[int, Outcome] = {}
        order: list[int] = []  # the index in `wires` of each record decoded

        def decoded() -> Iterator[Record]:  # pulled by the checks chunk by chunk
            for i, w in enumerate(wires):
                try:
                    r = Record.from_bytes(w, verify=False)
                except RemoteProtocolError as exc:
                    early[i] = self._refuse(exc)
                    continue
                order.append(i)
                yield r

        def authentic() -> Iterator[Record]:
            for n, (r, bad) in enumerate(sigcheck.checked(decoded(), len(wires))):
                if bad is None:
                    yield r
                else:
                    early[order[n]] = self._refuse(bad)

        outcomes = iter(self._ingest(authentic(), now))
        return [early[i] if i in early else next(outcomes) for i in range(len(wires))]

    def _refuse(self, exc: RemoteProtocolError | VerificationError) -> Outcome:
        # Counted and logged like every other rejection (`_reject`); nothing stored.
        rule = getattr(exc, "rule", type(exc).__name__)
        return self._reject(str(rule), str(exc), getattr(exc, "penalty", 10),
                            type_name="unknown")  # not decoded, or not authentic: no type

    def submit_run(self, records: Sequence[Record], now: int) -> list[Outcome]:
        """Ingest records already authenticated (`feed.verify_range` by the sync machine)."""
        return self._ingest(records, now)

    def append_own(self, entries: Sequence[tuple[str, Any]], now: int) -> list[Record]:
        """Sign and append records to our own feed, all or nothing, durable on return.

        Raises `ValidationError` for an invalid body, `RoleError` for a type our
        credential does not allow, `AppendError` for anything else.
        """
        staged = self.stage_own(entries, now)
        self.write_staged(staged)
        self.settle_staged(staged)
        return staged.records

    def stage_own(self, entries: Sequence[tuple[str, Any]], now: int) -> StagedAppend:
        """`append_own` up to its write: signed, placed, the batch built, nothing written.

        Then `write_staged` (which may run in a worker thread) and `settle_staged`, with
        no other change to the ledger in between. Raises as `append_own` does.
        """
        if self.own is None:
            raise AppendError(Outcome("rejected", reason="this node has no signing key"))
        me = self.own.public.raw
        head = self.head(me)
        seq, prev = (head.seq, head.id) if head else (0, None)
        ts = max(now, self._own_ts)
        records = []
        for type_name, body in entries:
            seq += 1
            r = Record.sign(self.own, network=self.network, seq=seq, prev=prev, ts=ts,
                            type=type_name, body=body)
            records.append(r)
            prev = r.id
        batch = Batch(self)
        released: deque[Record] = deque()  # records our credential statements release
        try:
            for r in records:
                # Before placing: an unauthorised record of ours must raise, never wait
                # in the pending area (it would be stored later, after we said no).
                authorise(self.creds, r)
                batch.signed.add(r.id)
                out = self._place(r, batch, released)
                if out.status != "stored":
                    raise AppendError(out)
            while released:
                self._place(released.popleft(), batch, released)
        except Error:
            self._load()  # earlier entries may have changed the credential set
            raise
        self._seal(batch, now)
        return StagedAppend(records, batch)

    def write_staged(self, staged: StagedAppend) -> None:
        """The synced write of what `stage_own` staged (reloads the caches if it fails)."""
        self._write(staged.batch)

    def settle_staged(self, staged: StagedAppend) -> None:
        """After `write_staged`: the in-memory state follows, listeners are told."""
        self._settle(staged.batch)

    @property
    def _own_ts(self) -> int:
        """Our records' timestamps never go backwards, even if the clock does."""
        if self.own is None:
            return 0
        head = self.head(self.own.public.raw)
        return 0 if head is None else self._head_ts(self.own.public.raw, head, None)

    def _head_ts(self, author: bytes, head: Head, b: Batch | None) -> int:
        """The timestamp of `author`'s head record: remembered per author, read at most once."""
        known = self._ts_of.get(author)
        if known is not None and known[0] == head.id:
            return known[1]
        r = (b.records.get(head.id) if b is not None else None) or self.record(head.id)
        self._ts_of[author] = (head.id, r.ts if r is not None else 0)  # the id fixes the ts
        return self._ts_of[author][1]

    def _ingest(self, records: Iterable[Record], now: int) -> list[Outcome]:
        batch = Batch(self)
        queue: deque[Record] = deque()
        outcomes = []
        for r in records:
            outcomes.append(self._place(r, batch, queue))
            while queue:  # records released from the pending area by this one
                self._place(queue.popleft(), batch, queue)
        if batch.ws.ops or batch.standing:
            self._commit(batch, now)
        return outcomes

    def _commit(self, batch: Batch, now: int) -> None:
        self._seal(batch, now)
        self._write(batch)
        self._settle(batch)

    def _seal(self, batch: Batch, now: int) -> None:
        """The batch's feed heads, alerts and facts into its write set."""
        for author, head in batch.heads.items():
            batch.ws.put(b"H" + author, u64(head.seq) + head.id)
        self._evaluate_alerts(batch, now)
        for key in batch.dirty:
            if batch.facts[key]:
                batch.ws.put(b"S" + key, F.encode_facts(batch.facts[key]))
            else:  # recomputed to nothing: as if never seen, so state_root agrees
                batch.ws.delete(b"S" + key)

    def _write(self, batch: Batch) -> None:
        try:
            self.store.write(batch.ws)
        except StorageError:
            self._load()
            raise

    def _settle(self, batch: Batch) -> None:
        self._heads.update(batch.heads)
        batch.memo.settle()  # durable: the item scans this batch worked out hold now
        for key in batch.dirty:
            f = batch.facts[key]
            if key in batch.called:
                self._called[key] = (f, batch.called[key])
            else:  # (every changed object's rules run before the write: not reached)
                self._called.pop(key, None)
            self._cache_facts(key, f)
        self.version += 1
        if (batch.rules_changed | {e["rule"] for e in batch.alerts}) & rules.DISPUTE_RULES:
            self.disputes_version += 1
        self.stats.update([("ingested", r.type) for r in batch.stored])
        for author, head in batch.heads.items():
            self._ts_of[author] = (head.id, batch.records[head.id].ts)
        for cb in self._listeners:
            cb(batch.stored, batch.alerts)

    def _cache_facts(self, key: bytes, f: F.Facts) -> None:
        weight = 1 + sum([len(v) for v in f.values() if type(v) is set])
        self._facts_cache_load += weight - self._facts_weight.get(key, 0)
        self._facts_weight[key] = weight
        self._facts_cache[key] = f
        self._facts_cache.move_to_end(key)
        while len(self._facts_cache) > 1 and (
                len(self._facts_cache) > self._facts_cache_size
                or self._facts_cache_load > self._facts_cache_tuples):
            old, _ = self._facts_cache.popitem(last=False)
            self._facts_cache_load -= self._facts_weight.pop(old)
            self._called.pop(old, None)

    # -- one record ----------------------------------------------------------------------

    def _reject(self, rule: str, reason: str, penalty: int = 10, *, type_name: str) -> Outcome:
        self.stats[("rejected", rule)] += 1
        self.rejections[(type_name, rule)] += 1
        # One line per rejected record (the reason may quote input: keep it on one line).
        log.info("record rejected rule=%s reason=%s", rule, " ".join(reason.split()))
        return Outcome("rejected", reason=reason, penalty=penalty)

    def _place(self, r: Record, b: Batch, queue: deque[Record]) -> Outcome:
        if r.network != self.network:
            return self._reject("network", "record of another network", type_name=r.type)
        head = b.head(r.author)
        # A stored record sits in its author's feed at its own seq, and heads only
        # grow: a record past the head cannot be stored yet, so only one at or below
        # the head needs a lookup (the id commits to author and seq).
        if head is not None and r.seq <= head.seq and b.has(r.id):
            return Outcome("duplicate", r.id)
        fork = self.forked.get(r.author)
        if fork is not None and r.seq >= fork:
            # Never stored. But one at the fork seq or just past it may show one more
            # record in dispute there, or an earlier dispute: every order must find all.
            other = self._conflict(b, r) if r.seq <= fork + 1 else None
            if other is None or other.seq > fork:
                return self._reject("author.forked", "author's feed is forked at or before this seq", 0,
                                    type_name=r.type)
            return self._fork(b, other, r)
        placement = classify(r, head)
        if placement is Placement.KNOWN:
            other = self._conflict(b, r)
            if other is None:
                return Outcome("duplicate", r.id)
            return self._fork(b, other, r)
        if placement is Placement.BROKEN_LINK:
            assert head is not None
            prior = self._feed_record(b, r.author, head.seq)
            if prior is None:
                raise StorageError(f"head {head.id.hex()} has no record")
            return self._fork(b, prior, r)
        if placement is Placement.GAP:
            if self.pending.add_gap(r):
                self.stats[("pending", "gap")] += 1
                return Outcome("pending", r.id, "waiting for an earlier record of this feed")
            self.stats[("dropped", "pending_full")] += 1
            return Outcome("pending", r.id, "pending area full: dropped, sync will refetch")
        try:
            refused = self._unfit(r, b, None if head is None else
                                  self._head_ts(r.author, head, b))
        except RoleError:  # the author's credential has not reached us
            if not self.pending.add_unknown_author(r):
                self.stats[("dropped", "pending_full")] += 1
                return Outcome("pending", r.id, "pending area full: dropped, sync will refetch")
            self.stats[("pending", "author")] += 1
            return Outcome("pending", r.id, "author's credential not seen yet")
        if refused is not None:
            return refused
        self._store(r, b, queue)
        queue.extend(self.pending.next_in_feed(r.author, r.seq + 1))
        return Outcome("stored", r.id)

    def _unfit(self, r: Record, b: Batch, prior_ts: int | None) -> Outcome | None:
        """The refusal `r` earns by itself, if any: no right to its type (alerted, see
        `_unauthorised`), or a time before its predecessor's (`prior_ts`, None for a
        first record). Raises `RoleError` when its author's credential is not known."""
        try:
            if r.id not in b.signed:  # ours were authorised just before, by `append_own`
                authorise(self.creds, r)
        except RoleError as exc:
            if exc.rule == "author.unknown":
                raise
            self._unauthorised(r, exc.rule, b)
            return self._reject(exc.rule, str(exc), exc.penalty, type_name=r.type)
        if prior_ts is not None:  # time never goes backwards within a feed
            try:
                check_time(r, prior_ts)
            except FeedError as exc:
                return self._reject("feed.time", str(exc), exc.penalty, type_name=r.type)
        return None

    def _conflict(self, b: Batch, r: Record) -> Record | None:
        """A held record that cannot share a feed with `r`, at the earliest seq in dispute:
        the one at seq-1 that r's prev does not name, else a different one at r's seq."""
        if r.seq > 1:
            prior = self._feed_record(b, r.author, r.seq - 1)
            if prior is not None and prior.id != r.prev:
                return prior
        existing = self._feed_record(b, r.author, r.seq)
        return existing if existing is not None and existing.id != r.id else None

    def _feed_record(self, b: Batch, author: bytes, seq: int) -> Record | None:
        for r in b.records.values():
            if r.author == author and r.seq == seq:
                return r
        rid = self.store.feed_id(author, seq)
        return self.record(rid) if rid else None

    def _store(self, r: Record, b: Batch, queue: deque[Record]) -> None:
        ops = b.ws.ops  # (`WriteSet.put`, without a call per key: a mint puts one per serial)
        ops[b"R" + r.id] = r.wire
        ops[b"F" + r.author + u64(r.seq)] = r.id
        b.heads[r.author] = Head(r.seq, r.id)  # written once per author: `_seal`
        b.records[r.id] = r
        b.stored.append(r)
        if r.type in _TYPE_INDEXED:
            ops[b"T" + r.type.encode() + b"\x00" + r.id] = b""
        rid, join, object_ids = r.id, b.join, b.object_ids
        seen: set[bytes] = set()
        for fact in F.contributions(r, self.params):  # a mint makes one per serial: keep it lean
            key = fact.key
            if key not in seen:
                seen.add(key)
                ops[b"O" + key + b"\x00" + rid] = b""
                object_ids.setdefault(key, []).append(rid)
            join(fact)
        if r.type in _CREDENTIAL_TYPES:
            apply_statement(self.creds, r)
            self._after_statement(r, b, queue)

    def _after_statement(self, r: Record, b: Batch, queue: deque[Record]) -> None:
        body: Any = r.body
        if r.type in ("credential.issue", "credential.delegate"):
            subject = body.subject if r.type == "credential.issue" else body.delegate
            queue.extend(self.pending.by_author(subject))
        elif r.type == "credential.revoke":
            target = self.creds.get(body.credential)
            if target is None:
                return
            subject = target.delegate if isinstance(target, Delegation) else target.subject
        else:
            return
        # Stored records may stop counting (a revocation) or count again (a renewal that
        # covers a revoked span): the subject's own, and its devices' (their delegations
        # hang on its grant).
        for author in [subject, *self._delegates_of(subject, b)]:
            if b.head(author) is not None or self._first_unauthorised(author, b) is not None:
                self._repair_author(author, b)

    def _delegates_of(self, delegator: bytes, b: Batch) -> list[bytes]:
        out: set[bytes] = set()
        stored = (self.record(rid) for rid in self.store.by_type("credential.delegate"))
        for d in [*stored, *b.records.values()]:
            if d is not None and d.type == "credential.delegate" and d.author == delegator:
                out.add(d.body.delegate)  # type: ignore[attr-defined]
        return sorted(out)

    # -- forks and repair ----------------------------------------------------------------

    def _fork(self, b: Batch, a: Record, c: Record) -> Outcome:
        # `c`, arriving after `a`, is refused as it would have been had it come first
        # (no right to its type, a time before its predecessor's): which of two records
        # at a seq arrives first must not decide whether the author forked.
        prior = b.records.get(c.prev) or self.record(c.prev) if c.prev is not None else None
        linked = prior is not None and prior.author == c.author and prior.seq == c.seq - 1
        try:
            refused = self._unfit(c, b, prior.ts if prior is not None and linked else None)
        except RoleError:  # (an author whose records we hold is known: not reached)
            refused = None
        if refused is not None:
            return refused
        try:
            proof = EquivocationProof.of(a, c)
        except VerificationError as exc:
            return self._reject("fork.invalid", f"not a valid equivocation: {exc}",
                                type_name=a.type)
        seq = proof.seq
        ids = sorted({proof.first.id, proof.second.id}) if proof.first.seq == proof.second.seq \
            else sorted({proof.first.id, proof.second.prev or b""})
        key = F.author_key(a.author)
        old = self.forked.get(a.author)
        if old == seq and {(seq, i) for i in ids} <= b.get_facts(key).get("fork", set()):
            return Outcome("duplicate", c.id, "this fork is known")
        b.ws.put(b"E" + a.author + u64(seq) + b"".join(ids), proof.to_bytes())
        for rid in ids:
            b.join(F.Fact(key, "fork", (seq, rid)))
        self.stats[("fork", "detected")] += 1
        log.warning("feed fork author=%s seq=%d", a.author.hex()[:16], seq)
        if old is None or seq < old:
            self.forked[a.author] = seq
            self.pending.drop_author(a.author)
            self._repair_author(a.author, b)
            if old is not None:  # fork facts name the earliest dispute only
                self._recompute(key, b)
        return Outcome("fork", c.id, f"fork of {a.author.hex()[:16]} at seq {seq}")

    def _repair_author(self, author: bytes, b: Batch) -> None:
        """Recompute every object an author's records touch (after a fork or revocation)."""
        keys: set[bytes] = set()
        first: tuple[Record, str] | None = None  # the first stored record it had no right to
        seq = 1
        while True:
            chunk = self.store.feed(author, seq, 1000)
            for raw in chunk:
                r = Record.from_bytes(raw, verify=False)
                keys.update(f.key for f in F.contributions(r, self.params))
                if first is None:
                    first = self._without_right(r)
            if len(chunk) < 1000:
                break
            seq += 1000
        for r in sorted(b.records.values(), key=lambda r: r.seq):
            if r.author == author:
                keys.update(f.key for f in F.contributions(r, self.params))
                if first is None:
                    first = self._without_right(r)
        self._judge_author(author, first, b)
        for key in keys:
            self._recompute(key, b)

    def _recompute(self, key: bytes, b: Batch) -> None:
        ids = set(self.store.object_records(key)) | set(b.object_ids.get(key, ()))
        fresh: F.Facts = {}
        for rid in sorted(ids):
            r = b.records.get(rid) or self.record(rid)
            if r is None or self.excluded(r):
                continue
            for fact in F.contributions(r, self.params):
                if fact.key == key:
                    F.join(fresh, fact)
        if key[:1] == b"a":  # fork facts come from proofs (the earliest dispute), not records
            at = self.forked.get(key[1:])
            forks = {x for x in b.get_facts(key).get("fork", ()) if x[0] == at}
            if forks:
                fresh["fork"] = forks
        # Alerts the old facts called for are withdrawn at commit if the fresh ones do not
        # (their evidence stopped counting): alerts stay a function of the counted records.
        for intent in rules.evaluate(key, b.get_facts(key)):
            b.retract[intent.key] = intent.rule
        b.facts[key] = fresh
        b.dirty.add(key)

    # -- alerts --------------------------------------------------------------------------

    # An author writing without the right to (`rules.UNAUTHORISED`: revoked, expired, a
    # role or trademark it lacks) has one live `unauthorised_author` alert: for the first
    # record of its feed it had no right to write. Only the first, because a refused record
    # leaves a gap in the feed (what follows it waits), while one stored before the
    # revocation arrived does not: which later records a node holds depends on the order,
    # the first one does not. That record, refused or stored, is kept in meta
    # `unauthorised.<author hex>` so that a later credential statement can judge it again
    # (`_repair_author`): the alert follows the credential set, whatever the arrival order.

    def _without_right(self, r: Record) -> tuple[Record, str] | None:
        try:
            authorise(self.creds, r)
        except RoleError as exc:
            if exc.rule in rules.UNAUTHORISED:
                return r, exc.rule
        return None

    def _first_unauthorised(self, author: bytes, b: Batch) -> tuple[Record, str] | None:
        if author in b.standing:
            return b.standing[author]
        held = self.store.meta(_UNAUTHORISED + author.hex())
        return None if held is None else (Record.from_bytes(held[0], verify=False), held[1])

    def _unauthorised(self, r: Record, rule: str, b: Batch) -> None:
        """`r`, next in its author's feed, was refused for want of a right."""
        if rule not in rules.UNAUTHORISED:
            return
        held = self._first_unauthorised(r.author, b)
        if held is None or (held[0].seq, held[0].id) > (r.seq, r.id):
            b.standing[r.author] = (r, rule)

    def _judge_author(self, author: bytes, first: tuple[Record, str] | None, b: Batch) -> None:
        """The credentials changed: `first` is the first stored record it had no right to."""
        held = self._first_unauthorised(author, b)
        if first is None and held is not None and not b.has(held[0].id):
            first = self._without_right(held[0])  # a refused record: refused still?
        if (held and held[0].id) != (first and first[0].id):
            b.standing[author] = first
