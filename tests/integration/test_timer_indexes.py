"""Every periodic timer's SQL stays cheap as the history grows.

The timers run every few seconds to every hour, on every worker or on one at a time, for years:
a timer that reads a table growing with the history reads more on every round, and a whole table
read every few seconds is soon most of what the database does. As in
:mod:`tests.integration.test_list_indexes`, each service's tables are filled with a few tens of
thousands of rows (set-based INSERTs) shaped like years of history, where most rows are done with
(closed cases, completed orders, credited deeds, members given their feedback) and a few are live
work; each statement a timer sends is planned by PostgreSQL (``EXPLAIN (FORMAT JSON)``) through
the services' own functions, against a connection that plans instead of executing.

No plan may read a big table whole. Besides the sequential scans no LIMIT bounds (the list
test's rule), a timer must not pick its rows by a filter alone, not even under a LIMIT: a list's
LIMIT stops a scan early because most rows match, but a timer looks for what is due, and most
of the time nothing is, so such a scan reads every row to find none. Reads of what is due go
through an index condition, or through a partial index that holds the live rows only (open cases
with a deadline, dispatched orders, approved deeds): their cost follows the live work, not the
history.

A timer's function itself writes, and goes on with the rows its reads return: the reads it makes
are planned here by calling the projection functions it calls, with the arguments it passes.
Writes go by primary key (the aggregate upserts, the history appends) and are not planned here.
"""
from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta, timezone
from typing import Any

import asyncpg

from tests.integration.test_list_indexes import (
    _IDS, CLOSED_PERIODS, N, Planner, _bounded, _scans, load, migrated, seq_scans,
)

NOW = datetime(2025, 6, 1, 8, tzinfo=timezone.utc)  # after the rows of _IDS (an hour each from 2021-12-01)


class Zeros:
    """A planning connection whose ``fetchrow`` answers a row of zeros: a metrics read goes on to
    build its snapshot from it (the plain Planner answers None, a row not found)."""

    def __init__(self, planner: Planner):
        self.planner = planner

    def __getattr__(self, name: str) -> Any:
        return getattr(self.planner, name)

    async def fetchrow(self, sql: str, *args: Any) -> dict:
        await self.planner.fetch(sql, *args)
        return defaultdict(int)


def whole_reads(planner: Planner, big: set[str], partial: set[str]) -> list[str]:
    """The scans of a big table that read it whole besides the sequential scans :func:`seq_scans`
    finds: a scan whose rows a filter alone picks (no index condition), even under a LIMIT; an
    index read from end to end with no LIMIT to stop it (but a partial index: it holds the live
    rows only)."""
    found = []
    for sql, plan in planner.plans:
        for n, limit in _scans(plan):
            if (n.get("Relation Name") not in big or "Index Cond" in n
                    or n["Node Type"] not in ("Seq Scan", "Index Scan", "Index Only Scan")):
                continue
            what = f"{n['Node Type']} on {n['Relation Name']}"
            what += f" using {n['Index Name']}" if "Index Name" in n else ""
            if "Filter" in n and (n["Node Type"] != "Seq Scan" or _bounded(n, limit)):  # else seq_scans has it
                found.append(f"{what} picking its rows by {n['Filter']}: {sql}")
            elif "Filter" not in n and n["Node Type"] != "Seq Scan" and n["Index Name"] not in partial \
                    and not _bounded(n, limit):
                found.append(f"{what}, the whole index: {sql}")
    return found


async def check(conn: asyncpg.Connection, big: set[str], *queries) -> None:
    """Plan each query (an ``async (conn) -> ...`` function) and assert none reads a big table whole."""
    planner = Planner(conn)
    for q in queries:
        await q(planner)
    assert planner.plans
    partial = {r[0] for r in await conn.fetch(
        "SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indpred IS NOT NULL")}
    bad = seq_scans(planner, big) + whole_reads(planner, big, partial)
    assert not bad, "\n".join(bad)


async def test_orders_timers_use_their_indexes(database_url):
    """expire_dispatches: the dispatched orders past accept_by (the partial index of dispatched
    orders: live work), their states, and for each the dispatch candidates of its community (the
    community's claimed posts, with the open orders of their members through the partial index
    of held orders). status_gauge: the counts kept beside the orders."""
    from services.orders.projection import queries as orders
    from services.orders.projection import store

    conn = await migrated(database_url, "orders")
    try:
        # years of orders, nearly all done with; 2 in 100 dispatched or accepted (held by a member)
        await load(conn, f"""
            INSERT INTO orders (order_id, status, category, community_id, grid_id, resident_id, assignee_id, placed_at,
                                accept_by, state)
            SELECT 'o-' || i, CASE i % 100 WHEN 0 THEN 'dispatched' WHEN 1 THEN 'accepted' WHEN 2 THEN 'placed'
                                   ELSE (ARRAY['completed','evaluated','cancelled'])[i % 3 + 1] END,
                   (ARRAY['medical','repair','companionship','cleaning'])[i % 4 + 1], community_id, grid_id,
                   'r-' || (i % 5000), CASE WHEN i % 100 <> 2 THEN 'm-' || (i % 700) END, at,
                   CASE WHEN i % 100 = 0 THEN at + interval '2 hours' END, '{{}}'
            FROM (SELECT i, {_IDS} FROM generate_series(1, {N}) i) s;
            INSERT INTO posts (post_id, member_id, community_id, capacity, status, title, claimed_at, state)
            SELECT 'p-' || i, 'm-' || (i % 700), community_id, 3,
                   CASE WHEN i % 20 = 0 THEN 'claimed' ELSE 'released' END, 't', at, '{{}}'
            FROM (SELECT i, {_IDS} FROM generate_series(1, {N}) i) s;""", "orders", "posts", "order_counts")
        community = await conn.fetchval("SELECT community_id FROM orders WHERE order_id = 'o-100'")
        # the candidates' open orders are counted for each candidate's member, through the partial
        # index of held orders by assignee: live work, not the history
        await check(conn, {"orders", "posts"},
                    lambda c: store.due_for_expiry(c, NOW, 200),
                    lambda c: store.ORDERS.read(c, ["o-100", "o-200"], skip_locked=True),
                    lambda c: store.candidates(c, community),
                    lambda c: orders.status_counts(c))
    finally:
        await conn.close()


async def test_points_timers_use_their_indexes(database_url):
    """The expiry timer: the resident accounts holding a lot old enough (the partial index of
    accounts by their oldest lot), locked, and where their lots came from; the redemption codes
    expired a day ago. The deed credit timer: the approved deeds whose credit was refused (the
    partial index of approved deeds: live work), and the postings already made for them. The
    ledger fold: the deltas appended since the last fold. The accounts gauge: the accounts by kind."""
    from services.points.projection import approvals, deeds, ledger
    from services.points.projection import queries as points

    conn = await migrated(database_url, "points")
    try:
        await load(conn, f"""
            INSERT INTO accounts (account_id, kind, holder_id, community_id, oldest_lot_at, state)
            SELECT 'resident:r-' || i, 'resident', 'r-' || i, community_id, CASE WHEN i % 10 <> 0 THEN at END, '{{}}'
            FROM (SELECT i, {_IDS} FROM generate_series(1, {N}) i) s
            UNION ALL SELECT 'merchant:m-' || i, 'merchant', 'm-' || i, NULL, NULL, '{{}}'::jsonb
            FROM generate_series(1, 200) i
            UNION ALL SELECT 'issuer:' || c, 'issuer', c, c, NULL, '{{}}'::jsonb
            FROM (SELECT DISTINCT community_id AS c FROM (SELECT i, {_IDS} FROM generate_series(1, {N}) i) s) s;
            INSERT INTO postings (transfer_id, debit_account, credit_account, amount, kind, posted_at, event)
            SELECT 't-' || i, 'issuer:' || community_id, 'resident:r-' || (i % {N} + 1), 10, 'award', at, '{{}}'
            FROM (SELECT i, {_IDS} FROM generate_series(1, {N}) i) s;
            INSERT INTO deeds (deed_id, version, account_id, community_id, category, status, refused_reason, state,
                               submitted_at, reviewed_at)
            SELECT 'd-' || i, 1, 'resident:r-' || (i % {N} + 1), community_id, 'help',
                   CASE WHEN i % 200 = 0 THEN 'approved' WHEN i % 200 = 1 THEN 'submitted'
                        WHEN i % 7 = 0 THEN 'rejected' ELSE 'credited' END,
                   CASE WHEN i % 200 = 0 THEN 'cap_reached' END, '{{}}', at, at + interval '1 day'
            FROM (SELECT i, {_IDS} FROM generate_series(1, {N}) i) s;
            INSERT INTO redemption_codes (code_hash, account_id, amount, created_at, expires_at)
            SELECT 'h-' || i, 'resident:r-' || i, 5, timestamptz '{NOW.isoformat()}' - i * interval '2 seconds',
                   timestamptz '{NOW.isoformat()}' - i * interval '2 seconds' + interval '5 minutes'
            FROM generate_series(1, {N}) i;""", "accounts", "postings", "deeds", "redemption_codes", "ledger_deltas")
        ids = ["resident:r-7", "resident:r-70"]
        await check(conn, {"accounts", "postings", "deeds", "redemption_codes"},
                    lambda c: ledger.expiry_candidates(c, NOW - timedelta(days=2 * 365 - 1), 500),
                    lambda c: ledger.load_accounts(c, ids),
                    lambda c: ledger.origin_accounts(c, ids),
                    lambda c: approvals.forget_expired_codes(c, NOW - timedelta(days=1)),
                    lambda c: deeds.approved_uncredited(c, 200),
                    lambda c: deeds.DEEDS.read(c, ["d-200", "d-400"], skip_locked=True),
                    lambda c: ledger.holder_account_ids(c, [("resident", "r-7"), ("issuer", "110105001002")]),
                    lambda c: ledger.postings(c, ["deed:d-200", "deed:d-400"]),
                    lambda c: ledger.posting(c, "deed:d-200"),
                    lambda c: points.fold_deltas(c),
                    lambda c: points.accounts_by_kind(c))
    finally:
        await conn.close()


async def test_grid_timers_use_their_indexes(database_url):
    """overdue: the cases whose next check has come (the partial index of the cases with one:
    the open cases with a deadline ahead), locked. metrics: the tallies and patrol counts kept
    beside the cases. whistles: the whistles whose report_by has come (the partial index of the
    whistles with a department still to report), locked. whistle_metrics: the whistles blown and
    what the summoned departments did."""
    from services.grid.app.metrics import HANDLING_BUCKETS
    from services.grid.projection import queries as db
    from services.grid.projection import store
    from services.grid.projection import whistles as wdb

    conn = await migrated(database_url, "grid")
    try:
        # years of cases, nearly all closed; 2 in 100 open with a deadline ahead
        await load(conn, f"""
            INSERT INTO case_state (case_id, version, state, next_check_at)
            SELECT 'c-' || i, 5, '{{}}', CASE WHEN i % 50 = 0 THEN at + interval '3 days' END
            FROM generate_series(1, {N}) i, LATERAL (SELECT {_IDS}) s;
            INSERT INTO cases (case_id, version, status, is_open, category, grid_id, community_id, street_id,
                               description, lat, lon, level, department, reporters, reported_at, updated_at,
                               dispatched_at, overdue, listed, supervision_count)
            SELECT 'c-' || i, 1, CASE WHEN i % 50 = 0 THEN 'dispatched' ELSE 'closed' END, i % 50 = 0,
                   (ARRAY['environment.litter','road.pothole','dispute.neighbour','facility.light'])[i % 4 + 1],
                   grid_id, community_id, street_id, 'd', 39.9, 116.4, 'community', '110105.d' || (i % 30),
                   '[]', at, at, at, i % 11 = 0, i % 97 = 0, (i % 13 = 0)::int
            FROM (SELECT i, {_IDS} FROM generate_series(1, {N}) i) s;
            INSERT INTO patrols (patrol_id, grid_id, community_id, street_id, grid_worker_id, started_at, ended_at,
                                 logged_at)
            SELECT 'p-' || i, grid_id, community_id, street_id, 'gw-' || (i % 800), at, at, at
            FROM (SELECT i, {_IDS} FROM generate_series(1, {N}) i) s;
            INSERT INTO whistles (whistle_id, version, state, street_id, blown_at, report_by, is_open, next_check_at)
            SELECT 'w-' || i, 3, jsonb_build_object('summons', jsonb_build_array(
                       jsonb_build_object('department', '110105.d' || (i % 30), 'answered_at', at,
                                          'on_time', i % 3 <> 0, 'missed', false),
                       jsonb_build_object('department', '110105.d' || (i % 29), 'answered_at', NULL,
                                          'on_time', NULL, 'missed', i % 50 <> 0))),
                   street_id, at, at + interval '1 day', i % 50 = 0, CASE WHEN i % 50 = 0 THEN at + interval '1 day' END
            FROM (SELECT i, {_IDS} FROM generate_series(1, {N}) i) s;""",
                   "case_state", "cases", "patrols", "whistles", "case_tallies", "patrol_counts")
        await check(conn, {"case_state", "cases", "patrols", "whistles"},
                    lambda c: store.due_for_check(c, NOW, 500),
                    lambda c: store.CASES.read(c, ["c-50", "c-100"], skip_locked=True),
                    lambda c: db.metrics_snapshot(c, HANDLING_BUCKETS),
                    lambda c: wdb.whistles_due(c, NOW, 500),
                    lambda c: wdb.WHISTLES.read(c, ["w-50", "w-100"], skip_locked=True),
                    lambda c: wdb.whistle_snapshot(Zeros(c)))
    finally:
        await conn.close()


async def test_party_timers_use_their_indexes(database_url):
    """coverage: the members of each grid, the grids with a branch, the gaps reported, the
    organisations by kind. member_reports: the members past their unit's deadline not flagged
    yet, and which of their units reported. member_feedback: the members without the last
    quarter's feedback (through the index of the latest quarter each was given: once the
    quarter's feedback has gone out, only the members registered since), and their orders of
    the quarter. life_metrics: the counts kept beside the
    life log. councils: the councils whose next check has come (a partial index: live work).

    The organisations (``orgs``, ``org_life``) are the district's, not its history: the org_life
    timer reads each established organisation's life every round, a cost that follows how many
    organisations there are."""
    from services.party.app.life import previous_quarter
    from services.party.projection import councils, life, store
    from services.party.projection import queries as party

    conn = await migrated(database_url, "party")
    try:
        # ~N members (one in ten flagged overdue, one in a hundred moved), of 600 units of which
        # 500 reported; each member registered before the last quarter's end has had its feedback
        await load(conn, f"""
            INSERT INTO orgs (org_id, kind, parent_id, area_id, name, street_id, community_id, grid_id,
                              established_at, state)
            SELECT 'org-' || i, (ARRAY['grid_branch','community_committee','building_group','unit_branch'])[i % 4 + 1],
                   'org-' || (i / 10), grid_id, 'n', street_id, community_id, grid_id, at, '{{}}'
            FROM (SELECT i, {_IDS} FROM generate_series(1, 2000) i) s;
            INSERT INTO org_members (member_id, org_id, grid_id, attached_at)
            SELECT 'pm-' || i, 'org-' || (i % 2000 + 1), CASE WHEN i % 9 <> 0 THEN grid_id END, at
            FROM (SELECT i, {_IDS} FROM generate_series(1, {N}) i) s;
            INSERT INTO coverage_gaps (grid_id, community_id, street_id, members, reported_at)
            SELECT DISTINCT grid_id, community_id, street_id, 3, at
            FROM (SELECT i, {_IDS} FROM generate_series(1, 300) i) s;
            INSERT INTO units (unit_id, version, state, name, community_id)
            SELECT 'u-' || i, 1, '{{}}', 'n', community_id FROM (SELECT i, {_IDS} FROM generate_series(1, 500) i) s;
            INSERT INTO member_follow_ups (member_id, community_id, unit_id, registered_at, overdue_flagged,
                                           report_due_at, state, feedback_quarter)
            SELECT 'pm-' || i, community_id, 'u-' || (i % 600 + 1), at, i % 10 = 0,
                   CASE WHEN i % 100 = 1 THEN at + interval '30 days' END,
                   jsonb_build_object('feedback_quarters', CASE WHEN fed THEN '["2024-Q4", "2025-Q1"]'::jsonb
                                                                ELSE '[]'::jsonb END),
                   CASE WHEN fed THEN '2025-Q1' ELSE '' END
            FROM (SELECT i, {_IDS}, timestamptz '2021-12-01 00:00+08' + i * interval '1 hour' < '2025-04-01 00:00+08'
                         AS fed
                  FROM generate_series(1, {N}) i) s;
            INSERT INTO member_orders (order_id, member_id, completed_at, evaluated_at, passed, rating)
            SELECT 'o-' || i, 'pm-' || (i % {N} + 1), at, at, true, 5
            FROM (SELECT i, {_IDS} FROM generate_series(1, {N}) i) s;
            INSERT INTO org_life (org_id, state) SELECT 'org-' || i, '{{}}' FROM generate_series(1, 2000) i;
            INSERT INTO org_life_log (event_id, org_id, kind, held, meeting_id, period, held_at, attendees, absentees,
                                      at)
            SELECT 'e-' || i, 'org-' || (i % 2000 + 1), 'theme_day', i % 7 <> 0, 'm-' || i, to_char(at, 'YYYY-MM'),
                   at, 5, 1, at
            FROM (SELECT i, {_IDS} FROM generate_series(1, {N}) i) s;
            INSERT INTO councils (council_id, version, state, level, area_id, effective, next_check_at)
            SELECT 'co-' || i, 1, '{{}}', 'street', street_id, true, CASE WHEN i % 10 = 0 THEN at END
            FROM (SELECT i, {_IDS} FROM generate_series(1, 300) i) s;""",
                   "orgs", "org_members", "coverage_gaps", "units", "member_follow_ups", "member_orders", "org_life",
                   "org_life_log", "org_life_counts", "councils")
        quarter = previous_quarter(NOW)
        members = {f"pm-{i}": None for i in range(3, 1000, 7)}
        window = timedelta(days=30)
        # follow_ups_due reads an index range (the members past their window not flagged yet) under
        # the batch's LIMIT: a round reads a batch. The range holds the members whose unit reported
        # in time too (they are never flagged), so the oldest of them fill every batch
        await check(conn, {"org_members", "member_follow_ups", "member_orders", "org_life_log"},
                    lambda c: store.coverage(c),
                    lambda c: party.org_counts(c),
                    lambda c: party.open_gaps(c),
                    lambda c: life.follow_ups_due(c, NOW - window, 500, now=NOW),
                    lambda c: life.FOLLOW_UPS.read(c, list(members), skip_locked=True),
                    lambda c: life.reported_units(c, [f"u-{i}" for i in range(1, 600, 3)]),
                    lambda c: life.followed_members(c, quarter, 500),
                    lambda c: life.tallies(c, quarter, members),
                    lambda c: life.snapshot(c),
                    lambda c: councils.councils_due(c, NOW, 500),
                    lambda c: councils.COUNCILS.read(c, ["co-10", "co-20"], skip_locked=True))
    finally:
        await conn.close()


async def test_assessment_close_timer_uses_its_indexes(database_url):
    """close_periods: for each period ended since its mark, the period's counters, the refs of
    the grids, units, workers and members it scores (never the cases' and orders' refs), the
    hashes of the scorecards and alerts published before, the alerts withdrawn, and the close's
    record: each read by the period, not the history."""
    from services.assessment.projection import store

    conn = await migrated(database_url, "assessment")
    try:
        await load(conn, f"""
            INSERT INTO facts (period, entity_type, entity_id, fact, value, n)
            SELECT to_char(at, 'YYYY-MM'), 'grid', grid_id || '-' || i, 'cases_received', i % 7, 1
            FROM (SELECT i, {_IDS} FROM generate_series(1, {N}) i) s;
            INSERT INTO refs (kind, ref_id, data)
            SELECT (ARRAY['case','case','case','order','order','account','worker','member'])[i % 8 + 1], 'x-' || i,
                   '{{}}'
            FROM generate_series(1, {N}) i
            UNION ALL SELECT 'grid', grid_id, '{{}}'::jsonb FROM (SELECT DISTINCT grid_id FROM
                (SELECT i, {_IDS} FROM generate_series(1, {N}) i) s) g
            UNION ALL SELECT 'unit', 'u-' || i, '{{}}'::jsonb FROM generate_series(1, 50) i;
            {CLOSED_PERIODS}
            INSERT INTO event_log (source, id, topic, type, data, time, occurred_at, type_rank, undo)
            SELECT '/services/grid', 'e-' || i, 'grid.events.v1', 'case.reported', '{{}}', at, at, 0, '[]'
            FROM (SELECT i, {_IDS} FROM generate_series(1, {N}) i) s;""",
                   "facts", "refs", "scorecards", "alerts", "period_closes", "event_log")
        period = "2025-05"
        await check(conn, {"facts", "refs", "scorecards", "alerts", "event_log"},
                    lambda c: store.get_mark(c, "close"),
                    lambda c: store.load_schemes(c),
                    lambda c: store.period_facts(c, period),
                    lambda c: store.scoring_refs(c, ["x-6", "x-14"], ["x-7", "x-15"]),
                    lambda c: store.published_hashes(c, ["sc-5", "sc-6"]),
                    lambda c: store.alert_hashes(c, period, "s1"),
                    lambda c: store.replace_alerts(c, period, "s1", [], NOW),
                    lambda c: store.close_recorded(c, period, "s1"),
                    lambda c: store.record_close(c, period, "s1", NOW, scorecards=1, alerts=1, published=1,
                                                 trigger="timer"),
                    lambda c: store.set_mark(c, "close", NOW))
    finally:
        await conn.close()
