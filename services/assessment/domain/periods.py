"""Assessment periods (考核周期): a month ``2026-11``, a quarter ``2026-Q4``, a year ``2026``.

Periods are calendar periods in Asia/Shanghai time. China has kept UTC+08:00 without
daylight saving since 1991, so the zone is the fixed offset +08:00 (no tz database needed,
identical results on every machine). A period runs from its ``start`` (inclusive) to its
``end`` (exclusive): November 2026 is [2026-11-01T00:00+08:00, 2026-12-01T00:00+08:00).
"""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Literal

from services.kit.errors import Rejected

SHANGHAI = timezone(timedelta(hours=8), "Asia/Shanghai")

PeriodKind = Literal["month", "quarter", "year"]

_RE = re.compile(r"^(?P<y>[0-9]{4})(?:-(?:(?P<m>0[1-9]|1[0-2])|Q(?P<q>[1-4])))?$")  # ASCII digits only


class InvalidPeriod(Rejected):
    """A period string that is not ``YYYY``, ``YYYY-MM`` or ``YYYY-Qn``."""

    def __init__(self, text: str, field: str | None = "period"):
        super().__init__("invalid_period", f"{text!r} is not a period (2026-11, 2026-Q4 or 2026)", field)


@dataclass(frozen=True, order=True)
class Period:
    """One assessment period. Exactly one of: year only; year + quarter; year + month."""

    year: int
    quarter: int | None = None
    month: int | None = None

    @classmethod
    def parse(cls, text: str) -> "Period":
        m = _RE.match(text or "")
        if not m:
            raise InvalidPeriod(text)
        y = int(m["y"])
        if m["m"]:
            return cls(y, None, int(m["m"]))
        if m["q"]:
            return cls(y, int(m["q"]), None)
        return cls(y)

    @property
    def kind(self) -> PeriodKind:
        if self.month is not None:
            return "month"
        if self.quarter is not None:
            return "quarter"
        return "year"

    def __str__(self) -> str:
        if self.month is not None:
            return f"{self.year:04d}-{self.month:02d}"
        if self.quarter is not None:
            return f"{self.year:04d}-Q{self.quarter}"
        return f"{self.year:04d}"

    @property
    def start(self) -> datetime:
        """First instant of the period (inclusive), Asia/Shanghai."""
        if self.month is not None:
            return datetime(self.year, self.month, 1, tzinfo=SHANGHAI)
        if self.quarter is not None:
            return datetime(self.year, 3 * self.quarter - 2, 1, tzinfo=SHANGHAI)
        return datetime(self.year, 1, 1, tzinfo=SHANGHAI)

    @property
    def end(self) -> datetime:
        """First instant after the period (exclusive), Asia/Shanghai."""
        if self.month is not None:
            y, mo = (self.year + 1, 1) if self.month == 12 else (self.year, self.month + 1)
            return datetime(y, mo, 1, tzinfo=SHANGHAI)
        if self.quarter is not None:
            return datetime(self.year + 1, 1, 1, tzinfo=SHANGHAI) if self.quarter == 4 else datetime(
                self.year, 3 * self.quarter + 1, 1, tzinfo=SHANGHAI
            )
        return datetime(self.year + 1, 1, 1, tzinfo=SHANGHAI)

    def contains(self, ts: datetime) -> bool:
        return self.start <= _aware(ts) < self.end

    def enclosing(self) -> tuple["Period", ...]:
        """This period and the periods that contain it: a month, its quarter, its year."""
        if self.month is not None:
            return (self, Period(self.year, (self.month - 1) // 3 + 1), Period(self.year))
        if self.quarter is not None:
            return (self, Period(self.year))
        return (self,)

    def months(self) -> tuple["Period", ...]:
        """The months this period is made of."""
        if self.month is not None:
            return (self,)
        first = 1 if self.quarter is None else 3 * self.quarter - 2
        last = 12 if self.quarter is None else first + 2
        return tuple(Period(self.year, None, m) for m in range(first, last + 1))

    def has_ended(self, now: datetime) -> bool:
        return _aware(now) >= self.end


def _aware(ts: datetime) -> datetime:
    if ts.tzinfo is None or ts.utcoffset() is None:
        raise ValueError("timestamps must carry an offset (RFC 3339)")
    return ts


def parse_period(text: str) -> Period:
    """``"2026-Q4"`` → ``Period(2026, 4, None)``; raises :class:`InvalidPeriod`."""
    return Period.parse(text)


def periods_of(ts: datetime) -> tuple[str, str, str]:
    """The month, quarter and year (in that order) an instant falls in, in Asia/Shanghai.

    ``2026-11-30T17:00:00Z`` is 2026-12-01 01:00 in Shanghai → ``("2026-12", "2026-Q4", "2026")``.
    """
    # Shanghai is 8 whole hours ahead of UTC: every instant of an hour of UTC falls on one local
    # date (the hour counted exactly, in whole microseconds, where a float timestamp rounds)
    return _periods_of_hour((_aware(ts) - _EPOCH) // _HOUR)


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_HOUR = timedelta(hours=1)


@functools.lru_cache(maxsize=1 << 16)
def _periods_of_hour(hour: int) -> tuple[str, str, str]:
    """:func:`periods_of` an hour of UTC (hours since 1970), kept: a fold asks it of every event
    it counts, and the events of a month fall in a few hundred hours."""
    local = datetime.fromtimestamp(hour * 3600, SHANGHAI)
    return (f"{local.year:04d}-{local.month:02d}", f"{local.year:04d}-Q{(local.month - 1) // 3 + 1}", f"{local.year:04d}")


def week_of(ts: datetime) -> str:
    """The Monday (ISO date, Asia/Shanghai) of the week an instant falls in."""
    local = _aware(ts).astimezone(SHANGHAI).date()
    return (local - timedelta(days=local.weekday())).isoformat()


def mondays_in(period: str) -> tuple[str, ...]:
    """The Mondays (ISO dates, Asia/Shanghai) that fall in a period: the weeks the period counts
    (a week belongs to the period of its Monday)."""
    p = Period.parse(period)
    day = p.start.astimezone(SHANGHAI).date()
    day += timedelta(days=(7 - day.weekday()) % 7)
    end = p.end.astimezone(SHANGHAI).date()
    out = []
    while day < end:
        out.append(day.isoformat())
        day += timedelta(days=7)
    return tuple(out)


def period_start(period: str) -> datetime:
    return Period.parse(period).start


def period_end(period: str) -> datetime:
    """The first instant after the period (when the period-end timer fires)."""
    return Period.parse(period).end


def enclosing_periods(period: str) -> tuple[str, ...]:
    """``"2026-11"`` → ``("2026-11", "2026-Q4", "2026")``."""
    return tuple(str(p) for p in Period.parse(period).enclosing())


def periods_ended_between(after: datetime, upto: datetime) -> list[str]:
    """Periods whose end lies in (after, upto], oldest first, months before quarters before years.

    What a period-end timer should close when it wakes at ``upto`` having last run at ``after``.
    """
    out: list[tuple[datetime, int, str]] = []
    local = _aware(after).astimezone(SHANGHAI)
    p = Period(local.year, None, local.month)
    while p.end <= upto:
        if p.end > after:
            for rank, q in enumerate(p.enclosing()):
                if q.end == p.end:
                    out.append((q.end, rank, str(q)))
        p = Period(p.year + (p.month == 12), None, 1 if p.month == 12 else p.month + 1)  # type: ignore[operator]
    return [s for _, _, s in sorted(out)]
