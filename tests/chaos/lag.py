"""The consumer lag as the broker sees it: for every consumer group of the district, the end
offset of each partition minus the group's committed offset (what kafka_exporter reports in
production). It needs nothing from the workers, so a worker that is stopped, dead or reports
a wrong ``kit_consumer_lag`` cannot hide a backlog behind it."""
from __future__ import annotations

import asyncio
import contextlib

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from schemas.registry import SERVICES
from schemas.topics import BY_SERVICE


class BrokerLag:
    def __init__(self, bootstrap: str, partitions: int):
        self.bootstrap = bootstrap
        self.tps = [TopicPartition(t.name, p) for s in BY_SERVICE.values() for t in (s.intake, s.events)
                    for p in range(partitions)]
        self.groups: dict[str, AIOKafkaConsumer] = {}
        self.reader: AIOKafkaConsumer | None = None

    async def start(self) -> None:
        self.reader = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, group_id=None, request_timeout_ms=5000)
        await self.reader.start()

    async def _find_groups(self) -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap, request_timeout_ms=5000)
        await admin.start()
        try:
            names = [g for g, _ in await admin.list_consumer_groups()
                     if g.split("-service-", 1)[0] in SERVICES and g not in self.groups]
        finally:
            await admin.close()
        for g in names:  # a member of no group: it only reads the group's committed offsets
            c = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, group_id=g, enable_auto_commit=False,
                                 request_timeout_ms=5000)
            await c.start()
            self.groups[g] = c

    async def lag(self) -> dict[str, int]:
        """group -> records not yet committed (raises while the broker does not answer)."""
        await self._find_groups()
        end = await self.reader.end_offsets(self.tps)

        async def one(g: str, c: AIOKafkaConsumer) -> tuple[str, int]:
            offs = await asyncio.gather(*(c.committed(tp) for tp in self.tps))
            return g, sum(max(0, end[tp] - o) for tp, o in zip(self.tps, offs) if o is not None and o >= 0)

        return dict(await asyncio.gather(*(one(g, c) for g, c in self.groups.items())))

    async def stop(self) -> None:
        for c in [*self.groups.values(), self.reader]:
            if c is not None:
                with contextlib.suppress(Exception):
                    await c.stop()
