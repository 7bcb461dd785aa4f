"""Domain metrics of the assessment service (the kit exports kit_* besides). No ids as labels."""
from __future__ import annotations

from datetime import datetime

from prometheus_client import Counter, Gauge, Histogram

from services.kit import clock

SCORECARDS_PUBLISHED = Counter(
    "assessment_scorecards_published_total",
    "Scorecards published (a re-close publishes only scorecards whose content changed), by entity type",
    ["entity_type"])
ALERTS_RAISED = Counter(
    "assessment_alerts_raised_total", "Alerts (约谈 warnings) published, by indicator", ["indicator"])
EVENTS_RECORDED = Counter(
    "assessment_events_recorded_total", "Upstream events appended to the event log (duplicates excluded), by topic",
    ["topic"])
EVENTS_REFOLDED = Counter(
    "assessment_events_refolded_total",
    "Events unwound and folded again because an event that occurred before them arrived after them")
PERIODS_CLOSED = Counter(
    "assessment_periods_closed_total", "Period closes, by trigger (command | timer)", ["trigger"])
CLOSE_DURATION = Histogram(
    "assessment_close_duration_seconds", "Time to score one period from its counters and publish it",
    buckets=(.01, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120))
PROJECTION_LAG = Gauge(
    "assessment_projection_lag_seconds",
    "Now minus the envelope time of the newest upstream event in the event log (0 before any)")

_newest: list[float] = []


def applied(newest: datetime | None) -> None:
    """Note the envelope time of the newest upstream event applied."""
    if newest is None:
        return
    ts = newest.timestamp()
    if not _newest:
        _newest.append(ts)
    elif ts > _newest[0]:
        _newest[0] = ts


PROJECTION_LAG.set_function(lambda: max(0.0, clock.now().timestamp() - _newest[0]) if _newest else 0.0)
