"""What verification keeps between calls (`node.item_memo`) never changes a verdict.

Every verdict here is worked out three ways on a real ledger over LevelDB: warm
(through `Ledger.verify_memo`, as the RPC and the customs observer call it), in
full on the same ledger (no memo), and from scratch (facts re-derived from the
stored records alone by `node.audit.derive`, credentials from the credential
records). The three must be equal, on honest and fraudulent stories, after
later records change an item (recall, clone, custody dispute, revocation,
another packing and its unpack, a new shipment), in any arrival order, and when
only the clock moves (expiry).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from crypto.credentials import CredentialSet
from node import audit
from node.derived import FoldReader
from node.item_memo import ItemMemo, ItemScan, fits
from node.ledger import Ledger
from node.scenario import DAY, World, tokens_of
from node.store import Store, WriteSet
from node.summary import reader_of
from node.verify import Level, Verdict, verify_container
from protocol.authz import apply_statement
from protocol.envelope import Record
from tests.test_verify import BOX, GTIN, Story

BOX2 = "MSCU1234566"
_CREDENTIAL_TYPES = ("credential.issue", "credential.delegate", "credential.revoke")


class Node:
    """One ledger on LevelDB, fed the story's records in deliveries."""

    def __init__(self, path: Path, world: World) -> None:
        self.world = world
        self.store = Store.open(path)
        self.ledger = Ledger(self.store, world.genesis)

    def deliver(self, records: list[Record]) -> None:
        outcomes = self.ledger.submit([r.wire for r in records], self.world.now)
        assert all(o.status in ("stored", "pending", "duplicate") for o in outcomes), outcomes

    def warm(self, number: str, now: int) -> Verdict:
        led = self.ledger
        return verify_container(number, reader_of(led, now), led.creds, led.params, now,
                                memo=led.verify_memo)

    def full(self, number: str, now: int) -> Verdict:
        led = self.ledger
        return verify_container(number, reader_of(led, now), led.creds, led.params, now)

    def reference(self, number: str, now: int) -> Verdict:
        """The verdict from the stored records alone: no ledger state, no memo."""
        genesis = self.world.genesis
        d = audit.derive(self.store, genesis)
        records = {rid: Record.from_bytes(raw, verify=False)
                   for rid, raw in self.store.iter_records()}
        creds = CredentialSet(genesis.authorities)
        for r in sorted(records.values(), key=lambda r: (r.author, r.seq)):
            if r.type in _CREDENTIAL_TYPES:
                apply_statement(creds, r)
        ids: dict[bytes, list[bytes]] = {}
        for k in d.tables[b"O"]:  # b"O" + object key + b"\x00" + record id
            if not self.ledger.excluded(records[k[-32:]]):
                ids.setdefault(k[1:-33], []).append(k[-32:])
        return verify_container(number, FoldReader(d.facts, records, ids), creds,
                                genesis.params, now)

    def verdict(self, number: str = BOX, now: int | None = None) -> Verdict:
        """The warm verdict, checked against the full and the from-scratch ones."""
        at = self.world.now if now is None else now
        warm, again = self.warm(number, at), self.warm(number, at)
        assert warm == again
        assert warm == self.full(number, at)
        assert warm == self.reference(number, at)
        return warm

    def close(self) -> None:
        self.store.close()


def codes(v: Verdict) -> set[str]:
    return {r.code for r in v.reasons}


def _recall_serials(s: Story) -> None:
    s.world.sign(s.brand, "recall", {"gtin": GTIN, "serials": s.serials[:2],
                                     "reason": "battery fault"})


def _recall_lot(s: Story) -> None:
    s.world.sign(s.brand, "recall", {"gtin": GTIN, "lot": "L1", "reason": "battery fault"})


def _clone(s: Story) -> None:
    s.world.mint(s.brand, GTIN, "L9", [s.serials[7]], mark="ACME", markets=["NL"],
                 facility="9506000000008")


def _dispute(s: Story) -> None:
    # The brand offers an item it handed over already, at the same custody head.
    s.world.sign(s.brand, "handover.offer", {"object": {"kind": "token",
                                                        "id": s.tokens[3].hex()},
                                             "to": s.fwd.pub, "head": s.mints[0].id})


def _revoke_brand(s: Story) -> None:
    assert s.brand.credential is not None
    s.world.sign(s.world.authority, "credential.revoke", {
        "credential": s.brand.credential.id, "reason": "counterfeiter",
        "effective": s.mints[0].ts - 1})


def _other_container(s: Story) -> None:
    w = s.world
    w.create_container(s.maker, BOX2)
    w.pack(s.maker, BOX2, s.tokens[:3], weight_g=30_000)


def _new_shipment(s: Story) -> None:
    s.world.sign(s.fwd, "shipment.create", {
        "shipment": "SHP0", "origin": {"country": "CN"}, "destination": {"country": "US"},
        "route": [], "consignor": "Maker", "consignee": "Reseller", "containers": [BOX],
        "goods": [{"hs": "851830", "description": "Headphones", "quantity": 50,
                   "weight_g": 500_000}]})


CHANGES: dict[str, tuple[Callable[[Story], None], str]] = {
    "recall of serials": (_recall_serials, "item.recalled"),
    "recall of the lot": (_recall_lot, "item.recalled"),
    "a clone minted later": (_clone, "item.cloned"),
    "a custody dispute": (_dispute, "custody.packer_not_holder"),
    "the brand revoked": (_revoke_brand, "item.not_minted"),
    "packed in another container": (_other_container, "item.two_containers"),
    "a shipment outside the markets": (_new_shipment, "item.diversion"),
}


@pytest.mark.parametrize("change", sorted(CHANGES))
def test_a_later_record_changes_the_kept_verdict(tmp_path: Path, change: str) -> None:
    s = Story()
    s.ship()
    node = Node(tmp_path / "db", s.world)
    try:
        node.deliver(s.world.records)
        before = node.verdict()
        assert before.level is Level.GREEN, before.reasons
        assert len(node.ledger.verify_memo) == 1  # kept: the next call reads no item
        make, code = CHANGES[change]
        n = len(s.world.records)
        s.world.tick()
        make(s)
        node.deliver(s.world.records[n:])
        after = node.verdict()
        assert after.level is Level.RED, after.reasons
        assert code in codes(after)
    finally:
        node.close()


def test_a_lot_recall_works_out_again_only_the_containers_of_its_items(
        tmp_path: Path) -> None:
    """A recall of a lot changes the findings of the containers its items were packed in,
    and of no other: those keep their scans (a node holding many containers does not
    judge every one of them again at every recall)."""
    s = Story()
    s.ship()
    w = s.world
    serials = [f"M{i:03d}" for i in range(4)]
    (mint,) = w.mint(s.brand, GTIN, "L2", serials, mark="ACME", markets=["NL"],
                     facility="9506000000008")
    others = tokens_of(GTIN, serials)
    for tid in others:
        w.handover(s.brand, s.maker, "token", tid.hex(), mint.id)
    w.create_container(s.maker, BOX2)
    w.pack(s.maker, BOX2, others, weight_g=4_000)
    node = Node(tmp_path / "db", w)
    try:
        node.deliver(w.records)
        scans = node.ledger.verify_memo._scans
        mine, other = scans[BOX], scans[BOX2]
        w.tick()
        _recall_lot(s)  # lot L1: the items of BOX
        node.deliver(w.records[-1:])
        assert scans[BOX2] is other  # not worked out again
        assert scans[BOX] is not mine
        assert "item.recalled" in codes(node.verdict())
        assert "item.recalled" not in codes(node.verdict(BOX2))
        w.tick()
        w.sign(s.brand, "recall", {"gtin": GTIN, "lot": "L2", "reason": "battery fault"})
        node.deliver(w.records[-1:])
        assert scans[BOX2] is not other
        assert "item.recalled" in codes(node.verdict(BOX2))
    finally:
        node.close()


def _scan_an_item(s: Story) -> None:
    s.world.scan(s.maker, "token", s.tokens[0].hex(), country="CN")


def _hand_the_container_on(s: Story) -> None:
    w = s.world
    (head,) = [r.id for r in w.records
               if r.type == "handover.accept" and r.body.object.kind == "container"]
    w.handover(s.carrier, s.fwd, "container", BOX, head)


def _unpack(s: Story) -> None:
    s.world.sign(s.carrier, "container.unpack", {"container": BOX})


# Changes a container's item findings do not depend on. A scan of a packed item (or a
# customs action on it) changes none of the fields they read (`derived.TOKEN_FIELDS`):
# the container is not judged again. The container's own custody is a field they read
# (it decides which manifest is in force and who packed it), but the scan names those
# inputs (its key): a hand-over that leaves them as they were reuses it. Its unpack
# times are read only for items packed in another container too
# (`verify._packed_elsewhere`): with none, the scan keeps None for them
# (`item_memo.fits`) and outlives an unpack.
KEEPS: dict[str, Callable[[Story], None]] = {
    "a scan of a packed item": _scan_an_item,
    "a hand-over of the container": _hand_the_container_on,
    "an unpack (no item packed elsewhere)": _unpack,
}


@pytest.mark.parametrize("change", sorted(KEEPS))
def test_a_change_the_item_findings_do_not_read_keeps_the_scan(tmp_path: Path, change: str
                                                               ) -> None:
    s = Story()
    s.ship()
    w = s.world
    node = Node(tmp_path / "db", w)
    try:
        node.deliver(w.records)
        scans = node.ledger.verify_memo._scans
        kept = scans[BOX]
        n = len(w.records)
        w.tick()
        KEEPS[change](s)
        node.deliver(w.records[n:])
        assert scans[BOX] is kept
        node.verdict()  # and it is still the right verdict (in full, from the records)
        w.tick()
        _recall_serials(s)  # a field the findings read: judged again
        node.deliver(w.records[-1:])
        assert scans[BOX] is not kept
        assert "item.recalled" in codes(node.verdict())
    finally:
        node.close()


def test_an_unpack_elsewhere_clears_the_kept_finding(tmp_path: Path) -> None:
    """The other container's unpack changes no fact of ours or of our items: the ledger
    forgets our scan because it is a neighbour (an item in common)."""
    s = Story()
    w = s.world
    maker2 = w.party("manufacturer", "Maker Two", ["CN"])
    for tid in s.tokens[:2]:  # the items were in another container first, then unpacked
        w.sign(s.maker, "handover.offer", {"object": {"kind": "token", "id": tid.hex()},
                                           "to": maker2.pub, "head": s.mints[0].id})
    w.create_container(maker2, BOX2)
    w.pack(maker2, BOX2, s.tokens[:2], weight_g=20_000)
    unpack = w.sign(maker2, "container.unpack", {"container": BOX2})
    w.tick()
    s.ship()
    node = Node(tmp_path / "db", w)
    try:
        node.deliver([r for r in w.records if r.id != unpack.id])
        held = node.verdict()
        assert "item.two_containers" in codes(held)
        node.deliver([unpack])
        assert "item.two_containers" not in codes(node.verdict())
    finally:
        node.close()


def test_an_unpack_works_the_scan_out_again_if_an_item_was_packed_elsewhere(
        tmp_path: Path) -> None:
    """With an item packed in another container too, the scan read the container's unpack
    times (`verify._packed_elsewhere`): an unpack of the container works it out again."""
    s = Story()
    w = s.world
    maker2 = w.party("manufacturer", "Maker Two", ["CN"])
    for tid in s.tokens[:2]:
        w.sign(s.maker, "handover.offer", {"object": {"kind": "token", "id": tid.hex()},
                                           "to": maker2.pub, "head": s.mints[0].id})
    w.create_container(maker2, BOX2)
    w.pack(maker2, BOX2, s.tokens[:2], weight_g=20_000)
    w.tick()
    s.ship()
    node = Node(tmp_path / "db", w)
    try:
        node.deliver(w.records)
        assert "item.two_containers" in codes(node.verdict())
        scans = node.ledger.verify_memo._scans
        kept = scans[BOX]
        assert kept.key[-1] == ()  # read: no unpack yet
        w.tick()
        w.sign(s.carrier, "container.unpack", {"container": BOX})
        node.deliver(w.records[-1:])
        assert scans[BOX] is not kept
        assert "item.two_containers" in codes(node.verdict())
    finally:
        node.close()


def test_a_scan_that_read_no_unpack_fits_any() -> None:
    kept = ("C", b"root", (b"c1",), b"packer", "NL", None)
    assert fits(kept, ("C", b"root", (b"c1",), b"packer", "NL", ()))
    assert fits(kept, ("C", b"root", (b"c1",), b"packer", "NL", (5, 9)))
    assert not fits(kept, ("C", b"root", (b"c1",), b"packer", "DE", ()))
    assert not fits(kept, ("C", b"other", (b"c1",), b"packer", "NL", ()))
    read = ("C", b"root", (b"c1",), b"packer", "NL", (5,))
    assert fits(read, read)
    assert not fits(read, ("C", b"root", (b"c1",), b"packer", "NL", (5, 9)))
    assert not fits(read, ("C", b"root", (b"c1",), b"packer", "NL", None))


def test_expiry_is_judged_at_every_call(tmp_path: Path) -> None:
    s = Story()
    w = s.world
    expiry = w.now + 10 * DAY
    serials = [f"E{i:03d}" for i in range(5)]
    (mint,) = w.mint(s.brand, GTIN, "L5", serials, mark="ACME", markets=["NL"],
                     facility="9506000000008", expiry=expiry)
    tokens = tokens_of(GTIN, serials)
    for tid in tokens:
        w.handover(s.brand, s.maker, "token", tid.hex(), mint.id)
    s.ship(tokens=[*s.tokens, *tokens])
    node = Node(tmp_path / "db", w)
    try:
        node.deliver(w.records)
        assert node.verdict().level is Level.GREEN
        later = node.verdict(now=expiry + DAY)
        [reason] = [r for r in later.reasons if r.code == "item.expired"]
        assert reason.evidence == (mint.id,)
        assert later.level is Level.AMBER
        assert node.verdict().level is Level.GREEN  # the same kept scan, the clock back
    finally:
        node.close()


def test_expiries_are_kept_once_per_mint(tmp_path: Path) -> None:
    """Items of two expiring mints, packed interleaved: the kept scan holds one entry
    per mint (not one per change of mint in item order: a 100,000-item container would
    keep 100,000), and once both expire each mint is evidence, once."""
    s = Story()
    w = s.world
    expiry = w.now + 10 * DAY
    mints, tokens = [], []
    for lot, prefix in (("L5", "E"), ("L6", "F")):
        serials = [f"{prefix}{i:03d}" for i in range(12)]
        (mint,) = w.mint(s.brand, GTIN, lot, serials, mark="ACME", markets=["NL"],
                         facility="9506000000008", expiry=expiry)
        mints.append(mint)
        for tid in tokens_of(GTIN, serials):
            w.handover(s.brand, s.maker, "token", tid.hex(), mint.id)
            tokens.append(tid)
    s.ship(tokens=[*s.tokens, *tokens])
    node = Node(tmp_path / "db", w)
    try:
        node.deliver(w.records)
        assert node.verdict().level is Level.GREEN
        kept = node.ledger.verify_memo._scans[BOX]
        assert sorted(m for m, _, _ in kept.expiries) == sorted(m.id for m in mints)
        assert sum(n for m, _, n in kept.expiries) == len(tokens)
        [reason] = [r for r in node.verdict(now=expiry + DAY).reasons
                    if r.code == "item.expired"]
        assert reason.evidence == tuple(sorted(m.id for m in mints))
    finally:
        node.close()


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_kept_verdict_matches_in_any_arrival_order(tmp_path: Path, seed: int) -> None:
    """Fraud and its later evidence delivered in random runs: after every run the warm
    verdict is the full one, and at the end the from-scratch one."""
    s = Story()
    s.ship()
    for make, _code in CHANGES.values():
        if make is not _revoke_brand:  # (it would leave nothing else to see)
            s.world.tick()
            make(s)
    order = list(s.world.records)
    rng = random.Random(seed)
    rng.shuffle(order)
    node = Node(tmp_path / "db", s.world)
    try:
        i, now = 0, s.world.now
        while i < len(order):
            k = rng.randint(1, 12)
            node.deliver(order[i:i + k])
            i += k
            for number in (BOX, BOX2):
                assert node.warm(number, now) == node.full(number, now)
        final = node.verdict()
        assert {"item.recalled", "item.cloned", "custody.packer_not_holder",
                "item.two_containers", "item.diversion"} <= codes(final)
    finally:
        node.close()


def test_a_batch_keeps_its_scans_only_once_written() -> None:
    memo = ItemMemo()
    scan = ItemScan(key=("k",), found=(), expiries=(), unminted=(), brands=())
    memo.keep_scan(BOX, scan)
    ws = WriteSet()
    staged = memo.staged(ws)
    assert staged.scan(BOX, ("k",)) == scan  # kept, and worked out for these inputs
    assert staged.scan(BOX, ("other",)) is None
    staged.forget(BOX)
    assert memo.scan(BOX, ("k",)) is None  # forgotten at once
    assert staged.scan(BOX, ("k",)) is None  # and not read back from the database either
    fresh = ItemScan(key=("k2",), found=(), expiries=(), unminted=(), brands=())
    staged.keep_scan(BOX, fresh)
    assert memo.scan(BOX, ("k2",)) is None  # not before the write
    staged.settle()
    assert memo.scan(BOX, ("k2",)) == fresh
    assert memo.scan(BOX, ("k",)) is None  # a scan worked out for other inputs: not used


def test_the_memo_is_bounded() -> None:
    memo = ItemMemo(manifests=2, scans=2)
    for i in range(5):
        memo.keep_scan(f"C{i}", ItemScan(key=(i,), found=(), expiries=(), unminted=(),
                                         brands=()))
    assert len(memo) == 2
    assert memo.scan("C4", (4,)) is not None
    assert memo.scan("C0", (0,)) is None


def test_a_warm_call_reads_no_item(tmp_path: Path) -> None:
    s = Story()
    s.ship()
    node = Node(tmp_path / "db", s.world)
    try:
        node.deliver(s.world.records)
        led, now = node.ledger, s.world.now
        first = node.warm(BOX, now)
        read: list[bytes] = []

        def facts(key: bytes) -> Any:
            read.append(key)
            return led.facts(key)

        reader = reader_of(led, now)
        counting = type(reader)(facts=facts, record_ids=reader.record_ids,
                                record=reader.record)
        again = verify_container(BOX, counting, led.creds, led.params, now,
                                 memo=led.verify_memo)
        assert again == first
        assert not [k for k in read if k[:1] == b"t"]  # no token's facts read
        full = verify_container(BOX, counting, led.creds, led.params, now)
        assert full == first
        assert len([k for k in read if k[:1] == b"t"]) == len(s.tokens)
    finally:
        node.close()

