"""Fixtures of the points integration tests."""
from __future__ import annotations

import pytest

from services.kit.db import create_pool
from services.kit.migrations import KIT_MIGRATIONS, migrate
from services.points.projection import MIGRATIONS


@pytest.fixture
async def pool(database_url):
    """A pool on a fresh database with the points schema migrated."""
    p = await create_pool(database_url, "points", service="points", max_size=6)
    async with p.acquire() as conn:
        await migrate(conn, "points", [("kit", KIT_MIGRATIONS), ("points", MIGRATIONS)])
    yield p
    await p.close()
