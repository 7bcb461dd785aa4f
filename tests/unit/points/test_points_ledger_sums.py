"""The arithmetic of the incremental ledger check: the two sides agree exactly when the stored
balances are the sums of the postings, and any single change shows."""
from __future__ import annotations

from datetime import datetime, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from services.points.domain.ledgersums import P, Sums, digest, weight

AT = datetime(2026, 11, 22, 10, 0, tzinfo=timezone.utc)
ACCOUNTS = ["issuer:110105001002", "resident:p1", "resident:p2", "merchant:m1"]


def balances_of(postings) -> dict[str, int]:
    out = dict.fromkeys(ACCOUNTS, 0)
    for _, debit, credit, amount, _, _ in postings:
        out[debit] -= amount
        out[credit] += amount
    return out


postings_st = st.lists(st.tuples(st.sampled_from(ACCOUNTS), st.sampled_from(ACCOUNTS), st.integers(1, 10**12))
                       .filter(lambda t: t[0] != t[1]), max_size=30).map(
    lambda ts: [(f"t{i}", d, c, a, "award", AT) for i, (d, c, a) in enumerate(ts)])


def test_weights_and_digests_are_the_sql_ones():
    # ('x' || substr(md5('resident:p1'), 1, 15))::bit(60)::bigint
    assert weight("resident:p1") == int("67ddeb9aaeadde3", 16) and weight("") < 2**60
    assert digest("t1", "a", "b", 5, "award", AT) == weight("t1|a|b|5|award|1795341600000000")


@settings(deadline=None, max_examples=60)
@given(postings_st)
def test_sound_ledgers_agree_whatever_the_postings(postings):
    b = balances_of(postings)
    sums = Sums.of_postings(postings).plus(Sums.of_accounts((a, b[a], b[a]) for a in ACCOUNTS))
    assert sums.problems() == [] and sums.postings == len(postings)
    # folding in any split gives the same totals
    half = len(postings) // 2
    split = Sums.of_postings(postings[:half]).plus(Sums.of_postings(postings[half:])).plus(
        Sums.of_accounts((a, b[a], b[a]) for a in ACCOUNTS))
    assert split == sums


@settings(deadline=None, max_examples=60)
@given(postings_st.filter(bool), st.integers(1, 1000), st.sampled_from(ACCOUNTS))
def test_a_balance_or_a_state_moved_without_its_posting_is_seen(postings, off, account):
    b = balances_of(postings)
    moved = Sums.of_postings(postings).plus(Sums.of_accounts(
        (a, b[a] + (off if a == account else 0), b[a]) for a in ACCOUNTS))
    assert "the stored balances are not the sums of the postings" in moved.problems()
    assert "the balances sum to" in moved.problems()[0]
    state = Sums.of_postings(postings).plus(Sums.of_accounts(
        (a, b[a], b[a] - (off if a == account else 0)) for a in ACCOUNTS))
    assert state.problems() == ["the balances of the account states are not the sums of the postings"]


def test_a_transfer_between_two_accounts_of_the_same_balance_total_is_still_seen():
    postings = [("t1", ACCOUNTS[0], ACCOUNTS[1], 10, "award", AT)]
    b = balances_of(postings)
    b[ACCOUNTS[1]] -= 3  # 3 points moved from p1 to p2 without a posting: the sum stays 0
    b[ACCOUNTS[2]] += 3
    sums = Sums.of_postings(postings).plus(Sums.of_accounts((a, b[a], balances_of(postings)[a]) for a in ACCOUNTS))
    assert sums.balance_total == 0 and sums.problems() == ["the stored balances are not the sums of the postings"]


def test_negative_deltas_fold_back_into_the_field():
    a = Sums(digests=5, moves=P - 1, balances=3)
    b = Sums(digests=-7, moves=2, balances=-3)
    assert a.plus(b) == Sums(digests=P - 2, moves=1, balances=0)
