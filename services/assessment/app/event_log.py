"""The unit of work's new event log entries, recorded and folded into the counters in one step
per batch.

A kit participant (see :mod:`services.kit.uow`): handlers :meth:`~EventLogWriter.append`
the events of a batch; the kit flushes them once, when it flushes the unit of work, in the
transaction of the inbox. A flush finds which entries ``event_log`` does not hold yet (a
repeated source and id is skipped), folds them into ``facts`` and ``refs`` (:func:`fold_events`)
and inserts them with the undo their fold gave them, under the fold's lock. The refs a fold
reads come from this process's :class:`RefCache` while no other transaction has changed them. A close
flushes earlier, so that its own batch's events count. A message undone by its savepoint takes
its entries with it (and puts back those an undone early flush wrote).
"""
from __future__ import annotations

import functools
import itertools
import uuid
from typing import Any, Iterable, Sequence

import asyncpg

from services.assessment.domain.facts.refs import MemoryLookup
from services.assessment.domain.history import StoredEvent
from services.assessment.domain.incremental import Advance, advance
from services.assessment.projection import store
from services.kit.db import FairPool
from services.kit.locks import advisory_lock
from services.kit.uow import UnitOfWork

from . import metrics as m

FOLD_LOCK = "assessment:facts"
"""One fold at a time (workers of one group, the start-up catch-up): a late event unwinds what
others folded."""


class RefCache:
    """The refs as this process's last fold left them, so that a fold reads from memory what it
    would read from ``refs``. Valid while the fold's mark (``fold_mark``) holds the token that
    fold left there: another worker's fold leaves its own, and any other change to ``refs``
    (an erasure) puts its transaction's id there (a trigger). A cache started on an empty
    ``refs`` holds every ref there is (``complete``: a ref it lacks does not exist), so a
    rebuild's folds read none. Past ``limit`` refs it drops the older half (in the order they
    were first cached); a complete cache remembers the keys it dropped (``evicted``), so it still
    knows that any other ref it lacks does not exist, and a fold loads only the dropped refs it
    reads (a long rebuild's refs outgrow any limit): those its events name it loads before it
    runs (:meth:`named`), the others after a first run. ``limit`` 0: nothing is kept."""

    def __init__(self, limit: int = 100_000) -> None:
        self.limit = limit
        self.reset()

    def reset(self) -> None:
        self.token: str | None = None
        self.refs: dict = {}  # key -> ref, for those known to exist
        self.known: set = set()  # keys known to exist or not
        self.complete = False
        self.evicted: set = set()  # keys of refs dropped past the limit, while complete
        self._found = ""

    async def begin(self, conn: asyncpg.Connection) -> None:
        """At the start of a fold (its lock held): keep what is cached only if the mark still
        holds the token this process's last fold left."""
        found = await store.fold_token(conn)
        if self.token is None or found != self.token or self.limit <= 0:
            self.reset()
            self.complete = self.limit > 0 and not await store.any_refs(conn)
        elif len(self.refs) > self.limit:
            self._evict()
        self._found, self.token = found, None  # no token until the fold is written

    def _evict(self) -> None:
        """Drop the older half of the refs, and what is known of absent ones."""
        drop = list(itertools.islice(self.refs, len(self.refs) // 2 + 1))
        for key in drop:
            del self.refs[key]
        if self.complete:
            self.evicted.update(drop)
        self.known.clear()

    def named(self, payloads: Iterable[Any]) -> set:
        """The keys of the dropped refs that ``payloads`` name by their ``<kind>_id`` fields (a
        case's ``case_id``, an order's ``order_id``...). A fold reads most of its refs by such
        ids, so loading these first spares it the second run a dropped ref costs: in a rebuild
        of five years at ``SCALE`` 0.03, 118 of 225 batches ran twice, and none does now."""
        evicted, refs = self.evicted, self.refs
        out = set()
        for p in payloads:
            for name, kind in _id_fields(type(p)):
                v = getattr(p, name, None)
                if v.__class__ is str and (key := (kind, v)) in evicted and key not in refs:
                    out.add(key)
        return out

    def lacks(self, key) -> bool:
        """Whether a fold must load ``key`` from ``refs`` (it is neither cached nor known absent)."""
        return key not in self.known and (not self.complete or key in self.evicted)

    async def saved(self, conn: asyncpg.Connection, loaded: dict, known: set, put: Sequence,
                    removed: Sequence) -> None:
        """The fold begun is written (in its transaction): what it read and wrote is cached, and
        its token left in the mark. If the transaction does not commit, the mark keeps what it
        held, and the next fold starts again."""
        token = uuid.uuid4().hex
        if not await store.leave_fold_token(conn, token, self._found):
            self.reset()  # the refs were changed meanwhile by another transaction
            return
        self.refs.update(loaded)
        self.known |= known
        for r in put:
            key = (r.KIND, r.ref_id)
            self.refs[key] = r
            self.known.add(key)
        for key in removed:
            self.refs.pop(key, None)
            self.known.add(key)
        self.token = token


@functools.lru_cache(maxsize=None)
def _id_fields(cls: type) -> tuple[tuple[str, str], ...]:
    """(field, ref kind) of a payload class's ``<kind>_id`` fields."""
    return tuple((name, name[:-3]) for name in getattr(cls, "model_fields", ()) if name.endswith("_id"))


REF_CACHE = RefCache()
"""This process's cache (its limit is a setting: ``ASSESSMENT_REF_CACHE_ENTRIES``)."""


_GONE = object()


class _Recording(dict):
    """The refs a fold step runs on: its own writes over the refs loaded from ``refs`` and the
    cache, recording the keys read that neither holds nor knows absent (the step runs again
    once they are loaded)."""

    def __init__(self, cache: RefCache, loaded: dict, known: set) -> None:
        super().__init__()
        self.cache = cache
        self.loaded = loaded
        self.known = known
        self.missing: set = set()

    def get(self, key, default=None):
        if dict.__contains__(self, key):
            v = dict.__getitem__(self, key)
            return default if v is _GONE else v
        v = self.loaded.get(key)
        if v is not None:
            return v
        cache = self.cache
        v = cache.refs.get(key)
        if v is not None:
            return v
        if key not in self.known and cache.lacks(key):
            self.missing.add(key)
        return default

    def pop(self, key, default=None):  # only to drop a ref (the value is not read)
        self[key] = _GONE
        return default

    def changes(self) -> tuple[list, list]:
        """(the refs written, the keys deleted), against what was loaded or cached."""
        put, removed = [], []
        for key, v in self.items():
            if v is _GONE:
                removed.append(key)
            elif v != (self.loaded.get(key) or self.cache.refs.get(key)):
                put.append(v)
        return put, removed


async def fold_events(conn: asyncpg.Connection, new: Sequence[StoredEvent],
                      cache: RefCache | None = None, *, recorded: bool = True) -> Advance | None:
    """Fold events just recorded (not folded yet) into the counters and refs: the folded events
    that occurred after the earliest of them are unwound and folded again after it
    (:func:`~services.assessment.domain.incremental.advance`). Reads only the refs the step
    reads and the cache does not hold (loaded on demand: a step that read an unloaded ref runs
    again with it). ``cache``: this process's (:data:`REF_CACHE`) unless given. ``recorded``
    False: ``new`` is not in the log yet, and the caller writes it with the undos the step
    returns (only the tail's are written back here)."""
    if not new:
        return None
    await advisory_lock(conn, FOLD_LOCK)
    cache = cache or REF_CACHE
    await cache.begin(conn)
    tail = await store.folded_after(conn, min(e.sort_key for e in new))
    loaded: dict = {}
    known: set = set()
    if cache.evicted:  # the dropped refs the events name, read at once rather than after a first run
        wanted = cache.named(e.payload for e, _ in tail) | cache.named(e.payload for e in new)
        if wanted:
            loaded.update(await store.load_refs(conn, wanted))
            known |= wanted
    while True:
        refs = _Recording(cache, loaded, known)
        try:
            step = advance(MemoryLookup(refs=refs), tail, new)
        except Exception:
            if not refs.missing:
                raise
        if not refs.missing:
            break
        loaded.update(await store.load_refs(conn, refs.missing))
        known |= refs.missing
    put, removed = refs.changes()
    fresh = set() if recorded else {(e.source, e.id) for e in step.new}
    await store.save_fold(conn, step.deltas, put, removed,
                          [(e, u) for e, u in step.applied if (e.source, e.id) not in fresh])
    await cache.saved(conn, loaded, known, put, removed)
    if tail:
        m.EVENTS_REFOLDED.inc(len(tail))
    return step


async def record_and_fold(conn: asyncpg.Connection, events: Sequence[StoredEvent],
                          cache: RefCache | None = None) -> list[StoredEvent]:
    """Record events in the log and fold those that were new; return them. Under the fold's
    lock, the new ones are found first and folded, then written with their undo: a row is
    written once (recorded, then updated with its undo, it would be written twice)."""
    if not events:
        return []
    await advisory_lock(conn, FOLD_LOCK)
    new = await store.unrecorded(conn, events)
    step = await fold_events(conn, new, cache, recorded=False)
    if step is not None:
        undos = {(e.source, e.id): u for e, u in step.applied}
        await store.record_folded(conn, step.new, undos)
    return new


async def fold_unfolded(pool: FairPool, chunk: int = 5000) -> int:
    """Fold the log rows not folded yet (recorded before the counters were kept, or after the
    counters were emptied to rebuild them), oldest first, one transaction per chunk. Each chunk
    is read on from the last one's key; a row recorded unfolded before that key meanwhile (none
    of the service's own paths does) is found by a last read from the start, and folded with the
    tail after it unwound and folded again."""
    done = 0
    after: tuple | None = None
    while True:
        async with pool.acquire() as conn, conn.transaction():
            await advisory_lock(conn, FOLD_LOCK)
            rows, last = await store.unfolded(conn, chunk, after)
            if not rows:
                if after is None:
                    return done
                after = None
                continue
            await fold_events(conn, rows)
            done += len(rows)
            after = last


class EventLogWriter:
    """Entries waiting to be written, in the order they were appended."""

    def __init__(self) -> None:
        self.pending: list[StoredEvent] = []
        self._flushed: list[list[StoredEvent]] = []  # what each flush wrote, oldest first

    @classmethod
    def of(cls, uow: UnitOfWork) -> "EventLogWriter":
        """The unit of work's writer (created on first use)."""
        return uow.attach(cls, cls)

    def append(self, event: StoredEvent) -> None:
        self.pending.append(event)

    # -- participant ----------------------------------------------------------------------

    def mark(self) -> tuple[int, int]:
        return len(self._flushed), len(self.pending)

    def rollback(self, mark: tuple[int, int]) -> None:
        flushes, pending = mark
        while len(self._flushed) > flushes:  # an undone flush: its rows are unwritten again
            self.pending[:0] = self._flushed.pop()
        del self.pending[pending:]

    async def flush(self, uow: UnitOfWork) -> None:
        if not self.pending:
            return
        events, self.pending = self.pending, []
        self._flushed.append(events)
        recorded = await record_and_fold(uow.conn, events)
        new = [e for e in recorded if e.payload.service() != uow.service]

        def observe() -> None:
            for e in new:
                m.EVENTS_RECORDED.labels(e.topic).inc()
            if new:
                m.applied(max(e.time for e in new))

        uow.after_commit(observe)
