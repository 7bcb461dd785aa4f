"""Organisational life, commitments and the member half of 双报到 in PostgreSQL.

The states (``org_life``, ``commitments``, ``member_follow_ups``) are kept by the kit's
:class:`~services.kit.aggregates.AggregateStore`; a batch loads the ones it names row-locked,
the timers take theirs with ``SKIP LOCKED`` so that they never wait for a batch. Beside them:
``org_life_log`` (one row per meeting held or period missed: the route and the metrics) and
``member_orders`` (what the quarterly feedback counts of the orders a member served).
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg
import orjson

from schemas.envelope import Emitted
from services.kit.aggregates import AggregateStore
from services.kit.sql import Keyset, Where, answered, kept_answer
from services.kit.uow import UnitOfWork
from services.party.domain.life import CommitmentsState, OrgLifePolicy, OrgLifeState, OrgRef, period_of
from services.party.domain.members import MemberFollowUp, OrderTally, quarter_bounds

ORG_LIFE = AggregateStore(OrgLifeState, table="org_life", id_column="org_id")
"""An organisation's meetings and the periods flagged overdue."""

COMMITMENTS = AggregateStore(CommitmentsState, table="commitments", id_column="member_id")
"""A member's commitments (承诺、践诺、评诺)."""

FOLLOW_UPS = AggregateStore(MemberFollowUp, table="member_follow_ups", id_column="member_id", columns={
    "community_id": ("text", lambda s: s.community_id),
    "unit_id": ("text", lambda s: s.unit_id),
    "registered_at": ("timestamptz", lambda s: s.registered_at),
    "report_due_at": ("timestamptz", lambda s: s.report_due_at),
    "overdue_flagged": ("boolean", lambda s: s.overdue_flagged),
    "report_settled": ("boolean", lambda s: s.report_settled),
    "feedback_quarter": ("text", lambda s: max(s.feedback_quarters, default="")),
})
"""A registered member as the party service follows them (``feedback_quarter``: the latest quarter
whose feedback they were given, '' for none: the feedback timer's index)."""


async def org_refs(conn: asyncpg.Connection, org_ids: Iterable[str] | None = None) -> dict[str, tuple[OrgRef, str]]:
    """org id → (what organisational life needs of the org, the area code a scope must cover),
    for the established organisations given (all of them when ``org_ids`` is None)."""
    sql = """SELECT org_id, kind, established_at, area_id, coalesce(grid_id, community_id, street_id) AS scope_id
               FROM orgs WHERE established_at IS NOT NULL"""
    args: list[Any] = []
    if org_ids is not None:
        sql += " AND org_id = ANY($1::text[])"
        args.append(sorted(set(org_ids)))
    rows = await conn.fetch(sql + " ORDER BY org_id", *args)
    return {r["org_id"]: (OrgRef(org_id=r["org_id"], kind=r["kind"], established_at=r["established_at"],
                                 area_id=r["area_id"]), r["scope_id"]) for r in rows}


async def org_of_member(conn: asyncpg.Connection, member_id: str) -> str | None:
    return await conn.fetchval("SELECT org_id FROM org_members WHERE member_id = $1", member_id)


class LifeLog:
    """The batch's ``org_life_log`` rows (one per meeting held or period missed), written in one
    statement when the unit of work flushes (``LifeLog.of(uow)``): written a message at a time,
    each row was a statement of its own, with its statement triggers. Nothing in a batch reads
    the log. A message undone by its savepoint takes its rows with it, and a flush undone leaves
    the rows it wrote to write again."""

    def __init__(self) -> None:
        self._rows: list[tuple] = []
        self._written = 0  # how many of _rows are written

    @classmethod
    def of(cls, uow: UnitOfWork) -> "LifeLog":
        return uow.attach(cls, cls)

    def add(self, emitted: Sequence[Emitted], policy: OrgLifePolicy) -> None:
        """The rows of the meetings held and periods missed among ``emitted``."""
        for e in emitted:
            d = e.data
            if e.type == "party.org_life.held.v1":
                held_at = datetime.fromisoformat(d["held_at"]) if isinstance(d["held_at"], str) else d["held_at"]
                every = policy.frequencies[d["kind"]].every
                self._rows.append((e.id, d["org_id"], d["kind"], True, d["meeting_id"], period_of(held_at, every),
                                   held_at, len(d.get("attendees") or ()), len(d.get("absentees") or ()), e.time))
            elif e.type == "party.org_life.overdue.v1":
                self._rows.append((e.id, d["org_id"], d["kind"], False, None, d["period"], None, None, None, e.time))

    def mark(self) -> tuple[int, int]:
        return len(self._rows), self._written

    def rollback(self, mark: tuple[int, int]) -> None:
        rows, written = mark
        del self._rows[rows:]
        self._written = written

    async def flush(self, uow: UnitOfWork) -> None:
        rows = self._rows[self._written:]
        if not rows:
            return
        await uow.conn.execute(
            """INSERT INTO org_life_log (event_id, org_id, kind, held, meeting_id, period, held_at, attendees,
                                         absentees, at)
               SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::boolean[], $5::text[], $6::text[],
                                    $7::timestamptz[], $8::int[], $9::int[], $10::timestamptz[])
               ON CONFLICT (event_id) DO NOTHING""", *(list(c) for c in zip(*rows)))
        self._written = len(self._rows)


async def life_due(conn: asyncpg.Connection, org_ids: Sequence[str]) -> dict[str, tuple[int, OrgLifeState]]:
    """(version, state) of the organisations' life rows that exist, locked (those a batch holds are skipped)."""
    return await ORG_LIFE.read(conn, org_ids, skip_locked=True)


async def follow_ups_due(conn: asyncpg.Connection, before: datetime, limit: int,
                         now: datetime | None = None) -> dict[str, tuple[int, MemberFollowUp]]:
    """Members neither flagged overdue nor settled yet whose deadline has passed by ``now``:
    registered before ``before`` (the window's start), or who moved with a deadline
    (``report_due_at``) before ``now``; locked (``SKIP LOCKED``)."""
    ids = await conn.fetch(
        """(SELECT member_id, registered_at AS due FROM member_follow_ups
             WHERE NOT overdue_flagged AND NOT report_settled AND report_due_at IS NULL AND registered_at <= $1
             ORDER BY registered_at LIMIT $2)
           UNION ALL
           (SELECT member_id, report_due_at AS due FROM member_follow_ups
             WHERE NOT overdue_flagged AND NOT report_settled AND report_due_at <= $3
             ORDER BY report_due_at LIMIT $2)
           ORDER BY due LIMIT $2""", before, limit, now or before)
    return await FOLLOW_UPS.read(conn, [r["member_id"] for r in ids], skip_locked=True)


async def unsettled_of_unit(conn: asyncpg.Connection, unit_id: str) -> list[str]:
    """The members followed with ``unit_id`` as their unit, neither flagged overdue nor settled."""
    return [r["member_id"] for r in await conn.fetch(
        "SELECT member_id FROM member_follow_ups WHERE unit_id = $1 AND NOT overdue_flagged AND NOT report_settled "
        "ORDER BY member_id", unit_id)]


async def reported_units(conn: asyncpg.Connection, unit_ids: Iterable[str]) -> frozenset[str]:
    """The units among ``unit_ids`` that have reported (单位报到), from the units' table when the
    service has one (``units``, with ``unit_id``)."""
    ids = sorted(set(unit_ids))
    if not ids or await conn.fetchval("SELECT to_regclass('units')") is None:
        return frozenset()
    return frozenset(r["unit_id"] for r in await conn.fetch(
        "SELECT unit_id FROM units WHERE unit_id = ANY($1::text[])", ids))


async def followed_members(conn: asyncpg.Connection, quarter: str, limit: int) -> dict[str, tuple[int, MemberFollowUp]]:
    """Members registered before the quarter's end without its feedback yet, locked (``SKIP LOCKED``).

    A member whose latest quarter given (``feedback_quarter``) is this one has had its feedback:
    the others are read through the index of that column (a quarter before it or after it, as
    two ranges), so that once the quarter's feedback has gone out a round reads none of them."""
    _, end = quarter_bounds(quarter)
    ids = await conn.fetch(
        """SELECT member_id FROM member_follow_ups
            WHERE (feedback_quarter < $2 OR feedback_quarter > $2)
              AND registered_at < $1 AND NOT (state->'feedback_quarters') ? $2
            ORDER BY member_id LIMIT $3""", end, quarter, limit)
    return await FOLLOW_UPS.read(conn, [r["member_id"] for r in ids], skip_locked=True)


async def order_completed(conn: asyncpg.Connection, order_id: str, member_id: str, at: datetime) -> None:
    await conn.execute(
        """INSERT INTO member_orders (order_id, member_id, completed_at) VALUES ($1, $2, $3)
           ON CONFLICT (order_id) DO UPDATE SET member_id = EXCLUDED.member_id, completed_at = EXCLUDED.completed_at""",
        order_id, member_id, at)


async def order_evaluated(conn: asyncpg.Connection, order_id: str, member_id: str, passed: bool, rating: int,
                          at: datetime) -> None:
    await conn.execute(
        """INSERT INTO member_orders (order_id, member_id, evaluated_at, passed, rating) VALUES ($1, $2, $3, $4, $5)
           ON CONFLICT (order_id) DO UPDATE SET evaluated_at = EXCLUDED.evaluated_at, passed = EXCLUDED.passed,
               rating = EXCLUDED.rating""", order_id, member_id, at, passed, rating)


async def tallies(conn: asyncpg.Connection, quarter: str, member_ids: Iterable[str]) -> dict[str, OrderTally]:
    """member id → their orders of the quarter: completed in it; passed at 考单 in it, and the ratings."""
    start, end = quarter_bounds(quarter)
    rows = await conn.fetch(
        """SELECT member_id,
                  count(*) FILTER (WHERE completed_at >= $2 AND completed_at < $3)::int AS completed,
                  count(*) FILTER (WHERE passed AND evaluated_at >= $2 AND evaluated_at < $3)::int AS passed,
                  coalesce(sum(rating) FILTER (WHERE evaluated_at >= $2 AND evaluated_at < $3), 0)::int AS rating_sum,
                  count(rating) FILTER (WHERE evaluated_at >= $2 AND evaluated_at < $3)::int AS ratings
             FROM member_orders WHERE member_id = ANY($1::text[]) GROUP BY member_id""",
        sorted(set(member_ids)), start, end)
    return {r["member_id"]: OrderTally(member_id=r["member_id"], orders_completed=r["completed"],
                                       orders_passed=r["passed"], rating_sum=r["rating_sum"], ratings=r["ratings"])
            for r in rows}


LIFE_ORDER = Keyset(("period", "at", "event_id"), (str, datetime, str), descending=True)
"""An organisation's life newest period first, within a period the latest recorded first
(the index ``org_life_log_keyset``)."""

_LIFE_COLUMNS = "kind, held, meeting_id, period, held_at, attendees, absentees, at, event_id"


async def life_page(conn: asyncpg.Connection, org_id: str, period: str | None, limit: int, offset: int = 0,
                    cursor: str | None = None) -> tuple[dict[str, Any] | None, list[orjson.Fragment], str | None]:
    """(the organisation's area codes with its meetings ``held`` and periods ``missed``, of
    ``period`` when given, else of every period: None for an unknown organisation; one page of
    its meetings held and periods missed in :data:`LIFE_ORDER`; the cursor of the next page), in
    one statement: the caller checks the reader against the area before answering."""
    where = Where().equal(org_id=org_id, period=period)
    # every period's counts are those kept beside the entries (migration 007: a row per kind, held
    # or missed), which do not grow with the years; one period's are counted from its entries
    counts = (f"""SELECT (count(*) FILTER (WHERE held))::int AS held, (count(*) FILTER (WHERE NOT held))::int AS missed
                  FROM org_life_log {where}""" if period is not None else
              """SELECT coalesce(sum(n) FILTER (WHERE held), 0)::int AS held,
                        coalesce(sum(n) FILTER (WHERE NOT held), 0)::int AS missed
                 FROM org_life_counts WHERE org_id = $1""")
    head = f"""SELECT o.street_id, o.community_id, o.grid_id, n.held, n.missed
                 FROM orgs o, LATERAL ({counts}) AS n WHERE o.org_id = $1"""
    # each entry as kept by the trigger of migration 013 (its fields: _LIFE_COLUMNS)
    org, rows, next_cursor = await where.headed_page(
        conn, head, f"SELECT {kept_answer()}, period, at, event_id FROM org_life_log", LIFE_ORDER, limit, offset,
        cursor)
    return org, [answered(r["answer"]) for r in rows], next_cursor


@dataclass
class LifeSnapshot:
    """The counts the party metrics export, from committed rows: meetings of organisational life
    held and periods missed, by kind (``org_life_log``). The regional councils' joint meetings are
    counted where the council steps handle them (:mod:`services.party.app.metrics`)."""

    held: dict[str, int] = field(default_factory=dict)
    overdue: dict[str, int] = field(default_factory=dict)


async def snapshot(conn: asyncpg.Connection) -> LifeSnapshot:
    s = LifeSnapshot()
    # as kept beside the entries (org_life_counts: a row per organisation and kind, held or missed)
    for r in await conn.fetch("SELECT kind, held, sum(n)::int AS n FROM org_life_counts GROUP BY kind, held"):
        (s.held if r["held"] else s.overdue)[r["kind"]] = r["n"]
    return s


__all__ = ["COMMITMENTS", "FOLLOW_UPS", "LifeSnapshot", "ORG_LIFE"]
