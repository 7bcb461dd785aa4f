"""The OpenAPI 3.1 document of a service, built from its declared routes (``GET /openapi.json``),
and the generator of the committed copies ``schemas/openapi/<svc>.json`` (``make schemas``)::

    python -m services.kit.openapi            # write what changed
    python -m services.kit.openapi --check    # write nothing; exit 1 listing stale files

Each route's path and query models become its parameters, its body model the request body and
its answers (:meth:`services.kit.routes.Route.answers`) the responses; every model's JSON Schema
comes from pydantic (``TypeAdapter.json_schemas``) into ``components/schemas``. Authenticated
operations name the ``bearerAuth`` security scheme. Nothing here needs a database or a broker:
the generator imports each service's app module in a child process (one faust app per process)
and asks its runtime for the document.
"""
from __future__ import annotations

import argparse
import copy
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter

from .routes import Documented, openapi_path

ROOT = Path(__file__).resolve().parents[2]
OUT_DIR = ROOT / "schemas" / "openapi"
SERVICES = ("grid", "orders", "points", "assessment", "party")
OPENAPI_VERSION = "3.1.0"
API_VERSION = "1.0.0"
_REF = "#/components/schemas/{model}"


def document(rt) -> dict[str, Any]:
    """The OpenAPI document of a :class:`~services.kit.runtime.ServiceRuntime`'s routes."""
    routes = [r for by_method in rt._routes.values() for r in by_method.values()]
    inputs: list[tuple[Any, str, TypeAdapter]] = []
    for i, r in enumerate(routes):
        for part, model in (("path", r.path), ("query", r.query)):
            if model is not None:
                inputs.append(((i, part), "validation", TypeAdapter(model)))
        if r.body is not None:
            inputs.append(((i, "body"), "validation",
                           TypeAdapter(r.body.type if isinstance(r.body, Documented) else r.body)))
        for status, answer in r.answers().items():
            if answer.type is not None:
                inputs.append(((i, status), "serialization", TypeAdapter(answer.type)))
    schemas, top = TypeAdapter.json_schemas(inputs, ref_template=_REF)
    defs: dict[str, Any] = top.get("$defs", {})

    def schema_of(i: int, part: Any) -> dict[str, Any]:
        mode = "serialization" if isinstance(part, int) else "validation"
        return schemas[((i, part), mode)]

    paths: dict[str, dict[str, Any]] = {}
    operation_ids: set[str] = set()
    for i, r in enumerate(routes):
        op: dict[str, Any] = {"operationId": _unique(r.fn.__name__.strip("_"), r.method, operation_ids)}
        if r.summary:
            op["summary"] = r.summary
        if r.description:
            op["description"] = r.description
        params = []
        for part, model in (("path", r.path), ("query", r.query)):
            if model is not None:
                params += _parameters(_resolve(schema_of(i, part), defs), part)
        if params:
            op["parameters"] = params
        if r.body is not None:
            op["requestBody"] = {"required": True, "content": {"application/json": {"schema": schema_of(i, "body")}}}
        responses = {}
        for status, answer in r.answers().items():
            resp: dict[str, Any] = {"description": answer.description}
            if answer.type is not None:
                resp["content"] = {answer.content_type: {"schema": schema_of(i, status)}}
            responses[str(status)] = resp
        op["responses"] = responses
        if r.auth:
            op["security"] = [{"bearerAuth": []}]
        if r.roles is not None:
            op["x-roles"] = sorted(r.roles)
        paths.setdefault(openapi_path(r.template), {})[r.method.lower()] = op
    paths["/metrics"] = {"get": {
        "operationId": _unique("metrics", "GET", operation_ids),
        "summary": "Prometheus metrics (text exposition format)",
        "responses": {"200": {"description": "OK", "content": {"text/plain": {"schema": {"type": "string"}}}}}}}
    doc = {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": f"{rt.service} service",
            "version": API_VERSION,
            "description": (f"Queries and commands of the {rt.service} service. Errors are JSON: "
                            "`{\"error\": code, \"detail\": text, \"field\": dotted.path}`."),
        },
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": {},
            "securitySchemes": {"bearerAuth": {
                "type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                "description": "a JWT from the district's identity provider, verified against its public keys "
                               "(`JWKS`) with the issuer `JWT_ISSUER` and the audience `JWT_AUDIENCE`"}},
        },
    }
    doc["components"]["schemas"] = _reachable(doc["paths"], defs)
    return doc


def _unique(name: str, method: str, taken: set[str]) -> str:
    out = name if name not in taken else f"{name}_{method.lower()}"
    n = 2
    while out in taken:
        out, n = f"{name}_{n}", n + 1
    taken.add(out)
    return out


def _resolve(schema: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    return defs[ref.rsplit("/", 1)[1]] if ref else schema


def _parameters(model_schema: dict[str, Any], where: str) -> list[dict[str, Any]]:
    """One parameter per property of a path or query model's schema."""
    required = set(model_schema.get("required", []))
    out = []
    for name, prop in model_schema.get("properties", {}).items():
        prop = _not_null(copy.deepcopy(prop))
        prop.pop("title", None)
        param: dict[str, Any] = {"name": name, "in": where, "required": where == "path" or name in required}
        if where == "query" and not param["required"]:
            param["allowEmptyValue"] = True  # an empty value is the same as an absent one
        description = prop.pop("description", None)
        if description:
            param["description"] = description
        param["schema"] = prop
        out.append(param)
    return out


def _not_null(prop: dict[str, Any]) -> dict[str, Any]:
    """A parameter's schema without its ``null`` branch: an absent parameter is the None."""
    if prop.get("default", 0) is None:
        del prop["default"]
    branches = prop.get("anyOf")
    if branches and any(b == {"type": "null"} for b in branches):
        rest = [b for b in branches if b != {"type": "null"}]
        del prop["anyOf"]
        if len(rest) == 1:
            prop = {**rest[0], **prop}
        else:
            prop["anyOf"] = rest
    return prop


def _reachable(root: Any, defs: dict[str, Any]) -> dict[str, Any]:
    """The component schemas that ``root`` refers to, directly or through each other."""
    keep: dict[str, Any] = {}
    todo = [root]
    while todo:
        node = todo.pop()
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
                name = ref.rsplit("/", 1)[1]
                if name not in keep:
                    keep[name] = defs[name]
                    todo.append(defs[name])
            todo.extend(node.values())
        elif isinstance(node, list):
            todo.extend(node)
    return dict(sorted(keep.items()))


# -- the committed documents -----------------------------------------------------------------------


def canonical_json(doc: Any) -> str:
    from schemas.generate import canonical_json as canonical

    return canonical(doc)


def build(service: str) -> str:
    """The document of ``service`` as canonical JSON, built in a child process from its app
    module (so that no two faust apps share a process; no database or broker is contacted)."""
    with tempfile.TemporaryDirectory(prefix="openapi-") as tmp:
        out = Path(tmp) / "doc.json"
        env = {**os.environ, "VAR_DIR": tmp}  # faust's data directory goes there, not into the tree
        proc = subprocess.run([sys.executable, "-m", "services.kit.openapi", "--print", service, "--out", str(out)],
                              cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
        if proc.returncode != 0:
            raise RuntimeError(f"building the {service} OpenAPI document failed:\n{proc.stderr[-4000:]}")
        return out.read_text(encoding="utf-8")


def path_of(service: str, root: Path = OUT_DIR) -> Path:
    return root / f"{service}.json"


def stale(root: Path = OUT_DIR, services=SERVICES) -> dict[str, str]:
    """service -> its fresh document, for every committed document that differs from it."""
    out = {}
    for svc in services:
        fresh = build(svc)
        p = path_of(svc, root)
        if not p.exists() or p.read_text(encoding="utf-8") != fresh:
            out[svc] = fresh
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.kit.openapi", description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 listing stale files")
    parser.add_argument("--print", dest="service", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--root", type=Path, default=OUT_DIR, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.service:  # the child process: import the app module, write its document
        import importlib

        rt = importlib.import_module(f"services.{args.service}.app.main").rt
        args.out.write_text(canonical_json(rt.openapi()), encoding="utf-8")
        return 0
    changed = stale(args.root)

    def rel(svc: str) -> Path:
        p = path_of(svc, args.root).resolve()
        return p.relative_to(ROOT) if p.is_relative_to(ROOT) else p

    if args.check:
        if changed:
            print("stale OpenAPI documents (run `make schemas`):", file=sys.stderr)
            for svc in changed:
                print(f"  {rel(svc)}", file=sys.stderr)
            return 1
        print("OpenAPI documents are fresh")
        return 0
    args.root.mkdir(parents=True, exist_ok=True)
    for svc, text in changed.items():
        path_of(svc, args.root).write_text(text, encoding="utf-8")
        print(f"wrote {rel(svc)}")
    if not changed:
        print("OpenAPI documents are fresh")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
