"""Assessment (考核) commands and events: two-way reviews, schemes, period close, scorecards, alerts.

Commands arrive on ``assessment.intake.v1`` (community and street consoles); events are
published on ``assessment.events.v1`` by the assessment service only. Type strings and the
required fields are fixed by the contract (docs/contract.md); every other field here is optional.

Vocabulary:

- entity types: ``grid_worker`` 网格员, ``member`` 党员, ``grid`` 网格, ``community`` 社区,
  ``street`` 街道, ``unit`` 驻区单位 (resident unit);
- periods: a month ``2026-11``, a quarter ``2026-Q4`` or a year ``2026`` (Asia/Shanghai);
- pillars: ``organisation`` 组织建设, ``member_role`` 党员作用发挥, ``satisfaction`` 群众满意度;
- grades: ``excellent`` 优秀, ``good`` 良好, ``fair`` 一般, ``poor`` 较差.
"""
from __future__ import annotations

from enum import Enum
from typing import Annotated, ClassVar

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from .common import Command, Event, NonEmptyStr, Text, Timestamp, pii, ErasePersonCommand, PersonErasedEvent

PERIOD_PATTERN = r"^[0-9]{4}(-(0[1-9]|1[0-2])|-Q[1-4])?$"  # [0-9]: ASCII digits only (\d is any Unicode digit)

Period = Annotated[str, StringConstraints(pattern=PERIOD_PATTERN)]
"""An assessment period: ``2026-11`` (month), ``2026-Q4`` (quarter) or ``2026`` (year)."""

Score = Annotated[float, Field(ge=0, le=100)]
"""A score on the 0-100 scale."""


class EntityType(str, Enum):
    """What a scorecard is about (考核对象)."""

    GRID_WORKER = "grid_worker"  # 网格员
    MEMBER = "member"  # 党员
    GRID = "grid"  # 网格
    COMMUNITY = "community"  # 社区
    STREET = "street"  # 街道
    UNIT = "unit"  # 驻区单位
    DEPARTMENT = "department"  # 职能部门 (its id as in the grid's department register)


class ReviewParty(str, Enum):
    """Who can review or be reviewed in 双向评议: communities and streets review units, units review them."""

    COMMUNITY = "community"
    STREET = "street"
    UNIT = "unit"


class Grade(str, Enum):
    """The grade of a scorecard, by the scheme's cut-offs."""

    EXCELLENT = "excellent"  # 优秀
    GOOD = "good"  # 良好
    FAIR = "fair"  # 一般
    POOR = "poor"  # 较差


GRADE_LABELS: dict[Grade, str] = {Grade.EXCELLENT: "优秀", Grade.GOOD: "良好", Grade.FAIR: "一般", Grade.POOR: "较差"}


class IndicatorDetail(BaseModel):
    """How one indicator of a scorecard was obtained: numerator / denominator → value → 0-100 points.

    ``value`` and ``points`` are null when the denominator is empty (no value, not zero).
    ``weight`` is the indicator's effective share of the composite (0 when unweighted or
    without a value).
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    numerator: float
    denominator: float | None = None
    value: float | None = None
    points: float | None = None
    pillar: str | None = None
    weight: float = 0.0


# ---------------------------------------------------------------------------------------
# Commands
# ---------------------------------------------------------------------------------------


class RecordReview(Command):
    """Record a two-way review (双向评议): a community or street scores a resident unit's part in
    共驻共建, or a unit scores its community or street, for one period, 0-100.

    One review per (reviewer, subject, period): a later review with a new ``review_id``
    replaces the earlier one. ``reviewer_type`` may be omitted: a 9-digit id is a street,
    a 12-digit id a community, anything else a unit. ``reviewer_id`` names the reviewing
    party; the person recording the review is ``recorded_by``, taken from their token (a
    community officer records their community's reviews, a street officer their street's and
    its units' reviews of its communities, the assessor units' reviews of streets).
    """

    TYPE: ClassVar[str] = "assessment.review.record.v1"
    SUBJECT: ClassVar[str] = "subject_id"

    review_id: NonEmptyStr
    reviewer_id: Annotated[NonEmptyStr, pii("identifier")]
    subject_type: ReviewParty
    subject_id: Annotated[NonEmptyStr, pii("identifier")]
    period: Period
    score: Score
    reviewer_type: ReviewParty | None = None
    comment: Annotated[Text | None, pii("free_text")] = None
    recorded_by: Annotated[NonEmptyStr | None, pii("identifier")] = Field(
        None, description="the person who records the review for the reviewing party (filled from the token)")


class ChangeScheme(Command):
    """Introduce an assessment scheme (考核方案) effective from a time.

    ``weights`` overrides weights of a base scheme (the current one, or ``base_scheme_id``),
    on the scale of its normalised weights (the shares ``scheme.changed`` shows).
    Keys are ``<indicator>`` (everywhere it is used), ``<entity_type>.<pillar>`` (a pillar's
    weight) or ``<entity_type>.<pillar>.<indicator>``; weights must be positive and are
    re-normalised. ``definition`` (a whole scheme, as in ``schemes/default.yaml``) replaces
    the base instead. Scheme ids are immutable: new weights need a new ``scheme_id``.
    """

    TYPE: ClassVar[str] = "assessment.scheme.change.v1"
    SUBJECT: ClassVar[str] = "scheme_id"

    scheme_id: NonEmptyStr
    weights: dict[str, float] = Field(default_factory=dict)
    effective_from: Timestamp
    base_scheme_id: NonEmptyStr | None = None
    definition: dict | None = None


class ClosePeriod(Command):
    """Close a period (结算): publish one scorecard per assessed entity and the alerts.

    Refused before the period has ended. Closing again publishes the same scorecards (same
    ids). ``scheme_id`` picks a scheme other than the one in force (what-if).
    """

    TYPE: ClassVar[str] = "assessment.period.close.v1"
    SUBJECT: ClassVar[str] = "period"

    period: Period
    scheme_id: NonEmptyStr | None = None


# ---------------------------------------------------------------------------------------
# Events
# ---------------------------------------------------------------------------------------


class ReviewRecorded(Event):
    """A two-way review (双向评议) was recorded; its score enters the subject's scorecard.

    ``replaces_review_id`` / ``replaced_score`` name the earlier review of the same reviewer,
    subject and period that this one replaces, so that the effect on the review average is
    reproducible from the events alone.
    """

    TYPE: ClassVar[str] = "assessment.review.recorded.v1"
    SUBJECT: ClassVar[str] = "subject_id"

    review_id: NonEmptyStr
    reviewer_id: Annotated[NonEmptyStr, pii("identifier")]
    subject_type: ReviewParty
    subject_id: Annotated[NonEmptyStr, pii("identifier")]
    period: Period
    score: Score
    reviewer_type: ReviewParty | None = None
    comment: Annotated[Text | None, pii("free_text")] = None
    replaces_review_id: str | None = None
    replaced_score: Score | None = None
    recorded_by: Annotated[str | None, pii("identifier")] = Field(None, description="the person who recorded it (from their token)")


class SchemeChanged(Event):
    """A new assessment scheme is in force from ``effective_from``.

    ``weights`` is the flat, normalised weight table of the resulting scheme
    (``<entity_type>.<pillar>`` and ``<entity_type>.<pillar>.<indicator>``); ``definition``
    is the whole scheme (weights, scoring, thresholds, grade cut-offs).
    """

    TYPE: ClassVar[str] = "assessment.scheme.changed.v1"
    SUBJECT: ClassVar[str] = "scheme_id"

    scheme_id: NonEmptyStr
    weights: dict[str, float]
    effective_from: Timestamp
    base_scheme_id: str | None = None
    definition: dict | None = None


class ScorecardPublished(Event):
    """An entity's scorecard (考核成绩) for a period.

    ``indicators`` holds each indicator's value (rates as fractions 0-1, averages and counts
    in their unit; null = no value because the denominator was empty); ``score`` is the
    weighted composite 0-100 (null when no weighted indicator has a value); ``rank`` is the
    standard competition rank within ``parent_id`` among entities of the same type;
    ``grade`` follows the scheme's cut-offs. ``scorecard_id`` is derived from entity, period
    and scheme, so publishing twice yields the same id.
    """

    TYPE: ClassVar[str] = "assessment.scorecard.published.v1"
    SUBJECT: ClassVar[str] = "entity_id"

    entity_type: EntityType
    entity_id: Annotated[NonEmptyStr, pii("identifier")]
    period: Period
    indicators: dict[str, float | None]
    score: Score | None
    rank: int | None = Field(ge=1)
    grade: Grade | None
    scorecard_id: str | None = None
    scheme_id: str | None = None
    pillars: dict[str, float | None] = Field(default_factory=dict)
    details: dict[str, IndicatorDetail] | None = None
    parent_id: str | None = None
    rank_of: int | None = Field(default=None, ge=1, description="how many entities were ranked together")


class AlertRaised(Event):
    """An indicator is worse than its threshold (约谈 warning).

    For indicators where higher is better the value is below ``threshold``; for inverse
    indicators (返工率, 延期率, handling time) it is above (``direction`` says which).
    ``alert_id`` is derived from the scorecard and indicator, so raising twice is one alert.
    """

    TYPE: ClassVar[str] = "assessment.alert.raised.v1"
    SUBJECT: ClassVar[str] = "entity_id"

    entity_type: EntityType
    entity_id: Annotated[NonEmptyStr, pii("identifier")]
    indicator: NonEmptyStr
    value: float
    threshold: float
    alert_id: str | None = None
    period: Period | None = None
    scheme_id: str | None = None
    scorecard_id: str | None = None
    direction: str | None = Field(default=None, description="'below_minimum' or 'above_maximum'")


class CloseTrigger(str, Enum):
    """What closed a period: the close timer when the period ended, or a close command."""

    TIMER = "timer"
    COMMAND = "command"


class PeriodClosed(Event):
    """A period was closed (结算) under a scheme: its scorecards and alerts as of ``time`` are
    final until it is closed again.

    Published by every close that changed something (its first close, and one that published a
    corrected scorecard or withdrew an alert); closing again an unchanged period publishes
    nothing. ``scorecards`` counts the period's scorecards under the scheme, ``published`` those
    this close published (new or changed: the others stand as published before), ``alerts`` the
    alerts standing after it. A subscriber reads the period's cards from the scorecard events,
    or over HTTP from the rankings once it has seen this.
    """

    TYPE: ClassVar[str] = "assessment.period.closed.v1"
    SUBJECT: ClassVar[str] = "period"

    period: Period
    scheme_id: NonEmptyStr
    scorecards: int = Field(ge=0)
    published: int = Field(ge=0)
    alerts: int = Field(ge=0)
    trigger: CloseTrigger
    occurred_at: Timestamp = Field(description="when the period was closed")


COMMANDS: tuple[type[Command], ...] = (RecordReview, ChangeScheme, ClosePeriod)
EVENTS: tuple[type[Event], ...] = (ReviewRecorded, SchemeChanged, ScorecardPublished, AlertRaised, PeriodClosed)


# ---------------------------------------------------------------------------------------
# Erasure (shapes in schemas.common)
# ---------------------------------------------------------------------------------------


class ErasePerson(ErasePersonCommand):
    """擦除 Erase a person's personal data in the assessment service (see :class:`~schemas.common.ErasePersonCommand`)."""

    TYPE: ClassVar[str] = "assessment.person.erase.v1"


class PersonErased(PersonErasedEvent):
    """A person's data was erased in the assessment service (see :class:`~schemas.common.PersonErasedEvent`)."""

    TYPE: ClassVar[str] = "assessment.person.erased.v1"
