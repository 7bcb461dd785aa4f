"""What the party service's HTTP routes take and answer (path, query and response models)."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from schemas.common import StreetId
from schemas.party import OrgKind
from services.kit.routes import Id, Page, PageOut, ref

# -- path and query ----------------------------------------------------------------------------

OrgRef = ref("OrgRef", "org_id")


class OrgQuery(Page):
    kind: OrgKind | None = None
    area_id: Id | None = Field(None, description="organisations of this area, or lying in this street, community "
                                                 "or grid")
    parent_id: Id | None = Field(None, description="the children of this organisation")


class CoverageQuery(BaseModel):
    street_id: StreetId = Field(description="the street (9 digits)")


# -- answers -----------------------------------------------------------------------------------


class OrgRow(BaseModel):
    """A Party organisation (党组织) as the projection holds it."""

    org_id: str
    kind: OrgKind
    parent_id: str | None
    area_id: str = Field(description="a street, community or grid id, `<grid id>:<building>`, or a unit id")
    name: str
    secretary_id: str | None
    street_id: str | None = Field(description="the street it acts for")
    community_id: str | None
    grid_id: str | None
    established_at: datetime | None
    member_count: int
    updated_at: datetime


class OrgMember(BaseModel):
    """A member whose relationship (组织关系) is in the organisation."""

    member_id: str
    grid_id: str | None = Field(description="the grid they live in (居住网格)")
    from_org_id: str | None = Field(description="the organisation they were transferred from")
    attached_at: datetime | None
    central_household: bool = Field(description="党员中心户 of the building group")


class OrgChild(BaseModel):
    org_id: str
    kind: OrgKind
    area_id: str
    name: str


class OrgEvent(BaseModel):
    event_id: str
    type: str = Field(description="the event type (party.org.*, party.member.*, party.household.*)")
    at: datetime | None
    data: dict[str, Any] = Field(description="the event's data")


class OrgOut(OrgRow):
    """An organisation with its members, its children and its history."""

    members: list[OrgMember]
    children: list[OrgChild]
    history: list[OrgEvent] = Field(description="every event of the organisation, in order")


class OrgPage(PageOut[OrgRow]):
    """One page of organisations, in id order."""


class GridCoverage(BaseModel):
    grid_id: str
    community_id: str
    members: int = Field(description="members living in the grid")
    branch_id: str | None = Field(description="its grid branch (网格党支部)")
    needs_branch: bool = Field(description="at least `min_members` members")
    gap: bool = Field(description="needs a branch and has none")
    gap_reported_at: datetime | None = Field(description="when the gap was reported (party.coverage.gap.v1)")


class Coverage(BaseModel):
    """组织覆盖: the grids of a street with members or a grid branch."""

    street_id: str
    min_members: int
    grids_needing_branch: int
    covered: int
    rate: float | None = Field(description="covered / grids needing a branch (None when none does)")
    gaps: int
    grids: list[GridCoverage]
