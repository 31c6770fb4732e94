"""Customs records: declarations lodged for a shipment, and customs actions on objects."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from protocol import schema
from protocol.bodies.common import (
    COUNTRY,
    GOODS_REF,
    SHIPMENT_ID,
    Goods,
    ObjectRef,
    containers,
    text,
)
from protocol.errors import ValidationError
from protocol.schema import f, register

__all__ = ["CustomsDeclaration", "CustomsAction", "PROCEDURES", "ACTIONS", "RESULTS"]

PROCEDURES: Final = ("import", "export", "transit")
ACTIONS: Final = ("hold", "inspect", "release", "seize", "result")
RESULTS: Final = ("conform", "nonconform")


@register("customs.declaration")
@dataclass(frozen=True, slots=True, kw_only=True)
class CustomsDeclaration(schema.Body):
    """A declaration of `shipment`'s goods to the customs of `jurisdiction`."""

    shipment: str = f(SHIPMENT_ID)
    jurisdiction: str = f(COUNTRY)
    procedure: str = f(schema.one_of(*PROCEDURES))
    declarant: str = f(text(200))
    containers: tuple[str, ...] = f(containers())
    goods: tuple[Goods, ...] = f(schema.list_of(schema.struct(Goods), min=1, max=1000))


@register("customs.action")
@dataclass(frozen=True, slots=True, kw_only=True)
class CustomsAction(schema.Body):
    """A customs authority acts on `subject`; an inspection's outcome is action "result"."""

    subject: ObjectRef = f(GOODS_REF)
    action: str = f(schema.one_of(*ACTIONS))
    result: str | None = f(schema.one_of(*RESULTS), default=None)
    note: str | None = f(text(500), default=None)

    def validate(self, path: str) -> None:
        if self.action == "result" and self.result is None:
            raise ValidationError(
                f"{path}.result", "required", "an inspection result needs a result"
            )
        if self.action != "result" and self.result is not None:
            raise ValidationError(
                f"{path}.result", "action", f"a {self.action} action has no result"
            )
