"""The faults the campaign injects into a district the launcher runs (all by pid or by the
embedded servers' own tools; nothing outside the campaign's var directory is touched).

Each fault is a coroutine that starts the fault, holds it, ends it and returns; the caller
times it and waits for the district to recover. Kinds:

- ``kill_worker``: ``kill -9`` of one worker process (the launcher restarts it);
- ``kill_relay``: ``kill -9`` of a worker's outbox relay child (the worker restarts it);
- ``stop_worker``: SIGSTOP of a worker for longer than the session timeout (its partitions
  move to the other worker), then SIGCONT;
- ``pause_broker``: SIGSTOP of the broker for 20 s, then SIGCONT;
- ``stop_postgres``: ``pg_ctl stop -m immediate``, 20 s without a database, start again;
- ``read_only``: every service's runtime role gets ``default_transaction_read_only`` and its
  sessions are ended (they reconnect read-only: every write fails), 20 s, then back. Only the
  runtime roles: the administrator and the owners keep writing, so it is undone safely.
"""
from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg

from schemas.registry import SERVICES
from services.kit import dbroles
from services.kit.infra import EmbeddedPostgres
from tests.support.procs import stopped


@dataclass
class Fault:
    kind: str
    target: str = ""  # a worker name (grid-2), a service, or "" for the broker / database
    hold: float = 0.0
    started: float = 0.0
    wall: float = 0.0  # time.time() at the start
    ended: float = 0.0
    recovered: float | None = None
    alerts: list[str] = field(default_factory=list)
    note: str = ""

    @property
    def name(self) -> str:
        return f"{self.kind}:{self.target}" if self.target else self.kind


def read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def children(pid: int) -> list[int]:
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            with contextlib.suppress(OSError):
                stat = (d / "stat").read_text()
                if int(stat[stat.rindex(")") + 2:].split()[1]) == pid:
                    out.append(int(d.name))
    return out


def cmdline(pid: int) -> str:
    with contextlib.suppress(OSError):
        return (Path(f"/proc/{pid}/cmdline").read_bytes()).decode(errors="replace").replace("\0", " ")
    return ""


class Faults:
    def __init__(self, var: Path, pg_port: int, admin_url: str, session_timeout_s: float):
        self.var = var
        self.pg = EmbeddedPostgres(var / "postgres", pg_port)
        self.admin_url = admin_url
        self.session_timeout_s = session_timeout_s

    def worker_pid(self, worker: str) -> int:
        pid = read_pid(self.var / "run" / f"{worker}.pid")
        if pid is None or "services." not in cmdline(pid):
            raise RuntimeError(f"no running worker {worker}")
        return pid

    async def run(self, f: Fault) -> None:
        await getattr(self, f.kind)(f)

    async def kill_worker(self, f: Fault) -> None:
        os.kill(self.worker_pid(f.target), signal.SIGKILL)

    async def kill_relay(self, f: Fault) -> None:
        pid = self.worker_pid(f.target)
        relays = [c for c in children(pid) if "services.kit.relay" in cmdline(c)]
        if not relays:
            f.note = "no relay process (inline relay?)"
            return
        for r in relays:
            os.kill(r, signal.SIGKILL)

    async def stop_worker(self, f: Fault) -> None:
        pid = self.worker_pid(f.target)
        f.hold = f.hold or self.session_timeout_s * 1.5 + 2
        with stopped(pid):
            await asyncio.sleep(f.hold)

    async def pause_broker(self, f: Fault) -> None:
        pid = read_pid(self.var / "kafka" / "tansu.pid")
        assert pid is not None and "tansu" in cmdline(pid), "no embedded broker"
        f.hold = f.hold or 20
        with stopped(pid):
            await asyncio.sleep(f.hold)

    async def stop_postgres(self, f: Fault) -> None:
        f.hold = f.hold or 20
        await asyncio.to_thread(self._pg_immediate_stop)
        try:
            await asyncio.sleep(f.hold)
        finally:
            await asyncio.to_thread(self.pg.start)

    def _pg_immediate_stop(self) -> None:
        self.pg._prepare()
        with contextlib.suppress(subprocess.CalledProcessError):
            self.pg._run([self.pg._bin("pg_ctl"), "-D", str(self.pg.datadir), "-m", "immediate", "-w", "stop"], timeout=30)

    async def read_only(self, f: Fault) -> None:
        f.hold = f.hold or 20
        roles = [dbroles.app_role(s) for s in SERVICES]
        await self._roles_read_only(roles, True)
        try:
            await asyncio.sleep(f.hold)
        finally:
            await self._roles_read_only(roles, False)

    async def _roles_read_only(self, roles: list[str], on: bool) -> None:
        conn = await asyncpg.connect(self.admin_url)
        try:
            for r in roles:
                if on:
                    await conn.execute(f'ALTER ROLE "{r}" SET default_transaction_read_only = on')
                else:
                    await conn.execute(f'ALTER ROLE "{r}" RESET default_transaction_read_only')
            await conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = ANY($1::text[])",
                               roles)
        finally:
            await conn.close()
