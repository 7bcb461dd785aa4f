"""The working-time calendar (工作日历): which days are working days, and the working hours
(工作时) of a working day.

Deadlines of departments run in working time: 数字城管 limits are in working hours (``wh``) and
working days (``wd``), and the State Council's yearly holiday notice (国务院办公厅 节假日安排通知)
moves days about: statutory holidays (法定节假日) and make-up working days (调休, weekend days
that are worked). The operator keeps the calendar in a file
(``services/grid/policy/calendar.yaml``); the application layer parses it and hands the mapping
to :meth:`WorkCalendar.from_mapping`. Nothing here reads a file or a clock.

Shape of the mapping (every key optional)::

    timezone: Asia/Shanghai                 # days and hours are those of this zone
    working_hours: [["09:00", "12:00"], ["13:30", "17:30"]]   # the periods of a working day
    years:
      2026:
        holidays: [2026-01-01..2026-01-03, 2026-10-01..2026-10-07]   # dates, or ranges a..b
        workdays: [2026-01-04, 2026-10-10]  # 调休: weekend days that are working days
      2027:
        provisional: true                   # statutory days only, until the notice is published
        holidays: [2027-01-01]

Rules:

- A Monday–Friday is a working day unless it is a holiday of its year; a Saturday or Sunday
  is not, unless it is a make-up working day of its year.
- For a year the calendar does not list, every Monday–Friday is a working day and no weekend
  day is (:meth:`WorkCalendar.covers` tells, so that the service can warn before that happens).
- Working time is the periods of ``working_hours`` on working days, on the zone's wall clock;
  a period is half-open, ``[start, end)``. Periods are ordered and do not overlap.

Arithmetic (every ``datetime`` in is timezone-aware; every one out is in the calendar's zone):

- :meth:`~WorkCalendar.next_working_instant`: ``t`` itself when in working time, else the
  start of the next working period.
- :meth:`~WorkCalendar.add_working_hours`: advances through working time only. The result is
  the earliest instant at which that much working time has passed, so a limit used up exactly
  at the end of a period is due at that end (12:00, not 13:30). Adding nothing returns ``t``.
- :meth:`~WorkCalendar.add_working_days`: ``n`` working days from a start in working time
  end on the n-th following working day at the same local time. A start outside working time
  (a night, a weekend, a holiday, the lunch break) counts from the next working period's
  start: 1 working day from Monday 20:00 (or Saturday 10:00) is due Wednesday (or Tuesday)
  09:00 — the same working instant as the close of the next working day.
- :meth:`~WorkCalendar.working_seconds_between`: the working time from ``a`` to ``b`` in
  seconds (negative when ``b`` is before ``a``): what "within N working hours" measures.
"""
from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta
from typing import Any, Iterator, Mapping
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

_RANGE_RE = re.compile(r"^\s*([0-9]{4}-[0-9]{2}-[0-9]{2})\s*\.\.\s*([0-9]{4}-[0-9]{2}-[0-9]{2})\s*$")
_MAX_RANGE_DAYS = 366


def _expand_dates(v: Any) -> Any:
    """``[date | "YYYY-MM-DD" | "YYYY-MM-DD..YYYY-MM-DD"]`` → a set of dates (ranges inclusive)."""
    if v is None:
        return []
    if isinstance(v, (str, date)):
        v = [v]
    out: list[Any] = []
    for item in v:
        m = _RANGE_RE.match(item) if isinstance(item, str) else None
        if m is None:
            out.append(item)
            continue
        first, last = date.fromisoformat(m.group(1)), date.fromisoformat(m.group(2))
        if last < first or (last - first).days > _MAX_RANGE_DAYS:
            raise ValueError(f"a date range is written first..last with first <= last, within a year, not {item!r}")
        out.extend(first + timedelta(days=i) for i in range((last - first).days + 1))
    return out


class YearSchedule(BaseModel):
    """One year of the holiday notice: statutory holidays and make-up working days (调休)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    provisional: bool = False
    holidays: frozenset[date] = frozenset()
    workdays: frozenset[date] = frozenset()

    @field_validator("holidays", "workdays", mode="before")
    @classmethod
    def _ranges(cls, v: Any) -> Any:
        return _expand_dates(v)

    @model_validator(mode="after")
    def _consistent(self) -> "YearSchedule":
        weekdays = sorted(d.isoformat() for d in self.workdays if d.weekday() < 5)
        if weekdays:
            raise ValueError(f"make-up working days (workdays) are weekend days; these are not: {weekdays}")
        both = sorted(d.isoformat() for d in self.holidays & self.workdays)
        if both:
            raise ValueError(f"a day cannot be both a holiday and a working day: {both}")
        return self


class WorkCalendar(BaseModel):
    """Working days and working hours in one time zone (see the module docstring).

    ``WorkCalendar()`` is Monday–Friday, 09:00–12:00 and 13:30–17:30 in Asia/Shanghai, with no
    holidays: the calendar of a year no file covers.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    timezone: str = "Asia/Shanghai"
    working_hours: tuple[tuple[time, time], ...] = Field(
        default=((time(9, 0), time(12, 0)), (time(13, 30), time(17, 30))), min_length=1
    )
    years: dict[int, YearSchedule] = Field(default_factory=dict)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {v!r}") from None
        return v

    @field_validator("working_hours")
    @classmethod
    def _ordered_periods(cls, v: tuple[tuple[time, time], ...]) -> tuple[tuple[time, time], ...]:
        for start, end in v:
            if start.tzinfo is not None or end.tzinfo is not None:
                raise ValueError("working hours are local times of day, without a zone")
            if not start < end:
                raise ValueError(f"a working period ends after it starts, not {start:%H:%M}–{end:%H:%M}")
        for (_, end), (start, _) in zip(v, v[1:]):
            if start < end:
                raise ValueError("working periods are listed in order and do not overlap")
        return v

    @model_validator(mode="after")
    def _dates_in_their_year(self) -> "WorkCalendar":
        for year, sched in self.years.items():
            stray = sorted(d.isoformat() for d in sched.holidays | sched.workdays if d.year != year)
            if stray:
                raise ValueError(f"dates listed under {year} belong to another year: {stray}")
        return self

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Any] | None) -> "WorkCalendar":
        """Build a calendar from a parsed YAML/JSON mapping; raises ``pydantic.ValidationError``."""
        return cls.model_validate(dict(mapping or {}))

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    # -- days -------------------------------------------------------------------------------

    def covers(self, day: date) -> bool:
        """Whether the calendar lists the year of ``day`` (outside it: plain Monday–Friday)."""
        return day.year in self.years

    def is_provisional(self, day: date) -> bool:
        """Whether the year of ``day`` is listed as provisional (statutory days only)."""
        sched = self.years.get(day.year)
        return sched is not None and sched.provisional

    def is_workday(self, day: date) -> bool:
        """A weekday that is not a holiday, or a weekend day that is a make-up working day."""
        sched = self.years.get(day.year)
        if day.weekday() < 5:
            return sched is None or day not in sched.holidays
        return sched is not None and day in sched.workdays

    def _next_workday(self, day: date) -> date:
        day += timedelta(days=1)
        while not self.is_workday(day):
            day += timedelta(days=1)
        return day

    # -- instants ---------------------------------------------------------------------------

    def _local(self, t: datetime) -> datetime:
        if t.tzinfo is None or t.utcoffset() is None:
            raise ValueError("datetimes given to the calendar must be timezone-aware")
        return t.astimezone(self.tz)

    def _periods(self, day: date) -> Iterator[tuple[datetime, datetime]]:
        tz = self.tz
        for start, end in self.working_hours:
            yield datetime.combine(day, start, tzinfo=tz), datetime.combine(day, end, tzinfo=tz)

    def _working_time_from(self, local: datetime) -> Iterator[tuple[datetime, datetime]]:
        """The working intervals from ``local`` on, in order: the first one clipped to start at
        ``local`` when it is inside it. Endless (every year has working days)."""
        day = local.date()
        if not self.is_workday(day):
            day = self._next_workday(day)
        while True:
            for start, end in self._periods(day):
                if end > local:
                    yield max(start, local), end
            day = self._next_workday(day)

    def is_working_time(self, t: datetime) -> bool:
        """Whether ``t`` falls in a working period of a working day."""
        local = self._local(t)
        return self.is_workday(local.date()) and any(s <= local < e for s, e in self._periods(local.date()))

    def next_working_instant(self, t: datetime) -> datetime:
        """``t`` when it is in working time, else the start of the next working period."""
        return next(self._working_time_from(self._local(t)))[0]

    def add_working_hours(self, start: datetime, seconds: float | timedelta) -> datetime:
        """The earliest instant by which ``seconds`` of working time have passed since ``start``."""
        remaining = seconds if isinstance(seconds, timedelta) else timedelta(seconds=seconds)
        if remaining < timedelta(0):
            raise ValueError("working time to add cannot be negative")
        local = self._local(start)
        if not remaining:
            return local
        for s, e in self._working_time_from(local):
            if remaining <= e - s:
                return s + remaining
            remaining -= e - s
        raise AssertionError("unreachable: working time never ends")  # pragma: no cover

    def add_working_days(self, start: datetime, n: int) -> datetime:
        """The n-th following working day at the local time of ``start`` (counted from the next
        working period's start when ``start`` is outside working time)."""
        if n < 0:
            raise ValueError("working days to add cannot be negative")
        begin = self.next_working_instant(start)
        day = begin.date()
        for _ in range(n):
            day = self._next_workday(day)
        return datetime.combine(day, begin.timetz())

    def working_seconds_between(self, a: datetime, b: datetime) -> float:
        """Seconds of working time from ``a`` to ``b`` (negative when ``b`` is before ``a``)."""
        a, b = self._local(a), self._local(b)
        if b < a:
            return -self.working_seconds_between(b, a)
        total = timedelta(0)
        for s, e in self._working_time_from(a):
            if s >= b:
                break
            total += min(e, b) - s
        return total.total_seconds()
