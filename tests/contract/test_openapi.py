"""The committed OpenAPI documents (``schemas/openapi/<svc>.json``) are what each service serves
at ``GET /openapi.json`` (built from its declared routes, without a database or broker: the app
module is imported in a child process), and they say what the kit promises of every route."""
from __future__ import annotations

import importlib.util
import json

import pytest
import schemathesis
from jsonschema import Draft202012Validator

from schemas.topics import BY_SERVICE
from services.kit import openapi
from services.kit.routes import template_params

SERVICES = openapi.SERVICES
METHODS = ("get", "put", "post", "delete", "patch", "head", "options")


@pytest.fixture(scope="module")
def built() -> dict[str, str]:
    return {svc: openapi.build(svc) for svc in SERVICES}


def operations(doc: dict):
    for path, item in doc["paths"].items():
        for method, op in item.items():
            if method in METHODS:
                yield path, method, op


def test_the_committed_documents_are_what_the_services_serve(built):
    stale = [svc for svc in SERVICES
             if not openapi.path_of(svc).exists() or openapi.path_of(svc).read_text(encoding="utf-8") != built[svc]]
    assert not stale, f"stale OpenAPI documents, run `make schemas`: {stale}"


@pytest.mark.parametrize("svc", SERVICES)
def test_every_operation_documents_what_the_kit_answers(built, svc):
    doc = json.loads(built[svc])
    assert doc["openapi"] == "3.1.0"
    scheme = doc["components"]["securitySchemes"]["bearerAuth"]
    assert scheme == {"type": "http", "scheme": "bearer", "bearerFormat": "JWT", "description": scheme["description"]}
    assert "JWKS" in scheme["description"]
    for path, method, op in operations(doc):
        codes = set(op["responses"])
        assert any(c.startswith("2") for c in codes), (path, method)
        declared = {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
        assert declared == set(template_params(path)), (path, method)
        public = path in ("/healthz", "/readyz", "/metrics", "/openapi.json") or path.startswith("/open311/")
        if public:
            assert "security" not in op and "401" not in codes, (path, method)
        else:
            assert op["security"] == [{"bearerAuth": []}] and "401" in codes, (path, method)
        if op.get("parameters") and not path.startswith("/open311/"):
            assert "422" in codes, (path, method)
        if path.startswith("/v1/"):
            assert "503" in codes, (path, method)
    assert set(doc["paths"]) >= {"/healthz", "/readyz", "/metrics", "/openapi.json", "/v1/commands"}
    assert set(doc["paths"]["/readyz"]["get"]["responses"]) == {"200", "503"}


@pytest.mark.parametrize("svc", SERVICES)
def test_the_command_endpoint_takes_every_intake_command(built, svc):
    doc = json.loads(built[svc])
    op = doc["paths"]["/v1/commands"]["post"]
    policy = {"403"} if importlib.util.find_spec(f"services.{svc}.app.policy") else set()  # roles: 403 forbidden
    assert set(op["responses"]) == {"200", "400", "401", "409", "413", "422", "503"} | policy
    body = op["requestBody"]["content"]["application/json"]["schema"]
    assert body["discriminator"]["propertyName"] == "type"
    assert set(body["discriminator"]["mapping"]) == set(BY_SERVICE[svc].intake.message_types)
    for ref in body["discriminator"]["mapping"].values():
        envelope = doc["components"]["schemas"][ref.rsplit("/", 1)[1]]
        assert set(envelope["required"]) == {"id", "type", "data"}
        assert envelope["dependentRequired"] == {"specversion": ["source"]}


@pytest.mark.parametrize("svc", SERVICES)
def test_every_schema_is_valid_json_schema_and_every_reference_resolves(built, svc):
    doc = json.loads(built[svc])
    components = doc["components"]["schemas"]
    for name, schema in components.items():
        Draft202012Validator.check_schema(schema)
    refs: list[str] = []

    def walk(node):
        if isinstance(node, dict):
            if isinstance(node.get("$ref"), str):
                refs.append(node["$ref"])
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(doc)
    prefix = "#/components/schemas/"
    assert all(r.startswith(prefix) and r[len(prefix):] in components for r in refs)
    assert {r[len(prefix):] for r in refs} == set(components), "components nothing refers to"


@pytest.mark.parametrize("svc", SERVICES)
def test_schemathesis_reads_every_operation(built, svc):
    schema = schemathesis.openapi.from_dict(json.loads(built[svc]))
    results = list(schema.get_all_operations())
    errors = [r.err() for r in results if hasattr(r, "err")]
    assert not errors
    assert len(results) == sum(1 for _ in operations(json.loads(built[svc])))
