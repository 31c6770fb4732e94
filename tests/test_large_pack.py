"""A 100,000-item container, end to end: chunked within the record size limit, every
record ingested by a real `Ledger` on LevelDB, and one item proved against the root.

About 10 s of CPU, most of it the ledger deriving facts for 100,000 minted and
100,000 packed tokens (bench/verify.py builds the same kind of journey).
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from crypto import merkle
from crypto.errors import VerificationError
from node.ledger import Ledger
from node.manifest_proof import inclusion_proof
from node.scenario import World, tokens_of
from node.store import Store
from node.summary import reader_of
from protocol.bodies import MANIFEST_CHUNK
from protocol.envelope import MAX_RECORD, Record

N = 100_000
GTIN = "09506000134352"
BOX = "CSQU3054383"
TRADEMARK = {"mark": "ACME", "classes": [9], "markets": ["DE", "NL"], "gs1_prefixes": ["950600"]}


def test_a_100_000_item_pack_fits_ingests_and_proves(tmp_path: Path) -> None:
    w = World.create(seed=7)
    brand = w.party("brand", "ACME Brands", ["NL"], trademarks=[TRADEMARK])
    serials = [f"S{i:08d}" for i in range(N)]
    w.mint(brand, GTIN, "L1", serials, mark="ACME", markets=["NL"], facility="9506000000008")
    w.create_container(brand, BOX)
    items = sorted(tokens_of(GTIN, serials))
    packs = w.pack(brand, BOX, items, weight_g=25_000_000)

    root = merkle.root(items)
    chunks = -(-N // MANIFEST_CHUNK)
    assert len(packs) == chunks == 67
    for c, r in enumerate(packs):
        b = r.body
        assert len(r.wire) <= MAX_RECORD, (c, len(r.wire))
        assert (b.chunk, b.chunks, b.count, b.root) == (c, chunks, N, root)
        assert list(b.items) == items[c * MANIFEST_CHUNK:(c + 1) * MANIFEST_CHUNK]
    assert all(len(r.wire) <= MAX_RECORD for r in w.records)
    # A full chunk is near the limit: the chunk size is what keeps a record small.
    assert len(packs[0].wire) > MAX_RECORD // 2

    store = Store.open(tmp_path / "db")
    try:
        ledger = Ledger(store, w.genesis)
        # As a client or a peer hands them over: wire bytes, decoded and verified on ingest.
        outcomes = ledger.submit([r.wire for r in w.records], w.now)
        assert [o.status for o in outcomes] == ["stored"] * len(w.records), [
            o for o in outcomes if o.status != "stored"][:3]
        stored = ledger.record(packs[-1].id)
        assert isinstance(stored, Record)
        assert stored.wire == packs[-1].wire

        tid = random.Random(7).choice(items)
        p = inclusion_proof(reader_of(ledger, w.now), BOX, tid)
        assert (p["root"], p["size"], p["index"]) == (root, N, items.index(tid))
        holder = ledger.record(p["record"])
        assert holder is not None
        assert tid in holder.body.items
        assert holder.body.root == root
        assert len(p["proof"]) == 17  # ceil(log2(100,000))
        merkle.verify_inclusion(tid, p["index"], N, p["proof"], holder.body.root)
        other = items[(p["index"] + 1) % N]
        with pytest.raises(VerificationError):
            merkle.verify_inclusion(other, p["index"], N, p["proof"], holder.body.root)
    finally:
        store.close()
