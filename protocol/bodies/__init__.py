"""Record body types for the whole data model; importing this registers them all."""

from __future__ import annotations

from protocol.bodies.alert import Alert, alert_key
from protocol.bodies.common import (
    DEVICES,
    MANIFEST_CHUNK,
    ROLES,
    SEVERITIES,
    Goods,
    ObjectRef,
    Place,
    token_id,
    token_ref,
)
from protocol.bodies.container import ContainerCreate, ContainerPack, ContainerSeal, ContainerUnpack
from protocol.bodies.custody import HandoverAccept, HandoverOffer
from protocol.bodies.customs import CustomsAction, CustomsDeclaration
from protocol.bodies.identity import (
    CredentialDelegate,
    CredentialIssue,
    CredentialRevoke,
    Trademark,
)
from protocol.bodies.observation import Scan, Sensor
from protocol.bodies.product import ProductMint, Recall
from protocol.bodies.shipment import ShipmentCreate, ShipmentUpdate

__all__ = [
    "ROLES",
    "DEVICES",
    "SEVERITIES",
    "MANIFEST_CHUNK",
    "ObjectRef",
    "Place",
    "Goods",
    "token_id",
    "token_ref",
    "Trademark",
    "CredentialIssue",
    "CredentialDelegate",
    "CredentialRevoke",
    "ProductMint",
    "Recall",
    "ContainerCreate",
    "ContainerPack",
    "ContainerSeal",
    "ContainerUnpack",
    "HandoverOffer",
    "HandoverAccept",
    "Scan",
    "Sensor",
    "ShipmentCreate",
    "ShipmentUpdate",
    "CustomsDeclaration",
    "CustomsAction",
    "Alert",
    "alert_key",
]
