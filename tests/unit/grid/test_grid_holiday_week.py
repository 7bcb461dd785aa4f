"""A case over the National Day holiday week of 2026, on the calendar and deadline policy the
service ships with: its deadlines count working time, so the holiday shapes them."""
from __future__ import annotations

from datetime import datetime, timedelta

from grid_builders import SH, World, dispatch, handle, register, report, types

from schemas.grid import Stage
from services.grid.app.handler import CALENDAR_FILE, load_policy
from services.grid.domain import check_overdue
from services.grid.domain.state import CaseStatus

POLICY = load_policy(CALENDAR_FILE.parent / "deadlines.yaml", CALENDAR_FILE)  # the shipped files

BEFORE = datetime(2026, 9, 30, 10, 0, tzinfo=SH)  # the Wednesday before 国庆 (1-7 October 2026)


def dispatched_before_the_holiday() -> World:
    w = World(now=BEFORE, policy=POLICY)
    w.run(report())
    w.tick(minutes=20).run(register())
    w.tick(minutes=20).run(dispatch())  # 10:40
    return w


def due(w: World, stage: Stage) -> datetime:
    return next(d.due_at for d in w.state().deadlines if d.stage is stage)


def test_the_shipped_calendar_knows_the_holiday_and_its_make_up_day():
    cal = POLICY.calendar
    assert not any(cal.is_workday(datetime(2026, 10, d).date()) for d in range(1, 8))
    assert cal.is_workday(datetime(2026, 10, 10).date())  # 调休: that Saturday is a working day
    assert cal.is_workday(datetime(2026, 9, 30).date())


def test_a_working_day_deadline_over_the_holiday_week_skips_it():
    w = dispatched_before_the_holiday()
    assert w.state().status is CaseStatus.DISPATCHED
    # environment: 2 working days from Wednesday 30 September 10:40. 1-7 October are holidays,
    # so the working days are Thursday 8 and Friday 9 October: due Friday 10:40
    assert due(w, Stage.HANDLE) == datetime(2026, 10, 9, 10, 40, tzinfo=SH)
    assert due(w, Stage.HANDLE) - w.now == timedelta(days=9)  # on the clock it would be 2 October, mid-holiday
    # 2 working hours to accept: 10:40-12:00, then 13:30-14:10 (the lunch break does not count)
    assert due(w, Stage.ACCEPT) == datetime(2026, 9, 30, 14, 10, tzinfo=SH)


def test_nothing_of_the_handling_is_overdue_during_the_holiday_and_it_is_on_time_the_week_after():
    w = dispatched_before_the_holiday()
    during = check_overdue(w.state(), datetime(2026, 10, 6, 12, 0, tzinfo=SH), POLICY)
    assert Stage.HANDLE not in {e.stage for e in during}  # accept and contact were missed; handling was not
    w.now = datetime(2026, 10, 9, 9, 0, tzinfo=SH)
    assert types(w.run(handle())) == ["grid.case.handled.v1"]
    assert next(d for d in w.state().deadlines if d.stage is Stage.HANDLE).met_at <= due(w, Stage.HANDLE)
