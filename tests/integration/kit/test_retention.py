"""The retention timer's deletions, on real PostgreSQL: old rows go, in bounded batches; recent
rows and a retention of 0 (for ever) are left alone."""
from __future__ import annotations

from services.kit import retention

RULES = [retention.Rule("inbox", "processed_at", 30), retention.Rule("command_outcomes", "recorded_at", 30),
         retention.Rule("outbox", "created_at", 14)]


async def _fill(conn, old: int, new: int) -> None:
    for i in range(old + new):
        age = "40 days" if i < old else "1 day"
        await conn.execute(f"INSERT INTO inbox (source, id, processed_at) VALUES ('s', $1, now() - interval '{age}')",
                           f"m{i}")
        await conn.execute(f"INSERT INTO command_outcomes (source, id, events, recorded_at) "
                           f"VALUES ('s', $1, '[]', now() - interval '{age}')", f"c{i}")
        await conn.execute(f"INSERT INTO outbox (topic, key, value, created_at) "
                           f"VALUES ('t', NULL, '\\x00', now() - interval '{age}')")


async def test_old_rows_are_deleted_in_bounded_batches(pool):
    async with pool.acquire() as conn:
        await _fill(conn, old=5, new=3)
        assert await retention.prune_all(conn, RULES, batch=2) == {"inbox": 2, "command_outcomes": 2, "outbox": 2}
        assert await retention.prune_all(conn, RULES, batch=2) == {"inbox": 2, "command_outcomes": 2, "outbox": 2}
        assert await retention.prune_all(conn, RULES, batch=2) == {"inbox": 1, "command_outcomes": 1, "outbox": 1}
        assert await retention.prune_all(conn, RULES, batch=2) == {"inbox": 0, "command_outcomes": 0, "outbox": 0}
        for table in ("inbox", "command_outcomes", "outbox"):
            assert await conn.fetchval(f"SELECT count(*) FROM {table}") == 3, table
        # the oldest went first: what is left is the recent rows
        assert await conn.fetchval("SELECT min(id) FROM inbox") == "m5"


async def test_a_retention_of_zero_keeps_everything(pool):
    async with pool.acquire() as conn:
        await _fill(conn, old=2, new=0)
        assert await retention.prune(conn, retention.Rule("inbox", "processed_at", 0), batch=100) == 0
        assert await retention.prune(conn, retention.Rule("outbox", "created_at", 50), batch=100) == 0
        assert await conn.fetchval("SELECT count(*) FROM inbox") == 2
        assert await conn.fetchval("SELECT count(*) FROM outbox") == 2


async def test_the_assessment_event_log_is_pruned_by_its_own_rule(database_url):
    from services.assessment.projection import MIGRATIONS
    from tests.support.db import migrated_pool

    async with migrated_pool(database_url, "assessment", MIGRATIONS) as apool, apool.acquire() as conn:
        for i, age in enumerate(["900 days", "10 days"]):
            await conn.execute(
                "INSERT INTO event_log (source, id, topic, type, data, time, occurred_at, type_rank, recorded_at) "
                f"VALUES ('s', $1, 't', 'x', '{{}}', now(), now(), 0, now() - interval '{age}')", f"e{i}")
        rule = retention.Rule("event_log", "recorded_at", 800)
        assert await retention.prune(conn, rule, batch=100) == 1
        assert [r["id"] for r in await conn.fetch("SELECT id FROM event_log")] == ["e1"]
