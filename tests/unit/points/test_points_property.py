"""Property: any sequence of commands and earnings — with redeliveries, reused ids and
reordering of independent accounts — keeps the ledger balanced (sum zero), no resident or
merchant below zero, every source awarded at most once, and independent accounts'
results independent of how their commands interleave."""
from collections import Counter
from datetime import datetime, timedelta, timezone

from hypothesis import HealthCheck, given, settings, strategies as st

from schemas.points import Adjust, OpenAccount, Redeem, ReviewDeed, SubmitDeed
from services.points.domain import Earning, EarningRules
from points_reference import ReferenceLedger

SH = timezone(timedelta(hours=8))
T0 = datetime(2024, 1, 1, tzinfo=SH)
C1, C2 = "110105001002", "110105002001"
RULES = EarningRules.from_mapping({
    "validity": {"years": 2},
    "orders": {"*": {"points": 2, "per_hour": 6, "max": 25, "caps": {"day": 40, "month": 120}},
               "legal_aid": {"points": 10, "caps": {"day": 10}}},
    "reports": {"*": {"points": 3, "caps": {"day": 6, "month": 30}}, "hazard": {"points": 8}},
    "deeds": {"mediation": {"min": 5, "max": 10, "caps": {"day": 15}}, "disaster_relief": {"min": 20, "max": 20}},
})

hours = st.integers(min_value=0, max_value=4 * 365 * 24)
communities = st.sampled_from([C1, C2])
amounts = st.integers(min_value=1, max_value=60)

ops = st.one_of(
    st.tuples(st.just("award"), st.sampled_from(["order", "report"]), communities,
              st.sampled_from(["daily_care", "legal_aid", "hazard.fire", "environment", "cleaning"]),
              st.integers(0, 240), hours, st.integers(0, 5)),
    st.tuples(st.just("redeem"), st.integers(0, 5), amounts, hours),
    st.tuples(st.just("adjust"), st.integers(0, 5),
              st.sampled_from(["to_resident", "from_resident", "to_merchant", "merchant_to_issuer"]),
              communities, amounts, hours),
    st.tuples(st.just("expire"), hours),
    st.tuples(st.just("deed"), st.integers(0, 3), st.sampled_from(["mediation", "disaster_relief", "knitting"]),
              communities, st.booleans(), st.integers(1, 25), hours),
    st.tuples(st.just("open"),),
)


def new_ledger() -> ReferenceLedger:
    ledger = ReferenceLedger(RULES)
    for holder, kind in ((C1, "issuer"), (C2, "issuer"), ("shop-a", "merchant"), ("shop-b", "merchant")):
        ledger.open(OpenAccount(account_id=f"{kind}:{holder}", holder_id=holder, kind=kind), T0)
    return ledger


def run(ledger: ReferenceLedger, group: str, op: tuple) -> None:
    """Apply one operation of ``group`` (its resident ``resident:<group>``, its merchant
    ``merchant:shop-<group>``); ids are scoped to the group so groups are independent."""
    resident, merchant = f"resident:{group}", f"merchant:shop-{group}"
    kind = op[0]
    if kind == "award":
        _, source_kind, community, category, minutes, h, n = op
        ledger.award(Earning(
            source=f"/{source_kind}s", source_event_id=f"{group}-ev-{n}", kind=source_kind, holder_id=group,
            category=category, community_id=community, occurred_at=T0 + timedelta(hours=h), service_minutes=minutes))
    elif kind == "redeem":
        _, n, amount, h = op
        ledger.redeem(Redeem(transfer_id=f"{group}-till-{n}", debit_account=resident, credit_account=merchant,
                             amount=amount), T0 + timedelta(hours=h))
    elif kind == "adjust":
        _, n, direction, community, amount, h = op
        issuer = f"issuer:{community}"
        debit, credit = {
            "to_resident": (issuer, resident), "from_resident": (resident, issuer),
            "to_merchant": (resident, merchant), "merchant_to_issuer": (merchant, issuer),
        }[direction]
        ledger.adjust(Adjust(transfer_id=f"{group}-adj-{n}", debit_account=debit, credit_account=credit, amount=amount,
                             operator_id="cw-1", reason="correction"), T0 + timedelta(hours=h))
    elif kind == "expire":
        ledger.expire(resident, T0 + timedelta(hours=op[1]))
    elif kind == "deed":
        _, n, category, community, approved, points, h = op
        deed_id = f"{group}-deed-{n}"
        at = T0 + timedelta(hours=h)
        ledger.submit(SubmitDeed(deed_id=deed_id, account_id=resident, category=category, community_id=community), at)
        ledger.review(ReviewDeed(deed_id=deed_id, account_id=resident, approved=approved,
                                 points=points if approved else None, reviewer_id="cw-2",
                                 reason=None if approved else "not verified"), at)
    elif kind == "open":
        ledger.open(OpenAccount(account_id=resident, holder_id=group, kind="resident"), T0)


def check_awarded_once(ledger: ReferenceLedger) -> None:
    sources = Counter((p.source, p.source_event_id) for p in ledger.postings.values() if p.kind == "award")
    assert all(n == 1 for n in sources.values())


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    steps=st.lists(st.tuples(st.sampled_from("ab"), ops), max_size=40),
    repeats=st.lists(st.tuples(st.integers(0, 39), st.integers(0, 80)), max_size=15),
)
def test_any_sequence_with_redeliveries_keeps_the_ledger_balanced_and_above_its_floors(steps, repeats):
    sequence = list(steps)
    for which, where in repeats:  # redeliver some steps again, later or earlier
        if steps:
            sequence.insert(where % (len(sequence) + 1), steps[which % len(steps)])
    ledger = new_ledger()
    for group, op in sequence:
        run(ledger, group, op)
        ledger.check()
    check_awarded_once(ledger)
    # replaying everything again can only redeliver: no source is awarded twice
    for group, op in sequence:
        run(ledger, group, op)
    ledger.check()
    check_awarded_once(ledger)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seq_a=st.lists(ops, max_size=25),
    seq_b=st.lists(ops, max_size=25),
    picks=st.lists(st.booleans(), min_size=50, max_size=50),
)
def test_interleaving_commands_of_independent_accounts_gives_the_same_ledger(seq_a, seq_b, picks):
    one_after_other = new_ledger()
    for op in seq_a:
        run(one_after_other, "a", op)
    for op in seq_b:
        run(one_after_other, "b", op)

    interleaved = new_ledger()
    a, b = list(seq_a), list(seq_b)
    for pick in picks:
        if pick and a:
            run(interleaved, "a", a.pop(0))
        elif b:
            run(interleaved, "b", b.pop(0))
        interleaved.check()
    for op in a:
        run(interleaved, "a", op)
    for op in b:
        run(interleaved, "b", op)

    one_after_other.check()
    interleaved.check()
    assert {k: v.balance for k, v in interleaved.accounts.items()} == {
        k: v.balance for k, v in one_after_other.accounts.items()}
    for resident in ("resident:a", "resident:b"):
        if resident in one_after_other.accounts:
            assert interleaved.accounts[resident].lots == one_after_other.accounts[resident].lots
    assert set(interleaved.postings) == set(one_after_other.postings)
