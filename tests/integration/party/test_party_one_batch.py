"""Organisational life and commitments in one batch with the organisation they name, on a real
PostgreSQL (no broker).

A worker takes whatever its fetch brings in one batch (and a rebuild replays many of its batches
as one): an organisation established and a member attached earlier in the batch must be known
to the messages after them, before the batch is written. Each batch runs as the kit runs it:
dispatch, flush, outbox, commit; then the same commands one batch each give the same outcome."""
from __future__ import annotations

import uuid
from datetime import datetime, timezone

import pytest

from schemas.envelope import Message, envelope_for
from schemas.party import AttachMember, EstablishOrg, FulfilCommitment, MakeCommitment, OrgKind, OrgLifeKind, RecordOrgLife
from services.kit.handlers import dispatch
from services.kit.identity import Principal, Scope
from services.kit.outbox import write as write_outbox
from services.kit.uow import UnitOfWork
from services.party.app.handler import PartyHandler
from services.party.app.settings import MIGRATIONS, PartySettings
from tests.support.db import migrated_pool

pytestmark = pytest.mark.integration

STREET, COMMUNITY = "110105001", "110105001005"
SECRETARY = Principal("sec-1", frozenset({"party_secretary"}), Scope.of(streets=[STREET]))
T0 = datetime(2026, 11, 23, 2, 0, tzinfo=timezone.utc)


@pytest.fixture
async def pool(database_url):
    async with migrated_pool(database_url, "party", MIGRATIONS) as p:
        yield p


async def batch(pool, payloads, now: datetime) -> UnitOfWork:
    """``payloads`` as one batch sent by the street's secretary, committed as the kit's consumer does."""
    async with pool.acquire() as conn, conn.transaction():
        uow = UnitOfWork(conn, "party", now)
        msgs = [Message(envelope=envelope_for(p, source="/tests", id=str(uuid.uuid4())), payload=p,
                        principal=SECRETARY) for p in payloads]
        assert await dispatch(PartyHandler(PartySettings()), uow, msgs) == []
        await uow.flush()
        await write_outbox(conn, uow.records)
    uow.committed()
    return uow


def commands(tag: str) -> list:
    street, community, member = f"o-s-{tag}", f"o-c-{tag}", f"pm-{tag}"
    return [
        EstablishOrg(org_id=street, kind=OrgKind.STREET_WORKING_COMMITTEE, area_id=STREET, name="街道党工委"),
        EstablishOrg(org_id=community, kind=OrgKind.COMMUNITY_COMMITTEE, area_id=COMMUNITY, parent_id=street,
                     name="社区党委"),
        AttachMember(org_id=community, member_id=member),
        RecordOrgLife(org_id=community, meeting_id=f"m-{tag}", kind=OrgLifeKind.THEME_DAY,
                      held_at=T0, attendees=[member], absentees=[], topic="学习"),
        MakeCommitment(member_id=member, commitment_id=f"c-{tag}", year=2026, text="每月一次志愿服务"),
        FulfilCommitment(member_id=member, commitment_id=f"c-{tag}", note="已完成"),
    ]


def outcome(uows: list[UnitOfWork]) -> tuple[list[str], list[str]]:
    """The event types published and the rejection reasons, in order."""
    return ([e.type for u in uows for e in u.emitted if not e.type.endswith(".rejected.v1")],
            [e.reason for u in uows for _, e in u.rejected])


async def test_a_meeting_and_a_commitment_after_their_organisation_in_the_same_batch_are_recorded(pool):
    together = outcome([await batch(pool, commands("one"), T0)])
    apart = outcome([await batch(pool, [c], T0) for c in commands("each")])
    assert together == apart
    events, refused = together
    assert refused == []
    assert "party.org_life.held.v1" in events and "party.commitment.fulfilled.v1" in events
    async with pool.acquire() as conn:
        held = await conn.fetch("SELECT org_id FROM org_life_log WHERE held ORDER BY org_id")
        assert [r["org_id"] for r in held] == ["o-c-each", "o-c-one"]


async def test_an_organisation_is_read_with_its_history_members_and_children_in_one_statement(pool):
    from services.party.projection import queries
    from tests.support.db import statements_sent

    await batch(pool, commands("read"), T0)
    async with pool.acquire() as conn:
        await queries.get_org(conn, "nobody")  # the connection's first arrays of records: types looked up
        async with statements_sent(conn) as sent:
            street, community = await queries.get_org(conn, "o-s-read"), await queries.get_org(conn, "o-c-read")
    assert len(sent) == 2
    assert [c["org_id"] for c in street["children"]] == ["o-c-read"] and street["members"] == []
    assert [(m["member_id"], m["central_household"]) for m in community["members"]] == [("pm-read", False)]
    assert [h["type"] for h in community["history"]][:2] == ["party.org.established.v1", "party.member.attached.v1"]
    assert community["children"] == [] and "state" not in community
