"""Fixtures of the kit's integration tests."""
from __future__ import annotations

import pytest

from tests.support.db import migrated_pool

from .patrols import COMPONENTS


@pytest.fixture
async def pool(database_url):
    async with migrated_pool(database_url, "grid", components=COMPONENTS) as p:
        yield p
