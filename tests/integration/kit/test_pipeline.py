"""The kit's consume → inbox → state → outbox → relay path, on a real broker and PostgreSQL."""
from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta, timezone

import asyncpg
import orjson
import pytest

from schemas.envelope import encode
from schemas.grid import LogPatrol
from schemas.topics import GRID
from services.kit import metrics
from services.kit.consumer import BatchConsumer
from services.kit.handlers import handles, prepares
from services.kit.outbox import OutboxRecord, OutboxRelay, producer_for
from services.kit.outbox import write as write_outbox
from tests.support.kafka import command, of_type, produce, read_all, send

from .support import Pipeline
from .patrols import PatrolCounter

pytestmark = pytest.mark.integration

T0 = datetime(2026, 11, 22, 8, 0, tzinfo=timezone(timedelta(hours=8)))


def patrol(grid_id: str = "110105001002003", worker: str = "gw-1", **kw) -> LogPatrol:
    return LogPatrol(patrol_id=str(uuid.uuid4()), grid_id=grid_id, grid_worker_id=worker,
                     started_at=T0, ended_at=T0 + timedelta(minutes=30), **kw)


async def counts(pool) -> dict[str, int]:
    return {r["grid_id"]: r["n"] for r in await pool.fetch("SELECT grid_id, n FROM patrol_counts")}


async def test_inbox_drops_a_duplicate_command(kafka, pool):
    env = command(patrol())
    before = metrics.RECORDS_DUPLICATE.labels("grid", GRID.intake.name)._value.get()
    async with Pipeline(kafka, pool) as p:
        await send(kafka, GRID.intake.name, env, env)
        await p.wait_processed(2)
        await send(kafka, GRID.intake.name, env)  # and once more, in a later batch
        await p.wait_processed(3)
        events = of_type(await read_all(kafka, GRID.events.name, min_count=1), "grid.patrol.logged.v1")
    assert await counts(pool) == {"110105001002003": 1}
    assert len(events) == 1
    assert events[0]["causationid"] == env.id
    assert metrics.RECORDS_DUPLICATE.labels("grid", GRID.intake.name)._value.get() - before == 2


async def test_crash_between_database_commit_and_offset_commit_causes_no_double_effect(kafka, pool):
    envs = [command(patrol(grid_id=f"110105001002{i:03d}")) for i in range(20)]
    async with Pipeline(kafka, pool, group="crashy") as p:
        async def crash_instead_of_committing(offsets):  # dies right after the DB commit
            raise asyncio.CancelledError
        p.consumer._commit_offsets = crash_instead_of_committing
        await send(kafka, GRID.intake.name, *envs)
        await asyncio.sleep(3)
        assert sum((await counts(pool)).values()) == 20  # state committed, offsets not
    async with Pipeline(kafka, pool, group="crashy") as p2:  # the restarted worker re-reads
        await p2.wait_processed(20)
        committed = await p2.consumer.consumer.committed(next(iter(p2.consumer.consumer.assignment())))
    assert sum((await counts(pool)).values()) == 20
    assert committed is not None
    events = of_type(await read_all(kafka, GRID.events.name, min_count=20), "grid.patrol.logged.v1")
    assert sorted(e["causationid"] for e in events) == sorted(e.id for e in envs)


async def test_poison_records_go_to_the_dead_letter_topic_and_the_next_record_is_still_processed(kafka, pool):
    good = command(patrol(grid_id="110105001002001"))
    boom = command(patrol(grid_id="110105001002001", worker="boom"))
    bad_grid = command(patrol()).model_copy(update={"data": {**command(patrol()).data, "grid_id": "12ab"}})
    after = command(patrol(grid_id="110105001002001"))
    async with Pipeline(kafka, pool) as p:
        await produce(kafka, GRID.intake.name, [
            ("110105001002001", b"{not json"),
            ("110105001002001", encode(bad_grid)),
            ("110105001002001", encode(good)),
            ("110105001002001", encode(boom)),
            ("110105001002001", encode(after)),
        ])
        await p.wait_processed(5)
        dlq = await read_all(kafka, GRID.dlq.name, min_count=3)
        events = of_type(await read_all(kafka, GRID.events.name, min_count=2), "grid.patrol.logged.v1")
    assert await counts(pool) == {"110105001002001": 2}
    assert sorted(e["causationid"] for e in events) == sorted([good.id, after.id])
    reasons = sorted(r["headers"]["dlq.error.reason"] for r in dlq)
    assert reasons == ["handler_error", "invalid_data", "malformed_json"]
    for r in dlq:
        assert r["headers"]["dlq.origin.topic"] == GRID.intake.name
        assert r["headers"]["dlq.origin.offset"].isdigit()
        assert r["key"] == "110105001002001"
    invalid = next(r for r in dlq if r["headers"]["dlq.error.reason"] == "invalid_data")
    assert "data.grid_id" in invalid["headers"]["dlq.error.message"]
    malformed = next(r for r in dlq if r["headers"]["dlq.error.reason"] == "malformed_json")
    assert malformed["value"] == b"{not json"


class ConflictsForever(PatrolCounter):
    """A patrol by worker ``clash`` always hits a unique violation (a conflict that never resolves)."""

    @handles(LogPatrol)
    async def log_patrol(self, uow, cmd):
        if cmd.grid_worker_id == "clash":
            raise asyncpg.UniqueViolationError("duplicate key value violates unique constraint")
        await super().log_patrol(uow, cmd)


async def test_a_message_that_keeps_conflicting_is_dead_lettered_after_bounded_retries(kafka, pool):
    first, clash, after = (command(patrol(grid_id="110105001002001", worker=w)) for w in ("gw", "clash", "gw"))
    async with Pipeline(kafka, pool, handler=ConflictsForever()) as p:
        await send(kafka, GRID.intake.name, first, clash, after)
        await p.wait_processed(3, timeout=60)
        dlq = await read_all(kafka, GRID.dlq.name, min_count=1)
        assert p.consumer.stalled_seconds() == 0.0
    assert await counts(pool) == {"110105001002001": 2}
    assert [r["headers"]["dlq.error.reason"] for r in dlq] == ["conflict"]
    assert dlq[0]["value"]["id"] == clash.id


async def test_a_batch_that_keeps_failing_outside_the_handlers_ends_in_the_dead_letter_topic(kafka, pool):
    async with Pipeline(kafka, pool) as p:
        real_process = p.consumer._process
        calls = []

        async def failing(items, **kw):  # the kit's own writes keep failing for this batch
            calls.append(len(items))
            raise RuntimeError("the kit cannot write this batch")

        p.consumer._process = failing
        await send(kafka, GRID.intake.name, command(patrol()))
        await p.wait_processed(1, timeout=60)
        dlq = await read_all(kafka, GRID.dlq.name, min_count=1)
        p.consumer._process = real_process
    assert len(calls) == BatchConsumer.MAX_FAILURES
    assert [r["headers"]["dlq.error.reason"] for r in dlq] == ["retries_exhausted"]
    assert "the kit cannot write this batch" in dlq[0]["headers"]["dlq.error.message"]


async def test_refused_command_yields_a_rejection_event(kafka, pool):
    refused = command(LogPatrol(patrol_id="p-1", grid_id="110105001002001", grid_worker_id="gw",
                                started_at=T0, ended_at=T0 - timedelta(minutes=1)))
    async with Pipeline(kafka, pool) as p:
        await send(kafka, GRID.intake.name, refused)
        await p.wait_processed(1)
        rej = of_type(await read_all(kafka, GRID.rejections.name, min_count=1), "grid.command.rejected.v1")
    assert len(rej) == 1
    assert rej[0]["data"] == {"command_id": refused.id, "command_type": "grid.patrol.log.v1",
                              "reason": "ended_before_started", "detail": "a patrol cannot end before it starts",
                              "field": "ended_at"}
    assert rej[0]["causationid"] == refused.id
    assert await counts(pool) == {}


async def test_a_redelivered_poison_record_is_dead_lettered_once(kafka, pool):
    async with Pipeline(kafka, pool, group="g1") as p:
        p.consumer._commit_offsets = lambda *args: asyncio.sleep(0)  # offsets never committed
        await produce(kafka, GRID.intake.name, [("k", b"garbage")])
        await p.wait_processed(1)
    async with Pipeline(kafka, pool, group="g1") as p2:
        await p2.wait_processed(1)
        dlq = await read_all(kafka, GRID.dlq.name, min_count=1)
    assert len(dlq) == 1


async def test_outbox_records_reach_kafka_in_commit_order_per_key(kafka, pool):
    keys = [f"agg-{i}" for i in range(5)]
    async with pool.acquire() as conn:
        await conn.execute("CREATE TABLE seqs (k text PRIMARY KEY, n int NOT NULL)")
        await conn.executemany("INSERT INTO seqs VALUES ($1, 0)", [(k,) for k in keys])

    async def writer(worker: int) -> None:
        for i in range(40):
            k = keys[(worker + i) % len(keys)]
            async with pool.acquire() as conn, conn.transaction():
                n = await conn.fetchval("UPDATE seqs SET n = n + 1 WHERE k = $1 RETURNING n", k)  # row lock
                await asyncio.sleep(0.001)
                await write_outbox(conn, [OutboxRecord(GRID.events.name, k, orjson.dumps({"k": k, "n": n}), "t")])

    producer = producer_for(kafka, "order-test")
    await producer.start()
    relay = OutboxRelay(pool, producer, service="grid", batch=37, poll_seconds=0.05)
    task = asyncio.ensure_future(relay.run())
    try:
        await asyncio.gather(*(writer(w) for w in range(5)))
        records = await read_all(kafka, GRID.events.name, min_count=200)
    finally:
        await relay.stop()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await producer.stop()
    assert len(records) == 200
    by_key: dict[str, list[int]] = {}
    for r in sorted(records, key=lambda r: (r["partition"], r["offset"])):
        by_key.setdefault(r["value"]["k"], []).append(r["value"]["n"])
    for k, ns in by_key.items():
        assert ns == list(range(1, 41)), k


async def test_relay_resumes_after_a_restart_without_losing_records(kafka, pool):
    async with pool.acquire() as conn:
        await write_outbox(conn, [OutboxRecord(GRID.events.name, f"k{i % 7}", orjson.dumps({"i": i}), "t")
                                  for i in range(3000)])
    producer = producer_for(kafka, "resume-test")
    await producer.start()
    try:
        first = OutboxRelay(pool, producer, service="grid", batch=1000, poll_seconds=0.05)
        assert await first.publish_once() == 1000  # then the worker stops
        left = await pool.fetchval("SELECT count(*) FROM outbox")
        assert left == 2000
        second = OutboxRelay(pool, producer, service="grid", batch=1000, poll_seconds=0.05)
        task = asyncio.ensure_future(second.run())
        records = await read_all(kafka, GRID.events.name, min_count=3000)
        await second.stop()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    finally:
        await producer.stop()
    assert sorted(r["value"]["i"] for r in records) == list(range(3000))
    assert await pool.fetchval("SELECT count(*) FROM outbox") == 0
    assert metrics.OUTBOX_BACKLOG.labels("grid")._value.get() == 0


async def test_a_relay_that_cannot_delete_what_it_published_does_not_publish_it_again(kafka, pool):
    """A read-only (or failing-over) database acknowledges nothing the relay deletes: the rows the
    broker already took are deleted once the database takes writes again, not republished every
    round meanwhile (a campaign saw one row 38 times on its topic during a read-only spell)."""
    async with pool.acquire() as conn:
        await write_outbox(conn, [OutboxRecord(GRID.events.name, f"k{i % 3}", orjson.dumps({"i": i}), "t")
                                  for i in range(20)])
        await conn.execute("""
            CREATE FUNCTION refuse_delete() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN RAISE EXCEPTION 'cannot execute DELETE in a read-only transaction' USING ERRCODE = '25006'; END $$;
            CREATE TRIGGER refuse_delete BEFORE DELETE ON outbox FOR EACH STATEMENT EXECUTE FUNCTION refuse_delete();
        """)
    producer = producer_for(kafka, "read-only-test")
    await producer.start()
    relay = OutboxRelay(pool, producer, service="grid", batch=100, poll_seconds=0.05)
    try:
        for _ in range(4):  # the first round publishes; none of them may publish again
            with pytest.raises(asyncpg.ReadOnlySQLTransactionError):
                await relay.publish_once()
        assert await pool.fetchval("SELECT count(*) FROM outbox") == 20
        await pool.execute("DROP TRIGGER refuse_delete ON outbox")
        assert await relay.publish_once() == 0  # the owed DELETE, then nothing left to read
        assert await pool.fetchval("SELECT count(*) FROM outbox") == 0
        records = await read_all(kafka, GRID.events.name, min_count=20)
    finally:
        await producer.stop()
    assert sorted(r["value"]["i"] for r in records) == list(range(20))


async def test_only_one_relay_publishes_at_a_time(kafka, pool):
    producer = producer_for(kafka, "leader-test")
    await producer.start()
    a = OutboxRelay(pool, producer, service="grid", batch=10, poll_seconds=0.05)
    b = OutboxRelay(pool, producer, service="grid", batch=10, poll_seconds=0.05)
    ta = asyncio.ensure_future(a.run())
    await asyncio.sleep(0.3)
    tb = asyncio.ensure_future(b.run())
    try:
        async with pool.acquire() as conn:
            await write_outbox(conn, [OutboxRecord(GRID.events.name, "k", orjson.dumps({"i": i}), "t") for i in range(50)])
        a.notify()
        records = await read_all(kafka, GRID.events.name, min_count=50)
        assert len(records) == 50
        assert a.published == 50 and b.published == 0
    finally:
        for r in (a, b):
            await r.stop()
        for t in (ta, tb):
            t.cancel()
        await asyncio.gather(ta, tb, return_exceptions=True)
        await producer.stop()


class GatedCounter(PatrolCounter):
    """Blocks on a patrol by worker ``slow`` until the test opens the gate."""

    def __init__(self):
        self.entered, self.gate = asyncio.Event(), asyncio.Event()

    @prepares(LogPatrol)
    async def wait_for_the_gate(self, uow, commands):
        if any(c.grid_worker_id == "slow" for c in commands):
            self.entered.set()
            await self.gate.wait()


async def test_a_stuck_lane_holds_back_only_its_own_partitions(kafka, pool):
    from aiokafka.partitioner import DefaultPartitioner
    from aiokafka import TopicPartition

    handler = GatedCounter()
    slow_grid = "110105001002001"
    grids = [f"110105001003{i:03d}" for i in range(1, 41)]
    async with Pipeline(kafka, pool, group="lanes", handler=handler, lanes=2) as p:
        first = command(patrol(grid_id=slow_grid, worker="slow"))
        slow_ids = [first.id]
        await send(kafka, GRID.intake.name, first)
        await asyncio.wait_for(handler.entered.wait(), 20)
        for _ in range(6):  # several batches, each with records for both lanes
            envs = [command(patrol(grid_id=g)) for g in grids + [slow_grid]]
            slow_ids.append(envs[-1].id)
            await send(kafka, GRID.intake.name, *envs)
            await asyncio.sleep(0.3)
        parts = sorted(p.consumer.consumer.partitions_for_topic(GRID.intake.name))
        part = DefaultPartitioner()
        lane_of = lambda g: p.consumer._lane_of.get((GRID.intake.name, part(g.encode(), parts, parts)))
        stuck = lane_of(slow_grid)
        free = [g for g in grids if lane_of(g) != stuck]
        assert free, "every grid landed on the stuck lane"
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 20
        while True:
            now = await counts(pool)
            if sum(now.get(g, 0) for g in free) >= 6 * len(free):
                break
            assert loop.time() < deadline, "the other lane was held back by the stuck one"
            await asyncio.sleep(0.1)
        stuck_tp = TopicPartition(GRID.intake.name, part(slow_grid.encode(), parts, parts))
        assert await p.consumer.consumer.committed(stuck_tp) is None  # nothing committed past the stuck batch
        handler.gate.set()
        await p.wait_processed(1 + 6 * (len(grids) + 1))
        total = await counts(pool)
        assert total[slow_grid] == 7 and all(total[g] == 6 for g in grids)
        loop_deadline = loop.time() + 10
        while await p.consumer.consumer.committed(stuck_tp) is None:  # then the offsets follow
            assert loop.time() < loop_deadline, "offsets never committed"
            await asyncio.sleep(0.1)
        events = of_type(await read_all(kafka, GRID.events.name, min_count=len(slow_ids) + 6 * len(grids)),
                         "grid.patrol.logged.v1")
    assert [e["causationid"] for e in events if e["causationid"] in slow_ids] == slow_ids  # the key's order


async def test_claim_returns_exactly_the_new_keys_for_one_source_or_several(pool):
    from services.kit.consumer import claim

    async with pool.acquire() as conn:
        async with conn.transaction():
            assert await claim(conn, [("/a", "1"), ("/a", "2")]) == {("/a", "1"), ("/a", "2")}
        async with conn.transaction():  # one source, some seen before
            assert await claim(conn, [("/a", "2"), ("/a", "3")]) == {("/a", "3")}
        async with conn.transaction():  # several sources, the same id under another source is new
            assert await claim(conn, [("/a", "3"), ("/b", "3"), ("/b", "4")]) == {("/b", "3"), ("/b", "4")}
        async with conn.transaction():  # a key twice in one call counts once
            assert await claim(conn, [("/a", "5"), ("/a", "5")]) == {("/a", "5")}
            assert await claim(conn, [("/c", "1"), ("/a", "6"), ("/c", "1")]) == {("/c", "1"), ("/a", "6")}
        async with conn.transaction():
            assert await claim(conn, [("/a", "1"), ("/b", "4")]) == set()
        assert await claim(conn, []) == set()
