"""The record envelope: one signed, hash-linked entry of an author's feed.

Wire form (canonical MessagePack, see `protocol.codec`)::

    record  = [unsigned, signature]            # a 2-array of bin
    unsigned = {"v", "net", "author", "seq", "prev", "ts", "type", "body"}

`signature` is Ed25519 by `author` over `SIGNING_DOMAIN + unsigned`. Keeping the
signed bytes as an embedded bin means a verifier checks the signature over the
exact bytes it received, with no re-encoding.

The record id is BLAKE2b-256 under the `sc/record-id` domain over the *whole*
wire form, signature included, so a signed head commits to every earlier
record of its feed, signatures and all (`prev` is the previous record's id).
That is what lets `protocol.feed.verify_range` authenticate a run of records
with a single signature check.

`Record.from_bytes` checks canonical form, sizes, field shapes and the body's
schema; it checks the signature unless told not to (range verification). It
leaves the codec's walk over the decoded value (key order, value types) to the
body schema, which checks the same as it parses (`schema.Struct.from_wire`);
anything that fails there is decoded again the plain way
(`Record.from_bytes_reference`), so every error is the plain path's. Tests hold
the two to the same answers.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Final

from crypto import hashing
from crypto.errors import VerificationError
from crypto.keys import PUBLIC_KEY_SIZE, SIGNATURE_SIZE, PublicKey, SigningKey
from protocol import bodies as _bodies  # noqa: F401  (registers the record types)
from protocol import codec, schema
from protocol.errors import DecodeError, Error, LocalProtocolError, ValidationError

VERSION: Final = 1
SIGNING_DOMAIN: Final = b"sealchain/record/v1\x00"
MAX_RECORD: Final = 64 * 1024
ID_SIZE: Final = 32
MAX_TIMESTAMP: Final = 2**53  # ms; far beyond any real date, and exact in JSON
_KEYS: Final = frozenset({"v", "net", "author", "seq", "prev", "ts", "type", "body"})
_WIRE_ORDER: Final = tuple(sorted(_KEYS))  # the header's keys as a canonical record has them


_ID_HASHER: Final = hashing.hasher(hashing.RECORD_ID)


def record_id(wire: bytes) -> bytes:
    """BLAKE2b-256 of the whole wire form under the `sc/record-id` domain."""
    h = _ID_HASHER.copy()  # cheaper than setting up the personalised hash each time
    h.update(wire)
    return h.digest()


@dataclass(frozen=True, slots=True, kw_only=True)
class Record:
    """A signed record. Build with `Record.sign` or `Record.from_bytes`, never by hand."""

    version: int
    network: bytes
    author: bytes
    seq: int
    prev: bytes | None
    ts: int
    type: str
    body: Any  # the typed body object from `protocol.schema`
    signature: bytes
    wire: bytes = field(repr=False, compare=False)
    id: bytes = field(compare=False)

    # -- construction -------------------------------------------------------

    @classmethod
    def sign(
        cls,
        key: SigningKey,
        *,
        network: bytes,
        seq: int,
        prev: bytes | None,
        ts: int,
        type: str,
        body: Any,
    ) -> Record:
        """Make and sign a record.

        Raises `ValidationError` (naming the field and rule) for an invalid
        header or body, `LocalProtocolError` for a record over the size limit.
        """
        if isinstance(body, schema.Body):
            if schema.type_of(body) != type:
                raise LocalProtocolError(f"body is a {schema.type_of(body)}, not a {type}")
            body = body.to_value()
        # Parse what will go on the wire, so a signed record is always a valid one.
        body = schema.parse_body(type, body)
        unsigned_map = {  # in the canonical (sorted) key order
            "author": key.public.raw,
            "body": body.canonical_value(),
            "net": network,
            "prev": prev,
            "seq": seq,
            "ts": ts,
            "type": type,
            "v": VERSION,
        }
        _check_header(unsigned_map)
        unsigned = codec.encode_canonical(unsigned_map)
        sig = key.sign(SIGNING_DOMAIN + unsigned)
        wire = codec.encode([unsigned, sig])
        if len(wire) > MAX_RECORD:
            raise LocalProtocolError(f"record is {len(wire)} bytes, over the {MAX_RECORD}-byte limit")
        return cls(
            version=VERSION,
            network=network,
            author=key.public.raw,
            seq=seq,
            prev=prev,
            ts=ts,
            type=type,
            body=body,
            signature=sig,
            wire=wire,
            id=record_id(wire),
        )

    @classmethod
    def from_bytes(cls, data: bytes, *, verify: bool = True) -> Record:
        """Decode and validate one record.

        Raises `DecodeError` for bytes that are not a canonical record,
        `ValidationError` for a header or body that breaks a rule, and
        `VerificationError` for a bad signature (when `verify`).
        """
        wire = _as_wire(data)
        unsigned, sig = _split(wire)
        try:
            m = codec.decode_trusting_schema(unsigned)
            if type(m) is not dict or tuple(m) != _WIRE_ORDER:
                raise DecodeError("not a canonical record header")
            _check_header(m)
            body = schema.parse_wire_body(m["type"], m["body"])
        except Error:  # the plain path names the error exactly (and may raise another)
            m, body = _parse_plain(unsigned, sig, verify)
        else:
            if verify:
                PublicKey(m["author"]).verify(SIGNING_DOMAIN + unsigned, sig)
        return cls._build(m, body, sig, wire)

    @classmethod
    def from_bytes_reference(cls, data: bytes, *, verify: bool = True) -> Record:
        """What `from_bytes` does, the plain way: `codec.decode`, header, signature, body.

        The reference `from_bytes` is tested against, and what it falls back on."""
        wire = _as_wire(data)
        unsigned, sig = _split(wire)
        m, body = _parse_plain(unsigned, sig, verify)
        return cls._build(m, body, sig, wire)

    @classmethod
    def _build(cls, m: dict[str, Any], body: Any, sig: bytes, wire: bytes) -> Record:
        if cls is not Record:
            return cls(
                version=m["v"], network=m["net"], author=m["author"], seq=m["seq"],
                prev=m["prev"], ts=m["ts"], type=m["type"], body=body, signature=sig,
                wire=wire, id=record_id(wire),
            )
        # Fill the slots directly: the same object the dataclass __init__ makes,
        # for less work (decoding is hot).
        rec = _new(Record)
        _set_version(rec, m["v"])
        _set_network(rec, m["net"])
        _set_author(rec, m["author"])
        _set_seq(rec, m["seq"])
        _set_prev(rec, m["prev"])
        _set_ts(rec, m["ts"])
        _set_type(rec, m["type"])
        _set_body(rec, body)
        _set_signature(rec, sig)
        _set_wire(rec, wire)
        _set_id(rec, record_id(wire))
        return rec

    # -- use -----------------------------------------------------------------

    def to_bytes(self) -> bytes:
        return self.wire

    def unsigned_bytes(self) -> bytes:
        return _split(self.wire)[0]

    def verify_signature(self) -> None:
        """Raise `VerificationError` unless the author's signature holds."""
        PublicKey(self.author).verify(SIGNING_DOMAIN + self.unsigned_bytes(), self.signature)

    @property
    def author_key(self) -> PublicKey:
        return PublicKey(self.author)

    def __repr__(self) -> str:
        return (
            f"Record({self.type} {self.author.hex()[:8]}#{self.seq} id={self.id.hex()[:12]})"
        )


_new: Final = object.__new__
# The slot setters of Record, which bypass the frozen __setattr__ (as the dataclass
# __init__ does); `from_bytes` must set every one of them.
(
    _set_version, _set_network, _set_author, _set_seq, _set_prev, _set_ts, _set_type,
    _set_body, _set_signature, _set_wire, _set_id,
) = (Record.__dict__[f.name].__set__ for f in dataclasses.fields(Record))


def _split(wire: bytes) -> tuple[bytes, bytes]:
    """The unsigned bytes and the signature of a record's canonical wire form.

    The canonical form of `[unsigned, signature]` is fixed: 0x92, `unsigned` as
    the shortest bin (bin8 below 256 bytes, else bin16), then bin8 of 64 bytes.
    Recognising it directly is cheaper than decoding and re-encoding; anything
    else goes through `codec.decode` and the checks below for the exact error.
    """
    n = len(wire)
    if n > 70 and wire[0] == 0x92:
        if wire[1] == 0xC4:
            start, size = 3, wire[2]
        elif wire[1] == 0xC5:
            start, size = 4, (wire[2] << 8) | wire[3]
            if size < 256:
                start = 0  # bin16 for a short bin: not canonical
        else:
            start = size = 0
        end = start + size
        if (
            start
            and size <= codec.MAX_BIN
            and end + 2 + SIGNATURE_SIZE == n
            and wire[end] == 0xC4
            and wire[end + 1] == SIGNATURE_SIZE
        ):
            return wire[start:end], wire[end + 2 :]
    outer = codec.decode(wire)
    if type(outer) is not list or len(outer) != 2:
        raise DecodeError("a record is a 2-array [unsigned, signature]")
    unsigned, sig = outer
    if type(unsigned) is not bytes or type(sig) is not bytes:
        raise DecodeError("a record is a 2-array of bin")
    if len(sig) != SIGNATURE_SIZE:
        raise ValidationError("signature", "length", f"a signature is {SIGNATURE_SIZE} bytes")
    return unsigned, sig


def _as_wire(data: Any) -> bytes:
    """`data` as bytes, if it is bytes of a size a record may have."""
    if type(data) is bytes:
        wire: bytes = data
    elif isinstance(data, bytearray | memoryview):
        wire = bytes(data)
    else:
        raise DecodeError(f"a record is bytes, not {type(data).__name__}")
    if len(wire) > MAX_RECORD:
        raise DecodeError(f"record is {len(wire)} bytes, over the {MAX_RECORD}-byte limit")
    return wire


def _parse_plain(unsigned: bytes, sig: bytes, verify: bool) -> tuple[dict[str, Any], Any]:
    """The header map and typed body of a record's unsigned part, checked step by step."""
    m = codec.decode(unsigned)
    if type(m) is not dict:
        raise DecodeError("the unsigned part of a record is a map")
    _check_header(m)
    if verify:
        PublicKey(m["author"]).verify(SIGNING_DOMAIN + unsigned, sig)
    return m, schema.parse_body(m["type"], m["body"])


def _check_header(m: dict[str, Any]) -> None:
    if m.keys() != _KEYS:
        keys = set(m)
        missing = sorted(_KEYS - keys)
        extra = sorted(keys - _KEYS)
        if missing:
            raise ValidationError(missing[0], "required", "missing field")
        raise ValidationError(extra[0], "unknown", "unknown field")
    if m["v"] != VERSION or type(m["v"]) is not int:
        raise ValidationError("v", "version", f"unsupported record version {m['v']!r}")
    _bin(m, "net", ID_SIZE)
    _bin(m, "author", PUBLIC_KEY_SIZE)
    seq = m["seq"]
    if type(seq) is not int or not 1 <= seq < 2**63:
        raise ValidationError("seq", "range", "seq is an integer from 1")
    prev = m["prev"]
    if seq == 1:
        if prev is not None:
            raise ValidationError("prev", "first", "the first record of a feed has no prev")
    else:
        _bin(m, "prev", ID_SIZE)
    ts = m["ts"]
    if type(ts) is not int or not 0 <= ts < MAX_TIMESTAMP:
        raise ValidationError("ts", "range", "ts is milliseconds since the epoch")
    if type(m["type"]) is not str:
        raise ValidationError("type", "type", "type is a string")
    if type(m["body"]) is not dict:
        raise ValidationError("body", "type", "body is a map")


def _bin(m: dict[str, Any], name: str, size: int) -> None:
    v = m[name]
    if type(v) is not bytes or len(v) != size:
        raise ValidationError(name, "length", f"{name} is {size} bytes")


__all__ = ["Record", "record_id", "VerificationError", "SIGNING_DOMAIN", "VERSION"]
