"""Records no consumer can store are dead-lettered, never retried forever: a key holding NUL or
bytes that are not UTF-8, U+0000 in the envelope or its data, ids and sources too long for the
inbox. The records behind them on the same partition are handled; the dead letters keep the
original key and value byte for byte. On a real broker and PostgreSQL."""
from __future__ import annotations

import asyncio
import random
import shutil
import uuid
from datetime import datetime, timedelta, timezone

import asyncpg
import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.partitioner import DefaultPartitioner

from schemas.envelope import CONTENT_TYPE, encode, envelope_for
from schemas.grid import LogPatrol
from schemas.topics import GRID
from services.kit.consumer import claim
from services.kit.db import create_pool
from services.kit.migrations import KIT_MIGRATIONS, migrate

from .support import Pipeline

pytestmark = pytest.mark.integration

T0 = datetime(2026, 11, 22, 8, 0, tzinfo=timezone(timedelta(hours=8)))
GRID_ID = "110105001002001"
rnd = random.Random(11)


def astral(n: int) -> str:
    return "".join(chr(rnd.randrange(0x10000, 0x10FFFF)) for _ in range(n))


def patrol_command(worker: str = "gw-1", **env_over) -> bytes:
    payload = LogPatrol(patrol_id=str(uuid.uuid4()), grid_id=GRID_ID, grid_worker_id=worker,
                        started_at=T0, ended_at=T0 + timedelta(minutes=30))
    env = orjson.loads(encode(envelope_for(payload, source="/tests")))
    env.update(env_over)
    return orjson.dumps(env)


async def produce_raw(bootstrap: str, topic: str, partition: int, records: list[tuple[bytes | None, bytes]]) -> None:
    """Records with any key bytes, all on one partition, in this order."""
    p = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=False, linger_ms=5, max_request_size=4 << 20)
    await p.start()
    try:
        futs = [await p.send(topic, v, key=k, partition=partition, headers=[("content-type", CONTENT_TYPE.encode())])
                for k, v in records]
        await asyncio.gather(*futs)
    finally:
        await p.stop()


async def read_raw(bootstrap: str, topic: str, count: int, timeout: float = 30.0) -> list:
    """The first ``count`` records of ``topic`` as aiokafka records (key and value as bytes)."""
    c = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None, fetch_max_wait_ms=50)
    await c.start()
    try:
        tps = [TopicPartition(topic, p) for p in sorted(c.partitions_for_topic(topic) or [])]
        c.assign(tps)
        await c.seek_to_beginning(*tps)
        out: list = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while len(out) < count and loop.time() < deadline:
            for tp, recs in (await c.getmany(timeout_ms=200)).items():
                out.extend((tp.partition, r) for r in recs)
        return out
    finally:
        await c.stop()


async def test_unstorable_records_are_dead_lettered_with_their_reason_and_the_partition_moves_on(kafka, pool):
    nul_key = b"\x00\xff" + GRID_ID.encode() + b"\x00"  # NUL bytes, and not UTF-8
    poison = [
        (nul_key, b"{not json", "malformed_json"),
        (GRID_ID.encode(), patrol_command(id="cmd-\x00-1"), "nul_character"),
        (GRID_ID.encode(), patrol_command(source="/apps/\x00"), "nul_character"),
        (GRID_ID.encode(), patrol_command(worker="gw\x00"), "nul_character"),
        (nul_key, patrol_command(id="x" * 100_000), "invalid_envelope"),
        (GRID_ID.encode(), patrol_command(source="/" + "s" * 100_000), "invalid_envelope"),
        (GRID_ID.encode(), patrol_command(source="/" + astral(460), id=astral(200)), "invalid_envelope"),
    ]
    good = [(GRID_ID.encode(), patrol_command()),
            (b"k\x00\xfe", patrol_command()),  # a NUL in the key of a good command: handled as any other
            (GRID_ID.encode(), patrol_command(source="/" + astral(449), id=astral(200))),  # the largest that fits
            (GRID_ID.encode(), patrol_command(worker="gw-\\u0000"))]  # the text \u0000: no NUL
    records = [(k, v) for k, v, _ in poison[:4]] + good[:2] + [(k, v) for k, v, _ in poison[4:]] + good[2:]
    async with Pipeline(kafka, pool, group="poison", lanes=2) as p:
        await produce_raw(kafka, GRID.intake.name, 0, records)
        await p.wait_processed(len(records))
        dlq = await read_raw(kafka, GRID.dlq.name, len(poison))
        parts = sorted(await p.producer.partitions_for(GRID.dlq.name))
        assert p.consumer.stalled_seconds() == 0
        committed = await p.consumer.consumer.committed(TopicPartition(GRID.intake.name, 0))
    assert committed == len(records)  # the partition's offsets moved past every record
    assert await pool.fetchval("SELECT n FROM patrol_counts WHERE grid_id = $1", GRID_ID) == len(good)

    assert len(dlq) == len(poison)
    by_value = {r.value: (part, r) for part, r in dlq}
    for key, value, reason in poison:
        part, r = by_value[value]  # the original value, byte for byte
        headers = {k: v.decode() for k, v in r.headers}
        assert headers["dlq.error.reason"] == reason, headers
        assert r.key == key  # the original key, byte for byte
        assert part == DefaultPartitioner()(key, parts, parts)  # partitioned by those bytes
        assert headers["dlq.origin.topic"] == GRID.intake.name and headers["dlq.origin.partition"] == "0"
        assert "\x00" not in headers["dlq.error.message"]
    messages = {dict(by_value[v][1].headers)["dlq.error.message"].decode() for _, v, r in poison if r == "nul_character"}
    assert any(m.startswith("nul_character: id:") for m in messages)
    assert any("data.grid_worker_id" in m for m in messages)
    assert await pool.fetchval("SELECT count(*) FROM outbox") == 0  # all published


async def test_the_inbox_takes_the_longest_id_and_source_the_envelope_allows(pool):
    longest = ("/" + astral(449), astral(200))  # 1797 + 800 bytes of UTF-8
    async with pool.acquire() as conn, conn.transaction():
        assert await claim(conn, [longest]) == {longest}
        assert await claim(conn, [longest, ("/a", "1")]) == {("/a", "1")}
        await conn.execute("INSERT INTO command_outcomes (source, id, events) VALUES ($1, $2, '[]')", *longest)
    # beyond the envelope's bounds PostgreSQL refuses the key: this is why they exist
    async with pool.acquire() as conn:
        with pytest.raises(asyncpg.ProgramLimitExceededError):
            async with conn.transaction():
                await claim(conn, [(astral(500), astral(200))])


async def test_the_outbox_keys_written_as_text_before_the_upgrade_are_kept_as_their_bytes(database_url, tmp_path):
    only_001 = tmp_path / "kit"
    only_001.mkdir()
    shutil.copy(KIT_MIGRATIONS / "001_inbox_outbox.sql", only_001)
    p = await create_pool(database_url, "grid", service="grid", max_size=2)
    try:
        async with p.acquire() as conn:
            await migrate(conn, "grid", [("kit", only_001)])
            await conn.execute("INSERT INTO outbox (topic, key, value) VALUES ('t', '网格-1', 'v'), ('t', NULL, 'v')")
            applied = await migrate(conn, "grid", [("kit", KIT_MIGRATIONS)])
            assert "kit/002_outbox_key_bytes.sql" in applied
            keys = [r[0] for r in await conn.fetch("SELECT key FROM outbox ORDER BY seq")]
    finally:
        await p.close()
    assert keys == ["网格-1".encode(), None]


# -- any record at all ------------------------------------------------------------------------
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from schemas.envelope import DecodeError, decode  # noqa: E402

ENVELOPE_TEXT_FIELDS = ("id", "source", "subject", "correlationid", "grid_worker_id", "notes")
texts = st.text(max_size=30) | st.sampled_from(["\x00", "a\x00b", "\\u0000", "x" * 201, astral(460)])


@st.composite
def values(draw) -> bytes:
    """Anything: bytes, JSON that is not an envelope, and envelopes with any text in a field."""
    kind = draw(st.sampled_from(["bytes", "json", "envelope", "envelope"]))
    if kind == "bytes":
        return draw(st.binary(max_size=200))
    if kind == "json":
        return orjson.dumps(draw(st.recursive(st.none() | st.booleans() | st.integers(-10, 10) | texts,
                                              lambda inner: st.lists(inner, max_size=3)
                                              | st.dictionaries(texts, inner, max_size=3), max_leaves=8)))
    env = orjson.loads(patrol_command())
    for field in draw(st.sets(st.sampled_from(ENVELOPE_TEXT_FIELDS), max_size=3)):
        text = draw(texts)
        if field in ("grid_worker_id", "notes"):
            env["data"][field] = text
        else:
            env[field] = text
    return orjson.dumps(env)


records = st.lists(st.tuples(st.none() | st.binary(max_size=64),
                             values(),
                             st.lists(st.tuples(st.text(max_size=10), st.binary(max_size=20)), max_size=2)),
                   min_size=1, max_size=6)


@pytest.fixture
async def live(kafka, pool):
    async with Pipeline(kafka, pool, group="any-record", lanes=2) as p:
        yield p


@settings(max_examples=15, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(batch=records)
async def test_any_record_is_handled_or_dead_lettered_with_its_bytes_and_the_next_one_is_handled(live, kafka, batch):
    expected_dead: dict[int, tuple[bytes | None, bytes, str]] = {}
    # counted before anything is sent: the running consumer may handle the sentinel at once
    before = await live.pool.fetchval("SELECT coalesce(sum(n), 0) FROM patrol_counts")
    p = AIOKafkaProducer(bootstrap_servers=kafka, enable_idempotence=False, linger_ms=5)
    await p.start()
    try:
        sentinel = patrol_command()
        futs = [await p.send(GRID.intake.name, v, key=k, partition=1, headers=h) for k, v, h in batch]
        futs.append(await p.send(GRID.intake.name, sentinel, key=GRID_ID.encode(), partition=1))
        offsets = [(await f).offset for f in futs]
    finally:
        await p.stop()
    for (k, v, _), offset in zip(batch, offsets):
        try:
            decode(v, allowed=GRID.intake.message_types)
        except DecodeError as e:
            expected_dead[offset] = (k, v, e.reason)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 40
    while await live.consumer.consumer.committed(TopicPartition(GRID.intake.name, 1)) != offsets[-1] + 1:
        assert loop.time() < deadline, f"partition stuck; stalled {live.consumer.stalled_seconds():.0f}s"
        await asyncio.sleep(0.05)
    assert await live.pool.fetchval("SELECT coalesce(sum(n), 0) FROM patrol_counts") > before  # the sentinel
    while await live.pool.fetchval("SELECT count(*) FROM outbox"):  # every dead letter is on Kafka
        assert loop.time() < deadline, "the relay did not publish"
        await asyncio.sleep(0.05)
    dead = {}
    for _, r in await read_raw(kafka, GRID.dlq.name, 10_000, timeout=1.0):
        h = dict(r.headers)
        if h["dlq.origin.partition"] == b"1" and int(h["dlq.origin.offset"]) in offsets:
            dead[int(h["dlq.origin.offset"])] = (r.key, r.value, h["dlq.error.reason"].decode())
    assert dead == expected_dead  # exactly the undecodable ones, each with its key and value as sent


async def test_a_record_over_the_record_limit_is_dead_lettered_with_its_first_bytes_and_the_next_is_applied(kafka, pool):
    from services.kit import outbox

    huge = patrol_command(extension="x" * 1_500_000)  # over KAFKA_MAX_RECORD_BYTES (1,000,000)
    records = [(GRID_ID.encode(), huge), (GRID_ID.encode(), patrol_command())]
    async with Pipeline(kafka, pool, group="oversized") as p:
        await produce_raw(kafka, GRID.intake.name, 0, records)
        await p.wait_processed(len(records))
        [(_, dead)] = await read_raw(kafka, GRID.dlq.name, 1)
        committed = await p.consumer.consumer.committed(TopicPartition(GRID.intake.name, 0))
    assert committed == len(records)
    assert await pool.fetchval("SELECT n FROM patrol_counts WHERE grid_id = $1", GRID_ID) == 1
    headers = {k: v.decode() for k, v in dead.headers}
    assert headers["dlq.error.reason"] == "record_too_large"
    assert headers["dlq.value.bytes"] == str(len(huge)) and dead.value == huge[:outbox.DEAD_LETTER_KEPT_BYTES]


async def test_a_value_postgresql_refuses_is_bad_input_dead_lettered_not_retried_forever(kafka, pool):
    records = [(GRID_ID.encode(), patrol_command()), (GRID_ID.encode(), patrol_command(worker="divide-by-zero")),
               (GRID_ID.encode(), patrol_command())]
    async with Pipeline(kafka, pool, group="data-error") as p:
        await produce_raw(kafka, GRID.intake.name, 0, records)
        await p.wait_processed(len(records))
        [(_, dead)] = await read_raw(kafka, GRID.dlq.name, 1)
        committed = await p.consumer.consumer.committed(TopicPartition(GRID.intake.name, 0))
        assert p.consumer.stalled_seconds() == 0
    assert committed == len(records)
    assert await pool.fetchval("SELECT n FROM patrol_counts WHERE grid_id = $1", GRID_ID) == 2
    headers = {k: v.decode() for k, v in dead.headers}
    assert headers["dlq.error.reason"] == "invalid_data" and headers["dlq.error.class"] == "DivisionByZeroError"
    assert dead.value == records[1][1]
