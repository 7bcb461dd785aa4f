"""Read queries behind the HTTP API and the metrics gauges (plain dicts, JSON-ready)."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import asyncpg

from schemas.party import OrgKind
from services.kit.sql import Keyset, Where, records, unpacked
from services.party.domain import MIN_MEMBERS_FOR_BRANCH

_ORG_COLUMNS = """org_id, kind, parent_id, area_id, name, secretary_id, street_id, community_id, grid_id,
    established_at, member_count, updated_at"""


_HISTORY = ("event_id", "type", "at", "data")
_MEMBER = ("member_id", "grid_id", "from_org_id", "attached_at")
_CHILD = ("org_id", "kind", "area_id", "name")


async def get_org(conn: asyncpg.Connection, org_id: str) -> dict[str, Any] | None:
    """The organisation with its members (组织关系, 党员中心户), its child organisations and its
    history (every event, in order), or None. One statement: the history, the members and the
    children are arrays beside the organisation's row."""
    history = records(_HISTORY, "FROM org_history h WHERE h.org_id = o.org_id ORDER BY h.seq")
    members = records(_MEMBER, "FROM org_members h WHERE h.org_id = o.org_id ORDER BY h.attached_at, h.member_id")
    children = records(_CHILD, "FROM orgs h WHERE h.parent_id = o.org_id ORDER BY h.org_id")
    row = await conn.fetchrow(
        f"""SELECT {_ORG_COLUMNS}, state, {history} AS kit_history, {members} AS kit_members,
                   {children} AS kit_children
            FROM orgs o WHERE org_id = $1""", org_id)
    if row is None:
        return None
    found = dict(row)
    state = found.pop("state")
    central = set(state.get("central_households") or ())
    found["history"] = unpacked(_HISTORY, found.pop("kit_history"))
    found["members"] = [{**m, "central_household": m["member_id"] in central}
                        for m in unpacked(_MEMBER, found.pop("kit_members"))]
    found["children"] = unpacked(_CHILD, found.pop("kit_children"))
    return found


async def list_orgs(conn: asyncpg.Connection, *, kind: str | None = None, area_id: str | None = None,
                    parent_id: str | None = None, limit: int = 50, offset: int = 0, cursor: str | None = None,
                    restrict: Callable[[Where], None] | None = None) -> dict[str, Any]:
    """Organisations matching every filter given (``area_id``: their own area, or a street,
    community or grid id they lie in), in org id order, one page, with the total count."""
    where = Where().equal(kind=kind, parent_id=parent_id)
    if area_id is not None:
        where.args.append(area_id)
        n = f"${len(where.args)}"
        where.add(f"(area_id = {n} OR street_id = {n} OR community_id = {n} OR grid_id = {n})")
    if restrict is not None:
        restrict(where)
    paged = await where.counted_page(conn, "orgs", f"SELECT {_ORG_COLUMNS} FROM orgs", ORG_ORDER, limit, offset, cursor)
    return paged.answer(limit, offset)


ORG_ORDER = Keyset(("org_id",), (str,))


async def coverage(conn: asyncpg.Connection, street_id: str,
                   restrict: Callable[[Where], None] | None = None) -> dict[str, Any]:
    """组织覆盖: each grid of the street that has members or a grid branch, with its members, its
    branch and whether it is a gap (at least 3 members and no branch; when it was reported)."""
    where = Where()
    where.add("left(g.grid_id, 9) = $?", street_id)
    if restrict is not None:
        restrict(where)
    # the grids with members as counted beside the members (grid_member_counts, a row per grid):
    # reading the members themselves, every member of the district was read to find the street's
    rows = await conn.fetch(
        f"""WITH g AS (
                SELECT grid_id, left(grid_id, 12) AS community_id, left(grid_id, 9) AS street_id
                  FROM grid_member_counts
                UNION
                SELECT grid_id, community_id, street_id FROM orgs WHERE kind = 'grid_branch' AND grid_id IS NOT NULL)
            SELECT g.grid_id, g.community_id,
                   coalesce((SELECT k.n::int FROM grid_member_counts k WHERE k.grid_id = g.grid_id), 0) AS members,
                   (SELECT min(o.org_id) FROM orgs o WHERE o.kind = 'grid_branch' AND o.grid_id = g.grid_id)
                       AS branch_id,
                   c.reported_at AS gap_reported_at
              FROM (SELECT DISTINCT grid_id, community_id, street_id FROM g) g
              LEFT JOIN coverage_gaps c ON c.grid_id = g.grid_id
            {where}
             ORDER BY g.grid_id""", *where.args)
    grids = []
    for r in rows:
        needs = r["members"] >= MIN_MEMBERS_FOR_BRANCH
        grids.append({**dict(r), "needs_branch": needs, "gap": needs and r["branch_id"] is None})
    needing = [g for g in grids if g["needs_branch"]]
    return {
        "street_id": street_id,
        "min_members": MIN_MEMBERS_FOR_BRANCH,
        "grids_needing_branch": len(needing),
        "covered": sum(1 for g in needing if g["branch_id"] is not None),
        "rate": (sum(1 for g in needing if g["branch_id"] is not None) / len(needing)) if needing else None,
        "gaps": sum(1 for g in grids if g["gap"]),
        "grids": grids,
    }


async def org_counts(conn: asyncpg.Connection) -> dict[str, int]:
    """Organisations of each kind (every kind present, zero when none)."""
    rows = await conn.fetch("SELECT kind, count(*)::int AS n FROM orgs GROUP BY kind")
    out = {k.value: 0 for k in OrgKind}
    out.update({r["kind"]: r["n"] for r in rows})
    return out


async def open_gaps(conn: asyncpg.Connection) -> int:
    """Grids with at least 3 members and no grid branch (the members as counted beside them:
    ``grid_member_counts``, a row per grid with members)."""
    return await conn.fetchval(
        """SELECT count(*)::int FROM grid_member_counts m
            WHERE m.n >= $1
              AND NOT EXISTS (SELECT 1 FROM orgs o WHERE o.kind = 'grid_branch' AND o.grid_id = m.grid_id)""",
        MIN_MEMBERS_FOR_BRANCH)
