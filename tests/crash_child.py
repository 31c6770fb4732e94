"""The process `tests/test_crash.py` kills: a node ingesting and writing, as fast as it can.

    python -m tests.crash_child DATA WIRES SEED

Opens the node in DATA (made with `DataDir.init`; its key holds a credential
issued in the genesis world), then loops forever: submits the foreign records
in WIRES (`write_wires`: length-prefixed record wires, the authority's first)
in small batches through `Ledger.submit`, and appends records of its own through
`Ledger.append_own`. After each call returns it prints, flushed, one line
`ACK <id hex>` for every record the call said is stored: a line on stdout is a
promise that the record survives any crash from then on.

The same module builds the world the parent pre-generates (`build_world`).
"""

from __future__ import annotations

import random
import struct
import sys
import time
from pathlib import Path

from crypto.keys import SigningKey
from node.datadir import DataDir
from node.ledger import Ledger
from node.scenario import DAY, World, tokens_of
from node.store import Store
from protocol.envelope import Record
from protocol.identifiers import iso6346_check_digit
from tests import examples as ex

NODE_KEY = SigningKey(bytes([66]) * 32)
SEAL = "ML-4512345"


def container(n: int) -> str:
    base = f"SCLU{n:06d}"
    return base + str(iso6346_check_digit(base) % 10)


def build_world(containers: int = 12, seed: int = 7) -> tuple[World, list[Record]]:
    """The world, and its records plus a fork's twin (for the parent to store as wires).

    The node's key has a credential in it, and nothing else: its feed is the node's own.
    """
    w = World.create(seed=seed, t0=time.time_ns() // 1_000_000 - DAY // 2)
    brand = w.party("brand", "ACME B.V.", ["NL"], trademarks=[ex.trademark()])
    carriers = [w.party("carrier", f"Carrier {i}", ["NL", "DE"]) for i in range(3)]
    w.party("carrier", "The Node Under Test", ["NL"], key=NODE_KEY)
    for i in range(containers):
        w.tick()
        number = container(i)
        serials = [f"K{i}S{j}" for j in range(4)]
        w.mint(brand, ex.GTIN, ex.LOT, serials, mark="ACME", markets=["NL"], facility=ex.GLN)
        w.create_container(brand, number)
        w.pack(brand, number, tokens_of(ex.GTIN, serials), weight_g=4_000)
        seal = w.seal(brand, number, SEAL)
        carrier = carriers[i % len(carriers)]
        w.tick()
        _offer, accept = w.handover(brand, carrier, "container", number, seal.id)
        for k in range(3):
            w.tick()
            w.scan(carrier, "container", number, country="NL", seal=SEAL if k != 2 or i % 4
                   else "ML-9990001")
        w.sensor(carrier, number, "temperature", value=5_000 + 20_000 * (i % 3))
        if i % 5 == 0:  # a double hand-over now and then
            for to in carriers[:2]:
                w.sign(carrier, "handover.offer", {"object": ex.container_ref(number),
                                                   "to": to.pub, "head": accept.id})
    # a fork: carrier 0 signs a second, different record at the seq of its 5th
    at = [r for r in w.records if r.author == carriers[0].pub][4]
    twin = Record.sign(carriers[0].key, network=w.network, seq=at.seq, prev=at.prev, ts=at.ts,
                       type="scan", body=ex.scan(at=at.ts, seal="ML-9990002"))
    return w, [*w.records, twin]


def write_wires(path: Path, wires: list[bytes]) -> None:
    path.write_bytes(b"".join(struct.pack(">I", len(w)) + w for w in wires))


def read_wires(path: Path) -> list[bytes]:
    data, out, i = path.read_bytes(), [], 0
    while i < len(data):
        (n,) = struct.unpack_from(">I", data, i)
        out.append(data[i + 4:i + 4 + n])
        i += 4 + n
    return out


def own_entries(rnd: random.Random, now: int, n: int) -> list[tuple[str, dict[str, object]]]:
    out: list[tuple[str, dict[str, object]]] = []
    for _ in range(n):
        number = container(rnd.randrange(60))
        if rnd.random() < 0.5:
            out.append(("scan", {"object": ex.container_ref(number), "place": {"country": "NL"},
                                 "event": "observe", "at": now, "seal": SEAL}))
        else:
            out.append(("sensor", {"container": number, "kind": "temperature", "at": now,
                                   "value": rnd.randrange(-5_000, 25_000)}))
    return out


def main(data: str, wires_file: str, seed: int) -> None:
    rnd = random.Random(seed)
    d = DataDir(data)
    wires = read_wires(Path(wires_file))
    store = Store.open(d.db_path)
    led = Ledger(store, d.genesis(), own=d.key())
    authority = d.genesis().authorities[0]
    out = sys.stdout

    def ack(ids: list[bytes]) -> None:
        if ids:
            out.write("".join(f"ACK {i.hex()}\n" for i in ids))
            out.flush()

    def now() -> int:
        return time.time_ns() // 1_000_000

    # the credentials first, so our own appends are allowed
    first = [w for w in wires if Record.from_bytes(w, verify=False).author == authority]
    ack([o.id for o in led.submit(first, now()) if o.status == "stored" and o.id])
    out.write("READY\n")
    out.flush()
    pos = rnd.randrange(len(wires))
    while True:
        if rnd.random() < 0.6:
            n = rnd.randint(1, 8)
            batch = [wires[(pos + i) % len(wires)] for i in range(n)]
            pos = (pos + n) % len(wires)
            outcomes = led.submit(batch, now())
            ack([o.id for o in outcomes if o.status == "stored" and o.id])
        else:
            records = led.append_own(own_entries(rnd, now(), rnd.randint(1, 2)), now())
            ack([r.id for r in records])


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
