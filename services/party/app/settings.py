"""Settings of the party service (environment, prefix ``PARTY_``)."""
from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from services.kit.settings import ServiceSettings

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"
"""The party service's numbered SQL migrations (schema ``party``)."""


class PartySettings(ServiceSettings):
    """The kit's settings plus the party service's timers."""

    model_config = SettingsConfigDict(env_prefix="PARTY_", extra="ignore", populate_by_name=True)

    http_port: int = Field(8005, ge=1, le=65535, description="HTTP port (/healthz, /readyz, /metrics, API)")
    coverage_interval_seconds: float = Field(
        60.0, gt=0, description="how often the timer looks for grids with members and no grid branch (coverage "
                                "gaps, each reported once) and refreshes the party_orgs gauge")
    council_interval_seconds: float = Field(
        60.0, gt=0, description="how often the council timer makes proposals effective at the end of their "
                                "公示, reports quarters without a joint meeting and supervises resolutions past "
                                "their deadline (each once)")
    council_batch: int = Field(500, ge=1, description="councils the council timer checks per round, at most")
