"""Retention: rows older than their setting are deleted by an exclusive kit timer.

Every service keeps three kit tables that grow without bound: the inbox (ids of the messages
consumed, for duplicates), ``command_outcomes`` (what a command sent over HTTP produced, for a
repeated command) and the outbox's leftovers (rows the relay never got acknowledged, e.g. a
record the broker refused for ever). A service adds its own (assessment: the event log).

Each round deletes at most ``batch`` rows of each table (oldest first) so that the timer's
transaction stays short and never holds many locks; what is left over goes at the next round.
A retention of 0 days keeps the table's rows for ever.
"""
from __future__ import annotations

import dataclasses
import re
import asyncpg

_IDENT = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


@dataclasses.dataclass(frozen=True)
class Rule:
    """Delete rows of ``table`` whose ``column`` (a timestamptz) is older than ``days``."""

    table: str
    column: str
    days: float

    def __post_init__(self) -> None:
        if not (_IDENT.match(self.table) and _IDENT.match(self.column)):
            raise ValueError(f"not a plain identifier: {self.table}.{self.column}")
        if self.days < 0:
            raise ValueError("a retention is 0 (for ever) or more days")


async def prune(conn: asyncpg.Connection, rule: Rule, batch: int) -> int:
    """Delete up to ``batch`` of the oldest rows beyond the rule's retention; the number deleted.
    Ages are measured by the database's clock, which stamped the rows (``DEFAULT now()``)."""
    if rule.days <= 0:
        return 0
    status = await conn.execute(
        f"DELETE FROM {rule.table} WHERE ctid = ANY (ARRAY(SELECT ctid FROM {rule.table} "
        f"WHERE {rule.column} < now() - make_interval(secs => $1) ORDER BY {rule.column} LIMIT $2))",
        rule.days * 86400.0, batch)
    return int(status.split()[-1])


async def prune_all(conn: asyncpg.Connection, rules, batch: int) -> dict[str, int]:
    """One round over every rule: table -> rows deleted."""
    return {r.table: await prune(conn, r, batch) for r in rules}
