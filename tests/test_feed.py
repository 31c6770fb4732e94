"""Feed rules: placement of a record against a head, equivocation proofs, range verification."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from crypto.errors import VerificationError
from crypto.keys import SigningKey
from protocol import codec
from protocol.envelope import SIGNING_DOMAIN, VERSION, Record
from protocol.errors import DecodeError, FeedError
from protocol.feed import EquivocationProof, Head, Placement, classify, verify_range
from tests import examples as ex

ALICE = SigningKey(bytes([11]) * 32)
BOB = SigningKey(bytes([12]) * 32)
OTHER_NET = ex.record_id("another network")

Signer = Callable[[SigningKey, bytes], bytes]


def good_sig(key: SigningKey, unsigned: bytes) -> bytes:
    return key.sign(SIGNING_DOMAIN + unsigned)


def garbage_sig(key: SigningKey, unsigned: bytes) -> bytes:
    """Well formed (64 bytes) and certainly not a valid signature."""
    return bytes([0xAB]) * 64


def make(key: SigningKey, seq: int, prev: bytes | None, *, ts: int = ex.T0,
         net: bytes = ex.NETWORK, sig: Signer = good_sig, note: str | None = None) -> Record:
    """A record built by hand (so its signature can be anything), decoded without verifying."""
    body = ex.shipment_update(note=note or f"update {seq}")
    unsigned = codec.encode({
        "v": VERSION, "net": net, "author": key.public.raw, "seq": seq, "prev": prev,
        "ts": ts + seq, "type": "shipment.update", "body": body,
    })
    return Record.from_bytes(codec.encode([unsigned, sig(key, unsigned)]), verify=False)


def chain(key: SigningKey, n: int, *, after: Record | None = None, inner: Signer = good_sig,
          head: Signer = good_sig) -> list[Record]:
    """`n` linked records of `key`'s feed; `inner` signs all but the last, `head` the last."""
    out: list[Record] = []
    prev = after
    start = after.seq + 1 if after else 1
    for i in range(n):
        sig = head if i == n - 1 else inner
        rec = make(key, start + i, prev.id if prev else None, sig=sig)
        out.append(rec)
        prev = rec
    return out


def head_of(rec: Record) -> Head:
    return Head(rec.seq, rec.id)


FEED = chain(ALICE, 5)


# -- classify --------------------------------------------------------------------------


def test_classify_without_a_head() -> None:
    assert classify(FEED[0], None) is Placement.APPEND
    assert classify(FEED[1], None) is Placement.GAP
    assert classify(FEED[4], None) is Placement.GAP


def test_classify_against_a_head() -> None:
    head = head_of(FEED[1])
    assert classify(FEED[2], head) is Placement.APPEND
    assert classify(FEED[3], head) is Placement.GAP
    assert classify(FEED[4], head) is Placement.GAP
    assert classify(FEED[1], head) is Placement.KNOWN
    assert classify(FEED[0], head) is Placement.KNOWN


def test_classify_a_broken_link() -> None:
    head = head_of(FEED[1])
    fork = make(ALICE, 3, FEED[0].id)  # seq 3 naming seq 1 as its predecessor
    assert classify(fork, head) is Placement.BROKEN_LINK
    stranger = make(ALICE, 3, ex.record_id("nowhere"))
    assert classify(stranger, head) is Placement.BROKEN_LINK


def test_classify_a_different_record_at_a_known_seq_is_known() -> None:
    # The caller compares it with the record it holds; a different id is a fork.
    twin = make(ALICE, 2, FEED[0].id, note="a different update")
    assert twin.id != FEED[1].id
    assert classify(twin, head_of(FEED[2])) is Placement.KNOWN


# -- equivocation proofs ---------------------------------------------------------------------


def same_seq_fork() -> tuple[Record, Record]:
    return FEED[2], make(ALICE, 3, FEED[1].id, note="the other story")


def broken_link_fork() -> tuple[Record, Record]:
    return FEED[1], make(ALICE, 3, ex.record_id("a record 2 nobody has seen"))


@pytest.mark.parametrize("build", [same_seq_fork, broken_link_fork], ids=["same_seq", "link"])
def test_proof_of_a_fork_verifies_and_round_trips(
    build: Callable[[], tuple[Record, Record]],
) -> None:
    a, b = build()
    proof = EquivocationProof.of(a, b)
    proof.verify()
    assert proof.author == ALICE.public.raw
    assert EquivocationProof.of(b, a) == proof  # canonical order whatever the argument order
    data = proof.to_bytes()
    back = EquivocationProof.from_bytes(data)
    assert back == proof
    assert back.to_bytes() == data
    assert (back.first.wire, back.second.wire) == (proof.first.wire, proof.second.wire)


def test_proof_seq_is_where_the_dispute_starts() -> None:
    assert EquivocationProof.of(*same_seq_fork()).seq == 3
    assert EquivocationProof.of(*broken_link_fork()).seq == 2


def test_proof_decodes_standalone_from_bytes_only() -> None:
    a, b = same_seq_fork()
    data = codec.encode([a.wire, b.wire] if (a.seq, a.id) < (b.seq, b.id) else [b.wire, a.wire])
    proof = EquivocationProof.from_bytes(data)
    proof.verify()


def test_proof_has_one_encoding() -> None:
    proof = EquivocationProof.of(*same_seq_fork())
    with pytest.raises(VerificationError):
        EquivocationProof(proof.second, proof.first)
    with pytest.raises(VerificationError):
        EquivocationProof.from_bytes(codec.encode([proof.second.wire, proof.first.wire]))
    link = EquivocationProof.of(*broken_link_fork())
    with pytest.raises(VerificationError):
        EquivocationProof(link.second, link.first)


def test_proof_rejects_the_same_record_twice() -> None:
    with pytest.raises(VerificationError, match="same"):
        EquivocationProof.of(FEED[2], FEED[2])


def test_proof_rejects_correctly_linked_records() -> None:
    with pytest.raises(VerificationError, match="link correctly"):
        EquivocationProof.of(FEED[1], FEED[2])


def test_proof_rejects_records_too_far_apart() -> None:
    with pytest.raises(VerificationError, match="adjacent"):
        EquivocationProof.of(FEED[0], FEED[2])


def test_proof_rejects_different_authors() -> None:
    bob = chain(BOB, 3)
    with pytest.raises(VerificationError, match="different authors"):
        EquivocationProof.of(FEED[2], bob[2])
    with pytest.raises(VerificationError, match="different authors"):
        EquivocationProof.of(FEED[1], bob[2])


def test_proof_rejects_different_networks() -> None:
    other = make(ALICE, 3, FEED[1].id, net=OTHER_NET)
    with pytest.raises(VerificationError, match="networks"):
        EquivocationProof.of(FEED[2], other)


def test_proof_rejects_a_forged_signature() -> None:
    forged = make(ALICE, 3, FEED[1].id, sig=garbage_sig, note="framed")
    with pytest.raises(VerificationError):
        EquivocationProof.of(FEED[2], forged)
    # Someone else's signature on a record naming Alice as author is a forgery too.
    framed = make(ALICE, 3, FEED[1].id, note="framed by bob",
                  sig=lambda _k, u: BOB.sign(SIGNING_DOMAIN + u))
    with pytest.raises(VerificationError):
        EquivocationProof.of(FEED[2], framed)
    # And such a pair cannot be smuggled in as bytes.
    first, second = sorted((FEED[2], forged), key=lambda r: (r.seq, r.id))
    with pytest.raises(VerificationError):
        EquivocationProof.from_bytes(codec.encode([first.wire, second.wire]))


@pytest.mark.parametrize(
    "data",
    [b"", b"\x90", codec.encode([b"x"]), codec.encode([1, 2]), codec.encode({"a": b"", "b": b""})],
)
def test_proof_from_garbage_is_a_decode_error(data: bytes) -> None:
    with pytest.raises(DecodeError):
        EquivocationProof.from_bytes(data)


# -- verify_range ------------------------------------------------------------------------------

LONG = chain(ALICE, 1000)


def test_a_run_of_a_thousand_records_is_accepted() -> None:
    verify_range(LONG, None)


def test_a_run_is_authenticated_by_its_head_signature_alone() -> None:
    # The inner records carry well-formed garbage signatures: only the head's is checked.
    run = chain(ALICE, 1000, inner=garbage_sig)
    for rec in run[:-1]:
        with pytest.raises(VerificationError):
            rec.verify_signature()
    verify_range(run, None)
    # The same run with a bad head signature is refused.
    bad_head = chain(ALICE, 1000, inner=garbage_sig, head=garbage_sig)
    with pytest.raises(VerificationError):
        verify_range(bad_head, None)
    with pytest.raises(VerificationError):
        verify_range(chain(ALICE, 3, head=garbage_sig), None)


def test_a_head_signed_by_someone_else_is_refused() -> None:
    run = chain(ALICE, 5, head=lambda _k, u: BOB.sign(SIGNING_DOMAIN + u))
    with pytest.raises(VerificationError):
        verify_range(run, None)


def test_an_empty_run_is_trivially_fine() -> None:
    verify_range([], None)
    verify_range([], head_of(FEED[0]))


def test_a_run_after_an_anchor() -> None:
    rest = chain(ALICE, 10, after=FEED[4])
    verify_range(rest, head_of(FEED[4]))
    verify_range(LONG[500:], head_of(LONG[499]))


def test_a_run_without_an_anchor_must_start_at_seq_1() -> None:
    with pytest.raises(FeedError, match="seq 1"):
        verify_range(LONG[1:], None)


def test_a_run_with_a_wrong_anchor_is_refused() -> None:
    with pytest.raises(FeedError, match="anchor"):
        verify_range(LONG[10:20], head_of(LONG[8]))  # seq off by one
    with pytest.raises(FeedError, match="anchor"):
        verify_range(LONG[10:20], Head(10, ex.record_id("not record 10")))  # id mismatch
    with pytest.raises(FeedError, match="anchor"):
        verify_range(LONG[:5], head_of(LONG[0]))  # a run from seq 1 has no anchor


def test_a_run_with_a_gap_is_refused() -> None:
    with pytest.raises(FeedError, match="breaks"):
        verify_range(LONG[:10] + LONG[11:20], None)


def test_a_run_with_a_swapped_pair_is_refused() -> None:
    run = list(LONG[:10])
    run[4], run[5] = run[5], run[4]
    with pytest.raises(FeedError, match="breaks"):
        verify_range(run, None)


def test_a_run_with_a_substituted_record_is_refused() -> None:
    # Same seq, validly signed, but not the record its successor names.
    run = list(LONG[:10])
    run[4] = make(ALICE, 5, run[3].id, note="substitute")
    with pytest.raises(FeedError, match="breaks"):
        verify_range(run, None)


def test_a_run_mixing_authors_is_refused() -> None:
    bob = chain(BOB, 10)
    with pytest.raises(FeedError, match="mixes"):
        verify_range(LONG[:5] + bob[5:], None)
    # Even if Bob's record claimed Alice's predecessor, the author differs.
    intruder = make(BOB, 6, LONG[4].id)
    with pytest.raises(FeedError, match="mixes"):
        verify_range([*LONG[:5], intruder], None)


def test_a_run_mixing_networks_is_refused() -> None:
    stray = make(ALICE, 6, LONG[4].id, net=OTHER_NET)
    with pytest.raises(FeedError, match="mixes"):
        verify_range([*LONG[:5], stray], None)
