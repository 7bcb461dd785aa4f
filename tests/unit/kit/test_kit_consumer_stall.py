"""A consumer loop that goes back to its committed offsets after an unexpected failure counts as
stalled (on /readyz and kit_consumer_stalled_seconds) until a batch commits again."""
from __future__ import annotations

from aiokafka import TopicPartition

from services.kit import metrics
from services.kit.consumer import BatchConsumer

TP = TopicPartition("grid.intake.v1", 0)


class Kafka:
    def __init__(self):
        self.committed_offsets: dict = {}

    def assignment(self):
        return {TP}

    async def committed(self, tp):
        return 5

    def seek(self, tp, offset):
        pass

    async def commit(self, offsets):
        self.committed_offsets.update(offsets)


async def test_a_rewind_is_a_stall_until_the_next_commit():
    c = BatchConsumer.__new__(BatchConsumer)
    c.service, c.name, c._stopping, c.consumer = "grid", "intake", False, Kafka()
    c._retrying, c._rewound_at, c._done = {}, None, {}
    before = metrics.BATCH_RETRIES.labels("grid", "intake", "rewind")._value.get()

    async def failing_pipeline():
        c._stopping = True  # one round is enough
        raise RuntimeError("a bug in the loop")

    c._pipeline = failing_pipeline
    await c.run()
    assert c.stalled_seconds() > 0.4  # it waited before rewinding, and still counts
    assert metrics.BATCH_RETRIES.labels("grid", "intake", "rewind")._value.get() == before + 1
    await c._commit_offsets({TP: 6})
    assert c.stalled_seconds() == 0 and c.consumer.committed_offsets == {TP: 6}
