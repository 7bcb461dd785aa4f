"""Keyset paging: the cursor holds the last row's sort key, and only a cursor of the same list
is taken back; the condition and order it gives are one index range."""
from __future__ import annotations

import base64
from datetime import datetime, timezone

import orjson
import pytest

from services.kit.http import HttpError
from services.kit.sql import BadCursor, Keyset, Where

CASES = Keyset(("reported_at", "case_id"), (datetime, str), descending=True)
AT = datetime(2026, 11, 3, 8, 30, tzinfo=timezone.utc)


def test_a_cursor_gives_back_the_sort_key_of_the_row():
    cursor = CASES.encode({"reported_at": AT, "case_id": "c-9", "other": 1})
    assert "=" not in cursor and "+" not in cursor and "/" not in cursor
    assert CASES.decode(cursor) == [AT, "c-9"]


def _raw(value) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(value)).decode().rstrip("=")


@pytest.mark.parametrize("cursor", [
    "@@@", _raw("plain"), _raw([CASES.tag, AT.isoformat()]),  # too short
    _raw(["other", AT.isoformat(), "c-1"]),  # another list's
    _raw([CASES.tag, "yesterday", "c-1"]), _raw([CASES.tag, "2026-11-03T08:30:00", "c-1"]),  # no offset
    _raw([CASES.tag, AT.isoformat(), 7]), _raw([CASES.tag, AT.isoformat(), "c\x00"]),
])
def test_a_cursor_not_of_this_list_is_refused(cursor):
    with pytest.raises(BadCursor):
        CASES.decode(cursor)


def test_a_cursor_of_another_list_is_a_422_naming_cursor():
    orgs = Keyset(("org_id",), (int,))
    with pytest.raises(HttpError) as e:
        Where().after(CASES, orgs.encode({"org_id": 3}))
    assert (e.value.status, e.value.error, e.value.field) == (422, "invalid_query", "cursor")
    with pytest.raises(BadCursor):
        orgs.decode(_raw([orgs.tag, True]))  # a bool is not an int


def test_the_condition_after_a_cursor_is_one_row_comparison_in_the_keys_direction():
    where = Where().equal(grid_id="g")
    after = where.after(CASES, CASES.encode({"reported_at": AT, "case_id": "c-9"}))
    assert str(after) == "WHERE grid_id = $1 AND (reported_at, case_id) < ($2, $3)"
    assert after.args == ["g", AT, "c-9"] and where.args == ["g"]  # the clause itself is unchanged
    assert CASES.order == "reported_at DESC, case_id DESC"
    up = Keyset(("k", "id"), (int, str), exprs=("coalesce(rank, 0)", "t.id"))
    args: list = []
    assert up.after([1, "x"], args) == "(coalesce(rank, 0), t.id) > ($1, $2)" and up.order == "coalesce(rank, 0), t.id"
    assert str(Where().after(CASES, None)) == ""
