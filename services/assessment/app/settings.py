"""Settings of the assessment service (environment, prefix ``ASSESSMENT_``)."""
from __future__ import annotations

from datetime import datetime
from pathlib import Path

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from services.assessment.domain.scheme import DEFAULT_SCHEME_PATH
from services.kit.settings import ServiceSettings


class AssessmentSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="ASSESSMENT_", extra="ignore", populate_by_name=True)

    http_port: int = Field(8004, ge=1, le=65535, description="HTTP port (/healthz, /readyz, /metrics, API)")
    scheme_file: Path = Field(DEFAULT_SCHEME_PATH, description="the default scheme data file (YAML); schemes "
                              "introduced by assessment.scheme.change.v1 take precedence from their effective_from")
    fact_retention_days: float = Field(
        800.0, ge=0, le=36500, description="days an upstream fact is kept in the event log (by when it was recorded); "
        "the counters stay, but a late event cannot unwind pruned ones and a rebuild from the log starts at what "
        "is left, so keep it beyond the longest period (0: for ever)")
    ref_cache_entries: int = Field(
        100_000, ge=0, le=50_000_000, description="refs (what the counters know of cases, members, accounts...) a "
        "worker keeps in memory between folds, so that a fold reads from the table only what another worker or an "
        "erasure changed; past it the cache drops its older half (0: none; some 1 kB each)")
    close_timer: bool = Field(True, description="close periods automatically when they end")
    close_check_seconds: float = Field(60.0, gt=0, description="how often the period-close timer looks for ended periods")
    close_delay_seconds: float = Field(0.0, ge=0, description="grace after a period's end before the timer closes it "
                                       "(late upstream events); a later close command re-publishes what changed")
    close_timer_since: datetime | None = Field(None, description="on its first run the timer closes periods that ended "
                                               "after this instant (default: none, it starts from its first run)")
