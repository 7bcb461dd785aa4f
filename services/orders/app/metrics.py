"""Domain metrics of the orders service (the kit exports its own kit_* metrics).

Base units (seconds), ``_total`` counters, no ids as labels. The counters and histograms are
updated by the handler and the timers as events are decided; a batch that the kit retries
after a fault or a database conflict may count its events again (counters are rates, not a
ledger: the ledger is the ``orders`` table, which the ``orders_orders`` gauge reads).

Acceptance rate = ``orders_accepted_total`` / ``orders_dispatched_total`` (declines and
expiries are the rest).
"""
from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

_DURATION_BUCKETS = (60, 300, 900, 1800, 3600, 2 * 3600, 4 * 3600, 8 * 3600, 24 * 3600, 3 * 86400, 7 * 86400,
                     30 * 86400)
_FAST_BUCKETS = (0.1, 0.5, 1, 5, 15, 60) + _DURATION_BUCKETS

ORDERS = Gauge("orders_orders", "Orders by status, read from the projection by a short timer", ["status"])
TIME_TO_DISPATCH = Histogram(
    "orders_time_to_dispatch_seconds", "From 点单 (placed) to the order's first dispatch (派单)",
    buckets=_FAST_BUCKETS)
TIME_TO_ACCEPT = Histogram(
    "orders_time_to_accept_seconds", "From the dispatch that was accepted to 接单 (accepted)",
    buckets=_FAST_BUCKETS)
TIME_TO_COMPLETE = Histogram(
    "orders_time_to_complete_seconds", "From 点单 (placed) to completion of the service",
    buckets=_FAST_BUCKETS)
DISPATCHED = Counter(
    "orders_dispatched_total", "Dispatches (派单), automatic (mode=auto) or by a community operator (mode=manual)",
    ["mode"])
ACCEPTED = Counter("orders_accepted_total", "Dispatches accepted by the assignee (接单)")
DECLINED = Counter("orders_declined_total", "Dispatches declined by the assignee")
EXPIRED = Counter("orders_dispatch_expired_total", "Dispatches not accepted by accept_by (超时未接单)")
AUTO_DISPATCH_MISSES = Counter(
    "orders_auto_dispatch_misses_total",
    "Automatic dispatch attempts that found no eligible member (the order keeps waiting), by what triggered them",
    ["trigger"])
RATED = Counter("orders_rated_total", "Completed orders rated by their resident (评价), by rating", ["rating"])
EVALUATED = Counter("orders_evaluated_total", "Orders evaluated (考单), by the organisation's verdict", ["passed"])
PLACED = Counter("orders_placed_total", "Orders placed (点单), by origin (resident or grid case)", ["origin"])
CANCELLED = Counter("orders_cancelled_total", "Orders cancelled before completion (撤单)")
COMPLETED = Counter("orders_completed_total", "Orders completed (服务完成)")

for _mode in ("auto", "manual"):
    DISPATCHED.labels(_mode)
for _p in ("true", "false"):
    EVALUATED.labels(_p)
for _r in range(1, 6):
    RATED.labels(str(_r))
