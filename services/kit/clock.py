"""The services' clock: the real one, or a stepped calendar shared by a simulated district.

Every domain timestamp a service writes (``uow.now``: a case's deadline, a posting's date, the
period a fact falls in, when a period has ended) comes from :func:`now`. In production that is
the system clock. ``make run`` compresses the calendar so that a district lives through months
in minutes: it gives every worker and the simulator the same three settings, and they all
compute the same simulated time from the wall clock, with no coordination:

``SIM_CLOCK_START``
    the first instant of the first simulated month (ISO 8601, e.g. ``2026-05-01T00:00:00+08:00``);
``SIM_CLOCK_REAL_START``
    the Unix time (seconds) at which that month began;
``SIM_MONTH_SECONDS``
    real seconds per simulated month.

The calendar is *stepped*, not sped up: within a simulated month time runs at real speed from
the first of the month, and after ``SIM_MONTH_SECONDS`` it jumps to the first of the next month.
Durations shorter than a month (a 30-second acceptance window, a two-hour deadline) keep their
real length, so the stories a simulator plays behave as in real life; only what is still
pending at a month's end sees the jump — a case's deadline passes and it becomes overdue, the
way work left open at the month's end does. Months follow the Asia/Shanghai calendar, as the
assessment periods do. The clock never runs backwards: a month lasts at least 28 days, far
longer than any ``SIM_MONTH_SECONDS`` accepted.

Operational times (log lines, metric ages, Kafka record timestamps, ``updated_at`` columns)
stay on the real clock.
"""
from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Mapping, Protocol

SHANGHAI = timezone(timedelta(hours=8), "Asia/Shanghai")
MAX_MONTH_SECONDS = 7 * 86400.0  # far below the shortest month, so the clock is monotonic


def month_start(dt: datetime, back: int = 0) -> datetime:
    """First instant (Asia/Shanghai) of the month ``back`` months before ``dt``'s month."""
    local = dt.astimezone(SHANGHAI)
    y, m = local.year, local.month - back
    while m < 1:
        y, m = y - 1, m + 12
    return datetime(y, m, 1, tzinfo=SHANGHAI)


def add_months(start: datetime, n: int) -> datetime:
    """The first instant of the month ``n`` months after the one ``start`` (a month start) begins."""
    local = start.astimezone(SHANGHAI)
    y, m = divmod(local.year * 12 + local.month - 1 + n, 12)
    return datetime(y, m + 1, 1, tzinfo=SHANGHAI)


def next_month(dt: datetime) -> datetime:
    return add_months(month_start(dt), 1)


def month_label(dt: datetime) -> str:
    """``YYYY-MM`` of the Asia/Shanghai month ``dt`` falls in (an assessment period)."""
    local = dt.astimezone(SHANGHAI)
    return f"{local.year:04d}-{local.month:02d}"


class Clock(Protocol):
    simulated: bool

    def now(self) -> datetime: ...

    def at(self, real: float) -> datetime:
        """This clock's time at the real Unix time ``real``."""
        ...

    def month_progress(self) -> float:
        """How far the current month is through, 0 ≤ p < 1 (in this clock's pace)."""
        ...


class SystemClock:
    """The real clock."""

    simulated = False

    def now(self) -> datetime:
        return datetime.now(timezone.utc)

    def at(self, real: float) -> datetime:
        """The time at the real Unix time ``real``: itself."""
        return datetime.fromtimestamp(real, timezone.utc)

    def month_progress(self) -> float:
        t = self.now()
        start = month_start(t)
        return (t - start) / (next_month(start) - start)

    def describe(self) -> str:
        return "system clock"


@dataclass(frozen=True)
class SteppedCalendar:
    """A compressed calendar: month ``k`` begins ``k × month_seconds`` after ``real_start``."""

    start: datetime
    real_start: float
    month_seconds: float

    simulated = True

    def __post_init__(self) -> None:
        if self.start.tzinfo is None:
            raise ValueError("SIM_CLOCK_START needs a UTC offset (e.g. 2026-05-01T00:00:00+08:00)")
        if month_start(self.start) != self.start:
            raise ValueError(f"SIM_CLOCK_START must be the first instant of a month in Asia/Shanghai, "
                             f"e.g. {month_start(self.start).isoformat()}")
        if not (1.0 <= self.month_seconds <= MAX_MONTH_SECONDS) or not math.isfinite(self.month_seconds):
            raise ValueError(f"SIM_MONTH_SECONDS must be between 1 and {MAX_MONTH_SECONDS:.0f}")
        if not math.isfinite(self.real_start) or self.real_start <= 0:
            raise ValueError("SIM_CLOCK_REAL_START must be a Unix time in seconds")

    def month_index(self, real: float) -> int:
        """Which simulated month (0 = ``start``'s) the real instant ``real`` falls in."""
        return max(0, math.floor((real - self.real_start) / self.month_seconds))

    def at(self, real: float) -> datetime:
        """The simulated time at the real Unix time ``real``."""
        k = self.month_index(real)
        into = real - self.real_start - k * self.month_seconds  # negative only before the start
        return (add_months(self.start, k) + timedelta(seconds=into)).astimezone(timezone.utc)

    def now(self) -> datetime:
        return self.at(time.time())

    def month_progress(self) -> float:
        elapsed = time.time() - self.real_start
        return 0.0 if elapsed < 0 else (elapsed % self.month_seconds) / self.month_seconds

    def describe(self) -> str:
        return (f"stepped calendar: {month_label(self.start)} began at Unix time {self.real_start:.3f}; "
                f"one simulated month every {self.month_seconds:g} s")


def from_settings(start: datetime | None, real_start: float | None, month_seconds: float | None) -> Clock:
    """A stepped calendar when ``start`` is given, else the system clock."""
    if start is None:
        return SystemClock()
    if real_start is None:
        raise ValueError("SIM_CLOCK_START is set but SIM_CLOCK_REAL_START is not")
    return SteppedCalendar(start, float(real_start), float(120.0 if month_seconds is None else month_seconds))


def from_env(environ: Mapping[str, str] | None = None) -> Clock:
    """The clock the ``SIM_CLOCK_*`` variables describe (the system clock when they are unset)."""
    e = os.environ if environ is None else environ
    raw = (e.get("SIM_CLOCK_START") or "").strip()
    if not raw:
        return SystemClock()
    try:
        start = datetime.fromisoformat(raw)
    except ValueError:
        raise ValueError(f"SIM_CLOCK_START is not an ISO 8601 time: {raw!r}") from None
    try:
        real = float(e.get("SIM_CLOCK_REAL_START") or "nan")
        month_seconds = float(e.get("SIM_MONTH_SECONDS") or 120)
    except ValueError:
        raise ValueError("SIM_CLOCK_REAL_START and SIM_MONTH_SECONDS must be numbers") from None
    if math.isnan(real):
        raise ValueError("SIM_CLOCK_START is set but SIM_CLOCK_REAL_START is not")
    return SteppedCalendar(start, real, month_seconds)


def stepped_env(month_seconds: float, months_back: int, real_start: float | None = None) -> dict[str, str]:
    """The environment that puts workers and the simulator on one stepped calendar starting now,
    ``months_back`` months before the real month."""
    real = time.time() if real_start is None else real_start
    start = month_start(datetime.fromtimestamp(real, timezone.utc), months_back)
    SteppedCalendar(start, real, month_seconds)  # validates
    return {"SIM_CLOCK_START": start.isoformat(), "SIM_CLOCK_REAL_START": f"{real:.6f}",
            "SIM_MONTH_SECONDS": f"{month_seconds:g}"}


_current: Clock = SystemClock()


def use(clock: Clock) -> None:
    """Make ``clock`` the process's clock (the runtime does this from the settings at start-up)."""
    global _current
    _current = clock


def current() -> Clock:
    return _current


def now() -> datetime:
    """The current domain time (aware, UTC)."""
    return _current.now()


def wall_clock() -> datetime:
    """The real time, whatever calendar :func:`now` follows: for operational deadlines that are
    about people waiting (a consent code's few minutes), never for domain dates."""
    return datetime.now(timezone.utc)
