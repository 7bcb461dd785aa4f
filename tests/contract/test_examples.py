"""Every message type has a worked example that passes everything a subscriber would apply.

``schemas/examples/<type>.json`` is the ``data`` of one realistic message of that type. It
must validate against its payload model and (wrapped in the envelope) against the committed
JSON Schema (with the ``jsonschema`` package's validator of the draft the document declares,
formats asserted), and survive the envelope codec unchanged. The topic registry and the type
registry must agree: every type lives on exactly one topic.
"""
from __future__ import annotations

import copy
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import orjson
import pytest
from jsonschema import Draft202012Validator
from jsonschema.protocols import Validator
from jsonschema.validators import validator_for

from schemas import generate
from schemas.common import Command, Event
from schemas.envelope import decode, encode, envelope_for
from schemas.registry import all_types
from schemas.topics import ALL_TOPICS

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


# The contract (docs/contract.md) names ``grid.case.feedback.v1`` both as a command (intake) and as an event;
# its model derives from Command and Event. No other type may be both.
COMMAND_AND_EVENT = {"grid.case.feedback.v1"}


def latest_schema(message_type: str) -> dict:
    revs = generate.revisions(generate.ROOT, message_type)
    assert revs, f"no committed JSON Schema for {message_type}; run `make schemas`"
    return generate.load_revision(generate.ROOT, message_type, revs[-1])


def validator(schema: dict) -> Validator:
    """A validator of the draft ``schema`` declares (``$schema``), with its format checker."""
    cls = validator_for(schema, default=None)
    assert cls is Draft202012Validator, f"unexpected dialect {schema.get('$schema')!r}"
    cls.check_schema(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


def validate(instance: object, schema: dict) -> list[str]:
    """Errors of ``instance`` against ``schema`` as "<json path>: <keyword>: <message>"; [] = valid."""
    return sorted(f"{e.json_path}: {e.validator}: {e.message}" for e in validator(schema).iter_errors(instance))


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
        (lambda m: m.update(type="grid.case.reported.v1"), "$.type: const: 'grid.command.rejected.v1' was expected"),
        (lambda m: m["data"].pop("reason"), "$.data: required: 'reason' is a required property"),
        (lambda m: m["data"].update(command_id=42), "$.data.command_id: type: 42 is not of type 'string'"),
        (lambda m: m.pop("data"), "$: required: 'data' is a required property"),
        (lambda m: m.update(specversion="0.3"), "$.specversion: pattern: '0.3' does not match"),
        (lambda m: m.update(subject="x" * 201), "$.subject: anyOf:"),
        (lambda m: m.update(time="22 November 2026"), "$.time: anyOf:"),
        (lambda m: m["data"].update(field=["not", "a", "string"]), "$.data.field: anyOf:"),
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


def test_validator_asserts_the_formats_the_schemas_use():
    checker = validator(latest_schema(REJECTED)).format_checker
    assert checker is not None and {"date-time", "date"} <= set(checker.checkers), (
        "date-time is only asserted with rfc3339-validator installed (the dev extras)"
    )

    def fmt(name: str) -> dict:
        return {"$schema": generate.DIALECT, "type": "string", "format": name}

    assert validate("2026-11-22T08:00:00+08:00", fmt("date-time")) == []
    assert validate("2026-11-22 08:00", fmt("date-time")) != []
    assert validate("2026-02-30", fmt("date")) != []


@pytest.mark.parametrize("digits", ["\u0661\u0661\u0660\u0661\u0660\u0665", "\uff11\uff11\uff10\uff11\uff10\uff15"])
def test_a_grid_id_in_other_digits_fails_the_committed_schema(digits: str):
    t = "grid.case.reported.v1"
    wire = wire_form(t, load_example(t))
    assert validate(wire, latest_schema(t)) == []
    wire["data"]["grid_id"] = digits + wire["data"]["grid_id"][len(digits):]
    assert any(e.startswith("$.data.grid_id: pattern:") for e in validate(wire, latest_schema(t)))
