"""Every service's migrations are numbered 001, 002, ... without a repeat or a gap: two
branches that each added "the next" migration must be renumbered when they meet, or a worker
refuses to start (a repeat) or a reader wonders what was lost (a gap)."""
from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3] / "services"
DIRS = sorted(p for p in ROOT.glob("*/migrations") if p.is_dir())


@pytest.mark.parametrize("d", DIRS, ids=lambda d: d.parent.name)
def test_migrations_are_numbered_in_a_row(d):
    numbers = [int(p.name.split("_", 1)[0]) for p in sorted(d.glob("*.sql"))]
    assert numbers == list(range(1, len(numbers) + 1)), f"{d}: {numbers}"
