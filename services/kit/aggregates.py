"""Aggregate state: frozen pydantic models kept as jsonb, loaded and locked many at a time,
saved once per batch with a version.

A service declares where each kind of aggregate lives::

    CASES = AggregateStore(CaseState, table="case_state", id_column="case_id",
                           columns={"next_check_at": ("timestamptz", next_check_at)})

``columns`` are kept beside the state in the same upsert (what queries, candidates and timers
filter on), so they can never disagree with it. Without a table the states go to the kit's
``aggregates`` table under ``kind``. ``answer``: a text column that gets the state's JSON as the
model writes it (the text the state itself is written from), for a list that answers states
whole (the kit's ``kit_forget_stale_answers_on`` empties it when another statement changes the
state; :meth:`AggregateStore.answered` reads it); with ``answer_of``, the text that function
makes of the state instead (a route that answers a state with fields derived from it).

In a unit of work, ``CASES.of(uow)`` is the batch's :class:`AggregateSet`: ``await
cases.load(ids)`` row-locks and reads the states not loaded yet (in id order, so concurrent
batches wait for each other instead of deadlocking), ``cases.get(id)``, ``cases.put(id,
state)`` and ``cases.find(attribute, value)`` (a held state by another of its fields, through an
index, not a scan) work in memory, and the kit saves the changed states once, when it flushes
the unit of work. A message undone by its savepoint takes its puts (and its loads, whose row
locks the rollback may have released) with it.
"""
from __future__ import annotations

from typing import Any, Callable, Generic, Iterable, Mapping, TypeVar

import asyncpg
import orjson
from pydantic import BaseModel

from .uow import UnitOfWork

S = TypeVar("S", bound=BaseModel)

_MISSING = object()


class StaleAggregate(asyncpg.exceptions.SerializationError):
    """A state changed under us although it was locked: treated as a conflict and retried."""


class AggregateStore(Generic[S]):
    """Where one kind of aggregate is kept (see the module docstring)."""

    def __init__(self, model: type[S], *, kind: str | None = None, table: str = "aggregates", id_column: str = "id",
                 columns: Mapping[str, tuple[str, Callable[[S], Any]]] | None = None, answer: str | None = None,
                 answer_of: Callable[[S], str] | None = None):
        if table == "aggregates" and kind is None:
            raise ValueError("states in the kit's aggregates table need a kind")
        if answer_of is not None and answer is None:
            raise ValueError("answer_of makes the answer column's text: name the column (answer=...)")
        self.answer_of = answer_of
        self.model = model
        self.kind = kind
        self.table = table
        self.id_column = id_column
        self.columns = dict(columns or {})
        where = f"{id_column} = ANY($1::text[])" + (" AND kind = $2" if kind is not None else "")
        self._select = f"SELECT {id_column}, version, state FROM {table} WHERE {where} ORDER BY {id_column}"
        names = [id_column, "version", "state", *self.columns]
        types = ["text", "bigint", "text", *(t for t, _ in self.columns.values())]
        params = [f"${i + 1}::{t}[]" for i, t in enumerate(types)]
        select = ["t.c0", "t.c1 + 1", "t.c2::jsonb", *(f"t.c{i}" for i in range(3, len(names)))]
        kept = [answer] if answer is not None else []
        names += kept
        if answer_of is not None:  # its own parameter, after the columns'
            params.append(f"${len(params) + 1}::text[]")
            select.append(f"t.c{len(params) - 1}")
        else:
            select += ["t.c2"] * len(kept)  # the state's text, as the model wrote it
        if kind is not None:
            names.insert(0, "kind")
            select.insert(0, f"${len(params) + 1}::text")
        updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in ("version", "state", *self.columns, *kept))
        self._upsert = (
            f"INSERT INTO {table} ({', '.join(names)}, updated_at) "
            f"SELECT {', '.join(select)}, now() "
            f"FROM unnest({', '.join(params)}) AS t({', '.join(f'c{i}' for i in range(len(params)))}) "
            f"ON CONFLICT ({'kind, ' if kind is not None else ''}{id_column}) DO UPDATE SET {updates}, updated_at = now() "
            f"WHERE {table}.version = EXCLUDED.version - 1")

    def answered(self, rows: Iterable[Any], column: str = "answer", state: str = "state") -> list[orjson.Fragment]:
        """The states of ``rows`` (selected with :func:`.sql.kept_state_answer`) as answered: the
        kept answer, else (a row written before the column was there, or whose state another
        statement changed) what the store would have kept, made from the state: ``answer_of``'s
        text, or the state as the model writes it (a field it lacks gets its default)."""
        make = self.answer_of or (lambda s: s.model_dump_json())
        return [orjson.Fragment(r[column]) if r[column] is not None
                else orjson.Fragment(make(self.model.model_validate_json(r[state]))) for r in rows]

    def of(self, uow: UnitOfWork) -> "AggregateSet[S]":
        """The unit of work's set of these aggregates (created on first use)."""
        return uow.attach(self, lambda: AggregateSet(self, uow))

    async def read(self, conn: asyncpg.Connection, ids: Iterable[str], *, lock: bool = True,
                   skip_locked: bool = False) -> dict[str, tuple[int, S]]:
        """(version, state) of the given ids that exist, row-locked unless ``lock`` is False."""
        wanted = sorted(set(ids))
        if not wanted:
            return {}
        sql = self._select + (" FOR UPDATE" if lock else "") + (" SKIP LOCKED" if lock and skip_locked else "")
        args: list[Any] = [wanted] + ([self.kind] if self.kind is not None else [])
        rows = await conn.fetch(sql, *args)
        return {r[0]: (r[1], self.model.model_validate(r[2])) for r in rows}

    async def write(self, conn: asyncpg.Connection, states: Mapping[str, tuple[int, S]]) -> None:
        """Insert or update states, each expected at the given version (0: new); raises
        :class:`StaleAggregate` when a row was at another version."""
        if not states:
            return
        ids = sorted(states)
        args: list[Any] = [ids, [states[i][0] for i in ids], [states[i][1].model_dump_json() for i in ids]]
        for _, fn in self.columns.values():
            args.append([fn(states[i][1]) for i in ids])
        if self.answer_of is not None:
            args.append([self.answer_of(states[i][1]) for i in ids])
        if self.kind is not None:
            args.append(self.kind)
        status = await conn.execute(self._upsert, *args)
        if int(status.rsplit(" ", 1)[-1]) != len(ids):
            raise StaleAggregate(f"{self.table}: a state changed under its lock ({len(ids)} expected, {status})")


class AggregateSet(Generic[S]):
    """The states of one kind that a unit of work has loaded and changed."""

    def __init__(self, store: AggregateStore[S], uow: UnitOfWork):
        self.store = store
        self._uow = uow
        self._states: dict[str, S] = {}
        self._versions: dict[str, int] = {}  # as stored (0: not stored yet)
        self._dirty: set[str] = set()
        # what to undo, newest last: ("load", id), ("put", id, previous state, was dirty),
        # ("flush", versions before, dirty before)
        self._journal: list[tuple] = []
        # find()'s indexes: attribute -> (the journal's length when brought up to date, value -> ids)
        self._indexes: dict[str, tuple[int, dict[Any, list[str]]]] = {}

    async def load(self, ids: Iterable[str]) -> None:
        """Lock and read the states of ``ids`` not loaded yet (missing ones count as loaded, absent)."""
        missing = sorted({i for i in ids if i not in self._versions})
        if not missing:
            return
        found = await self.store.read(self._uow.conn, missing)
        for i in missing:
            self._journal.append(("load", i))
            version, state = found.get(i, (0, None))
            self._versions[i] = version
            if state is not None:
                self._states[i] = state

    async def fetch(self, id: str) -> S | None:
        """:meth:`load` one id and return its state (None when it does not exist)."""
        await self.load([id])
        return self._states.get(id)

    def adopt(self, found: Mapping[str, tuple[int, S]]) -> None:
        """Take states read (and locked) elsewhere, e.g. by a timer's ``SKIP LOCKED`` query."""
        for i, (version, state) in found.items():
            if i not in self._versions:
                self._journal.append(("load", i))
                self._versions[i] = version
                self._states[i] = state

    def get(self, id: str) -> S | None:
        return self._states.get(id)

    def __contains__(self, id: str) -> bool:
        return id in self._states

    def items(self):
        return self._states.items()

    def find(self, attribute: str, value: Any) -> str | None:
        """The id of the first state held (in the order of :meth:`items`) whose ``attribute`` is
        ``value``, or None: what a scan of the states finds, without the scan. The index of each
        attribute asked for is kept up to date from the journal (each state loaded or put since
        is indexed by its value now) and made again after a rollback; an id left under a value
        its state no longer has is passed over."""
        seen, index = self._indexes.get(attribute, (0, None))
        if index is None:
            index = {}
            for i, state in self._states.items():
                index.setdefault(getattr(state, attribute), []).append(i)
        else:
            for entry in self._journal[seen:]:
                if entry[0] != "flush" and (state := self._states.get(entry[1])) is not None:
                    index.setdefault(getattr(state, attribute), []).append(entry[1])
        self._indexes[attribute] = (len(self._journal), index)
        found = {i: None for i in index.get(value, ())
                 if (state := self._states.get(i)) is not None and getattr(state, attribute) == value}
        if len(found) > 1:  # which came first
            return next(i for i in self._states if i in found)
        return next(iter(found), None)

    def put(self, id: str, state: S) -> None:
        """Replace a state in memory; saved when the unit of work is flushed."""
        if id not in self._versions:
            raise KeyError(f"{id!r} was not loaded (load it first, so that it is locked)")
        self._journal.append(("put", id, self._states.get(id, _MISSING), id in self._dirty))
        self._states[id] = state
        self._dirty.add(id)

    # -- participant --------------------------------------------------------------------
    def mark(self) -> int:
        return len(self._journal)

    def rollback(self, mark: int) -> None:
        if len(self._journal) > mark:
            self._indexes.clear()  # made again when next asked
        while len(self._journal) > mark:
            entry = self._journal.pop()
            if entry[0] == "load":  # forget it: its row lock may have gone with the savepoint
                self._states.pop(entry[1], None)
                self._versions.pop(entry[1], None)
                self._dirty.discard(entry[1])
            elif entry[0] == "put":
                _, id, previous, was_dirty = entry
                if previous is _MISSING:
                    self._states.pop(id, None)
                else:
                    self._states[id] = previous
                if not was_dirty:
                    self._dirty.discard(id)
            else:  # a flush undone: its rows are unwritten again
                self._versions.update(entry[1])
                self._dirty |= entry[2]

    async def flush(self, uow: UnitOfWork) -> None:
        if not self._dirty:
            return
        changed = {i: (self._versions[i], self._states[i]) for i in self._dirty}
        await self.store.write(uow.conn, changed)
        self._journal.append(("flush", {i: v for i, (v, _) in changed.items()}, set(self._dirty)))
        for i in self._dirty:
            self._versions[i] += 1
        self._dirty.clear()


class KeptRows:
    """Rows of a table that a unit of work reads and changes, for a table that is not an
    aggregate store's (its rows are not one state with a version): ``Sub.of(uow)`` is the batch's
    set. :meth:`load` reads (and locks) the rows not loaded yet in one query, :meth:`put` changes
    one in memory, and :meth:`flush` writes the changed ones in one statement when the unit of
    work flushes. A message undone by its savepoint takes its puts and its loads (whose row locks
    the rollback may have released) with it, and a flush undone leaves its rows to write again.
    A subclass says how its rows are read (:meth:`read`: the rows found, by id) and written
    (:meth:`write`); a row not found is None until it is put."""

    def __init__(self, uow: UnitOfWork):
        self.uow = uow
        self._rows: dict[Any, Any] = {}
        self._dirty: set = set()
        self._journal: list[tuple] = []  # ("load", id) | ("put", id, before, was dirty) | ("flush", ids)

    @classmethod
    def of(cls, uow: UnitOfWork):
        return uow.attach(cls, lambda: cls(uow))

    async def read(self, conn: asyncpg.Connection, ids: list) -> Mapping[Any, Any]:
        raise NotImplementedError

    async def write(self, conn: asyncpg.Connection, rows: Mapping[Any, Any]) -> None:
        raise NotImplementedError

    async def load(self, ids: Iterable) -> None:
        missing = sorted({i for i in ids if i not in self._rows})
        if not missing:
            return
        found = await self.read(self.uow.conn, missing)
        for i in missing:
            self._journal.append(("load", i))
            self._rows[i] = found.get(i)

    async def fetch(self, id):
        """:meth:`load` one id and return its row (None: none yet)."""
        await self.load([id])
        return self._rows[id]

    def put(self, id, row) -> None:
        """Replace a loaded row in memory; written when the unit of work is flushed."""
        if id not in self._rows:
            raise KeyError(f"{id!r} was not loaded (load it first, so that it is locked)")
        self._journal.append(("put", id, self._rows[id], id in self._dirty))
        self._rows[id] = row
        self._dirty.add(id)

    def forget(self) -> None:
        """Forget every row read, to be read again (after something else rewrote them, this set
        flushed before)."""
        for id in list(self._rows):
            self._journal.append(("put", id, self._rows.pop(id), False))

    # -- participant --------------------------------------------------------------------
    def mark(self) -> int:
        return len(self._journal)

    def rollback(self, mark: int) -> None:
        while len(self._journal) > mark:
            entry = self._journal.pop()
            if entry[0] == "load":
                self._rows.pop(entry[1], None)
                self._dirty.discard(entry[1])
            elif entry[0] == "put":
                _, id, before, was_dirty = entry
                self._rows[id] = before
                if not was_dirty:
                    self._dirty.discard(id)
            else:
                self._dirty |= entry[1]

    async def flush(self, uow: UnitOfWork) -> None:
        if not self._dirty:
            return
        await self.write(uow.conn, {i: self._rows[i] for i in sorted(self._dirty)})
        self._journal.append(("flush", set(self._dirty)))
        self._dirty.clear()
