"""The demo: a whole customs story played on a local testnet, through each node's RPC.

A brand mints 1,000 headphones and hands them to its manufacturer, who packs
them into two containers and seals them; a carrier takes custody; a forwarder
books the shipment and declares it to Dutch customs. Container A is honest.
Container B carries a counterfeit (an item nobody minted) and its seal is
swapped in transit. Customs, an observer node, verifies both the moment they
are declared and again as scans arrive: A is GREEN (fast track), B is RED
(inspect), and the alerts reach customs and the brand.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from crypto import merkle
from node.testnet import Member, Testnet
from protocol.bodies import MANIFEST_CHUNK, token_id

GTIN = "09506000134352"  # inside the first brand's GS1 prefix 950600
LOT = "LOT-2026-11"
FACILITY = "9506000000008"
HONEST, TAMPERED = "CSQU3054383", "MSKU2666542"
SEAL_A, SEAL_B, SEAL_FAKE = "SEAL-A-20261101", "SEAL-B-20261101", "SEAL-X-66613"
SHIPMENT = "SHP-2026-0042"
ITEM_G = 350


class DemoError(Exception):
    """The story did not come out as it should."""


class Rpc:
    """A node's RPC, with its write token."""

    def __init__(self, member: Member) -> None:
        info = member.describe()
        self.name = member.name
        self.did = member.did
        self.client = httpx.Client(base_url=info["rpc_url"], timeout=30.0,
                                   headers={"Authorization": f"Bearer {info['write_token']}"})

    def get(self, path: str, **params: Any) -> Any:
        r = self.client.get(path, params=params)
        r.raise_for_status()
        return r.json()

    def exists(self, path: str) -> bool:
        return self.client.get(path).status_code == 200

    def post(self, type_name: str, body: dict[str, Any]) -> str:
        r = self.client.post("/v1/records", json={"type": type_name, "body": body})
        if r.status_code != 201:
            raise DemoError(f"{self.name}: {type_name} refused: {r.text}")
        return str(r.json()["id"])

    def batch(self, entries: Sequence[tuple[str, dict[str, Any]]]) -> list[str]:
        ids: list[str] = []
        for i in range(0, len(entries), 1000):
            chunk = [{"type": t, "body": b} for t, b in entries[i:i + 1000]]
            r = self.client.post("/v1/records/batch", json={"records": chunk})
            if r.status_code != 201:
                raise DemoError(f"{self.name}: batch refused: {r.text}")
            ids += [x["id"] for x in r.json()["records"]]
        return ids


@dataclass
class Outcome:
    verdicts: dict[str, dict[str, Any]] = field(default_factory=dict)
    alerts: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    @property
    def as_expected(self) -> bool:
        a = self.verdicts.get(HONEST, {}).get("verdict")
        b = self.verdicts.get(TAMPERED, {})
        codes = {r["code"] for r in b.get("reasons", ())}
        rules = {role: {x["rule"] for x in xs} for role, xs in self.alerts.items()}
        return (a == "GREEN" and b.get("verdict") == "RED"
                and {"seal.mismatch", "item.not_minted"} <= codes
                and "seal_mismatch" in rules.get("customs", set())
                and "seal_mismatch" in rules.get("brand", set())
                and "item_not_minted" in rules.get("brand", set()))


def wait_for(what: str, check: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise DemoError(f"timed out waiting for {what}")
        time.sleep(0.1)


def pack_bodies(number: str, tokens: list[bytes]) -> list[dict[str, Any]]:
    items = sorted(tokens)
    root = merkle.root(items).hex()
    chunks = -(-len(items) // MANIFEST_CHUNK)
    return [{"container": number, "root": root, "count": len(items), "chunk": c,
             "chunks": chunks, "shipment": SHIPMENT, "weight_g": len(items) * ITEM_G,
             "items": [t.hex() for t in items[c * MANIFEST_CHUNK:(c + 1) * MANIFEST_CHUNK]]}
            for c in range(chunks)]


def play(net: Testnet, say: Callable[[str], None] = print) -> Outcome:
    by_role: dict[str, Member] = {}
    for m in net.members:
        by_role.setdefault(m.role, m)
    brand, maker, carrier, fwd, customs = (Rpc(by_role[r]) for r in
                                           ("brand", "manufacturer", "carrier", "forwarder",
                                            "customs"))
    say("\n1. Acme Audio (brand) mints 1,000 headphones, GTIN 09506000134352, lot LOT-2026-11")
    serials = [f"HP{i:05d}" for i in range(1, 1001)]
    mint = brand.post("product.mint", {
        "gtin": GTIN, "lot": LOT, "serials": serials, "mark": "ACME",
        "markets": ["BE", "DE", "FR", "NL"], "facility": FACILITY,
        "attrs": {"model": "ACME Studio 7", "colour": "black"}})
    tokens = [token_id(GTIN, s) for s in serials]
    wait_for("the mint to reach the manufacturer", lambda: maker.exists(f"/v1/records/{mint}"))

    say("2. The brand hands the goods to its manufacturer, who accepts them")
    offers = brand.batch([("handover.offer", {"object": {"kind": "token", "id": t.hex()},
                                               "to": maker.did, "head": mint}) for t in tokens])
    wait_for("the offers to reach the manufacturer",
             lambda: maker.exists(f"/v1/records/{offers[-1]}"))
    maker.batch([("handover.accept", {"offer": o, "object": {"kind": "token", "id": t.hex()},
                                      "head": mint}) for o, t in zip(offers, tokens, strict=True)])

    say(f"3. The manufacturer packs container {HONEST} (500 genuine items) and {TAMPERED}"
        " (499 genuine + 1 counterfeit), and seals both")
    fake = token_id(GTIN, "HP99999")  # never minted: a counterfeit with a plausible serial
    creates = {}
    for number in (HONEST, TAMPERED):
        creates[number] = maker.post("container.create", {
            "container": number, "tare_g": 2_200_000, "max_gross_g": 30_480_000})
    maker.batch([("container.pack", b) for b in pack_bodies(HONEST, tokens[:500])])
    maker.batch([("container.pack", b) for b in pack_bodies(TAMPERED, [*tokens[500:999], fake])])
    maker.post("container.seal", {"container": HONEST, "seal": SEAL_A, "seal_class": "H"})
    last = maker.post("container.seal", {"container": TAMPERED, "seal": SEAL_B, "seal_class": "H"})

    say("4. Oceanic Container Lines (carrier) takes custody of both containers")
    wait_for("the containers to reach the carrier", lambda: carrier.exists(f"/v1/records/{last}"))
    for number in (HONEST, TAMPERED):
        offer = maker.post("handover.offer", {"object": {"kind": "container", "id": number},
                                              "to": carrier.did, "head": creates[number]})
        wait_for("the offer to reach the carrier", lambda o=offer: carrier.exists(f"/v1/records/{o}"))
        carrier.post("handover.accept", {"offer": offer,
                                         "object": {"kind": "container", "id": number},
                                         "head": creates[number]})

    say(f"5. The forwarder books shipment {SHIPMENT} Shanghai → Rotterdam and declares it to"
        " Dutch customs")
    goods = [{"hs": "851830", "description": "Headphones", "quantity": 1000,
              "weight_g": 1000 * ITEM_G, "gtin": GTIN}]
    fwd.post("shipment.create", {
        "shipment": SHIPMENT, "origin": {"country": "CN", "locode": "CNSHA"},
        "destination": {"country": "NL", "locode": "NLRTM"}, "route": ["SGSIN"],
        "consignor": "Shenzhen Precision Manufacturing Ltd", "consignee": "Acme Audio BV",
        "containers": [HONEST, TAMPERED], "goods": goods})
    fwd.post("customs.declaration", {
        "shipment": SHIPMENT, "jurisdiction": "NL", "procedure": "import",
        "declarant": "Rotterdam Freight Forwarding BV", "containers": [HONEST, TAMPERED],
        "goods": goods})

    say(f"6. In transit: scans at Singapore and Rotterdam; the seal on {TAMPERED} has been"
        f" swapped ({SEAL_B} → {SEAL_FAKE})")
    for locode, event in (("SGSIN", "discharge"), ("NLRTM", "arrive")):
        carrier.post("scan", {"object": {"kind": "container", "id": HONEST}, "event": event,
                              "place": {"country": locode[:2], "locode": locode}, "seal": SEAL_A})
        seen = SEAL_B if locode == "SGSIN" else SEAL_FAKE
        carrier.post("scan", {"object": {"kind": "container", "id": TAMPERED}, "event": event,
                              "place": {"country": locode[:2], "locode": locode}, "seal": seen})

    say("\n7. Customs verifies both containers from the log alone, without opening them:")
    out = Outcome()

    def verdicts_in() -> bool:
        for number in (HONEST, TAMPERED):
            out.verdicts[number] = customs.get(f"/v1/containers/{number}/verify")
        b = out.verdicts[TAMPERED]
        return out.verdicts[HONEST]["verdict"] == "GREEN" and b["verdict"] == "RED" and {
            "seal.mismatch", "item.not_minted"} <= {r["code"] for r in b["reasons"]}

    try:
        wait_for("the verdicts", verdicts_in, timeout=20)
    except DemoError:
        pass
    for number in (HONEST, TAMPERED):
        v = out.verdicts[number]
        say(f"   {number}: {v['verdict']:5}  ({v['items']} items, destination {v['destination']})")
        for r in v["reasons"]:
            say(f"      - {r['level']}: {r['message']} [{r['code']}]")

    def alerts_in() -> bool:
        for role, node in (("customs", customs), ("brand", brand)):
            out.alerts[role] = node.get("/v1/alerts")["alerts"]
        return out.as_expected

    try:
        wait_for("the alerts", alerts_in, timeout=20)
    except DemoError:
        pass
    say("\n8. Alerts as they arrived:")
    for role in ("customs", "brand"):
        for a in out.alerts.get(role, []):
            subject = a["subject"]
            say(f"   at {role:8} {a['severity']:8} {a['rule']:18} {subject['kind']}"
                f" {subject['id'][:16]}: {a['reason']}")
    return out
