"""The OpenAPI 3.1 document of the RPC, served at /v1/openapi.json.

Record body schemas are derived from the body classes' type hints (the same
source `jsonio` converts by), so every record type is described and a new one
appears without an edit here. The schema's finer rules (check digits, sorted
lists, cross-field rules) are the server's to judge; their errors name the field.
"""

from __future__ import annotations

import types
import typing
from typing import Any, Final, Union

from protocol import schema
from protocol.bodies import SEVERITIES

VERSION: Final = "1"
HEX = {"type": "string", "pattern": "^([0-9a-f]{2})*$"}
ID = {"type": "string", "pattern": "^[0-9a-f]{64}$", "description": "32 bytes, lowercase hex"}
DID = {"type": "string", "description": "did:key of an Ed25519 key"}
KEY = {"type": "string", "pattern": "^(did:key:z[1-9A-HJ-NP-Za-km-z]{1,120}|[0-9a-f]{64})$",
       "description": "did:key, or 64 lowercase hex digits"}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _nullable(s: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [s, {"type": "null"}]}


def _hint_schema(hint: Any, name: str, defs: dict[str, Any]) -> dict[str, Any]:
    origin = typing.get_origin(hint)
    if origin in (Union, types.UnionType):
        inner = [a for a in typing.get_args(hint) if a is not type(None)]
        return _hint_schema(inner[0], name, defs)
    if hint is bytes:
        return dict(KEY) if name in ("to", "subject", "delegate") else dict(HEX)
    if hint is bool:
        return {"type": "boolean"}
    if hint is int:
        return {"type": "integer"}
    if hint is str:
        return {"type": "string"}
    if origin is tuple:
        return {"type": "array", "items": _hint_schema(typing.get_args(hint)[0], name, defs)}
    if origin is dict or hint is dict:
        return {"type": "object",
                "additionalProperties": {"type": ["string", "integer", "boolean"]}}
    if isinstance(hint, type) and issubclass(hint, schema.Struct):
        defs.setdefault(hint.__name__, _struct_schema(hint, defs))
        return _ref(hint.__name__)
    return {}


def _struct_schema(cls: type[schema.Struct], defs: dict[str, Any]) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    props: dict[str, Any] = {}
    required = []
    for name, _check, req in cls._field_table():
        props[name] = _hint_schema(hints[name], name, defs)
        if req:
            required.append(name)
    out: dict[str, Any] = {"type": "object", "properties": props, "additionalProperties": False}
    if required:
        out["required"] = required
    if cls.__doc__:
        out["description"] = " ".join(cls.__doc__.split())
    return out


def _error_responses(*codes: int) -> dict[str, Any]:
    text = {400: "Invalid input (the field is named)", 401: "Missing or invalid bearer token",
            403: "Read-only token, or a record type this node's role may not write",
            404: "Not known to this node", 409: "Conflicts with the log",
            413: "Request body too large", 503: "Shutting down or busy"}
    return {str(c): {"description": text[c], "content": {"application/json": {
        "schema": _ref("Error")}}} for c in codes}


def _ok(status: int, schema_: dict[str, Any], desc: str = "OK") -> dict[str, Any]:
    return {str(status): {"description": desc,
                          "content": {"application/json": {"schema": schema_}}}}


def _op(summary: str, responses: dict[str, Any], *, params: list[dict[str, Any]] | None = None,
        body: dict[str, Any] | None = None, errors: tuple[int, ...] = (400, 401, 404)
        ) -> dict[str, Any]:
    op: dict[str, Any] = {"summary": summary, "responses": {**responses,
                                                           **_error_responses(*errors)}}
    if params:
        op["parameters"] = params
    if body is not None:
        op["requestBody"] = {"required": True,
                             "content": {"application/json": {"schema": body}}}
    return op


def _path(name: str, s: dict[str, Any], desc: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": s, "description": desc}


def _query(name: str, s: dict[str, Any], desc: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": s, "description": desc}


def _obj(props: dict[str, Any], required: list[str] | None = None, *, closed: bool = False
         ) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "object", "properties": props,
                           "required": required if required is not None else list(props)}
    if closed:
        out["additionalProperties"] = False
    return out


_PARTY = _obj({"did": DID, "org": {"type": ["string", "null"]}})
_ANY_OBJ: dict[str, Any] = {"type": "object"}
_NULL_OBJ: dict[str, Any] = {"type": ["object", "null"]}
_LIST = {"type": "array", "items": _ANY_OBJ}


def document() -> dict[str, Any]:
    defs: dict[str, Any] = {}
    bodies = []
    for type_name, cls in sorted(schema.TYPES.items()):
        body_name = "Body_" + type_name.replace(".", "_")
        defs[body_name] = _struct_schema(cls, defs)
        if type_name in ("handover.offer", "handover.accept"):
            defs[body_name]["required"] = [r for r in defs[body_name]["required"] if r != "head"]
            defs[body_name]["description"] += " `head` may be omitted: the node fills it in."
        bodies.append(_obj({"type": {"const": type_name}, "body": _ref(body_name)},
                           closed=True))
    entry = {"oneOf": bodies, "description": "A record to sign and append: type and body"}
    ack = _obj({"id": ID, "seq": {"type": "integer"}, "type": {"type": "string"}})
    record = _obj({"id": ID, "type": {"type": "string"}, "author": DID,
                   "seq": {"type": "integer"}, "prev": {"type": ["string", "null"]},
                   "ts": {"type": "integer"}, "network": ID, "body": _ANY_OBJ,
                   "signature": HEX, "wire": HEX})
    alert = _obj({"cursor": {"type": "integer"}, "rule": {"type": "string"},
                  "severity": {"enum": list(SEVERITIES)},
                  "subject": _obj({"kind": {"type": "string"}, "id": {"type": "string"}}),
                  "reason": {"type": "string"}, "evidence": {"type": "array", "items": ID},
                  "key": ID, "ts": {"type": "integer"}})
    custody = {"type": ["object", "null"], "properties": {
        "holder": _PARTY, "head": ID, "steps": _LIST, "disputed": {"type": "boolean"},
        "conflicting_offers": {"type": "array", "items": ID}, "pending": _NULL_OBJ},
        "required": ["holder", "head", "steps", "disputed", "conflicting_offers", "pending"]}
    defs.update({
        "Error": _obj({"error": _obj({"code": {"type": "string"},
                                      "field": {"type": ["string", "null"]},
                                      "message": {"type": "string"}})}),
        "Entry": entry,
        "Ack": ack,
        "Record": record,
        "Party": _PARTY,
        "Custody": custody,
        "Alert": alert,
        "Dispute": _obj({
            "kind": {"enum": ["token", "container", "shipment", "party"]},
            "id": {"type": "string"},
            "rules": {"type": "array", "items": {"type": "string"}},
            "evidence": {"type": "array", "items": ID},
            "since": {"type": ["integer", "null"], "description": "first alert's time here"},
            "alerts": {"type": "array", "items": _obj({
                "cursor": {"type": "integer"}, "rule": {"type": "string"},
                "severity": {"type": ["string", "null"]},
                "reason": {"type": ["string", "null"]},
                "evidence": {"type": "array", "items": ID},
                "ts": {"type": ["integer", "null"]}})},
            "party": {"anyOf": [_PARTY, {"type": "null"}],
                      "description": "for a party (a forked feed): its did and organisation"},
        }, required=["kind", "id", "rules", "evidence", "since", "alerts"]),
        "Status": _obj({
            "did": DID, "peer_id": {"type": "string"}, "role": {"type": "string"},
            "roles": {"type": "array", "items": {"type": "string"}},
            "credential": {"type": "string"}, "network_id": ID, "network": {"type": "string"},
            "record_count": {"type": "integer"}, "author_count": {"type": "integer"},
            "state_root": ID, "connected_peers": {"type": "array", "items": DID},
            "sync_lag": {"type": ["integer", "null"]}, "pending": {"type": "integer"},
            "open_disputes": {"type": "integer", "minimum": 0,
                              "description": "objects disputed now, as /v1/disputes lists"},
            "version": {"type": "string"}}),
        "Token": _obj({
            "token": ID, "status": {"enum": ["active", "packed", "in transit", "held", "seized",
                                             "recalled", "disputed"]},
            "holder": {"anyOf": [_PARTY, {"type": "null"}]}, "location": _NULL_OBJ,
            "mint": _NULL_OBJ, "mints": {"type": "array", "items": ID},
            "expired": {"type": "boolean"}, "recalls": _LIST, "custody": _ref("Custody"),
            "scans": _LIST, "sensors": _LIST,
            "pages": _obj({"scans": _ref("Page"), "sensors": _ref("Page")}),
            "containers": _LIST, "customs": _LIST}),
        "Page": {**_obj({
            "total": {"type": "integer"}, "listed": {"type": "integer"},
            "truncated": {"type": "boolean"}, "next": {"type": ["string", "null"]}}),
            "description": "How much of a list is shown: `truncated` when `listed` < `total`; "
                           "`next` is the cursor of the following page (null at the newest)"},
        "Verdict": _obj({
            "container": {"type": "string"},
            "verdict": {"type": "string", "enum": ["GREEN", "AMBER", "RED"]},
            "items": {"type": "integer"},
            "root": {"type": ["string", "null"]},
            "destination": {"type": ["string", "null"]},
            "brands": {"type": "array", "items": {"type": "string"}},
            "reasons": {"type": "array", "items": _obj({
                "level": {"type": "string", "enum": ["GREEN", "AMBER", "RED"]},
                "code": {"type": "string"}, "message": {"type": "string"},
                "evidence": {"type": "array", "items": {"type": "string"}},
                "alert": {"type": ["string", "null"]}})}}),
        "Container": _obj({
            "container": {"type": "string"}, "created": _NULL_OBJ, "manifest": _NULL_OBJ,
            "seal": _obj({"status": {"enum": ["unsealed", "sealed", "broken"]},
                          "current": {"type": ["string", "null"]}, "history": _LIST,
                          "seen": _LIST, "breaches": _LIST}),
            "custody": _ref("Custody"),
            "customs": _obj({"status": {"type": "string"}, "declarations": _LIST,
                             "actions": _LIST}),
            "shipments": {"type": "array", "items": {"type": "string"}},
            "location": _NULL_OBJ, "sensors": _LIST, "latest": _ANY_OBJ, "unpacks": _LIST,
            "disputes": _obj({"unauthorised": _LIST, "manifest_conflicts": _LIST})}),
        "Proof": _obj({
            "container": {"type": "string"}, "token": ID, "root": ID,
            "index": {"type": "integer"}, "size": {"type": "integer"},
            "proof": {"type": "array", "items": ID}, "record": ID,
            "chunk": {"type": "integer"}, "packed_by": _PARTY}),
        "Shipment": _obj({
            "shipment": {"type": "string"}, "plan": _NULL_OBJ, "status": _NULL_OBJ,
            "custody": _ref("Custody"), "containers": _LIST, "declarations": _LIST,
            "customs": _ANY_OBJ, "location": _NULL_OBJ}),
        "Outcome": _obj({"id": {"type": ["string", "null"]},
                         "status": {"enum": ["stored", "duplicate", "pending", "rejected",
                                             "fork"]},
                         "reason": {"type": ["string", "null"]}}),
    })
    container_id = {"type": "string", "pattern": "^[A-Za-z]{3}[UJZujz] ?[0-9]{6} ?[0-9]$",
                    "description": "ISO 6346, check digit included (spaces and case are "
                                   "normalised)"}
    shipment_id = {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"}
    cursor = {"type": "string", "pattern": "^(0|-?[0-9]{1,19}:[0-9a-f]{64})$",
              "description": "0 for the first page, else a page's `next` (AT:RECORD)"}
    alert_params = [
        _query("since", {"type": "integer", "minimum": 0}, "only alerts after this cursor"),
        _query("severity", {"enum": list(SEVERITIES)}, "minimum severity"),
        _query("subject", {"type": "string", "minLength": 1, "maxLength": 80},
               "[kind:]id of the subject, e.g. container:CSQU3054383"),
        *(_query(name, {"type": "array", "maxItems": 64, "items": item},
                 f"{desc}; repeatable or comma-separated, any may match (as a push "
                 "subscription's filter, matched against what the alert concerns)")
          for name, item, desc in (
              ("jurisdiction", {"type": "string", "pattern": "^[A-Za-z]{2}(,[A-Za-z]{2})*$"},
               "countries involved (declarations, origin, destination), e.g. NL"),
              ("brand", KEY, "trademark owners of the goods (did:key or hex key)"),
              ("mark", {"type": "string", "minLength": 1, "maxLength": 100}, "trademarks"),
              ("container", container_id, "ISO 6346 container numbers"),
              ("shipment", shipment_id, "shipment ids"))),
    ]
    write_errors = (400, 401, 403, 409, 413, 503)
    paths = {
        "/v1/status": {"get": _op("Node status", _ok(200, _ref("Status")), errors=(401,))},
        "/v1/records": {"post": _op(
            "Sign a record with the node's key and append it to its feed; 201 once durable",
            _ok(201, _ref("Ack"), "Appended and durable"), body=_ref("Entry"),
            errors=write_errors)},
        "/v1/records/batch": {"post": _op(
            "Append up to 1000 records, all or nothing; 201 once durable",
            _ok(201, _obj({"records": {"type": "array", "items": _ref("Ack")}})),
            body=_obj({"records": {"type": "array", "items": _ref("Entry"), "minItems": 1,
                                   "maxItems": 1000}}, closed=True), errors=write_errors)},
        "/v1/records/raw": {"post": _op(
            "Import already-signed records (wire bytes in hex); duplicates are harmless",
            {**_ok(201, _obj({"results": {"type": "array", "items": _ref("Outcome")}}),
                   "At least one record stored"),
             **_ok(200, _obj({"results": {"type": "array", "items": _ref("Outcome")}}),
                   "Nothing new stored (duplicates or pending)")},
            body=_obj({"records": {"type": "array", "items": HEX, "minItems": 1,
                                   "maxItems": 1000}}, closed=True), errors=write_errors)},
        "/v1/records/{id}": {"get": _op("One record", _ok(200, _ref("Record")),
                                        params=[_path("id", ID, "record id")])},
        "/v1/feeds/{author}": {"get": _op(
            "An author's feed, in seq order",
            _ok(200, _obj({"author": DID, "head": _obj({"seq": {"type": "integer"}, "id": ID}),
                           "records": {"type": "array", "items": _ref("Record")},
                           "next": {"type": ["integer", "null"]}})),
            params=[_path("author", KEY, "the author"),
                    _query("from", {"type": "integer", "minimum": 1}, "first seq (default 1)"),
                    _query("limit", {"type": "integer", "minimum": 1, "maximum": 1000},
                           "at most this many (default 100)")])},
        "/v1/tokens/{id}": {"get": _op(
            "A product token: state and full provenance (minting brand and facility, every "
            "custody step, including each hand-over of a container it travelled in, scans, "
            "sensor readings, containers, customs actions). Scans and sensor readings are "
            "ordered by (at, record); by default the newest `limit` of each are listed and "
            "`pages` gives their totals. To read them all, ask with `scans_from=0` (or "
            "`sensors_from=0`) and follow `pages.scans.next` until it is null.",
            _ok(200, _ref("Token")),
            params=[_path("id", ID, "token id"),
                    _query("scans_from", cursor, "list the scans after this cursor"),
                    _query("sensors_from", cursor, "list the sensor readings after this cursor"),
                    _query("limit", {"type": "integer", "minimum": 1, "maximum": 1000},
                           "scans and readings per page (default 1000)")])},
        "/v1/containers/{id}": {"get": _op(
            "A container: manifest, seal, custody, customs", _ok(200, _ref("Container")),
            params=[_path("id", container_id, "ISO 6346 container number")])},
        "/v1/containers/{id}/verify": {"get": _op(
            "The customs verdict (GREEN, AMBER, RED) with every reason and its evidence,"
            " computed from the log alone", _ok(200, _ref("Verdict")),
            params=[_path("id", container_id, "ISO 6346 container number")])},
        "/v1/containers/{id}/items/{token}/proof": {"get": _op(
            "Merkle inclusion proof of a token in a container's manifest; check with "
            "crypto.merkle.verify_inclusion(token, index, size, proof, root)",
            _ok(200, _ref("Proof")),
            params=[_path("id", container_id, "ISO 6346 container number"),
                    _path("token", ID, "token id")], errors=(400, 401, 404, 409))},
        "/v1/shipments/{id}": {"get": _op(
            "A shipment: plan, status, containers, customs", _ok(200, _ref("Shipment")),
            params=[_path("id", shipment_id, "shipment id")])},
        "/v1/alerts": {"get": _op(
            "Alerts after a cursor (follow `next`)",
            _ok(200, _obj({"alerts": {"type": "array", "items": _ref("Alert")},
                           "next": {"type": "integer"}})),
            params=[*alert_params, _query("limit", {"type": "integer", "minimum": 1,
                                                    "maximum": 1000}, "default 100")],
            errors=(400, 401))},
        "/v1/disputes": {"get": _op(
            "Every object disputed now (a double hand-over, a custody break, a manifest "
            "conflict, a cloned serial or container, a feed fork), once each, ordered by "
            "kind then id, with its rules, the evidence record ids and the live alerts "
            "that say so; follow `next` (as `after`) until it is null",
            _ok(200, _obj({"disputes": {"type": "array", "items": _ref("Dispute")},
                           "next": {"type": ["string", "null"]}})),
            params=[_query("after", {"type": "string", "minLength": 3, "maxLength": 200,
                                     "pattern": "^(token|container|shipment|party):.+$"},
                           "KIND:ID: list the objects after this one (a page's `next`)"),
                    _query("limit", {"type": "integer", "minimum": 1, "maximum": 1000},
                           "default 100")],
            errors=(400, 401))},
        "/v1/alerts/stream": {"get": {
            "summary": "Server-Sent Events: every matching alert after the cursor, then live. "
                       "Event id is the alert cursor; resume with Last-Event-ID.",
            "parameters": alert_params,
            "responses": {"200": {"description": "An event stream",
                                  "content": {"text/event-stream": {"schema": {
                                      "type": "string"}}}},
                          **_error_responses(400, 401, 503)}}},
        "/metrics": {"get": {"summary": "Prometheus metrics (text exposition format)",
                             "responses": {"200": {"description": "Metrics", "content": {
                                 "text/plain": {"schema": {"type": "string"}}}},
                                 **_error_responses(401)}}},
        "/v1/openapi.json": {"get": {"summary": "This document", "security": [],
                                     "responses": {"200": {"description": "OpenAPI 3.1",
                                                           "content": {"application/json": {
                                                               "schema": _ANY_OBJ}}}}}},
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "sealchain node RPC", "version": VERSION,
                 "description": "Bearer tokens from DATA/rpc.tokens: the write token for "
                                "POSTs, either token for reads."},
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {"schemas": defs, "securitySchemes": {
            "bearer": {"type": "http", "scheme": "bearer"}}},
    }
