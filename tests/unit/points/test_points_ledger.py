"""The double-entry ledger: awards, redemptions, adjustments, floors, idempotence."""
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from schemas.points import AccountKind, AccountOpened, Adjust, OpenAccount, Redeem, TransferPosted, TransferRefused
from services.kit.errors import Rejected
from services.points.domain import (
    Account, Earning, EarningRules, TransferRefusal, award_plan, award_transfer_id, decide_transfer, decide_award,
    decide_open_account, evolve_account, expiry_transfer_id, floor_of,
)
from services.points.domain.transfers import NAMESPACE
from points_reference import ReferenceLedger

SH = timezone(timedelta(hours=8))
AT = datetime(2026, 11, 22, 10, tzinfo=SH)
C1, C2 = "110105001002", "110105002001"


def order(event_id="ev-1", holder="m-7", community=C1, category="daily_care", minutes=60, at=AT, source="/orders"):
    return Earning(source=source, source_event_id=event_id, kind="order", holder_id=holder, category=category,
                   community_id=community, occurred_at=at, service_minutes=minutes)


def ledger_with_merchant(rules=None) -> ReferenceLedger:
    ledger = ReferenceLedger(rules)
    ledger.open(OpenAccount(account_id="merchant:shop", holder_id="shop", kind="merchant", community_id=C1), AT)
    return ledger


def test_passed_order_awards_the_assignee_from_the_issuer_of_the_order_community():
    ledger = ReferenceLedger()
    events = ledger.award(order(minutes=90))
    opened = [e for e in events if isinstance(e, AccountOpened)]
    assert {(e.account_id, e.kind) for e in opened} == {("resident:m-7", "resident"), (f"issuer:{C1}", "issuer")}
    posting = events[-1]
    assert isinstance(posting, TransferPosted)
    assert (posting.debit_account, posting.credit_account) == (f"issuer:{C1}", "resident:m-7")
    assert posting.amount == 2 + 90 * 5 // 60 and posting.kind == posting.reason == "award"
    assert posting.rule == "order.daily_care" and posting.source_event_id == "ev-1" and posting.account_id == "resident:m-7"
    assert ledger.balance(f"issuer:{C1}") == -posting.amount
    ledger.check()


def test_award_is_posted_once_however_often_the_event_is_delivered():
    ledger = ReferenceLedger()
    first = ledger.award(order())
    assert ledger.award(order()) == [] and ledger.award(order()) == []
    assert ledger.balance("resident:m-7") == first[-1].amount
    assert len(ledger.postings) == 1


def test_redelivery_after_a_rules_change_is_refused_as_duplicate_source_not_awarded_again():
    ledger = ReferenceLedger(EarningRules.from_mapping({"orders": {"*": {"points": 5}}}))
    ledger.award(order())
    ledger.rules = EarningRules.from_mapping({"orders": {"daily_care": {"points": 9}}})
    events = ledger.award(order())
    assert [type(e) for e in events] == [TransferRefused] and events[0].reason == "duplicate_source"
    assert ledger.balance("resident:m-7") == 5


def test_transfer_id_is_derived_from_source_and_event_id():
    assert award_transfer_id("/orders", "ev-1", "order") == award_transfer_id("/orders", "ev-1", "order")
    assert award_transfer_id("/orders", "ev-1", "order") != award_transfer_id("/orders-b", "ev-1", "order")
    assert award_transfer_id("/orders", "ev-1", "order") != award_transfer_id("/orders", "ev-2", "order")
    assert award_transfer_id("/x", "ev-1", "order") != award_transfer_id("/x", "ev-1", "report")


def test_transfer_ids_are_the_uuid5_of_their_names_as_they_always_were():
    """Ids stored in ledgers and published on the topic: the digest written directly must be
    the ``uuid.uuid5`` string, byte for byte."""
    for source, event_id in [("/orders", "ev-1"), ("/services/grid", "9b2e0c1e-7f7d-4d8e-a1a4-0c6b3c1d2e3f"),
                             ("/x", ""), ("/源", "事件-ü")]:
        for kind in ("order", "report", "deed"):
            assert award_transfer_id(source, event_id, kind) == str(
                uuid.uuid5(NAMESPACE, f"award|{source}|{event_id}|{kind}"))
    assert expiry_transfer_id("resident:r-1", "lot-9") == str(uuid.uuid5(NAMESPACE, "expiry|resident:r-1|lot-9"))
    assert award_transfer_id("/orders", "ev-1", "order") == "b34f8007-d01c-5b4e-bed6-2f067183042a"


def test_one_resident_account_earns_in_every_community_each_paid_by_its_own_issuer():
    ledger = ReferenceLedger()
    ledger.award(order("ev-1", community=C1))
    ledger.award(order("ev-2", community=C2))
    residents = [a for a in ledger.accounts.values() if a.kind is AccountKind.resident]
    assert len(residents) == 1
    assert ledger.balance(f"issuer:{C1}") < 0 and ledger.balance(f"issuer:{C2}") < 0
    ledger.check()


def test_order_category_without_a_rule_earns_nothing_and_opens_nothing():
    ledger = ReferenceLedger(EarningRules.from_mapping({"orders": {"legal_aid": {"points": 5}}}))
    assert ledger.award(order(category="cleaning")) == []
    assert ledger.accounts == {}


def test_only_issuer_accounts_may_go_below_zero():
    assert floor_of(AccountKind.issuer) is None
    assert floor_of(AccountKind.resident) == 0 and floor_of(AccountKind.merchant) == 0


def test_redeem_moves_points_from_resident_to_merchant():
    ledger = ledger_with_merchant(EarningRules.from_mapping({"orders": {"*": {"points": 20}}}))
    ledger.award(order())
    events = ledger.redeem(Redeem(transfer_id="till-1", debit_account="resident:m-7", credit_account="merchant:shop",
                                  amount=15), AT + timedelta(days=1))
    assert [e.kind for e in events] == ["redemption"]
    assert ledger.balance("resident:m-7") == 5 and ledger.balance("merchant:shop") == 15
    ledger.check()


def test_redeem_over_the_balance_is_refused_with_insufficient_balance_and_moves_nothing():
    ledger = ledger_with_merchant(EarningRules.from_mapping({"orders": {"*": {"points": 20}}}))
    ledger.award(order())
    cmd = Redeem(transfer_id="till-1", debit_account="resident:m-7", credit_account="merchant:shop", amount=21)
    with pytest.raises(TransferRefusal) as refusal:
        decide_transfer(cmd, debit=ledger.accounts["resident:m-7"], credit=ledger.accounts["merchant:shop"], at=AT)
    assert refusal.value.reason == "insufficient_balance" and refusal.value.field == "amount"
    assert refusal.value.event.reason == "insufficient_balance" and refusal.value.event.account_id == "resident:m-7"
    assert refusal.value.event.kind == "redemption"
    assert ledger.redeem(cmd, AT) == [] and ledger.balance("resident:m-7") == 20


def test_repeating_a_redeem_command_redeems_once():
    ledger = ledger_with_merchant(EarningRules.from_mapping({"orders": {"*": {"points": 20}}}))
    ledger.award(order())
    cmd = Redeem(transfer_id="till-1", debit_account="resident:m-7", credit_account="merchant:shop", amount=8)
    ledger.redeem(cmd, AT)
    assert ledger.redeem(cmd, AT) == []
    assert ledger.balance("resident:m-7") == 12


def test_reusing_a_transfer_id_for_another_redemption_is_refused():
    ledger = ledger_with_merchant(EarningRules.from_mapping({"orders": {"*": {"points": 20}}}))
    ledger.award(order())
    ledger.redeem(Redeem(transfer_id="till-1", debit_account="resident:m-7", credit_account="merchant:shop", amount=8), AT)
    ledger.redeem(Redeem(transfer_id="till-1", debit_account="resident:m-7", credit_account="merchant:shop", amount=9), AT)
    assert ledger.rejected[-1].reason == "duplicate_source"
    assert ledger.balance("resident:m-7") == 12


@pytest.mark.parametrize("debit,credit,reason", [
    ("resident:nobody", "merchant:shop", "unknown_account"),
    ("resident:m-7", "merchant:nowhere", "unknown_account"),
    ("merchant:shop", "resident:m-7", "wrong_account_kind"),
    (f"issuer:{C1}", "merchant:shop", "wrong_account_kind"),
    ("resident:m-7", f"issuer:{C1}", "wrong_account_kind"),
    ("resident:m-7", "resident:m-7", "same_account"),
])
def test_redeem_is_only_from_an_existing_resident_to_an_existing_merchant(debit, credit, reason):
    ledger = ledger_with_merchant()
    ledger.award(order())
    ledger.redeem(Redeem(transfer_id="till-1", debit_account=debit, credit_account=credit, amount=1), AT)
    assert ledger.rejected[-1].reason == reason
    assert not any(p.kind == "redemption" for p in ledger.postings.values())


def test_adjustment_is_a_new_posting_with_operator_and_reason():
    ledger = ReferenceLedger(EarningRules.from_mapping({"orders": {"*": {"points": 20}}}))
    ledger.award(order())
    award = next(iter(ledger.postings.values()))
    events = ledger.adjust(Adjust(transfer_id="adj-1", debit_account="resident:m-7", credit_account=f"issuer:{C1}",
                                  amount=5, operator_id="cw-1", reason="重复工单"), AT + timedelta(hours=1))
    (posting,) = events
    assert posting.kind == "adjustment" and posting.operator_id == "cw-1" and posting.detail == "重复工单"
    assert posting.account_id == "resident:m-7" and posting.community_id == C1
    assert ledger.postings[award.transfer_id] == award  # the award itself is never edited
    assert ledger.balance("resident:m-7") == 15
    ledger.check()


def test_adjustment_may_not_take_a_resident_below_zero_but_may_take_an_issuer():
    ledger = ledger_with_merchant(EarningRules.from_mapping({"orders": {"*": {"points": 3}}}))
    ledger.award(order())
    ledger.adjust(Adjust(transfer_id="adj-1", debit_account="resident:m-7", credit_account=f"issuer:{C1}",
                         amount=4, operator_id="cw-1", reason="x"), AT)
    assert ledger.rejected[-1].reason == "insufficient_balance"
    ledger.adjust(Adjust(transfer_id="adj-2", debit_account=f"issuer:{C1}", credit_account="merchant:shop",
                         amount=100, operator_id="cw-1", reason="结算"), AT)
    assert ledger.balance(f"issuer:{C1}") == -103
    ledger.check()


def test_evolve_refuses_a_posting_that_would_break_a_floor():
    resident = Account(account_id="resident:r", holder_id="r", kind="resident")
    bad = TransferPosted(transfer_id="t", debit_account="resident:r", credit_account="merchant:m", amount=1,
                         reason="redemption", posted_at=AT)
    with pytest.raises(Rejected):
        evolve_account(resident, bad)


def test_open_account_is_idempotent_and_one_per_holder_and_kind():
    cmd = OpenAccount(account_id="resident:r-1", holder_id="r-1", kind="resident")
    (opened,) = decide_open_account(None, cmd, at=AT)
    account = evolve_account(None, opened)
    assert decide_open_account(account, cmd, at=AT) == []
    with pytest.raises(Rejected) as e:
        # an account opened under another id before ids were derived (the contract refuses such an id now)
        legacy = OpenAccount.model_construct(account_id="other", holder_id="r-1", kind=AccountKind.resident,
                                             community_id=None)
        decide_open_account(None, legacy, at=AT, holder_account=account)
    assert e.value.reason == "holder_has_account"
    with pytest.raises(Rejected) as e:
        decide_open_account(account, OpenAccount(holder_id="r-2", kind="resident"), at=AT)
    assert e.value.reason == "account_exists"


def test_issuer_accounts_belong_to_a_community_id():
    with pytest.raises(Rejected) as e:
        decide_open_account(None, OpenAccount(account_id="issuer:x", holder_id="x", kind="issuer"), at=AT)
    assert e.value.reason == "invalid_issuer"
    (opened,) = decide_open_account(None, OpenAccount(account_id=f"issuer:{C1}", holder_id=C1, kind="issuer"), at=AT)
    assert opened.community_id == C1


def test_award_to_a_non_resident_account_is_refused():
    merchant = Account(account_id="merchant:m-7", holder_id="m-7", kind="merchant")
    plan = award_plan(EarningRules.from_mapping({"orders": {"*": {"points": 3}}}), order())
    events = decide_award(plan, resident=merchant, issuer=None)
    assert [e.reason for e in events] == ["wrong_account_kind"]


def test_adjust_needs_two_different_existing_accounts():
    ledger = ledger_with_merchant()
    with pytest.raises(TransferRefusal) as e:
        decide_transfer(Adjust(transfer_id="a", debit_account="merchant:shop", credit_account="merchant:shop", amount=1,
                             operator_id="o", reason="r"), debit=ledger.accounts["merchant:shop"],
                      credit=ledger.accounts["merchant:shop"], at=AT)
    assert e.value.reason == "same_account"
