"""Projection writes: the ``cases`` row of each case, its ``case_history``, and ``patrols``."""
from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Iterable, Mapping, Sequence

import asyncpg

from schemas.codes import community_id_of, street_id_of
from schemas.grid import Category, PatrolLogged, Stage
from services.grid.domain import CaseState, OpenCase

_CASE_COLUMNS = (
    "case_id", "version", "status", "is_open", "category", "grade", "urgent", "grid_id", "community_id", "street_id",
    "description", "lat", "lon", "address", "reporters", "duplicates", "media", "level", "joint_mediation",
    "department", "assignee_id", "due_stage", "due_at", "overdue", "overdue_count", "rework_count",
    "dismissal_reason", "duplicate_of", "result", "on_time", "handling_seconds", "satisfaction", "reported_at",
    "registered_at", "dispatched_at", "handled_at", "closed_at", "updated_at",
    "accepted_at", "contacted_at", "controlled_at", "accept_due_at", "contact_due_at", "control_due_at",
    "return_pending", "return_count", "extension_until", "extension_count", "exclusion_pending", "excluded",
    "supervision_count", "last_card", "listed", "delisted_at", "resolved",
)


def case_row(s: CaseState, now: datetime) -> dict[str, Any]:
    """The projection row of a case state, as of ``now``.

    ``overdue`` is true once any deadline of the case was missed (reported by the timer, or
    past due / met late as seen at ``now``); it stays true, like ``on_time`` false at close.
    """
    d = s.open_deadline if s.is_open else None
    return {
        "case_id": s.case_id, "version": s.version, "status": s.status.value, "is_open": s.is_open,
        "category": s.category.value, "grade": s.grade.value if s.grade else None, "urgent": s.urgent,
        "grid_id": s.grid_id, "community_id": s.community_id, "street_id": s.street_id,
        "description": s.description, "lat": s.location.lat, "lon": s.location.lon, "address": s.location.address,
        "reporters": [r.model_dump(mode="json") for r in s.reporters], "duplicates": list(s.duplicates),
        "media": list(s.media), "level": s.level.value, "joint_mediation": s.joint_mediation,
        "department": s.department, "assignee_id": s.assignee_id,
        "due_stage": d.stage.value if d else None, "due_at": d.due_at if d else None,
        "overdue": s.missed_any(now), "overdue_count": sum(1 for x in s.deadlines if x.overdue),
        "rework_count": s.rework_count, "dismissal_reason": s.dismissal_reason, "duplicate_of": s.duplicate_of,
        "result": s.result, "on_time": s.on_time, "handling_seconds": s.handling_seconds,
        "satisfaction": s.satisfaction.value if s.satisfaction else None, "reported_at": s.reported_at,
        "registered_at": s.registered_at, "dispatched_at": s.dispatched_at, "handled_at": s.handled_at,
        "closed_at": s.closed_at, "updated_at": now,
        **_department_part(s),
    }


def _department_part(s: CaseState) -> dict[str, Any]:
    """The department's part of a case row: when it accepted, contacted, controlled; its unmet
    deadlines; returns, extensions and exclusion; supervision; the 回访's resolved."""
    due = {stage: (d.due_at if (d := s.unmet(stage)) is not None and s.is_open else None)
           for stage in (Stage.ACCEPT, Stage.CONTACT, Stage.CONTROL)}
    return {
        "accepted_at": s.accepted_at, "contacted_at": s.contacted_at, "controlled_at": s.controlled_at,
        "accept_due_at": due[Stage.ACCEPT], "contact_due_at": due[Stage.CONTACT], "control_due_at": due[Stage.CONTROL],
        "return_pending": s.return_pending, "return_count": s.return_count, "extension_until": s.extension_until,
        "extension_count": s.extension_count, "exclusion_pending": s.exclusion_pending, "excluded": s.excluded,
        "supervision_count": s.supervision_count, "last_card": s.last_card.value if s.last_card else None,
        "listed": s.listed and s.delisted_at is None, "delisted_at": s.delisted_at, "resolved": s.resolved,
    }


_CASE_UPSERT = (
    f"INSERT INTO cases ({', '.join(_CASE_COLUMNS)}) "
    f"SELECT {', '.join(_CASE_COLUMNS)} FROM jsonb_populate_recordset(NULL::cases, $1::jsonb) "
    f"ON CONFLICT (case_id) DO UPDATE SET {', '.join(f'{c} = EXCLUDED.{c}' for c in _CASE_COLUMNS[1:])} "
    "WHERE cases.version <= EXCLUDED.version")


async def upsert_cases(conn: asyncpg.Connection, states: Iterable[tuple[CaseState, datetime]]) -> None:
    """Write the rows of the given case states, each as of its time (one statement, one state
    per case); an older version never overwrites a newer one."""
    rows = [case_row(s, now) for s, now in sorted(states, key=lambda x: x[0].case_id)]
    if rows:
        await conn.execute(_CASE_UPSERT, rows)


@dataclass(frozen=True)
class HistoryEntry:
    """One event of a case, as stored in ``case_history``."""

    case_id: str
    seq: int  # the case version after the event
    event_id: str
    type: str
    occurred_at: datetime
    data: Mapping[str, Any]


async def append_history(conn: asyncpg.Connection, entries: Sequence[HistoryEntry]) -> None:
    """Add events to the cases' histories in one statement (an event already recorded is skipped)."""
    if not entries:
        return
    await conn.execute(
        """INSERT INTO case_history (case_id, seq, event_id, type, occurred_at, data)
           SELECT case_id, seq, event_id, type, occurred_at, data
           FROM jsonb_populate_recordset(NULL::case_history, $1::jsonb) ON CONFLICT DO NOTHING""",
        [{"case_id": e.case_id, "seq": e.seq, "event_id": e.event_id, "type": e.type, "occurred_at": e.occurred_at,
          "data": e.data} for e in entries])


async def logged_patrols(conn: asyncpg.Connection, patrol_ids: Iterable[str]) -> set[str]:
    """Those of ``patrol_ids`` that are logged already."""
    rows = await conn.fetch("SELECT patrol_id FROM patrols WHERE patrol_id = ANY($1::text[])", list(patrol_ids))
    return {r["patrol_id"] for r in rows}


async def upsert_patrols(conn: asyncpg.Connection, patrols: Sequence[tuple[PatrolLogged, datetime]]) -> None:
    """Insert or replace patrol logs by ``patrol_id``, each logged at its event's time, else at
    the time it was handled (one statement, one log per id)."""
    if not patrols:
        return
    await conn.execute(
        """INSERT INTO patrols (patrol_id, grid_id, community_id, street_id, grid_worker_id, started_at, ended_at,
                                notes, route, logged_at)
           SELECT patrol_id, grid_id, community_id, street_id, grid_worker_id, started_at, ended_at, notes, route,
                  logged_at
           FROM jsonb_populate_recordset(NULL::patrols, $1::jsonb)
           ON CONFLICT (patrol_id) DO UPDATE SET grid_id = EXCLUDED.grid_id, community_id = EXCLUDED.community_id,
               street_id = EXCLUDED.street_id, grid_worker_id = EXCLUDED.grid_worker_id,
               started_at = EXCLUDED.started_at, ended_at = EXCLUDED.ended_at, notes = EXCLUDED.notes,
               route = EXCLUDED.route, logged_at = EXCLUDED.logged_at""",
        [{"patrol_id": p.patrol_id, "grid_id": p.grid_id,
          "community_id": p.community_id or community_id_of(p.grid_id),
          "street_id": p.street_id or street_id_of(p.grid_id), "grid_worker_id": p.grid_worker_id,
          "started_at": p.started_at, "ended_at": p.ended_at, "notes": p.notes,
          "route": [r.model_dump(mode="json") for r in p.route], "logged_at": p.occurred_at or now}
         for p, now in patrols])


METRES_PER_DEGREE_LAT = 111_320.0


def bounding_box(lat: float, lon: float, radius_m: float) -> tuple[float, float, float, float]:
    """(min_lat, max_lat, min_lon, max_lon) of a box holding the circle of ``radius_m`` around a point."""
    dlat = radius_m / METRES_PER_DEGREE_LAT
    cos = math.cos(math.radians(lat))
    dlon = 180.0 if cos < 1e-6 else min(180.0, radius_m / (METRES_PER_DEGREE_LAT * cos))
    return lat - dlat, lat + dlat, lon - dlon, lon + dlon


async def open_cases_near_each(conn: asyncpg.Connection, points: Sequence[tuple[Category, float, float]],
                               radius_m: float, limit: int = 200) -> list[list[OpenCase]]:
    """For each ``(category, lat, lon)``, the open cases of that category within the bounding box
    of ``radius_m`` around the point (a superset of those within the radius; the domain measures
    the distance), in one query: a batch's reports looked up together, not one round trip (and,
    in a batch, one savepoint) each."""
    if not points:
        return []
    boxes = [bounding_box(lat, lon, radius_m) for _, lat, lon in points]
    rows = await conn.fetch(
        """SELECT p.i, c.case_id, c.category, c.lat, c.lon
             FROM unnest($1::int[], $2::text[], $3::float8[], $4::float8[], $5::float8[], $6::float8[])
                  AS p(i, category, lo_lat, hi_lat, lo_lon, hi_lon)
            CROSS JOIN LATERAL (
                  SELECT case_id, category, lat, lon, reported_at FROM cases
                   WHERE is_open AND category = p.category AND lat BETWEEN p.lo_lat AND p.hi_lat
                     AND lon BETWEEN p.lo_lon AND p.hi_lon
                   ORDER BY reported_at, case_id LIMIT $7) c
            ORDER BY p.i, c.reported_at, c.case_id""",  # reports handled in one batch share reported_at
        list(range(len(points))), [c.value for c, _, _ in points], [b[0] for b in boxes], [b[1] for b in boxes],
        [b[2] for b in boxes], [b[3] for b in boxes], limit)
    out: list[list[OpenCase]] = [[] for _ in points]
    for r in rows:
        out[r["i"]].append(OpenCase(case_id=r["case_id"], category=Category(r["category"]), lat=r["lat"],
                                    lon=r["lon"]))
    return out
