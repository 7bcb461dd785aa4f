"""The envelope refuses what no consumer could store: U+0000 in any string, and an id or source
too long for the inbox's primary key. Both are decode errors (dead-lettered, HTTP 422)."""
from __future__ import annotations

import random
from datetime import datetime, timezone

import orjson
import pytest

from schemas.envelope import (SOURCE_MAX_BYTES, DecodeError, source_fits, decode, decode_envelope, encode, envelope_for,
                              nul_field, typed_adapter)
from schemas.grid import LogPatrol
from schemas.topics import GRID

T0 = datetime(2026, 11, 22, 8, 0, tzinfo=timezone.utc)


def patrol_envelope(**over) -> dict:
    payload = LogPatrol(patrol_id="p-1", grid_id="110105001002003", grid_worker_id="gw-1", started_at=T0, ended_at=T0)
    env = orjson.loads(encode(envelope_for(payload, source="/apps/grid-app")))
    env.update(over)
    return env


def with_data(**over) -> dict:
    env = patrol_envelope()
    env["data"] = {**env["data"], **over}
    return env


NUL_CASES = {
    "id": (patrol_envelope(id="abc\x00"), "id"),
    "source": (patrol_envelope(source="/apps/\x00"), "source"),
    "type": (patrol_envelope(type="grid.patrol.log.v1\x00"), "type"),
    "subject": (patrol_envelope(subject="\x00"), "subject"),
    "extension": (patrol_envelope(traceparent="00-\x00"), "traceparent"),
    "data_field": (with_data(grid_worker_id="gw\x001"), "data.grid_worker_id"),
    "data_unknown_field": (with_data(note="\x00"), "data.note"),
    "data_nested": (with_data(route=[{"lat": 1, "label": "ok"}, {"label": "x\x00"}]), "data.route.1.label"),
    "data_key": (with_data(**{"bad\x00key": 1}), "data.bad\\u0000key"),
}


@pytest.mark.parametrize("env,field", NUL_CASES.values(), ids=NUL_CASES.keys())
def test_a_nul_character_anywhere_is_a_decode_error_naming_the_field(env, field):
    raw = orjson.dumps(env)
    assert b"\\u0000" in raw and b"\x00" not in raw  # JSON carries it as an escape
    for value in (raw, raw.decode(), env):
        with pytest.raises(DecodeError) as e:
            decode_envelope(value)
        assert e.value.reason == "nul_character"
        assert e.value.field == field
        assert field in str(e.value) and "\x00" not in str(e.value)
    with pytest.raises(DecodeError) as e:
        decode(raw, allowed=GRID.intake.message_types)
    assert e.value.reason == "nul_character"


def test_the_text_backslash_u0000_is_not_a_nul_character():
    env = with_data(grid_worker_id="gw-\\u0000")  # six characters, escaped backslash in JSON
    raw = orjson.dumps(env)
    assert b"\\\\u0000" in raw
    msg = decode(raw, allowed=GRID.intake.message_types)
    assert msg.payload.grid_worker_id == "gw-\\u0000"


def test_a_raw_nul_byte_is_malformed_json():
    raw = orjson.dumps(patrol_envelope()).replace(b'"gw-1"', b'"gw\x001"')
    with pytest.raises(DecodeError) as e:
        decode_envelope(raw)
    assert e.value.reason == "malformed_json"


def test_the_first_nul_in_document_order_is_named():
    assert nul_field({"a": "ok", "b": ["x", {"c": "\x00"}], "d": "\x00"}) == "b.1.c"
    assert nul_field({"a": "ok", "b": [1, 2.5, None, True]}) is None
    assert nul_field("\x00") == "value"


def test_the_fast_typed_path_accepts_nul_so_it_must_not_see_such_a_value():
    """The consumer sends a value holding the escape to decode_envelope instead: this is why."""
    adapter = typed_adapter(GRID.intake.message_types)
    env = adapter.validate_json(orjson.dumps(patrol_envelope(id="abc\x00")))
    assert env.id == "abc\x00"


rnd = random.Random(7)


def astral(n: int) -> str:
    return "".join(chr(rnd.randrange(0x10000, 0x10FFFF)) for _ in range(n))


def bmp(n: int) -> str:
    return "".join(chr(rnd.randrange(0x4E00, 0x9FFF)) for _ in range(n))


def test_ids_and_sources_are_bounded_in_characters():
    for env, field in ((patrol_envelope(id="x" * 201), "id"), (patrol_envelope(source="/" + "x" * 500), "source"),
                       (patrol_envelope(id="x" * 100_000), "id"), (patrol_envelope(source="/" * 100_000), "source")):
        with pytest.raises(DecodeError) as e:
            decode_envelope(orjson.dumps(env))
        assert (e.value.reason, e.value.field) == ("invalid_envelope", field)
        with pytest.raises(Exception):
            typed_adapter(GRID.intake.message_types).validate_json(orjson.dumps(env))


def test_a_source_is_bounded_in_utf8_bytes_so_that_source_and_id_fit_one_inbox_key():
    too_long = patrol_envelope(source="/" + astral(460), id=astral(200))  # 1841 + 800 bytes
    assert len(too_long["source"].encode()) > SOURCE_MAX_BYTES
    with pytest.raises(DecodeError) as e:
        decode_envelope(orjson.dumps(too_long))
    assert (e.value.reason, e.value.field) == ("invalid_envelope", "source")
    assert f"{SOURCE_MAX_BYTES} bytes" in e.value.detail
    # the consumer's fast path checks the decoded envelope with source_fits before it takes it
    assert not source_fits(typed_adapter(GRID.intake.message_types).validate_json(orjson.dumps(too_long)))
    # what fits: 500 characters of the Basic Multilingual Plane, 200 astral characters of id
    fits = patrol_envelope(source="/" + bmp(499), id=astral(200))
    assert decode(orjson.dumps(fits), allowed=GRID.intake.message_types).source == fits["source"]
    assert typed_adapter(GRID.intake.message_types).validate_json(orjson.dumps(fits)).id == fits["id"]
