"""Named refusals of the party domain. Each ``reason`` is a stable snake_case code.

A command on an organisation that does not exist (or that the sender may not act on) raises
the kit's :class:`NotFound` (``unknown_org``; ``unknown_parent`` for an establishment under a
parent that does not exist). The rules of the organisation tree have their own codes below.
"""
from __future__ import annotations

from services.kit.errors import IllegalTransition, NotFound, Rejected

__all__ = [
    "AlreadyMember", "AreaMismatch", "AreaOutsideParent", "GridOutsideOrg", "IllegalTransition", "NotABuildingGroup",
    "NotAMember", "NotFound", "OrgExists", "OrgHoldsNoMembers", "ParentKindMismatch", "ParentNotAllowed",
    "ParentRequired", "Rejected",
]


class OrgExists(Rejected):
    """``org_exists``: the id names an organisation established with other data (ids are never reused)."""

    def __init__(self, org_id: str):
        super().__init__("org_exists", f"org {org_id!r} already exists with other data", "org_id")


class ParentRequired(Rejected):
    """``parent_required``: every organisation but a street working committee (街道党工委) sits under a parent."""

    def __init__(self, kind: str):
        super().__init__("parent_required", f"a {kind} needs a parent organisation", "parent_id")


class ParentNotAllowed(Rejected):
    """``parent_not_allowed``: a street working committee is the top of the street's tree."""

    def __init__(self, kind: str):
        super().__init__("parent_not_allowed", f"a {kind} has no parent in the street's tree", "parent_id")


class ParentKindMismatch(Rejected):
    """``parent_kind_mismatch``: the parent is not of a kind that may hold the new organisation
    (街道党工委 ⊃ 社区党委 ⊃ 网格党支部 ⊃ 楼栋党小组; a unit's Party organisation and a regional council
    under a street or community committee)."""

    def __init__(self, kind: str, parent_kind: str, parent_id: str, allowed: list[str]):
        super().__init__("parent_kind_mismatch",
                         f"a {kind} sits under {' or '.join(allowed)}, not under {parent_kind} {parent_id}",
                         "parent_id")


class AreaMismatch(Rejected):
    """``area_mismatch``: the area does not fit the kind (a street id for a street committee, a
    community id, a grid id for a grid branch, ``<grid id>:<building>`` for a building group)."""

    def __init__(self, kind: str, area_id: str, wanted: str):
        super().__init__("area_mismatch", f"a {kind}'s area is {wanted}, not {area_id!r}", "area_id")


class AreaOutsideParent(Rejected):
    """``area_outside_parent``: the area does not lie in the parent's area."""

    def __init__(self, area_id: str, parent_id: str, parent_area: str):
        super().__init__("area_outside_parent",
                         f"{area_id!r} does not lie in {parent_area!r}, the area of {parent_id}", "area_id")


class OrgHoldsNoMembers(Rejected):
    """``org_holds_no_members``: a regional council has seats (its composition), not members."""

    def __init__(self, org_id: str, kind: str):
        super().__init__("org_holds_no_members", f"{org_id} is a {kind}: members attach to another organisation",
                         "org_id")


class AlreadyMember(Rejected):
    """``already_member``: the member's relationship (组织关系) is in this organisation already."""

    def __init__(self, org_id: str):
        super().__init__("already_member", f"the member belongs to {org_id} already", "member_id")


class GridOutsideOrg(Rejected):
    """``grid_outside_org``: the member's grid is not in the organisation's area (a grid branch's
    and a building group's members live in its grid; a committee's in its community or street)."""

    def __init__(self, grid_id: str, org_id: str, area: str):
        super().__init__("grid_outside_org", f"grid {grid_id} is not in {area}, the area of {org_id}", "grid_id")


class NotABuildingGroup(Rejected):
    """``not_a_building_group``: 党员中心户 are marked in a building group (楼栋党小组)."""

    def __init__(self, org_id: str, kind: str):
        super().__init__("not_a_building_group", f"{org_id} is a {kind}, not a building_group", "org_id")


class NotAMember(Rejected):
    """``not_a_member``: a central household is a member of that building group."""

    def __init__(self, org_id: str):
        super().__init__("not_a_member", f"the member does not belong to {org_id}", "member_id")
