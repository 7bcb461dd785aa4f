"""Outbox keys are bytes from end to end: written as given, sent as read, partitioned by them."""
from __future__ import annotations

import asyncio

from aiokafka.partitioner import DefaultPartitioner

from services.kit.outbox import OutboxRecord, OutboxRelay, write

PARTS = [0, 1, 2, 3]


class FakeBatch:
    def __init__(self):
        self.records: list[dict] = []

    def append(self, *, key, value, timestamp, headers):
        self.records.append({"key": key, "value": value, "timestamp": timestamp, "headers": headers})
        return object()

    def record_count(self) -> int:
        return len(self.records)


class FakeProducer:
    def __init__(self):
        self.sent: list[tuple[str, int, dict]] = []

    async def partitions_for(self, topic):
        return set(PARTS)

    def create_batch(self):
        return FakeBatch()

    async def send_batch(self, batch, topic, partition):
        self.sent.extend((topic, partition, r) for r in batch.records)
        fut = asyncio.get_running_loop().create_future()
        fut.set_result(None)
        return fut


class FakeConn:
    def __init__(self):
        self.rows: list[tuple] = []

    async def copy_records_to_table(self, table, *, columns, records):
        assert table == "outbox" and columns[1] == "key"
        self.rows.extend(records)


async def test_keys_are_written_as_bytes_and_text_keys_as_their_utf8():
    conn = FakeConn()
    await write(conn, [OutboxRecord("grid.dlq.v1", b"\x00\xff", b"v"), OutboxRecord("grid.events.v1", "网格", b"v"),
                       OutboxRecord("grid.events.v1", None, b"v"), OutboxRecord("grid.events.v1", bytearray(b"ab"), b"v")])
    assert [r[1] for r in conn.rows] == [b"\x00\xff", "网格".encode(), None, b"ab"]
    assert all(r[1] is None or type(r[1]) is bytes for r in conn.rows)


async def test_the_relay_sends_the_key_bytes_as_read_on_the_partition_of_their_murmur2():
    keys = [b"case-1", b"\x00", b"\xff\xfe", "网格".encode(), b"case-1", None, b"x" * 100_000]
    rows = [(seq, "grid.dlq.v1", k, b"value-%d" % seq, [["dlq.error.reason", "malformed_json"]], "dead_letter",
             1_700_000_000_000 + seq) for seq, k in enumerate(keys)]
    producer = FakeProducer()
    relay = OutboxRelay(pool=None, producer=producer, service="grid")  # type: ignore[arg-type]
    counts = await relay._send(await relay._wire(rows))
    assert counts == {("grid.dlq.v1", "dead_letter"): len(keys)}
    part = DefaultPartitioner()
    by_value = {r["value"]: (p, r) for _, p, r in producer.sent}
    for seq, k in enumerate(keys):
        p, r = by_value[b"value-%d" % seq]
        assert r["key"] is k  # the very bytes read from the table: no decode, no re-encode
        if k is not None:
            assert p == part(k, PARTS, PARTS)
        assert r["headers"] == [("dlq.error.reason", b"malformed_json")]
        assert r["timestamp"] == 1_700_000_000_000 + seq  # when the row was written, not when it is sent
    # one key's records stay in their order on one partition
    same = [r["value"] for _, p, r in producer.sent if r["key"] == b"case-1"]
    assert same == [b"value-0", b"value-4"]
