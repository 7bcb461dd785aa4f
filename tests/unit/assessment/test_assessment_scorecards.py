"""Scorecards: weighting and re-normalisation, ranking ties, grades, alerts, ids, diff."""
from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.assessment.domain import (
    ClosePeriod,
    EntityFacts,
    Fact,
    Grade,
    ScorecardPublished,
    alerts_for,
    check_close,
    close_period,
    competition_ranks,
    default_scheme,
    diff_scorecards,
    rank_scorecards,
    score_entity,
    scorecard_id,
)
from services.kit.errors import Rejected

from assessment_builders import COMMUNITY, CST, GRID, GRID_B, small_scheme

# on time 6/8 = 0.75 → 75; rework 1/8 → 87.5; satisfaction 0.87 → 87
FULL = {
    "cases_due": 8, "cases_closed_on_time": 6, "cases_reworked": 1,
    "feedback_received": 10, "feedback_satisfied": 6, "feedback_basically_satisfied": 3,
}


def grid(facts, entity_id=GRID, parent=COMMUNITY) -> EntityFacts:
    return EntityFacts("grid", entity_id, facts, parent)


def test_the_composite_is_the_weighted_mean_of_pillars_of_weighted_indicators():
    card = score_entity(grid(FULL), "2026-11", small_scheme())
    # organisation = (75 + 87.5)/2 = 81.25; satisfaction 87; composite 0.75·81.25 + 0.25·87 = 82.6875
    assert card.pillars == {"organisation": 81.25, "satisfaction": 87.0}
    assert card.score == 82.69
    assert card.grade == Grade.GOOD
    assert card.indicators["on_time_closure_rate"] == 0.75
    assert card.details["satisfaction_rate"].numerator == pytest.approx(8.7)
    assert card.details["satisfaction_rate"].denominator == 10
    assert card.details["on_time_closure_rate"].weight == pytest.approx(0.375)
    assert card.details["satisfaction_rate"].weight == pytest.approx(0.25)
    assert card.details["closure_rate"].weight == 0  # not in the scheme: shown, not weighted


def test_an_indicator_without_a_value_is_left_out_and_its_pillar_renormalises():
    facts = dict(FULL)
    facts.pop("cases_due")  # on-time and rework have no value now
    facts["cases_due"] = 0
    card = score_entity(grid(facts), "2026-11", small_scheme())
    assert card.indicators["on_time_closure_rate"] is None
    assert card.pillars["organisation"] is None
    assert card.score == 87.0  # only satisfaction remains, at full weight
    assert card.details["satisfaction_rate"].weight == 1.0


def test_within_a_pillar_only_indicators_with_a_value_share_its_weight():
    s = small_scheme().with_weights({"grid.organisation.closure_rate": 0.5}, scheme_id="three")  # = the others
    facts = {"cases_due": 4, "cases_closed": 2, "cases_closed_on_time": 2}  # rework 0/4 → 100
    card = score_entity(grid(facts), "2026-11", s)
    # organisation over closure 50, on time 50, rework 100 = 66.67; satisfaction has no value
    assert card.pillars == {"organisation": 66.67, "satisfaction": None}
    assert card.score == 66.67


def test_an_entity_with_nothing_to_score_has_no_score_grade_or_rank():
    cards = rank_scorecards([score_entity(grid({"cases_received": 3}), "2026-11", small_scheme())])
    assert cards[0].score is None and cards[0].grade is None and cards[0].rank is None
    assert cards[0].indicators["registration_rate"] == 0


def test_an_empty_denominator_never_counts_as_zero_in_the_score():
    with_empty = score_entity(grid({**FULL, "feedback_received": 0}), "2026-11", small_scheme())
    assert with_empty.score == 81.25  # organisation alone, not dragged down by a 0 satisfaction


def _card(entity_id: str, score: float | None, parent: str | None = COMMUNITY, et: str = "grid") -> ScorecardPublished:
    return ScorecardPublished(entity_type=et, entity_id=entity_id, period="2026-11", indicators={}, score=score,
                              rank=None, grade=None, parent_id=parent)


def test_ties_share_a_rank_and_the_next_rank_is_skipped():
    cards = rank_scorecards([_card("d", 70), _card("b", 90), _card("c", 90), _card("a", 95), _card("e", None)])
    assert [(c.entity_id, c.rank) for c in cards] == [("a", 1), ("b", 2), ("c", 2), ("d", 4), ("e", None)]
    assert {c.rank_of for c in cards if c.rank} == {4}


def test_ranking_order_does_not_depend_on_input_order():
    cards = [_card("d", 70), _card("b", 90), _card("c", 90), _card("a", 95)]
    assert rank_scorecards(cards) == rank_scorecards(list(reversed(cards)))


def test_entities_are_ranked_within_their_parent_and_type():
    cards = rank_scorecards([
        _card(GRID, 80), _card(GRID_B, 90), _card("110105001003001", 50, parent="110105001003"),
        _card(COMMUNITY, 60, parent="110105001", et="community"),
    ])
    ranks = {c.entity_id: c.rank for c in cards}
    assert ranks == {GRID: 2, GRID_B: 1, "110105001003001": 1, COMMUNITY: 1}


@given(st.lists(st.one_of(st.none(), st.integers(0, 10).map(float)), max_size=12))
def test_competition_ranks_count_the_entities_strictly_ahead(scores):
    keys = {f"e{i:02d}": s for i, s in enumerate(scores)}
    ranks = competition_ranks(keys)
    for k, s in keys.items():
        if s is None:
            assert ranks[k] is None
        else:
            assert ranks[k] == 1 + sum(1 for o in keys.values() if o is not None and o > s)


def test_an_alert_is_raised_for_each_indicator_worse_than_its_threshold():
    facts = {**FULL, "cases_reworked": 3}  # on time 0.75 < 0.8; rework 0.375 > 0.2
    card = score_entity(grid(facts), "2026-11", small_scheme())
    alerts = alerts_for(card, small_scheme())
    assert [(a.indicator, a.value, a.threshold, a.direction) for a in alerts] == [
        ("on_time_closure_rate", 0.75, 0.8, "below_minimum"),
        ("rework_rate", 0.375, 0.2, "above_maximum"),
    ]
    assert all(a.period == "2026-11" and a.scorecard_id == card.scorecard_id for a in alerts)


def test_no_alert_at_the_threshold_or_without_a_value():
    s = small_scheme()
    at_threshold = score_entity(grid({"cases_due": 10, "cases_closed_on_time": 8, "cases_reworked": 2}), "2026-11", s)
    assert alerts_for(at_threshold, s) == []
    no_value = score_entity(grid({"cases_received": 1}), "2026-11", s)
    assert alerts_for(no_value, s) == []


def test_scorecard_ids_depend_on_entity_period_and_scheme_only():
    a = scorecard_id("grid", GRID, "2026-11", "small")
    assert a == scorecard_id("grid", GRID, "2026-11", "small")
    assert len({a, scorecard_id("grid", GRID, "2026-12", "small"), scorecard_id("grid", GRID_B, "2026-11", "small"),
                scorecard_id("community", GRID, "2026-11", "small"), scorecard_id("grid", GRID, "2026-11", "other")}) == 5


def test_closing_a_period_twice_publishes_the_same_scorecards_and_alerts():
    ents = [grid(FULL), grid({**FULL, "cases_closed_on_time": 8}, GRID_B)]
    first = close_period("2026-11", ents, small_scheme())
    second = close_period("2026-11", list(reversed(ents)), small_scheme())
    assert first == second
    assert [c.rank for c in first.scorecards] == [1, 2]
    assert len({c.scorecard_id for c in first.scorecards}) == 2
    assert [a.alert_id for a in first.alerts] == [a.alert_id for a in second.alerts]
    assert len(first.alerts) == 1 and first.alerts[0].entity_id == GRID


def test_a_period_can_be_closed_only_once_it_has_ended():
    end = datetime(2026, 12, 1, tzinfo=CST)
    assert str(check_close(ClosePeriod(period="2026-11"), end)) == "2026-11"
    with pytest.raises(Rejected) as e:
        check_close(ClosePeriod(period="2026-11"), end - timedelta(seconds=1))
    assert e.value.reason == "period_not_ended"
    with pytest.raises(Rejected):
        check_close(ClosePeriod(period="2026-Q4"), end)


def test_the_default_scheme_scores_every_entity_type_between_0_and_100():
    facts = {**FULL, "cases_received": 10, "cases_registered": 9, "cases_dispatched": 8, "cases_closed": 7,
             "handling_seconds": 7 * 3600 * 30, "patrols_logged": 12, "orders_dispatched": 4, "orders_accepted": 3,
             "orders_completed": 3, "orders_evaluated": 3, "orders_passed": 3, "rating_sum": 14,
             "points_earned": 40, "active_volunteers": 6, "reviews_received": 2, "review_score_sum": 170}
    ents = [EntityFacts(et, f"{et}-1", facts) for et in ("grid_worker", "member", "grid", "community", "street", "unit")]
    pub = close_period("2026-11", ents, default_scheme())
    assert len(pub.scorecards) == 6
    for c in pub.scorecards:
        assert c.score is not None and 0 <= c.score <= 100
        assert c.rank == 1 and c.grade is not None


def test_the_diff_shows_what_another_scheme_changes():
    ents = [grid(FULL), grid({**FULL, "feedback_satisfied": 10, "feedback_basically_satisfied": 0}, GRID_B)]
    before = close_period("2026-11", ents, small_scheme())
    other = small_scheme().with_weights({"grid.satisfaction": 0.75}, scheme_id="sat-heavy")  # = organisation
    after = close_period("2026-11", ents, other)
    changes = diff_scorecards(before.scorecards, after.scorecards,
                              alerts_before=before.alerts, alerts_after=after.alerts)
    assert [c.entity_id for c in changes] == [GRID, GRID_B]
    a = changes[0]
    # before 82.69; after 0.5·81.25 + 0.5·87 = 84.125
    assert (a.score_before, a.score_after, a.delta) == (82.69, 84.12, 1.43)
    assert a.change == "changed" and a.indicators_changed == {}
    assert a.alerts_before == a.alerts_after == ("on_time_closure_rate",)
    assert diff_scorecards(before.scorecards, before.scorecards) == []
    assert len(diff_scorecards(before.scorecards, before.scorecards, include_unchanged=True)) == 2


def test_the_diff_names_entities_that_appear_or_disappear():
    before = close_period("2026-11", [grid(FULL)], small_scheme())
    after = close_period("2026-11", [grid(FULL, GRID_B)], small_scheme())
    changes = {c.entity_id: c.change for c in diff_scorecards(before.scorecards, after.scorecards)}
    assert changes == {GRID: "removed", GRID_B: "added"}


_FACT_NAMES = sorted(f.value for f in Fact)


@given(
    st.sampled_from(["grid_worker", "member", "grid", "community", "street", "unit"]),
    st.dictionaries(st.sampled_from(_FACT_NAMES), st.integers(0, 50).map(float)),
)
def test_any_counters_give_a_score_between_0_and_100_or_none_and_a_matching_grade(entity_type, facts):
    scheme = default_scheme()
    card = score_entity(EntityFacts(entity_type, "e-1", facts), "2026-11", scheme)
    assert card.score is None or 0 <= card.score <= 100
    assert card.grade == scheme.grade(card.score)
    weighted = [d.weight for d in card.details.values() if d.weight]
    assert (card.score is None) == (not weighted)
    if weighted:
        assert sum(weighted) == pytest.approx(1, abs=1e-5)
