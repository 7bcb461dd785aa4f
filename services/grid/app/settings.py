"""Settings of the grid service (environment variables with the ``GRID_`` prefix)."""
from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from services.kit.settings import ServiceSettings

GRID_DIR = Path(__file__).resolve().parent.parent


class GridSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="GRID_", extra="ignore", populate_by_name=True)

    http_port: int = Field(8001, ge=1, le=65535, description="HTTP port (/healthz, /readyz, /metrics, API)")
    policy_path: Path = Field(GRID_DIR / "policy" / "deadlines.yaml",
                              description="deadline policy file (YAML, see services/grid/domain/policy.py)")
    calendar_path: Path = Field(GRID_DIR / "policy" / "calendar.yaml",
                                description="working-time calendar file (YAML): working hours, holidays and "
                                            "make-up working days (调休) per year")
    register_path: Path = Field(GRID_DIR / "registry" / "grids.yaml",
                                description="grid register file (YAML): the known grids of the district")
    departments_path: Path = Field(GRID_DIR / "registry" / "departments.yaml",
                                   description="department register file (YAML): the departments and the 权责清单")
    duplicate_radius_m: float = Field(250.0, gt=0, le=10_000,
                                      description="a report of the same category this near an open case is a duplicate")
    overdue_interval_seconds: float = Field(10.0, gt=0, le=3600,
                                            description="how often the overdue timer looks for missed deadlines")
    overdue_batch: int = Field(500, ge=1, le=100_000, description="cases the overdue timer checks per round")
    metrics_interval_seconds: float = Field(5.0, gt=0, le=3600,
                                            description="how often the domain metrics are refreshed from the projection")
    # 吹哨报到
    whistle_interval_seconds: float = Field(10.0, gt=0, le=3600,
                                            description="how often the whistles timer records missing departments")
    whistle_batch: int = Field(500, ge=1, le=100_000, description="whistles the whistles timer checks per round")
