"""Observation records: scans (by people and scanners) and sensor readings (e-seals, loggers)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from protocol import schema
from protocol.bodies.common import (
    CONTAINER,
    GOODS_REF,
    LAT_UDEG,
    LON_UDEG,
    SEAL_NUMBER,
    TIMESTAMP,
    ObjectRef,
    Place,
)
from protocol.errors import ValidationError
from protocol.schema import f, register

__all__ = ["Scan", "Sensor", "SCAN_EVENTS", "SENSOR_KINDS"]

SCAN_EVENTS: Final = ("observe", "gate_in", "gate_out", "load", "discharge", "depart", "arrive")
SENSOR_KINDS: Final = ("door", "tamper", "weight", "temperature", "position")

# Per kind: the optional fields a reading must carry; every other one must be absent.
_READING_FIELDS: Final[dict[str, frozenset[str]]] = {
    "door": frozenset({"open"}),
    "tamper": frozenset(),
    "weight": frozenset({"value"}),
    "temperature": frozenset({"value"}),
    "position": frozenset({"lat_udeg", "lon_udeg"}),
}
_OPTIONAL: Final = ("value", "open", "lat_udeg", "lon_udeg")
# Per kind: which of `_OPTIONAL` are present, in that order (the fast check).
_PRESENT: Final = {k: tuple(n in f for n in _OPTIONAL) for k, f in _READING_FIELDS.items()}
_VALUE_RANGE: Final = {"weight": (0, 10**11), "temperature": (-100_000, 150_000)}  # g, milli-°C


@register("scan")
@dataclass(frozen=True, slots=True, kw_only=True)
class Scan(schema.Body):
    """`object` was seen at `place`; for a container, `seal` is the seal number read on it."""

    object: ObjectRef = f(GOODS_REF)
    place: Place = f(schema.struct(Place))
    event: str = f(schema.one_of(*SCAN_EVENTS))
    seal: str | None = f(SEAL_NUMBER, default=None)
    at: int | None = f(TIMESTAMP, default=None)

    def validate(self, path: str) -> None:
        if self.seal is not None and self.object.kind != "container":
            raise ValidationError(f"{path}.seal", "kind", "only a container carries a seal")


@register("sensor")
@dataclass(frozen=True, slots=True, kw_only=True)
class Sensor(schema.Body):
    """A signed sensor reading on `container` at time `at`.

    `value` is grams for weight and milli-degrees Celsius for temperature;
    `open` is the door state; `lat_udeg` / `lon_udeg` a position fix.
    """

    container: str = f(CONTAINER)
    kind: str = f(schema.one_of(*SENSOR_KINDS))
    at: int = f(TIMESTAMP)
    value: int | None = f(schema.integer(-100_000, 10**11), default=None)
    open: bool | None = f(schema.boolean, default=None)
    lat_udeg: int | None = f(LAT_UDEG, default=None)
    lon_udeg: int | None = f(LON_UDEG, default=None)

    def validate(self, path: str) -> None:
        present = (
            self.value is not None,
            self.open is not None,
            self.lat_udeg is not None,
            self.lon_udeg is not None,
        )
        if present != _PRESENT[self.kind]:
            self._fields_error(path)
        if self.value is not None:
            lo, hi = _VALUE_RANGE[self.kind]
            if not lo <= self.value <= hi:
                raise ValidationError(
                    f"{path}.value", "range", f"{self.kind} {self.value} is outside {lo}..{hi}"
                )

    def _fields_error(self, path: str) -> None:
        """Raise the error for the first optional field that breaks `_READING_FIELDS`."""
        wanted = _READING_FIELDS[self.kind]
        for name in _OPTIONAL:
            present = getattr(self, name) is not None
            if present and name not in wanted:
                raise ValidationError(
                    f"{path}.{name}", "kind", f"a {self.kind} reading has no {name}"
                )
            if not present and name in wanted:
                raise ValidationError(
                    f"{path}.{name}", "required", f"a {self.kind} reading needs {name}"
                )
