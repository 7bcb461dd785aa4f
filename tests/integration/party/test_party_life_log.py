"""The batch's organisational-life log (``LifeLog``) on a real PostgreSQL: its rows are written in
one statement when the unit of work flushes, a message undone by its savepoint takes its rows
with it, a flush undone inside a savepoint leaves the rows it wrote to be written again, and the
kept counts and answers follow the rows as when they were written one at a time."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from schemas.party import OrgLifeHeld, OrgLifeKind, OrgLifeOverdue
from services.kit.errors import Rejected
from services.kit.migrations import KIT_MIGRATIONS
from services.kit.uow import UnitOfWork
from services.party.app.life import load_life_policy
from services.party.app.settings import PartySettings
from services.party.projection.life import LifeLog
from tests.support.db import migrated_pool, statements_sent

pytestmark = pytest.mark.integration

MIGRATIONS = Path(__file__).resolve().parents[3] / "services" / "party" / "migrations"
T0 = datetime(2026, 11, 12, 9, 0, tzinfo=timezone(timedelta(hours=8)))
POLICY = load_life_policy(PartySettings().org_life_path)


@pytest.fixture
async def pool(database_url):
    async with migrated_pool(database_url, "party", components=[("kit", KIT_MIGRATIONS), ("party", MIGRATIONS)]) as p:
        yield p


def held(uow: UnitOfWork, org: str, meeting: str, days: int = 0):
    return uow.emit_all([OrgLifeHeld(org_id=org, meeting_id=meeting, kind=OrgLifeKind.THEME_DAY,
                                     held_at=T0 + timedelta(days=days), attendees=("m1", "m2"), absentees=("m3",))])


def missed(uow: UnitOfWork, org: str, period: str):
    return uow.emit_all([OrgLifeOverdue(org_id=org, kind=OrgLifeKind.BRANCH_MEETING, period=period)])


async def one_meeting_logged(conn) -> tuple[UnitOfWork, LifeLog]:
    """A unit of work whose first message logged meeting mt-1 of org-1 (not written yet)."""
    uow = UnitOfWork(conn, "party", T0)
    log = LifeLog.of(uow)
    async with uow.savepoint():
        log.add(held(uow, "org-1", "mt-1"), POLICY)
    return uow, log


async def test_the_rows_wait_for_the_flush_and_an_undone_message_takes_its_own(pool):
    async with pool.acquire() as conn, conn.transaction():
        uow, log = await one_meeting_logged(conn)
        with pytest.raises(Rejected):
            async with uow.savepoint():
                log.add(held(uow, "org-1", "mt-2"), POLICY)
                raise Rejected("no")
        async with uow.savepoint():
            log.add(missed(uow, "org-2", "2026-Q3"), POLICY)
        assert await conn.fetchval("SELECT count(*) FROM org_life_log") == 0  # nothing before the flush
        async with statements_sent(conn) as statements:
            await uow.flush()
        assert len([q for q in statements if "org_life_log" in q]) == 1
        rows = await conn.fetch("SELECT org_id, kind, held, meeting_id, period, attendees, absentees "
                                "FROM org_life_log ORDER BY org_id")
        assert [tuple(r) for r in rows] == [("org-1", "theme_day", True, "mt-1", "2026-11", 2, 1),
                                            ("org-2", "branch_meeting", False, None, "2026-Q3", None, None)]
        assert sorted(tuple(r) for r in await conn.fetch("SELECT org_id, kind, held, n FROM org_life_counts")) == [
            ("org-1", "theme_day", True, 1), ("org-2", "branch_meeting", False, 1)]
        assert await conn.fetchval("SELECT count(*) FROM org_life_log WHERE answer IS NULL") == 0
        await uow.flush()  # nothing left to write
        assert await conn.fetchval("SELECT count(*) FROM org_life_log") == 2


async def test_a_flush_undone_with_its_savepoint_leaves_its_rows_to_write_again(pool):
    async with pool.acquire() as conn, conn.transaction():
        uow, log = await one_meeting_logged(conn)
        with pytest.raises(Rejected):
            async with uow.savepoint():  # e.g. a timer's round replayed, which flushes first
                log.add(held(uow, "org-1", "mt-2", days=1), POLICY)
                await uow.flush()
                assert await uow.conn.fetchval("SELECT count(*) FROM org_life_log") == 2
                raise Rejected("no")
        assert await conn.fetchval("SELECT count(*) FROM org_life_log") == 0  # the savepoint took both
        await uow.flush()
        assert [r[0] for r in await conn.fetch("SELECT meeting_id FROM org_life_log")] == ["mt-1"]
