"""make run puts every worker and the simulator on one calendar."""
from __future__ import annotations

import time
from datetime import datetime

import pytest

from services.kit import clock
from services.kit.clock import SteppedCalendar, SystemClock
from services.launcher.launcher import Config, Launcher


def launcher(monkeypatch, **env) -> Launcher:
    for k in ("SIM_CLOCK_START", "SIM_CLOCK_REAL_START", "SIM_MONTH_SECONDS", "SIM_MONTHS_BACK", "SIMULATE"):
        monkeypatch.delenv(k, raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    la = Launcher(Config.from_env())
    la.bootstrap, la.dsn = "127.0.0.1:1", "postgresql://x@127.0.0.1:1/x"
    la.set_clock()
    return la


def test_with_the_simulator_every_process_gets_the_same_stepped_calendar(monkeypatch):
    la = launcher(monkeypatch, SIM_MONTH_SECONDS="30", SIM_MONTHS_BACK="2")
    env = la.base_env()
    assert isinstance(la.clock, SteppedCalendar) and la.clock.month_seconds == 30
    assert clock.from_env(env) == la.clock
    assert abs(la.clock.real_start - time.time()) < 5
    assert la.clock.start == clock.month_start(clock.SystemClock().now(), 2)
    assert env["ASSESSMENT_CLOSE_CHECK_SECONDS"] == "1"  # ended months are closed promptly


@pytest.mark.parametrize("env", [{"SIM_MONTH_SECONDS": "0"}, {"SIMULATE": "0"}])
def test_without_the_simulator_or_with_zero_month_seconds_time_is_real(monkeypatch, env):
    la = launcher(monkeypatch, **env)
    assert isinstance(la.clock, SystemClock)
    assert "SIM_CLOCK_START" not in la.base_env()


def test_a_calendar_given_in_the_environment_is_kept(monkeypatch):
    la = launcher(monkeypatch, SIM_CLOCK_START="2026-01-01T00:00:00+08:00", SIM_CLOCK_REAL_START="1800000000",
                  SIM_MONTH_SECONDS="60")
    assert la.clock == SteppedCalendar(datetime(2026, 1, 1, tzinfo=clock.SHANGHAI), 1800000000.0, 60.0)
    assert la.base_env()["SIM_CLOCK_REAL_START"] == "1800000000"
