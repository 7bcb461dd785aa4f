"""SQL for the projections' read queries: a WHERE clause built from optional filters, one page
of its rows by keyset (a cursor) with a bounded count, and a row with its history.

Every list pages by its sort key (:class:`Keyset`): the sort key is unique (the id is the last
column) and matches an index, so a page is one index range scan, however deep in the list it
is. The answer's ``next_cursor`` (base64url of the last row's sort key) asks for the next page;
``offset`` is kept for small jumps only (at most :data:`MAX_OFFSET`). The ``total`` is counted
up to :data:`COUNT_CAP` rows, so a page read never counts all of history: past the cap the
answer says ``total_exact: false``.
"""
from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Sequence

import asyncpg
import orjson

MAX_OFFSET = 1000
"""The largest ``offset`` a list takes; further pages are read with the cursor."""

COUNT_CAP = 10_000
"""``total`` counts the matching rows up to this many (``total_exact`` false beyond)."""

MAX_CURSOR_CHARS = 512


class BadCursor(ValueError):
    """A ``cursor`` that is not one this list gave out."""


@dataclass(frozen=True)
class Keyset:
    """The sort key of a list: ``columns`` (as the select returns them, never null) with their
    Python ``types`` (``str``, ``int``, ``datetime``), all in one direction; the last is unique
    (the id), so the key orders rows totally. ``exprs``: the SQL of each column when it is not
    the plain name (``a.period``, ``coalesce(rank, 2147483647)``). An index on the same
    columns (in the same or the opposite direction) serves it."""

    columns: tuple[str, ...]
    types: tuple[type, ...]
    descending: bool = False
    exprs: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if len(self.columns) != len(self.types) or not self.columns:
            raise TypeError("a keyset needs one type per column")
        if self.exprs and len(self.exprs) != len(self.columns):
            raise TypeError("a keyset needs one expression per column")

    @property
    def keys(self) -> tuple[str, ...]:
        """The SQL of the columns."""
        return self.exprs or self.columns

    @property
    def order(self) -> str:
        d = " DESC" if self.descending else ""
        return ", ".join(f"{c}{d}" for c in self.keys)

    def after(self, key: list[Any], args: list[Any]) -> str:
        """The condition "after ``key``" (appending its parameters to ``args``)."""
        marks = []
        for v in key:
            args.append(v)
            marks.append(f"${len(args)}")
        return f"({', '.join(self.keys)}) {'<' if self.descending else '>'} ({', '.join(marks)})"

    @property
    def tag(self) -> str:
        """Tells the cursors of this sort key from those of another list."""
        return hashlib.blake2s(self.order.encode(), digest_size=3).hexdigest()

    def encode(self, row: dict[str, Any]) -> str:
        """The cursor that pages on after ``row``."""
        key = [row[c].isoformat() if isinstance(row[c], datetime) else row[c] for c in self.columns]
        return base64.urlsafe_b64encode(orjson.dumps([self.tag, *key])).decode().rstrip("=")

    def decode_or_422(self, cursor: str) -> list[Any]:
        """:meth:`decode`, a bad cursor answered 422 naming ``cursor``."""
        try:
            return self.decode(cursor)
        except BadCursor as e:
            raise bad_cursor(e) from None

    def decode(self, cursor: str) -> list[Any]:
        """The sort key in ``cursor``; :class:`BadCursor` when it is not a cursor of this list."""
        try:
            raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
            value = orjson.loads(raw)
        except (ValueError, orjson.JSONDecodeError):
            raise BadCursor("cursor is not a cursor this list gave out (not base64url JSON)") from None
        if not isinstance(value, list) or len(value) != len(self.columns) + 1 or value[0] != self.tag:
            raise BadCursor("cursor is not a cursor of this list")
        key = []
        for v, t, c in zip(value[1:], self.types, self.columns):
            try:
                if t is datetime:
                    if not isinstance(v, str):
                        raise ValueError
                    v = datetime.fromisoformat(v)
                    if v.tzinfo is None:
                        raise ValueError
                elif t is int:
                    if not isinstance(v, int) or isinstance(v, bool):
                        raise ValueError
                elif t is str:
                    if not isinstance(v, str) or "\x00" in v:
                        raise ValueError
                elif not isinstance(v, t):
                    raise ValueError
            except ValueError:
                raise BadCursor(f"cursor holds a bad {c}") from None
            key.append(v)
        return key


def bad_cursor(e: BadCursor) -> Exception:
    """The 422 answer naming ``cursor``."""
    from .http import HttpError

    return HttpError(422, "invalid_query", str(e), "cursor")


@dataclass
class Paged:
    """One page of a list: its rows, the matching count (exact up to :data:`COUNT_CAP`) and the
    cursor of the next page (None on the last)."""

    items: list[dict]
    total: int
    total_exact: bool
    next_cursor: str | None

    def answer(self, limit: int, offset: int, **extra: Any) -> dict[str, Any]:
        """The list's JSON answer (``extra`` first: e.g. the account of a statement)."""
        return {**extra, "total": self.total, "total_exact": self.total_exact, "limit": limit, "offset": offset,
                "next_cursor": self.next_cursor, "items": self.items}


class Where:
    """A WHERE clause built one condition at a time, with its numbered parameters."""

    def __init__(self) -> None:
        self.conditions: list[str] = []
        self.args: list[Any] = []

    def add(self, condition: str, value: Any = None) -> None:
        """``condition``, where ``$?`` stands for ``value``; none at all when ``value`` is None
        (a condition without ``$?`` is always added)."""
        if "$?" not in condition:
            self.conditions.append(condition)
        elif value is not None:
            self.args.append(value)
            self.conditions.append(condition.replace("$?", f"${len(self.args)}"))

    def equal(self, **columns: Any) -> "Where":
        for column, value in columns.items():
            self.add(f"{column} = $?", value)
        return self

    def __str__(self) -> str:
        return ("WHERE " + " AND ".join(self.conditions)) if self.conditions else ""

    def after(self, keyset: Keyset, cursor: str | None) -> "Where":
        """This clause with the rows after ``cursor`` in ``keyset`` order (a copy; 422 naming
        ``cursor`` when it is not one of this list)."""
        out = Where()
        out.conditions, out.args = list(self.conditions), list(self.args)
        if cursor is not None:
            key = keyset.decode_or_422(cursor)
            out.conditions.append(keyset.after(key, out.args))
        return out

    async def page(self, conn: asyncpg.Connection, select: str, keyset: Keyset, limit: int, offset: int = 0,
                   cursor: str | None = None) -> tuple[list[dict], str | None]:
        """(one page of the rows of ``select`` (``SELECT ... FROM table``) with this clause in
        ``keyset`` order, after ``cursor`` and ``offset`` more; the cursor of the next page)."""
        where = self.after(keyset, cursor)
        rows = await conn.fetch(where._page_sql(select, keyset), *where.args, limit + 1, offset)
        items = dicts(rows[:limit])
        return items, (keyset.encode(items[-1]) if len(rows) > limit else None)

    def _page_sql(self, select: str, keyset: Keyset) -> str:
        """``select`` with this clause in ``keyset`` order, its limit and offset the two parameters after it."""
        n = len(self.args)
        return f"{select} {self} ORDER BY {keyset.order} LIMIT ${n + 1} OFFSET ${n + 2}"

    def param(self, value: Any) -> str:
        """A parameter for SQL beside this clause's conditions (``total`` of
        :meth:`counted_page`, ``head`` of :meth:`headed_page`): its placeholder."""
        self.args.append(value)
        return f"${len(self.args)}"

    async def counted_page(self, conn: asyncpg.Connection, table: str, select: str, keyset: Keyset, limit: int,
                           offset: int = 0, cursor: str | None = None, total: str | None = None) -> Paged:
        """One page (:meth:`page`) with the count of all matching rows, up to :data:`COUNT_CAP`,
        or ``total``, SQL that gives the exact count another way (a count kept beside the rows).

        Both are one statement (:meth:`headed_page`), so they read one snapshot without a
        transaction around them: an empty page (after the last) still answers the count."""
        counted = total or f"SELECT count(*) FROM (SELECT 1 FROM {table} {self} LIMIT {COUNT_CAP + 1}) AS m"
        head, items, next_cursor = await self.headed_page(conn, f"SELECT ({counted}) AS n", select, keyset, limit,
                                                          offset, cursor)
        found = head["n"] if head is not None else 0  # (a SELECT without FROM has its row)
        exact = total is not None or found <= COUNT_CAP
        return Paged(items, found if total is not None else min(found, COUNT_CAP), exact, next_cursor)

    async def headed_page(self, conn: asyncpg.Connection, head: str, select: str, keyset: Keyset, limit: int,
                          offset: int = 0, cursor: str | None = None) -> tuple[dict | None, list[dict], str | None]:
        """(the row ``head`` finds, as a dict of JSON values: None when it finds none; one page
        (:meth:`page`), empty when ``head`` finds no row; the cursor of the next page), in one
        statement: what a list needs beside its rows (the count, or the row whose list it is,
        to check that the caller may read it) costs no second round trip and reads the same
        snapshot, without a transaction. ``head`` is a query of at most one row; its parameters
        come from :meth:`param`."""
        where = self.after(keyset, cursor)
        d = " DESC" if keyset.descending else ""
        # the head's JSON once, as text: it stands on every row of the page, and a jsonb column is
        # decoded in Python on each (a twentieth of a list's CPU); the text of the first is parsed
        rows = await conn.fetch(
            f"""SELECT h.kit_head, p.* FROM (SELECT to_jsonb(h)::text AS kit_head FROM ({head}) AS h) AS h
                LEFT JOIN LATERAL ({where._page_sql(select, keyset)}) AS p ON true
                ORDER BY {", ".join(f"p.{c}{d}" for c in keyset.columns)}""", *where.args, limit + 1, offset)
        if not rows:
            return None, [], None
        found = orjson.loads(rows[0]["kit_head"])
        if rows[0][keyset.columns[-1]] is None:  # no row on this page (the key's last column: never null)
            rows = []
        items = dicts(rows[:limit])
        for item in items:
            del item["kit_head"]
        return found, items, (keyset.encode(items[-1]) if len(rows) > limit else None)


def dicts(rows: Sequence[asyncpg.Record]) -> list[dict[str, Any]]:
    """Rows as dicts, the column names read once: ``dict(record)`` looks each one up by name
    again (a page of 50 cases of 54 columns took a tenth of its request's CPU that way)."""
    if not rows:
        return []
    names = tuple(rows[0].keys())
    return [dict(zip(names, r)) for r in rows]


def kept_answer(column: str = "answer", of: str | None = None) -> str:
    """A select list's item for the kept answer ``column`` (of the table aliased ``of``): a row's
    JSON as its list answers it, written by the kit's ``kit_keep_answers_on`` trigger, read as
    UTF-8 bytes. An answer is put in the page as it is (:func:`answered`), and orjson copies
    bytes where it encodes a ``str`` again character by character (a page of cases: 8 µs against 280)."""
    return f"convert_to({f'{of}.' if of else ''}{column}, 'UTF8') AS {column}"


def answered(doc: bytes, extra: dict[str, Any] | None = None) -> orjson.Fragment:
    """A kept answer (:func:`kept_answer`) as an item of a page, with the fields of ``extra``
    (what the database does not hold, e.g. a label from the code) added after its own."""
    if extra:
        more = orjson.dumps(extra)
        doc = more if doc == b"{}" else doc[:-1] + b"," + more[1:]
    return orjson.Fragment(doc)


def kept_state_answer(column: str = "answer", state: str = "state") -> str:
    """A select list's items for a state's kept answer (the aggregate store's ``answer``), as
    :func:`kept_answer`, and the state's text where there is none (the aggregate store's
    :meth:`~.aggregates.AggregateStore.answered` reads them)."""
    return f"{kept_answer(column)}, CASE WHEN {column} IS NULL THEN {state}::text END AS {state}"


def bulk(rows: Any) -> str:
    """Many values as one statement parameter: their JSON text, for ``$n::text::jsonb``
    (``jsonb_array_elements``, ``jsonb_to_recordset``). Rather than one ``text[]`` array per
    column: asyncpg checks each array element against several abstract base classes, which
    cost more than a batch's insert itself (about 5 % of a rebuild's CPU)."""
    return orjson.dumps(rows).decode()


def records(names: Sequence[str], source: str, exprs: dict[str, str] | None = None) -> str:
    """SQL of an array of the rows of ``source`` (``FROM <table> h WHERE ... ORDER BY ...``,
    correlated to the row it stands beside), each a record of ``names``: the column ``h.<name>``,
    or its expression in ``exprs``. Read back with :func:`unpacked`: what a row's details (its
    history, its posts) cost in its own statement, with no second round trip."""
    exprs = exprs or {}
    return f"ARRAY(SELECT ROW({', '.join(exprs.get(n, f'h.{n}') for n in names)}) {source})"


def unpacked(names: Sequence[str], recs: Sequence[Any]) -> list[dict[str, Any]]:
    """The records of a :func:`records` array as dicts of ``names``."""
    return [dict(zip(names, r)) for r in recs]


async def with_history(conn: asyncpg.Connection, columns: str, source: str, history_columns: Sequence[str],
                       history: str, *args: Any) -> dict[str, Any] | None:
    """The row of ``SELECT <columns> <source>`` (``source``: ``FROM <table> WHERE ...``, its
    parameters ``args``) with ``"history"``: the rows of ``history`` (``FROM <history table> h
    WHERE <h's key = the table's> ORDER BY ...``), their ``history_columns`` each; None when
    there is no such row.

    One statement (the history an array of records beside the row, :func:`records`): the row
    and its history read one snapshot without a transaction around them, in one round trip
    where a snapshot took four (BEGIN, the row, the history, COMMIT)."""
    row = await conn.fetchrow(f"SELECT {columns}, {records(history_columns, history)} AS kit_history {source}", *args)
    if row is None:
        return None
    out = dict(row)
    out["history"] = unpacked(history_columns, out.pop("kit_history"))
    return out
