"""Peer baseline: the same full path written as a plain faust agent with ``take_events``.

Per batch of up to 500 events: decode, one PostgreSQL transaction (inbox + state upsert +
outbox), then faust acks; the kit's outbox relay publishes, as in the kit's path.
"""
from __future__ import annotations

import asyncio
import os

import faust
import mode

from schemas.envelope import DecodeError, decode
from schemas.topics import GRID
from services.kit.consumer import claim
from services.kit.db import create_pool
from services.kit.migrations import migrate
from services.kit.outbox import OutboxRelay, producer_for
from services.kit.outbox import write as write_outbox
from services.kit.handlers import dispatch
from services.kit.uow import UnitOfWork

from .handler import COMPONENTS, BatchPatrolCounter

BOOTSTRAP = os.environ["KAFKA_BOOTSTRAP_SERVERS"]
APP_ID = os.environ.get("BENCH_APP_ID", "bench-faust-agent")  # also its consumer group
os.makedirs(f"var/faust/{APP_ID}", exist_ok=True)
app = faust.App(APP_ID, broker=f"kafka://{BOOTSTRAP}", datadir=f"var/faust/{APP_ID}",
                web_port=int(os.environ.get("BENCH_WEB_PORT", "6099")),
                web_host="127.0.0.1", store="memory://", autodiscover=False, processing_guarantee="at_least_once",
                broker_rebalance_timeout=3, broker_session_timeout=10, broker_heartbeat_interval=1,
                consumer_auto_offset_reset="earliest", topic_partitions=1, stream_buffer_maxsize=4096)
intake = app.topic(GRID.intake.name, value_serializer="raw", key_serializer="raw")
state: dict = {}
handler = BatchPatrolCounter()


@app.service
class Infra(mode.Service):
    async def on_start(self) -> None:
        pool = await create_pool(os.environ["DATABASE_URL"], "grid", service="grid", max_size=4)
        async with pool.acquire() as conn:
            await migrate(conn, "grid", COMPONENTS)
        producer = producer_for(BOOTSTRAP, "bench-faust-relay")
        await producer.start()
        relay = OutboxRelay(pool, producer, service="grid", batch=2000, poll_seconds=0.2)
        state.update(pool=pool, relay=relay, task=asyncio.ensure_future(relay.run()))


@app.agent(intake)
async def patrols(stream):
    async for events in stream.take_events(500, within=0.5):
        while "pool" not in state:
            await asyncio.sleep(0.1)
        msgs = []
        for ev in events:
            try:
                msgs.append(decode(ev.value))
            except DecodeError:
                pass
        async with state["pool"].acquire() as conn, conn.transaction():
            new = await claim(conn, [(m.source, m.id) for m in msgs])
            fresh = [m for m in msgs if (m.source, m.id) in new]
            uow = UnitOfWork(conn, "grid")
            await dispatch(handler, uow, fresh)
            await uow.flush()
            await write_outbox(conn, uow.records)
        state["relay"].notify()


if __name__ == "__main__":
    app.main()
