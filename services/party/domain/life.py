"""Organisational life (三会一课, 主题党日) and members' commitments (承诺、践诺、评诺).

**The frequency table is data**: ``services/party/policy/org_life.yaml``, which the app parses
and hands to :meth:`OrgLifePolicy.from_mapping`. Each kind is due once a ``month`` or once a
``quarter`` (calendar periods in Asia/Shanghai) and applies to some kinds of organisation
(a building group holds 党小组会, a branch its 支部党员大会...).

An organisation's life (keyed by ``org_id``; the org itself, its kind and its establishment,
come in the context as an :class:`OrgRef`)::

    RecordOrgLife → OrgLifeHeld      a kind the table applies to the org's kind; held_at not after
                                     now nor before the org's establishment; each meeting_id once
                                     (the same meeting again is a no-op)
    (timer)       → OrgLifeOverdue   :func:`org_life_overdue`: once per (kind, period) for each
                                     closed period without a meeting of that kind

Periods are counted from the org's establishment on: the first period of a kind is the first
one that starts at or after the establishment (an org established on 15 March owes its first
monthly meeting for April, its first quarterly one for Q2). A meeting recorded late, for a
period already flagged overdue, is recorded; the flag stays.

A member's commitments (keyed by ``member_id``)::

    MakeCommitment   → CommitmentMade       once per commitment id (again: ``commitment_exists``),
                                            for one year: the current year or the next
    FulfilCommitment → CommitmentFulfilled  a made commitment, once, before its year ends
    RateCommitment   → CommitmentRated      1-5, once (the same rating again is a no-op), after
                                            fulfilment, or once the year has ended (评诺 at the
                                            year's end rates a commitment not kept, too)

Refusals: ``unknown_org``, ``org_life_not_applicable``, ``held_in_future``,
``held_before_establishment``, ``meeting_exists``, ``commitment_exists``,
``commitment_year_invalid``, ``unknown_commitment``, ``commitment_year_over``,
``already_fulfilled``, ``commitment_not_due``, ``already_rated``.
"""
from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from enum import Enum
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from schemas.common import Command, Event
from schemas.party import (
    CommitmentFulfilled, CommitmentMade, CommitmentRated, FulfilCommitment, MakeCommitment, OrgKind, OrgLifeHeld,
    OrgLifeKind, OrgLifeOverdue, RateCommitment, RecordOrgLife,
)

from .life_errors import (
    AlreadyFulfilled, AlreadyRated, CommitmentExists, CommitmentNotDue, CommitmentYearInvalid, CommitmentYearOver,
    HeldBeforeEstablishment, HeldInFuture, MeetingExists, NotFound, OrgLifeNotApplicable,
)

SHANGHAI = timezone(timedelta(hours=8), "Asia/Shanghai")
"""China has kept UTC+08:00 without daylight saving since 1991: the fixed offset is exact."""


# ---------------------------------------------------------------------------------------
# Calendar periods (Asia/Shanghai)
# ---------------------------------------------------------------------------------------


class Every(str, Enum):
    """How often a kind of organisational life is due."""

    MONTH = "month"
    QUARTER = "quarter"


def period_of(at: datetime, every: Every) -> str:
    """The Shanghai month (``2026-11``) or quarter (``2026-Q4``) of ``at``."""
    local = _aware(at).astimezone(SHANGHAI)
    if every is Every.MONTH:
        return f"{local.year:04d}-{local.month:02d}"
    return f"{local.year:04d}-Q{(local.month - 1) // 3 + 1}"


def _start(year: int, month: int) -> datetime:
    return datetime(year, month, 1, tzinfo=SHANGHAI)


def _next(year: int, month: int, every: Every) -> tuple[int, int]:
    month += 1 if every is Every.MONTH else 3
    return (year + 1, month - 12) if month > 12 else (year, month)


def _first_month(at: datetime, every: Every) -> tuple[int, int]:
    """The first period (year, first month) of ``every`` starting at or after ``at``."""
    local = _aware(at).astimezone(SHANGHAI)
    month = local.month if every is Every.MONTH else 3 * ((local.month - 1) // 3) + 1
    if _start(local.year, month) < local:
        return _next(local.year, month, every)
    return local.year, month


def closed_periods(since: datetime, now: datetime, every: Every) -> list[str]:
    """The periods of ``every`` that start at or after ``since`` and have ended by ``now``, oldest first."""
    year, month = _first_month(since, every)
    out = []
    while True:
        ny, nm = _next(year, month, every)
        if _start(ny, nm) > _aware(now):
            return out
        out.append(period_of(_start(year, month), every))
        year, month = ny, nm


def _aware(at: datetime) -> datetime:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("times must be timezone-aware")
    return at


# ---------------------------------------------------------------------------------------
# The frequency table
# ---------------------------------------------------------------------------------------


class Frequency(BaseModel):
    """One row of the table: a kind is due once per ``every`` in the orgs of ``applies_to``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    every: Every
    applies_to: frozenset[OrgKind] = Field(min_length=1)


class OrgLifePolicy(BaseModel):
    """The frequency table of organisational life (三会一课, 主题党日), from ``org_life.yaml``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    frequencies: Mapping[OrgLifeKind, Frequency]

    @field_validator("frequencies")
    @classmethod
    def _every_kind(cls, v: Mapping[OrgLifeKind, Frequency]) -> Mapping[OrgLifeKind, Frequency]:
        missing = set(OrgLifeKind) - set(v)
        if missing:
            raise ValueError(f"the table gives no frequency for {sorted(k.value for k in missing)}")
        return v

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> "OrgLifePolicy":
        """The policy from the parsed YAML file (``{"frequencies": {kind: {every, applies_to}}}``)."""
        return cls.model_validate(data)

    def applies(self, kind: OrgLifeKind, org_kind: OrgKind) -> bool:
        return org_kind in self.frequencies[kind].applies_to

    def kinds_for(self, org_kind: OrgKind) -> tuple[OrgLifeKind, ...]:
        """The kinds of organisational life an org of ``org_kind`` must hold, in table order."""
        return tuple(k for k, f in self.frequencies.items() if org_kind in f.applies_to)


# ---------------------------------------------------------------------------------------
# States and context
# ---------------------------------------------------------------------------------------


class _State(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class OrgRef(_State):
    """What organisational life needs to know of an organisation (from the org tree)."""

    org_id: str
    kind: OrgKind
    established_at: datetime
    area_id: str | None = None


class HeldMeeting(_State):
    """One meeting of organisational life on record."""

    meeting_id: str
    kind: OrgLifeKind
    held_at: datetime
    attendees: tuple[str, ...] = ()
    absentees: tuple[str, ...] = ()
    topic: str = ""


class OrgLifeState(_State):
    """An organisation's life: its meetings, and the (kind, period) pairs already flagged overdue
    (``"theme_day/2026-11"``)."""

    org_id: str
    meetings: tuple[HeldMeeting, ...] = ()
    overdue: tuple[str, ...] = ()

    def meeting(self, meeting_id: str) -> HeldMeeting | None:
        return next((m for m in self.meetings if m.meeting_id == meeting_id), None)


class Commitment(_State):
    """One yearly commitment (承诺) and how it went (践诺, 评诺)."""

    commitment_id: str
    year: int
    text: str
    org_id: str | None = None
    made_at: datetime | None = None
    fulfilled: bool = False
    fulfilled_at: datetime | None = None
    note: str = ""
    rating: int | None = None
    rated_at: datetime | None = None


class CommitmentsState(_State):
    """A member's commitments, all years."""

    member_id: str
    commitments: tuple[Commitment, ...] = ()

    def get(self, commitment_id: str) -> Commitment | None:
        return next((c for c in self.commitments if c.commitment_id == commitment_id), None)


class LifeContext(BaseModel):
    """What an organisational-life or commitment decision needs besides its own state.

    - ``now``: the decision time (events' ``occurred_at``; no meeting after it; the current year);
    - ``org``: the organisation a meeting is recorded for (None: no such org);
    - ``policy``: the frequency table;
    - ``member_org_id``: the org the member belongs to, carried on commitment events.
    """

    model_config = ConfigDict(frozen=True)

    now: AwareDatetime
    org: OrgRef | None = None
    policy: OrgLifePolicy | None = None
    member_org_id: str | None = None


# ---------------------------------------------------------------------------------------
# Organisational life
# ---------------------------------------------------------------------------------------


def decide_org_life(state: OrgLifeState | None, command: Command, ctx: LifeContext) -> list[Event]:
    """The events ``RecordOrgLife`` leads to, or a ``Rejected``."""
    if not isinstance(command, RecordOrgLife):
        raise TypeError(f"not an organisational life command: {type(command).__name__}")
    org = ctx.org
    if org is None or org.org_id != command.org_id:
        raise NotFound("org", command.org_id, "org_id")
    if ctx.policy is None:
        raise TypeError("recording organisational life needs the frequency table (ctx.policy)")
    if not ctx.policy.applies(command.kind, org.kind):
        raise OrgLifeNotApplicable(command.kind.value, org.kind.value)
    if command.held_at > ctx.now:
        raise HeldInFuture(command.held_at.isoformat(), ctx.now.isoformat())
    if command.held_at < org.established_at:
        raise HeldBeforeEstablishment(command.held_at.isoformat(), org.established_at.isoformat())
    known = state.meeting(command.meeting_id) if state is not None else None
    if known is not None:
        same = (known.kind, known.held_at, known.attendees, known.absentees, known.topic) == (
            command.kind, command.held_at, tuple(command.attendees), tuple(command.absentees), command.topic)
        if same:
            return []
        raise MeetingExists(command.meeting_id)
    return [
        OrgLifeHeld(
            org_id=org.org_id, meeting_id=command.meeting_id, kind=command.kind, held_at=command.held_at,
            attendees=tuple(command.attendees), absentees=tuple(command.absentees), area_id=org.area_id,
            topic=command.topic, occurred_at=ctx.now,
            period=period_of(command.held_at, ctx.policy.frequencies[command.kind].every),
        )
    ]


def org_life_overdue(org: OrgRef, state: OrgLifeState | None, policy: OrgLifePolicy, now: datetime) -> list[Event]:
    """The timer: one ``OrgLifeOverdue`` for each kind the org must hold and each closed period
    (from its establishment on) without a meeting of that kind, unless flagged already. Evolving
    the state with what it returns makes a second run at the same or a later time return only
    what closed since."""
    flagged = set(state.overdue) if state is not None else set()
    events: list[Event] = []
    for kind in policy.kinds_for(org.kind):
        every = policy.frequencies[kind].every
        # the periods it was held in, found once: asked period by period, each period since the
        # establishment read every meeting, which grew as the square of the years
        held = {period_of(m.held_at, every) for m in state.meetings if m.kind is kind} if state is not None else set()
        for period in closed_periods(org.established_at, now, every):
            key = f"{kind.value}/{period}"
            if key in flagged or period in held:
                continue
            events.append(OrgLifeOverdue(org_id=org.org_id, kind=kind, period=period, area_id=org.area_id,
                                         occurred_at=now))
    return events


def evolve_org_life(state: OrgLifeState | None, event: Event) -> OrgLifeState:
    """The organisation's life after ``event``."""
    if isinstance(event, OrgLifeHeld):
        state = state or OrgLifeState(org_id=event.org_id)
        if state.meeting(event.meeting_id) is not None:
            return state
        held = HeldMeeting(meeting_id=event.meeting_id, kind=event.kind, held_at=event.held_at,
                           attendees=tuple(event.attendees), absentees=tuple(event.absentees), topic=event.topic)
        return state.model_copy(update=dict(meetings=(*state.meetings, held)))
    if isinstance(event, OrgLifeOverdue):
        state = state or OrgLifeState(org_id=event.org_id)
        key = f"{event.kind.value}/{event.period}"
        if key in state.overdue:
            return state
        return state.model_copy(update=dict(overdue=(*state.overdue, key)))
    raise TypeError(f"not an organisational life event: {type(event).__name__}")


# ---------------------------------------------------------------------------------------
# Commitments (承诺、践诺、评诺)
# ---------------------------------------------------------------------------------------


def _year_over(year: int, now: datetime) -> bool:
    return _aware(now) >= datetime(year + 1, 1, 1, tzinfo=SHANGHAI)


def decide_commitment(state: CommitmentsState | None, command: Command, ctx: LifeContext) -> list[Event]:
    """The events a commitment command leads to, or a ``Rejected``."""
    if isinstance(command, MakeCommitment):
        return _make(state, command, ctx)
    if not isinstance(command, (FulfilCommitment, RateCommitment)):
        raise TypeError(f"not a commitment command: {type(command).__name__}")
    c = state.get(command.commitment_id) if state is not None else None
    if c is None:
        raise NotFound("commitment", command.commitment_id, "commitment_id")
    if isinstance(command, FulfilCommitment):
        if c.fulfilled:
            raise AlreadyFulfilled(c.commitment_id)
        if _year_over(c.year, ctx.now):
            raise CommitmentYearOver(c.commitment_id, c.year)
        return [CommitmentFulfilled(member_id=command.member_id, commitment_id=c.commitment_id, year=c.year,
                                    note=command.note, org_id=c.org_id, occurred_at=ctx.now)]
    if c.rating is not None:
        if c.rating == command.rating:
            return []
        raise AlreadyRated("commitment", c.commitment_id, c.rating)
    if not c.fulfilled and not _year_over(c.year, ctx.now):
        raise CommitmentNotDue(c.commitment_id, c.year)
    return [CommitmentRated(member_id=command.member_id, commitment_id=c.commitment_id, year=c.year,
                            rating=command.rating, org_id=c.org_id, occurred_at=ctx.now)]


def _make(state: CommitmentsState | None, cmd: MakeCommitment, ctx: LifeContext) -> list[Event]:
    known = state.get(cmd.commitment_id) if state is not None else None
    if known is not None:
        # A second command for a commitment already made gets an answer, never silence: the
        # sender (who may have retried after losing the first answer) learns it is made.
        raise CommitmentExists(cmd.commitment_id, same=(known.year, known.text) == (cmd.year, cmd.text))
    current = ctx.now.astimezone(SHANGHAI).year
    if cmd.year not in (current, current + 1):
        raise CommitmentYearInvalid(cmd.year, current)
    return [CommitmentMade(member_id=cmd.member_id, commitment_id=cmd.commitment_id, year=cmd.year, text=cmd.text,
                           org_id=ctx.member_org_id, occurred_at=ctx.now)]


def evolve_commitment(state: CommitmentsState | None, event: Event) -> CommitmentsState:
    """The member's commitments after ``event``."""
    if isinstance(event, CommitmentMade):
        state = state or CommitmentsState(member_id=event.member_id)
        if state.get(event.commitment_id) is not None:
            return state
        made = Commitment(commitment_id=event.commitment_id, year=event.year, text=event.text, org_id=event.org_id,
                          made_at=event.occurred_at)
        return state.model_copy(update=dict(commitments=(*state.commitments, made)))
    if isinstance(event, (CommitmentFulfilled, CommitmentRated)):
        c = state.get(event.commitment_id) if state is not None else None
        if state is None or c is None:
            raise ValueError(f"{event.TYPE} for commitment {event.commitment_id!r} that was never made")
        if isinstance(event, CommitmentFulfilled):
            c = c.model_copy(update=dict(fulfilled=True, fulfilled_at=event.occurred_at, note=event.note))
        else:
            c = c.model_copy(update=dict(rating=event.rating, rated_at=event.occurred_at))
        return state.model_copy(update=dict(
            commitments=tuple(c if x.commitment_id == c.commitment_id else x for x in state.commitments)))
    raise TypeError(f"not a commitment event: {type(event).__name__}")
