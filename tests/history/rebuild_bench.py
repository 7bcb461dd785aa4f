"""Rebuild throughput: ``python -m tests.history.rebuild_bench`` (``REBUILD_N`` records).

``REBUILD_SERVICE=grid`` (the default) fills ``grid.intake.v1`` of an embedded broker with
patrols of real grids (each sent by its grid worker with their token) and runs
``python -m services.grid.app rebuild``. ``REBUILD_SERVICE=points`` fills ``grid.events.v1``
with the grid's events of cases reported by residents and registered (``case.reported`` then
``case.registered``, half each; a registration earns its reporter points) and runs the points
rebuild: its input is another service's events, handled message by message with the ledger's
own queries. Either way the projection is built from the topic alone on an empty database (no
live handling times: every record is handled at its timestamp, in batches of ``--batch``,
``REBUILD_BATCH``).

Prints the rebuild's JSON line (``records_per_second`` is the figure; ``cpu_seconds`` is the
rebuild's own CPU while replaying, ``db_cpu_seconds`` the database server's during the whole
rebuild, migrations and the final ANALYZE included) with the load average before and after,
the prefill's time and a count of what was built. ``REBUILD_PROFILE=<file>`` writes a cProfile
of the rebuild (timed by CPU, not wall clock); ``REBUILD_LOG=<file>`` keeps its log.
"""
from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import asyncpg

from services.kit.infra import EmbeddedKafka, EmbeddedPostgres
from services.kit.provision import provision
from schemas.envelope import CONTENT_TYPE, build, encode, envelope_for
from schemas.grid import LogPatrol, RegisterCase, ReportCase
from schemas.topics import GRID
from services.grid.domain import Context, decide, evolve_all
from services.grid.registry import DepartmentRegister, GridRegister
from tests.bench.run import new_database, prefill, sender_headers
from tests.support.identity import test_identity
from tests.support.procs import postmaster_of, server_cpu_seconds

ROOT = Path(__file__).resolve().parents[2]
N = int(os.environ.get("REBUILD_N", "100000"))
SERVICE = os.environ.get("REBUILD_SERVICE", "grid")
PARTITIONS = int(os.environ.get("REBUILD_PARTITIONS", "12"))


# ``python -c PROFILED <out> <module> <args>``: run a module under cProfile timed by CPU time, so
# that a profile taken on a busy machine is not inflated by the time the process waits for a core
PROFILED = """
import cProfile, runpy, sys, time
out, module = sys.argv[1], sys.argv[2]
sys.argv = [module, *sys.argv[3:]]
p = cProfile.Profile(time.process_time)
try:
    p.runcall(runpy.run_module, module, run_name="__main__", alter_sys=True)
finally:
    p.dump_stats(out)
"""

GRIDS = ("110105001001001", "110105001001002", "110105001002003")


def patrols(n: int) -> list[tuple[bytes, bytes, list]]:
    """``n`` patrols of real grids, each logged by its grid worker with their token."""
    t = datetime(2026, 11, 22, 8, 0, tzinfo=timezone.utc)
    senders = sender_headers()
    out = []
    for i in range(n):
        grid = GRIDS[i % len(GRIDS)]
        w = (i * 7919) % len(senders)
        cmd = LogPatrol(patrol_id=f"p-{i}", grid_id=grid, grid_worker_id=f"gw-{w}", started_at=t,
                        ended_at=t + timedelta(hours=1))
        env = envelope_for(cmd, source="/bench/app-1", id=str(uuid.uuid4()), time=t)
        out.append((f"p-{i}".encode(), encode(env), senders[w]))
    return out


def case_events(n: int) -> list[tuple[bytes, bytes, list]]:
    """The grid's events of ``n // 2`` cases reported by residents and registered, as the grid
    worker publishes them (decided by the grid domain, keyed by case, dated now: an events
    topic's record must be dated near its event)."""
    grids = sorted(GridRegister.load().grid_ids)
    departments = DepartmentRegister.load()
    headers = [("content-type", CONTENT_TYPE.encode())]
    now = datetime.now(timezone.utc)
    out = []
    for i in range(n // 2):
        case_id = f"case-{i:08d}"
        report = ReportCase.model_validate({
            "case_id": case_id, "grid_id": grids[i % len(grids)], "category": "environment",
            "description": "楼道堆物", "location": {"lat": 39.92, "lon": 116.44, "address": "朝阳区"},
            "reporter": {"kind": "resident", "id": f"res-{(i * 7919) % 5000:05d}"}})
        reported = decide(None, report, Context(now=now, grid_known=True))
        state = evolve_all({case_id: None}, reported)[case_id]
        proposed = departments.responsible(state.category, state.grade, state.street_id)
        registered = decide(state, RegisterCase(case_id=case_id, department=proposed),
                            Context(now=now, grid_known=True, department_known=True, proposed_department=proposed))
        for ev in (*reported, *registered):
            _, value = build(ev, source="/services/grid", time=now, subject=case_id)
            out.append((case_id.encode(), value, headers))
    return out


async def main() -> int:
    work = Path(tempfile.mkdtemp(prefix="rebuild-bench-"))
    broker = EmbeddedKafka(workdir=work / "kafka").start()
    pg = EmbeddedPostgres(work / "pg").start()
    try:
        await provision(broker.bootstrap, partitions=PARTITIONS)
        t = time.perf_counter()
        if SERVICE == "grid":
            await prefill(broker.bootstrap, patrols(N))
        elif SERVICE == "points":
            await prefill(broker.bootstrap, case_events(N), topic=GRID.events.name)
        else:
            raise SystemExit(f"REBUILD_SERVICE: grid or points, not {SERVICE!r}")
        prefill_s = time.perf_counter() - t
        dsn = await new_database(pg, "rebuild")
        env = {**os.environ, **test_identity().env(), "DATABASE_URL": dsn,
               "KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap, "LOG_FORMAT": "text"}
        postmaster = postmaster_of(work / "pg")
        db_cpu = server_cpu_seconds(postmaster)
        load_before = os.getloadavg()[0]
        command = ["-m", f"services.{SERVICE}.app", "rebuild", "--no-progress",
                   *(["--batch", os.environ["REBUILD_BATCH"]] if os.environ.get("REBUILD_BATCH") else [])]
        if os.environ.get("REBUILD_PROFILE"):  # a cProfile of the rebuild's CPU time (not wall time)
            command = ["-c", PROFILED, os.environ["REBUILD_PROFILE"], *command[1:]]
        proc = await asyncio.to_thread(subprocess.run, [sys.executable, *command], cwd=ROOT, env=env,
                                       capture_output=True, text=True)
        if os.environ.get("REBUILD_LOG"):  # the rebuild's log, for a run that needs explaining
            Path(os.environ["REBUILD_LOG"]).write_text(proc.stderr)
        if proc.returncode != 0:
            print(proc.stderr[-4000:], file=sys.stderr)
            return 1
        out = json.loads(proc.stdout.strip().splitlines()[-1])
        # the database's CPU over the rebuild: its backends (reaped by the postmaster) and the rest
        out["db_cpu_seconds"] = round(server_cpu_seconds(postmaster) - db_cpu, 1)
        out["load_average"] = [round(load_before, 1), round(os.getloadavg()[0], 1)]
        conn = await asyncpg.connect(dsn)
        try:
            if SERVICE == "grid":
                out["patrols"] = await conn.fetchval("SELECT count(*) FROM grid.patrols")
                built = out["patrols"] == N
            else:
                out["cases"] = await conn.fetchval("SELECT count(*) FROM points.grid_reports WHERE awarded")
                out["earnings"] = await conn.fetchval("SELECT count(*) FROM points.earnings")
                built = out["cases"] == N // 2
        finally:
            await conn.close()
        out["prefill_seconds"] = round(prefill_s, 1)
        print(json.dumps(out), flush=True)
        return 0 if built else 1
    finally:
        pg.destroy()
        broker.stop()


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
