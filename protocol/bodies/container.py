"""Container records: create, pack (a chunked Merkle-committed manifest), seal, unpack.

A packed container's manifest is the sorted list of item token ids, committed
to by `root` (an RFC 6962 Merkle root, see `crypto`). A manifest longer than
`MANIFEST_CHUNK` items is cut into fixed slices, one `container.pack` record
each: chunk `i` holds items `i*MANIFEST_CHUNK` up to the next slice, so a
manifest has exactly one layout and a verifier knows which chunks are missing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from protocol import schema
from protocol.bodies.common import (
    CONTAINER,
    MANIFEST_CHUNK,
    SEAL_CLASS,
    SEAL_NUMBER,
    SHIPMENT_ID,
    SSCC,
    WEIGHT_G,
    text,
)
from protocol.errors import ValidationError
from protocol.schema import f, register

__all__ = [
    "ContainerCreate",
    "ContainerPack",
    "ContainerSeal",
    "ContainerUnpack",
    "MAX_MANIFEST",
    "MAX_CHUNKS",
    "chunk_count",
]

MAX_MANIFEST: Final = 1_000_000


def chunk_count(count: int) -> int:
    """How many `container.pack` chunks a manifest of `count` items takes."""
    return -(-count // MANIFEST_CHUNK)


MAX_CHUNKS: Final = chunk_count(MAX_MANIFEST)


@register("container.create")
@dataclass(frozen=True, slots=True, kw_only=True)
class ContainerCreate(schema.Body):
    """Tokenises a container (its custody starts with this record)."""

    container: str = f(CONTAINER)
    sscc: str | None = f(SSCC, default=None)
    tare_g: int = f(schema.integer(0, 10**8))
    max_gross_g: int = f(schema.integer(1, 10**9))

    def validate(self, path: str) -> None:
        if not self.tare_g < self.max_gross_g:
            raise ValidationError(
                f"{path}.tare_g", "range", "tare must be below the maximum gross weight"
            )


@register("container.pack")
@dataclass(frozen=True, slots=True, kw_only=True)
class ContainerPack(schema.Body):
    """One chunk of a container's manifest: `items` are token ids, all under `root`."""

    container: str = f(CONTAINER)
    root: bytes = f(schema.hash32)
    count: int = f(schema.integer(1, MAX_MANIFEST))
    chunk: int = f(schema.integer(0, MAX_CHUNKS - 1))
    chunks: int = f(schema.integer(1, MAX_CHUNKS))
    items: tuple[bytes, ...] = f(
        schema.list_of(schema.hash32, min=1, max=MANIFEST_CHUNK, ascending=True)
    )
    weight_g: int = f(WEIGHT_G)  # declared gross goods weight; the same in every chunk
    shipment: str | None = f(SHIPMENT_ID, default=None)

    def validate(self, path: str) -> None:
        want = chunk_count(self.count)
        if self.chunks != want:
            raise ValidationError(
                f"{path}.chunks",
                "layout",
                f"{self.count} items take {want} chunks, not {self.chunks}",
            )
        if not self.chunk < self.chunks:
            raise ValidationError(f"{path}.chunk", "range", f"chunk {self.chunk} of {self.chunks}")
        last = self.chunk == self.chunks - 1
        size = self.count - (self.chunks - 1) * MANIFEST_CHUNK if last else MANIFEST_CHUNK
        if len(self.items) != size:
            raise ValidationError(
                f"{path}.items",
                "layout",
                f"chunk {self.chunk} holds {size} items, not {len(self.items)}",
            )


@register("container.seal")
@dataclass(frozen=True, slots=True, kw_only=True)
class ContainerSeal(schema.Body):
    """Records the ISO 17712 seal put on a container."""

    container: str = f(CONTAINER)
    seal: str = f(SEAL_NUMBER)
    seal_class: str = f(SEAL_CLASS)


@register("container.unpack")
@dataclass(frozen=True, slots=True, kw_only=True)
class ContainerUnpack(schema.Body):
    """Empties a container: its manifest no longer applies."""

    container: str = f(CONTAINER)
    reason: str | None = f(text(200), default=None)
