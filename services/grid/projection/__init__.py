"""The grid service's PostgreSQL side: case states (:mod:`.store`), projection writes
(:mod:`.cases`) and reads (:mod:`.queries`). All SQL of the service lives here."""
from .cases import (
    HistoryEntry,
    append_history,
    bounding_box,
    case_row,
    open_cases_near,
    patrol_exists,
    upsert_cases,
    upsert_patrols,
)
from .queries import (
    CaseFilter,
    MetricsSnapshot,
    get_case,
    grid_counts,
    list_cases,
    list_patrols,
    metrics_snapshot,
    open311_requests,
)
from .store import due_for_check, load_states, save_states

__all__ = [
    "HistoryEntry", "append_history", "bounding_box", "case_row", "open_cases_near", "patrol_exists", "upsert_cases",
    "upsert_patrols", "CaseFilter", "MetricsSnapshot", "get_case", "grid_counts", "list_cases", "list_patrols",
    "metrics_snapshot", "open311_requests", "due_for_check", "load_states", "save_states",
]
