"""The grid service's handler: grid commands (intake topic and ``POST /v1/commands``) and the
overdue timer, around the pure domain.

For a batch of commands: load the states of the cases it names (row-locked), and for each
command fill in the domain's :class:`Context` (the time, the deadline policy, whether the grid
is in the register, the open cases near a report), ``decide``, ``evolve`` in memory and emit
the events; at the end save the states and write the projection (cases, history, patrols)
in the batch's transaction. A refused command changes nothing and becomes a rejection.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Iterable, Sequence

import yaml

from schemas.common import Event
from schemas.envelope import Message
from schemas.grid import (
    COMMANDS,
    CaseDuplicateLinked,
    DismissCase,
    LogPatrol,
    PatrolLogged,
    ReportCase,
)
from services.grid import projection as db
from services.grid.domain import (
    CaseState,
    Context,
    DeadlinePolicy,
    OpenCase,
    check_overdue,
    decide,
    evolve,
)
from services.grid.registry import GridRegister
from services.kit.errors import Rejected
from services.kit.uow import Handler, UnitOfWork, on

log = logging.getLogger("grid.handler")


def load_policy(path: Path | str) -> DeadlinePolicy:
    """The deadline policy from a YAML file; raises on a missing or invalid file."""
    with open(path, encoding="utf-8") as f:
        return DeadlinePolicy.from_mapping(yaml.safe_load(f) or {})


class PatrolExists(Rejected):
    """A patrol with this id was already logged (by another command)."""

    def __init__(self, patrol_id: str):
        super().__init__("patrol_exists", f"patrol {patrol_id!r} is already logged", "patrol_id")


@dataclass
class Batch:
    """The case states a unit of work has loaded and changed, and the projection rows to write."""

    states: dict[str, CaseState]
    loaded: set[str] = field(default_factory=set)
    dirty: set[str] = field(default_factory=set)
    history: list[db.HistoryEntry] = field(default_factory=list)
    patrols: dict[str, PatrolLogged] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.loaded |= set(self.states)

    async def ensure(self, conn, ids: Iterable[str]) -> None:
        """Load (and lock) the states of ``ids`` not loaded yet."""
        missing = {i for i in ids if i not in self.loaded}
        if missing:
            self.states.update(await db.load_states(conn, missing))
            self.loaded |= missing

    def apply(self, uow: UnitOfWork, events: Sequence[Event], cause: Message | None) -> None:
        """Evolve the states by ``events``, emit them and record them in the cases' history."""
        for ev in events:
            if isinstance(ev, PatrolLogged):
                self.patrols[ev.patrol_id] = ev
                uow.emit(ev, cause=cause)
                continue
            cid = ev.aggregate_id
            state = evolve(self.states.get(cid), ev)
            assert state is not None
            self.states[cid] = state
            self.dirty.add(cid)
            env = uow.emit(ev, cause=cause, time=getattr(ev, "occurred_at", None))
            self.history.append(db.HistoryEntry(
                case_id=cid, seq=state.version, event_id=env.id, type=ev.TYPE,
                occurred_at=getattr(ev, "occurred_at", None) or uow.now,
                data=ev.model_dump(mode="json", exclude_none=True)))

    async def flush(self, conn, now: datetime) -> None:
        """Save the changed states and write the projection."""
        changed = {i: self.states[i] for i in sorted(self.dirty)}
        await db.save_states(conn, changed)
        await db.upsert_cases(conn, changed.values(), now)
        await db.append_history(conn, self.history)
        await db.upsert_patrols(conn, list(self.patrols.values()), now)


class GridHandler(Handler):
    """Every grid command, one shared path for the intake topic and HTTP."""

    service = "grid"

    def __init__(self, policy: DeadlinePolicy, register: GridRegister, duplicate_radius_m: float = 250.0):
        self.policy = policy
        self.register = register
        self.duplicate_radius_m = duplicate_radius_m

    @on(*(c.TYPE for c in COMMANDS))
    async def command(self, uow: UnitOfWork, msg: Message) -> None:  # pragma: no cover - routed by handle_batch
        await self.handle_batch(uow, [msg])

    async def handle_batch(self, uow: UnitOfWork, messages: Sequence[Message]) -> None:
        mine = [m for m in messages if m.type in self._routes]
        ids = set()
        for m in mine:
            p = m.payload
            if hasattr(p, "case_id"):
                ids.add(p.case_id)
            if isinstance(p, DismissCase) and p.duplicate_of:
                ids.add(p.duplicate_of)
        batch = Batch(await db.load_states(uow.conn, ids))
        batch.loaded |= ids
        for m in mine:
            try:
                events = await self._decide(uow, batch, m)
            except Rejected as e:
                uow.reject(m, e)
                continue
            batch.apply(uow, events, m)
        await batch.flush(uow.conn, uow.now)

    async def _decide(self, uow: UnitOfWork, batch: Batch, msg: Message) -> list[Event]:
        cmd = msg.payload
        ctx = Context(now=uow.now, policy=self.policy, duplicate_radius_m=self.duplicate_radius_m)
        if isinstance(cmd, LogPatrol):
            if cmd.patrol_id in batch.patrols or await db.patrol_exists(uow.conn, cmd.patrol_id):
                raise PatrolExists(cmd.patrol_id)
            return decide(None, cmd, _with(ctx, grid_known=cmd.grid_id in self.register))
        state = batch.states.get(cmd.case_id)
        if isinstance(cmd, ReportCase):
            return await self._report(uow, batch, cmd, state, _with(ctx, grid_known=cmd.grid_id in self.register))
        if isinstance(cmd, DismissCase) and cmd.duplicate_of:
            target = batch.states.get(cmd.duplicate_of)
            ctx = _with(ctx, open_cases=(OpenCase.of(target),) if target is not None and target.is_open else ())
        return decide(state, cmd, ctx)

    async def _report(self, uow: UnitOfWork, batch: Batch, cmd: ReportCase, state: CaseState | None,
                      ctx: Context) -> list[Event]:
        """Decide a report against the open cases near it: those in the projection, corrected by
        the states this batch holds; an original whose locked state is no longer open is dropped."""
        if state is not None or not ctx.grid_known:
            return decide(state, cmd, ctx)  # refused: case exists / unknown grid
        near = await db.open_cases_near(uow.conn, cmd.category, cmd.location.lat, cmd.location.lon,
                                        self.duplicate_radius_m)
        candidates = {c.case_id: c for c in near}
        for cid, s in batch.states.items():  # the batch's own changes are not in the projection yet
            if s.is_open and s.category == cmd.category:
                candidates[cid] = OpenCase.of(s)
            else:
                candidates.pop(cid, None)
        while True:
            events = decide(state, cmd, _with(ctx, open_cases=tuple(candidates.values())))
            linked = [e for e in events if isinstance(e, CaseDuplicateLinked)]
            if not linked:
                return events
            original = linked[0].case_id
            await batch.ensure(uow.conn, [original])
            s = batch.states.get(original)
            if s is not None and s.is_open:
                return events
            candidates.pop(original, None)  # closed meanwhile: look again without it

    async def check_overdue(self, uow: UnitOfWork, limit: int = 500) -> int:
        """The timer: report missed deadlines of the cases due for a check (once each) and
        escalate them; returns how many cases were checked."""
        states = await db.due_for_check(uow.conn, uow.now, limit)
        batch = Batch(states)
        for cid, s in states.items():
            batch.apply(uow, check_overdue(s, uow.now, self.policy), None)
            batch.dirty.add(cid)  # saved again: its next check time moves on
        await batch.flush(uow.conn, uow.now)
        return len(states)


def _with(ctx: Context, **changes) -> Context:
    return Context(**{**{f: getattr(ctx, f) for f in ("now", "policy", "grid_known", "open_cases",
                                                        "duplicate_radius_m")}, **changes})
