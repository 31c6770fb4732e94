"""Role rules on real signed records: the WRITERS table cell by cell, trademarks, delegations."""

from __future__ import annotations

from typing import Any

import pytest

from crypto.credentials import CredentialSet, Grant, Standing
from crypto.keys import SigningKey
from protocol import identifiers as ids
from protocol.authz import WRITERS, apply_statement, authorise, container_of, owns_gtin
from protocol.bodies import ROLES
from protocol.bodies.identity import DELEGABLE
from protocol.envelope import Record
from protocol.errors import RoleError
from tests import examples as ex

DAY = 86_400_000
AUTH = ex.AUTHORITY
KEYS = {role: SigningKey(bytes([40 + i]) * 32) for i, role in enumerate(ROLES)}
KEYS["authority"] = AUTH
DEVICE = SigningKey(bytes([60]) * 32)
STRANGER = SigningKey(bytes([61]) * 32)
AT = ex.T0 + DAY  # inside every grant's window

PARTIES = {"brand", "manufacturer", "carrier", "forwarder", "retailer"}
MOVERS = {"brand", "manufacturer", "carrier", "forwarder"}

# The table, written out independently of the module: who may write what.
EXPECTED: dict[str, set[str]] = {
    "credential.issue": {"authority"},
    "credential.revoke": {"authority"} | PARTIES,  # parties: their own delegations
    "credential.delegate": PARTIES,
    "product.mint": {"brand"},
    "recall": {"brand"},
    "container.create": PARTIES,
    "container.pack": PARTIES,
    "container.seal": PARTIES,
    "container.unpack": PARTIES,
    "handover.offer": PARTIES,
    "handover.accept": PARTIES,
    "scan": PARTIES,
    "sensor": MOVERS,
    "shipment.create": PARTIES,
    "shipment.update": PARTIES,
    "customs.declaration": PARTIES,
    "customs.action": {"customs"},
    "alert": PARTIES | {"authority", "customs"},
}


def signed(key: SigningKey, type_name: str, body: dict[str, Any], *, ts: int = AT) -> Record:
    return Record.sign(key, network=ex.NETWORK, seq=1, prev=None, ts=ts, type=type_name, body=body)


def issue(subject: SigningKey, roles: list[str], *, trademarks: list[dict[str, Any]] | None = None,
          start: int = ex.T0, end: int = ex.T0 + 365 * DAY, issuer: SigningKey = AUTH) -> Record:
    if "brand" in roles and trademarks is None:
        trademarks = [ex.trademark()]
    body = ex.credential_issue(
        subject=subject.public.raw, roles=sorted(roles), trademarks=trademarks,
        valid_from=start, valid_until=end,
    )
    return signed(issuer, "credential.issue", body, ts=start)


def delegate(delegator: SigningKey, types: list[str], *, containers: list[str] | None = None,
             device: SigningKey = DEVICE, end: int = ex.T0 + 30 * DAY) -> Record:
    body = ex.credential_delegate(
        delegate=device.public.raw, types=sorted(types), containers=containers,
        valid_until=end,
    )
    return signed(delegator, "credential.delegate", body, ts=ex.T0)


def revoke(revoker: SigningKey, target: Record, effective: int) -> Record:
    return signed(revoker, "credential.revoke",
                  ex.credential_revoke(credential=target.id, effective=effective), ts=ex.T0)


def world(*records: Record) -> CredentialSet:
    """A credential set with one single-role grant per role, plus `records`."""
    cs = CredentialSet([AUTH.public.raw])
    for role, key in KEYS.items():
        if role != "authority":
            assert apply_statement(cs, issue(key, [role]))
    for r in records:
        assert apply_statement(cs, r)
    return cs


def refused(cs: CredentialSet, record: Record, rule: str) -> RoleError:
    with pytest.raises(RoleError) as info:
        authorise(cs, record)
    assert info.value.rule == rule, str(info.value)
    return info.value


def body_for(type_name: str) -> dict[str, Any]:
    if type_name == "credential.delegate":
        # Types every party may write itself, so only the table decides.
        return ex.credential_delegate(types=["handover.accept", "scan"])
    return ex.EXAMPLES[type_name]()


# -- the table -----------------------------------------------------------------------------


def test_the_table_is_as_specified() -> None:
    assert {t: set(r) for t, r in WRITERS.items()} == EXPECTED
    assert set(WRITERS) == set(ex.EXAMPLES)
    for roles in WRITERS.values():
        assert roles <= set(ROLES)


CELLS = [(t, role) for t in sorted(EXPECTED) for role in ROLES]
WORLD = world()


@pytest.mark.parametrize(("type_name", "role"), CELLS, ids=[f"{t}-{r}" for t, r in CELLS])
def test_each_role_may_write_exactly_what_the_table_says(type_name: str, role: str) -> None:
    record = signed(KEYS[role], type_name, body_for(type_name))
    if role in EXPECTED[type_name]:
        auth = authorise(WORLD, record)
        assert auth.ok
        assert role in auth.roles
    else:
        err = refused(WORLD, record, "role")
        assert err.penalty > 0


def _writable(role: str) -> set[str]:
    out = set()
    for t in EXPECTED:
        try:
            authorise(WORLD, signed(KEYS[role], t, body_for(t)))
        except RoleError:
            continue
        out.add(t)
    return out


def test_the_authority_writes_only_credentials_and_alerts() -> None:
    assert _writable("authority") == {"credential.issue", "credential.revoke", "alert"}
    assert authorise(WORLD, signed(AUTH, "alert", ex.alert())).standing is Standing.AUTHORITY


def test_customs_writes_only_customs_actions_and_alerts() -> None:
    assert _writable("customs") == {"customs.action", "alert"}


# Grants no valid `credential.issue` body can express (`CredentialIssue` refuses them): put
# straight into the set, to show `authorise` holds even if one slipped through.


def _forced(key: SigningKey, roles: set[str]) -> CredentialSet:
    cs = world()
    assert cs.add_grant(Grant(
        id=bytes([77]) * 32, issuer=AUTH.public.raw, subject=key.public.raw, org="Forced",
        roles=frozenset(roles), jurisdictions=frozenset({"NL"}),
        valid_from=ex.T0, valid_until=ex.T0 + 365 * DAY,
    ))
    return cs


def _writable_by(cs: CredentialSet, key: SigningKey) -> set[str]:
    out = set()
    for t in EXPECTED:
        try:
            authorise(cs, signed(key, t, body_for(t)))
        except RoleError:
            continue
        out.add(t)
    return out


@pytest.mark.parametrize("other", sorted(PARTIES))
def test_a_customs_grant_with_another_role_still_writes_only_customs(other: str) -> None:
    key = SigningKey(bytes([71]) * 32)
    cs = _forced(key, {"customs", other})
    assert _writable_by(cs, key) == {"customs.action", "alert"}
    err = refused(cs, signed(key, "scan", ex.scan()), "role")
    assert "customs" in str(err)


def test_a_device_of_a_customs_and_carrier_grant_cannot_scan() -> None:
    key = SigningKey(bytes([72]) * 32)
    cs = _forced(key, {"customs", "carrier"})
    # The delegation itself is refused, and a device it names writes nothing.
    lend = delegate(key, ["scan"])
    refused(cs, lend, "role")
    assert apply_statement(cs, lend)
    refused(cs, signed(DEVICE, "scan", ex.scan()), "role")


@pytest.mark.parametrize("roles", [{"authority"}, {"authority", "carrier"}])
def test_a_granted_authority_role_counts_for_nothing(roles: set[str]) -> None:
    key = SigningKey(bytes([73]) * 32)
    cs = _forced(key, roles)
    refused(cs, signed(key, "credential.issue", body_for("credential.issue")), "role")
    assert _writable_by(cs, key) == ({t for t, w in EXPECTED.items() if "carrier" in w}
                                     if "carrier" in roles else set())
    # The genuine authority is untouched.
    assert authorise(cs, signed(AUTH, "credential.issue", body_for("credential.issue"))).ok


def test_an_observer_customs_credential() -> None:
    key = SigningKey(bytes([70]) * 32)
    cs = world(signed(AUTH, "credential.issue", {
        **ex.VARIANTS["credential.issue/customs"](), "subject": key.public.raw}, ts=ex.T0))
    assert authorise(cs, signed(key, "customs.action", ex.customs_action())).ok
    refused(cs, signed(key, "scan", ex.scan()), "role")


# -- standing of the author ------------------------------------------------------------------


def test_an_unknown_author_gets_penalty_zero() -> None:
    err = refused(WORLD, signed(STRANGER, "scan", ex.scan()), "author.unknown")
    assert err.penalty == 0


@pytest.mark.parametrize(
    ("ts", "rule"),
    [(ex.T0 - 1, "author.not_yet_valid"), (ex.T0 + 10 * DAY, "author.expired")],
)
def test_authorisation_is_at_the_records_own_time(ts: int, rule: str) -> None:
    key = SigningKey(bytes([71]) * 32)
    cs = world(issue(key, ["carrier"], start=ex.T0, end=ex.T0 + 10 * DAY))
    assert authorise(cs, signed(key, "scan", ex.scan(), ts=ex.T0)).ok
    err = refused(cs, signed(key, "scan", ex.scan(), ts=ts), rule)
    assert err.penalty > 0


def test_a_revoked_author() -> None:
    key = SigningKey(bytes([72]) * 32)
    grant = issue(key, ["carrier"])
    cs = world(grant, revoke(AUTH, grant, AT))
    assert authorise(cs, signed(key, "scan", ex.scan(), ts=AT - 1)).ok
    refused(cs, signed(key, "scan", ex.scan(), ts=AT), "author.revoked")


def test_a_grant_signed_by_a_non_authority_gives_nothing() -> None:
    key = SigningKey(bytes([73]) * 32)
    forged = issue(key, ["carrier"], issuer=KEYS["brand"])
    refused(WORLD, forged, "role")  # a brand may not issue credentials...
    cs = world()
    assert apply_statement(cs, forged)  # ...and if one got in anyway, it is ignored
    refused(cs, signed(key, "scan", ex.scan()), "author.unknown")


def test_apply_statement_ignores_other_types() -> None:
    cs = world()
    assert apply_statement(cs, signed(KEYS["carrier"], "scan", ex.scan())) is False


# -- trademarks -------------------------------------------------------------------------------


def _gtin(body12or13: str) -> str:
    """A GTIN-14 from its first 13 digits, with its check digit."""
    return body12or13 + str(ids.gs1_check_digit(body12or13))


def brand_with(*trademarks: dict[str, Any]) -> tuple[SigningKey, CredentialSet]:
    key = SigningKey(bytes([80 + len(trademarks)]) * 32)
    return key, world(issue(key, ["brand"], trademarks=list(trademarks)))


def test_a_brand_mints_its_own_mark_within_its_prefixes() -> None:
    # The example trademark (ACME) has prefixes 0400638 and 950600; GTIN is 0 + 950600...
    assert ex.GTIN[1:].startswith("950600")
    assert authorise(WORLD, signed(KEYS["brand"], "product.mint", ex.mint())).ok


def test_minting_outside_the_prefixes_is_refused() -> None:
    # GTIN_2 (0 4006381 33393 1) has company prefix 4006381: not 0400638, which would
    # cover GTINs 0 0400638...: the indicator digit is not part of the company prefix.
    assert ex.GTIN_2.startswith("0400638")
    refused(WORLD, signed(KEYS["brand"], "product.mint", ex.mint(gtin=ex.GTIN_2)), "trademark")
    covered = _gtin("0040063812345")
    assert authorise(WORLD, signed(KEYS["brand"], "product.mint", ex.mint(gtin=covered))).ok


def test_the_indicator_digit_does_not_matter() -> None:
    case_level = _gtin("1" + ex.GTIN[1:13])
    assert authorise(WORLD, signed(KEYS["brand"], "product.mint", ex.mint(gtin=case_level))).ok


def test_minting_another_mark_is_refused() -> None:
    refused(WORLD, signed(KEYS["brand"], "product.mint", ex.mint(mark="BETA")), "trademark")


def test_mark_and_prefix_must_come_from_the_same_trademark() -> None:
    key, cs = brand_with(ex.trademark(), ex.trademark(mark="BETA", gs1_prefixes=["4006381"]))
    assert authorise(cs, signed(key, "product.mint", ex.mint(mark="BETA", gtin=ex.GTIN_2))).ok
    assert authorise(cs, signed(key, "product.mint", ex.mint(mark="ACME"))).ok
    refused(cs, signed(key, "product.mint", ex.mint(mark="ACME", gtin=ex.GTIN_2)), "trademark")
    refused(cs, signed(key, "product.mint", ex.mint(mark="BETA")), "trademark")


def test_only_a_brand_mints_or_recalls() -> None:
    for role in ROLES:
        if role == "brand":
            continue
        refused(WORLD, signed(KEYS[role], "product.mint", ex.mint()), "role")
        refused(WORLD, signed(KEYS[role], "recall", ex.recall()), "role")


def test_a_brand_recalls_only_gtins_it_owns() -> None:
    assert authorise(WORLD, signed(KEYS["brand"], "recall", ex.recall())).ok
    assert authorise(WORLD, signed(KEYS["brand"], "recall", ex.VARIANTS["recall/serials"]())).ok
    refused(WORLD, signed(KEYS["brand"], "recall", ex.recall(gtin=ex.GTIN_2)), "trademark")
    key, cs = brand_with(ex.trademark(), ex.trademark(mark="BETA", gs1_prefixes=["4006381"]))
    assert authorise(cs, signed(key, "recall", ex.recall(gtin=ex.GTIN_2))).ok  # any own mark


def test_owns_gtin() -> None:
    cs = world()
    grant = cs.status(KEYS["brand"].public.raw, AT).grant
    assert grant is not None
    assert owns_gtin(grant, ex.GTIN)
    assert owns_gtin(grant, ex.GTIN, "ACME")
    assert not owns_gtin(grant, ex.GTIN, "BETA")
    assert not owns_gtin(grant, ex.GTIN_2)


# -- delegations ----------------------------------------------------------------------------------


def test_a_device_writes_what_its_delegation_allows() -> None:
    cs = world(delegate(KEYS["carrier"], ["container.seal", "sensor"],
                        containers=[ex.CONTAINER, ex.CONTAINER_2]))
    auth = authorise(cs, signed(DEVICE, "sensor", ex.sensor()))
    assert auth.standing is Standing.DELEGATED
    assert auth.roles == frozenset({"carrier"})
    assert authorise(cs, signed(DEVICE, "container.seal", ex.seal(container=ex.CONTAINER_2))).ok


def test_a_device_outside_its_delegation_is_treated_as_unknown() -> None:
    # Another delegation covering it may not have reached us yet: penalty 0, so the
    # node parks the record instead of punishing whoever relayed it.
    cs = world(delegate(KEYS["carrier"], ["container.seal", "sensor"],
                        containers=[ex.CONTAINER, ex.CONTAINER_2]))
    for record in (
        signed(DEVICE, "sensor", ex.sensor(container=ex.CONTAINER_3)),  # other container
        signed(DEVICE, "scan", ex.scan()),  # type not delegated
        signed(DEVICE, "product.mint", ex.mint()),
    ):
        assert refused(cs, record, "author.unknown").penalty == 0


def test_container_restriction_reads_the_record_subject() -> None:
    cs = world(delegate(KEYS["carrier"], ["scan"], containers=[ex.CONTAINER]))
    assert container_of(signed(DEVICE, "scan", ex.scan())) == ex.CONTAINER
    assert authorise(cs, signed(DEVICE, "scan", ex.scan())).ok
    token_scan = signed(DEVICE, "scan", ex.VARIANTS["scan/token"]())
    assert container_of(token_scan) is None
    refused(cs, token_scan, "author.unknown")
    # Without a container restriction, anything of the delegated type goes.
    cs = world(delegate(KEYS["carrier"], ["scan"]))
    assert authorise(cs, token_scan).ok


@pytest.mark.parametrize("types", [[t] for t in DELEGABLE])
def test_a_delegator_cannot_delegate_what_it_may_not_write(types: list[str]) -> None:
    for role in PARTIES:
        record = delegate(KEYS[role], types)
        if role in EXPECTED[types[0]]:
            assert authorise(WORLD, record).ok
        else:
            refused(WORLD, record, "delegation")


def test_a_retailer_cannot_delegate_sensor_readings() -> None:
    refused(WORLD, delegate(KEYS["retailer"], ["scan", "sensor"]), "delegation")
    # Had such a delegation been applied anyway, the device still may not write them.
    cs = world(delegate(KEYS["retailer"], ["scan", "sensor"]))
    assert authorise(cs, signed(DEVICE, "scan", ex.scan())).ok
    refused(cs, signed(DEVICE, "sensor", ex.sensor()), "delegation")


def test_customs_and_the_authority_do_not_delegate() -> None:
    refused(WORLD, delegate(KEYS["customs"], ["scan"]), "role")
    refused(WORLD, delegate(AUTH, ["scan"]), "role")


def test_a_delegation_dies_with_the_delegators_grant() -> None:
    key = SigningKey(bytes([74]) * 32)
    grant = issue(key, ["carrier"], end=ex.T0 + 20 * DAY)
    d = delegate(key, ["sensor"], end=ex.T0 + 30 * DAY)
    cs = world(grant, d)
    assert authorise(cs, signed(DEVICE, "sensor", ex.sensor(), ts=ex.T0 + 19 * DAY)).ok
    refused(cs, signed(DEVICE, "sensor", ex.sensor(), ts=ex.T0 + 20 * DAY), "author.expired")
    cs = world(grant, d, revoke(AUTH, grant, ex.T0 + 2 * DAY))
    refused(cs, signed(DEVICE, "sensor", ex.sensor(), ts=ex.T0 + 2 * DAY), "author.revoked")


def test_a_delegator_revokes_its_own_delegation() -> None:
    d = delegate(KEYS["carrier"], ["sensor"])
    r = revoke(KEYS["carrier"], d, ex.T0 + 2 * DAY)
    assert authorise(world(d), r).ok
    cs = world(d, r)
    assert authorise(cs, signed(DEVICE, "sensor", ex.sensor(), ts=ex.T0 + 2 * DAY - 1)).ok
    refused(cs, signed(DEVICE, "sensor", ex.sensor(), ts=ex.T0 + 2 * DAY), "author.revoked")


def test_a_partys_revocation_of_anything_else_has_no_effect() -> None:
    d = delegate(KEYS["carrier"], ["sensor"])
    victim = issue(SigningKey(bytes([75]) * 32), ["forwarder"])
    cs = world(d, victim, revoke(KEYS["brand"], d, ex.T0), revoke(KEYS["brand"], victim, ex.T0),
               revoke(KEYS["carrier"], victim, ex.T0))
    assert authorise(cs, signed(DEVICE, "sensor", ex.sensor())).ok
    assert cs.status(victim.body.subject, AT).standing is Standing.VALID
