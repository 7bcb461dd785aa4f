"""``<SVC>_EVENT_LOOP``: the worker's event loop is uvloop unless set to Python's own."""
from __future__ import annotations

import asyncio

import pytest
import uvloop

from services.kit.eventloop import use_event_loop
from services.kit.settings import ServiceSettings


@pytest.fixture
def policy():
    before = asyncio.get_event_loop_policy()
    yield
    asyncio.set_event_loop_policy(before)


@pytest.mark.parametrize("kind, loop_type", [("uvloop", uvloop.Loop), ("asyncio", asyncio.BaseEventLoop)])
def test_the_next_loop_made_is_of_the_kind_set(policy, kind, loop_type):
    use_event_loop(kind)
    loop = asyncio.new_event_loop()
    try:
        assert isinstance(loop, loop_type)
        assert (kind == "uvloop") == isinstance(loop, uvloop.Loop)
    finally:
        loop.close()


def test_uvloop_by_default_and_nothing_else_accepted(monkeypatch):
    assert ServiceSettings().event_loop == "uvloop"
    monkeypatch.setenv("SVC_EVENT_LOOP", "asyncio")
    assert ServiceSettings().event_loop == "asyncio"
    monkeypatch.setenv("SVC_EVENT_LOOP", "trio")
    with pytest.raises(ValueError, match="event_loop"):
        ServiceSettings()
