"""The party worker the integration tests of the party service run against."""
from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from datetime import datetime
from typing import Any, Awaitable, Callable

from services.kit.outbox import write as write_outbox
from services.kit.uow import UnitOfWork
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


# The party's timers by the types of the events they publish (``rt.timer(..., replays=...)`` in
# services/party/app/main.py): a rebuild runs each live round again, a round being a timer and a time.
TIMER_OF = {"party.coverage.gap.v1": "coverage", "party.org_life.overdue.v1": "org_life",
            "party.member.report_overdue.v1": "member_reports", "party.member.feedback.v1": "member_feedback",
            **{f"party.{t}.v1": "councils" for t in ("council.effective", "meeting.overdue", "resolution.overdue")}}


def uid(prefix: str) -> str:
    """A fresh id for a test's own organisations, members and commands."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def wait_for(fn, *, timeout: float = 30.0, every: float = 0.2):
    """Poll ``fn`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        got = await fn()
        if got:
            return got
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(every)


async def run_timer(pool, timer: Callable[[UnitOfWork], Awaitable[Any]], now: datetime) -> tuple[Any, UnitOfWork]:
    """One round of a party timer (``timer(uow)``, e.g. ``handler.check_councils``) at ``now``,
    committed as the kit's timers commit it: what the round returned, and its unit of work."""
    async with pool.acquire() as conn, conn.transaction():
        uow = UnitOfWork(conn, "party", now)
        found = await timer(uow)
        await uow.flush()
        await write_outbox(conn, uow.records)
    uow.committed()
    return found, uow
