"""The network genesis: signed by the first authority, hashed into the network id."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crypto import hashing
from crypto.errors import Error, VerificationError
from crypto.keys import SigningKey
from protocol import codec
from protocol.errors import DecodeError, ValidationError
from protocol.genesis import DAY_MS, GENESIS_DOMAIN, VERSION, Genesis, Params

AUTH = SigningKey(bytes([21]) * 32)
AUTH_2 = SigningKey(bytes([22]) * 32)
STRANGER = SigningKey(bytes([23]) * 32)
TS = 1_720_000_000_000


def make(**kwargs: Any) -> Genesis:
    args: dict[str, Any] = {"name": "EU customs testnet", "ts": TS}
    args.update(kwargs)
    return Genesis.create(AUTH, **args)


def unsigned(**changes: Any) -> dict[str, Any]:
    m: dict[str, Any] = {
        "v": VERSION,
        "name": "EU customs testnet",
        "authorities": [AUTH.public.raw, AUTH_2.public.raw],
        "params": dataclasses.asdict(Params()),
        "ts": TS,
    }
    m.update(changes)
    return m


def forge(m: dict[str, Any], key: SigningKey = AUTH) -> bytes:
    u = codec.encode(m)
    return codec.encode([u, key.sign(GENESIS_DOMAIN + u)])


# -- round trip and identity ---------------------------------------------------------


def test_create_and_from_bytes_round_trip() -> None:
    g = make(extra_authorities=(AUTH_2.public.raw,))
    back = Genesis.from_bytes(g.to_bytes())
    assert back == g
    assert back.wire == g.wire
    assert back.network_id == g.network_id
    assert back.authorities == (AUTH.public.raw, AUTH_2.public.raw)
    assert back.params == Params()
    assert back.is_authority(AUTH_2.public.raw)
    assert not back.is_authority(STRANGER.public.raw)


def test_network_id_is_the_hash_of_the_signed_document() -> None:
    g = make()
    assert g.network_id == hashing.h(hashing.NETWORK_ID, g.wire)
    assert len(g.network_id) == 32


def test_network_id_is_stable() -> None:
    # Same inputs, same bytes (Ed25519 is deterministic), same id: on every run and
    # every machine. The known answer pins the encoding; changing it forks every network.
    assert make().network_id == make().network_id
    assert make().network_id.hex() == KNOWN_NETWORK_ID


KNOWN_NETWORK_ID = "5852ef796f9c42447bc21f91d2d6207f5e7c6522d63d905ea71c47600e238982"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"name": "another testnet"},
        {"ts": TS + 1},
        {"params": Params(max_clock_skew_ms=60_000)},
        {"extra_authorities": (AUTH_2.public.raw,)},
    ],
)
def test_any_change_gives_another_network(kwargs: dict[str, Any]) -> None:
    assert make(**kwargs).network_id != make().network_id


def test_topics_derive_from_the_network_id() -> None:
    g = make()
    assert g.topic("records") == f"/sealchain/{g.network_id.hex()}/records/1"
    assert make(ts=TS + 1).topic("records") != g.topic("records")


def test_describe() -> None:
    d = make().describe()
    assert d["network_id"] == make().network_id.hex()
    assert d["authorities"] == [AUTH.public.raw.hex()]
    assert d["params"]["silence_limit_ms"] == 2 * DAY_MS


# -- tampering and signers -----------------------------------------------------------------


def test_every_single_bit_flip_is_rejected() -> None:
    wire = make(extra_authorities=(AUTH_2.public.raw,)).wire
    for bit in range(len(wire) * 8):
        data = bytearray(wire)
        data[bit // 8] ^= 1 << (bit % 8)
        with pytest.raises((DecodeError, ValidationError, VerificationError)):
            Genesis.from_bytes(bytes(data))


def test_a_genesis_signed_by_a_non_authority_is_rejected() -> None:
    with pytest.raises(VerificationError, match="genesis signature"):
        Genesis.from_bytes(forge(unsigned(), STRANGER))


def test_only_the_first_authority_signs() -> None:
    assert Genesis.from_bytes(forge(unsigned(), AUTH)).authorities[0] == AUTH.public.raw
    with pytest.raises(VerificationError):
        Genesis.from_bytes(forge(unsigned(), AUTH_2))


def test_a_record_signature_is_not_a_genesis_signature() -> None:
    u = codec.encode(unsigned())
    with pytest.raises(VerificationError):
        Genesis.from_bytes(codec.encode([u, AUTH.sign(u)]))  # no domain prefix


@pytest.mark.parametrize(
    ("changes", "field", "rule"),
    [
        ({"v": 2}, "genesis.v", "range"),
        ({"name": ""}, "genesis.name", "length"),
        ({"name": "x" * 101}, "genesis.name", "length"),
        ({"name": " leading space"}, "genesis.name", "format"),
        ({"authorities": []}, "genesis.authorities", "length"),
        ({"authorities": [AUTH.public.raw] * 2}, "genesis.authorities", "unique"),
        ({"authorities": [AUTH.public.raw[:31]]}, "genesis.authorities[0]", "length"),
        ({"ts": -1}, "genesis.ts", "range"),
        ({"extra": 1}, "genesis.extra", "unknown"),
    ],
)
def test_malformed_fields_are_named(changes: dict[str, Any], field: str, rule: str) -> None:
    with pytest.raises(ValidationError) as info:
        Genesis.from_bytes(forge(unsigned(**changes)))
    assert (info.value.field, info.value.rule) == (field, rule)


def test_too_many_authorities() -> None:
    keys = [SigningKey(bytes([100 + i]) * 32).public.raw for i in range(16)]
    with pytest.raises(ValidationError) as info:
        make(extra_authorities=tuple(keys))  # 17 in all
    assert info.value.field == "genesis.authorities"
    assert len(make(extra_authorities=tuple(keys[:15])).authorities) == 16


@pytest.mark.parametrize(
    "data",
    [b"", b"\xc0", codec.encode([b"x"]), codec.encode(["a", "b"]), codec.encode([b"", b"", b""])],
)
def test_not_a_genesis(data: bytes) -> None:
    with pytest.raises(DecodeError):
        Genesis.from_bytes(data)


@settings(max_examples=300)
@given(st.binary(max_size=300))
def test_random_bytes_never_crash(data: bytes) -> None:
    try:
        Genesis.from_bytes(data)
    except Error:
        return
    raise AssertionError("random bytes made a genesis")


# -- parameters ---------------------------------------------------------------------------------

BOUNDS = {
    "max_clock_skew_ms": (0, DAY_MS),
    "silence_limit_ms": (60_000, 90 * DAY_MS),
    "weight_tolerance_permille": (0, 1000),
    "max_temperature_mc": (-100_000 + 1, 150_000),
    "min_temperature_mc": (-100_000, 150_000 - 1),
}


@pytest.mark.parametrize("name", sorted(BOUNDS))
def test_params_at_their_bounds_are_accepted(name: str) -> None:
    for v in BOUNDS[name]:
        p = Params(**{name: v, **_temperature_room(name, v)})
        assert Genesis.from_bytes(make(params=p).wire).params == p


@pytest.mark.parametrize("name", sorted(BOUNDS))
def test_params_beyond_their_bounds_are_rejected(name: str) -> None:
    lo, hi = BOUNDS[name]
    lo = -100_000 if name == "max_temperature_mc" else lo
    hi = 150_000 if name == "min_temperature_mc" else hi
    for v in (lo - 1, hi + 1):
        with pytest.raises(ValidationError) as info:
            make(params=Params(**{name: v, **_temperature_room(name, v)}))
        assert info.value.field == f"genesis.params.{name}"
        assert info.value.rule == "range"
        with pytest.raises(ValidationError):
            Genesis.from_bytes(forge(unsigned(params={**unsigned()["params"], name: v})))


def _temperature_room(name: str, v: int) -> dict[str, int]:
    """Move the other temperature bound out of the way so only `name` is tested."""
    if name == "max_temperature_mc":
        return {"min_temperature_mc": max(-100_000, min(v - 1, 150_000))}
    if name == "min_temperature_mc":
        return {"max_temperature_mc": min(150_000, max(v + 1, -100_000))}
    return {}


def test_params_must_be_integers() -> None:
    with pytest.raises(ValidationError) as info:
        Genesis.from_bytes(forge(unsigned(params={**unsigned()["params"],
                                                  "weight_tolerance_permille": True})))
    assert info.value.rule == "type"


def test_temperature_band_must_not_be_empty() -> None:
    with pytest.raises(ValidationError) as info:
        make(params=Params(min_temperature_mc=5_000, max_temperature_mc=5_000))
    assert info.value.field == "genesis.params.max_temperature_mc"
    with pytest.raises(ValidationError):
        make(params=Params(min_temperature_mc=10_000, max_temperature_mc=-10_000))
    make(params=Params(min_temperature_mc=4_999, max_temperature_mc=5_000))


def test_unknown_param_is_rejected() -> None:
    with pytest.raises(ValidationError) as info:
        Genesis.from_bytes(forge(unsigned(params={**unsigned()["params"], "block_size": 1})))
    assert info.value.field == "genesis.params.block_size"
