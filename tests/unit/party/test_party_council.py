"""The regional council (区域化党建) in the pure domain: composition and its refusals (size per level,
the 1/3 rule, one secretary, each person once), the 5-day 公示 and 换届, joint meetings (attendance,
quorum, a meeting without quorum adopts nothing), resolutions (completed, supervised, reported at
the next meeting), the quarterly meeting rule in Asia/Shanghai quarters, and properties over random
compositions and any sequence of timer runs."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from schemas.party import (
    CompleteResolution, CouncilEffective, CouncilLevel, CouncilProposed, CouncilSeat, HoldMeeting, MeetingHeld,
    MeetingOverdue, ProposeCouncil, ResolutionCompleted, ResolutionItem, ResolutionOverdue,
)
from services.kit.errors import Rejected
from services.party.domain.council import (
    CouncilContext, CouncilState, check_council, decide_council, evolve_council, next_check_at, quarter_label,
)

SH = ZoneInfo("Asia/Shanghai")
T0 = datetime(2026, 2, 5, 9, 0, tzinfo=SH)
EFFECTIVE = T0 + timedelta(days=5)  # 2026-02-10 09:00, in Q1: Q2 is the first whole quarter
C = "council-1"
STREET_AREA, COMMUNITY_AREA = "110105001", "110105001001"


def seats(n: int = 9, part_time: int = 3, prefix: str = "p") -> tuple[CouncilSeat, ...]:
    """``n`` seats: the first the secretary, the last ``part_time`` part-time members from units."""
    return tuple(CouncilSeat(person_id=f"{prefix}{i}", role="secretary" if i == 0 else "member",
                             part_time=i >= n - part_time, unit_id=f"unit-{i}" if i >= n - part_time else None)
                 for i in range(n))


def propose(s: tuple[CouncilSeat, ...] | None = None, level: CouncilLevel = CouncilLevel.STREET, **kw) -> ProposeCouncil:
    area = kw.pop("area_id", STREET_AREA if level is CouncilLevel.STREET else COMMUNITY_AREA)
    return ProposeCouncil(council_id=C, level=level, area_id=area, seats=s if s is not None else seats(),
                          proposed_by="street-secretary", **kw)


def hold(meeting_id: str = "m-1", held_at: datetime = EFFECTIVE + timedelta(days=1), attendees=None, absentees=(),
         resolutions=()) -> HoldMeeting:
    return HoldMeeting(council_id=C, meeting_id=meeting_id, held_at=held_at,
                       attendees=attendees if attendees is not None else tuple(f"p{i}" for i in range(9)),
                       absentees=absentees, resolutions=resolutions, recorded_by="street-secretary")


def item(rid: str = "r-1", due_at: datetime = EFFECTIVE + timedelta(days=30), owner: str = "unit-8") -> ResolutionItem:
    return ResolutionItem(resolution_id=rid, title="共建停车场", owner_unit_id=owner, due_at=due_at)


def complete(rid: str = "r-1") -> CompleteResolution:
    return CompleteResolution(council_id=C, resolution_id=rid, note="已办结")


def run(state, command, at: datetime):
    events = decide_council(state, command, CouncilContext(now=at))
    for e in events:
        state = evolve_council(state, e)
    return state, events


def timer(state, at: datetime):
    events = check_council(state, at)
    for e in events:
        state = evolve_council(state, e)
    return state, events


def effective_council(s: tuple[CouncilSeat, ...] | None = None, level: CouncilLevel = CouncilLevel.STREET):
    state, _ = run(None, propose(s, level), T0)
    state, events = timer(state, EFFECTIVE)
    assert [type(e) for e in events] == [CouncilEffective]
    return state


def refused(state, command, at: datetime) -> Rejected:
    with pytest.raises(Rejected) as info:
        decide_council(state, command, CouncilContext(now=at))
    return info.value


def roundtrip(state: CouncilState) -> CouncilState:
    back = CouncilState.model_validate(state.model_dump(mode="json"))
    assert back == state
    return back


# ---------------------------------------------------------------------------------------
# Composition
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("level, size, ok", [
    (CouncilLevel.STREET, 8, False), (CouncilLevel.STREET, 9, True), (CouncilLevel.STREET, 15, True),
    (CouncilLevel.STREET, 16, False), (CouncilLevel.COMMUNITY, 6, False), (CouncilLevel.COMMUNITY, 7, True),
    (CouncilLevel.COMMUNITY, 11, True), (CouncilLevel.COMMUNITY, 12, False),
])
def test_a_council_has_9_to_15_members_at_street_level_and_7_to_11_at_community_level(level, size, ok):
    cmd = propose(seats(size, part_time=size), level)
    if ok:
        _, events = run(None, cmd, T0)
        assert len(events[0].seats) == size
    else:
        e = refused(None, cmd, T0)
        assert (e.reason, e.field) == ("council_size", "seats")


def test_a_proposal_is_published_for_5_days():
    state, events = run(None, propose(), T0)
    (e,) = events
    assert isinstance(e, CouncilProposed)
    assert (e.effective_at, e.occurred_at, e.level, e.area_id) == (T0 + timedelta(days=5), T0, CouncilLevel.STREET,
                                                                    STREET_AREA)
    assert not state.effective and state.pending is not None and state.current is None
    roundtrip(state)


@pytest.mark.parametrize("size, part_time, ok", [(9, 3, True), (9, 2, False), (10, 4, True), (10, 3, False),
                                                  (7, 3, True), (7, 2, False), (15, 5, True), (15, 4, False)])
def test_part_time_members_from_units_are_at_least_a_third(size, part_time, ok):
    level = CouncilLevel.STREET if size >= 9 else CouncilLevel.COMMUNITY
    cmd = propose(seats(size, part_time), level)
    if ok:
        assert run(None, cmd, T0)[1]
    else:
        e = refused(None, cmd, T0)
        assert (e.reason, e.field) == ("part_time_below_third", "seats")


def test_a_seat_from_a_unit_that_is_not_part_time_does_not_count_towards_the_third():
    s = list(seats(9, 2))
    s[1] = s[1].model_copy(update={"unit_id": "unit-x"})  # a full-time member who works at a unit
    assert refused(None, propose(tuple(s)), T0).reason == "part_time_below_third"


def test_a_part_time_member_names_the_unit_they_come_from():
    s = list(seats(9, 3))
    s[-1] = s[-1].model_copy(update={"unit_id": None})
    e = refused(None, propose(tuple(s)), T0)
    assert (e.reason, e.field) == ("part_time_without_unit", "seats")


def test_each_person_holds_one_seat():
    s = list(seats(9, 3))
    s[2] = s[2].model_copy(update={"person_id": "p1"})
    assert refused(None, propose(tuple(s)), T0).reason == "duplicate_member"


@pytest.mark.parametrize("roles", [("member",) * 9, ("secretary", "secretary") + ("member",) * 7])
def test_a_council_has_exactly_one_secretary(roles):
    s = tuple(seat.model_copy(update={"role": r}) for seat, r in zip(seats(9, 3), roles))
    assert refused(None, propose(s), T0).reason == "secretary_count"


def test_a_seats_role_is_secretary_deputy_or_member():
    s = list(seats(9, 3))
    s[1] = s[1].model_copy(update={"role": "deputy"})
    assert run(None, propose(tuple(s)), T0)[1]
    s[2] = s[2].model_copy(update={"role": "chairman"})
    assert refused(None, propose(tuple(s)), T0).reason == "unknown_role"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(level=st.sampled_from(list(CouncilLevel)), flags=st.lists(st.booleans(), min_size=5, max_size=17),
       secretary=st.integers(min_value=0, max_value=16))
def test_the_third_rule_over_random_compositions(level, flags, secretary):
    """Any composition of a valid size with one secretary is accepted exactly when 3 × part-time ≥ members."""
    n = len(flags)
    s = tuple(CouncilSeat(person_id=f"p{i}", role="secretary" if i == secretary % n else "member", part_time=f,
                          unit_id=f"unit-{i}" if f else None) for i, f in enumerate(flags))
    low, high = (9, 15) if level is CouncilLevel.STREET else (7, 11)
    try:
        events = decide_council(None, propose(s, level), CouncilContext(now=T0))
    except Rejected as e:
        expected = "council_size" if not low <= n <= high else "part_time_below_third"
        assert e.reason == expected
        assert not (low <= n <= high and 3 * sum(flags) >= n)
    else:
        assert low <= n <= high and 3 * sum(flags) >= n
        assert isinstance(events[0], CouncilProposed)


# ---------------------------------------------------------------------------------------
# 公示 → effective, and 换届
# ---------------------------------------------------------------------------------------


def test_the_timer_makes_the_proposal_effective_when_its_publication_ends_once():
    state, _ = run(None, propose(seats(10, 4)), T0)
    assert next_check_at(state) == EFFECTIVE
    assert check_council(state, EFFECTIVE - timedelta(seconds=1)) == []
    late = EFFECTIVE + timedelta(hours=3)
    state, events = timer(state, late)
    (e,) = events
    assert isinstance(e, CouncilEffective)
    assert (e.members, e.part_time_members, e.level, e.area_id) == (10, 4, CouncilLevel.STREET, STREET_AREA)
    assert e.occurred_at == EFFECTIVE  # it took effect when the 公示 ended, however late the timer came
    assert state.effective and state.pending is None and state.first_effective_at == EFFECTIVE
    assert timer(state, late)[1] == []
    roundtrip(state)


def test_the_same_proposal_during_its_publication_changes_nothing_and_a_new_one_restarts_it():
    state, _ = run(None, propose(), T0)
    assert run(state, propose(), T0 + timedelta(days=1))[1] == []
    later = T0 + timedelta(days=2)
    state, events = run(state, propose(seats(11, 4)), later)
    assert events[0].effective_at == later + timedelta(days=5)
    assert timer(state, EFFECTIVE)[1] == []
    state, events = timer(state, later + timedelta(days=5))
    assert events[0].members == 11


def test_a_re_composition_keeps_the_level_and_area():
    state = effective_council()
    e = refused(state, propose(seats(9, 3), CouncilLevel.COMMUNITY, area_id=STREET_AREA), EFFECTIVE)
    assert (e.reason, e.field) == ("council_mismatch", "level")
    e = refused(state, propose(area_id="110105002"), EFFECTIVE)
    assert (e.reason, e.field) == ("council_mismatch", "area_id")


def test_the_old_composition_stays_in_force_until_the_new_ones_publication_ends():
    state = effective_council()
    renew_at = datetime(2026, 3, 1, 10, 0, tzinfo=SH)
    new_seats = seats(9, 3, prefix="n")
    state, events = run(state, propose(new_seats), renew_at)
    new_effective = renew_at + timedelta(days=5)
    assert state.current.members == tuple(f"p{i}" for i in range(9))
    # a meeting during the new composition's 公示 is the old composition's
    during = renew_at + timedelta(days=1)
    state, _ = run(state, hold("m-old", during), during)
    assert refused(state, hold("m-x", during, attendees=tuple(f"n{i}" for i in range(9))), during).reason \
        == "not_a_member"
    state, events = timer(state, new_effective)
    assert [type(e) for e in events] == [CouncilEffective]
    after = new_effective + timedelta(hours=1)
    e = refused(state, hold("m-new", after), after)
    assert (e.reason, e.field) == ("not_a_member", "attendees")
    state, _ = run(state, hold("m-new", after, attendees=tuple(f"n{i}" for i in range(9))), after)
    # a meeting held before 换届 and recorded after it is checked against the old composition
    state, _ = run(state, hold("m-late", during + timedelta(hours=2)), after)
    assert state.meetings == ("m-old", "m-new", "m-late")
    assert state.first_effective_at == EFFECTIVE  # 换届 does not restart the quarters
    roundtrip(state)


# ---------------------------------------------------------------------------------------
# Joint meetings
# ---------------------------------------------------------------------------------------


def test_a_meeting_of_an_unknown_council_is_refused():
    e = refused(None, hold(), EFFECTIVE)
    assert (e.reason, e.field) == ("unknown_council", "council_id")


def test_a_meeting_before_the_council_takes_effect_is_refused():
    state, _ = run(None, propose(), T0)
    at = T0 + timedelta(days=1)
    e = refused(state, hold(held_at=at), at)
    assert (e.reason, e.field) == ("council_not_effective", "held_at")
    state = effective_council()
    e = refused(state, hold(held_at=EFFECTIVE - timedelta(minutes=1)), EFFECTIVE + timedelta(days=1))
    assert e.reason == "council_not_effective"


def test_a_meeting_is_recorded_once_it_was_held_and_once():
    state = effective_council()
    at = EFFECTIVE + timedelta(days=1)
    e = refused(state, hold(held_at=at + timedelta(seconds=1)), at)
    assert (e.reason, e.field) == ("held_in_future", "held_at")
    state, _ = run(state, hold(held_at=at), at)
    e = refused(state, hold(held_at=at), at)
    assert (e.reason, e.field) == ("meeting_exists", "meeting_id")


def test_attendance_lists_exactly_the_members():
    state = effective_council()
    at = EFFECTIVE + timedelta(days=1)
    everyone = tuple(f"p{i}" for i in range(9))
    e = refused(state, hold(attendees=(*everyone, "stranger")), at)
    assert (e.reason, e.field) == ("not_a_member", "attendees")
    e = refused(state, hold(attendees=everyone[:5], absentees=(*everyone[5:], "stranger")), at)
    assert (e.reason, e.field) == ("not_a_member", "absentees")
    e = refused(state, hold(attendees=everyone[:5], absentees=everyone[5:8]), at)
    assert (e.reason, e.field) == ("member_unaccounted", "absentees")
    assert "p8" in e.detail


@pytest.mark.parametrize("size, present, quorum", [(9, 5, True), (9, 4, False), (8, 4, False), (8, 5, True),
                                                   (7, 4, True), (7, 3, False)])
def test_a_quorum_is_more_than_half_the_members(size, present, quorum):
    level = CouncilLevel.STREET if size >= 9 else CouncilLevel.COMMUNITY
    state = effective_council(seats(size, -(-size // 3)), level)
    everyone = tuple(f"p{i}" for i in range(size))
    at = EFFECTIVE + timedelta(days=1)
    state, events = run(state, hold(attendees=everyone[:present], absentees=everyone[present:]), at)
    (e,) = events
    assert isinstance(e, MeetingHeld)
    assert (e.quorum, e.attendees, e.absentees, e.area_id) == (quorum, everyone[:present], everyone[present:],
                                                               state.area_id)


def test_a_meeting_without_a_quorum_adopts_nothing():
    state = effective_council()
    everyone = tuple(f"p{i}" for i in range(9))
    at = EFFECTIVE + timedelta(days=1)
    e = refused(state, hold(attendees=everyone[:4], absentees=everyone[4:], resolutions=(item(),)), at)
    assert (e.reason, e.field) == ("no_quorum", "resolutions")
    state, events = run(state, hold(attendees=everyone[:4], absentees=everyone[4:]), at)
    assert events[0].quorum is False and events[0].resolutions == ()
    assert state.resolutions == ()


def test_resolutions_have_new_ids_and_deadlines_after_the_meeting():
    state = effective_council()
    at = EFFECTIVE + timedelta(days=1)
    e = refused(state, hold(resolutions=(item("r-1"), item("r-1"))), at)
    assert (e.reason, e.field) == ("resolution_exists", "resolutions")
    e = refused(state, hold(resolutions=(item("r-1", due_at=at),)), at)
    assert (e.reason, e.field) == ("due_before_meeting", "resolutions")
    state, events = run(state, hold(resolutions=(item("r-1"),)), at)
    assert events[0].resolutions == (item("r-1"),)
    assert refused(state, hold("m-2", resolutions=(item("r-1"),)), at).reason == "resolution_exists"


def test_open_resolutions_are_reported_at_the_next_meeting():
    state = effective_council()
    first = EFFECTIVE + timedelta(days=1)
    state, _ = run(state, hold("m-1", first, resolutions=(item("r-1"), item("r-2"), item("r-3"))), first)
    state, _ = run(state, complete("r-2"), first + timedelta(days=3))
    second = first + timedelta(days=60)
    state, _ = timer(state, second)  # r-1 and r-3 are overdue by now: still open, still reported
    state, events = run(state, hold("m-2", second, resolutions=(item("r-4", due_at=second + timedelta(days=9)),)),
                        second)
    assert [r.resolution_id for r in events[0].open_resolutions] == ["r-1", "r-3"]
    assert events[0].open_resolutions[0] == item("r-1")
    third = second + timedelta(days=1)
    state, events = run(state, hold("m-3", third), third)
    assert [r.resolution_id for r in events[0].open_resolutions] == ["r-1", "r-3", "r-4"]
    roundtrip(state)


# ---------------------------------------------------------------------------------------
# Resolutions
# ---------------------------------------------------------------------------------------


def _with_resolution(due_at: datetime = EFFECTIVE + timedelta(days=30)):
    state = effective_council()
    at = EFFECTIVE + timedelta(days=1)
    state, _ = run(state, hold(resolutions=(item("r-1", due_at=due_at),)), at)
    return state


def test_a_resolution_is_completed_on_time_at_its_deadline_and_once():
    due = EFFECTIVE + timedelta(days=30)
    state = _with_resolution(due)
    state, events = run(state, complete(), due)
    (e,) = events
    assert isinstance(e, ResolutionCompleted)
    assert (e.on_time, e.owner_unit_id, e.occurred_at) == (True, "unit-8", due)
    e = refused(state, complete(), due)
    assert (e.reason, e.field) == ("resolution_completed", "resolution_id")
    assert timer(state, due + timedelta(days=400))[0].resolutions[0].overdue is False


def test_a_resolution_completed_after_its_deadline_is_late():
    due = EFFECTIVE + timedelta(days=30)
    state, events = run(_with_resolution(due), complete(), due + timedelta(seconds=1))
    assert events[0].on_time is False


def test_completing_an_unknown_resolution_or_council_is_refused():
    e = refused(_with_resolution(), complete("r-9"), EFFECTIVE + timedelta(days=2))
    assert (e.reason, e.field) == ("unknown_resolution", "resolution_id")
    assert refused(None, complete(), EFFECTIVE).reason == "unknown_council"


def test_an_open_resolution_past_its_deadline_is_supervised_once():
    due = EFFECTIVE + timedelta(days=30)
    state = _with_resolution(due)
    assert next_check_at(state) == due
    assert check_council(state, due) == []
    state, events = timer(state, due + timedelta(minutes=1))
    (e,) = events
    assert isinstance(e, ResolutionOverdue)
    assert (e.resolution_id, e.owner_unit_id, e.due_at, e.occurred_at) == ("r-1", "unit-8", due,
                                                                           due + timedelta(minutes=1))
    assert timer(state, due + timedelta(days=2))[1] == []
    state, events = run(state, complete(), due + timedelta(days=3))
    assert events[0].on_time is False and state.resolutions[0].overdue


# ---------------------------------------------------------------------------------------
# Quarters
# ---------------------------------------------------------------------------------------

Q2_END = datetime(2026, 7, 1, tzinfo=SH)  # 2026-06-30T16:00Z


def test_quarters_are_asia_shanghai_quarters():
    assert quarter_label(datetime(2026, 6, 30, 15, 59, tzinfo=timezone.utc)) == "2026-Q2"
    assert quarter_label(datetime(2026, 6, 30, 16, 0, tzinfo=timezone.utc)) == "2026-Q3"
    assert quarter_label(datetime(2026, 12, 31, 16, 0, tzinfo=timezone.utc)) == "2027-Q1"


def test_a_whole_quarter_without_a_meeting_is_overdue_once_when_it_ends():
    state = effective_council()  # effective 2026-02-10: Q1 is not a whole quarter
    assert next_check_at(state) == Q2_END
    assert check_council(state, Q2_END - timedelta(microseconds=1)) == []
    state, events = timer(state, Q2_END)
    (e,) = events
    assert isinstance(e, MeetingOverdue)
    assert (e.quarter, e.area_id, e.occurred_at) == ("2026-Q2", STREET_AREA, Q2_END)
    assert timer(state, Q2_END + timedelta(days=1))[1] == []
    assert next_check_at(state) == datetime(2026, 10, 1, tzinfo=SH)
    roundtrip(state)


def test_the_quarter_the_council_takes_effect_counts_when_it_takes_effect_at_its_start():
    start = datetime(2026, 4, 1, tzinfo=SH)
    state, _ = run(None, propose(), start - timedelta(days=5))
    state, events = timer(state, Q2_END)
    assert [type(e) for e in events] == [CouncilEffective, MeetingOverdue]
    assert events[1].quarter == "2026-Q2"


def test_a_meeting_with_a_quorum_in_the_quarter_keeps_it_from_being_overdue():
    state = effective_council()
    everyone = tuple(f"p{i}" for i in range(9))
    in_q2 = datetime(2026, 5, 20, 14, 0, tzinfo=SH)
    state, _ = run(state, hold("m-q2", in_q2), in_q2)
    in_q3_without_quorum = datetime(2026, 8, 20, 14, 0, tzinfo=SH)
    state, _ = run(state, hold("m-q3", in_q3_without_quorum, attendees=everyone[:4], absentees=everyone[4:]),
                   in_q3_without_quorum)
    # held at 01:00 on 1 July in Shanghai: the third quarter's, not the second's
    q4_early = datetime(2026, 6, 30, 17, 0, tzinfo=timezone.utc)
    state, _ = run(state, hold("m-q3b", q4_early, attendees=everyone[:4], absentees=everyone[4:]), q4_early)
    state, events = timer(state, datetime(2027, 1, 1, tzinfo=SH))
    assert [e.quarter for e in events] == ["2026-Q3", "2026-Q4"]


def test_a_long_gap_reports_each_missed_quarter_oldest_first_and_a_late_meeting_changes_no_report():
    state = effective_council()
    in_q3 = datetime(2026, 9, 1, tzinfo=SH)
    state, _ = run(state, hold("m-q3", in_q3), in_q3)
    state, events = timer(state, datetime(2027, 4, 2, tzinfo=SH))
    assert [e.quarter for e in events] == ["2026-Q2", "2026-Q4", "2027-Q1"]
    late = datetime(2027, 4, 3, tzinfo=SH)
    state, _ = run(state, hold("m-q1", datetime(2027, 3, 3, tzinfo=SH)), late)  # recorded late, after its report
    assert "2027-Q1" in state.met_quarters and "2027-Q1" in state.overdue_quarters
    assert timer(state, late)[1] == []


def test_the_timer_on_nothing_says_nothing():
    assert check_council(None, T0) == [] and next_check_at(None) is None
    with pytest.raises(ValueError):
        check_council(effective_council(), datetime(2026, 7, 1))
    with pytest.raises(ValueError):
        CouncilContext(now=datetime(2026, 7, 1))


def _quarter_after(start: datetime) -> datetime:
    return datetime(start.year + 1, 1, 1, tzinfo=SH) if start.month == 10 else \
        datetime(start.year, start.month + 3, 1, tzinfo=SH)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    runs=st.lists(st.integers(min_value=0, max_value=1200), min_size=1, max_size=12),
    meetings=st.lists(st.tuples(st.integers(min_value=0, max_value=1200), st.booleans()), max_size=8),
    repeat=st.booleans(),
)
def test_any_sequence_of_timer_runs_reports_each_missed_quarter_once(runs, meetings, repeat):
    """Timer runs and meetings (with or without quorum) on random days: every whole quarter that
    ended by the last action without a meeting with a quorum is reported, exactly once, and nothing
    else; the state round-trips through jsonb all along."""
    state, _ = run(None, propose(), T0)
    everyone = tuple(f"p{i}" for i in range(9))
    actions = sorted([(d, 1, False) for d in runs] + [(d, 0, q) for d, q in meetings])
    reported: list[str] = []
    for n, (day, is_timer, quorum) in enumerate(actions):
        at = EFFECTIVE + timedelta(days=day, hours=1)
        state, events = timer(state, at)  # the application runs the timer before a command too
        reported += [e.quarter for e in events if isinstance(e, MeetingOverdue)]
        if repeat:
            state, events = timer(state, at)
            assert events == []
        if not is_timer:
            present = 5 if quorum else 4
            state, _ = run(state, hold(f"m-{n}", at, attendees=everyone[:present], absentees=everyone[present:]), at)
        state = roundtrip(state)
    met = {quarter_label(EFFECTIVE + timedelta(days=d, hours=1)) for d, q in meetings if q}
    last = EFFECTIVE + timedelta(days=actions[-1][0], hours=1)
    expected, start = [], datetime(2026, 4, 1, tzinfo=SH)
    while _quarter_after(start) <= last:
        if quarter_label(start) not in met:
            expected.append(quarter_label(start))
        start = _quarter_after(start)
    assert reported == expected
    assert list(state.overdue_quarters) == expected


def test_a_meeting_recorded_late_is_reported_only_the_resolutions_adopted_before_it():
    state = effective_council()
    earlier, later = EFFECTIVE + timedelta(days=1), EFFECTIVE + timedelta(days=2)
    state, _ = run(state, hold("m-2", later, resolutions=(item("r-2"),)), later)
    state, events = run(state, hold("m-1", earlier), later)
    assert events[0].open_resolutions == ()


@pytest.mark.parametrize("attendees, absentees", [(("p0", "p0"), ()), (("p0",), ("p1", "p1")), (("p0",), ("p0",))])
def test_a_meeting_lists_each_person_once(attendees, absentees):
    with pytest.raises(ValidationError, match="each person is listed once"):
        hold(attendees=attendees, absentees=absentees)
