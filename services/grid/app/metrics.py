"""Domain metrics of the grid service, read from the projection.

A short timer (``GRID_METRICS_INTERVAL_SECONDS``) takes a :class:`MetricsSnapshot` of the
``cases`` and ``patrols`` tables; a collector exposes it on ``/metrics``:

- ``grid_cases{status,category}`` (gauge): cases by status and category.
- ``grid_cases_overdue_open`` (gauge): open cases that missed a deadline.
- ``grid_case_handling_seconds`` (histogram): report-to-close time of closed cases.
- ``grid_calendar_covers_next_year`` (gauge, 0/1): whether the working-time calendar lists
  next year's holidays (0: from January on, working days will be plain Monday–Friday).
- ``grid_reports_received_total``, ``grid_reports_dismissed_total{reason}`` (duplicate | other),
  ``grid_cases_reworked_total``, ``grid_patrols_logged_total`` (counters).
- ``grid_supervisions_total{supervision}`` (counter): 超期督办 cards by card (yellow_card |
  red_card) and 挂牌督办 listings (listed).

Because they are derived from committed rows, a replayed command, a rolled-back batch or a
restart never counts twice, and the counters continue across restarts. Every worker of the
service exposes the same (service-wide) values: aggregate them with ``max``, not ``sum``.
No ids as labels.
"""
from __future__ import annotations

import logging
from datetime import date, datetime

from prometheus_client.core import REGISTRY, CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

from schemas.grid import Category
from services.grid.domain import CaseStatus, WorkCalendar
from services.grid.projection import MetricsSnapshot

HANDLING_BUCKETS: tuple[float, ...] = (
    60, 300, 900, 1800, 3600, 4 * 3600, 8 * 3600, 86400, 2 * 86400, 3 * 86400, 5 * 86400, 7 * 86400,
    14 * 86400, 30 * 86400,
)
DISMISS_REASONS = ("duplicate", "other")
SUPERVISIONS = ("yellow_card", "red_card", "listed")

log = logging.getLogger("grid.metrics")


def covers_next_year(calendar: WorkCalendar, now: datetime) -> bool:
    """Whether ``calendar`` lists the year after ``now`` (in the calendar's zone)."""
    return calendar.covers(date(now.astimezone(calendar.tz).year + 1, 1, 1))


class GridMetrics:
    """A prometheus collector over the latest projection snapshot."""

    def __init__(self) -> None:
        self.snapshot: MetricsSnapshot | None = None
        self.calendar_covers_next_year: bool | None = None

    def update(self, snapshot: MetricsSnapshot) -> None:
        self.snapshot = snapshot

    def check_calendar(self, calendar: WorkCalendar, now: datetime) -> bool:
        """Set the calendar gauge; log a warning when the calendar stops covering next year
        (once per change, so at start-up too)."""
        covered = covers_next_year(calendar, now)
        if not covered and self.calendar_covers_next_year is not False:
            year = now.astimezone(calendar.tz).year + 1
            log.warning("the working-time calendar does not list %d: its working days will be plain Monday-Friday, "
                        "without holidays or make-up days; add the holiday notice for %d to the calendar file "
                        "(GRID_CALENDAR_PATH)", year, year)
        self.calendar_covers_next_year = covered
        return covered

    def collect(self):
        s = self.snapshot
        cases = GaugeMetricFamily("grid_cases", "Grid cases by status and category", labels=["status", "category"])
        for status in CaseStatus:
            for cat in Category:
                n = s.by_status_category.get((status.value, cat.value), 0) if s else 0
                cases.add_metric([status.value, cat.value], n)
        yield cases
        yield GaugeMetricFamily("grid_cases_overdue_open", "Open grid cases that missed a deadline",
                                value=s.overdue_open if s else 0)
        hist = HistogramMetricFamily("grid_case_handling_seconds", "Report-to-close time of closed grid cases")
        counts = s.handling_bucket_counts if s else [0] * len(HANDLING_BUCKETS)
        buckets = [(_le(b), c) for b, c in zip(HANDLING_BUCKETS, counts)]
        buckets.append(("+Inf", s.handling_count if s else 0))
        hist.add_metric([], buckets, sum_value=s.handling_sum if s else 0.0)
        yield hist
        yield CounterMetricFamily("grid_reports_received", "Case reports received (accepted by the rules)",
                                  value=s.reports if s else 0)
        dismissed = CounterMetricFamily("grid_reports_dismissed", "Reports not registered, by reason", labels=["reason"])
        for reason in DISMISS_REASONS:
            dismissed.add_metric([reason], s.dismissed_by_reason.get(reason, 0) if s else 0)
        yield dismissed
        yield CounterMetricFamily("grid_cases_reworked", "Failed verifications sending a case back (返工)",
                                  value=s.reworks if s else 0)
        yield GaugeMetricFamily("grid_calendar_covers_next_year",
                                "1 when the working-time calendar lists next year's holidays and make-up days",
                                value=1 if self.calendar_covers_next_year else 0)
        yield CounterMetricFamily("grid_patrols_logged", "Patrols logged by grid workers", value=s.patrols if s else 0)
        cards = CounterMetricFamily("grid_supervisions", "Supervisions issued: cards on missed deadlines (超期督办) "
                                    "and listings of severe hazards (挂牌督办)", labels=["supervision"])
        for card in SUPERVISIONS:
            cards.add_metric([card], s.supervisions.get(card, 0) if s else 0)
        yield cards


def _le(b: float) -> str:
    return f"{float(b)}"


METRICS = GridMetrics()
_registered = False


def register() -> GridMetrics:
    """Register the collector once per process (idempotent)."""
    global _registered
    if not _registered:
        REGISTRY.register(METRICS)
        _registered = True
    return METRICS
