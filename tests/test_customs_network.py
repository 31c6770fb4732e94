"""The customs story on a real network: five daemons in one trio run, on loopback.

Each participant (brand, manufacturer, carrier, forwarder, customs observer) runs a
real `node.daemon.Node`: its own LevelDB, libp2p host (gossip, sync, push) and
HTTP RPC, all on 127.0.0.1 port 0, each bootstrapping to the nodes started before
it. Credentials come from one authority (a `World`) and are in every ledger before
start. The story is driven through each node's RPC, as its operator would.

Policy: loopback only, port 0, an absolute timeout on every test (`trio.fail_after`);
the 2 s of the counterfeit case is measured from the submission of the offending
record.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import trio

from crypto import merkle
from crypto.didkey import did_from_public
from node.config import Config, LimitsSection, NodeSection, P2PSection, PushSection, RpcSection
from node.daemon import Node
from node.datadir import DataDir
from node.local import open_ledger
from node.scenario import Party, World
from protocol.bodies import token_id
from protocol.envelope import Record

TIMEOUT = 90  # seconds, per test
GTIN, LOT, GLN = "09506000134352", "LOT-7", "9506000000008"
BOX, SEAL = "CSQU3054383", "SEAL-A-0001"
SHIPMENT = "SHP-42"
ITEM_G = 350
SERIALS = [f"HP{i:04d}" for i in range(10)]
TOKENS = [token_id(GTIN, s) for s in SERIALS]
TRADEMARK = {"mark": "ACME", "classes": [9], "markets": ["BE", "DE", "FR", "NL"],
             "gs1_prefixes": ["950600"]}
ROOT = Path(__file__).resolve().parents[1]
START_ORDER = ("customs", "forwarder", "carrier", "manufacturer", "brand")


@dataclass
class Member:
    role: str
    party: Party
    data: DataDir
    config: Config | None = None
    node: Node | None = None
    http: httpx.AsyncClient | None = None
    done: trio.Event = field(default_factory=trio.Event)

    @property
    def did(self) -> str:
        return did_from_public(self.party.key.public)

    async def run(self, *, task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED
                  ) -> None:
        try:
            assert self.node is not None
            await self.node.run(task_status=task_status)
        finally:
            self.done.set()

    def _client(self) -> httpx.AsyncClient:
        assert self.http is not None, f"{self.role} is not running"
        return self.http

    async def post(self, type_name: str, body: dict[str, Any]) -> dict[str, Any]:
        r = await self._client().post("/v1/records", json={"type": type_name, "body": body})
        assert r.status_code == 201, f"{self.role}: {type_name}: {r.text}"
        return dict(r.json())

    async def batch(self, entries: list[tuple[str, dict[str, Any]]]) -> list[str]:
        r = await self._client().post("/v1/records/batch", json={
            "records": [{"type": t, "body": b} for t, b in entries]})
        assert r.status_code == 201, f"{self.role}: {r.text}"
        return [x["id"] for x in r.json()["records"]]

    async def get(self, path: str) -> Any:
        r = await self._client().get(path)
        assert r.status_code == 200, f"{self.role}: GET {path}: {r.text}"
        return r.json()

    async def has(self, rid: str) -> bool:
        return (await self._client().get(f"/v1/records/{rid}")).status_code == 200

    async def alerts(self) -> list[dict[str, Any]]:
        return list((await self.get("/v1/alerts?limit=1000"))["alerts"])

    async def rules(self) -> list[str]:
        return [a["rule"] for a in await self.alerts()]


class Net:
    """The five members; `start`/`stop` run and stop their daemons in the test's nursery."""

    def __init__(self, tmp_path: Path, *, subscribe_brand: bool = False) -> None:
        w = self.world = World.create(seed=31, t0=time.time_ns() // 1_000_000)
        self.subscribe_brand = subscribe_brand
        self.members: dict[str, Member] = {}
        for role, org, where in (("brand", "Acme Audio", ["NL"]),
                                 ("manufacturer", "Shenzhen Precision", ["CN"]),
                                 ("carrier", "Oceanic Lines", ["NL"]),
                                 ("forwarder", "Rotterdam Freight", ["NL"]),
                                 ("customs", "Douane", ["NL"])):
            party = w.party(role, org, where, trademarks=[TRADEMARK] if role == "brand" else None,
                            observer=role == "customs")
            data = DataDir.init(tmp_path / role, w.genesis, role=role, key=party.key)
            self.members[role] = Member(role, party, data)
        for m in self.members.values():
            with open_ledger(m.data.path) as ledger:
                out = ledger.submit([r.wire for r in w.records], w.now)
                assert {o.status for o in out} == {"stored"}
        self.addrs: dict[str, str] = {}

    def __getitem__(self, role: str) -> Member:
        return self.members[role]

    def running(self) -> list[Member]:
        return [m for m in self.members.values() if m.http is not None]

    def _config(self, m: Member) -> Config:
        push = PushSection()
        if m.role == "brand" and self.subscribe_brand:  # alerts about goods bound for NL
            push = PushSection(providers=(self.addrs["customs"],), jurisdictions=("NL",),
                               min_severity="medium")
        return Config(
            node=NodeSection(role=m.role, observer=m.role == "customs"),
            p2p=P2PSection(listen=("/ip4/127.0.0.1/tcp/0",),
                           bootstrap=tuple(a for r, a in self.addrs.items() if r != m.role)),
            rpc=RpcSection(port=0),
            limits=LimitsSection(sync_interval_s=1, silence_check_s=1),
            push=push)

    async def start(self, nursery: trio.Nursery, *roles: str) -> None:
        for role in roles or START_ORDER:
            m = self.members[role]
            m.config = self._config(m)
            m.node = Node(m.data, config=m.config, handle_signals=False, rpc_port=0)
            m.done = trio.Event()
            url = await nursery.start(m.run)
            assert m.node.network is not None
            self.addrs[role] = m.node.network.addrs[0]
            m.http = httpx.AsyncClient(base_url=url, timeout=10.0, headers={
                "Authorization": f"Bearer {m.data.tokens().write}"})

    async def stop(self, role: str) -> None:
        m = self.members[role]
        assert m.node is not None
        assert m.http is not None
        await m.http.aclose()
        m.http = None
        m.node.stop()
        await m.done.wait()

    async def close(self) -> None:
        for m in self.members.values():
            if m.http is not None:
                await m.http.aclose()
                m.http = None

    async def everywhere(self, rid: str) -> None:
        """Wait until every running node holds record `rid`."""
        for m in self.running():
            await until(lambda m=m: m.has(rid))  # type: ignore[misc]

    async def converged(self) -> None:
        """Wait until every running node reports the same state root and record count."""
        async def same() -> bool:
            states = [await m.get("/v1/status") for m in self.running()]
            return len({(s["state_root"], s["record_count"]) for s in states}) == 1

        await until(same)


async def until(check: Callable[[], Awaitable[bool]], poll: float = 0.02) -> None:
    """Poll a node over its RPC until `check` holds (the test's timeout bounds the wait)."""
    while not await check():  # noqa: ASYNC110 - polled over HTTP: no event to wait on
        await trio.sleep(poll)


async def observer_settled(customs: Member) -> None:
    """Wait until the customs observer has verified all it noted and signed its findings."""
    observer = customs.node.observer  # type: ignore[union-attr]
    while not observer.settled:  # noqa: ASYNC110 - its state: no event to wait on
        await trio.sleep(0.02)


async def alert_at(m: Member, rule: str) -> None:
    await until(lambda: _has_rule(m, rule))


async def _has_rule(m: Member, rule: str) -> bool:
    return rule in await m.rules()


# -- the story, step by step -----------------------------------------------------------


async def make_goods(net: Net) -> None:
    """The brand mints the goods and hands them to its manufacturer, who accepts them."""
    brand, maker = net["brand"], net["manufacturer"]
    mint = (await brand.post("product.mint", {
        "gtin": GTIN, "lot": LOT, "serials": SERIALS, "mark": "ACME",
        "markets": ["DE", "NL"], "facility": GLN}))["id"]
    await until(lambda: maker.has(mint))
    offers = await brand.batch([("handover.offer", {
        "object": {"kind": "token", "id": t.hex()}, "to": maker.did, "head": mint})
        for t in TOKENS])
    await until(lambda: maker.has(offers[-1]))
    accepts = await maker.batch([("handover.accept", {
        "offer": o, "object": {"kind": "token", "id": t.hex()}, "head": mint})
        for o, t in zip(offers, TOKENS, strict=True)])
    await net.everywhere(accepts[-1])  # every node knows who holds the goods


async def book(net: Net, *, destination: str = "NL", procedure: str = "import") -> str:
    """The container is made; the forwarder books the shipment and declares it in NL."""
    create = (await net["manufacturer"].post("container.create", {
        "container": BOX, "tare_g": 2_200_000, "max_gross_g": 30_480_000}))["id"]
    dest: dict[str, Any] = {"country": destination}
    if destination == "NL":
        dest["locode"] = "NLRTM"
    goods = [{"hs": "851830", "description": "Headphones", "quantity": len(TOKENS),
              "weight_g": len(TOKENS) * ITEM_G, "gtin": GTIN}]
    fwd = net["forwarder"]
    await fwd.post("shipment.create", {
        "shipment": SHIPMENT, "origin": {"country": "CN", "locode": "CNSHA"},
        "destination": dest, "route": ["SGSIN", "NLRTM"], "consignor": "Shenzhen Precision",
        "consignee": "Acme Audio", "containers": [BOX], "goods": goods})
    declared = (await fwd.post("customs.declaration", {
        "shipment": SHIPMENT, "jurisdiction": "NL", "procedure": procedure,
        "declarant": "Rotterdam Freight", "containers": [BOX], "goods": goods}))["id"]
    await net.everywhere(declared)
    return str(create)


def pack_body(items: list[bytes]) -> dict[str, Any]:
    items = sorted(items)
    return {"container": BOX, "root": merkle.root(items).hex(), "count": len(items),
            "chunk": 0, "chunks": 1, "shipment": SHIPMENT, "weight_g": len(items) * ITEM_G,
            "items": [t.hex() for t in items]}


async def pack_and_seal(net: Net, items: list[bytes] | None = None) -> None:
    maker = net["manufacturer"]
    await maker.post("container.pack", pack_body(items or TOKENS))
    sealed = (await maker.post("container.seal", {"container": BOX, "seal": SEAL,
                                                  "seal_class": "H"}))["id"]
    await net.everywhere(sealed)


async def carry(net: Net, create: str) -> str:
    """The manufacturer hands the container to the carrier; returns the custody head."""
    maker, carrier = net["manufacturer"], net["carrier"]
    offer = (await maker.post("handover.offer", {
        "object": {"kind": "container", "id": BOX}, "to": carrier.did, "head": create}))["id"]
    await until(lambda: carrier.has(offer))
    accept = (await carrier.post("handover.accept", {
        "offer": offer, "object": {"kind": "container", "id": BOX}, "head": create}))["id"]
    await net.everywhere(accept)
    return str(accept)


async def scan(net: Net, seal: str = SEAL, locode: str = "SGSIN") -> str:
    return str((await net["carrier"].post("scan", {
        "object": {"kind": "container", "id": BOX}, "event": "discharge",
        "place": {"country": locode[:2], "locode": locode}, "seal": seal}))["id"])


async def honest_journey(net: Net) -> str:
    await make_goods(net)
    create = await book(net)
    await pack_and_seal(net)
    head = await carry(net, create)
    await net.everywhere(await scan(net))
    return head


async def verdict(m: Member) -> dict[str, Any]:
    return dict(await m.get(f"/v1/containers/{BOX}/verify"))


async def sealchain_verify(m: Member) -> tuple[int, str]:
    """`sealchain verify BOX --data DIR` against the running node, as an operator would."""
    proc = await trio.run_process(
        [sys.executable, "-m", "node.cli", "verify", BOX, "--data", str(m.data.path)],
        cwd=ROOT, capture_stdout=True, capture_stderr=True, check=False)
    return proc.returncode, proc.stdout.decode() + proc.stderr.decode()


# -- (a) .. (f) --------------------------------------------------------------------------


async def test_the_honest_story_is_green_with_no_alert_anywhere(tmp_path: Path) -> None:
    net = Net(tmp_path)
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            await net.start(nursery)
            await honest_journey(net)
            customs = net["customs"]
            observer = customs.node.observer  # type: ignore[union-attr]

            async def verified() -> bool:
                v = observer.verdicts.get(BOX)
                return v is not None and v.items == len(TOKENS) and v.level.name == "GREEN"

            await until(verified)  # the observer's own verdict, on the latest records
            v = await verdict(customs)
            assert v["verdict"] == "GREEN", v["reasons"]
            assert v["items"] == len(TOKENS)
            await net.converged()
            await trio.sleep(1.5)  # a timer pass (silence, re-verification) and the debounce
            for m in net.running():
                assert await m.alerts() == [], m.role
                assert (await verdict(m))["verdict"] == "GREEN", m.role
            code, out = await sealchain_verify(customs)
            assert code == 0, out
            assert "GREEN (fast track)" in out
            await net.close()
            nursery.cancel_scope.cancel()


async def test_a_counterfeit_item_is_red_and_alerted_at_customs_and_brand_within_2s(
        tmp_path: Path) -> None:
    net = Net(tmp_path)
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            await net.start(nursery)
            await make_goods(net)
            await book(net)  # declared: customs watches the container from now on
            fake = token_id(GTIN, "HP9999")  # a plausible serial nobody minted
            t0 = trio.current_time()
            with trio.fail_after(2):  # from the offending record's submission
                await net["manufacturer"].post("container.pack", pack_body([*TOKENS, fake]))
                await alert_at(net["customs"], "item_not_minted")
                await alert_at(net["brand"], "item_not_minted")
            elapsed = trio.current_time() - t0
            v = await verdict(net["customs"])
            assert v["verdict"] == "RED"
            [reason] = [r for r in v["reasons"] if r["code"] == "item.not_minted"]
            assert reason["alert"] == "item_not_minted"
            [alert] = [a for a in await net["brand"].alerts() if a["rule"] == "item_not_minted"]
            assert alert["subject"] == {"kind": "container", "id": BOX}
            assert alert["severity"] == "critical"
            assert elapsed < 2
            await net.close()
            nursery.cancel_scope.cancel()


async def test_a_changed_seal_at_a_scan_is_red_with_one_alert(tmp_path: Path) -> None:
    net = Net(tmp_path)
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            await net.start(nursery)
            await make_goods(net)
            create = await book(net)
            await pack_and_seal(net)
            await carry(net, create)
            await scan(net, seal="SEAL-X-6661")  # someone swapped the seal
            for m in net.running():
                await alert_at(m, "seal_mismatch")
            v = await verdict(net["customs"])
            assert v["verdict"] == "RED"
            assert "seal.mismatch" in {r["code"] for r in v["reasons"]}
            await net.converged()
            await observer_settled(net["customs"])  # its signed alert, if any, is written
            await net.converged()  # ... and has landed everywhere
            for m in net.running():  # derived by every node, raised by customs: one alert
                assert (await m.rules()).count("seal_mismatch") == 1, m.role
            code, out = await sealchain_verify(net["customs"])
            assert code == 1, out
            assert "RED (inspect)" in out
            assert "seal.mismatch" in out
            await net.close()
            nursery.cancel_scope.cancel()


async def test_a_double_handover_is_disputed_on_every_node_with_one_alert(tmp_path: Path
                                                                         ) -> None:
    net = Net(tmp_path)
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            await net.start(nursery)
            head = await honest_journey(net)
            carrier, fwd, brand = net["carrier"], net["forwarder"], net["brand"]
            first = await carrier.post("handover.offer", {
                "object": {"kind": "container", "id": BOX}, "to": fwd.did, "head": head})
            await net.everywhere(first["id"])
            # The carrier's key offers the same custody state again, to someone else, and
            # the record surfaces at another node (its node would have refused to write it).
            again = Record.sign(
                carrier.party.key, network=net.world.network, seq=first["seq"] + 1,
                prev=bytes.fromhex(first["id"]), ts=time.time_ns() // 1_000_000,
                type="handover.offer", body={"object": {"kind": "container", "id": BOX},
                                             "to": brand.party.pub, "head": bytes.fromhex(head)})
            r = await brand._client().post("/v1/records/raw", json={"records": [again.wire.hex()]})
            assert r.status_code == 201, r.text
            for m in net.running():
                await alert_at(m, "double_handover")

                async def disputed(m: Member = m) -> bool:
                    c = await m.get(f"/v1/containers/{BOX}")
                    return bool(c["custody"]["disputed"])

                await until(disputed)
            await net.converged()
            await observer_settled(net["customs"])
            await net.converged()
            for m in net.running():
                assert (await m.rules()).count("double_handover") == 1, m.role
            v = await verdict(net["customs"])
            assert "custody.disputed" in {r["code"] for r in v["reasons"]}
            await net.close()
            nursery.cancel_scope.cancel()


async def test_a_diversion_outside_the_authorised_markets_alerts_the_brand(tmp_path: Path
                                                                          ) -> None:
    net = Net(tmp_path)
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            await net.start(nursery)
            await make_goods(net)  # authorised for DE and NL only
            create = await book(net, destination="US", procedure="transit")  # via Rotterdam
            await pack_and_seal(net)
            await carry(net, create)
            await alert_at(net["brand"], "diversion")
            [alert] = [a for a in await net["brand"].alerts() if a["rule"] == "diversion"]
            assert alert["subject"] == {"kind": "container", "id": BOX}
            # the brand's node derives it itself (node.derived), no customs needed; the
            # customs office's signed alert for the finding has the same key: one alert
            await alert_at(net["customs"], "diversion")
            [signed] = [a for a in await net["customs"].alerts() if a["rule"] == "diversion"]
            assert signed["key"] == alert["key"]
            v = await verdict(net["customs"])
            assert v["verdict"] == "RED"
            assert "item.diversion" in {r["code"] for r in v["reasons"]}
            await net.close()
            nursery.cancel_scope.cancel()


async def test_an_offline_subscriber_receives_every_missed_alert_once(tmp_path: Path) -> None:
    """The brand's node subscribes at the customs node ([push] providers); it goes down,
    alerts are raised meanwhile, and when it is back it receives each of them, once.

    (Sync brings the brand the records too, so it may derive some alerts itself before
    the push session delivers them: those are counted as duplicates, never logged twice.)
    The push protocol alone, offline and back, is in `tests/test_push.py`.
    """
    net = Net(tmp_path, subscribe_brand=True)
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            await net.start(nursery)
            brand, customs, carrier = net["brand"], net["customs"], net["carrier"]
            customs_pub = customs.party.pub
            await honest_journey(net)
            await carrier.post("sensor", {"container": BOX, "kind": "temperature",
                                          "at": time.time_ns() // 1_000_000, "value": 41_000})
            await alert_at(customs, "temperature_excursion")

            def brand_push() -> Any:
                assert brand.node is not None
                return brand.node.push

            async def caught_up() -> bool:
                last = customs.node.ledger.store.last_alert_cursor()  # type: ignore[union-attr]
                return bool(brand_push().cursor(customs_pub) == last)

            await until(caught_up)  # subscribed, and delivered up to now
            await net.stop("brand")
            seen = customs.node.ledger.store.last_alert_cursor()  # type: ignore[union-attr]
            await scan(net, seal="SEAL-X-6661")  # raised while the brand is away
            await carrier.post("sensor", {"container": BOX, "kind": "door",
                                          "at": time.time_ns() // 1_000_000, "open": True})
            await alert_at(customs, "seal_mismatch")
            await alert_at(customs, "seal_breach")
            await observer_settled(customs)  # the observer's verdict alerts too
            missed = [e for _, e in customs.node.ledger.store.alerts(  # type: ignore[union-attr]
                since=seen, limit=1000)]
            assert {"seal_mismatch", "seal_breach"} <= {e["rule"] for e in missed}
            await net.start(nursery, "brand")
            await until(caught_up)
            push = brand_push()

            async def delivered() -> bool:  # stats move just after the cursor is stored
                return bool(push.stats.received + push.stats.duplicates >= len(missed))

            await until(delivered)  # every missed alert came through the subscription
            keys = [a["key"] for a in await brand.alerts()]
            assert len(keys) == len(set(keys))  # each once
            assert {e["key"].hex() for e in missed} <= set(keys)
            await net.close()
            nursery.cancel_scope.cancel()
