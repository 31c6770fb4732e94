"""Merkle trees of RFC 6962 / RFC 9162 section 2.1: roots, inclusion and consistency proofs.

Theory of operation. MTH (RFC 9162 2.1.1) splits n > 1 leaves at k, the
largest power of two below n. `MerkleTree` instead stores every level, built
bottom-up by pairing adjacent nodes and promoting a lone last node unchanged:
the same tree, since the left side of every split is complete, so node j of
level L is the MTH of leaves [j * 2**L, min((j + 1) * 2**L, n)) and proofs are
read off the levels in O(log n). Verification follows RFC 9162 2.1.3.2 and
2.1.4.2 step by step and trusts neither a proof's length nor its hash sizes.

Hash-agnostic: `SHA256_RFC6962` is the RFC's own hasher (for the Certificate
Transparency known-answer tests); `BLAKE2B`, domain-separated through
`crypto.hashing`, is sealchain's production hasher and the default. No I/O.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Final

from crypto.errors import CryptoError, VerificationError
from crypto.hashing import DIGEST_SIZE, MERKLE_LEAF, MERKLE_NODE, h
from crypto.hashing import hasher as _personalised


@dataclass(frozen=True, slots=True, kw_only=True)
class Hasher:
    """How leaves and interior nodes are hashed; every hash is `digest_size` bytes."""

    name: str
    digest_size: int
    leaf_fn: Callable[[bytes], bytes]
    node_fn: Callable[[bytes, bytes], bytes]
    empty_root: bytes

    def __post_init__(self) -> None:
        if len(self.empty_root) != self.digest_size:
            raise CryptoError(f"hasher {self.name}: empty root is not {self.digest_size} bytes")

    def leaf(self, data: bytes) -> bytes:
        """The hash of a leaf holding `data`."""
        return self.leaf_fn(data)

    def node(self, left: bytes, right: bytes) -> bytes:
        """The hash of an interior node over two child hashes."""
        return self.node_fn(left, right)

    def empty(self) -> bytes:
        """The root of the tree with no leaves."""
        return self.empty_root


def _sha256_leaf(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def _sha256_node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


# Personalised once, copied per hash: the same digests as `h(MERKLE_LEAF, ...)` and
# `h(MERKLE_NODE, ...)` at about 60% of the cost (a manifest of 100,000 items is
# 200,000 hashes).
_LEAF_STATE: Final = _personalised(MERKLE_LEAF)
_NODE_STATE: Final = _personalised(MERKLE_NODE)


def _blake2b_leaf(data: bytes) -> bytes:
    state = _LEAF_STATE.copy()
    state.update(data)
    return state.digest()


def _blake2b_node(left: bytes, right: bytes) -> bytes:
    # No length prefix needed: both children are exactly DIGEST_SIZE bytes.
    state = _NODE_STATE.copy()
    state.update(left)
    state.update(right)
    return state.digest()


SHA256_RFC6962: Final = Hasher(
    name="sha256-rfc6962",
    digest_size=32,
    leaf_fn=_sha256_leaf,
    node_fn=_sha256_node,
    empty_root=hashlib.sha256(b"").digest(),
)

BLAKE2B: Final = Hasher(
    name="blake2b-256-sealchain",
    digest_size=DIGEST_SIZE,
    leaf_fn=_blake2b_leaf,
    node_fn=_blake2b_node,
    empty_root=h(MERKLE_LEAF, b""),
)


def _split(n: int) -> int:
    """RFC 9162's k for n > 1: the largest power of two smaller than n."""
    return 1 << ((n - 1).bit_length() - 1)


def _next_level(level: list[bytes], node: Callable[[bytes, bytes], bytes]) -> list[bytes]:
    """Pair adjacent nodes; a lone last node is promoted unchanged."""
    up = [node(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
    if len(level) % 2:
        up.append(level[-1])
    return up


def _leaf_hash_list(leaf_hashes: Iterable[bytes], hasher: Hasher) -> list[bytes]:
    hashes = list(leaf_hashes)
    for i, leaf_hash in enumerate(hashes):
        if len(leaf_hash) != hasher.digest_size:
            raise CryptoError(
                f"leaf hash {i} is {len(leaf_hash)} bytes, {hasher.name} makes {hasher.digest_size}"
            )
    return hashes


def _check_digest(value: bytes, what: str, hasher: Hasher) -> None:
    if len(value) != hasher.digest_size:
        raise VerificationError(
            f"{what} is {len(value)} bytes, {hasher.name} hashes are {hasher.digest_size}"
        )


class MerkleTree:
    """Every level of the tree over a fixed list of leaves; the root and proofs in O(log n)."""

    __slots__ = ("_hasher", "_levels")

    _hasher: Hasher
    _levels: list[list[bytes]]

    def __init__(self, leaves: Iterable[bytes], hasher: Hasher = BLAKE2B) -> None:
        self._build([hasher.leaf(data) for data in leaves], hasher)

    @classmethod
    def from_leaf_hashes(cls, leaf_hashes: Iterable[bytes], hasher: Hasher = BLAKE2B) -> MerkleTree:
        """The tree over leaves that are already hashed with `hasher.leaf`."""
        tree = cls.__new__(cls)
        tree._build(_leaf_hash_list(leaf_hashes, hasher), hasher)
        return tree

    def _build(self, leaf_hashes: list[bytes], hasher: Hasher) -> None:
        self._hasher = hasher
        self._levels = [leaf_hashes]
        while len(self._levels[-1]) > 1:
            self._levels.append(_next_level(self._levels[-1], hasher.node))

    @property
    def hasher(self) -> Hasher:
        return self._hasher

    @property
    def size(self) -> int:
        """The number of leaves."""
        return len(self._levels[0])

    @property
    def root(self) -> bytes:
        """MTH over all leaves."""
        return self._levels[-1][0] if self.size else self._hasher.empty()

    def root_at(self, size: int) -> bytes:
        """MTH over the first `size` leaves: the root this tree had at that size."""
        if not 0 <= size <= self.size:
            raise CryptoError(f"tree size {size} is outside 0..{self.size}")
        return self._range_hash(0, size) if size else self._hasher.empty()

    def inclusion_proof(self, index: int) -> list[bytes]:
        """The audit path PATH(index, D[n]) of RFC 6962 2.1.1, from the leaf upwards."""
        self._check_index(index)
        proof: list[bytes] = []
        for level in self._levels[:-1]:
            sibling = index ^ 1
            if sibling < len(level):
                proof.append(level[sibling])
            index >>= 1
        return proof

    def consistency_proof(self, old_size: int) -> list[bytes]:
        """PROOF(old_size, D[n]) of RFC 6962 2.1.2; empty when old_size is 0 or n."""
        if not 0 <= old_size <= self.size:
            raise CryptoError(f"old tree size {old_size} is outside 0..{self.size}")
        proof: list[bytes] = []
        if 0 < old_size < self.size:
            self._subproof(old_size, 0, self.size, True, proof)
        return proof

    def _check_index(self, index: int) -> None:
        if not 0 <= index < self.size:
            raise CryptoError(f"leaf index {index} is outside a tree of {self.size} leaves")

    def _range_hash(self, start: int, end: int) -> bytes:
        """MTH over leaves [start, end), 0 <= start < end <= n, in O(log n) node hashes."""
        width = end - start
        level = (width - 1).bit_length()  # the smallest L with 2**L >= width
        if start % (1 << level) == 0 and (width == 1 << level or end == self.size):
            return self._levels[level][start >> level]
        k = _split(width)
        return self._hasher.node(
            self._range_hash(start, start + k), self._range_hash(start + k, end)
        )

    def _subproof(self, m: int, start: int, end: int, complete: bool, out: list[bytes]) -> None:
        """Append SUBPROOF(m, D[start:end], complete) of RFC 6962 2.1.2 to `out`."""
        if m == end - start:
            if not complete:
                out.append(self._range_hash(start, end))
            return
        k = _split(end - start)
        if m <= k:
            self._subproof(m, start, start + k, complete, out)
            out.append(self._range_hash(start + k, end))
        else:
            self._subproof(m - k, start + k, end, False, out)
            out.append(self._range_hash(start, start + k))


def root(leaves: Sequence[bytes], hasher: Hasher = BLAKE2B) -> bytes:
    """MTH over `leaves` (RFC 9162 2.1.1)."""
    leaf, node = hasher.leaf_fn, hasher.node_fn
    level = [leaf(data) for data in leaves]  # our own hashes: no size to check
    if not level:
        return hasher.empty()
    while len(level) > 1:
        level = _next_level(level, node)
    return level[0]


def root_from_leaf_hashes(leaf_hashes: Iterable[bytes], hasher: Hasher = BLAKE2B) -> bytes:
    """MTH over leaves that are already hashed with `hasher.leaf`."""
    level = _leaf_hash_list(leaf_hashes, hasher)
    if not level:
        return hasher.empty()
    while len(level) > 1:
        level = _next_level(level, hasher.node)
    return level[0]


def inclusion_proof(leaves: Sequence[bytes], index: int, hasher: Hasher = BLAKE2B) -> list[bytes]:
    """The audit path for leaf `index`; build a `MerkleTree` for many proofs."""
    return MerkleTree(leaves, hasher).inclusion_proof(index)


def consistency_proof(
    leaves: Sequence[bytes], old_size: int, hasher: Hasher = BLAKE2B
) -> list[bytes]:
    """The proof that the first `old_size` leaves are a prefix of all of `leaves`."""
    return MerkleTree(leaves, hasher).consistency_proof(old_size)


def root_from_inclusion_proof(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], hasher: Hasher = BLAKE2B
) -> bytes:
    """The root that `proof` implies for `leaf_hash` at `index` (RFC 9162 2.1.3.2, steps 1-4)."""
    if not 0 <= index < size:
        raise VerificationError(f"leaf index {index} is outside a tree of {size} leaves")
    _check_digest(leaf_hash, "leaf hash", hasher)
    what = f"inclusion proof for leaf {index} of {size} ({len(proof)} hashes)"
    fn, sn = index, size - 1
    r = leaf_hash
    for i, p in enumerate(proof):
        _check_digest(p, f"inclusion proof hash {i}", hasher)
        if sn == 0:
            raise VerificationError(f"{what} is too long")
        if fn & 1 or fn == sn:
            r = hasher.node(p, r)
            # A last node with no right sibling is promoted: skip those levels.
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = hasher.node(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise VerificationError(f"{what} is too short")
    return r


def verify_inclusion(
    leaf: bytes,
    index: int,
    size: int,
    proof: Sequence[bytes],
    root: bytes,
    hasher: Hasher = BLAKE2B,
) -> None:
    """Check that leaf data `leaf` sits at `index` in the tree of `size` leaves with `root`."""
    _check_digest(root, "root", hasher)
    computed = root_from_inclusion_proof(hasher.leaf(leaf), index, size, proof, hasher)
    if computed != root:
        raise VerificationError(
            f"inclusion proof for leaf {index} of {size} does not lead to the root"
        )


def verify_consistency(
    old_size: int,
    new_size: int,
    old_root: bytes,
    new_root: bytes,
    proof: Sequence[bytes],
    hasher: Hasher = BLAKE2B,
) -> None:
    """Check that the tree (old_size, old_root) is a prefix of (new_size, new_root).

    RFC 9162 2.1.4.2 for 0 < old_size < new_size. Equal sizes need an empty
    proof and equal roots; old_size 0 needs an empty proof and the empty root.
    """
    _check_digest(old_root, "old root", hasher)
    _check_digest(new_root, "new root", hasher)
    for i, c in enumerate(proof):
        _check_digest(c, f"consistency proof hash {i}", hasher)
    if not 0 <= old_size <= new_size:
        raise VerificationError(f"tree sizes go from {old_size} to {new_size}")
    what = f"consistency proof from {old_size} to {new_size} leaves ({len(proof)} hashes)"
    if old_size == 0 or old_size == new_size:
        if proof:
            raise VerificationError(f"{what} must be empty")
        if old_size == 0 and old_root != hasher.empty():
            raise VerificationError("old root of an empty tree is not the empty root")
        if old_size == new_size and old_root != new_root:
            raise VerificationError(f"roots of the same tree size {old_size} differ")
        return
    if not proof:
        raise VerificationError(f"{what} is empty")
    path = list(proof)
    if old_size & (old_size - 1) == 0:  # a complete old tree is its own first node
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise VerificationError(f"{what} is too long")
        if fn & 1 or fn == sn:
            fr = hasher.node(c, fr)
            sr = hasher.node(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = hasher.node(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise VerificationError(f"{what} is too short")
    if fr != old_root:
        raise VerificationError(f"{what} does not lead to the old root")
    if sr != new_root:
        raise VerificationError(f"{what} does not lead to the new root")
