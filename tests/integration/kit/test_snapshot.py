"""A query of several statements reads one snapshot: a row and its history, or a page and its
count, never straddle a commit made between them."""
from __future__ import annotations

import asyncpg
import pytest

from services.kit.db import create_pool
from services.kit.runtime import ServiceRuntime
from services.kit.settings import ServiceSettings

pytestmark = pytest.mark.integration


@pytest.fixture
async def rt(pool):
    runtime = ServiceRuntime("grid", ServiceSettings())
    runtime.pool, runtime.serving = pool, True
    yield runtime
    runtime.pool = None


async def test_every_statement_of_a_snapshot_sees_the_commits_from_before_its_first(rt, pool):
    async with pool.acquire() as conn:
        await conn.execute("CREATE TABLE IF NOT EXISTS snap_rows (id int PRIMARY KEY)")
        await conn.execute("TRUNCATE snap_rows")
        await conn.execute("INSERT INTO snap_rows VALUES (1)")
    async with rt.snapshot() as conn:
        first = await conn.fetchval("SELECT count(*) FROM snap_rows")
        async with pool.acquire() as other:  # a batch commits between the two statements
            await other.execute("INSERT INTO snap_rows VALUES (2)")
        second = await conn.fetchval("SELECT count(*) FROM snap_rows")
    assert (first, second) == (1, 1)
    async with rt.snapshot() as conn:
        assert await conn.fetchval("SELECT count(*) FROM snap_rows") == 2


async def test_a_snapshot_cannot_write(rt):
    with pytest.raises(asyncpg.ReadOnlySQLTransactionError):
        async with rt.snapshot() as conn:
            await conn.execute("CREATE TABLE snap_written (id int)")


async def test_a_read_of_one_statement_runs_outside_a_transaction_and_goes_back_without_the_reset(database_url):
    """``rt.read()`` (a lookup of one statement): no BEGIN and COMMIT around it, and no reset on
    its release, which a session setting shows, since only the reset would undo it."""
    pool = await create_pool(database_url, "public", service="grid", max_size=1)
    runtime = ServiceRuntime("grid", ServiceSettings())
    runtime.pool, runtime.serving = pool, True
    try:
        async with runtime.read() as conn:
            assert not conn.is_in_transaction()
            default = await conn.fetchval("SHOW work_mem")
            await conn.execute("SET work_mem = '7MB'")
        async with runtime.connection() as conn:  # the one connection, not reset
            assert await conn.fetchval("SHOW work_mem") == "7MB"
        async with runtime.read() as conn:  # reset by the release before
            assert await conn.fetchval("SHOW work_mem") == default
    finally:
        runtime.pool = None
        await pool.close()
