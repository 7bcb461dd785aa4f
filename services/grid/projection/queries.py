"""Projection reads: cases and their history, per-grid counts, patrols, the public Open311 rows, metrics."""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Sequence

import asyncpg

from services.grid.domain import CaseStatus, PRIVATE_CATEGORIES, PUBLIC_COORDINATE_DECIMALS, PUBLIC_DISMISSAL_REASONS
from services.kit.sql import Where, with_history

_CASE_FIELDS = (
    "case_id, status, category, grade, urgent, grid_id, community_id, street_id, description, lat, lon, address, "
    "reporters, duplicates, media, level, joint_mediation, department, assignee_id, due_stage, due_at, overdue, "
    "overdue_count, rework_count, dismissal_reason, duplicate_of, result, on_time, handling_seconds, satisfaction, "
    "reported_at, registered_at, dispatched_at, handled_at, closed_at, updated_at, version"
)


async def get_case(conn: asyncpg.Connection, case_id: str) -> dict[str, Any] | None:
    """A case row with its full history (events in order), or None."""
    return await with_history(conn, f"SELECT {_CASE_FIELDS} FROM cases WHERE case_id = $1",
                              "SELECT seq, event_id, type, occurred_at, data FROM case_history WHERE case_id = $1 "
                              "ORDER BY seq", case_id)


@dataclass(frozen=True)
class CaseFilter:
    """Filters of the case list; None means any."""

    grid_id: str | None = None
    community_id: str | None = None
    street_id: str | None = None
    status: str | None = None
    category: str | None = None
    overdue: bool | None = None


async def list_cases(conn: asyncpg.Connection, f: CaseFilter, limit: int, offset: int) -> tuple[int, list[dict]]:
    """(total matching, one page of cases, newest report first)."""
    where = Where().equal(grid_id=f.grid_id, community_id=f.community_id, street_id=f.street_id, status=f.status,
                           category=f.category, overdue=f.overdue)
    return await where.counted_page(conn, "cases", f"SELECT {_CASE_FIELDS} FROM cases", "reported_at DESC, case_id",
                                    limit, offset)


async def grid_counts(conn: asyncpg.Connection, grid_id: str) -> dict[str, int]:
    """Cases of a grid by status (every status present, zero when none)."""
    rows = await conn.fetch("SELECT status, count(*) AS n FROM cases WHERE grid_id = $1 GROUP BY status", grid_id)
    counts = {s.value: 0 for s in CaseStatus}
    counts.update({r["status"]: r["n"] for r in rows})
    return counts


async def list_patrols(conn: asyncpg.Connection, grid_id: str | None, grid_worker_id: str | None,
                       limit: int, offset: int) -> tuple[int, list[dict]]:
    """(total matching, one page of patrols, latest first)."""
    where = Where().equal(grid_id=grid_id, grid_worker_id=grid_worker_id)
    select = ("SELECT patrol_id, grid_id, community_id, street_id, grid_worker_id, started_at, ended_at, notes, route, "
              "logged_at FROM patrols")
    return await where.counted_page(conn, "patrols", select, "started_at DESC, patrol_id", limit, offset)


# -- Open311 GeoReport v2 ------------------------------------------------------------------


def _sql_texts(values) -> str:
    """A constant ``text[]`` literal of codes (letters, dots and underscores only)."""
    codes = sorted(str(getattr(v, "value", v)) for v in values)
    if not all(re.fullmatch(r"[a-z][a-z._]*", c) for c in codes):
        raise ValueError(f"not a code: {codes}")
    return "ARRAY[" + ", ".join(f"'{c}'" for c in codes) + "]::text[]"


_PRIVATE = _sql_texts(PRIVATE_CATEGORIES)
_OPEN311_SELECT = f"""SELECT case_id, status, is_open, category, department, reported_at, updated_at, result, due_at,
           CASE WHEN registered_at IS NOT NULL AND status <> 'dismissed' THEN description ELSE '' END AS description,
           round(lat::numeric, {PUBLIC_COORDINATE_DECIMALS})::double precision AS lat,
           round(lon::numeric, {PUBLIC_COORDINATE_DECIMALS})::double precision AS lon,
           CASE WHEN dismissal_reason = ANY({_sql_texts(PUBLIC_DISMISSAL_REASONS)}) THEN dismissal_reason END
               AS dismissal_reason,
           (SELECT o.case_id FROM cases o WHERE o.case_id = cases.duplicate_of AND o.category <> ALL({_PRIVATE}))
               AS duplicate_of
    FROM cases"""


async def open311_requests(conn: asyncpg.Connection, *, service_codes: Sequence[str] | None = None,
                           open_closed: Sequence[str] | None = None, start: datetime | None = None,
                           end: datetime | None = None, case_id: str | None = None,
                           limit: int = 1000, offset: int = 0) -> list[dict]:
    """The public rows of the Open311 view (open = not closed and not dismissed), newest first.

    The rules of :mod:`services.grid.domain.publication` are applied here, in the query: cases of
    a private category are never selected (whatever ``service_codes`` asks for); there is no
    address, media or reporter; positions are rounded; the description is empty until the case
    is registered; a dismissal reason is given only when it is a public code, and the original
    of a duplicate only when that case is public itself.
    """
    where = Where()
    where.add(f"category <> ALL({_PRIVATE})")
    where.equal(case_id=case_id)
    where.add("category = ANY($?::text[])", list(service_codes) if service_codes else None)
    if open_closed and set(open_closed) != {"open", "closed"}:
        where.add("is_open" if "open" in open_closed else "NOT is_open")
    where.add("reported_at >= $?", start)
    where.add("reported_at <= $?", end)
    return await where.page(conn, _OPEN311_SELECT, "reported_at DESC, case_id", limit, offset)


# -- metrics ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class MetricsSnapshot:
    """What the metrics read from the projection in one round."""

    by_status_category: dict[tuple[str, str], int]
    overdue_open: int
    reports: int
    dismissed_by_reason: dict[str, int]
    reworks: int
    patrols: int
    handling_bucket_counts: list[int]  # cumulative counts of closed cases with handling_seconds <= each bound
    handling_count: int
    handling_sum: float


async def metrics_snapshot(conn: asyncpg.Connection, buckets: Sequence[float]) -> MetricsSnapshot:
    rows = await conn.fetch(
        """SELECT status, category, count(*) AS n, count(*) FILTER (WHERE is_open AND overdue) AS overdue_open,
                  coalesce(sum(rework_count), 0) AS reworks
           FROM cases GROUP BY status, category""")
    dismissed = await conn.fetch(
        """SELECT CASE WHEN duplicate_of IS NOT NULL THEN 'duplicate' ELSE 'other' END AS reason, count(*) AS n
           FROM cases WHERE status = 'dismissed' GROUP BY 1""")
    filters = ", ".join(f"count(*) FILTER (WHERE handling_seconds <= {float(b)!r}) AS le{i}"
                        for i, b in enumerate(buckets))
    hist = await conn.fetchrow(
        f"""SELECT count(*) AS n, coalesce(sum(handling_seconds), 0) AS total{', ' + filters if filters else ''}
            FROM cases WHERE status = 'closed' AND handling_seconds IS NOT NULL""")
    counts = [hist[f"le{i}"] for i in range(len(buckets))]
    patrols = await conn.fetchval("SELECT count(*) FROM patrols")
    return MetricsSnapshot(
        by_status_category={(r["status"], r["category"]): r["n"] for r in rows},
        overdue_open=sum(r["overdue_open"] for r in rows),
        reports=sum(r["n"] for r in rows),
        dismissed_by_reason={r["reason"]: r["n"] for r in dismissed},
        reworks=sum(int(r["reworks"]) for r in rows),
        patrols=patrols,
        handling_bucket_counts=counts,
        handling_count=hist["n"],
        handling_sum=float(hist["total"]),
    )
