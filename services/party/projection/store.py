"""What the handler and the timers write and read inside a unit of work (``uow.conn``).

The organisation states are kept by the kit's :class:`AggregateStore`: the state as jsonb, its
version, and beside it the columns the queries and the coverage timer filter on. The history
of each organisation and each member's current organisation (``org_members``) are written once
per batch by :class:`OrgLog`, after the organisation states.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from enum import Enum
from functools import partial
from typing import Any

import asyncpg

from schemas.envelope import Emitted
from services.kit.aggregates import AggregateStore
from services.kit.uow import UnitOfWork
from services.party.domain import OrgState


def _columns(**types: str) -> dict[str, tuple[str, Callable[[Any], Any]]]:
    return {name: (sql_type, partial(_field, name)) for name, sql_type in types.items()}


def _field(name: str, state: Any) -> Any:
    value = getattr(state, name)
    return value.value if isinstance(value, Enum) else value


ORGS = AggregateStore(OrgState, table="orgs", id_column="org_id", columns={
    **_columns(kind="text", parent_id="text", area_id="text", name="text", secretary_id="text", street_id="text",
               community_id="text", grid_id="text", established_at="timestamptz"),
    "member_count": ("int", lambda s: len(s.members)),
})
"""党组织: one row per organisation."""


async def orgs_of_members(conn: asyncpg.Connection, member_ids: Iterable[str]) -> dict[str, str]:
    """member id → the organisation they belong to, as committed."""
    ids = sorted(set(member_ids))
    if not ids:
        return {}
    rows = await conn.fetch("SELECT member_id, org_id FROM org_members WHERE member_id = ANY($1::text[])", ids)
    return {r["member_id"]: r["org_id"] for r in rows}


async def coverage(conn: asyncpg.Connection) -> tuple[dict[str, int], set[str], set[str]]:
    """(members per grid, the grids with a grid branch, the grids whose gap was reported)."""
    # as kept beside the members (grid_member_counts, a row per grid with members: migration 008)
    members = {r["grid_id"]: r["n"] for r in await conn.fetch("SELECT grid_id, n::int AS n FROM grid_member_counts")}
    branches = {r["grid_id"] for r in await conn.fetch(
        "SELECT DISTINCT grid_id FROM orgs WHERE kind = 'grid_branch' AND grid_id IS NOT NULL")}
    reported = {r["grid_id"] for r in await conn.fetch("SELECT grid_id FROM coverage_gaps")}
    return members, branches, reported


async def record_gaps(conn: asyncpg.Connection, gaps: Sequence[Any]) -> None:
    await conn.executemany(
        """INSERT INTO coverage_gaps (grid_id, community_id, street_id, members, reported_at)
           VALUES ($1, $2, $3, $4, $5) ON CONFLICT (grid_id) DO NOTHING""",
        [(g.grid_id, g.community_id, g.street_id, g.members, g.occurred_at) for g in gaps])


class OrgLog:
    """The organisation events to append to their organisations' history, and the members'
    current organisation, kept through a batch and written when the unit of work flushes.

    Every entry of a batch goes through it, in the order its messages were handled, so that an
    organisation's history is in that order however the messages were grouped into batches."""

    def __init__(self) -> None:
        self.history: list[tuple[str, Emitted]] = []  # (organisation, event)
        self._written = 0

    @classmethod
    def of(cls, uow: UnitOfWork) -> "OrgLog":
        """The unit of work's log, attached after its organisation states (flushed in that order)."""
        ORGS.of(uow)
        return uow.attach(cls, cls)

    def record(self, envelopes: Sequence[Emitted], org_id: str | None = None) -> None:
        """Append events to the history of ``org_id``, else of each event's subject (the
        organisation it is about)."""
        self.history.extend((org_id or e.subject, e) for e in envelopes)

    def mark(self) -> tuple[int, int]:
        return len(self.history), self._written

    def rollback(self, mark: tuple[int, int]) -> None:
        del self.history[mark[0]:]
        self._written = mark[1]

    async def flush(self, uow: UnitOfWork) -> None:
        new = self.history[self._written:]
        if not new:
            return
        await uow.conn.executemany(
            """INSERT INTO org_history (org_id, event_id, type, at, data)
               VALUES ($1, $2, $3, $4, $5) ON CONFLICT (event_id) DO NOTHING""",
            [(org_id, e.id, e.type, e.time, e.data) for org_id, e in new])
        attached = [e for org_id, e in new if e.type == "party.member.attached.v1"]
        if attached:
            await uow.conn.executemany(
                """INSERT INTO org_members (member_id, org_id, grid_id, from_org_id, attached_at)
                   VALUES ($1, $2, $3, $4, $5)
                   ON CONFLICT (member_id) DO UPDATE SET org_id = EXCLUDED.org_id, grid_id = EXCLUDED.grid_id,
                       from_org_id = EXCLUDED.from_org_id, attached_at = EXCLUDED.attached_at""",
                [(e.data["member_id"], e.subject, e.data.get("grid_id"), e.data.get("from_org_id"), e.time)
                 for e in attached])
        self._written = len(self.history)


__all__ = ["ORGS", "OrgLog", "coverage", "orgs_of_members", "record_gaps"]
