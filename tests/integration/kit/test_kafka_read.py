"""Reading partitions to their end against the embedded broker: the end is where the broker answers
with nothing, however short the reader's polls; a broker that answers nothing is a clear error,
never an end."""
from __future__ import annotations

import asyncio
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


@pytest.fixture(scope="module")
async def filled():
    """A broker of its own with a topic of ``RECORDS`` records over ``PARTITIONS`` partitions:
    (broker, topic, records per partition)."""
    broker = EmbeddedKafka().start()
    try:
        admin = AIOKafkaAdminClient(bootstrap_servers=broker.bootstrap)
        await admin.start()
        try:
            await admin.create_topics([NewTopic("read.to.end", num_partitions=PARTITIONS, replication_factor=1)])
        finally:
            await admin.close()
        producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, linger_ms=5)
        await producer.start()
        try:
            counts = [0] * PARTITIONS
            for i in range(RECORDS):
                p = i * 7 % PARTITIONS
                await producer.send("read.to.end", f"r{i}:".encode().ljust(1000, b"."), partition=p)
                counts[p] += 1
            await producer.flush()
        finally:
            await producer.stop()
        yield broker, "read.to.end", counts
    finally:
        broker.stop()


async def _consumer(bootstrap: str, fetch_max_bytes: int = 50 * 1024 * 1024,
                    max_partition_fetch_bytes: int = 4096) -> AIOKafkaConsumer:
    c = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                         auto_offset_reset="earliest", fetch_max_wait_ms=100, fetch_max_bytes=fetch_max_bytes,
                         max_partition_fetch_bytes=max_partition_fetch_bytes)
    await c.start()
    return c


@pytest.mark.parametrize("poll_ms, fetch_max_bytes, max_partition_fetch_bytes", [
    (1, 50 << 20, 4096), (300, 50 << 20, 4096), (300, 64 << 10, 1 << 20)])
async def test_every_record_is_read_however_short_the_polls(filled, poll_ms, fetch_max_bytes,
                                                           max_partition_fetch_bytes):
    """Polls of 1 ms time out long before the broker answers (a reader that stops after two empty
    polls would stop at once); the partitions are still read to their last record, with fetches
    of 4 kB a partition so that each takes many answers. And with answers of 64 kB in all, which
    the broker fills with some partitions' records, answering the others with none (a reader that
    took one partition's empty part of an answer for its end read 1,160 of the 4,000 records)."""
    broker, topic, counts = filled
    c = await _consumer(broker.bootstrap, fetch_max_bytes, max_partition_fetch_bytes)
    try:
        tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        c.assign(tps)
        for tp in tps:
            c.seek(tp, 0)
        seen: dict[TopicPartition, list[int]] = {tp: [] for tp in tps}
        ends = await read_to_end(c, tps, on_records=lambda tp, rs: seen[tp].extend(r.offset for r in rs),
                                 poll_ms=poll_ms, max_records=50)
        assert ends == {tp: counts[tp.partition] for tp in tps}
        assert {tp: offsets for tp, offsets in seen.items()} == {tp: list(range(counts[tp.partition])) for tp in tps}
        assert not c.paused()  # those paused at their end are resumed
    finally:
        await c.stop()


async def test_the_consumers_other_partitions_wait_and_are_resumed(filled):
    broker, topic, counts = filled
    c = await _consumer(broker.bootstrap)
    try:
        tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        c.assign(tps)
        for tp in tps:
            c.seek(tp, 0)
        c.pause(tps[3])  # paused by its owner: stays so
        ends = await read_to_end(c, tps[:2], poll_ms=1)
        assert ends == {tp: counts[tp.partition] for tp in tps[:2]}
        assert c.paused() == {tps[3]}
        assert {tp: await c.position(tp) for tp in tps[2:]} == {tps[2]: 0, tps[3]: 0}  # nothing read there
        got = await c.getmany(tps[2], timeout_ms=5000, max_records=10)
        assert [r.offset for r in got[tps[2]]] == list(range(10))
    finally:
        await c.stop()


async def test_a_read_from_the_middle_or_the_end_ends_where_the_records_do(filled):
    broker, topic, counts = filled
    c = await _consumer(broker.bootstrap)
    try:
        tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        c.assign(tps)
        c.seek(tps[0], counts[0] // 2)
        c.seek(tps[1], counts[1])  # at its end: nothing to read
        for tp in tps[2:]:
            c.seek(tp, counts[tp.partition] - 1)
        n = []
        ends = await read_to_end(c, tps, on_records=lambda tp, rs: n.append(len(rs)), poll_ms=1)
        assert ends == {tp: counts[tp.partition] for tp in tps}
        assert sum(n) == counts[0] - counts[0] // 2 + 0 + (PARTITIONS - 2)
    finally:
        await c.stop()


async def test_a_broker_that_stops_answering_for_a_while_is_waited_for(filled):
    """The broker stops answering (paused) once the read has begun, for longer than several polls:
    polls that come back empty meanwhile are no end, and the read goes on to the last record when
    it answers again. (A reader that took two empty polls of 300 ms as the end stopped here.)"""
    broker, topic, counts = filled
    c = await _consumer(broker.bootstrap)
    try:
        tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        c.assign(tps)
        for tp in tps:
            c.seek(tp, 0)
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
    finally:
        await c.stop()


async def test_a_broker_that_answers_nothing_is_an_error_not_an_end(filled):
    """A paused broker keeps its connections and answers nothing: the read gives up with what it
    read, and says which partitions it did not finish."""
    broker, topic, counts = filled
    c = await _consumer(broker.bootstrap)
    try:
        tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        c.assign(tps)
        for tp in tps:
            c.seek(tp, 0)
        await c.position(tps[0])
        os.kill(broker.proc.pid, signal.SIGSTOP)
        try:
            with pytest.raises(ReadTimedOut) as e:
                await read_to_end(c, tps, poll_ms=50, give_up=2.0)
        finally:
            os.kill(broker.proc.pid, signal.SIGCONT)
        assert e.value.ends == {} and set(e.value.at) == set(tps)
        assert "no answer from the broker" in str(e.value)
    finally:
        await c.stop()
