"""`Record.from_bytes` leaves the codec's walk (key order, value types, depth) to the
body schemas (`Struct.from_wire`): it must accept and refuse exactly what the plain
path (`codec.decode`, header rules, signature, `parse_body`) does, with the same errors.

Records of every type are mutated where the walk matters (a map's keys out of order,
at any depth; a float, a bytes key, bytes for str, a deeper nesting, a nil, an extra or
a missing key), signed again so that only the mutation is wrong, and decoded both ways.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crypto.errors import Error
from crypto.keys import SigningKey
from protocol import codec
from protocol.envelope import SIGNING_DOMAIN, Record
from protocol.errors import DecodeError, ValidationError
from tests import examples as ex
from tests.test_envelope import SAMPLES

KEY = SigningKey(bytes([9]) * 32)
SHAPES = sorted({**ex.EXAMPLES, **ex.VARIANTS})

Path = tuple[Any, ...]


def unsigned_map(shape: str) -> dict[str, Any]:
    """The decoded unsigned map of a valid record of `shape` (keys in wire order)."""
    r = Record.sign(KEY, network=ex.NETWORK, seq=3, prev=b"\x01" * 32, ts=ex.T0,
                    type=shape.split("/")[0], body={**ex.EXAMPLES, **ex.VARIANTS}[shape]())
    value: dict[str, Any] = codec.decode(r.unsigned_bytes())
    return value


def wire(value: Any, *, sig: bytes | None = None) -> bytes:
    """A record of any unsigned value, packed as it is (maps in their order), signed."""
    unsigned = msgpack.packb(value, use_bin_type=True)
    if sig is None:
        sig = KEY.sign(SIGNING_DOMAIN + unsigned)
    packed: bytes = msgpack.packb([unsigned, sig], use_bin_type=True)
    return packed


def places(value: Any, path: Path = ()) -> Iterator[tuple[Path, Any]]:
    """Every (path, value) inside `value`, itself first."""
    yield path, value
    if type(value) is dict:
        for k, v in value.items():
            yield from places(v, (*path, k))
    elif type(value) is list:
        for i, v in enumerate(value):
            yield from places(v, (*path, i))


def replace(value: Any, path: Path, new: Any) -> Any:
    if not path:
        return new
    head, rest = path[0], path[1:]
    if type(value) is dict:
        return {k: (replace(v, rest, new) if k == head else v) for k, v in value.items()}
    return [replace(v, rest, new) if i == head else v for i, v in enumerate(value)]


def get(value: Any, path: Path) -> Any:
    for p in path:
        value = value[p]
    return value


def outcome(decode: Any, data: bytes, verify: bool) -> Any:
    try:
        r = decode(data, verify=verify)
    except Error as exc:
        return ("error", type(exc).__name__, str(exc))
    return ("ok", r.id, r.type, r.body, r.seq, r.prev, r.ts, r.author, r.network)


def mutate(value: dict[str, Any], data: st.DataObject) -> Any:
    maps = [p for p, v in places(value) if type(v) is dict]
    scalars = [p for p, v in places(value) if type(v) not in (dict, list) and p]
    members = [p for p, _ in places(value) if p]
    how = data.draw(st.sampled_from(
        ["order", "order", "order", "float", "bytes_key", "str_bytes", "deeper", "nil",
         "extra", "drop", "int_bool"]))
    if how == "order":
        path = data.draw(st.sampled_from(maps))
        m = get(value, path)
        keys = data.draw(st.permutations(list(m)))
        return replace(value, path, {k: m[k] for k in keys})
    if how == "float":
        path = data.draw(st.sampled_from(scalars))
        old = get(value, path)
        return replace(value, path, float(old) if type(old) is int else 1.0)
    if how == "bytes_key":
        path = data.draw(st.sampled_from(maps))
        m = dict(get(value, path))
        m[data.draw(st.sampled_from([b"zz", b"a", b"kind"]))] = 1
        return replace(value, path, m)
    if how == "str_bytes":
        path = data.draw(st.sampled_from(scalars))
        old = get(value, path)
        new = old.encode() if type(old) is str else old.decode("latin-1") \
            if type(old) is bytes else str(old)
        return replace(value, path, new)
    if how == "deeper":
        path = data.draw(st.sampled_from(members))
        return replace(value, path, [[get(value, path)]])
    if how == "nil":
        return replace(value, data.draw(st.sampled_from(members)), None)
    if how == "int_bool":
        path = data.draw(st.sampled_from(scalars))
        old = get(value, path)
        return replace(value, path, bool(old) if type(old) is int else 1)
    path = data.draw(st.sampled_from(maps))
    m = dict(get(value, path))
    if how == "extra":
        m[data.draw(st.sampled_from(["zz", "a", "kind", "id", "body"]))] = \
            data.draw(st.sampled_from([1, "x", b"y", {"a": 1}]))
    elif m:
        m.pop(data.draw(st.sampled_from(list(m))))
    return replace(value, path, m)


@pytest.mark.parametrize("shape", SHAPES)
def test_valid_records_decode_the_same_both_ways(shape: str) -> None:
    data = wire(unsigned_map(shape))
    for verify in (True, False):
        got = outcome(Record.from_bytes, data, verify)
        assert got[0] == "ok"
        assert got == outcome(Record.from_bytes_reference, data, verify)


@settings(max_examples=1500, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.sampled_from(SHAPES), st.data(), st.booleans(), st.booleans())
def test_mutated_records_get_the_same_answer_both_ways(
        shape: str, data: st.DataObject, verify: bool, bad_sig: bool) -> None:
    value = unsigned_map(shape)
    for _ in range(data.draw(st.integers(1, 2))):
        value = mutate(value, data)
    try:
        raw = wire(value, sig=b"\x00" * 64 if bad_sig else None)
    except (TypeError, ValueError, OverflowError):  # msgpack cannot pack it at all
        return
    assert outcome(Record.from_bytes, raw, verify) == \
        outcome(Record.from_bytes_reference, raw, verify)


@pytest.mark.parametrize("shape", SHAPES)
def test_keys_out_of_order_are_refused_at_every_depth(shape: str) -> None:
    value = unsigned_map(shape)
    swapped = 0
    for path, m in places(value):
        if type(m) is not dict or len(m) < 2:
            continue
        keys = list(m)
        unsorted = {k: m[k] for k in [keys[1], keys[0], *keys[2:]]}
        data = wire(replace(value, path, unsorted))
        with pytest.raises(DecodeError, match="not in sorted order"):
            Record.from_bytes(data)
        swapped += 1
    assert swapped >= 2  # the header and the body at least


# Every struct class with a map it parses (nested ones too), in canonical key order.
STRUCT_MAPS = [(cls, codec.decode(codec.encode(value))) for cls, value in SAMPLES]


def _parse(parse: Any, value: Any) -> Any:
    try:
        obj = parse(value, "body")
    except ValidationError as exc:
        return ("error", exc.field, exc.rule, exc.detail)
    return ("ok", obj)


@settings(max_examples=500, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, len(STRUCT_MAPS) - 1), st.data())
def test_compiled_wire_parsers_agree_with_the_reference(i: int, data: st.DataObject) -> None:
    cls, value = STRUCT_MAPS[i]
    if data.draw(st.booleans()):
        value = mutate(value, data)
    assert _parse(cls.from_wire, value) == _parse(
        lambda v, p: cls._parse_reference(v, p, wire=True), value)


def test_wire_parsers_accept_what_from_value_does_in_canonical_order() -> None:
    for cls, value in STRUCT_MAPS:
        assert cls.from_wire(value, "body") == cls.from_value(value, "body")
        if len(value) > 1:
            keys = list(value)
            with pytest.raises(ValidationError) as info:
                cls.from_wire({k: value[k] for k in reversed(keys)}, "body")
            assert (info.value.field, info.value.rule) == ("body", "canonical")
