"""The grid service's handler: grid commands (intake topic and ``POST /v1/commands``) and the
overdue timer, around the pure domain.

A batch first locks the states of the cases it names (:meth:`GridHandler.load`). Each
command's method then fills in the domain's :class:`Context` (the time, the deadline policy,
whether the grid is in the register, the open cases near a report, whether a patrol is
logged, whether a department is in the department register and which one its 权责清单
proposes) and asks ``decide``; :meth:`GridHandler._apply` emits the events, evolves the states
(:data:`~services.grid.projection.CASES`) and gathers the projection rows
(:class:`~services.grid.projection.ProjectionRows`), which the kit writes once per batch.
A refused command changes nothing and becomes a rejection.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Sequence

import yaml

from schemas.common import Command, Event
from schemas.grid import (
    COMMANDS, AcceptCase, CaseDuplicateLinked, CaseFeedback, ContactReporter, ControlHazard, DismissCase, DispatchCase,
    EscalateCase, ErasePerson, HandleCase, LogPatrol, PatrolLogged, RegisterCase, ReportCase, RequestExclusion,
    RequestExtension, ReturnCase, ReviewExclusion, ReviewExtension, ReviewReturn, VerifyCase,
)
from services.grid import projection as db
from services.grid.domain import (
    Context, DeadlinePolicy, OpenCase, WorkCalendar, check_overdue, decide, evolve,
)
from services.grid.projection import CASES, ProjectionRows
from services.grid.registry import DepartmentRegister, GridRegister
from services.kit import erasure
from services.kit.handlers import Handler, handles, prepares
from services.kit.uow import UnitOfWork

from . import erasure as grid_erasure
from .access import may_act_on
from .policy import POLICY
from .whistles import WHISTLE_COMMANDS, WhistleSteps  # 吹哨报到

CaseStep = RegisterCase | DispatchCase | HandleCase | VerifyCase | CaseFeedback | EscalateCase
DepartmentStep = (AcceptCase | ReturnCase | ReviewReturn | ContactReporter | ControlHazard | RequestExtension
                  | ReviewExtension | RequestExclusion | ReviewExclusion)


GRID_DIR = Path(__file__).resolve().parent.parent
CALENDAR_FILE = GRID_DIR / "policy" / "calendar.yaml"


def load_calendar(path: Path | str = CALENDAR_FILE) -> WorkCalendar:
    """The working-time calendar from a YAML file; raises on a missing or invalid file."""
    with open(path, encoding="utf-8") as f:
        return WorkCalendar.from_mapping(yaml.safe_load(f) or {})


def load_policy(path: Path | str, calendar: WorkCalendar | Path | str = CALENDAR_FILE) -> DeadlinePolicy:
    """The deadline policy from a YAML file, on ``calendar`` (a calendar, or the path of its
    file: by default the package's); raises on a missing or invalid file."""
    if not isinstance(calendar, WorkCalendar):
        calendar = load_calendar(calendar)
    with open(path, encoding="utf-8") as f:
        return DeadlinePolicy.from_mapping(yaml.safe_load(f) or {}, calendar=calendar)


class GridHandler(WhistleSteps, Handler):
    """Every grid command, one shared path for the intake topic and HTTP (the whistles' in
    :class:`~services.grid.app.whistles.WhistleSteps`)."""

    service = "grid"
    policy = POLICY
    replayed = (CaseDuplicateLinked.TYPE,)  # a rebuild links a report as the worker did (_linked_live)

    def __init__(self, deadlines: DeadlinePolicy, register: GridRegister, duplicate_radius_m: float = 250.0,
                 departments: DepartmentRegister | None = None):
        self.deadlines = deadlines
        self.register = register
        self.departments = departments if departments is not None else DepartmentRegister.load(grids=register)
        self.duplicate_radius_m = duplicate_radius_m

    # -- the batch step ----------------------------------------------------------------
    @prepares(*(c for c in COMMANDS if c is not ErasePerson and c not in WHISTLE_COMMANDS))
    async def load(self, uow: UnitOfWork, commands: Sequence[Command]) -> None:
        """Lock the states of the cases the batch names (a dismissal's original too), look up
        which of its patrols are logged already and the open cases near each of its new reports."""
        cases = [c.case_id for c in commands if not isinstance(c, LogPatrol)]
        cases += [c.duplicate_of for c in commands if isinstance(c, DismissCase) and c.duplicate_of]
        held = CASES.of(uow)
        await held.load(cases)
        rows = ProjectionRows.of(uow)
        await rows.load_patrols(uow.conn, [c.patrol_id for c in commands if isinstance(c, LogPatrol)])
        reports = [c for c in commands if isinstance(c, ReportCase) and c.grid_id in self.register
                   and held.get(c.case_id) is None]
        if reports:
            await rows.load_near(uow.conn, reports, self.duplicate_radius_m)

    # -- commands ----------------------------------------------------------------------
    @handles(ReportCase)
    async def report_case(self, uow: UnitOfWork, cmd: ReportCase) -> None:
        """信息收集; a report near an open case of its category is dismissed as its duplicate."""
        state = await CASES.of(uow).fetch(cmd.case_id)
        ctx = self._context(uow, grid_known=cmd.grid_id in self.register)
        if state is None and ctx.grid_known:
            events = await self._against_open_cases(uow, cmd, ctx)
        else:
            events = decide(state, cmd, ctx)  # refused: the case exists, or the grid is unknown
        self._apply(uow, events)

    @handles(HandleCase, VerifyCase, CaseFeedback, EscalateCase)
    async def case_step(self, uow: UnitOfWork, cmd: CaseStep) -> None:
        """The steps of the loop that need only the case itself: 处置 handle, 核查 verify (passed
        closes the case, 结案, and delists a listed one, 销号; failed sends it back, 返工), 反馈
        feedback on a closed case, and escalation on request (joint mediation)."""
        await self._decide_case(uow, cmd)

    @handles(RegisterCase)
    async def register_case(self, uow: UnitOfWork, cmd: RegisterCase) -> None:
        """立案: the department named, or else the one the register's 权责清单 proposes."""
        state = await CASES.of(uow).fetch(cmd.case_id)
        proposed = self.departments.responsible(state.category, state.grade, state.street_id) if state else None
        await self._decide_case(uow, cmd, proposed_department=proposed,
                                department_known=(cmd.department or proposed) in self.departments)

    @handles(DispatchCase, ReviewReturn)
    async def dispatch_case(self, uow: UnitOfWork, cmd: DispatchCase | ReviewReturn) -> None:
        """派遣, and the review of a return (退单审核), which re-dispatches when approved: to a
        department of the register."""
        await self._decide_case(uow, cmd, department_known=cmd.department in self.departments)

    @handles(AcceptCase, ReturnCase, ContactReporter, ControlHazard, RequestExtension, ReviewExtension,
             RequestExclusion, ReviewExclusion)
    async def department_step(self, uow: UnitOfWork, cmd: DepartmentStep) -> None:
        """The department's part of a case — 签收, 退单, 先行联系, 管控, 延期申请, 不合理诉求 — and
        the reviews of extensions and exclusions."""
        await self._decide_case(uow, cmd)

    @handles(DismissCase)
    async def dismiss_case(self, uow: UnitOfWork, cmd: DismissCase) -> None:
        """不予立案, possibly as the duplicate of another case, which must be open."""
        original = await CASES.of(uow).fetch(cmd.duplicate_of) if cmd.duplicate_of else None
        if original is not None and not may_act_on(uow.principal, cmd, original):
            original = None  # outside the caller's scope: as unknown (not an open case)
        await self._decide_case(uow, cmd, open_cases=(OpenCase.of(original),) if original and original.is_open else ())

    @handles(LogPatrol)
    async def log_patrol(self, uow: UnitOfWork, cmd: LogPatrol) -> None:
        """巡查."""
        logged = await ProjectionRows.of(uow).patrol_logged(uow.conn, cmd.patrol_id)
        self._apply(uow, decide(None, cmd, self._context(uow, grid_known=cmd.grid_id in self.register,
                                                         patrol_logged=logged)))

    # -- erasure -----------------------------------------------------------------------
    @handles(ErasePerson)
    async def erase_person(self, uow: UnitOfWork, cmd: ErasePerson) -> None:
        """擦除: the person's id becomes a pseudonym, their words, places and media go."""
        await erasure.erase(uow, cmd.person_id, grid_erasure.scrub)

    @handles(*erasure.other_services_erased("grid"))
    async def person_erased(self, uow: UnitOfWork, event) -> None:
        """Another service erased a person: erase the grid's copy under the same pseudonym."""
        await erasure.erase(uow, event.person_id, grid_erasure.scrub, pseudonym=event.pseudonym,
                            origin=event.service())

    # -- timers ------------------------------------------------------------------------
    async def check_overdue(self, uow: UnitOfWork, limit: int = 500) -> int:
        """Report missed deadlines of the cases due for a check (once each) and supervise them
        (超期督办: yellow, then red cards); returns how many cases were checked. Cases a batch holds are left for a later round."""
        due = await db.due_for_check(uow.conn, uow.now, limit)
        CASES.of(uow).adopt(due)
        for _, state in due.values():
            self._apply(uow, check_overdue(state, uow.now, self.deadlines))
        return len(due)

    async def overdue_of(self, uow: UnitOfWork, case_ids: Sequence[str]) -> None:
        """What a round of :meth:`check_overdue` did to these cases, done again at ``uow.now``
        (a rebuild runs each round that published, among the messages of its batch)."""
        cases = CASES.of(uow)
        await cases.load(case_ids)  # one query for the round, in the order locks are taken
        for case_id in case_ids:
            self._apply(uow, check_overdue(cases.get(case_id), uow.now, self.deadlines))

    # -- shared steps ------------------------------------------------------------------
    def _context(self, uow: UnitOfWork, **facts) -> Context:
        return Context(now=uow.now, policy=self.deadlines, duplicate_radius_m=self.duplicate_radius_m, **facts)

    async def _decide_case(self, uow: UnitOfWork, cmd: CaseStep | DepartmentStep | DismissCase, **facts) -> None:
        state = await CASES.of(uow).fetch(cmd.case_id)
        if state is not None and not may_act_on(uow.principal, cmd, state):
            state = None  # a case the sender may not act on is refused as an unknown one (unknown_case)
        self._apply(uow, decide(state, cmd, self._context(uow, **facts)))

    async def _against_open_cases(self, uow: UnitOfWork, cmd: ReportCase, ctx: Context) -> list[Event]:
        """Decide a new report against the open cases near it: those in the projection,
        corrected by the states this unit of work holds; an original whose locked state is no
        longer open is dropped and the report decided again."""
        cases = CASES.of(uow)
        chosen = _linked_live(uow, cmd.case_id)
        candidates: dict[str, OpenCase] = {}
        if chosen is None or chosen:  # a replayed report the worker linked to none has none to look through
            near = await ProjectionRows.of(uow).near(uow.conn, cmd, self.duplicate_radius_m)
            candidates = {c.case_id: c for c in near if chosen is None or c.case_id in chosen}
            # the batch's own changes are not in the projection yet: all of them live, the chosen replayed
            held = cases.items() if chosen is None else [(i, s) for i in chosen if (s := cases.get(i)) is not None]
            category = cmd.category
            for cid, s in held:
                # the category first: it is a field, ``is_open`` a computation, and a batch holds
                # hundreds of cases that each report of it looks through
                if s.category is category and s.is_open:
                    candidates[cid] = OpenCase.of(s)
                elif cid in candidates:
                    del candidates[cid]
        while True:
            events = decide(None, cmd, dataclasses.replace(ctx, open_cases=tuple(candidates.values())))
            linked = next((e for e in events if isinstance(e, CaseDuplicateLinked)), None)
            if linked is None:
                return events
            original = await cases.fetch(linked.case_id)
            if original is not None and original.is_open:
                return events
            candidates.pop(linked.case_id, None)  # closed meanwhile: look again without it

    def _apply(self, uow: UnitOfWork, events: Sequence[Event]) -> None:
        """Emit ``events``, evolve the states of their cases, and gather the projection rows."""
        cases, rows = CASES.of(uow), ProjectionRows.of(uow)
        for ev in events:
            env = uow.emit(ev, time=ev.occurred_at)
            if isinstance(ev, PatrolLogged):
                rows.patrol(ev, uow.now)
                continue
            state = evolve(cases.get(ev.case_id), ev)
            cases.put(ev.case_id, state)
            rows.case(state, ev, env.id, uow.now)


def _linked_live(uow: UnitOfWork, case_id: str) -> set[str] | None:
    """Replayed by a rebuild, a report is the duplicate of the case the worker linked it to, and
    of none when the worker linked it to none: the ids of those cases (empty: none). Two reports
    near each other on different partitions are handled live by two lanes at once, each in its
    transaction, and neither sees the other's new case; the replay handles them one after the
    other, and the second would see the first. So the rebuild keeps only the original the worker
    chose (still subject to being open, near and of the category in the replayed state). None
    live, or when the rebuild knows nothing the message caused: the candidates are as found."""
    live = uow.live_events(CaseDuplicateLinked.TYPE)
    if live is None:
        return None
    return {e.get("case_id") for e in live if e.get("duplicate_case_id") == case_id}
