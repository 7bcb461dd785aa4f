"""Settings of the points service (environment, prefix ``POINTS_``)."""
from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from services.kit.settings import ServiceSettings
from services.points import DEFAULT_RULES_PATH


class PointsSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="POINTS_", extra="ignore", populate_by_name=True)

    http_port: int = Field(8003, ge=1, le=65535, description="HTTP port (/healthz, /readyz, /metrics, API)")
    rules_path: Path = Field(DEFAULT_RULES_PATH, description="earning rules (YAML); re-read when the file changes")
    expiry_interval_seconds: float = Field(300.0, gt=0, description="how often the expiry timer looks for due lots")
    expiry_batch: int = Field(500, ge=1, le=100_000, description="resident accounts the expiry timer handles per round")
    deed_credit_interval_seconds: float = Field(
        600.0, gt=0, description="how often approved deeds whose credit was refused (over a cap) are credited again")
    metrics_interval_seconds: float = Field(15.0, gt=0, description="how often the accounts gauge is refreshed")
    redemption_code_seconds: float = Field(
        600.0, gt=0, le=86_400, description="how long a resident's redemption code (consent) stays valid")
    ledger_fold_interval_seconds: float = Field(
        5.0, gt=0, description="how often the ledger's write deltas are folded into its running totals")
    ledger_full_check_interval_seconds: float = Field(
        600.0, ge=0, description="the least time between two full ledger checks (POST /v1/ledger/check/full)")
    moral_model_candidates: int = Field(10, ge=0, le=1000, description="yearly 好人榜 ranks flagged as 道德模范 candidates")
