"""Canonical MessagePack: the only way sealchain turns values into bytes.

Rules (so that one value has exactly one encoding, and one record one id):

- values are None, bool, int (64-bit), str (UTF-8), bytes, list, and maps whose
  keys are str; no floats (quantities are integers in grams, milli-degrees,
  milliseconds, micro-degrees), no extension types, no tuples on the wire;
- maps are written with their keys sorted (by code point, which is UTF-8 byte
  order), integers and lengths in their shortest form (msgpack's packer already
  does this), str and bin kept apart;
- sizes are bounded: a document of at most `MAX_DOCUMENT` bytes, nesting at most
  `MAX_DEPTH`, and per-container limits below.

`decode()` decodes under those limits, then re-encodes and compares: anything
non-canonical (unsorted or duplicate keys, long-form integers, floats, trailing
bytes) is a `DecodeError`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any, Final

import msgpack

from protocol.errors import DecodeError, LocalProtocolError

MAX_DOCUMENT: Final = 64 * 1024
MAX_DEPTH: Final = 12
MAX_STR: Final = 16 * 1024
MAX_BIN: Final = 60 * 1024
MAX_ARRAY: Final = 4096
MAX_MAP: Final = 256

Value = Any  # None | bool | int | str | bytes | list[Value] | dict[str, Value]

_INT_MIN: Final = -(2**63)
_INT_MAX: Final = 2**64 - 1
_KEPT: Final = frozenset({str, bytes, bool, type(None)})  # encoded as they are, unchecked


def _canonical(value: Value, depth: int) -> Value:
    """A copy of `value` with maps in sorted key order; raises on what the wire forbids."""
    t = type(value)
    if t is str or t is bytes or t is bool or value is None:
        return value
    if t is int:
        if not _INT_MIN <= value <= _INT_MAX:
            raise LocalProtocolError(f"integer {value} is outside the 64-bit range")
        return value
    if depth >= MAX_DEPTH:
        raise LocalProtocolError(f"nesting deeper than {MAX_DEPTH}")
    if t is dict:
        # Key types first: sorting mixed str and bytes keys would raise TypeError.
        for k in value:
            if type(k) is not str:
                raise LocalProtocolError(f"map key {k!r} is not a string")
        out = {}
        for k in sorted(value):
            v = value[k]
            tv = type(v)
            # Members kept as they are need no call (encoding is hot in signing).
            if tv in _KEPT or (tv is int and _INT_MIN <= v <= _INT_MAX):
                out[k] = v
            else:
                out[k] = _canonical(v, depth + 1)
        return out
    if t is list or t is tuple:
        if _KEPT.issuperset(map(type, value)):
            return list(value)
        return [_canonical(v, depth + 1) for v in value]
    if t is bytearray or t is memoryview:
        return bytes(value)
    if t is float:
        raise LocalProtocolError("floats are not allowed: use integers in fixed units")
    raise LocalProtocolError(f"type {t.__name__} cannot be encoded")


def encode(value: Value) -> bytes:
    """The canonical encoding of `value`. Raises `LocalProtocolError` on what the wire forbids."""
    data: bytes = _packer()(_canonical(value, 0))
    if len(data) > MAX_DOCUMENT:
        raise LocalProtocolError(f"encoding is {len(data)} bytes, over the {MAX_DOCUMENT}-byte limit")
    return data


def encode_canonical(value: Value) -> bytes:
    """`encode` of a value already in the form `_canonical` copies values to: maps with
    str keys in sorted order, lists (no tuples), only None, bool, 64-bit int, str and
    bytes, nesting within `MAX_DEPTH`, as `Record.sign` builds a record from a parsed
    body (`schema.Struct.canonical_value`). Packed as it is, with no copy; what msgpack
    cannot pack goes through `encode`, for its exact error. The caller vouches for the
    rest (tested against `encode` for every record type)."""
    try:
        data: bytes = _packer()(value)
    except (OverflowError, TypeError, ValueError):
        return encode(value)
    if len(data) > MAX_DOCUMENT:
        raise LocalProtocolError(f"encoding is {len(data)} bytes, over the {MAX_DOCUMENT}-byte limit")
    return data


def _no_ext(code: int, data: bytes) -> Value:
    raise DecodeError(f"extension type {code} is not allowed")


def decode(data: bytes) -> Value:
    """Decode one canonical document. Raises `DecodeError` on anything else."""
    value, data = _unpack(data)
    _check_decoded(value, 0)
    # Maps are in wire order, which `_check_decoded` found sorted, so packing the
    # decoded value as it is gives the canonical encoding: it must be `data`.
    if _packer()(value) != data:
        raise DecodeError("not canonical: re-encoding gives different bytes")
    return value


def decode_trusting_schema(data: bytes) -> Value:
    """`decode` less its walk over the decoded value, for a caller whose schema does it.

    Still refused here: what is not MessagePack, trailing bytes, duplicate keys,
    integers and lengths not in their shortest form, extension types, and the size
    limits. Left to the caller, for every map and member it accepts: str keys in
    sorted order, no floats, and the nesting depth. `Record.from_bytes` uses it with
    the body schemas' `from_wire`, which check exactly that as they parse, and is
    tested to accept and refuse exactly what `decode` and the schemas do together.
    """
    value, data = _unpack(data)
    if _packer()(value) != data:
        raise DecodeError("not canonical: re-encoding gives different bytes")
    return value


def _unpack(data: bytes) -> tuple[Value, bytes]:
    """The value `data` holds (and `data` as bytes), under the limits; no canonical checks."""
    if type(data) is not bytes:
        try:
            data = bytes(data)
        except TypeError as exc:
            raise DecodeError("input is not bytes") from exc
    if not data:
        raise DecodeError("empty input")
    if len(data) > MAX_DOCUMENT:
        raise DecodeError(f"{len(data)} bytes, over the {MAX_DOCUMENT}-byte limit")
    try:
        value = msgpack.unpackb(
            data,
            raw=False,
            use_list=True,
            strict_map_key=True,
            ext_hook=_no_ext,
            max_str_len=MAX_STR,
            max_bin_len=MAX_BIN,
            max_array_len=MAX_ARRAY,
            max_map_len=MAX_MAP,
            max_ext_len=0,
        )
    except DecodeError:
        raise
    except Exception as exc:  # msgpack raises many unrelated types: map them all here
        raise DecodeError(f"not valid MessagePack: {type(exc).__name__}: {exc}") from exc
    return value, data


_local: Final = threading.local()


def _packer() -> Callable[[Value], bytes]:
    """This thread's packer (`msgpack.packb` sets up a new one, and its 256 KiB buffer, per call)."""
    try:
        pack: Callable[[Value], bytes] = _local.pack
    except AttributeError:
        pack = _local.pack = msgpack.Packer(use_bin_type=True).pack
    return pack


_SCALARS: Final = frozenset({str, bytes, bool, int, type(None)})
_STR: Final = frozenset({str})


def _non_str(keys: list[Any]) -> Any:
    return next(k for k in keys if type(k) is not str)


def _check_decoded(value: Value, depth: int) -> None:
    """Raise `DecodeError` unless a decoded value holds only what the wire allows.

    The same rules as `_canonical`, checked in place (decoding is the hot path):
    str keys in sorted order, no floats or other types, bounded nesting. Only
    containers are visited one by one; their scalar members are checked by type
    in bulk. Integers need no range check: msgpack decodes only 64-bit ones.
    """
    t = type(value)
    if t is dict:
        _check_map(value, depth)
    elif t is list:
        _check_list(value, depth)
    elif t not in _SCALARS:
        raise DecodeError(f"not canonical: type {t.__name__} is not allowed")


def canonical_keys(keys: list[Any]) -> bool:
    """Whether a map's keys, in wire order, are str in sorted order."""
    try:
        in_order = keys == sorted(keys)
    except TypeError:  # str and bytes keys mixed
        return False
    # Keys that sort are all of one type (msgpack gives str or bytes keys, which
    # do not compare), so the first key's type is every key's.
    return in_order and (not keys or type(keys[0]) is str)


def _check_map(value: dict[Any, Any], depth: int) -> None:
    if depth >= MAX_DEPTH:
        raise DecodeError(f"not canonical: nesting deeper than {MAX_DEPTH}")
    keys = [*value]
    if not canonical_keys(keys):
        if not _STR.issuperset(map(type, keys)):
            raise DecodeError(f"not canonical: map key {_non_str(keys)!r} is not a string")
        raise DecodeError("not canonical: map keys are not in sorted order")
    members = value.values()
    if not _SCALARS.issuperset(map(type, members)):
        _check_members(members, depth + 1)


def _check_list(value: list[Any], depth: int) -> None:
    if depth >= MAX_DEPTH:
        raise DecodeError(f"not canonical: nesting deeper than {MAX_DEPTH}")
    if not _SCALARS.issuperset(map(type, value)):
        _check_members(value, depth + 1)


def _check_members(members: Iterable[Any], depth: int) -> None:
    for v in members:
        t = type(v)
        if t is dict:
            _check_map(v, depth)
        elif t is list:
            _check_list(v, depth)
        elif t not in _SCALARS:
            raise DecodeError(f"not canonical: type {t.__name__} is not allowed")


def encode_local(value: Value) -> bytes:
    """Canonical encoding without the document size limit, for the node's own storage."""
    data: bytes = msgpack.packb(_canonical(value, 0), use_bin_type=True)
    return data


def decode_local(data: bytes, *, use_list: bool = True) -> Value:
    """Decode what `encode_local` wrote (trusted local storage: no canonical re-check).

    `use_list=False` gives arrays as tuples (hashable, as the node's sets of facts need).
    """
    try:
        return msgpack.unpackb(
            data, raw=False, use_list=use_list, strict_map_key=True, ext_hook=_no_ext
        )
    except DecodeError:
        raise
    except Exception as exc:
        raise DecodeError(f"stored value is not valid MessagePack: {exc}") from exc
