"""schemathesis against a live worker: the committed OpenAPI document of a service is the test
plan; every answer must be one it declares (no 5xx, a declared status, content type and body).

Each ``tests/api/test_<svc>_api.py`` starts its service as a real worker on a real broker and
PostgreSQL (the fixtures of ``tests/conftest.py``), seeds a few records over ``POST
/v1/commands`` so that lists and lookups have something to answer, and lets schemathesis
generate requests for every operation: valid ones, and invalid ones (wrong types, bounds,
patterns, odd Unicode and NUL in the path, the query and the body). ``API_FUZZ_EXAMPLES``
sets how many examples each operation gets (default 20); the run is deterministic so that a
failure reproduces (``API_FUZZ_RANDOM=1`` draws new examples each run).
"""
from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Any

import requests
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from services.kit import openapi
from tests.support.identity import token
from tests.support.procs import Worker, http

TOKEN = token(sub="api-fuzz")
AUTH = {"Authorization": f"Bearer {TOKEN}"}
EXAMPLES = int(os.environ.get("API_FUZZ_EXAMPLES", "10"))
RANDOM = os.environ.get("API_FUZZ_RANDOM", "") not in ("", "0")
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance,
          negative_data_rejection, ignored_auth]


def load(service: str):
    """The committed document of ``service`` as a schemathesis schema, set up for the run."""
    schema = schemathesis.openapi.from_path(openapi.path_of(service))
    schema.config.generation.update(modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE],
                                    max_examples=EXAMPLES, with_security_parameters=False, allow_x00=True)
    return schema


def hypothesis_settings():
    """Bounded and reproducible: no shrinking (each step is an HTTP call), derandomized."""
    return settings(max_examples=EXAMPLES, deadline=None, derandomize=not RANDOM, database=None,
                    phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck),
                    print_blob=False)


def call(case, worker: Worker) -> None:
    """Send one generated request with a valid token and run every check on the answer."""
    case.call_and_validate(base_url=worker.url, headers=AUTH, checks=CHECKS, timeout=15)


def start(service: str, kafka: str, database_url: str, directory: Path, **env: str) -> Worker:
    prefix = f"{service.upper()}_"
    return Worker(f"services.{service}.app", {
        "KAFKA_BOOTSTRAP_SERVERS": kafka, "DATABASE_URL": database_url, "TOPIC_PARTITIONS": "4",
        **env}, prefix=prefix, log=directory / "worker.log").start()


async def command(worker: Worker, type_: str, **data: Any) -> dict:
    """POST one command; it must be accepted."""
    status, body = await http("POST", worker.url + "/v1/commands", token=TOKEN,
                              json={"id": str(uuid.uuid4()), "type": type_, "data": data})
    assert status == 200, (type_, status, body)
    return body


async def commands(worker: Worker, *payloads) -> None:
    """POST contract payloads as commands; each must be accepted."""
    for p in payloads:
        await command(worker, p.TYPE, **p.model_dump(mode="json", exclude_none=True))


def validate(schema, worker: Worker, method: str, template: str, path: str) -> requests.Response:
    """GET ``path`` and check the answer against the document's ``template`` operation."""
    response = requests.request(method, worker.url + path, headers=AUTH, timeout=15)
    schema[template][method].validate_response(response)
    return response


async def served_document(worker: Worker) -> dict:
    status, body = await http("GET", worker.url + "/openapi.json")
    assert status == 200
    return body


def committed_document(service: str) -> dict:
    return json.loads(openapi.path_of(service).read_text(encoding="utf-8"))


def stop(worker: Worker) -> None:
    code = worker.stop()
    assert code == 0, worker.log.read_text()[-4000:] if worker.log else code
