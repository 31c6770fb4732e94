"""The network genesis: the document that defines one sealchain network.

Signed by the network authority (the IP office or customs union operating the
network), it names the authority keys and the network parameters. The network
id is the domain-separated hash of the signed document; every record carries
it, and gossip topic names derive from it. Anyone holding the genesis can check
every credential offline.

Wire form: `[unsigned, signature]` like a record, where `unsigned` is the
canonical map `{"v", "name", "authorities", "params", "ts"}` and the signature
is by `authorities[0]` over `GENESIS_DOMAIN + unsigned`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Final

from crypto import hashing
from crypto.errors import VerificationError
from crypto.keys import PublicKey, SigningKey
from protocol import codec
from protocol.errors import DecodeError, ValidationError
from protocol.schema import Struct, f, integer, key32, list_of, string, struct

VERSION: Final = 1
GENESIS_DOMAIN: Final = b"sealchain/genesis/v1\x00"
DAY_MS: Final = 86_400_000


@dataclass(frozen=True, slots=True, kw_only=True)
class Params(Struct):
    """Network-wide parameters every node applies identically."""

    max_clock_skew_ms: int = f(integer(0, DAY_MS), default=5 * 60_000)
    silence_limit_ms: int = f(integer(60_000, 90 * DAY_MS), default=2 * DAY_MS)
    weight_tolerance_permille: int = f(integer(0, 1000), default=50)
    max_temperature_mc: int = f(integer(-100_000, 150_000), default=30_000)
    min_temperature_mc: int = f(integer(-100_000, 150_000), default=-30_000)

    def validate(self, path: str) -> None:
        # An empty band would make every temperature reading an excursion.
        if not self.min_temperature_mc < self.max_temperature_mc:
            raise ValidationError(
                f"{path}.max_temperature_mc", "order",
                "max_temperature_mc must be above min_temperature_mc",
            )


@dataclass(frozen=True, slots=True, kw_only=True)
class _Unsigned(Struct):
    v: int = f(integer(VERSION, VERSION))
    name: str = f(string(100, r"[A-Za-z0-9][A-Za-z0-9 ._-]*"))
    authorities: tuple[bytes, ...] = f(list_of(key32, min=1, max=16, unique=True))
    params: Params = f(struct(Params))
    ts: int = f(integer(0, 2**53 - 1))


@dataclass(frozen=True, slots=True, kw_only=True)
class Genesis:
    name: str
    authorities: tuple[bytes, ...]
    params: Params
    ts: int
    signature: bytes
    wire: bytes = field(repr=False, compare=False)
    network_id: bytes = field(compare=False)

    @classmethod
    def create(
        cls, key: SigningKey, *, name: str, ts: int, params: Params | None = None,
        extra_authorities: tuple[bytes, ...] = (),
    ) -> Genesis:
        u = _Unsigned(
            v=VERSION,
            name=name,
            authorities=(key.public.raw, *extra_authorities),
            params=params or Params(),
            ts=ts,
        )
        value = u.to_value()
        _Unsigned.from_value(value, "genesis")  # validate exactly what is signed
        unsigned = codec.encode(value)
        sig = key.sign(GENESIS_DOMAIN + unsigned)
        return cls._build(u, sig, codec.encode([unsigned, sig]))

    @classmethod
    def from_bytes(cls, data: bytes) -> Genesis:
        outer = codec.decode(data)
        if type(outer) is not list or len(outer) != 2 or not all(type(x) is bytes for x in outer):
            raise DecodeError("a genesis is a 2-array [unsigned, signature] of bin")
        unsigned, sig = outer
        u = _Unsigned.from_value(codec.decode(unsigned), "genesis")
        try:
            PublicKey(u.authorities[0]).verify(GENESIS_DOMAIN + unsigned, sig)
        except VerificationError as exc:
            raise VerificationError("genesis signature does not verify") from exc
        return cls._build(u, sig, bytes(data))

    @classmethod
    def _build(cls, u: _Unsigned, sig: bytes, wire: bytes) -> Genesis:
        return cls(
            name=u.name,
            authorities=u.authorities,
            params=u.params,
            ts=u.ts,
            signature=sig,
            wire=wire,
            network_id=hashing.h(hashing.NETWORK_ID, wire),
        )

    def to_bytes(self) -> bytes:
        return self.wire

    def is_authority(self, key: bytes) -> bool:
        return key in self.authorities

    def topic(self, name: str) -> str:
        """The gossip topic `name` of this network."""
        return f"/sealchain/{self.network_id.hex()}/{name}/1"

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "network_id": self.network_id.hex(),
            "authorities": [a.hex() for a in self.authorities],
            "params": dataclasses.asdict(self.params),
            "ts": self.ts,
        }


__all__ = ["Genesis", "Params", "ValidationError"]
