"""吹哨报到 in the grid worker: the handler steps of the three whistle commands, the
missed-department timer's step, what the whistle queries take and answer, and the metrics.

:class:`WhistleSteps` is a part of :class:`~services.grid.app.handler.GridHandler`: a batch
locks the whistles it names (:data:`~services.grid.projection.whistles.WHISTLES`) before any
command runs; each command fills in the domain's :class:`WhistleContext` and asks
:func:`decide_whistle`. Who may act on a whistle, beyond what the policy table admits:

- blow: a street officer of the whistle's street (the policy checks the street); a case the
  whistle names must be a case of that street, else it is refused as unknown (``unknown_case``);
- answer: a department officer, as one of the departments of their token's scope; answering as
  another department is refused exactly as an unknown whistle (``unknown_whistle``);
- rate: a street officer of the whistle's street; another street's whistle is refused as unknown.
"""
from __future__ import annotations

from datetime import datetime
from typing import Container, Literal, Sequence

from prometheus_client.core import REGISTRY, CounterMetricFamily
from pydantic import BaseModel, Field

from schemas.common import StreetId
from schemas.grid import AnswerWhistle, BlowWhistle, DepartmentId, RateWhistle, WhistleEvent, WhistleId
from services.grid.domain.whistle import WhistleContext, WhistleState, check_missed, decide_whistle, evolve_whistle
from services.grid.projection import CASES
from services.grid.projection.whistles import WHISTLES, WhistleSnapshot, whistles_due
from services.kit.handlers import handles, prepares
from services.kit.identity import Principal
from services.kit.routes import Page, PageOut, ref
from services.kit.uow import UnitOfWork

WHISTLE_COMMANDS = (BlowWhistle, AnswerWhistle, RateWhistle)


def may_answer(principal: Principal | None, department: str) -> bool:
    """A department officer answers as one of the departments of their scope."""
    return principal is not None and principal.has("department_officer") and \
        principal.scope.covers_department(department)


def may_rate(principal: Principal | None, state: WhistleState) -> bool:
    """A street officer rates for a whistle of a street of their scope."""
    return principal is not None and principal.has("street_officer") and principal.scope.covers(state.street_id)


class WhistleSteps:
    """The whistle commands and timer of :class:`~services.grid.app.handler.GridHandler`
    (which sets ``departments``: anything that answers ``department_id in departments``)."""

    departments: Container[str]

    @prepares(*WHISTLE_COMMANDS)
    async def load_whistles(self, uow: UnitOfWork, commands: Sequence[BlowWhistle | AnswerWhistle | RateWhistle]) -> None:
        """Lock the states of the whistles the batch names."""
        await WHISTLES.of(uow).load([c.whistle_id for c in commands])

    @handles(BlowWhistle)
    async def blow_whistle(self, uow: UnitOfWork, cmd: BlowWhistle) -> None:
        """街乡吹哨: summon departments to report by a time."""
        state = await WHISTLES.of(uow).fetch(cmd.whistle_id)
        in_street = False
        if cmd.case_id is not None:
            case = await CASES.of(uow).fetch(cmd.case_id)
            in_street = case is not None and case.street_id == cmd.street_id
        self._apply_whistle(uow, decide_whistle(state, cmd, self._whistle_context(uow, case_in_street=in_street)))

    @handles(AnswerWhistle)
    async def answer_whistle(self, uow: UnitOfWork, cmd: AnswerWhistle) -> None:
        """部门报到: a summoned department reports (on time, or late)."""
        state = await WHISTLES.of(uow).fetch(cmd.whistle_id)
        if not may_answer(uow.principal, cmd.department):
            state = None  # not the caller's department: as unknown
        self._apply_whistle(uow, decide_whistle(state, cmd, self._whistle_context(uow)))

    @handles(RateWhistle)
    async def rate_whistle(self, uow: UnitOfWork, cmd: RateWhistle) -> None:
        """The street rates a department's response, 1–5."""
        state = await WHISTLES.of(uow).fetch(cmd.whistle_id)
        if state is not None and not may_rate(uow.principal, state):
            state = None  # another street's whistle: as unknown
        self._apply_whistle(uow, decide_whistle(state, cmd, self._whistle_context(uow)))

    async def check_whistles(self, uow: UnitOfWork, limit: int = 500) -> int:
        """Record missing, once each, the summoned departments of the whistles due that had not
        reported by ``report_by``; returns how many whistles were checked. Whistles a batch holds
        are left for a later round."""
        due = await whistles_due(uow.conn, uow.now, limit)
        WHISTLES.of(uow).adopt(due)
        for _, state in due.values():
            self._apply_whistle(uow, check_missed(state, uow.now))
        return len(due)

    async def missed_of(self, uow: UnitOfWork, whistle_ids: Sequence[str]) -> None:
        """What a round of :meth:`check_whistles` did to these whistles, done again at
        ``uow.now`` (a rebuild runs each round that published, among the messages of its batch)."""
        whistles = WHISTLES.of(uow)
        await whistles.load(whistle_ids)  # one query for the round, in the order locks are taken
        for whistle_id in whistle_ids:
            self._apply_whistle(uow, check_missed(whistles.get(whistle_id), uow.now))

    def _whistle_context(self, uow: UnitOfWork, **facts) -> WhistleContext:
        return WhistleContext(now=uow.now, departments=self.departments, **facts)

    def _apply_whistle(self, uow: UnitOfWork, events: Sequence[WhistleEvent]) -> None:
        whistles = WHISTLES.of(uow)
        for ev in events:
            uow.emit(ev, time=ev.occurred_at)
            whistles.put(ev.whistle_id, evolve_whistle(whistles.get(ev.whistle_id), ev))


# -- queries ---------------------------------------------------------------------------------

WHISTLE_READERS = ("community_officer", "street_officer", "department_officer", "auditor")

WhistleRef = ref("WhistleRef", "whistle_id", WhistleId)


class WhistleQuery(Page):
    street_id: StreetId | None = Field(None, description="whistles of this street (9 digits)")
    department: DepartmentId | None = Field(None, description="whistles that summoned this department")
    open: bool | None = Field(None, description="whether a summoned department has neither reported nor been "
                                                "recorded missing")


class SummonsOut(BaseModel):
    """A summoned department: its report, its missing record, the street's rating."""

    department: str
    status: Literal["summoned", "reported", "reported_late", "missed"] = Field(
        description="summoned (nothing yet), reported (on time), reported_late, missed (and not reported since)")
    answered_at: datetime | None
    on_time: bool | None
    missed: bool = Field(description="recorded missing at report_by (a late report may follow)")
    rating: int | None
    rated_at: datetime | None


class WhistleOut(BaseModel):
    """A whistle (吹哨) and what each summoned department did."""

    whistle_id: str
    street_id: str
    case_id: str | None
    matter: str
    blown_by: str
    blown_at: datetime
    report_by: datetime
    is_open: bool
    version: int
    summons: list[SummonsOut]


class WhistlePage(PageOut[WhistleOut]):
    """One page of whistles, latest first."""


# -- metrics ---------------------------------------------------------------------------------


class WhistleMetrics:
    """A prometheus collector over the latest :class:`WhistleSnapshot` (from committed rows, so a
    replay or a restart never counts twice; no ids or departments as labels):
    ``grid_whistles_blown_total``, ``grid_whistle_answers_total{on_time}`` and
    ``grid_whistle_departments_missed_total``."""

    def __init__(self) -> None:
        self.snapshot = WhistleSnapshot()

    def update(self, snapshot: WhistleSnapshot) -> None:
        self.snapshot = snapshot

    def collect(self):
        s = self.snapshot
        yield CounterMetricFamily("grid_whistles_blown", "Whistles blown by streets (吹哨)", value=s.blown)
        answers = CounterMetricFamily("grid_whistle_answers", "Departments' reports to whistles (报到)",
                                      labels=["on_time"])
        answers.add_metric(["true"], s.answered_on_time)
        answers.add_metric(["false"], s.answered_late)
        yield answers
        yield CounterMetricFamily("grid_whistle_departments_missed",
                                  "Summoned departments recorded missing at report_by", value=s.missed)


WHISTLE_METRICS = WhistleMetrics()
_registered = False


def register_metrics() -> WhistleMetrics:
    """Register the collector once per process (idempotent)."""
    global _registered
    if not _registered:
        REGISTRY.register(WHISTLE_METRICS)
        _registered = True
    return WHISTLE_METRICS
