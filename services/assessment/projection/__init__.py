"""The assessment projection: the event log, schemes, published scorecards and alerts in
PostgreSQL (:mod:`.store`, SQL only; the replay of the log is the domain's, in
:mod:`services.assessment.domain.history`)."""
from pathlib import Path

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"
