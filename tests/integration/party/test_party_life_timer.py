"""The organisational-life timer on a real PostgreSQL (no broker): an organisation's life, which
holds every meeting of its years, is loaded once a month, not each round.

Every period of organisational life ends when a Shanghai month begins, so within a month the
timer loads only what it has not checked yet (an organisation established since). After each of
its rounds a worker that had checked nothing (a fresh handler, as after a restart) finds nothing
more: nothing it left unloaded was due."""
from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import pytest

from schemas.envelope import Message, envelope_for
from schemas.party import EstablishOrg, OrgKind
from services.kit.clock import SHANGHAI
from services.kit.handlers import dispatch
from services.kit.identity import Principal, Scope
from services.kit.outbox import write as write_outbox
from services.kit.uow import UnitOfWork
from services.party.app.handler import PartyHandler
from services.party.app.settings import MIGRATIONS, PartySettings
from services.party.projection.life import ORG_LIFE
from tests.support.db import migrated_pool

from .support import run_timer

pytestmark = pytest.mark.integration

STREET, COMMUNITY, OTHER = "110105001", "110105001005", "110105001003"
SECRETARY = Principal("sec-1", frozenset({"party_secretary"}), Scope.of(streets=[STREET]))


@pytest.fixture
async def pool(database_url):
    async with migrated_pool(database_url, "party", MIGRATIONS) as p:
        yield p


async def establish(pool, now: datetime, *orgs: EstablishOrg) -> None:
    async with pool.acquire() as conn, conn.transaction():
        uow = UnitOfWork(conn, "party", now)
        msgs = [Message(envelope=envelope_for(o, source="/tests", id=str(uuid.uuid4())), payload=o,
                        principal=SECRETARY) for o in orgs]
        assert await dispatch(PartyHandler(PartySettings()), uow, msgs) == [] and not uow.rejected
        await uow.flush()
        await write_outbox(conn, uow.records)


async def tick(pool, handler: PartyHandler, now: datetime) -> int:
    """One round of the life timer, committed as the kit's timer does: what it reported."""
    return (await run_timer(pool, handler.check_org_life, now))[0]


async def test_an_organisations_life_is_loaded_once_a_month_and_nothing_due_is_missed(pool, monkeypatch):
    loaded: list[set[str]] = []
    read = ORG_LIFE.read

    async def counted(conn, ids, **kw):
        loaded.append(set(ids))
        return await read(conn, ids, **kw)

    monkeypatch.setattr(ORG_LIFE, "read", counted)
    street, community, other = "o-s", "o-c", "o-o"
    await establish(pool, datetime(2026, 8, 20, 10, tzinfo=SHANGHAI),
                    EstablishOrg(org_id=street, kind=OrgKind.STREET_WORKING_COMMITTEE, area_id=STREET,
                                 name="街道党工委"),
                    EstablishOrg(org_id=community, kind=OrgKind.COMMUNITY_COMMITTEE, area_id=COMMUNITY,
                                 parent_id=street, name="社区党委"))
    worker = PartyHandler(PartySettings())
    november = datetime(2026, 11, 10, 9, tzinfo=SHANGHAI)

    async def round_at(now: datetime) -> tuple[int, set[str]]:
        del loaded[:]
        found = await tick(pool, worker, now)
        ids = set().union(*loaded)
        assert await tick(pool, PartyHandler(PartySettings()), now) == 0  # a restarted worker finds nothing more
        return found, ids

    found, ids = await round_at(november)
    assert found > 0 and ids == {street, community}  # September, October (and the third quarter) missed
    assert await round_at(november + timedelta(hours=1)) == (0, set())
    await establish(pool, november + timedelta(hours=1, minutes=30),
                    EstablishOrg(org_id=other, kind=OrgKind.COMMUNITY_COMMITTEE, area_id=OTHER, parent_id=street,
                                 name="另一社区党委"))
    assert await round_at(november + timedelta(hours=2)) == (0, {other})  # new: its first period is December
    assert await round_at(november + timedelta(days=5)) == (0, set())
    found, ids = await round_at(datetime(2026, 12, 1, 0, 30, tzinfo=SHANGHAI))
    assert found > 0 and ids == {street, community, other}  # November closed: everyone again
    assert await round_at(datetime(2026, 12, 1, 1, 30, tzinfo=SHANGHAI)) == (0, set())
