"""The working-time calendar (工作日历): working days, 调休, working hours and their arithmetic."""
from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path

import pytest
import yaml
from grid_builders import SH
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from services.grid.app.handler import CALENDAR_FILE, load_calendar
from services.grid.app.metrics import GridMetrics, covers_next_year
from services.grid.domain import WorkCalendar

CAL = load_calendar()  # the shipped calendar: 2026 from the notice, 2027 provisional
PLAIN = WorkCalendar()  # Monday–Friday, no holidays


def at(y, mo, d, h=0, mi=0) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=SH)


# -- the shipped file --------------------------------------------------------------------------


def test_the_calendar_file_loads_and_covers_this_year_and_the_next():
    assert CALENDAR_FILE == Path(__file__).resolve().parents[3] / "services" / "grid" / "policy" / "calendar.yaml"
    assert CAL == WorkCalendar.from_mapping(yaml.safe_load(CALENDAR_FILE.read_text(encoding="utf-8")))
    assert CAL.timezone == "Asia/Shanghai"
    assert CAL.covers(date(2026, 6, 1)) and CAL.covers(date(2027, 6, 1)) and not CAL.covers(date(2028, 1, 3))
    assert not CAL.is_provisional(date(2026, 1, 1)) and CAL.is_provisional(date(2027, 1, 1))


@pytest.mark.parametrize("day", ["2026-01-01", "2026-02-16", "2026-02-23", "2026-04-06", "2026-05-05", "2026-06-19",
                                 "2026-09-25", "2026-10-01", "2026-10-07", "2027-01-01", "2027-02-08", "2027-10-01"])
def test_statutory_holidays_are_not_working_days(day):
    assert not CAL.is_workday(date.fromisoformat(day))


@pytest.mark.parametrize("day", ["2026-01-04", "2026-02-14", "2026-02-28", "2026-05-09", "2026-09-20", "2026-10-10"])
def test_the_make_up_working_days_of_2026_are_working_days(day):
    d = date.fromisoformat(day)
    assert d.weekday() >= 5 and CAL.is_workday(d) and not PLAIN.is_workday(d)


def test_2026_has_the_working_days_of_the_notice():
    days = [date(2026, 1, 1) + timedelta(days=i) for i in range(365)]
    # 365 days, 104 weekend days, 19 weekdays off (33 holiday days, 14 of them on a weekend), 6 make-up days
    assert sum(CAL.is_workday(d) for d in days) == 365 - 104 - 19 + 6 == 248


def test_the_service_knows_when_the_calendar_runs_out():
    assert covers_next_year(CAL, at(2026, 12, 3, 10)) and not covers_next_year(CAL, at(2027, 3, 1, 10))
    m = GridMetrics()
    assert m.check_calendar(CAL, at(2026, 12, 31, 23, 59)) and m.calendar_covers_next_year is True
    assert not m.check_calendar(CAL, datetime(2026, 12, 31, 16, 30, tzinfo=timezone.utc))  # 2027-01-01 in Shanghai
    gauge = next(f for f in m.collect() if f.name == "grid_calendar_covers_next_year")
    assert gauge.samples[0].value == 0


# -- days --------------------------------------------------------------------------------------


def test_outside_the_listed_years_working_days_are_monday_to_friday():
    assert [CAL.is_workday(date(2028, 1, d)) for d in range(1, 9)] == [False, False, True, True, True, True, True, False]


@pytest.mark.parametrize(
    "mapping",
    [
        {"working_hours": [["13:30", "17:30"], ["09:00", "12:00"]]},  # not in order
        {"working_hours": [["09:00", "12:00"], ["11:00", "17:30"]]},  # overlapping
        {"working_hours": [["12:00", "09:00"]]},  # ends before it starts
        {"working_hours": []},
        {"timezone": "Mars/Olympus"},
        {"years": {2026: {"workdays": ["2026-10-09"]}}},  # a Friday is no make-up day
        {"years": {2026: {"holidays": ["2026-10-10"], "workdays": ["2026-10-10"]}}},
        {"years": {2026: {"holidays": ["2027-01-01"]}}},  # under the wrong year
        {"years": {2026: {"holidays": ["2026-10-07..2026-10-01"]}}},  # a range backwards
        {"years": {2026: {"holidays": ["2026-10-01...2026-10-07"]}}},
        {"years": {2026: {"weekends": []}}},
        {"weekend": ["sat"]},
    ],
)
def test_a_mistyped_calendar_is_refused(mapping):
    with pytest.raises(ValidationError):
        WorkCalendar.from_mapping(mapping)


def test_ranges_are_inclusive_and_dates_may_be_dates_or_strings():
    cal = WorkCalendar.from_mapping({"years": {"2026": {"holidays": ["2026-10-01..2026-10-03", date(2026, 10, 5)]}}})
    assert cal.years[2026].holidays == {date(2026, 10, 1), date(2026, 10, 2), date(2026, 10, 3), date(2026, 10, 5)}


# -- worked examples ---------------------------------------------------------------------------


def test_five_working_days_over_national_day_land_after_the_holiday():
    # Wednesday 30 September 2026, 10:00; 1-7 October are holidays, Saturday 10 October is worked.
    start = at(2026, 9, 30, 10)
    assert CAL.add_working_days(start, 1) == at(2026, 10, 8, 10)  # Thursday after the holiday
    assert CAL.add_working_days(start, 3) == at(2026, 10, 10, 10)  # the 调休 Saturday counts
    assert CAL.add_working_days(start, 5) == at(2026, 10, 13, 10)  # Tuesday (Sunday 11th is off)
    assert PLAIN.add_working_days(start, 5) == at(2026, 10, 7, 10)  # no holidays known


def test_a_make_up_saturday_counts_as_a_working_day():
    friday = at(2026, 2, 13, 16)  # Saturday 14 February 2026 is worked (春节 调休)
    assert CAL.add_working_days(friday, 1) == at(2026, 2, 14, 16)
    assert CAL.add_working_hours(friday, 4 * 3600) == at(2026, 2, 14, 11, 30)
    assert CAL.is_working_time(at(2026, 2, 14, 10)) and not PLAIN.is_working_time(at(2026, 2, 14, 10))


def test_friday_afternoon_plus_four_working_hours_lands_on_monday():
    friday = at(2026, 11, 27, 16)  # 1.5 h left on Friday; 2.5 h into Monday from 09:00
    assert CAL.add_working_hours(friday, 4 * 3600) == at(2026, 11, 30, 11, 30)
    assert CAL.working_seconds_between(friday, at(2026, 11, 30, 11, 30)) == 4 * 3600


def test_working_hours_skip_the_lunch_break_and_end_at_a_period_end():
    assert CAL.add_working_hours(at(2026, 11, 23, 11), 2 * 3600) == at(2026, 11, 23, 14, 30)
    assert CAL.add_working_hours(at(2026, 11, 23, 9), 3 * 3600) == at(2026, 11, 23, 12)  # not 13:30
    assert CAL.add_working_hours(at(2026, 11, 23, 9), 7 * 3600) == at(2026, 11, 23, 17, 30)  # one working day


def test_a_start_outside_working_time_counts_from_the_next_working_period():
    assert CAL.next_working_instant(at(2026, 11, 23, 12, 30)) == at(2026, 11, 23, 13, 30)  # lunch
    assert CAL.next_working_instant(at(2026, 11, 23, 17, 30)) == at(2026, 11, 24, 9)  # a period's end is outside
    assert CAL.next_working_instant(at(2026, 11, 28, 10)) == at(2026, 11, 30, 9)  # Saturday
    assert CAL.next_working_instant(at(2026, 11, 23, 10)) == at(2026, 11, 23, 10)
    assert CAL.add_working_days(at(2026, 11, 23, 20), 1) == at(2026, 11, 25, 9)  # Monday night → Wednesday 09:00
    assert CAL.add_working_days(at(2026, 11, 28, 10), 1) == at(2026, 12, 1, 9)  # Saturday → Tuesday 09:00
    assert CAL.add_working_hours(at(2026, 11, 28, 10), 3600) == at(2026, 11, 30, 10)


def test_results_are_in_the_calendars_zone_and_naive_times_are_refused():
    due = CAL.add_working_hours(datetime(2026, 11, 23, 1, 0, tzinfo=timezone.utc), 1800)  # 09:00 Shanghai
    assert due == at(2026, 11, 23, 9, 30) and due.utcoffset() == timedelta(hours=8)
    with pytest.raises(ValueError):
        CAL.add_working_days(datetime(2026, 11, 23, 9), 1)
    with pytest.raises(ValueError):
        CAL.add_working_hours(at(2026, 11, 23, 9), -1)


def test_working_seconds_between_counts_only_working_time():
    assert CAL.working_seconds_between(at(2026, 11, 23, 8), at(2026, 11, 24, 8)) == 7 * 3600
    assert CAL.working_seconds_between(at(2026, 9, 30, 17), at(2026, 10, 8, 9, 30)) == 1800 + 1800
    assert CAL.working_seconds_between(at(2026, 11, 24, 8), at(2026, 11, 23, 8)) == -7 * 3600
    assert CAL.working_seconds_between(at(2026, 11, 28, 8), at(2026, 11, 29, 20)) == 0  # a weekend


# -- properties --------------------------------------------------------------------------------

instants = st.datetimes(min_value=datetime(2025, 12, 20), max_value=datetime(2028, 1, 10),
                        timezones=st.just(SH))
durations = st.integers(min_value=0, max_value=40 * 7 * 3600)  # up to 40 working days, in seconds


@st.composite
def working_instants(draw) -> datetime:
    return CAL.next_working_instant(draw(instants))


@settings(max_examples=200, deadline=None)
@given(instants, durations, durations)
def test_adding_working_time_is_additive(t, a, b):
    assert CAL.add_working_hours(CAL.add_working_hours(t, a), b) == CAL.add_working_hours(t, a + b)


@settings(max_examples=200, deadline=None)
@given(instants, durations, durations)
def test_adding_working_time_is_monotonic(t, a, b):
    lo, hi = sorted((a, b))
    assert t <= CAL.add_working_hours(t, lo) <= CAL.add_working_hours(t, hi)


@settings(max_examples=200, deadline=None)
@given(working_instants(), durations)
def test_the_working_time_between_a_start_and_its_deadline_is_the_limit(t, s):
    assert CAL.is_working_time(t)
    assert CAL.working_seconds_between(t, CAL.add_working_hours(t, s)) == s


@settings(max_examples=200, deadline=None)
@given(instants, instants)
def test_adding_the_working_time_between_two_instants_reaches_the_later_ones_working_instant(a, b):
    a, b = sorted((a, b))
    s = CAL.working_seconds_between(a, b)
    assert s >= 0 and CAL.working_seconds_between(b, a) == -s
    end = CAL.add_working_hours(a, s)
    assert end <= b and CAL.working_seconds_between(end, b) == 0


@settings(max_examples=200, deadline=None)
@given(instants, instants, instants)
def test_working_time_between_adds_up_over_a_midpoint(a, b, c):
    a, b, c = sorted((a, b, c))
    total = CAL.working_seconds_between(a, b) + CAL.working_seconds_between(b, c)
    assert CAL.working_seconds_between(a, c) == pytest.approx(total, abs=1e-6)


@settings(max_examples=200, deadline=None)
@given(instants, st.integers(min_value=0, max_value=40), st.integers(min_value=0, max_value=40))
def test_working_days_land_on_a_working_day_in_working_time_and_add_up(t, m, n):
    due = CAL.add_working_days(t, n)
    assert CAL.is_workday(due.date()) and CAL.is_working_time(due)
    assert due.time() == CAL.next_working_instant(t).time()
    assert CAL.add_working_days(CAL.add_working_days(t, m), n) == CAL.add_working_days(t, m + n)
    assert CAL.working_seconds_between(t, due) == n * 7 * 3600  # a working day is 7 working hours


@settings(max_examples=100, deadline=None)
@given(instants)
def test_the_next_working_instant_is_in_working_time_with_none_before_it(t):
    nxt = CAL.next_working_instant(t)
    assert nxt >= t and CAL.is_working_time(nxt)
    assert CAL.working_seconds_between(t, nxt) == 0


def test_a_custom_working_day():
    cal = WorkCalendar.from_mapping({"timezone": "UTC", "working_hours": [["08:00", "16:00"]]})
    assert cal.add_working_hours(datetime(2026, 11, 27, 15, tzinfo=timezone.utc), 2 * 3600) == \
        datetime(2026, 11, 30, 9, tzinfo=timezone.utc)
    assert cal.working_hours == ((time(8), time(16)),)
