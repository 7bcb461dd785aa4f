"""The stepped calendar that puts a simulated district's workers and simulator on one clock."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from services.kit import clock
from services.kit.clock import SHANGHAI, SteppedCalendar, SystemClock, add_months, month_label, month_start
from services.kit.settings import ServiceSettings

START = datetime(2026, 5, 1, tzinfo=SHANGHAI)
REAL = 1_800_000_000.0


def cal(month_seconds: float = 120.0) -> SteppedCalendar:
    return SteppedCalendar(START, REAL, month_seconds)


def test_time_runs_at_real_speed_from_the_first_of_the_month():
    c = cal()
    assert c.at(REAL) == START
    assert c.at(REAL + 59.5) == START + timedelta(seconds=59.5)


def test_after_month_seconds_the_clock_jumps_to_the_first_of_the_next_month():
    c = cal()
    assert c.at(REAL + 120) == datetime(2026, 6, 1, tzinfo=SHANGHAI)
    assert c.at(REAL + 121) == datetime(2026, 6, 1, 0, 0, 1, tzinfo=SHANGHAI)
    assert c.at(REAL + 120 * 8 + 5) == datetime(2027, 1, 1, 0, 0, 5, tzinfo=SHANGHAI)


def test_months_are_asia_shanghai_months_whatever_the_utc_date():
    c = cal()
    june = c.at(REAL + 120)
    assert june.tzinfo == timezone.utc and june == datetime(2026, 5, 31, 16, 0, tzinfo=timezone.utc)
    assert month_label(june) == "2026-06"


def test_the_clock_never_runs_backwards_and_agrees_between_processes():
    c, twin = cal(7.5), cal(7.5)
    reals = [REAL - 3 + i * 0.37 for i in range(400)]
    times = [c.at(r) for r in reals]
    assert all(a < b for a, b in zip(times, times[1:]))
    assert times == [twin.at(r) for r in reals]


def test_before_the_real_start_time_runs_up_to_the_first_month():
    assert cal().at(REAL - 10) == START - timedelta(seconds=10)


def test_a_bad_calendar_is_refused_with_the_setting_named():
    with pytest.raises(ValueError, match="first instant of a month"):
        SteppedCalendar(datetime(2026, 5, 2, tzinfo=SHANGHAI), REAL, 120)
    with pytest.raises(ValueError, match="SIM_MONTH_SECONDS"):
        SteppedCalendar(START, REAL, 40 * 86400)
    with pytest.raises(ValueError, match="UTC offset"):
        SteppedCalendar(datetime(2026, 5, 1), REAL, 120)


def test_month_arithmetic_crosses_years():
    assert add_months(datetime(2026, 11, 1, tzinfo=SHANGHAI), 3) == datetime(2027, 2, 1, tzinfo=SHANGHAI)
    assert month_start(datetime(2026, 1, 15, tzinfo=timezone.utc), back=2) == datetime(2025, 11, 1, tzinfo=SHANGHAI)
    # 2026-02-28 20:00 UTC is already March in Shanghai
    assert month_start(datetime(2026, 2, 28, 20, tzinfo=timezone.utc)) == datetime(2026, 3, 1, tzinfo=SHANGHAI)


def test_from_env_is_the_system_clock_unless_a_start_is_given():
    assert isinstance(clock.from_env({}), SystemClock)
    c = clock.from_env({"SIM_CLOCK_START": "2026-05-01T00:00:00+08:00", "SIM_CLOCK_REAL_START": str(REAL),
                        "SIM_MONTH_SECONDS": "30"})
    assert c == SteppedCalendar(START, REAL, 30.0)
    with pytest.raises(ValueError, match="SIM_CLOCK_REAL_START"):
        clock.from_env({"SIM_CLOCK_START": "2026-05-01T00:00:00+08:00"})
    with pytest.raises(ValueError, match="ISO 8601"):
        clock.from_env({"SIM_CLOCK_START": "May 2026", "SIM_CLOCK_REAL_START": "1"})


def test_stepped_env_round_trips_through_the_settings_of_every_worker(monkeypatch):
    env = clock.stepped_env(10, 3, real_start=REAL)
    assert env["SIM_CLOCK_START"] == month_start(datetime.fromtimestamp(REAL, timezone.utc), 3).isoformat()
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    settings_clock = ServiceSettings().clock()
    assert settings_clock == clock.from_env(env)
    assert settings_clock.at(REAL + 25) == add_months(month_start(datetime.fromtimestamp(REAL, timezone.utc), 3), 2) \
        + timedelta(seconds=5)


def test_settings_without_a_start_give_the_system_clock(monkeypatch):
    for k in ("SIM_CLOCK_START", "SIM_CLOCK_REAL_START"):
        monkeypatch.delenv(k, raising=False)
    assert isinstance(ServiceSettings().clock(), SystemClock)


def test_the_process_clock_is_what_was_put_in_use():
    before = clock.current()
    try:
        import time

        c = SteppedCalendar(START, time.time() - 3600 * 40.5, 3600)  # 40 simulated months ago
        clock.use(c)
        assert add_months(START, 40) < clock.now() < add_months(START, 41)
        assert clock.current() is c
    finally:
        clock.use(before)
    assert abs((clock.now() - datetime.now(timezone.utc)).total_seconds()) < 5


def test_month_progress_is_the_share_of_the_month_gone():
    import time

    c = SteppedCalendar(START, time.time() - 150, 100)
    assert 0.45 < c.month_progress() < 0.6
    p = SystemClock().month_progress()
    assert 0 <= p < 1
