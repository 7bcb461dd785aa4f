"""The personal data inventory: every field that holds personal data is tagged (``x-pii``),
the tags reach the committed JSON Schemas and AsyncAPI document, and the README's data
protection table lists, per topic, the tagged fields that leave each service and who reads
them (``python -m services.kit.piidoc``)."""
from __future__ import annotations

import copy

import pytest
import yaml
from pydantic import BaseModel

from schemas import generate, grid
from schemas.common import PII_CATEGORIES, CommandRejectedData, pii
from schemas.generate import compatibility_problems
from schemas.pii import NOT_KEPT, field_tags, inventory, minimised, restored, schema_paths, tagged_paths
from schemas.registry import all_types
from services.kit import piidoc

TYPES = sorted(all_types())

PERSONAL_NAMES = {
    "description": "free_text", "comment": "free_text", "note": "free_text", "notes": "free_text",
    "result": "free_text", "detail": "free_text",
    "location": "location", "route": "location", "address": "location", "lat": "location", "lon": "location",
    "media": "media", "name": "name", "phone": "contact", "email": "contact",
    "resident_id": "identifier", "member_id": "identifier", "holder_id": "identifier", "reporter": "identifier",
    "reporter_id": "identifier", "assignee_id": "identifier", "grid_worker_id": "identifier",
    "account_id": "identifier", "debit_account": "identifier", "credit_account": "identifier",
    "reviewer_id": "identifier", "evaluator_id": "identifier", "operator_id": "identifier",
    "approver_id": "identifier", "registrar_id": "identifier", "dispatcher_id": "identifier",
    "verifier_id": "identifier", "handled_by": "identifier", "requested_by": "identifier",
    "cancelled_by": "identifier", "dispatched_by": "identifier", "recorded_by": "identifier",
}
"""Field names that hold personal data wherever they appear in the contract, with their category
(a new field of such a name must be tagged; rejections' ``detail`` is the service's own text)."""

NAMES_OF_ORGANISATIONS = {
    "EstablishOrg": {"name"}, "OrgEstablished": {"name"}, "ReportUnit": {"name"}, "UnitReported": {"name"},
}
"""Fields of such a name that name an organisation, not a person: a Party organisation's name
(团结湖社区第三网格党支部) and a resident unit's (朝阳区教育委员会)."""


def _models(model: type[BaseModel], seen: set[type[BaseModel]]) -> None:
    if model in seen:
        return
    seen.add(model)
    for info in model.model_fields.values():
        for arg in _args(info.annotation):
            if isinstance(arg, type) and issubclass(arg, BaseModel):
                _models(arg, seen)


def _args(t) -> list:
    out = [t]
    for a in getattr(t, "__args__", ()) or ():
        out += _args(a)
    return out


def all_models() -> list[type[BaseModel]]:
    seen: set[type[BaseModel]] = set()
    for model in all_types().values():
        _models(model, seen)
    return sorted(seen, key=lambda m: (m.__module__, m.__name__))


@pytest.mark.parametrize("model", all_models(), ids=lambda m: m.__name__)
def test_fields_named_as_personal_data_are_tagged_with_their_category(model):
    tags = field_tags(model)
    assert set(tags.values()) <= set(PII_CATEGORIES)
    if issubclass(model, CommandRejectedData):
        return
    for name in model.model_fields:
        if name in PERSONAL_NAMES and name not in NAMES_OF_ORGANISATIONS.get(model.__name__, ()):
            assert tags.get(name) == PERSONAL_NAMES[name], f"{model.__name__}.{name} must be tagged x-pii " \
                                                           f"{PERSONAL_NAMES[name]!r}"


def test_an_unknown_category_is_refused():
    with pytest.raises(ValueError, match="unknown personal data category"):
        pii("secrets")


@pytest.mark.parametrize("message_type", TYPES)
def test_the_committed_json_schema_carries_the_tags(message_type):
    model = all_types()[message_type]
    last = generate.revisions(generate.ROOT, message_type)[-1]
    doc = generate.load_revision(generate.ROOT, message_type, last)
    assert schema_paths(doc["properties"]["data"], doc) == tagged_paths(model)


def test_every_asyncapi_message_lists_its_personal_fields():
    doc = yaml.safe_load((generate.ROOT / generate.ASYNCAPI_FILE).read_text(encoding="utf-8"))
    messages = doc["components"]["messages"]
    for t in TYPES:
        assert messages[t].get("x-pii", {}) == tagged_paths(all_types()[t]), t
    assert messages["grid.case.reported.v1"]["x-pii"] == {
        "description": "free_text", "location": "location", "media": "media", "reporter": "identifier"}


def test_tagging_a_field_is_a_compatible_revision_of_the_same_shape(tmp_path):
    """A revision that only adds x-pii validates what its predecessor did: compatible, and the
    generator says it has the same shape."""
    t = "grid.case.reported.v1"
    body = generate.envelope_schema(t)
    untagged = generate._without_annotations(body)
    assert untagged != body
    assert compatibility_problems(untagged, copy.deepcopy(body)) == []
    d = tmp_path / generate.JSONSCHEMA_DIR / t
    d.mkdir(parents=True)
    (d / "r1.json").write_text(generate.canonical_json({"$id": generate.schema_id(t, 1), **untagged}), encoding="utf-8")
    (n, planned), = [v for k, v in generate.latest_revisions(tmp_path).items() if k == t]
    assert n == 2 and planned[0].reason == "personal data tags (x-pii) changed since r1, same shape"


def test_the_readme_data_protection_table_is_the_inventory():
    """Fails on any personal field added to or removed from an event, or a new reader of one,
    until ``python -m services.kit.piidoc`` is run and the README committed."""
    fresh = piidoc.current()
    assert piidoc.section(piidoc.README.read_text(encoding="utf-8")) == fresh, \
        "README.md's data protection section is stale: run `python -m services.kit.piidoc`"
    inv = inventory()
    assert set(inv) == {f"{s}.{k}.v1" for s in ("grid", "orders", "points", "assessment", "party")
                        for k in ("events", "rejections")}
    for topic, types in inv.items():
        for mtype, paths in types.items():
            line = next(x for x in fresh.splitlines() if x.startswith(f"| `{topic}` | `{mtype}` |"))
            for p, c in paths.items():
                assert f"`{p}` ({c})" in line


def test_the_table_names_the_services_that_read_each_type():
    read_by = piidoc.readers()
    assert read_by["grid.case.registered.v1"] == ["orders", "points", "assessment"]
    assert "assessment" in read_by["orders.order.evaluated.v1"] and "points" in read_by["orders.order.evaluated.v1"]
    # only assessment takes the handling, for its verification deadline (核查及时率): its log keeps
    # neither the result, the photos nor who handled it
    assert read_by["grid.case.handled.v1"] == ["assessment"]
    from services.assessment.domain.history import log_data
    handled = grid.CaseHandled(case_id="c-1", result="已清理", media=("m.jpg",), handled_by="staff-1",
                               verify_due_at="2026-11-02T09:00:00+08:00").model_dump(mode="json")
    assert set(log_data(grid.CaseHandled, handled)) == {"case_id", "verify_due_at", "occurred_at"}


def test_a_reader_without_a_word_on_what_it_keeps_fails_the_generator(monkeypatch):
    monkeypatch.delitem(piidoc.KEEPS, ("grid", "assessment"))
    with pytest.raises(ValueError, match="grid.*assessment"):
        piidoc.current()


def test_minimised_keeps_ids_and_facts_and_restored_reads_them_back():
    data = grid.CaseReported(
        case_id="c-1", grid_id="110105001002003", category="environment", description="堆物",
        location=grid.Location(lat=39.9, lon=116.4, address="1 号楼"), media=("m.jpg",),
        reporter=grid.Reporter(kind="resident", id="r-1")).model_dump(mode="json")
    kept = minimised(grid.CaseReported, {**data, "phone": "138"})
    assert set(data) - set(kept) == {"description", "location", "media"}
    assert "phone" not in kept  # a field no revision this service knows: not kept either
    assert kept["reporter"] == {"kind": "resident", "id": "r-1"}
    back = restored(grid.CaseReported, kept)
    assert back.reporter.id == "r-1" and back.category.value == "environment" and back.media == ()
    assert NOT_KEPT >= {"free_text", "location", "media", "name", "contact"}
    assert "identifier" not in NOT_KEPT


def test_a_reader_of_more_than_erasures_is_said_to_keep_more_than_nothing():
    """What a service keeps of another's facts is said, not only what it makes of its erasures
    (a second word on one pair of services replaced the first)."""
    read_by = piidoc.readers()
    facts = {(mtype.split(".")[0], reader) for mtype, readers in read_by.items() if ".person.erased." not in mtype
             for reader in readers}
    assert ("party", "assessment") in facts
    assert [pair for pair in sorted(facts) if piidoc.KEEPS.get(pair) == piidoc.ERASED] == []
