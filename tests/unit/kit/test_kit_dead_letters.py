"""A dead letter can be written whatever the record holds, and it keeps the record's bytes.

The outbox stores the key as bytea and the headers as jsonb: the key must pass through as it
is, and no header value may hold what jsonb (U+0000) or UTF-8 (an unpaired surrogate) refuses.
"""
from __future__ import annotations

import orjson
import pytest

from services.kit.consumer import DLQ_MESSAGE_MAX, Item, dlq_record, header_text
from services.kit.db import _jsonb_encode

KEYS = {
    "nul": b"case-\x00-1",
    "only_nul": b"\x00",
    "invalid_utf8": b"\xff\xfe\xc3(",
    "every_byte": bytes(range(256)),
    "huge": b"k" * 500_000,  # a record over the record limit keeps its first bytes (below)
    "empty": b"",
    "chinese": "网格-110105".encode(),
    "none": None,
}

MESSAGES = {
    "nul": "bad \x00 value",
    "only_nuls": "\x00" * 10,
    "lone_surrogate": "bad \ud800 value",
    "surrogate_pair_halves": "\udc00\ud800",
    "huge": "x" * 1_000_000,
    "huge_with_nul_at_the_end": "x" * 5000 + "\x00",
    "chinese": "网格编码不存在",
}


def item(key: bytes | None = b"k", value: bytes | None = b"garbage") -> Item:
    return Item("grid.intake.v1", 3, 42, key, value)


def jsonb_safe(headers: list[tuple[str, str]]) -> None:
    """What the outbox write does with the headers (asyncpg's jsonb codec), and what jsonb refuses."""
    encoded = _jsonb_encode(headers)
    assert b"\\u0000" not in encoded
    for _, v in headers:
        v.encode("utf-8")  # and Kafka headers are UTF-8 bytes


@pytest.mark.parametrize("key", KEYS.values(), ids=KEYS.keys())
def test_a_dead_letter_keeps_the_record_key_byte_for_byte(key):
    rec = dlq_record("grid.dlq.v1", item(key), "malformed_json", ValueError("unexpected character"))
    assert rec.key == key and (key is None or type(rec.key) is bytes)
    assert rec.value == b"garbage"
    assert rec.topic == "grid.dlq.v1" and rec.message_type == "dead_letter"
    jsonb_safe(rec.headers)


@pytest.mark.parametrize("message", MESSAGES.values(), ids=MESSAGES.keys())
def test_an_error_message_of_any_text_becomes_a_header_jsonb_accepts(message):
    rec = dlq_record("grid.dlq.v1", item(), "handler_error", RuntimeError(message))
    jsonb_safe(rec.headers)
    written = dict(rec.headers)["dlq.error.message"]
    assert "\x00" not in written
    assert len(written) <= DLQ_MESSAGE_MAX * len("\\udc00")  # cut, then at worst every character escaped


def test_a_nul_shows_as_the_replacement_character_and_a_lone_surrogate_as_its_escape():
    assert header_text("a\x00b") == "a\ufffdb"
    assert header_text("a\ud800b") == "a\\ud800b"
    assert header_text("网格") == "网格"
    assert header_text("x" * 3000) == "x" * DLQ_MESSAGE_MAX


def test_the_origin_and_error_headers_are_all_there():
    rec = dlq_record("grid.dlq.v1", item(b"\x00"), "nul_character", ValueError("id: holds NUL"))
    headers = dict(rec.headers)
    assert headers["dlq.origin.topic"] == "grid.intake.v1"
    assert headers["dlq.origin.partition"] == "3" and headers["dlq.origin.offset"] == "42"
    assert headers["dlq.error.reason"] == "nul_character"
    assert headers["dlq.error.class"] == "ValueError"
    assert headers["dlq.error.message"] == "id: holds NUL"
    assert "dlq.failed_at" in headers


def test_an_error_that_cannot_be_shown_still_makes_a_dead_letter():
    class Unprintable(Exception):
        def __str__(self):
            raise RuntimeError("no")

    rec = dlq_record("grid.dlq.v1", item(b"\xff"), "handler_error\x00", Unprintable())
    jsonb_safe(rec.headers)
    assert dict(rec.headers)["dlq.error.message"] == "<Unprintable that cannot be shown>"


def test_a_record_without_a_value_becomes_an_empty_dead_letter_value():
    rec = dlq_record("grid.dlq.v1", item(b"\x00", None), "malformed_json", ValueError("empty"))
    assert rec.value == b"" and rec.key == b"\x00"
    assert orjson.loads(orjson.dumps(rec.headers))  # plain JSON too


def test_a_record_over_the_limit_is_dead_lettered_with_its_first_bytes_and_its_size():
    from services.kit import outbox

    big = item(b"k" * 2_000_000, b"v" * 3_000_000)
    rec = dlq_record("grid.dlq.v1", big, "record_too_large", ValueError("too large"))
    headers = dict(rec.headers)
    assert rec.key == b"k" * outbox.DEAD_LETTER_KEPT_BYTES and rec.value == b"v" * outbox.DEAD_LETTER_KEPT_BYTES
    assert headers["dlq.value.bytes"] == "3000000" and headers["dlq.key.bytes"] == "2000000"
    assert "dlq.truncated" in headers and headers["dlq.error.reason"] == "record_too_large"
    assert outbox.record_size(rec.key, rec.value, rec.headers) <= outbox.MAX_RECORD_BYTES
    jsonb_safe(rec.headers)
    # just under: kept whole
    whole = dlq_record("grid.dlq.v1", item(b"k", b"v" * 900_000), "handler_error", ValueError("x"))
    assert whole.value == b"v" * 900_000 and "dlq.truncated" not in dict(whole.headers)


def test_a_value_postgresql_refuses_is_the_message_s_fault_named_invalid_data():
    import asyncpg

    from services.kit.consumer import fault_reason
    from services.kit.outbox import RecordTooLarge

    assert fault_reason(asyncpg.exceptions.CharacterNotInRepertoireError("NUL")) == "invalid_data"
    assert fault_reason(asyncpg.exceptions.NumericValueOutOfRangeError("2^62")) == "invalid_data"
    assert fault_reason(asyncpg.exceptions.SerializationError("retry")) == "conflict"
    assert fault_reason(RecordTooLarge("grid.events.v1", 2_000_000, 1_000_000)) == "record_too_large"
    assert fault_reason(RuntimeError("bug")) == "handler_error"
