"""Schemes: the default data file, validation, normalisation, scoring, grades, scheme changes."""
from __future__ import annotations

from datetime import datetime

import pytest

from services.assessment.domain import (
    ChangeScheme,
    EntityType,
    Grade,
    InvalidScheme,
    Scheme,
    SchemeChanged,
    SchemeState,
    decide_scheme_change,
    default_scheme,
    evolve_scheme,
    scheme_for_period,
    scheme_from_event,
)
from services.assessment.domain.scheme import Scoring
from services.kit.errors import Rejected

from assessment_builders import CST, small_scheme


def test_the_default_scheme_covers_all_seven_entity_types_over_the_three_pillars():
    s = default_scheme()
    assert set(s.entity_types) == set(EntityType)
    for es in s.entity_types.values():
        assert {p.value for p in es.pillars} <= {"organisation", "member_role", "satisfaction"}


def test_from_mapping_normalises_each_group_of_weights_to_one():
    s = default_scheme()
    for es in s.entity_types.values():
        assert sum(p.weight for p in es.pillars.values()) == pytest.approx(1)
        for p in es.pillars.values():
            assert sum(i.weight for i in p.indicators.values()) == pytest.approx(1)
    small = small_scheme()
    assert small.entity_types[EntityType.GRID].pillars["organisation"].weight == pytest.approx(0.75)


def test_a_scheme_survives_its_json_form_unchanged():
    s = default_scheme()
    assert Scheme.model_validate(s.to_mapping()) == s
    assert Scheme.from_mapping(s.to_mapping()) == s


def _grid(pillars, thresholds=None, **top):
    m = {"scheme_id": "x", "effective_from": "2026-01-01T00:00:00+08:00",
         "entity_types": {"grid": {"pillars": pillars, "thresholds": thresholds or {}}}}
    m.update(top)
    return m


@pytest.mark.parametrize(
    "mapping, words",
    [
        (_grid({"organisation": {"weight": -1, "indicators": {"closure_rate": 1}}}), "positive"),
        (_grid({"organisation": {"weight": 0, "indicators": {"closure_rate": 1}}}), "positive"),
        (_grid({"organisation": {"weight": 1, "indicators": {"closure_rate": -2}}}), "positive"),
        (_grid({"organisation": {"weight": 1, "indicators": {"happiness_index": 1}}}), "unknown indicator"),
        (_grid({"organisation": {"weight": 1, "indicators": {"review_score": 1}}}), "does not apply"),
        (_grid({"culture": {"weight": 1, "indicators": {"closure_rate": 1}}}), "culture"),
        (_grid({"organisation": {"weight": 1, "indicators": {}}}), "no indicators"),
        (_grid({"organisation": {"weight": 1, "indicators": {"closure_rate": 1}},
                "satisfaction": {"weight": 1, "indicators": {"closure_rate": 1}}}), "both"),
        (_grid({"organisation": {"weight": 1, "indicators": {"patrols_logged": {"weight": 1, "mapping": "target"}}}}),
         "positive target"),
        (_grid({"organisation": {"weight": 1, "indicators": {"closure_rate": 1}}}, {"review_score": 50}), "thresholds"),
        (_grid({"organisation": {"weight": 1, "indicators": {"closure_rate": 1}}},
               grades={"excellent": 70, "good": 80, "fair": 60}), "cut-offs"),
        ({"scheme_id": "x", "effective_from": "2026-01-01T00:00:00+08:00", "entity_types": {}}, "at least one"),
        (_grid({"organisation": {"weight": 1, "indicators": {"closure_rate": 1}}}, effective_from="yesterday"), "effective_from"),
    ],
)
def test_an_invalid_scheme_is_refused_with_the_reason_invalid_scheme(mapping, words):
    with pytest.raises(InvalidScheme) as e:
        Scheme.from_mapping(mapping)
    assert e.value.reason == "invalid_scheme"
    assert words in e.value.detail


@pytest.mark.parametrize(
    "scoring, value, points",
    [
        (Scoring(mapping="rate"), 0.87, 87),
        (Scoring(mapping="rate"), 1.2, 100),
        (Scoring(mapping="inverse_rate"), 0.125, 87.5),
        (Scoring(mapping="target", target=5), 4.6, 92),
        (Scoring(mapping="target", target=20), 30, 100),
        (Scoring(mapping="target", target=20), 0, 0),
        (Scoring(mapping="inverse_target", target=72), 48, 100),
        (Scoring(mapping="inverse_target", target=72), 96, 75),
        (Scoring(mapping="score"), 85, 85),
        (Scoring(mapping="score"), 130, 100),
    ],
)
def test_each_scoring_maps_a_value_to_0_100_points(scoring, value, points):
    assert scoring.points(value) == pytest.approx(points)


def test_no_value_scores_no_points():
    assert Scoring(mapping="rate").points(None) is None


def test_scoring_is_taken_from_the_entity_then_the_scheme_then_the_catalogue():
    s = default_scheme()
    assert s.scoring_for("grid", "patrols_logged") == Scoring(mapping="target", target=30)
    assert s.scoring_for("grid_worker", "patrols_logged") == Scoring(mapping="target", target=20)
    assert s.scoring_for("grid", "avg_handling_hours") == Scoring(mapping="inverse_target", target=72)
    assert s.scoring_for("grid", "rework_rate") == Scoring(mapping="inverse_rate")


@pytest.mark.parametrize(
    "score, grade",
    [(100, Grade.EXCELLENT), (90, Grade.EXCELLENT), (89.99, Grade.GOOD), (80, Grade.GOOD),
     (79.99, Grade.FAIR), (60, Grade.FAIR), (59.99, Grade.POOR), (0, Grade.POOR), (None, None)],
)
def test_grades_follow_the_cut_offs_inclusively(score, grade):
    assert small_scheme().grade(score) == grade


def test_cut_offs_are_configurable():
    s = small_scheme(grades={"excellent": 95, "good": 85, "fair": 70})
    assert s.grade(92) == Grade.GOOD
    assert s.grade(69) == Grade.POOR


def test_flat_weights_name_every_pillar_and_indicator():
    w = small_scheme().flat_weights()
    assert w == {
        "grid.organisation": 0.75,
        "grid.organisation.on_time_closure_rate": 0.5,
        "grid.organisation.rework_rate": 0.5,
        "grid.satisfaction": 0.25,
        "grid.satisfaction.satisfaction_rate": 1.0,
        "basically_satisfied_weight": 0.9,
        "three_rates.response_rate": 0.3,
        "three_rates.resolution_rate": 0.35,
        "three_rates.satisfaction_rate": 0.35,
    }


def test_with_weights_overrides_a_pillar_and_renormalises():
    s = small_scheme().with_weights({"grid.satisfaction": 0.75}, scheme_id="sat")
    assert s.scheme_id == "sat"
    assert s.flat_weights()["grid.satisfaction"] == 0.5
    assert s.flat_weights()["grid.organisation"] == 0.5


def test_with_weights_by_indicator_name_changes_it_everywhere():
    s = default_scheme().with_weights({"on_time_closure_rate": 10}, scheme_id="otc")
    for et, pillar in (("grid", "organisation"), ("community", "satisfaction"), ("street", "satisfaction")):
        inds = s.entity_types[EntityType(et)].pillars[pillar].indicators
        assert inds["on_time_closure_rate"].weight > max(w.weight for n, w in inds.items() if n != "on_time_closure_rate")


def test_the_default_scheme_puts_no_case_rate_under_the_organisation_pillar_of_communities_and_streets():
    case_rates = {"registration_rate", "dispatch_rate", "closure_rate", "on_time_closure_rate", "rework_rate",
                  "extension_rate", "avg_handling_hours"}
    for et in ("community", "street"):
        org = set(default_scheme().entity_types[EntityType(et)].pillars["organisation"].indicators)
        assert not org & case_rates
        assert {"org_coverage_rate", "org_life_on_time_rate", "member_report_rate", "commitment_fulfilment_rate"} <= org
    unit = set(default_scheme().entity_types[EntityType.UNIT].pillars["organisation"].indicators)
    assert {"unit_report_rate", "project_completion_rate"} <= unit


def test_with_weights_can_add_an_applicable_indicator_to_a_pillar():
    s = small_scheme().with_weights({"grid.organisation.closure_rate": 1.0}, scheme_id="plus")
    assert set(s.entity_types[EntityType.GRID].pillars["organisation"].indicators) == {
        "on_time_closure_rate", "rework_rate", "closure_rate",
    }


@pytest.mark.parametrize(
    "weights",
    [{"grid.satisfaction": 0}, {"grid.satisfaction": -1}, {"nonsense": 1}, {"unit.organisation": 1},
     {"grid.culture": 1}, {"grid.organisation.review_score": 1}, {"a.b.c.d": 1}],
)
def test_with_weights_refuses_what_would_make_an_invalid_scheme(weights):
    with pytest.raises(InvalidScheme):
        small_scheme().with_weights(weights, scheme_id="bad")


def _scheme_at(sid: str, iso: str) -> Scheme:
    return small_scheme(scheme_id=sid, effective_from=iso)


def test_the_scheme_for_a_period_is_the_latest_in_force_before_the_period_ends():
    a = _scheme_at("a", "2026-01-01T00:00:00+08:00")
    b = _scheme_at("b", "2026-11-15T00:00:00+08:00")
    c = _scheme_at("c", "2026-12-01T00:00:00+08:00")
    assert scheme_for_period([a, b, c], datetime(2026, 11, 1, tzinfo=CST)).scheme_id == "a"  # October
    assert scheme_for_period([a, b, c], datetime(2026, 12, 1, tzinfo=CST)).scheme_id == "b"  # November
    assert scheme_for_period([c, b, a], datetime(2027, 1, 1, tzinfo=CST)).scheme_id == "c"  # December
    assert scheme_for_period([c], datetime(2026, 12, 1, tzinfo=CST)) is None


def _change(**kw) -> ChangeScheme:
    data = {"scheme_id": "2027", "weights": {"grid.satisfaction": 0.75}, "effective_from": "2027-01-01T00:00:00+08:00"}
    data.update(kw)
    return ChangeScheme.model_validate(data)


def test_a_scheme_change_publishes_the_whole_resulting_scheme():
    [ev] = decide_scheme_change(SchemeState(), _change(), small_scheme())
    assert isinstance(ev, SchemeChanged)
    assert ev.scheme_id == "2027" and ev.base_scheme_id == "small"
    assert ev.weights["grid.satisfaction"] == 0.5
    assert ev.effective_from == datetime(2027, 1, 1, tzinfo=CST)
    s = scheme_from_event(ev)
    assert s.flat_weights() == ev.weights
    assert s.effective_from == ev.effective_from


def test_the_same_scheme_change_twice_is_a_no_op_and_other_content_under_the_id_is_refused():
    state = evolve_scheme(SchemeState(), decide_scheme_change(SchemeState(), _change(), small_scheme())[0])
    assert decide_scheme_change(state, _change(), small_scheme()) == []
    with pytest.raises(Rejected) as e:
        decide_scheme_change(state, _change(weights={"grid.satisfaction": 2}), small_scheme())
    assert e.value.reason == "scheme_exists"


def test_a_scheme_change_with_nothing_in_it_is_refused():
    with pytest.raises(InvalidScheme):
        decide_scheme_change(SchemeState(), _change(weights={}), small_scheme())


def test_a_scheme_change_with_invalid_weights_is_refused():
    with pytest.raises(InvalidScheme):
        decide_scheme_change(SchemeState(), _change(weights={"grid.satisfaction": -3}), small_scheme())


def test_a_scheme_change_against_another_base_is_refused():
    with pytest.raises(Rejected) as e:
        decide_scheme_change(SchemeState(), _change(base_scheme_id="other"), small_scheme())
    assert e.value.reason == "unknown_scheme"


def test_a_scheme_change_may_carry_a_whole_definition():
    definition = default_scheme().to_mapping()
    [ev] = decide_scheme_change(SchemeState(), _change(weights={}, definition=definition), small_scheme())
    s = scheme_from_event(ev)
    assert s.scheme_id == "2027"
    assert set(s.entity_types) == set(EntityType)
    assert ev.base_scheme_id is None


def test_scheme_state_round_trips_through_json():
    state = evolve_scheme(SchemeState(), decide_scheme_change(SchemeState(), _change(), small_scheme())[0])
    assert SchemeState.model_validate(state.model_dump(mode="json")) == state


# -- formula parameters: 基本满意's weight and the 三率 weights ---------------------------------


def test_the_default_scheme_weighs_basically_satisfied_at_nine_tenths_and_the_three_rates_30_35_35():
    p = default_scheme().formula_parameters()
    assert p.basically_satisfied_weight == 0.9
    assert dict(p.three_rates) == pytest.approx({"response_rate": 0.30, "resolution_rate": 0.35,
                                                 "satisfaction_rate": 0.35})


def test_a_scheme_without_parameters_has_the_defaults():
    assert small_scheme().formula_parameters() == default_scheme().formula_parameters()


def test_the_three_rates_weights_are_normalised():
    s = small_scheme(parameters={"three_rates": {"response_rate": 1, "resolution_rate": 1, "satisfaction_rate": 2}})
    assert s.parameters.three_rates == {"response_rate": 0.25, "resolution_rate": 0.25, "satisfaction_rate": 0.5}
    assert Scheme.from_mapping(s.to_mapping()) == s


@pytest.mark.parametrize(
    "parameters, words",
    [
        ({"basically_satisfied_weight": 1.2}, "0..1"),
        ({"basically_satisfied_weight": -0.1}, "0..1"),
        ({"three_rates": {"response_rate": -1, "resolution_rate": 1, "satisfaction_rate": 1}}, "negative"),
        ({"three_rates": {"response_rate": 0, "resolution_rate": 0, "satisfaction_rate": 0}}, "positive"),
        ({"three_rates": {"response_rate": 1, "happiness": 1}}, "happiness"),
        ({"speed": 3}, "speed"),
    ],
)
def test_invalid_parameters_are_refused(parameters, words):
    with pytest.raises(InvalidScheme) as e:
        small_scheme(parameters=parameters)
    assert words in e.value.detail


def test_a_scheme_change_carries_the_three_rates_weights_and_basically_satisfieds_weight():
    cmd = _change(weights={"three_rates.response_rate": 0.5, "three_rates.resolution_rate": 0.25,
                           "three_rates.satisfaction_rate": 0.25, "basically_satisfied_weight": 0.8})
    [ev] = decide_scheme_change(SchemeState(), cmd, default_scheme())
    assert ev.weights["three_rates.response_rate"] == 0.5
    assert ev.weights["basically_satisfied_weight"] == 0.8
    s = scheme_from_event(ev)
    assert dict(s.formula_parameters().three_rates)["response_rate"] == 0.5
    assert s.formula_parameters().basically_satisfied_weight == 0.8
    from_weights = scheme_from_event(ev.model_copy(update={"definition": None}), default_scheme())
    assert from_weights.formula_parameters() == s.formula_parameters()


@pytest.mark.parametrize("weights", [{"basically_satisfied_weight": 1.5}, {"three_rates.response_rate": -0.1},
                                     {"three_rates.speed": 0.3}, {"three_rates": 0.3}])
def test_a_scheme_change_with_parameters_outside_0_1_or_unknown_is_refused(weights):
    with pytest.raises(InvalidScheme):
        decide_scheme_change(SchemeState(), _change(weights=weights), default_scheme())
