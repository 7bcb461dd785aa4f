"""The relay process's reports to its worker: what the child counts is what the worker serves."""
from __future__ import annotations

import io
from collections import Counter

import orjson

from services.kit.relay import Reporter, apply_report


class Seen:
    def __init__(self):
        self.produced: Counter = Counter()
        self.failures = 0
        self.found = 0
        self.seen_stats: list[tuple[int, float]] = []

    def published(self, counts):
        self.produced.update(counts)

    def failed(self):
        self.failures += 1

    def stats(self, backlog, age):
        self.seen_stats.append((backlog, age))

    def read_back(self, n):
        self.found += n


def lines(out: io.BytesIO) -> list[dict]:
    return [orjson.loads(x) for x in out.getvalue().splitlines()]


def test_each_round_is_reported_at_once_and_statistics_ride_along():
    out = io.BytesIO()
    r = Reporter(out)
    r.stats(7, 1.5)
    r.published(Counter({("grid.events.v1", "grid.patrol.logged.v1"): 2, ("grid.dlq.v1", "dead_letter"): 1}))
    r.flush()  # nothing new: nothing written
    r.published(Counter({("grid.events.v1", "grid.patrol.logged.v1"): 1}))
    r.stats(0, 0.0)
    r.flush()
    first, second, third = lines(out)
    assert sorted(map(tuple, first["produced"])) == [("grid.dlq.v1", "dead_letter", 1),
                                                     ("grid.events.v1", "grid.patrol.logged.v1", 2)]
    assert first["stats"] == [7, 1.5] and "errors" not in first
    assert second == {"produced": [["grid.events.v1", "grid.patrol.logged.v1", 1]]}
    assert third == {"stats": [0, 0.0]}


def test_a_failed_round_is_reported_at_once():
    out = io.BytesIO()
    r = Reporter(out)
    r.failed()
    assert lines(out) == [{"errors": 1}]


def test_rows_a_read_back_found_are_reported_at_once_and_counted_by_the_worker():
    out = io.BytesIO()
    r = Reporter(out)
    r.read_back(7)
    assert lines(out) == [{"read_back": 7}]
    seen = Seen()
    apply_report(lines(out)[0], seen)
    assert seen.found == 7 and seen.failures == 0


def test_the_worker_applies_every_report_to_its_observer():
    out = io.BytesIO()
    r = Reporter(out)
    r.published(Counter({("grid.events.v1", "a"): 4, ("grid.rejections.v1", "b"): 1}))
    r.stats(0, 0.0)
    r.flush()
    r.failed()
    r.failed()
    seen = Seen()
    for report in lines(out):
        apply_report(report, seen)
    assert seen.produced == Counter({("grid.events.v1", "a"): 4, ("grid.rejections.v1", "b"): 1})
    assert seen.failures == 2
    assert seen.seen_stats == [(0, 0.0)]


def test_a_worker_that_has_gone_does_not_crash_the_reporter():
    class Closed(io.BytesIO):
        def write(self, b):
            raise BrokenPipeError

    r = Reporter(Closed())
    r.failed()  # swallowed: the child is about to stop anyway


class _Producer:
    async def partitions_for(self, topic):
        return {0, 1}


class _Refusing:
    """A reader whose broker refuses the service's principal the right to read its own topics."""

    async def start(self):
        from aiokafka.errors import TopicAuthorizationFailedError

        raise TopicAuthorizationFailedError("grid.events.v1")

    async def stop(self):
        pass


async def test_a_relay_that_may_not_read_its_topics_back_says_so_and_sends_as_before():
    from services.kit.outbox import OutboxRelay

    relay = OutboxRelay(None, _Producer(), service="grid", observer=Seen(),  # type: ignore[arg-type]
                        reader=_Refusing)
    rows = [(1, "grid.events.v1", b"k", b"{}", None, "t", 0)]
    assert await relay._already_published(await relay._wire(rows)) == set()  # noqa: SLF001 (nothing found: all sent)
    assert relay.reader is None  # it does not try again on every round
