"""Period arithmetic: months, quarters, years in Asia/Shanghai."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from services.assessment.domain import (
    Period,
    enclosing_periods,
    parse_period,
    period_end,
    period_start,
    periods_ended_between,
    periods_of,
)
from services.assessment.domain.periods import InvalidPeriod

from assessment_builders import CST


@pytest.mark.parametrize("text, kind", [("2026-11", "month"), ("2026-Q4", "quarter"), ("2026", "year"), ("2027-01", "month")])
def test_a_period_string_parses_and_prints_back(text, kind):
    p = parse_period(text)
    assert str(p) == text
    assert p.kind == kind


@pytest.mark.parametrize("text", ["2026-13", "2026-00", "2026-Q5", "2026-Q0", "26-11", "2026-1", "2026/11", "", "2026-11-01",
                                  "\u0662\u0660\u0662\u0666-11", "\uff12\uff10\uff12\uff16"])  # Arabic-Indic, fullwidth digits
def test_a_malformed_period_is_refused_with_a_named_reason(text):
    with pytest.raises(InvalidPeriod) as e:
        parse_period(text)
    assert e.value.reason == "invalid_period"


def test_a_month_runs_from_its_first_midnight_to_the_next_months_in_shanghai():
    assert period_start("2026-11") == datetime(2026, 11, 1, tzinfo=CST)
    assert period_end("2026-11") == datetime(2026, 12, 1, tzinfo=CST)
    assert period_end("2026-12") == datetime(2027, 1, 1, tzinfo=CST)
    assert period_end("2026-02") == datetime(2026, 3, 1, tzinfo=CST)


def test_quarters_and_years_have_calendar_bounds():
    assert period_start("2026-Q1") == datetime(2026, 1, 1, tzinfo=CST)
    assert period_end("2026-Q1") == datetime(2026, 4, 1, tzinfo=CST)
    assert period_start("2026-Q4") == datetime(2026, 10, 1, tzinfo=CST)
    assert period_end("2026-Q4") == datetime(2027, 1, 1, tzinfo=CST)
    assert period_end("2026") == datetime(2027, 1, 1, tzinfo=CST)


def test_an_instant_falls_in_its_month_quarter_and_year():
    assert periods_of(datetime(2026, 11, 22, 8, tzinfo=CST)) == ("2026-11", "2026-Q4", "2026")
    assert periods_of(datetime(2026, 3, 31, 23, 59, tzinfo=CST)) == ("2026-03", "2026-Q1", "2026")


def test_periods_are_counted_in_shanghai_time_not_utc():
    # 2026-11-30 17:00 UTC is 2026-12-01 01:00 in Shanghai
    assert periods_of(datetime(2026, 11, 30, 17, tzinfo=timezone.utc)) == ("2026-12", "2026-Q4", "2026")
    # 2026-12-31 16:00 UTC is 2027-01-01 00:00 in Shanghai: a new year
    assert periods_of(datetime(2026, 12, 31, 16, tzinfo=timezone.utc)) == ("2027-01", "2027-Q1", "2027")
    assert periods_of(datetime(2026, 12, 31, 15, 59, 59, tzinfo=timezone.utc)) == ("2026-12", "2026-Q4", "2026")


def test_an_instant_at_either_side_of_every_month_start_falls_where_the_shanghai_calendar_puts_it():
    # periods_of reads the periods of an hour of UTC once (Shanghai is 8 whole hours ahead): each
    # month's first instant, the one before it and the last of its first hour, 1960 to 2040
    from services.assessment.domain.periods import SHANGHAI

    def direct(at: datetime) -> tuple[str, str, str]:
        local = at.astimezone(SHANGHAI)
        return (f"{local.year:04d}-{local.month:02d}", f"{local.year:04d}-Q{(local.month - 1) // 3 + 1}",
                f"{local.year:04d}")

    checked = 0
    for year in range(1960, 2041):
        for month in range(1, 13):
            start = period_start(f"{year:04d}-{month:02d}")
            for at in (start, start - timedelta(microseconds=1), start + timedelta(minutes=59, seconds=59)):
                assert periods_of(at) == direct(at), at
                checked += 1
    assert checked == 81 * 12 * 3
    assert periods_of(datetime(1969, 12, 31, 16, tzinfo=timezone.utc)) == ("1970-01", "1970-Q1", "1970")
    assert periods_of(datetime(1969, 12, 31, 15, 59, 59, tzinfo=timezone.utc)) == ("1969-12", "1969-Q4", "1969")
    last = datetime(2999, 12, 31, 15, 59, 59, 999999, tzinfo=timezone.utc)  # a float timestamp rounds it up
    assert periods_of(last) == direct(last) == ("2999-12", "2999-Q4", "2999")


def test_a_naive_timestamp_is_refused():
    with pytest.raises(ValueError):
        periods_of(datetime(2026, 11, 1))


def test_the_end_instant_belongs_to_the_next_period():
    p = Period.parse("2026-11")
    assert p.contains(datetime(2026, 11, 30, 23, 59, 59, tzinfo=CST))
    assert not p.contains(p.end)
    assert p.contains(p.start)
    assert not p.has_ended(p.end - timedelta(microseconds=1))
    assert p.has_ended(p.end)


def test_a_month_is_enclosed_by_its_quarter_and_year():
    assert enclosing_periods("2026-11") == ("2026-11", "2026-Q4", "2026")
    assert enclosing_periods("2026-04") == ("2026-04", "2026-Q2", "2026")
    assert enclosing_periods("2026-Q2") == ("2026-Q2", "2026")
    assert enclosing_periods("2026") == ("2026",)


def test_a_quarter_is_made_of_three_months_and_a_year_of_twelve():
    assert [str(m) for m in Period.parse("2026-Q4").months()] == ["2026-10", "2026-11", "2026-12"]
    assert len(Period.parse("2026").months()) == 12


def test_periods_ended_lists_what_a_timer_must_close():
    assert periods_ended_between(datetime(2026, 11, 15, tzinfo=CST), datetime(2026, 12, 1, tzinfo=CST)) == ["2026-11"]
    assert periods_ended_between(datetime(2026, 12, 15, tzinfo=CST), datetime(2027, 1, 1, 0, 5, tzinfo=CST)) == [
        "2026-12", "2026-Q4", "2026",
    ]
    assert periods_ended_between(datetime(2026, 12, 1, tzinfo=CST), datetime(2026, 12, 20, tzinfo=CST)) == []
    assert periods_ended_between(datetime(2026, 2, 10, tzinfo=CST), datetime(2026, 4, 2, tzinfo=CST)) == [
        "2026-02", "2026-03", "2026-Q1",
    ]
