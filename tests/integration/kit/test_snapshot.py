"""A query of several statements reads one snapshot: a row and its history never straddle a
commit made between them. A list's page and its count are one statement, which reads one
snapshot by itself; a read of one statement needs no transaction."""
from __future__ import annotations

import asyncpg
import pytest

from services.kit.db import create_pool
from services.kit.runtime import ServiceRuntime
from services.kit.settings import ServiceSettings
from services.kit.sql import COUNT_CAP, Keyset, Where
from tests.support.db import statements_sent

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


async def test_a_page_and_its_count_are_one_statement_that_an_empty_page_still_counts(pool):
    """``Where.counted_page``: the page joined to its count, in key order; after the last page
    the count still comes (from the one row of the join); ``total`` counts another way."""
    async with pool.acquire() as conn:
        await conn.execute("CREATE TABLE IF NOT EXISTS paged_rows (id int PRIMARY KEY, odd bool NOT NULL)")
        await conn.execute("TRUNCATE paged_rows")
        await conn.execute("INSERT INTO paged_rows SELECT i, i % 2 = 1 FROM generate_series(1, 25) i")
        order = Keyset(("id",), (int,), descending=True)
        where = Where().equal(odd=True)
        pages, cursor, totals = [], None, set()
        async with statements_sent(conn) as statements:
            while True:
                page = await where.counted_page(conn, "paged_rows", "SELECT id FROM paged_rows", order, 5,
                                                cursor=cursor)
                pages.append([r["id"] for r in page.items])
                totals.add((page.total, page.total_exact))
                if page.next_cursor is None:
                    break
                cursor = page.next_cursor
        assert pages == [[25, 23, 21, 19, 17], [15, 13, 11, 9, 7], [5, 3, 1]] and totals == {(13, True)}
        assert len(statements) == 3  # one a page
        after_last = await where.counted_page(conn, "paged_rows", "SELECT id FROM paged_rows", order, 5, offset=20)
        assert (after_last.items, after_last.total, after_last.next_cursor) == ([], 13, None)
        kept = Where().equal(odd=False)
        other = await kept.counted_page(conn, "paged_rows", "SELECT id FROM paged_rows", order, 2,
                                        total=f"SELECT {kept.param(COUNT_CAP + 5)}::bigint")
        assert ([r["id"] for r in other.items], other.total, other.total_exact) == ([24, 22], COUNT_CAP + 5, True)


async def test_a_headed_page_is_one_statement_whose_head_row_comes_with_an_empty_page_or_alone(pool):
    """``Where.headed_page``: the row ``head`` finds (as JSON values) and the page, in one
    statement; an empty page still brings the head; no head row, no page."""
    async with pool.acquire() as conn:
        await conn.execute("CREATE TABLE IF NOT EXISTS headed_rows (id int PRIMARY KEY, owner text NOT NULL, "
                           "at timestamptz NOT NULL DEFAULT '2026-11-22 10:00+00')")
        await conn.execute("TRUNCATE headed_rows")
        await conn.execute("INSERT INTO headed_rows (id, owner) SELECT i, CASE WHEN i <= 7 THEN 'a' ELSE 'b' END "
                           "FROM generate_series(1, 10) i")
        order = Keyset(("id",), (int,))

        async def headed(owner: str, **kw):
            where = Where().equal(owner=owner)
            head = f"SELECT {where.param(owner)}::text AS owner, count(*) AS n FROM headed_rows HAVING count(*) > 0"
            return await where.headed_page(conn, head, "SELECT id, at FROM headed_rows", order, 3, **kw)

        async with statements_sent(conn) as statements:
            head, items, cursor = await headed("a")
        assert len(statements) == 1
        assert head == {"owner": "a", "n": 10} and [r["id"] for r in items] == [1, 2, 3] and cursor is not None
        assert set(items[0]) == {"id", "at"} and items[0]["at"].year == 2026  # the page's own types, not JSON's
        head, items, cursor = await headed("a", cursor=cursor)
        assert [r["id"] for r in items] == [4, 5, 6]
        head, items, cursor = await headed("a", offset=9)
        assert (head, items, cursor) == ({"owner": "a", "n": 10}, [], None)
        await conn.execute("TRUNCATE headed_rows")
        assert await headed("a") == (None, [], None)


async def test_a_row_with_its_history_is_one_statement(pool):
    """``with_history``: the row and its history rows (typed, in order) in one statement; no
    row, None; a row without history, an empty one."""
    from services.kit.sql import with_history

    async with pool.acquire() as conn:
        await conn.execute("CREATE TABLE IF NOT EXISTS storied (id text PRIMARY KEY, v int NOT NULL)")
        await conn.execute("CREATE TABLE IF NOT EXISTS storied_history (id text NOT NULL, seq int NOT NULL, "
                           "at timestamptz NOT NULL, data jsonb NOT NULL, PRIMARY KEY (id, seq))")
        await conn.execute("TRUNCATE storied, storied_history")
        await conn.execute("INSERT INTO storied VALUES ('a', 1), ('b', 2)")
        await conn.execute("""INSERT INTO storied_history VALUES
                                  ('a', 2, '2026-11-22 10:00:00.5+00', '{"x": [1, "é"]}'),
                                  ('a', 1, '2026-11-22 09:00+00', '{}'), ('c', 1, now(), '{}')""")

        async def read(id: str):
            return await with_history(conn, "id, v", "FROM storied WHERE id = $1", ("seq", "at", "data"),
                                      "FROM storied_history h WHERE h.id = storied.id ORDER BY h.seq", id)

        await read("b")  # the connection's first array of records: asyncpg looks the types up once
        async with statements_sent(conn) as sent:
            a = await read("a")
        assert len(sent) == 1
        assert [h["seq"] for h in a["history"]] == [1, 2] and (a["id"], a["v"]) == ("a", 1)
        assert a["history"][1]["data"] == {"x": [1, "é"]} and a["history"][1]["at"].microsecond == 500000
        assert list(a) == ["id", "v", "history"] and set(a["history"][0]) == {"seq", "at", "data"}
        assert (await read("b"))["history"] == []
        assert await read("c") is None
