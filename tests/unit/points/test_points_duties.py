"""Separation of duties on deeds: nobody reviews (评审) a deed they submitted (申报)."""
from datetime import datetime, timedelta, timezone

import pytest

from schemas.points import AccountKind, OpenAccount, ReviewDeed, SubmitDeed
from services.kit.errors import Rejected
from services.points import domain
from services.points.domain import Deed, DeedStatus, decide_review_deed
from points_reference import ReferenceLedger, default_rules

SH = timezone(timedelta(hours=8))
AT = datetime(2026, 11, 22, 10, tzinfo=SH)
C1 = "110105001002"


def ledger_with(account_id: str, holder_id: str) -> ReferenceLedger:
    ledger = ReferenceLedger()
    # model_construct: an id opened before account ids were derived (the contract refuses one now)
    ledger.open(OpenAccount.model_construct(account_id=account_id, holder_id=holder_id, kind=AccountKind.resident,
                                            community_id=C1), AT)
    ledger.submit(SubmitDeed(deed_id="d-1", account_id=account_id, category="lost_property"), AT)
    assert ledger.deeds["d-1"].status is DeedStatus.submitted
    return ledger


def review(account_id: str, reviewer_id: str, approved: bool = True) -> ReviewDeed:
    if approved:
        return ReviewDeed(deed_id="d-1", account_id=account_id, approved=True, points=8, reviewer_id=reviewer_id)
    return ReviewDeed(deed_id="d-1", account_id=account_id, approved=False, reason="无法核实", reviewer_id=reviewer_id)


@pytest.mark.parametrize("approved", [True, False])
def test_the_submitter_cannot_review_their_own_deed(approved):
    ledger = ledger_with("resident:r-1", "r-1")
    assert ledger.review(review("resident:r-1", "r-1", approved), AT) == []
    refusal = ledger.rejected[-1]
    assert isinstance(refusal, domain.errors.SelfReview)
    assert (refusal.reason, refusal.field) == ("self_review", "reviewer_id")
    assert ledger.deeds["d-1"].status is DeedStatus.submitted
    assert ledger.postings == {}


def test_the_holder_is_known_from_the_account_whatever_its_id():
    ledger = ledger_with("acct-7", "r-7")
    ledger.review(review("acct-7", "r-7"), AT)
    assert ledger.rejected[-1].reason == "self_review"


def test_the_holder_is_read_from_the_account_id_when_the_account_is_not_at_hand():
    deed = Deed(deed_id="d-1", account_id="resident:r-1", category="lost_property", community_id=C1)
    with pytest.raises(Rejected) as e:
        decide_review_deed(deed, review("resident:r-1", "r-1", approved=False), rules=default_rules(),
                           resident=None, issuer=None, at=AT)
    assert e.value.reason == "self_review"


def test_a_community_worker_reviews_the_deed():
    ledger = ledger_with("resident:r-1", "r-1")
    ledger.review(review("resident:r-1", "cw-1"), AT)
    assert ledger.rejected == []
    assert ledger.deeds["d-1"].status is DeedStatus.credited and ledger.balance("resident:r-1") == 8
