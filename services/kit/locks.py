"""PostgreSQL advisory locks: one key space and one hash for every service.

A key is a readable string (``"orders:order:o-1"``, ``"timer:grid:overdue"``) hashed to a
64-bit lock id with ``hashtextextended``. Transaction-scoped locks serialise work on something
that has no row to lock yet (creating an aggregate, closing a period); session-scoped ones
elect one process for a long-running duty (the outbox relay).
"""
from __future__ import annotations

from typing import Iterable

import asyncpg

_HASH = "hashtextextended($1::text, 0)"


async def advisory_lock(conn: asyncpg.Connection, key: str) -> None:
    """Wait for the transaction-scoped lock of ``key`` (released at commit or rollback)."""
    await conn.execute(f"SELECT pg_advisory_xact_lock({_HASH})", key)


async def advisory_locks(conn: asyncpg.Connection, keys: Iterable[str]) -> None:
    """Take the transaction-scoped locks of several keys in one statement, in hash order, so
    that two transactions locking overlapping sets never deadlock."""
    distinct = sorted(set(keys))
    if len(distinct) == 1:
        await advisory_lock(conn, distinct[0])
    elif distinct:
        await conn.execute(
            "SELECT pg_advisory_xact_lock(h) FROM (SELECT DISTINCT hashtextextended(k, 0) AS h "
            "FROM unnest($1::text[]) AS t(k)) s ORDER BY h", distinct)


async def try_advisory_lock(conn: asyncpg.Connection, key: str) -> bool:
    """Take the transaction-scoped lock of ``key`` if it is free; False when another holds it."""
    return bool(await conn.fetchval(f"SELECT pg_try_advisory_xact_lock({_HASH})", key))


async def try_session_lock(conn: asyncpg.Connection, key: str) -> bool:
    """Take the session-scoped lock of ``key`` if it is free (held until released or the
    connection closes)."""
    return bool(await conn.fetchval(f"SELECT pg_try_advisory_lock({_HASH})", key))
