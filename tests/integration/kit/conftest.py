"""Fixtures of the kit's integration tests."""
from __future__ import annotations

import pytest

from services.kit.db import create_pool
from services.kit.migrations import migrate

from .patrols import COMPONENTS


@pytest.fixture
async def pool(database_url):
    p = await create_pool(database_url, "grid", service="grid", max_size=6)
    async with p.acquire() as conn:
        await migrate(conn, "grid", COMPONENTS)
    yield p
    await p.close()
