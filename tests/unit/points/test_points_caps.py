"""Daily and monthly caps per account and rule, counted in Shanghai days and months."""
from datetime import datetime, timedelta, timezone

from schemas.points import AccountKind, TransferPosted, TransferRefused
from services.points.domain import Earning, EarningRules
from points_reference import ReferenceLedger

SH = timezone(timedelta(hours=8))
UTC = timezone.utc
COMMUNITY = "110105001002"


def capped_ledger(day=20, month=50) -> ReferenceLedger:
    return ReferenceLedger(EarningRules.from_mapping({
        "reports": {"*": {"points": 10, "caps": {"day": day, "month": month}}},
        "orders": {"*": {"points": 10}},
    }))


n = 0


def report(at: datetime, holder="r-1", kind="report") -> Earning:
    global n
    n += 1
    return Earning(source="/grid", source_event_id=f"ev-{n}", kind=kind, holder_id=holder, category="environment",
                   community_id=COMMUNITY, occurred_at=at)


def test_award_over_the_daily_cap_is_refused_with_cap_reached_not_cut_down():
    ledger = ReferenceLedger(EarningRules.from_mapping({"reports": {"*": {"points": 10, "caps": {"day": 25}}}}))
    day = datetime(2026, 11, 22, 9, tzinfo=SH)
    ledger.award(report(day))
    ledger.award(report(day + timedelta(hours=1)))
    events = ledger.award(report(day + timedelta(hours=2)))
    assert len(events) == 1 and isinstance(events[0], TransferRefused)
    assert events[0].reason == "cap_reached" and events[0].amount == 10 and events[0].rule == "report.default"
    assert "daily cap 25" in events[0].detail
    assert ledger.balance("resident:r-1") == 20


def test_daily_cap_starts_again_at_shanghai_midnight_not_utc_midnight():
    ledger = capped_ledger(day=20)
    # 23:30 and 23:50 Shanghai time on 22 November fill the day
    ledger.award(report(datetime(2026, 11, 22, 15, 30, tzinfo=UTC)))
    ledger.award(report(datetime(2026, 11, 22, 15, 50, tzinfo=UTC)))
    # 23:59 Shanghai: still the 22nd, refused (though in UTC it is the same day as well)
    assert isinstance(ledger.award(report(datetime(2026, 11, 22, 15, 59, tzinfo=UTC)))[-1], TransferRefused)
    # 00:00 Shanghai on the 23rd = 16:00 UTC on the 22nd: a new day
    assert isinstance(ledger.award(report(datetime(2026, 11, 22, 16, 0, tzinfo=UTC)))[-1], TransferPosted)
    assert ledger.balance("resident:r-1") == 30


def test_monthly_cap_counts_the_shanghai_month_and_resets_on_the_first():
    ledger = capped_ledger(day=20, month=50)
    for d in range(25, 30):  # five days of 10 points in November
        assert isinstance(ledger.award(report(datetime(2026, 11, d, 10, tzinfo=SH)))[-1], TransferPosted)
    refused = ledger.award(report(datetime(2026, 11, 30, 23, 59, tzinfo=SH)))[-1]
    assert isinstance(refused, TransferRefused) and "monthly cap 50" in refused.detail
    # 1 December 00:00 Shanghai (30 November 16:00 UTC) is a new month
    assert isinstance(ledger.award(report(datetime(2026, 11, 30, 16, 0, tzinfo=UTC)))[-1], TransferPosted)


def test_caps_are_per_account():
    ledger = capped_ledger(day=10)
    at = datetime(2026, 11, 22, 10, tzinfo=SH)
    assert isinstance(ledger.award(report(at, holder="r-1"))[-1], TransferPosted)
    assert isinstance(ledger.award(report(at, holder="r-2"))[-1], TransferPosted)
    assert isinstance(ledger.award(report(at, holder="r-1"))[-1], TransferRefused)


def test_caps_are_per_rule():
    ledger = ReferenceLedger(EarningRules.from_mapping({
        "reports": {"*": {"points": 10, "caps": {"day": 10}}},
        "orders": {"*": {"points": 10, "caps": {"day": 10}}},
    }))
    at = datetime(2026, 11, 22, 10, tzinfo=SH)
    assert isinstance(ledger.award(report(at))[-1], TransferPosted)
    order = Earning(source="/orders", source_event_id="o-1", kind="order", holder_id="r-1", category="repair",
                    community_id=COMMUNITY, occurred_at=at)
    assert isinstance(ledger.award(order)[-1], TransferPosted)
    assert ledger.balance("resident:r-1") == 20


def test_a_single_award_larger_than_the_cap_is_refused_and_opens_no_account():
    ledger = ReferenceLedger(EarningRules.from_mapping({"reports": {"*": {"points": 30, "caps": {"day": 20}}}}))
    events = ledger.award(report(datetime(2026, 11, 22, 10, tzinfo=SH)))
    assert [type(e) for e in events] == [TransferRefused]
    assert ledger.holder_account(AccountKind.resident, "r-1") is None


def test_refused_awards_leave_the_counters_alone():
    ledger = capped_ledger(day=20)
    at = datetime(2026, 11, 22, 10, tzinfo=SH)
    ledger.award(report(at))
    ledger.award(report(at))
    ledger.award(report(at))  # refused
    assert ledger.accounts["resident:r-1"].earned_in("report.default", at) == (20, 20)


def test_old_cap_counters_are_forgotten_so_the_state_stays_small():
    ledger = capped_ledger(day=20, month=1000)
    for d in range(0, 200, 5):
        ledger.award(report(datetime(2026, 1, 1, 10, tzinfo=SH) + timedelta(days=d)))
    usage = ledger.accounts["resident:r-1"].usage
    assert len([k for k in usage if "|day|" in k]) <= 13
    assert len([k for k in usage if "|month|" in k]) <= 4
    ledger.check()
