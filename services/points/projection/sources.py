"""Facts of other services the points service keeps until the event that decides an award:
an order's category/community/minutes, and a grid case's report until it is registered or
dismissed (in either order of arrival). The grid's events are kept as their contract models'
JSON without the personal fields no award reads (description, location, media, other text:
:func:`schemas.pii.minimised`) and read back as those models (:func:`schemas.pii.restored`)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Iterable


from schemas.grid import CaseRegistered, CaseReported
from schemas.pii import minimised, restored
from services.kit.sql import bulk
from services.kit.uow import UnitOfWork
from services.points.domain import OrderFacts


class Orders:
    """The orders' facts a unit of work reads and changes (``Orders.of(uow)``), as
    :class:`Reports` keeps the grid cases: a batch's orders row-locked and read in one query
    (:meth:`load`), changed in memory, and written in one statement when the unit of work flushes.
    A fact given replaces nothing known (an order's category and community come with its
    placement, its minutes with its completion). A message undone by its savepoint takes its
    changes (and its loads) with it."""

    def __init__(self, uow: UnitOfWork):
        self._uow = uow
        self._facts: dict[str, OrderFacts | None] = {}  # order id -> its facts (None: none yet)
        self._dirty: set[str] = set()
        self._journal: list[tuple] = []  # ("load", id) | ("save", id, before, was dirty) | ("flush", dirty)

    @classmethod
    def of(cls, uow: UnitOfWork) -> "Orders":
        return uow.attach(cls, lambda: cls(uow))

    async def load(self, order_ids: Iterable[str]) -> None:
        missing = sorted({i for i in order_ids if i not in self._facts})
        if not missing:
            return
        rows = await self._uow.conn.fetch(
            """SELECT order_id, category, community_id, service_minutes FROM order_facts
               WHERE order_id IN (SELECT jsonb_array_elements_text($1::text::jsonb)) ORDER BY order_id FOR UPDATE""",
            bulk(missing))
        found = {r["order_id"]: OrderFacts(category=r["category"], community_id=r["community_id"],
                                           service_minutes=r["service_minutes"]) for r in rows}
        for order_id in missing:
            self._journal.append(("load", order_id))
            self._facts[order_id] = found.get(order_id)

    async def get(self, order_id: str) -> OrderFacts | None:
        """What is known of the order, locked."""
        await self.load([order_id])
        return self._facts[order_id]

    async def remember(self, order_id: str, *, category: str | None = None, community_id: str | None = None,
                       service_minutes: int | None = None) -> None:
        await self.load([order_id])
        before = self._facts[order_id]
        known = before or OrderFacts()
        self._journal.append(("save", order_id, before, order_id in self._dirty))
        self._facts[order_id] = OrderFacts(category=category or known.category,
                                           community_id=community_id or known.community_id,
                                           service_minutes=known.service_minutes if service_minutes is None
                                           else service_minutes)
        self._dirty.add(order_id)

    def mark(self) -> int:
        return len(self._journal)

    def rollback(self, mark: int) -> None:
        while len(self._journal) > mark:
            entry = self._journal.pop()
            if entry[0] == "load":  # its row lock may have gone with the savepoint
                self._facts.pop(entry[1], None)
                self._dirty.discard(entry[1])
            elif entry[0] == "save":
                _, order_id, before, was_dirty = entry
                self._facts[order_id] = before
                if not was_dirty:
                    self._dirty.discard(order_id)
            else:  # a flush undone: its rows are unwritten again
                self._dirty |= entry[1]

    async def flush(self, uow: UnitOfWork) -> None:
        if not self._dirty:
            return
        rows = [(i, f.category, f.community_id, f.service_minutes)
                for i in sorted(self._dirty) if (f := self._facts[i]) is not None]
        await uow.conn.execute(
            """INSERT INTO order_facts (order_id, category, community_id, service_minutes)
               SELECT t.r->>0, t.r->>1, t.r->>2, (t.r->>3)::int FROM jsonb_array_elements($1::text::jsonb) AS t(r)
               ON CONFLICT (order_id) DO UPDATE SET
                 category = COALESCE(EXCLUDED.category, order_facts.category),
                 community_id = COALESCE(EXCLUDED.community_id, order_facts.community_id),
                 service_minutes = COALESCE(EXCLUDED.service_minutes, order_facts.service_minutes)""",
            bulk(rows))
        self._journal.append(("flush", set(self._dirty)))
        self._dirty.clear()


@dataclass(frozen=True)
class Registration:
    """A ``grid.case.registered.v1`` as an award needs it: its data, and the ``source``, ``id``
    and ``time`` of its envelope (the award's transfer id and date)."""

    event: CaseRegistered
    source: str
    id: str
    at: datetime


@dataclass(frozen=True)
class CaseReport:
    """What is known of a grid case: its report, whether it was registered (with the
    registration) or dismissed, and whether its reporter was awarded."""

    reported: CaseReported | None
    outcome: str | None  # registered | dismissed
    registration: Registration | None
    awarded: bool



class Reports:
    """The grid cases a unit of work reads and changes (``Reports.of(uow)``): row-locked and
    read once (:meth:`load`, a batch's cases in one query in id order, a row made for a case
    not seen before), changed in memory, and written in one statement when the unit of work
    flushes. A message undone by its savepoint takes its changes (and its loads) with it."""

    def __init__(self, uow: UnitOfWork):
        self._uow = uow
        # case id -> (the report, the JSON stored of its report and of its registration)
        self._cases: dict[str, tuple[CaseReport, dict | None, dict | None]] = {}
        self._dirty: set[str] = set()
        self._journal: list[tuple] = []  # ("load", id) | ("save", id, before, was dirty) | ("flush", dirty)

    @classmethod
    def of(cls, uow: UnitOfWork) -> "Reports":
        return uow.attach(cls, lambda: cls(uow))

    async def load(self, case_ids: Iterable[str]) -> None:
        missing = sorted({i for i in case_ids if i not in self._cases})
        if not missing:
            return
        conn = self._uow.conn
        ids = bulk(missing)
        await conn.execute("INSERT INTO grid_reports (case_id) SELECT jsonb_array_elements_text($1::text::jsonb) "
                           "ON CONFLICT DO NOTHING", ids)
        rows = await conn.fetch(
            """SELECT case_id, reported, outcome, registered, registered_source, registered_id, registered_at, awarded
               FROM grid_reports WHERE case_id IN (SELECT jsonb_array_elements_text($1::text::jsonb))
               ORDER BY case_id FOR UPDATE""", ids)
        for row in rows:
            registration = None if row["registered"] is None else Registration(
                restored(CaseRegistered, row["registered"]), row["registered_source"], row["registered_id"],
                row["registered_at"])
            reported = None if row["reported"] is None else restored(CaseReported, row["reported"])
            self._journal.append(("load", row["case_id"]))
            self._cases[row["case_id"]] = (CaseReport(reported, row["outcome"], registration, row["awarded"]),
                                           row["reported"], row["registered"])

    async def get(self, case_id: str) -> CaseReport:
        """The case's report, locked."""
        await self.load([case_id])
        return self._cases[case_id][0]

    def save(self, case_id: str, *, reported: CaseReported | None = None, outcome: str | None = None,
             registration: Registration | None = None, awarded: bool | None = None) -> None:
        """Change what is given (None: unchanged). The grid's events are kept as they are stored
        (minimised), so that a later message reads the same before and after a flush."""
        entry = self._cases[case_id]
        case, reported_json, registered_json = entry
        if reported is not None:
            reported_json = minimised(CaseReported, reported.model_dump(mode="json"))
            reported = restored(CaseReported, reported_json)
        if registration is not None:
            registered_json = minimised(CaseRegistered, registration.event.model_dump(mode="json", exclude_none=True))
            registration = Registration(restored(CaseRegistered, registered_json), registration.source,
                                        registration.id, registration.at)
        self._journal.append(("save", case_id, entry, case_id in self._dirty))
        self._cases[case_id] = (CaseReport(reported or case.reported, outcome or case.outcome,
                                           registration or case.registration,
                                           case.awarded if awarded is None else awarded),
                                reported_json, registered_json)
        self._dirty.add(case_id)

    def forget(self) -> None:
        """Forget every case read (after an erasure has rewritten them, flushed before)."""
        for case_id in list(self._cases):
            self._journal.append(("save", case_id, self._cases.pop(case_id), False))

    def mark(self) -> int:
        return len(self._journal)

    def rollback(self, mark: int) -> None:
        while len(self._journal) > mark:
            entry = self._journal.pop()
            if entry[0] == "load":  # its row lock may have gone with the savepoint
                self._cases.pop(entry[1], None)
                self._dirty.discard(entry[1])
            elif entry[0] == "save":
                _, case_id, before, was_dirty = entry
                self._cases[case_id] = before
                if not was_dirty:
                    self._dirty.discard(case_id)
            else:  # a flush undone: its rows are unwritten again
                self._dirty |= entry[1]

    async def flush(self, uow: UnitOfWork) -> None:
        if not self._dirty:
            return
        rows = []
        for case_id in sorted(self._dirty):
            case, reported, registered = self._cases[case_id]
            r = case.registration
            rows.append((case_id, reported, case.outcome, registered, None if r is None else r.source,
                         None if r is None else r.id, None if r is None else r.at, case.awarded))
        await uow.conn.execute(
            """UPDATE grid_reports AS g SET reported = nullif(t.r->1, 'null'), outcome = t.r->>2,
                   registered = nullif(t.r->3, 'null'), registered_source = t.r->>4, registered_id = t.r->>5,
                   registered_at = (t.r->>6)::timestamptz, awarded = (t.r->>7)::boolean, updated_at = now()
               FROM jsonb_array_elements($1::text::jsonb) AS t(r)
               WHERE g.case_id = t.r->>0""", bulk(rows))
        self._journal.append(("flush", set(self._dirty)))
        self._dirty.clear()
