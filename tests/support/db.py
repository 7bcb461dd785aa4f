"""A pool on a test database with a service's migrations applied (the kit's first), and the
statements a connection sends."""
from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import AsyncIterator, Sequence

import asyncpg
import orjson

from services.kit.db import create_pool
from services.kit.http import dumps
from services.kit.migrations import KIT_MIGRATIONS, migrate


@contextlib.asynccontextmanager
async def migrated_pool(database_url: str, schema: str, migrations: Path | None = None, *,
                        components: Sequence[tuple[str, Path]] | None = None,
                        max_size: int = 6) -> AsyncIterator[asyncpg.Pool]:
    """The service ``schema`` with the kit's migrations and ``migrations`` (or ``components``)."""
    pool = await create_pool(database_url, schema, service=schema, max_size=max_size)
    try:
        async with pool.acquire() as conn:
            await migrate(conn, schema, components or [("kit", KIT_MIGRATIONS), (schema, migrations)])
        yield pool
    finally:
        await pool.close()


def as_json(value):
    """``value`` as a client reads it: written as the API writes its answers and read back (a
    page's kept answers are JSON already, and times are strings)."""
    return orjson.loads(dumps(value))


def typed(value):
    """``value`` (read from JSON) with the type of each scalar beside it: 40 and 40.0 compare unequal."""
    if isinstance(value, dict):
        return {k: typed(v) for k, v in value.items()}
    if isinstance(value, list):
        return [typed(v) for v in value]
    return (type(value).__name__, value)


async def tables_containing(conn: asyncpg.Connection, schema: str, needle: str) -> list[str]:
    """The tables of ``schema`` with a row whose text (every column, jsonb included) contains
    ``needle``: where a piece of personal data is kept."""
    tables = await conn.fetch(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = $1 AND table_type = 'BASE TABLE' "
        "ORDER BY table_name", schema)
    found = []
    for r in tables:
        name = f'"{schema}"."{r["table_name"]}"'
        if await conn.fetchval(f"SELECT EXISTS (SELECT 1 FROM {name} t WHERE strpos(t::text, $1) > 0)", needle):
            found.append(r["table_name"])
    return found


@contextlib.asynccontextmanager
async def statements_sent(conn: asyncpg.Connection) -> AsyncIterator[list[str]]:
    """The statements ``conn`` sends inside the block, in order (BEGIN and COMMIT included)."""
    sent: list[str] = []

    def logged(query) -> None:
        sent.append(query.query)
    conn.add_query_logger(logged)
    try:
        yield sent
        await asyncio.sleep(0.05)  # asyncpg calls its query loggers soon after each statement
    finally:
        conn.remove_query_logger(logged)
