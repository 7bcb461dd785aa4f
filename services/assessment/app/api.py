"""What the assessment service's HTTP routes take and answer (path, query and response models)."""
from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from schemas.assessment import AlertRaised, EntityType, Period, ScorecardPublished
from services.assessment.domain import CATALOGUE
from services.kit.routes import Id, Instant, Page, PageOut

Indicator = Literal[tuple(sorted(CATALOGUE))]  # type: ignore[valid-type]
"""An indicator of the catalogue (立案率, 按期结案率, 满意率...)."""

# -- path and query ----------------------------------------------------------------------------


class ScorecardRef(BaseModel):
    entity_type: EntityType
    entity_id: Id


class ScorecardQuery(BaseModel):
    period: Period = Field(description="a month 2026-11, a quarter 2026-Q4 or a year 2026")
    scheme_id: Id | None = Field(None, description="the scheme it was closed under (default: the period's latest close)")


class RankingQuery(Page.sized(100, 500)):
    entity_type: EntityType
    period: Period = Field(description="a month 2026-11, a quarter 2026-Q4 or a year 2026")
    parent_id: Id | None = Field(None, description="rank within this parent only (a community, a street...)")
    scheme_id: Id | None = Field(None, description="the scheme it was closed under (default: the period's latest close)")


class AlertQuery(Page.sized(100, 500)):
    period: Period | None = Field(None, description="a month 2026-11, a quarter 2026-Q4 or a year 2026")
    entity_type: EntityType | None = None
    indicator: Indicator | None = None


class SchemeQuery(BaseModel):
    at: Instant | None = Field(None, description="the instant (RFC 3339; default: now)")


# -- answers -----------------------------------------------------------------------------------


class ScorecardOut(ScorecardPublished):
    """A scorecard: published (the period was closed) or provisional (computed from the log now)."""

    status: Literal["published", "provisional"]
    published_at: datetime | None = None
    revision: int | None = Field(None, description="how many times this scorecard was published")


class RankingItem(BaseModel):
    rank: int | None
    rank_of: int | None = Field(description="how many entities were ranked together")
    entity_id: str
    parent_id: str | None
    score: float | None
    grade: str | None
    scorecard_id: str


class Ranking(PageOut[RankingItem]):
    """Ranks within the parent from the published scorecards of the period's latest close."""

    period: str
    scheme_id: str
    entity_type: EntityType
    parent_id: str | None


class AlertOut(AlertRaised):
    """A standing alert (约谈 warning)."""

    raised_at: datetime


class AlertPage(PageOut[AlertOut]):
    """One page of standing alerts."""


class SchemeOut(BaseModel):
    """The assessment scheme in force at an instant."""

    scheme_id: str
    name: str | None
    effective_from: datetime
    at: datetime
    weights: dict[str, float] = Field(description="flat, normalised weights (`<entity_type>.<pillar>[.<indicator>]`)")
    definition: dict[str, Any] = Field(description="the whole scheme: weights, scoring, thresholds, grade cut-offs")
