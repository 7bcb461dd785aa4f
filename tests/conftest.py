"""Fixtures: a real Tansu broker per test (quick to start, memory only) and a real PostgreSQL
per session with a fresh database per test.

Tests never touch a developer's running system: they start their own servers on free ports,
and everything a worker they start writes (``VAR_DIR``) goes to a temporary directory of the
test process. Under pytest-xdist (``make test`` runs ``-n``) each test process has its own
PostgreSQL, brokers, identity provider and ``VAR_DIR``: nothing is shared between processes.
``TEST_DATABASE_URL`` points the tests at an existing PostgreSQL server instead (each test
still gets its own database); ``TEST_KAFKA_BOOTSTRAP_SERVERS`` at an existing broker (then
tests share its topics; use with care).
"""
from __future__ import annotations

import atexit
import json
import os
import shutil
import tempfile
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
from hypothesis import settings

from services.kit.infra import EmbeddedKafka, EmbeddedPostgres
from services.kit.provision import provision
from tests.support.order import file_of, slowest_files_first

TEST_PARTITIONS = 4

# Hypothesis' per-example deadline measures the machine's load, not the code: tests run in parallel
# processes beside brokers and workers, so an example may wait seconds for a CPU. No deadline here.
settings.register_profile("grassroots", deadline=None)
settings.load_profile("grassroots")

# Workers the tests start form their consumer groups in half the session timeout on the embedded
# broker: 1.5 s instead of the default's 5 s per start (a worker's consumer groups form at once).
os.environ.setdefault("KAFKA_SESSION_TIMEOUT_MS", "3000")

# faust's data directory and anything else a worker writes under VAR_DIR: this process's own,
# never the working tree's var/ (shared with `make run` and with other test processes).
_VAR_DIR = tempfile.mkdtemp(prefix="grassroots-test-var-")
atexit.register(shutil.rmtree, _VAR_DIR, True)
os.environ["VAR_DIR"] = _VAR_DIR

# -- order under pytest-xdist: the slowest files first ----------------------------------------------
# `make test` hands whole files to its worker processes (--dist loadfile) in collection order
# (--no-loadscope-reorder); a slow file handed out last would keep one process busy alone at the
# end. tests/support/durations.json holds each file's measured seconds (setup, call and teardown
# of its tests), written by `--record-durations=tests/support/durations.json`; a file not in it
# counts as the slowest (a new file is handed out early: if it is quick, that costs nothing).
DURATIONS = Path(__file__).parent / "support" / "durations.json"


def pytest_addoption(parser):
    parser.addoption("--record-durations", metavar="PATH", default=None,
                     help="write each test file's total seconds (setup+call+teardown) to PATH as JSON")


def pytest_collection_modifyitems(session, config, items):
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return  # a serial run keeps pytest's order
    try:
        known: dict[str, float] = json.loads(DURATIONS.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    items[:] = slowest_files_first(items, known, key=lambda it: it.nodeid)


_recorded: dict[str, float] = {}


def pytest_runtest_logreport(report):
    _recorded[file_of(report.nodeid)] = _recorded.get(file_of(report.nodeid), 0.0) + report.duration


def pytest_sessionfinish(session):
    path = session.config.getoption("--record-durations")
    if not path or os.environ.get("PYTEST_XDIST_WORKER"):
        return  # the controller (or a serial run) sees every process's reports
    out = {k: round(v, 1) for k, v in sorted(_recorded.items(), key=lambda kv: -kv[1])}
    Path(path).write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")


@pytest.fixture(scope="session")
def pg_server():
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        yield url
        return
    root = Path(tempfile.mkdtemp(prefix="grassroots-test-pg-"))
    server = EmbeddedPostgres(root / "data").start()
    try:
        yield server
    finally:
        server.destroy()


def _server_url(pg_server) -> str:
    return pg_server if isinstance(pg_server, str) else pg_server.url


async def _new_database(pg_server):
    base = _server_url(pg_server)
    name = "t_" + uuid.uuid4().hex[:16]
    admin = await asyncpg.connect(base)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    parts = urlsplit(base)
    url = urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))
    return base, name, url


async def _drop_database(base: str, name: str) -> None:
    admin = await asyncpg.connect(base)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture
async def database_url(pg_server) -> str:
    """A fresh, empty database for this test; dropped afterwards."""
    base, name, url = await _new_database(pg_server)
    yield url
    await _drop_database(base, name)


@pytest.fixture(scope="module")
async def module_database_url(pg_server) -> str:
    """A fresh database shared by the tests of one module (one worker per module)."""
    base, name, url = await _new_database(pg_server)
    yield url
    await _drop_database(base, name)


async def _broker():
    given = os.environ.get("TEST_KAFKA_BOOTSTRAP_SERVERS")
    if given:
        await provision(given, partitions=TEST_PARTITIONS)
        yield given
        return
    broker = EmbeddedKafka().start()
    try:
        await provision(broker.bootstrap, partitions=TEST_PARTITIONS)
        yield broker.bootstrap
    finally:
        broker.stop()


@pytest.fixture
async def kafka():
    """A fresh broker for this test, with every contract topic provisioned. Yields bootstrap."""
    async for b in _broker():
        yield b


@pytest.fixture(scope="module")
async def module_kafka():
    """A fresh broker shared by the tests of one module."""
    async for b in _broker():
        yield b


@pytest.fixture(scope="session")
def identity():
    """The test identity provider (:mod:`tests.support.identity`): its JWKS file, issuer and
    audience go to every worker :class:`~tests.support.procs.Worker` starts; ``identity.token()``
    mints a token for an HTTP call."""
    from tests.support.identity import test_identity

    return test_identity()
