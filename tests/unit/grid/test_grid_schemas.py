"""The grid contract: codes, validation, and the example payloads in schemas/examples/."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from grid_builders import report
from pydantic import ValidationError

from schemas.common import Command, Event
from schemas.envelope import DecodeError, decode, encode, envelope_for
from schemas.grid import COMMANDS, EVENTS, CaseFeedback, CaseReported, Category, EscalationLevel, ReportCase
from schemas.registry import model_for, types_of
from schemas.topics import GRID
from schemas.codes import GridCode, community_id_of, is_grid_id, street_id_of

EXAMPLES = Path(__file__).resolve().parents[3] / "schemas" / "examples"
GRID_TYPES = sorted({m.TYPE for m in (*COMMANDS, *EVENTS)})


@pytest.mark.parametrize("type_", GRID_TYPES)
def test_every_grid_command_and_event_has_an_example(type_):
    assert (EXAMPLES / f"{type_}.json").is_file()


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("grid.*.json")), ids=lambda p: p.name)
def test_each_example_validates_against_its_model(path):
    type_ = path.name.removesuffix(".json")
    model = model_for(type_)
    assert model is not None, f"no model for {type_}"
    data = json.loads(path.read_text(encoding="utf-8"))
    payload = model.model_validate(data)
    assert payload.model_dump(mode="json") == model.model_validate(payload.model_dump(mode="json")).model_dump(mode="json")


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("grid.*.json")), ids=lambda p: p.name)
def test_each_example_travels_in_a_cloudevent_on_its_topic(path):
    type_ = path.name.removesuffix(".json")
    payload = model_for(type_).model_validate_json(path.read_bytes())
    topic = GRID.rejections if type_.endswith(".rejected.v1") else (GRID.intake if isinstance(payload, Command) else GRID.events)
    msg = decode(encode(envelope_for(payload, source="/test")), allowed=topic.message_types)
    assert msg.payload == payload and msg.envelope.subject == payload.aggregate_id


def test_feedback_is_both_a_command_and_an_event_as_the_contract_says():
    assert "grid.case.feedback.v1" in types_of("grid", "command")
    assert "grid.case.feedback.v1" in types_of("grid", "event")
    assert issubclass(CaseFeedback, Command) and issubclass(CaseFeedback, Event)


def test_the_grid_topics_carry_exactly_the_grid_commands_and_events():
    assert GRID.intake.message_types == {m.TYPE for m in COMMANDS}
    assert GRID.events.message_types == {m.TYPE for m in EVENTS}


@pytest.mark.parametrize(
    "bad", ["11010500100200", "1101050010020031", "11010500100200x", " 110105001002003", "", "١١٠١٠٥٠٠١٠٠٢٠٠٣"]
)
def test_a_malformed_grid_id_fails_validation(bad):
    with pytest.raises(ValidationError) as e:
        report(grid_id=bad)
    assert e.value.errors()[0]["loc"] == ("grid_id",)


def test_a_malformed_grid_id_in_a_record_is_an_invalid_data_error_naming_the_field():
    env = envelope_for(report(), source="/test").model_copy()
    raw = env.model_dump(mode="json")
    raw["data"]["grid_id"] = "12345"
    with pytest.raises(DecodeError) as e:
        decode(json.dumps(raw), allowed=GRID.intake.message_types)
    assert (e.value.reason, e.value.field) == ("invalid_data", "data.grid_id")


def test_a_hazard_needs_a_grade():
    with pytest.raises(ValidationError) as e:
        report(category="hazard.food")
    assert e.value.errors()[0]["loc"] == ("grade",)


def test_only_hazards_are_graded():
    with pytest.raises(ValidationError) as e:
        report(category="environment", grade="major")
    assert e.value.errors()[0]["loc"] == ("grade",)


@pytest.mark.parametrize("field,value", [("category", "noise"), ("location", {"lat": 91, "lon": 0, "address": ""}),
                                         ("reporter", {"kind": "robot", "id": "x"}), ("description", "  ")])
def test_invalid_report_fields_fail_validation(field, value):
    with pytest.raises(ValidationError) as e:
        report(**{field: value})
    assert e.value.errors()[0]["loc"][0] == field


def test_readers_ignore_fields_they_do_not_know():
    data = json.loads((EXAMPLES / "grid.case.reported.v1.json").read_text(encoding="utf-8"))
    assert CaseReported.model_validate({**data, "weather": "sunny"}) == CaseReported.model_validate(data)


def test_events_are_frozen():
    r = report()
    with pytest.raises(ValidationError):
        r.case_id = "other"  # type: ignore[misc]


def test_category_kinds():
    assert [c.value for c in Category if c.is_hazard] == ["hazard.fire", "hazard.production", "hazard.food"]
    assert [c.value for c in Category if c.is_dispute] == ["dispute.neighbour", "dispute.property", "dispute.labour"]


def test_escalation_climbs_community_street_district():
    assert EscalationLevel.COMMUNITY.next() is EscalationLevel.STREET
    assert EscalationLevel.STREET.next() is EscalationLevel.DISTRICT
    assert EscalationLevel.DISTRICT.next() is None


def test_grid_code_splits_into_division_street_community_and_grid():
    code = GridCode.parse("110105001002003")
    assert (code.division, code.street, code.community, code.grid) == ("110105", "001", "002", "003")
    assert (code.street_id, code.community_id, code.grid_id) == ("110105001", "110105001002", "110105001002003")
    assert (street_id_of("110105001002003"), community_id_of("110105001002003")) == ("110105001", "110105001002")


@pytest.mark.parametrize("bad", ["1101050010020", "abcdefghijklmno", "110105001002003\n", "１１０１０５００１００２００３", None])
def test_grid_code_refuses_a_malformed_id(bad):
    assert not is_grid_id(bad)
    with pytest.raises(ValueError):
        GridCode.parse(bad)


def test_grid_codes_parsed_before_are_kept_and_malformed_ones_never_are():
    first = GridCode.parse("110105001002004")
    assert GridCode.parse("110105001002004") is first  # kept: a handler parses a grid id per message

    class Sub(GridCode):
        pass

    assert type(Sub.parse("110105001002004")) is Sub  # a subclass gets its own class, not the kept code
    for _ in range(2):
        with pytest.raises(ValueError):
            GridCode.parse("11010500100200x")


def test_report_command_and_event_share_their_fields():
    missing = set(ReportCase.model_fields) - set(CaseReported.model_fields)
    assert missing == set()
