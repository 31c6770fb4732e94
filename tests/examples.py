"""Valid example record bodies, as wire dicts, for tests to reuse.

One builder per record type (`examples.mint()`), each returning a fresh dict
that `schema.parse_body` accepts, with every optional field that fits filled
in. Keyword arguments replace fields; passing `None` removes one (nil is never
valid on the wire, so `None` cannot mean anything else)::

    examples.recall(lot=None, serials=["A1"])

`EXAMPLES` maps every registered record type to its builder; `VARIANTS` adds
valid bodies of other shapes (the other sensor kinds, a recall by serials, ...).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from crypto import hashing
from crypto.keys import SigningKey
from protocol.bodies import MANIFEST_CHUNK, alert_key, token_id
from protocol.bodies.common import ObjectRef

Body = dict[str, Any]

# Identifiers with valid check digits.
CONTAINER: Final = "CSQU3054383"
CONTAINER_2: Final = "MSCU1234566"
CONTAINER_3: Final = "TGHU9876542"
GTIN: Final = "09506000134352"
GTIN_2: Final = "04006381333931"
GLN: Final = "9506000000008"
SSCC: Final = "376104250021234569"
SERIALS: Final = ("A0001", "A0002", "A0003")
LOT: Final = "L2024-07"
SHIPMENT: Final = "SHP-2024.0001"
T0: Final = 1_720_000_000_000  # 2024-07-03, in ms

# Keys: a fixed authority (record signer), a subject and a device.
AUTHORITY: Final = SigningKey(bytes([1]) * 32)
SUBJECT_KEY: Final = SigningKey(bytes([2]) * 32).public.raw
DEVICE_KEY: Final = SigningKey(bytes([3]) * 32).public.raw
NETWORK: Final = hashing.h(hashing.NETWORK_ID, b"sealchain test network")


def record_id(label: str) -> bytes:
    """A stand-in record id (32 bytes), distinct per label."""
    return hashing.h(hashing.RECORD_ID, label.encode())


TOKENS: Final = tuple(sorted(token_id(GTIN, s) for s in SERIALS))
# Not the real Merkle root of TOKENS: bodies do not check it, and tests that do
# compute their own.
MANIFEST_ROOT: Final = hashing.h(hashing.MERKLE_NODE, b"".join(TOKENS))


def _with(body: Body, changes: dict[str, Any]) -> Body:
    for k, v in changes.items():
        if v is None:
            body.pop(k, None)
        else:
            body[k] = v
    return body


def place(**changes: Any) -> Body:
    return _with(
        {
            "country": "NL",
            "locode": "NLRTM",
            "gln": GLN,
            "lat_udeg": 51_950_000,
            "lon_udeg": 4_140_000,
            "name": "Maasvlakte II",
        },
        changes,
    )


def goods(**changes: Any) -> Body:
    return _with(
        {
            "hs": "851712",
            "description": "Mobile phones",
            "quantity": 3,
            "weight_g": 1_200,
            "gtin": GTIN,
        },
        changes,
    )


def container_ref(number: str = CONTAINER) -> Body:
    return {"kind": "container", "id": number}


def token_ref(serial: str = SERIALS[0]) -> Body:
    return {"kind": "token", "id": token_id(GTIN, serial).hex()}


def trademark(**changes: Any) -> Body:
    return _with(
        {
            "mark": "ACME",
            "classes": [9, 25],
            "markets": ["DE", "FR", "NL"],
            "gs1_prefixes": ["0400638", "950600"],
        },
        changes,
    )


# -- identity ------------------------------------------------------------------


def credential_issue(**changes: Any) -> Body:
    return _with(
        {
            "subject": SUBJECT_KEY,
            "org": "ACME Brands B.V.",
            "roles": ["brand", "manufacturer"],
            "jurisdictions": ["DE", "NL"],
            "trademarks": [trademark()],
            "valid_from": T0,
            "valid_until": T0 + 365 * 86_400_000,
            "observer": False,
        },
        changes,
    )


def credential_delegate(**changes: Any) -> Body:
    return _with(
        {
            "delegate": DEVICE_KEY,
            "device": "eseal",
            "types": ["container.seal", "sensor"],
            "containers": [CONTAINER, CONTAINER_2],
            "valid_from": T0,
            "valid_until": T0 + 30 * 86_400_000,
        },
        changes,
    )


def credential_revoke(**changes: Any) -> Body:
    return _with(
        {
            "credential": record_id("credential.issue"),
            "reason": "key compromised",
            "effective": T0 + 86_400_000,
        },
        changes,
    )


# -- products ----------------------------------------------------------------------


def mint(**changes: Any) -> Body:
    return _with(
        {
            "gtin": GTIN,
            "lot": LOT,
            "serials": list(SERIALS),
            "mark": "ACME",
            "markets": ["DE", "FR", "NL"],
            "facility": GLN,
            "expiry": T0 + 2 * 365 * 86_400_000,
            "attrs": {"colour": "black", "storage_gb": 128, "refurbished": False},
        },
        changes,
    )


def recall(**changes: Any) -> Body:
    return _with({"gtin": GTIN, "lot": LOT, "reason": "battery may overheat"}, changes)


# -- containers ----------------------------------------------------------------------


def container_create(**changes: Any) -> Body:
    return _with(
        {"container": CONTAINER, "sscc": SSCC, "tare_g": 2_200_000, "max_gross_g": 30_480_000},
        changes,
    )


def pack(**changes: Any) -> Body:
    return _with(
        {
            "container": CONTAINER,
            "root": MANIFEST_ROOT,
            "count": len(TOKENS),
            "chunk": 0,
            "chunks": 1,
            "items": list(TOKENS),
            "weight_g": 3_600,
            "shipment": SHIPMENT,
        },
        changes,
    )


def pack_chunks(count: int) -> list[Body]:
    """The full, valid chunk layout of a manifest of `count` synthetic token ids."""
    items = sorted(token_id(GTIN, f"S{i}") for i in range(count))
    chunks = -(-count // MANIFEST_CHUNK)
    root = hashing.h(hashing.MERKLE_NODE, f"manifest of {count}".encode())
    return [
        pack(
            root=root,
            count=count,
            chunk=i,
            chunks=chunks,
            items=items[i * MANIFEST_CHUNK : (i + 1) * MANIFEST_CHUNK],
        )
        for i in range(chunks)
    ]


def seal(**changes: Any) -> Body:
    return _with({"container": CONTAINER, "seal": "ML-4512345", "seal_class": "H"}, changes)


def unpack(**changes: Any) -> Body:
    return _with({"container": CONTAINER, "reason": "delivered to consignee"}, changes)


# -- custody ---------------------------------------------------------------------------


def handover_offer(**changes: Any) -> Body:
    return _with(
        {"object": container_ref(), "to": SUBJECT_KEY, "head": record_id("container.create")},
        changes,
    )


def handover_accept(**changes: Any) -> Body:
    return _with(
        {
            "offer": record_id("handover.offer"),
            "object": container_ref(),
            "head": record_id("container.create"),
        },
        changes,
    )


# -- observations -------------------------------------------------------------------------


def scan(**changes: Any) -> Body:
    return _with(
        {
            "object": container_ref(),
            "place": place(),
            "event": "gate_in",
            "seal": "ML-4512345",
            "at": T0 + 3_600_000,
        },
        changes,
    )


def sensor(**changes: Any) -> Body:
    return _with(
        {"container": CONTAINER, "kind": "weight", "at": T0 + 60_000, "value": 3_000_000},
        changes,
    )


# -- shipments and customs ---------------------------------------------------------------


def shipment_create(**changes: Any) -> Body:
    return _with(
        {
            "shipment": SHIPMENT,
            "origin": place(country="CN", locode="CNSHA", gln=None, name="Shanghai"),
            "destination": place(),
            "route": ["CNSHA", "SGSIN", "NLRTM"],
            "consignor": "Shenzhen Electronics Co.",
            "consignee": "ACME Distribution B.V.",
            "containers": [CONTAINER, CONTAINER_2],
            "goods": [goods(), goods(hs="392690", description="Phone cases", gtin=None)],
            "silence_limit_ms": 6 * 3_600_000,
        },
        changes,
    )


def shipment_update(**changes: Any) -> Body:
    return _with(
        {
            "shipment": SHIPMENT,
            "status": "in_transit",
            "eta": T0 + 30 * 86_400_000,
            "note": "departed Shanghai",
        },
        changes,
    )


def customs_declaration(**changes: Any) -> Body:
    return _with(
        {
            "shipment": SHIPMENT,
            "jurisdiction": "NL",
            "procedure": "import",
            "declarant": "ACME Distribution B.V.",
            "containers": [CONTAINER, CONTAINER_2],
            "goods": [goods()],
        },
        changes,
    )


def customs_action(**changes: Any) -> Body:
    return _with(
        {
            "subject": container_ref(),
            "action": "result",
            "result": "conform",
            "note": "physical inspection matched the manifest",
        },
        changes,
    )


# -- alerts --------------------------------------------------------------------------------


def alert(**changes: Any) -> Body:
    """An alert whose `key` is computed from its rule, subject and evidence (after changes)."""
    body = _with(
        {
            "rule": "seal.mismatch",
            "severity": "high",
            "subject": container_ref(),
            "reason": "scan saw seal ML-4512346, sealed with ML-4512345",
            "evidence": sorted([record_id("container.seal"), record_id("scan")]),
        },
        changes,
    )
    if "key" not in changes:
        subject = ObjectRef(kind=body["subject"]["kind"], id=body["subject"]["id"])
        body["key"] = alert_key(body["rule"], subject, body["evidence"],
                                severity=body["severity"], reason=body["reason"])
    return body


EXAMPLES: Final[dict[str, Callable[[], Body]]] = {
    "credential.issue": credential_issue,
    "credential.delegate": credential_delegate,
    "credential.revoke": credential_revoke,
    "product.mint": mint,
    "recall": recall,
    "container.create": container_create,
    "container.pack": pack,
    "container.seal": seal,
    "container.unpack": unpack,
    "handover.offer": handover_offer,
    "handover.accept": handover_accept,
    "scan": scan,
    "sensor": sensor,
    "shipment.create": shipment_create,
    "shipment.update": shipment_update,
    "customs.declaration": customs_declaration,
    "customs.action": customs_action,
    "alert": alert,
}

# Other valid shapes, keyed "type/variant".
VARIANTS: Final[dict[str, Callable[[], Body]]] = {
    "credential.issue/customs": lambda: credential_issue(
        roles=["customs"], trademarks=None, observer=True
    ),
    "recall/serials": lambda: recall(lot=None, serials=["A0001", "A0003"]),
    "handover.offer/token": lambda: handover_offer(object=token_ref(), head=record_id("mint")),
    "scan/token": lambda: scan(object=token_ref(), seal=None, event="observe"),
    "scan/shipment": lambda: scan(object={"kind": "shipment", "id": SHIPMENT}, seal=None),
    "sensor/door": lambda: sensor(kind="door", value=None, open=True),
    "sensor/tamper": lambda: sensor(kind="tamper", value=None),
    "sensor/temperature": lambda: sensor(kind="temperature", value=-18_500),
    "sensor/position": lambda: sensor(
        kind="position", value=None, lat_udeg=1_264_000, lon_udeg=103_840_000
    ),
    "customs.action/hold": lambda: customs_action(
        subject={"kind": "shipment", "id": SHIPMENT}, action="hold", result=None
    ),
    "alert/token": lambda: alert(rule="token.clone", severity="critical", subject=token_ref()),
}
