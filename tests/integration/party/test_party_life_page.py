"""An organisation's life read a page at a time (``GET /v1/orgs/{org_id}/life``), on PostgreSQL:
newest period first, within a period the latest recorded first; the cursor walks every entry
once; the counts of meetings held and periods missed cover them all on every page; one
statement (the organisation, its counts and the page)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import asyncpg
import pytest

from services.kit.db import _init_connection
from services.kit.migrations import KIT_MIGRATIONS, migrate
from services.party.projection import life
from tests.support.db import as_json, statements_sent, typed

MIGRATIONS = Path(__file__).resolve().parents[3] / "services" / "party" / "migrations"
T0 = datetime(2024, 1, 10, 9, tzinfo=timezone.utc)


async def life_page(conn, *args, **kwargs):
    """A page of :func:`life.life_page` with its entries as a client reads them (kept answers)."""
    org, entries, cursor = await life.life_page(conn, *args, **kwargs)
    return org, as_json(entries), cursor


@pytest.fixture
async def conn(database_url):
    c = await asyncpg.connect(database_url, server_settings={"search_path": "party"})
    await migrate(c, "party", [("kit", KIT_MIGRATIONS), ("party", MIGRATIONS)])
    await c.execute("SET search_path TO party")
    await _init_connection(c)
    await c.execute(
        """INSERT INTO orgs (org_id, kind, area_id, name, street_id, community_id, grid_id, state)
           VALUES ('b1', 'grid_branch', '110105001002003', 'n', '110105001', '110105001002', '110105001002003', '{}'),
                  ('b2', 'grid_branch', '110105001002004', 'n', '110105001', '110105001002', '110105001002004', '{}')""")
    rows = []
    for m in range(12):  # 2024-01 .. 2024-12: a committee meeting held, a theme day held or missed
        period = f"2024-{m + 1:02d}"
        at = T0 + timedelta(days=31 * m)
        rows.append((f"e-{m}-c", "b1", "committee_meeting", True, f"m-{m}", period, at, 5, 1, at))
        held = m % 3 != 0
        rows.append((f"e-{m}-t", "b1", "theme_day", held, f"t-{m}" if held else None, period, at if held else None,
                     4 if held else None, 0 if held else None, at + timedelta(hours=1)))
    rows.append(("e-other", "b2", "committee_meeting", True, "x", "2024-05", T0, 3, 0, T0))
    await c.executemany(
        """INSERT INTO org_life_log (event_id, org_id, kind, held, meeting_id, period, held_at, attendees, absentees, at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)""", rows)
    yield c
    await c.close()


async def test_pages_walk_every_entry_newest_first(conn):
    seen, cursor, pages = [], None, 0
    while True:
        org, entries, cursor = await life_page(conn, "b1", None, 5, cursor=cursor)
        pages += 1
        assert (org["held"], org["missed"]) == (20, 4)  # on every page
        assert org["grid_id"] == "110105001002003"
        seen += entries
        if cursor is None:
            break
    assert pages == 5 and len(seen) == 24 and len({e["event_id"] for e in seen}) == 24
    keys = [(e["period"], e["at"], e["event_id"]) for e in seen]
    assert keys == sorted(keys, reverse=True)
    assert seen[0]["period"] == "2024-12" and seen[-1]["period"] == "2024-01"
    assert {e["held"] for e in seen if e["kind"] == "committee_meeting"} == {True}
    # each entry's kept answer (migration 013) is its row's fields, in order, type for type
    fields = [c.strip() for c in life._LIFE_COLUMNS.split(",")]
    rows = {r["event_id"]: as_json(dict(r)) for r in await conn.fetch(f"SELECT {life._LIFE_COLUMNS} FROM org_life_log")}
    assert all(list(e) == fields and typed(e) == typed(rows[e["event_id"]]) for e in seen)


async def test_one_period_and_an_offset(conn):
    org, entries, cursor = await life_page(conn, "b1", "2024-04", 100)
    assert (org["held"], org["missed"]) == (1, 1) and cursor is None
    assert [(e["kind"], e["held"]) for e in entries] == [("theme_day", False), ("committee_meeting", True)]
    _, skipped, _ = await life_page(conn, "b1", None, 2, offset=2)
    _, first4, _ = await life_page(conn, "b1", None, 4)
    assert skipped == first4[2:]


async def test_every_periods_counts_are_the_kept_ones_and_one_periods_are_counted(conn):
    """The head reads the counts kept beside the entries (a few rows an organisation, whatever
    its years), not its whole log; one period's it counts from that period's entries."""
    assert await conn.fetchval("SELECT sum(n) FROM org_life_counts WHERE org_id = 'b1'") == 24
    await conn.execute("UPDATE org_life_counts SET n = n + 100 WHERE org_id = 'b1' AND kind = 'theme_day' AND held")
    org, _, _ = await life_page(conn, "b1", None, 5)
    assert (org["held"], org["missed"]) == (120, 4)
    org, _, _ = await life_page(conn, "b1", "2024-04", 5)
    assert (org["held"], org["missed"]) == (1, 1)


async def test_an_organisation_without_life_and_an_unknown_one(conn):
    await conn.execute("INSERT INTO orgs (org_id, kind, area_id, name, street_id, state) "
                       "VALUES ('sw', 'street_working_committee', '110105001', 'n', '110105001', '{}')")
    org, entries, cursor = await life_page(conn, "sw", None, 10)
    assert (org["held"], org["missed"], entries, cursor) == (0, 0, [], None)
    assert await life_page(conn, "nobody", None, 10) == (None, [], None)


async def test_one_statement(conn):
    await life_page(conn, "b1", None, 5)  # the first read of a connection looks its types up
    async with statements_sent(conn) as sent:
        await life_page(conn, "b1", None, 5)
    assert len(sent) == 1, sent
