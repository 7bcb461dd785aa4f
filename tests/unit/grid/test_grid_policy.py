"""The deadline policy (时限标准): defaults, the data file, rules, urgency, clock and working time."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import yaml
from grid_builders import SH
from pydantic import ValidationError

from schemas.grid import Category, Grade, Stage
from services.grid.app.handler import load_calendar, load_policy
from services.grid.domain import DEFAULT_POLICY, DEFAULT_POLICY_MAPPING, DeadlinePolicy, Span, WorkCalendar

POLICY_FILE = Path(__file__).resolve().parents[3] / "services" / "grid" / "policy" / "deadlines.yaml"
CAL = load_calendar()
SHIPPED = load_policy(POLICY_FILE)  # the shipped policy on the shipped calendar


def policy(**changes) -> DeadlinePolicy:
    return DeadlinePolicy.from_mapping({**DEFAULT_POLICY_MAPPING, **changes})


def span(s: str) -> Span:
    return Span.model_validate(s)


def test_the_policy_file_is_the_default_policy():
    assert DeadlinePolicy.from_mapping(yaml.safe_load(POLICY_FILE.read_text(encoding="utf-8"))) == DEFAULT_POLICY
    assert DEFAULT_POLICY.calendar == WorkCalendar()  # the domain's default: Monday–Friday
    assert SHIPPED.calendar == CAL and SHIPPED == DeadlinePolicy.from_mapping(DEFAULT_POLICY_MAPPING, calendar=CAL)


@pytest.mark.parametrize("category", [c for c in Category if not c.is_hazard])
def test_ordinary_cases_are_registered_and_dispatched_within_two_working_hours(category):
    limits = DEFAULT_POLICY.limits_for(category)
    assert not limits.urgent and limits.control is None
    assert (str(limits.register), str(limits.dispatch), str(limits.accept), str(limits.contact)) == \
        ("1wh", "1wh", "2wh", "4wh")


@pytest.mark.parametrize("category,grade", [(Category.HAZARD_FIRE, Grade.SEVERE), (Category.HAZARD_FOOD, Grade.MAJOR)])
def test_urgent_cases_are_registered_and_dispatched_within_10_minutes_on_the_clock(category, grade):
    limits = DEFAULT_POLICY.limits_for(category, grade)
    assert limits.urgent
    assert limits.register.clock + limits.dispatch.clock == timedelta(minutes=10)
    assert limits.contact.clock == timedelta(hours=1) and limits.accept.clock == timedelta(minutes=30)


def test_a_reporter_may_make_any_case_urgent():
    limits = DEFAULT_POLICY.limits_for(Category.OTHER, urgent=True)
    assert (limits.dispatch, limits.contact, limits.handle) == (span("5m"), span("1h"), span("5wd"))


@pytest.mark.parametrize("kind", ["hazard.fire", "hazard.production", "hazard.food"])
def test_severe_hazards_are_controlled_within_4_hours_then_rectified_within_15_working_days(kind):
    limits = DEFAULT_POLICY.limits_for(Category(kind), Grade.SEVERE)
    assert limits.control.clock == timedelta(hours=4) and limits.for_stage(Stage.CONTROL) == limits.control
    assert limits.handle == span("15wd")
    assert DEFAULT_POLICY.limits_for(Category(kind), Grade.MAJOR).control is None


def test_general_hazards_are_not_urgent_and_get_longer_than_major_ones():
    general = DEFAULT_POLICY.limits_for(Category.HAZARD_PRODUCTION, Grade.GENERAL)
    assert not general.urgent and general.handle == span("3wd")
    assert DEFAULT_POLICY.limits_for(Category.HAZARD_PRODUCTION, Grade.MAJOR).handle == span("2wd")


def test_verification_is_due_within_four_working_hours_and_rework_defaults_to_the_handling_limit():
    limits = DEFAULT_POLICY.limits_for(Category.ENVIRONMENT)
    assert limits.verify == span("4wh")
    assert limits.rework == limits.handle == span("2wd")


def test_a_grade_rule_overrides_only_what_it_names():
    p = policy(rules={"hazard.fire": {"handle": "4wd", "verify": "2h"}, "hazard.fire/major": {"handle": "1d"}})
    limits = p.limits_for(Category.HAZARD_FIRE, Grade.MAJOR)
    assert (str(limits.handle), str(limits.verify), str(limits.register)) == ("1d", "2h", "1wh")
    assert str(p.limits_for(Category.HAZARD_FIRE, Grade.GENERAL).handle) == "4wd"


def test_an_explicit_rework_limit_is_used_for_rework():
    p = policy(rules={"environment": {"rework": "8wh"}})
    assert str(p.limits_for(Category.ENVIRONMENT).rework) == "8wh"


@pytest.mark.parametrize(
    "changes",
    [
        {"rules": {"hazard.water": {"handle": "1d"}}},
        {"rules": {"environment/severe": {"handle": "1d"}}},
        {"rules": {"hazard.fire/extreme": {"handle": "1d"}}},
        {"rules": {"environment": {"handle": "soon"}}},
        {"rules": {"environment": {"handle": "0d"}}},
        {"rules": {"environment": {"handle": "2w"}}},
        {"rules": {"environment": {"deadline": "1d"}}},
        {"rules": {"environment": {"control": "4h"}}},  # control is for severe hazards only
        {"rules": {"hazard.fire/major": {"control": "4h"}}},
        {"rules": {"hazard.fire": {"control": "4h"}}},
        {"default": {"register": "1wh", "dispatch": "1wh", "accept": "2wh", "contact": "4wh", "handle": "5wd"}},
        {"default": {**DEFAULT_POLICY_MAPPING["default"], "control": "4h"}},
        {"urgent": {"register": "5m"}},
        {"working_days": True},
    ],
)
def test_a_mistyped_policy_is_refused(changes):
    with pytest.raises(ValidationError):
        policy(**changes)


@pytest.mark.parametrize(
    "key,value,hint",
    [
        ("working_days_only", True, "calendar.yaml"),
        ("holidays", ["2026-10-01"], "calendar.yaml"),
        ("timezone", "Asia/Shanghai", "calendar.yaml"),
        ("escalate_on_overdue", True, "超期督办"),
    ],
)
def test_the_keys_that_moved_to_the_calendar_or_went_away_are_refused_with_a_pointer(key, value, hint):
    with pytest.raises(ValidationError, match=f"{key}.*no longer") as e:
        policy(**{key: value})
    assert hint in str(e.value)


def test_due_times_are_expressed_in_the_calendars_zone():
    due = DEFAULT_POLICY.due(datetime(2026, 11, 23, 1, 0, tzinfo=timezone.utc), span("10m"))
    assert due.utcoffset() == timedelta(hours=8)
    assert due == datetime(2026, 11, 23, 9, 10, tzinfo=SH)


def test_a_naive_start_is_refused():
    for s in ("1d", "1wd", "1wh"):
        with pytest.raises(ValueError):
            DEFAULT_POLICY.due(datetime(2026, 11, 23, 9, 0), span(s))


def test_clock_limits_run_on_the_clock_over_a_weekend_and_a_holiday():
    saturday = datetime(2026, 10, 3, 15, 30, tzinfo=SH)  # National Day
    assert SHIPPED.due(saturday, span("10m")) == saturday + timedelta(minutes=10)
    assert SHIPPED.due(saturday, span("1d")) == saturday + timedelta(hours=24)
    assert SHIPPED.due(saturday, span("4h")) == saturday + timedelta(hours=4)


def test_working_days_skip_the_weekend():
    friday = datetime(2026, 11, 27, 10, 0, tzinfo=SH)
    assert SHIPPED.due(friday, span("1wd")) == datetime(2026, 11, 30, 10, 0, tzinfo=SH)  # Monday
    assert SHIPPED.due(friday, span("3wd")) == datetime(2026, 12, 2, 10, 0, tzinfo=SH)  # Wednesday


def test_a_five_working_day_deadline_over_the_national_day_holiday_lands_after_it():
    wednesday = datetime(2026, 9, 30, 10, 0, tzinfo=SH)  # 1-7 October off, Saturday 10 October worked
    assert SHIPPED.due(wednesday, span("5wd")) == datetime(2026, 10, 13, 10, 0, tzinfo=SH)
    assert DEFAULT_POLICY.due(wednesday, span("5wd")) == datetime(2026, 10, 7, 10, 0, tzinfo=SH)  # no holidays known
    assert not SHIPPED.is_working_day(datetime(2026, 10, 1).date()) and SHIPPED.is_working_day(datetime(2026, 10, 10).date())


def test_working_hours_from_friday_afternoon_land_on_monday():
    friday = datetime(2026, 11, 27, 16, 0, tzinfo=SH)
    assert SHIPPED.due(friday, span("4wh")) == datetime(2026, 11, 30, 11, 30, tzinfo=SH)
    assert SHIPPED.working_between(friday, datetime(2026, 11, 30, 11, 30, tzinfo=SH)) == 4 * 3600


def test_an_ordinary_report_on_saturday_night_is_due_one_working_hour_into_monday():
    saturday = datetime(2026, 11, 28, 22, 0, tzinfo=SH)
    limits = SHIPPED.limits_for(Category.ENVIRONMENT)
    assert SHIPPED.due(saturday, limits.register) == datetime(2026, 11, 30, 10, 0, tzinfo=SH)
    urgent = SHIPPED.limits_for(Category.HAZARD_FIRE, Grade.SEVERE)
    assert SHIPPED.due(saturday, urgent.register) == saturday + timedelta(minutes=5)


def test_working_days_are_counted_in_shanghai_time():
    # Friday 10:30 in Shanghai is Friday 02:30 UTC; one working day later is Monday 10:30 Shanghai
    start = datetime(2026, 11, 27, 2, 30, tzinfo=timezone.utc)
    assert SHIPPED.due(start, span("1wd")) == datetime(2026, 11, 30, 10, 30, tzinfo=SH)


def test_spans_parse_and_print_as_written():
    assert [str(span(s)) for s in ("10m", " 4h", "3d", "4wh", "5wd")] == ["10m", "4h", "3d", "4wh", "5wd"]
    assert span("90m").clock == timedelta(minutes=90)
    assert span("4wh").working and not span("4h").working
    with pytest.raises(ValueError):
        span("4wh").clock
