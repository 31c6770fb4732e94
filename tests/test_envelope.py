"""The record envelope: signing, canonical decoding, header rules, and tamper evidence.

Every single-bit flip of a signed record must be refused with one of our typed
errors (never accepted, never a foreign exception); header rules name the field
they apply to; `verify=False` skips the signature and nothing else.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crypto.errors import Error, VerificationError
from crypto.keys import SigningKey
from protocol import codec, schema
from protocol import identifiers as ids
from protocol.bodies.common import CSET82, SERIAL
from protocol.envelope import MAX_RECORD, SIGNING_DOMAIN, VERSION, Record, record_id
from protocol.errors import DecodeError, LocalProtocolError, ValidationError
from protocol.genesis import Params
from tests import examples as ex

KEY = SigningKey(bytes([7]) * 32)
OTHER = SigningKey(bytes([8]) * 32)
TYPES = sorted(ex.EXAMPLES)
REJECTED = (DecodeError, ValidationError, VerificationError)


def sign(type_name: str = "container.seal", *, seq: int = 1, prev: bytes | None = None,
         key: SigningKey = KEY, **changes: Any) -> Record:
    return Record.sign(
        key, network=ex.NETWORK, seq=seq, prev=prev, ts=ex.T0, type=type_name,
        body=ex.EXAMPLES[type_name](**changes),
    )


def header(**changes: Any) -> dict[str, Any]:
    """A valid unsigned map (a container.seal at seq 1), with changes; None removes a field."""
    m: dict[str, Any] = {
        "v": VERSION,
        "net": ex.NETWORK,
        "author": KEY.public.raw,
        "seq": 1,
        "prev": None,
        "ts": ex.T0,
        "type": "container.seal",
        "body": ex.seal(),
    }
    for k, v in changes.items():
        if v is _DROP:
            m.pop(k)
        else:
            m[k] = v
    return m


_DROP = object()


def forge(unsigned_map: dict[str, Any], key: SigningKey = KEY, *, sig: bytes | None = None) -> bytes:
    """Wire bytes for any unsigned map, correctly signed unless `sig` is given.

    Bypasses `Record.sign`'s checks, so the decoder's own checks are what is tested.
    """
    unsigned = codec.encode(unsigned_map)
    if sig is None:
        sig = key.sign(SIGNING_DOMAIN + unsigned)
    return codec.encode([unsigned, sig])


def rejected(data: bytes, error: type[Error] = ValidationError, **kwargs: Any) -> Error:
    with pytest.raises(error) as info:
        Record.from_bytes(data, **kwargs)
    return info.value


# -- round trips -------------------------------------------------------------------


@pytest.mark.parametrize("type_name", TYPES)
def test_sign_and_decode_round_trip(type_name: str) -> None:
    rec = sign(type_name)
    back = Record.from_bytes(rec.to_bytes())
    assert back == rec
    assert back.id == rec.id == record_id(rec.wire)
    assert back.wire == rec.wire
    assert back.type == type_name
    assert back.author == KEY.public.raw
    assert back.body.to_value() == ex.EXAMPLES[type_name]()
    back.verify_signature()
    assert back.unsigned_bytes() == codec.decode(rec.wire)[0]


def test_a_chained_record_round_trips() -> None:
    first = sign()
    second = sign("sensor", seq=2, prev=first.id)
    back = Record.from_bytes(second.to_bytes())
    assert back.prev == first.id
    assert back.seq == 2


def test_signing_is_deterministic_and_the_id_covers_the_signature() -> None:
    a, b = sign(), sign()
    assert a.wire == b.wire
    assert a.id == b.id
    unsigned = a.unsigned_bytes()
    other_sig = OTHER.sign(SIGNING_DOMAIN + unsigned)
    resigned = codec.encode([unsigned, other_sig])
    # Same unsigned part, different signature: a different id.
    assert record_id(resigned) != a.id
    back = Record.from_bytes(resigned, verify=False)
    assert back.id != a.id
    assert back.unsigned_bytes() == unsigned
    # ... and it does not verify, since OTHER is not the author.
    rejected(resigned, VerificationError)


def test_record_sign_refuses_a_body_of_another_type() -> None:
    body = sign("scan").body
    with pytest.raises(LocalProtocolError):
        Record.sign(KEY, network=ex.NETWORK, seq=1, prev=None, ts=ex.T0, type="sensor", body=body)


def test_record_sign_refuses_a_bad_header_or_body() -> None:
    with pytest.raises(ValidationError) as info:
        Record.sign(KEY, network=ex.NETWORK, seq=0, prev=None, ts=ex.T0, type="scan",
                    body=ex.scan())
    assert info.value.field == "seq"
    with pytest.raises(ValidationError) as info:
        Record.sign(KEY, network=ex.NETWORK, seq=1, prev=None, ts=ex.T0, type="scan",
                    body=ex.scan(event="teleport"))
    assert info.value.field == "body.event"


def test_record_sign_refuses_an_oversized_record() -> None:
    # The largest regular body, a full manifest chunk, fits; 1000 goods lines do not.
    chunk = ex.pack_chunks(3000)[0]
    rec = Record.sign(KEY, network=ex.NETWORK, seq=1, prev=None, ts=ex.T0,
                      type="container.pack", body=chunk)
    assert len(rec.wire) <= MAX_RECORD
    big = ex.shipment_create(goods=[ex.goods(description="x" * 200)] * 1000)
    with pytest.raises(LocalProtocolError, match="limit"):
        Record.sign(KEY, network=ex.NETWORK, seq=1, prev=None, ts=ex.T0,
                    type="shipment.create", body=big)


# -- bit flips ---------------------------------------------------------------------------


def _flip(data: bytes, bit: int) -> bytes:
    out = bytearray(data)
    out[bit // 8] ^= 1 << (bit % 8)
    return bytes(out)


def _must_reject(data: bytes) -> None:
    try:
        Record.from_bytes(data)
    except REJECTED:
        return
    # Any other exception propagates and fails the test; acceptance fails here.
    raise AssertionError("a tampered record was accepted")


def test_every_single_bit_flip_of_a_small_record_is_rejected() -> None:
    rec = sign("shipment.update", note=None, eta=None)
    assert len(rec.wire) < 250
    for bit in range(len(rec.wire) * 8):
        _must_reject(_flip(rec.wire, bit))


SIGNED = {t: sign(t) for t in TYPES}


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(TYPES), st.data())
def test_sampled_bit_flips_of_every_type_are_rejected(type_name: str, data: st.DataObject) -> None:
    wire = SIGNED[type_name].wire
    bit = data.draw(st.integers(0, len(wire) * 8 - 1))
    _must_reject(_flip(wire, bit))


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_sampled_bit_flips_of_a_large_record_are_rejected(data: st.DataObject) -> None:
    wire = LARGE.wire
    bit = data.draw(st.integers(0, len(wire) * 8 - 1))
    _must_reject(_flip(wire, bit))


LARGE = Record.sign(
    KEY, network=ex.NETWORK, seq=1, prev=None, ts=ex.T0, type="container.pack",
    body=ex.pack_chunks(1200)[0],
)


# -- header rules --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "field", "rule"),
    [
        ({"net": b"\x00" * 31}, "net", "length"),
        ({"net": "00" * 32}, "net", "length"),
        ({"author": KEY.public.raw + b"\x00"}, "author", "length"),
        ({"author": KEY.public.raw[:31]}, "author", "length"),
        ({"seq": 0}, "seq", "range"),
        ({"seq": -1}, "seq", "range"),
        ({"seq": 2**63}, "seq", "range"),
        ({"seq": True}, "seq", "range"),
        ({"seq": "1"}, "seq", "range"),
        ({"prev": ex.record_id("x")}, "prev", "first"),
        ({"seq": 2}, "prev", "length"),
        ({"seq": 2, "prev": b"\x01" * 31}, "prev", "length"),
        ({"ts": -1}, "ts", "range"),
        ({"ts": 2**53}, "ts", "range"),
        ({"ts": 2**64 - 1}, "ts", "range"),
        ({"ts": False}, "ts", "range"),
        ({"v": 2}, "v", "version"),
        ({"v": True}, "v", "version"),
        ({"type": 5}, "type", "type"),
        ({"type": "teleport"}, "type", "unknown"),
        ({"body": [1]}, "body", "type"),
        ({"body": ex.seal(seal_class="Q")}, "body.seal_class", "seal_class.unknown"),
        ({"extra": 1}, "extra", "unknown"),
        ({"ts": _DROP}, "ts", "required"),
        ({"prev": _DROP}, "prev", "required"),
    ],
)
def test_header_rules_name_the_field(changes: dict[str, Any], field: str, rule: str) -> None:
    data = forge(header(**changes))
    err = rejected(data)
    assert isinstance(err, ValidationError)
    assert (err.field, err.rule) == (field, rule)
    # The same rules hold without the signature check.
    err = rejected(data, verify=False)
    assert isinstance(err, ValidationError)
    assert (err.field, err.rule) == (field, rule)


def test_wrong_network_is_just_bytes_to_the_envelope() -> None:
    # Any 32-byte network id is well formed; which network a node accepts is the
    # node's rule. It is signed, though: changing it breaks the signature.
    rec = sign()
    m = codec.decode(rec.unsigned_bytes())
    m["net"] = b"\xee" * 32
    tampered = codec.encode([codec.encode(m), rec.signature])
    rejected(tampered, VerificationError)
    assert Record.from_bytes(tampered, verify=False).network == b"\xee" * 32


def test_a_header_valid_for_seq_2_with_prev_is_accepted() -> None:
    rec = Record.from_bytes(forge(header(seq=2, prev=ex.record_id("one"))))
    assert (rec.seq, rec.prev) == (2, ex.record_id("one"))


def test_signature_of_wrong_size_is_named() -> None:
    rec = sign()
    for sig in (rec.signature[:63], rec.signature + b"\x00", b""):
        err = rejected(codec.encode([rec.unsigned_bytes(), sig]))
        assert isinstance(err, ValidationError)
        assert err.field == "signature"


def test_signature_by_another_key_is_refused() -> None:
    rejected(forge(header(), OTHER), VerificationError)


def test_signature_over_the_bare_unsigned_bytes_is_refused() -> None:
    # The domain prefix is part of what is signed.
    unsigned = codec.encode(header())
    rejected(codec.encode([unsigned, KEY.sign(unsigned)]), VerificationError)


def test_oversized_record_is_refused_before_decoding() -> None:
    err = rejected(b"\x92" + b"\x00" * MAX_RECORD, DecodeError)
    assert "limit" in str(err)


# -- canonical form --------------------------------------------------------------------------


def test_outer_array_must_be_canonical() -> None:
    rec = sign()
    unsigned, sig = rec.unsigned_bytes(), rec.signature
    # array16 header instead of fixarray
    long_array = b"\xdc\x00\x02" + rec.wire[1:]
    rejected(long_array, DecodeError)
    # bin16 length for the signature instead of bin8
    head = msgpack.packb(unsigned, use_bin_type=True)
    rejected(b"\x92" + head + b"\xc5\x00\x40" + sig, DecodeError)
    # the parts as str instead of bin
    rejected(msgpack.packb([unsigned, sig], use_bin_type=False), DecodeError)
    # three elements, one element, a map
    rejected(codec.encode([unsigned, sig, b""]), DecodeError)
    rejected(codec.encode([unsigned]), DecodeError)
    rejected(codec.encode({"u": unsigned, "s": sig}), DecodeError)
    # trailing bytes
    rejected(rec.wire + b"\x00", DecodeError)


def test_unsigned_map_must_be_canonical() -> None:
    m = header()
    # Unsorted keys, signed correctly: still not the one encoding.
    unsorted = msgpack.packb(dict(reversed(list(m.items()))), use_bin_type=True)
    data = codec.encode([unsorted, KEY.sign(SIGNING_DOMAIN + unsorted)])
    rejected(data, DecodeError)
    # A long-form integer for seq.
    canonical = codec.encode(m)
    assert b"\xa3seq\x01" in canonical
    long_int = canonical.replace(b"\xa3seq\x01", b"\xa3seq\xcc\x01")
    rejected(codec.encode([long_int, KEY.sign(SIGNING_DOMAIN + long_int)]), DecodeError)


def test_unsigned_part_must_be_a_map() -> None:
    unsigned = codec.encode([1, 2])
    rejected(codec.encode([unsigned, KEY.sign(SIGNING_DOMAIN + unsigned)]), DecodeError)


# -- verify=False ------------------------------------------------------------------------------


def test_verify_false_skips_only_the_signature() -> None:
    garbage = bytes(range(64))
    data = forge(header(), sig=garbage)
    rejected(data, VerificationError)
    rec = Record.from_bytes(data, verify=False)
    assert rec.signature == garbage
    with pytest.raises(VerificationError):
        rec.verify_signature()
    # Everything else is still checked.
    for bad in (header(seq=0), header(type="teleport"), header(body=ex.seal(seal="")),
                header(extra=1)):
        rejected(forge(bad, sig=garbage), ValidationError, verify=False)
    unsorted = msgpack.packb(dict(reversed(list(header().items()))), use_bin_type=True)
    rejected(codec.encode([unsorted, garbage]), DecodeError, verify=False)
    rejected(codec.encode([codec.encode(header()), garbage[:10]]), ValidationError, verify=False)


# -- garbage ---------------------------------------------------------------------------------------


def _decode_or_error(data: bytes) -> None:
    try:
        Record.from_bytes(data)
    except Error:
        return
    raise AssertionError("garbage was accepted as a record")


@settings(max_examples=500)
@given(st.binary(max_size=400))
def test_random_bytes_never_crash(data: bytes) -> None:
    _decode_or_error(data)


_scalars = (
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.text(max_size=8)
    | st.binary(max_size=40) | st.floats(allow_nan=False)
)
_values = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.text(max_size=6) | st.binary(max_size=3), inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=300)
@given(_values, st.binary(min_size=64, max_size=64))
def test_structured_garbage_never_crashes(value: Any, sig: bytes) -> None:
    """Arbitrary msgpack, including non-str keys and floats, wrapped as a record or not."""
    packed = msgpack.packb(value, use_bin_type=True)
    _decode_or_error(packed)
    _decode_or_error(msgpack.packb([packed, sig], use_bin_type=True))


_field_values = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**63), 2**64 - 1), st.binary(max_size=40),
    st.text(max_size=10), st.lists(st.integers(-(2**63), 2**63), max_size=2),
    st.dictionaries(st.text(max_size=5), st.integers(-(2**63), 2**63), max_size=2),
)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from(sorted(header())), _field_values, max_size=8),
       st.booleans())
def test_header_shaped_garbage_never_crashes(changes: dict[str, Any], signed: bool) -> None:
    m = header(**changes)
    data = forge(m) if signed else forge(m, sig=b"\x00" * 64)
    for verify in (True, False):
        try:
            Record.from_bytes(data, verify=verify)
        except Error:
            continue


# -- the fast outer framing check agrees with the generic decoder --------------------------------


def _bin(data: bytes, form: int) -> bytes:
    """`data` as msgpack bin8 / bin16 / bin32 (form 0, 1, 2), canonical or not."""
    if form == 0 and len(data) < 256:
        return b"\xc4" + bytes([len(data)]) + data
    if form <= 1 and len(data) < 65536:
        return b"\xc5" + len(data).to_bytes(2, "big") + data
    return b"\xc6" + len(data).to_bytes(4, "big") + data


def _generic_split(data: bytes) -> tuple[bytes, bytes] | str:
    try:
        outer = codec.decode(data)
    except DecodeError:
        return "error"
    if type(outer) is not list or len(outer) != 2 or not all(type(x) is bytes for x in outer):
        return "error"
    if len(outer[1]) != 64:
        return "error"
    return outer[0], outer[1]


def _fast_split(data: bytes) -> tuple[bytes, bytes] | str:
    from protocol.envelope import _split

    try:
        return _split(data)
    except (DecodeError, ValidationError):
        return "error"


@settings(max_examples=300)
@given(
    st.binary(max_size=300) | st.binary(min_size=250, max_size=600),
    st.binary(min_size=62, max_size=66),
    st.integers(0, 2),
    st.integers(0, 2),
    st.sampled_from([b"\x92", b"\x93", b"\x91", b"\xdc\x00\x02"]),
    st.binary(max_size=2),
)
def test_fast_framing_agrees_with_the_generic_decoder(
    unsigned: bytes, sig: bytes, uform: int, sform: int, head: bytes, tail: bytes
) -> None:
    data = head + _bin(unsigned, uform) + _bin(sig, sform) + tail
    assert _fast_split(data) == _generic_split(data)


# -- fast paths of body checks agree with the reference checks -------------------------------------


def _outcome(check: Any, v: Any) -> Any:
    try:
        return ("ok", check(v, "body.serials[0]"))
    except ValidationError as exc:
        return ("error", exc.field, exc.rule, exc.detail)


_serial_like = (
    st.from_regex(f"[{CSET82}]{{0,22}}", fullmatch=True)
    | st.text(max_size=24)
    | st.text(alphabet=st.characters(max_codepoint=0x7F), max_size=22)
)
_REFERENCE_SERIAL = schema.normalised(ids.serial)


@settings(max_examples=400)
@given(_serial_like | st.integers() | st.binary(max_size=4) | st.none())
def test_serial_fast_path_agrees_with_the_reference(v: Any) -> None:
    assert _outcome(SERIAL, v) == _outcome(_REFERENCE_SERIAL, v)


@settings(max_examples=300)
@given(st.lists(_serial_like | st.integers(0, 9), min_size=1, max_size=12))
def test_serial_list_fast_path_agrees_with_the_reference(v: list[Any]) -> None:
    """`list_of` checks a list of serials in bulk; it must decide as item by item would."""
    fast = schema.list_of(SERIAL, max=10)
    reference = schema.list_of(_REFERENCE_SERIAL, max=10)
    assert _outcome(fast, v) == _outcome(reference, v)


@pytest.mark.parametrize("type_name", TYPES)
def test_decoded_objects_are_what_their_constructors_make(type_name: str) -> None:
    """Decoding fills slots directly; the objects must equal constructor-built ones."""
    rec = Record.from_bytes(SIGNED[type_name].wire)
    again = dataclasses.replace(rec)  # through Record.__init__
    assert again == rec
    assert (again.wire, again.id) == (rec.wire, rec.id)
    body = rec.body
    assert dataclasses.replace(body) == body
    for fl in dataclasses.fields(body):
        getattr(body, fl.name)  # every slot is set
    assert body.to_value() == ex.EXAMPLES[type_name]()


@settings(max_examples=300)
@given(st.lists(
    st.sampled_from([ex.CONTAINER, ex.CONTAINER_2, "CSQU3054384", "csqu3054383", "CSQU 305438 3"])
    | st.text(max_size=12) | st.integers(0, 3),
    max_size=6,
))
def test_memoised_identifier_checks_agree_with_the_reference(values: list[Any]) -> None:
    """Remembering accepted values changes no outcome, whatever came before."""
    from protocol.bodies.common import CONTAINER

    reference = schema.normalised(ids.container_number)
    for v in values + values:
        assert _outcome(CONTAINER, v) == _outcome(reference, v)


@settings(max_examples=300)
@given(st.lists(
    st.fixed_dictionaries(
        {"kind": st.sampled_from(["token", "container", "shipment", "party", "ship", 7]),
         "id": st.sampled_from([ex.CONTAINER, "csqu3054383", ex.SHIPMENT, "ab" * 32, "", b"x"])},
        optional={"extra": st.just(1)},
    ),
    max_size=6,
))
def test_remembered_object_refs_agree_with_the_reference(refs: list[dict[str, Any]]) -> None:
    """Object refs are remembered once parsed; no outcome may change for that."""
    from protocol.bodies.common import GOODS_REF, ObjectRef

    def reference(v: Any, path: str) -> Any:
        ref = ObjectRef.from_value(v, path)
        if ref.kind == "party":
            raise ValidationError(f"{path}.kind", "kind", "a party cannot be handed over or scanned")
        return ref

    for v in refs + refs:
        assert _outcome(GOODS_REF, v) == _outcome(reference, v)


# The struct classes and valid wire maps of each, nested ones included.
def _struct_samples() -> list[tuple[type[schema.Struct], dict[str, Any]]]:
    out: list[tuple[type[schema.Struct], dict[str, Any]]] = []

    def visit(cls: type[schema.Struct], value: dict[str, Any]) -> None:
        out.append((cls, value))
        obj = cls.from_value(value, "body")
        for name, _, _ in cls._field_table():
            sub, v = getattr(obj, name), value.get(name)
            if isinstance(sub, schema.Struct) and isinstance(v, dict):
                visit(type(sub), v)
            elif isinstance(sub, tuple) and sub and isinstance(sub[0], schema.Struct):
                visit(type(sub[0]), v[0])

    for name, build in sorted({**ex.EXAMPLES, **ex.VARIANTS}.items()):
        visit(schema.TYPES[name.split("/")[0]], build())
    visit(Params, dataclasses.asdict(Params()))  # fields with non-nil defaults
    return out


SAMPLES = _struct_samples()


def _parse_outcome(parse: Any, value: Any) -> Any:
    try:
        obj = parse(value, "body")
    except ValidationError as exc:
        return ("error", exc.field, exc.rule, exc.detail)
    return ("ok", obj, obj.to_value())


_junk = st.none() | st.booleans() | st.integers(-5, 5) | st.text(max_size=3) | st.binary(max_size=2)


@settings(max_examples=500, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, len(SAMPLES) - 1), st.data())
def test_compiled_parsers_agree_with_the_reference(i: int, data: st.DataObject) -> None:
    cls, value = SAMPLES[i]
    value = dict(value)
    names = sorted(n for n, _, _ in cls._field_table())
    for _ in range(data.draw(st.integers(0, 2))):
        how = data.draw(st.sampled_from(["drop", "set", "add"]))
        if how == "add":
            value[data.draw(st.sampled_from(["zz", "a", "kind"]))] = data.draw(_junk)
        else:
            name = data.draw(st.sampled_from(names))
            if how == "drop":
                value.pop(name, None)
            else:
                value[name] = data.draw(_junk)
    assert _parse_outcome(cls.from_value, value) == _parse_outcome(cls._parse_reference, value)
    assert _parse_outcome(cls.from_value, [value]) == _parse_outcome(cls._parse_reference, [value])


def test_a_struct_that_cannot_be_compiled_keeps_the_reference_parser() -> None:
    @dataclasses.dataclass(frozen=True, kw_only=True)  # no slots: nothing to write directly
    class Loose(schema.Struct):
        n: int = schema.f(schema.integer(0, 9))
        s: str | None = schema.f(schema.string(5), default=None)

    assert Loose.from_value({"n": 3}, "x") == Loose(n=3)
    with pytest.raises(ValidationError) as info:
        Loose.from_value({"n": 3, "t": 1}, "x")
    assert (info.value.field, info.value.rule) == ("x.t", "unknown")
    assert isinstance(Loose.__dict__["_parser"], functools.partial)


@pytest.mark.parametrize("data", ["not bytes", 12, None, 3.5])
def test_input_that_is_not_bytes_is_a_decode_error(data: Any) -> None:
    with pytest.raises(DecodeError):
        Record.from_bytes(data)


def test_bytes_like_input_is_accepted() -> None:
    rec = sign()
    assert Record.from_bytes(bytearray(rec.wire)) == rec
    assert Record.from_bytes(memoryview(rec.wire)).wire == rec.wire


def _reference_unsigned(r: Record) -> bytes:
    """The unsigned bytes of `r` the plain way: `codec.encode` of the header map, whose
    canonical copy sorts every map and checks every member."""
    return codec.encode({"v": r.version, "net": r.network, "author": r.author, "seq": r.seq,
                         "prev": r.prev, "ts": r.ts, "type": r.type,
                         "body": r.body.to_value()})


def _story_records() -> list[Record]:
    from tests.test_verify import Story

    s = Story()
    s.ship()
    return s.world.records


@pytest.mark.parametrize("record", [*(SIGNED[t] for t in TYPES), LARGE, *_story_records()],
                         ids=lambda r: f"{r.type}#{r.seq}")
def test_signing_packs_the_canonical_encoding_of_the_body(record: Record) -> None:
    """`Record.sign` packs the parsed body's canonical value as it is (no canonical copy):
    the bytes are those `codec.encode` makes, for every record type and a whole journey."""
    assert record.unsigned_bytes() == _reference_unsigned(record)
    assert Record.from_bytes(record.wire) == record


def test_encode_canonical_of_what_msgpack_cannot_pack_raises_as_encode_does() -> None:
    for bad in ({"a": 2**64}, {"a": -(2**63) - 1}, {"a": object()}):
        with pytest.raises(LocalProtocolError):
            codec.encode_canonical(bad)
    with pytest.raises(LocalProtocolError, match="over the"):
        codec.encode_canonical({"a": b"x" * codec.MAX_BIN, "b": b"y" * codec.MAX_BIN})
    assert codec.encode_canonical({"a": [1, None, True, "s", b"b"]}) == codec.encode(
        {"a": [1, None, True, "s", b"b"]})
