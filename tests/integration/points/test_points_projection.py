"""The points ledger in real PostgreSQL: append-only postings, balances kept by the postings,
the balance floor, the ledger check and the 好人榜 query."""
from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import asyncpg
import pytest

from schemas.grid import CaseRegistered, CaseReported
from schemas.points import AccountKind, AccountOpened, TransferKind, TransferPosted
from services.kit.db import create_pool
from services.kit.migrations import KIT_MIGRATIONS, migrate
from services.kit.uow import UnitOfWork
from services.points.projection import MIGRATIONS
from services.points.projection import ledger, queries, sources

pytestmark = pytest.mark.integration

AT = datetime(2026, 11, 22, 10, 0, tzinfo=timezone.utc)
COMMUNITY = "110105001002"
OTHER = "110105001003"


def opened(account_id: str, kind: AccountKind, holder: str, community: str | None = None) -> AccountOpened:
    return AccountOpened(account_id=account_id, holder_id=holder, kind=kind, community_id=community, opened_at=AT)


def award(transfer_id: str, resident: str, amount: int, *, at: datetime = AT, community: str = COMMUNITY) -> TransferPosted:
    return TransferPosted(transfer_id=transfer_id, debit_account=f"issuer:{community}", credit_account=resident,
                          amount=amount, reason=TransferKind.award, rule="order.default", category="cleaning",
                          community_id=community, posted_at=at, source="/tests", source_event_id=transfer_id)


async def seed(conn, *events) -> dict:
    async with conn.transaction():
        accounts = await ledger.load_accounts(conn, [a for e in events for a in (
            [e.account_id] if isinstance(e, AccountOpened) else [e.debit_account, e.credit_account])])
        return await ledger.apply(conn, accounts, list(events))


async def base(conn) -> None:
    await seed(conn, opened(f"issuer:{COMMUNITY}", AccountKind.issuer, COMMUNITY, COMMUNITY),
               opened(f"issuer:{OTHER}", AccountKind.issuer, OTHER, OTHER),
               opened("resident:p1", AccountKind.resident, "p1"), opened("resident:p2", AccountKind.resident, "p2"),
               opened("merchant:m1", AccountKind.merchant, "m1", COMMUNITY))


async def test_a_posting_moves_both_balances_in_the_same_transaction_and_the_sum_stays_zero(pool):
    async with pool.acquire() as conn:
        await base(conn)
        after = await seed(conn, award("t1", "resident:p1", 12))
        assert after["resident:p1"].balance == 12
        balances = {r["account_id"]: r["balance"] for r in await conn.fetch("SELECT account_id, balance FROM accounts")}
        assert balances["resident:p1"] == 12 and balances[f"issuer:{COMMUNITY}"] == -12
        check = await queries.ledger_check(conn)
        assert check["sum"] == 0 and check["postings"] == 1 and check["accounts"] == 5 and check["consistent"]


async def test_postings_cannot_be_updated_deleted_or_truncated(pool):
    async with pool.acquire() as conn:
        await base(conn)
        await seed(conn, award("t1", "resident:p1", 12))
        with pytest.raises(asyncpg.IntegrityConstraintViolationError, match="append-only"):
            await conn.execute("UPDATE postings SET amount = 1000 WHERE transfer_id = 't1'")
        with pytest.raises(asyncpg.IntegrityConstraintViolationError, match="append-only"):
            await conn.execute("DELETE FROM postings WHERE transfer_id = 't1'")
        with pytest.raises(asyncpg.IntegrityConstraintViolationError, match="append-only"):
            await conn.execute("TRUNCATE postings CASCADE")
        assert await conn.fetchval("SELECT amount FROM postings WHERE transfer_id = 't1'") == 12


async def test_a_resident_or_merchant_balance_cannot_go_below_zero_in_the_database(pool):
    async with pool.acquire() as conn:
        await base(conn)
        await seed(conn, award("t1", "resident:p1", 5))
        for debit, credit in (("resident:p1", "merchant:m1"), ("merchant:m1", "resident:p2")):
            with pytest.raises(asyncpg.CheckViolationError, match="accounts_balance_floor"):
                await conn.execute(
                    """INSERT INTO postings (transfer_id, debit_account, credit_account, amount, kind, posted_at, event)
                       VALUES ($1, $2, $3, 6, 'redemption', now(), '{}'::jsonb)""", f"x-{debit}", debit, credit)
        with pytest.raises(asyncpg.CheckViolationError):
            await conn.execute("UPDATE accounts SET balance = -1 WHERE account_id = 'resident:p2'")
        # an issuer may go below zero: it is what the community has issued
        await seed(conn, award("t2", "resident:p2", 30, community=OTHER))
        assert await conn.fetchval("SELECT balance FROM accounts WHERE account_id = $1", f"issuer:{OTHER}") == -30


async def test_a_posting_twice_under_one_transfer_id_is_refused_by_the_database(pool):
    async with pool.acquire() as conn:
        await base(conn)
        await seed(conn, award("t1", "resident:p1", 5))
        with pytest.raises(asyncpg.UniqueViolationError):
            await seed(conn, award("t1", "resident:p1", 5))
        assert await conn.fetchval("SELECT balance FROM accounts WHERE account_id = 'resident:p1'") == 5


async def test_the_ledger_check_names_an_account_whose_balance_differs_from_its_postings(pool):
    async with pool.acquire() as conn:
        await base(conn)
        await seed(conn, award("t1", "resident:p1", 5))
        await conn.execute("UPDATE accounts SET balance = 7 WHERE account_id = 'resident:p1'")
        check = await queries.ledger_check(conn)
        assert check["sum"] == 2 and not check["consistent"] and check["mismatched"] == []  # it names no account
        full = await queries.ledger_check_full(conn)
        assert full["sum"] == 2 and not full["consistent"]
        assert full["mismatched"] == [{"account_id": "resident:p1", "balance": 7, "derived": 5}]


async def test_rankings_share_ranks_on_ties_filter_by_community_and_flag_yearly_candidates(pool):
    async with pool.acquire() as conn:
        await base(conn)
        await seed(conn, opened("resident:p3", AccountKind.resident, "p3"))
        await seed(conn, award("a1", "resident:p1", 10), award("a2", "resident:p2", 10),
                   award("a3", "resident:p3", 4, community=OTHER),
                   award("a4", "resident:p3", 20, at=AT - timedelta(days=60)))
        month = await queries.rankings(conn, period="2026-11", community_id=None, candidates=1, limit=10, offset=0)
        assert [(e["rank"], e["account_id"], e["points"], e["candidate"]) for e in month["items"]] == [
            (1, "resident:p1", 10, False), (1, "resident:p2", 10, False), (3, "resident:p3", 4, False)]
        community = await queries.rankings(conn, period="2026-11", community_id=OTHER, candidates=1, limit=10, offset=0)
        assert [e["account_id"] for e in community["items"]] == ["resident:p3"]
        year = await queries.rankings(conn, period="2026", community_id=None, candidates=1, limit=10, offset=0)
        assert [(e["account_id"], e["points"], e["candidate"]) for e in year["items"]] == [
            ("resident:p3", 24, True), ("resident:p1", 10, False), ("resident:p2", 10, False)]


async def kept_totals_agree(conn) -> None:
    """``earned_totals`` and ``earned_ranked`` are what summing the earnings gives, with no row at 0."""
    summed = {(r["period"], r["scope"], r["account_id"]): r["points"] for r in await conn.fetch(
        """SELECT period, scope, account_id, sum(amount) AS points
           FROM earnings, LATERAL (VALUES (month, ''), (month, community_id), (year, ''), (year, community_id))
                AS k(period, scope)
           WHERE scope IS NOT NULL GROUP BY 1, 2, 3 HAVING sum(amount) <> 0""")}
    kept = {(r["period"], r["scope"], r["account_id"]): r["points"] for r in await conn.fetch("SELECT * FROM earned_totals")}
    assert kept == summed
    counted: dict[tuple[str, str], int] = {}
    for (period, scope, _), points in summed.items():
        if points > 0:
            counted[(period, scope)] = counted.get((period, scope), 0) + 1
    assert {(r["period"], r["scope"]): r["accounts"] for r in await conn.fetch("SELECT * FROM earned_ranked")} == counted


async def test_rankings_read_from_kept_totals_page_by_cursor_and_offset_as_the_pure_ranking_orders_them(pool):
    """Awards in several batches over months, communities and tied amounts: every page of every
    ranking, by cursor and by offset, equals :func:`rankings` over the same earnings; the kept
    totals follow earnings moved to another account (as an erasure does) and deleted."""
    import random

    from services.points.domain import EarnedPoints, rankings

    rnd = random.Random(7)
    residents = [f"resident:q{i:02d}" for i in range(23)]
    async with pool.acquire() as conn:
        await base(conn)
        await seed(conn, *(opened(r, AccountKind.resident, r.split(":")[1]) for r in residents))
        n = 0
        for _ in range(6):
            batch = []
            for _ in range(rnd.randint(5, 25)):
                n += 1
                batch.append(award(f"k{n}", rnd.choice(residents), rnd.choice((5, 10, 10, 20)),
                                   at=AT - timedelta(days=rnd.choice((0, 0, 31, 400))),
                                   community=rnd.choice((COMMUNITY, OTHER))))
            await seed(conn, *batch)
        await kept_totals_agree(conn)

        async def pages(period: str, community: str | None, *, by_offset: bool) -> tuple[list, int]:
            got, cursor, offset = [], None, 0
            while True:
                page = await queries.rankings(conn, period=period, community_id=community, candidates=3, limit=4,
                                              offset=offset if by_offset else 0, cursor=None if by_offset else cursor)
                got += [(e["rank"], e["account_id"], e["points"], e["candidate"]) for e in page["items"]]
                if page["next_cursor"] is None:
                    return got, page["total"]
                cursor, offset = page["next_cursor"], offset + 4

        async def agree() -> None:
            earned = [EarnedPoints(account_id=r["account_id"], amount=r["amount"], earned_at=r["earned_at"],
                                   community_id=r["community_id"]) for r in await conn.fetch("SELECT * FROM earnings")]
            for period in ("2026-11", "2026-10", "2026", "2025"):
                for community in (None, COMMUNITY, OTHER):
                    want = [(e.rank, e.account_id, e.points, e.candidate) for e in
                            rankings(earned, period=period, community_id=community, candidates=3)]
                    for by_offset in (False, True):
                        assert await pages(period, community, by_offset=by_offset) == (want, len(want)), (
                            period, community, by_offset)
        await agree()
        assert len((await pages("2026-11", None, by_offset=False))[0]) > 8  # several pages, ties among them

        # an erasure moves an account's earnings to another id: its totals move with them
        await conn.execute("UPDATE earnings SET account_id = $1 WHERE account_id = $2", residents[1], residents[0])
        await conn.execute("DELETE FROM earnings WHERE account_id = $1", residents[2])
        await kept_totals_agree(conn)
        await agree()


async def test_two_transactions_earning_for_one_account_at_once_count_it_once_in_the_ranking(pool):
    """The ranking's size moves by what each total was just before the transaction's own move,
    as the upsert found it after waiting for the other transaction, not as its snapshot had it."""
    async with pool.acquire() as conn:
        await base(conn)
        await seed(conn, award("c1", "resident:p1", 5), award("c2", "resident:p1", 7))
        await conn.execute("DELETE FROM earnings")
        assert await conn.fetchval("SELECT count(*) FROM earned_ranked") == 0
        rows = {r["transfer_id"]: r for r in await conn.fetch("SELECT * FROM postings")}
    insert = """INSERT INTO earnings (transfer_id, account_id, amount, community_id, earned_at, month, year)
                VALUES ($1, 'resident:p1', $2, $3, $4, '2026-11', '2026')"""
    async with pool.acquire() as a, pool.acquire() as b:
        ta, tb = a.transaction(), b.transaction()
        await ta.start()
        await tb.start()
        await a.execute(insert, "c1", 5, COMMUNITY, rows["c1"]["posted_at"])
        waiting = asyncio.ensure_future(b.execute(insert, "c2", 7, COMMUNITY, rows["c2"]["posted_at"]))
        await asyncio.sleep(0.3)
        assert not waiting.done()  # b waits on a's totals
        await ta.commit()
        await waiting
        await tb.commit()
    async with pool.acquire() as conn:
        assert await conn.fetchval(
            "SELECT accounts FROM earned_ranked WHERE period = '2026-11' AND scope = ''") == 1
        await kept_totals_agree(conn)


async def test_apply_refuses_to_store_a_state_that_disagrees_with_the_postings(pool):
    async with pool.acquire() as conn:
        await base(conn)
        accounts = await ledger.load_accounts(conn, ["resident:p1", f"issuer:{COMMUNITY}"], for_update=False)
        await conn.execute("""INSERT INTO postings (transfer_id, debit_account, credit_account, amount, kind, posted_at, event)
                              VALUES ('sneaky', $1, 'resident:p1', 3, 'award', now(), '{}'::jsonb)""", f"issuer:{COMMUNITY}")
        with pytest.raises(ledger.LedgerMismatch):
            async with conn.transaction():
                await ledger.apply(conn, accounts, [award("t9", "resident:p1", 5)])


async def test_a_registration_kept_before_migration_002_is_read_back_as_its_contract_model(database_url, tmp_path):
    """Rows kept in the earlier shape ({"source", "id", "time", "data"}) move to the typed one."""
    first = tmp_path / "migrations"
    first.mkdir()
    (first / "001_ledger.sql").write_text((MIGRATIONS / "001_ledger.sql").read_text(encoding="utf-8"), encoding="utf-8")
    p = await create_pool(database_url, "points", service="points", max_size=1)
    try:
        async with p.acquire() as conn:
            await migrate(conn, "points", [("kit", KIT_MIGRATIONS), ("points", first)])
            data = {"case_id": "c-1", "due_at": "2026-11-22T12:00:00+00:00", "department": "城市管理办公室",
                    "reporter": {"kind": "resident", "id": "r-1"}}
            await conn.execute(
                "INSERT INTO grid_reports (case_id, outcome, registered) VALUES ('c-1', 'registered', $1::jsonb)",
                {"source": "/services/grid", "id": "reg-1", "time": "2026-11-22T10:00:00+00:00", "data": data})
            await conn.execute("INSERT INTO grid_reports (case_id) VALUES ('c-2')")
            await migrate(conn, "points", [("kit", KIT_MIGRATIONS), ("points", MIGRATIONS)])
            async with conn.transaction():
                reports = sources.Reports(UnitOfWork(conn, "points"))
                case = await reports.get("c-1")
                empty = await reports.get("c-2")
    finally:
        await p.close()
    assert case.outcome == "registered" and case.reported is None and not case.awarded
    assert case.registration == sources.Registration(CaseRegistered.model_validate(data), "/services/grid", "reg-1",
                                                     datetime(2026, 11, 22, 10, 0, tzinfo=timezone.utc))
    assert empty.registration is None and empty.outcome is None


async def test_migration_009_sums_the_earnings_kept_before_it_as_its_triggers_keep_the_later_ones(
        database_url, tmp_path):
    """A ledger that earned before the kept totals existed: the migration sums its earnings once,
    and the triggers go on from there; both tables agree with summing the earnings."""
    before = tmp_path / "migrations"
    before.mkdir()
    for f in sorted(MIGRATIONS.glob("00[1-8]_*.sql")):
        (before / f.name).write_text(f.read_text(encoding="utf-8"), encoding="utf-8")
    p = await create_pool(database_url, "points", service="points", max_size=1)
    try:
        async with p.acquire() as conn:
            await migrate(conn, "points", [("kit", KIT_MIGRATIONS), ("points", before)])
            await base(conn)
            await seed(conn, award("m1", "resident:p1", 10), award("m2", "resident:p2", 10, community=OTHER),
                       award("m3", "resident:p1", 5, at=AT - timedelta(days=40)))
            assert not await conn.fetchval("SELECT to_regclass('earned_totals') IS NOT NULL")
            await migrate(conn, "points", [("kit", KIT_MIGRATIONS), ("points", MIGRATIONS)])
            assert await conn.fetchval("SELECT count(*) FROM earned_totals") == 10
            await kept_totals_agree(conn)
            await seed(conn, award("m4", "resident:p2", 1))
            await kept_totals_agree(conn)
            year = await queries.rankings(conn, period="2026", community_id=None, candidates=1, limit=10)
    finally:
        await p.close()
    assert [(e["rank"], e["account_id"], e["points"]) for e in year["items"]] == [
        (1, "resident:p1", 15), (2, "resident:p2", 11)]


async def balances(conn) -> dict[str, int]:
    return {r["account_id"]: r["balance"] for r in await conn.fetch("SELECT account_id, balance FROM accounts")}


async def test_a_units_ledger_writes_once_at_flush_and_an_undone_message_takes_its_changes_with_it(pool):
    """The unit of work's ledger: states locked once and kept in memory, a message undone by its
    savepoint leaves nothing (in memory or written), a flush undone by a savepoint leaves its rows
    to write again, and two awards to one account in a batch move its row once."""
    async with pool.acquire() as conn:
        await base(conn)
        async with conn.transaction():
            uow = UnitOfWork(conn, "points")
            book = ledger.Ledger.of(uow)
            locked = await book.lock(ids=["resident:p1", f"issuer:{COMMUNITY}"])
            book.apply(locked.by_id, [award("t1", "resident:p1", 12)])
            assert await conn.fetchval("SELECT count(*) FROM postings") == 0  # nothing written yet
            assert (await book.posting("t1")).amount == 12  # but the batch sees it
            with pytest.raises(RuntimeError):
                async with uow.savepoint():
                    again = await book.lock(ids=["resident:p1", f"issuer:{COMMUNITY}", "resident:p2"])
                    assert again.get("resident:p1").balance == 12  # the state in memory, not the row
                    book.apply(again.by_id, [award("t2", "resident:p1", 5), award("t3", "resident:p2", 7)])
                    raise RuntimeError("the handler failed")
            assert await book.posting("t2") is None
            locked = await book.lock(ids=["resident:p1", f"issuer:{COMMUNITY}"])
            assert locked.get("resident:p1").balance == 12
            book.apply(locked.by_id, [award("t4", "resident:p1", 3)])
            with pytest.raises(RuntimeError):
                async with uow.savepoint():
                    await uow.flush()  # the isolated path: a message's flush inside its savepoint
                    assert await conn.fetchval("SELECT count(*) FROM postings") == 2
                    raise RuntimeError("its outbox write failed")
            assert await conn.fetchval("SELECT count(*) FROM postings") == 0
            deltas = await conn.fetchval("SELECT count(*) FROM ledger_deltas")
            await uow.flush()
        assert [r[0] for r in await conn.fetch("SELECT transfer_id FROM postings ORDER BY seq")] == ["t1", "t4"]
        assert (await balances(conn))["resident:p1"] == 15
        # one statement for both postings and one for the states: three rows of deltas (the
        # postings, the balances they moved, the states), where a posting at a time wrote six
        assert await conn.fetchval("SELECT count(*) FROM ledger_deltas") - deltas == 3
        assert (await queries.ledger_check(conn))["consistent"]


async def test_an_account_opened_in_a_batch_is_known_to_its_later_messages(pool):
    async with pool.acquire() as conn:
        await base(conn)
        async with conn.transaction():
            uow = UnitOfWork(conn, "points")
            book = ledger.Ledger.of(uow)
            holder = (AccountKind.resident, "p9")
            keys = ledger.opening_keys(*holder)
            locked = await book.lock(ids=["resident:p9"], holders=[holder], keys=keys)
            assert locked.held(*holder) is None and locked.get("resident:p9") is None
            book.apply({}, [opened("resident:p9", AccountKind.resident, "p9")])
            locked = await book.lock(ids=["resident:p9", f"issuer:{COMMUNITY}"], holders=[holder])
            assert locked.held(*holder).account_id == "resident:p9"
            book.apply(locked.by_id, [award("t1", "resident:p9", 4)])
            await uow.flush()
        assert (await balances(conn))["resident:p9"] == 4


async def test_the_cases_an_award_waits_on_are_read_once_and_written_at_flush(pool):
    async with pool.acquire() as conn:
        await base(conn)
        async with conn.transaction():
            uow = UnitOfWork(conn, "points")
            reports = sources.Reports.of(uow)
            await reports.load(["c-1", "c-2"])
            assert (await reports.get("c-1")).outcome is None
            reports.save("c-1", outcome="dismissed")
            with pytest.raises(RuntimeError):
                async with uow.savepoint():
                    reports.save("c-2", outcome="dismissed", awarded=True)
                    raise RuntimeError("undone")
            assert (await reports.get("c-2")).outcome is None and not (await reports.get("c-2")).awarded
            reported = CaseReported.model_validate({
                "case_id": "c-2", "grid_id": "110105001002003", "category": "environment", "description": "楼道堆物",
                "location": {"lat": 39.92, "lon": 116.44, "address": "朝阳区"},
                "reporter": {"kind": "resident", "id": "p2"}})
            reports.save("c-2", reported=reported)
            kept = (await reports.get("c-2")).reported
            await uow.flush()
        rows = {r["case_id"]: r for r in await conn.fetch("SELECT * FROM grid_reports")}
        assert rows["c-1"]["outcome"] == "dismissed" and rows["c-2"]["outcome"] is None
        # what a later message read in memory is what is stored: the report without its words
        assert "description" not in rows["c-2"]["reported"] and kept.reporter.id == "p2"
        async with conn.transaction():
            assert (await sources.Reports(UnitOfWork(conn, "points")).get("c-2")).reported == kept


async def test_the_accounts_gauge_reads_counts_kept_through_openings_postings_erasures_and_deletes(pool):
    """``account_counts`` (what the accounts gauge reads) is kept by triggers: after accounts
    opened in one batch and another, postings moving their balances, an erasure (the account
    re-keyed to its pseudonym), an account moved to another community and accounts deleted, the
    counts equal counting the accounts, and the gauge's figures counting them by kind."""
    async def agree(conn) -> None:
        counted = await conn.fetch("SELECT kind, coalesce(community_id, '') AS community_id, count(*) AS n "
                                   "FROM accounts GROUP BY 1, 2")
        kept = await conn.fetch("SELECT kind, community_id, n FROM account_counts")
        assert {tuple(r.values()) for r in kept} == {tuple(r.values()) for r in counted}
        by_kind = await conn.fetch("SELECT kind, count(*) AS n FROM accounts GROUP BY kind")
        assert await queries.accounts_by_kind(conn) == {r["kind"]: r["n"] for r in by_kind}

    async with pool.acquire() as conn:
        await base(conn)
        await agree(conn)
        await seed(conn, opened("resident:p3", AccountKind.resident, "p3", OTHER), award("t1", "resident:p1", 5),
                   award("t2", "resident:p3", 7, community=OTHER))
        await agree(conn)
        assert await conn.fetchval("SELECT erase_account('resident:p1', 'resident:erased-1', 'p1', 'erased-1')")
        await agree(conn)
        await conn.execute("UPDATE accounts SET community_id = $1 WHERE account_id = 'merchant:m1'", OTHER)
        await agree(conn)
        await conn.execute("DELETE FROM accounts WHERE account_id = 'resident:p2'")
        await agree(conn)
        assert await conn.fetchval("SELECT count(*) FROM account_counts WHERE n = 0") == 0


async def test_a_units_orders_are_read_once_written_at_flush_and_an_undone_message_takes_its_facts_back(pool):
    """An order's facts kept as the grid's cases are (``sources.Orders``): a batch's orders read in
    one query, a placement and a completion merged in memory, written in one statement when the
    unit of work flushes; a message undone by its savepoint takes its facts back, and a fact not
    given leaves the one known (the row's, or an earlier message's)."""
    async with pool.acquire() as conn:
        await conn.execute("INSERT INTO order_facts (order_id, category, community_id) VALUES ('o-1', 'repair', $1)",
                           COMMUNITY)
        async with conn.transaction():
            uow = UnitOfWork(conn, "points")
            orders = sources.Orders.of(uow)
            await orders.load(["o-1", "o-2"])
            await orders.remember("o-1", service_minutes=90)
            await orders.remember("o-2", category="daily_care", community_id=COMMUNITY)
            assert await conn.fetchval("SELECT service_minutes FROM order_facts WHERE order_id = 'o-1'") is None
            with pytest.raises(RuntimeError):
                async with uow.savepoint():
                    await orders.remember("o-2", service_minutes=30)
                    await orders.remember("o-3", category="legal_aid")
                    raise RuntimeError("the handler failed")
            assert (await orders.fetch("o-2")).service_minutes is None
            await orders.remember("o-2", service_minutes=45)
            await uow.flush()
        rows = {r["order_id"]: tuple(r)[1:] for r in await conn.fetch(
            "SELECT order_id, category, community_id, service_minutes FROM order_facts ORDER BY order_id")}
        assert rows == {"o-1": ("repair", COMMUNITY, 90), "o-2": ("daily_care", COMMUNITY, 45)}
