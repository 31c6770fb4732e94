"""Credential sets: grants, delegations and revocations, and the standing they give a key."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crypto import hashing
from crypto.credentials import CredentialSet, Delegation, Grant, Standing

AUTH = b"A" * 32
AUTH_2 = b"B" * 32
BRAND = b"b" * 32
CARRIER = b"c" * 32
DEVICE = b"d" * 32
DEVICE_2 = b"e" * 32
NOBODY = b"x" * 32

T0 = 1_000_000
DAY = 86_400_000
C1, C2, C3 = "CSQU3054383", "MSCU1234566", "TGHU9876542"


def sid(*parts: Any) -> bytes:
    """A statement id: the hash of what it says (as a record id would be)."""
    return hashing.h(hashing.RECORD_ID, repr(parts).encode())


def grant(subject: bytes, *, issuer: bytes = AUTH, roles: tuple[str, ...] = ("brand",),
          start: int = T0, end: int = T0 + 10 * DAY, tag: str = "") -> Grant:
    return Grant(
        id=sid("grant", issuer, subject, roles, start, end, tag),
        issuer=issuer, subject=subject, org="Org", roles=frozenset(roles),
        jurisdictions=frozenset({"NL"}), valid_from=start, valid_until=end,
    )


def delegation(delegate: bytes = DEVICE, *, delegator: bytes = BRAND,
               types: tuple[str, ...] = ("scan", "sensor"),
               containers: tuple[str, ...] | None = None,
               start: int = T0, end: int = T0 + 5 * DAY, tag: str = "") -> Delegation:
    return Delegation(
        id=sid("delegation", delegator, delegate, types, containers, start, end, tag),
        delegator=delegator, delegate=delegate, device="scanner", types=frozenset(types),
        containers=frozenset(containers) if containers is not None else None,
        valid_from=start, valid_until=end,
    )


def creds(*statements: Grant | Delegation) -> CredentialSet:
    cs = CredentialSet([AUTH, AUTH_2])
    for s in statements:
        if isinstance(s, Grant):
            cs.add_grant(s)
        else:
            cs.add_delegation(s)
    return cs


def standing(cs: CredentialSet, key: bytes, at: int, *args: Any) -> Standing:
    return cs.status(key, at, *args).standing


# -- grants -------------------------------------------------------------------------------


def test_authorities_stand_as_authority() -> None:
    cs = creds()
    auth = cs.status(AUTH_2, T0)
    assert auth.standing is Standing.AUTHORITY
    assert auth.ok
    assert auth.roles == frozenset({"authority"})


def test_unknown_key() -> None:
    auth = creds().status(NOBODY, T0)
    assert auth.standing is Standing.UNKNOWN
    assert not auth.ok
    assert auth.roles == frozenset()


def test_a_grant_by_an_authority_is_in_force() -> None:
    g = grant(BRAND, roles=("brand", "manufacturer"), issuer=AUTH_2)
    cs = creds(g)
    auth = cs.status(BRAND, T0 + DAY)
    assert auth.standing is Standing.VALID
    assert auth.grant == g
    assert auth.roles == frozenset({"brand", "manufacturer"})
    assert cs.get(g.id) == g


def test_a_granted_authority_role_is_not_in_force() -> None:
    # Only the genesis names authorities; a grant claiming the role (which
    # `CredentialIssue` refuses) keeps its other roles and loses that one.
    auth = creds(grant(CARRIER, roles=("authority", "carrier"))).status(CARRIER, T0 + DAY)
    assert auth.standing is Standing.VALID
    assert auth.roles == frozenset({"carrier"})


def test_a_grant_by_a_non_authority_is_ignored() -> None:
    cs = creds()
    for issuer in (NOBODY, BRAND):
        g = grant(CARRIER, issuer=issuer, roles=("carrier",))
        assert cs.add_grant(g) is False
        assert cs.get(g.id) is None
    assert standing(cs, CARRIER, T0 + DAY) is Standing.UNKNOWN
    # Even when the issuer itself holds a valid grant.
    cs.add_grant(grant(BRAND))
    assert cs.add_grant(grant(CARRIER, issuer=BRAND, roles=("carrier",))) is False
    assert standing(cs, CARRIER, T0 + DAY) is Standing.UNKNOWN


def test_grant_window() -> None:
    cs = creds(grant(BRAND, start=T0, end=T0 + DAY))
    assert standing(cs, BRAND, T0 - 1) is Standing.NOT_YET_VALID
    assert standing(cs, BRAND, T0) is Standing.VALID
    assert standing(cs, BRAND, T0 + DAY - 1) is Standing.VALID
    assert standing(cs, BRAND, T0 + DAY) is Standing.EXPIRED


def test_revocation_takes_effect_at_its_effective_time() -> None:
    g = grant(BRAND)
    cs = creds(g)
    cs.add_revocation(g.id, AUTH, T0 + DAY)
    assert cs.revoked_at(g.id) == T0 + DAY
    assert standing(cs, BRAND, T0 + DAY - 1) is Standing.VALID
    assert standing(cs, BRAND, T0 + DAY) is Standing.REVOKED
    assert standing(cs, BRAND, T0 + 100 * DAY) is Standing.REVOKED  # beats expired


def test_revocation_before_the_window_opens() -> None:
    g = grant(BRAND, start=T0 + DAY)
    cs = creds(g)
    cs.add_revocation(g.id, AUTH, T0)
    assert standing(cs, BRAND, T0 - 1) is Standing.NOT_YET_VALID
    assert standing(cs, BRAND, T0 + 2 * DAY) is Standing.REVOKED


def test_grant_revocations_by_non_authorities_are_ignored() -> None:
    g = grant(BRAND)
    cs = creds(g)
    cs.add_revocation(g.id, BRAND, T0)  # not even the subject itself
    cs.add_revocation(g.id, NOBODY, T0)
    assert cs.revoked_at(g.id) is None
    assert standing(cs, BRAND, T0 + DAY) is Standing.VALID


def test_the_earliest_revocation_counts() -> None:
    g = grant(BRAND)
    cs = creds(g)
    cs.add_revocation(g.id, AUTH, T0 + 3 * DAY)
    cs.add_revocation(g.id, AUTH_2, T0 + 2 * DAY)
    assert cs.revoked_at(g.id) == T0 + 2 * DAY
    # The same revoker stating two times: the earlier stands, in either order.
    for order in ((T0 + 5 * DAY, T0 + DAY), (T0 + DAY, T0 + 5 * DAY)):
        cs = creds(g)
        for t in order:
            cs.add_revocation(g.id, AUTH, t)
        assert cs.revoked_at(g.id) == T0 + DAY


def test_a_revocation_may_arrive_before_what_it_revokes() -> None:
    g = grant(BRAND)
    cs = creds()
    cs.add_revocation(g.id, AUTH, T0 + DAY)
    cs.add_grant(g)
    assert standing(cs, BRAND, T0 + 2 * DAY) is Standing.REVOKED


def test_renewed_grants() -> None:
    old = grant(BRAND, start=T0, end=T0 + DAY, tag="old")
    new = grant(BRAND, start=T0 + DAY, end=T0 + 2 * DAY, tag="new")
    cs = creds(old, new)
    assert cs.status(BRAND, T0).grant == old
    assert cs.status(BRAND, T0 + DAY).grant == new
    assert standing(cs, BRAND, T0 + 2 * DAY) is Standing.EXPIRED
    # Two in force: every node picks the one with the smaller id.
    both = grant(BRAND, start=T0, end=T0 + 2 * DAY, tag="overlap")
    cs.add_grant(both)
    assert cs.status(BRAND, T0 + DAY // 2).grant == min((old, both), key=lambda g: g.id)


def test_the_most_telling_failure_is_reported() -> None:
    expired = grant(BRAND, start=T0, end=T0 + DAY, tag="1")
    revoked = grant(BRAND, start=T0, end=T0 + 10 * DAY, tag="2")
    later = grant(BRAND, start=T0 + 20 * DAY, end=T0 + 30 * DAY, tag="3")
    cs = creds(expired, revoked, later)
    cs.add_revocation(revoked.id, AUTH, T0 + 2 * DAY)
    assert standing(cs, BRAND, T0 + 3 * DAY) is Standing.REVOKED
    cs = creds(expired, later)
    assert standing(cs, BRAND, T0 + 3 * DAY) is Standing.EXPIRED


# -- delegations -----------------------------------------------------------------------------


def test_a_delegation_in_force() -> None:
    g = grant(BRAND, roles=("brand", "carrier"))
    d = delegation()
    cs = creds(g, d)
    auth = cs.status(DEVICE, T0 + DAY, "scan", C1)
    assert auth.standing is Standing.DELEGATED
    assert auth.ok
    assert auth.delegation == d
    assert auth.grant == g
    assert auth.roles == frozenset({"brand", "carrier"})  # the delegator's
    assert standing(cs, DEVICE, T0 + DAY) is Standing.DELEGATED  # any type


def test_a_delegation_allows_only_its_types() -> None:
    cs = creds(grant(BRAND), delegation(types=("scan",)))
    assert standing(cs, DEVICE, T0 + DAY, "scan") is Standing.DELEGATED
    assert standing(cs, DEVICE, T0 + DAY, "sensor") is Standing.UNKNOWN
    assert standing(cs, DEVICE, T0 + DAY, "product.mint") is Standing.UNKNOWN


def test_a_delegation_restricted_to_containers() -> None:
    d = delegation(containers=(C1, C2))
    cs = creds(grant(BRAND), d)
    assert standing(cs, DEVICE, T0 + DAY, "sensor", C1) is Standing.DELEGATED
    assert standing(cs, DEVICE, T0 + DAY, "sensor", C2) is Standing.DELEGATED
    assert standing(cs, DEVICE, T0 + DAY, "sensor", C3) is Standing.UNKNOWN
    assert standing(cs, DEVICE, T0 + DAY, "sensor", None) is Standing.UNKNOWN
    assert d.allows("sensor", C1)
    assert not d.allows("sensor", None)
    assert not d.allows("handover.accept", C1)
    unrestricted = delegation()
    assert unrestricted.allows("scan", None)
    assert unrestricted.allows("scan", C3)


def test_the_first_matching_delegation_applies() -> None:
    narrow = delegation(types=("scan",), containers=(C1,), tag="narrow")
    wide = delegation(types=("sensor",), tag="wide")
    cs = creds(grant(BRAND), narrow, wide)
    assert cs.status(DEVICE, T0 + DAY, "scan", C1).delegation == narrow
    assert cs.status(DEVICE, T0 + DAY, "sensor", C3).delegation == wide
    assert standing(cs, DEVICE, T0 + DAY, "scan", C3) is Standing.UNKNOWN


def test_delegation_window() -> None:
    cs = creds(grant(BRAND), delegation(start=T0 + DAY, end=T0 + 2 * DAY))
    assert standing(cs, DEVICE, T0, "scan") is Standing.NOT_YET_VALID
    assert standing(cs, DEVICE, T0 + DAY, "scan") is Standing.DELEGATED
    assert standing(cs, DEVICE, T0 + 2 * DAY, "scan") is Standing.EXPIRED


def test_a_delegation_is_void_when_the_delegators_grant_is_revoked() -> None:
    g = grant(BRAND)
    cs = creds(g, delegation())
    cs.add_revocation(g.id, AUTH, T0 + DAY)
    assert standing(cs, DEVICE, T0 + DAY - 1, "scan") is Standing.DELEGATED
    assert standing(cs, DEVICE, T0 + DAY, "scan") is Standing.REVOKED


def test_a_delegation_is_void_when_the_delegators_grant_expires() -> None:
    cs = creds(grant(BRAND, end=T0 + DAY), delegation(end=T0 + 5 * DAY))
    assert standing(cs, DEVICE, T0 + DAY - 1, "scan") is Standing.DELEGATED
    assert standing(cs, DEVICE, T0 + DAY, "scan") is Standing.EXPIRED


def test_a_delegation_by_an_uncredentialed_key_is_void() -> None:
    cs = creds(delegation(delegator=NOBODY))
    assert standing(cs, DEVICE, T0 + DAY, "scan") is Standing.UNKNOWN
    cs = creds(grant(BRAND, start=T0 + DAY), delegation())
    assert standing(cs, DEVICE, T0, "scan") is Standing.NOT_YET_VALID


def test_a_delegation_revoked_by_its_delegator() -> None:
    d = delegation()
    cs = creds(grant(BRAND), d)
    cs.add_revocation(d.id, BRAND, T0 + DAY)
    assert cs.revoked_at(d.id) == T0 + DAY
    assert standing(cs, DEVICE, T0 + DAY - 1, "scan") is Standing.DELEGATED
    assert standing(cs, DEVICE, T0 + DAY, "scan") is Standing.REVOKED
    assert standing(cs, BRAND, T0 + DAY) is Standing.VALID  # the delegator is untouched


def test_a_delegation_revoked_by_an_authority() -> None:
    d = delegation()
    cs = creds(grant(BRAND), d)
    cs.add_revocation(d.id, AUTH_2, T0 + DAY)
    assert standing(cs, DEVICE, T0 + DAY, "scan") is Standing.REVOKED


def test_a_delegation_cannot_be_revoked_by_a_third_party() -> None:
    d = delegation()
    cs = creds(grant(BRAND), grant(CARRIER, roles=("carrier",)), d)
    cs.add_revocation(d.id, CARRIER, T0)
    cs.add_revocation(d.id, DEVICE, T0)
    assert cs.revoked_at(d.id) is None
    assert standing(cs, DEVICE, T0 + DAY, "scan") is Standing.DELEGATED


def test_a_delegator_cannot_revoke_its_own_grant() -> None:
    g = grant(BRAND)
    cs = creds(g)
    cs.add_revocation(g.id, BRAND, T0)
    assert standing(cs, BRAND, T0 + DAY) is Standing.VALID


def test_an_own_grant_beats_a_delegation() -> None:
    own = grant(DEVICE, roles=("carrier",))
    cs = creds(grant(BRAND), own, delegation())
    auth = cs.status(DEVICE, T0 + DAY, "scan")
    assert auth.standing is Standing.VALID
    assert auth.grant == own
    assert auth.delegation is None


# -- order independence ---------------------------------------------------------------------------

KEYS = (AUTH, BRAND, CARRIER, DEVICE, DEVICE_2, NOBODY)
TIMES = tuple(T0 + i * DAY for i in range(-1, 7))
QUERY_TYPES = (None, "scan", "sensor", "container.seal")
QUERY_CONTAINERS = (None, C1, C3)

_time = st.sampled_from(TIMES)
_window = st.tuples(_time, st.integers(1, 5)).map(lambda t: (t[0], t[0] + t[1] * DAY))

_grants = st.builds(
    lambda subject, issuer, roles, w: grant(subject, issuer=issuer, roles=roles,
                                            start=w[0], end=w[1]),
    st.sampled_from((BRAND, CARRIER, DEVICE)),
    st.sampled_from((AUTH, AUTH_2, NOBODY)),
    st.sampled_from((("brand",), ("carrier",), ("brand", "carrier"))),
    _window,
)
_delegations = st.builds(
    lambda delegate, delegator, types, containers, w: delegation(
        delegate, delegator=delegator, types=types, containers=containers, start=w[0], end=w[1]
    ),
    st.sampled_from((DEVICE, DEVICE_2)),
    st.sampled_from((BRAND, CARRIER, NOBODY)),
    st.sampled_from((("scan",), ("sensor",), ("container.seal", "scan"))),
    st.sampled_from((None, (C1,), (C1, C2))),
    _window,
)


@st.composite
def _statements(draw: st.DrawFn) -> list[tuple[str, Any]]:
    made: list[Grant | Delegation] = draw(
        st.lists(st.one_of(_grants, _delegations), min_size=1, max_size=8)
    )
    out: list[tuple[str, Any]] = [("statement", s) for s in made]
    targets = [s.id for s in made] + [sid("never issued")]
    revocations = draw(st.lists(
        st.tuples(st.sampled_from(targets), st.sampled_from((AUTH, BRAND, CARRIER)), _time),
        max_size=8,
    ))
    out += [("revoke", r) for r in revocations]
    return out


def _build(statements: list[tuple[str, Any]]) -> CredentialSet:
    return _build_into(CredentialSet([AUTH, AUTH_2]), statements)


def _build_into(cs: CredentialSet, statements: list[tuple[str, Any]]) -> CredentialSet:
    for kind, s in statements:
        if kind == "revoke":
            cs.add_revocation(*s)
        elif isinstance(s, Grant):
            cs.add_grant(s)
        else:
            cs.add_delegation(s)
    return cs


def _answers(cs: CredentialSet) -> list[Any]:
    return [
        cs.status(k, t, rt, c)
        for k in KEYS for t in TIMES for rt in QUERY_TYPES for c in QUERY_CONTAINERS
    ]


@settings(max_examples=300, deadline=None)
@given(_statements(), st.randoms(use_true_random=False))
def test_status_does_not_depend_on_the_order_of_statements(
    statements: list[tuple[str, Any]], rnd: Any,
) -> None:
    expected = _answers(_build(statements))
    shuffled = list(statements)
    rnd.shuffle(shuffled)
    assert _answers(_build(shuffled)) == expected
    # Adding a statement twice changes nothing either.
    assert _answers(_build(statements + shuffled)) == expected


@settings(max_examples=100, deadline=None)
@given(_statements(), st.randoms(use_true_random=False))
def test_remembered_answers_are_the_computed_ones(
    statements: list[tuple[str, Any]], rnd: Any,
) -> None:
    """`status` remembers answers per key for the interval they hold: statements added
    later, and queries at any time in any order, get what a fresh computation gives."""
    warm, cold = CredentialSet([AUTH, AUTH_2]), CredentialSet([AUTH, AUTH_2])
    queries = [(k, t, rt, c) for k in KEYS for t in TIMES for rt in QUERY_TYPES
               for c in QUERY_CONTAINERS]
    for i in range(len(statements)):
        for cs in (warm, cold):
            _build_into(cs, statements[i : i + 1])
        rnd.shuffle(queries)
        for q in queries:
            cold._forget()  # nothing remembered: computed from the statements
            assert warm.status(*q) == cold.status(*q), q


def test_a_remembered_delegation_holds_only_while_both_windows_do() -> None:
    """The delegation outlives its delegator's grant on both sides: an answer remembered
    in the middle must not carry over to the times the grant is not in force."""
    d = delegation(start=T0, end=T0 + 6 * DAY)
    cs = creds(grant(BRAND, start=T0 + 2 * DAY, end=T0 + 4 * DAY), d)
    assert standing(cs, DEVICE, T0 + 3 * DAY, "scan") is Standing.DELEGATED
    assert standing(cs, DEVICE, T0 + DAY, "scan") is Standing.NOT_YET_VALID
    assert standing(cs, DEVICE, T0 + 4 * DAY, "scan") is Standing.EXPIRED
    assert standing(cs, DEVICE, T0 + 2 * DAY, "scan") is Standing.DELEGATED
    cs.add_revocation(d.id, BRAND, T0 + 3 * DAY)  # a new statement: nothing stale is kept
    assert standing(cs, DEVICE, T0 + 3 * DAY, "scan") is Standing.REVOKED
    assert standing(cs, DEVICE, T0 + 3 * DAY - 1, "scan") is Standing.DELEGATED


@pytest.mark.parametrize("order", [0, 1])
def test_repeated_revocations_by_one_revoker_do_not_depend_on_order(order: int) -> None:
    g = grant(BRAND)
    times = [T0 + DAY, T0 + 3 * DAY]
    if order:
        times.reverse()
    cs = creds(g)
    for t in times:
        cs.add_revocation(g.id, AUTH, t)
    assert standing(cs, BRAND, T0 + 2 * DAY) is Standing.REVOKED
