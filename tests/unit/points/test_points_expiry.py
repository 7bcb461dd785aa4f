"""Expiry: points older than the validity expire FIFO by earning date, exactly once."""
from datetime import datetime, timedelta, timezone

from schemas.points import Adjust, OpenAccount, Redeem
from services.points.domain import Earning, EarningRules, decide_expire, expiry_transfer_id
from points_reference import ReferenceLedger

SH = timezone(timedelta(hours=8))
C1, C2 = "110105001002", "110105002001"
RULES = EarningRules.from_mapping({"validity": {"years": 2}, "reports": {"*": {"points": 10}}})


def report(event_id: str, at: datetime, community=C1) -> Earning:
    return Earning(source="/grid", source_event_id=event_id, kind="report", holder_id="r-1", category="environment",
                   community_id=community, occurred_at=at)


def earned_ledger() -> ReferenceLedger:
    ledger = ReferenceLedger(RULES)
    ledger.open(OpenAccount(account_id="merchant:shop", holder_id="shop", kind="merchant"), datetime(2024, 1, 1, tzinfo=SH))
    # arrive out of order: the lot of 1 March is older than the one of 1 June
    ledger.award(report("b", datetime(2024, 6, 1, 9, tzinfo=SH), community=C2))
    ledger.award(report("a", datetime(2024, 3, 1, 9, tzinfo=SH)))
    ledger.award(report("c", datetime(2025, 1, 1, 9, tzinfo=SH)))
    return ledger


def test_nothing_expires_before_the_validity_is_over():
    ledger = earned_ledger()
    assert ledger.expire("resident:r-1", datetime(2026, 3, 1, 8, 59, tzinfo=SH)) == []


def test_points_expire_oldest_first_back_to_the_issuer_that_paid_them():
    ledger = earned_ledger()
    events = ledger.expire("resident:r-1", datetime(2026, 7, 1, tzinfo=SH))
    assert [(e.kind, e.amount, e.credit_account) for e in events] == [
        ("expiry", 10, f"issuer:{C1}"), ("expiry", 10, f"issuer:{C2}"),
    ]
    assert events[0].posted_at == datetime(2026, 3, 1, 9, tzinfo=SH)  # dated when the lot expired
    assert ledger.balance("resident:r-1") == 10
    assert ledger.balance(f"issuer:{C1}") == -10 and ledger.balance(f"issuer:{C2}") == 0
    ledger.check()


def test_expiry_happens_exactly_once():
    ledger = earned_ledger()
    now = datetime(2026, 7, 1, tzinfo=SH)
    first = ledger.expire("resident:r-1", now)
    assert ledger.expire("resident:r-1", now) == []
    assert ledger.expire("resident:r-1", now + timedelta(days=30)) == []
    assert len(first) == 2 and len({e.transfer_id for e in first}) == 2
    assert first[0].transfer_id == expiry_transfer_id("resident:r-1", first[0].lot_id)


def test_redemption_spends_the_oldest_points_first_so_only_the_rest_of_a_lot_expires():
    ledger = earned_ledger()
    ledger.redeem(Redeem(transfer_id="till-1", debit_account="resident:r-1", credit_account="merchant:shop",
                         amount=15), datetime(2025, 2, 1, tzinfo=SH))
    lots = ledger.accounts["resident:r-1"].lots
    assert [(lot.earned_at.month, lot.remaining) for lot in lots] == [(6, 5), (1, 10)]
    events = ledger.expire("resident:r-1", datetime(2026, 7, 1, tzinfo=SH))
    assert [e.amount for e in events] == [5]
    assert ledger.balance("resident:r-1") == 10
    ledger.check()


def test_expired_points_cannot_be_redeemed_even_before_the_timer_ran():
    ledger = earned_ledger()
    cmd = Redeem(transfer_id="till-1", debit_account="resident:r-1", credit_account="merchant:shop", amount=20)
    assert ledger.redeem(cmd, datetime(2026, 7, 1, tzinfo=SH)) == []
    assert ledger.rejected[-1].reason == "insufficient_balance"
    events = ledger.redeem(cmd.model_copy(update={"amount": 10}), datetime(2026, 7, 1, tzinfo=SH))
    assert [e.kind for e in events] == ["expiry", "expiry", "redemption"]
    assert ledger.balance("resident:r-1") == 0
    ledger.check()


def test_adjusted_credit_is_a_new_lot_that_expires_back_to_its_origin():
    ledger = ReferenceLedger(RULES)
    ledger.award(report("a", datetime(2024, 3, 1, tzinfo=SH)))
    ledger.adjust(Adjust(transfer_id="adj-1", debit_account=f"issuer:{C1}", credit_account="resident:r-1", amount=4,
                         operator_id="cw", reason="漏发"), datetime(2024, 5, 1, tzinfo=SH))
    events = ledger.expire("resident:r-1", datetime(2026, 5, 1, tzinfo=SH))
    assert [(e.amount, e.credit_account) for e in events] == [(10, f"issuer:{C1}"), (4, f"issuer:{C1}")]
    ledger.check()


def test_merchant_and_issuer_accounts_do_not_expire():
    ledger = earned_ledger()
    ledger.redeem(Redeem(transfer_id="till-1", debit_account="resident:r-1", credit_account="merchant:shop",
                         amount=30), datetime(2025, 2, 1, tzinfo=SH))
    far = datetime(2040, 1, 1, tzinfo=SH)
    assert decide_expire(ledger.accounts["merchant:shop"], rules=RULES, now=far) == []
    assert decide_expire(ledger.accounts[f"issuer:{C1}"], rules=RULES, now=far) == []
