"""A Merkle inclusion proof that a token is in a container's manifest in force.

Pure, over a `node.summary.Reader`, like the views: a third party checks the
proof against the signed container.pack record it names.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import MutableMapping
from typing import Any

from crypto import merkle
from node import facts as F
from node.summary import Conflict, NotFound, Reader, current_manifest, party
from protocol.bodies import MANIFEST_CHUNK

MAX_CACHED_ITEMS = 200_000  # larger manifests' trees are rebuilt for each proof


def inclusion_proof(reader: Reader, number: str, tid: bytes,
                    cache: MutableMapping[Any, Any] | None = None) -> dict[str, Any]:
    """A Merkle inclusion proof that token `tid` is in container `number`'s manifest.

    A third party checks it with `crypto.merkle.verify_inclusion(tid, index, size,
    proof, root)` against the `root` of the signed container.pack record `record`.
    `cache` (optional, e.g. a small LRU) keeps built trees by manifest.
    """
    facts = reader.facts(F.container_key(number))
    if not facts:
        raise NotFound(f"container {number} is not known")
    m = current_manifest(reader, facts)
    if m is None:
        raise NotFound(f"container {number} has no manifest")
    if not m.complete:
        raise Conflict(f"manifest of {number} has {len(m.present)} of {m.chunks} chunks")
    chunk_ids = tuple(m.present[i] for i in range(m.chunks))
    built = cache.get((m.root, chunk_ids)) if cache is not None else None
    if built is None:
        items: list[bytes] = []
        for rid in chunk_ids:
            r = reader.record(rid)
            if r is None:
                raise Conflict(f"pack record {rid.hex()} is missing")
            items.extend(r.body.items)
        tree = merkle.MerkleTree(items)
        if tree.root != m.root:
            raise Conflict(f"the chunks of {number} do not add up to the root they name")
        built = (items, tree)
        if cache is not None and len(items) <= MAX_CACHED_ITEMS:
            cache[(m.root, chunk_ids)] = built
    items, tree = built
    index = bisect_left(items, tid)
    if index >= len(items) or items[index] != tid:
        raise NotFound(f"token {tid.hex()} is not in the manifest of {number}")
    holder = reader.record(chunk_ids[index // MANIFEST_CHUNK])
    assert holder is not None
    return {"container": number, "token": tid, "root": m.root, "index": index,
            "size": len(items), "proof": tree.inclusion_proof(index), "record": holder.id,
            "chunk": holder.body.chunk, "packed_by": party(reader, holder.author)}
