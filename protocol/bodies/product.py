"""Product records: minting product tokens, and recalling them.

A brand mints one token per GTIN + serial; the token id is a hash of the pair
(`common.token_id`), so a cloned serial collides with the original.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from protocol import schema
from protocol.bodies.common import (
    GLN,
    GTIN,
    LOT,
    SERIAL,
    TIMESTAMP,
    countries,
    text,
    token_id,
)
from protocol.errors import ValidationError
from protocol.schema import Check, f, register

__all__ = ["ProductMint", "Recall"]

_SERIALS: Final = schema.list_of(SERIAL, min=1, max=1000, ascending=True)


def _attrs(*, max_items: int, max_str: int) -> Check:
    # An empty map would be a second encoding of "no attributes": omit the field instead.
    def non_empty(check: Check) -> Check:
        def strict(v: Any, path: str) -> dict[str, Any]:
            out: dict[str, Any] = check(v, path)
            if not out:
                raise ValidationError(path, "length", "an empty attribute map: omit the field")
            return out

        return strict

    return schema.with_wire(schema.attrs(max_items=max_items, max_str=max_str), non_empty)


@register("product.mint")
@dataclass(frozen=True, slots=True, kw_only=True)
class ProductMint(schema.Body):
    """The brand mints one product token per serial of `gtin` in lot `lot`."""

    gtin: str = f(GTIN)
    lot: str = f(LOT)
    serials: tuple[str, ...] = f(_SERIALS)
    mark: str = f(text(100))
    markets: tuple[str, ...] = f(countries())
    facility: str = f(GLN)
    expiry: int | None = f(TIMESTAMP, default=None)
    attrs: dict[str, Any] | None = f(_attrs(max_items=32, max_str=200), default=None)

    def token_ids(self) -> tuple[bytes, ...]:
        """The ids of the minted tokens, in serial order."""
        return tuple(token_id(self.gtin, s) for s in self.serials)


@register("recall")
@dataclass(frozen=True, slots=True, kw_only=True)
class Recall(schema.Body):
    """The brand recalls a whole lot of `gtin`, or a list of serials (exactly one of the two)."""

    gtin: str = f(GTIN)
    lot: str | None = f(LOT, default=None)
    serials: tuple[str, ...] | None = f(_SERIALS, default=None)
    reason: str = f(text(200))

    def validate(self, path: str) -> None:
        if self.lot is not None and self.serials is not None:
            raise ValidationError(
                f"{path}.serials", "exclusive", "recall a lot or serials, not both"
            )
        if self.lot is None and self.serials is None:
            raise ValidationError(f"{path}.lot", "required", "recall a lot or a list of serials")
