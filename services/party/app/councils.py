"""区域化党建 and 双报到 of units in the party worker: the handler steps of the council, unit and
project commands, the council timer's step, and what the council, unit and project routes take
and answer.

:class:`CouncilSteps` is a part of :class:`~services.party.app.handler.PartyHandler`: a batch
locks the councils, units and projects it names (:mod:`services.party.projection.councils`)
before any command runs; each command then asks the pure domain
(:func:`~services.party.domain.council.decide_council`,
:func:`~services.party.domain.units.decide_unit`, :func:`~services.party.domain.units.decide_project`).
Who may act on an existing object, beyond what the policy table admits (its area):

- a council: a party secretary, community or street officer whose scope covers the council's
  area (its street or community); another council is refused exactly as an unknown one
  (``unknown_council``);
- a project: the same, for the project's community; another project is refused as unknown
  (``unknown_project``).

Before a command on a council, what the passing of time made of it (the end of its 公示, a
quarter without a meeting, a resolution past its deadline) is applied first, as the timer would
have, so that a meeting is decided against the composition in force.
"""
from __future__ import annotations

from datetime import datetime
from typing import Awaitable, Callable, Sequence

from pydantic import BaseModel, Field

from schemas.common import CommunityId, Event
from schemas.party import (
    ClaimProject, CompleteProject, CompleteResolution, CouncilLevel, HoldMeeting, MeetingHeld, MeetingOverdue,
    PostProject, ProposeCouncil, RateProject, ReportUnit, SignAgreement,
)
from services.kit.handlers import handles, prepares
from services.kit.identity import Principal
from services.kit.locks import advisory_locks
from services.kit.routes import Page, PageOut, ref
from services.kit.uow import UnitOfWork
from services.party.domain.council import (
    Composition, CouncilContext, CouncilState, Resolution, check_council, decide_council, evolve_council,
)
from services.party.domain.units import (
    Agreement, ProjectStatus, UnitContext, decide_project, decide_unit, evolve_project, evolve_unit,
)
from services.party.projection.councils import COUNCILS, PROJECTS, UNITS, agreement_holder, councils_due

from . import metrics as mx
from .policy import OFFICERS, SECRETARY

COUNCIL_COMMANDS = (ProposeCouncil, HoldMeeting, CompleteResolution)
UNIT_COMMANDS = (ReportUnit, SignAgreement)
PROJECT_COMMANDS = (PostProject, ClaimProject, CompleteProject, RateProject)

ACTORS = (SECRETARY, *OFFICERS)
"""Who acts on a council, a unit's agreements and a community's projects: a party secretary and
the community and street officers (each in the areas of their scope)."""


def may_act(principal: Principal | None, area_id: str | None) -> bool:
    """A party secretary or a community or street officer whose scope covers ``area_id``."""
    return (principal is not None and any(principal.has(r) for r in ACTORS)
            and area_id is not None and principal.scope.covers(area_id))


class CouncilSteps:
    """The council, unit and project commands and the council timer of
    :class:`~services.party.app.handler.PartyHandler`."""

    settle_reported: Callable[[UnitOfWork, str], Awaitable[None]]  # LifeSteps's

    @prepares(*COUNCIL_COMMANDS)
    async def load_councils(self, uow: UnitOfWork, commands: Sequence[ProposeCouncil | HoldMeeting |
                                                                      CompleteResolution]) -> None:
        """Lock the states of the councils the batch names."""
        await COUNCILS.of(uow).load([c.council_id for c in commands])

    @prepares(*UNIT_COMMANDS, *PROJECT_COMMANDS)
    async def load_units_and_projects(self, uow: UnitOfWork, commands: Sequence) -> None:
        """Lock the units the batch names (reporting, signing or claiming), by name first for a
        report (it settles the follow-ups of the unit's members, which a registration with the
        unit takes after the same name lock), then its projects."""
        await advisory_locks(uow.conn, {f"party:unit:{c.unit_id}" for c in commands if isinstance(c, ReportUnit)})
        await UNITS.of(uow).load([c.unit_id for c in commands if isinstance(c, (*UNIT_COMMANDS, ClaimProject))])
        await PROJECTS.of(uow).load([c.project_id for c in commands if isinstance(c, PROJECT_COMMANDS)])

    # -- the regional council ------------------------------------------------------------

    @handles(ProposeCouncil)
    async def propose_council(self, uow: UnitOfWork, cmd: ProposeCouncil) -> None:
        """A composition (first, or 换届), published for 5 days (公示); the policy checked the area."""
        state = await self._council_now(uow, cmd.council_id)
        self._apply_council(uow, decide_council(state, cmd, CouncilContext(now=uow.now)))

    @handles(HoldMeeting)
    async def hold_meeting(self, uow: UnitOfWork, cmd: HoldMeeting) -> None:
        """联席会议: attendance against the composition in force, resolutions adopted with a quorum."""
        state = await self._council_now(uow, cmd.council_id)
        if state is not None and not may_act(uow.principal, state.area_id):
            state = None  # another area's council: as unknown
        self._apply_council(uow, decide_council(state, cmd, CouncilContext(now=uow.now)))

    @handles(CompleteResolution)
    async def complete_resolution(self, uow: UnitOfWork, cmd: CompleteResolution) -> None:
        """议定事项办结: on time or late."""
        state = await self._council_now(uow, cmd.council_id)
        if state is not None and not may_act(uow.principal, state.area_id):
            state = None
        self._apply_council(uow, decide_council(state, cmd, CouncilContext(now=uow.now)))

    async def check_councils(self, uow: UnitOfWork, limit: int = 500) -> int:
        """What the passing of time makes of the councils due (a 公示 ended → effective, a quarter
        without a meeting → overdue, a resolution past its deadline → 督办), each once; returns how
        many councils were checked. Councils a batch holds are left for a later round."""
        due = await councils_due(uow.conn, uow.now, limit)
        COUNCILS.of(uow).adopt(due)
        for _, state in due.values():
            self._apply_council(uow, check_council(state, uow.now))
        return len(due)

    async def councils_again(self, uow: UnitOfWork, council_ids: list[str]) -> None:
        """What a round of :meth:`check_councils` did to these councils, done again (a rebuild
        runs each round that published, among the messages of its batch), at the time its events
        are dated: the round's own time, or, for a proposal made effective, the end of its 公示,
        which the round reported in an event of its own time. Done at that earlier time, only
        what the round published of the kinds dated then is done (``caused_live``): a quarter or
        a resolution that fell due by then, reported by the same round, is reported at the
        round's time. A command on the council between the two times would have done it all
        itself, so that nothing else acted on the council in between."""
        councils = COUNCILS.of(uow)
        await councils.load(council_ids)
        for council_id in council_ids:
            self._apply_council(uow, [e for e in check_council(councils.get(council_id), uow.now)
                                      if uow.caused_live(e.TYPE)])

    async def _council_now(self, uow: UnitOfWork, council_id: str) -> CouncilState | None:
        """The council as the passing of time made it (its due timer events applied and emitted)."""
        councils = COUNCILS.of(uow)
        state = await councils.fetch(council_id)
        self._apply_council(uow, check_council(state, uow.now))
        return councils.get(council_id)

    def _apply_council(self, uow: UnitOfWork, events: Sequence[Event]) -> None:
        councils = COUNCILS.of(uow)
        for ev in events:
            uow.emit(ev, time=ev.occurred_at)
            councils.put(ev.council_id, evolve_council(councils.get(ev.council_id), ev))
            if isinstance(ev, MeetingHeld):
                uow.after_commit(mx.MEETINGS_HELD.labels("true" if ev.quorum else "false").inc)
            elif isinstance(ev, MeetingOverdue):
                uow.after_commit(mx.MEETINGS_OVERDUE.inc)

    # -- units and projects --------------------------------------------------------------

    @handles(ReportUnit)
    async def report_unit(self, uow: UnitOfWork, cmd: ReportUnit) -> None:
        """单位报到 to the community where the unit sits (a report elsewhere moves it); its members
        need not report any more (:meth:`LifeSteps.settle_reported`)."""
        state = await UNITS.of(uow).fetch(cmd.unit_id)
        events = decide_unit(state, cmd, UnitContext(now=uow.now))
        self._apply_unit(uow, events)
        if events:
            await self.settle_reported(uow, cmd.unit_id)

    @handles(SignAgreement)
    async def sign_agreement(self, uow: UnitOfWork, cmd: SignAgreement) -> None:
        """共建协议 between the community and a unit reported there, or its renewal."""
        units = UNITS.of(uow)
        state = await units.fetch(cmd.unit_id)
        holder = next((i for i, u in units.items() if u.agreement(cmd.agreement_id) is not None), None)
        if holder is None:
            holder = await agreement_holder(uow.conn, cmd.agreement_id)
        self._apply_unit(uow, decide_unit(state, cmd, UnitContext(now=uow.now, agreement_held_by=holder)))

    @handles(PostProject)
    async def post_project(self, uow: UnitOfWork, cmd: PostProject) -> None:
        """A project of the community's 项目清单; the policy checked the community."""
        state = await PROJECTS.of(uow).fetch(cmd.project_id)
        self._apply_project(uow, decide_project(state, cmd, UnitContext(now=uow.now)))

    @handles(ClaimProject)
    async def claim_project(self, uow: UnitOfWork, cmd: ClaimProject) -> None:
        """双向认领: a unit reported to the project's community claims it."""
        state = await self._project_to_act_on(uow, cmd.project_id)
        unit = await UNITS.of(uow).fetch(cmd.unit_id)
        self._apply_project(uow, decide_project(state, cmd, UnitContext(now=uow.now, unit=unit)))

    @handles(CompleteProject)
    async def complete_project(self, uow: UnitOfWork, cmd: CompleteProject) -> None:
        """The claiming unit completes the project."""
        state = await self._project_to_act_on(uow, cmd.project_id)
        self._apply_project(uow, decide_project(state, cmd, UnitContext(now=uow.now)))

    @handles(RateProject)
    async def rate_project(self, uow: UnitOfWork, cmd: RateProject) -> None:
        """The community rates a completed project, 1–5, once."""
        state = await self._project_to_act_on(uow, cmd.project_id)
        self._apply_project(uow, decide_project(state, cmd, UnitContext(now=uow.now)))

    async def _project_to_act_on(self, uow: UnitOfWork, project_id: str):
        """The project, or None when it does not exist or its community lies outside the sender's scope."""
        state = await PROJECTS.of(uow).fetch(project_id)
        return state if state is not None and may_act(uow.principal, state.community_id) else None

    def _apply_unit(self, uow: UnitOfWork, events: Sequence[Event]) -> None:
        units = UNITS.of(uow)
        for ev in events:
            uow.emit(ev, time=ev.occurred_at)
            units.put(ev.unit_id, evolve_unit(units.get(ev.unit_id), ev))

    def _apply_project(self, uow: UnitOfWork, events: Sequence[Event]) -> None:
        projects = PROJECTS.of(uow)
        for ev in events:
            uow.emit(ev, time=ev.occurred_at)
            projects.put(ev.project_id, evolve_project(projects.get(ev.project_id), ev))


# -- queries ---------------------------------------------------------------------------------

CouncilRef = ref("CouncilRef", "council_id")


class UnitQuery(Page):
    community_id: CommunityId = Field(description="the units that reported to this community (12 digits)")


class ProjectQuery(Page):
    community_id: CommunityId = Field(description="the projects of this community's 项目清单 (12 digits)")
    status: ProjectStatus | None = Field(None, description="posted, claimed, completed or rated")


class CouncilOut(BaseModel):
    """A regional council (大工委 / 大党委): its compositions, a proposal in its 公示, its meetings
    and resolutions, and the quarters settled."""

    council_id: str
    version: int
    level: CouncilLevel
    area_id: str = Field(description="its street (大工委) or community (大党委)")
    effective: bool = Field(description="a composition is in force (the first 公示 has ended)")
    current: Composition | None = Field(description="the composition in force")
    compositions: list[Composition] = Field(description="the compositions that took effect, oldest first")
    pending: Composition | None = Field(description="a proposal in its 公示")
    meetings: list[str] = Field(description="the joint meetings (联席会议) recorded")
    met_quarters: list[str] = Field(description="quarters with a meeting that had a quorum")
    overdue_quarters: list[str] = Field(description="quarters reported overdue")
    resolutions: list[Resolution] = Field(description="the resolutions (议定事项) adopted, and what became of them")
    next_check_at: datetime | None = Field(description="when the council timer next has something to say")


class UnitOut(BaseModel):
    """A resident unit (驻区单位) that reported (单位报到) to the community, with its agreements (共建协议)."""

    unit_id: str
    name: str
    community_id: str
    street_id: str | None
    org_id: str | None = Field(description="its Party organisation")
    resources: list[str] = Field(description="its resources (资源清单)")
    reported_at: datetime | None
    previous_communities: list[str]
    agreements: list[Agreement]


class UnitPage(PageOut[UnitOut]):
    """One page of units, in unit id order."""


class ProjectOut(BaseModel):
    """A project of a community's 项目清单."""

    project_id: str
    community_id: str
    title: str
    need: str
    status: ProjectStatus
    unit_id: str | None = Field(description="the unit that claimed it")
    result: str
    rating: int | None
    comment: str
    posted_at: datetime | None
    claimed_at: datetime | None
    completed_at: datetime | None
    rated_at: datetime | None


class ProjectPage(PageOut[ProjectOut]):
    """One page of projects, latest posted first."""
