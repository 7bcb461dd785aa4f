"""Grid service contract: the closed loop of grid case handling (网格发现、上报、处置、反馈).

Commands arrive on ``grid.intake.v1`` (or over HTTP); events leave on ``grid.events.v1``.
The seven stages of GB/T 30428 digital urban management map onto these types:

======================  =============================  ==================================
stage                   command                        event(s)
======================  =============================  ==================================
信息收集 report          ``grid.case.report.v1``        ``grid.case.reported.v1`` (and, for a
                                                       duplicate, ``.dismissed`` + ``.duplicate_linked``)
案卷建立 register        ``grid.case.register.v1``      ``grid.case.registered.v1``
不予立案 dismiss         ``grid.case.dismiss.v1``       ``grid.case.dismissed.v1``
任务派遣 dispatch        ``grid.case.dispatch.v1``      ``grid.case.dispatched.v1``
任务处理 handle          ``grid.case.handle.v1``        ``grid.case.handled.v1``
核实结案 verify          ``grid.case.verify.v1``        ``grid.case.verified.v1`` (+ ``.closed`` when passed)
反馈 feedback            ``grid.case.feedback.v1``      ``grid.case.feedback.v1``
升级 escalate            ``grid.case.escalate.v1``      ``grid.case.escalated.v1``
(timer)                  —                              ``grid.case.overdue.v1``, ``grid.case.escalated.v1``
巡查 patrol              ``grid.patrol.log.v1``         ``grid.patrol.logged.v1``
======================  =============================  ==================================

The ``data`` of a command is the fields of the event it leads to minus what the service
derives (times, due times the policy computes, street/community from the grid id...).
Every grid event carries an optional ``occurred_at``: the service always fills it, and the
pure domain evolves its state from it (the envelope ``time`` carries the same instant).

Note: the contract uses ``grid.case.feedback.v1`` both as the command on the intake topic
and as the event on the events topic. One model, :class:`CaseFeedback`, serves both: it
derives from ``Command`` and ``Event``, so the registry lists it on both topics.
"""
from __future__ import annotations

from enum import Enum
from typing import Annotated, ClassVar

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationInfo, field_validator, model_validator

from . import common
from .codes import DEPARTMENT_ID_PATTERN
from .common import Command, Event, NonEmptyStr, Timestamp, pii, ErasePersonCommand, PersonErasedEvent


GridId = common.GridId
"""15-digit grid id: division(6) + street(3) + community(3) + grid(3)."""
CommunityId = common.CommunityId
"""12-digit community id: the prefix of its grids' ids."""
StreetId = common.StreetId
"""9-digit street id: the prefix of its communities' ids."""

# ---------------------------------------------------------------------------------------
# Codes
# ---------------------------------------------------------------------------------------


class Category(str, Enum):
    """Grid case category (案件类别)."""

    HAZARD_FIRE = "hazard.fire"  # 消防隐患
    HAZARD_PRODUCTION = "hazard.production"  # 生产安全隐患
    HAZARD_FOOD = "hazard.food"  # 食品安全隐患
    DISPUTE_NEIGHBOUR = "dispute.neighbour"  # 邻里纠纷
    DISPUTE_PROPERTY = "dispute.property"  # 物业纠纷
    DISPUTE_LABOUR = "dispute.labour"  # 劳动纠纷
    ENVIRONMENT = "environment"  # 环境
    PUBLIC_FACILITY = "public_facility"  # 公共设施
    RESIDENT_NEED = "resident_need"  # 居民需求 (becomes a 四单式 order)
    OTHER = "other"  # 其他

    @property
    def is_hazard(self) -> bool:
        """隐患: graded 一般/较大/重大, with a rectification deadline."""
        return self.value.startswith("hazard.")

    @property
    def is_dispute(self) -> bool:
        """矛盾纠纷: mediated by the community, complex ones by joint mediation."""
        return self.value.startswith("dispute.")


class Grade(str, Enum):
    """Hazard grade (隐患等级)."""

    GENERAL = "general"  # 一般
    MAJOR = "major"  # 较大
    SEVERE = "severe"  # 重大


class ReporterKind(str, Enum):
    """Who reported a case (上报人类型)."""

    GRID_WORKER = "grid_worker"  # 网格员
    RESIDENT = "resident"  # 居民
    SYSTEM = "system"  # a sensor or another system


class Satisfaction(str, Enum):
    """The reporter's feedback after closing (群众满意度)."""

    SATISFIED = "satisfied"  # 满意
    BASICALLY_SATISFIED = "basically_satisfied"  # 基本满意
    UNSATISFIED = "unsatisfied"  # 不满意


class EscalationLevel(str, Enum):
    """Who is responsible for an open case; escalation climbs community → street → district."""

    COMMUNITY = "community"  # 社区
    STREET = "street"  # 街道
    DISTRICT = "district"  # 区

    @property
    def rank(self) -> int:
        return _LEVELS.index(self)

    def next(self) -> "EscalationLevel | None":
        """The next level up, or None at the district."""
        i = self.rank + 1
        return _LEVELS[i] if i < len(_LEVELS) else None


_LEVELS = (EscalationLevel.COMMUNITY, EscalationLevel.STREET, EscalationLevel.DISTRICT)


class ContactChannel(str, Enum):
    """How a department contacted the reporter (先行联系)."""

    PHONE = "phone"  # 电话
    VISIT = "visit"  # 上门
    SMS = "sms"  # 短信
    APP = "app"  # the resident app


class Supervision(str, Enum):
    """超期督办: what a missed deadline, or a severe hazard, brings on the case."""

    YELLOW_CARD = "yellow_card"  # 黄牌: a case's first missed deadline
    RED_CARD = "red_card"  # 红牌: a later missed deadline of the same case
    LISTED = "listed"  # 挂牌督办: a severe hazard, listed from dispatch until 销号


class Stage(str, Enum):
    """A stage of the loop that has a time limit (时限): each stage has one deadline."""

    REGISTER = "register"  # 立案 (from the report)
    DISPATCH = "dispatch"  # 派遣 (from registration)
    HANDLE = "handle"  # 处置 (from dispatch, or from a failed verification: 返工)
    VERIFY = "verify"  # 核查 (from handling)
    ACCEPT = "accept"  # 签收 by the department (from dispatch)
    CONTACT = "contact"  # 先行联系: the department contacts the reporter (from dispatch); what 响应率 measures
    CONTROL = "control"  # 管控: a severe hazard (重大隐患) brought under control (from dispatch); rectification is ``handle``


# ---------------------------------------------------------------------------------------
# Value objects
# ---------------------------------------------------------------------------------------

CaseId = Annotated[str, StringConstraints(min_length=1, max_length=100, strip_whitespace=True, pattern=r"^[A-Za-z0-9._:-]+$")]
Description = Annotated[str, StringConstraints(min_length=1, max_length=10_000, strip_whitespace=True)]
Note = Annotated[str, StringConstraints(max_length=2_000)]
MediaRef = Annotated[str, StringConstraints(min_length=1, max_length=2_000, strip_whitespace=True)]
Media = Annotated[tuple[MediaRef, ...], Field(default=(), max_length=20, description="URLs or object keys of photos/videos")]
DepartmentId = Annotated[str, StringConstraints(pattern=DEPARTMENT_ID_PATTERN)]
"""A department of the department register (职能部门): the district's 6-digit division code for a
district department, or a 9-digit street id for a street's own, then a dot and a short code
(``110105.cgw`` 区城管委, ``110105001.zhzf`` a street's 综合执法队)."""


class Location(BaseModel):
    """Where a case was found: WGS-84 coordinates and a human-readable address."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    lat: Annotated[float, pii("location")] = Field(ge=-90, le=90)
    lon: Annotated[float, pii("location")] = Field(ge=-180, le=180)
    address: Annotated[str, StringConstraints(max_length=500, strip_whitespace=True), pii("location")]


class Reporter(BaseModel):
    """Who reported a case (上报人): kind and id (a grid worker, a resident, a system)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    kind: ReporterKind
    id: Annotated[NonEmptyStr, pii("identifier")]


# ---------------------------------------------------------------------------------------
# Commands (grid.intake.v1)
# ---------------------------------------------------------------------------------------


class ReportCase(Command):
    """信息收集: report a case found in a grid.

    ``grade`` is required for hazards (``hazard.*``) and not allowed otherwise.
    ``urgent`` asks for the urgent register/dispatch limits (紧急); the policy may also
    make a category/grade urgent. Street and community are derived from ``grid_id``.
    ``reporter`` is the sender (a grid worker or a resident), filled from their token when omitted.
    """

    TYPE: ClassVar[str] = "grid.case.report.v1"
    SUBJECT: ClassVar[str] = "case_id"

    case_id: CaseId
    grid_id: GridId
    category: Category
    grade: Grade | None = Field(default=None, validate_default=True)
    description: Annotated[Description, pii("free_text")]
    location: Annotated[Location, pii("location")]
    reporter: Annotated[Reporter | None, pii("identifier")] = Field(
        None, description="who reports: a grid worker or a resident, filled from the caller's token when omitted")
    media: Annotated[Media, pii("media")] = ()
    urgent: bool = False

    @field_validator("grade")
    @classmethod
    def _grade_for_hazards_only(cls, v: Grade | None, info: ValidationInfo) -> Grade | None:
        category = info.data.get("category")
        if category is None:  # category itself failed; that error is reported
            return v
        if category.is_hazard and v is None:
            raise ValueError("a hazard needs a grade: general, major or severe")
        if not category.is_hazard and v is not None:
            raise ValueError("only hazards are graded")
        return v


class RegisterCase(Command):
    """立案: accept a reported case and name the responsible department.

    ``department`` defaults to the one the department register's 权责清单 names for the case's
    category (and street); a department not in the register is refused. The service derives
    ``due_at`` (the dispatch deadline) from the deadline policy.
    """

    TYPE: ClassVar[str] = "grid.case.register.v1"
    SUBJECT: ClassVar[str] = "case_id"

    case_id: CaseId
    department: NonEmptyStr | None = None
    registrar_id: Annotated[NonEmptyStr | None, pii("identifier")] = None
    note: Annotated[Note, pii("free_text")] = ""


class DismissCase(Command):
    """不予立案: refuse to register a reported case, optionally as a duplicate of another."""

    TYPE: ClassVar[str] = "grid.case.dismiss.v1"
    SUBJECT: ClassVar[str] = "case_id"

    case_id: CaseId
    reason: Annotated[NonEmptyStr, pii("free_text")]
    duplicate_of: CaseId | None = None
    registrar_id: Annotated[NonEmptyStr | None, pii("identifier")] = None


class DispatchCase(Command):
    """任务派遣: send a registered case to a department of the register and an assignee.

    ``due_at`` may set the handling deadline (整改期限) explicitly; when omitted the service
    derives it from the deadline policy.
    """

    TYPE: ClassVar[str] = "grid.case.dispatch.v1"
    SUBJECT: ClassVar[str] = "case_id"

    case_id: CaseId
    department: NonEmptyStr
    assignee_id: Annotated[NonEmptyStr, pii("identifier")]
    due_at: Timestamp | None = None
    dispatcher_id: Annotated[NonEmptyStr | None, pii("identifier")] = None


class HandleCase(Command):
    """任务处理: the department reports the result of handling a dispatched case."""

    TYPE: ClassVar[str] = "grid.case.handle.v1"
    SUBJECT: ClassVar[str] = "case_id"

    case_id: CaseId
    result: Annotated[Description, pii("free_text")]
    media: Annotated[Media, pii("media")] = ()
    handled_by: Annotated[NonEmptyStr | None, pii("identifier")] = None


class VerifyCase(Command):
    """核实: verify a handled case on site. Passed closes it (结案); failed is 返工 rework.

    On rework, ``rework_due_at`` may set the new handling deadline; when omitted the
    service derives it from the deadline policy.
    """

    TYPE: ClassVar[str] = "grid.case.verify.v1"
    SUBJECT: ClassVar[str] = "case_id"

    case_id: CaseId
    passed: bool
    comment: Annotated[Note, pii("free_text")] = ""
    verifier_id: Annotated[NonEmptyStr | None, pii("identifier")] = None
    rework_due_at: Timestamp | None = None


class EscalateCase(Command):
    """升级 on request: hand an open case to a higher level, e.g. a complex dispute to
    joint mediation by departments (联合调解). ``to_level`` defaults to the next level up.
    """

    TYPE: ClassVar[str] = "grid.case.escalate.v1"
    SUBJECT: ClassVar[str] = "case_id"

    case_id: CaseId
    reason: Annotated[NonEmptyStr, pii("free_text")]
    to_level: EscalationLevel | None = None
    joint_mediation: bool = False
    requested_by: Annotated[NonEmptyStr | None, pii("identifier")] = None


class LogPatrol(Command):
    """巡查: a grid worker logs a patrol of a grid."""

    TYPE: ClassVar[str] = "grid.patrol.log.v1"
    SUBJECT: ClassVar[str] = "grid_id"

    patrol_id: CaseId
    grid_id: GridId
    grid_worker_id: Annotated[NonEmptyStr | None, pii("identifier")] = None
    started_at: Timestamp
    ended_at: Timestamp
    notes: Annotated[Note, pii("free_text")] = ""
    route: Annotated[tuple[Location, ...], pii("location")] = Field(default=(), max_length=500)


class AcceptCase(Command):
    """签收: the department takes a case dispatched to it (before the ``accept`` deadline to be on time)."""

    TYPE: ClassVar[str] = "grid.case.accept.v1"
    SUBJECT: ClassVar[str] = "case_id"

    case_id: CaseId
    accepted_by: Annotated[NonEmptyStr | None, pii("identifier")] = None


class ReturnCase(Command):
    """退单: the department sends a dispatched case back, saying why (not its duty under the
    权责清单, wrong place...). The dispatcher's level reviews the return."""

    TYPE: ClassVar[str] = "grid.case.return.v1"
    SUBJECT: ClassVar[str] = "case_id"

    case_id: CaseId
    reason: Annotated[Description, pii("free_text")]
    returned_by: Annotated[NonEmptyStr | None, pii("identifier")] = None


class ReviewReturn(Command):
    """退单审核: the community or street approves a return, re-dispatching the case to
    ``department`` and ``assignee_id`` (both required then), or refuses it (the case stays
    with the department, which must handle it)."""

    TYPE: ClassVar[str] = "grid.case.return.review.v1"
    SUBJECT: ClassVar[str] = "case_id"

    case_id: CaseId
    approved: bool
    comment: Annotated[Note, pii("free_text")] = ""
    department: DepartmentId | None = None
    assignee_id: Annotated[NonEmptyStr | None, pii("identifier")] = None
    reviewer_id: Annotated[NonEmptyStr | None, pii("identifier")] = None

    @model_validator(mode="after")
    def _redispatch_when_approved(self) -> "ReviewReturn":
        if self.approved and (self.department is None or self.assignee_id is None):
            raise ValueError("an approved return names the department and assignee the case is re-dispatched to")
        if not self.approved and (self.department is not None or self.assignee_id is not None):
            raise ValueError("a refused return stays with its department: no department or assignee")
        return self


class ContactReporter(Command):
    """先行联系: the department contacted the reporter about the case (what 响应率 measures)."""

    TYPE: ClassVar[str] = "grid.case.contact.v1"
    SUBJECT: ClassVar[str] = "case_id"

    case_id: CaseId
    channel: ContactChannel
    note: Annotated[Note, pii("free_text")] = ""
    contacted_by: Annotated[NonEmptyStr | None, pii("identifier")] = None


class ControlHazard(Command):
    """管控: the department reports a severe hazard (重大隐患) under control; rectification
    (整改, ``grid.case.handle.v1``) follows by its own deadline."""

    TYPE: ClassVar[str] = "grid.case.control.v1"
    SUBJECT: ClassVar[str] = "case_id"

    case_id: CaseId
    measures: Annotated[Description, pii("free_text")]
    controlled_by: Annotated[NonEmptyStr | None, pii("identifier")] = None


class RequestExtension(Command):
    """延期申请: the department asks to move the handling deadline to ``until``, before it passes."""

    TYPE: ClassVar[str] = "grid.case.extension.request.v1"
    SUBJECT: ClassVar[str] = "case_id"

    case_id: CaseId
    until: Timestamp
    reason: Annotated[Description, pii("free_text")]
    requested_by: Annotated[NonEmptyStr | None, pii("identifier")] = None


class ReviewExtension(Command):
    """延期审批: the community or street grants the pending extension (to ``until`` when given,
    else to what was asked) or refuses it."""

    TYPE: ClassVar[str] = "grid.case.extension.review.v1"
    SUBJECT: ClassVar[str] = "case_id"

    case_id: CaseId
    granted: bool
    until: Timestamp | None = None
    comment: Annotated[Note, pii("free_text")] = ""
    reviewer_id: Annotated[NonEmptyStr | None, pii("identifier")] = None


class RequestExclusion(Command):
    """不合理诉求: the department asks to leave a case out of the rates (响应率, 解决率, 满意率),
    saying why; it counts once approved."""

    TYPE: ClassVar[str] = "grid.case.exclusion.request.v1"
    SUBJECT: ClassVar[str] = "case_id"

    case_id: CaseId
    reason: Annotated[Description, pii("free_text")]
    requested_by: Annotated[NonEmptyStr | None, pii("identifier")] = None


class ReviewExclusion(Command):
    """不合理诉求审核: the street approves or refuses a pending exclusion."""

    TYPE: ClassVar[str] = "grid.case.exclusion.review.v1"
    SUBJECT: ClassVar[str] = "case_id"

    case_id: CaseId
    approved: bool
    comment: Annotated[Note, pii("free_text")] = ""
    reviewer_id: Annotated[NonEmptyStr | None, pii("identifier")] = None


WhistleId = CaseId
Rating = Annotated[int, Field(ge=1, le=5)]


class BlowWhistle(Command):
    """街乡吹哨: a street summons departments to a matter it cannot solve alone (a case of the
    street, or none), each to report (报到) before ``report_by``."""

    TYPE: ClassVar[str] = "grid.whistle.blow.v1"
    SUBJECT: ClassVar[str] = "whistle_id"

    whistle_id: WhistleId
    street_id: StreetId
    case_id: CaseId | None = None
    departments: tuple[DepartmentId, ...] = Field(min_length=1, max_length=20)
    report_by: Timestamp
    matter: Annotated[Description, pii("free_text")]
    blown_by: Annotated[NonEmptyStr | None, pii("identifier")] = None

    @field_validator("departments")
    @classmethod
    def _distinct(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(v)) != len(v):
            raise ValueError("a department is summoned once")
        return v


class AnswerWhistle(Command):
    """部门报到: a summoned department reports to the street's whistle."""

    TYPE: ClassVar[str] = "grid.whistle.answer.v1"
    SUBJECT: ClassVar[str] = "whistle_id"

    whistle_id: WhistleId
    department: DepartmentId
    note: Annotated[Note, pii("free_text")] = ""
    answered_by: Annotated[NonEmptyStr | None, pii("identifier")] = None


class RateWhistle(Command):
    """The street rates a summoned department's response to its whistle, 1 (poor) to 5 (excellent);
    once per department."""

    TYPE: ClassVar[str] = "grid.whistle.rate.v1"
    SUBJECT: ClassVar[str] = "whistle_id"

    whistle_id: WhistleId
    department: DepartmentId
    rating: Rating
    comment: Annotated[Note, pii("free_text")] = ""
    rated_by: Annotated[NonEmptyStr | None, pii("identifier")] = None


# ---------------------------------------------------------------------------------------
# Events (grid.events.v1)
# ---------------------------------------------------------------------------------------


class CaseEvent(Event):
    """Base of every grid case event: keyed by ``case_id``, with the instant it happened."""

    SUBJECT: ClassVar[str] = "case_id"

    case_id: CaseId
    occurred_at: Timestamp | None = None


class CaseReported(CaseEvent):
    """信息收集: a case was reported in a grid.

    ``register_due_at`` is the registration deadline; ``urgent`` is the effective urgency
    (asked for by the reporter or set by the policy for the category/grade).
    """

    TYPE: ClassVar[str] = "grid.case.reported.v1"

    grid_id: GridId
    category: Category
    description: Annotated[Description, pii("free_text")]
    location: Annotated[Location, pii("location")]
    reporter: Annotated[Reporter, pii("identifier")]
    grade: Grade | None = None
    media: Annotated[Media, pii("media")] = ()
    community_id: CommunityId | None = None
    street_id: StreetId | None = None
    urgent: bool = False
    register_due_at: Timestamp | None = None


class CaseRegistered(CaseEvent):
    """立案: the case was accepted; ``due_at`` is when it must be dispatched.

    Carries the report's facts again (grid, community, street, category, description,
    reporter) so that consumers — the orders service turning a ``resident_need`` case into
    an order, assessment attributing it — need no other event.
    """

    TYPE: ClassVar[str] = "grid.case.registered.v1"

    due_at: Timestamp
    department: NonEmptyStr
    grid_id: GridId | None = None
    community_id: CommunityId | None = None
    street_id: StreetId | None = None
    category: Category | None = None
    grade: Grade | None = None
    description: Annotated[Description | None, pii("free_text")] = None
    location: Annotated[Location | None, pii("location")] = None
    reporter: Annotated[Reporter | None, pii("identifier")] = None
    registrar_id: Annotated[NonEmptyStr | None, pii("identifier")] = None
    proposed_department: DepartmentId | None = Field(
        None, description="the department the register's 权责清单 names for the case (None: it names none)")


class CaseDismissed(CaseEvent):
    """不予立案: the case was not registered; ``duplicate_of`` names the open case it repeats."""

    TYPE: ClassVar[str] = "grid.case.dismissed.v1"

    reason: Annotated[NonEmptyStr, pii("free_text")]
    duplicate_of: CaseId | None
    grid_id: GridId | None = None
    category: Category | None = None
    registrar_id: Annotated[NonEmptyStr | None, pii("identifier")] = None


class CaseDuplicateLinked(CaseEvent):
    """A later report of the same problem was linked to this (original, open) case; its
    reporter is recorded here as a co-reporter (the duplicate itself was dismissed)."""

    TYPE: ClassVar[str] = "grid.case.duplicate_linked.v1"

    duplicate_case_id: CaseId
    reporter: Annotated[Reporter, pii("identifier")]


class CaseDispatched(CaseEvent):
    """任务派遣: the case was sent to a department; ``due_at`` is the handling deadline."""

    TYPE: ClassVar[str] = "grid.case.dispatched.v1"

    department: NonEmptyStr
    assignee_id: Annotated[NonEmptyStr, pii("identifier")]
    due_at: Timestamp
    dispatcher_id: Annotated[NonEmptyStr | None, pii("identifier")] = None
    grid_id: GridId | None = None
    accept_due_at: Timestamp | None = Field(None, description="签收 deadline")
    contact_due_at: Timestamp | None = Field(None, description="先行联系 deadline")
    control_due_at: Timestamp | None = Field(None, description="管控 deadline of a severe hazard")
    redispatch: bool = Field(False, description="a re-dispatch after an approved return (退单)")
    community_id: CommunityId | None = None
    street_id: StreetId | None = None
    category: Category | None = None


class CaseHandled(CaseEvent):
    """任务处理: the department handled the case; ``verify_due_at`` is the verification deadline."""

    TYPE: ClassVar[str] = "grid.case.handled.v1"

    result: Annotated[Description, pii("free_text")]
    media: Annotated[Media, pii("media")] = ()
    handled_by: Annotated[NonEmptyStr | None, pii("identifier")] = None
    verify_due_at: Timestamp | None = None


class CaseVerified(CaseEvent):
    """核查: the handling was checked on site. ``passed`` false is 返工 rework: the case goes
    back to the department with the new handling deadline ``rework_due_at``;
    ``rework_count`` counts the reworks of the case so far."""

    TYPE: ClassVar[str] = "grid.case.verified.v1"

    passed: bool
    comment: Annotated[Note, pii("free_text")] = ""
    verifier_id: Annotated[NonEmptyStr | None, pii("identifier")] = None
    rework_due_at: Timestamp | None = None
    rework_count: int = Field(default=0, ge=0)


class CaseClosed(CaseEvent):
    """结案: the case is closed after a passed verification.

    ``on_time`` is true when no deadline of the case was missed (按期结案);
    ``handling_seconds`` runs from the report to the close.
    """

    TYPE: ClassVar[str] = "grid.case.closed.v1"

    on_time: bool
    handling_seconds: int = Field(ge=0)
    department: NonEmptyStr | None = None
    assignee_id: Annotated[NonEmptyStr | None, pii("identifier")] = None
    grid_id: GridId | None = None
    community_id: CommunityId | None = None
    street_id: StreetId | None = None
    category: Category | None = None
    rework_count: int = Field(default=0, ge=0)


class CaseOverdue(CaseEvent):
    """超期: a deadline of the case passed unmet. ``level`` is the level that was responsible
    when it was missed; ``stage`` says which deadline. Emitted once per missed deadline."""

    TYPE: ClassVar[str] = "grid.case.overdue.v1"

    due_at: Timestamp
    level: EscalationLevel
    stage: Stage | None = None


class CaseEscalated(CaseEvent):
    """升级: responsibility for the case moved up (community → street → district), after a
    missed deadline (``stage`` set) or on request (``requested_by``, ``joint_mediation``
    for complex disputes sent to joint mediation, 联合调解)."""

    TYPE: ClassVar[str] = "grid.case.escalated.v1"

    from_level: EscalationLevel
    to_level: EscalationLevel
    reason: Annotated[NonEmptyStr, pii("free_text")]
    stage: Stage | None = None
    joint_mediation: bool = False
    requested_by: Annotated[NonEmptyStr | None, pii("identifier")] = None


class CaseFeedback(Command, Event):
    """反馈: the reporter's satisfaction with a closed case (群众满意度).

    As a command only ``case_id`` and ``satisfaction`` are needed (``reporter_id`` and
    ``comment`` optional); the event the service publishes adds the grid, department and
    time, so assessment can attribute it.
    """

    TYPE: ClassVar[str] = "grid.case.feedback.v1"
    SUBJECT: ClassVar[str] = "case_id"

    case_id: CaseId
    satisfaction: Satisfaction
    comment: Annotated[Note, pii("free_text")] = ""
    reporter_id: Annotated[NonEmptyStr | None, pii("identifier")] = None
    occurred_at: Timestamp | None = None
    grid_id: GridId | None = None
    community_id: CommunityId | None = None
    street_id: StreetId | None = None
    department: NonEmptyStr | None = None
    resolved: bool | None = Field(
        None, description="回访: whether the reporter says the problem is solved (已解决) or not (未解决)")


class PatrolLogged(Event):
    """巡查: a grid worker patrolled a grid. Keyed by the grid id (one grid's patrols in order)."""

    TYPE: ClassVar[str] = "grid.patrol.logged.v1"
    SUBJECT: ClassVar[str] = "grid_id"

    patrol_id: CaseId
    grid_id: GridId
    grid_worker_id: Annotated[NonEmptyStr, pii("identifier")]
    started_at: Timestamp
    ended_at: Timestamp
    notes: Annotated[Note, pii("free_text")] = ""
    route: Annotated[tuple[Location, ...], pii("location")] = ()
    community_id: CommunityId | None = None
    street_id: StreetId | None = None
    occurred_at: Timestamp | None = None


class DepartmentCaseEvent(CaseEvent):
    """Base of the events of a department's part of a case: the department, and where the case is."""

    department: NonEmptyStr
    grid_id: GridId | None = None
    community_id: CommunityId | None = None
    street_id: StreetId | None = None
    category: Category | None = None


class CaseAccepted(DepartmentCaseEvent):
    """签收: the department took the case; ``on_time`` against its ``accept`` deadline."""

    TYPE: ClassVar[str] = "grid.case.accepted.v1"

    accepted_by: Annotated[NonEmptyStr, pii("identifier")]
    on_time: bool


class CaseReturned(DepartmentCaseEvent):
    """退单: the department sent the case back with a reason; it awaits review."""

    TYPE: ClassVar[str] = "grid.case.returned.v1"

    reason: Annotated[Description, pii("free_text")]
    returned_by: Annotated[NonEmptyStr, pii("identifier")]


class CaseReturnReviewed(DepartmentCaseEvent):
    """退单审核: a return approved (``grid.case.dispatched.v1`` with ``redispatch`` follows, to
    another department) or refused (the case stays with ``department``)."""

    TYPE: ClassVar[str] = "grid.case.return.reviewed.v1"

    approved: bool
    comment: Annotated[Note, pii("free_text")] = ""
    reviewer_id: Annotated[NonEmptyStr | None, pii("identifier")] = None


class CaseContacted(DepartmentCaseEvent):
    """先行联系: the department contacted the reporter; ``on_time`` against the ``contact``
    deadline (what 响应率 counts)."""

    TYPE: ClassVar[str] = "grid.case.contacted.v1"

    channel: ContactChannel
    contacted_by: Annotated[NonEmptyStr, pii("identifier")]
    on_time: bool
    note: Annotated[Note, pii("free_text")] = ""


class CaseControlled(DepartmentCaseEvent):
    """管控: a severe hazard is under control; ``on_time`` against its ``control`` deadline."""

    TYPE: ClassVar[str] = "grid.case.controlled.v1"

    measures: Annotated[Description, pii("free_text")]
    controlled_by: Annotated[NonEmptyStr, pii("identifier")]
    on_time: bool


class CaseExtensionRequested(DepartmentCaseEvent):
    """延期申请: the department asked to move the ``stage`` deadline ``due_at`` to ``until``."""

    TYPE: ClassVar[str] = "grid.case.extension.requested.v1"

    stage: Stage
    due_at: Timestamp
    until: Timestamp
    reason: Annotated[Description, pii("free_text")]
    requested_by: Annotated[NonEmptyStr, pii("identifier")]


class CaseExtensionGranted(DepartmentCaseEvent):
    """延期: the extension was granted; the ``stage`` deadline moved from ``previous_due_at`` to ``due_at``."""

    TYPE: ClassVar[str] = "grid.case.extension.granted.v1"

    stage: Stage
    previous_due_at: Timestamp
    due_at: Timestamp
    comment: Annotated[Note, pii("free_text")] = ""
    reviewer_id: Annotated[NonEmptyStr | None, pii("identifier")] = None


class CaseExtensionRefused(DepartmentCaseEvent):
    """延期 refused: the ``stage`` deadline stays ``due_at``."""

    TYPE: ClassVar[str] = "grid.case.extension.refused.v1"

    stage: Stage
    due_at: Timestamp
    comment: Annotated[Note, pii("free_text")] = ""
    reviewer_id: Annotated[NonEmptyStr | None, pii("identifier")] = None


class CaseSupervised(CaseEvent):
    """超期督办: a missed deadline (``stage``, ``due_at``) brings a yellow card, a later one of
    the same case a red card; a severe hazard is listed (挂牌督办) from dispatch until 销号.
    Escalation is not automatic: it stays a decision (``grid.case.escalate.v1``)."""

    TYPE: ClassVar[str] = "grid.case.supervised.v1"

    supervision: Supervision
    level: EscalationLevel
    stage: Stage | None = None
    due_at: Timestamp | None = None
    department: NonEmptyStr | None = None
    grid_id: GridId | None = None
    community_id: CommunityId | None = None
    street_id: StreetId | None = None
    category: Category | None = None


class CaseDelisted(CaseEvent):
    """销号: a listed severe hazard was rectified and verified; its 挂牌督办 ends."""

    TYPE: ClassVar[str] = "grid.case.delisted.v1"

    department: NonEmptyStr | None = None
    street_id: StreetId | None = None


class CaseExclusionRequested(DepartmentCaseEvent):
    """不合理诉求: the department asked to leave the case out of the rates."""

    TYPE: ClassVar[str] = "grid.case.exclusion.requested.v1"

    reason: Annotated[Description, pii("free_text")]
    requested_by: Annotated[NonEmptyStr, pii("identifier")]


class CaseExclusionReviewed(DepartmentCaseEvent):
    """不合理诉求审核: ``approved`` leaves the case out of the department's rates."""

    TYPE: ClassVar[str] = "grid.case.exclusion.reviewed.v1"

    approved: bool
    comment: Annotated[Note, pii("free_text")] = ""
    reviewer_id: Annotated[NonEmptyStr | None, pii("identifier")] = None


class WhistleEvent(Event):
    """Base of the 吹哨报到 events: keyed by the whistle, with its street and the instant."""

    SUBJECT: ClassVar[str] = "whistle_id"

    whistle_id: WhistleId
    street_id: StreetId
    occurred_at: Timestamp | None = None


class WhistleBlown(WhistleEvent):
    """街乡吹哨: the street summoned ``departments`` to report before ``report_by``."""

    TYPE: ClassVar[str] = "grid.whistle.blown.v1"

    case_id: CaseId | None = None
    departments: tuple[DepartmentId, ...] = Field(min_length=1)
    report_by: Timestamp
    matter: Annotated[Description, pii("free_text")]
    blown_by: Annotated[NonEmptyStr, pii("identifier")]


class WhistleAnswered(WhistleEvent):
    """部门报到: a summoned department reported; ``on_time`` before ``report_by``."""

    TYPE: ClassVar[str] = "grid.whistle.answered.v1"

    department: DepartmentId
    answered_by: Annotated[NonEmptyStr, pii("identifier")]
    on_time: bool
    note: Annotated[Note, pii("free_text")] = ""


class WhistleMissed(WhistleEvent):
    """A summoned department had not reported by ``report_by``: recorded as missing (未报到)."""

    TYPE: ClassVar[str] = "grid.whistle.missed.v1"

    department: DepartmentId
    report_by: Timestamp


class WhistleRated(WhistleEvent):
    """The street rated a summoned department's response, 1–5 (counts in the department's 考核)."""

    TYPE: ClassVar[str] = "grid.whistle.rated.v1"

    department: DepartmentId
    rating: Rating
    comment: Annotated[Note, pii("free_text")] = ""
    rated_by: Annotated[NonEmptyStr | None, pii("identifier")] = None



# ---------------------------------------------------------------------------------------
# Erasure (shapes in schemas.common)
# ---------------------------------------------------------------------------------------


class ErasePerson(ErasePersonCommand):
    """擦除 Erase a person's personal data in the grid service (see :class:`~schemas.common.ErasePersonCommand`)."""

    TYPE: ClassVar[str] = "grid.person.erase.v1"


class PersonErased(PersonErasedEvent):
    """A person's data was erased in the grid service (see :class:`~schemas.common.PersonErasedEvent`)."""

    TYPE: ClassVar[str] = "grid.person.erased.v1"


COMMANDS: tuple[type[Command], ...] = (
    ReportCase, RegisterCase, DismissCase, DispatchCase, HandleCase, VerifyCase, CaseFeedback, EscalateCase, LogPatrol,
    ErasePerson,
    AcceptCase, ReturnCase, ReviewReturn, ContactReporter, ControlHazard, RequestExtension, ReviewExtension,
    RequestExclusion, ReviewExclusion, BlowWhistle, AnswerWhistle, RateWhistle,
)
EVENTS: tuple[type[Event], ...] = (
    CaseReported, CaseRegistered, CaseDismissed, CaseDuplicateLinked, CaseDispatched, CaseHandled, CaseVerified,
    CaseClosed, CaseOverdue, CaseEscalated, CaseFeedback, PatrolLogged, PersonErased,
    CaseAccepted, CaseReturned, CaseReturnReviewed, CaseContacted, CaseControlled, CaseExtensionRequested,
    CaseExtensionGranted, CaseExtensionRefused, CaseSupervised, CaseDelisted, CaseExclusionRequested,
    CaseExclusionReviewed, WhistleBlown, WhistleAnswered, WhistleMissed, WhistleRated,
)

__all__ = [
    "Category", "Grade", "ReporterKind", "Satisfaction", "EscalationLevel", "Stage", "Location", "Reporter",
    "CaseId", "ContactChannel", "Supervision", "DepartmentId", "DEPARTMENT_ID_PATTERN", "WhistleId", "Rating",
    "DepartmentCaseEvent", "WhistleEvent", *(m.__name__ for m in COMMANDS), *(m.__name__ for m in EVENTS if m not in COMMANDS),
    "CaseEvent", "COMMANDS", "EVENTS",
]
