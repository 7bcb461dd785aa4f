"""Every list and query of every service is served by an index, with history in the tables.

Each service's projection is filled with a few tens of thousands of rows (set-based INSERTs, one
statement per table), analysed, and each read query the HTTP API runs is planned by PostgreSQL
(``EXPLAIN (FORMAT JSON)``, with the parameters the query would get): no plan reads a big table
with a sequential scan. A new query without its index, or an index dropped, fails here.

The queries are the services' own functions, run against a connection that plans instead of
executing (:class:`Planner`), so what is checked is exactly the SQL the routes send.
"""
from __future__ import annotations

from datetime import datetime, timezone
import json
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from services.kit.identity import Principal, Scope
from services.kit.db import _init_connection as init_connection
from services.kit.migrations import KIT_MIGRATIONS, migrate
from services.kit.sql import Keyset

ROOT = Path(__file__).resolve().parents[2] / "services"
N = 30_000  # rows of each big table

STREET, COMMUNITY, GRID = "110105001", "110105001002", "110105001002003"
# ids: street 1101050SS, community <street>CCC, grid <community>GGG (20 streets, 5 communities each, 8 grids each)
_IDS = """
    '1101050' || lpad((i % 20)::text, 2, '0') AS street_id,
    '1101050' || lpad((i % 20)::text, 2, '0') || lpad((i / 20 % 5)::text, 3, '0') AS community_id,
    '1101050' || lpad((i % 20)::text, 2, '0') || lpad((i / 20 % 5)::text, 3, '0') || lpad((i / 100 % 8)::text, 3, '0')
        AS grid_id,
    timestamptz '2021-12-01 00:00+08' + (i * interval '1 hour') AS at"""


CLOSED_PERIODS = f"""
            INSERT INTO scorecards (scorecard_id, entity_type, entity_id, period, scheme_id, parent_id, score, rank,
                                    card, content_hash, envelope_id, published_at)
            SELECT 'sc-' || i, 'grid', grid_id || '-' || (i / 800), to_char(at, 'YYYY-MM'), 's1', community_id,
                   i % 100, i % 40 + 1, '{{}}', 'h', 'e', at
            FROM (SELECT i, {_IDS} FROM generate_series(1, {N}) i) s;
            INSERT INTO alerts (alert_id, scorecard_id, entity_type, entity_id, period, scheme_id, indicator, value,
                                threshold, alert, content_hash, envelope_id, raised_at)
            SELECT 'al-' || i, 'sc-' || i, 'grid', grid_id, to_char(at, 'YYYY-MM'), 's1',
                   (ARRAY['satisfaction_rate','on_time_rate'])[i % 2 + 1], 0.5, 0.8, '{{}}', 'h', 'e', at
            FROM (SELECT i, {_IDS} FROM generate_series(1, {N}) i) s;
            INSERT INTO period_closes (period, scheme_id, closed_at, scorecards, alerts, published, trigger)
            SELECT DISTINCT period, 's1', now(), 1, 1, 1, 'timer' FROM scorecards;"""
"""Assessment's closed periods: a scorecard and an alert a row of ``_IDS``, every period closed."""


class Planner:
    """An asyncpg connection that plans each read instead of running it, keeping the plans
    (an empty answer: no rows, a count of 0)."""

    def __init__(self, conn: asyncpg.Connection):
        self.conn = conn
        self.plans: list[tuple[str, dict[str, Any]]] = []

    async def fetch(self, sql: str, *args: Any) -> list:
        plan = await self.conn.fetchval(f"EXPLAIN (FORMAT JSON) {sql}", *args)
        self.plans.append((sql, (json.loads(plan) if isinstance(plan, str) else plan)[0]["Plan"]))
        return []

    async def fetchval(self, sql: str, *args: Any) -> Any:
        await self.fetch(sql, *args)
        return 0

    async def fetchrow(self, sql: str, *args: Any) -> None:
        await self.fetch(sql, *args)
        return None

    async def execute(self, sql: str, *args: Any) -> str:  # a write, planned (EXPLAIN does not run it)
        await self.fetch(sql, *args)
        return "DELETE 0"


def _scans(plan: dict[str, Any], limit: float | None = None):
    """(node, the rows of the nearest Limit above it, or None) for each node of ``plan``. A sort
    between the two reads all its input before the Limit takes any: it does not bound a scan."""
    yield plan, limit
    if plan["Node Type"] == "Sort":
        limit = None
    for child in plan.get("Plans", ()):
        yield from _scans(child, plan["Plan Rows"] if plan["Node Type"] == "Limit" else limit)


def _bounded(scan: dict[str, Any], limit: float | None) -> bool:
    """A scan under a Limit that the planner expects to stop early: more rows match than the
    limit takes (an unfiltered scan, or a filter most rows pass, like the issuer's postings),
    so it reads about limit / selectivity rows, never the table."""
    return limit is not None and scan["Plan Rows"] > limit


def seq_scans(planner: Planner, big: set[str]) -> list[str]:
    """The sequential scans of a big table in the plans, with their query (but for the scans a
    Limit bounds: the capped count of a list whose filter matches most rows)."""
    return [f"Seq Scan on {n['Relation Name']}: {sql}" for sql, plan in planner.plans for n, limit in _scans(plan)
            if n["Node Type"] == "Seq Scan" and n.get("Relation Name") in big and not _bounded(n, limit)]


async def check(conn: asyncpg.Connection, big: set[str], *queries) -> None:
    """Plan each query (an ``async (conn) -> ...`` function) and assert none scans a big table whole."""
    planner = Planner(conn)
    for q in queries:
        await q(planner)
    assert planner.plans
    bad = seq_scans(planner, big)
    assert not bad, "\n".join(bad)


async def migrated(database_url: str, schema: str) -> asyncpg.Connection:
    conn = await asyncpg.connect(database_url, server_settings={"search_path": schema})
    await migrate(conn, schema, [("kit", KIT_MIGRATIONS), (schema, ROOT / schema / "migrations")])
    await conn.execute(f"SET search_path TO {schema}")
    await init_connection(conn)  # jsonb parameters as the services pass them
    return conn


async def load(conn: asyncpg.Connection, sql: str, *tables: str) -> None:
    """Run ``sql`` (the INSERTs), then vacuum and analyse ``tables`` (visibility map and statistics)."""
    await conn.execute(sql)
    for t in tables:
        await conn.execute(f"VACUUM ANALYZE {t}")


def cursor(keyset: Keyset, **row: Any) -> str:
    return keyset.encode(row)


def principal(*roles: str, **scope: Any) -> Principal:
    return Principal("u-1", roles=frozenset(roles), scope=Scope(**{k: frozenset(v) for k, v in scope.items()}))


async def test_grid_lists_use_their_indexes(database_url):
    from services.grid.projection import queries as db
    from services.grid.projection import whistles as wdb

    conn = await migrated(database_url, "grid")
    try:
        await load(conn, f"""
            INSERT INTO cases (case_id, version, status, is_open, category, grid_id, community_id, street_id,
                               description, lat, lon, level, department, reporters, reported_at, updated_at,
                               dispatched_at, overdue, listed, supervision_count)
            SELECT 'c-' || i, 1, (ARRAY['reported','registered','dispatched','handled','closed','dismissed'])[i % 6 + 1],
                   i % 6 < 4, (ARRAY['environment.litter','road.pothole','dispute.neighbour','facility.light'])[i % 4 + 1],
                   grid_id, community_id, street_id, 'd', 39.9, 116.4, 'community',
                   '110105.d' || (i % 30), jsonb_build_array(jsonb_build_object('kind', 'resident', 'id', 'r-' || (i % 5000))),
                   at, at, CASE WHEN i % 3 = 0 THEN at END, i % 11 = 0, i % 97 = 0, (i % 13 = 0)::int
            FROM (SELECT i, {_IDS} FROM generate_series(1, {N}) i) s;
            INSERT INTO patrols (patrol_id, grid_id, community_id, street_id, grid_worker_id, started_at, ended_at,
                                 logged_at)
            SELECT 'p-' || i, grid_id, community_id, street_id, 'gw-' || (i % 800), at, at, at
            FROM (SELECT i, {_IDS} FROM generate_series(1, {N}) i) s;
            INSERT INTO whistles (whistle_id, version, state, street_id, blown_at, report_by, is_open)
            SELECT 'w-' || i, 1, jsonb_build_object('summons', jsonb_build_array(jsonb_build_object('department',
                   '110105.d' || (i % 30)))), street_id, at, at, i % 5 = 0
            FROM (SELECT i, {_IDS} FROM generate_series(1, {N}) i) s;""", "cases", "patrols", "whistles")
        everyone = db.Reader(everything=True)
        after = cursor(db.CASE_ORDER, reported_at=await conn.fetchval("SELECT reported_at FROM cases WHERE case_id = 'c-900'"),
                       case_id="c-900")
        F = db.CaseFilter
        cases = [F(), F(grid_id=GRID), F(community_id=COMMUNITY), F(street_id=STREET), F(status="handled"),
                 F(category="road.pothole"), F(department="110105.d7"), F(listed=True), F(supervised=True),
                 F(overdue=True), F(street_id=STREET, status="closed", category="road.pothole")]
        readers = [db.Reader.of(principal(r, **s)) for r, s in (
            ("street_officer", {"streets": {STREET}}), ("community_officer", {"communities": {COMMUNITY}}),
            ("grid_worker", {"grids": {GRID}}), ("department_officer", {"departments": {"110105.d7"}}),
            ("resident", {}))]
        await check(conn, {"cases", "patrols", "whistles"},
                    *[lambda c, f=f: db.list_cases(c, f, 50, 0, everyone) for f in cases],
                    *[lambda c, f=f: db.list_cases(c, f, 50, 0, everyone, after) for f in cases],
                    *[lambda c, r=r: db.list_cases(c, F(), 50, 0, r, after) for r in readers],
                    lambda c: db.list_cases(c, F(grid_id=GRID), 50, 0, readers[0]),
                    lambda c: db.get_case(c, "c-5", readers[0]),
                    lambda c: db.grid_counts(c, GRID),
                    *[lambda c, a=a: db.list_patrols(c, g, w, 50, 0, r, a)
                      for g, w, r in ((None, None, everyone), (GRID, None, everyone), (None, "gw-3", everyone),
                                      (None, None, readers[0]), (None, None, readers[1]), (None, None, readers[2]))
                      for a in (None, cursor(db.PATROL_ORDER, started_at=await conn.fetchval(
                          "SELECT started_at FROM patrols WHERE patrol_id = 'p-77'"), patrol_id="p-77"))],
                    *[lambda c, kw=kw: wdb.list_whistles(c, limit=50, offset=0, **kw) for kw in (
                        {"street_id": None, "department": None, "open": None},
                        {"street_id": STREET, "department": None, "open": None},
                        {"street_id": None, "department": "110105.d3", "open": None},
                        {"street_id": None, "department": None, "open": True,
                         "reader": wdb.WhistleReader.of(principal("street_officer", streets={STREET}))})],
                    lambda c: db.open311_requests(c, limit=1000),
                    lambda c: db.open311_requests(c, service_codes=["road.pothole"], open_closed=["open"], limit=1000),
                    lambda c: db.open311_requests(c, case_id="c-5", limit=1))
    finally:
        await conn.close()


async def test_orders_and_party_lists_use_their_indexes(database_url):
    from services.orders.app import access as orders_access
    from services.orders.projection import queries as orders
    from services.party.app import access as party_access
    from services.party.projection import councils, life
    from services.party.projection import queries as party

    conn = await migrated(database_url, "orders")
    try:
        await load(conn, f"""
            INSERT INTO orders (order_id, status, category, community_id, grid_id, resident_id, assignee_id, placed_at,
                                state)
            SELECT 'o-' || i, (ARRAY['placed','dispatched','accepted','completed','evaluated','cancelled'])[i % 6 + 1],
                   (ARRAY['medical','repair','companionship','cleaning'])[i % 4 + 1], community_id, grid_id,
                   'r-' || (i % 5000), 'm-' || (i % 700), at, '{{}}'
            FROM (SELECT i, {_IDS} FROM generate_series(1, {N}) i) s;""", "orders")
        after = cursor(orders.ORDER_ORDER, placed_at=await conn.fetchval("SELECT placed_at FROM orders WHERE order_id = 'o-9'"),
                       order_id="o-9")
        readers = [principal("street_officer", streets={STREET}), principal("community_officer", communities={COMMUNITY}),
                   principal("resident"), principal("party_member")]
        await check(conn, {"orders"},
                    *[lambda c, kw=kw, a=a: orders.list_orders(c, cursor=a, **kw) for a in (None, after) for kw in (
                        {}, {"community_id": COMMUNITY}, {"status": "placed"}, {"category": "medical"},
                        {"assignee_id": "m-5"}, {"community_id": COMMUNITY, "status": "completed"})],
                    *[lambda c, p=p: orders.list_orders(c, restrict=lambda w: orders_access.order_filter(w, p))
                      for p in readers],
                    lambda c: orders.get_order(c, "o-5"))
        # a community's resources: its claimed posts (and the open orders of the members listed)
        await load(conn, f"""
            INSERT INTO posts (post_id, member_id, community_id, capacity, status, title, claimed_at, state)
            SELECT 'p-' || i, 'm-' || (i % 700), community_id, 3, CASE WHEN i % 7 = 0 THEN 'released' ELSE 'claimed' END,
                   't', at, jsonb_build_object('categories', jsonb_build_array(
                       (ARRAY['medical','repair','companionship','cleaning'])[i % 4 + 1]))
            FROM (SELECT i, {_IDS} FROM generate_series(1, {N}) i) s;""", "posts")
        await check(conn, {"orders", "posts"},
                    *[lambda c, kw=kw: orders.community_resources(c, COMMUNITY, **kw) for kw in (
                        {}, {"category": "repair", "per_category": 10, "after": "p-500"})])
    finally:
        await conn.close()

    conn = await migrated(database_url, "party")
    try:
        await load(conn, f"""
            INSERT INTO orgs (org_id, kind, parent_id, area_id, name, street_id, community_id, grid_id, state)
            SELECT 'org-' || i, (ARRAY['grid_branch','community_committee','building_group','unit_branch'])[i % 4 + 1],
                   'org-' || (i / 10), grid_id, 'n', street_id, community_id, grid_id, '{{}}'
            FROM (SELECT i, {_IDS} FROM generate_series(1, {N}) i) s;
            INSERT INTO units (unit_id, version, state, name, community_id)
            SELECT 'u-' || i, 1, '{{}}', 'n', community_id FROM (SELECT i, {_IDS} FROM generate_series(1, {N}) i) s;
            INSERT INTO projects (project_id, version, state, community_id, status, posted_at)
            SELECT 'pr-' || i, 1, '{{}}', community_id, (ARRAY['posted','claimed','completed','rated'])[i % 4 + 1], at
            FROM (SELECT i, {_IDS} FROM generate_series(1, {N}) i) s;
            INSERT INTO org_life_log (event_id, org_id, kind, held, meeting_id, period, held_at, attendees, absentees, at)
            SELECT 'e-' || i, 'org-' || (i % 500), 'theme_day', i % 7 <> 0, 'm-' || i, to_char(at, 'YYYY-MM'), at, 5, 1, at
            FROM (SELECT i, {_IDS} FROM generate_series(1, {N}) i) s;""", "orgs", "units", "projects", "org_life_log")
        officer = principal("street_officer", streets={STREET})
        await check(conn, {"orgs", "units", "projects", "org_life_log"},
                    *[lambda c, kw=kw, a=a: party.list_orgs(c, cursor=a, **kw) for a in (None, cursor(party.ORG_ORDER, org_id="org-5"))
                      for kw in ({}, {"kind": "grid_branch"}, {"area_id": COMMUNITY}, {"parent_id": "org-7"},
                                 {"restrict": lambda w: party_access.org_filter(w, officer)})],
                    lambda c: councils.list_units(c, COMMUNITY),
                    lambda c: councils.list_units(c, COMMUNITY, cursor=cursor(councils.UNIT_ORDER, unit_id="u-5")),
                    lambda c: councils.list_projects(c, COMMUNITY),
                    lambda c: councils.list_projects(c, COMMUNITY, status="posted"),
                    *[lambda c, p=p, a=a: life.life_page(c, "org-7", p, 100, cursor=a) for p in (None, "2023-05")
                      for a in (None, cursor(life.LIFE_ORDER, period="2023-05", at=datetime(2023, 5, 2, tzinfo=timezone.utc),
                                             event_id="e-9"))])
    finally:
        await conn.close()


async def test_points_and_assessment_queries_use_their_indexes(database_url):
    from services.assessment.projection import store
    from services.points.projection import queries as points

    conn = await migrated(database_url, "points")
    try:
        await load(conn, f"""
            INSERT INTO accounts (account_id, kind, holder_id, community_id, state)
            SELECT 'resident:r-' || i, 'resident', 'r-' || i, '1101050' || lpad((i % 20)::text, 2, '0') || '001', '{{}}'
            FROM generate_series(1, 2000) i
            UNION ALL SELECT 'merchant:m-' || i, 'merchant', 'm-' || i, NULL, '{{}}'::jsonb FROM generate_series(1, 20) i
            UNION ALL SELECT 'issuer:district', 'issuer', 'district', NULL, '{{}}'::jsonb;
            INSERT INTO postings (transfer_id, debit_account, credit_account, amount, kind, posted_at, event)
            SELECT 't-' || i, 'issuer:district', 'resident:r-' || (i % 2000 + 1), 10, 'award', at, '{{}}'
            FROM (SELECT i, {_IDS} FROM generate_series(1, {N}) i) s;
            INSERT INTO postings (transfer_id, debit_account, credit_account, amount, kind, posted_at, event)
            SELECT 'x-' || i, 'resident:r-' || (i % 2000 + 1), 'merchant:m-' || (i % 20 + 1), 1, 'redemption', at, '{{}}'
            FROM (SELECT i, {_IDS} FROM generate_series(1, {N} / 4) i) s;
            INSERT INTO earnings (transfer_id, account_id, amount, community_id, earned_at, month, year)
            SELECT p.transfer_id, p.credit_account, p.amount, a.community_id, p.posted_at, to_char(p.posted_at, 'YYYY-MM'),
                   to_char(p.posted_at, 'YYYY')
            FROM postings p JOIN accounts a ON a.account_id = p.credit_account WHERE p.kind = 'award';""", "accounts", "postings", "earnings")
        seq = await conn.fetchval("SELECT max(seq) / 2 FROM postings")
        after = cursor(points.POSTING_ORDER, seq=seq)
        await check(conn, {"postings", "earnings", "earned_totals"},
                    *[lambda c, a=a, acc=acc: points.statement(c, acc, None, 50, 0, a)
                      for a in (None, after) for acc in ("issuer:district", "resident:r-7", "merchant:m-3")],
                    *[lambda c, a=a: points.redemptions(c, "merchant:m-3", None, 50, 0, a) for a in (None, after)],
                    *[lambda c, p=p, cid=cid: points.rankings(c, period=p, community_id=cid, candidates=10, limit=20)
                      for p in ("2023-05", "2024") for cid in (None, "110105003001")],
                    lambda c: points.account(c, "resident:r-7", everyone=True))
    finally:
        await conn.close()

    conn = await migrated(database_url, "assessment")
    try:
        await load(conn, CLOSED_PERIODS, "scorecards", "alerts", "period_closes")
        rank_after = cursor(store.RANKING_ORDER, parent_key=COMMUNITY, rank_key=3, entity_id="x")
        scope = Scope(streets=frozenset({STREET}))
        await check(conn, {"scorecards", "alerts"},
                    *[lambda c, kw=kw, a=a: store.ranking(c, period="2023-05", scheme_id="s1", entity_type="grid",
                                                          limit=100, offset=0, cursor=a, **kw)
                      for a in (None, rank_after) for kw in ({"parent_id": None}, {"parent_id": COMMUNITY},
                                                             {"parent_id": None, "scope": scope})],
                    *[lambda c, kw=kw: store.alerts(c, limit=100, offset=0, **kw) for kw in (
                        {"period": "2023-05", "entity_type": None, "indicator": None},
                        {"period": None, "entity_type": "grid", "indicator": "on_time_rate"},
                        {"period": "2023-05", "entity_type": "grid", "indicator": None, "scope": scope})])
    finally:
        await conn.close()


async def test_the_event_logs_retention_reads_only_what_it_deletes(database_url):
    """The retention timer deletes a batch of the assessment log's oldest rows every few minutes;
    the log holds years of events, so finding them takes the index on when they were recorded,
    not a scan of the log (as it did, and sorted it). A worker's start reads the newest events
    through the same index. The kit's own tables (inbox, outbox,
    command outcomes) are as large as their retention window, not the history, and are scanned."""
    from services.assessment.projection import store
    from services.kit import retention

    conn = await migrated(database_url, "assessment")
    try:
        await load(conn, f"""
            INSERT INTO event_log (source, id, topic, type, data, time, occurred_at, type_rank, recorded_at, undo)
            SELECT '/services/grid', 'e-' || i, 'grid.events.v1', 'case.reported', '{{}}', at, at, 0,
                   now() - ({N} - i) * interval '1 hour', '[]'
            FROM (SELECT i, {_IDS} FROM generate_series(1, {N}) i) s;""", "event_log")
        await check(conn, {"event_log"},
                    *[lambda c, d=d: retention.prune(c, retention.Rule("event_log", "recorded_at", d), 5000)
                      for d in (30, 800)],
                    store.newest_event_time)  # at each start of a worker (its lag gauge)
    finally:
        await conn.close()
