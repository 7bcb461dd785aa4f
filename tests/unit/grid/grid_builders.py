"""Builders for the grid domain tests: commands with sensible defaults and a small driver
that runs commands through decide/evolve_all with a controllable clock."""
from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from schemas.common import Command, Event
from schemas.grid import (
    CaseFeedback,
    DismissCase,
    DispatchCase,
    EscalateCase,
    HandleCase,
    LogPatrol,
    RegisterCase,
    ReportCase,
    VerifyCase,
)
from services.grid.domain import DEFAULT_POLICY, CaseState, Context, DeadlinePolicy, OpenCase, decide, evolve_all
from services.grid.registry import DepartmentRegister

SH = ZoneInfo("Asia/Shanghai")
T0 = datetime(2026, 11, 23, 9, 0, tzinfo=SH)  # a Monday
GRID = "110105001002003"
CASE = "case-1"
HERE = {"lat": 39.9219, "lon": 116.4436, "address": "金台里社区3号楼"}
DEPARTMENTS = DepartmentRegister.load()  # the register of services/grid/registry/departments.yaml
CGW = "110105.cgw"  # 区城管委: what the 权责清单 names for environment cases
ZHZF = "110105001.zhzf"  # 建外街道综合执法队 (the street of GRID)


def report(case_id: str = CASE, **kw) -> ReportCase:
    data = dict(
        case_id=case_id, grid_id=GRID, category="environment", description="垃圾桶满溢",
        location=HERE, reporter={"kind": "grid_worker", "id": "gw-1"},
    )
    data.update(kw)
    return ReportCase.model_validate(data)


def register(case_id: str = CASE, **kw) -> RegisterCase:
    return RegisterCase(case_id=case_id, department=kw.pop("department", CGW), **kw)


def dismiss(case_id: str = CASE, **kw) -> DismissCase:
    return DismissCase(case_id=case_id, reason=kw.pop("reason", "不属于网格事项"), **kw)


def dispatch(case_id: str = CASE, **kw) -> DispatchCase:
    return DispatchCase(
        case_id=case_id, department=kw.pop("department", CGW), assignee_id=kw.pop("assignee_id", "staff-1"), **kw
    )


def handle(case_id: str = CASE, **kw) -> HandleCase:
    return HandleCase(case_id=case_id, result=kw.pop("result", "已清运"), **kw)


def verify(case_id: str = CASE, passed: bool = True, **kw) -> VerifyCase:
    return VerifyCase(case_id=case_id, passed=passed, **kw)


def feedback(case_id: str = CASE, satisfaction: str = "satisfied", **kw) -> CaseFeedback:
    return CaseFeedback(case_id=case_id, satisfaction=satisfaction, **kw)


def escalate(case_id: str = CASE, **kw) -> EscalateCase:
    return EscalateCase(case_id=case_id, reason=kw.pop("reason", "需要街道协调"), **kw)


def patrol(**kw) -> LogPatrol:
    data = dict(
        patrol_id="patrol-1", grid_id=GRID, grid_worker_id="gw-1",
        started_at=T0 - timedelta(hours=1), ended_at=T0 - timedelta(minutes=10),
    )
    data.update(kw)
    return LogPatrol.model_validate(data)


class World:
    """Case states and a clock; ``run`` decides a command and applies its events."""

    def __init__(self, now: datetime = T0, policy: DeadlinePolicy = DEFAULT_POLICY):
        self.now = now
        self.policy = policy
        self.states: dict[str, CaseState | None] = {}
        self.log: list[Event] = []

    def tick(self, **delta) -> "World":
        self.now += timedelta(**delta)
        return self

    def ctx(self, **kw) -> Context:
        kw.setdefault("grid_known", True)
        kw.setdefault("open_cases", tuple(OpenCase.of(s) for s in self.states.values() if s and s.is_open))
        return Context(now=self.now, policy=self.policy, **kw)

    def decide(self, command: Command, **ctx) -> list[Event]:
        state = self.states.get(command.aggregate_id)
        named = getattr(command, "department", None)
        if isinstance(command, RegisterCase) and state is not None:
            ctx.setdefault("proposed_department", DEPARTMENTS.responsible(state.category, state.grade, state.street_id))
        ctx.setdefault("department_known", (named or ctx.get("proposed_department")) in DEPARTMENTS)
        return decide(state, command, self.ctx(**ctx))

    def run(self, command: Command, **ctx) -> list[Event]:
        events = self.decide(command, **ctx)
        self.apply(events)
        return events

    def apply(self, events: list[Event]) -> None:
        self.states.update(evolve_all(self.states, events))
        self.log += events

    def state(self, case_id: str = CASE) -> CaseState:
        s = self.states[case_id]
        assert s is not None
        return s


def types(events: list[Event]) -> list[str]:
    return [e.TYPE for e in events]


def world_at(status: str, **kw) -> World:
    """A world whose case ``CASE`` has reached ``status`` (each step one minute apart)."""
    w = World(**kw)
    steps = {
        "reported": [report()],
        "registered": [report(), register()],
        "dismissed": [report(), dismiss()],
        "dispatched": [report(), register(), dispatch()],
        "handled": [report(), register(), dispatch(), handle()],
        "closed": [report(), register(), dispatch(), handle(), verify()],
    }[status]
    for cmd in steps:
        w.run(cmd)
        w.tick(minutes=1)
    assert w.state().status.value == status
    return w
