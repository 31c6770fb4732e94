"""JSON <-> record bodies and records, and request identifiers.

JSON has no bytes: byte fields travel as lowercase hex strings, record ids as
hex, keys (a hand-over's `to`, a credential's `subject`, a delegation's
`delegate`, record authors) as did:key on the way out and did:key or hex on
the way in. Which fields are bytes comes from the body classes' type hints, so
a new record type needs no change here. Everything else passes through
unchanged and the schema (`protocol.schema`) judges it, so an error names the
field and the rule exactly as for a record from a peer.

Pure: no I/O.
"""

from __future__ import annotations

import json
import types
import typing
from typing import Any, Final, Union

from crypto.didkey import did_from_public, public_from_did
from crypto.errors import EncodingError
from protocol import identifiers as ids
from protocol import schema
from protocol.envelope import Record
from protocol.errors import ValidationError

KEY_FIELDS: Final = frozenset({"to", "subject", "delegate"})
_HEX = frozenset("0123456789abcdef")
_HINTS: dict[type, dict[str, Any]] = {}


def _hints(cls: type) -> dict[str, Any]:
    h = _HINTS.get(cls)
    if h is None:
        h = _HINTS[cls] = typing.get_type_hints(cls)
    return h


# -- JSON -> wire values --------------------------------------------------------------


def body_from_json(type_name: Any, value: Any, path: str = "body") -> dict[str, Any]:
    """The wire form of a JSON body of record type `type_name` (bytes decoded from hex).

    Only converts: unknown fields and wrong types are left for the schema to name.
    """
    if type(type_name) is not str:
        raise ValidationError("type", "type", "type is a string")
    cls = schema.TYPES.get(type_name)
    if cls is None:
        raise ValidationError("type", "unknown", f"unknown record type {type_name!r}")
    if type(value) is not dict:
        raise ValidationError(path, "type", "expected an object")
    out: dict[str, Any] = _struct_in(cls, value, path)
    return out


def _struct_in(cls: type, value: dict[str, Any], path: str) -> dict[str, Any]:
    plan = _plan(cls)
    if not plan:
        return value  # no field of this struct holds bytes: nothing to convert
    out = dict(value)
    for k, hint in plan.items():
        v = value.get(k)
        if v is not None:
            out[k] = _value_in(hint, v, f"{path}.{k}")
    return out


_PLANS: dict[type, dict[str, Any]] = {}


def _plan(cls: type) -> dict[str, Any]:
    """The fields of `cls` whose JSON form differs from the wire form (bytes somewhere inside)."""
    plan = _PLANS.get(cls)
    if plan is None:
        plan = _PLANS[cls] = {k: h for k, h in _hints(cls).items() if _has_bytes(h)}
    return plan


def _has_bytes(hint: Any) -> bool:
    if hint is bytes:
        return True
    if isinstance(hint, type) and issubclass(hint, schema.Struct):
        return bool(_plan(hint))
    return any(_has_bytes(a) for a in typing.get_args(hint))


def _value_in(hint: Any, v: Any, path: str) -> Any:
    origin = typing.get_origin(hint)
    if origin in (Union, types.UnionType):
        inner = [a for a in typing.get_args(hint) if a is not type(None)]
        return _value_in(inner[0], v, path) if len(inner) == 1 else v
    if hint is bytes:
        return parse_bytes(v, path)
    if origin is tuple:
        if type(v) is not list:
            return v
        item = typing.get_args(hint)[0]
        return [_value_in(item, x, f"{path}[{i}]") for i, x in enumerate(v)]
    if isinstance(hint, type) and issubclass(hint, schema.Struct) and type(v) is dict:
        return _struct_in(hint, v, path)
    return v


def parse_bytes(v: Any, path: str) -> bytes:
    """Bytes from a hex string, or a key from a did:key."""
    if type(v) is not str:
        raise ValidationError(path, "type", "expected a hex string")
    if v.startswith("did:"):
        try:
            return public_from_did(v).raw
        except EncodingError as exc:
            raise ValidationError(path, "did", str(exc)) from exc
    if len(v) % 2 or not set(v) <= _HEX:
        raise ValidationError(path, "hex", "expected lowercase hex, an even number of digits")
    return bytes.fromhex(v)


# -- wire values -> JSON ---------------------------------------------------------------


def jsonable(v: Any) -> Any:
    """A JSON-ready copy of `v`: bytes as hex, structs as maps, tuples as lists."""
    if isinstance(v, bytes):
        return v.hex()
    if isinstance(v, schema.Struct):
        return jsonable(v.to_value())
    if isinstance(v, (list, tuple, set, frozenset)):
        items = sorted(v) if isinstance(v, (set, frozenset)) else v
        return [jsonable(x) for x in items]
    if isinstance(v, dict):
        return {str(k): jsonable(x) for k, x in v.items()}
    return v


def body_to_json(body: schema.Body) -> dict[str, Any]:
    out = {}
    for k, v in body.to_value().items():
        out[k] = did_from_public(v) if k in KEY_FIELDS and isinstance(v, bytes) and len(v) == 32 \
            else jsonable(v)
    return out


def record_to_json(r: Record, *, wire: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": r.id.hex(),
        "type": r.type,
        "author": did_from_public(r.author),
        "seq": r.seq,
        "prev": r.prev.hex() if r.prev is not None else None,
        "ts": r.ts,
        "network": r.network.hex(),
        "body": body_to_json(r.body),
        "signature": r.signature.hex(),
    }
    if wire:
        out["wire"] = r.wire.hex()
    return out


def dumps(v: Any) -> bytes:
    return json.dumps(jsonable(v), separators=(",", ":"), ensure_ascii=False).encode()


# -- request values --------------------------------------------------------------------


def loads(data: bytes, path: str = "body") -> Any:
    """Parse a request body; `ValidationError` for anything that is not strict JSON."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValidationError(path, "json", "the request body is not UTF-8") from exc
    try:
        return json.loads(text, parse_constant=_no_constant)
    except RecursionError as exc:
        raise ValidationError(path, "json", "the request body is nested too deeply") from exc
    except ValueError as exc:
        raise ValidationError(path, "json", f"malformed JSON: {exc}") from exc


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_id(v: str, path: str) -> bytes:
    """A 32-byte id (record or token) in hex."""
    if len(v) != 64 or not set(v) <= _HEX:
        raise ValidationError(path, "format", "expected 64 lowercase hex digits")
    return bytes.fromhex(v)


def parse_key(v: str, path: str) -> bytes:
    """A public key as did:key or 64 hex digits."""
    if v.startswith("did:"):
        try:
            return public_from_did(v).raw
        except EncodingError as exc:
            raise ValidationError(path, "did", str(exc)) from exc
    return parse_id(v, path)


def parse_container(v: str, path: str) -> str:
    """An ISO 6346 container number (spaces and case are normalised)."""
    return ids.container_number(v, path)


def parse_shipment(v: str, path: str) -> str:
    out: str = schema.string(64, r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")(v, path)
    return out


def parse_int(v: str | None, path: str, *, default: int, lo: int, hi: int) -> int:
    if v is None:
        return default
    if not v.isascii() or not v.isdigit() or len(v) > 19:
        raise ValidationError(path, "type", "expected a non-negative integer")
    n = int(v)
    if not lo <= n <= hi:
        raise ValidationError(path, "range", f"{n} is outside {lo}..{hi}")
    return n


def parse_cursor(v: str | None, path: str) -> tuple[int, bytes] | None:
    """A list cursor: `0` for the beginning, or `AT:RECORD` as a page's `next` gives it."""
    if v is None:
        return None
    if v == "0":
        return (-(2**63), b"")
    at, sep, rid = v.partition(":")
    if not sep:
        raise ValidationError(path, "format", "expected 0 or AT:RECORD (a page's `next`)")
    if at.startswith("-"):
        at_n = -parse_int(at[1:], path, default=0, lo=0, hi=2**63)
    else:
        at_n = parse_int(at, path, default=0, lo=0, hi=2**63 - 1)
    return at_n, parse_id(rid, path)
