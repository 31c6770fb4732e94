"""Tests for crypto.merkle: Certificate Transparency known answers, and the fast tree
checked against RFC 6962's own recursive definitions (kept here, and only here).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crypto.errors import CryptoError, VerificationError
from crypto.hashing import MERKLE_LEAF, MERKLE_NODE, h
from crypto.merkle import (
    BLAKE2B,
    SHA256_RFC6962,
    Hasher,
    MerkleTree,
    consistency_proof,
    inclusion_proof,
    root,
    root_from_inclusion_proof,
    root_from_leaf_hashes,
    verify_consistency,
    verify_inclusion,
)

HASHERS = [pytest.param(SHA256_RFC6962, id="sha256"), pytest.param(BLAKE2B, id="blake2b")]

# --- the reference: RFC 6962 section 2.1, word for word and slow -------------------


def _k(n: int) -> int:
    k = 1
    while 2 * k < n:
        k *= 2
    return k


def mth(d: Sequence[bytes], hs: Hasher) -> bytes:
    if not d:
        return hs.empty()
    if len(d) == 1:
        return hs.leaf(d[0])
    k = _k(len(d))
    return hs.node(mth(d[:k], hs), mth(d[k:], hs))


def path(m: int, d: Sequence[bytes], hs: Hasher) -> list[bytes]:
    if len(d) == 1:
        return []
    k = _k(len(d))
    if m < k:
        return [*path(m, d[:k], hs), mth(d[k:], hs)]
    return [*path(m - k, d[k:], hs), mth(d[:k], hs)]


def subproof(m: int, d: Sequence[bytes], b: bool, hs: Hasher) -> list[bytes]:
    if m == len(d):
        return [] if b else [mth(d, hs)]
    k = _k(len(d))
    if m <= k:
        return [*subproof(m, d[:k], b, hs), mth(d[k:], hs)]
    return [*subproof(m - k, d[k:], False, hs), mth(d[:k], hs)]


def proof(m: int, d: Sequence[bytes], hs: Hasher) -> list[bytes]:
    return subproof(m, d, True, hs)


def level_root(d: Sequence[bytes], hs: Hasher) -> bytes:
    """The straightforward bottom-up root, for sizes too big for the recursion."""
    nodes = [hs.leaf(x) for x in d]
    while len(nodes) > 1:
        pairs = [nodes[i : i + 2] for i in range(0, len(nodes), 2)]
        nodes = [hs.node(p[0], p[1]) if len(p) == 2 else p[0] for p in pairs]
    return nodes[0] if nodes else hs.empty()


def distinct_leaves(n: int) -> list[bytes]:
    return [b"leaf-%d" % i for i in range(n)]


# --- known answers from Certificate Transparency ------------------------------------
#
# From transparency-dev/merkle (Google's Go Merkle library, formerly part of trillian
# and certificate-transparency-go): leaves, NodeHashes and RootHashes from
# testonly/constants.go; inclusion and consistency proofs from proof/verify_test.go
# (`inclusionProofs` there numbers leaves from 1; the indices below are from 0).

LEAVES = [
    bytes.fromhex(x)
    for x in ("", "00", "10", "2021", "3031", "40414243", "5051525354555657")
    + ("606162636465666768696a6b6c6d6e6f",)
]

ROOTS = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]

NODE_HASHES = [
    [
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7",
        "07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7",
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        "4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658",
        "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
        "46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1",
    ],
    [
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
    ],
    [
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    ],
    ["5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"],
]

INCLUSION = [  # (index, size, audit path)
    (0, 1, []),
    (
        0,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        5,
        8,
        [
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (
        1,
        5,
        [
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
]

CONSISTENCY = [  # (old size, new size, proof)
    (1, 1, []),
    (
        1,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        6,
        8,
        [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        2,
        5,
        [
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
    (
        6,
        7,
        [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
]

SOME_HASH = bytes.fromhex("abacaba000000000000000000000000000000000000000000060061e00123456")
RFC = SHA256_RFC6962


def _flip(b: bytes, bit: int = 3) -> bytes:
    return bytes([b[0] ^ (1 << bit)]) + b[1:]


@pytest.mark.parametrize("size", range(9))
def test_known_roots(size: int) -> None:
    want = bytes.fromhex(ROOTS[size])
    leaves = LEAVES[:size]
    assert root(leaves, RFC) == want
    assert root_from_leaf_hashes([RFC.leaf(x) for x in leaves], RFC) == want
    assert MerkleTree(leaves, RFC).root == want
    assert MerkleTree(LEAVES, RFC).root_at(size) == want
    assert mth(leaves, RFC) == want


def test_known_node_hashes() -> None:
    for level, hashes in enumerate(NODE_HASHES):
        width = 1 << level
        for j, want in enumerate(hashes):
            assert root(LEAVES[j * width : (j + 1) * width], RFC).hex() == want


@pytest.mark.parametrize(("index", "size", "want"), INCLUSION)
def test_known_inclusion_proofs(index: int, size: int, want: list[str]) -> None:
    leaves = LEAVES[:size]
    got = inclusion_proof(leaves, index, RFC)
    assert [x.hex() for x in got] == want
    assert path(index, leaves, RFC) == got
    root_hash = bytes.fromhex(ROOTS[size])
    verify_inclusion(leaves[index], index, size, got, root_hash, RFC)
    assert root_from_inclusion_proof(RFC.leaf(leaves[index]), index, size, got, RFC) == root_hash
    # The probes of corruptInclusionProof in transparency-dev/merkle proof/verify_test.go.
    bad: list[tuple[bytes, int, int, list[bytes], bytes]] = [
        (leaves[index], index - 1, size, got, root_hash),
        (leaves[index], index + 1, size, got, root_hash),
        (leaves[index], index ^ 2, size, got, root_hash),
        (leaves[index], index, size * 2, got, root_hash),
        (leaves[index], index, size // 2, got, root_hash),
        (b"WrongLeaf", index, size, got, root_hash),
        (leaves[index], index, size, got, RFC.empty()),
        (leaves[index], index, size, got, SOME_HASH),
        (leaves[index], index, size, [*got, b""], root_hash),
        (leaves[index], index, size, [*got, root_hash], root_hash),
        (leaves[index], index, size, [b"", *got], root_hash),
        (leaves[index], index, size, [root_hash, *got], root_hash),
    ]
    bad += [
        (leaves[index], index, size, [*got[:i], _flip(got[i]), *got[i + 1 :]], root_hash)
        for i in range(len(got))
    ]
    if got:
        bad.append((leaves[index], index, size, got[:-1], root_hash))
    if len(got) > 1:
        bad.append((leaves[index], index, size, [got[0], SOME_HASH, *got[1:]], root_hash))
    for leaf, i, n, p, r in bad:
        with pytest.raises(VerificationError):
            verify_inclusion(leaf, i, n, p, r, RFC)


@pytest.mark.parametrize(("old", "new", "want"), CONSISTENCY)
def test_known_consistency_proofs(old: int, new: int, want: list[str]) -> None:
    got = consistency_proof(LEAVES[:new], old, RFC)
    assert [x.hex() for x in got] == want
    assert proof(old, LEAVES[:new], RFC) == got
    r1, r2 = bytes.fromhex(ROOTS[old]), bytes.fromhex(ROOTS[new])
    verify_consistency(old, new, r1, r2, got, RFC)
    if not got:
        return
    # The probes of corruptConsistencyProof in transparency-dev/merkle proof/verify_test.go.
    bad: list[tuple[int, int, bytes, bytes, list[bytes]]] = [
        (old - 1, new, r1, r2, got),
        (old + 1, new, r1, r2, got),
        (old ^ 2, new, r1, r2, got),
        (old, new * 2, r1, r2, got),
        (old, new // 2, r1, r2, got),
        (old, new, b"WrongRoot", r2, got),
        (old, new, r1, b"WrongRoot", got),
        (old, new, SOME_HASH, r2, got),
        (old, new, r1, SOME_HASH, got),
        (old, new, r2, r1, got),
        (old, new, r1, r2, []),
        (old, new, r1, r2, [*got, b""]),
        (old, new, r1, r2, [*got, r1]),
        (old, new, r1, r2, [*got, r2]),
        (old, new, r1, r2, [b"", *got]),
        (old, new, r1, r2, [r1, *got]),
        (old, new, r1, r2, [r2, *got]),
        (old, new, r1, r2, [got[0], *got]),
        (old, new, r1, r2, got[:-1]),
    ]
    bad += [
        (old, new, r1, r2, [*got[:i], _flip(got[i], 4), *got[i + 1 :]]) for i in range(len(got))
    ]
    for m, n, a, b, p in bad:
        with pytest.raises(VerificationError):
            verify_consistency(m, n, a, b, p, RFC)


def test_consistency_edge_cases() -> None:
    # After TestVerifyConsistency in transparency-dev/merkle proof/verify_test.go; sealchain
    # also insists that the root of the empty tree is the empty root.
    empty, r1, r2 = RFC.empty(), bytes.fromhex(ROOTS[1]), bytes.fromhex(ROOTS[2])
    verify_consistency(0, 0, empty, empty, [], RFC)
    verify_consistency(0, 1, empty, r1, [], RFC)
    verify_consistency(1, 1, r1, r1, [], RFC)
    for m, n, a, b, p in [
        (0, 0, empty, r1, []),  # roots differ
        (1, 1, r1, r2, []),
        (0, 1, r1, r1, []),  # the empty tree has the empty root
        (1, 0, r1, empty, []),  # time travel
        (2, 1, r2, r1, []),
        (-1, 1, empty, r1, []),
        (1, 2, r1, r2, []),  # empty proof
        (0, 0, empty, empty, [empty]),  # equal roots, but a proof
        (0, 1, empty, r1, [empty]),
        (1, 1, r1, r1, [empty]),
        (1, 2, r1[:31], r2, [RFC.leaf(LEAVES[1])]),  # wrong-sized hashes
        (1, 2, r1, r2 + b"\x00", [RFC.leaf(LEAVES[1])]),
        (1, 2, r1, r2, [RFC.leaf(LEAVES[1])[:16]]),
    ]:
        with pytest.raises(VerificationError):
            verify_consistency(m, n, a, b, p, RFC)
    verify_consistency(1, 2, r1, r2, [RFC.leaf(LEAVES[1])], RFC)


def test_inclusion_rejects_malformed_input() -> None:
    leaf_hash = RFC.leaf(b"data")  # the root of a one-leaf tree is its leaf hash
    verify_inclusion(b"data", 0, 1, [], leaf_hash, RFC)
    for index, size, p, r in [
        (0, 0, [], leaf_hash),  # index >= size
        (1, 1, [], leaf_hash),
        (2, 1, [], leaf_hash),
        (-1, 1, [], leaf_hash),
        (0, 1, [], b""),  # wrong-sized root
        (0, 1, [], leaf_hash + b"\x00"),
        (0, 2, [b"\x00" * 31], leaf_hash),  # wrong-sized proof hash
        (0, 1, [SOME_HASH], leaf_hash),  # too long
        (0, 2, [], leaf_hash),  # too short
    ]:
        with pytest.raises(VerificationError):
            verify_inclusion(b"data", index, size, p, r, RFC)
    with pytest.raises(VerificationError, match="leaf hash is 5 bytes"):
        root_from_inclusion_proof(b"short", 0, 1, [], RFC)
    with pytest.raises(VerificationError, match="root is 33 bytes"):
        verify_inclusion(b"data", 0, 1, [], leaf_hash + b"\x00", RFC)


def test_provers_reject_bad_arguments() -> None:
    tree = MerkleTree(LEAVES[:3], RFC)
    for index in (-1, 3):
        with pytest.raises(CryptoError):
            tree.inclusion_proof(index)
    for size in (-1, 4):
        with pytest.raises(CryptoError):
            tree.consistency_proof(size)
        with pytest.raises(CryptoError):
            tree.root_at(size)
    with pytest.raises(CryptoError):
        inclusion_proof([], 0)
    with pytest.raises(CryptoError):
        MerkleTree.from_leaf_hashes([b"\x00" * 31], RFC)
    with pytest.raises(CryptoError):
        root_from_leaf_hashes([RFC.empty(), b""], RFC)


# --- the production hasher ----------------------------------------------------------


def test_blake2b_is_the_sealchain_hasher_and_the_default() -> None:
    a, b = b"container-1", b"container-2"
    assert BLAKE2B.leaf(a) == h(MERKLE_LEAF, a)
    assert BLAKE2B.node(a, b) == h(MERKLE_NODE, a + b)
    assert BLAKE2B.empty() == h(MERKLE_LEAF, b"") == root([])
    want = h(MERKLE_NODE, h(MERKLE_LEAF, a) + h(MERKLE_LEAF, b))
    assert root([a, b]) == want == MerkleTree([a, b]).root == root([a, b], BLAKE2B)
    assert root([a, b], RFC) != want
    verify_inclusion(b, 1, 2, inclusion_proof([a, b], 1), want)
    with pytest.raises(VerificationError):
        verify_inclusion(b, 1, 2, inclusion_proof([a, b], 1, RFC), want)
    with pytest.raises(dataclasses.FrozenInstanceError):
        BLAKE2B.digest_size = 16  # type: ignore[misc]


# --- the fast tree against the reference --------------------------------------------


@pytest.mark.parametrize("hs", HASHERS)
def test_every_proof_of_small_trees_matches_the_rfc_and_verifies(hs: Hasher) -> None:
    for n in range(1, 34):
        leaves = distinct_leaves(n)
        tree = MerkleTree(leaves, hs)
        assert tree.root == mth(leaves, hs) == root(leaves, hs)
        for i in range(n):
            p = tree.inclusion_proof(i)
            assert p == path(i, leaves, hs)
            verify_inclusion(leaves[i], i, n, p, tree.root, hs)
        for m in range(n + 1):
            assert tree.root_at(m) == mth(leaves[:m], hs)
            p = tree.consistency_proof(m)
            assert p == (proof(m, leaves, hs) if m else [])
            verify_consistency(m, n, tree.root_at(m), tree.root, p, hs)


def _path_len(m: int, n: int) -> int:
    """len(PATH(m, D[n])), from the RFC recursion on sizes alone."""
    if n == 1:
        return 0
    k = _k(n)
    return 1 + (_path_len(m, k) if m < k else _path_len(m - k, n - k))


def test_tampered_inclusion_proofs_are_rejected() -> None:
    # Distinct leaves: with duplicates a leaf also sits, correctly, at other indices.
    for n in range(1, 18):
        leaves = distinct_leaves(n)
        tree = MerkleTree(leaves)
        r = tree.root
        for i in range(n):
            p = tree.inclusion_proof(i)
            cases: list[tuple[bytes, int, int, list[bytes], bytes]] = [
                (b"not-a-leaf", i, n, p, r),
                (leaves[i], i, n, p, _flip(r)),
                (leaves[i], i, n, p, BLAKE2B.empty()),
                (leaves[i], i, n, [*p, r], r),
                (leaves[i], i, n, [r, *p], r),
                (leaves[i], i, n, p[:-1], r) if p else (leaves[i], i, n, [r], r),
            ]
            cases += [(leaves[i], j, n, p, r) for j in range(-1, n + 1) if j != i]
            cases += [
                (leaves[i], i, n, [*p[:k], _flip(p[k]), *p[k + 1 :]], r) for k in range(len(p))
            ]
            # The root does not commit to the size on its own (a signed tree head does), so
            # only a size that changes the proof's shape is bound to fail.
            cases += [
                (leaves[i], i, s, p, r)
                for s in range(2 * n + 2)
                if s != n and (s <= i or _path_len(i, s) != len(p))
            ]
            for leaf, j, s, q, root_hash in cases:
                with pytest.raises(VerificationError):
                    verify_inclusion(leaf, j, s, q, root_hash)


def test_tampered_consistency_proofs_are_rejected() -> None:
    for n in range(2, 18):
        leaves = distinct_leaves(n)
        tree = MerkleTree(leaves)
        r2 = tree.root
        for m in range(1, n):
            p, r1 = tree.consistency_proof(m), tree.root_at(m)
            cases: list[tuple[int, int, bytes, bytes, list[bytes]]] = [
                (m, n, r2, r1, p),
                (m, n, _flip(r1), r2, p),
                (m, n, r1, _flip(r2), p),
                (m, n, r1, r2, p[:-1]),
                (m, n, r1, r2, [*p, r1]),
                (m, n, r1, r2, [r2, *p]),
                (m, n, r1, r2, [p[0], *p]),
            ]
            cases += [(m, n, r1, r2, [*p[:k], _flip(p[k]), *p[k + 1 :]]) for k in range(len(p))]
            cases += [(x, n, tree.root_at(x), r2, p) for x in range(1, n) if x != m]
            cases += [(m, x, r1, tree.root_at(x), p) for x in range(m, n)]
            for a, b, o, w, q in cases:
                with pytest.raises(VerificationError):
                    verify_consistency(a, b, o, w, q)


@settings(deadline=None, max_examples=100)
@given(n=st.integers(1, 300), hs=st.sampled_from([SHA256_RFC6962, BLAKE2B]), data=st.data())
def test_random_trees_match_the_rfc(n: int, hs: Hasher, data: st.DataObject) -> None:
    # Draw the size first: a bare st.lists stays mostly tiny.
    leaves = data.draw(st.lists(st.binary(max_size=6), min_size=n, max_size=n), label="leaves")
    tree = MerkleTree(leaves, hs)
    assert tree.root == mth(leaves, hs) == root(leaves, hs)
    i = data.draw(st.integers(0, n - 1), label="index")
    p = tree.inclusion_proof(i)
    assert p == path(i, leaves, hs) == inclusion_proof(leaves, i, hs)
    verify_inclusion(leaves[i], i, n, p, tree.root, hs)
    m = data.draw(st.integers(1, n), label="old_size")
    c = tree.consistency_proof(m)
    assert c == proof(m, leaves, hs) == consistency_proof(leaves, m, hs)
    assert tree.root_at(m) == mth(leaves[:m], hs)
    verify_consistency(m, n, tree.root_at(m), tree.root, c, hs)
    assert MerkleTree.from_leaf_hashes([hs.leaf(x) for x in leaves], hs).root == tree.root


@pytest.mark.parametrize("n", [1, 2, 3, 1023, 1024, 1025, 100_000])
def test_roots_at_size_match_the_naive_roots(n: int) -> None:
    leaves = [i.to_bytes(4, "big") for i in range(n)]
    tree = MerkleTree(leaves)
    assert tree.root == root(leaves) == level_root(leaves, BLAKE2B)
    if n <= 1025:
        assert tree.root == mth(leaves, BLAKE2B)


def test_proofs_in_a_large_tree() -> None:
    n = 100_000
    leaves = [i.to_bytes(4, "big") for i in range(n)]
    tree = MerkleTree(leaves, RFC)
    for i in (0, 1, 65_535, 65_536, n - 1):
        p = tree.inclusion_proof(i)
        assert len(p) <= 17
        verify_inclusion(leaves[i], i, n, p, tree.root, RFC)
    assert tree.inclusion_proof(77_777) == path(77_777, leaves, RFC)
    for m in (1, 65_536, 99_999):
        c = tree.consistency_proof(m)
        verify_consistency(m, n, tree.root_at(m), tree.root, c, RFC)
    assert tree.consistency_proof(70_001) == proof(70_001, leaves, RFC)
    assert tree.root_at(70_001) == level_root(leaves[:70_001], RFC)


@settings(deadline=None, max_examples=5)
@given(n=st.integers(1, 100_000), salt=st.binary(max_size=4), data=st.data())
def test_fast_tree_matches_the_naive_one_up_to_100_000_leaves(
    n: int, salt: bytes, data: st.DataObject
) -> None:
    # Leaves made from a drawn salt, not drawn one by one: hypothesis would spend
    # seconds building a 100,000-element list.
    leaves = [salt + i.to_bytes(4, "big") for i in range(n)]
    tree = MerkleTree(leaves)
    assert tree.root == mth(leaves, BLAKE2B) == root(leaves)
    i = data.draw(st.integers(0, n - 1), label="index")
    p = tree.inclusion_proof(i)
    assert p == path(i, leaves, BLAKE2B)
    verify_inclusion(leaves[i], i, n, p, tree.root)
    m = data.draw(st.integers(1, n), label="old_size")
    c = tree.consistency_proof(m)
    assert c == proof(m, leaves, BLAKE2B)
    assert tree.root_at(m) == mth(leaves[:m], BLAKE2B)
    verify_consistency(m, n, tree.root_at(m), tree.root, c)
