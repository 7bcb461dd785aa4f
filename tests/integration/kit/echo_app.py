"""A worker built only from the kit and the patrol test handler (run: python -m tests.integration.kit.echo_app worker)."""
from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from schemas.topics import GRID
from services.kit.runtime import ServiceRuntime
from services.kit.settings import ServiceSettings

from .patrols import MIGRATIONS, SENDERS, PatrolCounter


class EchoSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="GRID_", extra="ignore", populate_by_name=True)


handler = PatrolCounter()
rt = ServiceRuntime("grid", EchoSettings(), migrations=MIGRATIONS)
rt.components = [("kit", rt.components[0][1]), ("kittest", MIGRATIONS)]
rt.consume("intake", [GRID.intake], handler)
rt.command_api(handler)


@rt.route("/v1/patrol-counts")
async def patrol_counts(req):
    async with rt.pool.acquire() as conn:
        return {r["grid_id"]: r["n"] for r in await conn.fetch("SELECT grid_id, n FROM patrol_counts")}


@rt.route("/v1/whoami")
async def whoami(req):
    p = req.principal
    return {"sub": p.sub, "roles": sorted(p.roles), "scope": p.scope.as_claim()}


@rt.route("/v1/command-senders")
async def command_senders(req):
    """Every command answered over HTTP: its envelope's source, and who the handler saw sending it."""
    async with rt.pool.acquire() as conn:
        rows = await conn.fetch("SELECT source, id FROM command_outcomes")
    return {r["id"]: {"source": r["source"], "principal": SENDERS.get(r["id"])} for r in rows}


app = rt.app

if __name__ == "__main__":
    rt.main()
