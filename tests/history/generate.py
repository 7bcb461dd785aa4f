"""A district's years of history, built directly in PostgreSQL:
``python -m tests.history.generate --years 5 --scale 1.0`` (``make history YEARS=5 SCALE=1.0``).

Every service's migrations run into its own schema with the kit's runner, exactly as the
services run them at start-up. Then the projections are filled, in chunks, with COPY:

- grid: cases driven through the grid domain itself (``decide`` / ``evolve`` with the worker's
  deadline policy on its working-time calendar, the grid and department registers):
  ``case_state``, ``cases`` and ``case_history`` are what the worker would have written for the
  same commands. Most cases are reported,
  registered, dispatched, handled, verified and closed (some reworked, some dismissed, the
  newest still open at every stage), the overdue timer's events included (its rounds at every
  multiple of its interval, each reporting what a round then would); each step names its
  sender where the worker's policy fills that from the token (registrar, dispatcher, the
  assignee for the department, the verifier).
- orders: members register (双报到) and claim posts; each registered resident-need case becomes
  its order and residents place their own, and every order goes through the orders domain in
  time order (dispatched automatically against the members' open orders, accepted, declined or
  expired and dispatched again, completed, rated, evaluated, some cancelled; the newest still
  open): ``orders``, ``order_history``, ``members``, ``posts`` (:mod:`tests.history.orders`).
- points: each registered report of a resident and each passed order earns an award by the
  earning rules (``award_plan`` / ``decide_award``, caps included); residents redeem points at
  merchants (``decide_transfer``, with the expiry of lots past their validity before a spend) and
  submit good deeds that the community reviews (``decide_submit_deed`` / ``decide_review_deed``,
  the approved ones credited); all decided in the order they happen; the expiry timer's postings
  up to the end of the history. ``deeds`` hold the deed states. ``accounts`` hold the evolved
  account states, ``postings`` and ``earnings`` the postings in time order; the ledger's own
  triggers keep the balances and the running totals (one statement per chunk), so the
  incremental and full ledger checks hold. ``order_facts`` and ``grid_reports`` hold what the
  worker keeps of the orders and the cases until they decide an award.
- party: its commands, the orders events it consumes and its timers, handled in time order by the
  party worker's own handler on the kit's path, one transaction a batch
  (:mod:`tests.history.party`): the tree of organisations, members and their transfers,
  organisational life, the regional councils, units, projects and commitments.
- assessment: the events above that it consumes enter ``event_log`` and are folded into
  ``facts`` and ``refs`` as the worker records and folds a batch (in time order, one transaction
  a batch), and every period is closed as the period-close timer closes it, at its end (plus the
  service's close delay), on the counters of the events handled by then: scorecards, alerts,
  ``period_closes``, and their events with the close's own (``assessment.period.closed.v1``);
  the timer's mark where its last round looked. A fact of a period that comes after its close
  (a month's meeting found missed by the party's timer, a project of the month completed, after
  the month) stays out of that close, as it would live.

Every event carries the id, time, cause and correlation its service would have given it; the rows
that name events name those ids. With ``--topics`` (``TOPICS=1``; the default up to ``SCALE``
0.01) they are written as the events topics: ``var/history/topics.tsv.gz`` in time order, and
the events topics of ``KAFKA_BOOTSTRAP_SERVERS`` when it is set (:mod:`tests.history.topics`),
with the grid's, the orders', the points' and the party's commands on their intake topics, as
their senders sent them, each with its sender's token (signed by an identity provider of the
history's own, kept beside the dump: :func:`identity_of`); ``make bench-history`` rebuilds every
service from its input topics. Nothing is written to an outbox, so a worker started on the
result publishes nothing from the past.

``SCALE`` 1.0 is a large district over ``YEARS`` 5: about 5 M cases, 500,000 residents who may
report, 2,000 merchants, 3,000 members, about 1 M orders (half from the cases); the postings
follow from the registered reports, the passed orders and the deeds.

What is held in memory is the services' states (orders, accounts with their lots, deeds); the
events of every service, the postings and the earnings are spilled to ``TMPDIR`` in time order as
they are made (:class:`~tests.history.topics.Spill`) and read back merged. Before it starts, the
generator checks that the database's and ``TMPDIR``'s file systems have room for what it will
write (:func:`check_disk`).
The database is ``DATABASE_URL``, else database ``history`` of an embedded PostgreSQL under
``var/history`` (replaced each run, kept for ``make bench-history``). Deterministic for a given ``--seed``.
"""
from __future__ import annotations

import argparse
import asyncio
import heapq
import itertools
import os
import random
import shutil
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, time as dt_time, timedelta, timezone
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence
from zoneinfo import ZoneInfo

import asyncpg
import orjson
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from schemas.grid import (
    AcceptCase, CaseFeedback, Category, ContactReporter, ControlHazard, DismissCase, DispatchCase, Grade, HandleCase, RegisterCase, ReportCase, VerifyCase,
)
from schemas import envelope
from schemas.points import (
    AccountKind, AccountOpened, OpenAccount, Redeem, RefusalReason, TransferPosted, TransferRefused,
)
from services.grid.domain import CaseState, Context, decide, evolve_all
from services.grid.domain import next_check_at as case_next_check_at
from services.grid.domain.decide import check_overdue
from services.grid.projection.cases import _CASE_COLUMNS, case_row
from services.grid.projection.rows import _history
from services.grid.registry import DepartmentRegister, GridRegister
from services.grid.app.handler import load_calendar, load_policy
from services.grid.app.settings import GridSettings
from services.kit.db import create_pool
from services.kit.migrations import KIT_MIGRATIONS, migrate
from services.kit.rebuild import few_collections
from services.points.domain.accounts import Account, account_id_for, decide_open_account, evolve_account
from services.points.domain.clock import day_of, month_of, year_of
from services.points.domain.rankings import earned_from
from services.points.domain.rules import SourceKind
from schemas.points import ReviewDeed, SubmitDeed
from schemas.grid import CaseDismissed, CaseRegistered, CaseReported
from schemas.pii import minimised
from services.points.domain.deeds import (
    Deed, decide_credit_deed, decide_review_deed, decide_submit_deed, evolve_deed,
)
from services.points.domain.transfers import (
    Earning, TransferRefusal, award_plan, decide_award, decide_expire, decide_transfer,
)
from services.points.app.settings import PointsSettings
from services.points.domain import EarningRules
from tests.history.orders import OrdersWorld, earning_key
from tests.history.party import PartyWorld
from tests.history.topics import (
    Pub, Sender, Spill, Tokens, community_officer, merged, next_round, produce, read_dump, write_dump,
)
from tests.support.identity import TestIdentity

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ("grid", "orders", "points", "assessment", "party")
SH = ZoneInfo("Asia/Shanghai")
CASES_AT_FULL_SCALE = 5_000_000
RESIDENTS_AT_FULL_SCALE = 500_000
MERCHANTS_AT_FULL_SCALE = 2_000
GRID_SOURCE = "/services/grid"
POINTS_SOURCE = "/services/points"
CHUNK = 20_000
FOLD_BATCH = 5_000
"""Events of the assessment log recorded and folded per transaction (a worker's batch is smaller:
the result is the same whatever the batches)."""


# -- the plan ---------------------------------------------------------------------------------


@dataclass
class Plan:
    years: int
    scale: float
    seed: int = 19
    end: datetime = field(default_factory=lambda: datetime.now(SH).replace(minute=0, second=0, microsecond=0))
    """The end of the history (default: this hour): the periods that ended before it are closed,
    the current month is open (what a provisional scorecard reads)."""

    @property
    def start(self) -> datetime:
        return self.end.replace(year=self.end.year - self.years)

    @property
    def cases(self) -> int:
        return max(20, round(CASES_AT_FULL_SCALE * self.scale))

    @property
    def residents(self) -> int:
        return max(5, round(RESIDENTS_AT_FULL_SCALE * self.scale))

    @property
    def merchants(self) -> int:
        return max(2, round(MERCHANTS_AT_FULL_SCALE * self.scale))


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _dumps(v: Any) -> str:
    return orjson.dumps(v).decode()


# -- grid -------------------------------------------------------------------------------------


@dataclass
class CaseRun:
    """One case's life: its final state, its case_state version (one save per command), and
    its events in order, each with its id, the time the worker handled what caused it (the
    envelope's time) and the id of the command that caused it (None: the overdue timer); and
    the commands, each with its id, when it was sent and who sent it."""

    state: CaseState
    saves: int
    events: list[tuple[Any, str, datetime, str | None]]
    commands: list[tuple[Any, str, datetime, Sender]] = field(default_factory=list)
    changed_at: datetime | None = None  # when the last message that changed it was handled


class GridWorld:
    """Drives cases through the grid domain as the worker would (one command per message)."""

    def __init__(self, plan: Plan, rng: random.Random):
        self.plan, self.rng = plan, rng
        self.grids = sorted(GridRegister.load().grid_ids)
        self.departments = DepartmentRegister.load()
        self.categories = list(Category)
        settings = GridSettings()  # the worker's deadlines, on its working-time calendar
        self.deadlines = load_policy(settings.policy_path, load_calendar(settings.calendar_path))
        self.tick = settings.overdue_interval_seconds  # the overdue timer's rounds: every tick since the epoch

    def rounds_until(self, state: CaseState | None, until: datetime, *, inclusive: bool = False):
        """The overdue timer's rounds over a case before ``until`` (or at it): each time a round
        has something to say, the round's time and its events. A round runs at every multiple of
        the timer's interval, over every case whose next check has come, so a missed deadline is
        reported by the first round after it (the worker's timer: a rebuild runs each round that
        published again, at its time, and it finds the same)."""
        while (at := case_next_check_at(state)) is not None:
            t = next_round(at, self.tick)
            if t > until or (t == until and not inclusive):
                return
            events = check_overdue(state, t, self.deadlines)
            if not events:
                return
            yield t, events
            state = evolve_all({state.case_id: state}, events)[state.case_id]

    def _ctx(self, now: datetime, **kw) -> Context:
        return Context(now=now, policy=self.deadlines, grid_known=True, department_known=True, **kw)

    def run_case(self, i: int, reported_at: datetime) -> CaseRun:
        rng, end = self.rng, self.plan.end
        case_id = f"case-{i:08d}"
        category = self.categories[rng.randrange(len(self.categories))]
        grade = rng.choice((Grade.GENERAL, Grade.GENERAL, Grade.MAJOR, Grade.SEVERE)) if category.is_hazard else None
        grid = self.grids[rng.randrange(len(self.grids))]
        resident = rng.random() < 0.6
        reporter = ({"kind": "resident", "id": f"res-{rng.randrange(self.plan.residents):07d}"} if resident
                    else {"kind": "grid_worker", "id": f"gw-{grid[-6:]}-{rng.randrange(3)}"})
        by_reporter = Sender(reporter["id"], ("resident",)) if resident else _grid_worker(reporter["id"], grid)
        run = CaseRun(state=None, saves=0, events=[])  # type: ignore[arg-type]
        state: CaseState | None = None
        now = reported_at.astimezone(timezone.utc)  # the worker's clock is UTC, and so are the times it writes

        def apply(events, at: datetime, cause: str | None) -> None:
            nonlocal state
            for ev in events:
                run.events.append((ev, _uuid(rng), at, cause))
            if events:
                state = evolve_all({case_id: state}, events)[case_id]
                run.saves += 1
                run.changed_at = at

        def overdue(until: datetime, inclusive: bool = False) -> None:
            for t, events in self.rounds_until(state, until, inclusive=inclusive):
                apply(events, t, None)

        def step(cmd, by: Sender, **ctx) -> None:
            if now > end:
                return
            overdue(now)
            cid = _uuid(rng)
            run.commands.append((cmd, cid, now, by))
            apply(decide(state, cmd, self._ctx(now, **ctx)), now, cid)

        def later(lo_minutes: float, hi_minutes: float) -> bool:
            nonlocal now
            now = now + timedelta(minutes=rng.uniform(lo_minutes, hi_minutes))
            return now <= end

        step(ReportCase.model_validate({
            "case_id": case_id, "grid_id": grid, "category": category.value, "grade": grade.value if grade else None,
            "description": "网格巡查发现的问题", "location": {"lat": 39.92 + rng.uniform(-0.02, 0.02),
                                                       "lon": 116.44 + rng.uniform(-0.02, 0.02), "address": "朝阳区"},
            "reporter": reporter}), by_reporter)
        assert state is not None
        # who sends each step, as the worker's policy fills the actor fields from their tokens: an
        # officer of the community registers and dispatches, the assignee acts for the department,
        # a grid worker of the grid (never the handler) verifies
        officer, verifier = f"co-{state.community_id}", f"gw-{grid[-6:]}-{i % 3}"
        by_officer = Sender(officer, ("community_officer",), (("communities", (state.community_id,)),))
        if later(10, 240):
            if rng.random() < 0.05:
                step(DismissCase(case_id=case_id, reason="不属于网格事项", registrar_id=officer), by_officer)
            else:
                proposed = self.departments.responsible(state.category, state.grade, state.street_id)
                step(RegisterCase(case_id=case_id, department=proposed, registrar_id=officer), by_officer,
                     proposed_department=proposed)
                department = state.department or proposed
                if later(5, 120):
                    staff = f"staff-{rng.randrange(200):03d}"  # the department's officer who takes it
                    by_staff = Sender(staff, ("department_officer",), (("departments", (department,)),))
                    step(DispatchCase(case_id=case_id, department=department, assignee_id=staff,
                                      dispatcher_id=officer), by_officer)
                    if later(5, 60 * 6):
                        step(AcceptCase(case_id=case_id, accepted_by=staff), by_staff)
                    if resident and later(10, 60 * 12):
                        step(ContactReporter(case_id=case_id, channel="phone", contacted_by=staff), by_staff)
                    if state.is_severe_hazard and later(10, 60 * 4):
                        step(ControlHazard(case_id=case_id, measures="已设置警戒", controlled_by=staff), by_staff)
                    reworks = 1 if rng.random() < 0.08 else 0
                    for attempt in range(reworks + 1):
                        if not later(60, 60 * 24 * (3 if rng.random() < 0.9 else 12)):
                            break
                        step(HandleCase(case_id=case_id, result="已处置", handled_by=staff), by_staff)
                        if not later(30, 60 * 20):
                            break
                        step(VerifyCase(case_id=case_id, passed=attempt == reworks, verifier_id=verifier),
                             _grid_worker(verifier, grid))
                    if state.status.value == "closed" and resident and rng.random() < 0.5 and later(60, 60 * 48):
                        step(CaseFeedback(case_id=case_id, satisfaction=rng.choice(
                            ("satisfied", "satisfied", "basically_satisfied", "unsatisfied")),
                            reporter_id=reporter["id"]), Sender(reporter["id"], ("resident",)))
        overdue(end, inclusive=True)  # the timer has run up to the end of the history
        run.state = state
        return run


def _grid_worker(sub: str, grid: str) -> Sender:
    return Sender(sub, ("grid_worker",), (("grids", (grid,)),))


# -- points -----------------------------------------------------------------------------------


POINTS_OPERATOR = Sender("points-operator-1", ("points_operator",))


class Ledger:
    """The ledger the points worker would hold: account states and the postings, in order, and
    every event it published (:class:`Pub`: openings, postings, refusals, deeds), with the
    commands it handled as their senders sent them on the intake topic: a points operator opens
    the merchants' accounts, a merchant redeems with the resident's consent code (a till that
    finds the balance too low sends nothing), a resident submits a deed and an officer of the
    deed's community reviews it."""

    def __init__(self, plan: Plan, rng: random.Random, seq: itertools.count):
        self.plan, self.rng, self.seq = plan, rng, seq
        self.rules = EarningRules.from_yaml((ROOT / "services/points/rules/earning.yaml").read_text(encoding="utf-8"))
        self.accounts: dict[str, Account] = {}
        self.opened: list[AccountOpened] = []
        self.postings = Spill(key=lambda p: (p.posted_at, p.transfer_id))  # on disk, in the ledger's order
        self.pubs = Spill()  # on disk, in time order
        self.intake = Spill()  # the commands, as their senders sent them
        self.merchants = [account_id_for(AccountKind.merchant, f"shop-{m:05d}") for m in range(plan.merchants)]
        self.deeds: dict[str, tuple[Deed, int]] = {}  # deed id -> (state, saves)
        self.deed_categories = self.rules.deed_categories()
        self.lots_due: list[tuple[datetime, str]] = []  # (when a lot credited since last asked expires, account)
        self.expiry_interval = PointsSettings.model_fields["expiry_interval_seconds"].default  # the timer's
        self.credit_interval = PointsSettings.model_fields["deed_credit_interval_seconds"].default
        self.refused: set[str] = set()  # deeds approved whose credit was refused over a cap

    def _apply(self, events: Iterable[Any], at: datetime, cause: str | None, story: str | None) -> None:
        """Keep the openings and postings, publish every event (as the worker's ``_post``)."""
        for e in events:
            if isinstance(e, AccountOpened):
                if e.account_id not in self.accounts:
                    self.accounts[e.account_id] = evolve_account(None, e)
                    self.opened.append(e)
            elif isinstance(e, TransferPosted):
                for side in (e.debit_account, e.credit_account):
                    self.accounts[side] = evolve_account(self.accounts[side], e)
                self.postings.add(e)
                if self.accounts[e.credit_account].kind is AccountKind.resident:  # a lot, which will expire
                    self.lots_due.append((self.rules.expires_at(e.posted_at), e.credit_account))
            self.pubs.add(Pub(at, next(self.seq), "points", _uuid(self.rng), e, cause, story))

    def release(self, at: datetime) -> None:
        """Nothing handled from now on happens before ``at``: its events are published at ``at``
        or later, and its postings are posted at most an expiry round's interval before (a lot
        expires at the end of its validity, which the timer's round that finds it follows)."""
        self.pubs.release(at)
        self.intake.release(at)
        self.postings.release(at - timedelta(seconds=self.expiry_interval))

    def _sent(self, at: datetime, cmd: Any, sender: Sender) -> str:
        """A command ``sender`` sent at ``at`` on the intake topic; its id (its events' cause)."""
        cid = _uuid(self.rng)
        self.intake.add(Pub(at, next(self.seq), "points", cid, cmd, sender=sender))
        return cid

    def open_merchants(self, at: datetime) -> None:
        at = at.astimezone(timezone.utc)  # the worker's clock
        for m in self.merchants:
            cmd = OpenAccount(holder_id=m.split(":", 1)[1], kind=AccountKind.merchant)
            events = decide_open_account(None, cmd, at=at)
            cid = self._sent(at, cmd, POINTS_OPERATOR)
            self._apply(events, at, cid, cid)

    def award(self, earning: Earning, story: str | None) -> None:
        """The award of a registered report or a passed order, handled when it happened (the
        event that earns is the cause)."""
        plan = award_plan(self.rules, earning)
        if plan is None:
            return
        resident = self.accounts.get(account_id_for(AccountKind.resident, earning.holder_id))
        issuer = self.accounts.get(account_id_for(AccountKind.issuer, earning.community_id))
        self._apply(decide_award(plan, resident=resident, issuer=issuer), earning.occurred_at,
                    earning.source_event_id, story)

    def maybe_redeem(self, account_id: str, at: datetime) -> None:
        account = self.accounts[account_id]
        if account.balance < 5 or self.rng.random() < 0.5:
            return
        amount = self.rng.randint(1, account.balance)
        merchant = self.merchants[self.rng.randrange(len(self.merchants))]
        cmd = Redeem(transfer_id=_uuid(self.rng), debit_account=account_id, credit_account=merchant, amount=amount,
                     consent_code=f"{self.rng.randrange(10 ** 6):06d}")
        try:
            events = decide_transfer(cmd, debit=account, credit=self.accounts[merchant], at=at, rules=self.rules)
        except TransferRefusal:  # expired points may leave too little: the till shows it, nothing is sent
            return
        cid = self._sent(at, cmd, Sender(merchant.split(":", 1)[1], ("merchant",)))
        self._apply(events, at, cid, cid)

    def submit_deed(self, account_id: str, deed_id: str, at: datetime) -> None:
        """A resident submits a good deed (道德日记) of a category the rules know."""
        account = self.accounts[account_id]
        category = self.deed_categories[self.rng.randrange(len(self.deed_categories))]
        cmd = SubmitDeed(deed_id=deed_id, account_id=account_id, category=category, description="帮助邻居")
        events = decide_submit_deed(None, cmd, account=account, rules=self.rules, at=at)
        self.deeds[deed_id] = (evolve_deed(None, events[0]), 1)
        cid = self._sent(at, cmd, Sender(account.holder_id, ("resident",)))
        self._apply(events, at, cid, cid)

    def review_deed(self, deed_id: str, at: datetime) -> bool:
        """The community reviews it: most are approved (and credited, caps permitting); whether
        the credit was refused over a cap (the deed credit timer credits it on a later day)."""
        deed, saves = self.deeds[deed_id]
        rule = self.rules.rule_for(SourceKind.deed, deed.category)
        approved = self.rng.random() < 0.85
        cmd = ReviewDeed(deed_id=deed_id, account_id=deed.account_id, approved=approved,
                         points=self.rng.randint(rule.min, rule.max) if approved else None,
                         reviewer_id=f"officer-{deed.community_id}", reason=None if approved else "材料不足")
        events = decide_review_deed(deed, cmd, rules=self.rules, resident=self.accounts[deed.account_id],
                                    issuer=self.accounts.get(account_id_for(AccountKind.issuer, deed.community_id)),
                                    at=at)
        for e in events:
            deed = evolve_deed(deed, e) or deed
        self.deeds[deed_id] = (deed, saves + 1)
        cid = self._sent(at, cmd, community_officer(deed.community_id))
        self._apply(events, at, cid, cid)
        if any(isinstance(e, TransferRefused) and e.reason == RefusalReason.cap_reached for e in events):
            self.refused.add(deed_id)
            return True
        return False

    def credit_round(self, now: datetime) -> bool:
        """The deed credit timer's round at ``now`` (as ``credit_refused_deeds``): each deed
        refused over a cap on an earlier Shanghai day, in review order, credited unless still
        over the cap; whether any is left for a later day."""
        due = sorted((self.deeds[i][0] for i in self.refused if day_of(self.deeds[i][0].reviewed_at) != day_of(now)),
                     key=lambda d: (d.reviewed_at, d.deed_id))
        for deed in due[:200]:
            events = decide_credit_deed(
                deed, rules=self.rules, resident=self.accounts.get(deed.account_id),
                issuer=self.accounts.get(account_id_for(AccountKind.issuer, deed.community_id)), at=now,
                existing=None)
            if any(isinstance(e, TransferRefused) and e.reason == RefusalReason.cap_reached for e in events):
                continue  # still over the cap: nothing new to say
            after = deed
            for e in events:
                after = evolve_deed(after, e) or after
            self.deeds[deed.deed_id] = (after, self.deeds[deed.deed_id][1] + 1)
            self.refused.discard(deed.deed_id)
            self._apply(events, now, None, None)
        return bool(self.refused)

    def expire(self, account_id: str, now: datetime) -> None:
        """The expiry timer's round at ``now`` for one account (its lots past their validity)."""
        self._apply(decide_expire(self.accounts[account_id], rules=self.rules, now=now), now, None, None)

    def expire_all(self, now: datetime) -> None:
        for account_id in sorted(a for a, acc in self.accounts.items() if acc.kind is AccountKind.resident):
            self.expire(account_id, now)


# -- writing ----------------------------------------------------------------------------------


async def _copy(conn: asyncpg.Connection, schema: str, table: str, columns: Sequence[str],
                rows: Iterable[tuple], progress: Progress | None = None, task=None) -> None:
    await conn.execute(f"SET search_path TO {schema}")  # the tables' triggers name their tables unqualified
    rows = iter(rows)
    while chunk := list(itertools.islice(rows, CHUNK)):
        await conn.copy_records_to_table(table, schema_name=schema, columns=list(columns), records=chunk)
        if progress is not None:
            progress.advance(task, len(chunk))


async def migrate_all(conn: asyncpg.Connection) -> None:
    """Each service's schema, by the kit's migration runner, as the service runs it at start-up."""
    for svc in SERVICES:
        await migrate(conn, svc, [("kit", KIT_MIGRATIONS), (svc, ROOT / "services" / svc / "migrations")])


def _progress() -> Progress:
    return Progress(TextColumn("{task.description:<28}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    TimeRemainingColumn(), transient=False, disable=not sys.stderr.isatty() and not os.environ.get(
                        "HISTORY_PROGRESS"))


async def generate(dsn: str, plan: Plan, *, topics: Path | None = None,
                   bootstrap: str | None = None) -> dict[str, Any]:
    """Build the history into the database at ``dsn`` (its service schemas must not exist yet);
    returns the counts and the seconds taken. With ``topics``, every event the services
    published is written there in time order (:mod:`tests.history.topics`), and with
    ``bootstrap`` also sent to that broker's events topics (provisioned if missing)."""
    t0 = time.perf_counter()
    rng = random.Random(plan.seed)
    envelope._ids.seed(plan.seed)  # the ids of what the party's handler emits (new_id): the same every run
    seq = itertools.count()
    spills: list[Spill] = []  # every service's events, on disk (TMPDIR), each spill in time order
    try:
        with few_collections():
            out, closes = await _generate(dsn, plan, rng, seq, spills)
        for s in spills:
            s.close()
        out["spill_mb"] = round(sum(s.path.stat().st_size for s in spills) / 1e6, 1)
        if topics is not None:
            events = [s for s in spills if s.key is Pub.sort_key]
            everything = heapq.merge(merged(*events), closes, key=Pub.sort_key)
            total = sum(len(s) for s in events) + len(closes)
            out["topics"] = await _write_topics(topics, bootstrap, everything, total)
    finally:
        for s in spills:
            s.remove()
    return {**out, "seconds": round(time.perf_counter() - t0, 1)}


async def _generate(dsn: str, plan: Plan, rng: random.Random, seq: itertools.count,
                    spills: list[Spill]) -> tuple[dict[str, Any], list[Pub]]:
    """What :func:`generate` does but the topics: the counts, and the events of the closes; the
    services' events are left in ``spills`` (with the postings and earnings, whose key differs),
    for the topics."""
    conn = await asyncpg.connect(dsn)
    try:
        for svc in SERVICES:
            if await conn.fetchval("SELECT 1 FROM pg_namespace WHERE nspname = $1", svc):
                raise SystemExit(f"schema {svc} exists already: generate into an empty database")
        await migrate_all(conn)
        with _progress() as progress:
            world, ledger = GridWorld(plan, rng), Ledger(plan, rng, seq)
            orders = OrdersWorld(plan, rng, seq)
            grid_pubs, grid_earnings, grid_intake = Spill(), Spill(key=earning_key), Spill()
            spills += [grid_pubs, grid_earnings, grid_intake, orders.pubs, orders.intake, orders.earnings, ledger.pubs,
                       ledger.intake, ledger.postings]
            span = (plan.end - plan.start).total_seconds()
            times = sorted(plan.start + timedelta(seconds=rng.random() * span) for _ in range(plan.cases))
            ledger.open_merchants(plan.start)
            task = progress.add_task("grid: cases (domain, COPY)", total=plan.cases)
            rows = _GridRows()
            for i, at in enumerate(times):
                run = world.run_case(i, at)
                s = run.state
                rows.state.append((s.case_id, run.saves, _dumps(s.model_dump(mode="json")),
                                   case_next_check_at(s), plan.end))
                row = case_row(s, run.changed_at)  # the worker writes the row when it handles a change
                rows.cases.append(tuple(_dumps(row[c]) if c in ("reporters", "duplicates", "media") else row[c]
                                        for c in _CASE_COLUMNS))
                for n, (ev, eid, t, cause) in enumerate(run.events, 1):
                    h = _history(s, ev, eid, plan.end)
                    rows.history.append((s.case_id, n, eid, h.type, h.occurred_at, _dumps(h.data)))
                    pub = Pub(t, next(seq), "grid", eid, ev, cause, cause)
                    grid_pubs.add(pub)
                    if isinstance(ev, CaseRegistered):
                        if s.reporter.kind.value == "resident":
                            grid_earnings.add((pub.seq, Earning(
                                source=GRID_SOURCE, source_event_id=eid, kind=SourceKind.report,
                                holder_id=s.reporter.id, category=s.category.value, community_id=s.community_id,
                                occurred_at=t), cause))
                        orders.plan_case(ev, eid, cause, t)
                for cmd, cid, t, by in run.commands:
                    grid_intake.add(Pub(t, next(seq), "grid", cid, cmd, sender=by))
                rows.reports.append(_grid_report(run))
                grid_pubs.release(at)  # every later case is reported at or after ``at``
                grid_intake.release(at)
                grid_earnings.release(at)
                if len(rows.cases) >= CHUNK:
                    await rows.copy(conn)
                progress.advance(task)
            await rows.copy(conn)
            task = progress.add_task("orders: orders (domain)", total=None)
            orders.plan_members()
            orders.plan_direct_orders()
            progress.update(task, total=orders.planned_orders())
            orders.run(progress, task)
            # the awards in time order; at one instant a case's before an order's (made later)
            earnings = heapq.merge(grid_earnings, orders.earnings, key=earning_key)
            task = progress.add_task("points: postings (domain)", total=len(grid_earnings) + len(orders.earnings))
            _run_ledger(ledger, earnings, plan, rng, progress, task)
            ledger.expire_all(plan.end)

            await _write_orders(conn, orders, plan, progress)
            await _write_points(conn, ledger, orders, progress)
            party = PartyWorld(plan, random.Random(plan.seed + 5), seq, world.grids)
            spills += [party.pubs, party.intake]
            party.plan_all(orders.pubs)
            await _write_party(dsn, party, progress)
            events = (grid_pubs, orders.pubs, ledger.pubs, party.pubs)
            closes = await _write_assessment(conn, dsn, plan, merged(*events), sum(len(e) for e in events),
                                             seq, progress)
        await conn.execute("ANALYZE")
        counts = {
            "cases": await conn.fetchval("SELECT count(*) FROM grid.cases"),
            "case_history": await conn.fetchval("SELECT count(*) FROM grid.case_history"),
            "orders": await conn.fetchval("SELECT count(*) FROM orders.orders"),
            "order_history": await conn.fetchval("SELECT count(*) FROM orders.order_history"),
            "members": await conn.fetchval("SELECT count(*) FROM orders.members"),
            "accounts": await conn.fetchval("SELECT count(*) FROM points.accounts"),
            "postings": await conn.fetchval("SELECT count(*) FROM points.postings"),
            "event_log": await conn.fetchval("SELECT count(*) FROM assessment.event_log"),
            "facts": await conn.fetchval("SELECT count(*) FROM assessment.facts"),
            "scorecards": await conn.fetchval("SELECT count(*) FROM assessment.scorecards"),
            "closed_periods": await conn.fetchval("SELECT count(*) FROM assessment.period_closes"),
            "orgs": await conn.fetchval("SELECT count(*) FROM party.orgs"),
            "org_life": await conn.fetchval("SELECT count(*) FROM party.org_life_log"),
            "councils": await conn.fetchval("SELECT count(*) FROM party.councils"),
            "projects": await conn.fetchval("SELECT count(*) FROM party.projects"),
            "party_messages": party.handled,
            "party_events": len(party.pubs),
        }
    finally:
        await conn.close()
    return {"years": plan.years, "scale": plan.scale, **counts}, closes


def identity_of(topics: Path) -> Path:
    """Where the identity provider that signed the tokens of a dump's commands keeps its key and
    its JWKS (a rebuild verifies the tokens against it): beside the dump."""
    return topics.parent / "identity"


async def _write_topics(path: Path, bootstrap: str | None, pubs: Iterable[Pub], total: int) -> dict[str, Any]:
    """The dump of every published event and every command (``total`` of them, in time order),
    the commands' tokens signed by a new identity provider (:func:`identity_of`), then, given a
    broker, its records sent there; the records per topic and the seconds each step took."""
    with _progress() as progress:
        t = time.perf_counter()
        task = progress.add_task("topics: encode", total=total)
        tokens = Tokens(TestIdentity.kept_in(identity_of(path), new=True))
        counts = write_dump(path, pubs, progress, task, tokens)
        out: dict[str, Any] = {"records": dict(sorted(counts.items())),
                               "dump_seconds": round(time.perf_counter() - t, 1)}
        if bootstrap is not None:
            from services.kit.provision import provision
            t = time.perf_counter()
            await provision(bootstrap, partitions=int(os.environ.get("TOPIC_PARTITIONS", "12")))
            task = progress.add_task("topics: produce", total=sum(counts.values()))
            sent = await produce(bootstrap, read_dump(path), progress, task)
            if sent != counts:
                raise RuntimeError(f"sent {dict(sent)} of {dict(counts)}")
            out["produce_seconds"] = round(time.perf_counter() - t, 1)
    return out


@dataclass
class _GridRows:
    """The rows of the cases driven so far and not yet written: the grid's, and what points keeps
    of each case (``grid_reports``). Written every :data:`CHUNK` cases, so that what the history
    holds in memory does not grow with it."""

    state: list[tuple] = field(default_factory=list)
    cases: list[tuple] = field(default_factory=list)
    history: list[tuple] = field(default_factory=list)
    reports: list[tuple] = field(default_factory=list)

    async def copy(self, conn: asyncpg.Connection) -> None:
        await _copy(conn, "grid", "case_state", ("case_id", "version", "state", "next_check_at", "updated_at"),
                    self.state)
        await _copy(conn, "grid", "cases", _CASE_COLUMNS, self.cases)
        await _copy(conn, "grid", "case_history", ("case_id", "seq", "event_id", "type", "occurred_at", "data"),
                    self.history)
        await _copy(conn, "points", "grid_reports", ("case_id", "reported", "outcome", "registered",
                                                     "registered_source", "registered_id", "registered_at",
                                                     "awarded"), self.reports)
        for rows in (self.state, self.cases, self.history, self.reports):
            rows.clear()


def _grid_report(run: CaseRun) -> tuple:
    """The ``points.grid_reports`` row of a case: its report, and its registration (which
    awards its resident reporter) or dismissal, as the points worker keeps them."""
    reported = registered = None
    outcome = None
    for ev, eid, t, _ in run.events:
        if isinstance(ev, CaseReported) and reported is None:
            reported = minimised(CaseReported, ev.model_dump(mode="json"))
        elif isinstance(ev, CaseRegistered) and outcome is None:
            outcome, registered = "registered", (ev, eid, t)
        elif isinstance(ev, CaseDismissed) and outcome is None:
            outcome = "dismissed"
    reg = minimised(CaseRegistered, registered[0].model_dump(mode="json", exclude_none=True)) if registered else None
    return (run.state.case_id, _dumps(reported) if reported is not None else None, outcome,
            _dumps(reg) if reg is not None else None, GRID_SOURCE if registered else None,
            registered[1] if registered else None, registered[2] if registered else None, registered is not None)


def _run_ledger(ledger: Ledger, earnings: Iterator[tuple[int, Earning, str | None]], plan: Plan,
                rng: random.Random, progress: Progress, task) -> None:
    """What the points worker decides, in the order things happen: each award when its report is
    registered or its order passed (``earnings``: ``(seq, earning, story)`` in time order, read
    once); after it, maybe a redemption within 4 months and a deed (submitted within a month,
    reviewed within 5 days); each lot expired by the expiry timer's first round after its
    validity ends, and a deed refused over a cap credited by the deed credit timer's first
    round on a later Shanghai day (the timers run at every multiple of
    ``POINTS_EXPIRY_INTERVAL_SECONDS`` and ``POINTS_DEED_CREDIT_INTERVAL_SECONDS``); nothing
    after the end of the history. At one instant an award comes before what was planned. The
    times are UTC, as the worker's clock."""
    interval = ledger.expiry_interval
    queue: list[tuple[datetime, int, str, Any]] = []
    credit_rounds: set[datetime] = set()
    n = 0
    award = next(earnings, None)

    def credit_later(at: datetime) -> None:
        """Plan the deed credit timer's first round on the Shanghai day after ``at``."""
        nonlocal n
        midnight = datetime.combine(at.astimezone(SH).date() + timedelta(days=1), dt_time(), SH)
        t = next_round(midnight - timedelta(microseconds=1), ledger.credit_interval)
        if t <= plan.end and t not in credit_rounds:
            credit_rounds.add(t)
            n += 1
            heapq.heappush(queue, (t, n, "credit", None))

    while True:
        for due, account_id in ledger.lots_due:  # what the last step credited
            t = next_round(due, interval)
            if t <= plan.end:
                n += 1
                heapq.heappush(queue, (t, n, "expire", account_id))
        ledger.lots_due.clear()
        if award is not None and (not queue or award[1].occurred_at <= queue[0][0]):
            _, earning, story = award
            award = next(earnings, None)
            at = earning.occurred_at
            ledger.release(at)
            ledger.award(earning, story)
            progress.advance(task)
            resident = account_id_for(AccountKind.resident, earning.holder_id)
            if resident not in ledger.accounts:
                continue
            later = [(at + timedelta(days=rng.uniform(1, 120)), "redeem", resident)]
            if rng.random() < 0.4:
                later.append((at + timedelta(days=rng.uniform(1, 30)), "submit", (resident, f"deed-{n:08d}")))
            for t, kind, x in later:
                if t <= plan.end:
                    n += 1
                    heapq.heappush(queue, (t, n, kind, x))
            continue
        if not queue:
            break
        at, _, what, arg = heapq.heappop(queue)
        at = at.astimezone(timezone.utc)
        ledger.release(at)
        if what == "expire":
            ledger.expire(arg, at)
        elif what == "credit":
            credit_rounds.discard(at)
            if ledger.credit_round(at):
                credit_later(at)
        elif what == "redeem":
            ledger.maybe_redeem(arg, at)
        elif what == "submit":
            ledger.submit_deed(arg[0], arg[1], at)
            t = at + timedelta(days=rng.uniform(1, 5))
            if t <= plan.end:
                n += 1
                heapq.heappush(queue, (t, n, "review", arg[1]))
        elif what == "review":
            if ledger.review_deed(arg, at):
                credit_later(at)


async def _write_orders(conn: asyncpg.Connection, orders: OrdersWorld, plan: Plan, progress: Progress) -> None:
    """The orders worker's rows: members, posts, orders (one statement per chunk each) and the
    order history in the order the events were applied."""
    task = progress.add_task("orders: COPY", total=len(orders.orders) + orders.order_events)
    for table, (cols, rows) in (("members", orders.member_rows(plan.end)), ("posts", orders.post_rows(plan.end)),
                                ("orders", orders.order_rows(plan.end))):
        await _copy(conn, "orders", table, cols, rows, progress if table == "orders" else None, task)
    await _copy(conn, "orders", "order_history", ("order_id", "event_id", "type", "at", "data"),
                orders.history_rows(), progress, task)


async def _write_points(conn: asyncpg.Connection, ledger: Ledger, orders: OrdersWorld, progress: Progress) -> None:
    """Accounts first (balance 0, the final state: the postings' trigger moves the balances to it),
    then the postings and earnings in time order, one statement per chunk; the deeds, and what
    the worker keeps of other services' facts until they decide an award (the orders' category,
    community and minutes; the grid cases' reports and registrations were written with the
    cases: :class:`_GridRows`)."""
    rows = []
    for e in ledger.opened:
        acc = ledger.accounts[e.account_id]
        lots = [lot.earned_at for lot in acc.lots if lot.remaining > 0]
        rows.append((acc.account_id, acc.kind.value, acc.holder_id, acc.community_id, 0,
                     acc.model_dump_json(), min(lots, default=None), e.opened_at, datetime.now(timezone.utc)))
    await _copy(conn, "points", "accounts", ("account_id", "kind", "holder_id", "community_id", "balance", "state",
                                             "oldest_lot_at", "opened_at", "updated_at"), rows)
    deed_cols = ("deed_id", "account_id", "community_id", "category", "status", "points", "transfer_id",
                 "refused_reason", "state", "submitted_at", "reviewed_at", "version", "updated_at")
    task = progress.add_task("points: COPY", total=len(ledger.postings))
    await conn.execute("SET search_path TO points")
    cols = ("transfer_id", "debit_account", "credit_account", "amount", "kind", "rule", "category", "community_id",
            "source", "source_event_id", "operator_id", "reason", "lot_id", "account_id", "posted_at", "event")
    postings = iter(ledger.postings)
    while chunk := list(itertools.islice(postings, CHUNK)):
        async with conn.transaction():
            await conn.copy_records_to_table("postings", schema_name="points", columns=list(cols), records=[
                (p.transfer_id, p.debit_account, p.credit_account, p.amount, p.reason.value, p.rule, p.category,
                 p.community_id, p.source, p.source_event_id, p.operator_id, p.detail, p.lot_id, p.account_id,
                 p.posted_at, p.model_dump_json(exclude_none=True)) for p in chunk])
            earned = [(p, x) for p in chunk if (x := earned_from(p)) is not None]
            await conn.copy_records_to_table("earnings", schema_name="points", columns=[
                "transfer_id", "account_id", "amount", "community_id", "earned_at", "month", "year"], records=[
                (p.transfer_id, x.account_id, x.amount, x.community_id, x.earned_at, month_of(x.earned_at),
                 year_of(x.earned_at)) for p, x in earned])
        progress.advance(task, len(chunk))
    await _copy(conn, "points", "deeds", deed_cols, [
        (d.deed_id, d.account_id, d.community_id, d.category, d.status.value, d.points, d.transfer_id,
         d.refused_reason, d.model_dump_json(), d.submitted_at, d.reviewed_at, saves, datetime.now(timezone.utc))
        for d, saves in ledger.deeds.values()])
    await _copy(conn, "points", "order_facts", ("order_id", "category", "community_id", "service_minutes"),
                [(o, *f) for o, f in orders.facts.items()])


async def _write_party(dsn: str, party: PartyWorld, progress: Progress) -> None:
    """The party's history, handled by the party worker's handler (:mod:`tests.history.party`)."""
    pool = await create_pool(dsn, "party", service="party", max_size=1)
    try:
        task = progress.add_task("party: commands, events, timers (handler)", total=party.planned())
        async with pool.acquire() as c:
            await party.run(c, progress, task)
    finally:
        await pool.close()


async def _write_assessment(conn: asyncpg.Connection, dsn: str, plan: Plan, pubs: Iterable[Pub], count: int,
                            seq: itertools.count, progress: Progress) -> list[Pub]:
    """The event log recorded and folded as the worker records and folds a batch (the consumed
    events of the ``count`` ``pubs``, in time order, read once), and each period closed when it
    ends by the worker's own close timer (``close_due_periods``, its rounds at
    :func:`close_rounds`), on what was folded by then; returns what the closes published
    (scorecards, alerts and the closes, at their rounds)."""
    from services.assessment.app.event_log import record_and_fold
    from services.assessment.app.handler import CLOSE_MARK, AssessmentHandler, topic_of
    from services.assessment.app.settings import AssessmentSettings
    from services.assessment.domain import Scheme
    from services.assessment.domain.history import CONSUMED, StoredEvent
    from services.assessment.projection import store
    from services.kit.uow import UnitOfWork

    settings = AssessmentSettings()
    delay = timedelta(seconds=settings.close_delay_seconds)
    timer = AssessmentHandler(Scheme.load(settings.scheme_file), close_delay=delay, timer_since=plan.start)
    rounds = close_rounds(plan, delay)
    published: list[Pub] = []
    pool = await create_pool(dsn, "assessment", service="assessment", max_size=1)
    try:
        folding = progress.add_task("assessment: event log, fold", total=count)
        closing = progress.add_task("assessment: closes", total=sum(len(ps) for _, ps in rounds))
        async with pool.acquire() as c:
            pubs = iter(pubs)
            held: Pub | None = None  # the first event after the round being waited for

            async def fold_until(until: datetime | None) -> None:
                """Record and fold the events handled by ``until`` (None: all the rest)."""
                nonlocal held
                while True:
                    chunk: list[Pub] = []
                    if held is not None:
                        if until is not None and held.at > until:
                            return
                        chunk.append(held)
                        held = None
                    for p in pubs:
                        if until is not None and p.at > until:
                            held = p
                            break
                        chunk.append(p)
                        if len(chunk) >= FOLD_BATCH:
                            break
                    if not chunk:
                        return
                    events = [StoredEvent(p.source, p.id, topic_of(p.payload), p.payload, p.at) for p in chunk
                              if type(p.payload) in CONSUMED]
                    async with c.transaction():
                        await record_and_fold(c, events)
                    progress.advance(folding, len(chunk))

            for at, periods in rounds:
                await fold_until(at)
                async with c.transaction():
                    uow = UnitOfWork(c, "assessment", at)
                    assert await timer.close_due_periods(uow) == periods, (at, periods)
                published += [Pub(at, next(seq), "assessment", e.id, envelope.decode_payload(e)) for e in uow.emitted]
                progress.advance(closing, len(periods))
            await fold_until(None)
            if not rounds:  # a timer that has closed nothing yet looks from its first round
                await store.set_mark(c, CLOSE_MARK, plan.end)
    finally:
        await pool.close()
    return published


def close_rounds(plan: Plan, delay: timedelta) -> list[tuple[datetime, list[str]]]:
    """The close timer's rounds over the history: at each end of periods (plus ``delay``) before
    the history's end, and the periods it closes then, in its order."""
    from services.assessment.domain.periods import Period, periods_ended_between

    rounds: dict[datetime, list[str]] = {}
    for period in periods_ended_between(plan.start, plan.end - delay):
        rounds.setdefault(Period.parse(period).end + delay, []).append(period)
    return sorted(rounds.items())


# -- the database -----------------------------------------------------------------------------

HISTORY_DIR = ROOT / "var" / "history" / "pg"
HISTORY_DB = "history"
TOPICS_UP_TO_SCALE = 0.01
"""Without ``--topics``/``--no-topics`` or ``TOPICS``, the topics are written up to this scale:
beyond it, writing them, loading them into a broker and the bench's rebuilds of every record
take a long time (the events of a ``SCALE`` 0.03 history are 2.25 M records, 290 MB gzipped)."""
HISTORY_TOPICS = ROOT / "var" / "history" / "topics.tsv.gz"
"""The events topics of the last history made with ``--topics`` (:mod:`tests.history.topics`)."""


async def create_database(server_url: str, name: str, *, replace: bool = False) -> str:
    """A database ``name`` on the server of ``server_url`` (dropped first with ``replace``); its URL."""
    admin = await asyncpg.connect(server_url)
    try:
        if replace:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    return server_url.rsplit("/", 1)[0] + "/" + name


DB_BYTES_PER_CASE = 34_000
"""What a history's database takes, every service's tables and indexes, per case (measured: 0.90 GB
for 25,000 cases at ``SCALE`` 0.005, 16 GB for 500,000 at 0.1): about 170 GB at full scale."""
SPILL_BYTES_PER_CASE = 2_500
"""What the spills take in ``TMPDIR`` per case at their largest (the events, postings and earnings,
compressed: :class:`~tests.history.topics.Spill`): about 12 GB at full scale."""


def check_disk(needs: Iterable[tuple[Path, int, int]]) -> None:
    """Refuse to start (``SystemExit`` saying what is short where) when a file system has less
    free space than the history will write there: ``needs`` are (a path, the bytes it will take
    there, the bytes it frees there first), summed by file system. Five years of a large
    district is hours of work; running out of disk at the end of it loses them all."""
    by_device: dict[int, list] = {}  # device -> [bytes needed, bytes freed, paths, an existing directory]
    for path, need, frees in needs:
        at = Path(path).absolute()
        while not at.exists():  # the directory it will be made in
            at = at.parent
        entry = by_device.setdefault(at.stat().st_dev, [0, 0, [], at])
        entry[0] += need
        entry[1] += frees
        entry[2].append(str(path))
    short = []
    for need, frees, paths, at in by_device.values():
        free = shutil.disk_usage(at).free + frees
        if need > free:
            short.append(f"{' and '.join(paths)}: about {need / 1e9:.1f} GB needed, {free / 1e9:.1f} GB free")
    if short:
        raise SystemExit("not enough disk for this history (" + "; ".join(short) + "): free some, set TMPDIR or "
                         "DATABASE_URL elsewhere, or use a smaller SCALE (--no-check-disk to start anyway)")


async def _database_size(server_url: str, name: str) -> int:
    """The bytes database ``name`` takes on the server (0 if it does not exist)."""
    conn = await asyncpg.connect(server_url)
    try:
        return await conn.fetchval("SELECT coalesce(sum(pg_database_size(datname)), 0)::bigint FROM pg_database "
                                   "WHERE datname = $1", name)
    finally:
        await conn.close()


def embedded_history():
    """The embedded PostgreSQL of ``var/history`` (started; its data stay between runs)."""
    from services.kit.infra import EmbeddedPostgres
    return EmbeddedPostgres(HISTORY_DIR).start()


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.history.generate", description=__doc__.split("\n")[0])
    ap.add_argument("--years", type=int, default=int(os.environ.get("YEARS", "5")))
    ap.add_argument("--scale", type=float, default=float(os.environ.get("SCALE", "1.0")))
    ap.add_argument("--seed", type=int, default=19)
    ap.add_argument("--topics", action=argparse.BooleanOptionalAction, default=None,
                    help="also the events topics: var/history/topics.tsv.gz, and KAFKA_BOOTSTRAP_SERVERS if set "
                         f"(default: env TOPICS=1/0, else up to --scale {TOPICS_UP_TO_SCALE})")
    ap.add_argument("--check-disk", action=argparse.BooleanOptionalAction, default=True,
                    help="refuse to start when the database's or TMPDIR's file system lacks the space the history "
                         f"will take (about {DB_BYTES_PER_CASE // 1000} kB and {SPILL_BYTES_PER_CASE / 1000:g} kB a "
                         "case; the database's side only for the embedded server)")
    args = ap.parse_args(argv)
    if args.topics is None:
        given = os.environ.get("TOPICS", "").strip().lower()
        args.topics = given not in ("0", "false", "no", "off") if given else args.scale <= TOPICS_UP_TO_SCALE
    plan = Plan(years=args.years, scale=args.scale, seed=args.seed)
    dsn = os.environ.get("DATABASE_URL")
    HISTORY_TOPICS.unlink(missing_ok=True)  # an older history's topics must not pass for this one's
    pg = None
    try:
        needs = [(Path(tempfile.gettempdir()), plan.cases * SPILL_BYTES_PER_CASE, 0)]
        if not dsn:  # database "history" of var/history (replaced), kept for make bench-history
            pg = embedded_history()
            if args.check_disk:
                replaced = asyncio.run(_database_size(pg.url, HISTORY_DB))
                check_disk([*needs, (HISTORY_DIR, plan.cases * DB_BYTES_PER_CASE, replaced)])
            dsn = asyncio.run(create_database(pg.url, HISTORY_DB, replace=True))
        elif args.check_disk:
            check_disk(needs)
        out = asyncio.run(generate(dsn, plan, topics=HISTORY_TOPICS if args.topics else None,
                                   bootstrap=os.environ.get("KAFKA_BOOTSTRAP_SERVERS") if args.topics else None))
        out["database"] = "var/history" if pg is not None else "DATABASE_URL"
        print(orjson.dumps(out).decode(), flush=True)
    finally:
        if pg is not None:
            pg.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
