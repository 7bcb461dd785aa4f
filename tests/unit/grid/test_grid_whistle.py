"""吹哨报到 in the pure domain: blow, answer (on time, late, after being recorded missing),
the missed-department timer (once each), rate, every refusal, and properties over any order of
answers and timer rounds."""
from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.grid import (
    AnswerWhistle, BlowWhistle, RateWhistle, WhistleAnswered, WhistleBlown, WhistleMissed, WhistleRated,
)
from services.grid.domain import errors
from services.grid.domain.whistle import (
    WhistleContext, WhistleState, check_missed, decide_whistle, evolve_whistle, may_summon, whistle_next_check_at,
)

SH = ZoneInfo("Asia/Shanghai")
T0 = datetime(2026, 11, 23, 9, 0, tzinfo=SH)
STREET = "110105001"
CGJ, SCJG, ZHZF = "110105.cgj", "110105.scjg", "110105001.zhzf"
REGISTER = frozenset({CGJ, SCJG, ZHZF, "110105002.zhzf", "110106.cgj"})
W = "w-1"
REPORT_BY = T0 + timedelta(hours=3)


def ctx(at: datetime = T0, **kw) -> WhistleContext:
    return WhistleContext(now=at, departments=kw.pop("departments", REGISTER), **kw)


def blow(**kw) -> BlowWhistle:
    data = dict(whistle_id=W, street_id=STREET, departments=(CGJ, SCJG, ZHZF), report_by=REPORT_BY,
                matter="底商违规外摆、油烟扰民", blown_by="street-1")
    data.update(kw)
    return BlowWhistle.model_validate(data)


def answer(department: str = CGJ, **kw) -> AnswerWhistle:
    return AnswerWhistle(whistle_id=W, department=department, answered_by=kw.pop("answered_by", "dept-1"), **kw)


def rate(department: str = CGJ, rating: int = 4, **kw) -> RateWhistle:
    return RateWhistle(whistle_id=W, department=department, rating=rating, rated_by="street-1", **kw)


def run(state, command, at: datetime = T0, **kw):
    events = decide_whistle(state, command, ctx(at, **kw))
    for e in events:
        state = evolve_whistle(state, e)
    return state, events


def timer(state, at: datetime):
    events = check_missed(state, at)
    for e in events:
        state = evolve_whistle(state, e)
    return state, events


def blown() -> WhistleState:
    return run(None, blow())[0]


# -- blow --------------------------------------------------------------------------------------


def test_a_street_blows_a_whistle_summoning_departments_to_report_by_a_time():
    state, events = run(None, blow(case_id="110105001002003-20261122-0007"), case_in_street=True)
    assert events == [WhistleBlown(whistle_id=W, street_id=STREET, case_id="110105001002003-20261122-0007",
                                   departments=(CGJ, SCJG, ZHZF), report_by=REPORT_BY, matter="底商违规外摆、油烟扰民",
                                   blown_by="street-1", occurred_at=T0)]
    assert state.departments == (CGJ, SCJG, ZHZF) and state.is_open and state.version == 1
    assert all(s.pending and s.rating is None for s in state.summons)
    assert whistle_next_check_at(state) == REPORT_BY


def test_a_whistle_with_a_case_needs_the_case_in_its_street():
    with pytest.raises(errors.CaseNotFound) as e:
        run(None, blow(case_id="110105002003001-20261122-0001"), case_in_street=False)
    assert e.value.reason == "unknown_case" and e.value.field == "case_id"
    # a whistle about no case needs no case
    assert run(None, blow(), case_in_street=False)[1]


def test_blow_refusals():
    with pytest.raises(errors.WhistleExists) as e:
        run(blown(), blow())
    assert e.value.reason == "whistle_exists"
    for past in (T0, T0 - timedelta(seconds=1)):
        with pytest.raises(errors.DueInPast) as e:
            run(None, blow(report_by=past))
        assert (e.value.reason, e.value.field) == ("due_in_past", "report_by")
    with pytest.raises(errors.UnknownDepartment) as e:
        run(None, blow(departments=(CGJ, "110105.nosuch")))
    assert (e.value.reason, e.value.field) == ("unknown_department", "departments")
    with pytest.raises(errors.MissingActor) as e:
        run(None, blow(blown_by=None))
    assert e.value.field == "blown_by"


@pytest.mark.parametrize("department", ["110105002.zhzf", "110106.cgj"])
def test_a_street_summons_its_district_departments_and_its_own_not_another_streets_or_districts(department):
    assert department in REGISTER
    with pytest.raises(errors.UnknownDepartment):
        run(None, blow(departments=(department,)))
    assert may_summon(STREET, CGJ) and may_summon(STREET, ZHZF)
    assert not may_summon(STREET, department)


def test_a_department_is_summoned_once_by_the_contract():
    with pytest.raises(ValueError):
        blow(departments=(CGJ, CGJ))


# -- answer ------------------------------------------------------------------------------------


def test_a_summoned_department_reports_on_time_before_report_by():
    state, events = run(blown(), answer(note="已到场"), at=REPORT_BY - timedelta(minutes=1))
    assert events == [WhistleAnswered(whistle_id=W, street_id=STREET, department=CGJ, answered_by="dept-1",
                                      on_time=True, note="已到场", occurred_at=REPORT_BY - timedelta(minutes=1))]
    assert state.summons_of(CGJ).on_time is True and not state.summons_of(CGJ).pending
    state, events = run(state, answer(SCJG), at=REPORT_BY)  # at report_by itself: still on time
    assert events[0].on_time is True


def test_a_report_after_report_by_is_recorded_late():
    state, events = run(blown(), answer(), at=REPORT_BY + timedelta(seconds=1))
    assert events[0].on_time is False and state.summons_of(CGJ).answered


def test_answer_refusals():
    state = blown()
    with pytest.raises(errors.WhistleNotFound) as e:
        run(None, answer())
    assert (e.value.reason, e.value.field) == ("unknown_whistle", "whistle_id")
    with pytest.raises(errors.NotSummoned) as e:
        run(state, answer("110105.yjj"))
    assert (e.value.reason, e.value.field) == ("not_summoned", "department")
    state, _ = run(state, answer())
    with pytest.raises(errors.AlreadyAnswered) as e:
        run(state, answer(answered_by="dept-2"))
    assert e.value.reason == "already_answered"
    with pytest.raises(errors.MissingActor):
        run(state, answer(SCJG, answered_by=None))


# -- missed (the timer) --------------------------------------------------------------------------


def test_the_timer_records_each_department_without_a_report_missing_once():
    state, _ = run(blown(), answer(), at=T0 + timedelta(hours=1))
    assert timer(state, REPORT_BY)[1] == []  # not before report_by has passed
    state, events = timer(state, REPORT_BY + timedelta(seconds=1))
    assert events == [WhistleMissed(whistle_id=W, street_id=STREET, department=d, report_by=REPORT_BY,
                                    occurred_at=REPORT_BY + timedelta(seconds=1)) for d in (SCJG, ZHZF)]
    assert not state.is_open and whistle_next_check_at(state) is None
    # a second round, or one from the stored state after a restart, says nothing more
    assert timer(state, REPORT_BY + timedelta(hours=1))[1] == []
    restored = WhistleState.model_validate(state.model_dump(mode="json"))
    assert restored == state and check_missed(restored, REPORT_BY + timedelta(days=1)) == []


def test_a_department_recorded_missing_may_still_report_late():
    state, _ = timer(blown(), REPORT_BY + timedelta(minutes=1))
    state, events = run(state, answer(SCJG), at=REPORT_BY + timedelta(hours=1))
    assert events[0].on_time is False
    s = state.summons_of(SCJG)
    assert s.missed and s.answered and not s.on_time
    with pytest.raises(errors.AlreadyAnswered):
        run(state, answer(SCJG), at=REPORT_BY + timedelta(hours=2))


def test_a_late_report_before_the_timer_came_round_is_recorded_missing_too():
    state, _ = run(blown(), answer(), at=REPORT_BY + timedelta(minutes=1))
    assert whistle_next_check_at(state) == REPORT_BY  # still something to say
    state, events = timer(state, REPORT_BY + timedelta(minutes=2))
    assert [e.department for e in events] == [CGJ, SCJG, ZHZF]


def test_the_timer_needs_an_aware_time_and_ignores_no_whistle():
    with pytest.raises(ValueError):
        check_missed(blown(), datetime(2026, 11, 23, 13, 0))
    assert check_missed(None, REPORT_BY + timedelta(hours=1)) == []
    assert whistle_next_check_at(None) is None
    with pytest.raises(ValueError):
        WhistleContext(now=datetime(2026, 11, 23, 9, 0))


# -- rate --------------------------------------------------------------------------------------


def test_the_street_rates_a_department_that_reported_or_was_missed_once_each():
    state, _ = run(blown(), answer(), at=T0 + timedelta(hours=1))
    state, events = run(state, rate(CGJ, 5, comment="到场及时"), at=T0 + timedelta(hours=2))
    assert events == [WhistleRated(whistle_id=W, street_id=STREET, department=CGJ, rating=5, comment="到场及时",
                                   rated_by="street-1", occurred_at=T0 + timedelta(hours=2))]
    assert state.summons_of(CGJ).rating == 5
    with pytest.raises(errors.NotYetAnswered) as e:
        run(state, rate(SCJG, 3), at=T0 + timedelta(hours=2))
    assert e.value.reason == "not_yet_answered"
    state, _ = timer(state, REPORT_BY + timedelta(seconds=1))
    state, events = run(state, rate(SCJG, 1), at=REPORT_BY + timedelta(hours=1))
    assert events[0].rating == 1
    with pytest.raises(errors.AlreadyRated) as e:
        run(state, rate(SCJG, 2), at=REPORT_BY + timedelta(hours=1))
    assert e.value.reason == "already_rated"
    with pytest.raises(errors.NotSummoned):
        run(state, rate("110105.yjj", 2))
    with pytest.raises(errors.WhistleNotFound):
        run(None, rate(CGJ, 2))


@pytest.mark.parametrize("rating", [0, 6])
def test_a_rating_is_one_to_five(rating):
    with pytest.raises(ValueError):
        rate(CGJ, rating)


# -- evolve ------------------------------------------------------------------------------------


def test_evolve_refuses_events_that_cannot_belong_to_the_state():
    state = blown()
    with pytest.raises(ValueError):
        evolve_whistle(state, decide_whistle(None, blow(), ctx())[0])
    with pytest.raises(ValueError):
        evolve_whistle(None, WhistleMissed(whistle_id=W, street_id=STREET, department=CGJ, report_by=REPORT_BY,
                                           occurred_at=T0))
    with pytest.raises(ValueError):
        evolve_whistle(state, WhistleMissed(whistle_id="w-2", street_id=STREET, department=CGJ, report_by=REPORT_BY,
                                            occurred_at=T0))
    with pytest.raises(ValueError):
        evolve_whistle(state, WhistleMissed(whistle_id=W, street_id=STREET, department="110105.yjj",
                                            report_by=REPORT_BY, occurred_at=T0))


# -- properties --------------------------------------------------------------------------------

DEPTS = (CGJ, SCJG, ZHZF)
steps = st.lists(st.tuples(st.sampled_from(("answer", "timer", "rate")), st.sampled_from(DEPTS),
                           st.integers(min_value=0, max_value=6 * 3600)), max_size=25)


@settings(max_examples=300, deadline=None)
@given(steps)
def test_any_order_of_reports_timer_rounds_and_ratings(plan):
    """Whatever happens, in whatever order and with a restart from jsonb between steps: each
    department is recorded missing at most once, and exactly once when it had no report by
    report_by and the timer ran after report_by; it reports at most once, on time exactly when
    at or before report_by; a rating only follows a report or a missing record, once."""
    state = blown()
    seen: list = []
    clock = T0
    for verb, dept, offset in sorted(plan, key=lambda p: p[2]):
        clock = T0 + timedelta(seconds=offset)
        state = WhistleState.model_validate(state.model_dump(mode="json"))
        if verb == "timer":
            state, events = timer(state, clock)
        else:
            try:
                state, events = run(state, answer(dept) if verb == "answer" else rate(dept), at=clock)
            except errors.Rejected:
                events = []
        seen += events
    final = clock + timedelta(days=1)
    state, events = timer(state, final)
    seen += events
    assert timer(state, final + timedelta(days=1))[1] == []
    for d in DEPTS:
        answers = [e for e in seen if isinstance(e, WhistleAnswered) and e.department == d]
        missed = [e for e in seen if isinstance(e, WhistleMissed) and e.department == d]
        rated = [e for e in seen if isinstance(e, WhistleRated) and e.department == d]
        assert len(answers) <= 1 and len(rated) <= 1
        on_time = bool(answers) and answers[0].on_time
        assert len(missed) == (0 if on_time else 1)
        if answers:
            assert answers[0].on_time == (answers[0].occurred_at <= REPORT_BY)
        if rated:
            assert seen.index(rated[0]) > min(seen.index(e) for e in answers + missed)
    assert not state.is_open and whistle_next_check_at(state) is None
