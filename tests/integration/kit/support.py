"""A consumer with its relay, as a service worker runs them, for the kit's integration tests."""
from __future__ import annotations

import asyncio
import os

import asyncpg

from schemas.topics import GRID
from services.kit.consumer import BatchConsumer
from services.kit.outbox import OutboxRelay, producer_for, reader_for

from .patrols import PatrolCounter


class Pipeline:
    """A consumer and a relay, as a service worker runs them."""

    def __init__(self, kafka: str, pool: asyncpg.Pool, group: str = "kit-test", handler=None, lanes: int = 1,
                 verifier=None, max_record_age: float = 3600.0, topics=(GRID.intake,), max_event_skew: float = 300.0):
        self.kafka, self.pool, self.group = kafka, pool, group
        self.handler, self.lanes = handler or PatrolCounter(), lanes
        self.verifier, self.max_record_age = verifier, max_record_age
        self.topics, self.max_event_skew = list(topics), max_event_skew
        self.tasks: list[asyncio.Task] = []

    async def __aenter__(self):
        self.producer = producer_for(self.kafka, "kit-test-relay")
        await self.producer.start()
        self.relay = OutboxRelay(self.pool, self.producer, service="grid", batch=500, poll_seconds=0.1,
                                 reader=reader_for(self.kafka, "kit-test-relay-check"))
        self.consumer = BatchConsumer(service="grid", name="intake", topics=self.topics, group_id=self.group,
                                      bootstrap=self.kafka, pool=self.pool, handler=self.handler,
                                      on_commit=self.relay.notify, max_records=200, lanes=self.lanes,
                                      verifier=self.verifier, max_record_age=self.max_record_age,
                                      max_event_skew=self.max_event_skew,
                                      session_timeout_ms=int(os.environ["KAFKA_SESSION_TIMEOUT_MS"]))
        await self.consumer.start()
        self.tasks = [asyncio.ensure_future(self.relay.run()), asyncio.ensure_future(self.consumer.run())]
        return self

    async def __aexit__(self, *exc):
        await self.relay.stop()
        self.consumer._stopping = True
        for t in self.tasks:
            t.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await self.consumer.stop()
        await self.producer.stop()

    async def wait_processed(self, n: int, timeout: float = 40.0) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.consumer.processed < n:
            assert loop.time() < deadline, (f"processed {self.consumer.processed} of {n}; "
                                            f"stalled {self.consumer.stalled_seconds():.0f}s")
            await asyncio.sleep(0.05)
