"""The member half of 双报到 (overdue units, moves) and the quarterly 双重管理 feedback."""
from __future__ import annotations

from datetime import datetime, timedelta

from hypothesis import given, settings, strategies as st

from party_life_builders import COMMUNITY, CST, OTHER_COMMUNITY, T0, at
from schemas.orders import MemberMoved, MemberRegistered
from schemas.party import MemberFeedback, MemberReportOverdue
from services.party.domain.members import (
    DEFAULT_REPORT_WINDOW, MemberContext, MemberFollowUp, OrderTally, evolve_follow_up, member_report_overdue,
    on_member_moved, on_member_registered, quarterly_feedback, settle_report,
)


def ctx(days: float = 0, **kw) -> MemberContext:
    return MemberContext(now=at(days), **kw)


def registered(community: str = COMMUNITY, unit: str = "unit-1", days: float = 0, member: str = "m1") -> MemberRegistered:
    return MemberRegistered(member_id=member, community_id=community, unit_id=unit, at=at(days))


def receive(state, reg: MemberRegistered, c: MemberContext):
    """What the app does with a registration from orders: flags, then evolve (registration first)."""
    events = on_member_registered(state, reg, c)
    state = evolve_follow_up(state, reg, c.now)
    for e in events:
        state = evolve_follow_up(state, e)
    return state, events


def follow_up(**kw) -> MemberFollowUp:
    return receive(None, registered(**kw), ctx())[0]


def test_the_default_window_is_30_days():
    assert DEFAULT_REPORT_WINDOW == timedelta(days=30) == ctx().report_window


def test_a_first_registration_is_followed_up_without_a_flag():
    state, events = receive(None, registered(), ctx())
    assert events == []
    assert (state.community_id, state.unit_id, state.registered_at) == (COMMUNITY, "unit-1", T0)
    assert MemberFollowUp.model_validate(state.model_dump(mode="json")) == state


def test_a_member_whose_unit_has_not_reported_is_overdue_after_the_window():
    state = follow_up()
    assert member_report_overdue(state, ctx(29.9)) == []
    (e,) = member_report_overdue(state, ctx(30))
    assert isinstance(e, MemberReportOverdue) and e.aggregate_id == "m1"
    assert (e.unit_id, e.community_id, e.due_at, e.moved) == ("unit-1", COMMUNITY, at(30), False)


def test_a_member_whose_unit_reported_is_not_overdue():
    assert member_report_overdue(follow_up(), ctx(40, reported_units=frozenset({"unit-1"}))) == []


def test_with_its_unit_reported_a_follow_up_is_settled_once_until_a_new_window():
    reported = frozenset({"unit-1"})
    state = follow_up()
    assert settle_report(state, ctx(40)) is None  # the unit has not reported: flagged, not settled
    assert settle_report(state, ctx(1, reported_units=frozenset({"unit-2"}))) is None  # another unit
    assert settle_report(state, ctx(1, reported_units=reported)) == settle_report(state, ctx(30, reported_units=reported))
    settled = settle_report(state, ctx(1, reported_units=reported))  # whenever the report is learnt
    assert settled == state.model_copy(update={"report_settled": True})
    assert settle_report(settled, ctx(31, reported_units=reported)) is None  # once
    assert member_report_overdue(settled, ctx(90, reported_units=reported)) == []
    flagged = evolve_follow_up(state, member_report_overdue(state, ctx(31))[0])
    assert settle_report(flagged, ctx(32, reported_units=reported)) is None  # flagged already: done with
    # a registration with another community, and a move, each start a window to follow again
    again, _ = receive(settled, registered(OTHER_COMMUNITY, days=40), ctx(40))
    assert not again.report_settled and member_report_overdue(again, ctx(70))
    moved_on, _ = receive_move(settled, moved(days=40, report_days=7), ctx(40))
    assert not moved_on.report_settled and member_report_overdue(moved_on, ctx(47))
    assert MemberFollowUp.model_validate(settled.model_dump(mode="json")) == settled


def test_the_window_is_configurable():
    assert member_report_overdue(follow_up(), ctx(8, report_window=timedelta(days=7)))


def test_overdue_is_flagged_once():
    state = follow_up()
    (e,) = member_report_overdue(state, ctx(31))
    state = evolve_follow_up(state, e)
    assert member_report_overdue(state, ctx(32)) == [] and member_report_overdue(state, ctx(90)) == []


def test_a_later_registration_with_another_community_is_a_move_flagged_once():
    state, (e,) = receive(follow_up(), registered(OTHER_COMMUNITY, days=10), ctx(10))
    assert (e.moved, e.community_id, e.from_community_id, e.unit_id) == (True, OTHER_COMMUNITY, COMMUNITY, "unit-1")
    assert (state.community_id, state.previous_communities, state.move_flagged) == (OTHER_COMMUNITY, (COMMUNITY,), True)
    # the same registration delivered again: nothing more
    assert receive(state, registered(OTHER_COMMUNITY, days=10), ctx(11))[1] == []


def test_an_older_registration_delivered_late_is_no_move():
    state, _ = receive(follow_up(), registered(OTHER_COMMUNITY, days=10), ctx(10))
    again, events = receive(state, registered(COMMUNITY, days=0), ctx(12))
    assert events == [] and again == state


def test_a_move_starts_a_new_window():
    state = follow_up()
    state = evolve_follow_up(state, member_report_overdue(state, ctx(31))[0])
    state, _ = receive(state, registered(OTHER_COMMUNITY, days=40), ctx(40))
    assert member_report_overdue(state, ctx(60)) == []
    (e,) = member_report_overdue(state, ctx(70))
    assert (e.community_id, e.due_at) == (OTHER_COMMUNITY, at(70))


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([COMMUNITY, OTHER_COMMUNITY, "110105001005"]), st.integers(0, 200)),
                min_size=1, max_size=10),
       st.lists(st.integers(0, 300), max_size=10))
def test_each_move_and_each_registrations_overdue_is_flagged_once(registrations, ticks):
    state, flags = None, []
    moves_expected = 0
    current: tuple[str, int] | None = None
    steps = sorted([("reg", day, community) for community, day in registrations]
                   + [("tick", day, None) for day in ticks], key=lambda s: (s[1], s[0]))
    for kind, day, community in steps:
        if kind == "reg":
            if current is not None and community != current[0] and day >= current[1]:
                moves_expected += 1
            state, events = receive(state, registered(community, days=day), ctx(day))
            if current is None or (community != current[0] and day >= current[1]):
                current = (community, day)
        else:
            events = member_report_overdue(state, ctx(day))
            for e in events:
                state = evolve_follow_up(state, e)
        flags += events
    moves = [e for e in flags if e.moved]
    overdue = [e for e in flags if not e.moved]
    assert len(moves) == moves_expected
    assert len({(e.community_id, e.due_at) for e in overdue}) == len(overdue)  # once per registration


# --- quarterly feedback ----------------------------------------------------------------

Q4_END = datetime(2027, 1, 1, tzinfo=CST)


def test_each_member_gets_one_feedback_per_quarter_from_their_tallies():
    members = [follow_up(), follow_up(member="m2", unit="unit-2")]
    tallies = {"m1": OrderTally(member_id="m1", orders_completed=4, orders_passed=3, rating_sum=14, ratings=3)}
    events = quarterly_feedback("2026-Q4", members, tallies, Q4_END)
    assert all(isinstance(e, MemberFeedback) and e.quarter == "2026-Q4" for e in events)
    by = {e.member_id: e for e in events}
    assert (by["m1"].orders_completed, by["m1"].orders_passed, by["m1"].average_rating, by["m1"].unit_id) == (
        4, 3, 4.67, "unit-1")
    assert (by["m2"].orders_completed, by["m2"].orders_passed, by["m2"].average_rating, by["m2"].unit_id) == (
        0, 0, None, "unit-2")
    again = [evolve_follow_up(m, by[m.member_id]) for m in members]
    assert quarterly_feedback("2026-Q4", again, tallies, Q4_END + timedelta(days=1)) == []


def test_no_feedback_before_the_quarter_ends_nor_for_a_member_registered_after_it():
    assert quarterly_feedback("2026-Q4", [follow_up()], {}, Q4_END - timedelta(seconds=1)) == []
    assert quarterly_feedback("2026-Q3", [follow_up()], {}, Q4_END) == []  # registered 22 November


# -- a move recorded by orders (orders.member.moved.v1) -----------------------------------

def moved(community: str = OTHER_COMMUNITY, days: float = 10, report_days: float = 30, frm: str = COMMUNITY,
          member: str = "m1") -> MemberMoved:
    return MemberMoved(member_id=member, community_id=community, from_community_id=frm, unit_id="unit-1",
                       report_by=at(days + report_days), occurred_at=at(days))


def receive_move(state, move: MemberMoved, c: MemberContext):
    """What the app does with a move from orders: flags, then evolve (the move first)."""
    events = on_member_moved(state, move, c)
    state = evolve_follow_up(state, move, c.now)
    for e in events:
        state = evolve_follow_up(state, e)
    return state, events


def test_a_move_is_flagged_once_with_the_new_community_and_its_deadline():
    state, (e,) = receive_move(follow_up(), moved(report_days=14), ctx(10))
    assert isinstance(e, MemberReportOverdue) and e.aggregate_id == "m1"
    assert (e.moved, e.community_id, e.from_community_id, e.unit_id, e.due_at) == (
        True, OTHER_COMMUNITY, COMMUNITY, "unit-1", at(24))
    assert (state.community_id, state.previous_communities, state.registered_at, state.report_due_at,
            state.move_flagged) == (OTHER_COMMUNITY, (COMMUNITY,), at(10), at(24), True)
    assert MemberFollowUp.model_validate(state.model_dump(mode="json")) == state
    assert receive_move(state, moved(report_days=14), ctx(11))[1] == []  # delivered again: nothing more


def test_after_a_move_the_overdue_timer_uses_the_moves_deadline():
    state = follow_up()
    state = evolve_follow_up(state, member_report_overdue(state, ctx(31))[0])  # overdue in the old community
    state, _ = receive_move(state, moved(days=40, report_days=7), ctx(40))
    assert member_report_overdue(state, ctx(46.9)) == []
    (e,) = member_report_overdue(state, ctx(47))
    assert (e.moved, e.community_id, e.due_at) == (False, OTHER_COMMUNITY, at(47))
    assert member_report_overdue(state, ctx(47, reported_units=frozenset({"unit-1"}))) == []


def test_a_move_older_than_the_registration_on_record_changes_nothing():
    state, _ = receive(follow_up(), registered(OTHER_COMMUNITY, days=20), ctx(20))
    again, events = receive_move(state, moved("110105001005", days=5, frm=COMMUNITY), ctx(21))
    assert events == [] and again == state


def test_a_move_of_a_member_whose_registration_was_not_seen_is_followed_from_the_move():
    state, (e,) = receive_move(None, moved(), ctx(10))
    assert e.moved and (state.community_id, state.previous_communities, state.report_due_at) == (
        OTHER_COMMUNITY, (COMMUNITY,), at(40))


def test_a_registration_after_a_move_drops_the_moves_deadline():
    state, _ = receive_move(follow_up(), moved(report_days=7), ctx(10))
    state, _ = receive(state, registered("110105001005", days=12), ctx(12))
    assert state.report_due_at is None and member_report_overdue(state, ctx(20)) == []
    assert member_report_overdue(state, ctx(42))
