"""What the grid service's HTTP routes take and answer (path, query and response models)."""
from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator
from pydantic.json_schema import SkipJsonSchema

from schemas.common import CommunityId, GridId, StreetId
from schemas.grid import CaseId, Category, DepartmentId, Reporter
from services.grid.domain import PUBLIC_CATEGORIES, PUBLIC_COORDINATE_DECIMALS, CaseStatus
from services.kit.routes import Id, Instant, Page, PageOut, ref

# -- path and query ----------------------------------------------------------------------------


CaseRef = ref("CaseRef", "case_id", CaseId)


GridRef = ref("GridRef", "grid_id", GridId, "a grid of the grid register (15 digits)")


class CaseView(str, Enum):
    """How much of each case a list answers."""

    basic = "basic"  # where the case stands: what a list screen shows and filters on
    full = "full"  # every column of the case, as its lookup answers it without the history


class CaseQuery(Page):
    grid_id: GridId | None = Field(None, description="cases of this grid (15 digits)")
    community_id: CommunityId | None = Field(None, description="cases of this community (12 digits)")
    street_id: StreetId | None = Field(None, description="cases of this street (9 digits)")
    status: CaseStatus | None = None
    category: Category | None = None
    overdue: bool | None = Field(None, description="whether a deadline of the case was missed")
    department: DepartmentId | None = Field(None, description="cases of this department of the department register")
    listed: bool | None = Field(None, description="whether the case is under 挂牌督办 (a severe hazard not yet 销号)")
    supervised: bool | None = Field(None, description="whether a card (超期督办) was issued on the case")
    view: CaseView = Field(CaseView.full, description="`basic`: where each case stands (`CaseSummary`: no "
                                                      "description, place, reporters or media, a third of the "
                                                      "columns); `full` (the default): every column (`CaseRow`)")


class PatrolQuery(Page):
    grid_id: GridId | None = Field(None, description="patrols of this grid (15 digits)")
    grid_worker_id: Id | None = Field(None, description="patrols of this grid worker")


Open311Ref = ref("Open311Ref", "request_id", CaseId, "the service request id (the case id)")


class Open311Query(Page.sized(1000, 1000)):
    """GeoReport v2 answers a bare list, so there is no cursor to give back: a client pages by
    ``end_date`` (the ``requested_datetime`` of the last request seen) and a small ``offset``."""

    cursor: SkipJsonSchema[None] = None
    service_code: str | None = Field(None, description="service codes (public case categories), comma separated; "
                                                      "a code that services.json does not list is refused")
    status: str | None = Field(None, description="`open`, `closed` or both, comma separated")
    start_date: Instant | None = Field(None, description="requested at or after (RFC 3339)")
    end_date: Instant | None = Field(None, description="requested at or before (RFC 3339)")

    @field_validator("service_code")
    @classmethod
    def _codes(cls, v: str | None) -> str | None:
        known = {c.value for c in PUBLIC_CATEGORIES}  # a private category is as unknown as a made-up one
        bad = [c for c in cls.split(v) if c not in known]
        if bad:
            raise ValueError(f"unknown service_code {bad[0]!r}")
        return v

    @field_validator("status")
    @classmethod
    def _states(cls, v: str | None) -> str | None:
        if any(s not in ("open", "closed") for s in cls.split(v)):
            raise ValueError("status must be open or closed")
        return v

    @staticmethod
    def split(v: str | None) -> list[str]:
        return [c.strip() for c in (v or "").split(",") if c.strip()]


# -- answers -----------------------------------------------------------------------------------


class HistoryEntry(BaseModel):
    seq: int = Field(description="the case version after the event")
    event_id: str
    type: str = Field(description="the event type (grid.case.*.v1)")
    occurred_at: datetime
    data: dict[str, Any] = Field(description="the event's data")


class CaseSummary(BaseModel):
    """Where a grid case (案卷) stands: the columns of a list's `basic` view."""

    case_id: str
    status: CaseStatus
    category: Category
    grade: str | None
    urgent: bool
    grid_id: str
    community_id: str
    street_id: str
    level: str = Field(description="community, street or district: who handles the case now")
    department: str | None
    assignee_id: str | None
    due_stage: str | None = Field(description="the stage of the open deadline")
    due_at: datetime | None = Field(description="when the open deadline falls due")
    overdue: bool = Field(description="a deadline of the case was missed (超期)")
    supervision_count: int = Field(description="cards issued on missed deadlines (超期督办)")
    last_card: str | None = Field(description="yellow_card or red_card: the latest card")
    listed: bool = Field(description="under 挂牌督办 (a severe hazard, from dispatch until 销号)")
    reported_at: datetime
    updated_at: datetime
    version: int


class CaseRow(CaseSummary):
    """A grid case (案卷) as the projection holds it: its summary and every other column."""

    description: str
    lat: float
    lon: float
    address: str
    reporters: list[Reporter] = Field(description="the reporter first, then the co-reporters of duplicates")
    duplicates: list[str] = Field(description="ids of the dismissed duplicate reports")
    media: list[str]
    joint_mediation: bool
    overdue_count: int
    rework_count: int
    dismissal_reason: str | None
    duplicate_of: str | None
    result: str | None
    on_time: bool | None
    handling_seconds: int | None
    satisfaction: str | None
    registered_at: datetime | None
    dispatched_at: datetime | None
    handled_at: datetime | None
    closed_at: datetime | None
    # the department's part (签收, 先行联系, 管控, 退单, 延期, 不合理诉求)
    accepted_at: datetime | None = Field(description="when the department accepted the case (签收)")
    contacted_at: datetime | None = Field(description="when the department contacted the reporter (先行联系)")
    controlled_at: datetime | None = Field(description="when a severe hazard was brought under control (管控)")
    accept_due_at: datetime | None = Field(description="the accept deadline, while unmet")
    contact_due_at: datetime | None = Field(description="the contact deadline, while unmet")
    control_due_at: datetime | None = Field(description="the control deadline of a severe hazard, while unmet")
    return_pending: bool = Field(description="the department returned the case (退单) and the return awaits review")
    return_count: int = Field(description="returns reviewed")
    extension_until: datetime | None = Field(description="the handling deadline asked for (延期), awaiting review")
    extension_count: int = Field(description="extensions granted")
    exclusion_pending: bool = Field(description="an exclusion from the rates (不合理诉求) awaits review")
    excluded: bool = Field(description="left out of the department's rates (approved 不合理诉求)")
    delisted_at: datetime | None = Field(description="when a listed case was delisted (销号)")
    resolved: bool | None = Field(description="回访: whether the reporter said the problem is solved")


class CaseOut(CaseRow):
    """A grid case with its full history."""

    history: list[HistoryEntry] = Field(description="every event of the case, in order")


class GridCounts(BaseModel):
    grid_id: str
    community_id: str
    street_id: str
    counts: dict[str, int] = Field(description="cases by status, every status present")
    total: int


class Patrol(BaseModel):
    """A patrol log (巡查)."""

    patrol_id: str
    grid_id: str
    community_id: str
    street_id: str
    grid_worker_id: str
    started_at: datetime
    ended_at: datetime
    notes: str
    route: list[Any]
    logged_at: datetime


class Department(BaseModel):
    """A department of the department register (职能部门)."""

    department_id: str = Field(description="<division>.<code> for a district department, <street_id>.<code> for a "
                                           "street's own")
    name: str
    level: Literal["district", "street"]
    street_id: str | None = Field(description="the street of a street department")


class CasePage(PageOut[CaseRow | CaseSummary]):
    """One page of cases, newest report first: each a `CaseRow`, or a `CaseSummary` with `view=basic`."""


class PatrolPage(PageOut[Patrol]):
    """One page of patrol logs, latest first."""


class Open311Service(BaseModel):
    """An Open311 GeoReport v2 service: one per case category."""

    service_code: str
    service_name: str
    description: str
    metadata: bool
    type: Literal["realtime", "batch", "blackbox"]
    keywords: str
    group: str


class Open311Request(BaseModel):
    """An Open311 GeoReport v2 service request: a case as the public sees it.

    Cases of private categories (disputes, resident needs) are not published. No address, photo
    or reporter is shown, and the position is rounded to about 100 m.
    """

    service_request_id: str
    status: Literal["open", "closed"]
    status_notes: str = Field(description="the handling result; for a dismissed case `dismissed`, with the reason "
                                          "only when it is a code (`duplicate`, naming the original)")
    service_name: str
    service_code: str
    description: str = Field(description="the reported problem, once the case is registered (立案); empty before "
                                          "and for a dismissed case")
    agency_responsible: str
    service_notice: str
    requested_datetime: datetime
    updated_datetime: datetime
    expected_datetime: datetime | None
    address: str = Field(description="always empty: addresses are not published")
    address_id: str
    zipcode: str
    lat: float = Field(description=f"latitude rounded to {PUBLIC_COORDINATE_DECIMALS} decimals (about 100 m)")
    long: float = Field(description=f"longitude rounded to {PUBLIC_COORDINATE_DECIMALS} decimals (about 100 m)")
    media_url: str = Field(description="always empty: photos are not published")


class Open311Error(BaseModel):
    code: int
    description: str
