"""Assessment's own facts: two-way reviews (双向评议).

A review counts for its subject in the review's period and the periods enclosing it (a
month's review counts in its quarter and year too). A review that replaces an earlier one
(same reviewer, subject and period) changes the score sum by the difference and the count
not at all, so the review average is reproducible from the events alone.
"""
from __future__ import annotations

from datetime import datetime

from schemas.assessment import ReviewRecorded

from ..indicators import Fact
from ..periods import enclosing_periods
from .core import EventEffect, builds, increments_in
from .refs import Lookup


@builds(ReviewRecorded)  # no occurrence field: the envelope time says when
def review_recorded(e: ReviewRecorded, at: datetime, lookup: Lookup) -> EventEffect:
    ents = [(e.subject_type.value, e.subject_id)]
    periods = enclosing_periods(e.period)
    if e.replaces_review_id:
        return EventEffect(increments_in(ents, periods, Fact.REVIEW_SCORE_SUM, e.score - (e.replaced_score or 0.0)))
    return EventEffect(increments_in(ents, periods, Fact.REVIEWS_RECEIVED, 1)
                       + increments_in(ents, periods, Fact.REVIEW_SCORE_SUM, e.score))
