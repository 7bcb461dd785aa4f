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
from services.kit.aggregates import KeptRows
from services.kit.sql import bulk
from services.points.domain import OrderFacts


class Orders(KeptRows):
    """The orders' facts a unit of work reads and changes (``Orders.of(uow)``: the kit's
    :class:`KeptRows`, a batch's orders read and locked in one query, written in one statement).
    A fact given replaces nothing known (an order's category and community come with its
    placement, its minutes with its completion)."""

    async def read(self, conn: asyncpg.Connection, ids: list) -> dict[str, OrderFacts]:
        rows = await conn.fetch(
            """SELECT order_id, category, community_id, service_minutes FROM order_facts
               WHERE order_id IN (SELECT jsonb_array_elements_text($1::text::jsonb)) ORDER BY order_id FOR UPDATE""",
            bulk(ids))
        return {r["order_id"]: OrderFacts(category=r["category"], community_id=r["community_id"],
                                          service_minutes=r["service_minutes"]) for r in rows}

    async def remember(self, order_id: str, *, category: str | None = None, community_id: str | None = None,
                       service_minutes: int | None = None) -> None:
        known = await self.fetch(order_id) or OrderFacts()
        self.put(order_id, OrderFacts(category=category or known.category,
                                      community_id=community_id or known.community_id,
                                      service_minutes=known.service_minutes if service_minutes is None
                                      else service_minutes))

    async def write(self, conn: asyncpg.Connection, rows: dict[str, OrderFacts]) -> None:
        await conn.execute(
            """INSERT INTO order_facts (order_id, category, community_id, service_minutes)
               SELECT t.r->>0, t.r->>1, t.r->>2, (t.r->>3)::int FROM jsonb_array_elements($1::text::jsonb) AS t(r)
               ON CONFLICT (order_id) DO UPDATE SET
                 category = COALESCE(EXCLUDED.category, order_facts.category),
                 community_id = COALESCE(EXCLUDED.community_id, order_facts.community_id),
                 service_minutes = COALESCE(EXCLUDED.service_minutes, order_facts.service_minutes)""",
            bulk([(i, f.category, f.community_id, f.service_minutes) for i, f in rows.items()]))


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



class Reports(KeptRows):
    """The grid cases a unit of work reads and changes (``Reports.of(uow)``: the kit's
    :class:`KeptRows`, a batch's cases read and locked in one query in id order, a row made for
    a case not seen before, written in one statement). Each is kept as (the report, the JSON
    stored of its report and of its registration)."""

    async def read(self, conn: asyncpg.Connection, ids: list) -> dict[str, tuple]:
        keys = bulk(ids)
        await conn.execute("INSERT INTO grid_reports (case_id) SELECT jsonb_array_elements_text($1::text::jsonb) "
                           "ON CONFLICT DO NOTHING", keys)
        rows = await conn.fetch(
            """SELECT case_id, reported, outcome, registered, registered_source, registered_id, registered_at, awarded
               FROM grid_reports WHERE case_id IN (SELECT jsonb_array_elements_text($1::text::jsonb))
               ORDER BY case_id FOR UPDATE""", keys)
        out = {}
        for row in rows:
            registration = None if row["registered"] is None else Registration(
                restored(CaseRegistered, row["registered"]), row["registered_source"], row["registered_id"],
                row["registered_at"])
            reported = None if row["reported"] is None else restored(CaseReported, row["reported"])
            out[row["case_id"]] = (CaseReport(reported, row["outcome"], registration, row["awarded"]),
                                   row["reported"], row["registered"])
        return out

    async def get(self, case_id: str) -> CaseReport:
        """The case's report, locked."""
        return (await self.fetch(case_id))[0]

    def save(self, case_id: str, *, reported: CaseReported | None = None, outcome: str | None = None,
             registration: Registration | None = None, awarded: bool | None = None) -> None:
        """Change what is given (None: unchanged). The grid's events are kept as they are stored
        (minimised), so that a later message reads the same before and after a flush."""
        case, reported_json, registered_json = self._rows[case_id]
        if reported is not None:
            reported_json = minimised(CaseReported, reported.model_dump(mode="json"))
            reported = restored(CaseReported, reported_json)
        if registration is not None:
            registered_json = minimised(CaseRegistered, registration.event.model_dump(mode="json", exclude_none=True))
            registration = Registration(restored(CaseRegistered, registered_json), registration.source,
                                        registration.id, registration.at)
        self.put(case_id, (CaseReport(reported or case.reported, outcome or case.outcome,
                                      registration or case.registration,
                                      case.awarded if awarded is None else awarded),
                           reported_json, registered_json))

    async def write(self, conn: asyncpg.Connection, rows: dict[str, tuple]) -> None:
        out = []
        for case_id, (case, reported, registered) in rows.items():
            r = case.registration
            out.append((case_id, reported, case.outcome, registered, None if r is None else r.source,
                        None if r is None else r.id, None if r is None else r.at, case.awarded))
        await conn.execute(
            """UPDATE grid_reports AS g SET reported = nullif(t.r->1, 'null'), outcome = t.r->>2,
                   registered = nullif(t.r->3, 'null'), registered_source = t.r->>4, registered_id = t.r->>5,
                   registered_at = (t.r->>6)::timestamptz, awarded = (t.r->>7)::boolean, updated_at = now()
               FROM jsonb_array_elements($1::text::jsonb) AS t(r)
               WHERE g.case_id = t.r->>0""", bulk(out))
