"""SQL for the projections' read queries: a WHERE clause built from optional filters, one page
of its rows with the total count, and a row with its history."""
from __future__ import annotations

from typing import Any

import asyncpg


class Where:
    """A WHERE clause built one condition at a time, with its numbered parameters."""

    def __init__(self) -> None:
        self.conditions: list[str] = []
        self.args: list[Any] = []

    def add(self, condition: str, value: Any = None) -> None:
        """``condition``, where ``$?`` stands for ``value``; none at all when ``value`` is None
        (a condition without ``$?`` is always added)."""
        if "$?" not in condition:
            self.conditions.append(condition)
        elif value is not None:
            self.args.append(value)
            self.conditions.append(condition.replace("$?", f"${len(self.args)}"))

    def equal(self, **columns: Any) -> "Where":
        for column, value in columns.items():
            self.add(f"{column} = $?", value)
        return self

    def __str__(self) -> str:
        return ("WHERE " + " AND ".join(self.conditions)) if self.conditions else ""

    async def page(self, conn: asyncpg.Connection, select: str, order: str, limit: int, offset: int) -> list[dict]:
        """The rows of ``select`` (``SELECT ... FROM table``) with this clause, in ``order``, one page of them."""
        n = len(self.args)
        rows = await conn.fetch(f"{select} {self} ORDER BY {order} LIMIT ${n + 1} OFFSET ${n + 2}",
                                *self.args, limit, offset)
        return [dict(r) for r in rows]

    async def count(self, conn: asyncpg.Connection, table: str) -> int:
        return await conn.fetchval(f"SELECT count(*) FROM {table} {self}", *self.args)

    async def counted_page(self, conn: asyncpg.Connection, table: str, select: str, order: str, limit: int,
                           offset: int) -> tuple[int, list[dict]]:
        """(total matching, one page of rows): :meth:`count` and :meth:`page` together."""
        return await self.count(conn, table), await self.page(conn, select, order, limit, offset)


async def with_history(conn: asyncpg.Connection, row_sql: str, history_sql: str, id: str) -> dict[str, Any] | None:
    """The row ``row_sql`` finds for ``id`` with ``"history"``: the rows ``history_sql`` finds
    for it (both take ``id`` as ``$1``); None when there is no such row."""
    row = await conn.fetchrow(row_sql, id)
    if row is None:
        return None
    return {**dict(row), "history": [dict(h) for h in await conn.fetch(history_sql, id)]}
