"""The assessment projection: the event log, the counters and refs folded from it, schemes,
published scorecards and alerts in PostgreSQL (:mod:`.store`, SQL only; the fold is the
domain's, in :mod:`services.assessment.domain.incremental`)."""
from pathlib import Path

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"
