"""区域化党建 and 双报到 of units in PostgreSQL: the council, unit and project states (kept by
the kit's :class:`~services.kit.aggregates.AggregateStore`, with the columns the queries and the
council timer filter on derived from the state in the same upsert), the timer's pick of the
councils due, and the reads behind the council, unit and project routes.

A batch of commands loads the councils, units and projects it names row-locked; the council
timer takes the due ones with ``SKIP LOCKED``, so it never waits for a batch.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg
import orjson

from services.kit.aggregates import AggregateStore
from services.kit.http import dumps
from services.kit.sql import Keyset, Where, kept_state_answer
from services.party.domain.council import CouncilState, next_check_at
from services.party.domain.units import ProjectState, UnitState


def council_row(state: CouncilState) -> dict[str, Any]:
    """A council as the route answers it: the state, the composition in force and when the timer
    next looks at it."""
    out = state.model_dump(mode="json")
    out["effective"] = state.effective
    out["current"] = out["compositions"][-1] if out["compositions"] else None
    at = next_check_at(state)
    out["next_check_at"] = at.isoformat() if at is not None else None
    return out


def council_answer(state: CouncilState) -> str:
    """:func:`council_row` as the route writes it, kept beside the state (migration 014)."""
    return dumps(council_row(state)).decode()


COUNCILS = AggregateStore(CouncilState, table="councils", id_column="council_id", columns={
    "level": ("text", lambda s: s.level.value),
    "area_id": ("text", lambda s: s.area_id),
    "effective": ("boolean", lambda s: s.effective),
    "next_check_at": ("timestamptz", next_check_at),
}, answer="answer", answer_of=council_answer)
"""大工委 / 大党委: one row per regional council (and its answer, migration 014)."""

UNITS = AggregateStore(UnitState, table="units", id_column="unit_id", columns={
    "name": ("text", lambda s: s.name),
    "community_id": ("text", lambda s: s.community_id),
    "street_id": ("text", lambda s: s.street_id),
    "org_id": ("text", lambda s: s.org_id),
    "reported_at": ("timestamptz", lambda s: s.reported_at),
}, answer="answer")
"""驻区单位: one row per unit that reported, with its agreements (and its answer, migration 012)."""

PROJECTS = AggregateStore(ProjectState, table="projects", id_column="project_id", columns={
    "community_id": ("text", lambda s: s.community_id),
    "status": ("text", lambda s: s.status.value),
    "unit_id": ("text", lambda s: s.unit_id),
    "posted_at": ("timestamptz", lambda s: s.posted_at),
}, answer="answer")
"""项目清单: one row per project (and its answer, migration 012)."""


async def councils_due(conn: asyncpg.Connection, now: datetime,
                       limit: int = 500) -> dict[str, tuple[int, CouncilState]]:
    """(version, state) of the councils whose ``next_check_at`` has come, locked; those another
    transaction holds are skipped, and so are those that moved on before they were locked."""
    ids = await conn.fetch(
        "SELECT council_id FROM councils WHERE next_check_at <= $1 ORDER BY next_check_at LIMIT $2", now, limit)
    found = await COUNCILS.read(conn, [r["council_id"] for r in ids], skip_locked=True)
    return {i: (v, s) for i, (v, s) in found.items() if (at := next_check_at(s)) is not None and at <= now}


async def agreement_holder(conn: asyncpg.Connection, agreement_id: str) -> str | None:
    """The unit whose state holds the agreement, as committed (None: no unit does)."""
    return await conn.fetchval(
        "SELECT unit_id FROM units WHERE (state->'agreements') @> $1::jsonb ORDER BY unit_id LIMIT 1",
        [{"agreement_id": agreement_id}])


# -- reads -------------------------------------------------------------------------------------


async def get_council(conn: asyncpg.Connection, council_id: str) -> tuple[str, orjson.Fragment] | None:
    """(the council's area, its answer): the kept one, else (a row written before migration 014,
    or erased since) made from its state."""
    r = await conn.fetchrow(f"SELECT area_id, {kept_state_answer()} FROM councils WHERE council_id = $1", council_id)
    return (r["area_id"], COUNCILS.answered([r])[0]) if r is not None else None


UNIT_ORDER = Keyset(("unit_id",), (str,))
PROJECT_ORDER = Keyset(("posted_at", "project_id"), (datetime, str), descending=True)
"""Projects latest posted first (a project is stored once posted: ``posted_at`` is never null)."""


async def list_units(conn: asyncpg.Connection, community_id: str, *, limit: int = 50,
                     offset: int = 0, cursor: str | None = None) -> dict[str, Any]:
    """The units that reported to the community (sitting there now), in unit id order."""
    where = Where().equal(community_id=community_id)
    paged = await where.counted_page(conn, "units", f"SELECT unit_id, {kept_state_answer()} FROM units", UNIT_ORDER,
                                     limit, offset, cursor)
    paged.items = UNITS.answered(paged.items)
    return paged.answer(limit, offset)


async def list_projects(conn: asyncpg.Connection, community_id: str, *, status: str | None = None,
                        limit: int = 50, offset: int = 0, cursor: str | None = None) -> dict[str, Any]:
    """The community's projects (项目清单), by status, latest posted first."""
    where = Where().equal(community_id=community_id, status=status)
    paged = await where.counted_page(conn, "projects",
                                     f"SELECT posted_at, project_id, {kept_state_answer()} FROM projects",
                                     PROJECT_ORDER, limit, offset, cursor)
    paged.items = PROJECTS.answered(paged.items)
    return paged.answer(limit, offset)


__all__ = ["COUNCILS", "PROJECTS", "UNITS", "agreement_holder", "council_answer", "council_row", "councils_due",
           "get_council", "list_projects", "list_units"]
