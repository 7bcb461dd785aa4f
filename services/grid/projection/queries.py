"""Projection reads: cases and their history, per-grid counts, patrols, the public Open311 rows, metrics."""
from __future__ import annotations

import re
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any, Sequence

import asyncpg
import orjson

from services.grid.domain import CaseStatus, PRIVATE_CATEGORIES, PUBLIC_COORDINATE_DECIMALS, PUBLIC_DISMISSAL_REASONS
from schemas.codes import GridCode
from services.kit.identity import Principal
from services.kit.sql import Keyset, Paged, Where, answered, kept_answer, with_history

_CASE_FIELDS = (
    "case_id, status, category, grade, urgent, grid_id, community_id, street_id, description, lat, lon, address, "
    "reporters, duplicates, media, level, joint_mediation, department, assignee_id, due_stage, due_at, overdue, "
    "overdue_count, rework_count, dismissal_reason, duplicate_of, result, on_time, handling_seconds, satisfaction, "
    "reported_at, registered_at, dispatched_at, handled_at, closed_at, updated_at, version, "
    "accepted_at, contacted_at, controlled_at, accept_due_at, contact_due_at, control_due_at, return_pending, "
    "return_count, extension_until, extension_count, exclusion_pending, excluded, supervision_count, last_card, "
    "listed, delisted_at, resolved"
)
_CASE_SUMMARY_FIELDS = (
    "case_id, status, category, grade, urgent, grid_id, community_id, street_id, level, department, assignee_id, "
    "due_stage, due_at, overdue, supervision_count, last_card, listed, reported_at, updated_at, version"
)
"""The fields of a list's ``basic`` view: where each case stands (no text, place, reporter or media),
as migration 012 keeps them in ``summary`` (the view's test checks them against its answers)."""


# -- who reads what --------------------------------------------------------------------------


AREA_READERS = frozenset({"grid_worker", "community_officer", "street_officer"})
"""Roles that read the cases and patrols of the areas of their token's scope."""


@dataclass(frozen=True)
class Reader:
    """What of the cases and patrols a caller may read: everything (a district role the
    route admits, e.g. ``auditor``); the cases and patrols of the streets, communities and grids of
    their scope (grid workers, officers); the cases dispatched to their departments (department
    officers); the cases they reported (a resident, ``resident`` = their id). Each is a way in; a
    caller with several roles reads the union."""

    everything: bool = False
    streets: frozenset[str] = frozenset()
    communities: frozenset[str] = frozenset()
    grids: frozenset[str] = frozenset()
    departments: frozenset[str] = frozenset()
    resident: str | None = None

    @classmethod
    def of(cls, principal: Principal | None, district: frozenset[str] | set[str] = frozenset({"auditor"})) -> "Reader":
        """The reads of ``principal``; ``district``: the roles that read everything here."""
        if principal is None:
            return cls()
        scope = principal.scope
        area = bool(principal.roles & AREA_READERS)
        return cls(
            everything=bool(principal.roles & set(district)),
            streets=scope.streets if area else frozenset(),
            communities=scope.communities if area else frozenset(),
            grids=scope.grids if area else frozenset(),
            departments=scope.departments if principal.has("department_officer") else frozenset(),
            resident=principal.sub if principal.has("resident") else None,
        )

    @property
    def only_own(self) -> bool:
        """Reads only as a resident: the other reporters of their cases are not shown."""
        return not (self.everything or self.streets or self.communities or self.grids or self.departments)

    def covers(self, grid_id: str) -> bool:
        """Whether the areas of this reader hold the grid ``grid_id`` (every grid for ``everything``)."""
        if self.everything:
            return True
        code = GridCode.parse(grid_id)
        return grid_id in self.grids or code.community_id in self.communities or code.street_id in self.streets

    def restrict(self, where: Where, *, cases: bool = True) -> Where:
        """Add to ``where`` the rows of ``cases`` (else of ``patrols``) this reader may read."""
        if self.everything:
            return where

        def arg(value: Any) -> str:
            where.args.append(value)
            return f"${len(where.args)}"

        ways = [f"{column} = ANY({arg(sorted(ids))}::text[])"
                for column, ids in (("street_id", self.streets), ("community_id", self.communities),
                                    ("grid_id", self.grids)) if ids]
        if cases and self.departments:
            ways.append(f"(department = ANY({arg(sorted(self.departments))}::text[]) AND dispatched_at IS NOT NULL)")
        if cases and self.resident is not None:
            ways.append(f"reporters @> {arg([{'kind': 'resident', 'id': self.resident}])}::jsonb")
        where.add("(" + " OR ".join(ways) + ")" if ways else "false")
        return where

    def redact(self, row: dict[str, Any]) -> dict[str, Any]:
        """``row`` as this reader sees it: a resident sees themselves among the reporters, no one else
        (nor another reporter in the case's history)."""
        if not self.only_own:
            return row
        me = {"kind": "resident", "id": self.resident}
        if "reporters" in row:
            row = {**row, "reporters": [r for r in row["reporters"] if r == me]}
        if "history" in row:
            row["history"] = [{**h, "data": {k: v for k, v in h["data"].items() if k != "reporter" or v == me}}
                              for h in row["history"]]
        return row


_HISTORY = ("seq", "event_id", "type", "occurred_at", "data")
"""What a case's answer shows of each entry of its history."""


async def get_case(conn: asyncpg.Connection, case_id: str, reader: Reader | None = None) -> dict[str, Any] | None:
    """A case row with its full history (events in order), or None; with ``reader``, None also
    for a case the reader may not read."""
    where = Where().equal(case_id=case_id)
    if reader is not None:
        reader.restrict(where)
    out = await with_history(conn, _CASE_FIELDS, f"FROM cases {where}", _HISTORY,
                             "FROM case_history h WHERE h.case_id = cases.case_id ORDER BY h.seq", *where.args)
    if out is None:
        return None
    return reader.redact(out) if reader is not None else out


@dataclass(frozen=True)
class CaseFilter:
    """Filters of the case list; None means any."""

    grid_id: str | None = None
    community_id: str | None = None
    street_id: str | None = None
    status: str | None = None
    category: str | None = None
    overdue: bool | None = None
    department: str | None = None
    listed: bool | None = None  # under 挂牌督办 now
    supervised: bool | None = None  # a card (超期督办) was issued


CASE_ORDER = Keyset(("reported_at", "case_id"), (datetime, str), descending=True)
"""Cases newest report first (the index ``cases_reported_at`` and the per-filter ones of 006)."""
PATROL_ORDER = Keyset(("started_at", "patrol_id"), (datetime, str), descending=True)


async def list_cases(conn: asyncpg.Connection, f: CaseFilter, limit: int, offset: int = 0,
                     reader: Reader | None = None, cursor: str | None = None, *, basic: bool = False) -> Paged:
    """One page of the cases matching ``f``, newest report first, after ``cursor``; with
    ``reader``, only the cases it may read; with ``basic``, only where each stands
    (:data:`_CASE_SUMMARY_FIELDS`)."""
    where = Where().equal(grid_id=f.grid_id, community_id=f.community_id, street_id=f.street_id, status=f.status,
                           category=f.category, overdue=f.overdue, department=f.department, listed=f.listed)
    if f.supervised is not None:
        where.add("supervision_count > 0" if f.supervised else "supervision_count = 0")
    if reader is not None:
        reader.restrict(where)
    total = None
    if f.grid_id is not None and _only_grid_and_status(f) and (reader is None or reader.covers(f.grid_id)):
        # every case of the grid (of the status) is the reader's: the counts kept beside the
        # cases give the total exactly, in a row or a few, however long the grid's history
        status = f"AND status = {where.param(f.status)}" if f.status is not None else ""
        total = (f"SELECT coalesce(sum(n), 0)::bigint FROM grid_status_counts WHERE grid_id = {where.param(f.grid_id)} "
                 f"{status}")
    # each case as kept by the triggers of migrations 011 (its fields: _CASE_FIELDS) and 012 (basic:
    # _CASE_SUMMARY_FIELDS)
    kept = "summary" if basic else "answer"
    paged = await where.counted_page(conn, "cases", f"SELECT {kept_answer(kept)}, reported_at, case_id FROM cases",
                                     CASE_ORDER, limit, offset, cursor, total=total)
    if not basic and reader is not None and reader.only_own:  # a resident: the other reporters come out
        paged.items = [reader.redact(orjson.loads(r[kept])) for r in paged.items]
    else:
        paged.items = [answered(r[kept]) for r in paged.items]
    return paged


def _only_grid_and_status(f: CaseFilter) -> bool:
    """Whether ``f`` filters by grid and status alone (what ``grid_status_counts`` counts): every
    other filter, those added later included, is unset."""
    return all(getattr(f, x.name) is None for x in fields(f) if x.name not in ("grid_id", "status"))


async def grid_counts(conn: asyncpg.Connection, grid_id: str) -> dict[str, int]:
    """Cases of a grid by status (every status present, zero when none), as the counts kept
    beside the cases hold them (``grid_status_counts``: a few rows, however long the history)."""
    rows = await conn.fetch("SELECT status, n FROM grid_status_counts WHERE grid_id = $1", grid_id)
    counts = {s.value: 0 for s in CaseStatus}
    counts.update({r["status"]: r["n"] for r in rows})
    return counts


async def list_patrols(conn: asyncpg.Connection, grid_id: str | None, grid_worker_id: str | None,
                       limit: int, offset: int = 0, reader: Reader | None = None, cursor: str | None = None) -> Paged:
    """One page of patrols, latest first, after ``cursor``; with ``reader``, only the patrols of
    its areas."""
    where = Where().equal(grid_id=grid_id, grid_worker_id=grid_worker_id)
    if reader is not None:
        reader.restrict(where, cases=False)
    select = ("SELECT patrol_id, grid_id, community_id, street_id, grid_worker_id, started_at, ended_at, notes, route, "
              "logged_at FROM patrols")
    return await where.counted_page(conn, "patrols", select, PATROL_ORDER, limit, offset, cursor)


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
    rows, _ = await where.page(conn, _OPEN311_SELECT, CASE_ORDER, limit, offset)
    return rows


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
    supervisions: dict[str, int]  # cards and listings issued, by supervision (yellow_card, red_card, listed)


async def metrics_snapshot(conn: asyncpg.Connection, buckets: Sequence[float]) -> MetricsSnapshot:
    """What the gauges show, from the tallies kept beside the cases (``case_tallies``) and the
    patrols' counts (``patrol_counts``): a few rows per grid, however much history there is.
    ``buckets``: the histogram's bounds, each one a bound the tallies keep (migration 009)."""
    rows = await conn.fetch(
        """SELECT status, category, duplicate, supervised, listed, handled_within, sum(n)::bigint AS n,
                  sum(n) FILTER (WHERE overdue_open)::bigint AS overdue_open, sum(reworks)::bigint AS reworks,
                  sum(red_cards)::bigint AS red_cards, sum(handling_sum)::bigint AS handling_sum
           FROM case_tallies GROUP BY 1, 2, 3, 4, 5, 6""")
    by_status_category: dict[tuple[str, str], int] = {}
    dismissed = {"duplicate": 0, "other": 0}
    timed: list[tuple[float, int]] = []  # (bucket, closed cases) of the closed cases with their time
    supervisions = {"yellow_card": 0, "red_card": 0, "listed": 0}
    overdue_open = reworks = handling_sum = 0
    for r in rows:
        key = (r["status"], r["category"])
        by_status_category[key] = by_status_category.get(key, 0) + r["n"]
        overdue_open += r["overdue_open"] or 0
        reworks += r["reworks"]
        if r["status"] == "dismissed":
            dismissed["duplicate" if r["duplicate"] else "other"] += r["n"]
        if r["handled_within"] >= 0:
            timed.append((r["handled_within"], r["n"]))
            handling_sum += r["handling_sum"]
        supervisions["yellow_card"] += r["n"] if r["supervised"] else 0
        supervisions["red_card"] += r["red_cards"]
        supervisions["listed"] += r["n"] if r["listed"] else 0
    counts = [sum(n for within, n in timed if within <= b) for b in buckets]
    patrols = await conn.fetchval("SELECT coalesce(sum(n), 0)::bigint FROM patrol_counts")
    return MetricsSnapshot(
        by_status_category=by_status_category,
        overdue_open=overdue_open,
        reports=sum(by_status_category.values()),
        dismissed_by_reason={k: v for k, v in dismissed.items() if v},
        reworks=reworks,
        patrols=patrols,
        handling_bucket_counts=counts,
        handling_count=sum(n for _, n in timed),
        handling_sum=float(handling_sum),
        supervisions=supervisions,
    )
