"""Generate the Grafana dashboards (deploy/grafana/dashboards/*.json) from one description.

    .venv/bin/python deploy/grafana/generate.py          # rewrite the JSON files
    .venv/bin/python deploy/grafana/generate.py --check  # exit 1 if a file is stale

One dashboard per service (the kit's pipeline metrics, then the service's domain metrics) and a
district overview. Every PromQL expression here uses only metric names that exist on a live
``/metrics`` of the workers, kafka_exporter's, Prometheus' own ``up``, or the recording rules in
deploy/prometheus/rules/recording.yml: tests/deploy/test_metric_names.py checks that.

Aggregation (see the recording rules): counters are summed over a service's workers; gauges read
from the projection (grid_cases, orders_orders, points_accounts, kit_outbox_*) are the same on
every worker of a service, so they are taken with ``max`` (party_orgs and party_coverage_gaps too).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parent / "dashboards"
DS = {"type": "prometheus", "uid": "prometheus"}
RATE = "$__rate_interval"


# -- panel builders ---------------------------------------------------------------------------
def ts(title: str, *targets: tuple[str, str], unit: str = "short", desc: str = "", stack: bool = False) -> dict:
    return {
        "type": "timeseries", "title": title, "description": desc, "datasource": DS,
        "fieldConfig": {"defaults": {"unit": unit, "custom": {"stacking": {"mode": "normal" if stack else "none"},
                                                              "fillOpacity": 20 if stack else 5}},
                        "overrides": []},
        "options": {"legend": {"displayMode": "table", "placement": "right", "calcs": ["lastNotNull", "max"]},
                    "tooltip": {"mode": "multi"}},
        "targets": [{"datasource": DS, "expr": e, "legendFormat": lf, "refId": chr(65 + i)}
                    for i, (e, lf) in enumerate(targets)],
    }


def stat(title: str, expr: str, *, unit: str = "short", desc: str = "", legend: str = "",
         thresholds: list[tuple[float | None, str]] | None = None) -> dict:
    steps = [{"color": c, "value": v} for v, c in (thresholds or [(None, "green")])]
    return {
        "type": "stat", "title": title, "description": desc, "datasource": DS,
        "fieldConfig": {"defaults": {"unit": unit, "thresholds": {"mode": "absolute", "steps": steps}},
                        "overrides": []},
        "options": {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                    "colorMode": "background", "graphMode": "area", "textMode": "auto"},
        "targets": [{"datasource": DS, "expr": expr, "legendFormat": legend, "refId": "A", "instant": False}],
    }


def row(title: str) -> dict:
    return {"type": "row", "title": title, "collapsed": False, "panels": []}


def layout(panels: list[dict]) -> list[dict]:
    """Place panels on the 24-column grid: rows full width, stats 4 wide, graphs 12 wide."""
    x = y = 0
    h_row = 0
    out = []
    for pid, p in enumerate(panels, start=1):
        p = {"id": pid, **p}
        w, h = {"row": (24, 1), "stat": (4, 4)}.get(p["type"], (12, 8))
        if p["type"] == "row" or x + w > 24:
            y += h_row
            x, h_row = 0, 0
        p["gridPos"] = {"x": x, "y": y, "w": w, "h": h}
        x += w
        h_row = max(h_row, h)
        if p["type"] == "row":
            y += h
            x = h_row = 0
        out.append(p)
    return out


def dashboard(uid: str, title: str, panels: list[dict], tags: list[str], desc: str) -> dict:
    return {
        "uid": uid, "title": title, "description": desc, "tags": ["grassroots", *tags],
        "timezone": "browser", "schemaVersion": 39, "version": 1, "editable": True,
        "refresh": "30s", "time": {"from": "now-6h", "to": "now"},
        "templating": {"list": []}, "annotations": {"list": []},
        "links": [{"type": "dashboards", "tags": ["grassroots"], "asDropdown": True, "title": "Grassroots"}],
        "panels": layout(panels),
    }


# -- the kit's pipeline, the same for every service ---------------------------------------------
def kit_panels(svc: str) -> list[dict]:
    s = f'service="{svc}"'
    return [
        row("Workers and pipeline (kit)"),
        stat("Workers ready", f"sum(kit_ready{{{s}}})", desc="Workers whose /readyz answers 200 (database, migrations, broker).",
             thresholds=[(None, "red"), (1, "green")]),
        stat("Workers scraped", f'sum(up{{job="grassroots-services",{s}}})',
             desc="Workers Prometheus reaches. Fewer than expected = GrassrootsWorkerDown.",
             thresholds=[(None, "red"), (1, "green")]),
        stat("Consumer lag", f'sum(service_topic:kit_consumer_lag:sum{{{s}}})',
             desc="Records consumed topics hold that this service has not handled yet.",
             thresholds=[(None, "green"), (1000, "orange"), (10000, "red")]),
        stat("Dead-lettered (1h)", f"sum(increase(kit_records_dead_lettered_total{{{s}}}[1h]))",
             desc=f"Records sent to {svc}.dlq.v1 in the last hour.", thresholds=[(None, "green"), (1, "red")]),
        stat("Outbox oldest unpublished", f"max(kit_outbox_oldest_unpublished_age_seconds{{{s}}})", unit="s",
             desc="Age of the oldest committed event not yet on Kafka. Above 60 s = GrassrootsOutboxNotPublishing.",
             thresholds=[(None, "green"), (10, "orange"), (60, "red")]),
        stat("Batch p99", f"service:kit_batch_duration_seconds:p99_5m{{{s}}}", unit="s",
             desc="99th percentile time to handle one consumed batch (decode to commit), last 5 minutes.",
             thresholds=[(None, "green"), (1, "orange"), (5, "red")]),
        ts("Records consumed / s by type", (f"sum by (type) (rate(kit_records_consumed_total{{{s}}}[{RATE}]))", "{{type}}"),
           unit="ops", stack=True, desc="Records durably handled (committed with their effects)."),
        ts("Records published / s by type", (f"sum by (type) (rate(kit_records_produced_total{{{s}}}[{RATE}]))", "{{type}}"),
           unit="ops", stack=True, desc="Events and rejections the outbox relay published to Kafka."),
        ts("Consumer lag by topic",
           (f"service_topic:kit_consumer_lag:sum{{{s}}}", "{{topic}} (worker view)"),
           (f'sum by (topic) (kafka_consumergroup_lag{{consumergroup=~"{svc}-service-.*"}})', "{{topic}} (broker view)"),
           desc="Worker view: kit_consumer_lag (max per partition, summed). Broker view: kafka_exporter, also when no worker runs."),
        ts("Dead-lettered / s by topic and reason",
           (f"sum by (topic, reason) (rate(kit_records_dead_lettered_total{{{s}}}[{RATE}]))", "{{topic}} {{reason}}"),
           unit="ops", desc=f"Records that could not be processed, sent to {svc}.dlq.v1 with the reason in headers."),
        ts("Commands rejected / s by reason",
           (f"sum by (type, reason) (rate(kit_commands_rejected_total{{{s}}}[{RATE}]))", "{{type}} {{reason}}"),
           unit="ops", desc=f"Commands refused by the rules, published on {svc}.rejections.v1 (HTTP 409)."),
        ts("Duplicates and ignored records / s",
           (f"sum by (topic) (rate(kit_records_duplicate_total{{{s}}}[{RATE}]))", "duplicate {{topic}}"),
           (f"sum by (topic) (rate(kit_records_ignored_total{{{s}}}[{RATE}]))", "ignored {{topic}}"),
           unit="ops", desc="Duplicates: a (source, id) already processed (redelivery). Ignored: types this service does not react to."),
        ts("Batch duration",
           (f"histogram_quantile(0.5, sum by (le) (rate(kit_batch_duration_seconds_bucket{{{s}}}[{RATE}])))", "p50"),
           (f"histogram_quantile(0.99, sum by (le) (rate(kit_batch_duration_seconds_bucket{{{s}}}[{RATE}])))", "p99"),
           unit="s"),
        ts("Batch size",
           (f"histogram_quantile(0.5, sum by (le) (rate(kit_batch_records_bucket{{{s}}}[{RATE}])))", "p50"),
           (f"sum(rate(kit_batch_records_sum{{{s}}}[{RATE}])) / sum(rate(kit_batch_records_count{{{s}}}[{RATE}]))", "mean"),
           desc="Records per consumed batch: large batches under load are healthy (one commit per batch)."),
        ts("Outbox", (f"max(kit_outbox_backlog{{{s}}})", "unpublished rows"),
           (f"max(kit_outbox_oldest_unpublished_age_seconds{{{s}}})", "oldest age (s)"),
           desc="Unpublished outbox rows and the age of the oldest. Both return to 0 when the relay keeps up."),
        ts("Retries and relay errors / s",
           (f"sum by (cause) (rate(kit_batch_retries_total{{{s}}}[{RATE}]))", "batch retry: {{cause}}"),
           (f"sum(rate(kit_outbox_relay_errors_total{{{s}}}[{RATE}]))", "relay errors"),
           unit="ops", desc="Batches retried after a database outage or conflict; relay rounds that failed (broker or database away)."),
        ts("Consumers stalled",
           (f"max by (consumer, instance) (kit_consumer_stalled_seconds{{{s}}})", "{{consumer}} {{instance}}"),
           unit="s", desc="How long each consumer's oldest batch has been retrying (0 while its lanes advance). "
                          "Past 60 s its worker's /readyz fails; over 60 s for 2 min = GrassrootsConsumerStalled."),
        ts("HTTP requests / s by status",
           (f"sum by (status) (rate(kit_http_requests_total{{{s}}}[{RATE}]))", "{{status}}"), unit="reqps", stack=True),
        ts("HTTP p95 by route",
           (f"histogram_quantile(0.95, sum by (route, le) (rate(kit_http_request_duration_seconds_bucket{{{s}}}[{RATE}])))", "{{route}}"),
           unit="s"),
        ts("Database pool wait p99",
           (f"histogram_quantile(0.99, sum by (instance, le) (rate(kit_db_pool_wait_seconds_bucket{{{s}}}[{RATE}])))", "{{instance}}"),
           unit="s", desc="How long batches, timers and HTTP requests waited, in turn, for a connection of their "
                          "worker's pool. Near the API's latency: the pool is the bottleneck (<SVC>_DB_POOL_MAX)."),
        ts("Timer rounds / s by outcome",
           (f"sum by (timer, outcome) (rate(kit_timer_runs_total{{{s}}}[{RATE}]))", "{{timer}} {{outcome}}"),
           unit="ops", desc="Periodic jobs (overdue checks, expiries, metrics refresh): ok, retry (database away), error."),
    ]


# -- domain panels ----------------------------------------------------------------------------
def grid_panels() -> list[dict]:
    return [
        row("Cases (网格案件)"),
        stat("Open cases", 'sum(max by (status, category) (grid_cases{status!~"closed|dismissed"}))'),
        stat("Overdue open cases", "max(grid_cases_overdue_open)",
             desc="Open cases that missed a handling deadline. Above 20 for 15 min = GrassrootsOverdueCasesHigh.",
             thresholds=[(None, "green"), (10, "orange"), (20, "red")]),
        stat("Closed cases", 'sum(max by (status, category) (grid_cases{status="closed"}))'),
        stat("Median handling time", "histogram_quantile(0.5, max by (le) (grid_case_handling_seconds_bucket))", unit="s",
             desc="Report-to-close time over all closed cases."),
        stat("Reports / h", "max(increase(grid_reports_received_total[1h]))",
             desc="Reports accepted by the rules in the last hour."),
        stat("Reworks / h", "max(increase(grid_cases_reworked_total[1h]))",
             desc="Failed verifications that sent a case back (返工)."),
        ts("Cases by status", ("status:grid_cases:max", "{{status}}"), stack=True),
        ts("Open cases by category",
           ('sum by (category) (max by (status, category) (grid_cases{status!~"closed|dismissed"}))', "{{category}}"),
           stack=True),
        ts("Overdue open cases", ("max(grid_cases_overdue_open)", "overdue")),
        ts("Handling time (report to close)",
           ("histogram_quantile(0.5, max by (le) (grid_case_handling_seconds_bucket))", "p50"),
           ("histogram_quantile(0.9, max by (le) (grid_case_handling_seconds_bucket))", "p90"),
           ("max(grid_case_handling_seconds_sum) / max(grid_case_handling_seconds_count)", "mean"), unit="s"),
        ts("Reports, dismissals, reworks, patrols / h",
           ("max(rate(grid_reports_received_total[1h])) * 3600", "reports"),
           ("max by (reason) (rate(grid_reports_dismissed_total[1h])) * 3600", "dismissed: {{reason}}"),
           ("max(rate(grid_cases_reworked_total[1h])) * 3600", "reworks"),
           ("max(rate(grid_patrols_logged_total[1h])) * 3600", "patrols")),
        ts("Supervision (超期督办 cards, 挂牌督办 listings) / h",
           ("max by (supervision) (rate(grid_supervisions_total[1h])) * 3600", "{{supervision}}")),
        ts("吹哨报到 / h",
           ("max(rate(grid_whistles_blown_total[1h])) * 3600", "whistles blown"),
           ("max by (on_time) (rate(grid_whistle_answers_total[1h])) * 3600", "reports, on time: {{on_time}}"),
           ("max(rate(grid_whistle_departments_missed_total[1h])) * 3600", "departments missing")),
    ]


def orders_panels() -> list[dict]:
    return [
        row("Orders (四单式: 点单 派单 接单 考单)"),
        stat("Waiting for dispatch", 'sum(max by (status) (orders_orders{status=~"placed|declined|dispatch_expired"}))',
             thresholds=[(None, "green"), (50, "orange")]),
        stat("Being served", 'sum(max by (status) (orders_orders{status="accepted"}))'),
        stat("Awaiting evaluation", 'sum(max by (status) (orders_orders{status="completed"}))'),
        stat("Evaluated", 'sum(max by (status) (orders_orders{status="evaluated"}))'),
        stat("Acceptance ratio (1h)", "district:orders_acceptance:ratio_rate1h", unit="percentunit",
             desc="Accepted / dispatched over the last hour (declines and expiries are the rest).",
             thresholds=[(None, "red"), (0.5, "orange"), (0.8, "green")]),
        stat("Auto-dispatch misses (1h)", "sum(increase(orders_auto_dispatch_misses_total[1h]))",
             desc="Automatic dispatches that found no eligible member: missing posts or capacity in a community."),
        ts("Orders by status", ("status:orders_orders:max", "{{status}}"), stack=True),
        ts("Flow / h",
           ("sum by (origin) (rate(orders_placed_total[1h])) * 3600", "placed ({{origin}})"),
           ("sum by (mode) (rate(orders_dispatched_total[1h])) * 3600", "dispatched ({{mode}})"),
           ("sum(rate(orders_accepted_total[1h])) * 3600", "accepted"),
           ("sum(rate(orders_declined_total[1h])) * 3600", "declined"),
           ("sum(rate(orders_dispatch_expired_total[1h])) * 3600", "expired"),
           ("sum(rate(orders_completed_total[1h])) * 3600", "completed"),
           ("sum(rate(orders_cancelled_total[1h])) * 3600", "cancelled")),
        ts("Time to dispatch / accept / complete (p90)",
           (f"histogram_quantile(0.9, sum by (le) (rate(orders_time_to_dispatch_seconds_bucket[{RATE}])))", "to dispatch"),
           (f"histogram_quantile(0.9, sum by (le) (rate(orders_time_to_accept_seconds_bucket[{RATE}])))", "to accept"),
           (f"histogram_quantile(0.9, sum by (le) (rate(orders_time_to_complete_seconds_bucket[{RATE}])))", "to complete"),
           unit="s"),
        ts("Evaluations / h by verdict",
           ("sum by (passed) (rate(orders_evaluated_total[1h])) * 3600", "passed={{passed}}"),
           ("sum by (trigger) (rate(orders_auto_dispatch_misses_total[1h])) * 3600", "auto-dispatch miss: {{trigger}}")),
    ]


def points_panels() -> list[dict]:
    return [
        row("Points (积分)"),
        stat("Awarded (24h)", "sum(increase(points_awarded_points_total[24h]))"),
        stat("Redeemed (24h)", "sum(increase(points_redeemed_points_total[24h]))"),
        stat("Expired (24h)", "sum(increase(points_expired_points_total[24h]))"),
        stat("Refused transfers (24h)", "sum(increase(points_transfers_refused_total[24h]))",
             thresholds=[(None, "green"), (1, "orange")]),
        stat("Resident accounts", 'max(points_accounts{kind="resident"})'),
        stat("Merchant accounts", 'max(points_accounts{kind="merchant"})'),
        ts("Points awarded / h by category",
           ("sum by (category) (rate(points_awarded_points_total[1h])) * 3600", "{{category}}"), stack=True),
        ts("Points redeemed, expired, adjusted / h",
           ("sum(rate(points_redeemed_points_total[1h])) * 3600", "redeemed"),
           ("sum(rate(points_expired_points_total[1h])) * 3600", "expired"),
           ("sum(rate(points_adjusted_points_total[1h])) * 3600", "adjusted")),
        ts("Transfers refused / h by reason",
           ("sum by (reason) (rate(points_transfers_refused_total[1h])) * 3600", "{{reason}}")),
        ts("Accounts by kind", ("max by (kind) (points_accounts)", "{{kind}}")),
    ]


def assessment_panels() -> list[dict]:
    return [
        row("Assessment (考核评价)"),
        stat("Scorecards published (24h)", "sum(increase(assessment_scorecards_published_total[24h]))"),
        stat("Alerts raised (24h)", "sum(increase(assessment_alerts_raised_total[24h]))",
             desc="约谈 warnings published: an indicator below its alert threshold.",
             thresholds=[(None, "green"), (1, "orange")]),
        stat("Periods closed (24h)", "sum(increase(assessment_periods_closed_total[24h]))"),
        stat("Projection lag", "max(assessment_projection_lag_seconds)", unit="s",
             desc="Now minus the time of the newest upstream event recorded. Grows in quiet hours too: compare with consumer lag."),
        stat("Close duration p90", "histogram_quantile(0.9, sum by (le) (rate(assessment_close_duration_seconds_bucket[1h])))",
             unit="s", desc="Time to replay the history and score one period."),
        ts("Upstream events recorded / s by topic",
           (f"sum by (topic) (rate(assessment_events_recorded_total[{RATE}]))", "{{topic}}"), unit="ops", stack=True),
        ts("Scorecards published / h by entity type",
           ("sum by (entity_type) (rate(assessment_scorecards_published_total[1h])) * 3600", "{{entity_type}}")),
        ts("Alerts raised / h by indicator",
           ("sum by (indicator) (rate(assessment_alerts_raised_total[1h])) * 3600", "{{indicator}}")),
        ts("Period closes / h by trigger",
           ("sum by (trigger) (rate(assessment_periods_closed_total[1h])) * 3600", "{{trigger}}")),
        ts("Close duration",
           (f"histogram_quantile(0.5, sum by (le) (rate(assessment_close_duration_seconds_bucket[{RATE}])))", "p50"),
           (f"histogram_quantile(0.99, sum by (le) (rate(assessment_close_duration_seconds_bucket[{RATE}])))", "p99"),
           unit="s"),
        ts("Projection lag", ("max(assessment_projection_lag_seconds)", "lag"), unit="s"),
    ]


def party_panels() -> list[dict]:
    return [
        row("Party organisations and organisational life (党组织 · 联席会议 · 三会一课)"),
        stat("Party organisations", "sum(max by (kind) (party_orgs))",
             desc="Organisations of the tree, from the street working committee down to the building groups."),
        stat("Coverage gaps", "max(party_coverage_gaps)",
             desc="Grids with at least 3 members and no grid branch (网格党支部). Above 0 for a day = GrassrootsPartyCoverageGap.",
             thresholds=[(None, "green"), (1, "orange")]),
        stat("Joint meetings held (90d)", "sum(increase(party_meetings_held_total[90d]))",
             desc="联席会议 of the regional councils held in the last 90 days, with or without a quorum."),
        stat("Joint meetings overdue (90d)", "sum(increase(party_meetings_overdue_total[90d]))",
             desc="Quarters a council held no joint meeting (每季度召开1次). Any new one = GrassrootsPartyMeetingOverdue.",
             thresholds=[(None, "green"), (1, "red")]),
        stat("Org life overdue (30d)", "sum(increase(party_org_life_overdue_total[30d]))",
             desc="Required 三会一课 / 主题党日 meetings an organisation missed in the last 30 days.",
             thresholds=[(None, "green"), (1, "orange")]),
        stat("Org life held (30d)", "sum(increase(party_org_life_held_total[30d]))",
             desc="三会一课 and 主题党日 recorded in the last 30 days."),
        ts("Organisations by kind", ("max by (kind) (party_orgs)", "{{kind}}"), stack=True),
        ts("Coverage gaps", ("max(party_coverage_gaps)", "grids without a branch")),
        ts("Joint meetings held and overdue / d",
           ("sum by (quorum) (rate(party_meetings_held_total[1d])) * 86400", "held, quorum={{quorum}}"),
           ("sum(rate(party_meetings_overdue_total[1d])) * 86400", "overdue")),
        ts("Org life held and overdue / d by kind",
           ("sum by (kind) (rate(party_org_life_held_total[1d])) * 86400", "held: {{kind}}"),
           ("sum by (kind) (rate(party_org_life_overdue_total[1d])) * 86400", "overdue: {{kind}}")),
    ]


def district_panels() -> list[dict]:
    return [
        row("District health"),
        stat("Workers ready", "sum(kit_ready)", thresholds=[(None, "red"), (5, "green")],
             desc="Ready workers across the five services (at least one each)."),
        stat("Kafka brokers", "max(kafka_brokers)", thresholds=[(None, "red"), (1, "green")]),
        stat("Events / s in", "district:kit_records_consumed:rate5m", unit="ops"),
        stat("Events / s out", "district:kit_records_produced:rate5m", unit="ops"),
        stat("Consumer lag", "sum(service:kit_consumer_lag:sum)", thresholds=[(None, "green"), (1000, "orange"), (10000, "red")]),
        stat("Dead-lettered (1h)", "sum(increase(kit_records_dead_lettered_total[1h]))", thresholds=[(None, "green"), (1, "red")]),
        ts("Ready workers by service", ("service:kit_ready:sum", "{{service}}")),
        ts("Records consumed / s by service", ("service:kit_records_consumed:rate5m", "{{service}}"), unit="ops", stack=True),
        ts("Consumer lag by service", ("service:kit_consumer_lag:sum", "{{service}}")),
        ts("Outbox oldest unpublished by service", ("service:kit_outbox_oldest_unpublished_age_seconds:max", "{{service}}"), unit="s"),
        ts("Dead-lettered (1h) by service and reason",
           ("sum by (service, reason) (service_topic_reason:kit_records_dead_lettered:increase1h)", "{{service}} {{reason}}")),
        ts("Commands rejected / s by service",
           ("sum by (service) (service_type_reason:kit_commands_rejected:rate5m)", "{{service}}"), unit="ops"),
        ts("HTTP 5xx ratio by service", ("service:kit_http_errors:ratio_rate5m", "{{service}}"), unit="percentunit"),
        ts("Batch p99 by service", ("service:kit_batch_duration_seconds:p99_5m", "{{service}}"), unit="s"),
        row("Governance"),
        stat("Open cases", 'sum(status:grid_cases:max{status!~"closed|dismissed"})'),
        stat("Overdue cases", "district:grid_cases_overdue_open:max", thresholds=[(None, "green"), (10, "orange"), (20, "red")]),
        stat("Open orders", 'sum(status:orders_orders:max{status!~"evaluated|cancelled"})'),
        stat("Order acceptance (1h)", "district:orders_acceptance:ratio_rate1h", unit="percentunit"),
        stat("Points awarded (24h)", "sum(increase(points_awarded_points_total[24h]))"),
        stat("Points redeemed (24h)", "sum(increase(points_redeemed_points_total[24h]))"),
        stat("Party coverage gaps", "max(party_coverage_gaps)", thresholds=[(None, "green"), (1, "orange")],
             desc="Grids with at least 3 members and no grid branch (网格党支部)."),
        stat("Joint meetings overdue (90d)", "sum(increase(party_meetings_overdue_total[90d]))",
             thresholds=[(None, "green"), (1, "red")], desc="Quarters a regional council held no joint meeting."),
        ts("Cases by status", ("status:grid_cases:max", "{{status}}"), stack=True),
        ts("Orders by status", ("status:orders_orders:max", "{{status}}"), stack=True),
        ts("Scorecards and alerts / h",
           ("sum(rate(assessment_scorecards_published_total[1h])) * 3600", "scorecards"),
           ("sum by (indicator) (rate(assessment_alerts_raised_total[1h])) * 3600", "alerts: {{indicator}}")),
        ts("Points awarded and redeemed / h",
           ("sum(rate(points_awarded_points_total[1h])) * 3600", "awarded"),
           ("sum(rate(points_redeemed_points_total[1h])) * 3600", "redeemed")),
    ]

SERVICES = {
    "grid": ("Grid (网格化管理)", grid_panels, "Cases from report to closure, overdue, patrols."),
    "orders": ("Orders (四单式服务)", orders_panels, "Resident needs through 点单 派单 接单 考单."),
    "points": ("Points (积分)", points_panels, "Points ledger: awards, redemptions, expiries, refusals."),
    "assessment": ("Assessment (考核评价)", assessment_panels, "Periods, indicators and scorecards."),
    "party": ("Party building (党建引领)", party_panels,
              "Party organisations and their coverage, regional councils' joint meetings, organisational life."),
}


def build() -> dict[str, dict]:
    out = {}
    for svc, (title, domain, desc) in SERVICES.items():
        out[f"{svc}.json"] = dashboard(f"grassroots-{svc}", f"Grassroots · {title}",
                                       kit_panels(svc) + domain(), [svc], desc)
    out["district.json"] = dashboard("grassroots-district", "Grassroots · District overview (街道总览)",
                                     district_panels(), ["district"],
                                     "The five services at a glance: health, flow, backlog, governance outcomes.")
    return out


def render(d: dict) -> str:
    return json.dumps(d, ensure_ascii=False, indent=2) + "\n"


def main(argv: list[str]) -> int:
    check = "--check" in argv
    OUT.mkdir(parents=True, exist_ok=True)
    stale = []
    for name, d in build().items():
        path = OUT / name
        text = render(d)
        if check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(name)
        else:
            path.write_text(text, encoding="utf-8")
    if stale:
        print("stale dashboards (run deploy/grafana/generate.py):", ", ".join(stale))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
