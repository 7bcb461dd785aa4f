"""A worker that is starting answers 503 with Retry-After on every route that may touch the
database (never a 500 from a missing pool), and its timers and commands say NotReady."""
from __future__ import annotations

import contextlib

import pytest

from services.kit import runtime as runtime_module
from services.kit.routes import Route
from services.kit.runtime import NotReady, ServiceRuntime, response_headers
from services.kit.settings import ServiceSettings
from services.kit.db import UNAVAILABLE_ERRORS


class Raw:
    method, path, headers = "GET", "/v1/thing", {}


class Pool:
    @contextlib.asynccontextmanager
    async def acquire(self):
        yield object()


@pytest.fixture
def rt(tmp_path, monkeypatch):
    monkeypatch.setenv("VAR_DIR", str(tmp_path))
    return ServiceRuntime("points", ServiceSettings())


def a_route(rt: ServiceRuntime, calls: list, *, db: bool = True) -> Route:
    async def fn(req):
        calls.append(req)
        async with rt.connection():  # as every query route does
            return {"ok": True}
    return Route("/v1/thing", "GET", fn, auth=False, db=db)


async def test_a_route_before_the_pool_exists_is_503_not_500(rt):
    calls: list = []
    status, body, headers = await rt.answer(a_route(rt, calls), Raw(), {})
    assert status == 503 and body["error"] == "unavailable" and "starting" in body["detail"]
    assert headers == {"Retry-After": "2"}
    assert calls == []  # the function never ran


async def test_a_route_while_migrations_run_is_503_though_the_pool_exists(rt):
    rt.pool = Pool()  # connected, migrations or start-up hooks not done yet
    assert (await rt.answer(a_route(rt, []), Raw(), {}))[0] == 503
    rt.serving = True
    assert await rt.answer(a_route(rt, []), Raw(), {}) == (200, {"ok": True}, None)


async def test_a_route_declared_without_the_database_reaches_its_function_and_a_missing_pool_inside_is_503(rt):
    calls: list = []
    status, body, _ = await rt.answer(a_route(rt, calls, db=False), Raw(), {})
    assert len(calls) == 1 and status == 503 and body["error"] == "unavailable"


async def test_timers_and_commands_get_not_ready_which_the_kit_retries(rt):
    assert issubclass(NotReady, UNAVAILABLE_ERRORS)  # a timer counts it a retry, a route a 503
    with pytest.raises(NotReady):
        async with rt.transaction():
            pass
    with pytest.raises(NotReady):
        await rt.execute(object(), object())  # type: ignore[arg-type]


def test_every_503_says_when_to_retry():
    assert response_headers(503) == {"Retry-After": str(runtime_module.RETRY_AFTER_SECONDS)}
    assert response_headers(200) is None and response_headers(500) is None
