"""Who may send each assessment command (the platform's role table), checked by the kit on every path.

- Closing periods and changing schemes (and so the what-if recompute's publication, which sends
  those two commands) are the assessor's (组织部 / 考核办) alone.
- Two-way reviews (双向评议) are between parties, not persons: ``reviewer_id`` is the reviewing
  community, street or resident unit, as the domain has it (:mod:`services.assessment.domain.reviews`).
  The person who records a review is ``recorded_by``, filled from the token. Who records which:

  ============================  ==========================  =======================================
  caller                        reviewer → subject          area that must be in the caller's scope
  ============================  ==========================  =======================================
  ``community_officer``         community → unit            the reviewing community
  ``street_officer``            street or community → unit  the reviewing street or community
  ``street_officer``            unit → community            the reviewed community (the street
                                                            collects its units' opinions)
  ``assessor``                  unit → street               (district-wide: a street does not
                                                            record opinions of itself)
  ============================  ==========================  =======================================

  The reviewer's type is the one its id says (a 9-digit street code, a 12-digit community code,
  anything else a unit); a declared ``reviewer_type`` that contradicts the id is refused. A unit
  carries no area code, so a unit subject or reviewer is not area-checked. Nobody reviews itself
  (the domain's ``self_review``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from schemas.assessment import ChangeScheme, ClosePeriod, ErasePerson, RecordReview, ReviewParty
from schemas.common import Payload
from services.assessment.domain.reviews import reviewer_type_of
from services.kit.identity import Principal
from services.kit.policy import SUB, Grant, Policy, Refused, allow

__all__ = ["POLICY", "ReviewGrant"]

RECORDER = {"recorded_by": SUB}


@dataclass(frozen=True)
class ReviewGrant(Grant):
    """A grant for reviews of one shape: reviewers of the types ``by`` reviewing a ``of``."""

    by: frozenset[ReviewParty] = frozenset()
    of: ReviewParty = ReviewParty.UNIT

    def check(self, payload: Payload, principal: Principal) -> Payload:
        assert isinstance(payload, RecordReview)
        said = reviewer_type_of(payload.reviewer_id)  # what the id says, whatever was declared
        declared = payload.reviewer_type
        if said not in self.by or (declared is not None and declared is not said) or payload.subject_type is not self.of:
            by = " or ".join(sorted(t.value for t in self.by))
            shown = declared or said
            raise Refused("forbidden", f"{'/'.join(sorted(self.roles))} records reviews by a {by} of a "
                                       f"{self.of.value}, not by {shown.value if shown else 'nobody'} "
                                       f"{payload.reviewer_id!r} of a {payload.subject_type.value}", "reviewer_id")
        return super().check(payload, principal)


def reviews(*roles: str, by: tuple[ReviewParty, ...], of: ReviewParty, area: Any = None, note: str) -> ReviewGrant:
    g = allow(*roles, actor=RECORDER, area=area, note=note)
    return ReviewGrant(g.roles, g.actor, g.area, g.note, frozenset(by), of)


C, S, U = ReviewParty.COMMUNITY, ReviewParty.STREET, ReviewParty.UNIT

POLICY = Policy("assessment", {
    RecordReview: (
        reviews("community_officer", by=(C,), of=U, area=lambda c: c.reviewer_id,
                note="reviewer: a community (the area); subject: a resident unit"),
        reviews("street_officer", by=(S, C), of=U, area=lambda c: c.reviewer_id,
                note="reviewer: a street or community (the area); subject: a resident unit"),
        reviews("street_officer", by=(U,), of=C, area=lambda c: c.subject_id,
                note="reviewer: a resident unit; subject: a community (the area)"),
        reviews("assessor", by=(U,), of=S, note="reviewer: a resident unit; subject: a street"),
    ),
    ChangeScheme: allow("assessor", note="also the what-if recompute's publication"),
    ClosePeriod: allow("assessor", note="also the what-if recompute's publication"),
    ErasePerson: allow("data_protection_officer", actor={"requested_by": SUB}, note="any person, with a reason"),
})
