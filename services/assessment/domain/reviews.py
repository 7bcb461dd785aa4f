"""Two-way reviews (双向评议 / 双向责任考核): decide and evolve.

Communities and streets review resident units' part in 共驻共建; units review the
community or street. Either way the score (0-100) enters the subject's scorecard
(indicator ``review_score``: the mean of the latest review of each reviewer).

The aggregate is the reviewed subject (the topic key is the entity id). Rules:

- direction: a unit is reviewed by a community or street; a community or street by a unit
  (``invalid_review_direction``); nobody reviews themselves (``self_review``);
- a review may not be recorded for a period that has not started (``period_not_started``);
- **one review per reviewer, subject and period: a later review replaces the earlier one**
  (a correction). The event names the replaced review and its score, so the effect on the
  review average is reproducible from the events alone;
- the same ``review_id`` again with the same content is a no-op (an idempotent retry);
  with other content it is refused (``review_id_reused``).

A reviewer's type may be given (``reviewer_type``) or derived from the id: a street id
(9 digits 0-9) is a street, a community id (12 digits 0-9) a community, a code spelled in
other digits (e.g. Arabic-Indic or full-width) nobody (``invalid_reviewer_id``), anything
else a unit.
"""
from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from schemas.assessment import RecordReview, ReviewParty, ReviewRecorded
from schemas.codes import CodeKind, is_code_shaped, kind_of
from services.kit.errors import Rejected

from .periods import Period


class ReviewEntry(BaseModel):
    """The review in force for one (subject type, period, reviewer)."""

    model_config = ConfigDict(frozen=True)

    review_id: str
    reviewer_id: str
    reviewer_type: ReviewParty
    subject_type: ReviewParty
    period: str
    score: float
    comment: str | None = None


class ReviewBook(BaseModel):
    """All reviews of one subject: ``reviews`` by "subject_type|period|reviewer_id",
    ``review_ids`` every review id ever recorded → what it recorded (for idempotency)."""

    model_config = ConfigDict(frozen=True)

    subject_id: str | None = None
    reviews: dict[str, ReviewEntry] = Field(default_factory=dict)
    review_ids: dict[str, ReviewEntry] = Field(default_factory=dict)


def slot(subject_type: ReviewParty | str, period: str, reviewer_id: str) -> str:
    return f"{ReviewParty(subject_type).value}|{period}|{reviewer_id}"


def reviewer_type_of(reviewer_id: str, declared: ReviewParty | None = None) -> ReviewParty | None:
    """The declared type, else the one the id says (see the module rules); None for a
    malformed code, which names no reviewer."""
    if declared is not None:
        return declared
    kind = kind_of(reviewer_id)
    if kind is CodeKind.STREET:
        return ReviewParty.STREET
    if kind is CodeKind.COMMUNITY:
        return ReviewParty.COMMUNITY
    if kind is None and is_code_shaped(reviewer_id):
        return None
    return ReviewParty.UNIT


def _allowed(reviewer: ReviewParty, subject: ReviewParty) -> bool:
    if subject is ReviewParty.UNIT:
        return reviewer in (ReviewParty.COMMUNITY, ReviewParty.STREET)
    return reviewer is ReviewParty.UNIT


def decide_review(state: ReviewBook, cmd: RecordReview, now: datetime) -> list[ReviewRecorded]:
    """Record (or replace) a two-way review; see the module rules."""
    period = Period.parse(cmd.period)
    rtype = reviewer_type_of(cmd.reviewer_id, cmd.reviewer_type)
    if rtype is None:
        raise Rejected(
            "invalid_reviewer_id",
            f"reviewer_id {cmd.reviewer_id!r} is no street or community id (digits 0-9 only)",
            "reviewer_id",
        )
    if not _allowed(rtype, cmd.subject_type):
        raise Rejected(
            "invalid_review_direction",
            f"a {rtype.value} cannot review a {cmd.subject_type.value}: units are reviewed by communities"
            " and streets, communities and streets by units",
            "subject_type",
        )
    if cmd.reviewer_id == cmd.subject_id:
        raise Rejected("self_review", "a reviewer cannot review itself", "reviewer_id")
    if now < period.start:
        raise Rejected("period_not_started", f"{period} starts at {period.start.isoformat()}", "period")
    entry = ReviewEntry(
        review_id=cmd.review_id,
        reviewer_id=cmd.reviewer_id,
        reviewer_type=rtype,
        subject_type=cmd.subject_type,
        period=str(period),
        score=cmd.score,
        comment=cmd.comment,
    )
    seen = state.review_ids.get(cmd.review_id)
    if seen is not None:
        if seen == entry:
            return []
        raise Rejected("review_id_reused", f"review {cmd.review_id!r} was recorded with other content", "review_id")
    previous = state.reviews.get(slot(cmd.subject_type, str(period), cmd.reviewer_id))
    return [
        ReviewRecorded(
            review_id=cmd.review_id,
            reviewer_id=cmd.reviewer_id,
            subject_type=cmd.subject_type,
            subject_id=cmd.subject_id,
            period=str(period),
            score=cmd.score,
            reviewer_type=rtype,
            comment=cmd.comment,
            replaces_review_id=previous.review_id if previous else None,
            replaced_score=previous.score if previous else None,
            recorded_by=cmd.recorded_by,
        )
    ]


def evolve_review(state: ReviewBook, event: ReviewRecorded) -> ReviewBook:
    entry = ReviewEntry(
        review_id=event.review_id,
        reviewer_id=event.reviewer_id,
        reviewer_type=reviewer_type_of(event.reviewer_id, event.reviewer_type) or ReviewParty.UNIT,
        subject_type=event.subject_type,
        period=event.period,
        score=event.score,
        comment=event.comment,
    )
    return ReviewBook(
        subject_id=event.subject_id,
        reviews={**state.reviews, slot(event.subject_type, event.period, event.reviewer_id): entry},
        review_ids={**state.review_ids, event.review_id: entry},
    )
