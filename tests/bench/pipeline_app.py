"""The kit's full path as a worker: batch consumer → inbox → state upsert → outbox → relay."""
from __future__ import annotations

import os

from pydantic_settings import SettingsConfigDict

from schemas.topics import GRID
from services.kit.runtime import ServiceRuntime
from services.kit.settings import ServiceSettings

from .handler import COMPONENTS, BatchPatrolCounter


class BenchSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="GRID_", extra="ignore", populate_by_name=True)


rt = ServiceRuntime("grid", BenchSettings())
rt.components = COMPONENTS
rt.consume("intake", [GRID.intake], BatchPatrolCounter(), group_id=os.environ.get("BENCH_GROUP", "bench-pipeline"))
app = rt.app

if __name__ == "__main__":
    app.main()
