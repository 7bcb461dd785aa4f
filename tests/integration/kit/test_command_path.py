"""The kit's command path against real PostgreSQL: typed handlers, batch steps, a savepoint
per message, aggregate sets, advisory locks and exclusive timers."""
from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from pydantic import BaseModel, ConfigDict

from schemas.envelope import Message, envelope_for
from schemas.grid import LogPatrol, PatrolLogged
from services.kit.aggregates import AggregateStore, StaleAggregate
from services.kit.errors import Rejected
from services.kit.handlers import Handler, dispatch, handles, prepares
from services.kit.locks import advisory_locks, try_advisory_lock
from services.kit.outbox import write as write_outbox
from services.kit.uow import UnitOfWork


pytestmark = pytest.mark.integration

T0 = datetime(2026, 11, 22, 8, 0, tzinfo=timezone(timedelta(hours=8)))


class Tally(BaseModel):
    model_config = ConfigDict(frozen=True)
    n: int = 0


TALLIES = AggregateStore(Tally, kind="test.tally")


class Recorder(Handler):
    """Counts patrols per grid twice (a row and an aggregate), emits, and misbehaves on cue:
    ``refuse-late`` refuses after its writes, ``boom-late`` faults after them."""

    service = "grid"

    def __init__(self):
        self.batches: list[list[str]] = []
        self.effects: list[str] = []

    @prepares(LogPatrol)
    async def load(self, uow: UnitOfWork, commands) -> None:
        self.batches.append([c.patrol_id for c in commands])
        await TALLIES.of(uow).load(c.grid_id for c in commands)

    @handles(LogPatrol)
    async def log_patrol(self, uow: UnitOfWork, cmd: LogPatrol) -> None:
        assert uow.message is not None and uow.message.payload is cmd
        await uow.conn.execute("INSERT INTO patrol_counts (grid_id, n) VALUES ($1, 1) "
                               "ON CONFLICT (grid_id) DO UPDATE SET n = patrol_counts.n + 1", cmd.grid_id)
        tallies = TALLIES.of(uow)
        tallies.put(cmd.grid_id, Tally(n=(tallies.get(cmd.grid_id) or Tally()).n + 1))
        uow.emit(PatrolLogged(**cmd.model_dump(exclude={"notes", "route"})))
        uow.after_commit(lambda: self.effects.append(cmd.patrol_id))
        if cmd.grid_worker_id == "refuse-late":
            raise Rejected("refused_late", "refused after writing")
        if cmd.grid_worker_id == "boom-late":
            raise RuntimeError("fault after writing")


def message(worker: str = "gw-1", grid: str = "110105001002003") -> Message:
    cmd = LogPatrol(patrol_id=str(uuid.uuid4()), grid_id=grid, grid_worker_id=worker,
                    started_at=T0, ended_at=T0 + timedelta(minutes=30))
    return Message(envelope=envelope_for(cmd, source="/apps/test", id=str(uuid.uuid4()), time=T0), payload=cmd)


async def run_batch(pool, handler: Handler, messages: list[Message]):
    """What the consumer does with a batch: dispatch, flush, outbox, commit."""
    async with pool.acquire() as conn, conn.transaction():
        uow = UnitOfWork(conn, "grid")
        faults = await dispatch(handler, uow, messages)
        await uow.flush()
        await write_outbox(conn, uow.records)
    uow.committed()
    return uow, faults


async def tally(pool, grid: str) -> tuple[int, int] | None:
    async with pool.acquire() as conn:
        found = await TALLIES.read(conn, [grid], lock=False)
    return (found[grid][0], found[grid][1].n) if grid in found else None


async def test_a_batch_step_runs_once_with_the_batch_payloads_in_order(pool):
    h = Recorder()
    msgs = [message(), message(grid="110105001002004"), message()]
    uow, faults = await run_batch(pool, h, msgs)
    assert faults == []
    assert h.batches == [[m.payload.patrol_id for m in msgs]]
    assert [e.causationid for e in uow.emitted] == [m.id for m in msgs]
    assert await tally(pool, "110105001002003") == (1, 2)  # saved once, at version 1


async def test_a_refusal_after_writes_undoes_exactly_that_command(pool):
    h = Recorder()
    ok1, late, ok2 = message(), message("refuse-late"), message()
    uow, faults = await run_batch(pool, h, [ok1, late, ok2])
    assert faults == []
    assert await pool.fetchval("SELECT n FROM patrol_counts WHERE grid_id = '110105001002003'") == 2
    assert await tally(pool, "110105001002003") == (1, 2)
    assert [e.type for e in uow.emitted] == ["grid.patrol.logged.v1", "grid.command.rejected.v1",
                                             "grid.patrol.logged.v1"]
    assert uow.emitted[1].data["command_id"] == late.id
    assert h.effects == [ok1.payload.patrol_id, ok2.payload.patrol_id]


async def test_a_fault_after_writes_leaves_no_trace_of_the_message(pool):
    h = Recorder()
    ok, boom = message(), message("boom-late")
    uow, faults = await run_batch(pool, h, [boom, ok])
    assert [(m.id, type(e)) for m, e in faults] == [(boom.id, RuntimeError)]
    assert await pool.fetchval("SELECT n FROM patrol_counts WHERE grid_id = '110105001002003'") == 1
    assert await tally(pool, "110105001002003") == (1, 1)
    assert [e.causationid for e in uow.emitted] == [ok.id]
    assert await pool.fetchval("SELECT count(*) FROM outbox") == 1
    assert h.effects == [ok.payload.patrol_id]  # the faulty message's after-commit effect is gone too


async def test_an_aggregate_is_saved_with_its_version_and_a_stale_save_is_a_conflict(pool):
    h = Recorder()
    await run_batch(pool, h, [message()])
    await run_batch(pool, h, [message(), message()])
    assert await tally(pool, "110105001002003") == (2, 3)
    async with pool.acquire() as conn, conn.transaction():
        with pytest.raises(StaleAggregate):
            await TALLIES.write(conn, {"110105001002003": (1, Tally(n=99))})  # it is at version 2


async def test_nested_savepoints_undo_only_the_inner_block(pool):
    async with pool.acquire() as conn, conn.transaction():
        uow = UnitOfWork(conn, "grid")
        async with uow.savepoint():
            await uow.conn.execute("INSERT INTO patrol_counts VALUES ('a', 1)")
            with pytest.raises(Rejected):
                async with uow.savepoint():
                    await uow.conn.execute("INSERT INTO patrol_counts VALUES ('b', 1)")
                    raise Rejected("no")
            async with uow.conn.transaction():
                await uow.conn.execute("INSERT INTO patrol_counts VALUES ('c', 1)")
        rows = await conn.fetch("SELECT grid_id FROM patrol_counts ORDER BY grid_id")
    assert [r[0] for r in rows] == ["a", "c"]


async def test_a_message_that_never_touches_the_database_opens_no_savepoint(pool):
    async with pool.acquire() as conn, conn.transaction():
        uow = UnitOfWork(conn, "grid")
        async with uow.savepoint():
            guard = uow.conn
        assert guard._tx is None


async def test_an_exclusive_duty_runs_on_one_worker_at_a_time(pool):
    a, b = await pool.acquire(), await pool.acquire()
    try:
        async with a.transaction():
            assert await try_advisory_lock(a, "timer:grid:overdue")
            async with b.transaction():
                assert not await try_advisory_lock(b, "timer:grid:overdue")
                assert await try_advisory_lock(b, "timer:grid:other")
        async with b.transaction():  # released at the end of a's transaction
            assert await try_advisory_lock(b, "timer:grid:overdue")
    finally:
        await pool.release(a)
        await pool.release(b)


async def test_advisory_locks_on_overlapping_sets_do_not_deadlock(pool):
    async def lock(keys):
        async with pool.acquire() as conn, conn.transaction():
            await advisory_locks(conn, keys)
            await asyncio.sleep(0.05)

    await asyncio.wait_for(asyncio.gather(*(lock(["x", "y", "z"][::d]) for d in (1, -1, 1, -1))), 10)


def test_a_class_is_handled_once_per_class_and_a_subclass_takes_it_over():
    with pytest.raises(TypeError, match="LogPatrol is handled by"):
        class Twice(Handler):
            @handles(LogPatrol)
            async def a(self, uow, cmd): ...

            @handles(LogPatrol)
            async def b(self, uow, cmd): ...

    class Sub(Recorder):
        @handles(LogPatrol)
        async def other(self, uow, cmd): ...

    sub = Sub()
    assert sub.handler_for(message().payload) == sub.other
    assert Recorder().types == frozenset({"grid.patrol.logged.v1".replace("logged", "log")})


async def test_the_effects_a_refusal_carries_run_after_the_commit_while_the_commands_own_are_undone(pool):
    class RefusesWithAMetric(Recorder):
        @handles(LogPatrol)
        async def log_patrol(self, uow, cmd):
            uow.after_commit(lambda: self.effects.append("undone"))
            raise Rejected("no_way").after_commit(lambda: self.effects.append("refusal counted"))

    h = RefusesWithAMetric()
    uow, _ = await run_batch(pool, h, [message()])
    assert h.effects == ["refusal counted"]
    assert [e.type for e in uow.emitted] == ["grid.command.rejected.v1"]
