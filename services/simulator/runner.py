"""The simulator's main loop: stories at RATE commands/s, month-ends on a compressed calendar.

Time compression (``SIM_MONTH_SECONDS``, default 120): the simulator keeps a simulated calendar
in which one month passes every ``SIM_MONTH_SECONDS`` real seconds. It starts at the first
day of the month ``SIM_MONTHS_BACK`` (default 6) months before the real one; each time a
simulated month ends the simulator does the month-end (月末结算): every 双向评议 of that month,
then ``assessment.period.close.v1`` for it (and for the quarter / year when those end too).

The services stamp their facts with the real clock, and assessment only closes a period that
has really ended, so the simulated months are real past months: their scorecards come from
the two-way reviews the simulator records for them, while cases and orders count in the real
current month (closed by the simulator only once it has really ended). When the simulated
calendar reaches the real month, it starts again from the beginning (a re-close publishes the
same scorecard ids, with the newer reviews).
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from .client import CommandClient
from .district import District
from .flows import Pace, Stories

log = logging.getLogger("simulator")

SHANGHAI = timezone(timedelta(hours=8), "Asia/Shanghai")


def month_start(dt: datetime, back: int = 0) -> datetime:
    """First instant (Asia/Shanghai) of the month ``back`` months before ``dt``'s month."""
    local = dt.astimezone(SHANGHAI)
    y, m = local.year, local.month - back
    while m < 1:
        y, m = y - 1, m + 12
    return datetime(y, m, 1, tzinfo=SHANGHAI)


def next_month(dt: datetime) -> datetime:
    y, m = (dt.year + 1, 1) if dt.month == 12 else (dt.year, dt.month + 1)
    return datetime(y, m, 1, tzinfo=SHANGHAI)


def periods_ending(month: datetime) -> list[str]:
    """The periods that end with the month starting at ``month``: the month, and its quarter/year at their ends."""
    out = [f"{month.year:04d}-{month.month:02d}"]
    if month.month % 3 == 0:
        out.append(f"{month.year:04d}-Q{month.month // 3}")
    if month.month == 12:
        out.append(f"{month.year:04d}")
    return out


@dataclass
class SimClock:
    """A compressed calendar: one simulated month per ``month_seconds`` real seconds."""

    start: datetime
    month_seconds: float
    real_start: float = 0.0

    def __post_init__(self) -> None:
        self.real_start = self.real_start or time.monotonic()
        self.month = self.start  # the simulated month in progress

    def elapsed_months(self) -> float:
        return (time.monotonic() - self.real_start) / self.month_seconds

    def now(self) -> datetime:
        """Simulated now: within the current month, proportionally (months are not all 30 days)."""
        frac = self.elapsed_months() % 1.0
        return self.month + (next_month(self.month) - self.month) * frac

    def due_month_ends(self, done: int) -> int:
        """How many simulated months have ended in total."""
        return int(self.elapsed_months())


class Simulator:
    """Plays the district against a running system until stopped (or ``seconds`` pass)."""

    def __init__(self, district: District, bootstrap: str, *, rate: float = 5.0, seed: int = 7,
                 month_seconds: float = 120.0, months_back: int = 6, max_active: int | None = None,
                 expire_wait: float = 90.0, follow_timeout: float = 20.0, stats_every: float = 10.0):
        self.district = district
        self.bootstrap = bootstrap
        self.rate = rate
        self.seed = seed
        self.month_seconds = month_seconds
        self.months_back = months_back
        self.max_active = max_active or max(8, int(rate * 6))
        self.expire_wait = expire_wait
        self.follow_timeout = follow_timeout
        self.stats_every = stats_every
        self.client = CommandClient(bootstrap, source="/simulator/district-app")
        self.stories: Stories | None = None
        self._stop = asyncio.Event()

    def stop(self) -> None:
        self._stop.set()

    async def run(self, seconds: float | None = None) -> dict:
        await self.client.start()
        try:
            real_now = datetime.now(timezone.utc)
            self.clock = SimClock(month_start(real_now, self.months_back), self.month_seconds)
            self.stories = Stories(self.district, self.client, pace=Pace(self.rate), seed=self.seed,
                                   expire_wait=self.expire_wait, follow_timeout=self.follow_timeout,
                                   sim_now=self.clock.now)
            log.info("district %s: %s", self.district.division, self.district.summary())
            setup = await self.stories.setup()
            log.info("setup done: %s", setup)
            tasks = [asyncio.ensure_future(self._stories_loop()), asyncio.ensure_future(self._calendar_loop()),
                     asyncio.ensure_future(self._stats_loop())]
            try:
                if seconds:
                    with contextlib.suppress(asyncio.TimeoutError):
                        await asyncio.wait_for(self._stop.wait(), seconds)
                else:
                    await self._stop.wait()
            finally:
                for t in [*tasks, *self.stories.tasks]:
                    t.cancel()
                for t in [*tasks, *list(self.stories.tasks)]:
                    with contextlib.suppress(BaseException):
                        await t
            return self.stories.stats.as_dict()
        finally:
            await self.client.stop()

    async def _stories_loop(self) -> None:
        assert self.stories is not None
        active: set[asyncio.Task] = set()
        while True:
            while len(active) + len(self.stories.tasks) < self.max_active:
                t = asyncio.ensure_future(self._one())
                active.add(t)
                t.add_done_callback(active.discard)
            await asyncio.sleep(0.05)

    async def _one(self) -> None:
        try:
            await self.stories.run_one()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("a story failed")
            await asyncio.sleep(1.0)

    async def _calendar_loop(self) -> None:
        assert self.stories is not None
        done = 0
        rng = random.Random(f"{self.seed}:calendar")
        real_month = month_start(datetime.now(timezone.utc))
        while True:
            await asyncio.sleep(0.5)
            while done < self.clock.due_month_ends(done):
                ended = self.clock.month
                self.clock.month = next_month(ended)
                if self.clock.month >= real_month:  # caught up with the real calendar: start again
                    self.clock.month = self.clock.start
                done += 1
                round_ = (done - 1) // max(1, self.months_back)  # how often the calendar went round
                for period in periods_ending(ended):
                    out = await self.stories.close_period(period, rng, round_)
                    log.info("month-end: closed %s -> %s", period,
                             out.reason if out.rejected else "timed out" if out.timed_out
                             else f"{len(out.events)} events")

    async def _stats_loop(self) -> None:
        while True:
            await asyncio.sleep(self.stats_every)
            log.info("stats %s", self.stories.stats.as_dict())
