"""Signed-record workload for `bench/ingest.py`, streamed to disk.

Builds a realistic network with `node.scenario.World`: brands minting in
batches, manufacturers packing and sealing containers, carriers handing them
over, forwarders and retailers, customs, and device keys (scanners, e-seals)
delegated by the carriers that post most of the traffic: scans and sensor
readings. Many container journeys run at once, so the authors interleave as
they would on the wire.

Run as a program (the benchmark runs it in a child process, so signing a
million records does not count towards the benchmark's own peak RSS)::

    python bench/ingest_workload.py --records N --out DIR

It writes three files into DIR:

- `genesis.bin`: the network genesis;
- `arrival.bin`: the records in the order they were made (credentials first);
- `runs.bin`: the same records grouped by author, each feed in seq order
  (the authority's feed first, then parties, then devices), as sync delivers.

Each record file is a sequence of frames: 4-byte big-endian length, then the
record's wire bytes. Memory stays bounded: records are written as they are
made; only an (offset, length) per record is kept to write `runs.bin`.
"""

from __future__ import annotations

import argparse
import random
import struct
import sys
from array import array
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from crypto import merkle  # noqa: E402
from node.scenario import DAY, Party, World  # noqa: E402
from protocol.bodies import MANIFEST_CHUNK, token_id  # noqa: E402
from protocol.identifiers import gs1_check_digit, iso6346_check_digit  # noqa: E402

_FRAME = struct.Struct(">I")
T0 = 1_750_000_000_000
PORTS = ("CNSHA", "SGSIN", "NLRTM", "DEHAM", "BEANR", "USLAX", "KRPUS", "AEJEA", "ESVLC", "GBFXT")
ORIGINS = ("CNSHA", "SGSIN", "KRPUS")
DESTINATIONS = ("NLRTM", "DEHAM")  # within every item's authorised markets (DE, FR, NL)
MARKETS = ("BE", "DE", "ES", "FR", "GB", "IT", "NL", "US")


def read_frames(f: BinaryIO) -> Iterator[bytes]:
    """The records of one record file, in order (streamed)."""
    while True:
        head = f.read(4)
        if not head:
            return
        (n,) = _FRAME.unpack(head)
        yield f.read(n)


def container_number(owner: str, serial: int) -> str:
    first10 = f"{owner}U{serial:06d}"
    return first10 + str(iso6346_check_digit(first10))


def gtin14(prefix: str, item: int) -> str:
    body = "0" + prefix + f"{item:0{12 - len(prefix)}d}"
    return body + str(gs1_check_digit(body))


class Network:
    """The parties of the benchmark network and their device keys."""

    def __init__(self, w: World, rng: random.Random) -> None:
        self.w = w
        self.rng = rng
        self.brands: list[tuple[Party, str]] = []
        for i in range(12):
            prefix = f"95{i:04d}0"  # a 7-digit GS1 company prefix per brand
            tm = {"mark": f"BRAND{i}", "classes": [9, 25], "markets": list(MARKETS),
                  "gs1_prefixes": [prefix]}
            self.brands.append((w.party("brand", f"Brand {i} BV", ["NL"], trademarks=[tm]),
                                prefix))
        self.manufacturers = [w.party("manufacturer", f"Factory {i} Ltd", ["CN"])
                              for i in range(10)]
        self.carriers = [w.party("carrier", f"Carrier {i} Lines", ["NL"]) for i in range(14)]
        self.forwarders = [w.party("forwarder", f"Forwarder {i} GmbH", ["DE"]) for i in range(6)]
        self.retailers = [w.party("retailer", f"Retailer {i} SA", ["FR"]) for i in range(8)]
        self.customs = [(w.party("customs", f"Customs {c}", [c]), c) for c in ("NL", "DE")]
        # Each carrier lends scan and sensor rights to its scanners and e-seals.
        self.scanners: dict[int, list[Party]] = {}
        self.eseals: dict[int, list[Party]] = {}
        for ci, c in enumerate(self.carriers):
            self.scanners[ci] = [self._device(c, "scanner", ["scan"], f"scanner {ci}.{j}")
                                 for j in range(2)]
            self.eseals[ci] = [self._device(c, "eseal", ["sensor"], f"eseal {ci}.{j}")
                               for j in range(2)]

    def _device(self, owner: Party, device: str, types: list[str], label: str) -> Party:
        p = Party(self.w.key(label), "device", label)
        self.w.sign(owner, "credential.delegate", {
            "delegate": p.pub, "device": device, "types": types,
            "valid_from": self.w.now - DAY, "valid_until": self.w.now + 5 * 365 * DAY,
        })
        return p

    def parties(self) -> int:
        return (len(self.brands) + len(self.manufacturers) + len(self.carriers)
                + len(self.forwarders) + len(self.retailers) + len(self.customs)
                + sum(len(v) for v in self.scanners.values())
                + sum(len(v) for v in self.eseals.values()))


def journey(net: Network, n: int) -> Iterator[None]:
    """One container's life: mint, pack, seal, ship, carry, clear, deliver (~110 records)."""
    w, rng = net.w, net.rng
    bi = n % len(net.brands)
    brand, prefix = net.brands[bi]
    maker = net.manufacturers[n % len(net.manufacturers)]
    c1i, c2i = rng.sample(range(len(net.carriers)), 2)
    c1, c2 = net.carriers[c1i], net.carriers[c2i]
    forwarder = net.forwarders[n % len(net.forwarders)]
    retailer = net.retailers[n % len(net.retailers)]
    customs, jurisdiction = net.customs[n % len(net.customs)]
    number = container_number("SCB", n % 1_000_000)
    shipment = f"SHP-{n:08d}"
    seal = f"SL{n:010d}"
    gtin = gtin14(prefix, n % 10**5)
    serials = [f"S{n:08d}-{i:03d}" for i in range(rng.randint(40, 160))]
    lot = f"L{n:08d}"
    # Goods from Asia to the brand's markets, scanned on the way (most journeys are honest:
    # the anomalies the rules look for are rare, as in real traffic).
    origin, dest = rng.choice(ORIGINS), rng.choice(DESTINATIONS)

    w.mint(brand, gtin, lot, serials, mark=f"BRAND{bi}",
           markets=["DE", "FR", "NL"], facility="9506000000008", expiry=w.now + 2 * 365 * DAY)
    yield
    create = w.create_container(brand, number)  # the brand packs goods it holds
    yield
    tokens = sorted(token_id(gtin, s) for s in serials)
    assert len(tokens) <= MANIFEST_CHUNK
    w.sign(brand, "container.pack", {
        "container": number, "root": merkle.root(tokens), "count": len(tokens), "chunk": 0,
        "chunks": 1, "items": tokens, "weight_g": 12_000 * len(tokens), "shipment": shipment,
    })
    yield
    w.seal(brand, number, seal)
    yield
    place = {"country": origin[:2], "locode": origin}
    w.sign(maker, "shipment.create", {
        "shipment": shipment, "origin": place, "destination": {"country": dest[:2],
                                                               "locode": dest},
        "route": [origin, dest], "consignor": "Factory", "consignee": "Retailer",
        "containers": [number],
        "goods": [{"hs": "851712", "description": "Mobile phones", "quantity": len(serials),
                   "weight_g": 12_000 * len(serials), "gtin": gtin}],
    })
    yield
    head = create.id
    for giver, taker, carrier_i in ((brand, c1, c1i), (c1, c2, c2i)):
        _, accept = w.handover(giver, taker, "container", number, head)
        head = accept.id
        yield
        w.sign(taker, "shipment.update", {"shipment": shipment, "status": "in_transit"})
        yield
        scanners, eseals = net.scanners[carrier_i], net.eseals[carrier_i]
        for i in range(rng.randint(35, 55)):
            # One network clock for all journeys under way: a container reports every
            # few minutes, and `concurrent` of them interleave.
            w.tick(rng.randint(1_000, 25_000))
            r = rng.random()
            if r < 0.35:
                dev = rng.choice(scanners)
                port = rng.choice((origin, dest)) if rng.random() > 0.01 else rng.choice(PORTS)
                w.scan(dev, "container", number, country=port[:2], locode=port,
                       event=rng.choice(("observe", "gate_in", "gate_out", "load")), seal=seal)
            elif r < 0.65:
                temp = rng.randint(2_000, 26_000) if rng.random() > 0.002 else 41_000
                w.sensor(rng.choice(eseals), number, "temperature", value=temp)
            elif r < 0.9:
                w.sensor(rng.choice(eseals), number, "position",
                         lat_udeg=rng.randint(-60_000_000, 60_000_000),
                         lon_udeg=rng.randint(-170_000_000, 170_000_000))
            elif r < 0.97:
                w.sensor(rng.choice(eseals), number, "door", open=False)
            else:
                w.sensor(rng.choice(eseals), number, "weight",
                         value=12_000 * len(serials) + 2_200_000)
            if i % 10 == 9:
                yield
        yield
    w.sign(c2, "customs.declaration", {
        "shipment": shipment, "jurisdiction": jurisdiction, "procedure": "import", "declarant": "Carrier", "containers": [number],
        "goods": [{"hs": "851712", "description": "Mobile phones", "quantity": len(serials),
                   "weight_g": 12_000 * len(serials)}],
    })
    yield
    w.sign(customs, "customs.action", {"subject": {"kind": "container", "id": number},
                                       "action": "release"})
    yield
    w.sign(forwarder, "shipment.update", {"shipment": shipment, "status": "arrived"})
    _, accept = w.handover(c2, retailer, "container", number, head)
    yield
    w.sign(retailer, "container.unpack", {"container": number})
    for tid in tokens[:rng.randint(5, 15)]:
        w.scan(retailer, "token", tid.hex(), country="FR", event="observe")
    w.sign(retailer, "shipment.update", {"shipment": shipment, "status": "delivered"})


def generate(records: int, out: Path, *, seed: int = 7, concurrent: int = 24) -> dict[str, Any]:
    """Write `records` signed records (at least the network setup) into `out`."""
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    w = World.create(seed=seed, t0=T0)
    (out / "genesis.bin").write_bytes(w.genesis.to_bytes())
    index: dict[bytes, tuple[array[int], array[int]]] = {}
    written = 0
    offset = 0
    with open(out / "arrival.bin", "wb") as f:

        def flush() -> None:
            nonlocal written, offset
            for r in w.records:
                if written >= records:
                    break
                offs, lens = index.setdefault(r.author, (array("Q"), array("I")))
                offs.append(offset + 4)
                lens.append(len(r.wire))
                f.write(_FRAME.pack(len(r.wire)))
                f.write(r.wire)
                offset += 4 + len(r.wire)
                written += 1
            w.records.clear()

        net = Network(w, rng)
        flush()
        active: list[Iterator[None]] = []
        n = 0
        while written < records:
            while len(active) < concurrent:
                active.append(journey(net, n))
                n += 1
            j = rng.randrange(len(active))
            w.tick(rng.randint(100, 5_000))
            try:
                next(active[j])
            except StopIteration:
                active.pop(j)
            flush()
    # Feed order: the authority's feed first (every credential), then parties, then devices.
    order = sorted(index, key=lambda a: (a != w.authority.pub, min(index[a][0])))
    with open(out / "arrival.bin", "rb") as src, open(out / "runs.bin", "wb") as dst:
        for author in order:
            offs, lens = index[author]
            for o, ln in zip(offs, lens, strict=True):
                src.seek(o)
                dst.write(_FRAME.pack(ln))
                dst.write(src.read(ln))
    # The span must stay inside the credentials' validity (5 years from the start).
    return {"records": written, "authors": len(index), "parties": net.parties() + 1,
            "journeys": n, "days": round((w.now - T0) / DAY, 1)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=100_000)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args(argv)
    info = generate(args.records, args.out, seed=args.seed)
    print(" ".join(f"{k}={v}" for k, v in info.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
