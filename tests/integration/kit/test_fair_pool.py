"""The kit's pool on a real PostgreSQL hands its connections out first come, first served: a
caller that asks while others wait gets a connection after them, not before, and one cancelled
while waiting gives its turn back (why asyncpg's own pool does not: tests/unit/kit/test_kit_fair_pool.py)."""
from __future__ import annotations

import asyncio

import pytest

from services.kit.db import FairPool, create_pool

pytestmark = pytest.mark.integration


async def _turns(pool, first_conn) -> list[str]:
    """Two waiters queue for a pool of one connection; its holder releases it and at once asks
    again: the order in which the three got it."""
    order: list[str] = []

    async def waiter(name: str) -> None:
        async with pool.acquire() as conn:
            order.append(name)
            await conn.fetchval("SELECT 1")

    waiters = [asyncio.ensure_future(waiter(n)) for n in ("first waiter", "second waiter")]
    await asyncio.sleep(0.05)  # both wait now
    await pool.release(first_conn)
    again = await pool.acquire()  # no pause between the release and the new request
    order.append("holder again")
    await pool.release(again)
    await asyncio.gather(*waiters)
    return order


async def test_a_released_connection_goes_to_the_longest_waiter(database_url):
    pool = await create_pool(database_url, "public", service="fair", max_size=1)
    try:
        assert isinstance(pool, FairPool)
        assert await _turns(pool, await pool.acquire()) == ["first waiter", "second waiter", "holder again"]
        async with pool.acquire() as conn:  # the pool's own methods and state are still there
            assert await conn.fetchval("SELECT 2") == 2
        assert pool.get_max_size() == 1 and pool.get_size() == 1
    finally:
        await pool.close()


async def test_a_caller_cancelled_while_waiting_gives_its_turn_back(database_url):
    pool = await create_pool(database_url, "public", service="fair", max_size=1)
    try:
        held = await pool.acquire()
        waiting = asyncio.ensure_future(pool.acquire())
        await asyncio.sleep(0.05)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        await pool.release(held)
        conn = await asyncio.wait_for(pool.acquire(), 5)  # the turn was not lost
        await pool.release(conn)
    finally:
        await pool.close()


async def test_a_connection_marked_clean_goes_back_without_the_reset_and_any_other_with_it(database_url):
    """The pool resets a connection on release (session settings, advisory locks, LISTENs); one
    lent only for a transaction that ended (``clean()``, as a read snapshot marks it) skips that
    round trip. Shown here with a session setting, which only the reset would undo."""
    pool = await create_pool(database_url, "public", service="fair", max_size=1)
    try:
        async with pool.acquire() as conn:
            default = await conn.fetchval("SHOW work_mem")
            await conn.execute("SET work_mem = '7MB'")
        async with pool.acquire() as conn:
            assert await conn.fetchval("SHOW work_mem") == default  # reset
            await conn.execute("SET work_mem = '7MB'")
            conn.clean()
        async with pool.acquire() as conn:
            assert await conn.fetchval("SHOW work_mem") == "7MB"  # not reset: the mark was believed
        async with pool.acquire() as conn:
            assert await conn.fetchval("SHOW work_mem") == default  # the mark holds for one release only
    finally:
        await pool.close()
