"""Fixtures: a real Tansu broker per test (quick to start, memory only) and a real PostgreSQL
per session with a fresh database per test.

Tests never touch a developer's running system: they start their own servers on free ports.
``TEST_DATABASE_URL`` points the tests at an existing PostgreSQL server instead (each test
still gets its own database); ``TEST_KAFKA_BOOTSTRAP_SERVERS`` at an existing broker (then
tests share its topics; use with care).
"""
from __future__ import annotations

import os
import tempfile
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from services.kit.infra import EmbeddedKafka, EmbeddedPostgres
from services.kit.provision import provision

TEST_PARTITIONS = 4

# Workers the tests start form their consumer groups in half the session timeout on the embedded
# broker: 1.5 s instead of the default's 5 s per start (a worker's consumer groups form at once).
os.environ.setdefault("KAFKA_SESSION_TIMEOUT_MS", "3000")


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
