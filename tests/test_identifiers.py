"""Tests for protocol.identifiers: known answers, every single-digit error, garbage.

The ISO 6346 vectors live outside the repo in
shared/conformance/iso6346_vectors.txt; they are read at test time and never
copied in. The check-digit arithmetic is also compared with a naive version
written here from the standards' own wording.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol import identifiers as ids
from protocol.errors import ValidationError

CONFORMANCE = Path(__file__).resolve().parents[2] / "shared" / "conformance"
ISO6346_VECTORS = CONFORMANCE / "iso6346_vectors.txt"
ISO_CODES_JSON = Path("/usr/share/iso-codes/json/iso_3166-1.json")
CSET82 = "!\"%&'()*+,-./0123456789:;<=>?ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz"

Validator = Callable[[object, str], str]
VALIDATORS: dict[str, Validator] = {
    "container_number": ids.container_number,
    "gtin": ids.gtin,
    "sscc": ids.sscc,
    "gln": ids.gln,
    "country": ids.country,
    "seal_number": ids.seal_number,
    "seal_class": ids.seal_class,
    "hs_code": ids.hs_code,
    "locode": ids.locode,
    "lot": ids.lot,
    "serial": ids.serial,
    "text": lambda value, field: ids.text(value, field, 64),
    "parse_digital_link": lambda value, field: ids.parse_digital_link(value, field)[0],
}


def _rejects(validator: Validator, value: object, rule: str) -> ValidationError:
    with pytest.raises(ValidationError) as info:
        validator(value, "f")
    assert info.value.rule == rule, info.value
    assert info.value.field == "f"
    return info.value


def _error_of(validator: Validator, value: object) -> ValidationError | None:
    """The ValidationError `validator` raises for `value`, or None if it accepts it."""
    try:
        validator(value, "f")
    except ValidationError as err:
        return err
    return None


# --- naive references -----------------------------------------------------------

# ISO 6346 letter values, written out as the standard tabulates them.
_NAIVE_LETTERS = dict(
    (pair[0], int(pair[1:]))
    for pair in "A10 B12 C13 D14 E15 F16 G17 H18 I19 J20 K21 L23 M24 N25 O26 P27 Q28 R29 "
    "S30 T31 U32 V34 W35 X36 Y37 Z38".split()
)


def _naive_iso6346_sum(number: str) -> int:
    return sum(
        (_NAIVE_LETTERS[c] if c.isalpha() else int(c)) * 2**i for i, c in enumerate(number[:10])
    )


def _naive_gs1(body: str) -> int:
    """GS1 General Specifications 7.9.1: weights 3 and 1 alternately from the right."""
    weighted = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(body)))
    nearest_ten_up = (weighted + 9) // 10 * 10
    return nearest_ten_up - weighted


# --- ISO 6346 conformance vectors -------------------------------------------------


def _load_iso6346() -> dict[str, list[list[str]]]:
    """Vector lines by expectation (VALID, INVALID, MALFORMED), container section only."""
    found: dict[str, list[list[str]]] = {"VALID": [], "INVALID": [], "MALFORMED": []}
    if not ISO6346_VECTORS.is_file():
        return found
    for line in ISO6346_VECTORS.read_text(encoding="utf-8").splitlines():
        if line.startswith("# --- bonus"):
            break  # EU MRN numbers follow: 17-18 characters, not container numbers
        tokens = line.split()
        if len(tokens) >= 2 and not line.startswith("#") and tokens[1] in found:
            found[tokens[1]].append(tokens)
    return found


_ISO6346 = _load_iso6346()
_needs_vectors = pytest.mark.skipif(
    not ISO6346_VECTORS.is_file(),
    reason=f"ISO 6346 vectors not found at {ISO6346_VECTORS} (shared/ beside the repo)",
)


@_needs_vectors
def test_iso6346_vector_file_parsed() -> None:
    assert len(_ISO6346["VALID"]) >= 10
    assert len(_ISO6346["INVALID"]) >= 5
    assert len(_ISO6346["MALFORMED"]) >= 2


@_needs_vectors
@pytest.mark.parametrize("tokens", _ISO6346["VALID"], ids=lambda t: t[0])
def test_iso6346_valid_vectors_accepted(tokens: list[str]) -> None:
    number, _, weighted, remainder, check = tokens[:5]
    assert ids.container_number(number, "c") == number
    assert ids.container_number(number.lower(), "c") == number
    assert ids.iso6346_check_digit(number[:10]) == int(check)
    assert _naive_iso6346_sum(number) == int(weighted)
    assert int(weighted) % 11 == int(remainder)


@_needs_vectors
@pytest.mark.parametrize("tokens", _ISO6346["INVALID"], ids=lambda t: t[0])
def test_iso6346_invalid_vectors_rejected(tokens: list[str]) -> None:
    number, _, weighted, _, check = tokens[:5]
    err = _rejects(ids.container_number, number, "iso6346.check_digit")
    assert err.detail == f"container number {number} has check digit {number[10]}, expected {check}"
    assert _naive_iso6346_sum(number) == int(weighted)


@_needs_vectors
@pytest.mark.parametrize("tokens", _ISO6346["MALFORMED"], ids=lambda t: t[0])
def test_iso6346_malformed_vectors_rejected(tokens: list[str]) -> None:
    with pytest.raises(ValidationError) as info:
        ids.container_number(tokens[0], "c")
    assert info.value.rule in ("length", "format")


def test_container_number_normalises() -> None:
    assert ids.container_number("CSQU 305438 3", "c") == "CSQU3054383"
    assert ids.container_number("NyKu3086856", "c") == "NYKU3086856"  # mixed case in the file
    assert ids.container_number("ZEPU 003725 5", "c") == "ZEPU0037255"


@pytest.mark.parametrize(
    ("value", "rule"),
    [
        ("CSQU305438", "length"),
        ("CSQU30543833", "length"),
        ("", "length"),
        ("CSQU3054Z83", "format"),
        ("CSQX3054383", "format"),  # equipment category must be U, J or Z
        ("C5QU3054383", "format"),
        ("CSQU305438X", "format"),
        ("ÇSQU3054383", "format"),
        ("ıSQU3054383", "format"),  # "ı".upper() == "I": ASCII is checked first
        ("CSQU\u00a03054383", "length"),
        (3054383, "type"),
    ],
)
def test_container_number_malformed(value: object, rule: str) -> None:
    _rejects(ids.container_number, value, rule)


def test_container_category_j_and_z() -> None:
    for body in ("CSQJ305438", "CSQZ305438"):
        number = body + str(ids.iso6346_check_digit(body))
        assert ids.container_number(number, "c") == number


def test_iso6346_check_digit_rejects_bad_input() -> None:
    with pytest.raises(ValidationError):
        ids.iso6346_check_digit("CSQU30543")
    with pytest.raises(ValidationError):
        ids.iso6346_check_digit("csqu305438")


_CONTAINERS = ["CSQU3054383", "BICU1234565", "TCNU6225360", "GYOU4047990", "MRKU4976720"]


@pytest.mark.parametrize("number", _CONTAINERS)
def test_container_single_digit_substitutions(number: str) -> None:
    """Every changed digit is caught, except where (S mod 11) mod 10 folds 10 onto 0.

    A check digit of 0 stands for remainder 0 or 10, so a change that moves the
    remainder between those two goes unseen; BIC asks owners not to issue
    serials with remainder 10 for this reason.
    """
    folded = _naive_iso6346_sum(number) % 11 in (0, 10)
    escapes = []
    for pos in range(4, 11):
        for digit in "0123456789":
            if digit == number[pos]:
                continue
            changed = number[:pos] + digit + number[pos + 1 :]
            error = _error_of(ids.container_number, changed)
            if error is not None:
                assert error.rule == "iso6346.check_digit"
                continue
            assert folded
            remainders = {_naive_iso6346_sum(number) % 11, _naive_iso6346_sum(changed) % 11}
            assert remainders == {0, 10}
            escapes.append(changed)
    assert bool(escapes) == folded


def test_container_owner_letters_eleven_apart_are_not_caught() -> None:
    """A known ISO 6346 limit: letters whose values differ by 11 (A/K, B/L, ...) collide."""
    assert ids.container_number("BICU1234565", "c") == "BICU1234565"
    assert ids.container_number("LICU1234565", "c") == "LICU1234565"


# --- GS1 keys ---------------------------------------------------------------------

_GS1_KNOWN = [
    # (validator, input, normalised); each check digit re-derived by _naive_gs1 below
    (ids.gtin, "4006381333931", "04006381333931"),
    (ids.gtin, "9506000134352", "09506000134352"),
    (ids.gtin, "09521234543213", "09521234543213"),
    (ids.gtin, "96385074", "00000096385074"),
    (ids.gtin, "036000291452", "00036000291452"),
    (ids.gtin, "10614141000415", "10614141000415"),
    (ids.sscc, "106141411234567897", "106141411234567897"),
    (ids.gln, "0614141000012", "0614141000012"),
]


@pytest.mark.parametrize(("validator", "value", "normalised"), _GS1_KNOWN, ids=lambda x: str(x))
def test_gs1_known_answers(validator: Validator, value: str, normalised: str) -> None:
    assert _naive_gs1(value[:-1]) == int(value[-1])
    assert ids.gs1_check_digit(value[:-1]) == int(value[-1])
    assert validator(value, "k") == normalised


@pytest.mark.parametrize(
    ("validator", "value", "rule"),
    [
        (ids.gtin, "4006381333932", "gtin.check_digit"),
        (ids.sscc, "106141411234567890", "sscc.check_digit"),
        (ids.gln, "0614141000013", "gln.check_digit"),
        (ids.gtin, "400638133393", "gtin.check_digit"),  # 12 digits, wrong check
        (ids.gtin, "40063813339", "length"),
        (ids.gtin, "040063813339310", "length"),
        (ids.gtin, "", "length"),
        (ids.sscc, "06141411234567897", "length"),
        (ids.gln, "614141000012", "length"),
        (ids.gtin, "4006381333931 ", "format"),
        (ids.gtin, "4006381-333931", "format"),
        (ids.gtin, "٤006381333931", "format"),  # Arabic-Indic digit: isdigit() but not 0-9
        (ids.gtin, "²006381333931", "format"),  # superscript two: int() would raise
        (ids.gtin, 4006381333931, "type"),
        (ids.sscc, None, "type"),
    ],
)
def test_gs1_rejects(validator: Validator, value: object, rule: str) -> None:
    _rejects(validator, value, rule)


def test_gs1_check_digit_message() -> None:
    err = _rejects(ids.gtin, "4006381333932", "gtin.check_digit")
    assert err.detail == "GTIN 4006381333932 has check digit 2, expected 1"
    assert str(err) == "f: GTIN 4006381333932 has check digit 2, expected 1"


@pytest.mark.parametrize(("validator", "value", "normalised"), _GS1_KNOWN, ids=lambda x: str(x))
def test_gs1_single_digit_substitutions(validator: Validator, value: str, normalised: str) -> None:
    for pos in range(len(value)):
        for digit in "0123456789":
            if digit != value[pos]:
                with pytest.raises(ValidationError, match="check digit"):
                    validator(value[:pos] + digit + value[pos + 1 :], "k")


@given(st.text(alphabet="0123456789", min_size=1, max_size=40))
def test_gs1_check_digit_matches_naive(body: str) -> None:
    assert ids.gs1_check_digit(body) == _naive_gs1(body)


def test_gs1_check_digit_rejects_bad_input() -> None:
    for bad in ("", "12a4", "١٢"):
        with pytest.raises(ValidationError):
            ids.gs1_check_digit(bad)


# --- GS1 lot and serial ---------------------------------------------------------


@pytest.mark.parametrize("validator", [ids.lot, ids.serial])
def test_lot_and_serial(validator: Validator) -> None:
    assert validator("ABC-123/x", "l") == "ABC-123/x"
    assert validator("A" * 20, "l") == "A" * 20
    assert validator(CSET82[:20], "l") == CSET82[:20]
    _rejects(validator, "A" * 21, "length")
    _rejects(validator, "", "length")
    for bad in ("AB C", "A~", "A#", "é", "A\n", "A$", "A@", "A[", "A`", "A{", "A\\"):
        _rejects(validator, bad, "format")
    _rejects(validator, 12, "type")


def test_cset82_has_82_characters() -> None:
    assert len(set(CSET82)) == 82
    for ch in map(chr, range(128)):
        if ch in CSET82:
            assert ids.lot(ch, "l") == ch
        else:
            _rejects(ids.lot, ch, "format")


# --- countries and places -----------------------------------------------------------


def test_country_list() -> None:
    assert len(ids.COUNTRIES) == 249
    assert all(len(c) == 2 and c.isascii() and c.isupper() for c in ids.COUNTRIES)
    for code in ("GB", "CN", "US", "SS", "BQ", "CW", "SX", "AX", "PS", "TW", "AQ"):
        assert ids.country(code, "c") == code


@pytest.mark.skipif(not ISO_CODES_JSON.is_file(), reason="Debian iso-codes is not installed")
def test_country_list_matches_iso_codes_package() -> None:
    entries = json.loads(ISO_CODES_JSON.read_text(encoding="utf-8"))["3166-1"]
    assert {entry["alpha_2"] for entry in entries} == ids.COUNTRIES


@pytest.mark.parametrize(
    ("value", "rule"),
    [
        ("XX", "country.unassigned"),
        ("EU", "country.unassigned"),  # exceptionally reserved
        ("UK", "country.unassigned"),  # exceptionally reserved: the code is GB
        ("XK", "country.unassigned"),  # user-assigned (Kosovo), not ISO
        ("AN", "country.unassigned"),  # deleted 2010
        ("ZZ", "country.unassigned"),
        ("cn", "format"),
        ("Cn", "format"),
        ("C1", "format"),
        ("ÇN", "format"),
        ("CHN", "length"),
        ("C", "length"),
        ("", "length"),
        (86, "type"),
    ],
)
def test_country_rejects(value: object, rule: str) -> None:
    _rejects(ids.country, value, rule)


def test_country_messages() -> None:
    assert "write CN" in _rejects(ids.country, "cn", "format").detail
    assert (
        "EU is not an officially assigned"
        in _rejects(ids.country, "EU", "country.unassigned").detail
    )


def test_locode() -> None:
    assert ids.locode("CNSHA", "l") == "CNSHA"
    assert ids.locode("CN SHA", "l") == "CNSHA"
    assert ids.locode("DEHAM", "l") == "DEHAM"
    assert ids.locode("USNYC", "l") == "USNYC"
    assert ids.locode("GB2AB", "l") == "GB2AB"
    for bad in ("cnsha", "CN  SHA", "CNSH1", "CNSH0", "CNSHAX", "CNSH", " CNSHA", "CN-SHA", ""):
        _rejects(ids.locode, bad, "format")
    _rejects(ids.locode, "XXSHA", "locode.country")
    _rejects(ids.locode, "EU BRU", "locode.country")
    _rejects(ids.locode, None, "type")


def test_hs_code() -> None:
    assert ids.hs_code("090121", "h") == "090121"
    assert ids.hs_code("0901.21", "h") == "090121"
    assert ids.hs_code("8471.30.01", "h") == "84713001"
    assert ids.hs_code("8471 30 01 00", "h") == "8471300100"
    assert ids.hs_code("970600", "h") == "970600"
    for bad in ("770100", "000000", "980100", "990100"):
        _rejects(ids.hs_code, bad, "hs_code.chapter")
    for bad in ("09012", "0901211", "090121000", "09012100000", ".", ""):
        _rejects(ids.hs_code, bad, "length")
    for bad in ("0901-21", "09012a", "0901,21", "০৯০১২১"):
        _rejects(ids.hs_code, bad, "format")
    _rejects(ids.hs_code, 90121, "type")


# --- seals and text -------------------------------------------------------------


def test_seal_number() -> None:
    assert ids.seal_number("ABC-12345", "s") == "ABC-12345"
    assert ids.seal_number("abc-12345", "s") == "ABC-12345"
    assert ids.seal_number("7", "s") == "7"
    assert ids.seal_number("A" * 32, "s") == "A" * 32
    _rejects(ids.seal_number, "A" * 33, "length")
    _rejects(ids.seal_number, "", "length")
    for bad in ("---", "AB 12", "AB_12", "AB/12", "straße", "ı23", " AB12"):
        _rejects(ids.seal_number, bad, "format")
    _rejects(ids.seal_number, 12345, "type")


def test_seal_class() -> None:
    for value, expected in (("I", "I"), ("S", "S"), ("H", "H"), ("h", "H")):
        assert ids.seal_class(value, "s") == expected
    for bad in ("X", "", "HS", "high-security", "ı"):
        _rejects(ids.seal_class, bad, "seal_class.unknown")
    _rejects(ids.seal_class, None, "type")


def test_text() -> None:
    assert ids.text("  Port of Rotterdam ", "t", 40) == "Port of Rotterdam"
    assert ids.text("上海港\u00a0洋山", "t", 10) == "上海港\u00a0洋山"
    assert ids.text("crew 👨\u200d👩\u200d👧", "t", 20) == "crew 👨\u200d👩\u200d👧"
    assert ids.text("x" * 5, "t", 5) == "x" * 5

    def text5(value: object, field: str) -> str:
        return ids.text(value, field, 5)

    _rejects(text5, "x" * 6, "length")
    _rejects(text5, "", "length")
    _rejects(text5, " \t\n ", "length")
    for bad in ("a\nb", "a\tb", "a\x00b", "a\x7fb", "a\x85b", "a\u2028b", "a\u202eb", "a\ud800b"):
        _rejects(text5, bad, "format")
    _rejects(text5, b"bytes", "type")


# --- GS1 Digital Link -------------------------------------------------------------


def test_digital_link_known_answers() -> None:
    assert (
        ids.digital_link("9506000134352", "12345")
        == "https://id.gs1.org/01/09506000134352/21/12345"
    )
    assert (
        ids.digital_link("09521234543213", "12345", lot="ABC123")
        == "https://id.gs1.org/01/09521234543213/10/ABC123/21/12345"
    )
    assert (
        ids.digital_link("96385074", "A/1!", lot="L%x", base="https://example.com/dl/")
        == "https://example.com/dl/01/00000096385074/10/L%25x/21/A%2F1%21"
    )
    assert ids.digital_link("96385074", None) == "https://id.gs1.org/01/00000096385074"
    every = "".join(c for c in CSET82 if not c.isalnum())
    assert (
        ids.digital_link("96385074", every) == "https://id.gs1.org/01/00000096385074/21/"
        "%21%22%25%26%27%28%29%2A%2B%2C-.%2F%3A%3B%3C%3D%3E%3F_"
    )


def test_parse_digital_link_known_answers() -> None:
    parse = ids.parse_digital_link
    assert parse("https://id.gs1.org/01/09521234543213/10/ABC123/21/12345") == (
        "09521234543213",
        "12345",
        "ABC123",
    )
    assert parse("https://id.gs1.org/01/09521234543213") == ("09521234543213", None, None)
    assert parse("HTTP://example.com/a/01/b/01/9521234543213/21/a%2fb?17=261231#x") == (
        "09521234543213",
        "a/b",
        None,
    )
    assert parse("https://id.gs1.org/01/09521234543213/21/01") == ("09521234543213", "01", None)
    assert parse("https://id.gs1.org/01/09521234543213/10/01/21/01") == (
        "09521234543213",
        "01",
        "01",
    )
    assert parse("https://id.gs1.org/01/09521234543213/21/a!b") == ("09521234543213", "a!b", None)


@pytest.mark.parametrize(
    ("uri", "rule", "field"),
    [
        ("https://id.gs1.org/01/09521234543214/21/1", "gtin.check_digit", "dl.gtin"),
        ("https://id.gs1.org/01/09521234543/21/1", "length", "dl.gtin"),
        ("https://id.gs1.org/01/09521234543213/21/" + "1" * 21, "length", "dl.serial"),
        ("https://id.gs1.org/01/09521234543213/10/%7E", "format", "dl.lot"),
        ("https://id.gs1.org/01/09521234543213/21/%G1", "format", "dl"),
        ("https://id.gs1.org/01/09521234543213/21/%FF", "format", "dl"),
        ("https://id.gs1.org/01/09521234543213/21/a%20b", "format", "dl.serial"),
        ("https://id.gs1.org/01/09521234543213/21/1/10/1", "format", "dl"),
        ("https://id.gs1.org/01/09521234543213/21/1/21/2", "format", "dl"),
        ("https://id.gs1.org/01/09521234543213/22/1", "format", "dl"),
        ("https://id.gs1.org/01/09521234543213/17/261231", "format", "dl"),
        ("https://id.gs1.org/01/09521234543213/", "format", "dl"),
        ("https://id.gs1.org/01/09521234543213/21/", "format", "dl"),
        ("https://id.gs1.org/01//21/1", "format", "dl.gtin"),
        ("https://id.gs1.org/00/106141411234567897", "format", "dl"),
        ("https://id.gs1.org/gtin/09521234543213", "format", "dl"),
        ("ftp://id.gs1.org/01/09521234543213", "format", "dl"),
        ("https:///01/09521234543213", "format", "dl"),
        ("https://[::1/01/09521234543213", "format", "dl"),
        ("https://id.gs1.org/01/09521234543213/21/a b", "format", "dl"),
        ("https://id.gs1.org/01/09521234543213/21/é", "format", "dl"),
        ("/01/09521234543213", "format", "dl"),
        ("", "format", "dl"),
        (None, "type", "dl"),
    ],
)
def test_parse_digital_link_rejects(uri: object, rule: str, field: str) -> None:
    with pytest.raises(ValidationError) as info:
        ids.parse_digital_link(uri, "dl")
    assert (info.value.rule, info.value.field) == (rule, field)


def test_digital_link_rejects_bad_parts() -> None:
    with pytest.raises(ValidationError, match="check digit"):
        ids.digital_link("09521234543214", "1")
    with pytest.raises(ValidationError, match="serial"):
        ids.digital_link("09521234543213", "a b")
    with pytest.raises(ValidationError, match="lot"):
        ids.digital_link("09521234543213", "1", lot="")
    for base in ("ftp://x.org", "https://", "https://x.org/?a=1", "https://x.org/#f", "x.org"):
        with pytest.raises(ValidationError, match="base"):
            ids.digital_link("09521234543213", "1", base=base)


_cset82_values = st.text(alphabet=CSET82, min_size=1, max_size=20)


@st.composite
def _gtins(draw: st.DrawFn) -> str:
    length = draw(st.sampled_from([8, 12, 13, 14]))
    body = draw(st.text(alphabet="0123456789", min_size=length - 1, max_size=length - 1))
    return body + str(_naive_gs1(body))


@settings(max_examples=300)
@given(
    key=_gtins(),
    serial=st.none() | _cset82_values,
    lot=st.none() | _cset82_values,
    base=st.sampled_from(
        [
            "https://id.gs1.org",
            "http://example.com/",
            "https://example.com/01/10/21",
            "https://x.org/a/01",
        ]
    ),
)
def test_digital_link_round_trip(key: str, serial: str | None, lot: str | None, base: str) -> None:
    uri = ids.digital_link(key, serial, lot=lot, base=base)
    assert ids.parse_digital_link(uri) == (key.zfill(14), serial, lot)
    assert uri.isascii()
    assert " " not in uri


# --- garbage in, ValidationError out ------------------------------------------------


@settings(max_examples=150)
@given(
    value=st.text()
    | st.text(alphabet="0123456789 .-ACSUJZcnsha%/:01", max_size=24)
    | st.builds(lambda tail: "https://id.gs1.org/01/" + tail, st.text(max_size=40)),
    name=st.sampled_from(sorted(VALIDATORS)),
)
def test_random_text_only_raises_validation_error(value: str, name: str) -> None:
    validator = VALIDATORS[name]
    error = _error_of(validator, value)  # anything but ValidationError propagates
    if error is not None:
        assert error.field.startswith("f")
        assert error.rule
        return
    result = validator(value, "f")
    assert isinstance(result, str)
    if name != "parse_digital_link":
        assert validator(result, "f") == result  # normalisation is idempotent


@given(
    value=st.integers() | st.none() | st.binary() | st.lists(st.text()),
    name=st.sampled_from(sorted(VALIDATORS)),
)
def test_non_str_is_a_type_error(value: object, name: str) -> None:
    _rejects(VALIDATORS[name], value, "type")
