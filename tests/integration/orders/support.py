"""Shared builders for the orders integration tests."""
from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

from schemas.grid import CaseRegistered, Reporter

CST = timezone(timedelta(hours=8))
T0 = datetime(2026, 11, 22, 8, 0, tzinfo=CST)
COMMUNITY = "110105001002"
GRID = "110105001002003"


def uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def grid_case(case_id: str, *, category: str = "resident_need", grid_id: str = GRID, description: str = "老人需要代办医保",
              reporter: str | None = "resident-42") -> CaseRegistered:
    return CaseRegistered(
        case_id=case_id, due_at=T0 + timedelta(hours=4), department="社区居委会", grid_id=grid_id,
        community_id=grid_id[:12], category=category, description=description,
        reporter=Reporter(kind="resident", id=reporter) if reporter else None, occurred_at=T0)
