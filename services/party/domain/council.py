"""The regional council (区域化党建): a street's 大工委 or a community's 大党委, its composition, its
joint meetings (联席会议) and their resolutions (议定事项). Pure: no I/O, no clock.

- :class:`CouncilState` — a council: the compositions in force over time, a proposal in its
  公示, the meetings held and the resolutions adopted; frozen, and round-trips through jsonb
  (``model_dump(mode="json")`` / ``model_validate``).
- :func:`decide_council` — ``party.council.propose.v1``, ``party.meeting.hold.v1`` and
  ``party.resolution.complete.v1`` → events, or a named refusal (:mod:`.council_errors`).
- :func:`check_council` — the timer's rule: a proposal takes effect when its 公示 ends, a
  quarter without a joint meeting is reported overdue, a resolution past its deadline is
  supervised (督办); each once. :func:`next_check_at` says when a council next has something
  to say.
- :func:`evolve_council` — the state after an event.

The rules:

- **Composition.** A street council (大工委) has 9–15 members, a community council (大党委) 7–11.
  Each person holds one seat; exactly one seat is the secretary (书记), the others deputies
  (副书记) or members (委员). A part-time member (兼职委员) comes from a resident unit, which the
  seat names; part-time members are at least a third of the members (兼职委员不少于委员总数的1/3).
  A proposal is published (公示) for 5 days: ``effective_at`` = now + 5 days.
- **换届.** A council may be re-composed by a new proposal, with the same level and area. The
  composition in force stays in force until the new one's 公示 ends. A new proposal during a
  公示 replaces the proposal published (its 公示 starts again); the same proposal again changes
  nothing.
- **Taking effect.** At ``effective_at`` the timer makes the proposal effective
  (``party.council.effective.v1``, ``occurred_at`` = ``effective_at``: the instant the
  composition took effect, however late the timer came round). Until the timer has done so
  the composition in force is the previous one: the application runs :func:`check_council`
  before deciding a command on the same state.
- **Meetings.** A meeting is recorded once it was held (``held_at`` not after now), once per
  ``meeting_id``, against the composition in force at ``held_at`` (none: refused). Its
  attendees and absentees are exactly that composition's members. It has a quorum when more
  than half the members attended. A meeting without a quorum is recorded (``quorum`` false)
  but adopts nothing: a command that gives it resolutions is refused (``no_quorum``) rather than
  silently dropping them, so the console knows that they were not adopted. Each resolution
  has a new id and a deadline after the meeting. The resolutions adopted at earlier meetings
  and still open are reported to the meeting (``open_resolutions``).
- **Quarters.** Joint meetings are held at least quarterly (每季度召开1次), in Asia/Shanghai
  quarters. Each whole quarter from the council's first taking effect that ends without a
  meeting with a quorum is reported overdue once (``party.meeting.overdue.v1``); a meeting
  without a quorum could not be convened under the rule of more than half, so it does not
  count. A re-composition does not restart the count.
- **Resolutions.** The owner unit completes a resolution once; ``on_time`` when at or before
  ``due_at``. A resolution still open after ``due_at`` is supervised (督办) once
  (``party.resolution.overdue.v1``); one completed late before the timer came round is not
  (its ``on_time`` false says it).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from pydantic import BaseModel, ConfigDict, Field

from schemas.common import Command, Event
from schemas.party import (
    CompleteResolution, CouncilEffective, CouncilLevel, CouncilProposed, CouncilSeat, HoldMeeting, MeetingHeld,
    MeetingOverdue, ProposeCouncil, ResolutionCompleted, ResolutionItem, ResolutionOverdue,
)
from services.kit.clock import SHANGHAI

from .council_errors import (
    CouncilMismatch, CouncilNotEffective, CouncilNotFound, CouncilSize, DueBeforeMeeting, DuplicateSeat,
    HeldInFuture, MeetingExists, MemberUnaccounted, NoQuorum, NotACouncilMember, PartTimeBelowThird,
    PartTimeWithoutUnit, ResolutionAlreadyCompleted, ResolutionExists, ResolutionNotFound, SecretaryCount,
    UnknownSeatRole,
)

PUBLICATION = timedelta(days=5)
"""公示: how long a proposed composition is published before it takes effect."""

COUNCIL_SIZES: dict[CouncilLevel, tuple[int, int]] = {
    CouncilLevel.STREET: (9, 15),  # 大工委
    CouncilLevel.COMMUNITY: (7, 11),  # 大党委
}
"""The number of members a council has at each level, inclusive."""

SECRETARY, DEPUTY, MEMBER = "secretary", "deputy", "member"
ROLES = frozenset({SECRETARY, DEPUTY, MEMBER})

CouncilEvent = CouncilProposed | CouncilEffective | MeetingHeld | MeetingOverdue | ResolutionCompleted | ResolutionOverdue


# ---------------------------------------------------------------------------------------
# Quarters (Asia/Shanghai)
# ---------------------------------------------------------------------------------------


def quarter_start(at: datetime) -> datetime:
    """First instant (Asia/Shanghai) of the quarter ``at`` falls in."""
    local = at.astimezone(SHANGHAI)
    return datetime(local.year, 3 * ((local.month - 1) // 3) + 1, 1, tzinfo=SHANGHAI)


def next_quarter(start: datetime) -> datetime:
    """First instant of the quarter after the one beginning at ``start``."""
    local = start.astimezone(SHANGHAI)
    y, m = (local.year + 1, 1) if local.month >= 10 else (local.year, local.month + 3)
    return datetime(y, m, 1, tzinfo=SHANGHAI)


def quarter_label(at: datetime) -> str:
    """``YYYY-Qn`` of the Asia/Shanghai quarter ``at`` falls in."""
    local = at.astimezone(SHANGHAI)
    return f"{local.year:04d}-Q{(local.month - 1) // 3 + 1}"


def first_whole_quarter(at: datetime) -> datetime:
    """Start of the first quarter that lies wholly at or after ``at``."""
    start = quarter_start(at)
    return start if start == at else next_quarter(start)


# ---------------------------------------------------------------------------------------
# State
# ---------------------------------------------------------------------------------------


class Composition(BaseModel):
    """A council's composition: its seats, and when it takes (or took) effect."""

    model_config = ConfigDict(frozen=True)

    seats: tuple[CouncilSeat, ...] = Field(min_length=1)
    proposed_at: datetime
    effective_at: datetime
    proposed_by: str | None = None

    @property
    def members(self) -> tuple[str, ...]:
        return tuple(s.person_id for s in self.seats)

    @property
    def part_time_members(self) -> int:
        return sum(1 for s in self.seats if s.part_time and s.unit_id is not None)


class Resolution(BaseModel):
    """A resolution (议定事项) adopted at a meeting, and what became of it."""

    model_config = ConfigDict(frozen=True)

    resolution_id: str
    title: str
    owner_unit_id: str
    due_at: datetime
    meeting_id: str
    adopted_at: datetime  # the meeting's held_at
    completed_at: datetime | None = None
    on_time: bool | None = None  # set with completed_at
    overdue: bool = False  # supervised (督办) by the timer

    @property
    def is_open(self) -> bool:
        return self.completed_at is None

    @property
    def item(self) -> ResolutionItem:
        return ResolutionItem(resolution_id=self.resolution_id, title=self.title, owner_unit_id=self.owner_unit_id,
                              due_at=self.due_at)


class CouncilState(BaseModel):
    """A regional council: its compositions in force (oldest first; the last one is in force now),
    a proposal in its 公示, its meetings and resolutions, and the quarters settled."""

    model_config = ConfigDict(frozen=True)

    council_id: str
    version: int = Field(default=0, ge=0, description="number of events applied")
    level: CouncilLevel
    area_id: str
    compositions: tuple[Composition, ...] = ()
    pending: Composition | None = None
    meetings: tuple[str, ...] = ()
    met_quarters: tuple[str, ...] = Field((), description="quarters with a meeting that had a quorum")
    overdue_quarters: tuple[str, ...] = Field((), description="quarters reported overdue")
    resolutions: tuple[Resolution, ...] = ()

    @property
    def effective(self) -> bool:
        return bool(self.compositions)

    @property
    def current(self) -> Composition | None:
        """The composition in force now (None: the first 公示 has not ended)."""
        return self.compositions[-1] if self.compositions else None

    @property
    def first_effective_at(self) -> datetime | None:
        return self.compositions[0].effective_at if self.compositions else None

    def composition_at(self, at: datetime) -> Composition | None:
        """The composition in force at ``at`` (None: none yet)."""
        in_force = [c for c in self.compositions if c.effective_at <= at]
        return in_force[-1] if in_force else None

    def resolution(self, resolution_id: str) -> Resolution | None:
        return next((r for r in self.resolutions if r.resolution_id == resolution_id), None)

    def due_quarters(self, now: datetime) -> list[str]:
        """The whole quarters that ended by ``now`` since the council first took effect, without
        a meeting with a quorum and not yet reported overdue."""
        if self.first_effective_at is None:
            return []
        found, start = [], first_whole_quarter(self.first_effective_at)
        while (end := next_quarter(start)) <= now:
            label = quarter_label(start)
            if label not in self.met_quarters and label not in self.overdue_quarters:
                found.append(label)
            start = end
        return found


# ---------------------------------------------------------------------------------------
# decide
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CouncilContext:
    """What :func:`decide_council` needs from outside the council: the current time (timezone-aware)."""

    now: datetime

    def __post_init__(self) -> None:
        if self.now.tzinfo is None:
            raise ValueError("CouncilContext.now must be timezone-aware")


def decide_council(state: CouncilState | None, command: Command, ctx: CouncilContext) -> list[CouncilEvent]:
    """The events ``command`` leads to for the council in ``state`` (None: never proposed), or a
    :class:`services.kit.errors.Rejected` with a named reason."""
    if isinstance(command, ProposeCouncil):
        return _propose(state, command, ctx)
    if not isinstance(command, (HoldMeeting, CompleteResolution)):
        raise TypeError(f"not a council command: {type(command).__name__}")
    if state is None:
        raise CouncilNotFound(command.council_id)
    if state.council_id != command.council_id:
        raise ValueError(f"state of council {state.council_id!r} given for a command on {command.council_id!r}")
    if isinstance(command, HoldMeeting):
        return _hold(state, command, ctx)
    return _complete(state, command, ctx)


def check_composition(level: CouncilLevel, seats: tuple[CouncilSeat, ...]) -> None:
    """Refuse a composition that breaks a rule: size for the level, each person once, known roles,
    exactly one secretary, part-time members from a unit and at least a third of the members."""
    low, high = COUNCIL_SIZES[level]
    if not low <= len(seats) <= high:
        raise CouncilSize(level.value, len(seats), low, high)
    seen: set[str] = set()
    for s in seats:
        if s.person_id in seen:
            raise DuplicateSeat(s.person_id)
        seen.add(s.person_id)
        if s.role not in ROLES:
            raise UnknownSeatRole(s.role)
        if s.part_time and s.unit_id is None:
            raise PartTimeWithoutUnit(s.person_id)
    secretaries = sum(1 for s in seats if s.role == SECRETARY)
    if secretaries != 1:
        raise SecretaryCount(secretaries)
    part_time = sum(1 for s in seats if s.part_time and s.unit_id is not None)
    if 3 * part_time < len(seats):
        raise PartTimeBelowThird(part_time, len(seats))


def _propose(state: CouncilState | None, cmd: ProposeCouncil, ctx: CouncilContext) -> list[CouncilEvent]:
    if state is not None:
        if state.council_id != cmd.council_id:
            raise ValueError(f"state of council {state.council_id!r} given for a command on {cmd.council_id!r}")
        if state.level != cmd.level:
            raise CouncilMismatch("level", state.level.value, cmd.level.value)
        if state.area_id != cmd.area_id:
            raise CouncilMismatch("area_id", state.area_id, cmd.area_id)
    check_composition(cmd.level, cmd.seats)
    if state is not None and state.pending is not None and state.pending.seats == cmd.seats:
        return []  # the proposal in its 公示 again: nothing new
    return [CouncilProposed(council_id=cmd.council_id, level=cmd.level, area_id=cmd.area_id, seats=cmd.seats,
                            effective_at=ctx.now + PUBLICATION, proposed_by=cmd.proposed_by, occurred_at=ctx.now)]


def _hold(state: CouncilState, cmd: HoldMeeting, ctx: CouncilContext) -> list[CouncilEvent]:
    if cmd.meeting_id in state.meetings:
        raise MeetingExists(cmd.meeting_id)
    if cmd.held_at > ctx.now:
        raise HeldInFuture(cmd.held_at)
    composition = state.composition_at(cmd.held_at)
    if composition is None:
        raise CouncilNotEffective(state.council_id, cmd.held_at)
    members = set(composition.members)
    for field, people in (("attendees", cmd.attendees), ("absentees", cmd.absentees)):
        for p in people:
            if p not in members:
                raise NotACouncilMember(p, field)
    listed = set(cmd.attendees) | set(cmd.absentees)
    for p in composition.members:
        if p not in listed:
            raise MemberUnaccounted(p)
    attended = len(set(cmd.attendees))
    quorum = 2 * attended > len(members)
    if cmd.resolutions and not quorum:
        raise NoQuorum(attended, len(members))
    ids: set[str] = set()
    for r in cmd.resolutions:
        if r.resolution_id in ids or state.resolution(r.resolution_id) is not None:
            raise ResolutionExists(r.resolution_id)
        ids.add(r.resolution_id)
        if r.due_at <= cmd.held_at:
            raise DueBeforeMeeting(r.resolution_id, r.due_at)
    reported = tuple(r.item for r in state.resolutions if r.is_open and r.adopted_at < cmd.held_at)
    return [MeetingHeld(council_id=state.council_id, meeting_id=cmd.meeting_id, held_at=cmd.held_at,
                        attendees=cmd.attendees, absentees=cmd.absentees, quorum=quorum, area_id=state.area_id,
                        resolutions=cmd.resolutions, open_resolutions=reported, occurred_at=ctx.now)]


def _complete(state: CouncilState, cmd: CompleteResolution, ctx: CouncilContext) -> list[CouncilEvent]:
    r = state.resolution(cmd.resolution_id)
    if r is None:
        raise ResolutionNotFound(cmd.resolution_id)
    if not r.is_open:
        raise ResolutionAlreadyCompleted(cmd.resolution_id)
    return [ResolutionCompleted(council_id=state.council_id, resolution_id=r.resolution_id,
                                owner_unit_id=r.owner_unit_id, on_time=ctx.now <= r.due_at, occurred_at=ctx.now)]


# ---------------------------------------------------------------------------------------
# The timer
# ---------------------------------------------------------------------------------------


def check_council(state: CouncilState | None, now: datetime) -> list[CouncilEvent]:
    """What the passing of time makes of a council at ``now``, in this order:

    - ``party.council.effective.v1`` when the proposal's 公示 has ended (``effective_at`` ≤ now);
    - ``party.meeting.overdue.v1`` for each whole quarter since the council first took effect
      that ended without a meeting with a quorum, oldest first;
    - ``party.resolution.overdue.v1`` for each resolution still open after its ``due_at``.

    Once-only: applying the returned events marks what they report (the composition in force,
    ``overdue_quarters``, ``Resolution.overdue``), so a second call — or one after a restart, from
    the stored state — returns nothing for them. Call it from a timer over the councils whose
    :func:`next_check_at` has come, and before deciding a command on the same state.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    if state is None:
        return []
    events: list[CouncilEvent] = []
    if state.pending is not None and state.pending.effective_at <= now:
        effective = CouncilEffective(council_id=state.council_id, level=state.level, area_id=state.area_id,
                                     members=len(state.pending.seats),
                                     part_time_members=state.pending.part_time_members,
                                     occurred_at=state.pending.effective_at)
        events.append(effective)
        state = evolve_council(state, effective)
    events += [MeetingOverdue(council_id=state.council_id, quarter=q, area_id=state.area_id, occurred_at=now)
               for q in state.due_quarters(now)]
    events += [ResolutionOverdue(council_id=state.council_id, resolution_id=r.resolution_id,
                                 owner_unit_id=r.owner_unit_id, due_at=r.due_at, occurred_at=now)
               for r in state.resolutions if r.is_open and not r.overdue and now > r.due_at]
    return events


def next_check_at(state: CouncilState | None) -> datetime | None:
    """When :func:`check_council` next has something to say about the council (None: nothing
    until a command changes it): the end of its 公示, the end of the first quarter not yet
    settled, or the earliest deadline of an open resolution not yet supervised."""
    if state is None:
        return None
    times: list[datetime] = []
    if state.pending is not None:
        times.append(state.pending.effective_at)
    if state.first_effective_at is not None:
        start = first_whole_quarter(state.first_effective_at)
        while quarter_label(start) in state.met_quarters or quarter_label(start) in state.overdue_quarters:
            start = next_quarter(start)
        times.append(next_quarter(start))
    times += [r.due_at for r in state.resolutions if r.is_open and not r.overdue]
    return min(times, default=None)


# ---------------------------------------------------------------------------------------
# evolve
# ---------------------------------------------------------------------------------------


def evolve_council(state: CouncilState | None, event: CouncilEvent) -> CouncilState:
    """The council after ``event`` (None: before its first proposal). Events are facts: never
    refuses, but raises ``ValueError`` for an event that cannot belong to ``state`` (a caller's bug)."""
    if isinstance(event, CouncilProposed):
        pending = Composition(seats=event.seats, proposed_at=_at(event), effective_at=event.effective_at,
                              proposed_by=event.proposed_by)
        if state is None:
            return CouncilState(council_id=event.council_id, version=1, level=event.level, area_id=event.area_id,
                                pending=pending)
        _same_council(state, event)
        return state.model_copy(update={"pending": pending, "level": event.level, "area_id": event.area_id,
                                        "version": state.version + 1})
    if state is None:
        raise ValueError(f"{event.TYPE} for council {event.council_id!r}, which has no state")
    _same_council(state, event)
    if isinstance(event, CouncilEffective):
        if state.pending is None:
            raise ValueError(f"{event.TYPE}: council {state.council_id!r} has no proposal in its 公示")
        update = {"compositions": (*state.compositions, state.pending), "pending": None}
    elif isinstance(event, MeetingHeld):
        adopted = tuple(Resolution(resolution_id=r.resolution_id, title=r.title, owner_unit_id=r.owner_unit_id,
                                   due_at=r.due_at, meeting_id=event.meeting_id, adopted_at=event.held_at)
                        for r in event.resolutions)
        update = {"meetings": (*state.meetings, event.meeting_id), "resolutions": (*state.resolutions, *adopted)}
        label = quarter_label(event.held_at)
        if event.quorum and label not in state.met_quarters:
            update["met_quarters"] = (*state.met_quarters, label)
    elif isinstance(event, MeetingOverdue):
        update = {"overdue_quarters": tuple(dict.fromkeys((*state.overdue_quarters, event.quarter)))}
    elif isinstance(event, (ResolutionCompleted, ResolutionOverdue)):
        r = state.resolution(event.resolution_id)
        if r is None:
            raise ValueError(f"{event.TYPE}: council {state.council_id!r} has no resolution {event.resolution_id!r}")
        changed = (r.model_copy(update={"completed_at": _at(event), "on_time": event.on_time})
                   if isinstance(event, ResolutionCompleted) else r.model_copy(update={"overdue": True}))
        update = {"resolutions": tuple(changed if x.resolution_id == r.resolution_id else x
                                       for x in state.resolutions)}
    else:
        raise TypeError(f"no evolve rule for {type(event).__name__}")
    return state.model_copy(update={**update, "version": state.version + 1})


def _same_council(state: CouncilState, event: Event) -> None:
    if state.council_id != event.council_id:
        raise ValueError(f"{event.TYPE} for council {event.council_id!r} applied to council {state.council_id!r}")


def _at(event: Event) -> datetime:
    if event.occurred_at is None:
        raise ValueError(f"{event.TYPE} without occurred_at")
    return event.occurred_at
