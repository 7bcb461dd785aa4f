"""Records over KAFKA_MAX_RECORD_BYTES: refused where they are made, dead-lettered where they
arrive, and never allowed to hold back the relay (a broker past its message.max.bytes would
refuse them on every round)."""
from __future__ import annotations

from collections import Counter

import pytest

from services.kit import outbox
from services.kit.consumer import BatchConsumer, Item
from services.kit.outbox import OutboxRecord, OutboxRelay, RecordTooLarge, record_size, write
from services.kit.settings import ServiceSettings
from schemas.topics import GRID


class Copying:
    """What write() hands to PostgreSQL (the COPY itself is exercised in tests/integration/kit)."""

    def __init__(self):
        self.rows: list = []

    async def copy_records_to_table(self, table, *, columns, records):
        self.rows.extend(records)


async def test_the_outbox_refuses_a_record_over_the_limit_before_it_is_written():
    conn = Copying()
    ok = OutboxRecord("grid.events.v1", b"k", b"x" * (outbox.MAX_RECORD_BYTES - 1))
    await write(conn, [ok])  # type: ignore[arg-type]
    assert len(conn.rows) == 1
    with pytest.raises(RecordTooLarge) as e:
        await write(conn, [OutboxRecord("grid.events.v1", b"kk", b"x" * (outbox.MAX_RECORD_BYTES - 1))])  # type: ignore[arg-type]
    assert "KAFKA_MAX_RECORD_BYTES" in str(e.value) and len(conn.rows) == 1
    with pytest.raises(RecordTooLarge):  # headers count too
        await write(conn, [OutboxRecord("grid.dlq.v1", None, b"x" * (outbox.MAX_RECORD_BYTES - 10),
                                        headers=[("dlq.error.message", "e" * 20)])])  # type: ignore[arg-type]


def test_the_limit_is_a_setting_under_kafkas_default_message_max_bytes(monkeypatch):
    assert ServiceSettings().kafka_max_record_bytes == 1_000_000 < 1_048_588
    monkeypatch.setenv("KAFKA_MAX_RECORD_BYTES", "200000")
    assert ServiceSettings().kafka_max_record_bytes == 200_000
    assert record_size(b"ab", b"cde", [("h", "ij"), ("k", b"l")]) == 2 + 3 + 3 + 2


def test_a_consumed_record_over_the_limit_is_a_decode_error_without_being_parsed(monkeypatch):
    monkeypatch.setattr(outbox, "MAX_RECORD_BYTES", 100_000)
    c = BatchConsumer.__new__(BatchConsumer)
    c._allowed = {GRID.intake.name: (GRID.intake.message_types, False)}
    c._types = {GRID.intake.name: GRID.intake.message_types}
    c._type_bytes = {GRID.intake.name: frozenset(t.encode() for t in GRID.intake.message_types)}
    c._trusted = {GRID.intake.name: None}
    c._intake = GRID.intake.name
    big = Item(GRID.intake.name, 0, 7, b"k", b'{"specversion": "1.0", "pad": "' + b"x" * 100_000 + b'"}')
    small = Item(GRID.intake.name, 0, 8, b"k", b"{oops")
    c._decode([big, small])
    assert big.error is not None and big.error.reason == "record_too_large" and "100000" in big.error.detail
    assert small.error is not None and small.error.reason == "malformed_json"


class Producer:
    """Records the batches the relay sends (a real broker is in tests/integration/kit)."""

    def __init__(self):
        self.sent: list[tuple[str, int, list]] = []

    async def partitions_for(self, topic):
        return {0, 1}

    def create_batch(self):
        return Batch()

    async def send_batch(self, batch, topic, *, partition):
        self.sent.append((topic, partition, batch.records))
        import asyncio
        fut = asyncio.get_running_loop().create_future()
        fut.set_result(None)
        return fut


class Batch:
    def __init__(self):
        self.records: list = []

    def append(self, *, key, value, timestamp, headers):
        if self.records and sum(len(r[1]) for r in self.records) + len(value) > 256 * 1024:
            return None
        self.records.append((key, value, headers))
        return object()

    def record_count(self):
        return len(self.records)


async def test_the_relay_dead_letters_an_oversized_row_and_publishes_the_rows_after_it():
    relay = OutboxRelay(None, Producer(), service="grid")  # type: ignore[arg-type]
    huge = b"x" * (outbox.MAX_RECORD_BYTES + 1)
    rows = [(1, "grid.events.v1", b"a", b"first", None, "grid.patrol.logged.v1", 0),
            (2, "grid.events.v1", b"b", huge, None, "grid.patrol.logged.v1", 0),
            (3, "grid.events.v1", b"a", b"third", None, "grid.patrol.logged.v1", 0)]
    counts = await relay._send(await relay._wire(rows))
    assert counts == Counter({("grid.events.v1", "grid.patrol.logged.v1"): 2, ("grid.dlq.v1", "dead_letter"): 1})
    sent = {(t, k): (v, h) for t, _, recs in relay.producer.sent for k, v, h in recs}
    events = [v for t, _, recs in relay.producer.sent for k, v, h in recs if t == "grid.events.v1"]
    assert events == [b"first", b"third"]
    value, headers = sent[("grid.dlq.v1", b"b")]
    headers = {k: v.decode() for k, v in headers}
    assert value == huge[:outbox.DEAD_LETTER_KEPT_BYTES]
    assert headers["dlq.error.reason"] == "record_too_large" and headers["dlq.origin.topic"] == "grid.events.v1"
    assert headers["dlq.value.bytes"] == str(len(huge)) and headers["dlq.origin.outbox_seq"] == "2"
