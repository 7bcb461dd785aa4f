"""The kit's kept answers on a real PostgreSQL.

- ``kit_keep_answers_on`` (kit migration 006): each row's answer is the JSON the API's encoder
  writes of its fields (times, floats, nulls, jsonb, an identifier that needs quoting), after an
  insert, an update, a COPY and for the rows there before; a field that is no column stops the
  migration; a kept answer goes into a page as it is.
- The aggregate store's ``answer`` and ``kit_forget_stale_answers_on`` (kit migration 007): a
  state's answer is the text its model writes, emptied when another statement changes the state,
  and the list then answers that state through the model."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import asyncpg
import orjson
import pytest
from pydantic import BaseModel, ConfigDict

from services.kit.aggregates import AggregateStore
from services.kit.http import dumps
from services.kit.migrations import KIT_MIGRATIONS
from services.kit.sql import answered, kept_answer, kept_state_answer
from tests.support.db import as_json, migrated_pool, typed

pytestmark = pytest.mark.integration

FIELDS = ("id", "Area", "at", "ratio", "flag", "tags", "note")
COLUMNS = ", ".join(f'"{f}"' for f in FIELDS)
TABLE = """
CREATE TABLE things (id int PRIMARY KEY, "Area" text NOT NULL, at timestamptz, ratio double precision,
                     flag boolean, tags jsonb, note text, hidden text, answer text);
INSERT INTO things VALUES (0, '东城', '2026-01-01 08:00:00+08', 2, true, '[{"k": "v"}]', NULL, 'not shown');
SELECT kit_keep_answers_on('things', 'answer', 'id', 'Area', 'at', 'ratio', 'flag', 'tags', 'note');
"""
T = datetime(2026, 3, 1, 12, 30, tzinfo=timezone.utc)


@pytest.fixture
async def pool(database_url):
    async with migrated_pool(database_url, "kit_answers", components=[("kit", KIT_MIGRATIONS)]) as p:
        async with p.acquire() as conn:
            await conn.execute(TABLE)
        yield p


async def _agree(conn) -> list[dict]:
    """Every row's kept answer, checked against its fields as the API's encoder writes them."""
    out = []
    for r in await conn.fetch(f"SELECT {kept_answer()}, {COLUMNS} FROM things ORDER BY id"):
        kept = orjson.loads(r["answer"])
        fields = as_json({f: r[f] for f in FIELDS})
        assert list(kept) == list(FIELDS) and typed(kept) == typed(fields), (kept, fields)
        out.append(kept)
    return out


async def test_a_rows_kept_answer_is_its_fields_as_answered_however_the_row_is_written(pool):
    async with pool.acquire() as conn:
        [before] = await _agree(conn)  # there before the trigger: written by the migration's update
        assert before == {"id": 0, "Area": "东城", "at": "2026-01-01T00:00:00+00:00", "ratio": 2.0, "flag": True,
                          "tags": [{"k": "v"}], "note": None}
        await conn.execute("INSERT INTO things (id, \"Area\", at, ratio, flag, tags, note) "
                           "VALUES ($1, $2, $3, $4, $5, $6, $7)",
                           1, "a\"b\\c", T + timedelta(microseconds=5), 0.1 + 0.2, False, {"n": [1, 2.5]}, "多\n行")
        await conn.copy_records_to_table("things", columns=["id", "Area", "at", "ratio"],
                                         records=[(2, "copied", T, -0.0), (3, "big", None, 1e300)])
        await conn.execute("UPDATE things SET ratio = 'NaN', hidden = 'changed' WHERE id = 0")
        await conn.execute("UPDATE things SET at = at + interval '1 microsecond' WHERE id = 2")
        kept = await _agree(conn)
    assert kept[0]["ratio"] is None  # NaN, which JSON has not: null, as the encoder writes it
    assert kept[1]["at"] == "2026-03-01T12:30:00.000005+00:00" and kept[1]["ratio"] == 0.30000000000000004
    assert kept[2]["at"] == "2026-03-01T12:30:00.000001+00:00"
    assert kept[3]["ratio"] == 1e300 and kept[3]["at"] is None


async def test_a_field_that_is_no_column_stops_the_migration(pool):
    async with pool.acquire() as conn:
        await conn.execute("CREATE TABLE others (id int PRIMARY KEY, answer text)")
        with pytest.raises(asyncpg.RaiseError, match="others has no column nope"):
            await conn.execute("SELECT kit_keep_answers_on('others', 'answer', 'id', 'nope')")
        # and a row cannot lose its answer: the column is NOT NULL once kept
        await conn.execute("SELECT kit_keep_answers_on('others', 'answer', 'id')")
        await conn.execute("INSERT INTO others (id) VALUES (1)")
        assert await conn.fetchval("SELECT answer FROM others") == '{"id":1}'


def test_a_kept_answer_goes_into_a_page_as_it_is_with_the_fields_the_code_adds():
    doc = '{"id":1,"name":"网格"}'.encode()
    page = {"items": [answered(doc), answered(doc, {"label": "标签", "open": True}), answered(b"{}", {"a": 1})]}
    assert orjson.loads(dumps(page)) == {"items": [{"id": 1, "name": "网格"},
                                                   {"id": 1, "name": "网格", "label": "标签", "open": True},
                                                   {"a": 1}]}


# -- answers kept beside aggregate states (kit migration 007, the store's ``answer``) ---------------


class Item(BaseModel):
    model_config = ConfigDict(frozen=True)

    item_id: str
    owner: str
    at: datetime
    tags: tuple[str, ...] = ()
    note: str = "none"  # a field a state stored before it was added lacks


ITEMS = AggregateStore(Item, table="items", id_column="item_id", columns={"owner": ("text", lambda s: s.owner)},
                       answer="answer")
ITEMS_TABLE = """
CREATE TABLE items (item_id text PRIMARY KEY, version bigint NOT NULL, state jsonb NOT NULL, owner text NOT NULL,
                    answer text, updated_at timestamptz NOT NULL DEFAULT now());
SELECT kit_forget_stale_answers_on('items', 'answer', 'state');
"""


async def _items(conn) -> tuple[dict[str, bytes | None], list[dict]]:
    rows = await conn.fetch(f"SELECT item_id, {kept_state_answer()} FROM items ORDER BY item_id")
    return {r["item_id"]: r["answer"] for r in rows}, orjson.loads(dumps(ITEMS.answered(rows)))


async def test_a_states_kept_answer_is_what_its_model_writes_and_goes_when_another_statement_changes_it(pool):
    a = Item(item_id="a", owner="p-1", at=T + timedelta(microseconds=3), tags=("x",))
    b = Item(item_id="b", owner="p-2", at=T)
    async with pool.acquire() as conn:
        await conn.execute(ITEMS_TABLE)
        await ITEMS.write(conn, {"a": (0, a), "b": (0, b)})
        kept, answers = await _items(conn)
        # the store's text of each state, byte for byte as the list answered it through the model
        assert kept == {"a": a.model_dump_json().encode(), "b": b.model_dump_json().encode()}
        assert answers == [orjson.loads(a.model_dump_json()), orjson.loads(b.model_dump_json())]
        # an erasure's replacement changes the state, not the answer: the answer goes, the model answers
        await conn.execute("""UPDATE items SET state = replace(state::text, '"p-1"', '"erased-1"')::jsonb""")
        # a state stored before a field was added: the model gives it its default
        await conn.execute("UPDATE items SET state = state - 'note', answer = NULL WHERE item_id = 'b'")
        kept, answers = await _items(conn)
        assert kept == {"a": None, "b": None} and "p-1" not in str(answers)
        assert answers[0]["owner"] == "erased-1" and answers[1]["note"] == "none"
        # a change of another column keeps the answer; the store's next write keeps the new one
        await ITEMS.write(conn, {"a": (1, a.model_copy(update={"owner": "erased-1", "note": "n"}))})
        await conn.execute("UPDATE items SET owner = owner WHERE item_id = 'a'")
        kept, answers = await _items(conn)
        assert kept["a"] is not None and orjson.loads(kept["a"])["note"] == "n" and answers[0]["note"] == "n"


def _labelled(state: Item) -> str:
    return dumps({**state.model_dump(mode="json"), "label": f"{state.owner}/{len(state.tags)}"}).decode()


async def test_a_states_answer_may_be_made_from_it_and_goes_as_the_states_own_does(pool):
    """``answer_of``: the column gets what the function makes of the state (a route that answers
    fields derived from it), in the same upsert; another statement's change of the state empties
    it as it empties a state's own text."""
    labelled = AggregateStore(Item, table="items", id_column="item_id", answer="answer", answer_of=_labelled,
                              columns={"owner": ("text", lambda s: s.owner)})
    a, b = Item(item_id="a", owner="p-1", at=T, tags=("x", "y")), Item(item_id="b", owner="p-2", at=T)
    async with pool.acquire() as conn:
        await conn.execute(ITEMS_TABLE)
        await labelled.write(conn, {"a": (0, a), "b": (0, b)})
        kept, _ = await _items(conn)
        assert kept == {"a": _labelled(a).encode(), "b": _labelled(b).encode()}
        assert orjson.loads(kept["a"])["label"] == "p-1/2"
        await labelled.write(conn, {"a": (1, a.model_copy(update={"tags": ()}))})
        assert orjson.loads((await _items(conn))[0]["a"])["label"] == "p-1/0"
        assert await conn.fetchval("SELECT owner FROM items WHERE item_id = 'a'") == "p-1"  # the columns still
        await conn.execute("""UPDATE items SET state = replace(state::text, '"p-1"', '"erased-1"')::jsonb""")
        assert (await _items(conn))[0]["a"] is None
        # without its kept answer, a state is answered with what answer_of makes of it
        rows = await conn.fetch(f"SELECT item_id, {kept_state_answer()} FROM items ORDER BY item_id")
        answers = orjson.loads(dumps(labelled.answered(rows)))
        assert answers[0]["label"] == "erased-1/0" and answers[1] == orjson.loads(_labelled(b))
    with pytest.raises(ValueError, match="answer_of"):
        AggregateStore(Item, table="items", id_column="item_id", answer_of=_labelled)
