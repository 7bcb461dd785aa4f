"""A small handler on the kit, used to test the kit itself: counts patrols per grid and
publishes grid.patrol.logged.v1. A patrol whose worker id is ``boom`` makes it raise."""
from __future__ import annotations

from pathlib import Path

from schemas.grid import LogPatrol, PatrolLogged
from services.kit.errors import Rejected
from services.kit.migrations import KIT_MIGRATIONS
from services.kit.handlers import Handler, handles
from services.kit.uow import UnitOfWork

MIGRATIONS = Path(__file__).parent / "migrations"
SENDERS: dict[str, str | None] = {}
"""command id -> the ``sub`` of ``uow.principal`` when the handler ran (None: no principal)."""
COMPONENTS = [("kit", KIT_MIGRATIONS), ("kittest", MIGRATIONS)]


class PatrolCounter(Handler):
    service = "grid"

    @handles(LogPatrol)
    async def log_patrol(self, uow: UnitOfWork, cmd: LogPatrol) -> None:
        if cmd.grid_worker_id == "boom":
            raise RuntimeError("handler fault for testing")
        if cmd.grid_worker_id == "divide-by-zero":  # PostgreSQL refuses what the command asks (class 22)
            await uow.conn.execute("SELECT 1 / (length($1) - length($1))", cmd.grid_worker_id)
        if uow.message is not None:
            SENDERS[uow.message.id] = uow.principal.sub if uow.principal is not None else None
        if cmd.ended_at < cmd.started_at:
            raise Rejected("ended_before_started", "a patrol cannot end before it starts", "ended_at")
        await uow.conn.execute(
            "INSERT INTO patrol_counts (grid_id, n) VALUES ($1, 1) "
            "ON CONFLICT (grid_id) DO UPDATE SET n = patrol_counts.n + 1", cmd.grid_id)
        uow.emit(PatrolLogged(**cmd.model_dump(exclude={"notes", "route"})))
