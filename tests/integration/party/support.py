"""The party worker the integration tests of the party service run against."""
from __future__ import annotations

import contextlib

from tests.support.procs import Worker


@contextlib.asynccontextmanager
async def party_worker(kafka: str, database_url: str, log, **env: str):
    """A ``services.party.app`` worker on the test broker and database, with ``env`` (e.g. quick
    timers), ready; stopped cleanly at the end (its log shown when it was not)."""
    w = Worker("services.party.app", {"KAFKA_BOOTSTRAP_SERVERS": kafka, "DATABASE_URL": database_url,
                                      "TOPIC_PARTITIONS": "4", **env}, prefix="PARTY_", log=log).start()
    try:
        await w.wait_ready()
        yield w
    finally:
        assert w.stop() == 0, log.read_text()[-4000:]
