"""The live summary of a running district, read only from the services' HTTP APIs and /metrics.

:func:`collect` fetches each service's ``/metrics`` (and the points ledger check) and returns a
plain dict; :func:`render` draws it for a terminal, :func:`line` as one log line.

Refusals are counted by service and reason (``refused``). A refusal for lack of a right
(:data:`POLICY_REASONS`: ``forbidden``, ``unauthenticated``) is a failure of the run: the
simulator sends every command as someone the policy allows to send it, so ``policy_refusals``
(``"<service> <command type> <reason>"`` -> count) must stay empty, and ``failures`` says so
when it does not (commands sent by hand over Kafka count too).

:func:`departments` reads the departments' scorecards of the last closed month from the
assessment API (``/v1/rankings`` and ``/v1/scorecards``, as the assessor): the 三率 (响应率,
解决率, 满意率), their composite and the score of the best- and worst-ranked departments.
"""
from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import Any

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

DEPARTMENT_RATES = ("response_rate", "resolution_rate", "satisfaction_rate", "three_rates")
"""What the summary shows of a department's scorecard: the 三率 and their composite."""
POLICY_REASONS = ("forbidden", "unauthenticated")
"""Rejection reasons that mean "not allowed to", not "not possible": none is expected in a run."""


async def departments(session: aiohttp.ClientSession, url: str, token: str | None, period: str,
                      shown: int = 6) -> dict[str, Any] | None:
    """The departments' scorecards of ``period`` (a closed month): the ranking, and the 三率, composite
    and score of the ``shown`` best- and worst-ranked departments; None before the period is published."""
    status, body = await _get(session, f"{url}/v1/rankings?entity_type=department&period={period}&limit=100", token)
    if status != 200 or not isinstance(body, dict) or not body.get("items"):
        return None
    items = body["items"]
    picked = items if len(items) <= shown else items[:shown // 2] + items[-(shown - shown // 2):]
    cards = await asyncio.gather(*(_get(session, f"{url}/v1/scorecards/department/{r['entity_id']}?period={period}",
                                        token) for r in picked))
    rows = []
    for r, (st, card) in zip(picked, cards):
        ind = card.get("indicators", {}) if st == 200 and isinstance(card, dict) else {}
        rows.append({"department": r["entity_id"], "rank": r["rank"], "score": r["score"],
                     **{k: ind.get(k) for k in DEPARTMENT_RATES}})
    return {"period": period, "ranked": len(items), "items": rows}


def parse_metrics(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    """Prometheus text → {sample name: [(labels, value)]}."""
    out: dict[str, list[tuple[dict[str, str], float]]] = defaultdict(list)
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[s.name].append((dict(s.labels), float(s.value)))
    return out


def total(m: dict, name: str, **match: str) -> float:
    return sum(v for labels, v in m.get(name, []) if all(labels.get(k) == x for k, x in match.items()))


def by_label(m: dict, name: str, label: str, **match: str) -> dict[str, float]:
    out: dict[str, float] = defaultdict(float)
    for labels, v in m.get(name, []):
        if all(labels.get(k) == x for k, x in match.items()):
            out[labels.get(label, "")] += v
    return {k: v for k, v in sorted(out.items()) if v}


async def _get(session: aiohttp.ClientSession, url: str, token: str | None = None) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        async with session.get(url, headers=headers, timeout=aiohttp.ClientTimeout(total=2)) as r:
            body = await r.json() if "json" in r.headers.get("Content-Type", "") else await r.text()
            return r.status, body
    except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as e:
        return 0, repr(e)


def merge_workers(parts: list[dict | None]) -> dict | None:
    """The metrics of one service's workers as one: the kit's metrics and every counter
    (``*_total``) added up (each worker counts what it handled, and owns its partitions' lag); a
    domain gauge read from the shared projection (``grid_cases``...) is the same on every worker,
    so the highest is kept. None when no worker answered."""
    got = [p for p in parts if p is not None]
    if not got:
        return None
    if len(got) == 1:
        return got[0]
    out: dict[str, dict[tuple, tuple[dict[str, str], float]]] = defaultdict(dict)
    for m in got:
        for name, samples in m.items():
            add = name.startswith("kit_") or name.endswith("_total")
            for labels, v in samples:
                key = tuple(sorted(labels.items()))
                old = out[name].get(key)
                out[name][key] = (labels, v if old is None else (old[1] + v if add else max(old[1], v)))
    return {name: list(byl.values()) for name, byl in out.items()}


async def collect(session: aiohttp.ClientSession, urls: dict[str, str | list[str]], token: str | None, *,
                  assessor_token: str | None = None, period: str | None = None) -> dict[str, Any]:
    """One snapshot of the district: metrics of every service (of all its workers, see
    :func:`merge_workers`), readiness (a service is ready when all its workers are), the ledger
    check, and (with ``period`` and an assessor's token) the departments' scorecards of that period.
    ``urls``: service -> the URL of its worker, or the URLs of its workers (the first is asked the
    API questions). ``ready_by_url`` in the result holds each worker's readiness."""
    every = {s: [u] if isinstance(u, str) else list(u) for s, u in urls.items()}
    first = {s: us[0] for s, us in every.items()}
    flat = [(s, u) for s, us in every.items() for u in us]

    async def metrics(url: str):
        status, body = await _get(session, url + "/metrics")
        return parse_metrics(body) if status == 200 and isinstance(body, str) else None

    async def ready(url: str):
        status, _ = await _get(session, url + "/readyz")
        return status == 200

    got = await asyncio.gather(*(metrics(u) for _, u in flat), *(ready(u) for _, u in flat),
                               _get(session, first["points"] + "/v1/ledger/check", token) if "points" in first
                               else asyncio.sleep(0, (0, None)),
                               departments(session, first["assessment"], assessor_token, period)
                               if period and "assessment" in first else asyncio.sleep(0, None))
    n = len(flat)
    per_url = {u: got[i] for i, (_, u) in enumerate(flat)}
    ready_by_url = {u: got[n + i] for i, (_, u) in enumerate(flat)}
    mets = {s: merge_workers([per_url[u] for u in us]) for s, us in every.items()}
    readiness = {s: all(ready_by_url[u] for u in us) for s, us in every.items()}
    ledger_status, ledger = got[2 * n]
    snap = snapshot(mets, readiness, ledger if ledger_status == 200 else None)
    snap["departments"] = got[2 * n + 1]
    snap["ready_by_url"] = ready_by_url
    return snap


def snapshot(mets: dict[str, dict | None], readiness: dict[str, bool], ledger: Any) -> dict[str, Any]:
    """The summary from each service's parsed metrics (None: unreachable), readiness and the
    ledger check's answer (None: unavailable)."""
    snap: dict[str, Any] = {"ready": readiness, "produced": 0.0, "consumed": 0.0, "lag": {}, "rejected": {},
                            "refused": {}, "policy_refusals": {}, "dead_lettered": {}}
    for svc, m in mets.items():
        if m is None:
            continue
        snap["produced"] += total(m, "kit_records_produced_total")
        snap["consumed"] += total(m, "kit_records_consumed_total")
        snap["lag"][svc] = total(m, "kit_consumer_lag")
        snap["rejected"][svc] = total(m, "kit_commands_rejected_total")
        snap["refused"][svc] = {k: int(v) for k, v in by_label(m, "kit_commands_rejected_total", "reason").items()}
        for labels, v in m.get("kit_commands_rejected_total", []):
            if labels.get("reason") in POLICY_REASONS and v:
                key = f"{svc} {labels.get('type', '?')} {labels['reason']}"
                snap["policy_refusals"][key] = snap["policy_refusals"].get(key, 0) + int(v)
        snap["dead_lettered"][svc] = total(m, "kit_records_dead_lettered_total")
    g, o, p, a, pt = (mets.get(s) or {} for s in ("grid", "orders", "points", "assessment", "party"))
    snap["cases"] = {k: int(v) for k, v in by_label(g, "grid_cases", "status").items()}
    snap["cases_overdue_open"] = int(total(g, "grid_cases_overdue_open"))
    snap["duplicates"] = int(total(g, "grid_reports_dismissed_total", reason="duplicate"))
    snap["orders"] = {k: int(v) for k, v in by_label(o, "orders_orders", "status").items()}
    snap["points"] = {"awarded": int(total(p, "points_awarded_points_total")),
                      "redeemed": int(total(p, "points_redeemed_points_total")),
                      "refused": int(total(p, "points_transfers_refused_total")),
                      "accounts": int(total(p, "points_accounts"))}
    if isinstance(ledger, dict):
        snap["ledger"] = {"sum": ledger.get("sum"), "postings": ledger.get("postings"),
                          "consistent": ledger.get("consistent")}
    else:
        snap["ledger"] = None
    snap["scorecards"] = int(total(a, "assessment_scorecards_published_total"))
    snap["scorecards_by_type"] = {k: int(v) for k, v in
                                  by_label(a, "assessment_scorecards_published_total", "entity_type").items()}
    snap["periods_closed"] = int(total(a, "assessment_periods_closed_total"))
    snap["alerts"] = int(total(a, "assessment_alerts_raised_total"))
    snap["party"] = party(pt) if mets.get("party") is not None else None  # None: party not running
    snap["failures"] = failures(snap)
    return snap


def party(m: dict) -> dict[str, Any]:
    """The party service's numbers: organisations by kind, coverage gaps (grids with 3 or more
    members and no branch), joint meetings held and overdue, organisational life held and overdue."""
    return {"orgs": {k: int(v) for k, v in by_label(m, "party_orgs", "kind").items()},
            "coverage_gaps": int(total(m, "party_coverage_gaps")),
            "meetings_held": int(total(m, "party_meetings_held_total")),
            "meetings_no_quorum": int(total(m, "party_meetings_held_total", quorum="false")),
            "meetings_overdue": int(total(m, "party_meetings_overdue_total")),
            "org_life_held": int(total(m, "party_org_life_held_total")),
            "org_life_overdue": int(total(m, "party_org_life_overdue_total"))}


def failures(snap: dict[str, Any]) -> list[str]:
    """What is wrong with the run: commands refused for lack of a right (see the module doc)."""
    refused = snap.get("policy_refusals") or {}
    if not refused:
        return []
    return [f"{n} command(s) refused by the policy ({key}): the simulator sent something its sender may not"
            for key, n in sorted(refused.items())]


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{100 * v:.0f}%"


def department_rows(deps: dict[str, Any] | None) -> list[str]:
    """The departments' 三率 for a terminal (empty before a month is published)."""
    if not deps:
        return []
    rows = ["", f"departments {deps['period']} ({deps['ranked']} ranked)   响应率 解决率 满意率  三率   score"]
    for r in deps["items"]:
        rows.append(f"  #{r['rank']:<3} {r['department']:<22} {_pct(r['response_rate']):>6} "
                    f"{_pct(r['resolution_rate']):>6} {_pct(r['satisfaction_rate']):>6} "
                    f"{_pct(r['three_rates']):>5} {'-' if r['score'] is None else format(r['score'], '.1f'):>6}")
    return rows


def _kv(d: dict) -> str:
    return " ".join(f"{k}={v}" for k, v in d.items()) or "-"


def line(snap: dict[str, Any], workers: dict[str, dict], elapsed: float, rate: float) -> str:
    """One plain line (for logs and non-TTY output)."""
    led = snap.get("ledger") or {}
    w = " ".join(f"{s}{':' + str(i['port']) if i.get('port') else ''}:{'up' if i['alive'] else 'DOWN'}/r{i['restarts']}"
                 for s, i in workers.items())
    sim = f"simulated={snap['simulated_time']} " if snap.get("simulated_time") else ""
    return (f"t={elapsed:.0f}s {sim}events/s={rate:.1f} cases[{_kv(snap.get('cases', {}))}] "
            f"orders[{_kv(snap.get('orders', {}))}] points[awarded={snap['points']['awarded']} "
            f"redeemed={snap['points']['redeemed']} ledger_sum={led.get('sum')} postings={led.get('postings')}] "
            f"scorecards={snap.get('scorecards')} periods_closed={snap.get('periods_closed')} "
            f"party[{_party_kv(snap.get('party'))}] "
            f"lag={int(sum(snap['lag'].values()))} rejected={int(sum(snap['rejected'].values()))} "
            f"dlq={int(sum(snap['dead_lettered'].values()))} "
            f"policy_refusals={sum((snap.get('policy_refusals') or {}).values())} workers[{w}]"
            + (f" prometheus={snap['prometheus']}" if snap.get("prometheus") else "")
            + _department_line(snap.get("departments")))


def _party_kv(pt: dict[str, Any] | None) -> str:
    if not pt:
        return "-"
    return (f"orgs={sum(pt['orgs'].values())} gaps={pt['coverage_gaps']} meetings={pt['meetings_held']} "
            f"meetings_overdue={pt['meetings_overdue']} org_life={pt['org_life_held']} "
            f"org_life_overdue={pt['org_life_overdue']}")


def _department_line(deps: dict[str, Any] | None) -> str:
    if not deps:
        return ""
    return f" departments[{deps['period']} " + " ".join(
        f"{r['department']}:三率={_pct(r['three_rates'])}" for r in deps["items"]) + "]"


def _party_rows(pt: dict[str, Any] | None) -> list[str]:
    if not pt:
        return []
    return [f"party       orgs {_kv(pt['orgs'])}  coverage gaps={pt['coverage_gaps']}",
            f"            joint meetings held={pt['meetings_held']} (no quorum {pt['meetings_no_quorum']}) "
            f"overdue={pt['meetings_overdue']}  org life held={pt['org_life_held']} overdue={pt['org_life_overdue']}"]


def render(snap: dict[str, Any], workers: dict[str, dict], elapsed: float, rate: float, notes: list[str]) -> str:
    """A screenful for a terminal (redrawn every second)."""
    led = snap.get("ledger") or {}
    rows = [
        f"网格 district live — {elapsed:6.0f}s   events/s {rate:7.1f}   (Ctrl-C stops everything)",
        *([f"simulated   {snap['simulated_time']}  (one month every {snap.get('sim_month_seconds'):g} s)"]
          if snap.get("simulated_time") else []),
        "",
        "workers     " + "   ".join(
            f"{s}{':' + str(i['port']) if i.get('port') else ''}:"
            f"{'ready' if (snap.get('workers_ready') or snap['ready']).get(s) else ('up' if i['alive'] else 'DOWN')}"
            f"{' restarts=' + str(i['restarts']) if i['restarts'] else ''}" for s, i in workers.items()),
        *([f"prometheus  {snap['prometheus']}  (alerts: {snap['prometheus']}/alerts)"] if snap.get("prometheus") else []),
        "",
        f"cases       {_kv(snap.get('cases', {}))}",
        f"            overdue open={snap.get('cases_overdue_open')}  duplicates linked={snap.get('duplicates')}",
        f"orders      {_kv(snap.get('orders', {}))}",
        f"points      awarded={snap['points']['awarded']} redeemed={snap['points']['redeemed']} "
        f"refused={snap['points']['refused']} accounts={snap['points']['accounts']}",
        f"ledger      sum={led.get('sum')} postings={led.get('postings')} consistent={led.get('consistent')}",
        f"scorecards  {snap.get('scorecards')} ({_kv(snap.get('scorecards_by_type', {}))})  "
        f"periods closed={snap.get('periods_closed')} alerts={snap.get('alerts')}",
        *_party_rows(snap.get("party")),
        "",
        f"consumer lag {_kv({k: int(v) for k, v in snap['lag'].items()})}",
        f"rejected     {_kv({k: int(v) for k, v in snap['rejected'].items()})}",
        f"  by reason  {' '.join(f'{k}[{_kv(v)}]' for k, v in (snap.get('refused') or {}).items() if v) or '-'}",
        f"dead-letter  {_kv({k: int(v) for k, v in snap['dead_lettered'].items()})}",
    ]
    rows += department_rows(snap.get("departments"))
    if snap.get("failures"):
        rows += ["", "FAILED — refused by the policy, though the simulator sends only what it allows:",
                 *(f"  {k}: {n}" for k, n in sorted(snap["policy_refusals"].items())[:8])]
    if notes:
        rows += ["", *notes[-6:]]
    return "\n".join(rows)
