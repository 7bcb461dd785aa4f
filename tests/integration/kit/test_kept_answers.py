"""The kit's kept answers (``kit_keep_answers_on``, kit migration 006) on a real PostgreSQL: each
row's answer is the JSON the API's encoder writes of its fields (times, floats, nulls, jsonb, an
identifier that needs quoting), after an insert, an update, a COPY and for the rows there before;
a field that is no column stops the migration; and a kept answer goes into a page as it is."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import asyncpg
import orjson
import pytest

from services.kit.http import dumps
from services.kit.migrations import KIT_MIGRATIONS
from services.kit.sql import answered, kept_answer
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
    page = {"items": [answered(doc), answered(doc, {"label": "标签", "open": True})]}
    assert orjson.loads(dumps(page)) == {"items": [{"id": 1, "name": "网格"},
                                                   {"id": 1, "name": "网格", "label": "标签", "open": True}]}
