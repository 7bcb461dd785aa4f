"""Every committed JSON Schema revision stays backward compatible with its predecessor.

Subscribers written against ``r<N>`` must keep working when producers move to ``r<N+1>``:
additions only as optional fields, nothing removed, nothing narrowed.
"""
from __future__ import annotations

import copy
from typing import Any

import pytest

from schemas import generate
from schemas.generate import compatibility_problems
from schemas.registry import all_types

TYPES = sorted(all_types())


@pytest.mark.parametrize("message_type", TYPES)
def test_each_revision_is_backward_compatible_with_the_one_before(message_type: str):
    revs = generate.revisions(generate.ROOT, message_type)
    assert revs, f"no committed JSON Schema for {message_type}; run `make schemas`"
    assert revs == list(range(1, len(revs) + 1)), f"{message_type}: revisions must be r1..rN without gaps: {revs}"
    docs = [generate.load_revision(generate.ROOT, message_type, n) for n in revs]
    for n, (old, new) in enumerate(zip(docs, docs[1:]), start=1):
        problems = compatibility_problems(old, new)
        assert not problems, f"{message_type} r{n + 1} breaks r{n}:\n" + "\n".join(problems)


@pytest.mark.parametrize("message_type", TYPES)
def test_the_current_schema_is_compatible_with_itself(message_type: str):
    doc = generate.envelope_schema(message_type)
    assert compatibility_problems(doc, copy.deepcopy(doc)) == []


# ---------------------------------------------------------------------------------------
# The checker itself, on small hand-made pairs
# ---------------------------------------------------------------------------------------


def obj(props: dict[str, Any], required: list[str] = (), **more: Any) -> dict[str, Any]:
    return {"type": "object", "properties": props, "required": list(required), **more}


STR = {"type": "string"}
INT = {"type": "integer"}
OPT_STR = {"anyOf": [{"type": "string"}, {"type": "null"}], "default": None}

COMPATIBLE = {
    "identical": (obj({"a": STR}, ["a"]), obj({"a": STR}, ["a"])),
    "optional property added": (obj({"a": STR}, ["a"]), obj({"a": STR, "b": OPT_STR}, ["a"])),
    "required property made optional": (obj({"a": STR, "b": STR}, ["a", "b"]), obj({"a": STR, "b": STR}, ["a"])),
    "integer widened to number": (obj({"n": INT}), obj({"n": {"type": "number"}})),
    "string made nullable": (obj({"a": STR}), obj({"a": OPT_STR})),
    "enum value added": (obj({"e": {"enum": ["x", "y"]}}), obj({"e": {"enum": ["x", "y", "z"]}})),
    "maxLength loosened": (obj({"a": {"type": "string", "maxLength": 10}}), obj({"a": {"type": "string", "maxLength": 20}})),
    "\\d spelled as [0-9] (the same in JSON Schema regexes)": (
        obj({"c": {"type": "string", "pattern": "^\\d{12}$"}}), obj({"c": {"type": "string", "pattern": "^[0-9]{12}$"}})
    ),
    "minimum dropped": (obj({"n": {"type": "integer", "minimum": 1}}), obj({"n": INT})),
    "description and title changed": (obj({"a": {**STR, "title": "A"}}), obj({"a": {**STR, "title": "Aa", "description": "d"}})),
    "additionalProperties false dropped": (obj({"a": STR}, additionalProperties=False), obj({"a": STR})),
    "inline schema moved behind a $ref": (
        obj({"loc": obj({"lat": {"type": "number"}}, ["lat"])}),
        {**obj({"loc": {"$ref": "#/$defs/Loc"}}), "$defs": {"Loc": obj({"lat": {"type": "number"}}, ["lat"])}},
    ),
}

INCOMPATIBLE = {
    "property removed": (obj({"a": STR, "b": OPT_STR}, ["a"]), obj({"a": STR}, ["a"]), "$.b: property removed"),
    "optional property made required": (obj({"a": STR, "b": STR}, ["a"]), obj({"a": STR, "b": STR}, ["a", "b"]), "$.b: newly required"),
    "property added as required": (obj({"a": STR}), obj({"a": STR, "b": STR}, ["b"]), "$.b: added as required"),
    "type changed": (obj({"a": STR}), obj({"a": INT}), "$.a: type narrowed or changed"),
    "number narrowed to integer": (obj({"n": {"type": "number"}}), obj({"n": INT}), "$.n: type narrowed"),
    "null no longer accepted": (obj({"a": OPT_STR}), obj({"a": STR}), "$.a: type narrowed"),
    "enum value removed": (obj({"e": {"enum": ["x", "y"]}}), obj({"e": {"enum": ["x"]}}), "$.e: enum value(s) removed"),
    "const changed": (obj({"t": {"const": "a.v1"}}), obj({"t": {"const": "a.v2"}}), "$.t: enum value(s) removed or const changed"),
    "free string restricted to an enum": (obj({"e": STR}), obj({"e": {"type": "string", "enum": ["x"]}}), "$.e: newly restricted"),
    "additionalProperties newly false": (obj({"a": STR}), obj({"a": STR}, additionalProperties=False), "$: additionalProperties newly false"),
    "maxLength tightened": (obj({"a": {"type": "string", "maxLength": 20}}), obj({"a": {"type": "string", "maxLength": 10}}), "$.a: maxLength tightened"),
    "pattern added": (obj({"a": STR}), obj({"a": {"type": "string", "pattern": "^\\d+$"}}), "$.a: pattern added or changed"),
    "pattern changed": (
        obj({"a": {"type": "string", "pattern": "^\\d{12}$"}}), obj({"a": {"type": "string", "pattern": "^[0-9]{9}$"}}),
        "$.a: pattern added or changed",
    ),
    "array item type changed": (obj({"l": {"type": "array", "items": STR}}), obj({"l": {"type": "array", "items": INT}}), "$.l[]: type narrowed"),
    "map value type changed": (
        obj({"m": {"type": "object", "additionalProperties": {"type": "number"}}}),
        obj({"m": {"type": "object", "additionalProperties": STR}}),
        "$.m.*: type narrowed",
    ),
    "property removed inside a $ref'd definition": (
        {**obj({"loc": {"$ref": "#/$defs/Loc"}}), "$defs": {"Loc": obj({"lat": {"type": "number"}, "lon": {"type": "number"}})}},
        {**obj({"loc": {"$ref": "#/$defs/Loc"}}), "$defs": {"Loc": obj({"lat": {"type": "number"}})}},
        "$.loc.lon: property removed",
    ),
    "enum value removed behind a nullable $ref": (
        {**obj({"g": {"anyOf": [{"$ref": "#/$defs/G"}, {"type": "null"}]}}), "$defs": {"G": {"type": "string", "enum": ["a", "b"]}}},
        {**obj({"g": {"anyOf": [{"$ref": "#/$defs/G"}, {"type": "null"}]}}), "$defs": {"G": {"type": "string", "enum": ["a"]}}},
        "$.g: enum value(s) removed",
    ),
}


@pytest.mark.parametrize("name", sorted(COMPATIBLE))
def test_checker_accepts_a_compatible_change(name: str):
    old, new = COMPATIBLE[name]
    assert compatibility_problems(old, new) == []


@pytest.mark.parametrize("name", sorted(INCOMPATIBLE))
def test_checker_refuses_an_incompatible_change(name: str):
    old, new, expected = INCOMPATIBLE[name]
    problems = compatibility_problems(old, new)
    assert any(p.startswith(expected) for p in problems), problems


def test_checker_follows_recursive_definitions_without_looping():
    tree = {**obj({"root": {"$ref": "#/$defs/Node"}}),
            "$defs": {"Node": obj({"name": STR, "children": {"type": "array", "items": {"$ref": "#/$defs/Node"}}})}}
    smaller = copy.deepcopy(tree)
    del smaller["$defs"]["Node"]["properties"]["name"]
    assert compatibility_problems(tree, copy.deepcopy(tree)) == []
    assert "$.root.name: property removed" in compatibility_problems(tree, smaller)


def test_checker_refuses_a_field_removed_from_a_real_payload():
    t = "grid.command.rejected.v1"
    old = generate.envelope_schema(t)
    new = copy.deepcopy(old)
    del new["properties"]["data"]["properties"]["reason"]
    new["properties"]["data"]["required"].remove("reason")
    assert compatibility_problems(old, new) == ["$.data.reason: property removed"]
