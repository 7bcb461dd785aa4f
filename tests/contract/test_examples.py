"""Every message type has a worked example that passes everything a subscriber would apply.

``schemas/examples/<type>.json`` is the ``data`` of one realistic message of that type. It
must validate against its payload model and (wrapped in the envelope) against the committed
JSON Schema, and survive the envelope codec unchanged. The topic registry and the type
registry must agree: every type lives on exactly one topic.
"""
from __future__ import annotations

import copy
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import orjson
import pytest

from schemas import generate
from schemas.common import Command, Event
from schemas.envelope import decode, encode, envelope_for
from schemas.registry import all_types
from schemas.topics import ALL_TOPICS

from ._jsonschema_subset import UnsupportedKeyword, validate

EXAMPLES = generate.ROOT / "examples"
TYPES = all_types()
TIME = datetime(2026, 11, 22, 8, 0, tzinfo=timezone(timedelta(hours=8)))


def example_path(message_type: str) -> Path:
    return EXAMPLES / f"{message_type}.json"


def load_example(message_type: str) -> dict:
    path = example_path(message_type)
    if not path.is_file():
        pytest.fail(f"no example for {message_type}: write {path.relative_to(generate.ROOT.parent)}")
    data = json.loads(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict), f"{path.name} must hold the `data` object"
    return data


def topics_of(message_type: str) -> list:
    return [t for t in ALL_TOPICS if message_type in t.message_types]


# CONTRACT.md names ``grid.case.feedback.v1`` both as a command (intake) and as an event;
# its model derives from Command and Event. No other type may be both.
COMMAND_AND_EVENT = {"grid.case.feedback.v1"}


def latest_schema(message_type: str) -> dict:
    revs = generate.revisions(generate.ROOT, message_type)
    assert revs, f"no committed JSON Schema for {message_type}; run `make schemas`"
    return generate.load_revision(generate.ROOT, message_type, revs[-1])


def wire_form(message_type: str, data: dict) -> dict:
    payload = TYPES[message_type].model_validate(data)
    env = envelope_for(payload, source="/tests/contract", id="example-1", time=TIME,
                       correlationid="story-1", causationid="cause-1")
    return orjson.loads(encode(env))


@pytest.mark.parametrize("message_type", sorted(TYPES))
def test_example_exists_and_validates_against_its_model(message_type: str):
    data = load_example(message_type)
    model = TYPES[message_type]
    model.model_validate(data)
    known = {f.alias or name for name, f in model.model_fields.items()} | set(model.model_fields)
    unknown = sorted(set(data) - known)
    assert not unknown, f"example fields unknown to {model.__name__} (silently ignored by readers): {unknown}"


@pytest.mark.parametrize("message_type", sorted(TYPES))
def test_example_envelope_validates_against_the_committed_json_schema(message_type: str):
    data = load_example(message_type)
    errors = validate(wire_form(message_type, data), latest_schema(message_type))
    assert not errors, "\n".join(errors)


@pytest.mark.parametrize("message_type", sorted(TYPES))
def test_example_round_trips_through_the_envelope_codec(message_type: str):
    data = load_example(message_type)
    payload = TYPES[message_type].model_validate(data)
    env = envelope_for(payload, source="/tests/contract", id="example-1", time=TIME, correlationid="story-1")
    topics = topics_of(message_type)
    assert topics, f"{message_type} is on no topic"
    for topic in topics:
        msg = decode(encode(env), allowed=topic.message_types)
        assert msg.type == message_type
        assert msg.payload == payload
        assert msg.envelope == env
        assert msg.envelope.subject == payload.aggregate_id
        assert msg.correlation_id == "story-1"


def test_every_example_file_names_a_registered_type():
    stray = sorted(p.name for p in EXAMPLES.glob("*.json") if p.stem not in TYPES)
    assert not stray, f"examples of unregistered types: {stray}"


def test_every_topic_carries_only_registered_types():
    for topic in ALL_TOPICS:
        unknown = sorted(set(topic.message_types) - set(TYPES))
        assert not unknown, f"{topic.name} lists unregistered types {unknown}"


@pytest.mark.parametrize("message_type", sorted(TYPES))
def test_every_type_appears_on_exactly_one_topic(message_type: str):
    model = TYPES[message_type]
    service = message_type.split(".", 1)[0]
    if message_type.endswith(".command.rejected.v1"):
        expected = {f"{service}.rejections.v1"}
    elif message_type in COMMAND_AND_EVENT:
        expected = {f"{service}.intake.v1", f"{service}.events.v1"}
    else:
        assert issubclass(model, Command) != issubclass(model, Event), (
            f"{model.__name__} is both a command and an event; only {sorted(COMMAND_AND_EVENT)} may be"
        )
        expected = {f"{service}.intake.v1" if issubclass(model, Command) else f"{service}.events.v1"}
    topics = {t.name for t in topics_of(message_type)}
    assert topics == expected, f"{message_type} is on {sorted(topics) or 'no topic'}, expected {sorted(expected)}"


# ---------------------------------------------------------------------------------------
# The validator used above can fail
# ---------------------------------------------------------------------------------------

REJECTED = "grid.command.rejected.v1"


@pytest.fixture
def rejected_wire() -> dict:
    return wire_form(REJECTED, load_example(REJECTED))


@pytest.mark.parametrize(
    "mutate, expected",
    [
        (lambda m: m.update(type="grid.case.reported.v1"), "$.type: 'grid.case.reported.v1' is not"),
        (lambda m: m["data"].pop("reason"), "$.data.reason: required property missing"),
        (lambda m: m["data"].update(command_id=42), "$.data.command_id: integer is not of type string"),
        (lambda m: m.pop("data"), "$.data: required property missing"),
        (lambda m: m.update(specversion="0.3"), "$.specversion: '0.3' does not match"),
        (lambda m: m.update(subject="x" * 201), "$.subject: matches none of anyOf"),
        (lambda m: m["data"].update(field=["not", "a", "string"]), "$.data.field: matches none of anyOf"),
    ],
)
def test_validator_rejects_a_broken_envelope(rejected_wire: dict, mutate, expected: str):
    schema = latest_schema(REJECTED)
    assert validate(rejected_wire, schema) == []
    broken = copy.deepcopy(rejected_wire)
    mutate(broken)
    errors = validate(broken, schema)
    assert any(e.startswith(expected) for e in errors), errors


def test_validator_accepts_unknown_extension_attributes_and_data_fields(rejected_wire: dict):
    rejected_wire["traceparent"] = "00-abc-def-01"
    rejected_wire["data"]["new_optional_field"] = True
    assert validate(rejected_wire, latest_schema(REJECTED)) == []


def test_validator_reads_digit_classes_as_json_schema_does():
    schema = {"type": "string", "pattern": "^\\d{3}$"}
    assert validate("123", schema) == []
    assert validate("\u0661\u0662\u0663", schema) != []  # Arabic-Indic digits: not \\d in ECMA-262


def test_validator_refuses_keywords_it_does_not_implement():
    with pytest.raises(UnsupportedKeyword):
        validate({}, {"dependentRequired": {"a": ["b"]}})
