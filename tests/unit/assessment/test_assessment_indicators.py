"""Every indicator formula, including empty denominators, and where each indicator applies."""
from __future__ import annotations

import pytest

from services.assessment.domain import CATALOGUE, EntityType, evaluate, indicator_values, indicators_for
from services.assessment.domain.indicators import Parameters

# (indicator, facts, expected numerator, expected denominator, expected value)
FORMULAS = [
    ("registration_rate", {"cases_registered": 9, "cases_received": 12}, 9, 12, 0.75),
    ("dispatch_rate", {"cases_dispatched": 8, "cases_registered": 10}, 8, 10, 0.8),
    ("closure_rate", {"cases_closed": 7, "cases_due": 8}, 7, 8, 0.875),
    ("on_time_closure_rate", {"cases_closed_on_time": 6, "cases_due": 8}, 6, 8, 0.75),
    ("rework_rate", {"cases_reworked": 1, "cases_due": 8}, 1, 8, 0.125),
    ("extension_rate", {"cases_late": 2, "cases_due": 8}, 2, 8, 0.25),
    ("avg_handling_hours", {"handling_seconds": 3 * 36000, "cases_closed": 3}, 30, 3, 10.0),
    (
        "satisfaction_rate",
        {"feedback_satisfied": 6, "feedback_basically_satisfied": 3, "feedback_unsatisfied": 1, "feedback_received": 10},
        6 + 0.9 * 3, 10, 0.87,
    ),
    ("acceptance_rate", {"orders_accepted": 3, "orders_dispatched": 4}, 3, 4, 0.75),
    ("completion_rate", {"orders_completed": 2, "orders_accepted": 4}, 2, 4, 0.5),
    ("avg_order_rating", {"rating_sum": 23, "orders_evaluated": 5}, 23, 5, 4.6),
    ("evaluation_pass_rate", {"orders_passed": 4, "orders_evaluated": 5}, 4, 5, 0.8),
    ("points_earned", {"points_earned": 37}, 37, None, 37),
    ("active_volunteers", {"active_volunteers": 5}, 5, None, 5),
    ("patrols_logged", {"patrols_logged": 21}, 21, None, 21),
    ("review_score", {"review_score_sum": 170, "reviews_received": 2}, 170, 2, 85.0),
    ("report_timeliness", {"cases_reported_on_time": 9, "cases_received": 10}, 9, 10, 0.9),
    ("verify_timeliness", {"verifications_on_time": 3, "verifications_done": 4}, 3, 4, 0.75),
    ("patrol_coverage", {"patrol_weeks_covered": 7, "patrol_weeks_due": 8}, 7, 8, 0.875),
    ("accept_on_time_rate", {"cases_accepted_on_time": 18, "dept_cases_received": 20}, 18, 20, 0.9),
    ("response_rate", {"cases_contacted_on_time": 17, "dept_cases_in_rates": 20}, 17, 20, 0.85),
    ("resolution_rate", {"cases_resolved": 14, "dept_cases_in_rates": 20}, 14, 20, 0.7),
    ("return_rate", {"returns_approved": 2, "dept_cases_received": 20}, 2, 20, 0.1),
    ("overdue_rate", {"cases_supervised": 3, "dept_cases_received": 20}, 3, 20, 0.15),
    ("whistle_report_rate", {"whistles_answered_on_time": 3, "whistles_summoned": 4}, 3, 4, 0.75),
    ("avg_whistle_rating", {"whistle_rating_sum": 13, "whistles_rated": 3}, 13, 3, 13 / 3),
    # 组织建设, from party facts
    ("org_coverage_rate", {"grids_covered": 5, "grids_coverable": 8}, 5, 8, 0.625),
    ("org_life_on_time_rate", {"org_life_held": 9, "org_life_required": 12}, 9, 12, 0.75),
    ("org_life_attendance_rate", {"org_life_attendees": 45, "org_life_expected": 50}, 45, 50, 0.9),
    ("unit_report_rate", {"units_reported": 3, "units_known": 4}, 3, 4, 0.75),
    ("council_meeting_on_time_rate", {"council_quarters_held": 1, "council_quarters_due": 2}, 1, 2, 0.5),
    ("council_attendance_rate", {"council_attendees": 8, "council_expected": 10}, 8, 10, 0.8),
    ("resolution_completion_rate", {"resolutions_completed": 3, "resolutions_due": 5}, 3, 5, 0.6),
    ("project_claim_rate", {"projects_claimed": 4, "projects_posted": 5}, 4, 5, 0.8),
    ("project_completion_rate", {"projects_completed": 1, "projects_claimed": 4}, 1, 4, 0.25),
    ("member_report_rate", {"members_reported": 7, "members_report_due": 10}, 7, 10, 0.7),
    ("commitment_fulfilment_rate", {"commitments_fulfilled": 2, "commitments_made": 3}, 2, 3, 2 / 3),
    # 三率: response 0.85 × 0.30 + resolution 0.70 × 0.35 + satisfaction 0.87 × 0.35 = 0.8045
    ("three_rates", {"cases_contacted_on_time": 17, "cases_resolved": 14, "dept_cases_in_rates": 20,
                     "feedback_satisfied": 6, "feedback_basically_satisfied": 3, "feedback_received": 10},
     0.8045, 1.0, 0.8045),
]


def test_the_catalogue_has_every_indicator_of_the_formulas_above():
    assert sorted(CATALOGUE) == sorted(name for name, *_ in FORMULAS)
    assert all(i.formula and i.label for i in CATALOGUE.values())


@pytest.mark.parametrize("name, facts, num, den, value", FORMULAS, ids=[f[0] for f in FORMULAS])
def test_each_formula_gives_its_hand_computed_value(name, facts, num, den, value):
    v = evaluate(CATALOGUE[name], facts)
    assert v.numerator == pytest.approx(num)
    assert v.denominator == (None if den is None else pytest.approx(den))
    assert v.value == pytest.approx(value)


RATIOS = [n for n, i in CATALOGUE.items() if i.denominator is not None]


@pytest.mark.parametrize("name", RATIOS)
def test_an_empty_denominator_gives_no_value_not_zero(name):
    ind = CATALOGUE[name]
    facts = {f.value: 3.0 for f, _ in ind.numerator}  # a numerator, but nothing in the denominator
    v = evaluate(ind, facts)
    assert v.value is None
    assert v.denominator == 0


@pytest.mark.parametrize("name", RATIOS)
def test_an_entity_without_any_counter_has_no_ratio_value(name):
    assert evaluate(CATALOGUE[name], {}).value is None


@pytest.mark.parametrize("name", ["points_earned", "active_volunteers", "patrols_logged"])
def test_a_count_without_events_is_a_real_zero(name):
    assert evaluate(CATALOGUE[name], {}).value == 0


def test_satisfaction_weighs_basically_satisfied_at_nine_tenths():
    only_basic = {"feedback_basically_satisfied": 4, "feedback_received": 4}
    assert evaluate(CATALOGUE["satisfaction_rate"], only_basic).value == pytest.approx(0.9)
    unsatisfied = {"feedback_unsatisfied": 4, "feedback_received": 4}
    assert evaluate(CATALOGUE["satisfaction_rate"], unsatisfied).value == 0


def test_inverse_indicators_are_marked_lower_is_better():
    lower = {n for n, i in CATALOGUE.items() if not i.higher_is_better}
    assert lower == {"rework_rate", "extension_rate", "avg_handling_hours", "return_rate", "overdue_rate"}


@pytest.mark.parametrize(
    "entity_type, present, absent",
    [
        ("grid_worker", {"registration_rate", "patrols_logged", "report_timeliness", "verify_timeliness",
                         "patrol_coverage"},
         {"dispatch_rate", "acceptance_rate", "review_score", "points_earned", "on_time_closure_rate",
          "rework_rate", "satisfaction_rate", "closure_rate", "avg_handling_hours", "response_rate"}),
        ("member", {"acceptance_rate", "completion_rate", "avg_order_rating", "evaluation_pass_rate", "points_earned"},
         {"registration_rate", "patrols_logged", "review_score", "active_volunteers"}),
        ("grid", {"registration_rate", "dispatch_rate", "closure_rate", "patrols_logged", "satisfaction_rate"},
         {"acceptance_rate", "review_score", "points_earned"}),
        ("community", {"registration_rate", "acceptance_rate", "points_earned", "active_volunteers", "review_score"}, set()),
        ("street", {"closure_rate", "acceptance_rate", "active_volunteers", "review_score"}, set()),
        ("unit", {"review_score", "acceptance_rate", "points_earned", "active_volunteers"},
         {"registration_rate", "patrols_logged", "satisfaction_rate"}),
        ("department", {"accept_on_time_rate", "response_rate", "resolution_rate", "satisfaction_rate", "return_rate",
                        "on_time_closure_rate", "extension_rate", "overdue_rate", "whistle_report_rate",
                        "avg_whistle_rating", "three_rates"},
         {"registration_rate", "patrols_logged", "rework_rate", "closure_rate", "review_score", "acceptance_rate"}),
    ],
)
def test_indicators_apply_to_the_entity_types_they_make_sense_for(entity_type, present, absent):
    names = {i.name for i in indicators_for(entity_type)}
    assert present <= names
    assert not (absent & names)


def test_indicator_values_evaluates_every_applicable_indicator():
    values = indicator_values(EntityType.GRID, {"cases_received": 4, "cases_registered": 3})
    assert set(values) == {i.name for i in indicators_for("grid")}
    assert values["registration_rate"].value == 0.75
    assert values["closure_rate"].value is None


# -- departments, 三率 and the scheme's parameters ------------------------------------------


def test_a_department_answers_for_its_own_cases_in_extension_and_on_time_closure():
    """延期率 and 按期办结率 of a department count the cases dispatched to it and those it closed,
    not an area's deadline cohort."""
    facts = {"extensions_granted": 2, "dept_cases_received": 8, "dept_cases_closed_on_time": 3, "dept_cases_closed": 4,
             "cases_late": 5, "cases_due": 5, "cases_closed_on_time": 0}
    dept = indicator_values("department", facts)
    assert dept["extension_rate"].value == pytest.approx(0.25)
    assert dept["on_time_closure_rate"].value == pytest.approx(0.75)
    grid = indicator_values("grid", facts)
    assert grid["extension_rate"].value == 1.0 and grid["on_time_closure_rate"].value == 0


def test_basically_satisfied_weighs_what_the_parameters_say():
    facts = {"feedback_satisfied": 2, "feedback_basically_satisfied": 2, "feedback_received": 4}
    assert evaluate(CATALOGUE["satisfaction_rate"], facts, Parameters(basically_satisfied_weight=0.5)).value == 0.75
    assert evaluate(CATALOGUE["satisfaction_rate"], facts, Parameters(basically_satisfied_weight=1.0)).value == 1.0
    assert evaluate(CATALOGUE["satisfaction_rate"], facts, Parameters(basically_satisfied_weight=0.0)).value == 0.5


def test_three_rates_weighs_the_rates_the_parameters_say():
    facts = {"cases_contacted_on_time": 10, "cases_resolved": 5, "dept_cases_in_rates": 10,
             "feedback_satisfied": 0, "feedback_received": 2}
    # response 1.0, resolution 0.5, satisfaction 0.0
    assert evaluate(CATALOGUE["three_rates"], facts).value == pytest.approx(0.30 + 0.35 * 0.5)
    even = Parameters(three_rates=(("response_rate", 0.5), ("resolution_rate", 0.5), ("satisfaction_rate", 0.0)))
    assert evaluate(CATALOGUE["three_rates"], facts, even).value == pytest.approx(0.75)


def test_three_rates_renormalises_over_the_rates_that_have_a_value():
    # no feedback yet: (0.30 × 0.8 + 0.35 × 0.4) / 0.65
    facts = {"cases_contacted_on_time": 8, "cases_resolved": 4, "dept_cases_in_rates": 10}
    v = evaluate(CATALOGUE["three_rates"], facts)
    assert v.value == pytest.approx((0.30 * 0.8 + 0.35 * 0.4) / 0.65)
    assert v.denominator == pytest.approx(0.65)


def test_three_rates_without_any_rate_has_no_value():
    assert evaluate(CATALOGUE["three_rates"], {"dept_cases_received": 3}).value is None


def test_the_readmes_indicator_table_is_what_the_catalogue_and_the_default_scheme_say():
    from services.assessment import indicatordoc
    from services.kit import readmedoc

    text = readmedoc.README.read_text(encoding="utf-8")
    assert readmedoc.section(text, indicatordoc.START, indicatordoc.END) == indicatordoc.render(), \
        "README.md's indicator table is stale: run `python -m services.assessment.indicatordoc`"
    rows = indicatordoc.render().splitlines()
    assert any(r.startswith("| `extension_rate` | 延期率 | cases with a granted extension") and "| department |" in r
               for r in rows)
