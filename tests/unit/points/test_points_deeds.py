"""Deeds: 申报 submit → 评审 review → 兑现 credit, and their refusals."""
from datetime import datetime, timedelta, timezone

import pytest

from schemas.points import DeedRejected, OpenAccount, ReviewDeed, SubmitDeed
from services.points.domain import Deed, DeedStatus, EarningRules
from points_reference import ReferenceLedger

SH = timezone(timedelta(hours=8))
AT = datetime(2026, 11, 22, 10, tzinfo=SH)
C1 = "110105001002"


def ledger_with_resident(rules=None) -> ReferenceLedger:
    ledger = ReferenceLedger(rules)
    ledger.open(OpenAccount(account_id="resident:r-1", holder_id="r-1", kind="resident", community_id=C1), AT)
    return ledger


def submit(ledger, deed_id="d-1", category="lost_property", **kw):
    return ledger.submit(SubmitDeed(deed_id=deed_id, account_id="resident:r-1", category=category, **kw), AT)


def approve(ledger, deed_id="d-1", points=8, at=AT):
    return ledger.review(ReviewDeed(deed_id=deed_id, account_id="resident:r-1", approved=True, points=points,
                                    reviewer_id="cw-1"), at)


def test_approved_deed_is_credited_with_the_points_the_reviewer_set():
    ledger = ledger_with_resident()
    (submitted,) = submit(ledger, description="拾到钱包交还失主")
    assert submitted.community_id == C1  # the resident's home community reviews by default
    events = approve(ledger, points=8)
    assert [type(e).__name__ for e in events] == ["DeedApproved", "AccountOpened", "TransferPosted"]
    posting = events[-1]
    assert (posting.debit_account, posting.credit_account, posting.amount) == (f"issuer:{C1}", "resident:r-1", 8)
    assert posting.rule == "deed.lost_property" and posting.source_event_id == "d-1"
    assert events[0].transfer_id == posting.transfer_id
    assert ledger.deeds["d-1"].status is DeedStatus.credited
    ledger.check()


def test_rejected_deed_keeps_the_reason_and_credits_nothing():
    ledger = ledger_with_resident()
    submit(ledger)
    events = ledger.review(ReviewDeed(deed_id="d-1", account_id="resident:r-1", approved=False, reviewer_id="cw-1",
                                      reason="无法核实"), AT)
    assert [type(e) for e in events] == [DeedRejected] and events[0].reason == "无法核实"
    assert ledger.deeds["d-1"].status is DeedStatus.rejected
    assert ledger.postings == {}


@pytest.mark.parametrize("category,points", [("lost_property", 4), ("lost_property", 11), ("disaster_relief", 10),
                                              ("civility_persuasion", 12)])
def test_reviewer_points_outside_the_rule_bounds_are_refused(category, points):
    ledger = ledger_with_resident()
    submit(ledger, category=category)
    approve(ledger, points=points)
    assert ledger.rejected[-1].reason == "points_out_of_bounds" and ledger.rejected[-1].field == "points"
    assert ledger.deeds["d-1"].status is DeedStatus.submitted


def test_a_deed_is_reviewed_once():
    ledger = ledger_with_resident()
    submit(ledger)
    approve(ledger)
    approve(ledger, points=10)
    assert ledger.rejected[-1].reason == "illegal_transition"
    assert ledger.balance("resident:r-1") == 8


def test_submit_refusals():
    ledger = ledger_with_resident()
    ledger.submit(SubmitDeed(deed_id="d-1", account_id="resident:ghost", category="mediation"), AT)
    assert ledger.rejected[-1].reason == "unknown_account"
    submit(ledger, category="singing")
    assert ledger.rejected[-1].reason == "unknown_category" and ledger.rejected[-1].field == "category"
    ledger.open(OpenAccount(account_id="resident:r-2", holder_id="r-2", kind="resident"), AT)
    ledger.submit(SubmitDeed(deed_id="d-2", account_id="resident:r-2", category="mediation"), AT)
    assert ledger.rejected[-1].reason == "community_required"
    ledger.open(OpenAccount(account_id="merchant:m", holder_id="m", kind="merchant", community_id=C1), AT)
    ledger.submit(SubmitDeed(deed_id="d-3", account_id="merchant:m", category="mediation"), AT)
    assert ledger.rejected[-1].reason == "wrong_account_kind"
    assert ledger.deeds == {}


def test_submitting_the_same_deed_again_is_a_no_op_but_another_deed_under_its_id_is_refused():
    ledger = ledger_with_resident()
    submit(ledger)
    assert submit(ledger) == []
    submit(ledger, category="mediation")
    assert ledger.rejected[-1].reason == "deed_exists"


def test_review_of_an_unknown_deed_or_by_the_wrong_account_is_refused():
    ledger = ledger_with_resident()
    approve(ledger, deed_id="nope")
    assert ledger.rejected[-1].reason == "unknown_deed"
    submit(ledger)
    ledger.review(ReviewDeed(deed_id="d-1", account_id="resident:r-9", approved=True, points=8, reviewer_id="c"), AT)
    assert ledger.rejected[-1].reason == "wrong_account"


def test_review_needs_points_to_approve_and_a_reason_to_reject():
    with pytest.raises(ValueError):
        ReviewDeed(deed_id="d", account_id="a", approved=True, reviewer_id="c")
    with pytest.raises(ValueError):
        ReviewDeed(deed_id="d", account_id="a", approved=False, reviewer_id="c")


def test_deed_credit_over_the_cap_is_refused_and_the_deed_stays_approved():
    rules = EarningRules.from_mapping({"deeds": {"mediation": {"min": 5, "max": 10, "caps": {"day": 12}}}})
    ledger = ledger_with_resident(rules)
    submit(ledger, "d-1", "mediation")
    submit(ledger, "d-2", "mediation")
    approve(ledger, "d-1", points=10)
    events = approve(ledger, "d-2", points=5)
    assert [type(e).__name__ for e in events] == ["DeedApproved", "TransferRefused"]
    assert events[1].reason == "cap_reached"
    deed = ledger.deeds["d-2"]
    assert deed.status is DeedStatus.approved and deed.refused_reason == "cap_reached"
    assert ledger.balance("resident:r-1") == 10


def test_deed_submitted_to_another_community_is_paid_by_that_community():
    ledger = ledger_with_resident()
    submit(ledger, community_id="110105002001")
    events = approve(ledger)
    assert events[-1].debit_account == "issuer:110105002001"


def test_deed_state_round_trips_through_json():
    ledger = ledger_with_resident()
    submit(ledger)
    approve(ledger)
    deed = ledger.deeds["d-1"]
    assert Deed.model_validate(deed.model_dump(mode="json")) == deed
