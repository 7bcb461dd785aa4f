"""The member half of 双报到, and 双重管理 feedback to the member's unit.

In this platform a member's registration with orders (``orders.member.registered.v1``: member,
residential community, work unit, time) *is* their report to the community where they live.
What the party service follows up, per member (keyed by ``member_id``)::

    MemberRegistered (orders)  → on a later registration with another community:
                                 MemberReportOverdue(moved=true), once per move
                                 (:func:`on_member_registered`; ``community_id`` is the new
                                 community, ``from_community_id`` the one left)
    MemberMoved (orders)       → MemberReportOverdue(moved=true, due_at = the move's ``report_by``),
                                 once per move (:func:`on_member_moved`); the follow-up starts again
                                 in the new community, with the move's deadline as its window's end
    (timer)                    → MemberReportOverdue(moved=false), once per registration, when the
                                 report window (default 30 days, configurable) has passed since the
                                 registration and the member's unit has still not reported
                                 (单位报到: no ``UnitReported``) — :func:`member_report_overdue`
    UnitReported (own), or a   → the follow-up is settled when its member's unit has reported: no
    registration or move to a    flag is due for the registration, and the timer need not take it up
    unit that has reported       (no event: the report is one) — :func:`settle_report`
    (quarterly timer)          → MemberFeedback, once per member and quarter, from the quarter's
                                 tallies of the member's orders (:func:`quarterly_feedback`)

A new registration (a move, or the member's unit changing) starts a new window; a registration
or move older than the one on record changes nothing. The app evolves the follow-up with the registration
first, then with the flags it led to. Nothing here is a command: there are no refusals.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta, timezone

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from schemas.common import Event
from schemas.orders import MemberMoved, MemberRegistered
from schemas.party import MemberFeedback, MemberReportOverdue

SHANGHAI = timezone(timedelta(hours=8), "Asia/Shanghai")

DEFAULT_REPORT_WINDOW = timedelta(days=30)
"""How long after a registration the member's unit has to have reported, unless configured otherwise."""


class MemberFollowUp(BaseModel):
    """A registered member as the party service follows them: the current registration, whether
    it was flagged (overdue, moved), and the quarters whose feedback was given."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    member_id: str
    community_id: str
    unit_id: str
    registered_at: datetime
    report_due_at: datetime | None = Field(None, description="a move's deadline (else the window after registered_at)")
    previous_communities: tuple[str, ...] = ()
    overdue_flagged: bool = False
    move_flagged: bool = False
    report_settled: bool = Field(False, description="the member's unit has reported (单位报到): nothing to flag for "
                                                    "the current registration, the report timer need not take it up")
    feedback_quarters: tuple[str, ...] = ()


class MemberContext(BaseModel):
    """What the member follow-up needs besides the member's own state.

    - ``now``: the time of the check (events' ``occurred_at``; a registration without ``at``);
    - ``report_window``: how long a unit has to report after its member registered;
    - ``reported_units``: the units that have reported (``UnitReported``), for the timer.
    """

    model_config = ConfigDict(frozen=True)

    now: AwareDatetime
    report_window: timedelta = DEFAULT_REPORT_WINDOW
    reported_units: frozenset[str] = frozenset()

    @field_validator("report_window")
    @classmethod
    def _window_is_positive(cls, v: timedelta) -> timedelta:
        if v <= timedelta(0):
            raise ValueError("report_window must be positive")
        return v


def _registered_at(event: MemberRegistered, ctx: MemberContext) -> datetime:
    return event.at or ctx.now


def on_member_registered(state: MemberFollowUp | None, event: MemberRegistered, ctx: MemberContext) -> list[Event]:
    """The events a registration from orders leads to: a move flag when the member was registered
    with another community before (and this registration is the later one), else nothing."""
    if state is None or state.community_id == event.community_id:
        return []
    if _registered_at(event, ctx) < state.registered_at:
        return []  # an older registration delivered late: the one on record stands
    return [
        MemberReportOverdue(
            member_id=event.member_id, unit_id=event.unit_id, community_id=event.community_id, moved=True,
            from_community_id=state.community_id, occurred_at=ctx.now,
        )
    ]


def on_member_moved(state: MemberFollowUp | None, event: MemberMoved, ctx: MemberContext) -> list[Event]:
    """The events a move recorded by orders leads to: the move flag (with the new deadline), once;
    nothing for a move older than what is on record, or one already applied."""
    if state is not None and (event.occurred_at < state.registered_at
                              or (state.community_id == event.community_id and state.move_flagged)):
        return []
    return [
        MemberReportOverdue(
            member_id=event.member_id, unit_id=event.unit_id, community_id=event.community_id, due_at=event.report_by,
            moved=True, from_community_id=event.from_community_id, occurred_at=ctx.now,
        )
    ]


def member_report_overdue(state: MemberFollowUp | None, ctx: MemberContext) -> list[Event]:
    """The timer: ``MemberReportOverdue(moved=false)`` once the window has passed since the current
    registration and the member's unit has not reported; nothing if flagged already."""
    if state is None or state.overdue_flagged:
        return []
    due_at = state.report_due_at or state.registered_at + ctx.report_window
    if ctx.now < due_at or state.unit_id in ctx.reported_units:
        return []
    return [
        MemberReportOverdue(
            member_id=state.member_id, unit_id=state.unit_id, community_id=state.community_id, due_at=due_at,
            moved=False, occurred_at=ctx.now,
        )
    ]


def settle_report(state: MemberFollowUp | None, ctx: MemberContext) -> MemberFollowUp | None:
    """The member's unit has reported (``ctx.reported_units``): the current registration needs no
    flag, and the follow-up is settled (until a new registration or move starts another window),
    so that the timer does not take it up: it takes the oldest due follow-ups first, and those it
    neither flags nor leaves would come first in every round, for ever. Done where the report is
    learnt (the unit's report, a registration or move to a unit that has reported), so that the
    follow-up is a function of those messages. None: nothing to settle (flagged already, settled,
    or the unit has not reported)."""
    if state is None or state.overdue_flagged or state.report_settled or state.unit_id not in ctx.reported_units:
        return None
    return state.model_copy(update=dict(report_settled=True))


def evolve_follow_up(state: MemberFollowUp | None, event: Event, now: datetime | None = None) -> MemberFollowUp:
    """The follow-up after ``event``: a registration from orders (``now`` stands in for its ``at``
    when it has none), or the party service's own flags and feedback."""
    if isinstance(event, MemberRegistered):
        at = event.at or now
        if at is None:
            raise ValueError("a registration without a time needs ``now``")
        if state is None:
            return MemberFollowUp(member_id=event.member_id, community_id=event.community_id, unit_id=event.unit_id,
                                  registered_at=at)
        if (state.community_id, state.unit_id) == (event.community_id, event.unit_id) or at < state.registered_at:
            return state
        previous = state.previous_communities
        if state.community_id != event.community_id:
            previous = (*previous, state.community_id)
        return state.model_copy(update=dict(
            community_id=event.community_id, unit_id=event.unit_id, registered_at=at, previous_communities=previous,
            report_due_at=None, overdue_flagged=False, move_flagged=False, report_settled=False,
        ))
    if isinstance(event, MemberMoved):
        if state is None:  # the registration was never seen here: follow the member from the move
            return MemberFollowUp(member_id=event.member_id, community_id=event.community_id, unit_id=event.unit_id,
                                  registered_at=event.occurred_at, report_due_at=event.report_by,
                                  previous_communities=(event.from_community_id,))
        if event.occurred_at < state.registered_at or state.community_id == event.community_id:
            return state
        return state.model_copy(update=dict(
            community_id=event.community_id, unit_id=event.unit_id, registered_at=event.occurred_at,
            report_due_at=event.report_by, previous_communities=(*state.previous_communities, state.community_id),
            overdue_flagged=False, move_flagged=False, report_settled=False,
        ))
    if state is None:
        raise ValueError(f"{event.TYPE} for member {getattr(event, 'member_id', '?')!r} who never registered")
    if isinstance(event, MemberReportOverdue):
        return state.model_copy(update=dict(move_flagged=True) if event.moved else dict(overdue_flagged=True))
    if isinstance(event, MemberFeedback):
        if event.quarter in state.feedback_quarters:
            return state
        return state.model_copy(update=dict(feedback_quarters=(*state.feedback_quarters, event.quarter)))
    raise TypeError(f"not a member follow-up event: {type(event).__name__}")


# ---------------------------------------------------------------------------------------
# Quarterly feedback (双重管理)
# ---------------------------------------------------------------------------------------


class OrderTally(BaseModel):
    """A member's orders in a quarter, as the app counts them from ``orders.events.v1``:
    orders completed, orders passed at 考单, and the sum and number of their ratings."""

    model_config = ConfigDict(frozen=True)

    member_id: str
    orders_completed: int = Field(0, ge=0)
    orders_passed: int = Field(0, ge=0)
    rating_sum: int = Field(0, ge=0)
    ratings: int = Field(0, ge=0)


def quarter_bounds(quarter: str) -> tuple[datetime, datetime]:
    """``"2026-Q4"`` → its first instant and the first instant after it, in Asia/Shanghai."""
    year, q = int(quarter[:4]), int(quarter[-1])
    start = datetime(year, 3 * q - 2, 1, tzinfo=SHANGHAI)
    end = datetime(year + 1, 1, 1, tzinfo=SHANGHAI) if q == 4 else datetime(year, 3 * q + 1, 1, tzinfo=SHANGHAI)
    return start, end


def quarterly_feedback(quarter: str, members: Iterable[MemberFollowUp], tallies: Mapping[str, OrderTally],
                       now: datetime) -> list[Event]:
    """One ``MemberFeedback`` for each member registered before the quarter's end who has none for
    it yet, with the quarter's tallies (zeros for a member who served no order). Nothing before
    the quarter has ended."""
    start, end = quarter_bounds(quarter)
    if now < end:
        return []
    events: list[Event] = []
    for m in members:
        if m.registered_at >= end or quarter in m.feedback_quarters:
            continue
        t = tallies.get(m.member_id) or OrderTally(member_id=m.member_id)
        average = round(t.rating_sum / t.ratings, 2) if t.ratings else None
        events.append(MemberFeedback(
            member_id=m.member_id, unit_id=m.unit_id, community_id=m.community_id, quarter=quarter,
            orders_completed=t.orders_completed, orders_passed=t.orders_passed, average_rating=average,
            occurred_at=now,
        ))
    return events
