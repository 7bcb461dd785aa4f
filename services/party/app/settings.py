"""Settings of the party service (environment, prefix ``PARTY_``)."""
from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from services.kit.settings import ServiceSettings

PARTY_DIR = Path(__file__).resolve().parent.parent

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"
"""The party service's numbered SQL migrations (schema ``party``)."""


class PartySettings(ServiceSettings):
    """The kit's settings plus the party service's timers."""

    model_config = SettingsConfigDict(env_prefix="PARTY_", extra="ignore", populate_by_name=True)

    http_port: int = Field(8005, ge=1, le=65535, description="HTTP port (/healthz, /readyz, /metrics, API)")
    coverage_interval_seconds: float = Field(
        60.0, gt=0, description="how often the timer looks for grids with members and no grid branch (coverage "
                                "gaps, each reported once) and refreshes the party_orgs gauge")
    org_life_path: Path = Field(PARTY_DIR / "policy" / "org_life.yaml",
                                description="the frequency table of organisational life (三会一课, 主题党日)")
    org_life_interval_seconds: float = Field(
        3600.0, gt=0, description="how often the timer looks for closed periods without a meeting of a kind an "
                                  "organisation must hold (each reported once)")
    member_report_window_days: float = Field(
        30.0, gt=0, description="how long after a member's registration their unit has to have reported (单位报到)")
    member_interval_seconds: float = Field(
        3600.0, gt=0, description="how often the timers flag members whose unit has not reported and give the "
                                  "last quarter's feedback to members' units")
    member_batch: int = Field(500, ge=1, description="members each member timer takes per round")
    metrics_interval_seconds: float = Field(15.0, gt=0, description="how often the life metrics are read from "
                                                                    "the projection")
    council_interval_seconds: float = Field(
        60.0, gt=0, description="how often the council timer makes proposals effective at the end of their "
                                "公示, reports quarters without a joint meeting and supervises resolutions past "
                                "their deadline (each once)")
    council_batch: int = Field(500, ge=1, description="councils the council timer checks per round, at most")
