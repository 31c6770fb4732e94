"""Alert push between real nodes on loopback: real ledgers on LevelDB, real libp2p hosts.

The push tests run a bare `Host` and a `PushService` per node (no sync, no
gossip), so push is the only way an alert can reach the customs node: what it
logs came through the subscription. One test runs the full network service
with push on its host. Every networked test has an absolute timeout.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import trio

from node import facts as F
from node.alert_context import alert_context
from node.ledger import Ledger
from node.p2p import Host
from node.push import PUSH_PROTOCOL, PushConfig, PushService
from node.push import Provider as PushProvider
from node.scenario import Party, World, tokens_of
from node.store import Store, WriteSet
from protocol.push import Context, Filter
from tests import examples as ex
from tests.netutil import converged, start

TIMEOUT = 30  # seconds, per networked test
SEAL = "ML-4512345"
DE_CONTAINER, NL_CONTAINER = ex.CONTAINER, ex.CONTAINER_3
TRADEMARK = {"mark": "ACME", "classes": [9], "markets": ["DE", "FR", "NL"],
             "gs1_prefixes": ["950600"]}


@dataclass
class Scene:
    world: World
    brand: Party
    carrier: Party
    customs: Party
    wrong: int = 0

    def mismatch(self, container: str) -> bytes:
        """A carrier scan of `container` showing a wrong seal (one new alert)."""
        self.world.tick()
        self.wrong += 1
        country = "DE" if container == DE_CONTAINER else "NL"  # on its route: no other alert
        r = self.world.scan(self.carrier, "container", container, country=country,
                            seal=f"XX-{self.wrong:07d}")
        return r.wire


def scene() -> Scene:
    w = World.create(seed=11)
    brand = w.party("brand", "ACME Brands", ["NL"], trademarks=[TRADEMARK])
    carrier = w.party("carrier", "Rhine Freight", ["NL", "DE"])
    customs = w.party("customs", "Zoll Hamburg", ["DE"], observer=True)
    w.tick()
    [mint] = w.mint(brand, ex.GTIN, ex.LOT, list(ex.SERIALS), mark="ACME",
                    markets=["DE", "NL"], facility=ex.GLN)
    tokens = tokens_of(ex.GTIN, ex.SERIALS)
    for t in tokens:  # the carrier packs what it holds: an honest story but for the seals
        w.handover(brand, carrier, "token", t.hex(), mint.id)
    for number in (DE_CONTAINER, NL_CONTAINER):
        w.create_container(carrier, number)
    w.pack(carrier, DE_CONTAINER, tokens, weight_g=3_600)
    for number in (DE_CONTAINER, NL_CONTAINER):
        w.seal(carrier, number, SEAL)
    hamburg = ex.place(country="DE", locode="DEHAM", gln=None, name="Hamburg")
    w.sign(carrier, "shipment.create", ex.shipment_create(
        shipment="SHP-DE", destination=hamburg, containers=[DE_CONTAINER]))
    w.sign(carrier, "shipment.create", ex.shipment_create(
        shipment="SHP-NL", containers=[NL_CONTAINER]))
    w.sign(carrier, "customs.declaration", ex.customs_declaration(
        shipment="SHP-DE", jurisdiction="DE", containers=[DE_CONTAINER]))
    return Scene(w, brand, carrier, customs)


@dataclass
class PNode:
    path: Path
    party: Party
    world: World
    store: Store = field(init=False)
    ledger: Ledger = field(init=False)
    host: Host | None = None
    push: PushService | None = None
    scope: trio.CancelScope | None = None
    stopped: trio.Event = field(default_factory=trio.Event)

    def __post_init__(self) -> None:
        self.open()
        self.ledger.submit([r.wire for r in self.world.records], self.world.now)

    def open(self) -> None:
        self.store = Store.open(self.path)
        self.ledger = Ledger(self.store, self.world.genesis, own=self.party.key)

    def reopen(self) -> None:
        self.store.close()
        self.open()

    def log(self) -> list[dict[str, Any]]:
        return [e for _, e in self.store.alerts(limit=10_000)]

    async def run(self, nursery: trio.Nursery, config: PushConfig,
                  listen: str = "/ip4/127.0.0.1/tcp/0") -> PushService:
        self.stopped = trio.Event()
        self.push = await nursery.start(self._serve, config, listen)
        return self.push

    async def _serve(self, config: PushConfig, listen: str, *,
                     task_status: trio.TaskStatus[PushService] = trio.TASK_STATUS_IGNORED) -> None:
        try:
            with trio.CancelScope() as self.scope:
                async with trio.open_nursery() as nursery:
                    self.host = Host(self.party.key, listen=(listen,))
                    await nursery.start(self.host.run)
                    push = PushService(self.ledger, self.host, config)
                    await nursery.start(push.run)
                    task_status.started(push)
        finally:
            self.stopped.set()

    async def stop(self) -> None:
        assert self.scope is not None
        self.scope.cancel()
        await self.stopped.wait()

    @property
    def addr(self) -> str:
        assert self.host is not None
        return self.host.listen_addrs[0]


def nodes(tmp_path: Path) -> tuple[Scene, PNode, PNode]:
    s = scene()
    return s, PNode(tmp_path / "carrier", s.carrier, s.world), \
        PNode(tmp_path / "customs", s.customs, s.world)


def customs_config(carrier: PNode, flt: Filter | None = None) -> PushConfig:
    spec = PushProvider(carrier.party.pub, flt or Filter(jurisdictions={"DE"}), carrier.addr)
    return PushConfig(providers=(spec,), retry_max_s=0.5, tick_s=0.2)


async def until(check: Callable[[], bool], poll: float = 0.02) -> None:
    """Poll `check` (the store has no "alert logged" event to wait on across nodes)."""
    while True:
        if check():
            return
        await trio.sleep(poll)


def keys(node: PNode) -> list[bytes]:
    return [e["key"] for e in node.log()]


def de_keys(carrier: PNode) -> list[bytes]:
    """The carrier's alerts about the DE container, in its cursor order."""
    return [e["key"] for e in carrier.log() if e["subject"]["id"] == DE_CONTAINER]


# -- pure parts, on a real ledger -------------------------------------------------


def test_alert_context_of_each_subject_kind(tmp_path: Path) -> None:
    s = scene()
    node = PNode(tmp_path / "n", s.carrier, s.world)
    led = node.ledger

    def ctx(kind: str, ident: str) -> Context:
        return alert_context({"subject": {"kind": kind, "id": ident}}, led.facts, led.record)

    c = ctx("container", DE_CONTAINER)
    assert c.containers == {DE_CONTAINER}
    assert c.shipments == {"SHP-DE"}
    assert c.jurisdictions == {"DE", "CN"}  # declared in DE; origin CN, destination DE
    n = ctx("container", NL_CONTAINER)
    assert n.jurisdictions == {"CN", "NL"}
    assert n.shipments == {"SHP-NL"}
    [token] = tokens_of(ex.GTIN, ex.SERIALS[:1])
    t = ctx("token", token.hex())
    assert t.brands == {s.brand.pub}
    assert t.marks == {"ACME"}
    assert t.containers == {DE_CONTAINER}
    assert "DE" in t.jurisdictions
    p = ctx("shipment", "SHP-DE")
    assert p.containers == {DE_CONTAINER}
    assert p.jurisdictions == {"CN", "DE"}
    assert ctx("party", s.carrier.pub.hex()) == Context()
    assert ctx("token", "not hex") == Context()
    assert ctx("container", "UNKNOWN1") == Context(containers=frozenset({"UNKNOWN1"}))


def test_record_alert_logs_an_entry_once_and_tells_listeners(tmp_path: Path) -> None:
    s = scene()
    src = PNode(tmp_path / "src", s.carrier, s.world)
    dst = PNode(tmp_path / "dst", s.customs, s.world)
    src.ledger.submit([s.mismatch(DE_CONTAINER)], s.world.now)
    [entry] = src.log()
    seen: list[Any] = []
    dst.ledger.on_stored(lambda records, alerts: seen.append((records, alerts)))
    extra = WriteSet()
    Store.meta_put(extra, "test.marker", 1)
    assert dst.ledger.record_alert(entry | {"via": s.carrier.pub}, 123, extra=extra)
    [(cursor, got)] = dst.store.alerts()
    assert cursor == got["cursor"] == 1
    assert got["received"] == 123
    assert got["key"] == entry["key"]
    assert seen == [([], [got])]
    assert dst.store.meta("test.marker") == 1
    Store.meta_put(extra, "test.marker", 2)
    assert not dst.ledger.record_alert(entry, 124, extra=extra)  # same key: not again
    assert len(dst.log()) == 1
    assert len(seen) == 1
    assert dst.store.meta("test.marker") == 2  # `extra` written all the same
    # The customs node's own rules later derive the same finding: still one alert.
    dst.ledger.submit([r.wire for r in s.world.records], s.world.now)
    assert keys(dst) == [entry["key"]]


# -- over the network ---------------------------------------------------------------


async def test_alerts_are_pushed_at_once_and_filtered(tmp_path: Path) -> None:
    s, carrier, customs = nodes(tmp_path)
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            provider = await carrier.run(nursery, PushConfig(tick_s=0.2))
            sub = await customs.run(nursery, customs_config(carrier))
            await until(lambda: customs.party.pub in provider.subscriptions())
            carrier.ledger.submit([s.mismatch(DE_CONTAINER)], s.world.now)
            with trio.fail_after(2):
                await until(lambda: len(customs.log()) == 1)
            [got] = customs.log()
            assert got["key"] == de_keys(carrier)[0]
            assert got["via"] == carrier.party.pub
            assert got["rule"] == "seal_mismatch"
            for _ in range(3):  # NL only: not for a DE customs office
                carrier.ledger.submit([s.mismatch(NL_CONTAINER)], s.world.now)
            carrier.ledger.submit([s.mismatch(DE_CONTAINER)], s.world.now)
            with trio.fail_after(2):
                await until(lambda: len(customs.log()) == 2)
            await until(lambda: sub.cursor(carrier.party.pub) == 5)  # progress past the NL ones
            assert keys(customs) == de_keys(carrier)
            assert provider.subscriptions()[customs.party.pub]["cursor"] == 5
            assert sub.stats.received == 2
            assert sub.stats.duplicates == 0
            nursery.cancel_scope.cancel()


async def test_a_subscriber_that_was_offline_gets_every_missed_alert_once(tmp_path: Path
                                                                          ) -> None:
    s, carrier, customs = nodes(tmp_path)
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            provider = await carrier.run(nursery, PushConfig(tick_s=0.2))
            await customs.run(nursery, customs_config(carrier))
            carrier.ledger.submit([s.mismatch(DE_CONTAINER)], s.world.now)
            await until(lambda: len(customs.log()) == 1)
            await customs.stop()
            for i in range(12):  # raised while customs is away
                container = DE_CONTAINER if i % 3 else NL_CONTAINER
                carrier.ledger.submit([s.mismatch(container)], s.world.now)
            customs.reopen()  # a real restart: the database closed and opened again
            sub = await customs.run(nursery, customs_config(carrier))
            await until(lambda: len(customs.log()) == len(de_keys(carrier)))
            carrier.ledger.submit([s.mismatch(DE_CONTAINER)], s.world.now)
            await until(lambda: len(customs.log()) == len(de_keys(carrier)))
            await until(lambda: sub.cursor(carrier.party.pub) == carrier.store.last_alert_cursor())
            assert keys(customs) == de_keys(carrier)  # all of them, once, in order
            assert len(set(keys(customs))) == len(keys(customs)) == 10
            assert sub.stats.duplicates == 0  # resumed from its cursor, not from the start
            assert provider.stats.served == 2
            nursery.cancel_scope.cancel()


async def test_the_subscription_survives_a_provider_restart(tmp_path: Path) -> None:
    s, carrier, customs = nodes(tmp_path)
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            await carrier.run(nursery, PushConfig(tick_s=0.2))
            addr = carrier.addr
            port = addr.split("/tcp/")[1].split("/")[0]
            sub = await customs.run(nursery, customs_config(carrier))
            carrier.ledger.submit([s.mismatch(DE_CONTAINER)], s.world.now)
            await until(lambda: len(customs.log()) == 1)
            await carrier.stop()
            carrier.reopen()  # a new PushService (and host) over the same database
            carrier.ledger.submit([s.mismatch(DE_CONTAINER)], s.world.now)  # while down
            provider = await carrier.run(nursery, PushConfig(tick_s=0.2),
                                         listen=f"/ip4/127.0.0.1/tcp/{port}")
            assert customs.party.pub in provider.subscriptions()  # from the store
            carrier.ledger.submit([s.mismatch(NL_CONTAINER)], s.world.now)
            carrier.ledger.submit([s.mismatch(DE_CONTAINER)], s.world.now)
            await until(lambda: len(customs.log()) == 3)
            assert keys(customs) == de_keys(carrier)
            await until(lambda: sub.cursor(carrier.party.pub) == 4)
            await until(lambda: provider.subscriptions()[customs.party.pub]["cursor"] == 4)
            nursery.cancel_scope.cancel()


async def test_both_sides_restart(tmp_path: Path) -> None:
    s, carrier, customs = nodes(tmp_path)
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            await carrier.run(nursery, PushConfig(tick_s=0.2))
            port = carrier.addr.split("/tcp/")[1].split("/")[0]
            await customs.run(nursery, customs_config(carrier))
            carrier.ledger.submit([s.mismatch(DE_CONTAINER)], s.world.now)
            await until(lambda: len(customs.log()) == 1)
            await customs.stop()
            await carrier.stop()
            carrier.reopen()
            customs.reopen()
            for container in (DE_CONTAINER, NL_CONTAINER, DE_CONTAINER):
                carrier.ledger.submit([s.mismatch(container)], s.world.now)
            await carrier.run(nursery, PushConfig(tick_s=0.2),
                              listen=f"/ip4/127.0.0.1/tcp/{port}")
            sub = await customs.run(nursery, customs_config(carrier))
            await until(lambda: len(customs.log()) == 3)
            await until(lambda: sub.cursor(carrier.party.pub) == 4)
            assert keys(customs) == de_keys(carrier)
            assert sub.stats.duplicates == 0
            nursery.cancel_scope.cancel()


async def test_a_new_filter_starts_over_and_drops_what_it_has(tmp_path: Path) -> None:
    s, carrier, customs = nodes(tmp_path)
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            await carrier.run(nursery, PushConfig(tick_s=0.2))
            for container in (DE_CONTAINER, NL_CONTAINER, DE_CONTAINER):
                carrier.ledger.submit([s.mismatch(container)], s.world.now)
            await customs.run(nursery, customs_config(carrier))
            await until(lambda: len(customs.log()) == 2)
            await customs.stop()
            sub = await customs.run(nursery, customs_config(carrier, Filter()))  # now: all
            await until(lambda: len(customs.log()) == 3)
            await until(lambda: sub.cursor(carrier.party.pub) == 3)
            assert sorted(keys(customs)) == sorted(keys(carrier))
            assert sub.stats.duplicates == 2
            nursery.cancel_scope.cancel()


async def test_a_party_without_credential_is_refused(tmp_path: Path) -> None:
    s, carrier, customs = nodes(tmp_path)
    stranger = Party(s.world.key("stranger"), "customs", "Nobody")
    intruder = PNode(tmp_path / "stranger", stranger, s.world)
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            provider = await carrier.run(nursery, PushConfig(tick_s=0.2))
            await intruder.run(nursery, customs_config(carrier, Filter()))
            carrier.ledger.submit([s.mismatch(DE_CONTAINER)], s.world.now)
            await until(lambda: provider.stats.refused >= 2)
            assert intruder.log() == []
            assert provider.subscriptions() == {}
            nursery.cancel_scope.cancel()


async def test_a_subscriber_sending_garbage_is_penalised(tmp_path: Path) -> None:
    s, carrier, _ = nodes(tmp_path)
    penalties: list[tuple[bytes, int, str]] = []
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            host = Host(carrier.party.key)
            await nursery.start(host.run)
            provider = PushService(carrier.ledger, host, PushConfig(),
                                   penalise=lambda *p: penalties.append(p))
            await nursery.start(provider.run)
            rogue = Host(s.customs.key)  # credentialed, but speaks nonsense
            await nursery.start(rogue.run)
            await rogue.connect(host.listen_addrs[0])
            stream = await rogue.open_stream(carrier.party.pub, PUSH_PROTOCOL)
            await stream.write(b"\x00\x00\x00\x05hello")
            await until(lambda: bool(penalties))
            [(peer, points, reason)] = penalties
            assert peer == s.customs.pub
            assert points >= 10
            assert reason.startswith("push:")
            assert provider.stats.errors == 1
            assert provider.subscriptions() == {}
            nursery.cancel_scope.cancel()


@pytest.mark.parametrize("gossip", [False])
async def test_push_beside_the_network_service(tmp_path: Path, gossip: bool) -> None:
    """Wired through `PushService.over`: the subscription keeps up with the provider's log
    (records also reach customs by sync, so alerts may be derived there too: one each)."""
    from tests.netutil import TestNode

    s, carrier, customs = nodes(tmp_path)
    a = TestNode(carrier.party, carrier.ledger)
    b = TestNode(customs.party, customs.ledger)
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            net_a = await start(nursery, a, gossip=gossip)
            provider = PushService.over(net_a, PushConfig(tick_s=0.2))
            await nursery.start(provider.run)
            net_b = await start(nursery, b, gossip=gossip, bootstrap=net_a.addrs[:1])
            spec = PushProvider(carrier.party.pub, Filter(jurisdictions={"DE"}))  # no address
            sub = PushService.over(net_b, PushConfig(providers=(spec,), tick_s=0.2))
            await nursery.start(sub.run)
            for container in (DE_CONTAINER, NL_CONTAINER, DE_CONTAINER):
                carrier.ledger.submit([s.mismatch(container)], s.world.now)
            await until(lambda: sub.cursor(carrier.party.pub) == 3)
            await converged([a, b])
            assert set(de_keys(carrier)) <= set(keys(customs))
            assert len(set(keys(customs))) == len(keys(customs))
            assert F.container_key(DE_CONTAINER)  # the subjects are real objects
            nursery.cancel_scope.cancel()


# -- container and shipment filters, from the config to the wire ------------------


def test_push_config_takes_container_and_shipment_filters(tmp_path: Path) -> None:
    from node.config import Config
    from node.daemon import Node
    from node.errors import ConfigError
    from node.p2p import peer_id_of
    from tests.rpc_helpers import provision

    p = provision(tmp_path / "node")
    provider = f"/ip4/127.0.0.1/tcp/4001/p2p/{peer_id_of(p.carrier.pub)}"
    raw = {"push": {"providers": [provider], "containers": ["csqu 305438 3"],
                    "shipments": ["SHP-DE"], "min_severity": "high"}}
    cfg = Config.from_dict(raw)
    assert cfg.push.containers == ("CSQU3054383",)  # normalised as the log holds it
    assert cfg.push.shipments == ("SHP-DE",)
    assert Config.from_dict({"push": {**raw["push"], "containers": list(cfg.push.containers)}}) \
        == cfg
    for bad in ({"containers": ["CSQU3054384"]}, {"containers": [7]}, {"shipments": [""]},
                {"jurisdictions": ["nl"]}):
        with pytest.raises(ConfigError, match=r"\[push\]"):
            Config.from_dict({"push": bad})
    node = Node(p.data, config=cfg, handle_signals=False)
    try:
        [spec] = node.push.config.providers
        assert spec.peer == p.carrier.pub
        assert spec.filter == Filter(containers={"CSQU3054383"}, shipments={"SHP-DE"},
                                     min_severity="high")
    finally:
        node.close()


async def test_a_container_filter_pushes_that_container_only(tmp_path: Path) -> None:
    s, carrier, customs = nodes(tmp_path)
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            await carrier.run(nursery, PushConfig(tick_s=0.2))
            sub = await customs.run(nursery, customs_config(
                carrier, Filter(containers={NL_CONTAINER})))
            for container in (DE_CONTAINER, NL_CONTAINER, DE_CONTAINER, NL_CONTAINER):
                carrier.ledger.submit([s.mismatch(container)], s.world.now)
            await until(lambda: sub.cursor(carrier.party.pub) == 4)
            got = customs.log()
            assert [e["subject"]["id"] for e in got] == [NL_CONTAINER, NL_CONTAINER]
            assert keys(customs) == [e["key"] for e in carrier.log()
                                     if e["subject"]["id"] == NL_CONTAINER]
            nursery.cancel_scope.cancel()


async def test_an_altered_pushed_alert_cannot_shadow_the_real_one(tmp_path: Path) -> None:
    """A provider pushes a real finding with its severity and reason toned down (and the
    key recomputed, or it would not decode): the subscriber keeps it under that key, as
    reported by that peer, and still logs the real alert when it derives it."""
    from protocol.bodies import ObjectRef, alert_key
    from protocol.push import wire_entry

    s = scene()
    liar = PNode(tmp_path / "liar", s.carrier, s.world)
    customs = PNode(tmp_path / "customs", s.customs, s.world)
    wire = s.mismatch(DE_CONTAINER)
    [real] = [e for e in PNode(tmp_path / "scratch", s.brand, s.world).log()
              if e["rule"] == "seal_mismatch"]
    forged = {**wire_entry(real), "severity": "low", "reason": "seal checked, all fine"}
    forged["key"] = alert_key(forged["rule"], ObjectRef(**forged["subject"]),
                              forged["evidence"], severity="low", reason=forged["reason"])
    assert liar.ledger.record_alert(forged, s.world.now)
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            await liar.run(nursery, PushConfig(tick_s=0.2))
            await customs.run(nursery, customs_config(liar, Filter()))
            await until(lambda: bool(customs.log()))
            [got] = customs.log()
            assert got["key"] == forged["key"] != real["key"]
            assert got["via"] == s.carrier.pub  # who reported it
            customs.ledger.submit([wire], s.world.now)  # the record itself arrives
            by_key = {e["key"]: e for e in customs.log()}
            assert by_key[real["key"]]["severity"] == "critical"
            assert by_key[real["key"]]["reason"] == real["reason"]
            assert "via" not in by_key[real["key"]]
            nursery.cancel_scope.cancel()


async def test_a_signed_alert_is_pushed_with_its_record_and_checked(tmp_path: Path) -> None:
    """Customs' signed alert (a record) reaches the brand through the carrier's node: the
    brand logs it as signed by customs, reported by the carrier. A signed alert whose
    author holds no credential here is refused."""
    from crypto.keys import SigningKey
    from protocol.envelope import Record
    from protocol.errors import RoleError
    from protocol.push import wire_entry

    s, carrier, _customs = nodes(tmp_path)
    brand = PNode(tmp_path / "brand", s.brand, s.world)
    body = ex.alert(rule="item_not_minted", severity="critical",
                    subject={"kind": "container", "id": DE_CONTAINER},
                    reason="customs verdict RED: items not minted",
                    evidence=sorted(r.id for r in s.world.records[-2:]))
    s.world.tick()
    signed = s.world.sign(s.customs, "alert", body)
    assert [o.status for o in carrier.ledger.submit([signed.wire], s.world.now)] == ["stored"]
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            await carrier.run(nursery, PushConfig(tick_s=0.2))
            sub = await brand.run(nursery, customs_config(carrier, Filter()))
            await until(lambda: any(e["key"] == body["key"] for e in brand.log()))
            [got] = [e for e in brand.log() if e["key"] == body["key"]]
            assert got["record"] == signed.id
            assert got["author"] == s.customs.pub
            assert got["via"] == s.carrier.pub
            assert "signed" not in got
            # The same alert signed by a key with no credential in this network: refused.
            rogue = Record.sign(SigningKey.generate(), network=s.world.network, seq=1, prev=None,
                                ts=s.world.now, type="alert", body=body)
            entry = wire_entry({**got, "signed": rogue.wire})
            with pytest.raises(RoleError):
                sub._received(entry, s.carrier.pub)
            nursery.cancel_scope.cancel()
