"""The points handler on real PostgreSQL without a broker: deeds credited again after a cap,
FIFO expiry exactly once, concurrent redemptions that never overdraw an account, and a batch
of several messages through the kit's loop."""
from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import pytest

from schemas.envelope import Message
from schemas.orders import OrderEvaluated
from schemas.points import Adjust, OpenAccount, Redeem, ReviewDeed, SubmitDeed
from services.kit.errors import Rejected
from services.kit.handlers import dispatch
from services.kit.outbox import write as write_outbox
from services.kit.uow import UnitOfWork
from services.points import DEFAULT_RULES_PATH
from services.points.app.handler import PointsHandler
from services.points.app.rules import RulesFile
from services.points.projection import queries
from tests.support.kafka import command

from .senders import consent, sender

pytestmark = pytest.mark.integration

DAY = datetime(2026, 11, 22, 2, 0, tzinfo=timezone.utc)  # 10:00 in Shanghai
COMMUNITY = "110105001002"


@pytest.fixture
def handler() -> PointsHandler:
    return PointsHandler(RulesFile(DEFAULT_RULES_PATH))


async def timer(pool, fn, now: datetime) -> UnitOfWork:
    """Run ``fn(uow)`` in its own transaction, then write what it holds and emitted, as the kit does."""
    async with pool.acquire() as conn, conn.transaction():
        uow = UnitOfWork(conn, "points", now)
        await fn(uow)
        await uow.flush()
        await write_outbox(conn, uow.records)
        return uow


async def batch(pool, handler: PointsHandler, msgs: list[Message], now: datetime = DAY) -> UnitOfWork:
    """Handle messages as one batch through the kit's loop (none of them may fault)."""
    async def handle(uow: UnitOfWork) -> None:
        assert await dispatch(handler, uow, msgs) == []
    return await timer(pool, handle, now)


def message(payload, *, source: str = "/tests", time: datetime = DAY, principal=None) -> Message:
    """A message as the kit hands it over: a command with its sender (the policy's), an event without."""
    return Message(envelope=command(payload, source=source, time=time), payload=payload,
                   principal=principal or sender(payload))


async def run(pool, handler: PointsHandler, payload, *, now: datetime = DAY, source: str = "/tests",
              time: datetime | None = None, principal=None) -> UnitOfWork:
    """Handle one message in its own transaction."""
    return await batch(pool, handler, [message(payload, source=source, time=time or now, principal=principal)], now)


def types(uow: UnitOfWork) -> list[str]:
    return [e.type for e in uow.emitted]


async def open_resident(pool, handler, holder: str) -> str:
    await run(pool, handler, OpenAccount(account_id=f"resident:{holder}", holder_id=holder, kind="resident",
                                         community_id=COMMUNITY))
    return f"resident:{holder}"


async def balance(pool, account_id: str) -> int:
    async with pool.acquire() as conn:
        return (await queries.account(conn, account_id, everyone=True))["balance"]


async def test_a_deed_refused_over_the_daily_cap_is_credited_by_the_timer_on_a_later_day(pool, handler):
    account = await open_resident(pool, handler, "p1")
    for n in (1, 2, 3):
        await run(pool, handler, SubmitDeed(deed_id=f"d{n}", account_id=account, category="civility_persuasion"))
        uow = await run(pool, handler, ReviewDeed(deed_id=f"d{n}", account_id=account, approved=True, points=10,
                                                  reviewer_id="rev"))
    assert types(uow) == ["points.deed.approved.v1", "points.transfer.refused.v1"]  # 30 > the daily cap 20
    assert await balance(pool, account) == 20
    same_day = await timer(pool, handler.credit_refused_deeds, DAY + timedelta(hours=2))
    assert same_day.emitted == []
    next_day = await timer(pool, handler.credit_refused_deeds, DAY + timedelta(days=1))
    assert types(next_day) == ["points.transfer.posted.v1"]
    assert await balance(pool, account) == 30
    async with pool.acquire() as conn:
        assert (await queries.deed(conn, "d3", everyone=True))["status"] == "credited"
    assert (await timer(pool, handler.credit_refused_deeds, DAY + timedelta(days=2))).emitted == []


async def test_expiry_retires_lots_oldest_first_once_each_after_spending_took_the_oldest(pool, handler):
    account = await open_resident(pool, handler, "p2")
    await run(pool, handler, OpenAccount(account_id="merchant:m", holder_id="m", kind="merchant"))
    for n, minutes in ((1, 60), (2, 120)):  # 7 points, then 12 points a month later
        await run(pool, handler, OrderEvaluated(order_id=f"o{n}", assignee_id="p2", rating=5, passed=True,
                                                evaluator_id="op", community_id=COMMUNITY, category="daily_care",
                                                service_minutes=minutes),
                  source="/services/orders", time=DAY + timedelta(days=30 * (n - 1)))
    code = await consent(pool, account, 5, at=DAY + timedelta(days=40))
    await run(pool, handler, Redeem(transfer_id="till-1", debit_account=account, credit_account="merchant:m", amount=5,
                                    consent_code=code), now=DAY + timedelta(days=40))  # takes 5 of the first lot
    two_years = DAY.replace(year=2028)
    first = await timer(pool, lambda uow: handler.expire(uow, limit=100), two_years + timedelta(days=1))
    assert [(e.data["amount"], e.data["reason"]) for e in first.emitted] == [(2, "expiry")]
    again = await timer(pool, lambda uow: handler.expire(uow, limit=100), two_years + timedelta(days=2))
    assert again.emitted == []
    later = await timer(pool, lambda uow: handler.expire(uow, limit=100), two_years + timedelta(days=31))
    assert [e.data["amount"] for e in later.emitted] == [12]
    assert await balance(pool, account) == 0
    async with pool.acquire() as conn:
        assert (await queries.ledger_check(conn))["sum"] == 0


async def test_concurrent_redemptions_never_take_a_resident_below_zero(pool, handler):
    account = await open_resident(pool, handler, "p3")
    await run(pool, handler, OpenAccount(account_id="merchant:m1", holder_id="m1", kind="merchant"))
    await run(pool, handler, OpenAccount(account_id="merchant:m2", holder_id="m2", kind="merchant"))
    await run(pool, handler, OpenAccount(account_id="issuer:" + COMMUNITY, holder_id=COMMUNITY, kind="issuer"))
    await run(pool, handler, Adjust(transfer_id="seed", debit_account="issuer:" + COMMUNITY, credit_account=account,
                                    amount=10, operator_id="op", reason="opening grant"))

    codes = [await consent(pool, account, 3, at=DAY) for _ in range(8)]

    async def redeem(n: int):
        try:
            return await run(pool, handler, Redeem(transfer_id=f"t{n}", debit_account=account,
                                                   credit_account=f"merchant:m{1 + n % 2}", amount=3,
                                                   consent_code=codes[n]))
        except Rejected as e:  # not expected: the handler turns refusals into events
            return e

    results = await asyncio.gather(*(redeem(n) for n in range(8)))
    posted = sum(1 for u in results if "points.transfer.posted.v1" in types(u))
    refused = sum(1 for u in results if "points.command.rejected.v1" in types(u))
    assert (posted, refused) == (3, 5)
    assert await balance(pool, account) == 1
    async with pool.acquire() as conn:
        check = await queries.ledger_check(conn)
    assert check["sum"] == 0 and check["consistent"]


async def test_a_batch_is_handled_as_its_messages_one_by_one_and_a_refusal_undoes_only_its_message(pool, handler):
    """One batch through the kit's loop (the batch step locks its deeds and accounts first):
    an opening, a deed submitted and approved, a redemption over the balance (refused with both
    events), a second review of the deed (refused) and an order award."""
    shop = "merchant:m9"
    code = await consent(pool, "resident:p9", 11, at=DAY)
    payloads = [
        OpenAccount(account_id="resident:p9", holder_id="p9", kind="resident", community_id=COMMUNITY),
        OpenAccount(account_id=shop, holder_id="m9", kind="merchant"),
        SubmitDeed(deed_id="d9", account_id="resident:p9", category="civility_persuasion"),
        ReviewDeed(deed_id="d9", account_id="resident:p9", approved=True, points=10, reviewer_id="rev"),
        Redeem(transfer_id="till-9", debit_account="resident:p9", credit_account=shop, amount=11, consent_code=code),
        ReviewDeed(deed_id="d9", account_id="resident:p9", approved=False, reason="again", reviewer_id="rev"),
        OrderEvaluated(order_id="o9", assignee_id="p9", rating=5, passed=True, evaluator_id="op",
                       community_id=COMMUNITY, category="daily_care", service_minutes=60),
    ]
    msgs = [message(p, source="/services/orders" if isinstance(p, OrderEvaluated) else "/tests") for p in payloads]
    uow = await batch(pool, handler, msgs)
    by_message = [[e.type for e in uow.caused_by(m.id)] for m in msgs]
    assert by_message == [
        ["points.account.opened.v1"], ["points.account.opened.v1"], ["points.deed.submitted.v1"],
        ["points.deed.approved.v1", "points.account.opened.v1", "points.transfer.posted.v1"],
        ["points.transfer.refused.v1", "points.command.rejected.v1"],
        ["points.command.rejected.v1"],
        ["points.transfer.posted.v1"],
    ]
    assert [e.reason for _, e in uow.rejected] == ["insufficient_balance", "illegal_transition"]
    assert await balance(pool, "resident:p9") == 17  # 10 for the deed, 7 for the order
    async with pool.acquire() as conn:
        deed = await queries.deed(conn, "d9", everyone=True)
        assert (deed["status"], deed["points"]) == ("credited", 10)
        assert await conn.fetchval("SELECT version FROM deeds WHERE deed_id = 'd9'") == 1  # saved once, at the flush
        check = await queries.ledger_check(conn)
    assert check["sum"] == 0 and check["consistent"]


async def test_concurrent_batches_awarding_in_the_same_communities_wait_for_each_other(pool, handler):
    """Batches that name the same issuers in opposite orders lock them at once, in one order:
    none of them deadlocks."""
    communities = [f"11010500100{n}" for n in range(2, 6)]
    for c in communities:
        await run(pool, handler, OpenAccount(account_id=f"issuer:{c}", holder_id=c, kind="issuer"))

    def evaluated(batch: int, community: str) -> Message:
        e = OrderEvaluated(order_id=f"o-{batch}-{community}", assignee_id=f"p-{batch}-{community}", rating=5,
                           passed=True, evaluator_id="op", community_id=community, category="daily_care",
                           service_minutes=60)
        return message(e, source="/services/orders")

    batches = [[evaluated(b, c) for c in (communities if b % 2 else communities[::-1])] for b in range(6)]
    done = await asyncio.gather(*(batch(pool, handler, msgs) for msgs in batches))
    assert all(types(uow).count("points.transfer.posted.v1") == len(communities) for uow in done)
    async with pool.acquire() as conn:
        check = await queries.ledger_check(conn)
    assert check["sum"] == 0 and check["consistent"] and check["postings"] == 6 * len(communities)


async def test_a_grid_case_is_kept_without_its_description_location_or_media(pool, handler):
    """points keeps of a case's report and registration what the award needs (the reporter's
    id, the grid, the category), never the resident's words, address, position or photos."""
    from schemas.grid import CaseRegistered, CaseReported, Location, Reporter
    from tests.support.db import tables_containing

    account = await open_resident(pool, handler, "resident-pii-9")
    where = Location(lat=39.912345, lon=116.412345, address="PII-ADDR-51c0")
    who = Reporter(kind="resident", id="resident-pii-9")
    await run(pool, handler, CaseReported(
        case_id="pii-c1", grid_id="110105001002003", category="environment", description="PII-DESC-51c0",
        location=where, reporter=who, media=("https://media.example/PII-MEDIA-51c0.jpg",), occurred_at=DAY),
        source="/services/grid")
    await run(pool, handler, CaseRegistered(
        case_id="pii-c1", due_at=DAY + timedelta(hours=4), department="城管", grid_id="110105001002003",
        category="environment", description="PII-DESC-51c0", location=where, reporter=who, occurred_at=DAY),
        source="/services/grid")
    assert await balance(pool, account) > 0  # the report was awarded from what was kept
    async with pool.acquire() as conn:
        for needle in ("PII-DESC-51c0", "PII-ADDR-51c0", "PII-MEDIA-51c0", "39.912345", "116.412345"):
            assert await tables_containing(conn, "points", needle) == [], needle


class _Counting:
    """A connection that counts the statements reading ``postings`` (the rest passes through)."""

    def __init__(self, conn):
        self._conn = conn
        self.posting_reads = 0

    def __getattr__(self, name):
        target = getattr(self._conn, name)
        if name not in ("fetch", "fetchrow", "fetchval"):
            return target

        async def counted(sql, *args, **kw):
            if "FROM postings" in sql:
                self.posting_reads += 1
            return await target(sql, *args, **kw)
        return counted


async def counted_batch(pool, handler: PointsHandler, msgs: list[Message]) -> tuple[UnitOfWork, int]:
    """Handle messages as one batch, as :func:`batch` does: its unit of work, and how many of its
    statements read ``postings``."""
    async with pool.acquire() as conn, conn.transaction():
        counting = _Counting(conn)
        uow = UnitOfWork(counting, "points", DAY)
        assert await dispatch(handler, uow, msgs) == []
        await uow.flush()
        await write_outbox(conn, uow.records)
    return uow, counting.posting_reads


async def test_a_batch_looks_its_awards_up_in_one_query_and_an_award_delivered_again_pays_once(pool, handler):
    evaluations = [message(OrderEvaluated(order_id=f"ob{n}", assignee_id=f"pb{n % 3}", rating=5, passed=True,
                                          evaluator_id="op", community_id=COMMUNITY, category="daily_care",
                                          service_minutes=60), source="/services/orders") for n in range(6)]

    uow, reads = await counted_batch(pool, handler, evaluations)
    assert types(uow).count("points.transfer.posted.v1") == 6 and reads == 1
    before = [await balance(pool, f"resident:pb{n}") for n in range(3)]
    assert all(b > 0 for b in before)
    # delivered again (past the inbox)
    again, reads = await counted_batch(pool, handler, evaluations[:2] + evaluations[4:])
    assert reads == 1 and "points.transfer.posted.v1" not in types(again)
    assert [await balance(pool, f"resident:pb{n}") for n in range(3)] == before


async def test_a_batch_looks_its_redemptions_and_adjustments_up_in_one_query_and_one_delivered_again_pays_once(
        pool, handler):
    account = await open_resident(pool, handler, "pr")
    await run(pool, handler, OpenAccount(account_id="merchant:mr", holder_id="mr", kind="merchant"))
    await run(pool, handler, OpenAccount(account_id="issuer:" + COMMUNITY, holder_id=COMMUNITY, kind="issuer"))
    grants = [message(Adjust(transfer_id=f"grant{n}", debit_account="issuer:" + COMMUNITY, credit_account=account,
                             amount=10, operator_id="op", reason="opening grant")) for n in range(3)]
    codes = [await consent(pool, account, 4, at=DAY) for _ in range(3)]
    redemptions = [message(Redeem(transfer_id=f"till-r{n}", debit_account=account, credit_account="merchant:mr",
                                  amount=4, consent_code=codes[n])) for n in range(3)]

    uow, reads = await counted_batch(pool, handler, grants + redemptions)
    assert types(uow).count("points.transfer.posted.v1") == 6 and reads == 1
    assert (await balance(pool, account), await balance(pool, "merchant:mr")) == (18, 12)
    again, reads = await counted_batch(pool, handler, [grants[1], redemptions[0], redemptions[2]])  # delivered again
    assert reads == 1 and "points.transfer.posted.v1" not in types(again)
    assert (await balance(pool, account), await balance(pool, "merchant:mr")) == (18, 12)
