"""Reading partitions to their end against the embedded broker: the end is where whole fetch answers
bring nothing more, however short the reader's polls and however full the answers; a broker that
answers nothing is a clear error, never an end."""
from __future__ import annotations

import asyncio
import contextlib
import os
import signal

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from services.kit.infra import EmbeddedKafka
from services.kit.kafkaread import ReadTimedOut, read_to_end

pytestmark = pytest.mark.integration

PARTITIONS = 4
RECORDS = 4000
TOPIC = "read.to.end"


@pytest.fixture(scope="module")
async def filled():
    """A broker of its own with a topic of ``RECORDS`` records of 1 kB over ``PARTITIONS``
    partitions: (broker, records per partition)."""
    broker = EmbeddedKafka().start()
    try:
        admin = AIOKafkaAdminClient(bootstrap_servers=broker.bootstrap)
        await admin.start()
        try:
            await admin.create_topics([NewTopic(TOPIC, num_partitions=PARTITIONS, replication_factor=1)])
        finally:
            await admin.close()
        producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, linger_ms=5)
        await producer.start()
        try:
            counts = [0] * PARTITIONS
            for i in range(RECORDS):
                p = i * 7 % PARTITIONS
                await producer.send(TOPIC, f"r{i}:".encode().ljust(1000, b"."), partition=p)
                counts[p] += 1
            await producer.flush()
        finally:
            await producer.stop()
        yield broker, counts
    finally:
        broker.stop()


@contextlib.asynccontextmanager
async def _reading(bootstrap: str, at: dict[int, int] | None = None, *, fetch_max_bytes: int = 50 << 20,
                   max_partition_fetch_bytes: int = 4096):
    """A consumer with every partition of the topic assigned, each at ``at``'s offset (else 0):
    (consumer, partitions)."""
    c = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                         auto_offset_reset="earliest", fetch_max_wait_ms=100, fetch_max_bytes=fetch_max_bytes,
                         max_partition_fetch_bytes=max_partition_fetch_bytes)
    await c.start()
    try:
        tps = [TopicPartition(TOPIC, p) for p in range(PARTITIONS)]
        c.assign(tps)
        for tp in tps:
            c.seek(tp, (at or {}).get(tp.partition, 0))
        yield c, tps
    finally:
        await c.stop()


@pytest.mark.parametrize("poll_ms, fetch_max_bytes, max_partition_fetch_bytes", [
    (1, 50 << 20, 4096), (300, 50 << 20, 4096), (300, 64 << 10, 1 << 20)])
async def test_every_record_is_read_however_short_the_polls(filled, poll_ms, fetch_max_bytes,
                                                           max_partition_fetch_bytes):
    """Polls of 1 ms time out long before the broker answers (a reader that stops after two empty
    polls would stop at once); the partitions are still read to their last record, with fetches
    of 4 kB a partition so that each takes many answers. And with answers of 64 kB in all, which
    the broker fills with some partitions' records, answering the others with none (a reader that
    took one partition's empty part of an answer for its end read 1,160 of the 4,000 records)."""
    broker, counts = filled
    async with _reading(broker.bootstrap, fetch_max_bytes=fetch_max_bytes,
                        max_partition_fetch_bytes=max_partition_fetch_bytes) as (c, tps):
        seen: dict[TopicPartition, list[int]] = {tp: [] for tp in tps}
        ends = await read_to_end(c, tps, on_records=lambda tp, rs: seen[tp].extend(r.offset for r in rs),
                                 poll_ms=poll_ms, max_records=50)
        assert ends == {tp: counts[tp.partition] for tp in tps}
        assert {tp: offsets for tp, offsets in seen.items()} == {tp: list(range(counts[tp.partition])) for tp in tps}
        assert not c.paused()  # those paused at their end are resumed


async def test_the_consumers_other_partitions_wait_and_are_resumed(filled):
    broker, counts = filled
    async with _reading(broker.bootstrap) as (c, tps):
        c.pause(tps[3])  # paused by its owner: stays so
        ends = await read_to_end(c, tps[:2], poll_ms=1)
        assert ends == {tp: counts[tp.partition] for tp in tps[:2]}
        assert c.paused() == {tps[3]}
        assert {tp: await c.position(tp) for tp in tps[2:]} == {tps[2]: 0, tps[3]: 0}  # nothing read there
        got = await c.getmany(tps[2], timeout_ms=5000, max_records=10)
        assert [r.offset for r in got[tps[2]]] == list(range(10))


async def test_a_read_from_the_middle_or_the_end_ends_where_the_records_do(filled):
    broker, counts = filled
    at = {0: counts[0] // 2, 1: counts[1]} | {p: counts[p] - 1 for p in range(2, PARTITIONS)}  # 1: at its end
    async with _reading(broker.bootstrap, at) as (c, tps):
        n = []
        ends = await read_to_end(c, tps, on_records=lambda tp, rs: n.append(len(rs)), poll_ms=1)
        assert ends == {tp: counts[tp.partition] for tp in tps}
        assert sum(n) == counts[0] - counts[0] // 2 + 0 + (PARTITIONS - 2)


async def test_a_broker_that_stops_answering_for_a_while_is_waited_for(filled):
    """The broker stops answering (paused) once the read has begun, for longer than several polls:
    polls that come back empty meanwhile are no end, and the read goes on to the last record when
    it answers again. (A reader that took two empty polls of 300 ms as the end stopped here.)"""
    broker, counts = filled
    async with _reading(broker.bootstrap) as (c, tps):
        begun = asyncio.Event()
        n = [0]

        def seen(tp, records):
            n[0] += len(records)
            begun.set()

        reading = asyncio.ensure_future(read_to_end(c, tps, on_records=seen, poll_ms=300, max_records=20))
        await begun.wait()
        os.kill(broker.proc.pid, signal.SIGSTOP)
        try:
            await asyncio.sleep(1.5)
            assert not reading.done()
        finally:
            os.kill(broker.proc.pid, signal.SIGCONT)
        assert await reading == {tp: counts[tp.partition] for tp in tps}
        assert n[0] == RECORDS


async def test_a_broker_that_answers_nothing_is_an_error_not_an_end(filled):
    """A paused broker keeps its connections and answers nothing: the read gives up with what it
    read, and says which partitions it did not finish."""
    broker, _ = filled
    async with _reading(broker.bootstrap) as (c, tps):
        await c.position(tps[0])
        os.kill(broker.proc.pid, signal.SIGSTOP)
        try:
            with pytest.raises(ReadTimedOut) as e:
                await read_to_end(c, tps, poll_ms=50, give_up=2.0)
        finally:
            os.kill(broker.proc.pid, signal.SIGCONT)
        assert e.value.ends == {} and set(e.value.at) == set(tps)
        assert "no answer from the broker" in str(e.value)
