"""The grid service's PostgreSQL side: case states (:mod:`.store`), projection writes
(:mod:`.cases`, gathered per unit of work by :mod:`.rows`) and reads (:mod:`.queries`).
All SQL of the service lives here."""
from .cases import (
    HistoryEntry,
    append_history,
    bounding_box,
    case_row,
    logged_patrols,
    open_cases_near_each,
    upsert_cases,
    upsert_patrols,
)
from .queries import (
    CaseFilter,
    MetricsSnapshot,
    Reader,
    get_case,
    grid_counts,
    list_cases,
    list_patrols,
    metrics_snapshot,
    open311_requests,
)
from .rows import ProjectionRows
from .store import CASES, due_for_check

__all__ = [
    "HistoryEntry", "append_history", "bounding_box", "case_row", "logged_patrols",
    "open_cases_near_each", "upsert_cases", "upsert_patrols", "CaseFilter", "MetricsSnapshot", "Reader", "get_case",
    "grid_counts", "list_cases", "list_patrols", "metrics_snapshot", "open311_requests", "ProjectionRows", "CASES",
    "due_for_check",
]
