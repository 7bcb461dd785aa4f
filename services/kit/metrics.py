"""Metrics every service gets from the kit. Base units (seconds), ``_total`` counters, no ids as labels.

``service`` is a label so one Prometheus can aggregate the district; ``topic``, ``type``,
``reason`` and ``partition`` are bounded sets.
"""
from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

RECORDS_CONSUMED = Counter(
    "kit_records_consumed_total", "Records consumed and durably handled, by topic and message type",
    ["service", "topic", "type"])
RECORDS_DUPLICATE = Counter(
    "kit_records_duplicate_total", "Records skipped because their (source, id) was already processed",
    ["service", "topic"])
RECORDS_IGNORED = Counter(
    "kit_records_ignored_total", "Records of a type this service does not react to (tolerant reader)",
    ["service", "topic"])
RECORDS_PRODUCED = Counter(
    "kit_records_produced_total", "Records published by the outbox relay, by topic and message type",
    ["service", "topic", "type"])
RECORDS_DEAD_LETTERED = Counter(
    "kit_records_dead_lettered_total", "Records sent to the dead-letter topic, by origin topic and reason",
    ["service", "topic", "reason"])
COMMANDS_REJECTED = Counter(
    "kit_commands_rejected_total", "Commands refused by the rules, by command type and reason",
    ["service", "type", "reason"])
BATCH_DURATION = Histogram(
    "kit_batch_duration_seconds", "Time to handle one consumed batch (decode to database commit)",
    ["service", "consumer"], buckets=(.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10))
BATCH_SIZE = Histogram(
    "kit_batch_records", "Records per consumed batch", ["service", "consumer"],
    buckets=(1, 5, 10, 50, 100, 250, 500, 1000, 2500, 5000))
BATCH_RETRIES = Counter(
    "kit_batch_retries_total", "Batches retried: database outage, conflict, failure, a value PostgreSQL refused (invalid_data), or the loop rewound (rewind)", ["service", "consumer", "cause"])
CONSUMER_LAG = Gauge(
    "kit_consumer_lag", "Records of a partition not handled yet (its end: the reported high watermark or the highest offset fetched + 1, the larger)", ["service", "topic", "partition"])
CONSUMER_STALLED = Gauge(
    "kit_consumer_stalled_seconds", "How long the consumer's oldest unfinished batch has been retrying (0 while "
    "its lanes advance)", ["service", "consumer"])
OUTBOX_BACKLOG = Gauge("kit_outbox_backlog", "Outbox rows not yet published", ["service"])
OUTBOX_OLDEST_AGE = Gauge(
    "kit_outbox_oldest_unpublished_age_seconds", "Age of the oldest unpublished outbox row (0 when empty)", ["service"])
RELAY_ERRORS = Counter(
    "kit_outbox_relay_errors_total", "Relay failures: a failed round, a failed try at the leadership while the "
    "database is away, each OUTBOX_RELAY_STALL_SECONDS a round waits on the broker or the database", ["service"])
RELAY_READ_BACK = Counter(
    "kit_outbox_read_back_total", "Outbox rows a relay found on their topic already, sent by a round that did "
    "not finish (a relay killed after the broker's ack, a send given up that the broker wrote), and did not "
    "send again", ["service"])
RELAY_RESTARTS = Counter(
    "kit_outbox_relay_restarts_total", "Times the worker restarted its outbox relay process after it died", ["service"])
HTTP_REQUESTS = Counter(
    "kit_http_requests_total", "HTTP requests by route and status", ["service", "route", "method", "status"])
HTTP_DURATION = Histogram(
    "kit_http_request_duration_seconds", "HTTP request duration by route", ["service", "route"],
    buckets=(.001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5))
DB_POOL_WAIT = Histogram(
    "kit_db_pool_wait_seconds", "Time a caller (a batch, a timer, an HTTP request) waited for a connection of the "
    "worker's database pool, in turn (0 while the pool has one free)", ["service"],
    buckets=(.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5))
READY = Gauge("kit_ready", "1 when the worker is ready (database, broker, migrations)", ["service"])
TIMER_RUNS = Counter("kit_timer_runs_total", "Timer rounds by timer and outcome", ["service", "timer", "outcome"])
TIMER_FAILURES_IN_A_ROW = Gauge(
    "kit_timer_consecutive_failures", "Rounds of a timer in a row that did not complete (outcome retry or error); "
    "0 after one that completed or was another worker's turn", ["service", "timer"])
CLOCK_OFFSET = Gauge(
    "kit_clock_offset_seconds", "Domain clock minus the real clock: 0 in production; the simulated calendar's "
    "lead under make run", ["service"])
RETENTION_DELETED = Counter("kit_retention_deleted_total", "Rows the retention timer deleted, by table",
                            ["service", "table"])
