"""The demo: a whole customs story played on a local testnet, through each node's RPC.

A brand mints 1,000 headphones and hands them to its manufacturer, who packs
them into two containers and seals them; a carrier takes custody; a forwarder
books the shipment and declares it to Dutch customs. Container A is honest.
Container B carries a counterfeit (an item nobody minted) and its seal is
swapped in transit. Customs, an observer node, verifies both the moment they
are declared and again as scans arrive: A is GREEN (fast track), B is RED
(inspect), and the alerts reach customs and the brand.

Ctrl-C (SIGINT), SIGTERM or SIGHUP at any point stops every node and exits 128 +
the signal number (130, 143, 129), the shell's convention (`interruptible`).
"""

from __future__ import annotations

import json
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import FrameType
from typing import Any, Final

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


class Interrupted(KeyboardInterrupt):
    """A signal stopped the demo. A KeyboardInterrupt, so that code which cleans up on
    Ctrl-C cleans up on SIGTERM too; `exit_code` is the shell's 128 + signal number."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


class Interruptible:
    """While installed (`interruptible()`), the first of `SIGNALS` raises `Interrupted`
    in the main thread, wherever it is; any later one is ignored, so the clean-up the first
    one set off runs to its end. Inside `hold()` (a clean-up that must not be cut short) a
    signal waits, and is raised when the block ends."""

    def __init__(self) -> None:
        self.fired: int | None = None
        self._held = False
        self._pending: int | None = None

    def handler(self, signum: int, frame: FrameType | None) -> None:
        if self.fired is not None:
            return
        if self._held:
            self._pending = self._pending or signum
            return
        self.fired = signum
        raise Interrupted(signum)

    @contextmanager
    def hold(self) -> Iterator[None]:
        self._held = True
        try:
            yield
        finally:
            self._held = False
        if self._pending is not None and self.fired is None:
            self.fired = self._pending
            raise Interrupted(self._pending)


# Ctrl-C, a stop request, and the terminal closing: the nodes are in process groups of
# their own (`Testnet.start`), so none of these reaches them but through the demo.
SIGNALS: Final = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@contextmanager
def interruptible() -> Iterator[Interruptible]:
    """Install an `Interruptible` for `SIGNALS`; the previous handlers come back on exit."""
    guard = Interruptible()
    old = {s: signal.signal(s, guard.handler) for s in SIGNALS}
    try:
        yield guard
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def wait_for_interrupt() -> None:
    """Sleep until a signal handler raises (inside `interruptible`: `Interrupted`)."""
    while True:
        time.sleep(3600)


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
    """What the story produced: customs' verdicts, the alerts followed live at customs
    and at the brand (role -> alerts), and any alert about the honest container or its
    goods at any node (`node: rule subject` lines; there should be none)."""

    verdicts: dict[str, dict[str, Any]] = field(default_factory=dict)
    alerts: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    honest_alerts: list[str] = field(default_factory=list)

    def problems(self) -> list[str]:
        """Every way the outcome differs from the story's; empty when as expected."""
        out: list[str] = []
        a = self.verdicts.get(HONEST, {}).get("verdict")
        b = self.verdicts.get(TAMPERED, {})
        if a != "GREEN":
            out.append(f"{HONEST} is {a}, not GREEN")
        if b.get("verdict") != "RED":
            out.append(f"{TAMPERED} is {b.get('verdict')}, not RED")
        codes = {r["code"] for r in b.get("reasons", ())}
        out += [f"{TAMPERED}'s verdict lacks {c}" for c in ("seal.mismatch", "item.not_minted")
                if c not in codes]
        for role in ("customs", "brand"):
            rules = {x["rule"] for x in self.alerts.get(role, ())
                     if x["subject"]["id"] == TAMPERED}
            out += [f"no {rule} alert about {TAMPERED} at {role}"
                    for rule in ("item_not_minted", "seal_mismatch") if rule not in rules]
        out += [f"an alert about the honest container: {x}" for x in self.honest_alerts]
        return out

    @property
    def as_expected(self) -> bool:
        return not self.problems()


def alert_line(role: str, a: dict[str, Any]) -> str:
    """One alert as a person reads it: time, where, severity, rule, subject, reason."""
    ms = a.get("received") or a.get("ts") or 0
    when = time.strftime("%H:%M:%S", time.localtime(ms / 1000))
    subject = a["subject"]
    ident = subject["id"] if len(subject["id"]) <= 20 else subject["id"][:16] + "…"
    return (f"   ! {when} at {role:8} {a['severity']:8} {a['rule']:18} {subject['kind']}"
            f" {ident}: {a['reason']}")


class AlertFollower:
    """Follows one node's `/v1/alerts/stream` (SSE) in a thread and says each alert the
    moment it arrives; reconnects with `Last-Event-ID` if the stream breaks."""

    def __init__(self, member: Member, role: str, say: Callable[[str], None]) -> None:
        info = member.describe()
        self.role, self.say = role, say
        self.url, self.token = info["rpc_url"], info["read_token"]
        self.alerts: list[dict[str, Any]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"follow-{role}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop following: at once if the stream ends (its node stops), else at the next
        line (a keepalive comes every 15 s); the thread is a daemon, so never waited for."""
        self._stop.set()

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)

    def _run(self) -> None:
        last = "0"
        while not self._stop.is_set():
            try:
                with httpx.Client(base_url=self.url, timeout=httpx.Timeout(5.0, read=60.0),
                                  headers={"Authorization": f"Bearer {self.token}"}) as c, \
                        c.stream("GET", "/v1/alerts/stream",
                                 headers={"Last-Event-ID": last}) as r:
                    r.raise_for_status()
                    event: dict[str, str] = {}
                    for line in r.iter_lines():
                        if self._stop.is_set():
                            return
                        if line:
                            if not line.startswith(":"):
                                name, _, value = line.partition(":")
                                event[name] = value[1:] if value.startswith(" ") else value
                            continue
                        if event.get("event") == "alert" and "data" in event:
                            last = event.get("id", last)
                            alert = json.loads(event["data"])
                            self.alerts.append(alert)
                            self.say(alert_line(self.role, alert))
                        event = {}
            except (httpx.HTTPError, ValueError):
                self._stop.wait(0.5)


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


def locked(say: Callable[[str], None]) -> Callable[[str], None]:
    """`say` for several threads (the story and the followers): one whole line at a time."""
    lock = threading.Lock()

    def said(line: str) -> None:
        with lock:
            say(line)

    return said


def follow(net: Testnet, say: Callable[[str], None] = print) -> dict[str, AlertFollower]:
    """Start following the alert streams of customs and the brand (stop them when done);
    `say` is called from their threads (see `locked`)."""
    by_role: dict[str, Member] = {}
    for m in net.members:
        by_role.setdefault(m.role, m)
    followers = {role: AlertFollower(by_role[role], role, say) for role in ("customs", "brand")}
    for f in followers.values():
        f.start()
    return followers


def all_alerts(node: Rpc) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    since = 0
    while True:
        page = node.get("/v1/alerts", since=since, limit=1000)
        out += page["alerts"]
        if not page["alerts"]:
            return out
        since = page["next"]


def play(net: Testnet, followers: dict[str, AlertFollower],
         say: Callable[[str], None] = print) -> Outcome:
    """Play the story through the nodes' RPC; `followers` (see `follow`) print the alerts
    of customs and the brand as they arrive, and the outcome takes them from there."""
    by_role: dict[str, Member] = {}
    for m in net.members:
        by_role.setdefault(m.role, m)
    brand, maker, carrier, fwd, customs = (Rpc(by_role[r]) for r in
                                           ("brand", "manufacturer", "carrier", "forwarder",
                                            "customs"))
    say("\nAlerts are printed the moment they reach customs or the brand, marked !")
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

    honest = {HONEST, *(t.hex() for t in tokens[:500])}
    everyone = [Rpc(m) for m in net.members]

    def alerts_in() -> bool:
        for role, f in followers.items():
            out.alerts[role] = list(f.alerts)
        out.honest_alerts = [f"{node.name}: {a['rule']} {a['subject']['kind']}"
                             f" {a['subject']['id']}" for node in everyone
                             for a in all_alerts(node) if a["subject"]["id"] in honest]
        return out.as_expected

    try:
        wait_for("the alerts", alerts_in, timeout=20)
    except DemoError:
        pass
    say(f"\n8. Alerts, each printed above (!) the moment it reached the node:"
        f" {len(out.alerts.get('customs', ()))} at customs,"
        f" {len(out.alerts.get('brand', ()))} at the brand;"
        f" {len(out.honest_alerts)} about {HONEST} anywhere")
    return out
