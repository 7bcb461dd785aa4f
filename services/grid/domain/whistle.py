"""吹哨报到: a street summons departments (街乡吹哨), each reports (部门报到) before a time, or is
recorded missing; the street rates each department's response. Pure: no I/O, no clock.

- :class:`WhistleState` — a whistle and what each summoned department did (:class:`Summons`);
  frozen, and round-trips through jsonb (``model_dump(mode="json")`` / ``model_validate``).
- :func:`decide_whistle` — ``grid.whistle.blow.v1``, ``.answer.v1``, ``.rate.v1`` → events, or a
  named refusal (:mod:`.errors`).
- :func:`check_missed` — the timer's rule: ``grid.whistle.missed.v1`` for each summoned department
  that had not reported by ``report_by``, once each; :func:`whistle_next_check_at` says when a
  whistle next has something to say.
- :func:`evolve_whistle` — the state after an event.

The rules:

- **Blow.** ``report_by`` lies in the future. Every department is in the department register
  and one the street may summon: a district department of the street's district, or the street's
  own (a department id starts with its division or street id). A case, when named, is a case of
  that street (the application looks it up; one that is not is refused as unknown).
- **Answer.** Only a summoned department, once. ``on_time`` when it reports at or before
  ``report_by``. A later report is still recorded (``on_time`` false), also after the department
  was recorded missing: a missing department may still turn up, late.
- **Missed.** At ``report_by``, each summoned department without an on-time report is recorded
  missing, once: those that have not reported at all, and those that reported late before the
  timer came round (the report is late all the same). So a late department has exactly one
  ``missed`` and, when it turns up, one ``answered`` with ``on_time`` false, whichever comes first.
- **Rate.** The street rates a department that reported or was recorded missing, 1–5, once each.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Container

from pydantic import BaseModel, ConfigDict, Field

from schemas.codes import parent_of
from schemas.common import Command
from schemas.grid import (
    AnswerWhistle, BlowWhistle, RateWhistle, WhistleAnswered, WhistleBlown, WhistleEvent, WhistleMissed, WhistleRated,
)

from .errors import (
    AlreadyAnswered, AlreadyRated, CaseNotFound, DueInPast, MissingActor, NotSummoned, NotYetAnswered,
    UnknownDepartment, WhistleExists, WhistleNotFound,
)


class Summons(BaseModel):
    """One summoned department of a whistle: its report (报到), whether it was recorded missing,
    and the street's rating."""

    model_config = ConfigDict(frozen=True)

    department: str
    answered_at: datetime | None = None
    on_time: bool | None = None  # set with answered_at
    missed: bool = False  # recorded missing (未报到) by the timer
    rating: int | None = None
    rated_at: datetime | None = None

    @property
    def answered(self) -> bool:
        return self.answered_at is not None

    @property
    def pending(self) -> bool:
        """Neither reported nor recorded missing yet."""
        return not self.answered and not self.missed

    def due_missed(self, report_by: datetime, now: datetime) -> bool:
        """Whether the timer, at ``now``, records it missing: not yet recorded, ``report_by`` has
        passed, and it has no report from before then."""
        return not self.missed and now > report_by and not (self.answered and self.on_time)


class WhistleState(BaseModel):
    """A whistle (吹哨): who blew it, about what, whom it summoned and what each did."""

    model_config = ConfigDict(frozen=True)

    whistle_id: str
    version: int = Field(default=0, ge=0, description="number of events applied")
    street_id: str
    case_id: str | None = None
    matter: str
    blown_by: str
    blown_at: datetime
    report_by: datetime
    summons: tuple[Summons, ...] = Field(min_length=1)

    @property
    def departments(self) -> tuple[str, ...]:
        return tuple(s.department for s in self.summons)

    def summons_of(self, department: str) -> Summons | None:
        return next((s for s in self.summons if s.department == department), None)

    @property
    def is_open(self) -> bool:
        """Some summoned department has neither reported nor been recorded missing."""
        return any(s.pending for s in self.summons)


@dataclass(frozen=True)
class WhistleContext:
    """What :func:`decide_whistle` needs from outside the whistle, filled in by the application.

    - ``now``: the current time (timezone-aware).
    - ``departments``: the department register (anything with ``in``): which ids exist.
    - ``case_in_street``: for a blow that names a case, whether that case exists in the
      whistle's street (and the sender may see it); False refuses the blow as ``unknown_case``.
    """

    now: datetime
    departments: Container[str] = frozenset()
    case_in_street: bool = False

    def __post_init__(self) -> None:
        if self.now.tzinfo is None:
            raise ValueError("WhistleContext.now must be timezone-aware")


def may_summon(street_id: str, department: str) -> bool:
    """Whether a street may summon ``department`` (its shape aside): a district department of
    the street's district (``<division>.<code>``) or the street's own (``<street_id>.<code>``)."""
    owner = department.split(".", 1)[0]
    return owner in (parent_of(street_id), street_id)


def decide_whistle(state: WhistleState | None, command: Command, ctx: WhistleContext) -> list[WhistleEvent]:
    """The events ``command`` leads to for the whistle in ``state`` (None: not blown yet), or a
    :class:`services.kit.errors.Rejected` with a named reason."""
    if isinstance(command, BlowWhistle):
        return _blow(state, command, ctx)
    if not isinstance(command, (AnswerWhistle, RateWhistle)):
        raise TypeError(f"not a whistle command: {type(command).__name__}")
    if state is None:
        raise WhistleNotFound(command.whistle_id)
    if state.whistle_id != command.whistle_id:
        raise ValueError(f"state of whistle {state.whistle_id!r} given for a command on {command.whistle_id!r}")
    summons = state.summons_of(command.department)
    if summons is None:
        raise NotSummoned(command.department)
    if isinstance(command, AnswerWhistle):
        return _answer(state, summons, command, ctx)
    return _rate(state, summons, command, ctx)


def _blow(state: WhistleState | None, cmd: BlowWhistle, ctx: WhistleContext) -> list[WhistleEvent]:
    if state is not None:
        raise WhistleExists(cmd.whistle_id)
    if cmd.blown_by is None:
        raise MissingActor("blown_by")
    if cmd.report_by <= ctx.now:
        raise DueInPast("report_by", cmd.report_by)
    for d in cmd.departments:
        if d not in ctx.departments or not may_summon(cmd.street_id, d):
            raise UnknownDepartment(d, "departments")
    if cmd.case_id is not None and not ctx.case_in_street:
        raise CaseNotFound(cmd.case_id)
    return [WhistleBlown(whistle_id=cmd.whistle_id, street_id=cmd.street_id, case_id=cmd.case_id,
                         departments=cmd.departments, report_by=cmd.report_by, matter=cmd.matter,
                         blown_by=cmd.blown_by, occurred_at=ctx.now)]


def _answer(state: WhistleState, summons: Summons, cmd: AnswerWhistle, ctx: WhistleContext) -> list[WhistleEvent]:
    if summons.answered:
        raise AlreadyAnswered(cmd.department)
    if cmd.answered_by is None:
        raise MissingActor("answered_by")
    return [WhistleAnswered(whistle_id=state.whistle_id, street_id=state.street_id, department=cmd.department,
                            answered_by=cmd.answered_by, on_time=ctx.now <= state.report_by, note=cmd.note,
                            occurred_at=ctx.now)]


def _rate(state: WhistleState, summons: Summons, cmd: RateWhistle, ctx: WhistleContext) -> list[WhistleEvent]:
    if summons.pending:
        raise NotYetAnswered(cmd.department)
    if summons.rating is not None:
        raise AlreadyRated(cmd.department)
    return [WhistleRated(whistle_id=state.whistle_id, street_id=state.street_id, department=cmd.department,
                         rating=cmd.rating, comment=cmd.comment, rated_by=cmd.rated_by, occurred_at=ctx.now)]


def check_missed(state: WhistleState | None, now: datetime) -> list[WhistleMissed]:
    """``grid.whistle.missed.v1`` for each summoned department without a report from before
    ``report_by``, once: applying the events marks them (``Summons.missed``), so a second call —
    or one after a restart, from the stored state — returns nothing for them. Call it from a
    timer over the whistles whose :func:`whistle_next_check_at` has come."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    if state is None:
        return []
    return [WhistleMissed(whistle_id=state.whistle_id, street_id=state.street_id, department=s.department,
                          report_by=state.report_by, occurred_at=now)
            for s in state.summons if s.due_missed(state.report_by, now)]


def whistle_next_check_at(state: WhistleState | None) -> datetime | None:
    """When :func:`check_missed` next has something to say about the whistle: its ``report_by``
    while a department may still be recorded missing (None: never again)."""
    if state is None:
        return None
    if any(not s.missed and not (s.answered and s.on_time) for s in state.summons):
        return state.report_by
    return None


def evolve_whistle(state: WhistleState | None, event: WhistleEvent) -> WhistleState:
    """The whistle after ``event`` (None: before it was blown). Events are facts: never refuses,
    but raises ``ValueError`` for an event that cannot belong to ``state`` (a caller's bug)."""
    if isinstance(event, WhistleBlown):
        if state is not None:
            raise ValueError(f"whistle {event.whistle_id!r} blown twice")
        return WhistleState(whistle_id=event.whistle_id, version=1, street_id=event.street_id, case_id=event.case_id,
                            matter=event.matter, blown_by=event.blown_by, blown_at=_at(event),
                            report_by=event.report_by, summons=tuple(Summons(department=d) for d in event.departments))
    if state is None:
        raise ValueError(f"{event.TYPE} for whistle {event.whistle_id!r}, which has no state")
    if state.whistle_id != event.whistle_id:
        raise ValueError(f"{event.TYPE} for whistle {event.whistle_id!r} applied to whistle {state.whistle_id!r}")
    if not isinstance(event, (WhistleAnswered, WhistleMissed, WhistleRated)):
        raise TypeError(f"no evolve rule for {type(event).__name__}")
    summons = state.summons_of(event.department)
    if summons is None:
        raise ValueError(f"{event.TYPE}: {event.department!r} was not summoned by whistle {state.whistle_id!r}")
    if isinstance(event, WhistleAnswered):
        changed = summons.model_copy(update={"answered_at": _at(event), "on_time": event.on_time})
    elif isinstance(event, WhistleMissed):
        changed = summons.model_copy(update={"missed": True})
    else:
        changed = summons.model_copy(update={"rating": event.rating, "rated_at": _at(event)})
    return state.model_copy(update={
        "summons": tuple(changed if s.department == event.department else s for s in state.summons),
        "version": state.version + 1})


def _at(event: WhistleEvent) -> datetime:
    if event.occurred_at is None:
        raise ValueError(f"{event.TYPE} without occurred_at")
    return event.occurred_at
