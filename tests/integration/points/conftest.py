"""Fixtures of the points integration tests."""
from __future__ import annotations

import pytest

from services.points.projection import MIGRATIONS
from tests.support.db import migrated_pool


@pytest.fixture
async def pool(database_url):
    """A pool on a fresh database with the points schema migrated."""
    async with migrated_pool(database_url, "points", MIGRATIONS) as p:
        yield p
