"""Overdue detection and supervision (超期督办): once per missed deadline, across restarts, never
missed; a missed deadline never escalates the case."""
from __future__ import annotations

from datetime import timedelta

from grid_builders import CASE, T0, World, dispatch, handle, register, report, types, verify, world_at
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.grid import CaseEscalated, CaseOverdue, CaseSupervised, EscalationLevel, Stage, Supervision
from services.grid.domain.decide import ON_TIME_STAGES
from services.grid.domain import CaseState, check_overdue, next_check_at
from services.grid.domain.policy import Span


def test_nothing_is_overdue_before_the_deadline():
    w = world_at("reported")
    assert check_overdue(w.state(), T0 + timedelta(hours=1), w.policy) == []


def test_a_missed_registration_deadline_yields_a_supervision_not_an_escalation():
    w = World()
    w.run(report())
    now = T0 + timedelta(minutes=61)
    events = check_overdue(w.state(), now, w.policy)
    assert types(events) == ["grid.case.overdue.v1", "grid.case.supervised.v1"]
    overdue, supervised = events
    assert isinstance(overdue, CaseOverdue) and isinstance(supervised, CaseSupervised)
    assert (overdue.stage, overdue.level, overdue.due_at) == (Stage.REGISTER, EscalationLevel.COMMUNITY, T0 + timedelta(hours=1))
    assert (supervised.supervision, supervised.stage, supervised.due_at, supervised.level) == (
        Supervision.YELLOW_CARD, Stage.REGISTER, T0 + timedelta(hours=1), EscalationLevel.COMMUNITY)
    assert (supervised.grid_id, supervised.street_id, supervised.department) == (w.state().grid_id, "110105001", None)
    w.apply(events)
    assert not any(isinstance(e, CaseEscalated) for e in w.log)
    s = w.state()
    assert s.level is EscalationLevel.COMMUNITY  # nobody escalated it
    assert (s.supervision_count, s.last_card) == (1, Supervision.YELLOW_CARD)
    assert s.deadlines[0].overdue is True


def test_the_same_missed_deadline_is_reported_only_once():
    w = World()
    w.run(report())
    w.apply(check_overdue(w.state(), T0 + timedelta(minutes=61), w.policy))
    assert check_overdue(w.state(), T0 + timedelta(minutes=62), w.policy) == []
    assert check_overdue(w.state(), T0 + timedelta(days=30), w.policy) == []


def test_overdue_detection_survives_a_restart_from_stored_state():
    w = World()
    w.run(report())
    w.apply(check_overdue(w.state(), T0 + timedelta(minutes=61), w.policy))
    stored = w.state().model_dump(mode="json")  # the kit's jsonb
    restarted = CaseState.model_validate(stored)
    assert check_overdue(restarted, T0 + timedelta(hours=2), w.policy) == []


def test_the_first_missed_deadline_is_a_yellow_card_and_each_later_one_a_red_card():
    w = World()
    w.run(report())
    w.tick(minutes=70).apply(check_overdue(w.state(), w.now, w.policy))  # register missed: yellow
    w.run(register())
    w.tick(minutes=70).apply(check_overdue(w.state(), w.now, w.policy))  # dispatch missed: red
    w.run(dispatch())
    w.tick(days=3)
    events = check_overdue(w.state(), w.now, w.policy)  # accept, contact and handle missed: red each
    assert sorted(e.stage.value for e in events if isinstance(e, CaseOverdue)) == ["accept", "contact", "handle"]
    w.apply(events)
    cards = [(e.stage.value, e.supervision.value) for e in w.log if isinstance(e, CaseSupervised)]
    assert cards[:2] == [("register", "yellow_card"), ("dispatch", "red_card")]
    assert [c for _, c in cards[2:]] == ["red_card"] * 3
    assert w.state().supervision_count == 5 and w.state().level is EscalationLevel.COMMUNITY
    assert not any(isinstance(e, CaseEscalated) for e in w.log)


def test_a_deadline_met_late_while_no_timer_ran_is_still_reported():
    w = World()
    w.run(report())
    w.tick(minutes=70)
    w.run(register())  # late, and the timer was down
    events = check_overdue(w.state(), w.now, w.policy)
    assert types(events) == ["grid.case.overdue.v1", "grid.case.supervised.v1"]
    assert events[0].stage is Stage.REGISTER


def test_a_closed_case_with_an_unreported_late_deadline_gets_its_overdue_but_no_escalation():
    w = world_at("handled")
    w.tick(hours=6)  # verification was due at 14:33, the contact (先行联系, never made) at 14:32
    w.run(verify(passed=True))
    events = check_overdue(w.state(), w.now, w.policy)
    assert types(events) == ["grid.case.overdue.v1", "grid.case.overdue.v1"]  # no card once closed
    assert {e.stage for e in events} == {Stage.CONTACT, Stage.VERIFY}


def test_a_rework_deadline_is_a_new_deadline_with_its_own_overdue():
    w = world_at("dispatched")
    w.tick(days=3).apply(check_overdue(w.state(), w.now, w.policy))  # first handle deadline missed
    w.run(handle())
    w.tick(minutes=5)
    w.run(verify(passed=False))
    assert check_overdue(w.state(), w.now, w.policy) == []
    w.tick(days=5)  # rework due 2 working days after a Thursday: Monday
    events = check_overdue(w.state(), w.now, w.policy)
    assert [(type(e).__name__, getattr(e, "stage", None)) for e in events] == [
        ("CaseOverdue", Stage.HANDLE), ("CaseSupervised", Stage.HANDLE)
    ]
    assert events[1].supervision is Supervision.RED_CARD
    assert events[0].due_at == w.state().open_deadline.due_at


def test_an_overdue_marks_the_missed_deadline_not_an_earlier_one_with_the_same_due_time():
    w = world_at("dispatched")
    w.run(handle())
    w.run(verify(passed=False))  # first verify deadline met on time, same instant
    w.run(handle())  # second verify deadline: the same due time as the first
    first, second = [d for d in w.state().deadlines if d.stage is Stage.VERIFY]
    assert first.due_at == second.due_at and first.met_at is not None
    w.tick(hours=6)
    w.apply(check_overdue(w.state(), w.now, w.policy))
    first, second = [d for d in w.state().deadlines if d.stage is Stage.VERIFY]
    assert (first.overdue, second.overdue) == (False, True)
    assert check_overdue(w.state(), w.now, w.policy) == []


def test_next_check_at_is_the_next_unreported_deadline():
    w = World()
    w.run(report())
    assert next_check_at(w.state()) == T0 + timedelta(hours=1)
    w.tick(minutes=5).run(register())
    assert next_check_at(w.state()) == w.now + timedelta(hours=1)
    w.tick(minutes=70)
    w.apply(check_overdue(w.state(), w.now, w.policy))
    assert next_check_at(w.state()) is None
    w.run(dispatch())
    accept_due = w.policy.due(w.now, Span.model_validate("2wh"))  # 13:45: the lunch break does not count
    assert accept_due < w.policy.due(w.now, Span.model_validate("4wh"))
    assert next_check_at(w.state()) == accept_due  # the accept deadline comes first


def test_next_check_at_of_a_closed_case_on_time_is_none():
    w = world_at("closed")
    assert next_check_at(w.state()) is None
    assert check_overdue(w.state(), w.now + timedelta(days=365), w.policy) == []


def test_no_check_is_needed_for_a_case_that_does_not_exist():
    assert check_overdue(None, T0, None) == [] and next_check_at(None) is None


# A timer that fires at arbitrary moments — and restarts from stored state between firings —
# reports each missed deadline exactly once, whatever the schedule.
STEPS = [report(), register(), dispatch(), handle(), verify(passed=False), handle(), verify(passed=True)]


@settings(max_examples=150, deadline=None)
@given(
    gaps=st.lists(st.integers(min_value=0, max_value=4 * 24 * 60), min_size=len(STEPS), max_size=len(STEPS)),
    checks=st.lists(st.integers(min_value=0, max_value=6), min_size=len(STEPS), max_size=len(STEPS)),
    restart=st.booleans(),
)
def test_every_missed_deadline_is_reported_exactly_once_whatever_the_timer_schedule(gaps, checks, restart):
    w = World()

    def timer():
        state = w.states.get(CASE)
        if restart and state is not None:
            state = CaseState.model_validate(state.model_dump(mode="json"))
        w.apply(check_overdue(state, w.now, w.policy))

    for cmd, gap, n_checks in zip(STEPS, gaps, checks):
        for _ in range(n_checks):  # the timer fires during the gap before the command
            w.tick(minutes=gap / max(n_checks, 1))
            timer()
        if n_checks == 0:
            w.tick(minutes=gap)
        w.run(cmd)
    timer()
    timer()

    s = w.state()
    missed = [d for d in s.deadlines if d.missed_by(w.now)]
    overdue = [e for e in w.log if isinstance(e, CaseOverdue)]
    assert sorted((e.stage, e.due_at) for e in overdue) == sorted((d.stage, d.due_at) for d in missed)
    assert all(d.overdue for d in missed)
    assert not any(isinstance(e, CaseEscalated) for e in w.log)
    cards = [e.supervision for e in w.log if isinstance(e, CaseSupervised)]
    assert cards == [Supervision.YELLOW_CARD, *[Supervision.RED_CARD] * (len(cards) - 1)][: len(cards)]
    assert s.on_time is (not any(d.stage in ON_TIME_STAGES for d in missed))
