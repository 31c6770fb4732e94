"""Sync wire messages, their framing, and the actions the machine returns to its
shell (the machine itself is `protocol.sync`).

A frame is a 4-byte big-endian length (1 to `MAX_FRAME`) followed by one
canonical MessagePack map whose `"k"` names the message kind. Frames are larger
than `protocol.codec` documents may be (a batch of records runs to 512 KiB), so
this module decodes under its own limits, with the same rule: re-encode and
compare, so a message has exactly one encoding.

Messages are frozen, keyword-only dataclasses that validate on construction
(`LocalProtocolError`); `to_bytes()` / `Message.from_bytes()` is the one way in
and out of bytes, and anything a peer sends that does not decode or validate is
a `DecodeError` (a `RemoteProtocolError` with a penalty).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Final

import msgpack

from protocol.envelope import MAX_RECORD, Record
from protocol.errors import DecodeError, LocalProtocolError
from protocol.feed import Head

PROTOCOL_VERSION: Final = 1
MAX_FRAME: Final = 1024 * 1024
HEADS_PER_MESSAGE: Final = 4096
MAX_BATCH_RECORDS: Final = 4096
MAX_BATCH_BYTES: Final = 512 * 1024
MAX_REASON: Final = 1024
PENALTY_MALFORMED: Final = 50
_U63: Final = 2**63 - 1
_U32: Final = 2**32 - 1


def _fail(message: str) -> LocalProtocolError:
    return LocalProtocolError(message)


def _b32(value: object, name: str) -> bytes:
    if type(value) is not bytes or len(value) != 32:
        raise _fail(f"{name} is 32 bytes")
    return value


def _int(value: object, name: str, lo: int, hi: int) -> int:
    if type(value) is not int or not lo <= value <= hi:
        raise _fail(f"{name} is an integer from {lo} to {hi}")
    return value


def _bool(value: object, name: str) -> bool:
    if type(value) is not bool:
        raise _fail(f"{name} is a boolean")
    return value


class Message:
    """Base of sync messages: `kind` tags the wire map."""

    __slots__ = ()
    kind: ClassVar[str]

    def _fields(self) -> dict[str, Any]:
        raise NotImplementedError

    @classmethod
    def _build(cls, m: dict[str, Any]) -> Message:
        raise NotImplementedError

    def to_bytes(self) -> bytes:
        m = {"k": self.kind, **self._fields()}
        data: bytes = msgpack.packb(dict(sorted(m.items())), use_bin_type=True)
        return data

    @staticmethod
    def from_bytes(data: bytes, kinds: Mapping[str, type[Message]] | None = None) -> Message:
        """Decode one message payload (no length prefix). Raises `DecodeError`.

        `kinds` maps the `"k"` tag to message classes (default: the sync messages);
        another protocol framed the same way (`protocol.push`) passes its own.
        """
        m = _decode_map(data)
        cls = (_KINDS if kinds is None else kinds).get(m.get("k"))  # type: ignore[arg-type]
        if cls is None:
            raise DecodeError(f"unknown message kind {m.get('k')!r}", penalty=PENALTY_MALFORMED)
        del m["k"]
        if set(m) != cls._keys:
            raise DecodeError(f"{cls.kind}: wrong fields {sorted(m)}", penalty=PENALTY_MALFORMED)
        try:
            return cls._build(m)
        except LocalProtocolError as exc:
            raise DecodeError(f"{cls.kind}: {exc}", penalty=PENALTY_MALFORMED) from exc

    _keys: ClassVar[frozenset[str]]


@dataclass(frozen=True, slots=True, kw_only=True)
class Hello(Message):
    kind: ClassVar[str] = "hello"
    _keys: ClassVar[frozenset[str]] = frozenset({"net", "v"})
    network: bytes
    version: int = PROTOCOL_VERSION

    def __post_init__(self) -> None:
        _b32(self.network, "network")
        _int(self.version, "version", 0, _U32)

    def _fields(self) -> dict[str, Any]:
        return {"net": self.network, "v": self.version}

    @classmethod
    def _build(cls, m: dict[str, Any]) -> Message:
        return cls(network=m["net"], version=m["v"])


HeadEntry = tuple[bytes, int, bytes]


@dataclass(frozen=True, slots=True, kw_only=True)
class Heads(Message):
    """One chunk of a round of heads, sorted by author across the round."""

    kind: ClassVar[str] = "heads"
    _keys: ClassVar[frozenset[str]] = frozenset({"heads", "done"})
    heads: Sequence[HeadEntry]  # stored as a tuple
    done: bool

    def __post_init__(self) -> None:
        object.__setattr__(self, "heads", tuple(tuple(e) for e in self.heads))
        if len(self.heads) > HEADS_PER_MESSAGE:
            raise _fail(f"at most {HEADS_PER_MESSAGE} heads per message")
        for e in self.heads:
            if len(e) != 3:
                raise _fail("a head is [author, seq, id]")
            _b32(e[0], "author")
            _int(e[1], "seq", 1, _U63)
            _b32(e[2], "id")
        _bool(self.done, "done")

    def _fields(self) -> dict[str, Any]:
        return {"heads": [list(e) for e in self.heads], "done": self.done}

    @classmethod
    def _build(cls, m: dict[str, Any]) -> Message:
        if type(m["heads"]) is not list or not all(type(e) is list for e in m["heads"]):
            raise _fail("heads is a list of [author, seq, id]")
        return cls(heads=tuple(m["heads"]), done=m["done"])


@dataclass(frozen=True, slots=True, kw_only=True)
class Want(Message):
    """Ask for records `from_seq..to_seq` of `author`; `anchor` is the requester's
    record just before the range (None for a range from seq 1, or a fork record)."""

    kind: ClassVar[str] = "want"
    _keys: ClassVar[frozenset[str]] = frozenset({"author", "from", "to", "anchor"})
    author: bytes
    from_seq: int
    to_seq: int
    anchor: Head | None = None

    def __post_init__(self) -> None:
        _b32(self.author, "author")
        _int(self.from_seq, "from_seq", 1, _U63)
        _int(self.to_seq, "to_seq", self.from_seq, _U63)
        if self.anchor is not None:
            if type(self.anchor) is not Head:
                raise _fail("anchor is a Head")
            if self.from_seq == 1:
                raise _fail("a range from seq 1 has no anchor")
            _int(self.anchor.seq, "anchor.seq", self.from_seq - 1, self.from_seq - 1)
            _b32(self.anchor.id, "anchor.id")

    def _fields(self) -> dict[str, Any]:
        a = None if self.anchor is None else [self.anchor.seq, self.anchor.id]
        return {"author": self.author, "from": self.from_seq, "to": self.to_seq, "anchor": a}

    @classmethod
    def _build(cls, m: dict[str, Any]) -> Message:
        a = m["anchor"]
        if a is not None and (type(a) is not list or len(a) != 2):
            raise _fail("anchor is nil or [seq, id]")
        anchor = None if a is None else Head(a[0], a[1])
        return cls(author=m["author"], from_seq=m["from"], to_seq=m["to"], anchor=anchor)


@dataclass(frozen=True, slots=True, kw_only=True)
class Records(Message):
    """A batch of one requested range, in seq order; `last` ends the range."""

    kind: ClassVar[str] = "records"
    _keys: ClassVar[frozenset[str]] = frozenset({"author", "records", "last"})
    author: bytes
    records: Sequence[bytes]  # stored as a tuple
    last: bool

    def __post_init__(self) -> None:
        object.__setattr__(self, "records", tuple(self.records))
        _b32(self.author, "author")
        if len(self.records) > MAX_BATCH_RECORDS:
            raise _fail(f"at most {MAX_BATCH_RECORDS} records per message")
        for w in self.records:
            if type(w) is not bytes or not 0 < len(w) <= MAX_RECORD:
                raise _fail(f"a record is 1 to {MAX_RECORD} bytes")
        _bool(self.last, "last")

    @property
    def size(self) -> int:
        """What the batch costs in flow-control credit: its record bytes."""
        return sum(len(w) for w in self.records)

    def _fields(self) -> dict[str, Any]:
        return {"author": self.author, "records": list(self.records), "last": self.last}

    @classmethod
    def _build(cls, m: dict[str, Any]) -> Message:
        if type(m["records"]) is not list:
            raise _fail("records is a list")
        return cls(author=m["author"], records=tuple(m["records"]), last=m["last"])


@dataclass(frozen=True, slots=True, kw_only=True)
class Credit(Message):
    """Allow the peer to send `bytes` more record bytes."""

    kind: ClassVar[str] = "credit"
    _keys: ClassVar[frozenset[str]] = frozenset({"bytes"})
    bytes: int

    def __post_init__(self) -> None:
        _int(self.bytes, "bytes", 1, _U32)

    def _fields(self) -> dict[str, Any]:
        return {"bytes": self.bytes}

    @classmethod
    def _build(cls, m: dict[str, Any]) -> Message:
        return cls(bytes=m["bytes"])


@dataclass(frozen=True, slots=True, kw_only=True)
class Synced(Message):
    """The sender has everything it wanted from the peer's first `round` rounds of heads."""

    kind: ClassVar[str] = "synced"
    _keys: ClassVar[frozenset[str]] = frozenset({"round"})
    round: int

    def __post_init__(self) -> None:
        _int(self.round, "round", 1, _U63)

    def _fields(self) -> dict[str, Any]:
        return {"round": self.round}

    @classmethod
    def _build(cls, m: dict[str, Any]) -> Message:
        return cls(round=m["round"])


@dataclass(frozen=True, slots=True, kw_only=True)
class Bye(Message):
    kind: ClassVar[str] = "bye"
    _keys: ClassVar[frozenset[str]] = frozenset({"reason"})
    reason: str

    def __post_init__(self) -> None:
        if type(self.reason) is not str or len(self.reason) > MAX_REASON:
            raise _fail(f"reason is a string of at most {MAX_REASON} characters")

    def _fields(self) -> dict[str, Any]:
        return {"reason": self.reason}

    @classmethod
    def _build(cls, m: dict[str, Any]) -> Message:
        return cls(reason=m["reason"])


_KINDS: Final[dict[str, type[Message]]] = {
    c.kind: c for c in (Hello, Heads, Want, Records, Credit, Synced, Bye)
}


def _no_ext(code: int, data: bytes) -> Any:
    raise DecodeError(f"extension type {code} is not allowed", penalty=PENALTY_MALFORMED)


def _decode_map(data: bytes) -> dict[str, Any]:
    try:
        value = msgpack.unpackb(
            data,
            raw=False,
            use_list=True,
            strict_map_key=True,
            ext_hook=_no_ext,
            max_str_len=MAX_REASON * 4,
            max_bin_len=MAX_RECORD,
            max_array_len=max(HEADS_PER_MESSAGE, MAX_BATCH_RECORDS),
            max_map_len=8,
            max_ext_len=0,
        )
    except DecodeError:
        raise
    except Exception as exc:  # msgpack raises many unrelated types: map them all here
        raise DecodeError(f"not valid MessagePack: {exc}", penalty=PENALTY_MALFORMED) from exc
    if type(value) is not dict:
        raise DecodeError("a message is a map", penalty=PENALTY_MALFORMED)
    if list(value) != sorted(value):
        raise DecodeError("not canonical: map keys out of order", penalty=PENALTY_MALFORMED)
    try:
        again = msgpack.packb(value, use_bin_type=True)
    except Exception as exc:
        raise DecodeError(f"not canonical: {exc}", penalty=PENALTY_MALFORMED) from exc
    if again != data:
        raise DecodeError("not canonical: re-encoding differs", penalty=PENALTY_MALFORMED)
    return value


def encode_frame(msg: Message, *, max_frame: int = MAX_FRAME) -> bytes:
    """`msg` with its length prefix. Raises `LocalProtocolError` if over `max_frame`."""
    payload = msg.to_bytes()
    if len(payload) > max_frame:
        raise LocalProtocolError(f"{msg.kind} is {len(payload)} bytes, over {max_frame}")
    return len(payload).to_bytes(4, "big") + payload


class FrameDecoder:
    """Incremental frame parser; holds at most one partial frame (4 + max_frame bytes)."""

    __slots__ = ("_buf", "_need", "_max", "_kinds")

    def __init__(self, *, max_frame: int = MAX_FRAME,
                 kinds: Mapping[str, type[Message]] | None = None) -> None:
        self._buf = bytearray()
        self._need = 4  # bytes the frame in progress has in all (header, then header + payload)
        self._max = max_frame
        self._kinds = kinds  # message classes by tag (None: the sync messages)

    @property
    def pending(self) -> bool:
        """Whether a frame is half received."""
        return bool(self._buf)

    def feed(self, data: bytes) -> list[Message]:
        """The messages completed by `data`. Raises `DecodeError` on a bad frame."""
        out: list[Message] = []
        view = memoryview(data)
        while view:
            take = min(self._need - len(self._buf), len(view))
            self._buf += view[:take]
            view = view[take:]
            if len(self._buf) < self._need:
                break
            if self._need == 4:
                length = int.from_bytes(self._buf, "big")
                if not 0 < length <= self._max:
                    raise DecodeError(
                        f"frame length {length} is outside 1..{self._max}", penalty=PENALTY_MALFORMED
                    )
                self._need = 4 + length
                continue
            out.append(Message.from_bytes(bytes(self._buf[4:]), self._kinds))
            self._buf.clear()
            self._need = 4
        return out

    def eof(self) -> None:
        """The stream ended: raises `DecodeError` if it cut a frame short."""
        if self._buf:
            raise DecodeError("stream ended inside a frame", penalty=PENALTY_MALFORMED)


# -- actions: what the shell carries out ------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Send:
    data: bytes  # write to the stream


@dataclass(frozen=True, slots=True, kw_only=True)
class Fetch:
    """Read records `from_seq..to_seq` of `author` and `supply()` them. `anchor` is the
    peer's record before the range: another id at that seq in our store is a fork."""

    author: bytes
    from_seq: int
    to_seq: int
    anchor: Head | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Deliver:
    records: list[Record]  # authenticated, one feed, in seq order: ingest them


@dataclass(frozen=True, slots=True, kw_only=True)
class Fork:
    """The peer's record at (`author`, `seq`) has id `their_id`, not the one we hold."""

    author: bytes
    seq: int
    their_id: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class Penalise:
    points: int  # suspect but not fatal
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Disconnect:
    reason: str  # close the stream: the session is over


@dataclass(frozen=True, slots=True, kw_only=True)
class Idle:
    """Both sides have what they asked for: close, or keep the stream to `resync()`."""


Action = Send | Fetch | Deliver | Fork | Penalise | Disconnect | Idle

__all__ = [
    "PROTOCOL_VERSION",
    "MAX_FRAME",
    "HEADS_PER_MESSAGE",
    "MAX_BATCH_RECORDS",
    "MAX_BATCH_BYTES",
    "Message",
    "Hello",
    "Heads",
    "HeadEntry",
    "Want",
    "Records",
    "Credit",
    "Synced",
    "Bye",
    "encode_frame",
    "FrameDecoder",
    "Action",
    "Send",
    "Fetch",
    "Deliver",
    "Fork",
    "Penalise",
    "Disconnect",
    "Idle",
]
