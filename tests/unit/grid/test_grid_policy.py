"""The deadline policy (时限标准): defaults, the data file, rules, urgency and working days."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest
import yaml
from grid_builders import SH
from pydantic import ValidationError

from schemas.grid import Category, Grade
from services.grid.domain import DEFAULT_POLICY, DEFAULT_POLICY_MAPPING, DeadlinePolicy, Span

POLICY_FILE = Path(__file__).resolve().parents[3] / "services" / "grid" / "policy" / "deadlines.yaml"


def policy(**changes) -> DeadlinePolicy:
    return DeadlinePolicy.from_mapping({**DEFAULT_POLICY_MAPPING, **changes})


def test_the_policy_file_is_the_default_policy():
    assert DeadlinePolicy.from_mapping(yaml.safe_load(POLICY_FILE.read_text(encoding="utf-8"))) == DEFAULT_POLICY


@pytest.mark.parametrize("category", [c for c in Category if not c.is_hazard])
def test_ordinary_cases_are_registered_and_dispatched_within_30_minutes(category):
    limits = DEFAULT_POLICY.limits_for(category)
    assert not limits.urgent
    assert limits.register.clock + limits.dispatch.clock == timedelta(minutes=30)


@pytest.mark.parametrize("category,grade", [(Category.HAZARD_FIRE, Grade.SEVERE), (Category.HAZARD_FOOD, Grade.MAJOR)])
def test_urgent_cases_are_registered_and_dispatched_within_10_minutes(category, grade):
    limits = DEFAULT_POLICY.limits_for(category, grade)
    assert limits.urgent
    assert limits.register.clock + limits.dispatch.clock == timedelta(minutes=10)


def test_a_reporter_may_make_any_case_urgent():
    assert DEFAULT_POLICY.limits_for(Category.OTHER, urgent=True).dispatch == Span(amount=5, unit="m")


@pytest.mark.parametrize("kind", ["hazard.fire", "hazard.production", "hazard.food"])
def test_severe_hazards_are_handled_within_one_day(kind):
    assert DEFAULT_POLICY.limits_for(Category(kind), Grade.SEVERE).handle.clock == timedelta(days=1)


def test_general_hazards_are_not_urgent_and_get_longer_than_severe_ones():
    general = DEFAULT_POLICY.limits_for(Category.HAZARD_PRODUCTION, Grade.GENERAL)
    assert not general.urgent and general.handle.clock > timedelta(days=1)


def test_verification_is_due_within_one_hour_and_rework_defaults_to_the_handling_limit():
    limits = DEFAULT_POLICY.limits_for(Category.ENVIRONMENT)
    assert limits.verify.clock == timedelta(hours=1)
    assert limits.rework == limits.handle == Span(amount=2, unit="d")


def test_a_grade_rule_overrides_only_what_it_names():
    p = policy(rules={"hazard.fire": {"handle": "4d", "verify": "2h"}, "hazard.fire/major": {"handle": "1d"}})
    limits = p.limits_for(Category.HAZARD_FIRE, Grade.MAJOR)
    assert (str(limits.handle), str(limits.verify), str(limits.register)) == ("1d", "2h", "15m")
    assert str(p.limits_for(Category.HAZARD_FIRE, Grade.GENERAL).handle) == "4d"


def test_an_explicit_rework_limit_is_used_for_rework():
    p = policy(rules={"environment": {"rework": "8h"}})
    assert str(p.limits_for(Category.ENVIRONMENT).rework) == "8h"


@pytest.mark.parametrize(
    "changes",
    [
        {"rules": {"hazard.water": {"handle": "1d"}}},
        {"rules": {"environment/severe": {"handle": "1d"}}},
        {"rules": {"hazard.fire/extreme": {"handle": "1d"}}},
        {"rules": {"environment": {"handle": "soon"}}},
        {"rules": {"environment": {"handle": "0d"}}},
        {"rules": {"environment": {"deadline": "1d"}}},
        {"default": {"register": "15m", "dispatch": "15m", "handle": "5d"}},
        {"timezone": "Mars/Olympus"},
        {"working_days": True},
    ],
)
def test_a_mistyped_policy_is_refused(changes):
    with pytest.raises(ValidationError):
        policy(**changes)


def test_due_times_are_expressed_in_asia_shanghai():
    due = DEFAULT_POLICY.due(datetime(2026, 11, 23, 1, 0, tzinfo=timezone.utc), Span.model_validate("10m"))
    assert due.utcoffset() == timedelta(hours=8)
    assert due == datetime(2026, 11, 23, 9, 10, tzinfo=SH)


def test_a_naive_start_is_refused():
    with pytest.raises(ValueError):
        DEFAULT_POLICY.due(datetime(2026, 11, 23, 9, 0), Span.model_validate("1d"))


def test_without_working_days_a_day_is_24_hours_even_over_a_weekend():
    friday = datetime(2026, 11, 27, 10, 0, tzinfo=SH)
    assert DEFAULT_POLICY.due(friday, Span.model_validate("1d")) == datetime(2026, 11, 28, 10, 0, tzinfo=SH)


WD = policy(working_days_only=True, holidays=["2026-10-01", "2026-10-02"])


def test_working_days_skip_the_weekend():
    friday = datetime(2026, 11, 27, 10, 0, tzinfo=SH)
    assert WD.due(friday, Span.model_validate("1d")) == datetime(2026, 11, 30, 10, 0, tzinfo=SH)  # Monday
    assert WD.due(friday, Span.model_validate("3d")) == datetime(2026, 12, 2, 10, 0, tzinfo=SH)  # Wednesday


def test_working_days_from_a_weekend_count_from_the_start_of_monday():
    saturday = datetime(2026, 11, 28, 15, 30, tzinfo=SH)
    assert WD.due(saturday, Span.model_validate("1d")) == datetime(2026, 12, 1, 0, 0, tzinfo=SH)  # end of Monday


def test_working_days_skip_listed_holidays():
    wednesday = datetime(2026, 9, 30, 9, 0, tzinfo=SH)  # 1 and 2 October are holidays, 3-4 a weekend
    assert WD.due(wednesday, Span.model_validate("1d")) == datetime(2026, 10, 5, 9, 0, tzinfo=SH)
    assert not WD.is_working_day(date(2026, 10, 1)) and WD.is_working_day(date(2026, 10, 5))


def test_working_days_are_counted_in_shanghai_time():
    # Friday 23:30 in Shanghai is Friday 15:30 UTC; one working day later is Monday 23:30 Shanghai
    start = datetime(2026, 11, 27, 15, 30, tzinfo=timezone.utc)
    assert WD.due(start, Span.model_validate("1d")) == datetime(2026, 11, 30, 23, 30, tzinfo=SH)


def test_minute_and_hour_limits_run_on_the_clock_even_in_working_days_mode():
    saturday = datetime(2026, 11, 28, 15, 30, tzinfo=SH)
    assert WD.due(saturday, Span.model_validate("10m")) == saturday + timedelta(minutes=10)
    assert WD.due(saturday, Span.model_validate("24h")) == saturday + timedelta(hours=24)


def test_spans_parse_and_print_as_written():
    assert [str(Span.model_validate(s)) for s in ("10m", " 4h", "3d")] == ["10m", "4h", "3d"]
    assert Span.model_validate("90m").clock == timedelta(minutes=90)
