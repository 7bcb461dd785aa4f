"""Earning rules: the data file, lookups, amounts and validation."""
from datetime import datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from services.points.domain import EarningRules, SourceKind
from points_reference import default_rules

SH = timezone(timedelta(hours=8))


def test_default_rules_file_loads_with_two_year_validity():
    rules = default_rules()
    assert rules.validity.years == 2
    assert {r.source for r in rules.rules} == set(SourceKind)


def test_local_deed_examples_are_in_the_default_rules():
    rules = default_rules()
    bounds = {c: (rules.rule_for("deed", c).min, rules.rule_for("deed", c).max) for c in rules.deed_categories()}
    assert bounds == {
        "civility_persuasion": (10, 10), "lost_property": (5, 10), "mediation": (5, 10),
        "hardship_help": (10, 10), "disaster_relief": (20, 20),
    }


def test_order_points_grow_with_service_minutes_up_to_the_rule_max():
    rules = EarningRules.from_mapping({"orders": {"daily_care": {"points": 2, "per_hour": 6, "max": 10}}})
    rule = rules.rule_for("order", "daily_care")
    assert rule.id == "order.daily_care"
    assert [rule.amount_for(m) for m in (0, 9, 10, 30, 60, 600)] == [2, 2, 3, 5, 8, 10]


def test_case_category_matches_its_dotted_parent_then_the_fallback():
    rules = EarningRules.from_mapping({"reports": {"hazard": {"points": 5}, "*": {"points": 1}}})
    assert rules.rule_for("report", "hazard.fire").id == "report.hazard"
    assert rules.rule_for("report", "hazard").id == "report.hazard"
    assert rules.rule_for("report", "environment").id == "report.default"


def test_category_without_rule_or_fallback_earns_nothing():
    rules = EarningRules.from_mapping({"orders": {"legal_aid": {"points": 5}}})
    assert rules.rule_for("order", "cleaning") is None


def test_rules_take_default_caps_unless_they_name_their_own():
    rules = EarningRules.from_mapping({
        "default_caps": {"day": 50, "month": 300},
        "reports": {"*": {"points": 2}, "hazard": {"points": 5, "caps": {"day": 15}}},
    })
    assert rules.rule_for("report", "other").caps.model_dump() == {"day": 50, "month": 300}
    assert rules.rule_for("report", "hazard.food").caps.model_dump() == {"day": 15, "month": None}


@pytest.mark.parametrize("mapping", [
    {"deeds": {"mediation": {"min": 10, "max": 5}}},
    {"deeds": {"mediation": {"points": 5}}},
    {"orders": {"cleaning": {"points": -1}}},
    {"orders": {"cleaning": {"points": 1, "bonus": 3}}},
    {"validity": {"years": 2, "days": 30}},
    {"reward": {}},
])
def test_invalid_rules_are_refused_when_loaded(mapping):
    with pytest.raises(ValueError):
        EarningRules.from_mapping(mapping)


def test_deed_rule_allows_only_points_within_its_bounds():
    rule = default_rules().rule_for("deed", "lost_property")
    assert [p for p in range(0, 13) if rule.allows(p)] == [5, 6, 7, 8, 9, 10]


def test_validity_in_years_keeps_the_shanghai_wall_clock_and_handles_leap_days():
    rules = EarningRules.from_mapping({"validity": {"years": 2}})
    assert rules.expires_at(datetime(2026, 3, 1, 0, 30, tzinfo=SH)) == datetime(2028, 3, 1, 0, 30, tzinfo=SH)
    assert rules.expires_at(datetime(2028, 2, 29, 9, tzinfo=SH)) == datetime(2030, 2, 28, 9, tzinfo=SH)
    # 2026-02-28T17:00Z is already 1 March in Shanghai
    assert rules.expires_at(datetime(2026, 2, 28, 17, tzinfo=timezone.utc)) == datetime(2028, 3, 1, 1, tzinfo=SH)


def test_validity_in_days():
    rules = EarningRules.from_mapping({"validity": {"days": 30}})
    assert rules.expires_at(datetime(2026, 1, 1, tzinfo=SH)) == datetime(2026, 1, 31, tzinfo=SH)


def test_rules_are_data_that_round_trip():
    rules = default_rules()
    assert EarningRules.model_validate(rules.model_dump(mode="json")) == rules
    with pytest.raises(ValidationError):
        EarningRules.model_validate({"rules": [r.model_dump() for r in rules.rules[:1]] * 2})


def test_a_changed_rules_file_is_read_again_once_its_recheck_interval_passed(tmp_path):
    """The file is looked at no more than once per ``recheck_seconds``: a change shows at the
    first use after that; an invalid file keeps the rules in force."""
    import os

    import yaml

    from points_reference import DEFAULT_RULES_PATH
    from services.points.app.rules import RulesFile

    path = tmp_path / "earning.yaml"
    mapping = yaml.safe_load(DEFAULT_RULES_PATH.read_text(encoding="utf-8"))
    path.write_text(yaml.safe_dump(mapping, allow_unicode=True), encoding="utf-8")

    def change(days: int) -> None:
        mapping["validity"] = {"days": days}
        path.write_text(yaml.safe_dump(mapping, allow_unicode=True), encoding="utf-8")
        os.utime(path, ns=(path.stat().st_mtime_ns + days * 1_000_000_000,) * 2)  # a new stamp, however fast

    slow = RulesFile(path, recheck_seconds=3600)
    change(3)
    assert slow.current().validity.years == 2  # not looked at again within the hour
    slow.recheck_seconds = 0
    assert slow.current().validity.days == 3

    eager = RulesFile(path, recheck_seconds=0)
    change(5)
    assert eager.current().validity.days == 5
    path.write_text("orders: [", encoding="utf-8")
    assert eager.current().validity.days == 5  # invalid: the rules in force stay
