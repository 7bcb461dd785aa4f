"""The Party organisation (党组织) aggregate, keyed by ``org_id``, and the coverage of grids.

    EstablishOrg         → OrgEstablished          under a parent of a kind that may hold it, in an
                                                   area that fits its kind (the same command again: nothing)
    AttachMember         → MemberAttached          a first attachment (组织关系)
                         → MemberDetached + MemberAttached(from_org_id)
                                                   a transfer (转接) from the org the member is in
    MarkCentralHousehold → CentralHouseholdMarked  党员中心户: a member of that building group (again: nothing)

    coverage_gaps(...)   → CoverageGap per grid with at least 3 members, no grid branch, and no gap
                           reported yet (once per grid)

The tree: 街道党工委 (``street_working_committee``, a street id) ⊃ 社区党委 (``community_committee``,
a community id of the street) ⊃ 网格党支部 (``grid_branch``, a grid id of the community) ⊃ 楼栋党小组
(``building_group``, ``<grid id>:<building>`` in the branch's grid). A unit's Party organisation
(``unit_org``, its area the unit's id) and a regional council (``regional_council``, 大工委 / 大党委:
the area of its parent) sit under a street or community committee.

What a decision needs beyond the aggregate comes in an :class:`OrgContext`: the time, the
parent's state (establishment) and the state of the org a member belongs to now (attachment).
A transfer's two events belong to two organisations: the application applies each to its own
(``org_id``), having locked both.

Refusals: ``org_exists``, ``unknown_parent``, ``parent_required``, ``parent_not_allowed``,
``parent_kind_mismatch``, ``area_mismatch``, ``area_outside_parent``, ``unknown_org``,
``org_holds_no_members``, ``already_member``, ``grid_outside_org``, ``not_a_building_group``,
``not_a_member``.
"""
from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import datetime

from pydantic import AwareDatetime, BaseModel, ConfigDict

from schemas.codes import CodeKind, community_id_of, is_within, kind_of, street_id_of
from schemas.common import Command, Event
from schemas.party import (
    AttachMember, CentralHouseholdMarked, CoverageGap, EstablishOrg, MarkCentralHousehold, MemberAttached,
    MemberDetached, OrgEstablished, OrgKind,
)

from .errors import (
    AlreadyMember, AreaMismatch, AreaOutsideParent, GridOutsideOrg, NotABuildingGroup, NotAMember, NotFound,
    OrgExists, OrgHoldsNoMembers, ParentKindMismatch, ParentNotAllowed, ParentRequired,
)

ORG_COMMANDS: tuple[type[Command], ...] = (EstablishOrg, AttachMember, MarkCentralHousehold)
ORG_EVENTS: tuple[type[Event], ...] = (OrgEstablished, MemberAttached, MemberDetached, CentralHouseholdMarked)

K = OrgKind
PARENT_KINDS: dict[OrgKind, tuple[OrgKind, ...]] = {
    K.STREET_WORKING_COMMITTEE: (),
    K.COMMUNITY_COMMITTEE: (K.STREET_WORKING_COMMITTEE,),
    K.GRID_BRANCH: (K.COMMUNITY_COMMITTEE,),
    K.BUILDING_GROUP: (K.GRID_BRANCH,),
    K.UNIT_ORG: (K.STREET_WORKING_COMMITTEE, K.COMMUNITY_COMMITTEE),
    K.REGIONAL_COUNCIL: (K.STREET_WORKING_COMMITTEE, K.COMMUNITY_COMMITTEE),
}
"""The kinds of parent each kind may sit under (none: the top of a street's tree)."""

MIN_MEMBERS_FOR_BRANCH = 3
"""A grid with this many members or more has a grid branch (网格党支部), or it is a coverage gap."""



class OrgState(BaseModel):
    """A Party organisation: where it sits in the tree, its members (member id → the grid they
    live in, when known) and its 党员中心户. ``street_id`` / ``community_id`` / ``grid_id`` are the
    codes of the area it acts for (a unit's org and a council: its parent's)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    org_id: str
    kind: OrgKind
    parent_id: str | None = None
    area_id: str
    name: str
    secretary_id: str | None = None
    street_id: str | None = None
    community_id: str | None = None
    grid_id: str | None = None
    established_at: datetime | None = None
    members: dict[str, str | None] = {}
    central_households: tuple[str, ...] = ()

    @property
    def scope_id(self) -> str | None:
        """The most precise code of the area it acts for (what a sender's scope must cover)."""
        return self.grid_id or self.community_id or self.street_id


class OrgContext(BaseModel):
    """Inputs of an organisation decision that do not belong to the organisation itself."""

    model_config = ConfigDict(frozen=True)

    now: AwareDatetime
    parent: OrgState | None = None
    member_org: OrgState | None = None


def building_grid(area_id: str) -> str | None:
    """The grid of a building (``<grid id>:<building>``), None for anything else."""
    grid, sep, building = area_id.partition(":")
    return grid if sep and building.strip() and kind_of(grid) is CodeKind.GRID else None


def codes_of(kind: OrgKind, area_id: str, parent: OrgState | None) -> dict[str, str | None]:
    """``street_id``, ``community_id`` and ``grid_id`` of an organisation of ``kind`` in ``area_id``."""
    if kind in (K.UNIT_ORG, K.REGIONAL_COUNCIL):
        if parent is None:
            return {"street_id": None, "community_id": None, "grid_id": None}
        return {"street_id": parent.street_id, "community_id": parent.community_id, "grid_id": parent.grid_id}
    code = building_grid(area_id) if kind is K.BUILDING_GROUP else area_id
    found = kind_of(code)
    return {
        "street_id": street_id_of(code) if found in (CodeKind.STREET, CodeKind.COMMUNITY, CodeKind.GRID) else None,
        "community_id": community_id_of(code) if found in (CodeKind.COMMUNITY, CodeKind.GRID) else None,
        "grid_id": code if found is CodeKind.GRID else None,
    }


def area_fits(kind: OrgKind, area_id: str) -> str | None:
    """What the area of ``kind`` must be, when ``area_id`` is not that; None when it fits."""
    found = kind_of(area_id)
    if kind is K.STREET_WORKING_COMMITTEE:
        return None if found is CodeKind.STREET else "a 9-digit street id"
    if kind is K.COMMUNITY_COMMITTEE:
        return None if found is CodeKind.COMMUNITY else "a 12-digit community id"
    if kind is K.GRID_BRANCH:
        return None if found is CodeKind.GRID else "a 15-digit grid id"
    if kind is K.BUILDING_GROUP:
        return None if building_grid(area_id) else "'<grid id>:<building>'"
    if kind is K.REGIONAL_COUNCIL:
        return None if found in (CodeKind.STREET, CodeKind.COMMUNITY) else "a street or community id"
    return None  # a unit's Party organisation: the unit's id


def _fits_parent(kind: OrgKind, area_id: str, parent: OrgState) -> bool:
    if kind in (K.COMMUNITY_COMMITTEE, K.GRID_BRANCH):
        return is_within(area_id, parent.area_id)
    if kind is K.BUILDING_GROUP:
        return building_grid(area_id) == parent.area_id
    if kind is K.REGIONAL_COUNCIL:
        return area_id == parent.area_id
    return True


# -- decide -----------------------------------------------------------------------------------------


def decide_org(state: OrgState | None, command: Command, ctx: OrgContext) -> list[Event]:
    """The events an organisation command leads to, or a ``Rejected``."""
    if isinstance(command, EstablishOrg):
        return _establish(state, command, ctx)
    if isinstance(command, AttachMember):
        return _attach(state, command, ctx)
    if isinstance(command, MarkCentralHousehold):
        return _mark(state, command, ctx)
    raise TypeError(f"not an organisation command: {type(command).__name__}")


def _establish(state: OrgState | None, cmd: EstablishOrg, ctx: OrgContext) -> list[Event]:
    if state is not None:
        same = (state.kind is cmd.kind and state.parent_id == cmd.parent_id and state.area_id == cmd.area_id
                and state.name == cmd.name)
        if same:
            return []
        raise OrgExists(cmd.org_id)
    wanted = area_fits(cmd.kind, cmd.area_id)
    if wanted is not None:
        raise AreaMismatch(cmd.kind.value, cmd.area_id, wanted)
    allowed = PARENT_KINDS[cmd.kind]
    if not allowed:
        if cmd.parent_id is not None:
            raise ParentNotAllowed(cmd.kind.value)
    else:
        if cmd.parent_id is None:
            raise ParentRequired(cmd.kind.value)
        parent = ctx.parent
        if parent is None or parent.org_id != cmd.parent_id:
            raise NotFound("parent", cmd.parent_id, "parent_id")
        if parent.kind not in allowed:
            raise ParentKindMismatch(cmd.kind.value, parent.kind.value, parent.org_id, [k.value for k in allowed])
        if not _fits_parent(cmd.kind, cmd.area_id, parent):
            raise AreaOutsideParent(cmd.area_id, parent.org_id, parent.area_id)
    return [OrgEstablished(org_id=cmd.org_id, kind=cmd.kind, parent_id=cmd.parent_id, area_id=cmd.area_id,
                           name=cmd.name, secretary_id=cmd.secretary_id, occurred_at=ctx.now)]


def _attach(state: OrgState | None, cmd: AttachMember, ctx: OrgContext) -> list[Event]:
    if state is None:
        raise NotFound("org", cmd.org_id, "org_id")
    if state.kind is K.REGIONAL_COUNCIL:
        raise OrgHoldsNoMembers(state.org_id, state.kind.value)
    if cmd.member_id in state.members:
        raise AlreadyMember(state.org_id)
    grid = _member_grid(state, cmd.grid_id)
    source = ctx.member_org
    if source is not None and cmd.member_id not in source.members:
        raise ValueError(f"member_org {source.org_id} does not hold the member")
    attached = MemberAttached(org_id=state.org_id, member_id=cmd.member_id,
                              from_org_id=source.org_id if source else None, grid_id=grid, reason=cmd.reason,
                              occurred_at=ctx.now)
    if source is None:
        return [attached]
    return [MemberDetached(org_id=source.org_id, member_id=cmd.member_id, to_org_id=state.org_id,
                           occurred_at=ctx.now), attached]


def _member_grid(org: OrgState, given: str | None) -> str | None:
    """The grid a member of ``org`` lives in: a branch's or group's own; else the one given,
    which must lie in a committee's area."""
    if org.kind in (K.GRID_BRANCH, K.BUILDING_GROUP):
        if given is not None and given != org.grid_id:
            raise GridOutsideOrg(given, org.org_id, org.grid_id or org.area_id)
        return org.grid_id
    if given is not None and org.kind in (K.STREET_WORKING_COMMITTEE, K.COMMUNITY_COMMITTEE) \
            and not is_within(given, org.area_id):
        raise GridOutsideOrg(given, org.org_id, org.area_id)
    return given


def _mark(state: OrgState | None, cmd: MarkCentralHousehold, ctx: OrgContext) -> list[Event]:
    if state is None:
        raise NotFound("org", cmd.org_id, "org_id")
    if state.kind is not K.BUILDING_GROUP:
        raise NotABuildingGroup(state.org_id, state.kind.value)
    if cmd.member_id not in state.members:
        raise NotAMember(state.org_id)
    if cmd.member_id in state.central_households:
        return []
    return [CentralHouseholdMarked(org_id=state.org_id, member_id=cmd.member_id, occurred_at=ctx.now)]


# -- evolve -----------------------------------------------------------------------------------------


def evolve_org(state: OrgState | None, event: Event, parent: OrgState | None = None) -> OrgState:
    """The organisation after ``event`` (``parent``: its parent's state, for an establishment
    of a unit's org or a council, which act for their parent's area)."""
    if isinstance(event, OrgEstablished):
        if state is not None:
            return state
        return OrgState(org_id=event.org_id, kind=event.kind, parent_id=event.parent_id, area_id=event.area_id,
                        name=event.name, secretary_id=event.secretary_id, established_at=event.occurred_at,
                        **codes_of(event.kind, event.area_id, parent))
    if state is None:
        raise ValueError(f"{event.TYPE} for org {getattr(event, 'org_id', '?')!r} that was never established")
    if isinstance(event, MemberAttached):
        return state.model_copy(update={"members": {**state.members, event.member_id: event.grid_id}})
    if isinstance(event, MemberDetached):
        members = {m: g for m, g in state.members.items() if m != event.member_id}
        return state.model_copy(update={
            "members": members, "central_households": tuple(m for m in state.central_households if m != event.member_id)})
    if isinstance(event, CentralHouseholdMarked):
        if event.member_id in state.central_households:
            return state
        return state.model_copy(update={"central_households": (*state.central_households, event.member_id)})
    raise TypeError(f"not an organisation event: {type(event).__name__}")


# -- coverage ---------------------------------------------------------------------------------------


def coverage_gaps(members_per_grid: Mapping[str, int], branch_grids: Collection[str], reported: Collection[str],
                  now: datetime) -> list[CoverageGap]:
    """A :class:`CoverageGap` for each grid with at least :data:`MIN_MEMBERS_FOR_BRANCH` members,
    no grid branch and no gap reported before (``reported``: the grids reported already, the
    once-only state the application keeps), in grid order."""
    gaps = []
    for grid_id in sorted(members_per_grid):
        n = members_per_grid[grid_id]
        if n < MIN_MEMBERS_FOR_BRANCH or grid_id in branch_grids or grid_id in reported:
            continue
        if kind_of(grid_id) is not CodeKind.GRID:
            raise ValueError(f"not a grid id: {grid_id!r}")
        gaps.append(CoverageGap(grid_id=grid_id, community_id=community_id_of(grid_id),
                                street_id=street_id_of(grid_id), members=n, occurred_at=now))
    return gaps


__all__ = ["MIN_MEMBERS_FOR_BRANCH", "ORG_COMMANDS", "ORG_EVENTS", "PARENT_KINDS", "OrgContext", "OrgState",
           "area_fits", "building_grid", "codes_of", "coverage_gaps", "decide_org", "evolve_org"]
