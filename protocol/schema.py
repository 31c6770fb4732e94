"""Declarative body schemas: typed, frozen record bodies that validate themselves.

A body type is a frozen, slotted, keyword-only dataclass deriving from `Body`,
registered under its record type name with `@register("product.mint")`. Each
field is declared with `f(check)`, where `check(value, path) -> value` validates
one wire value and returns the typed one (or raises `ValidationError` naming the
field and the rule). Nested structures derive from `Struct` and are checked with
`struct(Cls)`; lists with `list_of(check, max=…)` (they become tuples).

The wire form of a body is a map of exactly the declared fields. An optional
field (declared with `default=None`) is omitted when absent; an explicit nil is
rejected, so a body has one encoding. Unknown fields are rejected.

Cross-field rules go in a `validate(self)` method, run after the fields parse.

`from_wire` parses a map as `codec.decode_trusting_schema` gives it, in wire
order and not yet walked: it also refuses a map (at any depth) whose keys are
not in sorted order. Every other rule of the codec's walk holds by the schema
itself: keys are field names (str), checks take exact types (no floats), and
the nesting is the schema's. A check that parses a map (or a list of maps) so
carries a `wire` variant that checks the order too (`struct`, `list_of`,
`attrs`, and wrappers through `with_wire`).

Decoding is hot, so each class's parser is compiled from its field table on
first use (`_compile_parser`) and tested against the plain one
(`Struct._parse_reference`); checks used thousands of times per record have
fast paths (`fast_path`, `memo`), each tested against its reference check.
"""

from __future__ import annotations

import dataclasses
import functools
import operator
import re
import types
from collections.abc import Callable
from itertools import islice
from typing import Any, ClassVar, Final, TypeVar

from protocol import codec
from protocol.errors import ValidationError

Check = Callable[[Any, str], Any]
_REQUIRED: Final = dataclasses.MISSING
_CHECK: Final = "sealchain.check"

T = TypeVar("T", bound="Struct")


class Struct:
    """Base of typed maps (bodies and their nested parts)."""

    __slots__ = ()
    _fields: ClassVar[tuple[tuple[str, Check, bool], ...]]

    @classmethod
    def from_value(cls: type[T], value: Any, path: str = "body") -> T:
        """Parse and validate the wire map `value`; errors name fields under `path`."""
        try:
            parse = cls.__dict__["_parser"]
        except KeyError:
            parse = _compile_parser(cls)
            type.__setattr__(cls, "_parser", parse)
        return parse(value, path)  # type: ignore[no-any-return]

    @classmethod
    def from_wire(cls: type[T], value: Any, path: str = "body") -> T:
        """`from_value` for a map straight from `codec.decode_trusting_schema`: also
        refuses keys out of sorted order, here and in every nested map (see above)."""
        try:
            parse = cls.__dict__["_wire_parser"]
        except KeyError:
            parse = _compile_parser(cls, wire=True)
            type.__setattr__(cls, "_wire_parser", parse)
        return parse(value, path)  # type: ignore[no-any-return]

    @classmethod
    def _parse_reference(cls: type[T], value: Any, path: str, wire: bool = False) -> T:
        """What `from_value` (or, with `wire`, `from_wire`) does, written plainly: the
        reference the compiled parsers are tested against, and the parser of classes
        that cannot be compiled (see `_compile_parser`)."""
        if type(value) is not dict:
            raise ValidationError(path, "type", "expected a map")
        if wire:
            _check_order([*value], path)
        kwargs: dict[str, Any] = {}
        for name, check, required in cls._field_table():
            sub = f"{path}.{name}"
            if name in value:
                raw = value[name]
                if raw is None:
                    raise ValidationError(sub, "null", "nil is not allowed: omit the field")
                kwargs[name] = (wire_check(check) if wire else check)(raw, sub)
            elif required:
                raise ValidationError(sub, "required", "missing field")
        if len(kwargs) != len(value):
            _unknown_field(cls, value, path)
        obj = cls(**kwargs)
        obj.validate(path)
        return obj

    @classmethod
    def _field_table(cls) -> tuple[tuple[str, Check, bool], ...]:
        try:
            return cls.__dict__["_fields_cache"]  # type: ignore[no-any-return]
        except KeyError:
            pass
        table = tuple(
            (
                fl.name,
                fl.metadata[_CHECK],
                fl.default is _REQUIRED and fl.default_factory is _REQUIRED,
            )
            for fl in dataclasses.fields(cls)  # type: ignore[arg-type]
            if _CHECK in fl.metadata
        )
        type.__setattr__(cls, "_fields_cache", table)
        return table

    def validate(self, path: str) -> None:
        """Cross-field rules; override where a body has them."""

    def to_value(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, _, _ in self._field_table():
            v = getattr(self, name)
            if v is not None:
                out[name] = _dump(v)
        return out

    @classmethod
    def _sorted_names(cls) -> tuple[str, ...]:
        try:
            return cls.__dict__["_sorted_cache"]  # type: ignore[no-any-return]
        except KeyError:
            pass
        names = tuple(sorted(name for name, _, _ in cls._field_table()))
        type.__setattr__(cls, "_sorted_cache", names)
        return names

    def canonical_value(self) -> dict[str, Any]:
        """`to_value` in the form `codec.encode` would copy it to (maps in sorted key
        order, sequences as lists), for `codec.encode_canonical`: a parsed body's
        members are all of the types and ranges its schema allows, so signing it needs
        no canonical copy."""
        out: dict[str, Any] = {}
        for name in self._sorted_names():
            v = getattr(self, name)
            if v is not None:
                out[name] = _canonical_dump(v)
        return out


def _unknown_field(cls: type[Struct], value: dict[Any, Any], path: str) -> None:
    known = {n for n, _, _ in cls._field_table()}
    extra = sorted(str(k) for k in value if k not in known)
    raise ValidationError(f"{path}.{extra[0]}", "unknown", "unknown field")


def _check_order(keys: list[Any], path: str) -> None:
    """Raise unless `keys` (a map's, in wire order) are str in sorted order."""
    if not codec.canonical_keys(keys):
        raise ValidationError(path, "canonical", "map keys are not str in sorted order")


_MAX_ORDERS: Final = 1024


def _ordered(keys: tuple[Any, ...], path: str, seen: set[tuple[Any, ...]],
             names: frozenset[str]) -> None:
    """`_check_order` for a compiled wire parser, which remembers (in `seen`) the key
    tuples it passed that hold field `names` only: at most one per subset of fields."""
    _check_order(list(keys), path)
    if len(seen) < _MAX_ORDERS and names.issuperset(keys):
        seen.add(keys)


def wire_check(check: Check) -> Check:
    """The variant of `check` for values from `codec.decode_trusting_schema` (see above)."""
    wire: Check = getattr(check, "wire", check)
    return wire


def with_wire(check: Check, wrap: Callable[[Check], Check]) -> Check:
    """`wrap(check)`, whose wire variant is `wrap` of `check`'s (for checks that wrap others)."""
    out = wrap(check)
    inner = getattr(check, "wire", None)
    if inner is not None:
        out.wire = wrap(inner)  # type: ignore[attr-defined]
    return out


def _nil(path: str) -> None:
    raise ValidationError(path, "null", "nil is not allowed: omit the field")


def _missing(path: str) -> None:
    raise ValidationError(path, "required", "missing field")


def _compile_parser(cls: type[Struct], wire: bool = False) -> Callable[[Any, str], Any]:
    """A parser for `cls` specialised to its fields, as dataclasses builds `__init__`
    (with `wire`, the parser of `from_wire`: it checks the key order first).

    Decoding runs it for every map of every record, so it does per field only
    what the field needs: a lookup, the nil and required rules, the check, and
    a direct write of the slot (bypassing the frozen `__setattr__`, as the
    dataclass `__init__` does). It decides exactly as `_parse_reference` does
    (tested against it). A class whose fields are not all checked slots with
    defaults where optional, or that has a `__post_init__`, keeps the reference.
    """
    fields = {fl.name: fl for fl in dataclasses.fields(cls)}  # type: ignore[arg-type]
    checked = cls._field_table()
    setters = {name: _slot_setter(cls, name) for name in fields}
    if not (
        len(checked) == len(fields)
        and all(setters.values())
        and all(required or fields[n].default is not _REQUIRED for n, _, required in checked)
        and not hasattr(cls, "__post_init__")
    ):
        return functools.partial(cls._parse_reference.__func__, cls,  # type: ignore[attr-defined]
                                 wire=wire)
    env: dict[str, Any] = {
        "cls": cls, "_new": object.__new__, "_nil": _nil, "_missing": _missing,
        "_unknown_field": _unknown_field, "_validate": cls.validate,
        "ValidationError": ValidationError, "_ordered": _ordered, "_orders": set(),
        "_names": frozenset(name for name, _, _ in checked),
    }
    lines = [
        "def parse(value, path):",
        "    if type(value) is not dict:",
        "        raise ValidationError(path, 'type', 'expected a map')",
    ]
    if wire:
        lines += [
            "    keys = tuple(value)",
            "    if keys not in _orders:",
            "        _ordered(keys, path, _orders, _names)",
        ]
    lines += [
        "    obj = _new(cls)",
        "    n = 0",
    ]
    for i, (name, check, required) in enumerate(checked):
        env[f"_check{i}"] = wire_check(check) if wire else check
        env[f"_set{i}"] = setters[name]
        env[f"_default{i}"] = fields[name].default
        suffix = f".{name}"
        lines += [
            f"    if {name!r} in value:",
            f"        raw = value[{name!r}]",
            "        if raw is None:",
            f"            _nil(path + {suffix!r})",
            f"        _set{i}(obj, _check{i}(raw, path + {suffix!r}))",
            "        n += 1",
            "    else:",
            f"        _missing(path + {suffix!r})" if required else f"        _set{i}(obj, _default{i})",
        ]
    lines += ["    if n != len(value):", "        _unknown_field(cls, value, path)"]
    if cls.validate is not Struct.validate:  # the base has no rules: skip the call
        lines.append("    _validate(obj, path)")
    lines.append("    return obj")
    exec("\n".join(lines), env)  # field names only: no outside input
    parse: Callable[[Any, str], Any] = env["parse"]
    parse.__qualname__ = f"{cls.__qualname__}.{'from_wire' if wire else 'from_value'}"
    return parse


def _slot_setter(cls: type, name: str) -> Callable[[Any, Any], None] | None:
    """The `__set__` of the slot `name` of `cls` (bypassing a frozen `__setattr__`)."""
    for klass in cls.__mro__:
        if name in klass.__dict__:
            desc = klass.__dict__[name]
            return desc.__set__ if isinstance(desc, types.MemberDescriptorType) else None
    return None


def _canonical_dump(v: Any) -> Any:
    t = type(v)
    if t is str or t is bytes or t is int or t is bool:
        return v
    if isinstance(v, Struct):
        return v.canonical_value()
    if t is tuple or t is list:
        return [_canonical_dump(x) for x in v]
    if t is dict:
        return {k: _canonical_dump(v[k]) for k in sorted(v)}
    return v


def _dump(v: Any) -> Any:
    if isinstance(v, Struct):
        return v.to_value()
    if type(v) is tuple or type(v) is list:
        return [_dump(x) for x in v]
    if type(v) is dict:
        return {k: _dump(x) for k, x in v.items()}
    return v


class Body(Struct):
    """Base of record bodies; `TYPE` is the record type name."""

    __slots__ = ()
    TYPE: ClassVar[str] = ""


TYPES: dict[str, type[Body]] = {}

B = TypeVar("B", bound=type[Body])


def register(type_name: str) -> Callable[[B], B]:
    def deco(cls: B) -> B:
        if type_name in TYPES:
            raise RuntimeError(f"record type {type_name} registered twice")
        cls.TYPE = type_name
        TYPES[type_name] = cls
        return cls

    return deco


def parse_body(type_name: str, value: Any) -> Body:
    """The typed body of a record of `type_name`, or `ValidationError`."""
    return _body_type(type_name).from_value(value, "body")


def parse_wire_body(type_name: str, value: Any) -> Body:
    """`parse_body` with `from_wire`: for a body from `codec.decode_trusting_schema`."""
    return _body_type(type_name).from_wire(value, "body")


def _body_type(type_name: str) -> type[Body]:
    if type(type_name) is not str:
        raise ValidationError("type", "type", "type is a string")
    try:
        return TYPES[type_name]
    except KeyError:
        raise ValidationError("type", "unknown", f"unknown record type {type_name!r}") from None


def type_of(body: Body) -> str:
    return type(body).TYPE


def f(check: Check, *, default: Any = _REQUIRED) -> Any:
    """Declare a schema field validated by `check`."""
    return dataclasses.field(default=default, metadata={_CHECK: check})


# -- checks ------------------------------------------------------------------


def integer(lo: int, hi: int) -> Check:
    def check(v: Any, path: str) -> int:
        if type(v) is not int:
            raise ValidationError(path, "type", "expected an integer")
        if not lo <= v <= hi:
            raise ValidationError(path, "range", f"{v} is outside {lo}..{hi}")
        return v

    return check


def boolean(v: Any, path: str) -> bool:
    if type(v) is not bool:
        raise ValidationError(path, "type", "expected true or false")
    return v


def binary(size: int) -> Check:
    def check(v: Any, path: str) -> bytes:
        if type(v) is not bytes:
            raise ValidationError(path, "type", "expected bytes")
        if len(v) != size:
            raise ValidationError(path, "length", f"expected {size} bytes, got {len(v)}")
        return v

    return check


hash32: Final = binary(32)
key32: Final = binary(32)


def string(max_len: int, pattern: str | None = None, *, min_len: int = 1) -> Check:
    rx = re.compile(pattern) if pattern else None

    def check(v: Any, path: str) -> str:
        if type(v) is not str:
            raise ValidationError(path, "type", "expected a string")
        if not min_len <= len(v) <= max_len:
            raise ValidationError(path, "length", f"length {len(v)} is outside {min_len}..{max_len}")
        if rx is not None and not rx.fullmatch(v):
            raise ValidationError(path, "format", f"{v!r} does not match {pattern}")
        return v

    return check


def one_of(*choices: str) -> Check:
    allowed = frozenset(choices)

    def check(v: Any, path: str) -> str:
        if type(v) is not str or v not in allowed:
            raise ValidationError(path, "enum", f"expected one of {', '.join(sorted(allowed))}")
        return v

    return check


_STR_TYPE: Final = frozenset({str})


def _fits(v: list[Any], rx: re.Pattern[str]) -> bool:
    """Whether every item of `v` matches `rx`, checked on the items joined by newlines.

    `rx` matches newline-separated runs of 1 or more characters of a class that
    excludes the newline (see `fast_path`). With exactly len(v) - 1 newlines in
    the joined string, no item contains one, so the runs are the items.
    """
    if not _STR_TYPE.issuperset(map(type, v)):
        return False
    joined = "\n".join(v)
    return joined.count("\n") == len(v) - 1 and rx.fullmatch(joined) is not None


def list_of(
    item: Check, *, max: int, min: int = 0, unique: bool = False, ascending: bool = False
) -> Check:
    """A list of `item`; `ascending` demands strictly increasing order (implies unique)."""
    return with_wire(item, lambda i: _list_check(i, max, min, unique, ascending))


def _list_check(item: Check, max: int, min: int, unique: bool, ascending: bool) -> Check:
    # An item check made by `fast_path` carries a pattern for a whole list: a list
    # of strings that all fit is accepted with no Python call per item.
    bulk: re.Pattern[str] | None = getattr(item, "bulk", None)

    def check(v: Any, path: str) -> tuple[Any, ...]:
        if type(v) is not list:
            raise ValidationError(path, "type", "expected a list")
        if not min <= len(v) <= max:
            raise ValidationError(path, "length", f"{len(v)} items, expected {min}..{max}")
        if bulk is not None and v and _fits(v, bulk):
            out = tuple(v)
        else:
            try:
                # No per-item path strings. On failure, check again item by item
                # with indexed paths, so the error names the exact item.
                out = tuple([item(x, path) for x in v])
            except ValidationError:
                for i, x in enumerate(v):
                    item(x, f"{path}[{i}]")
                raise
        if ascending and not all(map(operator.lt, out, islice(out, 1, None))):
            for i in range(1, len(out)):
                if not out[i - 1] < out[i]:
                    raise ValidationError(f"{path}[{i}]", "order", "items must be sorted and unique")
        elif unique and len(set(out)) != len(out):
            raise ValidationError(path, "unique", "items must be unique")
        return out

    return check


def fast_path(check: Check, *, chars: str, min_len: int, max_len: int) -> Check:
    """`check`, except that a str of `min_len` to `max_len` characters, all matching
    the regex character class `chars`, is accepted as it is.

    For checks run thousands of times per record (the serials of a mint), where
    this test is much cheaper than the general check, and `list_of` can apply it
    to a whole list at once. It must accept only values that `check` accepts and
    returns unchanged; the two are tested against each other. Everything else
    goes through `check`, so errors are exactly `check`'s.
    """
    if min_len < 1 or re.fullmatch(f"[{chars}]", "\n"):
        raise ValueError("fast_path needs min_len >= 1 and a class without the newline")
    item = f"[{chars}]{{{min_len},{max_len}}}"
    rx = re.compile(item)

    def fast(v: Any, path: str) -> Any:
        if type(v) is str and rx.fullmatch(v) is not None:
            return v
        return check(v, path)

    fast.bulk = re.compile(f"{item}(?:\n{item})*")  # type: ignore[attr-defined]  # for `list_of`
    return fast


def memo(check: Check, *, size: int = 4096) -> Check:
    """`check`, remembering the string values it accepted (at most `size` of them).

    For identifier checks, whose outcome depends on the value alone (the path
    only names it in errors): containers, facilities, ports and seals recur in
    traffic, and a remembered value skips its check-digit arithmetic. Only
    accepted values are kept, so a rejection is always computed afresh.
    """
    seen: dict[str, Any] = {}

    def cached(v: Any, path: str) -> Any:
        if type(v) is str:
            try:
                return seen[v]
            except KeyError:
                pass
            out = check(v, path)
            if len(seen) >= size:
                seen.clear()
            seen[v] = out
            return out
        return check(v, path)

    return cached


def struct(cls: type[Struct]) -> Check:
    def check(v: Any, path: str) -> Struct:
        return cls.from_value(v, path)

    def wire(v: Any, path: str) -> Struct:
        return cls.from_wire(v, path)

    check.wire = wire  # type: ignore[attr-defined]
    return check


def normalised(check: Check) -> Check:
    """Accept only values already in the normal form `check` returns.

    Identifier checks normalise (upper-case, strip spaces); on the wire only the
    normal form is allowed, so one body has one encoding.
    """

    def strict(v: Any, path: str) -> Any:
        out = check(v, path)
        if out != v:
            raise ValidationError(path, "normal_form", f"write {out!r}, not {v!r}")
        return out

    return strict


def attrs(*, max_items: int, max_str: int) -> Check:
    """A flat map of short string keys to str / int / bool values (digital-twin attributes)."""
    key = string(64, r"[a-z][a-z0-9_.-]*")
    text = string(max_str, min_len=0)

    def check(v: Any, path: str) -> dict[str, Any]:
        if type(v) is not dict:
            raise ValidationError(path, "type", "expected a map")
        if len(v) > max_items:
            raise ValidationError(path, "length", f"at most {max_items} attributes")
        for k, x in v.items():
            key(k, f"{path}.<key>")
            if type(x) is str:
                text(x, f"{path}.{k}")
            elif type(x) not in (int, bool):
                raise ValidationError(f"{path}.{k}", "type", "attribute values are str, int or bool")
        return dict(v)

    def wire(v: Any, path: str) -> dict[str, Any]:
        out = check(v, path)
        _check_order([*v], path)  # the keys are str: `check` checked them
        return out

    check.wire = wire  # type: ignore[attr-defined]
    return check
