"""Grid facts: cases (received, registered, dispatched, due, closed, reworked, late,
feedback), patrols, the grid worker's own duties, the department's part of a case and
吹哨报到.

A case counts for its grid, the grid's community and street and its grid worker — the grid
worker who reported it (网格发现: the 采集员 who reports also verifies). The grid, community
and street given on later events are used when the case was not seen reported. Each case fact
is counted once per case (flags in the :class:`~.refs.CaseRef`), so a re-delivered event
that slipped past the inbox changes nothing. Cohorts (which period a counter lands in) are
listed on :class:`..indicators.Fact`.
"""
from __future__ import annotations

from datetime import datetime
from functools import partial

from schemas import grid
from schemas.assessment import EntityType

from ..indicators import Fact
from ..periods import week_of
from .core import EventEffect, FactDelta, builds, increments
from .refs import CaseRef, Entity, Lookup, Ref, WhistleRef, WorkerRef, area_entities, is_department_id


_grid_event = partial(builds, occurred="occurred_at")
"""Register a builder of grid events, which carry their instant in ``occurred_at``."""


def _case(e: grid.CaseEvent, lookup: Lookup) -> tuple[CaseRef | None, CaseRef]:
    """(the stored ref or None, a ref to work on, its missing place completed from the event)."""
    old = lookup.case(e.case_id)
    return old, (old or CaseRef(case_id=e.case_id)).placed_by(e)


def _entities(ref: CaseRef) -> list[Entity]:
    out = area_entities(ref.grid_id, ref.community_id, ref.street_id)
    if ref.worker_id:
        out.append((EntityType.GRID_WORKER.value, ref.worker_id))
    return out


def _receive_if_unseen(old: CaseRef | None, ref: CaseRef, at: datetime) -> tuple[CaseRef, list[FactDelta]]:
    """A case whose report was never seen counts as received when first seen."""
    if old is not None and old.reported_at is not None:
        return ref, []
    ref = ref.model_copy(update={"reported_at": at})
    return ref, increments(_entities(ref), at, Fact.CASES_RECEIVED)


def _ensure_due(ref: CaseRef, due: datetime | None) -> tuple[CaseRef, list[FactDelta]]:
    """Count the case as due (应结案) once, in the period of its first handling deadline."""
    if ref.due_at is not None or due is None:
        return ref, []
    return ref.model_copy(update={"due_at": due}), increments(_entities(ref), due, Fact.CASES_DUE)


def _mark_late(ref: CaseRef, due: datetime) -> tuple[CaseRef, list[FactDelta]]:
    """Count the case as extended-or-overdue (延期) once, in its deadline cohort."""
    if ref.late or ref.closed:
        return ref, []
    ref, facts = _ensure_due(ref, due)
    return ref.model_copy(update={"late": True}), facts + increments(_entities(ref), ref.due_at, Fact.CASES_LATE)


@_grid_event(grid.CaseReported)
def case_reported(e: grid.CaseReported, at: datetime, lookup: Lookup) -> EventEffect:
    """信息收集: received, for the grid worker who reported it too."""
    old, ref = _case(e, lookup)
    if old is not None and old.reported_at is not None:
        return EventEffect()  # already counted
    worker = e.reporter.id if e.reporter.kind is grid.ReporterKind.GRID_WORKER else None
    ref = ref.model_copy(update={"reported_at": at, "worker_id": ref.worker_id or worker,
                                 "register_due_at": e.register_due_at})
    refs: list[Ref] = [ref]
    if worker and ref.grid_id:
        refs.append(_worker(worker, lookup).seen_in(ref.grid_id, at))
    return EventEffect(increments(_entities(ref), at, Fact.CASES_RECEIVED), refs)


def _worker(worker_id: str, lookup: Lookup) -> WorkerRef:
    return lookup.worker(worker_id) or WorkerRef(worker_id=worker_id)


@_grid_event(grid.CaseRegistered)
def case_registered(e: grid.CaseRegistered, at: datetime, lookup: Lookup) -> EventEffect:
    """立案. Its ``due_at`` is the dispatch deadline (a stage time limit), not the handling
    deadline, so it does not make the case due; the first dispatch does."""
    old, ref = _case(e, lookup)
    if ref.registered:
        return EventEffect()
    ref, facts = _receive_if_unseen(old, ref, at)
    facts += increments(_entities(ref), ref.reported_at, Fact.CASES_REGISTERED)
    if ref.worker_id and (ref.register_due_at is None or at <= ref.register_due_at):
        facts += increments([(EntityType.GRID_WORKER.value, ref.worker_id)], ref.reported_at,
                            Fact.CASES_REPORTED_ON_TIME)
    return EventEffect(facts, [ref.model_copy(update={"registered": True})])


@_grid_event(grid.CaseDismissed)
def case_dismissed(e: grid.CaseDismissed, at: datetime, lookup: Lookup) -> EventEffect:
    """不予立案: received (if its report was not seen), never registered."""
    old, ref = _case(e, lookup)
    ref, facts = _receive_if_unseen(old, ref, at)
    return EventEffect(facts, [ref] if facts else [])


@_grid_event(grid.CaseDispatched)
def case_dispatched(e: grid.CaseDispatched, at: datetime, lookup: Lookup) -> EventEffect:
    """派遣. The first dispatch's ``due_at`` (handling deadline) puts the case in its deadline
    cohort; a later dispatch with a later deadline (other than after a rework) is an
    extension (延期)."""
    old, ref = _case(e, lookup)
    facts: list[FactDelta] = []
    if not ref.registered:  # dispatch implies registration (立案 precedes 派遣)
        ref, facts = _receive_if_unseen(old, ref, at)
        facts += increments(_entities(ref), ref.reported_at, Fact.CASES_REGISTERED)
        ref = ref.model_copy(update={"registered": True})
    if not ref.dispatched:
        facts += increments(_entities(ref), ref.reported_at or at, Fact.CASES_DISPATCHED)
        ref = ref.model_copy(update={"dispatched": True})
    if ref.due_at is None:
        ref, more = _ensure_due(ref, e.due_at)
        facts += more
    elif e.due_at > ref.due_at and not ref.reworked and not e.redispatch:
        ref, more = _mark_late(ref, e.due_at)
        facts += more
    if e.department != ref.department:  # the department's part starts (a re-dispatch: the next one's)
        dept = _depts(e.department)
        facts += increments(dept, at, Fact.DEPT_CASES_RECEIVED) + increments(dept, at, Fact.DEPT_CASES_IN_RATES)
        ref = ref.model_copy(update={"department": e.department, "dept_received_at": at, "dept_counted": (),
                                     "contacted_at": None})
    return EventEffect(facts, [ref])


@_grid_event(grid.CaseHandled)
def case_handled(e: grid.CaseHandled, at: datetime, lookup: Lookup) -> EventEffect:
    """处置: no counter; remembers the verification deadline (核查及时率)."""
    _, ref = _case(e, lookup)
    return EventEffect([], [ref.model_copy(update={"verify_due_at": e.verify_due_at})])


@_grid_event(grid.CaseVerified)
def case_verified(e: grid.CaseVerified, at: datetime, lookup: Lookup) -> EventEffect:
    """核查. Each verification of a handling whose deadline is known counts for the grid
    worker who did it (the verifier, else the case's worker), on time when by that deadline.
    A failed verification (返工) counts once per case, in its deadline cohort."""
    _, ref = _case(e, lookup)
    facts: list[FactDelta] = []
    verifier = e.verifier_id or ref.worker_id
    if ref.verify_due_at is not None and verifier:
        gw = [(EntityType.GRID_WORKER.value, verifier)]
        facts += increments(gw, at, Fact.VERIFICATIONS_DONE)
        if at <= ref.verify_due_at:
            facts += increments(gw, at, Fact.VERIFICATIONS_ON_TIME)
        ref = ref.model_copy(update={"verify_due_at": None})
    if not (e.passed or ref.reworked):
        ref, more = _ensure_due(ref, at)
        facts += more + increments(_entities(ref), ref.due_at, Fact.CASES_REWORKED)
        ref = ref.model_copy(update={"reworked": True})
    return EventEffect(facts, [ref] if ref != lookup.case(e.case_id) else [])


@_grid_event(grid.CaseClosed)
def case_closed(e: grid.CaseClosed, at: datetime, lookup: Lookup) -> EventEffect:
    """结案, in the deadline cohort; a case closed without ever getting a handling deadline
    is due in the period it was closed (so closed never exceeds due)."""
    _, ref = _case(e, lookup)
    if ref.closed:
        return EventEffect()
    ref, facts = _ensure_due(ref, at)
    ents = _entities(ref)
    facts += increments(ents, ref.due_at, Fact.CASES_CLOSED)
    if e.on_time:
        facts += increments(ents, ref.due_at, Fact.CASES_CLOSED_ON_TIME)
    facts += increments(ents, ref.due_at, Fact.HANDLING_SECONDS, float(e.handling_seconds))
    dept = e.department or ref.department
    if dept:
        facts += increments(_depts(dept), at, Fact.DEPT_CASES_CLOSED)
        if e.on_time:
            facts += increments(_depts(dept), at, Fact.DEPT_CASES_CLOSED_ON_TIME)
    return EventEffect(facts, [ref.model_copy(update={"closed": True})])


LATE_STAGES = frozenset({None, grid.Stage.HANDLE, grid.Stage.VERIFY})
"""Overdue stages that make a case 延期: a missed handling or verification deadline (or no
stage given). Missed register/dispatch deadlines are intake delays, seen in 立案率/派遣率."""


@_grid_event(grid.CaseOverdue)
def case_overdue(e: grid.CaseOverdue, at: datetime, lookup: Lookup) -> EventEffect:
    """超期 in handling or verification: late (延期) once per case."""
    _, ref = _case(e, lookup)
    if e.stage not in LATE_STAGES:
        return EventEffect()
    ref, facts = _mark_late(ref, e.due_at)
    return EventEffect(facts, [ref] if facts else [])


_SATISFACTION = {
    grid.Satisfaction.SATISFIED: Fact.FEEDBACK_SATISFIED,
    grid.Satisfaction.BASICALLY_SATISFIED: Fact.FEEDBACK_BASICALLY_SATISFIED,
    grid.Satisfaction.UNSATISFIED: Fact.FEEDBACK_UNSATISFIED,
}


@_grid_event(grid.CaseFeedback)
def case_feedback(e: grid.CaseFeedback, at: datetime, lookup: Lookup) -> EventEffect:
    """反馈: the first feedback of a case counts, by its satisfaction."""
    _, ref = _case(e, lookup)
    if ref.feedback:
        return EventEffect()
    ents = _entities(ref)
    counted = [Fact.FEEDBACK_RECEIVED, _SATISFACTION[e.satisfaction]] + ([Fact.CASES_RESOLVED] if e.resolved else [])
    facts = [d for f in counted[:2] for d in increments(ents, at, f)]
    update: dict = {"feedback": True}
    dept = ref.department or e.department
    if dept and not (dept == ref.department and ref.counted("excluded")):
        when = _cohort(ref, at) if dept == ref.department else at
        facts += [d for f in counted for d in increments(_depts(dept), when, f)]
        update.update(feedback_at=when, feedback_department=dept, feedback_facts=tuple(f.value for f in counted))
    return EventEffect(facts, [ref.model_copy(update=update)])


@_grid_event(grid.PatrolLogged)
def patrol_logged(e: grid.PatrolLogged, at: datetime, lookup: Lookup) -> EventEffect:
    """巡查: counts for the grid worker and the area at its start, with its duration."""
    ents = area_entities(e.grid_id, e.community_id, e.street_id)
    ents.append((EntityType.GRID_WORKER.value, e.grid_worker_id))
    facts = increments(ents, e.started_at, Fact.PATROLS_LOGGED)
    if e.ended_at > e.started_at:
        facts += increments(ents, e.started_at, Fact.PATROL_SECONDS, (e.ended_at - e.started_at).total_seconds())
    worker = _worker(e.grid_worker_id, lookup).seen_in(e.grid_id, e.started_at)
    week = (e.grid_id, week_of(e.started_at))
    if week not in worker.patrolled:
        worker = worker.model_copy(update={"patrolled": (*worker.patrolled, week)})
    return EventEffect(facts, [worker])


# -- the department's part of a case ---------------------------------------------------------
#
# A case fact counts for the department the case is dispatched to at the time (the event's
# ``department``, else the case's); each once per case and department. A department's part
# starts when the case is dispatched to it (received). An approved return counts a return for
# the department and takes the case out of its 响应率/解决率 (it was not its duty); the
# re-dispatch makes the case the next department's. An approved exclusion (不合理诉求) takes
# the case out of the department's 响应率, 解决率 and 满意率 (received, contacted, feedback and
# resolved are taken back in the periods they were counted in); its other rates keep it.


def _depts(department: str | None) -> list[Entity]:
    """The department entity of a department id of the register; a free-text department (an
    event from before the register) counts for no department."""
    return [(EntityType.DEPARTMENT.value, department)] if is_department_id(department) else []


def _holder(e: grid.DepartmentCaseEvent | grid.CaseSupervised, ref: CaseRef) -> str | None:
    return e.department or ref.department


def _once(ref: CaseRef, e, what: str, fact: Fact, at: datetime, when: bool = True, **update) -> EventEffect:
    """Count ``fact`` once per case for the department of ``e`` (when ``when``)."""
    dept = _holder(e, ref)
    if not dept or not when or (dept == ref.department and ref.counted(what)):
        return EventEffect()
    if dept != ref.department:  # a department's event for a case not seen dispatched to it
        return EventEffect(increments(_depts(dept), at, fact))
    return EventEffect(increments(_depts(dept), _cohort(ref, at), fact), [ref.count(what, **update)])


def _cohort(ref: CaseRef, at: datetime) -> datetime:
    """When a department's fact about a case counts: in the period the department received the
    case (its cohort), like the case's received count it is a rate of. Counted when it happened,
    a contact or a 回访 in the month after the dispatch would fall in a period whose received
    count does not hold the case, and a rate could pass 1."""
    return ref.dept_received_at or at


@_grid_event(grid.CaseAccepted)
def case_accepted(e: grid.CaseAccepted, at: datetime, lookup: Lookup) -> EventEffect:
    """签收: on time against the accept deadline."""
    _, ref = _case(e, lookup)
    return _once(ref, e, "accepted", Fact.CASES_ACCEPTED_ON_TIME, at, e.on_time)


@_grid_event(grid.CaseContacted)
def case_contacted(e: grid.CaseContacted, at: datetime, lookup: Lookup) -> EventEffect:
    """先行联系: on time against the contact deadline (响应率); not once the case is excluded."""
    _, ref = _case(e, lookup)
    if ref.counted("excluded") or ref.counted("returned"):
        return EventEffect()
    return _once(ref, e, "contacted", Fact.CASES_CONTACTED_ON_TIME, at, e.on_time, contacted_at=_cohort(ref, at))


def _out_of_rates(ref: CaseRef) -> list[FactDelta]:
    """Take the case back out of its current department's 响应率/解决率: received in rates and
    contacted on time, in the periods they were counted in."""
    d = _depts(ref.department)
    facts = increments(d, ref.dept_received_at, Fact.DEPT_CASES_IN_RATES, -1)
    if ref.counted("contacted"):
        facts += increments(d, ref.contacted_at, Fact.CASES_CONTACTED_ON_TIME, -1)
    return facts


@_grid_event(grid.CaseReturnReviewed)
def case_return_reviewed(e: grid.CaseReturnReviewed, at: datetime, lookup: Lookup) -> EventEffect:
    """退单 approved: a return for the department (退单率), and the case leaves its 响应率/解决率.
    A refused return changes nothing (the department keeps the case)."""
    _, ref = _case(e, lookup)
    if not e.approved:
        return EventEffect()
    eff = _once(ref, e, "returned", Fact.RETURNS_APPROVED, at)
    if not eff.refs or ref.counted("excluded"):
        return eff
    return EventEffect(eff.facts + _out_of_rates(ref), eff.refs)


@_grid_event(grid.CaseExtensionGranted)
def case_extension_granted(e: grid.CaseExtensionGranted, at: datetime, lookup: Lookup) -> EventEffect:
    """延期 granted: the department's 延期率 (once per case); for the area, a granted extension of
    the handling deadline makes the case late (延期) as a later deadline always did."""
    _, ref = _case(e, lookup)
    eff = _once(ref, e, "extended", Fact.EXTENSIONS_GRANTED, at)
    if e.stage is not grid.Stage.HANDLE:
        return eff
    base = eff.refs[0] if eff.refs else ref
    late, more = _mark_late(base, e.due_at)  # type: ignore[arg-type]
    return EventEffect(eff.facts + more, [late] if late != ref else [])


SUPERVISED_CARDS = frozenset({grid.Supervision.YELLOW_CARD, grid.Supervision.RED_CARD})
"""Supervisions that mean a missed deadline (超期); 挂牌督办 of a severe hazard is not one."""


@_grid_event(grid.CaseSupervised)
def case_supervised(e: grid.CaseSupervised, at: datetime, lookup: Lookup) -> EventEffect:
    """超期督办 with a yellow or red card: the case is overdue for its department (once per case)."""
    _, ref = _case(e, lookup)
    return _once(ref, e, "supervised", Fact.CASES_SUPERVISED, at, e.supervision in SUPERVISED_CARDS)


@_grid_event(grid.CaseExclusionReviewed)
def case_exclusion_reviewed(e: grid.CaseExclusionReviewed, at: datetime, lookup: Lookup) -> EventEffect:
    """不合理诉求 approved: the case leaves the department's 响应率, 解决率 and 满意率."""
    _, ref = _case(e, lookup)
    if not e.approved or e.department != ref.department or ref.counted("excluded"):
        return EventEffect()
    facts = [] if ref.counted("returned") else _out_of_rates(ref)
    if ref.feedback_department == ref.department:
        d = _depts(ref.department)
        facts += [x for f in ref.feedback_facts for x in increments(d, ref.feedback_at, Fact(f), -1)]
    return EventEffect(facts, [ref.count("excluded", feedback_department=None, feedback_facts=())])


# -- 吹哨报到 ----------------------------------------------------------------------------------


def _whistle(e: grid.WhistleEvent, lookup: Lookup) -> WhistleRef:
    return lookup.whistle(e.whistle_id) or WhistleRef(whistle_id=e.whistle_id)


@_grid_event(grid.WhistleBlown)
def whistle_blown(e: grid.WhistleBlown, at: datetime, lookup: Lookup) -> EventEffect:
    """街乡吹哨: each summoned department is summoned once (吹哨报到率's denominator)."""
    w = _whistle(e, lookup)
    new = [d for d in e.departments if d not in w.summoned]
    if not new:
        return EventEffect()
    return EventEffect(increments([x for d in new for x in _depts(d)], at, Fact.WHISTLES_SUMMONED),
                       [w.model_copy(update={"summoned": (*w.summoned, *new)})])


@_grid_event(grid.WhistleAnswered)
def whistle_answered(e: grid.WhistleAnswered, at: datetime, lookup: Lookup) -> EventEffect:
    """部门报到 before ``report_by``: answered on time, once per whistle and department. A late
    answer, or a miss (``grid.whistle.missed.v1``), leaves the summons unanswered."""
    w = _whistle(e, lookup)
    if not e.on_time or e.department in w.answered:
        return EventEffect()
    return EventEffect(increments(_depts(e.department), at, Fact.WHISTLES_ANSWERED_ON_TIME),
                       [w.model_copy(update={"answered": (*w.answered, e.department)})])


@_grid_event(grid.WhistleRated)
def whistle_rated(e: grid.WhistleRated, at: datetime, lookup: Lookup) -> EventEffect:
    """The street's rating of a department's response (1-5), once per whistle and department."""
    w = _whistle(e, lookup)
    if e.department in w.rated:
        return EventEffect()
    d = _depts(e.department)
    return EventEffect(increments(d, at, Fact.WHISTLES_RATED) + increments(d, at, Fact.WHISTLE_RATING_SUM, e.rating),
                       [w.model_copy(update={"rated": (*w.rated, e.department)})])
