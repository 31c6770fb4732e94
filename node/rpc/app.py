"""The HTTP JSON API: routes, request parsing, and the mapping of errors to HTTP statuses.

Every error answers `{"error": {"code", "field", "message"}}`: 400 for invalid
input (the field and rule named as for a record from a peer), 401 without a
valid token, 403 for a read-only token on a write or a record type our
credential does not allow, 404 for unknown ids, 409 for a conflict with the log
(a hand-over of something we do not hold), 413 for a body over `[rpc]
max_body`. Bad input never gets a 5xx. Writes answer 201 only once their
records are durable (`node.writer`).
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Final

import trio
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from crypto.didkey import did_from_public
from crypto.errors import Error
from node import manifest_proof, summary
from node.errors import RpcError
from node.ledger import AppendError, Ledger, Outcome
from node.rpc import jsonio, openapi, sse
from node.rpc.auth import Access, Auth
from node.rpc.metrics import CONTENT_TYPE, Metrics
from node.verify import verify_container
from node.writer import EntryError, Writer
from protocol.errors import LocalProtocolError, RemoteProtocolError, RoleError, ValidationError

log = logging.getLogger("sealchain.rpc")

MAX_BATCH: Final = 1000
MAX_SSE_CLIENTS: Final = 256
_ENTRY_KEYS: Final = frozenset({"type", "body"})


@dataclass
class Api:
    """What the routes need of the node."""

    ledger: Ledger
    writer: Writer
    auth: Auth
    metrics: Metrics
    hub: sse.AlertHub
    max_body: int
    status: Callable[[], dict[str, Any]]
    clock: Callable[[], int]
    heartbeat: float = 15.0
    proofs: Lru = field(default_factory=lambda: Lru(4))  # Merkle trees of recent manifests
    disputes: tuple[int, int] | None = None  # (Ledger.disputes_version, open disputes then)


class Lru(OrderedDict[Any, Any]):
    """A small least-recently-used map."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size

    def get(self, key: Any, default: Any = None) -> Any:
        if key in self:
            self.move_to_end(key)
            return self[key]
        return default

    def __setitem__(self, key: Any, value: Any) -> None:
        super().__setitem__(key, value)
        self.move_to_end(key)
        while len(self) > self.size:
            self.popitem(last=False)


# -- responses and errors ---------------------------------------------------------------


def json_response(value: Any, status: int = 200) -> Response:
    return Response(jsonio.dumps(value), status_code=status, media_type="application/json")


def error_response(status: int, code: str, message: str, field: str | None = None,
                   headers: dict[str, str] | None = None) -> Response:
    body = {"error": {"code": code, "field": field, "message": message}}
    return Response(jsonio.dumps(body), status_code=status, media_type="application/json",
                    headers=headers)


def as_rpc_error(exc: BaseException) -> RpcError:
    """The HTTP status, code and field of one of our errors."""
    if isinstance(exc, RpcError):
        return exc
    if isinstance(exc, ValidationError):
        return RpcError(400, exc.rule, exc.detail, field=exc.field or None)
    if isinstance(exc, RoleError):
        return RpcError(403, exc.rule, str(exc), field="type")
    if isinstance(exc, summary.NotFound):
        return RpcError(404, "not_found", str(exc))
    if isinstance(exc, summary.Conflict):
        return RpcError(409, "conflict", str(exc))
    if isinstance(exc, AppendError):
        return RpcError(409, f"append.{exc.outcome.status}", str(exc))
    if isinstance(exc, LocalProtocolError):
        return RpcError(400, "too_large", str(exc), field="body")
    if isinstance(exc, RemoteProtocolError):
        return RpcError(400, "invalid", str(exc))
    return RpcError(503, "unavailable", f"{type(exc).__name__}: {exc}")


def _entry_error(exc: EntryError, prefix: str | None) -> RpcError:
    e = as_rpc_error(exc.error)
    if prefix is not None:
        at = f"{prefix}[{exc.index}]"
        e.field = f"{at}.{e.field}" if e.field else at
    return e


async def _on_error(request: Request, exc: Exception) -> Response:
    e = as_rpc_error(exc)
    headers = {"WWW-Authenticate": "Bearer"} if e.status == 401 else None
    return error_response(e.status, e.code, str(e), e.field, headers)


async def _on_bug(request: Request, exc: Exception) -> Response:
    # Starlette logs nothing here and re-raises after answering: `_Observe` logs it.
    return error_response(500, "internal", "internal error (logged)")


async def _on_http(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http")
    headers = dict(exc.headers) if exc.headers else None
    return error_response(exc.status_code, code, str(exc.detail), None, headers)


# -- request helpers --------------------------------------------------------------------


Handler = Callable[[Api, Request], Awaitable[Response]]


def endpoint(api: Api, need: Access, fn: Handler) -> Callable[[Request], Awaitable[Response]]:
    async def handle(request: Request) -> Response:
        api.auth.require(request.headers.get("authorization"), need)
        return await fn(api, request)

    return handle


async def read_json(api: Api, request: Request) -> Any:
    length = request.headers.get("content-length")
    if length is not None and (not length.isdigit() or int(length) > api.max_body):
        raise RpcError(413, "too_large", f"request body over {api.max_body} bytes", field="body")
    data = bytearray()
    async for chunk in request.stream():
        data += chunk
        if len(data) > api.max_body:
            raise RpcError(413, "too_large", f"request body over {api.max_body} bytes",
                           field="body")
    return jsonio.loads(bytes(data))


def parse_entry(value: Any, at: str | None) -> tuple[str, dict[str, Any]]:
    """One `{"type", "body"}` entry, its body in wire form (a hand-over may omit `head`)."""
    pre = f"{at}." if at else ""
    if type(value) is not dict:
        raise ValidationError(at or "body", "type", "expected an object {\"type\", \"body\"}")
    for k in value:
        if k not in _ENTRY_KEYS:
            raise ValidationError(f"{pre}{k}", "unknown", "unknown field")
    if "type" not in value:
        raise ValidationError(f"{pre}type", "required", "missing field")
    if "body" not in value:
        raise ValidationError(f"{pre}body", "required", "missing field")
    t = value["type"]
    try:
        body = jsonio.body_from_json(t, value["body"])
    except ValidationError as exc:
        raise exc.under(at) if at else exc from None
    return t, body  # the writer checks it against the schema and our credential


def _ack(r: Any) -> dict[str, Any]:
    return {"id": r.id, "seq": r.seq, "type": r.type}


def _list(data: Any, name: str) -> list[Any]:
    if type(data) is not dict:
        raise ValidationError("body", "type", f"expected an object {{\"{name}\": [...]}}")
    extra = sorted(str(k) for k in data if k != name)
    if extra:
        raise ValidationError(extra[0], "unknown", "unknown field")
    items = data.get(name)
    if type(items) is not list:
        raise ValidationError(name, "type" if name in data else "required", "expected a list")
    if not 1 <= len(items) <= MAX_BATCH:
        raise ValidationError(name, "length", f"{len(items)} items, expected 1..{MAX_BATCH}")
    return items


def _reader(api: Api) -> summary.Reader:
    return summary.reader_of(api.ledger, api.clock())


# -- writes -------------------------------------------------------------------------------


async def post_record(api: Api, request: Request) -> Response:
    entry = parse_entry(await read_json(api, request), None)
    try:
        (r,) = await api.writer.append([entry])
    except EntryError as exc:
        api.metrics.rejected[(entry[0], as_rpc_error(exc.error).code)] += 1
        raise _entry_error(exc, None) from None
    return json_response(_ack(r), 201)


async def post_batch(api: Api, request: Request) -> Response:
    items = _list(await read_json(api, request), "records")
    entries = [parse_entry(x, f"records[{i}]") for i, x in enumerate(items)]
    try:
        records = await api.writer.append(entries)
    except EntryError as exc:
        api.metrics.rejected[(entries[exc.index][0], as_rpc_error(exc.error).code)] += 1
        raise _entry_error(exc, "records") from None
    return json_response({"records": [_ack(r) for r in records]}, 201)


async def post_raw(api: Api, request: Request) -> Response:
    items = _list(await read_json(api, request), "records")
    wires = [jsonio.parse_bytes(x, f"records[{i}]") for i, x in enumerate(items)]
    outcomes = await api.writer.submit(wires)
    results = [_outcome(o) for o in outcomes]
    rejected = [i for i, o in enumerate(outcomes) if o.status == "rejected"]
    if len(rejected) == len(outcomes):
        i = rejected[0]
        raise RpcError(400, "rejected", outcomes[i].reason or "rejected", field=f"records[{i}]")
    stored = any(o.status == "stored" for o in outcomes)
    return json_response({"results": results}, 201 if stored else 200)


def _outcome(o: Outcome) -> dict[str, Any]:
    return {"id": o.id, "status": o.status, "reason": o.reason}


# -- reads --------------------------------------------------------------------------------


async def get_status(api: Api, request: Request) -> Response:
    """The node's status, with `open_disputes`: how many objects /v1/disputes lists.

    Counting reads the whole alert log, so the count is kept until the live alerts of a
    dispute rule change (`Ledger.disputes_version`): status is polled often. The state
    root hashes every object's facts after each write (about 0.5 s per 100,000 records
    here), so it is worked out on a worker thread: the event loop serves other requests
    meanwhile (the lock keeps the ledger still; `api.status` then finds it cached)."""
    async with api.writer.lock:
        await trio.to_thread.run_sync(api.ledger.state_root)
        version = api.ledger.disputes_version
        if api.disputes is None or api.disputes[0] != version:
            api.disputes = (version, len(summary.open_disputes(_reader(api))[0]))
        return json_response({**api.status(), "open_disputes": api.disputes[1]})


async def get_record(api: Api, request: Request) -> Response:
    if request.path_params["id"] in ("batch", "raw"):  # POST-only siblings of this route
        raise HTTPException(405, headers={"Allow": "POST"})
    rid = jsonio.parse_id(request.path_params["id"], "id")
    r = api.ledger.record(rid)
    if r is None:
        raise summary.NotFound(f"record {rid.hex()} is not known")
    return json_response(jsonio.record_to_json(r))


async def get_feed(api: Api, request: Request) -> Response:
    author = jsonio.parse_key(request.path_params["author"], "author")
    q = request.query_params
    start = jsonio.parse_int(q.get("from"), "from", default=1, lo=1, hi=2**63 - 1)
    limit = jsonio.parse_int(q.get("limit"), "limit", default=100, lo=1, hi=1000)
    head = api.ledger.head(author)  # a dict read: safe while the writer runs
    if head is None:
        raise summary.NotFound(f"no feed of {did_from_public(author)}")
    from protocol.envelope import Record

    records = [Record.from_bytes(w, verify=False) for w in api.ledger.store.feed(author, start,
                                                                                 limit)]
    nxt = records[-1].seq + 1 if records and records[-1].seq < head.seq else None
    return json_response({"author": did_from_public(author),
                          "head": {"seq": head.seq, "id": head.id},
                          "records": [jsonio.record_to_json(r) for r in records], "next": nxt})


async def get_token(api: Api, request: Request) -> Response:
    tid = jsonio.parse_id(request.path_params["id"], "id")
    q = request.query_params
    scans_from = jsonio.parse_cursor(q.get("scans_from"), "scans_from")
    sensors_from = jsonio.parse_cursor(q.get("sensors_from"), "sensors_from")
    limit = jsonio.parse_int(q.get("limit"), "limit", default=summary.MAX_LISTED, lo=1,
                             hi=summary.MAX_LISTED)
    async with api.writer.lock:
        return json_response(summary.token_view(_reader(api), tid, api.clock(),
                                                scans_from=scans_from,
                                                sensors_from=sensors_from, limit=limit))


async def get_container(api: Api, request: Request) -> Response:
    number = jsonio.parse_container(request.path_params["id"], "id")
    async with api.writer.lock:
        return json_response(summary.container_view(_reader(api), number))


async def get_verdict(api: Api, request: Request) -> Response:
    number = jsonio.parse_container(request.path_params["id"], "id")
    now = api.clock()
    async with api.writer.lock:
        verdict = verify_container(number, summary.verdict_reader(api.ledger, now),
                                   api.ledger.creds, api.ledger.params, now,
                                   memo=api.ledger.verify_memo)
    if any(r.code == "container.unknown" for r in verdict.reasons):
        raise RpcError(404, "not_found", f"no record creates container {number}", field="id")
    return json_response(verdict.to_json())


async def get_proof(api: Api, request: Request) -> Response:
    number = jsonio.parse_container(request.path_params["id"], "id")
    tid = jsonio.parse_id(request.path_params["token"], "token")
    async with api.writer.lock:
        return json_response(manifest_proof.inclusion_proof(_reader(api), number, tid, api.proofs))


async def get_shipment(api: Api, request: Request) -> Response:
    sid = jsonio.parse_shipment(request.path_params["id"], "id")
    async with api.writer.lock:
        return json_response(summary.shipment_view(_reader(api), sid))


def _alert_query(request: Request) -> tuple[int, sse.AlertFilter]:
    q = request.query_params
    since = jsonio.parse_int(q.get("since"), "since", default=0, lo=0, hi=2**63 - 1)
    return since, sse.AlertFilter.from_query(q)


async def get_alerts(api: Api, request: Request) -> Response:
    since, flt = _alert_query(request)
    limit = jsonio.parse_int(request.query_params.get("limit"), "limit", default=100, lo=1,
                             hi=1000)
    alerts, cursor = sse.page(api.ledger.store, since, flt, limit)
    return json_response({"alerts": alerts, "next": cursor})


async def get_disputes(api: Api, request: Request) -> Response:
    """Every object disputed now (`summary.open_disputes`), by kind and id, paged by `after`."""
    q = request.query_params
    limit = jsonio.parse_int(q.get("limit"), "limit", default=100, lo=1, hi=1000)
    after = None
    raw = q.get("after")
    if raw is not None:
        kind, sep, ident = raw.partition(":")
        if not sep or kind not in _SUBJECT_KINDS or not ident:
            raise ValidationError("after", "format", "expected KIND:ID as in `next`, KIND one"
                                  f" of {', '.join(sorted(_SUBJECT_KINDS))}")
        after = (kind, ident)
    async with api.writer.lock:
        disputes, last = summary.open_disputes(_reader(api), after=after, limit=limit)
    return json_response({"disputes": disputes,
                          "next": None if last is None else f"{last[0]}:{last[1]}"})


_SUBJECT_KINDS: Final = frozenset({"token", "container", "shipment", "party"})


async def alert_stream(api: Api, request: Request) -> Response:
    since, flt = _alert_query(request)
    last = request.headers.get("last-event-id")
    if last is not None:
        since = jsonio.parse_int(last.strip(), "Last-Event-ID", default=0, lo=0, hi=2**63 - 1)
    if api.metrics.sse_clients >= MAX_SSE_CLIENTS:
        raise RpcError(503, "busy", "too many alert streams open")

    async def body() -> Any:
        api.metrics.sse_clients += 1
        try:
            async for chunk in sse.events(api.ledger.store, api.hub, since, flt,
                                          heartbeat=api.heartbeat):
                yield chunk
        finally:
            api.metrics.sse_clients -= 1

    return StreamingResponse(body(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


async def get_metrics(api: Api, request: Request) -> Response:
    async with api.writer.lock:
        return Response(api.metrics.render(), media_type=CONTENT_TYPE)


# -- the app ------------------------------------------------------------------------------


class _Observe:
    """Counts requests by route and status, and turns an unexpected exception into a JSON 500."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500
        started = False

        async def watch(message: Message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                status, started = message["status"], True
            await send(message)

        t0 = time.perf_counter()
        try:
            await self.app(scope, receive, watch)
        except Exception:
            log.exception("event=rpc.error path=%s", scope.get("path"))
            if not started:
                resp = error_response(500, "internal", "internal error (logged)")
                await resp(scope, receive, send)
        finally:
            route = scope.get("route")
            path = getattr(route, "path", "unmatched")
            took = time.perf_counter() - t0
            self.metrics.requests.labels(path, scope.get("method", ""), str(status)).inc()
            self.metrics.request_seconds.labels(path).observe(took)
            log.debug("event=rpc.request method=%s route=%s status=%d ms=%.2f",
                      scope.get("method"), path, status, took * 1000)


def create_app(api: Api) -> ASGIApp:
    R, W = Access.READ, Access.WRITE
    doc = jsonio.dumps(openapi.document())

    async def get_openapi(request: Request) -> Response:
        return Response(doc, media_type="application/json")

    routes = [
        Route("/v1/openapi.json", get_openapi, methods=["GET"]),
        Route("/v1/status", endpoint(api, R, get_status), methods=["GET"]),
        Route("/v1/records", endpoint(api, W, post_record), methods=["POST"]),
        Route("/v1/records/batch", endpoint(api, W, post_batch), methods=["POST"]),
        Route("/v1/records/raw", endpoint(api, W, post_raw), methods=["POST"]),
        Route("/v1/records/{id}", endpoint(api, R, get_record), methods=["GET"]),
        Route("/v1/feeds/{author}", endpoint(api, R, get_feed), methods=["GET"]),
        Route("/v1/tokens/{id}", endpoint(api, R, get_token), methods=["GET"]),
        Route("/v1/containers/{id}", endpoint(api, R, get_container), methods=["GET"]),
        Route("/v1/containers/{id}/verify", endpoint(api, R, get_verdict), methods=["GET"]),
        Route("/v1/containers/{id}/items/{token}/proof", endpoint(api, R, get_proof),
              methods=["GET"]),
        Route("/v1/shipments/{id}", endpoint(api, R, get_shipment), methods=["GET"]),
        Route("/v1/alerts", endpoint(api, R, get_alerts), methods=["GET"]),
        Route("/v1/alerts/stream", endpoint(api, R, alert_stream), methods=["GET"]),
        Route("/v1/disputes", endpoint(api, R, get_disputes), methods=["GET"]),
        Route("/metrics", endpoint(api, R, get_metrics), methods=["GET"]),
    ]
    app = Starlette(routes=routes, exception_handlers={
        Error: _on_error, HTTPException: _on_http, Exception: _on_bug})
    return _Observe(app, api.metrics)
