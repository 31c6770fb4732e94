"""Record body schemas: valid examples round-trip; every broken field is named; cross-field rules."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crypto.keys import SigningKey
from protocol import bodies, schema
from protocol.bodies.identity import GRANTABLE_ROLES
from protocol.envelope import MAX_RECORD, Record
from protocol.errors import ValidationError
from tests import examples as ex

Path = tuple[str | int, ...]
ALL: dict[str, Callable[[], dict[str, Any]]] = {**ex.EXAMPLES, **ex.VARIANTS}


def type_of(name: str) -> str:
    return name.split("/")[0]


def rejects(type_name: str, body: Any) -> ValidationError:
    with pytest.raises(ValidationError) as info:
        schema.parse_body(type_name, body)
    return info.value


def dotted(path: Path) -> str:
    out = "body"
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else f".{p}"
    return out


def at(value: Any, path: Path) -> Any:
    for p in path:
        value = value[p]
    return value


# -- valid examples ----------------------------------------------------------------


def test_examples_cover_every_registered_type() -> None:
    assert set(ex.EXAMPLES) == set(schema.TYPES)
    assert {type_of(n) for n in ex.VARIANTS} <= set(schema.TYPES)


@pytest.mark.parametrize("name", sorted(ALL))
def test_example_round_trips(name: str) -> None:
    value = ALL[name]()
    body = schema.parse_body(type_of(name), value)
    assert schema.type_of(body) == type_of(name)
    assert body.to_value() == value
    assert schema.parse_body(type_of(name), body.to_value()) == body


@pytest.mark.parametrize("name", sorted(ALL))
def test_example_round_trips_through_a_signed_record(name: str) -> None:
    key = SigningKey(bytes([9]) * 32)
    rec = Record.sign(
        key, network=ex.NETWORK, seq=1, prev=None, ts=ex.T0, type=type_of(name), body=ALL[name]()
    )
    back = Record.from_bytes(rec.to_bytes())
    assert back == rec
    assert back.body.to_value() == ALL[name]()
    # A typed body signs to the same bytes as its wire dict.
    again = Record.sign(
        key, network=ex.NETWORK, seq=1, prev=None, ts=ex.T0, type=type_of(name), body=back.body
    )
    assert again.to_bytes() == rec.to_bytes()


def test_package_exports_every_registered_class() -> None:
    exported = {getattr(bodies, n) for n in bodies.__all__}
    assert set(schema.TYPES.values()) <= exported


# -- every field: missing, nil, wrong type, unknown ------------------------------------


def _wrong_type(v: Any) -> Any:
    if isinstance(v, bool):
        return 1
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        return 7
    if isinstance(v, bytes):
        return v.hex()
    if isinstance(v, list):
        return "x"
    return ["x"]


def _field_cases(
    value: dict[str, Any], obj: schema.Struct, path: Path
) -> Iterator[tuple[Path, str]]:
    for name, _, required in obj._field_table():
        sub = (*path, name)
        if required:
            yield sub, "remove"
        if name not in value:
            continue
        yield sub, "nil"
        yield sub, "wrong_type"
        if name == "attrs":  # a free map, not a struct
            continue
        v, o = value[name], getattr(obj, name)
        if isinstance(v, dict):
            yield from _field_cases(v, o, sub)
        elif isinstance(v, list) and v and isinstance(v[0], dict):
            yield from _field_cases(v[0], o[0], (*sub, 0))
    yield (*path, "zz_unknown"), "add"


def _all_field_cases() -> Iterator[Any]:
    for name, build in sorted(ALL.items()):
        value = build()
        obj = schema.parse_body(type_of(name), value)
        for path, how in _field_cases(value, obj, ()):
            yield pytest.param(name, path, how, id=f"{name}:{dotted(path)}:{how}")


@pytest.mark.parametrize(("name", "path", "how"), list(_all_field_cases()))
def test_broken_field_is_named(name: str, path: Path, how: str) -> None:
    value = ALL[name]()
    parent, last = at(value, path[:-1]), path[-1]
    if how == "remove":
        del parent[last]
    elif how == "nil":
        parent[last] = None
    elif how == "wrong_type":
        parent[last] = _wrong_type(parent[last])
    else:
        parent[last] = 1
    err = rejects(type_of(name), value)
    assert err.field == dotted(path)
    assert err.rule == {"remove": "required", "nil": "null", "add": "unknown"}.get(how, err.rule)


def test_body_must_be_a_map_and_type_known() -> None:
    assert rejects("product.mint", [ex.mint()]).field == "body"
    assert rejects("product.burn", {}).field == "type"


# -- identifiers: normal form and check digits ------------------------------------------


def test_container_check_digit_names_iso6346_and_the_expected_digit() -> None:
    err = rejects("container.create", ex.container_create(container="CSQU3054380"))
    assert err.field == "body.container"
    assert "iso6346" in err.rule
    assert "expected 3" in err.detail


@pytest.mark.parametrize(
    ("field", "raw"),
    [
        ("container", "csqu3054383"),
        ("container", "CSQU 305438 3"),
        ("sscc", " " + ex.SSCC),
    ],
)
def test_identifiers_only_in_normal_form(field: str, raw: str) -> None:
    err = rejects("container.create", ex.container_create(**{field: raw}))
    assert err.field == f"body.{field}"


def test_gtin_is_written_as_14_digits() -> None:
    err = rejects("product.mint", ex.mint(gtin=ex.GTIN[1:]))
    assert (err.field, err.rule) == ("body.gtin", "normal_form")


def test_text_is_stripped_and_single_line() -> None:
    assert rejects("recall", ex.recall(reason=" padded")).rule == "normal_form"
    assert rejects("recall", ex.recall(reason="two\nlines")).field == "body.reason"
    assert rejects("recall", ex.recall(reason="x" * 201)).rule == "length"


def test_sorted_lists_must_be_strictly_ascending() -> None:
    err = rejects("credential.issue", ex.credential_issue(roles=["manufacturer", "brand"]))
    assert (err.field, err.rule) == ("body.roles[1]", "order")
    err = rejects("product.mint", ex.mint(serials=["A1", "A1"]))
    assert (err.field, err.rule) == ("body.serials[1]", "order")


# -- shared structs -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "bad_id"),
    [
        ("token", ex.TOKENS[0].hex().upper()),
        ("token", ex.TOKENS[0].hex()[:-1]),
        ("container", "CSQU3054384"),
        ("container", ex.SHIPMENT),
        ("shipment", "-starts-with-dash"),
        ("shipment", "x" * 65),
    ],
)
def test_object_ref_id_is_checked_by_kind(kind: str, bad_id: str) -> None:
    err = rejects("handover.offer", ex.handover_offer(object={"kind": kind, "id": bad_id}))
    assert err.field == "body.object.id"


def test_place_lat_and_lon_come_together() -> None:
    err = rejects("scan", ex.scan(place=ex.place(lon_udeg=None)))
    assert (err.field, err.rule) == ("body.place.lon_udeg", "pair")
    err = rejects("scan", ex.scan(place=ex.place(lat_udeg=None)))
    assert err.field == "body.place.lat_udeg"
    schema.parse_body("scan", ex.scan(place=ex.place(lat_udeg=None, lon_udeg=None)))


def test_place_locode_is_in_its_country() -> None:
    err = rejects("scan", ex.scan(place=ex.place(country="BE")))
    assert (err.field, err.rule) == ("body.place.locode", "country")


def test_coordinates_are_range_checked() -> None:
    assert rejects("scan", ex.scan(place=ex.place(lat_udeg=90_000_001))).rule == "range"
    assert rejects("scan", ex.scan(place=ex.place(lon_udeg=-180_000_001))).rule == "range"


def test_token_ids_are_deterministic() -> None:
    mint = schema.parse_body("product.mint", ex.mint())
    assert isinstance(mint, bodies.ProductMint)
    assert mint.token_ids() == tuple(bodies.token_id(ex.GTIN, s) for s in ex.SERIALS)
    assert bodies.token_id(ex.GTIN, "A0001") == bodies.token_id(ex.GTIN, "A0001")
    assert bodies.token_id(ex.GTIN, "A0001") != bodies.token_id(ex.GTIN_2, "A0001")
    ref = bodies.token_ref(mint.token_ids()[0])
    assert ref.to_value() == ex.token_ref("A0001")


# -- cross-field rules ----------------------------------------------------------------------


def test_credential_window_is_ordered() -> None:
    err = rejects("credential.issue", ex.credential_issue(valid_until=ex.T0))
    assert (err.field, err.rule) == ("body.valid_until", "order")
    err = rejects("credential.delegate", ex.credential_delegate(valid_until=ex.T0 - 1))
    assert err.field == "body.valid_until"


def test_brand_credential_needs_trademarks_and_only_brands_have_them() -> None:
    err = rejects("credential.issue", ex.credential_issue(trademarks=None))
    assert (err.field, err.rule) == ("body.trademarks", "required")
    err = rejects("credential.issue", ex.credential_issue(roles=["carrier"]))
    assert (err.field, err.rule) == ("body.trademarks", "role")


@pytest.mark.parametrize("roles", [["authority"], ["authority", "carrier"],
                                   ["authority", "brand", "manufacturer"]])
def test_the_authority_role_is_never_granted(roles: list[str]) -> None:
    trademarks = [ex.trademark()] if "brand" in roles else None
    err = rejects("credential.issue", ex.credential_issue(roles=roles, trademarks=trademarks))
    assert (err.field, err.rule) == ("body.roles", "role.authority")
    assert "genesis" in err.detail


@pytest.mark.parametrize("other", ["brand", "manufacturer", "carrier", "forwarder", "retailer"])
def test_customs_combines_with_no_other_role(other: str) -> None:
    roles = sorted(["customs", other])
    trademarks = [ex.trademark()] if other == "brand" else None
    err = rejects("credential.issue", ex.credential_issue(roles=roles, trademarks=trademarks))
    assert (err.field, err.rule) == ("body.roles", "role.customs_alone")
    assert "customs" in err.detail


def test_every_grantable_role_alone_is_accepted() -> None:
    assert "authority" not in GRANTABLE_ROLES
    for role in GRANTABLE_ROLES:
        trademarks = [ex.trademark()] if role == "brand" else None
        body = schema.parse_body(
            "credential.issue", ex.credential_issue(roles=[role], trademarks=trademarks)
        )
        assert body.roles == (role,)  # type: ignore[attr-defined]


def test_trademark_prefixes_are_6_to_12_digits() -> None:
    bad = ex.credential_issue(trademarks=[ex.trademark(gs1_prefixes=["12345"])])
    assert rejects("credential.issue", bad).field == "body.trademarks[0].gs1_prefixes[0]"


def test_delegation_types_are_device_writable() -> None:
    err = rejects("credential.delegate", ex.credential_delegate(types=["product.mint"]))
    assert err.field == "body.types[0]"


def test_recall_names_a_lot_or_serials_not_both() -> None:
    err = rejects("recall", ex.recall(serials=["A0001"]))
    assert (err.field, err.rule) == ("body.serials", "exclusive")
    err = rejects("recall", ex.recall(lot=None))
    assert (err.field, err.rule) == ("body.lot", "required")


def test_mint_attrs_are_bounded_and_not_empty() -> None:
    assert rejects("product.mint", ex.mint(attrs={})).field == "body.attrs"
    many = {f"k{i}": i for i in range(33)}
    assert rejects("product.mint", ex.mint(attrs=many)).field == "body.attrs"
    assert rejects("product.mint", ex.mint(attrs={"x": [1]})).field == "body.attrs.x"


def test_container_tare_below_max_gross() -> None:
    err = rejects("container.create", ex.container_create(tare_g=30_480_000))
    assert (err.field, err.rule) == ("body.tare_g", "range")


def test_pack_chunk_layout() -> None:
    chunks = ex.pack_chunks(2 * bodies.MANIFEST_CHUNK + 1)
    assert [len(c["items"]) for c in chunks] == [bodies.MANIFEST_CHUNK, bodies.MANIFEST_CHUNK, 1]
    for c in chunks:
        schema.parse_body("container.pack", c)
    first, last = chunks[0], chunks[-1]
    # A full chunk still fits in one record.
    rec = Record.sign(
        ex.AUTHORITY,
        network=ex.NETWORK,
        seq=1,
        prev=None,
        ts=ex.T0,
        type="container.pack",
        body=first,
    )
    assert len(rec.to_bytes()) <= MAX_RECORD

    def broken(c: dict[str, Any], **changes: Any) -> tuple[str, str]:
        err = rejects("container.pack", {**c, **changes})
        return err.field, err.rule

    assert broken(first, chunks=2) == ("body.chunks", "layout")
    assert broken(first, chunks=4) == ("body.chunks", "layout")
    assert broken(last, chunk=3) == ("body.chunk", "range")
    assert broken(first, items=first["items"][:-1]) == ("body.items", "layout")
    assert broken(last, items=chunks[1]["items"][:2]) == ("body.items", "layout")
    # The last chunk cannot be padded either: its size follows from count.
    assert broken(chunks[1], chunk=2) == ("body.items", "layout")
    assert broken(ex.pack(), count=4) == ("body.items", "layout")


def test_pack_items_sorted_and_bounded() -> None:
    items = list(reversed(ex.TOKENS))
    assert rejects("container.pack", ex.pack(items=items)).field == "body.items[1]"
    too_many = ex.pack_chunks(bodies.MANIFEST_CHUNK + 1)[0]
    too_many["items"] = sorted([*too_many["items"], bytes(32)])
    assert rejects("container.pack", too_many).rule == "length"


_READINGS: dict[str, dict[str, Any]] = {
    "door": {"open": False},
    "tamper": {},
    "weight": {"value": 0},
    "temperature": {"value": 4_000},
    "position": {"lat_udeg": 0, "lon_udeg": 0},
}
_EXTRA = {"value": 1, "open": True, "lat_udeg": 1, "lon_udeg": 1}


@pytest.mark.parametrize("kind", sorted(_READINGS))
def test_sensor_fields_per_kind(kind: str) -> None:
    base = {"container": ex.CONTAINER, "kind": kind, "at": ex.T0}
    schema.parse_body("sensor", {**base, **_READINGS[kind]})
    for name in _READINGS[kind]:
        reading = {**base, **_READINGS[kind]}
        del reading[name]
        err = rejects("sensor", reading)
        assert (err.field, err.rule) == (f"body.{name}", "required")
    for name, v in _EXTRA.items():
        if name not in _READINGS[kind]:
            err = rejects("sensor", {**base, **_READINGS[kind], name: v})
            assert (err.field, err.rule) == (f"body.{name}", "kind")


@pytest.mark.parametrize(
    ("kind", "value", "ok"),
    [
        ("weight", -1, False),
        ("weight", 10**11, True),
        ("temperature", -100_000, True),
        ("temperature", -100_001, False),
        ("temperature", 150_000, True),
        ("temperature", 150_001, False),
    ],
)
def test_sensor_value_range_per_kind(kind: str, value: int, ok: bool) -> None:
    body = ex.sensor(kind=kind, value=value)
    if ok:
        schema.parse_body("sensor", body)
    else:
        assert rejects("sensor", body).field == "body.value"


def test_scan_seal_only_on_containers() -> None:
    err = rejects("scan", ex.scan(object=ex.token_ref()))
    assert (err.field, err.rule) == ("body.seal", "kind")


def test_shipment_route_keeps_its_order_and_silence_is_bounded() -> None:
    body = schema.parse_body("shipment.create", ex.shipment_create(route=["NLRTM", "CNSHA"]))
    assert isinstance(body, bodies.ShipmentCreate)
    assert body.route == ("NLRTM", "CNSHA")
    schema.parse_body("shipment.create", ex.shipment_create(route=[]))
    err = rejects("shipment.create", ex.shipment_create(silence_limit_ms=59_999))
    assert err.field == "body.silence_limit_ms"
    err = rejects("shipment.create", ex.shipment_create(silence_limit_ms=90 * 86_400_000 + 1))
    assert err.field == "body.silence_limit_ms"


def test_customs_result_iff_action_is_result() -> None:
    err = rejects("customs.action", ex.customs_action(result=None))
    assert (err.field, err.rule) == ("body.result", "required")
    err = rejects("customs.action", ex.customs_action(action="release"))
    assert (err.field, err.rule) == ("body.result", "action")


def test_alert_key_must_match() -> None:
    err = rejects("alert", ex.alert(key=bytes(32)))
    assert (err.field, err.rule) == ("body.key", "alert_key")
    # Same rule, subject, evidence, severity and reason: same key; anything else changes it.
    good = ex.alert()
    assert rejects("alert", {**good, "rule": "seal.opened"}).field == "body.key"
    assert (
        rejects("alert", {**good, "subject": ex.container_ref(ex.CONTAINER_2)}).field == "body.key"
    )
    assert rejects("alert", {**good, "evidence": good["evidence"][:1]}).field == "body.key"
    # Severity and reason are part of the key: an altered copy cannot pass as the alert.
    assert rejects("alert", {**good, "severity": "low"}).field == "body.key"
    assert rejects("alert", {**good, "reason": "other words"}).field == "body.key"


def test_alert_key_ignores_evidence_order() -> None:
    ref = bodies.ObjectRef(kind="container", id=ex.CONTAINER)
    a, b = ex.record_id("a"), ex.record_id("b")
    kw = {"severity": "high", "reason": "why"}
    assert bodies.alert_key("r", ref, [a, b], **kw) == bodies.alert_key("r", ref, [b, a], **kw)


def test_alert_rule_format() -> None:
    assert rejects("alert", ex.alert(rule="Seal.Mismatch")).field == "body.rule"
    assert rejects("alert", ex.alert(rule="x" * 65)).field == "body.rule"


def test_severities_are_ordered() -> None:
    assert bodies.SEVERITIES == ("info", "low", "medium", "high", "critical")


# -- garbage in, ValidationError out -------------------------------------------------------

_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**64), max_value=2**64)
    | st.text(max_size=20)
    | st.binary(max_size=40)
    | st.sampled_from([ex.CONTAINER, ex.GTIN, ex.SHIPMENT, "NL", "NLRTM", "brand", "token"])
)
_values = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
_types = st.sampled_from(sorted(schema.TYPES))
_fast = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _parse_only_validation_errors(type_name: str, value: Any) -> None:
    try:
        schema.parse_body(type_name, value)
    except ValidationError:
        pass


@_fast
@given(_types, _values)
def test_garbage_bodies_raise_only_validation_error(type_name: str, value: Any) -> None:
    _parse_only_validation_errors(type_name, value)


@st.composite
def _field_maps(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    type_name = draw(_types)
    names = [n for n, _, _ in schema.TYPES[type_name]._field_table()]
    keys = st.sampled_from([*names, "junk"])
    return type_name, draw(st.dictionaries(keys, _values, max_size=len(names) + 1))


@_fast
@given(_field_maps())
def test_maps_of_known_fields_raise_only_validation_error(case: tuple[str, dict[str, Any]]) -> None:
    _parse_only_validation_errors(*case)


def _paths(value: Any, path: Path = ()) -> Iterator[Path]:
    if isinstance(value, dict):
        for k, v in value.items():
            yield (*path, k)
            yield from _paths(v, (*path, k))
    elif isinstance(value, list):
        for i, v in enumerate(value[:3]):
            yield (*path, i)
            yield from _paths(v, (*path, i))


@st.composite
def _mutated_examples(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    name = draw(st.sampled_from(sorted(ALL)))
    value = copy.deepcopy(ALL[name]())
    for _ in range(draw(st.integers(1, 3))):
        paths = list(_paths(value))
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = at(value, path[:-1])
        if draw(st.booleans()) and isinstance(parent, dict):
            del parent[path[-1]]
        else:
            parent[path[-1]] = draw(_values)
    return type_of(name), value


@_fast
@given(_mutated_examples())
def test_mutated_examples_raise_only_validation_error(case: tuple[str, dict[str, Any]]) -> None:
    _parse_only_validation_errors(*case)
