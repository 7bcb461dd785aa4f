"""The party policy table and the object checks behind it (services.party.app.policy / access)."""
from __future__ import annotations

import pytest

from schemas.party import AttachMember, ErasePerson, EstablishOrg, OrgKind
from services.kit.identity import Principal, Scope
from services.kit.policy import Refused
from services.kit.sql import Where
from services.party.app import access
from services.party.app.policy import POLICY, establish_area

STREET, COMMUNITY, GRID = "110105001", "110105001002", "110105001002003"
K = OrgKind


def who(sub: str, *roles: str, communities=(), streets=(), grids=()) -> Principal:
    return Principal(sub, frozenset(roles), Scope.of(communities=communities, streets=streets, grids=grids))


def establish(kind: OrgKind, area: str, parent: str | None = "o-p") -> EstablishOrg:
    return EstablishOrg(org_id="o-1", kind=kind, parent_id=parent, area_id=area, name="党支部")


def test_the_org_commands_and_the_erasure_have_their_grants_and_the_auditor_none():
    granted = {cls.TYPE for cls in POLICY.commands}
    assert {"party.org.establish.v1", "party.member.attach.v1", "party.household.mark.v1",
            "party.person.erase.v1"} <= granted
    assert not any("auditor" in POLICY.roles_for(cls) for cls in POLICY.commands)
    assert POLICY.roles_for(AttachMember) == {"party_secretary"}
    assert POLICY.admit(ErasePerson(person_id="pm-1", reason="申请"), who("dpo", "data_protection_officer")) \
        .requested_by == "dpo"


@pytest.mark.parametrize("kind,area,code", [
    (K.STREET_WORKING_COMMITTEE, STREET, STREET), (K.COMMUNITY_COMMITTEE, COMMUNITY, COMMUNITY),
    (K.GRID_BRANCH, GRID, GRID), (K.BUILDING_GROUP, f"{GRID}:7号楼", GRID), (K.REGIONAL_COUNCIL, STREET, STREET),
    (K.UNIT_ORG, "unit-110105-017", None),
])
def test_the_area_a_senders_scope_must_cover_to_establish(kind, area, code):
    assert establish_area(establish(kind, area)) == code


def test_an_establishment_outside_the_senders_scope_is_forbidden():
    cmd = establish(K.GRID_BRANCH, GRID)
    assert POLICY.admit(cmd, who("sec", "party_secretary", communities=[COMMUNITY])) == cmd
    assert POLICY.admit(cmd, who("off", "street_officer", streets=[STREET])) == cmd
    with pytest.raises(Refused) as e:
        POLICY.admit(cmd, who("sec", "party_secretary", communities=["110105001003"]))
    assert e.value.reason == "forbidden"
    with pytest.raises(Refused):
        POLICY.admit(cmd, who("res", "resident", streets=[STREET]))


def test_a_secretary_acts_in_its_scope_and_officers_and_auditors_only_read():
    assert access.may_act(who("sec", "party_secretary", grids=[GRID]), GRID)
    assert not access.may_act(who("sec", "party_secretary", grids=[GRID]), COMMUNITY)
    assert not access.may_act(who("off", "community_officer", communities=[COMMUNITY]), GRID)
    assert not access.may_act(who("aud", "auditor"), GRID)
    assert access.may_read(who("aud", "auditor"), GRID)
    assert access.may_read(who("off", "community_officer", communities=[COMMUNITY]), GRID)
    assert not access.may_read(who("off", "community_officer", communities=[COMMUNITY]), STREET)
    assert not access.may_read(who("res", "resident", streets=[STREET]), GRID)


def test_the_list_filter_keeps_the_areas_of_the_scope():
    where = Where()
    access.org_filter(where, who("sec", "party_secretary", communities=[COMMUNITY], grids=[GRID]))
    assert str(where) == "WHERE (community_id = ANY($1::text[]) OR grid_id = ANY($2::text[]))"
    assert where.args == [[COMMUNITY], [GRID]]
    nothing = Where()
    access.org_filter(nothing, who("res", "resident"))
    assert str(nothing) == "WHERE FALSE"
    everything = Where()
    access.org_filter(everything, who("aud", "auditor"))
    assert str(everything) == ""
