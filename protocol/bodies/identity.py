"""Credential records: issue, delegate, revoke.

The network authority issues credentials binding a key to an organisation,
roles and jurisdictions (and, for a brand, its trademarks). A credentialed
participant delegates narrow rights to a device key (a scanner, an e-seal, a
sensor). Revocations name the issue or delegate record they end.

Role combinations are part of a credential's validity: the `authority` role is
never granted (the genesis alone names the authorities), and `customs` stands
alone (a customs node writes only customs actions and alerts, so it cannot also
hold a party's role).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from protocol import schema
from protocol.bodies.common import (
    DEVICES,
    ROLES,
    TIMESTAMP,
    check_window,
    containers,
    countries,
    text,
)
from protocol.errors import ValidationError
from protocol.schema import f, register

__all__ = [
    "Trademark",
    "CredentialIssue",
    "CredentialDelegate",
    "CredentialRevoke",
    "DELEGABLE",
    "GRANTABLE_ROLES",
]

# The record types a device key may be delegated to write.
DELEGABLE: Final = ("scan", "sensor", "container.seal", "handover.accept")

# The roles a credential may grant: every role but `authority`.
GRANTABLE_ROLES: Final = tuple(r for r in ROLES if r != "authority")

_GS1_PREFIX: Final = schema.string(12, r"[0-9]{6,12}", min_len=6)


@dataclass(frozen=True, slots=True, kw_only=True)
class Trademark(schema.Struct):
    """A brand's registered mark: Nice classes, authorised markets, GS1 company prefixes."""

    mark: str = f(text(100))
    classes: tuple[int, ...] = f(
        schema.list_of(schema.integer(1, 45), min=1, max=45, ascending=True)
    )
    markets: tuple[str, ...] = f(countries())
    gs1_prefixes: tuple[str, ...] = f(schema.list_of(_GS1_PREFIX, min=1, max=32, ascending=True))


@register("credential.issue")
@dataclass(frozen=True, slots=True, kw_only=True)
class CredentialIssue(schema.Body):
    """The authority credentials `subject` (an Ed25519 public key)."""

    subject: bytes = f(schema.key32)
    org: str = f(text(200))
    roles: tuple[str, ...] = f(
        schema.list_of(schema.one_of(*ROLES), min=1, max=len(ROLES), ascending=True)
    )
    jurisdictions: tuple[str, ...] = f(countries())
    trademarks: tuple[Trademark, ...] | None = f(
        schema.list_of(schema.struct(Trademark), min=1, max=64), default=None
    )
    valid_from: int = f(TIMESTAMP)
    valid_until: int = f(TIMESTAMP)
    observer: bool | None = f(schema.boolean, default=None)

    def validate(self, path: str) -> None:
        check_window(self.valid_from, self.valid_until, path)
        if "authority" in self.roles:
            raise ValidationError(
                f"{path}.roles", "role.authority",
                "the authority role is not granted: the genesis names the authorities",
            )
        if "customs" in self.roles and len(self.roles) > 1:
            raise ValidationError(
                f"{path}.roles", "role.customs_alone",
                f"customs combines with no other role (got {list(self.roles)})",
            )
        brand = "brand" in self.roles
        if self.trademarks is not None and not brand:
            raise ValidationError(
                f"{path}.trademarks", "role", "only a brand credential lists trademarks"
            )
        if self.trademarks is None and brand:
            raise ValidationError(
                f"{path}.trademarks", "required", "a brand credential lists its trademarks"
            )


@register("credential.delegate")
@dataclass(frozen=True, slots=True, kw_only=True)
class CredentialDelegate(schema.Body):
    """The author lets the device key `delegate` write `types` (optionally only for `containers`)."""

    delegate: bytes = f(schema.key32)
    device: str = f(schema.one_of(*DEVICES))
    types: tuple[str, ...] = f(
        schema.list_of(schema.one_of(*DELEGABLE), min=1, max=16, ascending=True)
    )
    containers: tuple[str, ...] | None = f(containers(), default=None)
    valid_from: int = f(TIMESTAMP)
    valid_until: int = f(TIMESTAMP)

    def validate(self, path: str) -> None:
        check_window(self.valid_from, self.valid_until, path)


@register("credential.revoke")
@dataclass(frozen=True, slots=True, kw_only=True)
class CredentialRevoke(schema.Body):
    """Ends the credential or delegation issued by record `credential` from `effective` on."""

    credential: bytes = f(schema.hash32)
    reason: str = f(text(200))
    effective: int = f(TIMESTAMP)
