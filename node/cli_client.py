"""Client commands: talk to the local node's RPC (URL from DATA/rpc.addr, token from DATA/rpc.tokens).

Every command takes `--data DIR` and `--json` (print the node's JSON answer
instead of a table). Exit codes as in `node.cli`: 0 done, 1 the node rejected
the request (one line says why), 2 usage, 3 the node is unreachable.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from node.cli import EXIT_OK, EXIT_PROBLEM, EXIT_UNREACHABLE
from node.errors import ConfigError

BATCH = 1000  # the RPC's limit of records per batch request
SERIALS_PER_MINT = 1000
MAX_REQUEST = 900_000  # bytes of JSON per batch request, under the default body limit
RECONNECT_MIN, RECONNECT_MAX = 0.1, 2.0  # seconds between tries to reach the node again
FOLLOW_READ_TIMEOUT = 60.0  # the node sends a heartbeat every 15 s by default


def len1(entry: dict[str, Any]) -> int:
    return 1


class Rejected(Exception):
    def __init__(self, status: int, error: dict[str, Any]) -> None:
        at = f" at {error['field']}" if error.get("field") else ""
        super().__init__(f"rejected ({status} {error.get('code')}{at}): {error.get('message')}")


class Unreachable(Exception):
    pass


class Client:
    """A small synchronous client of the node's RPC."""

    def __init__(self, data: Path, *, write: bool = True) -> None:
        import httpx

        from node.datadir import DataDir

        d = self._dir = DataDir(data)
        if not d.key_file.exists():
            raise ConfigError(f"{data} is not a node directory (no node.key)")
        try:
            self.url = d.rpc_url()
        except ConfigError as exc:
            raise Unreachable(f"{d.addr_file} is missing: is the node running "
                              f"(`sealchain run --data {data}`)?") from exc
        tokens = d.tokens()
        token = tokens.write if write else tokens.read
        self._httpx = httpx
        self.http = httpx.Client(base_url=self.url, timeout=60.0,
                                 headers={"Authorization": f"Bearer {token}"})

    def refresh(self) -> None:
        """Read the node's address again (a restarted node may listen on another port)."""
        try:
            self.url = self._dir.rpc_url()
        except ConfigError as exc:
            raise Unreachable(f"{self._dir.addr_file} is missing") from exc
        self.http.base_url = self.url

    def request(self, method: str, path: str, **kw: Any) -> Any:
        try:
            r = self.http.request(method, path, **kw)
        except self._httpx.TransportError as exc:
            raise Unreachable(f"node unreachable at {self.url}: {exc}") from exc
        try:
            body = r.json()
        except ValueError:
            body = {"error": {"code": "http", "field": None, "message": r.text[:200]}}
        if r.status_code >= 400:
            raise Rejected(r.status_code, body.get("error", {}) if isinstance(body, dict) else {})
        return body

    def get(self, path: str, **params: Any) -> Any:
        return self.request("GET", path, params={k: v for k, v in params.items() if v is not None})

    def append(self, type_name: str, body: dict[str, Any]) -> Any:
        return self.request("POST", "/v1/records", json={"type": type_name, "body": body})

    def append_many(self, entries: Sequence[dict[str, Any]], progress: Progress | None = None,
                    *, per_request: int = BATCH, weight: Callable[[dict[str, Any]], int] = len1
                    ) -> list[Any]:
        """Post entries in batch requests (each all or nothing), sized under the body limit.

        `progress` advances by `weight(entry)` per entry (e.g. serials per mint record).
        """
        acks: list[Any] = []
        for chunk in _batches(entries, per_request):
            acks += self.request("POST", "/v1/records/batch", json={"records": chunk})["records"]
            if progress is not None:
                progress.add(sum(weight(e) for e in chunk))
        return acks


def _batches(entries: Sequence[dict[str, Any]], per_request: int
             ) -> Iterator[list[dict[str, Any]]]:
    chunk: list[dict[str, Any]] = []
    size = 0
    for e in entries:
        n = len(json.dumps(e))
        if chunk and (len(chunk) >= per_request or size + n > MAX_REQUEST):
            yield chunk
            chunk, size = [], 0
        chunk.append(e)
        size += n
    if chunk:
        yield chunk


class Progress:
    """A progress line on stderr (redrawn on a terminal, a line per 10% otherwise)."""

    def __init__(self, total: int, label: str, unit: str = "") -> None:
        self.total, self.label, self.unit = total, label, unit
        self.done = 0
        self.tty = sys.stderr.isatty()
        self.t0 = time.monotonic()
        self._shown = -1

    def add(self, n: int) -> None:
        self.done += n
        pct = 100 * self.done // max(1, self.total)
        if self.tty:
            bar = "#" * (pct // 4)
            print(f"\r{self.label} [{bar:<25}] {self.done}/{self.total}{self.unit}", end="",
                  file=sys.stderr, flush=True)
            if self.done >= self.total:
                print(file=sys.stderr)
        elif pct // 10 != self._shown // 10 or self.done >= self.total:
            self._shown = pct
            print(f"{self.label}: {self.done}/{self.total}{self.unit} ({pct}%)", file=sys.stderr,
                  flush=True)


# -- output ---------------------------------------------------------------------------------


def when(ms: int | None) -> str:
    if ms is None:
        return "-"
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def who(party: dict[str, Any] | None) -> str:
    if not party:
        return "-"
    did = str(party.get("did", ""))
    short = did[:20] + "…" if len(did) > 21 else did
    return f"{party['org']} ({short})" if party.get("org") else short


def table(rows: Sequence[Sequence[Any]], headers: Sequence[str]) -> str:
    cells = [[str(h) for h in headers]] + [["-" if c is None else str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def fields(pairs: Sequence[tuple[str, Any]]) -> str:
    width = max(len(k) for k, _ in pairs)
    return "\n".join(f"{k.ljust(width)}  {'-' if v is None else v}" for k, v in pairs)


def emit(args: argparse.Namespace, value: Any, render: Callable[[Any], str]) -> int:
    print(json.dumps(value, indent=2) if args.json else render(value))
    return EXIT_OK


def ack_text(ack: dict[str, Any]) -> str:
    return f"{ack['type']} appended: seq {ack['seq']}, id {ack['id']}"


# -- helpers ---------------------------------------------------------------------------------


def _csv(v: str) -> list[str]:
    return sorted({x.strip() for x in v.split(",") if x.strip()})


def _object(args: argparse.Namespace) -> dict[str, str]:
    for kind in ("container", "token", "shipment"):
        v = getattr(args, kind, None)
        if v:
            return {"kind": kind, "id": _token_hex(v) if kind == "token" else v}
    raise ConfigError("name the object: --container, --token or --shipment")


def _token_hex(v: str) -> str:
    """A token id from hex, GTIN/SERIAL, or a GS1 Digital Link URI with a serial."""
    from protocol.bodies import token_id

    if v.startswith(("http://", "https://")):
        from protocol.errors import ValidationError
        from protocol.identifiers import parse_digital_link

        try:
            gtin, serial, _lot = parse_digital_link(v)
        except ValidationError as exc:
            raise ConfigError(f"not a GS1 Digital Link: {exc}") from exc
        if serial is None:
            raise ConfigError("the Digital Link names no serial (21): it is not one token")
        return token_id(gtin, serial).hex()
    if "/" in v:
        gtin, _, serial = v.partition("/")
        return token_id(gtin, serial).hex()
    return v.lower()


def _place(country: str, locode: str | None) -> dict[str, Any]:
    place: dict[str, Any] = {"country": country}
    if locode:
        place["locode"] = locode
    return place


def _serials(args: argparse.Namespace) -> list[str]:
    out: set[str] = set()
    if args.serials:
        out.update(_csv(args.serials))
    if args.serials_file:
        out.update(x.strip() for x in Path(args.serials_file).read_text().splitlines() if x.strip())
    if args.count:
        out.update(f"{args.prefix}{i:0{args.digits}d}" for i in range(args.start,
                                                                       args.start + args.count))
    if not out:
        raise ConfigError("give serials: --serials, --serials-file or --count")
    return sorted(out)


def _goods(raw: Sequence[str]) -> list[dict[str, Any]]:
    try:
        return [json.loads(g) for g in raw]
    except ValueError as exc:
        raise ConfigError(f"--goods is not JSON: {exc}") from exc


# -- commands --------------------------------------------------------------------------------


def cmd_status(args: argparse.Namespace, c: Client) -> int:
    s = c.get("/v1/status")
    return emit(args, s, lambda s: fields([
        ("did", s["did"]), ("peer id", s["peer_id"]), ("role", ", ".join(s["roles"]) or s["role"]),
        ("credential", s["credential"]), ("network", f"{s['network']} {s['network_id'][:16]}…"),
        ("records", s["record_count"]), ("authors", s["author_count"]),
        ("state root", s["state_root"]), ("peers", len(s["connected_peers"])),
        ("sync lag", s["sync_lag"]), ("pending", s["pending"]),
        ("disputes", s.get("open_disputes")),  # open now; "-" from a node older than that
        ("version", s["version"]), ("rpc", c.url)]))


def cmd_mint(args: argparse.Namespace, c: Client) -> int:
    serials = _serials(args)
    entries = []
    for i in range(0, len(serials), SERIALS_PER_MINT):
        body: dict[str, Any] = {"gtin": args.gtin, "lot": args.lot,
                                "serials": serials[i:i + SERIALS_PER_MINT], "mark": args.mark,
                                "markets": _csv(args.markets), "facility": args.facility}
        if args.expiry is not None:
            body["expiry"] = args.expiry
        entries.append({"type": "product.mint", "body": body})
    # One batch request per 1,000 serials, so a large mint shows its progress.
    progress = Progress(len(serials), "minting", " serials") if len(entries) > 1 else None
    acks = c.append_many(entries, progress, per_request=1,
                         weight=lambda e: len(e["body"]["serials"]))
    out = {"gtin": args.gtin, "lot": args.lot, "serials": len(serials), "records": acks}
    return emit(args, out, lambda o: f"minted {o['serials']} serials of {o['gtin']} lot "
                f"{o['lot']} in {len(acks)} record(s) (seq {acks[0]['seq']}..{acks[-1]['seq']})")


def cmd_pack(args: argparse.Namespace, c: Client) -> int:
    from crypto import merkle
    from protocol.bodies import MANIFEST_CHUNK

    raw: list[str] = []
    if args.tokens:
        raw += [x.strip() for x in args.tokens.split(",") if x.strip()]
    if args.items_file:
        raw += [x.strip() for x in Path(args.items_file).read_text().splitlines() if x.strip()]
    if not raw:
        raise ConfigError("give the items: --tokens or --items-file (token ids or GTIN/SERIAL)")
    try:
        items = sorted({bytes.fromhex(_token_hex(x)) for x in raw})
    except ValueError as exc:
        raise ConfigError(f"not a token id or GTIN/SERIAL: {exc}") from exc
    root = merkle.root(items).hex()
    chunks = -(-len(items) // MANIFEST_CHUNK)
    entries = []
    for i in range(chunks):
        body: dict[str, Any] = {
            "container": args.container, "root": root, "count": len(items), "chunk": i,
            "chunks": chunks, "weight_g": args.weight_g,
            "items": [t.hex() for t in items[i * MANIFEST_CHUNK:(i + 1) * MANIFEST_CHUNK]]}
        if args.shipment:
            body["shipment"] = args.shipment
        entries.append({"type": "container.pack", "body": body})
    progress = Progress(len(entries), "packing", " chunks") if len(entries) > 1 else None
    acks = c.append_many(entries, progress)
    out = {"container": args.container, "root": root, "count": len(items), "records": acks}
    return emit(args, out, lambda o: f"packed {o['count']} items into {o['container']} "
                f"(root {o['root']}, {len(acks)} chunk record(s))")


def _append(args: argparse.Namespace, c: Client, type_name: str, body: dict[str, Any]) -> int:
    return emit(args, c.append(type_name, body), ack_text)


def cmd_seal(args: argparse.Namespace, c: Client) -> int:
    return _append(args, c, "container.seal", {"container": args.container, "seal": args.seal,
                                               "seal_class": args.seal_class})


def cmd_handover(args: argparse.Namespace, c: Client) -> int:
    body: dict[str, Any] = {"object": _object(args), "to": args.to}
    if args.head:
        body["head"] = args.head
    return _append(args, c, "handover.offer", body)


def cmd_accept(args: argparse.Namespace, c: Client) -> int:
    offer = c.get(f"/v1/records/{args.offer}")
    if offer["type"] != "handover.offer":
        raise Rejected(400, {"code": "offer", "field": "offer",
                             "message": f"record {args.offer} is a {offer['type']}"})
    return _append(args, c, "handover.accept", {"offer": args.offer,
                                                "object": offer["body"]["object"]})


def cmd_scan(args: argparse.Namespace, c: Client) -> int:
    body: dict[str, Any] = {"object": _object(args), "place": _place(args.country, args.locode),
                            "event": args.event, "at": args.at or int(time.time() * 1000)}
    if args.seal:
        body["seal"] = args.seal
    return _append(args, c, "scan", body)


def cmd_sensor(args: argparse.Namespace, c: Client) -> int:
    body: dict[str, Any] = {"container": args.container, "kind": args.kind,
                            "at": args.at or int(time.time() * 1000)}
    if args.value is not None:
        body["value"] = args.value
    if args.open is not None:
        body["open"] = args.open
    if args.lat_udeg is not None:
        body["lat_udeg"], body["lon_udeg"] = args.lat_udeg, args.lon_udeg
    return _append(args, c, "sensor", body)


def cmd_ship(args: argparse.Namespace, c: Client) -> int:
    if args.status:
        return _append(args, c, "shipment.update", {"shipment": args.shipment,
                                                    "status": args.status})
    missing = [n for n in ("origin", "destination", "consignor", "consignee", "containers")
               if not getattr(args, n)]
    if missing or not args.goods:
        raise ConfigError(f"a new shipment needs --{(missing or ['goods'])[0]}")
    o_country, _, o_locode = args.origin.partition(":")
    d_country, _, d_locode = args.destination.partition(":")
    body = {"shipment": args.shipment, "origin": _place(o_country, o_locode or None),
            "destination": _place(d_country, d_locode or None),
            "route": [x.strip() for x in (args.route or "").split(",") if x.strip()],
            "consignor": args.consignor, "consignee": args.consignee,
            "containers": _csv(args.containers), "goods": _goods(args.goods)}
    return _append(args, c, "shipment.create", body)


def cmd_declare(args: argparse.Namespace, c: Client) -> int:
    return _append(args, c, "customs.declaration", {
        "shipment": args.shipment, "jurisdiction": args.jurisdiction,
        "procedure": args.procedure, "declarant": args.declarant,
        "containers": _csv(args.containers), "goods": _goods(args.goods)})


def cmd_customs(args: argparse.Namespace, c: Client) -> int:
    body: dict[str, Any] = {"subject": _object(args), "action": args.action}
    if args.result:
        body["result"] = args.result
    if args.note:
        body["note"] = args.note
    return _append(args, c, "customs.action", body)


def cmd_recall(args: argparse.Namespace, c: Client) -> int:
    body: dict[str, Any] = {"gtin": args.gtin, "reason": args.reason}
    if args.lot:
        body["lot"] = args.lot
    if args.serials:
        body["serials"] = _csv(args.serials)
    return _append(args, c, "recall", body)


def cmd_submit(args: argparse.Namespace, c: Client) -> int:
    text = sys.stdin.read() if args.file == "-" else Path(args.file).read_text()
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise ConfigError(f"{args.file}: not JSON: {exc}") from exc
    if isinstance(value, list):
        acks = c.append_many(value, Progress(len(value), "submitting", " records")
                             if len(value) > BATCH else None)
        return emit(args, {"records": acks}, lambda o: "\n".join(ack_text(a) for a in acks))
    return emit(args, c.request("POST", "/v1/records", json=value), ack_text)


def cmd_history(args: argparse.Namespace, c: Client) -> int:
    v = c.get(f"/v1/tokens/{_token_hex(args.token)}")

    def render(v: dict[str, Any]) -> str:
        m = v.get("mint") or {}
        out = [fields([
            ("token", v["token"]), ("status", v["status"]), ("holder", who(v["holder"])),
            ("location", _where(v["location"])), ("brand", who(m.get("brand"))),
            ("mark", m.get("mark")), ("gtin / serial", f"{m.get('gtin')} / {m.get('serial')}"),
            ("lot", m.get("lot")), ("facility", m.get("facility")),
            ("expiry", when(m.get("expiry"))), ("markets", ", ".join(m.get("markets") or [])),
            ("expired", v["expired"]), ("recalls", len(v["recalls"]))])]
        cust = v.get("custody") or {"steps": []}
        rows = [[when(s.get("ts")), s["kind"], who(s["from"]), who(s["to"]),
                 s.get("container") or s.get("accept", "")[:16]] for s in cust["steps"]]
        out += ["", "custody", table(rows, ["when", "kind", "from", "to", "via"])]
        rows = [[when(s["at"]), s["event"], f"{s['object']['kind']} {s['object']['id'][:16]}",
                 _place_text(s["place"]), who(s["by"])] for s in v["scans"]]
        out += ["", "scans", table(rows, ["when", "event", "object", "place", "by"])]
        rows = [[x["container"], "yes" if x["current"] else "no", x["seal_status"],
                 who(x["holder"])] for x in v["containers"]]
        out += ["", "containers", table(rows, ["container", "inside", "seal", "holder"])]
        rows = [[when(s["at"]), s["container"], s["kind"],
                 s.get("value", s.get("open", ""))] for s in v["sensors"]]
        out += ["", "sensor readings", table(rows, ["when", "container", "kind", "value"])]
        rows = [[when(x["ts"]), x["subject"][:16], x["action"], x["result"], who(x["by"])]
                for x in v["customs"]]
        out += ["", "customs", table(rows, ["when", "subject", "action", "result", "by"])]
        return "\n".join(out)

    return emit(args, v, render)


def _place_text(p: dict[str, Any]) -> str:
    return " ".join(str(p[k]) for k in ("country", "locode", "name") if p.get(k))


def _where(loc: dict[str, Any] | None) -> str:
    return "-" if not loc else f"{_place_text(loc['place'])} ({loc['event']}, {when(loc['at'])})"


def cmd_container(args: argparse.Namespace, c: Client) -> int:
    v = c.get(f"/v1/containers/{args.id}")

    def render(v: dict[str, Any]) -> str:
        m = v.get("manifest") or {}
        cust = v.get("custody") or {}
        out = [fields([
            ("container", v["container"]), ("holder", who(cust.get("holder"))),
            ("disputed", cust.get("disputed")),
            ("manifest", f"{m.get('count')} items, root {m.get('root')}" if m else None),
            ("complete", m.get("complete")),
            ("seal", f"{v['seal']['current'] or '-'} ({v['seal']['status']})"),
            ("customs", v["customs"]["status"]), ("shipments", ", ".join(v["shipments"])),
            ("location", _where(v["location"]))])]
        rows = [[when(s["ts"]), s["seal"], who(s["by"])] for s in v["seal"]["history"]]
        out += ["", "seals", table(rows, ["when", "seal", "by"])]
        rows = [[when(s.get("ts")), who(s["from"]), who(s["to"])] for s in cust.get("steps", [])]
        out += ["", "custody", table(rows, ["when", "from", "to"])]
        return "\n".join(out)

    return emit(args, v, render)


VERDICTS = {"GREEN": "fast track", "AMBER": "documentary check", "RED": "inspect"}


def verdict_text(v: dict[str, Any]) -> str:
    """A customs verdict as people read it: the verdict, then every reason with its evidence."""
    out = [fields([
        ("container", v["container"]),
        ("verdict", f"{v['verdict']} ({VERDICTS.get(v['verdict'], '?')})"),
        ("items", v["items"]), ("manifest root", v.get("root")),
        ("destination", v.get("destination")), ("brands", len(v.get("brands") or []))])]
    if v["reasons"]:
        out += ["", "reasons"]
        for r in v["reasons"]:
            alert = f", alert {r['alert']}" if r.get("alert") else ""
            n = len(r.get("evidence") or [])
            evidence = f" ({n} evidence record{'s' if n != 1 else ''}{alert})" if n or alert else ""
            out.append(f"  - {r['level']:5}  {r['message']} [{r['code']}]{evidence}")
            out += [f"             {e}" for e in (r.get("evidence") or [])[:3]]
            if n > 3:
                out.append(f"             … and {n - 3} more")
    else:
        out += ["", "no findings: every check passed"]
    return "\n".join(out)


def cmd_verify(args: argparse.Namespace, c: Client) -> int:
    """Exit 0 for GREEN; 1 for AMBER or RED (the goods need a look)."""
    v = c.get(f"/v1/containers/{args.container}/verify")
    emit(args, v, verdict_text)
    return EXIT_OK if v.get("verdict") == "GREEN" else EXIT_PROBLEM


def cmd_alerts(args: argparse.Namespace, c: Client) -> int:
    q = {"severity": args.severity, "subject": args.subject, "jurisdiction": args.jurisdiction,
         "brand": args.brand, "mark": args.mark, "container": args.container,
         "shipment": args.shipment}
    if args.follow:
        return _follow(args, c, q)
    page = c.get("/v1/alerts", since=args.since, limit=args.limit, **q)
    rows = [[a["cursor"], when(a["ts"]), a["severity"], a["rule"],
             f"{a['subject']['kind']} {a['subject']['id'][:20]}", a["reason"]]
            for a in page["alerts"]]
    return emit(args, page, lambda p: table(rows, ["#", "when", "severity", "rule", "subject",
                                                   "reason"]))


def cmd_disputes(args: argparse.Namespace, c: Client) -> int:
    """Every object disputed now, following the pages to the end."""
    disputes: list[dict[str, Any]] = []
    after = None
    while True:
        page = c.get("/v1/disputes", after=after, limit=1000)
        disputes += page["disputes"]
        after = page["next"]
        if after is None:
            break
    rows = [[d["kind"], who(d["party"]) if d.get("party") else d["id"],
             ", ".join(d["rules"]), when(d["since"]),
             " ".join(e[:16] for e in d["evidence"][:4]) + (" …" if len(d["evidence"]) > 4
                                                             else "")]
            for d in disputes]
    return emit(args, {"disputes": disputes},
                lambda _: table(rows, ["kind", "id", "rules", "since", "evidence"])
                + f"\n{len(disputes)} disputed")


def _follow(args: argparse.Namespace, c: Client, q: dict[str, Any]) -> int:
    """Print alerts as they come, until interrupted (exit 130 from `node.cli`).

    When the stream ends or the connection drops (the node restarting), try again
    with a growing pause, reading the node's address afresh, and resume after the
    last alert printed (Last-Event-ID): no alert is lost or printed twice. A node
    that cannot be reached at the first try is an error (exit 3).
    """
    params = {k: v for k, v in q.items() if v is not None}
    last: int | None = args.since
    delay, lost, connected = RECONNECT_MIN, False, False
    timeout = c._httpx.Timeout(10.0, read=FOLLOW_READ_TIMEOUT)
    while True:
        headers = {}
        if last is not None:
            params["since"] = last
            headers["Last-Event-ID"] = str(last)
        try:
            c.refresh()
            with c.http.stream("GET", "/v1/alerts/stream", params=params, headers=headers,
                               timeout=timeout) as r:
                if r.status_code >= 400 and r.status_code != 503:  # 503: busy or stopping
                    r.read()
                    raise Rejected(r.status_code, r.json().get("error", {}))
                if r.status_code == 200:
                    if lost:
                        print(f"sealchain: reconnected to {c.url}", file=sys.stderr, flush=True)
                    delay, lost, connected = RECONNECT_MIN, False, True
                    for line in r.iter_lines():
                        if not line.startswith("data:"):
                            continue
                        a = json.loads(line[5:])
                        if last is not None and a["cursor"] <= last:
                            continue
                        _print_alert(args, a)
                        last = a["cursor"]
        except (c._httpx.TransportError, Unreachable) as exc:
            if not connected:  # never reached: a wrong address, not a restart
                raise Unreachable(f"node unreachable at {c.url}: {exc}") from exc
        if not lost:
            print(f"sealchain: lost the node at {c.url}: reconnecting", file=sys.stderr,
                  flush=True)
            lost = True
        time.sleep(delay)
        delay = min(delay * 2, RECONNECT_MAX)


def _print_alert(args: argparse.Namespace, a: dict[str, Any]) -> None:
    if args.json:
        print(json.dumps(a), flush=True)
    else:
        print(f"#{a['cursor']} {when(a['ts'])} {a['severity']} {a['rule']} "
              f"{a['subject']['kind']} {a['subject']['id']}: {a['reason']}", flush=True)


# -- registration ----------------------------------------------------------------------------


def _wrap(fn: Callable[[argparse.Namespace, Client], int], *, write: bool
          ) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        try:
            return fn(args, Client(args.data, write=write))
        except Unreachable as exc:
            print(f"sealchain: {exc}", file=sys.stderr)
            return EXIT_UNREACHABLE
        except Rejected as exc:
            print(f"sealchain: {exc}", file=sys.stderr)
            return EXIT_PROBLEM

    return run


def register(sub: Any) -> None:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--data", required=True, type=Path, help="node data directory")
    common.add_argument("--json", action="store_true", help="print the node's JSON answer")

    def cmd(name: str, fn: Callable[[argparse.Namespace, Client], int], text: str, *,
            write: bool = True) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = sub.add_parser(name, parents=[common], help=text,
                                                    description=text)
        p.set_defaults(func=_wrap(fn, write=write))
        return p

    def obj(p: argparse.ArgumentParser) -> None:
        g = p.add_mutually_exclusive_group(required=True)
        g.add_argument("--container", help="ISO 6346 container number")
        g.add_argument("--token", help="token id (hex) or GTIN/SERIAL")
        g.add_argument("--shipment", help="shipment id")

    cmd("status", cmd_status, "show the node's status", write=False)

    p = cmd("mint", cmd_mint, "mint product tokens (1000 serials per record, batched)")
    p.add_argument("--gtin", required=True)
    p.add_argument("--lot", required=True)
    p.add_argument("--mark", required=True, help="trademark")
    p.add_argument("--markets", required=True, help="authorised markets, e.g. NL,DE")
    p.add_argument("--facility", required=True, help="GLN of the production facility")
    p.add_argument("--expiry", type=int, default=None, help="expiry, ms since the epoch")
    p.add_argument("--serials", help="comma-separated serials")
    p.add_argument("--serials-file", help="a file of serials, one per line")
    p.add_argument("--count", type=int, default=0, help="generate COUNT serials PREFIX000001…")
    p.add_argument("--prefix", default="SN", help="prefix of generated serials (default SN)")
    p.add_argument("--start", type=int, default=1, help="first generated number (default 1)")
    p.add_argument("--digits", type=int, default=6, help="digits of generated numbers")

    p = cmd("pack", cmd_pack, "pack items into a container (a Merkle-committed manifest)")
    p.add_argument("--container", required=True)
    p.add_argument("--tokens", help="comma-separated token ids or GTIN/SERIAL")
    p.add_argument("--items-file", help="a file of token ids or GTIN/SERIAL, one per line")
    p.add_argument("--weight-g", type=int, required=True, help="declared goods weight, grams")
    p.add_argument("--shipment", help="shipment id")

    p = cmd("seal", cmd_seal, "record the seal put on a container")
    p.add_argument("--container", required=True)
    p.add_argument("--seal", required=True, help="ISO 17712 seal number")
    p.add_argument("--seal-class", default="H", help="seal class (default H)")

    p = cmd("handover", cmd_handover, "offer an object this node holds to another participant")
    obj(p)
    p.add_argument("--to", required=True, help="did:key of the recipient")
    p.add_argument("--head", help="custody head (default: the node fills it in)")

    p = cmd("accept", cmd_accept, "accept a hand-over offered to this node")
    p.add_argument("--offer", required=True, help="the offer's record id")

    p = cmd("scan", cmd_scan, "record that an object was seen somewhere")
    obj(p)
    p.add_argument("--country", required=True)
    p.add_argument("--locode", help="UN/LOCODE")
    p.add_argument("--event", default="observe",
                   choices=("observe", "gate_in", "gate_out", "load", "discharge", "depart",
                            "arrive"))
    p.add_argument("--seal", help="the seal number read on a container")
    p.add_argument("--at", type=int, help="when, ms since the epoch (default now)")

    p = cmd("sensor", cmd_sensor, "record a sensor reading on a container")
    p.add_argument("--container", required=True)
    p.add_argument("--kind", required=True,
                   choices=("door", "tamper", "weight", "temperature", "position"))
    p.add_argument("--value", type=int, help="grams, or milli-degrees Celsius")
    p.add_argument("--open", action=argparse.BooleanOptionalAction, default=None,
                   help="door state")
    p.add_argument("--lat-udeg", type=int, help="latitude, micro-degrees")
    p.add_argument("--lon-udeg", type=int, help="longitude, micro-degrees")
    p.add_argument("--at", type=int, help="when, ms since the epoch (default now)")

    p = cmd("ship", cmd_ship, "book a shipment, or update its status (--status)")
    p.add_argument("--shipment", required=True, help="shipment id")
    p.add_argument("--status", choices=("booked", "in_transit", "arrived", "delivered",
                                        "cancelled"), help="update the status only")
    p.add_argument("--origin", help="COUNTRY[:LOCODE]")
    p.add_argument("--destination", help="COUNTRY[:LOCODE]")
    p.add_argument("--route", help="planned ports, comma-separated UN/LOCODEs")
    p.add_argument("--consignor")
    p.add_argument("--consignee")
    p.add_argument("--containers", help="comma-separated container numbers")
    p.add_argument("--goods", action="append", default=[], metavar="JSON",
                   help='{"hs","description","quantity","weight_g"} (repeatable)')

    p = cmd("declare", cmd_declare, "lodge a customs declaration for a shipment")
    p.add_argument("--shipment", required=True)
    p.add_argument("--jurisdiction", required=True, help="ISO 3166 country")
    p.add_argument("--procedure", required=True, choices=("import", "export", "transit"))
    p.add_argument("--declarant", required=True)
    p.add_argument("--containers", required=True, help="comma-separated container numbers")
    p.add_argument("--goods", action="append", required=True, metavar="JSON",
                   help='{"hs","description","quantity","weight_g"} (repeatable)')

    p = cmd("customs", cmd_customs, "a customs action on an object (customs nodes)")
    obj(p)
    p.add_argument("--action", required=True,
                   choices=("hold", "inspect", "release", "seize", "result"))
    p.add_argument("--result", choices=("conform", "nonconform"))
    p.add_argument("--note")

    p = cmd("recall", cmd_recall, "recall a lot, or serials, of a GTIN")
    p.add_argument("--gtin", required=True)
    p.add_argument("--lot")
    p.add_argument("--serials", help="comma-separated serials")
    p.add_argument("--reason", required=True)

    p = cmd("submit", cmd_submit, 'append raw JSON records: {"type", "body"} or a list of them')
    p.add_argument("file", help="a JSON file, or - for standard input")

    p = cmd("history", cmd_history, "a token's state and full provenance", write=False)
    p.add_argument("token", help="token id (hex), GTIN/SERIAL, or a GS1 Digital Link URI")

    p = cmd("container", cmd_container, "a container's manifest, seal, custody and customs",
            write=False)
    p.add_argument("id", help="ISO 6346 container number")

    p = cmd("verify", cmd_verify, "verify a container without opening it: the customs verdict"
            " (exit 0 GREEN, 1 AMBER or RED)", write=False)
    p.add_argument("container", help="ISO 6346 container number")

    p = cmd("alerts", cmd_alerts, "list alerts, or follow them live (--follow)", write=False)
    p.add_argument("--since", type=int, default=None, help="after this cursor")
    p.add_argument("--severity", choices=("info", "low", "medium", "high", "critical"),
                   help="minimum severity")
    p.add_argument("--subject", help="[kind:]id")
    for name, what in (("jurisdiction", "ISO 3166 country the alert concerns"),
                       ("brand", "did or hex key of a brand whose goods it concerns"),
                       ("mark", "trademark it concerns"), ("container", "ISO 6346 number"),
                       ("shipment", "shipment id")):
        p.add_argument(f"--{name}", action="append", metavar=name.upper(),
                       help=f"{what} (repeatable; as a push subscription filters)")
    p.add_argument("--limit", type=int, default=None)
    p.add_argument("--follow", action="store_true", help="stream new alerts until interrupted")

    cmd("disputes", cmd_disputes, "list every object disputed now (double hand-overs, custody"
        " breaks, manifest conflicts, cloned serials, forked feeds) with the evidence",
        write=False)
