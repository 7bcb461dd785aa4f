"""The Party organisation tree: establishment under a parent of the right kind, in an area that
fits the kind; members' 组织关系 and transfers; 党员中心户; coverage gaps."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from schemas.party import (
    AttachMember, CentralHouseholdMarked, CoverageGap, EstablishOrg, MarkCentralHousehold, MemberAttached,
    MemberDetached, OrgEstablished, OrgKind,
)
from services.party.domain import (
    OrgContext, OrgState, Rejected, coverage_gaps, decide_org, evolve_org,
)

T0 = datetime(2026, 11, 22, 9, 0, tzinfo=timezone(timedelta(hours=8)))
STREET, COMMUNITY, GRID = "110105001", "110105001002", "110105001002003"
OTHER_GRID = "110105001003001"  # another community of the street
K = OrgKind


def ctx(**kw) -> OrgContext:
    return OrgContext(now=T0, **kw)


def establish(org_id: str, kind: OrgKind, area_id: str, parent_id: str | None = None) -> EstablishOrg:
    return EstablishOrg(org_id=org_id, kind=kind, parent_id=parent_id, area_id=area_id, name=f"{org_id} 党组织")


def made(cmd: EstablishOrg, parent: OrgState | None = None) -> OrgState:
    events = decide_org(None, cmd, ctx(parent=parent))
    assert [type(e) for e in events] == [OrgEstablished]
    return evolve_org(None, events[0], parent)


def refusal(state, command, c: OrgContext | None = None) -> Rejected:
    with pytest.raises(Rejected) as e:
        decide_org(state, command, c or ctx())
    return e.value


@pytest.fixture
def tree():
    street = made(establish("o-s", K.STREET_WORKING_COMMITTEE, STREET))
    community = made(establish("o-c", K.COMMUNITY_COMMITTEE, COMMUNITY, "o-s"), street)
    branch = made(establish("o-g", K.GRID_BRANCH, GRID, "o-c"), community)
    group = made(establish("o-b", K.BUILDING_GROUP, f"{GRID}:7号楼", "o-g"), branch)
    return {"street": street, "community": community, "branch": branch, "group": group}


def attach(state: OrgState, member_id: str, source: OrgState | None = None, grid_id: str | None = None):
    events = decide_org(state, AttachMember(org_id=state.org_id, member_id=member_id, grid_id=grid_id),
                        ctx(member_org=source))
    return events


def apply(states: dict[str, OrgState], events) -> dict[str, OrgState]:
    out = dict(states)
    for e in events:
        out[e.org_id] = evolve_org(out[e.org_id], e)
    return out


# -- establishment --------------------------------------------------------------------------------


def test_the_tree_from_the_street_to_the_building_with_the_codes_of_each_level(tree):
    assert (tree["street"].street_id, tree["street"].community_id, tree["street"].grid_id) == (STREET, None, None)
    assert (tree["community"].street_id, tree["community"].community_id) == (STREET, COMMUNITY)
    assert tree["branch"].scope_id == GRID and tree["group"].scope_id == GRID
    assert tree["group"].established_at == T0 and tree["group"].parent_id == "o-g"


@pytest.mark.parametrize("kind,parent", [(K.UNIT_ORG, "street"), (K.UNIT_ORG, "community"),
                                         (K.REGIONAL_COUNCIL, "street"), (K.REGIONAL_COUNCIL, "community")])
def test_a_units_org_and_a_council_sit_under_a_street_or_community_committee(tree, kind, parent):
    p = tree[parent]
    area = "unit-110105-017" if kind is K.UNIT_ORG else p.area_id
    org = made(establish("o-x", kind, area, p.org_id), p)
    assert org.scope_id == p.scope_id and org.street_id == STREET


@pytest.mark.parametrize("kind,area,parent", [
    (K.COMMUNITY_COMMITTEE, "110105001004", "branch"),
    (K.GRID_BRANCH, "110105001002004", "street"),
    (K.BUILDING_GROUP, f"{GRID}:1号楼", "community"),
    (K.UNIT_ORG, "unit-9", "branch"),
    (K.REGIONAL_COUNCIL, COMMUNITY, "group"),
])
def test_a_parent_of_the_wrong_kind_is_refused(tree, kind, area, parent):
    p = tree[parent]
    e = refusal(None, establish("o-x", kind, area, p.org_id), ctx(parent=p))
    assert (e.reason, e.field) == ("parent_kind_mismatch", "parent_id")


def test_an_unknown_parent_a_missing_parent_and_a_parent_of_a_street_committee_are_refused(tree):
    assert refusal(None, establish("o-x", K.GRID_BRANCH, GRID, "o-nope")).reason == "unknown_parent"
    assert refusal(None, establish("o-x", K.GRID_BRANCH, GRID)).reason == "parent_required"
    e = refusal(None, establish("o-x", K.STREET_WORKING_COMMITTEE, STREET, "o-s"), ctx(parent=tree["street"]))
    assert e.reason == "parent_not_allowed"


@pytest.mark.parametrize("kind,area", [
    (K.STREET_WORKING_COMMITTEE, COMMUNITY), (K.COMMUNITY_COMMITTEE, STREET), (K.GRID_BRANCH, COMMUNITY),
    (K.BUILDING_GROUP, GRID), (K.BUILDING_GROUP, "11010500100200:7"), (K.REGIONAL_COUNCIL, GRID),
])
def test_an_area_that_does_not_fit_the_kind_is_refused(kind, area):
    e = refusal(None, establish("o-x", kind, area, "o-p"))
    assert (e.reason, e.field) == ("area_mismatch", "area_id")


@pytest.mark.parametrize("kind,area,parent", [
    (K.COMMUNITY_COMMITTEE, "110105002001", "street"),
    (K.GRID_BRANCH, OTHER_GRID, "community"),
    (K.BUILDING_GROUP, "110105001002004:7号楼", "branch"),
    (K.REGIONAL_COUNCIL, "110105002", "street"),
])
def test_an_area_outside_the_parents_is_refused(tree, kind, area, parent):
    p = tree[parent]
    e = refusal(None, establish("o-x", kind, area, p.org_id), ctx(parent=p))
    assert (e.reason, e.field) == ("area_outside_parent", "area_id")


def test_the_same_establishment_again_is_nothing_and_another_under_the_same_id_is_refused(tree):
    cmd = establish("o-g", K.GRID_BRANCH, GRID, "o-c")
    assert decide_org(tree["branch"], cmd, ctx(parent=tree["community"])) == []
    other = establish("o-g", K.GRID_BRANCH, "110105001002004", "o-c")
    assert refusal(tree["branch"], other, ctx(parent=tree["community"])).reason == "org_exists"


# -- members ----------------------------------------------------------------------------------------


def test_a_first_attachment_takes_the_branchs_grid(tree):
    events = attach(tree["branch"], "pm-1")
    assert events == [MemberAttached(org_id="o-g", member_id="pm-1", grid_id=GRID, occurred_at=T0)]
    assert evolve_org(tree["branch"], events[0]).members == {"pm-1": GRID}


def test_a_transfer_detaches_from_the_old_org_and_attaches_with_where_it_came_from(tree):
    states = apply(tree, [])
    states = {s.org_id: s for s in states.values()}
    states = apply(states, attach(states["o-g"], "pm-1"))
    events = attach(states["o-c"], "pm-1", source=states["o-g"], grid_id="110105001002004")
    assert events == [
        MemberDetached(org_id="o-g", member_id="pm-1", to_org_id="o-c", occurred_at=T0),
        MemberAttached(org_id="o-c", member_id="pm-1", from_org_id="o-g", grid_id="110105001002004",
                       occurred_at=T0),
    ]
    states = apply(states, events)
    assert "pm-1" not in states["o-g"].members and states["o-c"].members == {"pm-1": "110105001002004"}


def test_attaching_to_the_same_org_twice_is_refused(tree):
    branch = evolve_org(tree["branch"], attach(tree["branch"], "pm-1")[0])
    e = refusal(branch, AttachMember(org_id="o-g", member_id="pm-1"), ctx(member_org=branch))
    assert (e.reason, e.field) == ("already_member", "member_id")


def test_attaching_to_an_unknown_org_or_a_council_is_refused(tree):
    assert refusal(None, AttachMember(org_id="o-x", member_id="pm-1")).reason == "unknown_org"
    council = made(establish("o-r", K.REGIONAL_COUNCIL, COMMUNITY, "o-c"), tree["community"])
    assert refusal(council, AttachMember(org_id="o-r", member_id="pm-1")).reason == "org_holds_no_members"


@pytest.mark.parametrize("org,grid", [("branch", "110105001002004"), ("group", "110105001002004"),
                                      ("community", OTHER_GRID), ("street", "110105002001001")])
def test_a_members_grid_outside_the_orgs_area_is_refused(tree, org, grid):
    e = refusal(tree[org], AttachMember(org_id=tree[org].org_id, member_id="pm-1", grid_id=grid))
    assert (e.reason, e.field) == ("grid_outside_org", "grid_id")


# -- 党员中心户 ---------------------------------------------------------------------------------------


def test_a_central_household_is_a_member_of_that_building_group_once(tree):
    group = evolve_org(tree["group"], attach(tree["group"], "pm-1")[0])
    events = decide_org(group, MarkCentralHousehold(org_id="o-b", member_id="pm-1"), ctx())
    assert events == [CentralHouseholdMarked(org_id="o-b", member_id="pm-1", occurred_at=T0)]
    group = evolve_org(group, events[0])
    assert group.central_households == ("pm-1",)
    assert decide_org(group, MarkCentralHousehold(org_id="o-b", member_id="pm-1"), ctx()) == []
    e = refusal(group, MarkCentralHousehold(org_id="o-b", member_id="pm-2"))
    assert (e.reason, e.field) == ("not_a_member", "member_id")


def test_a_central_household_elsewhere_than_a_building_group_is_refused(tree):
    branch = evolve_org(tree["branch"], attach(tree["branch"], "pm-1")[0])
    assert refusal(branch, MarkCentralHousehold(org_id="o-g", member_id="pm-1")).reason == "not_a_building_group"
    assert refusal(None, MarkCentralHousehold(org_id="o-x", member_id="pm-1")).reason == "unknown_org"


def test_a_member_transferred_out_of_a_group_is_no_longer_its_central_household(tree):
    group = evolve_org(tree["group"], attach(tree["group"], "pm-1")[0])
    group = evolve_org(group, CentralHouseholdMarked(org_id="o-b", member_id="pm-1", occurred_at=T0))
    group = evolve_org(group, MemberDetached(org_id="o-b", member_id="pm-1", to_org_id="o-c", occurred_at=T0))
    assert group.members == {} and group.central_households == ()


# -- state ------------------------------------------------------------------------------------------


def test_the_state_round_trips_through_json(tree):
    group = evolve_org(tree["group"], attach(tree["group"], "pm-1")[0])
    assert OrgState.model_validate(group.model_dump(mode="json")) == group
    with pytest.raises(ValueError):
        evolve_org(None, MemberAttached(org_id="o-x", member_id="pm-1"))


# -- coverage ---------------------------------------------------------------------------------------


def test_a_grid_with_three_members_and_no_branch_is_a_gap():
    gaps = coverage_gaps({GRID: 3, OTHER_GRID: 2}, branch_grids=(), reported=(), now=T0)
    assert gaps == [CoverageGap(grid_id=GRID, community_id=COMMUNITY, street_id=STREET, members=3, occurred_at=T0)]


def test_a_grid_with_a_branch_or_a_gap_reported_before_is_not_reported():
    assert coverage_gaps({GRID: 5}, branch_grids={GRID}, reported=(), now=T0) == []
    assert coverage_gaps({GRID: 5}, branch_grids=(), reported={GRID}, now=T0) == []
    assert [g.grid_id for g in coverage_gaps({OTHER_GRID: 4, GRID: 9}, (), (), T0)] == [GRID, OTHER_GRID]
