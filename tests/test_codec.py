"""Canonical MessagePack: one value, one encoding; everything else is a DecodeError."""

from __future__ import annotations

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol import codec
from protocol.errors import DecodeError, LocalProtocolError

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.text(max_size=50)
    | st.binary(max_size=50)
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner, max_size=5),
    max_leaves=30,
)


@given(values)
def test_round_trip(v: object) -> None:
    data = codec.encode(v)
    assert codec.decode(data) == v
    assert codec.encode(codec.decode(data)) == data


@given(st.dictionaries(st.text(max_size=8), st.integers(-(2**63), 2**63), min_size=2, max_size=8))
def test_key_order_does_not_change_the_encoding(d: dict[str, int]) -> None:
    reversed_d = dict(reversed(list(d.items())))
    assert codec.encode(d) == codec.encode(reversed_d)


def test_unsorted_keys_are_rejected() -> None:
    raw = msgpack.packb({"b": 1, "a": 2})
    with pytest.raises(DecodeError, match="not canonical"):
        codec.decode(raw)


def test_duplicate_keys_are_rejected() -> None:
    raw = b"\x82\xa1a\x01\xa1a\x02"  # {"a": 1, "a": 2}
    with pytest.raises(DecodeError):
        codec.decode(raw)


@pytest.mark.parametrize(
    "raw",
    [
        b"\xcc\x05",  # 5 as uint8: not the shortest form
        b"\xd1\x00\x01",  # 1 as int16
        b"\xcb\x3f\xf0\x00\x00\x00\x00\x00\x00",  # float64 1.0
        b"\xca\x3f\x80\x00\x00",  # float32 1.0
        b"\xd9\x01a",  # str8 for a 1-byte string (fixstr is shorter)
        b"\xd4\x01\x00",  # fixext
        b"\x01\x02",  # trailing bytes
        b"\xa2\xff\xfe",  # invalid UTF-8
        b"\x81\x01\x02",  # integer map key
        b"\xc1",  # never-used byte
        b"\x92\x01",  # truncated array
        b"",
    ],
)
def test_non_canonical_or_malformed_is_rejected(raw: bytes) -> None:
    with pytest.raises(DecodeError):
        codec.decode(raw)


def test_floats_are_refused_on_encode() -> None:
    with pytest.raises(LocalProtocolError, match="floats"):
        codec.encode({"weight": 1.5})


@pytest.mark.parametrize(
    "value",
    [
        {"a": 1.5},
        {"a": [1, 1.5]},
        [{"a": "x"}, 1.5],
        {"a": 2**64},
        {"a": -(2**63) - 1},
        {"a": [2**64]},
        {"a": {"b": 2**64}},
        {"a": {1: "x"}},
        {"a": object()},
        {"a": ["x", b"y", None, True, object()]},
    ],
)
def test_forbidden_members_are_refused_wherever_they_sit(value: object) -> None:
    with pytest.raises(LocalProtocolError):
        codec.encode(value)


def test_members_are_put_in_wire_form_wherever_they_sit() -> None:
    assert codec.encode({"b": (1, "x"), "a": bytearray(b"y")}) == codec.encode(
        {"a": b"y", "b": [1, "x"]}
    )
    assert codec.encode([("x", b"y"), {"b": 2**64 - 1, "a": -(2**63)}]) == msgpack.packb(
        [["x", b"y"], {"a": -(2**63), "b": 2**64 - 1}], use_bin_type=True
    )


def test_depth_is_bounded() -> None:
    deep: object = 1
    for _ in range(codec.MAX_DEPTH + 1):
        deep = [deep]
    with pytest.raises(LocalProtocolError, match="nesting"):
        codec.encode(deep)
    raw = b"\x91" * (codec.MAX_DEPTH + 1) + b"\x01"
    with pytest.raises(DecodeError):
        codec.decode(raw)


def test_size_is_bounded() -> None:
    with pytest.raises(LocalProtocolError, match="limit"):
        codec.encode([b"x" * 40_000, b"y" * 40_000])
    with pytest.raises(DecodeError, match="limit"):
        codec.decode(b"\x90" * (codec.MAX_DOCUMENT + 1))


def test_declared_length_beyond_limit_is_rejected_without_allocating() -> None:
    raw = b"\xdd\xff\xff\xff\xff"  # array32 claiming 4 billion items
    with pytest.raises(DecodeError):
        codec.decode(raw)


@given(st.binary(max_size=200))
def test_random_bytes_never_crash(raw: bytes) -> None:
    try:
        v = codec.decode(raw)
    except DecodeError:
        return
    assert codec.encode(v) == raw


@given(values, st.data())
def test_mutations_decode_canonically_or_fail(v: object, data: st.DataObject) -> None:
    raw = bytearray(codec.encode(v))
    i = data.draw(st.integers(0, len(raw) - 1))
    raw[i] = data.draw(st.integers(0, 255))
    try:
        out = codec.decode(bytes(raw))
    except DecodeError:
        return
    assert codec.encode(out) == bytes(raw)
