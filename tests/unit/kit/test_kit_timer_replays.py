"""What a timer declares a rebuild may run again (``rt.timer(..., replays=..., replay=...)``):
the two go together; a type belongs to one timer, unless every timer publishing it tells its
events apart with a pick on their data; and the rebuild gives each uncaused event to the timer
that published it, by type, then by pick."""
from __future__ import annotations

import pytest

from schemas.points import AccountOpened, TransferPosted, TransferRefused
from services.kit.rebuild import _timer_of
from services.kit.runtime import ServiceRuntime
from services.kit.settings import ServiceSettings


@pytest.fixture
def rt(tmp_path, monkeypatch):
    monkeypatch.setenv("VAR_DIR", str(tmp_path))
    return ServiceRuntime("points", ServiceSettings())


async def replay(uow, ids):
    return None


async def tick(uow):
    return None


def of_reason(reason: str):
    return lambda data: data.get("reason") == reason


def timers_of(rt: ServiceRuntime) -> dict:
    out: dict = {}
    for name, (_, types) in rt.replayed_timers.items():
        for t, pick in types.items():
            out.setdefault(t, []).append((name, pick))
    return out


def test_replays_and_replay_go_together(rt):
    with pytest.raises(ValueError, match="go together"):
        rt.timer(1, replays=(TransferPosted,))
    with pytest.raises(ValueError, match="go together"):
        rt.timer(1, replay=replay)


def test_a_type_without_a_pick_belongs_to_one_timer(rt):
    rt.timer(1, name="a", replays=(TransferPosted,), replay=replay)(tick)
    with pytest.raises(ValueError, match="already replayed"):
        rt.timer(1, name="b", replays=((TransferPosted, of_reason("award")),), replay=replay)(tick)
    rt2 = ServiceRuntime("points", ServiceSettings())
    rt2.timer(1, name="a", replays=((TransferPosted, of_reason("expiry")),), replay=replay)(tick)
    with pytest.raises(ValueError, match="already replayed"):
        rt2.timer(1, name="b", replays=(TransferPosted,), replay=replay)(tick)


def test_each_uncaused_event_goes_to_the_timer_whose_pick_says_it_is_its(rt):
    rt.timer(1, name="expiry", replays=((TransferPosted, of_reason("expiry")),), replay=replay)(tick)
    rt.timer(1, name="credit", replays=(AccountOpened, (TransferPosted, of_reason("award")), TransferRefused),
             replay=replay)(tick)
    timers = timers_of(rt)

    def doc(t, **data):
        return {"type": t.TYPE, "data": data}
    assert _timer_of(timers, TransferPosted.TYPE, doc(TransferPosted, reason="expiry")) == "expiry"
    assert _timer_of(timers, TransferPosted.TYPE, doc(TransferPosted, reason="award")) == "credit"
    assert _timer_of(timers, TransferRefused.TYPE, doc(TransferRefused, reason="cap_reached")) == "credit"
    assert _timer_of(timers, AccountOpened.TYPE, doc(AccountOpened)) == "credit"
    # neither timer's: a redemption, another type, no data
    assert _timer_of(timers, TransferPosted.TYPE, doc(TransferPosted, reason="redemption")) is None
    assert _timer_of(timers, "points.deed.approved.v1", {"data": {}}) is None
    assert _timer_of(timers, TransferPosted.TYPE, {"data": None}) is None
    assert _timer_of(timers, None, {}) is None


def test_the_points_timers_that_publish_are_both_declared():
    from services.points.app import main
    assert set(main.rt.replayed_timers) == {"expire_points", "credit_deeds"}
