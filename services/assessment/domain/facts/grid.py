"""Grid facts: cases (received, registered, dispatched, due, closed, reworked, late,
feedback) and patrols.

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
from .core import EventEffect, FactDelta, builds, increments
from .refs import CaseRef, Entity, Lookup, Ref, WorkerRef, area_entities


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
    ref = ref.model_copy(update={"reported_at": at, "worker_id": ref.worker_id or worker})
    refs: list[Ref] = [ref]
    if worker and ref.grid_id:
        refs.append(WorkerRef(worker_id=worker, grid_id=ref.grid_id))
    return EventEffect(increments(_entities(ref), at, Fact.CASES_RECEIVED), refs)


@_grid_event(grid.CaseRegistered)
def case_registered(e: grid.CaseRegistered, at: datetime, lookup: Lookup) -> EventEffect:
    """立案. Its ``due_at`` is the dispatch deadline (a stage time limit), not the handling
    deadline, so it does not make the case due; the first dispatch does."""
    old, ref = _case(e, lookup)
    if ref.registered:
        return EventEffect()
    ref, facts = _receive_if_unseen(old, ref, at)
    facts += increments(_entities(ref), ref.reported_at, Fact.CASES_REGISTERED)
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
    elif e.due_at > ref.due_at and not ref.reworked:
        ref, more = _mark_late(ref, e.due_at)
        facts += more
    return EventEffect(facts, [ref])


@_grid_event(grid.CaseVerified)
def case_verified(e: grid.CaseVerified, at: datetime, lookup: Lookup) -> EventEffect:
    """核查. A failed verification (返工) counts once per case, in its deadline cohort."""
    _, ref = _case(e, lookup)
    if e.passed or ref.reworked:
        return EventEffect()
    ref, facts = _ensure_due(ref, at)
    facts += increments(_entities(ref), ref.due_at, Fact.CASES_REWORKED)
    return EventEffect(facts, [ref.model_copy(update={"reworked": True})])


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
    facts = increments(ents, at, Fact.FEEDBACK_RECEIVED) + increments(ents, at, _SATISFACTION[e.satisfaction])
    return EventEffect(facts, [ref.model_copy(update={"feedback": True})])


@_grid_event(grid.PatrolLogged)
def patrol_logged(e: grid.PatrolLogged, at: datetime, lookup: Lookup) -> EventEffect:
    """巡查: counts for the grid worker and the area at its start, with its duration."""
    ents = area_entities(e.grid_id, e.community_id, e.street_id)
    ents.append((EntityType.GRID_WORKER.value, e.grid_worker_id))
    facts = increments(ents, e.started_at, Fact.PATROLS_LOGGED)
    if e.ended_at > e.started_at:
        facts += increments(ents, e.started_at, Fact.PATROL_SECONDS, (e.ended_at - e.started_at).total_seconds())
    return EventEffect(facts, [WorkerRef(worker_id=e.grid_worker_id, grid_id=e.grid_id)])
