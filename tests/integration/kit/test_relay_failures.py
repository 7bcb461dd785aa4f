"""A relay that cannot publish counts its failures, whatever keeps it from publishing: a paused
broker (a produce that waits, and would wait 30 s before the producer gives up) and a database
that is away (the relay's tries at its leadership). And a round that did not finish (a relay
killed between the broker's ack and its DELETE, a produce that timed out on a paused broker that
wrote it after all) does not put a record on its topic twice: the next round reads back."""
from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter

import asyncpg
import orjson
import pytest

from schemas.topics import GRID
from services.kit.infra import EmbeddedKafka, free_port
from services.kit.outbox import OutboxRecord, OutboxRelay, producer_for, reader_for
from services.kit.outbox import write as write_outbox
from services.kit.provision import provision
from tests.support.kafka import read_all
from tests.support.procs import stopped

pytestmark = pytest.mark.integration


class Observer:
    """The relay's observer, as the relay process's reporter is: what it counted."""

    def __init__(self):
        self.failures = 0
        self.records = 0
        self.found = 0  # rows a read-back found on their topic

    def published(self, counts) -> None:
        self.records += sum(counts.values())

    def failed(self) -> None:
        self.failures += 1

    def stats(self, backlog: int, oldest_age: float) -> None:
        pass

    def read_back(self, n: int) -> None:
        self.found += n


async def until(predicate, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.1)


def rows(start: int, n: int) -> list[OutboxRecord]:
    return [OutboxRecord(GRID.events.name, f"k{i % 3}", orjson.dumps({"i": i}), "t") for i in range(start, start + n)]


@contextlib.asynccontextmanager
async def own_broker(client_id: str, **producer_kw):
    """A broker of the test's own (a test pauses it), its topics in two partitions, and the
    relay's producer on it: ``(broker, producer)``."""
    broker = EmbeddedKafka().start()
    producer = None
    try:
        await provision(broker.bootstrap, partitions=2)
        producer = producer_for(broker.bootstrap, client_id, **producer_kw)
        await producer.start()
        yield broker, producer
    finally:
        if producer is not None:
            await producer.stop()
        broker.stop()


@contextlib.asynccontextmanager
async def running(*relays: OutboxRelay):
    """The relays' ``run()``; stopped (each gives its leadership's connection back) and cancelled after."""
    tasks = [asyncio.ensure_future(r.run()) for r in relays]
    try:
        yield
    finally:
        for r in relays:
            await r.stop()
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def outbox_left(pool) -> int:
    async with pool.acquire() as conn:
        return await conn.fetchval("SELECT count(*) FROM outbox")


async def test_a_relay_waiting_on_a_paused_broker_counts_a_failure_each_stall_and_publishes_when_it_answers(pool):
    seen = Observer()
    async with own_broker("stall-test") as (broker, producer):
        relay = OutboxRelay(pool, producer, service="grid", batch=100, poll_seconds=0.05, observer=seen,
                            stall_seconds=0.5)
        async with running(relay):
            async with pool.acquire() as conn:
                await write_outbox(conn, rows(0, 10))
            await until(lambda: seen.records == 10)
            assert seen.failures == 0

            with stopped(broker.proc.pid):  # the broker holds its connections and answers nothing
                async with pool.acquire() as conn:
                    await write_outbox(conn, rows(10, 10))
                relay.notify()
                await asyncio.sleep(2.8)
                assert seen.failures >= 4, seen.failures  # one each 0.5 s of waiting, long before the 30 s timeout
                assert seen.records == 10
            # the round that waited has ended (its records counted, its rows deleted): a failure it
            # counted while finishing is its own
            await until(lambda: seen.records == 20 and not relay._in_round)  # noqa: SLF001
            stalled = seen.failures
            records = await read_all(broker.bootstrap, GRID.events.name, min_count=20)
            assert sorted({r["value"]["i"] for r in records}) == list(range(20))
            await asyncio.sleep(1.0)
            assert seen.failures == stalled  # publishing again: no more failures


async def test_a_stopping_relay_publishes_what_was_committed_after_its_last_round(pool):
    """The worker stops its relay after its consumers and timers: rows they committed since the
    relay's last round (no wake-up reached it, its next poll is a minute away) are published by
    the stop, not left for the next worker."""
    seen = Observer()
    async with own_broker("drain-test") as (broker, producer):
        relay = OutboxRelay(pool, producer, service="grid", batch=4, poll_seconds=60, observer=seen)
        async with running(relay):
            async with pool.acquire() as conn:
                await write_outbox(conn, rows(0, 3))
            relay.notify()
            await until(lambda: seen.records == 3 and not relay._in_round)  # noqa: SLF001
            async with pool.acquire() as conn:
                await write_outbox(conn, rows(3, 9))  # more than a batch, and no notify
            await asyncio.sleep(0.3)
            assert seen.records == 3
            await relay.stop()
            assert seen.records == 12
            assert await outbox_left(pool) == 0
        records = await read_all(broker.bootstrap, GRID.events.name, min_count=12)
        assert sorted({r["value"]["i"] for r in records}) == list(range(12))


async def test_a_relay_whose_database_is_away_counts_each_try_at_its_leadership():
    nowhere = await asyncpg.create_pool(f"postgresql://nobody@127.0.0.1:{free_port()}/none", min_size=0, max_size=1)
    seen = Observer()
    relay = OutboxRelay(nowhere, None, service="grid", observer=seen)  # type: ignore[arg-type]
    task = asyncio.ensure_future(relay.run())
    try:
        await asyncio.sleep(2.5)
        assert seen.failures >= 2, seen.failures  # one a second: before, none at all
    finally:
        await relay.stop()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await nowhere.close()


async def _published_once(bootstrap: str, n: int) -> None:
    """The topic holds records 0..n-1, each once (read to its end: a copy would come after)."""
    records = await read_all(bootstrap, GRID.events.name, min_count=n + 1, timeout=3.0)
    counts = Counter(r["value"]["i"] for r in records)
    assert sorted(counts) == list(range(n))
    assert [i for i, c in counts.items() if c > 1] == []


async def test_a_relay_leading_after_one_killed_mid_round_sends_none_of_its_records_again(pool):
    """The killed relay had sent the first 20 of 30 rows (the broker acknowledged them) and died
    before deleting them; the relay that leads next publishes only the other 10."""
    async with own_broker("killed-test") as (broker, producer):
        async with pool.acquire() as conn:
            await write_outbox(conn, rows(0, 30))
            pending = await conn.fetch("SELECT seq, topic, key, value, headers, message_type, "
                                       "(extract(epoch FROM created_at) * 1000)::bigint FROM outbox ORDER BY seq")
        killed = OutboxRelay(pool, producer, service="grid")
        await killed._send(await killed._wire(pending[:20]))  # noqa: SLF001 (acknowledged; the DELETE never ran)

        relay = OutboxRelay(pool, producer, service="grid", batch=100,
                            reader=reader_for(broker.bootstrap, "killed-test-check"))
        assert await relay.publish_once() == 30
        assert relay.read_back == 20 and relay.published == 10
        assert await outbox_left(pool) == 0
        await _published_once(broker.bootstrap, 30)

        # the check found rows there: the next round checks again, and one that finds none stops checking
        async with pool.acquire() as conn:
            await write_outbox(conn, rows(30, 5))
        assert relay._unsure  # noqa: SLF001
        assert await relay.publish_once() == 5
        assert relay.read_back == 20 and not relay._unsure  # noqa: SLF001
        await _published_once(broker.bootstrap, 35)


async def until_published(pool, timeout: float = 40.0) -> None:
    deadline = time.monotonic() + timeout
    while await outbox_left(pool):
        assert time.monotonic() < deadline, "the outbox was not published"
        await asyncio.sleep(0.1)


async def test_a_produce_that_timed_out_on_a_paused_broker_and_was_written_after_all_is_not_sent_again(pool):
    """The broker is paused with a round's produce in its socket; the producer gives the send up
    (here after 2 s rather than 30 s), and the broker, resumed, writes it. The relay's next round
    finds those records on the topic and deletes their rows instead of sending them again."""
    seen = Observer()
    async with own_broker("paused-test", request_timeout_ms=2000) as (broker, producer):
        relay = OutboxRelay(pool, producer, service="grid", batch=100, poll_seconds=0.05, observer=seen,
                            stall_seconds=0.5, reader=reader_for(broker.bootstrap, "paused-test-check"))
        async with running(relay):
            async with pool.acquire() as conn:
                await write_outbox(conn, rows(0, 10))
            await until(lambda: seen.records == 10)
            with stopped(broker.proc.pid):
                async with pool.acquire() as conn:
                    await write_outbox(conn, rows(10, 10))
                relay.notify()
                await asyncio.sleep(3.5)  # the produce timed out at 2 s: the round failed
                assert seen.records == 10
            await until_published(pool)
            await _published_once(broker.bootstrap, 20)
            assert relay.read_back == 10 and seen.found == 10  # and kit_outbox_read_back_total


async def test_a_relay_whose_lock_session_was_ended_stops_publishing_while_another_leads(pool):
    """The session that holds a relay's lock is ended by the server (an operator's
    pg_terminate_backend, a connection dropped). The lock is gone, and the other worker's relay
    takes the lead; the first relay, which could get a fresh connection from its pool for its
    next round, must not go on publishing as well: both would send the same rows."""
    async with own_broker("split-test") as (broker, producer):
        first, second = (OutboxRelay(pool, producer, service="grid", batch=100, poll_seconds=0.05,
                                     reader=reader_for(broker.bootstrap, "split-test-check")) for _ in range(2))
        async with running(first):
            await until(lambda: first._leading)  # noqa: SLF001
            async with running(second):
                async with pool.acquire() as conn:
                    await write_outbox(conn, rows(0, 10))
                first.notify()
                await until(lambda: first.published == 10)
                assert second.published == 0

                async with pool.acquire() as conn:
                    assert await conn.fetchval("SELECT pg_terminate_backend($1)",
                                               first._lock_conn.get_server_pid())  # noqa: SLF001
                await until(lambda: second._leading, timeout=10)  # noqa: SLF001
                for start in range(10, 40, 5):
                    async with pool.acquire() as conn:
                        await write_outbox(conn, rows(start, 5))
                    first.notify()
                    second.notify()
                    await asyncio.sleep(0.1)
                await until_published(pool, timeout=20)
                assert first.published == 10 and second.published == 30
                await _published_once(broker.bootstrap, 40)
