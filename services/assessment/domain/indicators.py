"""The indicator catalogue (指标体系): each indicator's written formula over counters ("facts").

An indicator value is computed from the counters an entity accumulated in one period (see
:mod:`.facts` for how each upstream event increments them). Rates and averages have a
denominator; when the denominator is empty (0) the indicator has **no value** (``None``) —
not 0 and not an error — and the weighting re-normalises over indicators that have one.
Counts (points earned, active volunteers, patrols) always have a value.

Rates are fractions 0-1 (``0.95``); how a value becomes 0-100 points is the scheme's
business (:mod:`.scheme`).
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Literal, Mapping

from schemas.assessment import EntityType

GW, MEMBER, GRID, COMMUNITY, STREET, UNIT = (
    EntityType.GRID_WORKER,
    EntityType.MEMBER,
    EntityType.GRID,
    EntityType.COMMUNITY,
    EntityType.STREET,
    EntityType.UNIT,
)


class Fact(str, Enum):
    """Counter names. Each is incremented per (entity type, entity id, period).

    Cohorts — which period an increment lands in — are chosen so that a numerator and its
    denominator count the same cases or orders:

    - intake cohort (period of the report): cases_received, cases_registered, cases_dispatched;
    - deadline cohort (period of the case's first handling deadline — the ``due_at`` of its
      first dispatch —, 应结案): cases_due, cases_closed, cases_closed_on_time,
      cases_reworked, cases_late, handling_seconds;
    - feedback time: feedback_*; patrol start: patrols_logged, patrol_seconds;
    - dispatch cohort (period of the current dispatch): orders_dispatched, orders_accepted;
    - acceptance cohort: orders_completed, service_minutes;
    - evaluation time: orders_evaluated, orders_passed, rating_sum;
    - credit time: points_earned, active_volunteers, deeds_approved;
    - review period (and the periods enclosing it): reviews_received, review_score_sum.
    """

    CASES_RECEIVED = "cases_received"
    CASES_REGISTERED = "cases_registered"
    CASES_DISPATCHED = "cases_dispatched"
    CASES_DUE = "cases_due"
    CASES_CLOSED = "cases_closed"
    CASES_CLOSED_ON_TIME = "cases_closed_on_time"
    CASES_REWORKED = "cases_reworked"
    CASES_LATE = "cases_late"
    HANDLING_SECONDS = "handling_seconds"
    FEEDBACK_RECEIVED = "feedback_received"
    FEEDBACK_SATISFIED = "feedback_satisfied"
    FEEDBACK_BASICALLY_SATISFIED = "feedback_basically_satisfied"
    FEEDBACK_UNSATISFIED = "feedback_unsatisfied"
    PATROLS_LOGGED = "patrols_logged"
    PATROL_SECONDS = "patrol_seconds"
    ORDERS_PLACED = "orders_placed"
    ORDERS_DISPATCHED = "orders_dispatched"
    ORDERS_ACCEPTED = "orders_accepted"
    ORDERS_DECLINED = "orders_declined"
    ORDERS_DISPATCH_EXPIRED = "orders_dispatch_expired"
    ORDERS_COMPLETED = "orders_completed"
    SERVICE_MINUTES = "service_minutes"
    ORDERS_EVALUATED = "orders_evaluated"
    ORDERS_PASSED = "orders_passed"
    RATING_SUM = "rating_sum"
    MEMBERS_REPORTED = "members_reported"
    POSTS_CLAIMED = "posts_claimed"
    POINTS_EARNED = "points_earned"
    ACTIVE_VOLUNTEERS = "active_volunteers"
    DEEDS_APPROVED = "deeds_approved"
    REVIEWS_RECEIVED = "reviews_received"
    REVIEW_SCORE_SUM = "review_score_sum"


IndicatorKind = Literal["rate", "average", "count", "score"]


@dataclass(frozen=True)
class Indicator:
    """One indicator (指标).

    ``value = Σ coefficient × fact (numerator) / denominator fact``; ``denominator`` is None
    for counts. ``higher_is_better`` is False for 返工率, 延期率 and handling time (an alert
    fires when such a value is *above* its threshold). ``default_scoring``/``default_target``
    say how the value maps to 0-100 unless a scheme overrides it.
    """

    name: str
    label: str
    formula: str
    kind: IndicatorKind
    numerator: tuple[tuple[Fact, float], ...]
    denominator: Fact | None
    applies_to: frozenset[EntityType]
    higher_is_better: bool = True
    unit: str = ""
    default_scoring: str = "rate"
    default_target: float | None = None


@dataclass(frozen=True)
class IndicatorValue:
    """An indicator evaluated for one entity and period; ``value`` None = no value."""

    name: str
    numerator: float
    denominator: float | None
    value: float | None


_CASE_ENTITIES = frozenset({GW, GRID, COMMUNITY, STREET})
_AREA = frozenset({GRID, COMMUNITY, STREET})
_ORDER_ENTITIES = frozenset({MEMBER, UNIT, COMMUNITY, STREET})
_PEOPLE_AREA = frozenset({UNIT, COMMUNITY, STREET})
_REVIEWED = frozenset({UNIT, COMMUNITY, STREET})


def _one(f: Fact) -> tuple[tuple[Fact, float], ...]:
    return ((f, 1.0),)


def _words(f: Fact) -> str:
    return f.value.replace("_", " ")


def _rate(name: str, label: str, numerator: Fact, denominator: Fact, applies_to: frozenset[EntityType],
          cohort: str = "", *, formula: str = "", lower_is_better: bool = False) -> Indicator:
    """A rate of one counter over another. Unless ``formula`` is given, the formula is written
    from the two counters and the cohort they are counted in. A rate where lower is better is
    scored by its inverse."""
    formula = formula or f"{_words(numerator)} / {_words(denominator)}" + (f" ({cohort})" if cohort else "")
    scoring = "inverse_rate" if lower_is_better else "rate"
    return Indicator(name, label, formula, "rate", _one(numerator), denominator, applies_to,
                     higher_is_better=not lower_is_better, default_scoring=scoring)


def _count(name: str, label: str, formula: str, fact: Fact, applies_to: frozenset[EntityType], target: float,
           unit: str = "") -> Indicator:
    """A count (always has a value), scored against ``target``."""
    return Indicator(name, label, formula, "count", _one(fact), None, applies_to, unit=unit,
                     default_scoring="target", default_target=target)


CATALOGUE: dict[str, Indicator] = {
    i.name: i
    for i in (
        _rate("registration_rate", "立案率", Fact.CASES_REGISTERED, Fact.CASES_RECEIVED, _CASE_ENTITIES,
              "by report period"),
        _rate("dispatch_rate", "派遣率", Fact.CASES_DISPATCHED, Fact.CASES_REGISTERED, _AREA, "by report period"),
        _rate("closure_rate", "结案率", Fact.CASES_CLOSED, Fact.CASES_DUE, _CASE_ENTITIES,
              "by period of the first handling deadline"),
        _rate("on_time_closure_rate", "按期结案率", Fact.CASES_CLOSED_ON_TIME, Fact.CASES_DUE, _CASE_ENTITIES),
        _rate("rework_rate", "返工率", Fact.CASES_REWORKED, Fact.CASES_DUE, _CASE_ENTITIES, lower_is_better=True,
              formula="cases sent back by a failed verification (once per case) / cases due"),
        _rate("extension_rate", "延期率", Fact.CASES_LATE, Fact.CASES_DUE, _CASE_ENTITIES, lower_is_better=True,
              formula="cases extended (later deadline) or overdue (once per case) / cases due"),
        Indicator(
            "avg_handling_hours", "平均处置时长", "Σ handling_seconds / 3600 / cases closed",
            "average", ((Fact.HANDLING_SECONDS, 1 / 3600),), Fact.CASES_CLOSED, _CASE_ENTITIES,
            higher_is_better=False, unit="h", default_scoring="inverse_target", default_target=72.0,
        ),
        Indicator(
            "satisfaction_rate", "满意率",
            "(satisfied + 0.9 × basically satisfied) / feedback received (first feedback per case)",
            "rate", ((Fact.FEEDBACK_SATISFIED, 1.0), (Fact.FEEDBACK_BASICALLY_SATISFIED, 0.9)),
            Fact.FEEDBACK_RECEIVED, _CASE_ENTITIES,
        ),
        _rate("acceptance_rate", "接单率", Fact.ORDERS_ACCEPTED, Fact.ORDERS_DISPATCHED, _ORDER_ENTITIES,
              "each dispatch counts"),
        _rate("completion_rate", "办结率", Fact.ORDERS_COMPLETED, Fact.ORDERS_ACCEPTED, _ORDER_ENTITIES,
              "by acceptance period"),
        Indicator(
            "avg_order_rating", "考单平均评分", "Σ rating (1-5) / orders evaluated",
            "average", _one(Fact.RATING_SUM), Fact.ORDERS_EVALUATED, _ORDER_ENTITIES,
            unit="★", default_scoring="target", default_target=5.0,
        ),
        _rate("evaluation_pass_rate", "考单通过率", Fact.ORDERS_PASSED, Fact.ORDERS_EVALUATED, _ORDER_ENTITIES),
        _count("points_earned", "积分获得", "Σ points awarded to residents (± adjustments)", Fact.POINTS_EARNED,
               frozenset({MEMBER, UNIT, COMMUNITY, STREET}), 100.0, unit="pt"),
        _count("active_volunteers", "活跃志愿者", "distinct resident accounts awarded points in the period",
               Fact.ACTIVE_VOLUNTEERS, _PEOPLE_AREA, 20.0),
        _count("patrols_logged", "巡查次数", "patrols logged (by patrol start)", Fact.PATROLS_LOGGED,
               _CASE_ENTITIES, 20.0),
        Indicator(
            "review_score", "双向评议得分", "Σ review scores / reviews received (latest review per reviewer)",
            "score", _one(Fact.REVIEW_SCORE_SUM), Fact.REVIEWS_RECEIVED, _REVIEWED,
            default_scoring="score",
        ),
    )
}


def indicators_for(entity_type: EntityType | str) -> tuple[Indicator, ...]:
    """Catalogue indicators that apply to an entity type, in catalogue order."""
    et = EntityType(entity_type)
    return tuple(i for i in CATALOGUE.values() if et in i.applies_to)


def evaluate(indicator: Indicator, facts: Mapping[str, float]) -> IndicatorValue:
    """Apply the indicator's formula to an entity's counters for one period.

    Missing counters are 0. A rate/average/score whose denominator is 0 (or negative after
    corrections) has no value.
    """
    num = sum(float(facts.get(f.value, 0.0)) * c for f, c in indicator.numerator)
    if indicator.denominator is None:
        return IndicatorValue(indicator.name, num, None, num)
    den = float(facts.get(indicator.denominator.value, 0.0))
    if den <= 0:
        return IndicatorValue(indicator.name, num, den, None)
    return IndicatorValue(indicator.name, num, den, num / den)


def indicator_values(entity_type: EntityType | str, facts: Mapping[str, float]) -> dict[str, IndicatorValue]:
    """Every applicable indicator of an entity type, evaluated over ``facts``."""
    return {i.name: evaluate(i, facts) for i in indicators_for(entity_type)}
