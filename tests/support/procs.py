"""Run a service worker as a real process (``python -m <module> worker``) and wait for it.

A worker verifies tokens of the test identity provider (:mod:`tests.support.identity`) unless
the test gives it ``JWKS`` / ``JWT_ISSUER`` / ``JWT_AUDIENCE`` of its own."""
from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import psutil

from services.kit.infra import free_port

from .identity import test_identity

ROOT = Path(__file__).resolve().parents[2]


class Worker:
    def __init__(self, module: str, env: dict[str, str], *, prefix: str, port: int | None = None, log: Path | None = None):
        self.module = module
        self.port = port or free_port()
        self.chosen_port = port is None  # ours to change if another process takes it first
        self.prefix = prefix
        self.env = {**os.environ, **test_identity().env(), **env, f"{prefix}HTTP_PORT": str(self.port), f"{prefix}HTTP_HOST": "127.0.0.1",
                    "LOG_FORMAT": "text", "PYTHONUNBUFFERED": "1"}
        self.log = log
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "Worker":
        out = open(self.log, "ab") if self.log else subprocess.DEVNULL
        self.proc = subprocess.Popen([sys.executable, "-m", self.module, "worker", "-l", "warn",
                                      "--web-port", str(self.port), "--web-host", "127.0.0.1"],
                                     cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        return self

    def _lost_its_port(self) -> bool:
        """Whether the worker exited because its port, free when :func:`free_port` chose it, was
        taken before it bound it (by another test process's connection, say)."""
        if not self.chosen_port or self.log is None or not self.log.exists():
            return False
        return f", {self.port}): address already in use" in self.log.read_text(errors="replace")

    async def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        restarts = 3
        async with aiohttp.ClientSession() as s:
            while time.monotonic() < deadline:
                assert self.proc is not None
                if self.proc.poll() is not None and restarts and self._lost_its_port():
                    restarts -= 1  # on another free port: the port was the test's choice, not the worker's fault
                    self.port = free_port()
                    self.env[f"{self.prefix}HTTP_PORT"] = str(self.port)
                    self.start()
                assert self.proc.poll() is None, f"{self.module} exited with {self.proc.returncode}"
                try:
                    async with s.get(self.url + "/readyz", timeout=aiohttp.ClientTimeout(total=3)) as r:
                        if r.status == 200:
                            return
                except (aiohttp.ClientError, asyncio.TimeoutError):
                    pass
                await asyncio.sleep(0.3)
        raise TimeoutError(f"{self.module} not ready after {timeout}s")

    def stop(self, sig: int = signal.SIGTERM) -> int | None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        return self.proc.returncode if self.proc else None


@contextlib.contextmanager
def stopped(*pids: int, groups: bool = False):
    """The processes ``pids`` stopped (``SIGSTOP``) meanwhile and continued (``SIGCONT``) after,
    however the block ends; with ``groups``, a process that leads its process group (a
    :class:`Worker`, and its outbox relay with it) with the whole group. A process already gone is
    passed over."""
    for pid in pids:
        _signal(pid, signal.SIGSTOP, groups)
    try:
        yield
    finally:
        for pid in pids:
            _signal(pid, signal.SIGCONT, groups)


def _signal(pid: int, sig: signal.Signals, groups: bool) -> None:
    with contextlib.suppress(ProcessLookupError):
        if groups and os.getpgid(pid) == pid:
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)


def child_pids(pid: int) -> list[int]:
    """Live (not zombie) processes whose parent is ``pid`` (e.g. a worker's outbox relay)."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            out.append(int(entry))
    return out


def cpu_seconds(pid: int) -> float:
    """CPU seconds (user and system) used so far by the process ``pid``."""
    return sum(psutil.Process(pid).cpu_times()[:2])


def postmaster_of(datadir: Path) -> psutil.Process:
    """The postmaster of the PostgreSQL server running on ``datadir``."""
    return psutil.Process(int((datadir / "postmaster.pid").read_text().split()[0]))


def server_cpu_seconds(postmaster: psutil.Process) -> float:
    """CPU seconds used so far by a PostgreSQL server: the postmaster, its live processes and
    the backends it has reaped."""
    total = sum(postmaster.cpu_times()[:4])
    for child in postmaster.children(recursive=True):
        try:
            total += sum(child.cpu_times()[:2])
        except psutil.NoSuchProcess:
            pass
    return total


async def http(method: str, url: str, *, json=None, token: str | None = None, data: bytes | None = None):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with aiohttp.ClientSession() as s:
        async with s.request(method, url, json=json, data=data, headers=headers,
                             timeout=aiohttp.ClientTimeout(total=15)) as r:
            ctype = r.headers.get("Content-Type", "")
            body = await r.json() if "json" in ctype else await r.text()
            return r.status, body
