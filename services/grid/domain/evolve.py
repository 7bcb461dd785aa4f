"""``evolve``: the state of a case after one of its events. Pure; never refuses (events are
facts), but raises ``ValueError`` for an event that cannot belong to the state given
(a programming error of the caller)."""
from __future__ import annotations

from datetime import datetime
from typing import Iterable, Mapping

from schemas.codes import community_id_of, street_id_of
from schemas.common import Event
from schemas.grid import (
    CaseAccepted, CaseClosed, CaseContacted, CaseControlled, CaseDelisted, CaseDismissed, CaseDispatched,
    CaseDuplicateLinked, CaseEscalated, CaseEvent, CaseExclusionRequested, CaseExclusionReviewed,
    CaseExtensionGranted, CaseExtensionRefused, CaseExtensionRequested, CaseFeedback, CaseHandled, CaseOverdue,
    CaseRegistered, CaseReported, CaseReturned, CaseReturnReviewed, CaseSupervised, CaseVerified, PatrolLogged, Stage,
    Supervision,
)

from .state import CaseState, CaseStatus, Deadline


def evolve(state: CaseState | None, event: Event) -> CaseState | None:
    """The state after ``event``. ``None`` is the state before the case was reported.
    Events that concern no case (a patrol log) leave the state as it is."""
    if isinstance(event, PatrolLogged):
        return state
    if isinstance(event, CaseReported):
        if state is not None:
            raise ValueError(f"case {event.case_id!r} reported twice")
        return _reported(event)
    if not isinstance(event, (CaseEvent, CaseFeedback)):
        raise TypeError(f"not a grid case event: {type(event).__name__}")
    if state is None:
        raise ValueError(f"{event.TYPE} for case {event.case_id!r}, which has no state")
    if state.case_id != event.case_id:
        raise ValueError(f"{event.TYPE} for case {event.case_id!r} applied to case {state.case_id!r}")
    apply = _APPLY.get(type(event))
    if apply is None:
        raise TypeError(f"no evolve rule for {type(event).__name__}")
    changes = apply(state, event)
    return state.model_copy(update={**changes, "version": state.version + 1})


def evolve_all(
    states: Mapping[str, CaseState | None], events: Iterable[Event]
) -> dict[str, CaseState | None]:
    """Apply a decision's events to the states of the cases they concern, keyed by case id.

    ``states`` must hold every case the events name (a missing key counts as None — a new
    case); the result holds the new state of each case touched. Patrol events are skipped.
    """
    out: dict[str, CaseState | None] = {}
    for ev in events:
        if isinstance(ev, PatrolLogged):
            continue
        key = ev.aggregate_id
        current = out[key] if key in out else states.get(key)
        out[key] = evolve(current, ev)
    return out


def _at(event: CaseEvent | CaseFeedback) -> datetime:
    if event.occurred_at is None:
        raise ValueError(f"{event.TYPE} for case {event.case_id!r} has no occurred_at")
    return event.occurred_at


def _met(deadlines: tuple[Deadline, ...], stage: Stage, at: datetime) -> tuple[Deadline, ...]:
    """Mark the unmet deadline of ``stage`` as met at ``at``."""
    out, done = [], False
    for d in reversed(deadlines):
        if not done and d.stage == stage and d.met_at is None:
            d, done = d.model_copy(update={"met_at": at}), True
        out.append(d)
    return tuple(reversed(out))


def _started(deadlines: tuple[Deadline, ...], stage: Stage, at: datetime, due_at: datetime | None) -> tuple[Deadline, ...]:
    if due_at is None:
        return deadlines
    return (*deadlines, Deadline(stage=stage, started_at=at, due_at=due_at))


def _reported(ev: CaseReported) -> CaseState:
    at = _at(ev)
    return CaseState(
        case_id=ev.case_id,
        version=1,
        status=CaseStatus.REPORTED,
        grid_id=ev.grid_id,
        community_id=ev.community_id or community_id_of(ev.grid_id),
        street_id=ev.street_id or street_id_of(ev.grid_id),
        category=ev.category,
        grade=ev.grade,
        urgent=ev.urgent,
        description=ev.description,
        location=ev.location,
        reporter=ev.reporter,
        media=ev.media,
        reported_at=at,
        deadlines=_started((), Stage.REGISTER, at, ev.register_due_at),
    )


def _stage(s: CaseState, ev: CaseEvent, status: CaseStatus, stamp: str, done: Stage, then: Stage | None = None,
           due_at: datetime | None = None, **fields) -> dict:
    """A step of the loop: the case takes ``status``, ``stamp`` records when, the deadline of the
    stage ``done`` is met, and the next stage's (``then``, due at ``due_at``) starts."""
    at = _at(ev)
    deadlines = _met(s.deadlines, done, at)
    if then is not None:
        deadlines = _started(deadlines, then, at, due_at)
    return {"status": status, stamp: at, "deadlines": deadlines, **fields}


def _registered(s: CaseState, ev: CaseRegistered) -> dict:
    return _stage(s, ev, CaseStatus.REGISTERED, "registered_at", Stage.REGISTER, Stage.DISPATCH, ev.due_at,
                  department=ev.department)


def _dismissed(s: CaseState, ev: CaseDismissed) -> dict:
    return _stage(s, ev, CaseStatus.DISMISSED, "dismissed_at", Stage.REGISTER, dismissal_reason=ev.reason,
                  duplicate_of=ev.duplicate_of)


def _duplicate_linked(s: CaseState, ev: CaseDuplicateLinked) -> dict:
    if ev.duplicate_case_id in s.duplicates:
        return {}
    return {"co_reporters": (*s.co_reporters, ev.reporter), "duplicates": (*s.duplicates, ev.duplicate_case_id)}


_DEPARTMENT_STAGES = (Stage.HANDLE, Stage.ACCEPT, Stage.CONTACT, Stage.CONTROL)


def _dispatched(s: CaseState, ev: CaseDispatched) -> dict:
    """派遣: the handling deadline and the department's accept, contact and control deadlines start.
    A re-dispatch (after an approved return) ends the previous department's unmet ones (met when
    the case left it) and starts the new department's part afresh."""
    at = _at(ev)
    deadlines = s.deadlines
    if ev.redispatch:
        for stage in _DEPARTMENT_STAGES:
            deadlines = _met(deadlines, stage, at)
    changes = _stage(s.model_copy(update={"deadlines": deadlines}), ev, CaseStatus.DISPATCHED, "dispatched_at",
                     Stage.DISPATCH, Stage.HANDLE, ev.due_at, department=ev.department, assignee_id=ev.assignee_id)
    deadlines = changes["deadlines"]
    for stage, due in ((Stage.ACCEPT, ev.accept_due_at), (Stage.CONTACT, ev.contact_due_at),
                       (Stage.CONTROL, ev.control_due_at)):
        deadlines = _started(deadlines, stage, at, due)
    changes["deadlines"] = deadlines
    if ev.redispatch:
        changes.update(accepted_at=None, contacted_at=None, controlled_at=None, return_pending=False,
                       extension_until=None)
    return changes


def _handled(s: CaseState, ev: CaseHandled) -> dict:
    """处置; handling a case takes it, so an unmet accept deadline is met too (on time or late),
    and a pending extension request lapses."""
    changes = _stage(s, ev, CaseStatus.HANDLED, "handled_at", Stage.HANDLE, Stage.VERIFY, ev.verify_due_at,
                     result=ev.result, handled_by=ev.handled_by, extension_until=None)
    changes["deadlines"] = _met(changes["deadlines"], Stage.ACCEPT, _at(ev))
    return changes


def _verified(s: CaseState, ev: CaseVerified) -> dict:
    at = _at(ev)
    deadlines = _met(s.deadlines, Stage.VERIFY, at)
    if ev.passed:
        return {"verified_at": at, "deadlines": deadlines}
    return {  # 返工: back to the department with a new handling deadline
        "status": CaseStatus.DISPATCHED,
        "verified_at": at,
        "handled_at": None,
        "handled_by": None,
        "rework_count": max(ev.rework_count, s.rework_count + 1),
        "deadlines": _started(deadlines, Stage.HANDLE, at, ev.rework_due_at),
    }


def _closed(s: CaseState, ev: CaseClosed) -> dict:
    """结案. A deadline still unmet and not yet due (a reporter not yet contacted) can no longer
    be missed and is dropped; one already past due stays, to be reported."""
    at = _at(ev)
    return {
        "status": CaseStatus.CLOSED, "closed_at": at, "on_time": ev.on_time,
        "handling_seconds": ev.handling_seconds,
        "deadlines": tuple(d for d in s.deadlines if d.met_at is not None or d.due_at < at),
    }


def _overdue(s: CaseState, ev: CaseOverdue) -> dict:
    # The deadline is identified by stage and due time among those not met on time: two
    # deadlines of one stage can share a due time only if the earlier was met on time.
    out, done = [], False
    for d in s.deadlines:
        missed = d.met_at is None or d.met_at > d.due_at
        if not done and missed and not d.overdue and d.due_at == ev.due_at and (ev.stage is None or d.stage == ev.stage):
            d, done = d.model_copy(update={"overdue": True}), True
        out.append(d)
    return {"deadlines": tuple(out)}


def _escalated(s: CaseState, ev: CaseEscalated) -> dict:
    level = ev.to_level if ev.to_level.rank > s.level.rank else s.level
    return {"level": level, "joint_mediation": s.joint_mediation or ev.joint_mediation}


def _feedback(s: CaseState, ev: CaseFeedback) -> dict:
    return {"satisfaction": ev.satisfaction, "feedback_at": _at(ev), "resolved": ev.resolved}


def _accepted(s: CaseState, ev: CaseAccepted) -> dict:
    at = _at(ev)
    return {"accepted_at": at, "deadlines": _met(s.deadlines, Stage.ACCEPT, at)}


def _returned(s: CaseState, ev: CaseReturned) -> dict:
    return {"return_pending": True}


def _return_reviewed(s: CaseState, ev: CaseReturnReviewed) -> dict:
    # approved: the re-dispatch that follows starts the new department's part
    return {"return_pending": False, "return_count": s.return_count + 1}


def _contacted(s: CaseState, ev: CaseContacted) -> dict:
    at = _at(ev)
    return {"contacted_at": at, "deadlines": _met(s.deadlines, Stage.CONTACT, at)}


def _controlled(s: CaseState, ev: CaseControlled) -> dict:
    at = _at(ev)
    return {"controlled_at": at, "deadlines": _met(s.deadlines, Stage.CONTROL, at)}


def _extension_requested(s: CaseState, ev: CaseExtensionRequested) -> dict:
    return {"extension_until": ev.until}


def _extension_granted(s: CaseState, ev: CaseExtensionGranted) -> dict:
    """延期: the unmet deadline of the stage now falls due at ``due_at``."""
    out, done = [], False
    for d in reversed(s.deadlines):
        if not done and d.stage == ev.stage and d.met_at is None:
            d, done = d.model_copy(update={"due_at": ev.due_at}), True
        out.append(d)
    return {"deadlines": tuple(reversed(out)), "extension_until": None, "extension_count": s.extension_count + 1}


def _extension_refused(s: CaseState, ev: CaseExtensionRefused) -> dict:
    return {"extension_until": None}


def _exclusion_requested(s: CaseState, ev: CaseExclusionRequested) -> dict:
    return {"exclusion_requested": True, "exclusion_pending": True}


def _exclusion_reviewed(s: CaseState, ev: CaseExclusionReviewed) -> dict:
    return {"exclusion_pending": False, "excluded": ev.approved}


def _supervised(s: CaseState, ev: CaseSupervised) -> dict:
    if ev.supervision is Supervision.LISTED:
        return {"listed": True}
    return {"supervision_count": s.supervision_count + 1, "last_card": ev.supervision}


def _delisted(s: CaseState, ev: CaseDelisted) -> dict:
    return {"delisted_at": _at(ev)}


_APPLY = {
    CaseRegistered: _registered,
    CaseDismissed: _dismissed,
    CaseDuplicateLinked: _duplicate_linked,
    CaseDispatched: _dispatched,
    CaseHandled: _handled,
    CaseVerified: _verified,
    CaseClosed: _closed,
    CaseOverdue: _overdue,
    CaseEscalated: _escalated,
    CaseFeedback: _feedback,
    CaseAccepted: _accepted,
    CaseReturned: _returned,
    CaseReturnReviewed: _return_reviewed,
    CaseContacted: _contacted,
    CaseControlled: _controlled,
    CaseExtensionRequested: _extension_requested,
    CaseExtensionGranted: _extension_granted,
    CaseExtensionRefused: _extension_refused,
    CaseExclusionRequested: _exclusion_requested,
    CaseExclusionReviewed: _exclusion_reviewed,
    CaseSupervised: _supervised,
    CaseDelisted: _delisted,
}
