"""Deeds (道德日记 好人好事): 申报 submit → 评审 review → 兑现 credit.

A resident submits a deed in a category of the deed rules. The community reviews it:
approves it with the points the reviewer sets — within ``[min, max]`` of the category's
rule — or rejects it with a reason. Approval credits the points at once as an award from
the issuer of the deed's community (same caps as any award: over a cap the credit is
refused with ``cap_reached`` and the deed stays ``approved`` until
:func:`decide_credit_deed` succeeds on a later day). The deed is ``credited`` when its
award is posted. The award's transfer id is derived from the deed id, so a deed is
credited at most once.
"""
from __future__ import annotations

from datetime import date, datetime
from enum import Enum

from pydantic import AwareDatetime, BaseModel, ConfigDict

from schemas.points import (
    AccountKind, AccountOpened, DeedApproved, DeedRejected, DeedSubmitted, ReviewDeed, SubmitDeed, TransferPosted,
    TransferRefused,
)
from services.kit.errors import IllegalTransition, NotFound, Rejected

from .accounts import Account
from .errors import SelfReview
from .rules import EarningRules, SourceKind
from .transfers import AwardPlan, Earning, award_transfer_id, decide_award

DEED_SOURCE = "points.deed"


class DeedStatus(str, Enum):
    """States of a deed: 待评审 submitted, 已通过 approved, 未通过 rejected, 已兑现 credited."""

    submitted = "submitted"
    approved = "approved"
    rejected = "rejected"
    credited = "credited"


class Deed(BaseModel):
    """道德日记 One submitted deed and how far it got."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    deed_id: str
    account_id: str
    category: str
    community_id: str
    status: DeedStatus = DeedStatus.submitted
    description: str = ""
    occurred_on: date | None = None
    submitted_at: AwareDatetime | None = None
    points: int | None = None
    reviewer_id: str | None = None
    reviewed_at: AwareDatetime | None = None
    reason: str | None = None
    transfer_id: str | None = None
    refused_reason: str | None = None


def deed_transfer_id(deed_id: str) -> str:
    """The id of the award that credits a deed."""
    return award_transfer_id(DEED_SOURCE, deed_id, SourceKind.deed)


def submitter_of(deed: Deed, account: Account | None = None) -> str | None:
    """Who submitted a deed: the holder of its account — ``account`` when it is that account,
    else the holder its id names (``resident:<holder id>``); None when neither tells."""
    if account is not None and account.account_id == deed.account_id:
        return account.holder_id
    kind, sep, holder = deed.account_id.partition(":")
    return holder if sep and kind == AccountKind.resident.value and holder else None


def decide_submit_deed(
    deed: Deed | None, cmd: SubmitDeed, *, account: Account | None, rules: EarningRules, at: datetime,
) -> list[DeedSubmitted]:
    """申报 Submit a deed. Refused: ``unknown_account``, ``wrong_account_kind`` (only
    residents), ``unknown_category`` (no deed rule), ``community_required`` (neither the
    command nor the account names a community), ``deed_exists`` (the id is taken by another
    deed). Submitting the same deed again is a no-op."""
    if deed is not None:
        if deed.account_id == cmd.account_id and deed.category == cmd.category:
            return []
        raise Rejected("deed_exists", f"deed {cmd.deed_id!r} was submitted for another account or category", "deed_id")
    if account is None:
        raise NotFound("account", cmd.account_id, "account_id")
    if account.kind is not AccountKind.resident:
        raise Rejected("wrong_account_kind", f"{account.account_id} is not a resident account", "account_id")
    if rules.rule_for(SourceKind.deed, cmd.category) is None:
        raise Rejected("unknown_category", f"no deed rule for {cmd.category!r}; known: {list(rules.deed_categories())}",
                       "category")
    community = cmd.community_id or account.community_id
    if community is None:
        raise Rejected("community_required", "name the community that reviews the deed", "community_id")
    return [
        DeedSubmitted(
            deed_id=cmd.deed_id, account_id=cmd.account_id, category=cmd.category, description=cmd.description,
            community_id=community, occurred_on=cmd.occurred_on, submitted_at=at,
        )
    ]


def decide_review_deed(
    deed: Deed | None,
    cmd: ReviewDeed,
    *,
    rules: EarningRules,
    resident: Account | None,
    issuer: Account | None,
    existing: TransferPosted | None = None,
    at: datetime,
) -> list[DeedApproved | DeedRejected | AccountOpened | TransferPosted | TransferRefused]:
    """评审 Approve (with points within the rule's bounds) or reject (with a reason) a
    submitted deed. An approval also credits it: ``[DeedApproved, (AccountOpened,)
    TransferPosted]`` or ``[DeedApproved, TransferRefused]`` over a cap. ``resident`` is the
    deed's account, ``issuer`` the issuer of the deed's community (None: opened).
    Refused: ``unknown_deed``, ``wrong_account`` (the deed belongs to another account),
    ``illegal_transition`` (already reviewed), ``self_review`` (the reviewer is the deed's
    submitter: separation of duties), ``points_out_of_bounds``."""
    if deed is None:
        raise NotFound("deed", cmd.deed_id, "deed_id")
    if cmd.account_id != deed.account_id:
        raise Rejected("wrong_account", f"deed {deed.deed_id!r} belongs to {deed.account_id!r}", "account_id")
    if deed.status is not DeedStatus.submitted:
        raise IllegalTransition("review", deed.status.value)
    if cmd.reviewer_id == submitter_of(deed, resident):
        raise SelfReview(cmd.reviewer_id)
    if not cmd.approved:
        return [
            DeedRejected(
                deed_id=deed.deed_id, account_id=deed.account_id, category=deed.category,
                reason=cmd.reason or "", reviewer_id=cmd.reviewer_id, reviewed_at=at,
            )
        ]
    rule = rules.rule_for(SourceKind.deed, deed.category)
    if rule is None:
        raise Rejected("unknown_category", f"no deed rule for {deed.category!r}", "category")
    points = cmd.points or 0
    if not rule.allows(points):
        raise Rejected("points_out_of_bounds", f"{deed.category} earns {rule.min}–{rule.max} points, not {points}", "points")
    approved = DeedApproved(
        deed_id=deed.deed_id, account_id=deed.account_id, category=deed.category, points=points,
        reviewer_id=cmd.reviewer_id, community_id=deed.community_id, transfer_id=deed_transfer_id(deed.deed_id),
        reviewed_at=at,
    )
    after = evolve_deed(deed, approved)
    return [approved, *decide_credit_deed(after, rules=rules, resident=resident, issuer=issuer, existing=existing, at=at)]


def decide_credit_deed(
    deed: Deed,
    *,
    rules: EarningRules,
    resident: Account | None,
    issuer: Account | None,
    existing: TransferPosted | None = None,
    at: datetime,
) -> list[AccountOpened | TransferPosted | TransferRefused]:
    """兑现 Credit an approved deed's points to its resident (again, after a refused credit).
    The points count as earned ``at`` (the cap period and the lot's date)."""
    if deed.status is not DeedStatus.approved or deed.points is None:
        raise IllegalTransition("credit", deed.status.value)
    if resident is None or resident.account_id != deed.account_id:
        raise NotFound("account", deed.account_id, "account_id")
    rule = rules.rule_for(SourceKind.deed, deed.category)
    if rule is None:
        raise Rejected("unknown_category", f"no deed rule for {deed.category!r}", "category")
    earning = Earning(
        source=DEED_SOURCE, source_event_id=deed.deed_id, kind=SourceKind.deed, holder_id=resident.holder_id,
        category=deed.category, community_id=deed.community_id, occurred_at=at,
    )
    plan = AwardPlan(earning, rule, deed.points, deed_transfer_id(deed.deed_id))
    return decide_award(plan, resident=resident, issuer=issuer, existing=existing, at=at)


def evolve_deed(
    deed: Deed | None, event: DeedSubmitted | DeedApproved | DeedRejected | TransferPosted | TransferRefused | object,
) -> Deed | None:
    """Apply one event to a deed (events about other deeds or transfers leave it as it is)."""
    if isinstance(event, DeedSubmitted):
        if deed is not None:
            return deed
        return Deed(
            deed_id=event.deed_id, account_id=event.account_id, category=event.category,
            community_id=event.community_id or "", description=event.description, occurred_on=event.occurred_on,
            submitted_at=event.submitted_at,
        )
    if deed is None:
        return None
    if isinstance(event, DeedApproved) and event.deed_id == deed.deed_id:
        return deed.model_copy(update={
            "status": DeedStatus.approved, "points": event.points, "reviewer_id": event.reviewer_id,
            "reviewed_at": event.reviewed_at, "transfer_id": event.transfer_id or deed_transfer_id(deed.deed_id),
        })
    if isinstance(event, DeedRejected) and event.deed_id == deed.deed_id:
        return deed.model_copy(update={
            "status": DeedStatus.rejected, "reason": event.reason, "reviewer_id": event.reviewer_id,
            "reviewed_at": event.reviewed_at,
        })
    if isinstance(event, TransferPosted) and deed.transfer_id and event.transfer_id == deed.transfer_id:
        return deed.model_copy(update={"status": DeedStatus.credited, "refused_reason": None})
    if isinstance(event, TransferRefused) and deed.transfer_id and event.transfer_id == deed.transfer_id:
        return deed.model_copy(update={"refused_reason": event.reason})
    return deed
