"""``decide``: what a command leads to, or why it is refused; ``check_overdue``: the timer's rule.

Both are pure. Everything the rules need from the world comes in a :class:`Context` that the
application layer fills in: the time, the deadline policy, whether the grid is in the grid
register, and the open cases near a report (for duplicate detection).

The loop (GB/T 30428)::

    report ─► reported ─register─► registered ─dispatch─► dispatched ─handle─► handled ─verify─┐
                 │                                            ▲                              │
                 └─dismiss (or duplicate)─► dismissed         └──── failed: 返工 rework ◄────┤
                                                                                 passed ─► closed ─feedback
    escalate: any open case, to a higher level (a decision: a missed deadline never escalates).

The department's part, beside ``handle`` from dispatch (each with its own deadline):
accept (签收), contact the reporter (先行联系), control a severe hazard (管控, before handling);
return (退单) → the dispatcher's level approves (re-dispatch to another department) or refuses;
extension (延期) of the handling deadline → granted or refused; exclusion from the rates
(不合理诉求) → approved or refused by the street.

check_overdue: missed deadlines of any case → overdue + supervision (超期督办: a yellow card,
then red cards). A severe hazard is listed (挂牌督办) at dispatch and delisted (销号) when its
verification passes.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from schemas.grid import (
    AcceptCase, CaseAccepted, CaseClosed, CaseContacted, CaseControlled, CaseDelisted, CaseDismissed, CaseDispatched,
    CaseDuplicateLinked, CaseEscalated, CaseEvent, CaseExclusionRequested, CaseExclusionReviewed,
    CaseExtensionGranted, CaseExtensionRefused, CaseExtensionRequested, CaseFeedback, CaseHandled, CaseOverdue,
    CaseRegistered, CaseReported, CaseReturned, CaseReturnReviewed, CaseSupervised, CaseVerified, ContactReporter,
    ControlHazard, DismissCase, DispatchCase, EscalateCase, HandleCase, LogPatrol, PatrolLogged, RegisterCase,
    ReportCase, RequestExclusion, RequestExtension, ReturnCase, ReviewExclusion, ReviewExtension, ReviewReturn, Stage,
    Supervision, VerifyCase,
)
from schemas.common import Command, Event

from services.kit.errors import rule_for

from .errors import (
    CaseExists, CaseNotFound, DueInPast, DuplicateOfSelf, DuplicateTargetNotOpen, FeedbackAlreadyGiven,
    IllegalTransition, JointMediationForDisputesOnly, NoHigherLevel, NotAReporter, PatrolEndsBeforeStart,
    PatrolExists, PatrolInFuture, ReworkDueWithoutRework, SelfVerification, UnknownGrid,
    AlreadyAccepted, AlreadyContacted, AlreadyControlled, DeadlinePassed, ExclusionAlreadyRequested,
    ExtensionNotLater, ExtensionPending, NoPendingExclusion, NoPendingExtension, NoPendingReturn, NotASevereHazard,
    NotControlled, ReturnPending, SameDepartment, UnknownDepartment,
)
from schemas.codes import GridCode

from .geo import DEFAULT_DUPLICATE_RADIUS_M, OpenCase, find_duplicate
from .policy import DEFAULT_POLICY, DeadlinePolicy, Limits
from .state import LOOP_STAGES, CaseState, CaseStatus

ON_TIME_STAGES = LOOP_STAGES | {Stage.CONTROL}
"""The deadlines whose miss makes a closed case late (按期办结): the loop's and a severe hazard's
control; accept and contact are measured on their own (签收及时率, 响应率)."""

DUPLICATE_REASON = "duplicate"
PATROL_CLOCK_SKEW = timedelta(minutes=5)  # a field device's clock may run this far ahead


@dataclass(frozen=True)
class Context:
    """What ``decide`` needs from outside the case, filled in by the application layer.

    - ``now``: the current time (timezone-aware); every event of the decision happens then.
    - ``policy``: the deadline policy in force.
    - ``grid_known``: whether the command's grid id is in the grid register; needed for
      ``report`` and ``patrol.log`` (the default, False, refuses them as ``unknown_grid``).
    - ``open_cases``: open cases to check a report against for duplicates (those near the
      report; passing more is harmless), and for ``dismiss`` with ``duplicate_of``, that case.
    - ``duplicate_radius_m``: how near a report of the same category counts as a duplicate.
    - ``patrol_logged``: for ``patrol.log``, whether a patrol with its id is logged already.
    - ``department_known``: whether the department the command names (``register``,
      ``dispatch``, an approved ``return.review``; for ``register`` without one, the proposed
      department) is in the department register (the default, False, refuses as
      ``unknown_department``).
    - ``proposed_department``: for ``register``, the department the register's 权责清单 names
      for the case (None: it names none).
    """

    now: datetime
    policy: DeadlinePolicy = DEFAULT_POLICY
    grid_known: bool = False
    open_cases: tuple[OpenCase, ...] = field(default=())
    duplicate_radius_m: float = DEFAULT_DUPLICATE_RADIUS_M
    patrol_logged: bool = False
    department_known: bool = False
    proposed_department: str | None = None

    def __post_init__(self) -> None:
        if self.now.tzinfo is None:
            raise ValueError("Context.now must be timezone-aware")
        object.__setattr__(self, "open_cases", tuple(self.open_cases))


def decide(state: CaseState | None, command: Command, ctx: Context) -> list[Event]:
    """The events ``command`` leads to for the case in ``state`` (None: no such case yet).

    Raises a :class:`services.kit.errors.Rejected` subclass with a named reason when the
    command is refused. A report found to duplicate an open case yields three events with two
    subjects: ``reported`` and ``dismissed`` for the new case, ``duplicate_linked`` for the
    original (apply them with :func:`services.grid.domain.evolve_all`). A patrol log concerns
    no case: ``state`` is ignored.
    """
    if isinstance(command, LogPatrol):
        return _log_patrol(command, ctx)
    if isinstance(command, ReportCase):
        return _report(state, command, ctx)
    allowed, fn = rule_for(_CASE_HANDLERS, command, "grid")
    if state is None:
        raise CaseNotFound(command.case_id)  # type: ignore[attr-defined]
    if state.case_id != command.case_id:  # type: ignore[attr-defined]
        raise ValueError(f"state of case {state.case_id!r} given for a command on {command.case_id!r}")  # type: ignore[attr-defined]
    if state.status not in allowed:
        raise IllegalTransition(_verb(command), state.status.value)
    return fn(state, command, ctx)


def _verb(command: Command) -> str:
    return command.TYPE.split(".")[2]


def _limits(state: CaseState, policy: DeadlinePolicy) -> Limits:
    return policy.limits_for(state.category, state.grade, state.urgent)


# ---------------------------------------------------------------------------------------
# The rules, one per command
# ---------------------------------------------------------------------------------------


def _report(state: CaseState | None, cmd: ReportCase, ctx: Context) -> list[Event]:
    if state is not None:
        raise CaseExists(cmd.case_id)
    if not ctx.grid_known:
        raise UnknownGrid(cmd.grid_id)
    code = GridCode.parse(cmd.grid_id)
    limits = ctx.policy.limits_for(cmd.category, cmd.grade, cmd.urgent)
    now = ctx.now
    events: list[Event] = [
        CaseReported(
            case_id=cmd.case_id,
            grid_id=cmd.grid_id,
            community_id=code.community_id,
            street_id=code.street_id,
            category=cmd.category,
            grade=cmd.grade,
            description=cmd.description,
            location=cmd.location,
            reporter=cmd.reporter,
            media=cmd.media,
            urgent=limits.urgent,
            register_due_at=ctx.policy.due(now, limits.register),
            occurred_at=now,
        )
    ]
    candidates = (c for c in ctx.open_cases if c.case_id != cmd.case_id)
    original = find_duplicate(cmd.category, cmd.location, candidates, ctx.duplicate_radius_m)
    if original is not None:
        events += [
            CaseDismissed(
                case_id=cmd.case_id, reason=DUPLICATE_REASON, duplicate_of=original.case_id,
                grid_id=cmd.grid_id, category=cmd.category, occurred_at=now,
            ),
            CaseDuplicateLinked(
                case_id=original.case_id, duplicate_case_id=cmd.case_id, reporter=cmd.reporter, occurred_at=now
            ),
        ]
    return events


def _placed(state: CaseState) -> dict:
    """Where a case is and what it is about, as the events that carry it for their readers name it."""
    return {"grid_id": state.grid_id, "community_id": state.community_id, "street_id": state.street_id,
            "category": state.category}


def _register(state: CaseState, cmd: RegisterCase, ctx: Context) -> list[Event]:
    department = cmd.department or ctx.proposed_department
    if department is None or not ctx.department_known:
        raise UnknownDepartment(cmd.department)
    due_at = ctx.policy.due(ctx.now, _limits(state, ctx.policy).dispatch)
    return [
        CaseRegistered(
            case_id=state.case_id,
            due_at=due_at,
            department=department,
            proposed_department=ctx.proposed_department,
            **_placed(state),
            grade=state.grade,
            description=state.description,
            location=state.location,
            reporter=state.reporter,
            registrar_id=cmd.registrar_id,
            occurred_at=ctx.now,
        )
    ]


def _dismiss(state: CaseState, cmd: DismissCase, ctx: Context) -> list[Event]:
    if cmd.duplicate_of is not None:
        if cmd.duplicate_of == state.case_id:
            raise DuplicateOfSelf()
        if not any(c.case_id == cmd.duplicate_of for c in ctx.open_cases):
            raise DuplicateTargetNotOpen(cmd.duplicate_of)
    events: list[Event] = [
        CaseDismissed(
            case_id=state.case_id, reason=cmd.reason, duplicate_of=cmd.duplicate_of, grid_id=state.grid_id,
            category=state.category, registrar_id=cmd.registrar_id, occurred_at=ctx.now,
        )
    ]
    if cmd.duplicate_of is not None:  # the reporter is recorded on the original
        events.append(
            CaseDuplicateLinked(
                case_id=cmd.duplicate_of, duplicate_case_id=state.case_id, reporter=state.reporter, occurred_at=ctx.now
            )
        )
    return events


def _dispatch(state: CaseState, cmd: DispatchCase, ctx: Context) -> list[Event]:
    if not ctx.department_known:
        raise UnknownDepartment(cmd.department)
    if cmd.due_at is not None:
        if cmd.due_at <= ctx.now:
            raise DueInPast("due_at", cmd.due_at)
        due_at = cmd.due_at.astimezone(ctx.policy.tz)
    else:
        due_at = None
    return _dispatched(state, ctx, cmd.department, cmd.assignee_id, cmd.dispatcher_id, due_at)


def _dispatched(state: CaseState, ctx: Context, department: str, assignee_id: str, dispatcher_id: str | None,
                due_at=None, redispatch: bool = False) -> list[Event]:
    """任务派遣 (or a re-dispatch after an approved return): the handling deadline and the
    department's accept, contact and (severe hazard) control deadlines, all from now; a severe
    hazard is listed (挂牌督办) when it is first dispatched."""
    limits, now = _limits(state, ctx.policy), ctx.now
    control = limits.control if state.is_severe_hazard else None
    events: list[Event] = [
        CaseDispatched(
            case_id=state.case_id, department=department, assignee_id=assignee_id,
            due_at=due_at or ctx.policy.due(now, limits.handle), dispatcher_id=dispatcher_id,
            accept_due_at=ctx.policy.due(now, limits.accept), contact_due_at=ctx.policy.due(now, limits.contact),
            control_due_at=ctx.policy.due(now, control) if control is not None else None,
            redispatch=redispatch, **_placed(state), occurred_at=now,
        )
    ]
    if state.is_severe_hazard and not state.listed:
        events.append(CaseSupervised(case_id=state.case_id, supervision=Supervision.LISTED, level=state.level,
                                     department=department, **_placed(state), occurred_at=now))
    return events


def _handle(state: CaseState, cmd: HandleCase, ctx: Context) -> list[Event]:
    if state.return_pending:
        raise ReturnPending(state.case_id)
    if state.is_severe_hazard and state.controlled_at is None:
        raise NotControlled(state.case_id)
    return [
        CaseHandled(
            case_id=state.case_id, result=cmd.result, media=cmd.media, handled_by=cmd.handled_by,
            verify_due_at=ctx.policy.due(ctx.now, _limits(state, ctx.policy).verify), occurred_at=ctx.now,
        )
    ]


def _verify(state: CaseState, cmd: VerifyCase, ctx: Context) -> list[Event]:
    # separation of duties: the handler does not check their own handling (either id unknown: no rule)
    if cmd.verifier_id is not None and cmd.verifier_id == state.handled_by:
        raise SelfVerification(cmd.verifier_id)
    now = ctx.now
    if cmd.passed:
        if cmd.rework_due_at is not None:
            raise ReworkDueWithoutRework()
        # the verify deadline is met now; the case is on time if no deadline was missed
        late = state.missed_any(now, ON_TIME_STAGES)
        delisted: list[Event] = [CaseDelisted(case_id=state.case_id, department=state.department,
                                              street_id=state.street_id, occurred_at=now)] if state.listed else []
        return [
            CaseVerified(
                case_id=state.case_id, passed=True, comment=cmd.comment, verifier_id=cmd.verifier_id,
                rework_count=state.rework_count, occurred_at=now,
            ),
            CaseClosed(
                case_id=state.case_id,
                on_time=not late,
                handling_seconds=max(0, int((now - state.reported_at).total_seconds())),
                department=state.department,
                assignee_id=state.assignee_id,
                **_placed(state),
                rework_count=state.rework_count,
                occurred_at=now,
            ),
            *delisted,
        ]
    if cmd.rework_due_at is not None:
        if cmd.rework_due_at <= now:
            raise DueInPast("rework_due_at", cmd.rework_due_at)
        rework_due_at = cmd.rework_due_at.astimezone(ctx.policy.tz)
    else:
        rework_due_at = ctx.policy.due(now, _limits(state, ctx.policy).rework)
    return [
        CaseVerified(
            case_id=state.case_id, passed=False, comment=cmd.comment, verifier_id=cmd.verifier_id,
            rework_due_at=rework_due_at, rework_count=state.rework_count + 1, occurred_at=now,
        )
    ]


def _feedback(state: CaseState, cmd: CaseFeedback, ctx: Context) -> list[Event]:
    if state.satisfaction is not None:
        raise FeedbackAlreadyGiven(state.case_id)
    if cmd.reporter_id is not None and cmd.reporter_id not in {r.id for r in state.reporters}:
        raise NotAReporter(cmd.reporter_id)
    return [
        CaseFeedback(
            case_id=state.case_id, satisfaction=cmd.satisfaction, comment=cmd.comment, reporter_id=cmd.reporter_id,
            occurred_at=ctx.now, grid_id=state.grid_id, community_id=state.community_id,
            street_id=state.street_id, department=state.department, resolved=cmd.resolved,
        )
    ]


def _escalate(state: CaseState, cmd: EscalateCase, ctx: Context) -> list[Event]:
    if cmd.joint_mediation and not state.category.is_dispute:
        raise JointMediationForDisputesOnly(state.category.value)
    to_level = cmd.to_level or state.level.next()
    if to_level is None or to_level.rank <= state.level.rank:
        raise NoHigherLevel(state.level.value, to_level.value if to_level else None)
    return [
        CaseEscalated(
            case_id=state.case_id, from_level=state.level, to_level=to_level, reason=cmd.reason,
            joint_mediation=cmd.joint_mediation, requested_by=cmd.requested_by, occurred_at=ctx.now,
        )
    ]


def _log_patrol(cmd: LogPatrol, ctx: Context) -> list[Event]:
    if ctx.patrol_logged:
        raise PatrolExists(cmd.patrol_id)
    if not ctx.grid_known:
        raise UnknownGrid(cmd.grid_id)
    if cmd.ended_at <= cmd.started_at:
        raise PatrolEndsBeforeStart()
    if cmd.ended_at > ctx.now + PATROL_CLOCK_SKEW:
        raise PatrolInFuture()
    code = GridCode.parse(cmd.grid_id)
    return [
        PatrolLogged(
            patrol_id=cmd.patrol_id, grid_id=cmd.grid_id, grid_worker_id=cmd.grid_worker_id,
            started_at=cmd.started_at, ended_at=cmd.ended_at, notes=cmd.notes, route=cmd.route,
            community_id=code.community_id, street_id=code.street_id, occurred_at=ctx.now,
        )
    ]


# -- the department's part ---------------------------------------------------------------


def _dept(state: CaseState) -> dict:
    """What every event of the department's part carries: the department, and where the case is."""
    return {"department": state.department, **_placed(state)}


def _actor(state: CaseState, given: str | None) -> str:
    """Who acted for the department: the sender (the kit sets it from the token), else the assignee."""
    return given or state.assignee_id or state.department or "unknown"


def _on_time(state: CaseState, stage: Stage, now: datetime) -> bool:
    d = state.unmet(stage)
    return d is None or now <= d.due_at


def _accept(state: CaseState, cmd: AcceptCase, ctx: Context) -> list[Event]:
    if state.return_pending:
        raise ReturnPending(state.case_id)
    if state.accepted_at is not None:
        raise AlreadyAccepted(state.case_id)
    return [CaseAccepted(case_id=state.case_id, accepted_by=_actor(state, cmd.accepted_by),
                         on_time=_on_time(state, Stage.ACCEPT, ctx.now), **_dept(state), occurred_at=ctx.now)]


def _return(state: CaseState, cmd: ReturnCase, ctx: Context) -> list[Event]:
    if state.return_pending:
        raise ReturnPending(state.case_id)
    return [CaseReturned(case_id=state.case_id, reason=cmd.reason, returned_by=_actor(state, cmd.returned_by),
                         **_dept(state), occurred_at=ctx.now)]


def _review_return(state: CaseState, cmd: ReviewReturn, ctx: Context) -> list[Event]:
    if not state.return_pending:
        raise NoPendingReturn(state.case_id)
    reviewed = CaseReturnReviewed(case_id=state.case_id, approved=cmd.approved, comment=cmd.comment,
                                  reviewer_id=cmd.reviewer_id, **_dept(state), occurred_at=ctx.now)
    if not cmd.approved:
        return [reviewed]
    assert cmd.department is not None and cmd.assignee_id is not None  # the command's validator
    if not ctx.department_known:
        raise UnknownDepartment(cmd.department)
    if cmd.department == state.department:
        raise SameDepartment(cmd.department)
    return [reviewed, *_dispatched(state, ctx, cmd.department, cmd.assignee_id, cmd.reviewer_id, redispatch=True)]


def _contact(state: CaseState, cmd: ContactReporter, ctx: Context) -> list[Event]:
    if state.contacted_at is not None:
        raise AlreadyContacted(state.case_id)
    return [CaseContacted(case_id=state.case_id, channel=cmd.channel, note=cmd.note,
                          contacted_by=_actor(state, cmd.contacted_by), on_time=_on_time(state, Stage.CONTACT, ctx.now),
                          **_dept(state), occurred_at=ctx.now)]


def _control(state: CaseState, cmd: ControlHazard, ctx: Context) -> list[Event]:
    if not state.is_severe_hazard:
        raise NotASevereHazard(state.case_id)
    if state.controlled_at is not None:
        raise AlreadyControlled(state.case_id)
    return [CaseControlled(case_id=state.case_id, measures=cmd.measures, controlled_by=_actor(state, cmd.controlled_by),
                           on_time=_on_time(state, Stage.CONTROL, ctx.now), **_dept(state), occurred_at=ctx.now)]


def _request_extension(state: CaseState, cmd: RequestExtension, ctx: Context) -> list[Event]:
    if state.extension_until is not None:
        raise ExtensionPending(state.case_id)
    d = state.unmet(Stage.HANDLE)
    if d is None:  # a dispatched case always has one; kept for a state that does not
        raise IllegalTransition(_verb(cmd), state.status.value)
    if ctx.now > d.due_at:
        raise DeadlinePassed(d.due_at)
    if cmd.until <= d.due_at:
        raise ExtensionNotLater(cmd.until, d.due_at)
    return [CaseExtensionRequested(case_id=state.case_id, stage=Stage.HANDLE, due_at=d.due_at,
                                   until=cmd.until.astimezone(ctx.policy.tz), reason=cmd.reason,
                                   requested_by=_actor(state, cmd.requested_by), **_dept(state), occurred_at=ctx.now)]


def _review_extension(state: CaseState, cmd: ReviewExtension, ctx: Context) -> list[Event]:
    d = state.unmet(Stage.HANDLE)
    if state.extension_until is None or d is None:
        raise NoPendingExtension(state.case_id)
    common = dict(case_id=state.case_id, stage=Stage.HANDLE, comment=cmd.comment, reviewer_id=cmd.reviewer_id,
                  **_dept(state), occurred_at=ctx.now)
    if not cmd.granted:
        return [CaseExtensionRefused(due_at=d.due_at, **common)]
    until = cmd.until or state.extension_until
    if until <= d.due_at:
        raise ExtensionNotLater(until, d.due_at)
    return [CaseExtensionGranted(previous_due_at=d.due_at, due_at=until.astimezone(ctx.policy.tz), **common)]


def _request_exclusion(state: CaseState, cmd: RequestExclusion, ctx: Context) -> list[Event]:
    if state.dispatched_at is None:  # a reopened status cannot get here; kept for clarity
        raise IllegalTransition(_verb(cmd), state.status.value)
    if state.exclusion_requested:
        raise ExclusionAlreadyRequested(state.case_id)
    return [CaseExclusionRequested(case_id=state.case_id, reason=cmd.reason,
                                   requested_by=_actor(state, cmd.requested_by), **_dept(state), occurred_at=ctx.now)]


def _review_exclusion(state: CaseState, cmd: ReviewExclusion, ctx: Context) -> list[Event]:
    if not state.exclusion_pending:
        raise NoPendingExclusion(state.case_id)
    return [CaseExclusionReviewed(case_id=state.case_id, approved=cmd.approved, comment=cmd.comment,
                                  reviewer_id=cmd.reviewer_id, **_dept(state), occurred_at=ctx.now)]


_OPEN = frozenset(s for s in CaseStatus if s.is_open)
_DISPATCHED = frozenset({CaseStatus.DISPATCHED})
_AFTER_DISPATCH = frozenset({CaseStatus.DISPATCHED, CaseStatus.HANDLED, CaseStatus.CLOSED})

# command type -> (statuses in which it applies, rule)
_CASE_HANDLERS: dict[type, tuple[frozenset[CaseStatus], object]] = {
    RegisterCase: (frozenset({CaseStatus.REPORTED}), _register),
    DismissCase: (frozenset({CaseStatus.REPORTED}), _dismiss),
    DispatchCase: (frozenset({CaseStatus.REGISTERED}), _dispatch),
    HandleCase: (frozenset({CaseStatus.DISPATCHED}), _handle),
    VerifyCase: (frozenset({CaseStatus.HANDLED}), _verify),
    CaseFeedback: (frozenset({CaseStatus.CLOSED}), _feedback),
    EscalateCase: (_OPEN, _escalate),
    AcceptCase: (_DISPATCHED, _accept),
    ReturnCase: (_DISPATCHED, _return),
    ReviewReturn: (_DISPATCHED, _review_return),
    ContactReporter: (frozenset({CaseStatus.DISPATCHED, CaseStatus.HANDLED}), _contact),
    ControlHazard: (_DISPATCHED, _control),
    RequestExtension: (_DISPATCHED, _request_extension),
    ReviewExtension: (_DISPATCHED, _review_extension),
    RequestExclusion: (_AFTER_DISPATCH, _request_exclusion),
    ReviewExclusion: (_AFTER_DISPATCH, _review_exclusion),
}


# ---------------------------------------------------------------------------------------
# Overdue detection and escalation (the timer)
# ---------------------------------------------------------------------------------------


def check_overdue(state: CaseState | None, now: datetime, policy: DeadlinePolicy = DEFAULT_POLICY) -> list[CaseEvent]:
    """``grid.case.overdue.v1`` for every missed deadline not yet reported, each followed, while
    the case is open, by ``grid.case.supervised.v1`` (超期督办): a yellow card for the case's
    first missed deadline, a red card for each later one. A missed deadline never escalates
    the case: escalation is a decision (``grid.case.escalate.v1``).

    The handling deadline is not reported while an extension of it awaits review (a granted
    extension moves it; a refused one leaves it to be reported then).

    Once-only: applying the returned events marks the deadlines (``Deadline.overdue``), so a
    second call — or a call after a restart, from the stored state — returns nothing for
    them; a deadline that was met late while no timer ran is still reported (nothing is
    missed). Call it from a timer over the cases whose :func:`next_check_at` has passed,
    and it is harmless to call it after every command too.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    if state is None:
        return []
    events: list[CaseEvent] = []
    cards = state.supervision_count
    for d in _checked(state):
        if d.overdue or not d.missed_by(now):
            continue
        events.append(CaseOverdue(case_id=state.case_id, due_at=d.due_at, level=state.level, stage=d.stage,
                                  occurred_at=now))
        if state.is_open:
            card = Supervision.YELLOW_CARD if cards == 0 else Supervision.RED_CARD
            cards += 1
            events.append(CaseSupervised(case_id=state.case_id, supervision=card, level=state.level, stage=d.stage,
                                         due_at=d.due_at, department=state.department, **_placed(state),
                                         occurred_at=now))
    return events


def _checked(state: CaseState):
    """The deadlines the timer looks at: all but a handling deadline whose extension awaits review."""
    return [d for d in state.deadlines
            if not (state.extension_until is not None and d.stage is Stage.HANDLE and d.met_at is None)]


def next_check_at(state: CaseState | None) -> datetime | None:
    """When :func:`check_overdue` next has something to say about this case (None: never,
    unless a new deadline starts). Store it next to the state so a timer can select the
    cases with ``next_check_at <= now``."""
    if state is None:
        return None
    pending = [d.due_at for d in _checked(state) if not d.overdue and (d.met_at is None or d.met_at > d.due_at)]
    return min(pending, default=None)
