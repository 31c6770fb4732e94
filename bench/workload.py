"""Realistic signed record streams for the benchmarks.

A day in the life of a few carriers, e-seals and brands: container scans at
terminals, e-seal sensor readings (weight, temperature, door, position),
hand-overs offered and accepted, and product mints of 100 serials each. Bodies
carry valid identifiers (ISO 6346 check digits, GS1 check digits, UN/LOCODEs)
so every record passes the schemas, as real traffic does.

Two steps, so a benchmark can time signing alone:

    specs = workload.specs(20_000, authors=8, seed=1)   # unsigned, deterministic
    records = workload.sign(specs)                      # Record.sign, seq/prev chained

`stream(n)` does both. Each author's records form one feed (seq 1, 2, ...,
each naming the previous id); authors interleave as they would on the wire.
Deterministic for a given seed (keys, bodies, and Ed25519 signatures).

Pure: imports only `crypto` and `protocol`, never `tests`.
"""

from __future__ import annotations

import random
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from crypto import hashing  # noqa: E402
from crypto.keys import SigningKey  # noqa: E402
from protocol.bodies import token_id  # noqa: E402
from protocol.envelope import Record  # noqa: E402
from protocol.identifiers import gs1_check_digit, iso6346_check_digit  # noqa: E402

T0: Final = 1_750_000_000_000  # 2025-06-15, in ms
NETWORK: Final = hashing.h(hashing.NETWORK_ID, b"sealchain bench network")
MINT_SERIALS: Final = 100

# Record type -> share of the stream.
MIX: Final[dict[str, float]] = {
    "scan": 0.40,
    "sensor": 0.35,
    "handover.offer": 0.075,
    "handover.accept": 0.075,
    "product.mint": 0.10,
}

_PLACES: Final = (
    ("CN", "CNSHA", "Yangshan Deep-Water Port", 30_620_000, 122_070_000),
    ("SG", "SGSIN", "Pasir Panjang Terminal", 1_270_000, 103_780_000),
    ("NL", "NLRTM", "Maasvlakte II", 51_950_000, 4_040_000),
    ("DE", "DEHAM", "Container Terminal Burchardkai", 53_530_000, 9_930_000),
    ("BE", "BEANR", "Deurganck Dock", 51_270_000, 4_260_000),
    ("ES", "ESVLC", "Valencia MSC Terminal", 39_440_000, -330_000),
)
_OWNERS: Final = ("MSCU", "MAEU", "CMAU", "HLXU", "TGHU", "CSQU")
_EVENTS: Final = ("observe", "gate_in", "gate_out", "load", "discharge", "depart", "arrive")
_MARKETS: Final = ("BE", "DE", "ES", "FR", "IT", "NL")
_BRAND_PREFIX: Final = "950600"  # a GS1 company prefix (GTIN-13 form)


@dataclass(frozen=True, slots=True)
class Spec:
    """One record to sign: who, what, when."""

    author: int  # index into the key list
    type: str
    body: dict[str, Any]
    ts: int


def keys(n: int, *, seed: int = 1) -> list[SigningKey]:
    """`n` deterministic Ed25519 keys."""
    return [
        SigningKey(hashing.h(hashing.TOKEN_ID, f"bench key {seed}/{i}".encode()))
        for i in range(n)
    ]


# -- identifiers ---------------------------------------------------------------------------


def container(i: int) -> str:
    s = f"{_OWNERS[i % len(_OWNERS)]}{i % 1_000_000:06d}"
    return s + str(iso6346_check_digit(s))


def gtin(item: int) -> str:
    """A GTIN-14 of the bench brand: 0 + company prefix + item reference + check digit."""
    s = f"0{_BRAND_PREFIX}{item % 1_000_000:06d}"
    return s + str(gs1_check_digit(s))


def gln(i: int) -> str:
    s = f"{_BRAND_PREFIX}{i % 1_000_000:06d}"
    return s + str(gs1_check_digit(s))


def seal(i: int) -> str:
    return f"ML-{4_500_000 + i % 100_000:07d}"


# -- bodies ---------------------------------------------------------------------------------


def _place(rng: random.Random) -> dict[str, Any]:
    country, locode, name, lat, lon = rng.choice(_PLACES)
    return {
        "country": country,
        "locode": locode,
        "gln": gln(rng.randrange(50)),
        "lat_udeg": lat + rng.randrange(-5_000, 5_000),
        "lon_udeg": lon + rng.randrange(-5_000, 5_000),
        "name": name,
    }


def scan(rng: random.Random, ts: int) -> dict[str, Any]:
    c = rng.randrange(500)
    return {
        "object": {"kind": "container", "id": container(c)},
        "place": _place(rng),
        "event": rng.choice(_EVENTS),
        "seal": seal(c),
        "at": ts - rng.randrange(60_000),
    }


def sensor(rng: random.Random, ts: int) -> dict[str, Any]:
    body: dict[str, Any] = {"container": container(rng.randrange(500)), "at": ts - 1_000}
    kind = rng.choices(("temperature", "weight", "position", "door"), (5, 2, 2, 1))[0]
    body["kind"] = kind
    if kind == "temperature":
        body["value"] = rng.randrange(-20_000, 8_000)
    elif kind == "weight":
        body["value"] = rng.randrange(2_000_000, 28_000_000)
    elif kind == "position":
        _, _, _, lat, lon = rng.choice(_PLACES)
        body["lat_udeg"], body["lon_udeg"] = lat + rng.randrange(-99_999, 99_999), lon
    else:
        body["open"] = rng.random() < 0.1
    return body


def _object(rng: random.Random) -> dict[str, Any]:
    if rng.random() < 0.7:
        return {"kind": "container", "id": container(rng.randrange(500))}
    serial = f"SN{rng.randrange(10**8):08d}"
    return {"kind": "token", "id": token_id(gtin(rng.randrange(20)), serial).hex()}


def handover_offer(rng: random.Random, to: bytes, head: bytes) -> dict[str, Any]:
    return {"object": _object(rng), "to": to, "head": head}


def handover_accept(rng: random.Random, offer: bytes, head: bytes) -> dict[str, Any]:
    return {"offer": offer, "object": _object(rng), "head": head}


def mint(rng: random.Random, ts: int, batch: int) -> dict[str, Any]:
    first = batch * MINT_SERIALS
    return {
        "gtin": gtin(rng.randrange(20)),
        "lot": f"L{batch // 100:04d}-{batch % 100:02d}",
        "serials": [f"SN{n:08d}" for n in range(first, first + MINT_SERIALS)],
        "mark": "ACME",
        "markets": sorted(rng.sample(_MARKETS, 3)),
        "facility": gln(rng.randrange(50)),
        "expiry": ts + 2 * 365 * 86_400_000,
        "attrs": {"colour": rng.choice(("black", "white", "blue")), "storage_gb": 128},
    }


# -- streams ---------------------------------------------------------------------------------


def specs(n: int, *, authors: int = 8, seed: int = 1,
          mix: dict[str, float] | None = None) -> list[Spec]:
    """`n` unsigned records from `authors` interleaved authors, in arrival order."""
    rng = random.Random(seed)
    pubs = [k.public.raw for k in keys(authors, seed=seed)]
    mix = mix or MIX
    types, weights = list(mix), list(mix.values())
    out: list[Spec] = []
    batch = 0
    for i in range(n):
        t = rng.choices(types, weights)[0]
        ts = T0 + i * 1_000
        author = rng.randrange(authors)
        fake_id = hashing.h(hashing.RECORD_ID, f"bench {seed}/{i}".encode())
        if t == "scan":
            body = scan(rng, ts)
        elif t == "sensor":
            body = sensor(rng, ts)
        elif t == "handover.offer":
            body = handover_offer(rng, pubs[(author + 1) % authors], fake_id)
        elif t == "handover.accept":
            body = handover_accept(rng, fake_id, hashing.h(hashing.RECORD_ID, fake_id))
        elif t == "product.mint":
            body = mint(rng, ts, batch)
            batch += 1
        else:
            raise ValueError(f"the bench workload makes no {t} records")
        out.append(Spec(author, t, body, ts))
    return out


def sign(items: Iterable[Spec], signers: Sequence[SigningKey] | None = None, *,
         seed: int = 1, heads: dict[int, Record] | None = None) -> list[Record]:
    """Sign `items` in order, chaining each author's records into one feed.

    `heads` (author index -> newest record) continues feeds signed earlier; it
    is updated in place.
    """
    items = list(items)
    if signers is None:
        signers = keys(max((s.author for s in items), default=0) + 1, seed=seed)
    if heads is None:
        heads = {}
    out: list[Record] = []
    for s in items:
        prev = heads.get(s.author)
        rec = Record.sign(
            signers[s.author],
            network=NETWORK,
            seq=prev.seq + 1 if prev else 1,
            prev=prev.id if prev else None,
            ts=s.ts,
            type=s.type,
            body=s.body,
        )
        heads[s.author] = rec
        out.append(rec)
    return out


def stream(n: int, *, authors: int = 8, seed: int = 1) -> list[Record]:
    """`n` signed records from `authors` authors (see `specs` and `sign`)."""
    return sign(specs(n, authors=authors, seed=seed), keys(authors, seed=seed))


def feeds(records: Iterable[Record]) -> dict[bytes, list[Record]]:
    """The records grouped by author, each feed in seq order."""
    out: dict[bytes, list[Record]] = {}
    for r in records:
        out.setdefault(r.author, []).append(r)
    for feed in out.values():
        feed.sort(key=lambda r: r.seq)
    return out
