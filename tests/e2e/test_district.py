"""End to end: the whole district the way ``make run`` starts it, then checked from outside.

The launcher runs as a subprocess with its own embedded broker and PostgreSQL on free ports
(VAR_DIR in a temporary directory), the four workers, and the simulator at a fast rate with
a compressed calendar (one simulated month every 20 s, from six months back: long enough for
most of a case's steps to fall in the month it was reported in). While it runs, the test waits for the
live summary to show closed cases, evaluated orders, postings and a closed period (and, for the
party, two simulated quarters scored on the Party organisation's facts); then it
checks through the services' HTTP APIs and the topics; then it stops the launcher with
SIGTERM and checks the clean stop (no worker restarted, nothing left behind).
"""
from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest

from schemas.registry import SERVICES as REGISTERED
from schemas.topics import ASSESSMENT, BY_SERVICE, GRID, ORDERS, POINTS
from services.kit.clock import SHANGHAI
from services.kit.infra import free_port
from services.kit.identity import ROLES
from tests.support.kafka import of_type, read_all
from tests.support.procs import ROOT, http

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

SERVICES = tuple(REGISTERED)  # every registered service runs in the district (the launcher starts each)


def _summary(var: Path) -> dict:
    try:
        return json.loads((var / "run" / "summary.json").read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def _env_file(path: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)


def _issuer() -> str:
    from services.kit.settings import DEFAULT_JWT_ISSUER
    return os.environ.get("JWT_ISSUER") or DEFAULT_JWT_ISSUER


def _audience() -> str:
    from services.kit.settings import DEFAULT_JWT_AUDIENCE
    return os.environ.get("JWT_AUDIENCE") or DEFAULT_JWT_AUDIENCE


def _our_processes(var: Path, ports: dict[str, int], kafka_port: int) -> list[str]:
    """Processes of this run still alive: workers (by web port), simulator/postgres (by var dir), broker."""
    marks = [str(var), f"127.0.0.1:{kafka_port}", *(f"--web-port\0{p}\0" for p in ports.values())]
    left = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                cmd = (d / "cmdline").read_bytes().decode(errors="replace")
            except OSError:
                continue
            if any(m in cmd for m in marks) and "pytest" not in cmd:
                left.append(cmd.replace("\0", " "))
    return left


@pytest.fixture(scope="module")
def district(tmp_path_factory):
    """The launcher running the simulated district; yields (var dir, env of tokens/urls, ports, proc)."""
    missing = [s for s in SERVICES if not (ROOT / "services" / s / "app" / "main.py").exists()]
    assert not missing, f"services not wired: {missing}"
    var = tmp_path_factory.mktemp("district-var")
    ports = {s: free_port() for s in SERVICES}
    kafka_port, pg_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL")}
    env.update({
        "VAR_DIR": str(var), "KAFKA_PORT": str(kafka_port), "PG_PORT": str(pg_port),
        **{f"{s.upper()}_HTTP_PORT": str(p) for s, p in ports.items()},
        "SIMULATE": "1", "RATE": "25", "SIM_MONTH_SECONDS": "20", "SIM_MONTHS_BACK": "6",
        "ORDERS_ACCEPT_WINDOW_SECONDS": "8", "SIM_EXPIRE_WAIT": "40", "RUN_SECONDS": "420", "PROMETHEUS": "0",
    })
    out = open(var / "launcher.out", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "services.launcher"], cwd=ROOT, env=env, stdout=out,
                            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        yield var, ports, kafka_port, pg_port, proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        out.close()


def _wait(var: Path, proc, cond, what: str, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    snap: dict = {}
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"launcher exited early ({proc.returncode}):\n" + \
            (var / "launcher.out").read_text(errors="replace")[-3000:]
        snap = _summary(var)
        if snap and cond(snap):
            return snap
        time.sleep(1.0)
    raise AssertionError(f"{what} not seen within {timeout}s; last summary: {json.dumps(snap, ensure_ascii=False)[:3000]}")


@pytest.fixture(scope="module")
def running(district):
    """The district after it has lived long enough: cases closed, orders evaluated, a period closed."""
    var, ports, kafka_port, pg_port, proc = district
    _wait(var, proc, lambda s: all(s.get("ready", {}).get(x) for x in SERVICES), "all workers ready", 120)
    snap = _wait(var, proc, lambda s: s.get("cases", {}).get("closed", 0) >= 3
                 and s.get("orders", {}).get("evaluated", 0) >= 3
                 and (s.get("ledger") or {}).get("postings", 0) >= 3
                 and s.get("periods_closed", 0) >= 1 and s.get("scorecards", 0) >= 1
                 and sum(s.get("dead_lettered", {}).values()) >= 1,
                 "closed cases, evaluated orders, postings, a closed period and a dead letter", 110)
    tokens = _env_file(var / "run" / "api.env")
    return var, ports, kafka_port, proc, tokens, snap


async def test_cases_were_closed_through_the_whole_loop(running):
    var, ports, _, _, tokens, _ = running
    status, body = await http("GET", f"http://127.0.0.1:{ports['grid']}/v1/cases?status=closed&limit=5",
                              token=tokens["AUDITOR_TOKEN"])  # a community officer sees only their community
    assert status == 200, body
    assert body["total"] >= 3 and body["items"]


async def test_the_run_has_an_identity_provider_and_every_api_call_needs_its_token(running):
    var, ports, _, _, tokens, _ = running
    run = var / "run"
    for name in ("identities.json", "signing-key.pem", "api.env"):
        assert (run / name).stat().st_mode & 0o777 == 0o600, name
    assert not (run / "tokens.env").exists()
    people = json.loads((run / "identities.json").read_text())
    assert {r for p in people for r in p["roles"]} == set(ROLES)
    assert {f"{r.upper()}_TOKEN" for r in ROLES} <= set(tokens)
    for svc, path in (("grid", "/v1/cases"), ("orders", "/v1/orders"), ("points", "/v1/ledger/check"),
                      ("assessment", "/v1/alerts")):
        status, body = await http("GET", f"http://127.0.0.1:{ports[svc]}{path}")
        assert status == 401 and body["detail"].startswith("missing_token"), (svc, body)
        status, body = await http("GET", f"http://127.0.0.1:{ports[svc]}{path}", token=tokens["AUDITOR_TOKEN"])
        assert status == 200, (svc, status, body)


async def test_orders_were_evaluated(running):
    var, ports, _, _, tokens, _ = running
    status, body = await http("GET", f"http://127.0.0.1:{ports['orders']}/v1/orders?status=evaluated&limit=5",
                              token=tokens["AUDITOR_TOKEN"])
    assert status == 200, body
    items = body.get("items", body if isinstance(body, list) else [])
    assert items


async def test_points_were_posted_and_the_ledger_sums_to_zero(running):
    var, ports, _, _, tokens, _ = running
    status, body = await http("GET", f"http://127.0.0.1:{ports['points']}/v1/ledger/check", token=tokens["POINTS_OPERATOR_TOKEN"])
    assert status == 200, body
    assert body["postings"] > 0
    assert body["sum"] == 0 and body["consistent"] is True, body


async def test_a_period_was_closed_with_scorecards(running):
    var, ports, kafka_port, _, tokens, _ = running
    bootstrap = f"127.0.0.1:{kafka_port}"
    recs = await read_all(bootstrap, ASSESSMENT.events.name, min_count=1, timeout=20,
                          predicate=lambda r: isinstance(r["value"], dict)
                          and r["value"].get("type") == "assessment.scorecard.published.v1")
    cards = [r["value"]["data"] for r in recs]
    assert cards
    period = cards[0]["period"]
    assert {c["entity_type"] for c in cards} & {"unit", "community", "street"}
    status, body = await http("GET", f"http://127.0.0.1:{ports['assessment']}/v1/rankings?entity_type=unit&period={period}",
                              token=tokens["ASSESSOR_TOKEN"])
    assert status == 200, body
    assert body["items"] and body["items"][0]["rank"] == 1


async def test_past_simulated_months_were_scored_from_their_cases_orders_and_points(running):
    """The stepped calendar: facts carry simulated dates, so months before the real one are
    scored from what happened in them, not only from the two-way reviews."""
    var, ports, kafka_port, _, tokens, snap = running
    real_month = datetime.now(SHANGHAI).strftime("%Y-%m")

    def measured(indicator: str) -> bool:
        return any((c["details"].get(indicator) or {}).get("denominator") for c in past) \
            or any(c["indicators"].get(indicator) for c in past)

    deadline = time.monotonic() + 60  # the first month may close while the district is still setting up
    while True:
        recs = await read_all(f"127.0.0.1:{kafka_port}", ASSESSMENT.events.name, timeout=10)
        cards = [e["data"] for e in of_type(recs, "assessment.scorecard.published.v1")]
        past = [c for c in cards if len(c["period"]) == 7 and c["period"] < real_month]
        if time.monotonic() > deadline or all(measured(i) for i in ("registration_rate", "points_earned")):
            break
        await asyncio.sleep(5)
    assert past, f"no scorecard of a simulated past month: {sorted({c['period'] for c in cards})}"
    assert measured("registration_rate"), "no cases counted in a simulated past month"
    assert measured("acceptance_rate") or measured("completion_rate"), "no orders counted in a simulated past month"
    assert measured("points_earned"), "no points counted in a simulated past month"
    assert snap.get("simulated_time"), "the summary shows no simulated date"


async def test_departments_were_scored_on_the_three_rates_with_a_composite_that_differs(running):
    """After a simulated month the departments of the register have scorecards with 响应率, 解决率
    and 满意率 and their composite, which differs between departments (each is as diligent as the
    seed made it); each street blew whistles, and the departments' 吹哨报到率 was scored."""
    var, ports, kafka_port, proc, tokens, _ = running
    from services.grid.registry import DepartmentRegister

    registered = {d.department_id for d in DepartmentRegister.load()}

    async def scored() -> tuple[list[dict], str, dict[str, dict]]:
        """Department cards of months, and the month with the most departments scored on all three rates."""
        recs = await read_all(f"127.0.0.1:{kafka_port}", ASSESSMENT.events.name, timeout=10)
        cards = [e["data"] for e in of_type(recs, "assessment.scorecard.published.v1")
                 if e["data"]["entity_type"] == "department" and "Q" not in e["data"]["period"]
                 and len(e["data"]["period"]) == 7]
        by_period: dict[str, dict[str, dict]] = {}
        for c in cards:  # the latest card of each department and month
            by_period.setdefault(c["period"], {})[c["entity_id"]] = c
        rated = {p: {d: c["indicators"] for d, c in deps.items()
                     if all(c["indicators"].get(k) is not None for k in ("response_rate", "resolution_rate",
                                                                          "satisfaction_rate", "three_rates"))}
                 for p, deps in by_period.items()}
        period, full = max(rated.items(), key=lambda kv: len(kv[1]), default=("", {}))
        return cards, period, full

    deadline = time.monotonic() + 150  # the first months close while the district is still setting up
    cards, period, full = await scored()
    while len(full) < 3 and time.monotonic() < deadline:
        assert proc.poll() is None, "the launcher stopped"
        await asyncio.sleep(5)
        cards, period, full = await scored()
    assert cards, "no department scorecard of a month"
    assert {c["entity_id"] for c in cards} <= registered
    assert len(full) >= 3, f"no month with three departments scored on all three rates: {period} {full}"
    busiest = max((c for c in cards if c["period"] == period and c["entity_id"] in full),
                  key=lambda c: ((c.get("details") or {}).get("response_rate") or {}).get("denominator") or 0)
    (var / "department-scorecard.json").write_text(json.dumps(busiest, ensure_ascii=False, indent=2))  # for a reader
    assert len({round(i["three_rates"], 6) for i in full.values()}) >= 2, full
    assert any(c["indicators"].get("whistle_report_rate") is not None for c in cards), "no 吹哨报到率 scored"
    grid = await read_all(f"127.0.0.1:{kafka_port}", GRID.events.name, timeout=10)
    blown = of_type(grid, "grid.whistle.blown.v1")
    assert {e["data"]["street_id"] for e in blown} == {s for s in (d.split(".")[0][:9] for d in registered)
                                                       if len(s) == 9}
    assert of_type(grid, "grid.whistle.answered.v1") and of_type(grid, "grid.whistle.rated.v1")
    # The department stories are random (an extension is asked in about one story in ten): wait for each kind.
    kinds = ("accepted", "contacted", "returned", "return.reviewed", "extension.requested", "supervised")
    deadline = time.monotonic() + 120
    missing = [t for t in kinds if not of_type(grid, f"grid.case.{t}.v1")]
    while missing and time.monotonic() < deadline:
        assert proc.poll() is None, "the launcher stopped"
        await asyncio.sleep(5)
        grid = await read_all(f"127.0.0.1:{kafka_port}", GRID.events.name, timeout=10)
        missing = [t for t in kinds if not of_type(grid, f"grid.case.{t}.v1")]
    assert not missing, f"no department story reached: {missing}"
    snap = _wait(var, proc, lambda s: (s.get("departments") or {}).get("items"), "department rates in the summary", 30)
    assert all(k in snap["departments"]["items"][0] for k in ("response_rate", "resolution_rate", "three_rates"))


PARTY_INDICATORS = ("org_coverage_rate", "org_life_on_time_rate", "org_life_attendance_rate", "unit_report_rate",
                    "council_meeting_on_time_rate", "council_attendance_rate", "resolution_completion_rate",
                    "project_claim_rate", "project_completion_rate", "member_report_rate",
                    "commitment_fulfilment_rate")
CASE_RATES = ("registration_rate", "dispatch_rate", "closure_rate", "on_time_closure_rate", "rework_rate",
              "extension_rate", "avg_handling_hours", "satisfaction_rate")


async def test_two_simulated_quarters_score_communities_and_streets_on_party_facts(running):
    """After two simulated quarters, the community and street scorecards of each quarter have a
    组织建设 pillar made of the party service's facts and no case rate: 组织覆盖率, 三会一课 (with
    the misses the party timer reported), 单位报到, 联席会议 of the 大党委 and 大工委, 议定事项 and the
    项目清单 in each quarter; 践诺率 and 党员报到率 (registrations, and the quarters' moves) in the year."""
    var, ports, kafka_port, proc, tokens, _ = running
    area_indicators = {"org_coverage_rate", "org_life_on_time_rate", "org_life_attendance_rate", "unit_report_rate",
                       "council_meeting_on_time_rate", "council_attendance_rate", "project_claim_rate",
                       "project_completion_rate"}

    def measured(card: dict) -> set[str]:
        return {i for i in PARTY_INDICATORS if ((card.get("details") or {}).get(i) or {}).get("denominator")}

    async def cards() -> dict[str, dict[str, list[dict]]]:
        """period -> community / street -> the latest card of each (a re-close publishes again)."""
        recs = await read_all(f"127.0.0.1:{kafka_port}", ASSESSMENT.events.name, timeout=10)
        latest: dict[tuple, dict] = {}
        for e in of_type(recs, "assessment.scorecard.published.v1"):
            c = e["data"]
            if c["entity_type"] in ("community", "street"):
                latest[(c["entity_type"], c["entity_id"], c["period"])] = c
        out: dict[str, dict[str, list[dict]]] = {}
        for (kind, _, period), c in latest.items():
            out.setdefault(period, {}).setdefault(kind, []).append(c)
        return out

    def scored(by_kind: dict[str, list[dict]]) -> bool:  # communities and streets on the party's facts
        seen = {k: set().union(*(measured(c) for c in by_kind.get(k, ()))) for k in ("community", "street")}
        return seen["community"] >= area_indicators and seen["street"] >= area_indicators | {
            "resolution_completion_rate"}

    def quarters(got: dict) -> list[str]:
        return sorted(p for p, by_kind in got.items() if "-Q" in p and scored(by_kind))

    deadline = time.monotonic() + 240  # a simulated quarter is three months of SIM_MONTH_SECONDS
    got = await cards()
    while (len(quarters(got)) < 2 or not any(len(p) == 4 for p in got)) and time.monotonic() < deadline \
            and proc.poll() is None:
        assert proc.poll() is None, "the launcher stopped"
        await asyncio.sleep(5)
        got = await cards()
    (var / "party-scorecards.json").write_text(json.dumps(got, ensure_ascii=False, indent=1))
    missing = {p: {k: sorted(area_indicators - set().union(*(measured(c) for c in cs))) for k, cs in bk.items()}
               for p, bk in got.items() if "-Q" in p}
    done = quarters(got)
    assert len(done) >= 2, f"quarters and the party indicators their community and street cards lack: {missing}"
    for period in done:
        for c in got[period]["community"] + got[period]["street"]:
            assert c["pillars"].get("organisation") is not None, (c["entity_id"], period)
            pillar = {i for i, d in (c.get("details") or {}).items() if d.get("pillar") == "organisation"}
            assert not pillar & set(CASE_RATES), (c["entity_id"], period, pillar)  # 组织建设 holds no case rate
            assert pillar <= {*PARTY_INDICATORS, "review_score"}, (c["entity_id"], period, pillar)
            for i in measured(c):
                assert 0 <= c["indicators"][i] <= 1, (c["entity_id"], period, i, c["indicators"][i])
    # the simulator misses some organisational life: the party timer reported it, and it counts
    assert any(c["indicators"]["org_life_on_time_rate"] < 1 for p in done for k in ("community", "street")
               for c in got[p][k] if "org_life_on_time_rate" in measured(c)), "no missed 三会一课 counted"
    years = [p for p in got if len(p) == 4]
    assert years, f"no yearly card: {sorted(got)}"
    year = {i for c in got[years[0]].get("community", []) + got[years[0]].get("street", []) for i in measured(c)}
    assert "member_report_rate" in year, sorted(year)  # the members' registrations of the year (双报到)
    best = max(got[done[-1]]["community"], key=lambda c: len(measured(c)))
    (var / "community-scorecard.json").write_text(json.dumps(best, ensure_ascii=False, indent=2))  # for a reader
    street = max(got[done[-1]]["street"], key=lambda c: len(measured(c)))
    (var / "street-scorecard.json").write_text(json.dumps(street, ensure_ascii=False, indent=2))


def test_every_worker_logs_json_lines_and_says_it_runs_on_simulated_time(running):
    var = running[0]
    for s in SERVICES:
        raw = [x for x in (var / "log" / f"{s}.log").read_text(errors="replace").splitlines() if x.strip()]
        assert raw, f"{s}: nothing logged"
        assert all(x.startswith("{") for x in raw), f"{s}: a line that is not JSON: {next(x for x in raw if not x.startswith('{'))!r}"
        lines = [json.loads(x) for x in raw]
        assert all(x["service"] == s and x["level"] for x in lines)
        assert any(x["msg"].startswith("simulated time: stepped calendar") for x in lines), s


def test_nothing_the_policy_allows_was_refused(running):
    """Every simulated person sends with their own token: no command was refused ``forbidden`` or
    ``unauthenticated`` (the summary counts refusals by reason)."""
    var, _, _, proc, _, _ = running
    snap = _wait(var, proc, lambda s: "policy_refusals" in s, "a summary with policy refusals counted", 10)
    assert snap["policy_refusals"] == {}, snap["policy_refusals"]
    assert snap["failures"] == []
    refused = {svc: reasons for svc, reasons in snap["refused"].items() if reasons}
    assert refused, "the simulator's bad input was refused somewhere"


async def test_malformed_records_reached_a_dead_letter_topic_and_refusals_their_rejections_topic(running):
    var, ports, kafka_port, _, tokens, _ = running
    bootstrap = f"127.0.0.1:{kafka_port}"
    dead = []
    for svc in BY_SERVICE.values():
        dead += await read_all(bootstrap, svc.dlq.name, timeout=5)
    assert dead, "no record on any DLQ"
    assert any(not isinstance(r["value"], dict) for r in dead)  # the raw malformed bytes are kept
    assert all(r["headers"] for r in dead)  # with the origin and the error in headers
    refused = []
    for svc in (GRID, ORDERS, POINTS):
        refused += of_type(await read_all(bootstrap, svc.rejections.name, timeout=5), f"{svc.service}.command.rejected.v1")
    assert refused and all(r["causationid"] == r["data"]["command_id"] for r in refused)


async def test_the_example_client_follows_a_command_by_causationid(running):
    var, ports, kafka_port, _, tokens, _ = running
    from schemas.grid import Category, Location, ReportCase, Reporter
    from services.simulator.client import CommandClient
    from services.simulator.identities import Actor, TokenMinter

    # an app holding the run's identity provider's key signs its people's tokens, as the simulator does
    env = _env_file(var / "run" / "api.env")
    minter = TokenMinter.from_file(var / "run" / "signing-key.pem", issuer=env.get("JWT_ISSUER") or _issuer(),
                                   audience=env.get("JWT_AUDIENCE") or _audience())
    worker = Actor("gw-e2e", ("grid_worker",), grids=("110105002003004",))
    resident = Actor("res-e2e", ("resident",))
    async with CommandClient(f"127.0.0.1:{kafka_port}", source="/tests/e2e", minter=minter) as client:
        ok = await client.send_and_follow(ReportCase(
            case_id=f"e2e-{time.time_ns()}", grid_id="110105002003004", category=Category.OTHER,
            description="e2e", location=Location(lat=10.0, lon=10.0, address="e2e"),
            reporter=Reporter(kind="grid_worker", id=worker.sub)), sender=worker, timeout=20)
        assert not ok.timed_out and not ok.rejected and ok.of_type("grid.case.reported.v1")
        bad = await client.send_and_follow(ReportCase(
            case_id=f"e2e-{time.time_ns()}", grid_id="110105999999999", category=Category.OTHER,
            description="e2e", location=Location(lat=10.0, lon=10.0, address="e2e"),
            reporter=Reporter(kind="resident", id=resident.sub)), sender=resident, timeout=20)
        assert bad.rejected and bad.reason == "unknown_grid"


async def test_each_worker_works_as_its_own_runtime_role(running):
    """make run bootstraps the PostgreSQL roles: each worker (and its relay) connects as <svc>_app."""
    import asyncpg

    var = running[0]
    conn = await asyncpg.connect(_env_file(var / "run" / "api.env")["DATABASE_URL"])  # the administrator
    try:
        rows = await conn.fetch("SELECT DISTINCT application_name, usename FROM pg_stat_activity "
                                "WHERE application_name LIKE '%-service' OR application_name LIKE '%-relay'")
    finally:
        await conn.close()
    seen: dict[str, set[str]] = {}
    for r in rows:
        seen.setdefault(r["application_name"], set()).add(r["usename"])
    for s in SERVICES:
        assert seen.get(f"{s}-service") == {f"{s}_app"}, seen
        assert seen.get(f"{s}-relay", {f"{s}_app"}) == {f"{s}_app"}, seen


def test_zz_the_launcher_stops_cleanly_and_no_worker_restarted(district, running):
    var, ports, kafka_port, pg_port, proc = district
    os.killpg(proc.pid, signal.SIGTERM)
    assert proc.wait(90) == 0
    final = _summary(var)
    assert final.get("stopped") is True
    # the simulator sent every command as someone the policy allows: nothing refused for lack of a right
    assert final.get("policy_refusals") == {} and final.get("failures") == [], final.get("policy_refusals")
    assert {s: w["restarts"] for s, w in final["workers"].items()} == {s: 0 for s in SERVICES}
    assert not _our_processes(var, ports, kafka_port), "processes left behind"
    assert not list((var / "run").glob("*.pid")) and not (var / "kafka" / "tansu.pid").exists()
