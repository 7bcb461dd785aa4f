"""kit_consumer_lag does not read low when the broker reports a partition's end short of what
is readable, nor stay absent while a lane is stuck on its first batch."""
from __future__ import annotations

from aiokafka import TopicPartition

from services.kit import metrics
from services.kit.consumer import BatchConsumer, partition_lag


def test_the_end_is_the_larger_of_the_reported_high_watermark_and_the_records_fetched():
    # the embedded broker reported 818 while 1000 records were readable: 182 records past its end
    assert partition_lag(818, 1000, 800) == 200
    assert partition_lag(1000, 900, 800) == 200  # a fetch not yet at the end: the high watermark
    assert partition_lag(None, 1000, 990) == 10
    assert partition_lag(818, None, 800) == 18
    assert partition_lag(818, 1000, 1000) == 0
    assert partition_lag(None, None, 5) is None and partition_lag(10, 12, None) is None


class Kafka:
    def __init__(self, highwater: dict):
        self._hw = highwater

    def assignment(self):
        return set(self._hw)

    def highwater(self, tp):
        return self._hw[tp]


def lag_of(tp: TopicPartition) -> float:
    return metrics.CONSUMER_LAG.labels("grid", tp.topic, str(tp.partition))._value.get()


def test_the_gauge_counts_from_the_first_record_fetched_until_the_first_commit():
    c = BatchConsumer.__new__(BatchConsumer)
    c.service = "grid"
    stuck, moving = TopicPartition("grid.intake.v1", 7), TopicPartition("grid.intake.v1", 8)
    c.consumer = Kafka({stuck: 300, moving: 300})  # reported short of the 500 fetched
    c._done, c._seen, c._first = {moving: 450}, {stuck: 500, moving: 500}, {stuck: 120, moving: 100}
    c._lag_reported = set()
    c._update_lag()
    assert lag_of(stuck) == 380  # no commit yet: from where this worker began reading
    assert lag_of(moving) == 50  # from its last commit, to the highest record fetched


def test_a_partition_moved_away_by_a_rebalance_is_no_longer_reported():
    """The campaign saw a lag of 238 on a district whose every offset was committed: the worker
    that lost a partition kept its last value, and the max over replicas read it for good."""
    c = BatchConsumer.__new__(BatchConsumer)
    c.service = "grid"
    kept, moved = TopicPartition("grid.events.v1", 1), TopicPartition("grid.events.v1", 2)
    c.consumer = Kafka({kept: 10, moved: 500})
    c._done, c._seen, c._first, c._lag_reported = {kept: 10, moved: 262}, {}, {}, set()
    c._update_lag()
    assert lag_of(moved) == 238
    c.consumer = Kafka({kept: 10})  # the rebalance gave `moved` to the other worker
    c._update_lag()
    reported = {tuple(s.labels.values()) for s in metrics.CONSUMER_LAG.collect()[0].samples}
    assert ("grid", "grid.events.v1", "2") not in reported
    assert ("grid", "grid.events.v1", "1") in reported
