"""Calendar of the moral bank: days and months are counted in Asia/Shanghai (UTC+8).

Pure: every function takes the time it works on; nothing reads the clock.
"""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone, tzinfo

try:  # the IANA zone when tzdata is present; China has had no DST since 1991, so +08:00 is exact
    from zoneinfo import ZoneInfo

    SHANGHAI: tzinfo = ZoneInfo("Asia/Shanghai")
except Exception:  # pragma: no cover - systems without tzdata
    SHANGHAI = timezone(timedelta(hours=8), "Asia/Shanghai")


def local(at: datetime) -> datetime:
    """``at`` in Asia/Shanghai. ``at`` must be timezone-aware."""
    if at.tzinfo is None:
        raise ValueError("times must be timezone-aware")
    return at.astimezone(SHANGHAI)


def day_of(at: datetime) -> str:
    """The Shanghai calendar day of ``at``: ``2026-11-22``."""
    return local(at).date().isoformat()


def month_of(at: datetime) -> str:
    """The Shanghai calendar month of ``at``: ``2026-11``."""
    t = local(at)
    return f"{t.year:04d}-{t.month:02d}"


def year_of(at: datetime) -> str:
    """The Shanghai calendar year of ``at``: ``2026``."""
    return f"{local(at).year:04d}"


def add_years(at: datetime, years: int) -> datetime:
    """The same Shanghai wall-clock time ``years`` later (29 February → 28 February)."""
    t = local(at)
    try:
        return t.replace(year=t.year + years)
    except ValueError:
        return t.replace(year=t.year + years, day=28)


def date_of(day: str) -> date:
    return date.fromisoformat(day)
