"""Why the kit's pool takes turns: asyncpg's pool keeps its free connections in an asyncio queue,
and a connection put back goes to whoever asks next. A waiter woken for it that has not run
yet finds it taken and waits again, at the back. The stand-in below keeps its connections as
asyncpg's pool does (an ``asyncio`` queue; a release puts the holder back at once), which makes
the newcomer's turn deterministic; the real pool is in tests/integration/kit/test_fair_pool.py."""
from __future__ import annotations

import asyncio

from services.kit.db import FairPool


class QueuePool:
    """A pool of ``size`` connections kept in an asyncio queue, as asyncpg keeps its holders."""

    def __init__(self, size: int):
        self.size = size
        self.queue: asyncio.LifoQueue[str] = asyncio.LifoQueue()
        for i in range(size):
            self.queue.put_nowait(f"conn-{i}")

    def get_max_size(self) -> int:
        return self.size

    async def acquire(self) -> str:
        return await self.queue.get()

    async def release(self, conn: str, *, timeout=None) -> None:
        self.queue.put_nowait(conn)


async def turns(pool) -> list[str]:
    """Two waiters queue for a pool of one connection; its holder puts it back and at once asks
    again: the order in which the three got it."""
    order: list[str] = []
    held = await pool.acquire()

    async def waiter(name: str) -> None:
        conn = await pool.acquire()
        order.append(name)
        await asyncio.sleep(0)
        await pool.release(conn)

    waiters = [asyncio.ensure_future(waiter(n)) for n in ("first waiter", "second waiter")]
    await asyncio.sleep(0.01)
    await pool.release(held)
    again = await pool.acquire()
    order.append("holder again")
    await pool.release(again)
    await asyncio.gather(*waiters)
    return order


async def test_a_queue_pool_lets_a_newcomer_take_the_connection_before_its_waiters():
    assert await turns(QueuePool(1)) == ["holder again", "first waiter", "second waiter"]


async def test_the_kits_pool_gives_it_to_the_waiters_in_the_order_they_asked():
    assert await turns(FairPool(QueuePool(1))) == ["first waiter", "second waiter", "holder again"]


async def test_with_room_nobody_waits_and_the_pools_own_attributes_show_through():
    pool = FairPool(QueuePool(3))
    conns = [await asyncio.wait_for(pool.acquire(), 1) for _ in range(3)]
    assert sorted(conns) == ["conn-0", "conn-1", "conn-2"] and pool.get_max_size() == 3
    async with asyncio.timeout(1):
        for c in conns:
            await pool.release(c)
        async with pool.acquire() as conn:
            assert conn.startswith("conn-")


async def test_each_caller_s_wait_for_its_turn_is_observed():
    """``kit_db_pool_wait_seconds``: 0 for a caller that found a connection free, the time it
    waited for one that queued."""
    waits: list[float] = []
    pool = FairPool(QueuePool(1))
    pool.observe_wait = waits.append
    held = await pool.acquire()
    queued = asyncio.ensure_future(pool.acquire())
    await asyncio.sleep(0.05)
    await pool.release(held)
    await pool.release(await queued)
    assert waits[0] == 0.0 and 0.04 < waits[1] < 1.0 and len(waits) == 2
