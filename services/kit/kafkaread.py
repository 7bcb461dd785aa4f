"""Reading partitions to their end, whatever end the broker reports.

The embedded broker can report a partition's end (its high watermark) short of the records a
fetch returns, so a reader that stops there misses records. Stopping once polls come back empty
for a while is no better: on a loaded machine a poll can time out before the broker's answer
arrives, and the reader stops early, with nothing to tell it so.

:func:`read_to_end` takes a partition as read to its end only when the broker itself has
answered fetches *at the reader's position* with no records (:data:`EMPTY_ANSWERS` of them in a
row). aiokafka notes the time of every fetch answer it takes for a partition at the position it
fetched (:meth:`AIOKafkaConsumer.last_poll_timestamp`), empty or not, and discards answers for an
older position; it does not fetch a partition whose records are still buffered. So a poll that
returns nothing for a partition whose answer time moved on since its last records is the broker
saying "nothing more here", and a poll that merely timed out is not.

This module imports aiokafka only: the outbox relay's process uses it too.
"""
from __future__ import annotations

import asyncio
from typing import Callable, Sequence

from aiokafka import AIOKafkaConsumer, TopicPartition

EMPTY_ANSWERS = 2
"""Fetch answers in a row with no records, at a partition's position, that make its end."""


class ReadTimedOut(TimeoutError):
    """The broker gave neither records nor an answer at the position for ``give_up`` seconds.
    ``ends`` holds the partitions read to their end by then; ``at``, every partition's position."""

    def __init__(self, message: str, ends: dict[TopicPartition, int], at: dict[TopicPartition, int]) -> None:
        super().__init__(message)
        self.ends, self.at = ends, at


async def read_to_end(consumer: AIOKafkaConsumer, parts: Sequence[TopicPartition], *,
                      on_records: Callable[[TopicPartition, list], None] | None = None,
                      give_up: float = 60.0, poll_ms: int = 300, max_records: int = 5000) -> dict[TopicPartition, int]:
    """Read ``parts`` (assigned to ``consumer``, each from its position) until the broker answers
    at each partition's position with nothing: the offset after the last record read there (or
    the position it started at), by partition. ``on_records(tp, records)`` sees every record read.

    Raises :class:`ReadTimedOut` when ``give_up`` seconds pass with no records and no new answer
    from the broker for a partition not yet at its end."""
    loop = asyncio.get_running_loop()
    at = {tp: await consumer.position(tp) for tp in parts}
    mark = {tp: consumer.last_poll_timestamp(tp) or -1 for tp in parts}  # the answer time last taken
    empty = dict.fromkeys(parts, 0)  # empty answers in a row at the position
    ends: dict[TopicPartition, int] = {}
    moved = loop.time()
    while len(ends) < len(parts):
        left = [tp for tp in parts if tp not in ends]
        got = await consumer.getmany(*left, timeout_ms=poll_ms, max_records=max_records)
        for tp in left:
            records = got.get(tp)
            answered = consumer.last_poll_timestamp(tp) or -1
            if records:
                at[tp] = records[-1].offset + 1
                empty[tp] = 0
                if on_records is not None:
                    on_records(tp, records)
            elif answered > mark[tp]:
                empty[tp] += 1
                if empty[tp] >= EMPTY_ANSWERS:
                    ends[tp] = at[tp]
            else:
                continue
            mark[tp] = answered
            moved = loop.time()
        if len(ends) < len(parts) and loop.time() - moved > give_up:
            raise ReadTimedOut(f"no answer from the broker at the position of {sorted(map(str, left))} for "
                               f"{give_up:.0f} s", ends, at)
    return ends
