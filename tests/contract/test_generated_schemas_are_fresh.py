"""The committed JSON Schemas and AsyncAPI document are what ``make schemas`` would write."""
from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import ClassVar

import pytest
import yaml

from schemas import generate
from schemas.common import Event
from schemas.registry import all_types
from schemas.topics import ALL_TOPICS


def test_committed_generated_files_are_fresh():
    stale = generate.check(generate.ROOT)
    assert not stale, "stale generated schema files, run `make schemas`:\n" + "\n".join(stale)


@pytest.fixture
def generated(tmp_path: Path) -> Path:
    """A schemas/ output directory generated from scratch."""
    generate.write(tmp_path)
    return tmp_path


def test_regenerating_writes_nothing_new(generated: Path):
    assert generate.plan(generated) == []
    assert generate.check(generated) == []
    assert generate.main(["--check", "--root", str(generated)]) == 0


def test_check_lists_an_edited_asyncapi_document_as_stale(generated: Path, capsys):
    doc = generated / generate.ASYNCAPI_FILE
    doc.write_text(doc.read_text(encoding="utf-8").replace("3.0.0", "3.0.1", 1), encoding="utf-8")
    assert generate.main(["--check", "--root", str(generated)]) == 1
    assert "asyncapi.yaml" in capsys.readouterr().err


def test_check_lists_a_missing_revision_when_a_schema_changed(generated: Path, capsys):
    t = next(iter(all_types()))
    r1 = generated / generate.revision_path(t, 1)
    old = json.loads(r1.read_text(encoding="utf-8"))
    old["properties"]["data"]["description"] = "an older wording"
    r1.write_text(generate.canonical_json(old), encoding="utf-8")
    assert generate.main(["--check", "--root", str(generated)]) == 1
    err = capsys.readouterr().err
    assert generate.revision_path(t, 2) in err
    assert not (generated / generate.revision_path(t, 2)).exists(), "--check must write nothing"


def test_check_lists_schema_directories_of_unregistered_types(generated: Path):
    shutil.copytree(generated / "jsonschema" / next(iter(all_types())), generated / "jsonschema" / "gone.thing.v1")
    assert any("gone.thing.v1" in line for line in generate.check(generated))


def test_every_committed_schema_file_is_canonical_json_with_its_own_id():
    for t in all_types():
        for n in generate.revisions(generate.ROOT, t):
            path = generate.ROOT / generate.revision_path(t, n)
            text = path.read_text(encoding="utf-8")
            doc = json.loads(text)
            assert text == generate.canonical_json(doc), f"{path} is not canonical JSON"
            assert doc["$id"] == generate.schema_id(t, n)
            assert doc["$schema"] == "https://json-schema.org/draft/2020-12/schema"
            assert doc["properties"]["type"]["const"] == t


class _Fake(Event):
    """A made-up event for generator tests (registered only through monkeypatching)."""

    SUBJECT: ClassVar[str] = "thing_id"
    thing_id: str
    size: int


class _FakeWithOptionalField(_Fake):
    """The made-up event with one more optional field."""

    colour: str | None = None


class _FakeWithoutSize(Event):
    """The made-up event with ``size`` removed (a breaking change)."""

    SUBJECT: ClassVar[str] = "thing_id"
    thing_id: str


FAKE_TYPE = "testing.thing.happened.v1"


def _register_fake(monkeypatch, model) -> None:
    monkeypatch.setattr(model, "TYPE", FAKE_TYPE, raising=False)  # after class creation: not registered
    monkeypatch.setattr(generate, "all_types", lambda: {**all_types(), FAKE_TYPE: model})


def test_a_new_type_gets_revision_1_and_a_message_in_the_asyncapi_document(generated: Path, monkeypatch):
    _register_fake(monkeypatch, _Fake)
    written = {p.path for p in generate.write(generated)}
    assert written == {generate.revision_path(FAKE_TYPE, 1), generate.ASYNCAPI_FILE}
    doc = yaml.safe_load((generated / generate.ASYNCAPI_FILE).read_text(encoding="utf-8"))
    msg = doc["components"]["messages"][FAKE_TYPE]
    assert msg["payload"]["schema"]["$ref"] == f"./{generate.revision_path(FAKE_TYPE, 1)}"
    assert "data.thing_id" in msg["bindings"]["kafka"]["key"]["description"]


def test_a_changed_type_gets_a_new_revision_and_the_old_one_stays_byte_for_byte(generated: Path, monkeypatch):
    _register_fake(monkeypatch, _Fake)
    generate.write(generated)
    r1 = (generated / generate.revision_path(FAKE_TYPE, 1)).read_bytes()

    _register_fake(monkeypatch, _FakeWithOptionalField)
    generate.write(generated)
    assert generate.revisions(generated, FAKE_TYPE) == [1, 2]
    assert (generated / generate.revision_path(FAKE_TYPE, 1)).read_bytes() == r1
    r2 = generate.load_revision(generated, FAKE_TYPE, 2)
    assert r2["$id"] == generate.schema_id(FAKE_TYPE, 2)
    assert generate.compatibility_problems(generate.load_revision(generated, FAKE_TYPE, 1), r2) == []
    doc = yaml.safe_load((generated / generate.ASYNCAPI_FILE).read_text(encoding="utf-8"))
    assert doc["components"]["messages"][FAKE_TYPE]["payload"]["schema"]["$ref"].endswith("/r2.json")

    _register_fake(monkeypatch, _FakeWithoutSize)
    generate.write(generated)
    r3 = generate.load_revision(generated, FAKE_TYPE, 3)
    assert set(generate.compatibility_problems(r2, r3)) == {
        "$.data.size: property removed",
        "$.data.colour: property removed",
    }


def test_the_asyncapi_document_has_a_channel_and_an_operation_per_topic():
    doc = yaml.safe_load((generate.ROOT / generate.ASYNCAPI_FILE).read_text(encoding="utf-8"))
    assert doc["asyncapi"] == "3.0.0"
    assert doc["servers"]["kafka"]["protocol"] == "kafka"
    assert set(doc["channels"]) == {t.name for t in ALL_TOPICS}
    for topic in ALL_TOPICS:
        channel = doc["channels"][topic.name]
        assert channel["address"] == topic.name
        if topic.partitions is not None:
            assert channel["bindings"]["kafka"]["partitions"] == topic.partitions
        if topic.kind != "dlq":
            assert set(channel["messages"]) == set(topic.message_types)
        action = "receive" if topic.kind == "intake" else "send"
        op = doc["operations"][f"{action}.{topic.name}"]
        assert op["action"] == action and op["channel"] == {"$ref": f"#/channels/{topic.name}"}
    for t in all_types():
        msg = doc["components"]["messages"][t]
        assert msg["contentType"].startswith("application/cloudevents+json")
        ref = msg["payload"]["schema"]["$ref"]
        assert (generate.ROOT / ref).is_file(), ref
