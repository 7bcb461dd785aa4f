"""The incremental ledger check against PostgreSQL: the running totals the triggers keep agree
with the postings and accounts read again, an erasure keeps them so, tampering shows (a balance
at once, a posting changed in place in the full check), and the incremental check stays fast
over a large ledger. The full check is rate-limited."""
from __future__ import annotations

import time

import pytest

from schemas.points import AccountKind
from services.points.domain.ledgersums import Sums
from services.points.projection import queries
from tests.integration.points.senders import principal
from tests.support.db import statements_sent
from tests.integration.points.test_points_projection import COMMUNITY, award, base, opened, seed

AUDITOR = principal("auditor-1", "auditor")

pytestmark = pytest.mark.integration


async def python_sums(conn) -> Sums:
    """The totals computed in Python from the rows (the pure arithmetic, not the SQL one)."""
    postings = await conn.fetch("SELECT transfer_id, debit_account, credit_account, amount, kind, posted_at "
                                "FROM postings")
    accounts = await conn.fetch("SELECT account_id, balance, coalesce((state->>'balance')::bigint, 0) FROM accounts")
    return Sums.of_postings(tuple(r) for r in postings).plus(Sums.of_accounts(tuple(r) for r in accounts))


async def test_the_running_totals_are_the_sums_of_the_rows_before_and_after_a_fold(pool):
    async with pool.acquire() as conn:
        await base(conn)
        await seed(conn, award("t1", "resident:p1", 12), award("t2", "resident:p2", 5))
        await seed(conn, award("t3", "resident:p1", 7))
        stored, pending = await queries.stored_sums(conn)
        assert pending > 0 and stored == await python_sums(conn) and stored.postings == 3
        async with statements_sent(conn) as statements:
            check = await queries.ledger_check(conn)  # the totals and the pending deltas in one statement
        assert len(statements) == 1
        assert (check["mode"], check["consistent"], check["sum"], check["postings"], check["accounts"]) == (
            "incremental", True, 0, 3, 5)
        assert await queries.fold_deltas(conn) == pending
        assert await queries.stored_sums(conn) == (stored, 0)
        assert await queries.fold_deltas(conn) == 0
        full = await queries.ledger_check_full(conn)
        assert (full["mode"], full["consistent"], full["problems"], full["mismatched"]) == ("full", True, [], [])


async def test_an_erasure_keeps_both_checks_consistent(pool):
    async with pool.acquire() as conn:
        await base(conn)
        await seed(conn, award("t1", "resident:p1", 12))
        assert await conn.fetchval("SELECT erase_account('resident:p1', 'resident:erased-1', 'p1', 'erased-1')") == 2
        assert (await queries.ledger_check(conn))["consistent"]
        full = await queries.ledger_check_full(conn)
        assert full["consistent"] and full["accounts"] == 5, full


async def test_a_balance_moved_without_a_posting_fails_the_incremental_check(pool):
    async with pool.acquire() as conn:
        await base(conn)
        await seed(conn, award("t1", "resident:p1", 12))
        await conn.execute("UPDATE accounts SET balance = balance + 5 WHERE account_id = 'resident:p1'")
        check = await queries.ledger_check(conn)
    assert not check["consistent"] and "the stored balances are not the sums of the postings" in check["problems"]


async def test_a_posting_altered_in_place_is_caught_by_the_full_check_while_the_incremental_stays_fast(pool):
    async with pool.acquire() as conn:
        await base(conn)
        await seed(conn, opened("resident:p3", AccountKind.resident, "p3"))
        # a large ledger in one statement: the statement trigger moves each balance once
        await conn.execute(
            """INSERT INTO postings (transfer_id, debit_account, credit_account, amount, kind, posted_at, event)
               SELECT 'bulk-' || i, $1, (ARRAY['resident:p1', 'resident:p2', 'resident:p3'])[i % 3 + 1], i % 50 + 1,
                      'award', now(), '{}'
               FROM generate_series(1, 30000) i""", f"issuer:{COMMUNITY}")
        # the aggregate states follow the stored balances, as the service keeps them
        await conn.execute("UPDATE accounts SET state = jsonb_set(state, '{balance}', to_jsonb(balance))")
        await queries.fold_deltas(conn)
        assert (await queries.ledger_check_full(conn))["consistent"]
        # tampering: the triggers switched off, a posting's amount changed in place
        async with conn.transaction():
            await conn.execute("SET LOCAL session_replication_role = replica")
            await conn.execute("UPDATE postings SET amount = amount + 1 WHERE transfer_id = 'bulk-77'")
        times = []
        for _ in range(5):
            started = time.perf_counter()
            check = await queries.ledger_check(conn)
            times.append(time.perf_counter() - started)
        assert check["consistent"] and check["postings"] == 30000  # the running totals cannot see it
        assert min(times) < 0.1, times
        full = await queries.ledger_check_full(conn)
    assert not full["consistent"]
    assert any("a posting was changed" in p for p in full["problems"]), full["problems"]
    assert {m["account_id"] for m in full["mismatched"]} == {f"issuer:{COMMUNITY}", "resident:p3"}


async def test_the_full_check_runs_once_per_interval(pool):
    async with pool.acquire() as conn:
        assert await queries.claim_full_check(conn, 600) is None
        wait = await queries.claim_full_check(conn, 600)
        assert wait is not None and 590 < wait <= 600
        assert await queries.claim_full_check(conn, 0) is None  # an interval of 0: no limit


async def test_a_merchants_redemption_totals_follow_its_postings_and_its_erasure(pool):
    """A page of redemptions reads its total and points from ``redemption_totals``, which the
    triggers keep as postings are written (one at a time or many in a statement) and move to
    the pseudonym when the merchant is erased."""
    async with pool.acquire() as conn:
        await base(conn)
        await seed(conn, award("t1", "resident:p1", 500))

        async def redeem(*rows: tuple[str, int]) -> None:
            await conn.executemany(
                """INSERT INTO postings (transfer_id, debit_account, credit_account, amount, kind, posted_at, event)
                   VALUES ($1, 'resident:p1', 'merchant:m1', $2, 'redemption', now(), '{}')""", rows)

        async def totals(account: str) -> tuple[int, int, int]:
            page = await queries.redemptions(conn, account, AUDITOR, 2)
            if page is None:  # no such account (erased): nothing is kept under its id either
                assert await conn.fetchval("SELECT count(*) FROM redemption_totals WHERE account_id = $1", account) == 0
                return 0, 0, 0
            counted = await conn.fetchrow("SELECT count(*), coalesce(sum(amount), 0) FROM postings "
                                          "WHERE kind = 'redemption' AND credit_account = $1", account)
            assert (page["total"], page["points"]) == tuple(counted), page
            return page["total"], page["points"], len(page["items"])

        assert await totals("merchant:m1") == (0, 0, 0)
        await redeem(("r1", 10))
        await redeem(("r2", 20), ("r3", 5))
        await conn.execute(
            """INSERT INTO postings (transfer_id, debit_account, credit_account, amount, kind, posted_at, event)
               SELECT 'rb-' || i, 'resident:p1', 'merchant:m1', 1, 'redemption', now(), '{}'
               FROM generate_series(1, 40) i""")
        await seed(conn, award("t2", "resident:p2", 3))  # other kinds leave the totals alone
        assert await totals("merchant:m1") == (43, 75, 2)
        assert await conn.fetchval("SELECT erase_account('merchant:m1', 'merchant:erased-9', 'm1', 'erased-9')")
        assert await totals("merchant:erased-9") == (43, 75, 2)
        assert await totals("merchant:m1") == (0, 0, 0)
        assert await conn.fetchval("SELECT count(*) FROM redemption_totals") == 1


async def test_a_statement_and_a_merchants_redemptions_are_one_statement_with_the_readers_check(pool):
    """Each is one statement (no transaction needed for one snapshot): the account, what the
    reader may see of it, the count and the page. A statement's count is the account's own
    (kept with its balance, exact at any size), and pages by cursor walk every posting once."""
    from schemas.points import TransferKind, TransferPosted

    def redemption(transfer_id: str, amount: int) -> TransferPosted:
        return TransferPosted(transfer_id=transfer_id, debit_account="resident:p1", credit_account="merchant:m1",
                              amount=amount, reason=TransferKind.redemption, community_id=COMMUNITY,
                              posted_at=award("x", "resident:p1", 1).posted_at, source="/tests")

    officer = principal("officer-1", "community_officer", streets=(), communities=(COMMUNITY,))
    stranger = principal("officer-2", "community_officer", streets=(), communities=("110105001003",))
    async with pool.acquire() as conn:
        await base(conn)
        await seed(conn, *[award(f"t{i}", "resident:p1", 10) for i in range(7)])
        await seed(conn, *[redemption(f"r{i}", 3) for i in range(5)])
        async with statements_sent(conn) as sent:
            page = await queries.statement(conn, "resident:p1", AUDITOR, 3)
            redeemed = await queries.redemptions(conn, "merchant:m1", AUDITOR, 2)
        assert len(sent) == 2, sent
        assert (page["total"], page["total_exact"]) == (12, True)
        assert (redeemed["total"], redeemed["points"], len(redeemed["items"])) == (5, 15, 2)

        seen, cursor = [], None
        while True:
            page = await queries.statement(conn, "resident:p1", AUDITOR, 5, cursor=cursor)
            seen += [p["transfer_id"] for p in page["items"]]
            if (cursor := page["next_cursor"]) is None:
                break
        assert sorted(seen) == sorted([f"t{i}" for i in range(7)] + [f"r{i}" for i in range(5)])
        assert [p["change"] for p in (await queries.statement(conn, "resident:p1", AUDITOR, 1))["items"]] == [-3]
        assert (await queries.statement(conn, "resident:p1", AUDITOR, 5, offset=20))["items"] == []

        # the merchant's community is the officer's: theirs to read; another community's officer and
        # a statement of no account get None (the route's 404), and a resident's account is no merchant's
        await conn.execute("UPDATE accounts SET community_id = $1 WHERE account_id = 'merchant:m1'", COMMUNITY)
        assert (await queries.redemptions(conn, "merchant:m1", officer, 2))["total"] == 5
        assert await queries.redemptions(conn, "merchant:m1", stranger, 2) is None
        assert await queries.statement(conn, "merchant:m1", stranger, 2) is None
        assert await queries.statement(conn, "resident:nobody", AUDITOR, 2) is None
        assert await queries.redemptions(conn, "resident:p1", AUDITOR, 2) is None

        # erased: the count moves with the account to its pseudonym
        assert await conn.fetchval("SELECT erase_account('resident:p1', 'resident:erased-1', 'p1', 'erased-1')")
        assert (await queries.statement(conn, "resident:erased-1", AUDITOR, 2))["total"] == 12
        assert await queries.statement(conn, "resident:p1", AUDITOR, 2) is None
