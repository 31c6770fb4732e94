"""Shipment records: a shipment's plan (route, parties, containers, goods) and its status."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from protocol import schema
from protocol.bodies.common import (
    LOCODE,
    SHIPMENT_ID,
    TIMESTAMP,
    Goods,
    Place,
    containers,
    text,
)
from protocol.schema import f, register

__all__ = ["ShipmentCreate", "ShipmentUpdate", "SHIPMENT_STATUSES", "MAX_SILENCE_MS"]

SHIPMENT_STATUSES: Final = ("booked", "in_transit", "arrived", "delivered", "cancelled")
MIN_SILENCE_MS: Final = 60_000
MAX_SILENCE_MS: Final = 90 * 24 * 3600 * 1000


@register("shipment.create")
@dataclass(frozen=True, slots=True, kw_only=True)
class ShipmentCreate(schema.Body):
    """Books a shipment. `route` lists the planned ports of call in order.

    `silence_limit_ms` overrides how long the shipment may go without a scan or
    sensor reading before the "gone silent" alert.
    """

    shipment: str = f(SHIPMENT_ID)
    origin: Place = f(schema.struct(Place))
    destination: Place = f(schema.struct(Place))
    route: tuple[str, ...] = f(schema.list_of(LOCODE, max=32))
    consignor: str = f(text(200))
    consignee: str = f(text(200))
    containers: tuple[str, ...] = f(containers())
    goods: tuple[Goods, ...] = f(schema.list_of(schema.struct(Goods), min=1, max=1000))
    silence_limit_ms: int | None = f(schema.integer(MIN_SILENCE_MS, MAX_SILENCE_MS), default=None)


@register("shipment.update")
@dataclass(frozen=True, slots=True, kw_only=True)
class ShipmentUpdate(schema.Body):
    """A new status (and optionally ETA) for a shipment."""

    shipment: str = f(SHIPMENT_ID)
    status: str = f(schema.one_of(*SHIPMENT_STATUSES))
    eta: int | None = f(TIMESTAMP, default=None)
    note: str | None = f(text(200), default=None)
