"""The benchmark's service: counts patrols per grid (state upsert) and publishes patrol.logged.

Written the way a batch-minded service uses the kit: one statement per table per batch,
events emitted through the unit of work (outbox), inbox and offsets handled by the kit.
"""
from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Sequence

from schemas.grid import LogPatrol, PatrolLogged
from services.kit.migrations import KIT_MIGRATIONS
from services.kit.handlers import Handler, handles, prepares
from services.kit.policy import SUB, Policy, allow
from services.kit.uow import UnitOfWork

MIGRATIONS = Path(__file__).parent / "migrations"
COMPONENTS = [("kit", KIT_MIGRATIONS), ("bench", MIGRATIONS)]

UPSERT = """INSERT INTO patrol_counts (grid_id, n) SELECT * FROM unnest($1::text[], $2::bigint[])
            ON CONFLICT (grid_id) DO UPDATE SET n = patrol_counts.n + EXCLUDED.n"""


def count_by_grid(commands: Sequence[LogPatrol]) -> tuple[list[str], list[int]]:
    per_grid = Counter(c.grid_id for c in commands)
    grids = sorted(per_grid)
    return grids, [per_grid[g] for g in grids]


POLICY = Policy("grid", {
    LogPatrol: allow("grid_worker", actor={"grid_worker_id": SUB}, area=lambda c: c.grid_id),
})
"""As a service's table: every record's token verified (as of its timestamp) and its grid worker,
role and grid checked, before the batch step."""


class BatchPatrolCounter(Handler):
    """One upsert per batch (the batch step), one event per patrol (the handler); every command
    admitted by :data:`POLICY` first."""

    service = "grid"
    policy = POLICY

    @prepares(LogPatrol)
    async def count(self, uow: UnitOfWork, commands: Sequence[LogPatrol]) -> None:
        grids, ns = count_by_grid(commands)
        await uow.conn.execute(UPSERT, grids, ns)

    @handles(LogPatrol)
    async def log_patrol(self, uow: UnitOfWork, cmd: LogPatrol) -> None:
        uow.emit(PatrolLogged(patrol_id=cmd.patrol_id, grid_id=cmd.grid_id, grid_worker_id=cmd.grid_worker_id,
                              started_at=cmd.started_at, ended_at=cmd.ended_at), time=uow.now)
