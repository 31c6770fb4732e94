"""Validators for the standard identifiers that sealchain records carry.

Each validator is `(value, field) -> str`: it returns the normalised value or
raises `ValidationError(field, rule, message)`. Rules are short stable codes:
"type" (not a str), "length", "format", and one per check or code list
("iso6346.check_digit", "gtin.check_digit", "sscc.check_digit",
"gln.check_digit", "country.unassigned", "locode.country", "hs_code.chapter",
"seal_class.unknown"). Messages quote at most a short prefix of the value, so a
hostile megabyte string cannot blow up a log line.

Sources: ISO 6346:2022 (container numbers), GS1 General Specifications
(mod-10 check digit, AI 10/21 character set 82), ISO 3166-1 (alpha-2 codes),
UN/LOCODE, WCO Harmonized System, ISO 17712 (seals) and the GS1 Digital Link
URI syntax 1.2. Pure: no I/O, standard library only.
"""

from __future__ import annotations

import re
from typing import Final
from urllib.parse import quote, unquote, urlsplit

from protocol.errors import ValidationError

__all__ = [
    "COUNTRIES",
    "SEAL_CLASSES",
    "container_number",
    "country",
    "digital_link",
    "gln",
    "gs1_check_digit",
    "gtin",
    "hs_code",
    "iso6346_check_digit",
    "locode",
    "lot",
    "parse_digital_link",
    "seal_class",
    "seal_number",
    "serial",
    "sscc",
    "text",
]

# ISO 3166-1 alpha-2, officially assigned codes only (249). Exceptionally,
# transitionally and indeterminately reserved codes (EU, UK, XK, AN, ...) and
# user-assigned ones (AA, QM-QZ, XA-XZ, ZZ) are deliberately absent.
COUNTRIES: Final[frozenset[str]] = frozenset(
    """
    AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ
    BL BM BN BO BQ BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR
    CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR
    GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU
    ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ
    LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ
    MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF
    PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI
    SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR
    TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW
    """.split()
)

SEAL_CLASSES: Final[frozenset[str]] = frozenset({"I", "S", "H"})
"""ISO 17712 classes: indicative, security, high-security."""

# ISO 6346 letter values: A=10 upwards, skipping multiples of 11.
_ISO6346_LETTERS: Final[dict[str, int]] = dict(
    zip("ABCDEFGHIJKLMNOPQRSTUVWXYZ", [v for v in range(10, 39) if v % 11], strict=True)
)
_GTIN_LENGTHS: Final = (8, 12, 13, 14)
_DIGITS: Final = re.compile(r"[0-9]*")
_CONTAINER: Final = re.compile(r"[A-Z]{3}[UJZ][0-9]{7}")
# GS1 AI encodable character set 82 (GS1 General Specifications, figure 7.11-1).
_CSET82: Final = re.compile(r"""[!"%&'()*+,\-./0-9:;<=>?A-Z_a-z]*""")
_SEAL: Final = re.compile(r"[A-Z0-9-]*")
_LOCODE: Final = re.compile(r"([A-Z]{2}) ?([A-Z2-9]{3})")
_MAX_SHOWN: Final = 40

# Characters `text` refuses: C0/C1 controls, surrogates, line and paragraph
# separators, and the bidi embedding/override/isolate controls ("Trojan
# Source"). Written as ranges, not Unicode categories, so that every Python
# version (every peer) draws the same line.
_TEXT_FORBIDDEN: Final = re.compile(
    "[\x00-\x1f\x7f-\x9f\ud800-\udfff\u2028\u2029\u202a-\u202e\u2066-\u2069]"
)

# RFC 3986 path segment: unreserved / pct-encoded / sub-delims / ":" / "@".
_SEGMENT: Final = re.compile(r"(?:[A-Za-z0-9\-._~!$&'()*+,;=:@]|%[0-9A-Fa-f]{2})*")
_URI_CHARS: Final = re.compile(r"[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]+")
# GS1 Digital Link key qualifiers of a GTIN, in their required order.
_QUALIFIER_ORDER: Final[dict[str, int]] = {"22": 0, "10": 1, "21": 2}


def _show(value: str) -> str:
    """`value` quoted for a message, cut short if long."""
    if len(value) > _MAX_SHOWN:
        return repr(value[:_MAX_SHOWN]) + "..."
    return repr(value)


def _require_str(value: object, field: str, what: str) -> str:
    if not isinstance(value, str):
        raise ValidationError(field, "type", f"{what} must be a string, got {type(value).__name__}")
    return value


def _require_ascii_digits(value: str, field: str, what: str) -> None:
    if not _DIGITS.fullmatch(value):
        raise ValidationError(
            field, "format", f"{what} {_show(value)} must contain only digits 0-9"
        )


# --- ISO 6346 container numbers ---------------------------------------------


def iso6346_check_digit(first10: str) -> int:
    """The ISO 6346 check digit of owner code, category and serial (10 chars).

    Each character's value (digits as themselves, letters per the ISO table)
    is weighted by 2**position; the digit is (sum mod 11) mod 10.
    """
    if not isinstance(first10, str) or len(first10) != 10:
        raise ValidationError("", "length", "ISO 6346 check digit needs exactly 10 characters")
    total = 0
    for i, ch in enumerate(first10):
        if "0" <= ch <= "9":
            v = ord(ch) - ord("0")
        elif ch in _ISO6346_LETTERS:
            v = _ISO6346_LETTERS[ch]
        else:
            raise ValidationError(
                "", "format", f"{_show(first10)}: ISO 6346 allows only A-Z and 0-9, got {ch!r}"
            )
        total += v << i
    return total % 11 % 10


def container_number(value: object, field: str) -> str:
    """An ISO 6346 container number, e.g. "CSQU 305438 3" -> "CSQU3054383".

    Normalised by removing spaces and upper-casing; then 3-letter owner code,
    equipment category U, J or Z, 6-digit serial and a matching check digit.
    """
    raw = _require_str(value, field, "container number")
    s = raw.replace(" ", "")
    if len(s) != 11:
        raise ValidationError(
            field,
            "length",
            f"container number {_show(raw)} has {len(s)} characters without spaces, expected 11",
        )
    if not s.isascii():
        raise ValidationError(field, "format", f"container number {_show(raw)} must be ASCII")
    s = s.upper()
    if not _CONTAINER.fullmatch(s):
        raise ValidationError(
            field,
            "format",
            f"container number {s} must be a 3-letter owner code, equipment category "
            "U, J or Z, a 6-digit serial and a check digit (e.g. CSQU3054383)",
        )
    expected = iso6346_check_digit(s[:10])
    if int(s[10]) != expected:
        raise ValidationError(
            field,
            "iso6346.check_digit",
            f"container number {s} has check digit {s[10]}, expected {expected}",
        )
    return s


# --- GS1 keys -----------------------------------------------------------------


def gs1_check_digit(digits_without_check: str) -> int:
    """The GS1 mod-10 check digit: weights 3, 1, 3, ... from the right."""
    if not isinstance(digits_without_check, str) or not digits_without_check:
        raise ValidationError("", "length", "GS1 check digit needs at least one digit")
    _require_ascii_digits(digits_without_check, "", "GS1 number")
    total = 0
    for i, ch in enumerate(reversed(digits_without_check)):
        total += (ord(ch) - ord("0")) * (3 if i % 2 == 0 else 1)
    return -total % 10


def _gs1_key(value: object, field: str, what: str, lengths: tuple[int, ...], rule: str) -> str:
    s = _require_str(value, field, what)
    _require_ascii_digits(s, field, what)
    if len(s) not in lengths:
        expected = " or ".join(str(n) for n in lengths)
        raise ValidationError(
            field, "length", f"{what} {_show(s)} has {len(s)} digits, expected {expected}"
        )
    expected_check = gs1_check_digit(s[:-1])
    if int(s[-1]) != expected_check:
        raise ValidationError(
            field, rule, f"{what} {s} has check digit {s[-1]}, expected {expected_check}"
        )
    return s


def gtin(value: object, field: str) -> str:
    """A GTIN-8, -12, -13 or -14, returned as 14 digits (left-padded with zeros)."""
    return _gs1_key(value, field, "GTIN", _GTIN_LENGTHS, "gtin.check_digit").zfill(14)


def sscc(value: object, field: str) -> str:
    """An SSCC: 18 digits with a GS1 check digit."""
    return _gs1_key(value, field, "SSCC", (18,), "sscc.check_digit")


def gln(value: object, field: str) -> str:
    """A GLN: 13 digits with a GS1 check digit."""
    return _gs1_key(value, field, "GLN", (13,), "gln.check_digit")


def _gs1_cset82(value: object, field: str, what: str) -> str:
    s = _require_str(value, field, what)
    if not 1 <= len(s) <= 20:
        raise ValidationError(field, "length", f"{what} has {len(s)} characters, expected 1 to 20")
    if not _CSET82.fullmatch(s):
        bad = next(ch for ch in s if not _CSET82.fullmatch(ch))
        raise ValidationError(
            field,
            "format",
            f"{what} {_show(s)} contains {bad!r}; GS1 character set 82 allows A-Z, a-z, 0-9 "
            "and !\"%&'()*+,-./:;<=>?_",
        )
    return s


def lot(value: object, field: str) -> str:
    """A GS1 AI (10) batch/lot number: 1-20 characters of set 82, case kept."""
    return _gs1_cset82(value, field, "lot")


def serial(value: object, field: str) -> str:
    """A GS1 AI (21) serial number: 1-20 characters of set 82, case kept."""
    return _gs1_cset82(value, field, "serial")


# --- places and goods -----------------------------------------------------------


def _country_code(s: str, field: str, rule: str, what: str) -> str:
    if s not in COUNTRIES:
        raise ValidationError(
            field, rule, f"{what} {s} is not an officially assigned ISO 3166-1 alpha-2 code"
        )
    return s


def country(value: object, field: str) -> str:
    """An officially assigned ISO 3166-1 alpha-2 code, upper-case ("CN", not "cn")."""
    s = _require_str(value, field, "country code")
    if len(s) != 2:
        raise ValidationError(
            field, "length", f"country code {_show(s)} has {len(s)} characters, expected 2"
        )
    if not (s.isascii() and s.isalpha() and s.isupper()):
        hint = f"; write {s.upper()}" if s.isascii() and s.isalpha() else ""
        raise ValidationError(
            field, "format", f"country code {s!r} must be two upper-case letters A-Z{hint}"
        )
    return _country_code(s, field, "country.unassigned", "country code")


def locode(value: object, field: str) -> str:
    """A UN/LOCODE, "CNSHA" or "CN SHA", returned as "CNSHA"."""
    s = _require_str(value, field, "UN/LOCODE")
    m = _LOCODE.fullmatch(s)
    if m is None:
        raise ValidationError(
            field,
            "format",
            f"UN/LOCODE {_show(s)} must be an upper-case country code and 3 characters "
            "of A-Z or 2-9, e.g. CNSHA or CN SHA",
        )
    _country_code(m[1], field, "locode.country", f"UN/LOCODE {s!r}: country")
    return m[1] + m[2]


def hs_code(value: object, field: str) -> str:
    """A Harmonized System code of 6 digits, or a national 8 or 10 digit one.

    Dots and spaces are removed ("0901.21" -> "090121"). The chapter (first two
    digits) must be 01-97 other than 77, which the HS reserves.
    """
    raw = _require_str(value, field, "HS code")
    s = raw.replace(".", "").replace(" ", "")
    _require_ascii_digits(s, field, "HS code")
    if len(s) not in (6, 8, 10):
        raise ValidationError(
            field,
            "length",
            f"HS code {_show(raw)} has {len(s)} digits, expected 6 (or 8 or 10 for "
            "national extensions)",
        )
    chapter = int(s[:2])
    if not 1 <= chapter <= 97 or chapter == 77:
        raise ValidationError(
            field,
            "hs_code.chapter",
            f"HS code {s} is in chapter {s[:2]}, expected 01-97 (77 is reserved)",
        )
    return s


# --- seals ----------------------------------------------------------------------


def seal_number(value: object, field: str) -> str:
    """An ISO 17712 seal number: 1-32 of A-Z, 0-9 and '-', returned upper-case.

    At least one letter or digit is required: a seal number of hyphens only
    identifies nothing.
    """
    s = _require_str(value, field, "seal number")
    if not 1 <= len(s) <= 32:
        raise ValidationError(
            field, "length", f"seal number has {len(s)} characters, expected 1 to 32"
        )
    # ASCII first: str.upper() maps some non-ASCII letters ("ı", "ß") onto A-Z.
    upper = s.upper() if s.isascii() else s
    if not _SEAL.fullmatch(upper) or upper.strip("-") == "":
        raise ValidationError(
            field,
            "format",
            f"seal number {_show(s)} must contain only A-Z, 0-9 and '-', "
            "with at least one letter or digit",
        )
    return upper


def seal_class(value: object, field: str) -> str:
    """An ISO 17712 seal class: "I", "S" or "H" (lower-case accepted)."""
    s = _require_str(value, field, "seal class")
    upper = s.upper() if s.isascii() else s
    if upper not in SEAL_CLASSES:
        raise ValidationError(
            field,
            "seal_class.unknown",
            f"seal class {_show(s)} is not one of I (indicative), S (security), H (high-security)",
        )
    return upper


# --- free text ----------------------------------------------------------------


def text(value: object, field: str, max_len: int) -> str:
    """Single-line printable Unicode, stripped, 1 to `max_len` characters.

    Refuses control characters (tab and newline included), lone surrogates
    (they cannot be encoded as UTF-8), line/paragraph separators and bidi
    override controls.
    """
    s = _require_str(value, field, "text").strip()
    if not s:
        raise ValidationError(field, "length", "text must not be empty or only whitespace")
    if len(s) > max_len:
        raise ValidationError(
            field, "length", f"text has {len(s)} characters, expected at most {max_len}"
        )
    bad = _TEXT_FORBIDDEN.search(s)
    if bad is not None:
        raise ValidationError(
            field,
            "format",
            f"text contains U+{ord(bad[0]):04X} at position {bad.start()}; control, "
            "surrogate, line-separator and bidi-override characters are not allowed",
        )
    return s


# --- GS1 Digital Link -----------------------------------------------------------

_validate_gtin = gtin
_validate_serial = serial
_validate_lot = lot


def _check_base(base: object, field: str) -> str:
    s = _require_str(base, field, "Digital Link base")
    error = ValidationError(
        field,
        "format",
        f"Digital Link base {_show(s)} must be an http(s) URI with a host and no query "
        "or fragment, e.g. https://id.gs1.org",
    )
    if not _URI_CHARS.fullmatch(s):
        raise error
    try:
        parts = urlsplit(s)
    except ValueError as exc:
        raise error from exc
    segments = parts.path.split("/")
    if (
        parts.scheme.lower() not in ("http", "https")
        or not parts.hostname
        or "?" in s
        or "#" in s
        or not all(_SEGMENT.fullmatch(seg) for seg in segments)
    ):
        raise error
    return s.rstrip("/")


def digital_link(
    gtin: str,
    serial: str | None,
    lot: str | None = None,
    base: str = "https://id.gs1.org",
) -> str:
    """A GS1 Digital Link URI: `{base}/01/{gtin14}[/10/{lot}][/21/{serial}]`.

    Lot and serial are percent-encoded as the Digital Link standard requires:
    every character other than A-Z, a-z, 0-9, '-', '.' and '_'.
    """
    uri = _check_base(base, "base") + "/01/" + _validate_gtin(gtin, "gtin")
    if lot is not None:
        uri += "/10/" + quote(_validate_lot(lot, "lot"), safe="")
    if serial is not None:
        uri += "/21/" + quote(_validate_serial(serial, "serial"), safe="")
    return uri


def _decode_segment(segment: str, field: str, what: str) -> str:
    if not segment or not _SEGMENT.fullmatch(segment):
        raise ValidationError(
            field, "format", f"Digital Link {what} {_show(segment)} is not a valid URI path segment"
        )
    try:
        return unquote(segment, errors="strict")
    except UnicodeDecodeError as exc:
        raise ValidationError(
            field, "format", f"Digital Link {what} {_show(segment)} is not UTF-8 once decoded"
        ) from exc


def parse_digital_link(
    uri: object, field: str = "digital_link"
) -> tuple[str, str | None, str | None]:
    """`(gtin14, serial, lot)` from a GS1 Digital Link URI with a GTIN key.

    Accepts any http(s) host and path prefix before `/01/`; the key qualifiers
    that may follow are 10 (lot) and 21 (serial), in that order. The query
    string (data attributes) and fragment are ignored.
    """
    s = _require_str(uri, field, "Digital Link")
    malformed = ValidationError(
        field,
        "format",
        f"{_show(s)} is not a GS1 Digital Link URI like https://id.gs1.org/01/<gtin>/21/<serial>",
    )
    if not _URI_CHARS.fullmatch(s):
        raise malformed
    try:
        parts = urlsplit(s)
    except ValueError as exc:
        raise malformed from exc
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise malformed
    segments = parts.path.split("/")
    # The primary key is the rightmost "01" leaving an even number of
    # segments: AIs sit at even offsets from it, values at odd ones, so no
    # later value can be mistaken for it and a path prefix may contain "01".
    start = next(
        (
            i
            for i in range(len(segments) - 2, 0, -1)
            if segments[i] == "01" and (len(segments) - i) % 2 == 0
        ),
        None,
    )
    if start is None or not all(_SEGMENT.fullmatch(seg) for seg in segments[:start]):
        raise malformed
    key = _validate_gtin(
        _decode_segment(segments[start + 1], f"{field}.gtin", "GTIN"), f"{field}.gtin"
    )
    values: dict[str, str] = {}
    rank = -1
    for i in range(start + 2, len(segments), 2):
        ai = segments[i]
        if ai not in ("10", "21"):
            supported = "22 is not supported here" if ai == "22" else "expected 10 or 21"
            raise ValidationError(
                field, "format", f"Digital Link key qualifier {_show(ai)}: {supported}"
            )
        if _QUALIFIER_ORDER[ai] <= rank:
            raise ValidationError(
                field, "format", "Digital Link key qualifiers must be /10/ then /21/, each once"
            )
        rank = _QUALIFIER_ORDER[ai]
        values[ai] = _decode_segment(segments[i + 1], field, f"AI {ai} value")
    serial_value = values.get("21")
    lot_value = values.get("10")
    if serial_value is not None:
        serial_value = _validate_serial(serial_value, f"{field}.serial")
    if lot_value is not None:
        lot_value = _validate_lot(lot_value, f"{field}.lot")
    return key, serial_value, lot_value
