"""Credentials: who holds which rights in a network, and when.

The network authority (whose keys the genesis names) issues *grants*: a key is
bound to an organisation, roles, jurisdictions and (for brands) trademarks for
a validity window. A credentialed party may *delegate* a subset of its rights
to a device key (scanner, e-seal, sensor). Grants are revoked by an authority;
delegations by their delegator or an authority. A revocation takes effect at
its `effective` time.

Grants, delegations and revocations travel as signed records in their signers'
feeds (see `protocol.authz`, which turns record bodies into the plain values
here after the record signatures are checked). `CredentialSet` is a pure
function of the set of statements added, in any order, so every node holding
the same records and the genesis answers `status()` the same way, offline.
"""

from __future__ import annotations

import enum
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any


class Standing(enum.Enum):
    AUTHORITY = "authority"
    VALID = "valid"
    DELEGATED = "delegated"
    UNKNOWN = "unknown"
    NOT_YET_VALID = "not_yet_valid"
    EXPIRED = "expired"
    REVOKED = "revoked"

    @property
    def ok(self) -> bool:
        return self in (Standing.AUTHORITY, Standing.VALID, Standing.DELEGATED)


@dataclass(frozen=True, slots=True, kw_only=True)
class Grant:
    """An authority's credential for one key."""

    id: bytes
    issuer: bytes
    subject: bytes
    org: str
    roles: frozenset[str]
    jurisdictions: frozenset[str]
    valid_from: int
    valid_until: int
    observer: bool = False
    trademarks: tuple[Any, ...] = field(default=(), compare=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class Delegation:
    """A credentialed party lending a subset of its rights to a device key."""

    id: bytes
    delegator: bytes
    delegate: bytes
    device: str
    types: frozenset[str]
    containers: frozenset[str] | None
    valid_from: int
    valid_until: int

    def allows(self, record_type: str, container: str | None) -> bool:
        if record_type not in self.types:
            return False
        return self.containers is None or (container is not None and container in self.containers)


_AUTHORITY_ROLES = frozenset({"authority"})


@dataclass(frozen=True, slots=True)
class Authority:
    """What `status()` returns: the standing and, when valid, the rights behind it."""

    standing: Standing
    grant: Grant | None = None
    delegation: Delegation | None = None

    @property
    def ok(self) -> bool:
        return self.standing.ok

    @property
    def roles(self) -> frozenset[str]:
        """The roles in force; `authority` comes from the genesis only, never from a grant."""
        if self.standing is Standing.AUTHORITY:
            return _AUTHORITY_ROLES
        if self.grant is None:
            return frozenset()
        roles = self.grant.roles
        return roles - _AUTHORITY_ROLES if "authority" in roles else roles


class CredentialSet:
    """The rights in force, as a pure function of the statements added."""

    def __init__(self, authorities: Iterable[bytes]) -> None:
        self.authorities = frozenset(authorities)
        self._grants: dict[bytes, dict[bytes, Grant]] = defaultdict(dict)  # subject -> id -> grant
        self._delegations: dict[bytes, dict[bytes, Delegation]] = defaultdict(dict)
        self._by_id: dict[bytes, Grant | Delegation] = {}
        self._revocations: dict[bytes, dict[bytes, int]] = defaultdict(dict)  # target -> revoker -> effective
        # key -> (from, until, its grant's Authority): `grant_status` of a key with one
        # grant, for any time in [from, until). Cleared by every statement added.
        self._in_force: dict[bytes, tuple[int, int, Authority]] = {}
        # (key, record type) -> the same for a key with no grant and one delegation,
        # which restricts no containers: what `status` answers through it.
        self._delegated: dict[tuple[bytes, str | None], tuple[int, int, Authority]] = {}

    # -- statements ------------------------------------------------------------

    def add_grant(self, grant: Grant) -> bool:
        """Add a grant; False (and ignored) unless an authority issued it."""
        if grant.issuer not in self.authorities:
            return False
        self._grants[grant.subject][grant.id] = grant
        self._by_id[grant.id] = grant
        self._forget()
        return True

    def add_delegation(self, delegation: Delegation) -> None:
        self._delegations[delegation.delegate][delegation.id] = delegation
        self._by_id[delegation.id] = delegation
        self._forget()

    def add_revocation(self, target: bytes, revoker: bytes, effective: int) -> None:
        # A revoker may state several times: the earliest stands, whatever the order.
        by = self._revocations[target]
        earlier = by.get(revoker)
        by[revoker] = effective if earlier is None else min(earlier, effective)
        self._forget()

    def _forget(self) -> None:
        self._in_force.clear()
        self._delegated.clear()

    def get(self, statement_id: bytes) -> Grant | Delegation | None:
        return self._by_id.get(statement_id)

    # -- queries ---------------------------------------------------------------

    def revoked_at(self, statement_id: bytes) -> int | None:
        """When the statement stops being in force, by its earliest valid revocation."""
        target = self._by_id.get(statement_id)
        times = []
        for revoker, effective in self._revocations.get(statement_id, {}).items():
            if revoker in self.authorities or (
                isinstance(target, Delegation) and revoker == target.delegator
            ):
                times.append(effective)
        return min(times) if times else None

    def _window(self, s: Grant | Delegation, at: int) -> Standing:
        revoked = self.revoked_at(s.id)
        if revoked is not None and at >= revoked:
            return Standing.REVOKED
        if at < s.valid_from:
            return Standing.NOT_YET_VALID
        if at >= s.valid_until:
            return Standing.EXPIRED
        return Standing.VALID

    def grant_status(self, key: bytes, at: int) -> Authority:
        """The standing of `key`'s own credential at time `at` (ms)."""
        known = self._in_force.get(key)
        if known is not None and known[0] <= at < known[1]:
            return known[2]
        if key in self.authorities:
            return Authority(Standing.AUTHORITY)
        grants = self._grants.get(key)
        if not grants:
            return Authority(Standing.UNKNOWN)
        worst = Standing.UNKNOWN
        # Several grants may exist (renewals): any one in force is enough; the
        # one chosen is the in-force grant with the smallest id, so every node
        # picks the same.
        for gid in sorted(grants):
            standing = self._window(grants[gid], at)
            if standing is Standing.VALID:
                auth = Authority(Standing.VALID, grant=grants[gid])
                if len(grants) == 1:  # then the answer is the same all through its window
                    g, revoked = grants[gid], self.revoked_at(gid)
                    until = g.valid_until if revoked is None else min(g.valid_until, revoked)
                    self._in_force[key] = (g.valid_from, until, auth)
                return auth
            worst = _worse(worst, standing)
        return Authority(worst)

    def status(self, key: bytes, at: int, record_type: str | None = None,
               container: str | None = None) -> Authority:
        """The standing of `key` at `at`: its own grant, else a delegation in force.

        A delegation is in force when it is within its window, unrevoked, its
        delegator's own grant is in force at `at`, and (when `record_type` is
        given) it allows that type (for `container`, if it restricts containers).
        """
        known = self._delegated.get((key, record_type))
        if known is not None and known[0] <= at < known[1]:
            return known[2]
        own = self.grant_status(key, at)
        if own.ok:
            return own
        worst = own.standing
        delegations = self._delegations.get(key, {})
        for did in sorted(delegations):
            d = delegations[did]
            standing = self._window(d, at)
            if standing is Standing.VALID:
                parent = self.grant_status(d.delegator, at)
                if not parent.ok:
                    standing = parent.standing
                elif record_type is not None and not d.allows(record_type, container):
                    continue
                else:
                    auth = Authority(Standing.DELEGATED, grant=parent.grant, delegation=d)
                    self._remember_delegated(key, record_type, d, auth)
                    return auth
            worst = _worse(worst, standing)
        return Authority(worst)


    def _remember_delegated(self, key: bytes, record_type: str | None, d: Delegation,
                            auth: Authority) -> None:
        """Keep `auth` for the times it holds, when that is one interval: the key has no
        grant and only `d`, which restricts no containers, and the delegator one grant."""
        if key in self._grants or len(self._delegations[key]) != 1 or d.containers is not None:
            return
        parent = self._in_force.get(d.delegator)  # just set by `grant_status`, if one grant
        if parent is None:
            return
        revoked = self.revoked_at(d.id)
        until = d.valid_until if revoked is None else min(d.valid_until, revoked)
        self._delegated[(key, record_type)] = (
            max(d.valid_from, parent[0]), min(until, parent[1]), auth)


_RANK = {
    Standing.UNKNOWN: 0,
    Standing.NOT_YET_VALID: 1,
    Standing.EXPIRED: 2,
    Standing.REVOKED: 3,
}


def _worse(a: Standing, b: Standing) -> Standing:
    """The more telling of two failures (revoked beats expired beats unknown)."""
    return a if _RANK.get(a, 0) >= _RANK.get(b, 0) else b
