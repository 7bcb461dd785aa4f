"""The kit's kept counts (``kit_keep_counts_on``, kit migrations 004, 005 and 008) on a real
PostgreSQL: a counts table, filled from the rows already there and kept by the statement
triggers, equals counting its table after every kind of write, a row with a null key counted
under none; two transactions moving the same counts both count; and counts kept before
migration 008 move to their own trigger function and go on counting."""
from __future__ import annotations

import asyncio
import shutil

import pytest

from services.kit.migrations import KIT_MIGRATIONS, migrate
from tests.support.db import migrated_pool

pytestmark = pytest.mark.integration

TRIGGERS = """
CREATE TABLE things (id int PRIMARY KEY, "Area" text NOT NULL, kind text NOT NULL, note text);
INSERT INTO things VALUES (0, 'before', 'k0', NULL);
CREATE TABLE thing_counts ("Area" text NOT NULL, kind text NOT NULL, n bigint NOT NULL, PRIMARY KEY ("Area", kind));
SELECT kit_keep_counts_on('things', 'thing_counts', 'Area', 'kind');
DELETE FROM things;
"""


@pytest.fixture
async def pool(database_url):
    async with migrated_pool(database_url, "kit_counts", components=[("kit", KIT_MIGRATIONS)]) as p:
        async with p.acquire() as conn:
            await conn.execute(TRIGGERS)
        yield p


async def _agree(conn) -> dict[tuple[str, str], int]:
    kept = {(r[0], r[1]): r[2] for r in await conn.fetch('SELECT "Area", kind, n FROM thing_counts')}
    assert kept == {(r[0], r[1]): r[2] for r in await conn.fetch(
        'SELECT "Area", kind, count(*) FROM things GROUP BY 1, 2')}
    return kept


async def test_the_counts_follow_inserts_updates_moves_and_deletes_and_keep_no_zero(pool):
    async with pool.acquire() as conn:
        await conn.execute("INSERT INTO things SELECT i, 'a' || (i % 3), 'k' || (i % 2), NULL "
                           "FROM generate_series(1, 60) i")
        assert await _agree(conn) == {(f"a{a}", f"k{k}"): 10 for a in range(3) for k in range(2)}
        await conn.execute("UPDATE things SET note = 'x'")  # no key moves: nothing written
        await conn.execute("UPDATE things SET kind = 'k9' WHERE id <= 6")  # some move, some stay
        await conn.execute("""UPDATE things SET "Area" = 'a0' WHERE "Area" = 'a2'""")  # a whole key empties
        kept = await _agree(conn)
        assert not any(a == "a2" for a, _ in kept) and kept[("a0", "k9")] == 4
        await conn.execute("DELETE FROM things WHERE kind = 'k9'")
        await conn.copy_records_to_table("things", records=[(100, "b", "k1", None), (101, "b", "k1", None)])
        kept = await _agree(conn)
        assert ("a0", "k9") not in kept and kept[("b", "k1")] == 2
        await conn.execute("DELETE FROM things")
        assert await _agree(conn) == {} and await conn.fetchval("SELECT count(*) FROM thing_counts") == 0


async def test_two_transactions_moving_the_same_counts_both_count(pool):
    async def add(first: int) -> None:
        async with pool.acquire() as conn, conn.transaction():
            await conn.execute("INSERT INTO things SELECT i, 'z', 'k', NULL FROM generate_series($1::int, $1 + 49) i",
                               first)
            await asyncio.sleep(0.05)  # the other holds the same count row meanwhile

    await asyncio.gather(*(add(1000 + 100 * i) for i in range(4)))
    async with pool.acquire() as conn:
        assert (await _agree(conn))[("z", "k")] == 200


async def test_a_row_whose_key_is_null_is_counted_under_no_key_as_it_gets_one_and_loses_it(pool):
    async with pool.acquire() as conn:
        await conn.execute("""CREATE TABLE placed (id int PRIMARY KEY, grid text);
                              INSERT INTO placed VALUES (1, 'g1'), (2, NULL);
                              CREATE TABLE placed_counts (grid text NOT NULL PRIMARY KEY, n bigint NOT NULL);
                              SELECT kit_keep_counts_on('placed', 'placed_counts', 'grid');""")

        async def kept() -> dict[str, int]:
            counted = dict(await conn.fetch("SELECT grid, count(*) FROM placed WHERE grid IS NOT NULL GROUP BY 1"))
            assert dict(await conn.fetch("SELECT grid, n FROM placed_counts")) == counted
            return counted

        assert await kept() == {"g1": 1}  # filled from the rows there, the unplaced one left out
        await conn.execute("INSERT INTO placed VALUES (3, NULL), (4, 'g2')")
        assert await kept() == {"g1": 1, "g2": 1}
        await conn.execute("UPDATE placed SET grid = 'g2' WHERE id IN (2, 3)")  # placed
        assert await kept() == {"g1": 1, "g2": 3}
        await conn.execute("UPDATE placed SET grid = NULL WHERE grid = 'g2'")  # unplaced: the count goes
        assert await kept() == {"g1": 1}
        await conn.execute("DELETE FROM placed")
        assert await kept() == {}


async def test_counts_kept_before_their_own_functions_move_to_them_and_go_on_counting(database_url, tmp_path):
    """A database whose counts a service kept under the kit's migrations up to 007 (one shared
    trigger function that planned its statements on every call): migration 008 makes the same
    three triggers again, calling the counts table's own function, and the counts stay right."""
    before = tmp_path / "kit"
    before.mkdir()
    for f in sorted(KIT_MIGRATIONS.glob("*.sql")):
        if int(f.name[:3]) < 8:
            shutil.copy(f, before)
    async with migrated_pool(database_url, "kit_counts_moved", components=[("kit", before)]) as p:
        async with p.acquire() as conn:
            await conn.execute(TRIGGERS)
            await conn.execute("INSERT INTO things SELECT i, 'a' || (i % 3), 'k' || (i % 2), NULL "
                               "FROM generate_series(1, 30) i")

            async def functions() -> dict[str, str]:
                return dict(await conn.fetch(
                    "SELECT t.tgname, t.tgfoid::regproc::text FROM pg_trigger t "
                    "WHERE t.tgrelid = 'things'::regclass ORDER BY 1"))

            assert set((await functions()).values()) == {"kit_keep_counts"}
            await migrate(conn, "kit_counts_moved", [("kit", KIT_MIGRATIONS)])
            assert await functions() == {f"thing_counts_{op}": "thing_counts_move"
                                         for op in ("delete", "insert", "update")}
            assert not await conn.fetchval("SELECT to_regproc('kit_keep_counts') IS NOT NULL")
            assert await _agree(conn) == {(f"a{a}", f"k{k}"): 5 for a in range(3) for k in range(2)}
            await conn.execute("UPDATE things SET kind = 'k9' WHERE id <= 6")
            await conn.execute("""UPDATE things SET "Area" = 'a0' WHERE "Area" = 'a2'""")
            await conn.execute("DELETE FROM things WHERE id > 25")
            kept = await _agree(conn)
            assert ("a2", "k0") not in kept and kept[("a0", "k9")] == 4
