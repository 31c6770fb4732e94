"""Shared parts of the record bodies: constants, field checks, and nested structs.

Every identifier field accepts only its normal form (see `schema.normalised`),
so one body has one encoding. Units are integers: timestamps in milliseconds
since the epoch, weights in grams, temperatures in milli-degrees Celsius,
coordinates in micro-degrees.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from crypto import hashing
from protocol import identifiers as ids
from protocol import schema
from protocol.errors import ValidationError
from protocol.schema import Check, f

__all__ = [
    "ROLES",
    "DEVICES",
    "SEVERITIES",
    "MANIFEST_CHUNK",
    "MAX_TIMESTAMP",
    "ObjectRef",
    "GOODS_REF",
    "Place",
    "Goods",
    "token_id",
    "token_ref",
]

ROLES: Final = ("authority", "brand", "manufacturer", "carrier", "forwarder", "retailer", "customs")
DEVICES: Final = ("scanner", "eseal", "sensor")
SEVERITIES: Final = ("info", "low", "medium", "high", "critical")  # in increasing order
# Token ids per container.pack chunk: 1500 × 34 bytes of bin stays well under a record.
MANIFEST_CHUNK: Final = 1500
MAX_TIMESTAMP: Final = 2**53  # exclusive, as in the envelope

# -- field checks ---------------------------------------------------------------

TIMESTAMP: Final = schema.integer(0, MAX_TIMESTAMP - 1)
LAT_UDEG: Final = schema.integer(-90_000_000, 90_000_000)
LON_UDEG: Final = schema.integer(-180_000_000, 180_000_000)
WEIGHT_G: Final = schema.integer(0, 10**11)
SHIPMENT_ID: Final = schema.string(64, r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
TOKEN_HEX: Final = schema.string(64, r"[0-9a-f]{64}", min_len=64)

# Identifiers that recur in traffic (the same containers, facilities, ports and
# seals, record after record) remember the values they accepted; lots and serials
# are new in almost every record, so they do not.
CONTAINER: Final = schema.memo(schema.normalised(ids.container_number))
GTIN: Final = schema.memo(schema.normalised(ids.gtin))
SSCC: Final = schema.memo(schema.normalised(ids.sscc))
GLN: Final = schema.memo(schema.normalised(ids.gln))
COUNTRY: Final = schema.memo(schema.normalised(ids.country))
SEAL_NUMBER: Final = schema.memo(schema.normalised(ids.seal_number))
SEAL_CLASS: Final = schema.memo(schema.normalised(ids.seal_class))
HS_CODE: Final = schema.memo(schema.normalised(ids.hs_code))
LOCODE: Final = schema.memo(schema.normalised(ids.locode))
LOT: Final = schema.normalised(ids.lot)
# GS1 AI (21) serials come up to a thousand to a mint: the usual case (1 to 20
# characters of GS1 set 82, already in normal form) is checked without a call per
# serial; anything else goes through `ids.serial` for its exact error. The fast
# path must accept nothing that `ids.serial` refuses or changes (tested in
# tests/test_envelope.py against the reference).
CSET82: Final = r"""!"%&'()*+,\-./0-9:;<=>?A-Z_a-z"""
SERIAL: Final = schema.fast_path(
    schema.normalised(ids.serial), chars=CSET82, min_len=1, max_len=20
)


def text(max_len: int) -> Check:
    """Free text of at most `max_len` characters, in its normal form."""

    def check(v: Any, path: str) -> str:
        return ids.text(v, path, max_len)

    return schema.memo(schema.normalised(check), size=1024)


def countries(*, max: int = 250) -> Check:
    """A non-empty, ascending list of ISO 3166 alpha-2 codes."""
    return schema.list_of(COUNTRY, min=1, max=max, ascending=True)


def containers(*, max: int = 1000) -> Check:
    """A non-empty, ascending list of ISO 6346 container numbers."""
    return schema.list_of(CONTAINER, min=1, max=max, ascending=True)


def check_window(valid_from: int, valid_until: int, path: str) -> None:
    if not valid_from < valid_until:
        raise ValidationError(
            f"{path}.valid_until", "order", "valid_until must be after valid_from"
        )


# -- shared structs -------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class ObjectRef(schema.Struct):
    """A reference to a tracked object: a product token, a container, a shipment,
    or a party (an author key, the subject of feed-fork and author alerts).

    `id` is a token id in lowercase hex, a normalised ISO 6346 container number,
    a shipment id, or a party's public key in lowercase hex, according to `kind`.
    """

    kind: str = f(schema.one_of("token", "container", "shipment", "party"))
    id: str = f(schema.string(64))

    def validate(self, path: str) -> None:
        sub = f"{path}.id"
        if self.kind == "token" or self.kind == "party":
            TOKEN_HEX(self.id, sub)
        elif self.kind == "container":
            CONTAINER(self.id, sub)
        else:
            SHIPMENT_ID(self.id, sub)


@dataclass(frozen=True, slots=True, kw_only=True)
class Place(schema.Struct):
    """Where something is or happens: a country, optionally narrowed down."""

    country: str = f(COUNTRY)
    locode: str | None = f(LOCODE, default=None)
    gln: str | None = f(GLN, default=None)
    lat_udeg: int | None = f(LAT_UDEG, default=None)
    lon_udeg: int | None = f(LON_UDEG, default=None)
    name: str | None = f(text(100), default=None)

    def validate(self, path: str) -> None:
        if (self.lat_udeg is None) != (self.lon_udeg is None):
            missing = "lon_udeg" if self.lon_udeg is None else "lat_udeg"
            raise ValidationError(
                f"{path}.{missing}", "pair", "give both lat_udeg and lon_udeg, or neither"
            )
        if self.locode is not None and self.locode[:2] != self.country:
            raise ValidationError(
                f"{path}.locode",
                "country",
                f"locode {self.locode} is not in country {self.country}",
            )


@dataclass(frozen=True, slots=True, kw_only=True)
class Goods(schema.Struct):
    """One line of declared goods (shipment or customs declaration)."""

    hs: str = f(HS_CODE)
    description: str = f(text(200))
    quantity: int = f(schema.integer(1, 10**9))
    weight_g: int = f(WEIGHT_G)
    gtin: str | None = f(GTIN, default=None)


_REFS: dict[tuple[str, str], ObjectRef] = {}
_MAX_REFS: Final = 4096


_WIRE_ORDER: Final = ("id", "kind")


def _object_ref(v: Any, path: str, wire: bool = False) -> ObjectRef:
    """`ObjectRef.from_value` (with `wire`, `from_wire`), remembering the refs it made
    (objects recur in traffic).

    Only a map of exactly two str fields, `kind` and `id` (with `wire`, in that
    wire order), is looked up: for it the parser would make an equal (immutable)
    object. Anything else, and every first sight, is parsed afresh, so errors are
    the parser's.
    """
    parse = ObjectRef.from_wire if wire else ObjectRef.from_value
    if type(v) is dict and len(v) == 2 and (not wire or tuple(v) == _WIRE_ORDER):
        kind, id_ = v.get("kind"), v.get("id")
        if type(kind) is str and type(id_) is str:
            ref = _REFS.get((kind, id_))
            if ref is None:
                ref = parse(v, path)
                if len(_REFS) >= _MAX_REFS:
                    _REFS.clear()
                _REFS[kind, id_] = ref
            return ref
    return parse(v, path)


def _goods(ref: ObjectRef, path: str) -> ObjectRef:
    if ref.kind == "party":
        raise ValidationError(f"{path}.kind", "kind", "a party cannot be handed over or scanned")
    return ref


def GOODS_REF(v: Any, path: str) -> ObjectRef:
    """An `ObjectRef` to goods (token, container or shipment), never to a party."""
    return _goods(_object_ref(v, path), path)


def _goods_ref_wire(v: Any, path: str) -> ObjectRef:
    return _goods(_object_ref(v, path, wire=True), path)


GOODS_REF.wire = _goods_ref_wire  # type: ignore[attr-defined]  # see `schema.wire_check`


# -- helpers ------------------------------------------------------------------------


def token_id(gtin14: str, serial: str) -> bytes:
    """The id of the product token GTIN + serial: the same pair always gives the same id."""
    return hashing.h(hashing.TOKEN_ID, f"{gtin14}/{serial}".encode())


def token_ref(token_id: bytes) -> ObjectRef:
    """An `ObjectRef` to the product token with id `token_id`."""
    return ObjectRef(kind="token", id=token_id.hex())
