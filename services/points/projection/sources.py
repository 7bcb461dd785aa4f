"""Facts of other services the points service keeps until the event that decides an award:
an order's category/community/minutes, and a grid case's report until it is registered or
dismissed (in either order of arrival). The grid's events are kept as their contract models'
JSON without the personal fields no award reads (description, location, media, other text:
:func:`schemas.pii.minimised`) and read back as those models (:func:`schemas.pii.restored`)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

from schemas.grid import CaseRegistered, CaseReported
from schemas.pii import minimised, restored
from services.points.domain import OrderFacts


async def remember_order(conn: asyncpg.Connection, order_id: str, *, category: str | None = None,
                         community_id: str | None = None, service_minutes: int | None = None) -> None:
    await conn.execute(
        """INSERT INTO order_facts (order_id, category, community_id, service_minutes) VALUES ($1, $2, $3, $4)
           ON CONFLICT (order_id) DO UPDATE SET
             category = COALESCE(EXCLUDED.category, order_facts.category),
             community_id = COALESCE(EXCLUDED.community_id, order_facts.community_id),
             service_minutes = COALESCE(EXCLUDED.service_minutes, order_facts.service_minutes)""",
        order_id, category, community_id, service_minutes)


async def order_facts(conn: asyncpg.Connection, order_id: str) -> OrderFacts | None:
    row = await conn.fetchrow("SELECT category, community_id, service_minutes FROM order_facts WHERE order_id = $1",
                              order_id)
    return OrderFacts(category=row["category"], community_id=row["community_id"],
                      service_minutes=row["service_minutes"]) if row else None


@dataclass(frozen=True)
class Registration:
    """A ``grid.case.registered.v1`` as an award needs it: its data, and the ``source``, ``id``
    and ``time`` of its envelope (the award's transfer id and date)."""

    event: CaseRegistered
    source: str
    id: str
    at: datetime


@dataclass(frozen=True)
class CaseReport:
    """What is known of a grid case: its report, whether it was registered (with the
    registration) or dismissed, and whether its reporter was awarded."""

    reported: CaseReported | None
    outcome: str | None  # registered | dismissed
    registration: Registration | None
    awarded: bool


async def report(conn: asyncpg.Connection, case_id: str) -> CaseReport:
    """The case's row, locked (so a report and its registration never race)."""
    await conn.execute("INSERT INTO grid_reports (case_id) VALUES ($1) ON CONFLICT DO NOTHING", case_id)
    row = await conn.fetchrow(
        """SELECT reported, outcome, registered, registered_source, registered_id, registered_at, awarded
           FROM grid_reports WHERE case_id = $1 FOR UPDATE""", case_id)
    registration = None if row["registered"] is None else Registration(
        restored(CaseRegistered, row["registered"]), row["registered_source"], row["registered_id"],
        row["registered_at"])
    reported = None if row["reported"] is None else restored(CaseReported, row["reported"])
    return CaseReport(reported, row["outcome"], registration, row["awarded"])


async def save_report(conn: asyncpg.Connection, case_id: str, *, reported: CaseReported | None = None,
                      outcome: str | None = None, registration: Registration | None = None,
                      awarded: bool | None = None) -> None:
    """Change what is given (None: unchanged)."""
    r = registration
    await conn.execute(
        """UPDATE grid_reports SET reported = COALESCE($2::jsonb, reported), outcome = COALESCE($3, outcome),
               registered = COALESCE($4::jsonb, registered), registered_source = COALESCE($5, registered_source),
               registered_id = COALESCE($6, registered_id), registered_at = COALESCE($7, registered_at),
               awarded = COALESCE($8, awarded), updated_at = now()
           WHERE case_id = $1""",
        case_id, minimised(CaseReported, reported.model_dump(mode="json")) if reported is not None else None, outcome,
        minimised(CaseRegistered, r.event.model_dump(mode="json", exclude_none=True)) if r is not None else None,
        r.source if r is not None else None, r.id if r is not None else None, r.at if r is not None else None,
        awarded)
