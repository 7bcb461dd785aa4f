"""Party (党建) commands and events: Party organisations, the regional council (区域化党建), units'
双报到 and the three lists, members' 双重管理, and organisational life (三会一课, 主题党日).

Commands arrive on ``party.intake.v1`` (party secretaries' and community consoles); events are
published on ``party.events.v1`` by the party service only. ``party.org.established.v1``,
``party.unit.reported.v1``, ``party.meeting.held.v1``, ``party.org_life.held.v1``,
``party.member.feedback.v1`` and ``party.meeting.overdue.v1`` are the contract's names and fields;
every other type and field here is the service's own (documented in AsyncAPI).

Aggregates and record keys (= CloudEvents ``subject``):

- a Party organisation (党组织) is keyed by ``org_id``: its establishment, its members
  (组织关系: attached, transferred), its 党员中心户 and its organisational life;
- a regional council (大工委 / 大党委) by ``council_id``: its composition (proposed → 5-day
  公示 → effective), its joint meetings (联席会议) and their resolutions (议定事项);
- a resident unit (驻区单位) by ``unit_id``: its report to its community (单位报到) and its
  co-building agreements (共建协议);
- a project of a community's 项目清单 by ``project_id`` (posted → claimed → completed → rated);
- a member's 双报到 follow-up and commitments by ``member_id``.

A command's data is the data of the event it leads to, minus what the service derives; actor
fields (``*_by``) are filled from the sender's token.
"""
from __future__ import annotations

from enum import Enum
from typing import Annotated, ClassVar

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from .common import (
    Command, CommunityId, ErasePersonCommand, Event, GridId, NonEmptyStr, PersonErasedEvent, StreetId, Text,
    Timestamp, pii,
)

PartyId = Annotated[str, StringConstraints(min_length=1, max_length=100, strip_whitespace=True,
                                           pattern=r"^[A-Za-z0-9._:-]+$")]
"""An id chosen by the console that creates the object (an org, a council, a meeting, a project...)."""
AreaId = NonEmptyStr
"""Where an organisation sits: a street, community or grid id, a building (``<grid id>:<building>``),
or a unit id for a unit's Party organisation."""
Quarter = Annotated[str, StringConstraints(pattern=r"^[0-9]{4}-Q[1-4]$")]
Period = Annotated[str, StringConstraints(pattern=r"^[0-9]{4}(-(0[1-9]|1[0-2]|Q[1-4]))?$")]
Rating = Annotated[int, Field(ge=1, le=5)]
People = Annotated[tuple[Annotated[NonEmptyStr, pii("identifier")], ...], Field(max_length=500)]


# ---------------------------------------------------------------------------------------
# Codes
# ---------------------------------------------------------------------------------------


class OrgKind(str, Enum):
    """The kinds of Party organisation, from the street down to the building, and alongside."""

    STREET_WORKING_COMMITTEE = "street_working_committee"  # 街道党工委
    COMMUNITY_COMMITTEE = "community_committee"  # 社区党委
    GRID_BRANCH = "grid_branch"  # 网格党支部
    BUILDING_GROUP = "building_group"  # 楼栋党小组
    UNIT_ORG = "unit_org"  # 驻区单位党组织
    REGIONAL_COUNCIL = "regional_council"  # 大工委 / 大党委


class CouncilLevel(str, Enum):
    """A regional council at street level (大工委, 9-15 members) or community level (大党委, 7-11)."""

    STREET = "street"
    COMMUNITY = "community"


class OrgLifeKind(str, Enum):
    """Organisational life: 三会一课 and 主题党日."""

    BRANCH_MEETING = "branch_meeting"  # 支部党员大会 (quarterly)
    COMMITTEE_MEETING = "committee_meeting"  # 支委会 (monthly)
    GROUP_MEETING = "group_meeting"  # 党小组会 (monthly)
    PARTY_LECTURE = "party_lecture"  # 党课 (quarterly)
    THEME_DAY = "theme_day"  # 主题党日 (monthly)


# ---------------------------------------------------------------------------------------
# Value objects
# ---------------------------------------------------------------------------------------


class CouncilSeat(BaseModel):
    """One member of a regional council: a person, and the unit they come from when they are a
    part-time member from a resident unit (兼职委员)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    person_id: Annotated[NonEmptyStr, pii("identifier")]
    name: Annotated[NonEmptyStr | None, pii("name")] = None
    unit_id: NonEmptyStr | None = Field(None, description="the resident unit of a part-time member (兼职委员)")
    part_time: bool = Field(False, description="a part-time member from a resident unit")
    role: NonEmptyStr = Field("member", description="secretary (书记), deputy (副书记) or member (委员)")


class ResolutionItem(BaseModel):
    """A resolution (议定事项) a joint meeting adopts: an owner unit and a deadline."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    resolution_id: PartyId
    title: NonEmptyStr
    owner_unit_id: NonEmptyStr
    due_at: Timestamp


class _Attendance(Command):
    """A meeting's attendance: each person once, present or absent."""

    @model_validator(mode="after")
    def _each_person_once(self):
        # a model validator, so that it also runs when ``absentees`` is left to its default
        present, absent = self.attendees, self.absentees
        if len(set(present)) != len(present) or len(set(absent)) != len(absent) or set(absent) & set(present):
            raise ValueError("each person is listed once, as present or as absent")
        return self


# ---------------------------------------------------------------------------------------
# Commands (party.intake.v1)
# ---------------------------------------------------------------------------------------


class EstablishOrg(Command):
    """Establish a Party organisation in the tree (its parent must exist, of the kind above it)."""

    TYPE: ClassVar[str] = "party.org.establish.v1"
    SUBJECT: ClassVar[str] = "org_id"

    org_id: PartyId
    kind: OrgKind
    parent_id: PartyId | None = None
    area_id: AreaId
    name: NonEmptyStr
    secretary_id: Annotated[NonEmptyStr | None, pii("identifier")] = None


class AttachMember(Command):
    """A member's organisational relationship (组织关系) goes to ``org_id``: a first attachment,
    or a transfer (转接) from the org they are in."""

    TYPE: ClassVar[str] = "party.member.attach.v1"
    SUBJECT: ClassVar[str] = "org_id"

    org_id: PartyId
    member_id: Annotated[NonEmptyStr, pii("identifier")]
    grid_id: GridId | None = Field(
        None, description="the grid the member lives in (居住网格), counted for coverage; a grid branch's or "
                          "building group's own grid when left out")
    reason: Annotated[Text, pii("free_text")] = ""


class MarkCentralHousehold(Command):
    """党员中心户: mark a member's household as the central household of a building group."""

    TYPE: ClassVar[str] = "party.household.mark.v1"
    SUBJECT: ClassVar[str] = "org_id"

    org_id: PartyId
    member_id: Annotated[NonEmptyStr, pii("identifier")]


class ProposeCouncil(Command):
    """Propose a regional council's composition; it is published (公示) for 5 days before it
    takes effect. Part-time members from resident units must be at least a third."""

    TYPE: ClassVar[str] = "party.council.propose.v1"
    SUBJECT: ClassVar[str] = "council_id"

    council_id: PartyId
    level: CouncilLevel
    area_id: AreaId
    seats: tuple[CouncilSeat, ...] = Field(min_length=1, max_length=30)
    proposed_by: Annotated[NonEmptyStr | None, pii("identifier")] = None


class HoldMeeting(_Attendance):
    """联席会议: a joint meeting of a council, with who attended and was absent, and the
    resolutions it adopts (nothing, without a quorum)."""

    TYPE: ClassVar[str] = "party.meeting.hold.v1"
    SUBJECT: ClassVar[str] = "council_id"

    council_id: PartyId
    meeting_id: PartyId
    held_at: Timestamp
    attendees: People
    absentees: People = ()
    resolutions: tuple[ResolutionItem, ...] = Field((), max_length=50)
    recorded_by: Annotated[NonEmptyStr | None, pii("identifier")] = None


class CompleteResolution(Command):
    """A resolution's owner unit reports it done (办结)."""

    TYPE: ClassVar[str] = "party.resolution.complete.v1"
    SUBJECT: ClassVar[str] = "council_id"

    council_id: PartyId
    resolution_id: PartyId
    note: Annotated[Text, pii("free_text")] = ""


class ReportUnit(Command):
    """单位报到: a resident unit reports to the community where it sits, with its Party org and resources."""

    TYPE: ClassVar[str] = "party.unit.report.v1"
    SUBJECT: ClassVar[str] = "unit_id"

    unit_id: NonEmptyStr
    name: NonEmptyStr
    community_id: CommunityId
    org_id: PartyId | None = None
    resources: tuple[NonEmptyStr, ...] = Field((), max_length=50)


class SignAgreement(Command):
    """共建协议: a community and a unit sign (or renew, with the same id) a co-building agreement."""

    TYPE: ClassVar[str] = "party.agreement.sign.v1"
    SUBJECT: ClassVar[str] = "unit_id"

    agreement_id: PartyId
    unit_id: NonEmptyStr
    community_id: CommunityId
    commitments: tuple[NonEmptyStr, ...] = Field(min_length=1, max_length=50)
    valid_from: Timestamp
    valid_until: Timestamp


class PostProject(Command):
    """项目清单: the community posts a project for units to claim (双向认领)."""

    TYPE: ClassVar[str] = "party.project.post.v1"
    SUBJECT: ClassVar[str] = "project_id"

    project_id: PartyId
    community_id: CommunityId
    title: NonEmptyStr
    need: Annotated[Text, pii("free_text")] = ""


class ClaimProject(Command):
    """A unit claims a posted project."""

    TYPE: ClassVar[str] = "party.project.claim.v1"
    SUBJECT: ClassVar[str] = "project_id"

    project_id: PartyId
    unit_id: NonEmptyStr


class CompleteProject(Command):
    """The claiming unit completes its project (only the unit that claimed it)."""

    TYPE: ClassVar[str] = "party.project.complete.v1"
    SUBJECT: ClassVar[str] = "project_id"

    project_id: PartyId
    unit_id: NonEmptyStr = Field(description="the unit reporting completion: the one that claimed the project")
    result: Annotated[Text, pii("free_text")] = ""


class RateProject(Command):
    """The community rates a completed project, 1-5, once."""

    TYPE: ClassVar[str] = "party.project.rate.v1"
    SUBJECT: ClassVar[str] = "project_id"

    project_id: PartyId
    rating: Rating
    comment: Annotated[Text, pii("free_text")] = ""


class RecordOrgLife(_Attendance):
    """三会一课 / 主题党日: an organisation's meeting, with attendance."""

    TYPE: ClassVar[str] = "party.org_life.record.v1"
    SUBJECT: ClassVar[str] = "org_id"

    org_id: PartyId
    meeting_id: PartyId
    kind: OrgLifeKind
    held_at: Timestamp
    attendees: People
    absentees: People = ()
    topic: Annotated[Text, pii("free_text")] = ""


class MakeCommitment(Command):
    """承诺: a member's commitment for a year."""

    TYPE: ClassVar[str] = "party.commitment.make.v1"
    SUBJECT: ClassVar[str] = "member_id"

    member_id: Annotated[NonEmptyStr, pii("identifier")]
    commitment_id: PartyId
    year: Annotated[int, Field(ge=2000, le=2100)]
    text: Annotated[NonEmptyStr, pii("free_text")]


class FulfilCommitment(Command):
    """践诺: the member reports a commitment kept."""

    TYPE: ClassVar[str] = "party.commitment.fulfil.v1"
    SUBJECT: ClassVar[str] = "member_id"

    member_id: Annotated[NonEmptyStr, pii("identifier")]
    commitment_id: PartyId
    note: Annotated[Text, pii("free_text")] = ""


class RateCommitment(Command):
    """评诺: the member's organisation rates a commitment, 1-5, once."""

    TYPE: ClassVar[str] = "party.commitment.rate.v1"
    SUBJECT: ClassVar[str] = "member_id"

    member_id: Annotated[NonEmptyStr, pii("identifier")]
    commitment_id: PartyId
    rating: Rating


# ---------------------------------------------------------------------------------------
# Events (party.events.v1)
# ---------------------------------------------------------------------------------------


class OrgEstablished(Event):
    """A Party organisation was established in the tree."""

    TYPE: ClassVar[str] = "party.org.established.v1"
    SUBJECT: ClassVar[str] = "org_id"

    org_id: PartyId
    kind: OrgKind
    parent_id: PartyId | None
    area_id: AreaId
    name: NonEmptyStr
    secretary_id: Annotated[NonEmptyStr | None, pii("identifier")] = None
    occurred_at: Timestamp | None = None


class MemberAttached(Event):
    """组织关系: a member now belongs to ``org_id`` (``from_org_id`` set for a transfer)."""

    TYPE: ClassVar[str] = "party.member.attached.v1"
    SUBJECT: ClassVar[str] = "org_id"

    org_id: PartyId
    member_id: Annotated[NonEmptyStr, pii("identifier")]
    from_org_id: PartyId | None = None
    grid_id: GridId | None = Field(None, description="the grid the member lives in (居住网格), counted for coverage")
    reason: Annotated[Text, pii("free_text")] = ""
    occurred_at: Timestamp | None = None


class MemberDetached(Event):
    """A member's relationship left ``org_id`` for another org (the other half of a transfer)."""

    TYPE: ClassVar[str] = "party.member.detached.v1"
    SUBJECT: ClassVar[str] = "org_id"

    org_id: PartyId
    member_id: Annotated[NonEmptyStr, pii("identifier")]
    to_org_id: PartyId
    occurred_at: Timestamp | None = None


class CentralHouseholdMarked(Event):
    """党员中心户 of a building group."""

    TYPE: ClassVar[str] = "party.household.marked.v1"
    SUBJECT: ClassVar[str] = "org_id"

    org_id: PartyId
    member_id: Annotated[NonEmptyStr, pii("identifier")]
    occurred_at: Timestamp | None = None


class CoverageGap(Event):
    """A grid with at least 3 members and no grid branch (网格党支部): a gap in the tree."""

    TYPE: ClassVar[str] = "party.coverage.gap.v1"
    SUBJECT: ClassVar[str] = "grid_id"

    grid_id: GridId
    community_id: CommunityId | None = None
    street_id: StreetId | None = None
    members: int = Field(ge=0)
    occurred_at: Timestamp | None = None


class CouncilProposed(Event):
    """A council's composition, published (公示) until ``effective_at`` (5 days)."""

    TYPE: ClassVar[str] = "party.council.proposed.v1"
    SUBJECT: ClassVar[str] = "council_id"

    council_id: PartyId
    level: CouncilLevel
    area_id: AreaId
    seats: tuple[CouncilSeat, ...]
    effective_at: Timestamp
    proposed_by: Annotated[NonEmptyStr | None, pii("identifier")] = None
    occurred_at: Timestamp | None = None


class CouncilEffective(Event):
    """The 公示 ended: the council's composition takes effect."""

    TYPE: ClassVar[str] = "party.council.effective.v1"
    SUBJECT: ClassVar[str] = "council_id"

    council_id: PartyId
    level: CouncilLevel
    area_id: AreaId
    members: int = Field(ge=1)
    part_time_members: int = Field(ge=0)
    occurred_at: Timestamp | None = None


class MeetingHeld(Event):
    """联席会议 held: ``quorum`` when more than half the members attended; a meeting without a
    quorum adopts nothing. ``open_resolutions`` are the council's resolutions adopted at earlier
    meetings and not completed when this one was recorded: they are reported to it."""

    TYPE: ClassVar[str] = "party.meeting.held.v1"
    SUBJECT: ClassVar[str] = "council_id"

    council_id: PartyId
    meeting_id: PartyId
    held_at: Timestamp
    attendees: People
    absentees: People
    quorum: bool
    area_id: AreaId | None = None
    resolutions: tuple[ResolutionItem, ...] = ()
    open_resolutions: tuple[ResolutionItem, ...] = ()
    occurred_at: Timestamp | None = None


class MeetingOverdue(Event):
    """A council held no joint meeting in a quarter (每季度召开1次)."""

    TYPE: ClassVar[str] = "party.meeting.overdue.v1"
    SUBJECT: ClassVar[str] = "council_id"

    council_id: PartyId
    quarter: Quarter
    area_id: AreaId | None = None
    occurred_at: Timestamp | None = None


class ResolutionCompleted(Event):
    """A resolution (议定事项) was completed; ``on_time`` before its deadline."""

    TYPE: ClassVar[str] = "party.resolution.completed.v1"
    SUBJECT: ClassVar[str] = "council_id"

    council_id: PartyId
    resolution_id: PartyId
    owner_unit_id: NonEmptyStr
    on_time: bool
    occurred_at: Timestamp | None = None


class ResolutionOverdue(Event):
    """督办: a resolution passed its deadline unfinished (once)."""

    TYPE: ClassVar[str] = "party.resolution.overdue.v1"
    SUBJECT: ClassVar[str] = "council_id"

    council_id: PartyId
    resolution_id: PartyId
    owner_unit_id: NonEmptyStr
    due_at: Timestamp
    occurred_at: Timestamp | None = None


class UnitReported(Event):
    """单位报到: a resident unit reported to the community where it sits."""

    TYPE: ClassVar[str] = "party.unit.reported.v1"
    SUBJECT: ClassVar[str] = "unit_id"

    unit_id: NonEmptyStr
    name: NonEmptyStr
    community_id: CommunityId
    street_id: StreetId | None = None
    org_id: PartyId | None = None
    resources: tuple[NonEmptyStr, ...] = ()
    moved_from: CommunityId | None = Field(
        None, description="a unit that reported elsewhere before: the community it moved from (a new report moves it)")
    occurred_at: Timestamp | None = None


class AgreementSigned(Event):
    """共建协议 signed, or renewed (``renewal``) with a new validity."""

    TYPE: ClassVar[str] = "party.agreement.signed.v1"
    SUBJECT: ClassVar[str] = "unit_id"

    agreement_id: PartyId
    unit_id: NonEmptyStr
    community_id: CommunityId
    commitments: tuple[NonEmptyStr, ...]
    valid_from: Timestamp
    valid_until: Timestamp
    renewal: bool = False
    occurred_at: Timestamp | None = None


class ProjectPosted(Event):
    TYPE: ClassVar[str] = "party.project.posted.v1"
    SUBJECT: ClassVar[str] = "project_id"

    project_id: PartyId
    community_id: CommunityId
    title: NonEmptyStr
    need: Annotated[Text, pii("free_text")] = ""
    occurred_at: Timestamp | None = None


class ProjectClaimed(Event):
    TYPE: ClassVar[str] = "party.project.claimed.v1"
    SUBJECT: ClassVar[str] = "project_id"

    project_id: PartyId
    community_id: CommunityId
    unit_id: NonEmptyStr
    occurred_at: Timestamp | None = None


class ProjectCompleted(Event):
    TYPE: ClassVar[str] = "party.project.completed.v1"
    SUBJECT: ClassVar[str] = "project_id"

    project_id: PartyId
    community_id: CommunityId
    unit_id: NonEmptyStr
    result: Annotated[Text, pii("free_text")] = ""
    occurred_at: Timestamp | None = None


class ProjectRated(Event):
    TYPE: ClassVar[str] = "party.project.rated.v1"
    SUBJECT: ClassVar[str] = "project_id"

    project_id: PartyId
    community_id: CommunityId
    unit_id: NonEmptyStr
    rating: Rating
    comment: Annotated[Text, pii("free_text")] = ""
    occurred_at: Timestamp | None = None


class MemberReportOverdue(Event):
    """双报到: an in-service member registered with a unit has not reported to their residential
    community by the deadline, or has moved away from it (``moved``)."""

    TYPE: ClassVar[str] = "party.member.report_overdue.v1"
    SUBJECT: ClassVar[str] = "member_id"

    member_id: Annotated[NonEmptyStr, pii("identifier")]
    unit_id: NonEmptyStr | None = None
    community_id: CommunityId | None = None
    due_at: Timestamp | None = None
    moved: bool = False
    from_community_id: CommunityId | None = Field(
        None, description="for a move: the community the member was registered with before (``community_id`` is the new one)")
    occurred_at: Timestamp | None = None


class MemberFeedback(Event):
    """双重管理: each quarter, the community reports a member's service to their unit's Party org."""

    TYPE: ClassVar[str] = "party.member.feedback.v1"
    SUBJECT: ClassVar[str] = "member_id"

    member_id: Annotated[NonEmptyStr, pii("identifier")]
    unit_id: NonEmptyStr
    community_id: CommunityId
    quarter: Quarter
    orders_completed: int = Field(ge=0)
    orders_passed: int = Field(ge=0)
    average_rating: float | None = Field(None, ge=1, le=5)
    occurred_at: Timestamp | None = None


class OrgLifeHeld(Event):
    """三会一课 / 主题党日 held, with attendance."""

    TYPE: ClassVar[str] = "party.org_life.held.v1"
    SUBJECT: ClassVar[str] = "org_id"

    org_id: PartyId
    meeting_id: PartyId
    kind: OrgLifeKind
    held_at: Timestamp
    attendees: People
    absentees: People
    area_id: AreaId | None = None
    topic: Annotated[Text, pii("free_text")] = ""
    occurred_at: Timestamp | None = None
    period: Period | None = Field(
        None, description="the required period the meeting fulfils: its month, or its quarter for the kinds the "
        "party service's organisational-life policy requires each quarter (absent on events recorded before the field)")


class OrgLifeOverdue(Event):
    """An organisation missed a required meeting of ``kind`` in ``period`` (a month or a quarter)."""

    TYPE: ClassVar[str] = "party.org_life.overdue.v1"
    SUBJECT: ClassVar[str] = "org_id"

    org_id: PartyId
    kind: OrgLifeKind
    period: Period
    area_id: AreaId | None = None
    occurred_at: Timestamp | None = None


class CommitmentMade(Event):
    TYPE: ClassVar[str] = "party.commitment.made.v1"
    SUBJECT: ClassVar[str] = "member_id"

    member_id: Annotated[NonEmptyStr, pii("identifier")]
    commitment_id: PartyId
    year: int
    text: Annotated[NonEmptyStr, pii("free_text")]
    org_id: PartyId | None = None
    occurred_at: Timestamp | None = None


class CommitmentFulfilled(Event):
    TYPE: ClassVar[str] = "party.commitment.fulfilled.v1"
    SUBJECT: ClassVar[str] = "member_id"

    member_id: Annotated[NonEmptyStr, pii("identifier")]
    commitment_id: PartyId
    year: int
    note: Annotated[Text, pii("free_text")] = ""
    org_id: PartyId | None = None
    occurred_at: Timestamp | None = None


class CommitmentRated(Event):
    TYPE: ClassVar[str] = "party.commitment.rated.v1"
    SUBJECT: ClassVar[str] = "member_id"

    member_id: Annotated[NonEmptyStr, pii("identifier")]
    commitment_id: PartyId
    year: int
    rating: Rating
    org_id: PartyId | None = None
    occurred_at: Timestamp | None = None


# ---------------------------------------------------------------------------------------
# Erasure (shapes in schemas.common)
# ---------------------------------------------------------------------------------------


class ErasePerson(ErasePersonCommand):
    """擦除 Erase a person's personal data in the party service (see :class:`~schemas.common.ErasePersonCommand`)."""

    TYPE: ClassVar[str] = "party.person.erase.v1"


class PersonErased(PersonErasedEvent):
    """A person's data was erased in the party service (see :class:`~schemas.common.PersonErasedEvent`)."""

    TYPE: ClassVar[str] = "party.person.erased.v1"


COMMANDS: tuple[type[Command], ...] = (
    EstablishOrg, AttachMember, MarkCentralHousehold, ProposeCouncil, HoldMeeting, CompleteResolution, ReportUnit,
    SignAgreement, PostProject, ClaimProject, CompleteProject, RateProject, RecordOrgLife, MakeCommitment,
    FulfilCommitment, RateCommitment, ErasePerson,
)
EVENTS: tuple[type[Event], ...] = (
    OrgEstablished, MemberAttached, MemberDetached, CentralHouseholdMarked, CoverageGap, CouncilProposed,
    CouncilEffective, MeetingHeld, MeetingOverdue, ResolutionCompleted, ResolutionOverdue, UnitReported,
    AgreementSigned, ProjectPosted, ProjectClaimed, ProjectCompleted, ProjectRated, MemberReportOverdue,
    MemberFeedback, OrgLifeHeld, OrgLifeOverdue, CommitmentMade, CommitmentFulfilled, CommitmentRated, PersonErased,
)

__all__ = [
    "OrgKind", "CouncilLevel", "OrgLifeKind", "CouncilSeat", "ResolutionItem", "PartyId", "AreaId", "Quarter",
    "Period", "Rating", "People", *(m.__name__ for m in COMMANDS), *(m.__name__ for m in EVENTS),
    "COMMANDS", "EVENTS",
]
