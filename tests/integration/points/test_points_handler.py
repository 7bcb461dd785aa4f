"""The points handler on real PostgreSQL without a broker: deeds credited again after a cap,
FIFO expiry exactly once, and concurrent redemptions that never overdraw an account."""
from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import pytest

from schemas.envelope import Message
from schemas.orders import OrderEvaluated
from schemas.points import Adjust, OpenAccount, Redeem, ReviewDeed, SubmitDeed
from services.kit.db import create_pool
from services.kit.errors import Rejected
from services.kit.migrations import KIT_MIGRATIONS, migrate
from services.kit.uow import UnitOfWork
from services.points import DEFAULT_RULES_PATH
from services.points.app.handler import PointsHandler
from services.points.app.rules import RulesFile
from services.points.projection import MIGRATIONS, queries
from tests.support.kafka import command

pytestmark = pytest.mark.integration

DAY = datetime(2026, 11, 22, 2, 0, tzinfo=timezone.utc)  # 10:00 in Shanghai
COMMUNITY = "110105001002"


@pytest.fixture
async def pool(database_url):
    p = await create_pool(database_url, "points", service="points", max_size=6)
    async with p.acquire() as conn:
        await migrate(conn, "points", [("kit", KIT_MIGRATIONS), ("points", MIGRATIONS)])
    yield p
    await p.close()


@pytest.fixture
def handler() -> PointsHandler:
    return PointsHandler(RulesFile(DEFAULT_RULES_PATH))


async def run(pool, handler: PointsHandler, payload, *, now: datetime = DAY, source: str = "/tests",
              time: datetime | None = None) -> UnitOfWork:
    """Handle one message in its own transaction, as the kit does."""
    msg = Message(envelope=command(payload, source=source, time=time or now), payload=payload)
    async with pool.acquire() as conn, conn.transaction():
        uow = UnitOfWork(conn, "points", now)
        await handler.handle(uow, msg)
        return uow


async def timer(pool, fn, now: datetime) -> UnitOfWork:
    async with pool.acquire() as conn, conn.transaction():
        uow = UnitOfWork(conn, "points", now)
        await fn(uow)
        return uow


def types(uow: UnitOfWork) -> list[str]:
    return [e.type for e in uow.emitted]


async def open_resident(pool, handler, holder: str) -> str:
    await run(pool, handler, OpenAccount(account_id=f"resident:{holder}", holder_id=holder, kind="resident",
                                         community_id=COMMUNITY))
    return f"resident:{holder}"


async def balance(pool, account_id: str) -> int:
    async with pool.acquire() as conn:
        return (await queries.account(conn, account_id))["balance"]


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
        assert (await queries.deed(conn, "d3"))["status"] == "credited"
    assert (await timer(pool, handler.credit_refused_deeds, DAY + timedelta(days=2))).emitted == []


async def test_expiry_retires_lots_oldest_first_once_each_after_spending_took_the_oldest(pool, handler):
    account = await open_resident(pool, handler, "p2")
    await run(pool, handler, OpenAccount(account_id="merchant:m", holder_id="m", kind="merchant"))
    for n, minutes in ((1, 60), (2, 120)):  # 7 points, then 12 points a month later
        await run(pool, handler, OrderEvaluated(order_id=f"o{n}", assignee_id="p2", rating=5, passed=True,
                                                evaluator_id="op", community_id=COMMUNITY, category="daily_care",
                                                service_minutes=minutes),
                  source="/services/orders", time=DAY + timedelta(days=30 * (n - 1)))
    await run(pool, handler, Redeem(transfer_id="till-1", debit_account=account, credit_account="merchant:m", amount=5),
              now=DAY + timedelta(days=40))  # takes 5 of the first lot
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

    async def redeem(n: int):
        try:
            return await run(pool, handler, Redeem(transfer_id=f"t{n}", debit_account=account,
                                                   credit_account=f"merchant:m{1 + n % 2}", amount=3))
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
