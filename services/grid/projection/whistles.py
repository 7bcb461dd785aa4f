"""吹哨报到 in PostgreSQL: the whistle states (``whistles``, kept by the kit's
:class:`~services.kit.aggregates.AggregateStore`, with the columns the queries and the timer
filter on derived from the state in the same upsert), the timer's pick of the whistles due, the
reads by who the caller is, and the metrics.

A batch of commands loads the whistles it names row-locked; the missed-department timer takes
the due ones with ``SKIP LOCKED``, so it never waits for a batch.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from schemas.codes import street_id_of
from services.grid.domain.whistle import WhistleState, whistle_next_check_at
from services.kit.aggregates import AggregateStore
from services.kit.identity import Principal
from services.kit.sql import Keyset, Paged, Where

WHISTLES = AggregateStore(WhistleState, table="whistles", id_column="whistle_id", columns={
    "street_id": ("text", lambda s: s.street_id),
    "case_id": ("text", lambda s: s.case_id),
    "blown_at": ("timestamptz", lambda s: s.blown_at),
    "report_by": ("timestamptz", lambda s: s.report_by),
    "is_open": ("boolean", lambda s: s.is_open),
    "next_check_at": ("timestamptz", whistle_next_check_at),
})


async def whistles_due(conn: asyncpg.Connection, now: datetime, limit: int = 500) -> dict[str, tuple[int, WhistleState]]:
    """(version, state) of the whistles whose ``next_check_at`` has come, locked; those another
    transaction holds are skipped, and so are those that moved on before they were locked."""
    ids = await conn.fetch(
        "SELECT whistle_id FROM whistles WHERE next_check_at <= $1 ORDER BY next_check_at LIMIT $2", now, limit)
    found = await WHISTLES.read(conn, [r["whistle_id"] for r in ids], skip_locked=True)
    return {i: (v, s) for i, (v, s) in found.items() if (at := whistle_next_check_at(s)) is not None and at <= now}


# -- who reads what ----------------------------------------------------------------------------


@dataclass(frozen=True)
class WhistleReader:
    """What whistles a caller may read: every whistle (``auditor``); the whistles of the streets
    of their scope (street officers), and of the streets their communities lie in (community
    officers: the street summons for its communities); the whistles that summoned one of their
    departments (department officers). A caller with several roles reads the union."""

    everything: bool = False
    streets: frozenset[str] = frozenset()
    departments: frozenset[str] = frozenset()

    @classmethod
    def of(cls, principal: Principal | None) -> "WhistleReader":
        if principal is None:
            return cls()
        scope = principal.scope
        streets: set[str] = set()
        if principal.has("street_officer"):
            streets |= scope.streets
        if principal.has("community_officer"):
            streets |= scope.streets | {street_id_of(c) for c in scope.communities}
        return cls(everything=principal.has("auditor"), streets=frozenset(streets),
                   departments=scope.departments if principal.has("department_officer") else frozenset())

    def restrict(self, where: Where) -> Where:
        if self.everything:
            return where
        ways = []
        if self.streets:
            where.args.append(sorted(self.streets))
            ways.append(f"street_id = ANY(${len(where.args)}::text[])")
        if self.departments:
            where.args.append(sorted(self.departments))
            ways.append("EXISTS (SELECT 1 FROM jsonb_array_elements(state->'summons') AS s "
                        f"WHERE s->>'department' = ANY(${len(where.args)}::text[]))")
        where.add("(" + " OR ".join(ways) + ")" if ways else "false")
        return where


def whistle_row(state: WhistleState) -> dict[str, Any]:
    """A whistle as the queries answer it: the state, with each department's status."""
    out = state.model_dump(mode="json")
    out["is_open"] = state.is_open
    for s, row in zip(state.summons, out["summons"]):
        row["status"] = _status(s)
    return out


def _status(s) -> str:
    if s.answered:
        return "reported" if s.on_time else "reported_late"
    return "missed" if s.missed else "summoned"


async def get_whistle(conn: asyncpg.Connection, whistle_id: str, reader: WhistleReader | None = None) -> dict | None:
    """A whistle, or None (also for one ``reader`` may not read)."""
    where = Where().equal(whistle_id=whistle_id)
    if reader is not None:
        reader.restrict(where)
    state = await conn.fetchval(f"SELECT state FROM whistles {where}", *where.args)
    return whistle_row(WhistleState.model_validate(state)) if state is not None else None


async def list_whistles(conn: asyncpg.Connection, *, street_id: str | None, department: str | None,
                        open: bool | None, limit: int, offset: int = 0,
                        reader: WhistleReader | None = None, cursor: str | None = None) -> Paged:
    """One page of whistles, latest first, after ``cursor``, filtered by street, summoned
    department and open; with ``reader``, only the whistles it may read."""
    where = Where().equal(street_id=street_id, is_open=open)
    where.add("(state->'summons') @> $?::jsonb", [{"department": department}] if department else None)
    if reader is not None:
        reader.restrict(where)
    paged = await where.counted_page(conn, "whistles", "SELECT blown_at, whistle_id, state FROM whistles",
                                     WHISTLE_ORDER, limit, offset, cursor)
    paged.items = [whistle_row(WhistleState.model_validate(r["state"])) for r in paged.items]
    return paged


WHISTLE_ORDER = Keyset(("blown_at", "whistle_id"), (datetime, str), descending=True)


# -- metrics ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class WhistleSnapshot:
    """Whistles blown, and the summoned departments' outcomes, service-wide."""

    blown: int = 0
    answered_on_time: int = 0
    answered_late: int = 0
    missed: int = 0


async def whistle_snapshot(conn: asyncpg.Connection) -> WhistleSnapshot:
    """What the gauges show, from the tallies kept beside the whistles (``whistle_tallies``, a row
    per street: migration 010), however many years of whistles there are."""
    row = await conn.fetchrow(
        """SELECT coalesce(sum(blown), 0)::bigint AS blown, coalesce(sum(on_time), 0)::bigint AS on_time,
                  coalesce(sum(late), 0)::bigint AS late, coalesce(sum(missed), 0)::bigint AS missed
           FROM whistle_tallies""")
    return WhistleSnapshot(blown=row["blown"], answered_on_time=row["on_time"], answered_late=row["late"],
                           missed=row["missed"])
