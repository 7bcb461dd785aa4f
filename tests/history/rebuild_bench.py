"""Rebuild throughput: ``python -m tests.history.rebuild_bench`` (``REBUILD_N`` records).

Fills ``grid.intake.v1`` of an embedded broker with patrols of real grids (each sent by its
grid worker with their token) and runs ``python -m services.grid.app rebuild``
on an empty database: the projection is built from the topic alone (no live handling times:
every record is handled at its timestamp, in batches of ``--batch``). Prints the rebuild's
JSON line (``records_per_second`` is the figure) with the prefill's time.
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
import psutil

from services.kit.infra import EmbeddedKafka, EmbeddedPostgres
from services.kit.provision import provision
from schemas.envelope import encode, envelope_for
from schemas.grid import LogPatrol
from tests.bench.run import new_database, prefill, sender_headers
from tests.support.identity import test_identity

ROOT = Path(__file__).resolve().parents[2]
N = int(os.environ.get("REBUILD_N", "100000"))
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


def _cpu(postmaster: psutil.Process) -> float:
    """CPU seconds used so far by a PostgreSQL server: the postmaster, its live processes and
    the backends it has reaped."""
    total = sum(postmaster.cpu_times()[:4])
    for child in postmaster.children(recursive=True):
        try:
            total += sum(child.cpu_times()[:2])
        except psutil.NoSuchProcess:
            pass
    return total


async def main() -> int:
    work = Path(tempfile.mkdtemp(prefix="rebuild-bench-"))
    broker = EmbeddedKafka(workdir=work / "kafka").start()
    pg = EmbeddedPostgres(work / "pg").start()
    try:
        await provision(broker.bootstrap, partitions=PARTITIONS)
        t = time.perf_counter()
        await prefill(broker.bootstrap, patrols(N))
        prefill_s = time.perf_counter() - t
        dsn = await new_database(pg, "rebuild")
        env = {**os.environ, **test_identity().env(), "DATABASE_URL": dsn,
               "KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap, "LOG_FORMAT": "text"}
        postmaster = psutil.Process(int((work / "pg" / "postmaster.pid").read_text().split()[0]))
        db_cpu = _cpu(postmaster)
        load_before = os.getloadavg()[0]
        command = ["-m", "services.grid.app", "rebuild", "--no-progress"]
        if os.environ.get("REBUILD_PROFILE"):  # a cProfile of the rebuild's CPU time (not wall time)
            command = ["-c", PROFILED, os.environ["REBUILD_PROFILE"], *command[1:]]
        proc = await asyncio.to_thread(subprocess.run, [sys.executable, *command], cwd=ROOT, env=env,
                                       capture_output=True, text=True)
        if proc.returncode != 0:
            print(proc.stderr[-4000:], file=sys.stderr)
            return 1
        out = json.loads(proc.stdout.strip().splitlines()[-1])
        # the database's CPU over the rebuild: its backends (reaped by the postmaster) and the rest
        out["db_cpu_seconds"] = round(_cpu(postmaster) - db_cpu, 1)
        out["load_average"] = [round(load_before, 1), round(os.getloadavg()[0], 1)]
        conn = await asyncpg.connect(dsn)
        try:
            out["patrols"] = await conn.fetchval("SELECT count(*) FROM grid.patrols")
        finally:
            await conn.close()
        out["prefill_seconds"] = round(prefill_s, 1)
        print(json.dumps(out), flush=True)
        return 0 if out["patrols"] == N else 1
    finally:
        pg.destroy()
        broker.stop()


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
