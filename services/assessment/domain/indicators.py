"""The indicator catalogue (指标体系): each indicator's written formula over counters ("facts").

An indicator value is computed from the counters an entity accumulated in one period (see
:mod:`.facts` for how each upstream event increments them). Rates and averages have a
denominator; when the denominator is empty (0) the indicator has **no value** (``None``) —
not 0 and not an error — and the weighting re-normalises over indicators that have one.
Counts (points earned, active volunteers, patrols) always have a value. A composite (三率综合,
``three_rates``) is the weighted mean of its component rates that have a value. Two numbers
come from the scheme (:class:`Parameters`): 基本满意's weight in every 满意率 and the 三率
weights. Where an entity type answers for something else than an area does (a department's
延期率 and 按期办结率), the indicator has a formula of its own for it (:func:`indicator_for`).

Rates are fractions 0-1 (``0.95``); how a value becomes 0-100 points is the scheme's
business (:mod:`.scheme`).
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Literal, Mapping

from schemas.assessment import EntityType

GW, MEMBER, GRID, COMMUNITY, STREET, UNIT, DEPT = (
    EntityType.GRID_WORKER,
    EntityType.MEMBER,
    EntityType.GRID,
    EntityType.COMMUNITY,
    EntityType.STREET,
    EntityType.UNIT,
    EntityType.DEPARTMENT,
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
    - review period (and the periods enclosing it): reviews_received, review_score_sum;
    - grid worker's own duties: cases_reported_on_time in the report cohort (beside
      cases_received); verifications_done, verifications_on_time at verification time;
      patrol_weeks_covered, patrol_weeks_due are derived when a period is scored (see
      :func:`.facts.coverage.coverage_facts`);
    - department (职能部门), each at the time of its event: dept_cases_received (dispatched to
      the department) and dept_cases_in_rates (the same less approved exclusions) at dispatch,
      cases_accepted_on_time, cases_contacted_on_time, cases_resolved, feedback_*,
      returns_approved, extensions_granted, cases_supervised, dept_cases_closed,
      dept_cases_closed_on_time; whistles_summoned at the whistle, whistles_answered_on_time,
      whistles_rated, whistle_rating_sum at the answer and the rating;
    - Party organisation (组织建设, from ``party.events.v1``; see :mod:`.facts.party`):
      org_life_held, org_life_required in the required period (a month, or a quarter for the
      quarterly kinds: then in the quarter and year only); org_life_attendees,
      org_life_expected at the meeting; council_quarters_held, council_quarters_due in the
      quarter (and year); council_attendees, council_expected at the meeting;
      resolutions_completed at completion, resolutions_due at completion or overdue (an overdue
      one completed later is taken back where it was counted); projects_posted,
      projects_claimed, projects_completed in the period the project was posted;
      members_report_due at registration (beside members_reported) or at the party service's
      report overdue (taken back when the member registers); commitments_made,
      commitments_fulfilled in the commitment's year; grids_covered, grids_coverable,
      units_known, units_reported are standing counts derived when a period is scored (see
      :func:`.facts.standing.standing_facts`).
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
    CASES_REPORTED_ON_TIME = "cases_reported_on_time"
    VERIFICATIONS_DONE = "verifications_done"
    VERIFICATIONS_ON_TIME = "verifications_on_time"
    PATROL_WEEKS_COVERED = "patrol_weeks_covered"
    PATROL_WEEKS_DUE = "patrol_weeks_due"
    DEPT_CASES_RECEIVED = "dept_cases_received"
    DEPT_CASES_IN_RATES = "dept_cases_in_rates"
    CASES_ACCEPTED_ON_TIME = "cases_accepted_on_time"
    CASES_CONTACTED_ON_TIME = "cases_contacted_on_time"
    CASES_RESOLVED = "cases_resolved"
    RETURNS_APPROVED = "returns_approved"
    EXTENSIONS_GRANTED = "extensions_granted"
    CASES_SUPERVISED = "cases_supervised"
    DEPT_CASES_CLOSED = "dept_cases_closed"
    DEPT_CASES_CLOSED_ON_TIME = "dept_cases_closed_on_time"
    WHISTLES_SUMMONED = "whistles_summoned"
    WHISTLES_ANSWERED_ON_TIME = "whistles_answered_on_time"
    WHISTLES_RATED = "whistles_rated"
    WHISTLE_RATING_SUM = "whistle_rating_sum"
    GRIDS_COVERED = "grids_covered"
    GRIDS_COVERABLE = "grids_coverable"
    ORG_LIFE_HELD = "org_life_held"
    ORG_LIFE_REQUIRED = "org_life_required"
    ORG_LIFE_ATTENDEES = "org_life_attendees"
    ORG_LIFE_EXPECTED = "org_life_expected"
    UNITS_KNOWN = "units_known"
    UNITS_REPORTED = "units_reported"
    COUNCIL_QUARTERS_HELD = "council_quarters_held"
    COUNCIL_QUARTERS_DUE = "council_quarters_due"
    COUNCIL_ATTENDEES = "council_attendees"
    COUNCIL_EXPECTED = "council_expected"
    RESOLUTIONS_COMPLETED = "resolutions_completed"
    RESOLUTIONS_DUE = "resolutions_due"
    PROJECTS_POSTED = "projects_posted"
    PROJECTS_CLAIMED = "projects_claimed"
    PROJECTS_COMPLETED = "projects_completed"
    MEMBERS_REPORT_DUE = "members_report_due"
    COMMITMENTS_MADE = "commitments_made"
    COMMITMENTS_FULFILLED = "commitments_fulfilled"


IndicatorKind = Literal["rate", "average", "count", "score", "composite"]

Coefficient = float | str
"""A numerator coefficient: a number, or the name of a scheme parameter (:class:`Parameters`)."""


@dataclass(frozen=True)
class Parameters:
    """The formula parameters a scheme sets (see :mod:`.scheme`): 基本满意's weight in every
    满意率, and the weights of the 三率 composite over 响应率 / 解决率 / 满意率 (normalised to
    sum to 1)."""

    basically_satisfied_weight: float = 0.9
    three_rates: tuple[tuple[str, float], ...] = (
        ("response_rate", 0.30), ("resolution_rate", 0.35), ("satisfaction_rate", 0.35))

    def coefficient(self, c: Coefficient) -> float:
        return float(getattr(self, c)) if isinstance(c, str) else c


DEFAULT_PARAMETERS = Parameters()

THREE_RATES = ("response_rate", "resolution_rate", "satisfaction_rate")
"""The components of the 三率 composite (``three_rates``)."""


@dataclass(frozen=True)
class Indicator:
    """One indicator (指标).

    ``value = Σ coefficient × fact (numerator) / denominator fact``; ``denominator`` is None
    for counts. A coefficient may name a scheme parameter (基本满意's weight). A ``composite``
    has no facts of its own: its value is the weighted mean of ``components`` (catalogue
    indicators, weights from the scheme's parameter of the same name) that have a value. ``higher_is_better`` is False for 返工率, 延期率 and handling time (an alert
    fires when such a value is *above* its threshold). ``default_scoring``/``default_target``
    say how the value maps to 0-100 unless a scheme overrides it.
    """

    name: str
    label: str
    formula: str
    kind: IndicatorKind
    numerator: tuple[tuple[Fact, Coefficient], ...]
    denominator: Fact | None
    applies_to: frozenset[EntityType]
    higher_is_better: bool = True
    unit: str = ""
    default_scoring: str = "rate"
    default_target: float | None = None
    components: tuple[str, ...] = ()


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
_AREA_DEPT = frozenset({GRID, COMMUNITY, STREET, DEPT})
_DEPT = frozenset({DEPT})
_GW = frozenset({GW})
_PARTY_AREA = frozenset({COMMUNITY, STREET})
_PARTY_UNIT = frozenset({UNIT, COMMUNITY, STREET})


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
        _rate("closure_rate", "结案率", Fact.CASES_CLOSED, Fact.CASES_DUE, _AREA,
              "by period of the first handling deadline"),
        _rate("on_time_closure_rate", "按期结案率", Fact.CASES_CLOSED_ON_TIME, Fact.CASES_DUE, _AREA_DEPT),
        _rate("rework_rate", "返工率", Fact.CASES_REWORKED, Fact.CASES_DUE, _AREA, lower_is_better=True,
              formula="cases sent back by a failed verification (once per case) / cases due"),
        _rate("extension_rate", "延期率", Fact.CASES_LATE, Fact.CASES_DUE, _AREA_DEPT, lower_is_better=True,
              formula="cases extended (later deadline) or overdue (once per case) / cases due"),
        Indicator(
            "avg_handling_hours", "平均处置时长", "Σ handling_seconds / 3600 / cases closed",
            "average", ((Fact.HANDLING_SECONDS, 1 / 3600),), Fact.CASES_CLOSED, _AREA,
            higher_is_better=False, unit="h", default_scoring="inverse_target", default_target=72.0,
        ),
        Indicator(
            "satisfaction_rate", "满意率",
            "(satisfied + w × basically satisfied) / feedback received (first feedback per case; "
            "w: the scheme's basically_satisfied_weight)",
            "rate", ((Fact.FEEDBACK_SATISFIED, 1.0), (Fact.FEEDBACK_BASICALLY_SATISFIED, "basically_satisfied_weight")),
            Fact.FEEDBACK_RECEIVED, _AREA_DEPT,
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
        _rate("report_timeliness", "上报及时率", Fact.CASES_REPORTED_ON_TIME, Fact.CASES_RECEIVED, _GW,
              formula="cases the worker reported that were registered (立案) by their registration deadline "
                      "/ cases the worker reported (by report period)"),
        _rate("verify_timeliness", "核查及时率", Fact.VERIFICATIONS_ON_TIME, Fact.VERIFICATIONS_DONE, _GW,
              formula="verifications the worker did by the verification deadline of the handling "
                      "/ verifications the worker did (by verification time)"),
        _rate("patrol_coverage", "巡查覆盖率", Fact.PATROL_WEEKS_COVERED, Fact.PATROL_WEEKS_DUE, _GW,
              formula="(grid, week) pairs with a patrol by the worker / (weeks of the period × the worker's grids); "
                      "a week belongs to the period of its Monday, the worker's grids are those they patrolled or "
                      "reported in up to the period's end"),
        _rate("accept_on_time_rate", "签收及时率", Fact.CASES_ACCEPTED_ON_TIME, Fact.DEPT_CASES_RECEIVED, _DEPT,
              formula="cases accepted (签收) by the accept deadline / cases dispatched to the department"),
        _rate("response_rate", "响应率", Fact.CASES_CONTACTED_ON_TIME, Fact.DEPT_CASES_IN_RATES, _DEPT,
              formula="cases whose reporter was contacted (先行联系) by the contact deadline / cases received "
                      "(approved exclusions left out of both)"),
        _rate("resolution_rate", "解决率", Fact.CASES_RESOLVED, Fact.DEPT_CASES_IN_RATES, _DEPT,
              formula="cases found resolved at the follow-up (回访 resolved) / cases received "
                      "(approved exclusions left out of both)"),
        _rate("return_rate", "退单率", Fact.RETURNS_APPROVED, Fact.DEPT_CASES_RECEIVED, _DEPT, lower_is_better=True,
              formula="approved returns (退单) / cases dispatched to the department"),
        _rate("overdue_rate", "超期率", Fact.CASES_SUPERVISED, Fact.DEPT_CASES_RECEIVED, _DEPT, lower_is_better=True,
              formula="cases with a missed deadline (超期督办, yellow or red card; once per case) "
                      "/ cases dispatched to the department"),
        _rate("whistle_report_rate", "吹哨报到率", Fact.WHISTLES_ANSWERED_ON_TIME, Fact.WHISTLES_SUMMONED, _DEPT,
              formula="whistles answered (报到) by their report_by / whistles the department was summoned to"),
        Indicator(
            "avg_whistle_rating", "吹哨报到评价", "Σ street's rating (1-5) / whistle responses rated",
            "average", _one(Fact.WHISTLE_RATING_SUM), Fact.WHISTLES_RATED, _DEPT,
            unit="★", default_scoring="target", default_target=5.0,
        ),
        Indicator(
            "three_rates", "三率综合",
            "weighted mean of 响应率, 解决率 and 满意率 that have a value (weights: the scheme's three_rates, "
            "default 30/35/35)",
            "composite", (), None, _DEPT, components=THREE_RATES,
        ),
        _rate("org_coverage_rate", "组织覆盖率", Fact.GRIDS_COVERED, Fact.GRIDS_COVERABLE, _PARTY_AREA,
              formula="grids with a grid branch (网格党支部) established by the period's end / grids that need one "
                      "by then: those with a branch, and those the party service reported as a coverage gap "
                      "(≥ 3 members, no branch) and still without one (a standing count at the period's end)"),
        _rate("org_life_on_time_rate", "三会一课按期召开率", Fact.ORG_LIFE_HELD, Fact.ORG_LIFE_REQUIRED, _PARTY_UNIT,
              formula="required meetings held (each organisation, kind and required period once: the period the "
                      "party service names on each meeting from its org_life.yaml, today 支委会, 党小组会 and 主题党日 "
                      "monthly, 支部党员大会 and 党课 quarterly) / those plus the ones the party service "
                      "reported overdue (by required period; a quarterly one counts in its quarter and year)"),
        _rate("org_life_attendance_rate", "党员参学率", Fact.ORG_LIFE_ATTENDEES, Fact.ORG_LIFE_EXPECTED, _PARTY_UNIT,
              formula="attendees / (attendees + absentees) of the organisational life held (三会一课, 主题党日; "
                      "by meeting time)"),
        _rate("unit_report_rate", "单位报到率", Fact.UNITS_REPORTED, Fact.UNITS_KNOWN, _PARTY_UNIT,
              formula="resident units that reported (单位报到) by the period's end / units known by then: those "
                      "that reported, signed a co-building agreement (共建协议) or had a member register (双报到), "
                      "each placed where it reported, else where it signed, else where its first member "
                      "registered (a standing count; a unit's own is 1 or 0)"),
        _rate("council_meeting_on_time_rate", "联席会议按期召开率", Fact.COUNCIL_QUARTERS_HELD,
              Fact.COUNCIL_QUARTERS_DUE, _PARTY_AREA,
              formula="council quarters with a quorate joint meeting (联席会议, more than half attending) / council "
                      "quarters with a meeting or reported overdue (by quarter; a community's 大党委 counts for its "
                      "street too)"),
        _rate("council_attendance_rate", "联席会议出勤率", Fact.COUNCIL_ATTENDEES, Fact.COUNCIL_EXPECTED, _PARTY_AREA,
              formula="attendees / (attendees + absentees) of the joint meetings held (by meeting time)"),
        _rate("resolution_completion_rate", "议定事项办结率", Fact.RESOLUTIONS_COMPLETED, Fact.RESOLUTIONS_DUE,
              _PARTY_UNIT,
              formula="resolutions (议定事项) completed / (completed + overdue and still open), completions by "
                      "completion time, overdue ones when reported (督办); for a unit, those it owns"),
        _rate("project_claim_rate", "项目认领率", Fact.PROJECTS_CLAIMED, Fact.PROJECTS_POSTED, _PARTY_AREA,
              formula="projects of the 项目清单 claimed by a unit / projects posted (by the period of the posting)"),
        _rate("project_completion_rate", "项目完成率", Fact.PROJECTS_COMPLETED, Fact.PROJECTS_CLAIMED, _PARTY_UNIT,
              formula="projects completed / projects claimed (by the period of the posting; for a unit, the "
                      "projects it claimed)"),
        _rate("member_report_rate", "党员报到率", Fact.MEMBERS_REPORTED, Fact.MEMBERS_REPORT_DUE, _PARTY_UNIT,
              formula="members registered (双报到, at registration) / those plus the members the party service "
                      "reported overdue or moved away and not registered since (at the overdue report)"),
        _rate("commitment_fulfilment_rate", "践诺率", Fact.COMMITMENTS_FULFILLED, Fact.COMMITMENTS_MADE, _PARTY_UNIT,
              formula="members' commitments (承诺) fulfilled (践诺) / commitments made (by the commitment's year: "
                      "yearly scorecards only)"),
        Indicator(
            "review_score", "双向评议得分", "Σ review scores / reviews received (latest review per reviewer)",
            "score", _one(Fact.REVIEW_SCORE_SUM), Fact.REVIEWS_RECEIVED, _REVIEWED,
            default_scoring="score",
        ),
    )
}


_VARIANTS: dict[tuple[str, EntityType], Indicator] = {
    (i.name, DEPT): i
    for i in (
        _rate("extension_rate", "延期率", Fact.EXTENSIONS_GRANTED, Fact.DEPT_CASES_RECEIVED, _DEPT,
              lower_is_better=True,
              formula="cases with a granted extension (延期 approved; once per case) / cases dispatched to the "
                      "department"),
        _rate("on_time_closure_rate", "按期办结率", Fact.DEPT_CASES_CLOSED_ON_TIME, Fact.DEPT_CASES_CLOSED, _DEPT,
              formula="cases the department closed on time / cases it closed (by closing time)"),
    )
}
"""Where an indicator's formula for one entity type differs from the catalogue's (a department
answers for the cases dispatched to it, not for an area's deadline cohort)."""


def indicator_for(name: str, entity_type: EntityType | str) -> Indicator:
    """The catalogue indicator ``name`` as it is computed for ``entity_type``."""
    return _VARIANTS.get((name, EntityType(entity_type)), CATALOGUE[name])


def indicators_for(entity_type: EntityType | str) -> tuple[Indicator, ...]:
    """Catalogue indicators that apply to an entity type, in catalogue order (with the formula
    for that entity type)."""
    et = EntityType(entity_type)
    return tuple(indicator_for(i.name, et) for i in CATALOGUE.values() if et in i.applies_to)


def evaluate(indicator: Indicator, facts: Mapping[str, float], params: Parameters = DEFAULT_PARAMETERS,
             entity_type: EntityType | str | None = None) -> IndicatorValue:
    """Apply the indicator's formula to an entity's counters for one period.

    Missing counters are 0. A rate/average/score whose denominator is 0 (or negative after
    corrections) has no value. A composite is Σ weight × component value over the components
    that have a value (numerator) ÷ Σ of their weights (denominator); none has one: no value.
    Components are evaluated for ``entity_type`` (default: the first the composite applies to).
    """
    if indicator.kind == "composite":
        et = EntityType(entity_type) if entity_type is not None else next(iter(sorted(indicator.applies_to)))
        weights = dict(getattr(params, indicator.name))
        num = den = 0.0
        for c in indicator.components:
            w = weights.get(c, 0.0)
            v = evaluate(indicator_for(c, et), facts, params, et).value
            if v is not None and w > 0:
                num += w * v
                den += w
        return IndicatorValue(indicator.name, num, den, num / den if den > 0 else None)
    num = sum(float(facts.get(f.value, 0.0)) * params.coefficient(c) for f, c in indicator.numerator)
    if indicator.denominator is None:
        return IndicatorValue(indicator.name, num, None, num)
    den = float(facts.get(indicator.denominator.value, 0.0))
    if den <= 0:
        return IndicatorValue(indicator.name, num, den, None)
    return IndicatorValue(indicator.name, num, den, num / den)


def indicator_values(entity_type: EntityType | str, facts: Mapping[str, float],
                     params: Parameters = DEFAULT_PARAMETERS) -> dict[str, IndicatorValue]:
    """Every applicable indicator of an entity type, evaluated over ``facts`` with the scheme's
    parameters."""
    return {i.name: evaluate(i, facts, params, entity_type) for i in indicators_for(entity_type)}
