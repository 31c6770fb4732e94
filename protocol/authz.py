"""Role rules: which author may write which record type.

One table owns the mapping from record type to the roles that may author it
(`WRITERS`). On top of it: the authority writes only credential statements and
alerts; only a trademark owner mints (and recalls) its own marks, within its
GS1 company prefixes; a customs node writes only customs actions and alerts
(even if its grant claims another role too); the `authority` role counts only
for keys the genesis names, never from a grant; a device key writes only what
its delegation allows, for the containers it names; a delegator cannot lend a right it does not hold; a party may revoke only its
own delegations (other revocations by a party are stored but have no effect).

`authorise()` is evaluated at the record's own timestamp against a
`CredentialSet` (pure), so every node with the same records decides the same.
"""

from __future__ import annotations

from typing import Any, Final

from crypto.credentials import Authority, CredentialSet, Delegation, Grant, Standing
from protocol.envelope import Record
from protocol.errors import RoleError

_PARTIES: Final = frozenset({"brand", "manufacturer", "carrier", "forwarder", "retailer"})
_PACKERS: Final = frozenset({"brand", "manufacturer", "forwarder", "carrier", "retailer"})
_MOVERS: Final = frozenset({"manufacturer", "carrier", "forwarder", "brand"})

WRITERS: Final[dict[str, frozenset[str]]] = {
    "credential.issue": frozenset({"authority"}),
    # A party revokes its own delegations (`CredentialSet` ignores it revoking anything else).
    "credential.revoke": frozenset({"authority"}) | _PARTIES,
    "credential.delegate": _PARTIES,
    "product.mint": frozenset({"brand"}),
    "recall": frozenset({"brand"}),
    "container.create": _PACKERS,
    "container.pack": _PACKERS,
    "container.unpack": _PACKERS,
    "container.seal": _PACKERS,
    "handover.offer": _PARTIES,
    "handover.accept": _PARTIES,
    "scan": _PARTIES,
    "sensor": _MOVERS,
    "shipment.create": _MOVERS | {"retailer"},
    "shipment.update": _MOVERS | {"retailer"},
    "customs.declaration": _PARTIES,
    "customs.action": frozenset({"customs"}),
    "alert": frozenset(
        {"authority", "brand", "manufacturer", "carrier", "forwarder", "retailer", "customs"}
    ),
}

# What a key holding the customs role may write, whatever else its grant claims
# (`CredentialIssue` refuses customs combined with another role; this is the
# second line of defence).
CUSTOMS_WRITES: Final = frozenset({"customs.action", "alert"})

_STANDING_RULE: Final = {
    Standing.UNKNOWN: "author.unknown",
    Standing.NOT_YET_VALID: "author.not_yet_valid",
    Standing.EXPIRED: "author.expired",
    Standing.REVOKED: "author.revoked",
}


# -- credential statements -------------------------------------------------------


def apply_statement(creds: CredentialSet, record: Record) -> bool:
    """Add a credential record's statement to `creds`. False for other record types."""
    b: Any = record.body
    if record.type == "credential.issue":
        creds.add_grant(
            Grant(
                id=record.id,
                issuer=record.author,
                subject=b.subject,
                org=b.org,
                roles=frozenset(b.roles),
                jurisdictions=frozenset(b.jurisdictions),
                valid_from=b.valid_from,
                valid_until=b.valid_until,
                observer=bool(b.observer),
                trademarks=tuple(b.trademarks or ()),
            )
        )
        return True
    if record.type == "credential.delegate":
        creds.add_delegation(
            Delegation(
                id=record.id,
                delegator=record.author,
                delegate=b.delegate,
                device=b.device,
                types=frozenset(b.types),
                containers=frozenset(b.containers) if b.containers is not None else None,
                valid_from=b.valid_from,
                valid_until=b.valid_until,
            )
        )
        return True
    if record.type == "credential.revoke":
        creds.add_revocation(b.credential, record.author, b.effective)
        return True
    return False


# -- authorisation ---------------------------------------------------------------


def container_of(record: Record) -> str | None:
    """The container a record concerns, for delegations restricted to containers."""
    b: Any = record.body
    c = getattr(b, "container", None)
    if isinstance(c, str):
        return c
    obj = getattr(b, "object", None)
    if obj is not None and obj.kind == "container":
        return str(obj.id)
    return None


def authorise(creds: CredentialSet, record: Record) -> Authority:
    """The author's authority for `record`, or `RoleError` saying why not.

    An unknown author gets penalty 0: its credential may simply not have
    reached us yet.
    """
    auth = creds.status(record.author, record.ts, record.type, container_of(record))
    if not auth.ok:
        rule = _STANDING_RULE.get(auth.standing, "author.unknown")
        raise RoleError(
            rule,
            f"author has no credential in force at {record.ts} ({auth.standing.value})",
            penalty=0 if auth.standing is Standing.UNKNOWN else 5,
        )
    writers = WRITERS.get(record.type, frozenset())
    if "customs" in auth.roles and record.type not in CUSTOMS_WRITES:
        raise RoleError(
            "role",
            f"a customs credential writes only {sorted(CUSTOMS_WRITES)}, not {record.type}",
        )
    if auth.standing is Standing.DELEGATED:
        # `status` already matched the delegation to this type and container;
        # the delegator must hold the right itself.
        if not auth.roles & writers:
            raise RoleError("delegation", f"the delegator may not write {record.type}")
        return auth
    if not auth.roles & writers:
        raise RoleError(
            "role",
            f"roles {sorted(auth.roles)} may not write {record.type}"
            f" (allowed: {sorted(writers)})",
        )
    if record.type in ("product.mint", "recall"):
        _check_trademark(auth, record)
    elif record.type == "credential.delegate":
        b: Any = record.body
        for t in b.types:
            if not auth.roles & WRITERS.get(t, frozenset()):
                raise RoleError("delegation", f"cannot delegate {t}: the delegator may not write it")
    return auth


def owns_gtin(grant: Grant, gtin14: str, mark: str | None = None) -> bool:
    """Whether `grant` holds a trademark covering `gtin14` (and `mark`, if given)."""
    company = gtin14[1:]  # drop the indicator / padding digit
    for tm in grant.trademarks:
        if mark is not None and tm.mark != mark:
            continue
        if any(company.startswith(p) for p in tm.gs1_prefixes):
            return True
    return False


def _check_trademark(auth: Authority, record: Record) -> None:
    b: Any = record.body
    grant = auth.grant
    mark = b.mark if record.type == "product.mint" else None
    if grant is None or not owns_gtin(grant, b.gtin, mark):
        what = f"mark {mark!r} with GTIN {b.gtin}" if mark else f"GTIN {b.gtin}"
        raise RoleError("trademark", f"author does not own {what}")
