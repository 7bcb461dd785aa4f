"""What the party timers read beside the tables, on a real PostgreSQL (no broker): the members of
each grid kept as the members are attached, transferred and removed (the coverage timer), and the
latest quarter given feedback kept beside each follow-up (the quarterly feedback timer). Each gives
what reading the tables themselves gave. And the report timer goes through every due member, a
batch a round, however many of them need no flag. A follow-up is settled when its unit's report is
learnt, however a registration and the report meet."""
from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import pytest

from schemas.orders import MemberRegistered
from schemas.party import AttachMember, EstablishOrg, OrgKind, ReportUnit
from services.kit.db import create_pool
from services.kit.migrations import KIT_MIGRATIONS, migrate
from services.kit.outbox import write as write_outbox
from services.kit.uow import UnitOfWork
from services.party.app.handler import PartyHandler
from services.party.app.settings import MIGRATIONS, PartySettings
from services.party.domain.members import MemberFollowUp
from services.party.projection import life, store
from services.party.projection import queries as party

from .test_party_one_batch import COMMUNITY, STREET, T0, pool  # noqa: F401 (pool: the fixture)
from .test_party_one_batch import batch as one_batch

pytestmark = pytest.mark.integration

GRID_A, GRID_B = COMMUNITY + "001", COMMUNITY + "002"


async def batch(pool, *payloads) -> None:
    """``payloads`` as one batch of the street's secretary, none of them refused."""
    uow = await one_batch(pool, payloads, T0)
    assert not uow.rejected, [(m.type, e.reason) for m, e in uow.rejected]


async def test_the_members_of_each_grid_are_kept_as_members_are_attached_transferred_and_removed(pool):
    """After members attached to two grids and to none, transferred between the grids, a grid
    branch established and members removed, the kept counts equal counting the members by grid,
    and the coverage timer's reads (members per grid, open gaps) and a street's coverage
    (``GET /v1/coverage``) equal what counting gave."""
    async def agree(conn) -> None:
        counted = await conn.fetch("SELECT grid_id, count(*) AS n FROM org_members WHERE grid_id IS NOT NULL "
                                   "GROUP BY grid_id")
        assert {tuple(r.values()) for r in await conn.fetch("SELECT grid_id, n FROM grid_member_counts")} == \
            {tuple(r.values()) for r in counted}
        members, _, _ = await store.coverage(conn)
        assert members == {r["grid_id"]: r["n"] for r in counted}
        shown = await party.coverage(conn, STREET)  # GET /v1/coverage: the street's grids, members counted
        assert {g["grid_id"]: g["members"] for g in shown["grids"] if g["members"]} == {
            r["grid_id"]: r["n"] for r in counted if r["grid_id"].startswith(STREET)}
        assert await party.open_gaps(conn) == await conn.fetchval(
            """SELECT count(*)::int FROM (SELECT grid_id FROM org_members WHERE grid_id IS NOT NULL
                                           GROUP BY grid_id HAVING count(*) >= 3) m
                WHERE NOT EXISTS (SELECT 1 FROM orgs o WHERE o.kind = 'grid_branch' AND o.grid_id = m.grid_id)""")

    await batch(pool, EstablishOrg(org_id="s", kind=OrgKind.STREET_WORKING_COMMITTEE, area_id=STREET,
                                   name="街道党工委"),
                EstablishOrg(org_id="c", kind=OrgKind.COMMUNITY_COMMITTEE, area_id=COMMUNITY, parent_id="s",
                             name="社区党委"),
                *(AttachMember(org_id="c", member_id=f"pm-a{i}", grid_id=GRID_A) for i in range(4)),
                AttachMember(org_id="c", member_id="pm-b0", grid_id=GRID_B),
                AttachMember(org_id="c", member_id="pm-none"))
    async with pool.acquire() as conn:
        await agree(conn)
        assert await party.open_gaps(conn) == 1  # GRID_A: four members, no branch
    await batch(pool, AttachMember(org_id="s", member_id="pm-a0", grid_id=GRID_B, reason="转接"),
                AttachMember(org_id="s", member_id="pm-a1", grid_id=GRID_B, reason="转接"))
    async with pool.acquire() as conn:
        await agree(conn)
        assert await party.open_gaps(conn) == 1  # now GRID_B
    await batch(pool, EstablishOrg(org_id="g", kind=OrgKind.GRID_BRANCH, area_id=GRID_B, parent_id="c",
                                   name="网格党支部"))
    async with pool.acquire() as conn:
        await agree(conn)
        await conn.execute("UPDATE org_members SET grid_id = NULL WHERE member_id = 'pm-b0'")
        await agree(conn)
        await conn.execute("DELETE FROM org_members WHERE grid_id = $1", GRID_A)
        await agree(conn)
        assert await conn.fetchval("SELECT count(*) FROM grid_member_counts WHERE grid_id = $1", GRID_A) == 0


async def test_the_feedback_timer_picks_the_members_reading_every_follow_up_picked(pool):
    """The feedback timer reads the members without the quarter's feedback through the latest
    quarter kept beside each follow-up; it picks the members that reading every follow-up's
    quarters picks: none given, older ones only, and a later one without this one (a clock set
    back), but not those given this quarter."""
    registered = datetime(2025, 1, 10, tzinfo=timezone.utc)
    given = {"pm-none": (), "pm-old": ("2025-Q4",), "pm-this": ("2025-Q4", "2026-Q1"), "pm-later": ("2026-Q2",),
             "pm-both": ("2026-Q1", "2026-Q2")}
    async with pool.acquire() as conn, conn.transaction():
        await life.FOLLOW_UPS.write(conn, {m: (0, MemberFollowUp(
            member_id=m, community_id=COMMUNITY, unit_id="u-1", registered_at=registered, feedback_quarters=q))
            for m, q in given.items()})
    async with pool.acquire() as conn:
        kept = {r["member_id"]: r["feedback_quarter"]
                for r in await conn.fetch("SELECT member_id, feedback_quarter FROM member_follow_ups")}
        assert kept == {"pm-none": "", "pm-old": "2025-Q4", "pm-this": "2026-Q1", "pm-later": "2026-Q2",
                        "pm-both": "2026-Q2"}
        assert await conn.fetchval(  # as migration 009 filled the column from the states kept before it
            """SELECT count(*) FROM member_follow_ups WHERE feedback_quarter <> coalesce(
                   (SELECT max(q COLLATE "C") FROM jsonb_array_elements_text(state->'feedback_quarters') AS q),
                   '')""") == 0
        for quarter in ("2025-Q4", "2026-Q1", "2026-Q2", "2026-Q3"):
            picked = await life.followed_members(conn, quarter, 100)
            every = await conn.fetch(
                "SELECT member_id FROM member_follow_ups WHERE NOT (state->'feedback_quarters') ? $1", quarter)
            assert sorted(picked) == sorted(r["member_id"] for r in every), quarter
        assert sorted(await life.followed_members(conn, "2026-Q1", 100)) == ["pm-later", "pm-none", "pm-old"]



async def test_the_report_timer_settles_the_members_whose_unit_reported_and_goes_on_to_the_others(pool):
    """Members past their deadline, most of them of a unit that reported, but not settled (the
    unit's report or their registration settles them: these are written as no message leaves
    them): a round of the timer flags those whose unit has not reported and settles the others,
    so the next round takes the members after them. Members it neither flagged nor marked stayed
    due and came first in every round: with more of them than a batch, the timer flagged nobody
    again."""
    handler = PartyHandler(PartySettings())
    registered = T0 - timedelta(days=60)
    members = {f"pm-{i}": ("u-reported" if i < 5 else "u-silent") for i in range(7)}  # the oldest five reported
    async with pool.acquire() as conn, conn.transaction():
        await life.FOLLOW_UPS.write(conn, {m: (0, MemberFollowUp(
            member_id=m, community_id=COMMUNITY, unit_id=u, registered_at=registered + timedelta(hours=i)))
            for i, (m, u) in enumerate(members.items())})
        await conn.execute("INSERT INTO units (unit_id, version, state, name, community_id, reported_at) "
                           "VALUES ('u-reported', 1, '{}', '报到单位', $1, $2)", COMMUNITY, registered)

    async def round_() -> list[str]:
        async with pool.acquire() as conn, conn.transaction():
            uow = UnitOfWork(conn, "party", T0)
            await handler.check_member_reports(uow, limit=3)
            await uow.flush()
            await write_outbox(conn, uow.records)
        uow.committed()
        return [e.subject for e in uow.emitted]

    flagged = [await round_() for _ in range(4)]
    assert flagged == [[], ["pm-5"], ["pm-6"], []]  # three settled; two settled and one flagged; the last flagged
    async with pool.acquire() as conn:
        states = {r["member_id"]: (r["overdue_flagged"], r["report_settled"])
                  for r in await conn.fetch("SELECT member_id, overdue_flagged, report_settled FROM member_follow_ups")}
        assert await life.follow_ups_due(conn, T0 - handler.report_window, 10, now=T0) == {}
    assert states == {m: (u == "u-silent", u == "u-reported") for m, u in members.items()}


async def test_migration_011_settles_the_follow_ups_whose_unit_had_reported(database_url, tmp_path):
    """Follow-ups kept before the unit's report settled them: the migration settles those whose
    unit has reported, column and state alike, and leaves the flagged and the others to follow."""
    before = tmp_path / "migrations"
    before.mkdir()
    for f in sorted(MIGRATIONS.glob("0*.sql")):
        if f.name < "011":
            (before / f.name).write_text(f.read_text(encoding="utf-8"), encoding="utf-8")
    p = await create_pool(database_url, "party", service="party", max_size=1)
    try:
        async with p.acquire() as conn:
            await migrate(conn, "party", [("kit", KIT_MIGRATIONS), ("party", before)])
            follow_ups = {"pm-1": ("u-reported", False), "pm-2": ("u-silent", False), "pm-3": ("u-reported", True)}
            await life.FOLLOW_UPS.write(conn, {m: (0, MemberFollowUp(
                member_id=m, community_id=COMMUNITY, unit_id=u, registered_at=T0, overdue_flagged=flagged))
                for m, (u, flagged) in follow_ups.items()})
            await conn.execute("INSERT INTO units (unit_id, version, state, name, community_id, reported_at) "
                               "VALUES ('u-reported', 1, '{}', '报到单位', $1, $2)", COMMUNITY, T0)
            await migrate(conn, "party", [("kit", KIT_MIGRATIONS), ("party", MIGRATIONS)])
            states = {m: s for m, (_, s) in (await life.FOLLOW_UPS.read(conn, list(follow_ups))).items()}
            columns = dict(await conn.fetch("SELECT member_id, report_settled FROM member_follow_ups"))
            assert await life.unsettled_of_unit(conn, "u-silent") == ["pm-2"]
    finally:
        await p.close()
    assert columns == {"pm-1": True, "pm-2": False, "pm-3": False}
    assert {m: s.report_settled for m, s in states.items()} == columns


async def test_a_registration_and_its_units_report_in_concurrent_batches_settle_the_follow_up(pool):
    """A member registered with a unit while the unit reports, each in a batch of its own lane at
    the same moment: whichever commits first, the follow-up is settled (the unit's name lock makes
    the second see the first), as a replay one after the other settles it."""
    async def together(i: int) -> None:
        unit, member = f"u-race-{i}", f"pm-race-{i}"
        await asyncio.gather(
            batch(pool, ReportUnit(unit_id=unit, name="同时报到的单位", community_id=COMMUNITY)),
            batch(pool, MemberRegistered(member_id=member, community_id=COMMUNITY, unit_id=unit, at=T0)))

    for i in range(30):
        await together(i)
    async with pool.acquire() as conn:
        settled = dict(await conn.fetch("SELECT member_id, report_settled FROM member_follow_ups "
                                        "WHERE member_id LIKE 'pm-race-%'"))
    assert len(settled) == 30 and all(settled.values()), sorted(m for m, s in settled.items() if not s)
