"""好人榜 rankings and 道德模范 candidates."""
from datetime import datetime, timedelta, timezone

import pytest

from schemas.points import TransferPosted
from services.points.domain import EarnedPoints, earned_from, moral_model_candidates, rankings

SH = timezone(timedelta(hours=8))
UTC = timezone.utc
C1, C2 = "110105001002", "110105002001"


def e(account, amount, at, community=C1):
    return EarnedPoints(account_id=account, amount=amount, earned_at=at, community_id=community)


ROWS = [
    e("a", 30, datetime(2026, 11, 3, tzinfo=SH)),
    e("b", 20, datetime(2026, 11, 5, tzinfo=SH)),
    e("c", 20, datetime(2026, 11, 6, tzinfo=SH), community=C2),
    e("d", 10, datetime(2026, 11, 7, tzinfo=SH)),
    e("b", 25, datetime(2026, 10, 7, tzinfo=SH)),
    e("e", 50, datetime(2026, 10, 31, 16, 30, tzinfo=UTC)),  # 1 November 00:30 in Shanghai
]


def test_monthly_district_ranking_shares_ranks_on_ties():
    board = rankings(ROWS, period="2026-11")
    assert [(r.rank, r.account_id, r.points) for r in board] == [
        (1, "e", 50), (2, "a", 30), (3, "b", 20), (3, "c", 20), (5, "d", 10),
    ]
    assert not any(r.candidate for r in board)


def test_community_ranking_counts_points_where_they_were_earned():
    board = rankings(ROWS, period="2026-11", community_id=C2)
    assert [(r.account_id, r.points) for r in board] == [("c", 20)]


def test_yearly_ranking_sums_the_months_and_keeps_ties_at_the_edge_of_top():
    board = rankings(ROWS, period="2026", top=3)
    assert [(r.rank, r.account_id, r.points) for r in board] == [(1, "e", 50), (2, "b", 45), (3, "a", 30)]
    board = rankings(ROWS + [e("f", 30, datetime(2026, 1, 1, tzinfo=SH))], period="2026", top=3)
    assert [r.account_id for r in board] == ["e", "b", "a", "f"]


def test_yearly_top_earners_are_flagged_as_moral_model_candidates():
    cands = moral_model_candidates(ROWS, year="2026", top=2)
    assert [(r.account_id, r.candidate) for r in cands] == [("e", True), ("b", True)]
    board = rankings(ROWS, period="2026", candidates=1)
    assert [r.account_id for r in board if r.candidate] == ["e"]


def test_corrections_lower_earned_totals_and_non_positive_totals_are_not_listed():
    rows = [e("a", 10, datetime(2026, 11, 3, tzinfo=SH)), e("a", -10, datetime(2026, 11, 4, tzinfo=SH)),
            e("b", 5, datetime(2026, 11, 4, tzinfo=SH))]
    assert [r.account_id for r in rankings(rows, period="2026-11")] == ["b"]


def test_bad_period_is_refused():
    with pytest.raises(ValueError):
        rankings(ROWS, period="2026-Q4")
    with pytest.raises(ValueError):
        moral_model_candidates(ROWS, year="2026-11", top=3)


def posting(**kw):
    base = dict(transfer_id="t", debit_account=f"issuer:{C1}", credit_account="resident:r", amount=7,
                posted_at=datetime(2026, 11, 3, tzinfo=SH), community_id=C1)
    return TransferPosted(**{**base, **kw})


def test_only_awards_count_as_earned_never_adjustments_redemptions_or_expiry():
    assert earned_from(posting(reason="award")).amount == 7
    # an operator's adjustment never puts anyone on 好人榜 (the 2^62 points "earned" attack)
    assert earned_from(posting(reason="adjustment", account_id="resident:r")) is None
    back = posting(reason="adjustment", debit_account="resident:r", credit_account=f"issuer:{C1}", account_id="resident:r")
    assert earned_from(back) is None
    assert earned_from(posting(reason="redemption", debit_account="resident:r", credit_account="merchant:m",
                               community_id=None)) is None
    assert earned_from(posting(reason="expiry", debit_account="resident:r", credit_account=f"issuer:{C1}")) is None
