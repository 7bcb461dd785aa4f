"""A pool on a test database with a service's migrations applied (the kit's first)."""
from __future__ import annotations

import contextlib
from pathlib import Path
from typing import AsyncIterator, Sequence

import asyncpg

from services.kit.db import create_pool
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
