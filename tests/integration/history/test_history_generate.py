"""The history generator at a tiny scale: what it builds passes each service's own checks, and the
history bench measures it (a smoke run: few requests, the history only)."""
from __future__ import annotations

from datetime import datetime

import pytest

from services.assessment.app.scoring import compute_period
from services.assessment.app.settings import AssessmentSettings
from services.assessment.domain import Scheme
from services.assessment.domain.history import fold
from services.assessment.domain.publication import scheme_in_force
from services.assessment.projection import store
from services.grid.domain import CaseState
from services.kit.db import create_pool
from services.points.projection.queries import ledger_check, ledger_check_full
from tests.history.bench import measure, sample_of
from tests.history.generate import SH, Plan, generate

PLAN = Plan(years=1, scale=0.00004, end=datetime(2026, 11, 20, 9, tzinfo=SH))  # 200 cases over a year


@pytest.fixture(scope="module")
async def history(module_database_url):
    out = await generate(module_database_url, PLAN)
    return module_database_url, out


async def test_counts_follow_the_plan(history):
    _, out = history
    assert out["cases"] == PLAN.cases
    assert out["postings"] > 0 and out["accounts"] > 0 and out["scorecards"] > 0
    assert out["closed_periods"] == 12 + 4 + 1  # the months, quarters and the year that ended


async def test_points_ledger_checks_pass(history):
    url, _ = history
    pool = await create_pool(url, "points", service="points", max_size=1)
    try:
        async with pool.acquire() as conn:
            inc = await ledger_check(conn)
            full = await ledger_check_full(conn)
            kinds = {r["kind"] for r in await conn.fetch("SELECT DISTINCT kind FROM postings")}
            deeds = {r[0] for r in await conn.fetch("SELECT DISTINCT status FROM deeds")}
            derived = await conn.fetchval(
                """SELECT count(*) FROM accounts a WHERE a.balance <> (a.state->>'balance')::bigint""")
    finally:
        await pool.close()
    assert inc["consistent"], inc
    assert full["consistent"], full
    assert inc["postings"] == full["postings"] and inc["sum"] == 0
    assert {"award", "redemption"} <= kinds
    assert derived == 0
    assert "credited" in deeds, deeds


async def test_grid_rows_are_the_case_states(history):
    url, _ = history
    pool = await create_pool(url, "grid", service="grid", max_size=1)
    try:
        async with pool.acquire() as conn:
            states = {r["case_id"]: CaseState.model_validate(r["state"])
                      for r in await conn.fetch("SELECT case_id, state FROM case_state")}
            rows = {r["case_id"]: r for r in await conn.fetch("SELECT case_id, status, version FROM cases")}
            last = dict(await conn.fetch("SELECT case_id, max(seq) FROM case_history GROUP BY case_id"))
            gaps = await conn.fetchval(
                "SELECT count(*) FROM (SELECT case_id, count(*) n, max(seq) m FROM case_history GROUP BY case_id) x "
                "WHERE n <> m")
    finally:
        await pool.close()
    assert states.keys() == rows.keys()
    for case_id, s in states.items():
        assert rows[case_id]["status"] == s.status.value
        assert rows[case_id]["version"] == s.version == last[case_id]
    assert gaps == 0
    by_status = {s.status.value for s in states.values()}
    assert {"closed", "dismissed"} <= by_status


async def test_closed_months_rescore_to_the_stored_scorecards(history):
    url, _ = history
    pool = await create_pool(url, "assessment", service="assessment", max_size=1)
    try:
        async with pool.acquire() as conn:
            default = Scheme.load(AssessmentSettings().scheme_file)
            schemes = await store.load_schemes(conn)
            replayed, _ = fold(await store.load_history(conn))
            for period in ("2026-01", "2026-06", "2026-Q3", "2025"):
                scheme = scheme_in_force(schemes, period, default)
                pub = await compute_period(conn, period, scheme)
                stored = {r["scorecard_id"]: (r["score"], r["rank"], r["grade"]) for r in await conn.fetch(
                    "SELECT scorecard_id, score, rank, grade FROM scorecards WHERE period = $1", period)}
                again = {c.scorecard_id: (c.score, c.rank, c.grade.value if c.grade else None) for c in pub.scorecards}
                assert stored and stored == again, period
                facts = await store.period_facts(conn, period)
                assert facts == pytest.approx({k: v for k, v in replayed.items() if k[2] == period}), period
    finally:
        await pool.close()


async def test_the_bench_measures_every_figure(history, module_kafka, tmp_path):
    url, _ = history
    out = await measure(url, module_kafka, await sample_of(url), tmp_path, requests=32)
    reads = {k: v for k, v in out.items() if "p99_ms" in v}
    assert len(reads) == 12
    for name, v in reads.items():
        assert 0 < v["p50_ms"] <= v["p99_ms"] and set(v["status"]) <= {200}, (name, v)
    assert out["provisional_scorecard"]["status"] == 200, out["provisional_scorecard"]
    for close in ("close_month", "close_quarter"):  # closed as the timer closes it: the scores stand
        assert (out[close]["status"], out[close]["answer"]) == (409, "no_change"), out[close]
    assert out["ledger_check_full"]["status"] == 200, out
