"""The simulator's main loop: stories at RATE commands/s, and the month-ends of the calendar.

The simulator keeps the services' clock (``services.kit.clock``): under ``make run`` that is a
stepped calendar shared with every worker (``SIM_CLOCK_START``, ``SIM_CLOCK_REAL_START``,
``SIM_MONTH_SECONDS``; one simulated month every two minutes by default), so case deadlines,
order windows, points and assessment periods all live on the simulated dates; run against a
system on real time, it keeps real time too.

Each street blows at least one whistle a month (吹哨报到): early in every month the simulator
plays a whistle story for each street, so every month has departments reporting, late or
missing.

A month's Party life (党建: organisational life, commitments, a member's move, projects, the
councils' joint meetings at a quarter's end) is played once a month is a fifth through, the first
month included. Month-end (月末结算) follows that calendar: when a month is 70 % through, the simulator records
every 双向评议 of the month; when it has ended, the assessment service's timer closes it (and
the quarter and year at their ends) and scores every fact of the month; a moment later the
simulator sends ``assessment.period.close.v1`` for the same periods, as an assessment office
does after late reports come in — a re-close that publishes only what changed.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from typing import Mapping

from services.kit import clock as kit_clock
from services.kit.clock import Clock, SteppedCalendar, month_label
from services.kit.kafkasec import KafkaSecurity

from .client import CommandClient
from .district import District
from .flows import Pace, Stories
from .identities import TokenMinter

log = logging.getLogger("simulator")

REVIEWS_AT = 0.7  # share of a month after which its two-way reviews are recorded
PARTY_AT = 0.2  # share of a month after which its Party life is recorded (the first month too, after the setup)
WHISTLES_AT = 0.05  # share of a month after which each street blows its whistle of the month


def periods_ending(month: str) -> list[str]:
    """The periods that end with the month ``YYYY-MM``: the month, and its quarter/year at their ends."""
    year, m = int(month[:4]), int(month[5:7])
    out = [month]
    if m % 3 == 0:
        out.append(f"{year:04d}-Q{m // 3}")
    if m == 12:
        out.append(f"{year:04d}")
    return out


def months_between(first: str, last: str) -> list[str]:
    """``YYYY-MM`` labels from ``first`` up to, not including, ``last``."""
    out: list[str] = []
    y, m = int(first[:4]), int(first[5:7])
    while f"{y:04d}-{m:02d}" < last:
        out.append(f"{y:04d}-{m:02d}")
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return out


class Simulator:
    """Plays the district against a running system until stopped (or ``seconds`` pass)."""

    def __init__(self, district: District, bootstrap: str, *, rate: float = 5.0, seed: int = 7,
                 clock: Clock | None = None, max_active: int | None = None,
                 expire_wait: float = 90.0, follow_timeout: float = 20.0, stats_every: float = 10.0,
                 tokens: Mapping[str, str] | None = None, minter: TokenMinter | None = None,
                 points_url: str | None = None, security: KafkaSecurity | None = None):
        self.district = district
        self.bootstrap = bootstrap
        self.rate = rate
        self.seed = seed
        self.clock = clock or kit_clock.current()
        # stories under way at once: few enough that a story's commands follow each other closely
        # (a command waits about max_active / rate seconds for the pace), so a case's steps fall
        # within the simulated month they belong to; stories waiting for the calendar or a timer
        # do not count (Stories.idle)
        self.max_active = max_active or max(6, int(rate * 0.6))
        self.expire_wait = expire_wait
        self.follow_timeout = follow_timeout
        self.stats_every = stats_every
        # each command goes with its sender's own token (minter), else the demo token of its role
        # (tokens: role -> JWT); see services.simulator.identities
        self.client = CommandClient(bootstrap, source="/simulator/district-app", now=self.clock.now, tokens=tokens,
                                    minter=minter, points_url=points_url, security=security)
        self.stories: Stories | None = None
        self._stop = asyncio.Event()

    def stop(self) -> None:
        self._stop.set()

    async def run(self, seconds: float | None = None) -> dict:
        await self.client.start()
        try:
            self.stories = Stories(self.district, self.client, pace=Pace(self.rate), seed=self.seed,
                                   expire_wait=self.expire_wait, follow_timeout=self.follow_timeout,
                                   now=self.clock.now, late_wait=self._late_wait())
            log.info("district %s: %s", self.district.division, self.district.summary())
            log.info("time: %s; now %s", self.clock.describe(), self.clock.now().isoformat())
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
            # stories waiting for the next month (a department late with a step) do not count as busy
            while len(active) + len(self.stories.tasks) - self.stories.idle < self.max_active:
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
        """Month-end duties on the clock's calendar (see the module doc). They run beside the
        loop, so a slow close never makes the calendar miss the next month's reviews."""
        assert self.stories is not None
        rng = random.Random(f"{self.seed}:calendar")
        reviewed: set[str] = set()
        whistled: set[str] = set()
        partied: set[str] = set()
        current = month_label(self.clock.now())
        settle = min(5.0, 0.2 * self.clock.month_seconds) if isinstance(self.clock, SteppedCalendar) else 0.0
        while True:
            await asyncio.sleep(0.25)
            month = month_label(self.clock.now())
            if month != current:
                for ended in months_between(current, month):
                    for period in periods_ending(ended):
                        self.stories.spawn(self._close(period, settle))
                current = month
            if month not in whistled and self.clock.month_progress() >= WHISTLES_AT:
                whistled.add(month)
                for street in self.district.streets:
                    self.stories.spawn(self.stories.story_whistle(random.Random(rng.getrandbits(64)), street.street_id))
            if month not in partied and self.clock.month_progress() >= PARTY_AT:  # 党建 of the month
                partied.add(month)
                self.stories.spawn(self.stories.party_month(random.Random(rng.getrandbits(64))))
            if month not in reviewed and self.clock.month_progress() >= REVIEWS_AT:
                reviewed.add(month)
                self.stories.spawn(self._reviews(month, random.Random(rng.getrandbits(64))))

    def _late_wait(self) -> float:
        """How long a story waits for the next month: a month and a bit on a stepped calendar; on
        real time a few minutes (a step left for later is then not done within the run)."""
        if isinstance(self.clock, SteppedCalendar):
            return 1.5 * self.clock.month_seconds + 10.0
        return 180.0

    async def _reviews(self, month: str, rng: random.Random) -> None:
        n = await self.stories.month_end_reviews(month, rng)
        log.info("month-end reviews of %s: %d recorded (simulated now %s)", month, n,
                 self.clock.now().isoformat(timespec="seconds"))

    async def _close(self, period: str, settle: float) -> None:
        await asyncio.sleep(settle)
        out = await self.stories.close_period(period)
        log.info("month-end: closed %s -> %s", period,
                 out.reason if out.rejected else "timed out" if out.timed_out else f"{len(out.events)} events")

    async def _stats_loop(self) -> None:
        while True:
            await asyncio.sleep(self.stats_every)
            log.info("stats %s", self.stories.stats.as_dict())
