"""Reading partitions to their end, whatever end the broker reports.

The embedded broker can report a partition's end (its high watermark) far short of the records a
fetch returns, so a reader that stops there misses records. Stopping once polls come back empty
for a while is no better: on a loaded machine a poll can time out before the broker's answer
arrives, and the reader stops early, with nothing to tell it so. Nor is one partition's empty
part of a fetch answer its end: the broker fills an answer up to its size limit with some
partitions' records and answers the others with none.

:func:`read_to_end` takes the partitions it reads as read to their end only when the broker has
answered whole fetches of them with no records at all (:data:`EMPTY_ANSWERS` of them in a row,
after the last records). aiokafka notes the time of every fetch answer it takes for a partition
at the position it fetched (:meth:`AIOKafkaConsumer.last_poll_timestamp`), empty or not, and
discards answers for an older position; it does not fetch a partition whose records are still
buffered, nor a paused one. So a poll that returns no records at all, for partitions whose answer
time moved on since the last records came, is the broker saying "nothing more here"; a poll that
merely timed out is not. The other partitions assigned to the consumer are paused meanwhile (their
records would take room in the answers), and a partition is paused once it is at its end.

This module imports aiokafka only: the outbox relay's process uses it too.
"""
from __future__ import annotations

import asyncio
from typing import Callable, Sequence

from aiokafka import AIOKafkaConsumer, TopicPartition

EMPTY_ANSWERS = 2
"""Whole fetch answers in a row with no records, after the last records, that make the end."""


class ReadTimedOut(TimeoutError):
    """The broker gave neither records nor an answer at the position for ``give_up`` seconds.
    ``ends`` holds the partitions read to their end by then; ``at``, every partition's position."""

    def __init__(self, message: str, ends: dict[TopicPartition, int], at: dict[TopicPartition, int]) -> None:
        super().__init__(message)
        self.ends, self.at = ends, at


async def read_to_end(consumer: AIOKafkaConsumer, parts: Sequence[TopicPartition], *,
                      on_records: Callable[[TopicPartition, list], None] | None = None,
                      give_up: float = 60.0, poll_ms: int = 300, max_records: int = 5000) -> dict[TopicPartition, int]:
    """Read ``parts`` (assigned to ``consumer``, each from its position) until whole fetch answers
    at their positions bring no records: the offset after the last record read in each (or the
    position it started at), by partition. ``on_records(tp, records)`` sees every record read.
    Partitions of the consumer's assignment other than ``parts`` are paused while it reads.

    Raises :class:`ReadTimedOut` when ``give_up`` seconds pass with no records and no new answer
    from the broker for a partition not yet at its end."""
    loop = asyncio.get_running_loop()
    at = {tp: await consumer.position(tp) for tp in parts}
    others = [tp for tp in consumer.assignment() if tp not in at and tp not in consumer.paused()]
    ended: list[TopicPartition] = []  # paused here at their end

    def answered() -> dict[TopicPartition, int]:
        return {tp: consumer.last_poll_timestamp(tp) or -1 for tp in parts}

    consumer.pause(*others)
    try:
        mark = answered()  # each partition's answer time when records last came (from any of them)
        empty = dict.fromkeys(parts, 0)  # whole answers with no records since
        ends: dict[TopicPartition, int] = {}
        moved = loop.time()
        while len(ends) < len(parts):
            left = [tp for tp in parts if tp not in ends]
            got = await consumer.getmany(*left, timeout_ms=poll_ms, max_records=max_records)
            if any(got.values()):
                for tp, records in got.items():
                    if records:
                        at[tp] = records[-1].offset + 1
                        if on_records is not None:
                            on_records(tp, records)
                mark, empty, moved = answered(), dict.fromkeys(parts, 0), loop.time()
                continue
            now = answered()
            for tp in left:
                if now[tp] > mark[tp]:  # an answer, and all of it empty
                    mark[tp], moved = now[tp], loop.time()
                    empty[tp] += 1
                    if empty[tp] >= EMPTY_ANSWERS:
                        ends[tp] = at[tp]
                        consumer.pause(tp)
                        ended.append(tp)
            if len(ends) < len(parts) and loop.time() - moved > give_up:
                left = [tp for tp in parts if tp not in ends]
                raise ReadTimedOut(f"no answer from the broker at the position of {sorted(map(str, left))} for "
                                   f"{give_up:.0f} s", ends, at)
        return ends
    finally:
        consumer.resume(*others, *ended)
