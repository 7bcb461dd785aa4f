"""The state of a grid case (案卷), rebuilt by ``evolve`` from the case's events.

A frozen pydantic model that round-trips through ``model_dump(mode="json")`` /
``model_validate`` (the kit stores it as jsonb).
"""
from __future__ import annotations

from datetime import datetime
from enum import Enum

from pydantic import BaseModel, ConfigDict, Field

from schemas.grid import Category, EscalationLevel, Grade, Location, Reporter, Satisfaction, Stage, Supervision

LOOP_STAGES = frozenset({Stage.REGISTER, Stage.DISPATCH, Stage.HANDLE, Stage.VERIFY})
"""The stages of the loop itself, one after the other; the department's ``accept``, ``contact``
and ``control`` deadlines run beside ``handle`` from dispatch."""


class CaseStatus(str, Enum):
    """Where a case is in the loop."""

    REPORTED = "reported"  # 已上报, awaiting 立案
    REGISTERED = "registered"  # 已立案, awaiting 派遣
    DISMISSED = "dismissed"  # 不予立案 (terminal)
    DISPATCHED = "dispatched"  # 已派遣 (also after a failed verification: 返工)
    HANDLED = "handled"  # 已处置, awaiting 核查
    CLOSED = "closed"  # 已结案 (terminal; feedback may follow)

    @property
    def is_open(self) -> bool:
        return self not in (CaseStatus.DISMISSED, CaseStatus.CLOSED)


class Deadline(BaseModel):
    """One time limit of a case (时限): the stage, when it started and is due, when it was met,
    and whether ``check_overdue`` already reported it missed (``overdue``), which is what makes
    overdue detection once-only across restarts."""

    model_config = ConfigDict(frozen=True)

    stage: Stage
    started_at: datetime
    due_at: datetime
    met_at: datetime | None = None
    overdue: bool = False

    def missed_by(self, now: datetime) -> bool:
        """Whether the deadline was missed as seen at ``now``: past due and unmet, or met late."""
        if self.met_at is not None:
            return self.met_at > self.due_at
        return now > self.due_at


class CaseState(BaseModel):
    """A grid case: the report, where it is in the loop, its deadlines and its outcome."""

    model_config = ConfigDict(frozen=True)

    case_id: str
    version: int = Field(default=0, ge=0, description="number of events applied")
    status: CaseStatus
    # the report (信息收集)
    grid_id: str
    community_id: str
    street_id: str
    category: Category
    grade: Grade | None = None
    urgent: bool = False
    description: str
    location: Location
    reporter: Reporter
    co_reporters: tuple[Reporter, ...] = ()  # reporters of dismissed duplicates
    duplicates: tuple[str, ...] = ()  # ids of dismissed duplicate cases
    media: tuple[str, ...] = ()
    reported_at: datetime
    # responsibility
    level: EscalationLevel = EscalationLevel.COMMUNITY
    joint_mediation: bool = False  # 联合调解 (complex disputes)
    department: str | None = None
    assignee_id: str | None = None
    # stages
    registered_at: datetime | None = None
    dismissed_at: datetime | None = None
    dismissal_reason: str | None = None
    duplicate_of: str | None = None
    dispatched_at: datetime | None = None
    handled_at: datetime | None = None
    handled_by: str | None = None  # who did the handling awaiting 核查 (None again after 返工)
    result: str | None = None
    verified_at: datetime | None = None
    rework_count: int = 0  # 返工次数
    deadlines: tuple[Deadline, ...] = ()
    # the department's part (from dispatch; accept, contact and control start again on a re-dispatch)
    accepted_at: datetime | None = None  # 签收
    contacted_at: datetime | None = None  # 先行联系
    controlled_at: datetime | None = None  # 管控 (severe hazards)
    return_pending: bool = False  # 退单 awaiting review
    return_count: int = 0  # returns approved or refused
    extension_until: datetime | None = None  # 延期 asked for, awaiting review
    extension_count: int = 0  # extensions granted
    exclusion_requested: bool = False  # 不合理诉求, once per case
    exclusion_pending: bool = False
    excluded: bool = False  # left out of the rates (approved)
    # supervision (超期督办, 挂牌督办)
    supervision_count: int = 0  # yellow and red cards
    last_card: Supervision | None = None
    listed: bool = False  # 挂牌督办 (a severe hazard, from dispatch)
    delisted_at: datetime | None = None  # 销号
    # outcome
    closed_at: datetime | None = None
    on_time: bool | None = None
    handling_seconds: int | None = None
    satisfaction: Satisfaction | None = None
    feedback_at: datetime | None = None
    resolved: bool | None = None  # 回访: 已解决 / 未解决 (None: not said)

    @property
    def is_open(self) -> bool:
        return self.status.is_open

    @property
    def is_severe_hazard(self) -> bool:
        """A 重大隐患: a hazard of grade severe, with two stages (control, then rectification)."""
        return self.category.is_hazard and self.grade is Grade.SEVERE

    @property
    def open_deadline(self) -> Deadline | None:
        """The deadline of the current stage of the loop, if any (at most one is unmet at a time)."""
        return next((d for d in reversed(self.deadlines) if d.met_at is None and d.stage in LOOP_STAGES), None)

    def unmet(self, stage: Stage) -> Deadline | None:
        """The unmet deadline of ``stage``, if any."""
        return next((d for d in reversed(self.deadlines) if d.met_at is None and d.stage == stage), None)

    @property
    def reporters(self) -> tuple[Reporter, ...]:
        """The reporter and everyone whose duplicate report was linked to this case."""
        return (self.reporter, *self.co_reporters)

    def missed_any(self, now: datetime, stages: frozenset[Stage] | None = None) -> bool:
        """Whether any deadline of the case (of ``stages``, when given) was missed, as seen at ``now``."""
        return any(d.overdue or d.missed_by(now) for d in self.deadlines if stages is None or d.stage in stages)
