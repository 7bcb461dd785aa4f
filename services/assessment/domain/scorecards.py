"""Scorecards (考核成绩单): composite score, rank within the parent, grade, alerts, diff.

Pure functions from counters + a scheme to ``assessment.scorecard.published.v1`` and
``assessment.alert.raised.v1`` payloads:

- :func:`score_entity` — every applicable indicator's numerator/denominator/value, its
  0-100 points, pillar scores and the composite (weights re-normalised over what has a
  value; see :mod:`.scheme`);
- :func:`rank_scorecards` — standard competition ranking ("1224") by score within
  (entity type, parent); equal scores share a rank, listed by entity id; entities without
  a score are not ranked;
- :func:`alerts_for` — one alert per indicator worse than its threshold;
- :func:`close_period` — all of the above for one period;
- :func:`diff_scorecards` — what changes between two sets (the what-if recompute).

Ids are uuid5 of (entity type, entity id, period, scheme id) — publishing twice yields the
same scorecards, a different scheme yields different ones. Values are rounded (indicator
values 4 decimals, points and scores 2) so that ties and equality are stable.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Iterable, Literal, Mapping

from pydantic import BaseModel, ConfigDict

from schemas.assessment import (
    AlertRaised,
    ClosePeriod,
    EntityType,
    Grade,
    IndicatorDetail,
    ScorecardPublished,
)
from services.kit.errors import Rejected

from .indicators import CATALOGUE, indicator_values
from .periods import Period
from .scheme import Scheme

NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:grassroots:assessment")
VALUE_DIGITS = 4
SCORE_DIGITS = 2


def scorecard_id(entity_type: str, entity_id: str, period: str, scheme_id: str) -> str:
    """Deterministic id of a scorecard: uuid5 of entity, period and scheme."""
    return str(uuid.uuid5(NAMESPACE, f"scorecard:{EntityType(entity_type).value}:{entity_id}:{period}:{scheme_id}"))


def alert_id(scorecard_id_: str, indicator: str) -> str:
    """Deterministic id of an alert: uuid5 of its scorecard and indicator."""
    return str(uuid.uuid5(NAMESPACE, f"alert:{scorecard_id_}:{indicator}"))


@dataclass(frozen=True)
class EntityFacts:
    """One entity's counters for a period, and where it is ranked (``parent_id``)."""

    entity_type: str
    entity_id: str
    facts: Mapping[str, float]
    parent_id: str | None = None


def _r(v: float | None, digits: int) -> float | None:
    return None if v is None else round(v, digits) + 0.0  # + 0.0: no -0.0


def _weighted_mean(pairs: Iterable[tuple[float, float | None]]) -> tuple[float | None, float]:
    """Mean of the values that exist, weighted; (mean, total weight of those)."""
    num = tot = 0.0
    for w, v in pairs:
        if v is not None:
            num += w * v
            tot += w
    return (num / tot if tot > 0 else None), tot


def score_entity(entity: EntityFacts, period: str, scheme: Scheme) -> ScorecardPublished:
    """An unranked scorecard (rank None, rank_of None) for one entity and period."""
    et = EntityType(entity.entity_type)
    values = indicator_values(et, entity.facts, scheme.formula_parameters())
    es = scheme.entity_types.get(et)
    pillar_of = {i: pn for pn, p in (es.pillars.items() if es else ()) for i in p.indicators}

    points: dict[str, float | None] = {
        name: _r(scheme.scoring_for(et, name).points(_r(v.value, VALUE_DIGITS)), SCORE_DIGITS) for name, v in values.items()
    }
    pillars: dict[str, float | None] = {}
    pillar_weights: dict[str, float] = {}
    share: dict[str, float] = {}
    if es:
        for pn, p in es.pillars.items():
            mean, tot = _weighted_mean((wi.weight, points.get(name)) for name, wi in p.indicators.items())
            pillars[pn.value] = _r(mean, SCORE_DIGITS)
            if mean is not None:
                pillar_weights[pn.value] = p.weight
                for name, wi in p.indicators.items():
                    if points.get(name) is not None:
                        share[name] = p.weight * wi.weight / tot
    score, ptot = _weighted_mean((pillar_weights.get(pn, 0.0), pillars[pn]) for pn in pillars)
    score = _r(score, SCORE_DIGITS)
    details = {
        name: IndicatorDetail(
            numerator=_r(v.numerator, VALUE_DIGITS) or 0.0,
            denominator=_r(v.denominator, VALUE_DIGITS),
            value=_r(v.value, VALUE_DIGITS),
            points=points[name],
            pillar=pillar_of[name].value if name in pillar_of else None,
            weight=round(share.get(name, 0.0) / ptot, 6) if ptot > 0 else 0.0,
        )
        for name, v in values.items()
    }
    return ScorecardPublished(
        entity_type=et,
        entity_id=entity.entity_id,
        period=str(Period.parse(period)),
        indicators={name: _r(v.value, VALUE_DIGITS) for name, v in values.items()},
        score=score,
        rank=None,
        grade=scheme.grade(score),
        scorecard_id=scorecard_id(et, entity.entity_id, period, scheme.scheme_id),
        scheme_id=scheme.scheme_id,
        pillars=pillars,
        details=details,
        parent_id=entity.parent_id,
    )


def competition_ranks(scores: Mapping[str, float | None]) -> dict[str, int | None]:
    """Standard competition ranking ("1224"): higher score first; equal scores share a rank
    and the next rank skips; None scores get no rank."""
    ranked = sorted(((s, k) for k, s in scores.items() if s is not None), key=lambda t: (-t[0], t[1]))
    out: dict[str, int | None] = {k: None for k, s in scores.items() if s is None}
    prev: float | None = None
    rank = 0
    for i, (s, k) in enumerate(ranked, start=1):
        if s != prev:
            rank, prev = i, s
        out[k] = rank
    return out


def _order_key(c: ScorecardPublished) -> tuple:
    return (c.entity_type.value, c.parent_id or "", c.rank is None, c.rank or 0, c.entity_id)


def rank_scorecards(cards: Iterable[ScorecardPublished]) -> list[ScorecardPublished]:
    """Rank each card among cards of the same entity type and parent; deterministic order
    (entity type, parent, rank, entity id; unranked last)."""
    groups: dict[tuple[str, str | None], list[ScorecardPublished]] = {}
    for c in cards:
        groups.setdefault((c.entity_type.value, c.parent_id), []).append(c)
    out: list[ScorecardPublished] = []
    for group in groups.values():
        ranks = competition_ranks({c.entity_id: c.score for c in group})
        n = sum(1 for c in group if c.score is not None)
        for c in group:
            r = ranks[c.entity_id]
            out.append(c.model_copy(update={"rank": r, "rank_of": n if r is not None else None}))
    return sorted(out, key=_order_key)


def alerts_for(card: ScorecardPublished, scheme: Scheme) -> list[AlertRaised]:
    """One alert (约谈 warning) per indicator with a value worse than its threshold:
    below it when higher is better, above it for inverse indicators. No value → no alert."""
    out = []
    for name, threshold in sorted(scheme.thresholds_for(card.entity_type).items()):
        value = card.indicators.get(name)
        if value is None:
            continue
        higher = CATALOGUE[name].higher_is_better
        if (value < threshold) if higher else (value > threshold):
            sid = card.scorecard_id or scorecard_id(card.entity_type, card.entity_id, card.period, scheme.scheme_id)
            out.append(
                AlertRaised(
                    entity_type=card.entity_type,
                    entity_id=card.entity_id,
                    indicator=name,
                    value=value,
                    threshold=threshold,
                    alert_id=alert_id(sid, name),
                    period=card.period,
                    scheme_id=scheme.scheme_id,
                    scorecard_id=sid,
                    direction="below_minimum" if higher else "above_maximum",
                )
            )
    return out


@dataclass(frozen=True)
class Publication:
    """What closing a period publishes."""

    scorecards: list[ScorecardPublished]
    alerts: list[AlertRaised]


def close_period(period: str, entities: Iterable[EntityFacts], scheme: Scheme) -> Publication:
    """Scorecards (ranked, graded) for every entity, and the alerts. Same input → same output."""
    cards = rank_scorecards(score_entity(e, period, scheme) for e in entities)
    alerts = [a for c in cards for a in alerts_for(c, scheme)]
    return Publication(cards, alerts)


def check_close(cmd: ClosePeriod, now: datetime) -> Period:
    """A period may be closed once it has ended (``period_not_ended`` otherwise)."""
    p = Period.parse(cmd.period)
    if not p.has_ended(now):
        raise Rejected("period_not_ended", f"{p} ends at {p.end.isoformat()}", "period")
    return p


# ---------------------------------------------------------------------------------------
# Diff (what-if under another scheme)
# ---------------------------------------------------------------------------------------


class ScorecardChange(BaseModel):
    """How one entity's scorecard differs between two sets (before → after)."""

    model_config = ConfigDict(frozen=True)

    entity_type: EntityType
    entity_id: str
    period: str
    change: Literal["added", "removed", "changed", "unchanged"]
    score_before: float | None = None
    score_after: float | None = None
    delta: float | None = None
    rank_before: int | None = None
    rank_after: int | None = None
    grade_before: Grade | None = None
    grade_after: Grade | None = None
    indicators_changed: dict[str, tuple[float | None, float | None]] = {}
    alerts_before: tuple[str, ...] = ()
    alerts_after: tuple[str, ...] = ()


def diff_scorecards(
    before: Iterable[ScorecardPublished],
    after: Iterable[ScorecardPublished],
    *,
    alerts_before: Iterable[AlertRaised] = (),
    alerts_after: Iterable[AlertRaised] = (),
    include_unchanged: bool = False,
) -> list[ScorecardChange]:
    """Compare two sets of scorecards by (entity type, entity id, period): score, rank, grade,
    indicator values and alerted indicators. Sorted by entity type, entity id, period."""
    b = {(c.entity_type.value, c.entity_id, c.period): c for c in before}
    a = {(c.entity_type.value, c.entity_id, c.period): c for c in after}

    def alerted(alerts: Iterable[AlertRaised]) -> dict[tuple[str, str, str | None], tuple[str, ...]]:
        out: dict[tuple[str, str, str | None], list[str]] = {}
        for al in alerts:
            out.setdefault((al.entity_type.value, al.entity_id, al.period), []).append(al.indicator)
        return {k: tuple(sorted(v)) for k, v in out.items()}

    ab, aa = alerted(alerts_before), alerted(alerts_after)
    out = []
    for key in sorted(set(b) | set(a)):
        cb, ca = b.get(key), a.get(key)
        inds: dict[str, tuple[float | None, float | None]] = {}
        for name in sorted(set(cb.indicators if cb else {}) | set(ca.indicators if ca else {})):
            vb = cb.indicators.get(name) if cb else None
            va = ca.indicators.get(name) if ca else None
            if vb != va:
                inds[name] = (vb, va)
        sb, sa = (cb.score if cb else None), (ca.score if ca else None)
        alb, ala = ab.get(key, ()), aa.get(key, ())
        if cb is None:
            change = "added"
        elif ca is None:
            change = "removed"
        elif (sb, cb.rank, cb.grade, alb) != (sa, ca.rank, ca.grade, ala) or inds:
            change = "changed"
        else:
            change = "unchanged"
        if change == "unchanged" and not include_unchanged:
            continue
        out.append(
            ScorecardChange(
                entity_type=key[0],
                entity_id=key[1],
                period=key[2],
                change=change,
                score_before=sb,
                score_after=sa,
                delta=_r(sa - sb, SCORE_DIGITS) if sa is not None and sb is not None else None,
                rank_before=cb.rank if cb else None,
                rank_after=ca.rank if ca else None,
                grade_before=cb.grade if cb else None,
                grade_after=ca.grade if ca else None,
                indicators_changed=inds,
                alerts_before=alb,
                alerts_after=ala,
            )
        )
    return out
