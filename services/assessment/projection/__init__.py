"""The assessment projection: the event log and published scorecards in PostgreSQL (:mod:`.store`),
and the replay of the history into a period's scorecards (:mod:`.history`)."""
from pathlib import Path

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"
