"""Build realistic signed record sets: parties, credentials, goods and their journeys.

Used by the demo, the benchmarks and the tests. Pure: keys and times are
passed in (a `World` is seeded, so the same seed gives the same records).

    w = World.create(seed=1, t0=T0)
    brand = w.party("brand", "Acme Audio BV", ["NL"], trademarks=[...])
    w.mint(brand, gtin, lot, serials)
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from crypto import merkle
from crypto.keys import SigningKey
from protocol.bodies import MANIFEST_CHUNK, token_id
from protocol.envelope import Record
from protocol.genesis import Genesis, Params

DAY = 86_400_000
YEAR = 365 * DAY


@dataclass
class Party:
    """One participant: its key, its role and its feed so far."""

    key: SigningKey
    role: str
    org: str
    seq: int = 0
    prev: bytes | None = None
    credential: Record | None = None

    @property
    def pub(self) -> bytes:
        return self.key.public.raw


@dataclass
class World:
    genesis: Genesis
    authority: Party
    seed: int
    now: int
    records: list[Record] = field(default_factory=list)
    _n: int = 0

    @classmethod
    def create(cls, *, seed: int = 1, t0: int = 1_750_000_000_000, params: Params | None = None,
               name: str = "sealchain-demo") -> World:
        key = SigningKey(hashlib.sha256(f"authority/{seed}".encode()).digest())
        genesis = Genesis.create(key, name=name, ts=t0, params=params)
        return cls(genesis=genesis, authority=Party(key, "authority", "Network authority"),
                   seed=seed, now=t0)

    @property
    def network(self) -> bytes:
        return self.genesis.network_id

    def tick(self, ms: int = 1000) -> int:
        self.now += ms
        return self.now

    def key(self, label: str) -> SigningKey:
        self._n += 1
        return SigningKey(hashlib.sha256(f"{self.seed}/{label}/{self._n}".encode()).digest())

    def sign(self, party: Party, type_name: str, body: Any, *, ts: int | None = None) -> Record:
        """Append one record to `party`'s feed."""
        r = Record.sign(party.key, network=self.network, seq=party.seq + 1, prev=party.prev,
                        ts=self.now if ts is None else ts, type=type_name, body=body)
        party.seq, party.prev = r.seq, r.id
        self.records.append(r)
        return r

    # -- parties ---------------------------------------------------------------------------

    def party(self, role: str, org: str, jurisdictions: Sequence[str] = ("NL",), *,
              trademarks: Sequence[dict[str, Any]] | None = None, observer: bool = False,
              key: SigningKey | None = None) -> Party:
        p = Party(key or self.key(org), role, org)
        body: dict[str, Any] = {
            "subject": p.pub, "org": org, "roles": [role],
            "jurisdictions": sorted(jurisdictions),
            "valid_from": self.now - DAY, "valid_until": self.now + 5 * YEAR,
        }
        if trademarks:
            body["trademarks"] = list(trademarks)
        if observer:
            body["observer"] = True
        p.credential = self.sign(self.authority, "credential.issue", body)
        return p

    def revoke(self, p: Party, reason: str = "credential withdrawn") -> Record:
        assert p.credential is not None
        return self.sign(self.authority, "credential.revoke",
                         {"credential": p.credential.id, "reason": reason, "effective": self.now})

    # -- goods -----------------------------------------------------------------------------

    def mint(self, brand: Party, gtin: str, lot: str, serials: Sequence[str], *, mark: str,
             markets: Sequence[str], facility: str, expiry: int | None = None) -> list[Record]:
        out = []
        serials = sorted(serials)
        for i in range(0, len(serials), 1000):
            body: dict[str, Any] = {"gtin": gtin, "lot": lot, "serials": serials[i:i + 1000],
                                    "mark": mark, "markets": sorted(markets), "facility": facility}
            if expiry is not None:
                body["expiry"] = expiry
            out.append(self.sign(brand, "product.mint", body))
        return out

    def create_container(self, p: Party, number: str, *, tare_g: int = 2_200_000,
                         max_gross_g: int = 30_480_000) -> Record:
        return self.sign(p, "container.create",
                         {"container": number, "tare_g": tare_g, "max_gross_g": max_gross_g})

    def pack(self, p: Party, number: str, tokens: Sequence[bytes], *, weight_g: int,
             shipment: str | None = None) -> list[Record]:
        items = sorted(set(tokens))
        root = merkle.root(items)
        chunks = -(-len(items) // MANIFEST_CHUNK)
        out = []
        for c in range(chunks):
            body: dict[str, Any] = {
                "container": number, "root": root, "count": len(items), "chunk": c,
                "chunks": chunks, "items": items[c * MANIFEST_CHUNK:(c + 1) * MANIFEST_CHUNK],
                "weight_g": weight_g,
            }
            if shipment:
                body["shipment"] = shipment
            out.append(self.sign(p, "container.pack", body))
        return out

    def seal(self, p: Party, number: str, seal: str, seal_class: str = "H") -> Record:
        return self.sign(p, "container.seal",
                         {"container": number, "seal": seal, "seal_class": seal_class})

    def handover(self, giver: Party, taker: Party, kind: str, ident: str, head: bytes
                 ) -> tuple[Record, Record]:
        obj = {"kind": kind, "id": ident}
        offer = self.sign(giver, "handover.offer", {"object": obj, "to": taker.pub, "head": head})
        self.tick()
        accept = self.sign(taker, "handover.accept", {"offer": offer.id, "object": obj, "head": head})
        return offer, accept

    def scan(self, p: Party, kind: str, ident: str, *, country: str, locode: str | None = None,
             event: str = "observe", seal: str | None = None) -> Record:
        place: dict[str, Any] = {"country": country}
        if locode:
            place["locode"] = locode
        body: dict[str, Any] = {"object": {"kind": kind, "id": ident}, "place": place,
                                "event": event, "at": self.now}
        if seal:
            body["seal"] = seal
        return self.sign(p, "scan", body)

    def sensor(self, p: Party, number: str, kind: str, **values: Any) -> Record:
        return self.sign(p, "sensor", {"container": number, "kind": kind, "at": self.now, **values})


def tokens_of(gtin: str, serials: Sequence[str]) -> list[bytes]:
    return [token_id(gtin, s) for s in serials]
