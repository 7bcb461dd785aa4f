"""Generate the contract's JSON Schemas and AsyncAPI document (``make schemas``).

    python -m schemas.generate            # write what changed
    python -m schemas.generate --check    # write nothing; exit 1 and list stale files

Inputs are only the payload models (:func:`schemas.registry.all_types`), the envelope
(:class:`schemas.envelope.CloudEvent`) and the topic registry (:mod:`schemas.topics`), so a
new message type or topic appears here without touching this module.

**JSON Schema** (draft 2020-12), one document per message type: the whole CloudEvent
envelope with ``type`` fixed to the message type (``const``) and ``data`` = the payload
model's validation schema. Revisions are kept side by side so that compatibility can be
checked without git history::

    schemas/jsonschema/<type>/r1.json, r2.json, ...

A new revision is written only when the schema differs from the latest one (compared
byte-wise as canonical JSON: sorted keys, two-space indent, ``$id`` left out); an existing
revision is never rewritten. That holds for annotations too: tagging a field as personal
data (``x-pii``, :mod:`schemas.pii`) writes a new revision, said to have the same shape as
the one before; it validates exactly what its predecessor did, so it is compatible and a
subscriber pinned to the older revision loses nothing. :func:`compatibility_problems` says whether a revision is
backward compatible with its predecessor (optional-only additions); the contract tests
apply it to every pair of consecutive revisions. Before a type has ever been released, a
wrong revision can be dropped by deleting ``schemas/jsonschema/<type>/r<N>.json`` by hand
and regenerating; after release, a breaking change needs a new ``.v2`` type instead.

**AsyncAPI 3.0** (``schemas/asyncapi.yaml``): a channel per topic of
:data:`schemas.topics.ALL_TOPICS` (address = topic name, Kafka bindings), a message per
type whose payload references the latest JSON Schema revision (and whose ``x-pii`` lists the
payload's personal data fields, :func:`schemas.pii.tagged_paths`), and the operations seen
from each service (it *receives* its intake topic, *sends* on its events, rejections and
dead-letter topics). Output is sorted, so regenerating is stable.
"""
from __future__ import annotations

import argparse
import copy
import functools
import inspect
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .common import CommandRejectedData, Payload
from .envelope import CONTENT_TYPE, CONTENT_TYPE_HEADER, CloudEvent
from .pii import tagged_paths
from .registry import all_types
from .topics import ALL_TOPICS, Topic

ROOT = Path(__file__).resolve().parent
JSONSCHEMA_DIR = "jsonschema"
ASYNCAPI_FILE = "asyncapi.yaml"
DIALECT = "https://json-schema.org/draft/2020-12/schema"
SCHEMA_FORMAT = "application/schema+json;version=draft-2020-12"
ID_PREFIX = "urn:grassroots-platform:jsonschema:"
KAFKA_BINDING_VERSION = "0.5.0"
ASYNCAPI_VERSION = "3.0.0"
CONTRACT_VERSION = "1.0.0"
_REVISION_RE = re.compile(r"^r([1-9][0-9]*)\.json$")


# ---------------------------------------------------------------------------------------
# JSON Schema per message type
# ---------------------------------------------------------------------------------------


def canonical_json(obj: Any) -> str:
    """The one textual form of every generated JSON file (sorted keys, stable bytes)."""
    return json.dumps(obj, sort_keys=True, indent=2, ensure_ascii=False) + "\n"


def schema_id(message_type: str, revision: int) -> str:
    """The stable ``$id`` of one revision of a message type's schema."""
    return f"{ID_PREFIX}{message_type}:r{revision}"


def revision_path(message_type: str, revision: int) -> str:
    """Path of a revision relative to the ``schemas/`` directory."""
    return f"{JSONSCHEMA_DIR}/{message_type}/r{revision}.json"


def envelope_schema(message_type: str, model: type[Payload] | None = None) -> dict[str, Any]:
    """The envelope JSON Schema of one message type, without ``$id``.

    ``type`` is a ``const``; ``data`` is the payload model's validation schema and is
    required; the payload's ``$defs`` move to the root so their ``#/$defs/...`` refs hold.
    """
    if model is None:
        model = all_types()[message_type]
    payload = model.model_json_schema(mode="validation", ref_template="#/$defs/{model}")
    defs = payload.pop("$defs", {})
    env = copy.deepcopy(_cloudevent_schema())
    clash = set(defs) & set(env.get("$defs", {}))
    if clash:
        raise ValueError(f"{message_type}: $defs names shared by envelope and payload: {sorted(clash)}")
    defs = {**env.pop("$defs", {}), **defs}
    props = dict(env["properties"])
    props["type"] = {"const": message_type, "description": "the message type", "title": "Type", "type": "string"}
    props["data"] = payload
    env["properties"] = props
    env["required"] = sorted(set(env.get("required", [])) | {"type", "data"})
    env["title"] = f"{message_type} ({model.__name__})"
    env["description"] = (
        f"CloudEvents 1.0 envelope (structured JSON mode) of a `{message_type}` "
        f"{model.KIND or 'message'}; `data` is {model.__name__}: {_first_line(model.__doc__)}"
    )
    out: dict[str, Any] = {"$schema": DIALECT, **env}
    if defs:
        out["$defs"] = defs
    return out


@functools.cache
def _cloudevent_schema() -> dict[str, Any]:
    return CloudEvent.model_json_schema(mode="validation", ref_template="#/$defs/{model}")


def _first_line(doc: str | None) -> str:
    for line in (doc or "").strip().splitlines():
        if line.strip():
            return line.strip()
    return ""


def revisions(root: Path, message_type: str) -> list[int]:
    """Existing revision numbers of a type, ascending."""
    d = root / JSONSCHEMA_DIR / message_type
    if not d.is_dir():
        return []
    return sorted(int(m.group(1)) for p in d.iterdir() if (m := _REVISION_RE.match(p.name)))


def load_revision(root: Path, message_type: str, revision: int) -> dict[str, Any]:
    return json.loads((root / revision_path(message_type, revision)).read_text(encoding="utf-8"))


def _without_id(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if k != "$id"}


ANNOTATIONS = frozenset({"x-pii"})
"""Keywords that describe a property without changing what validates: a revision that only
adds or changes them has the same shape (and is compatible by :func:`compatibility_problems`,
which ignores them)."""


def _without_annotations(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _without_annotations(v) for k, v in node.items() if k not in ANNOTATIONS}
    if isinstance(node, list):
        return [_without_annotations(v) for v in node]
    return node


# ---------------------------------------------------------------------------------------
# The plan: which files must be written to bring a schemas/ directory up to date
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Planned:
    """A file to write, relative to the ``schemas/`` directory, and why."""

    path: str
    content: str
    reason: str


def latest_revisions(root: Path = ROOT) -> dict[str, tuple[int, list[Planned]]]:
    """For each registered type: the revision that is current once generated, and the
    file to write for it (empty when the latest committed revision is up to date)."""
    out: dict[str, tuple[int, list[Planned]]] = {}
    for t, model in all_types().items():
        body = envelope_schema(t, model)
        existing = revisions(root, t)
        if existing:
            last = existing[-1]
            if canonical_json(_without_id(load_revision(root, t, last))) == canonical_json(body):
                out[t] = (last, [])
                continue
            previous = _without_annotations(_without_id(load_revision(root, t, last)))
            same_shape = canonical_json(previous) == canonical_json(_without_annotations(body))
            n, reason = last + 1, (f"personal data tags (x-pii) changed since r{last}, same shape" if same_shape
                                   else f"schema changed since r{last}")
        else:
            n, reason = 1, "new message type"
        doc = {"$id": schema_id(t, n), **body}
        out[t] = (n, [Planned(revision_path(t, n), canonical_json(doc), reason)])
    return out


def orphan_types(root: Path = ROOT) -> list[str]:
    """Type directories under ``jsonschema/`` whose type is no longer registered."""
    d = root / JSONSCHEMA_DIR
    if not d.is_dir():
        return []
    known = all_types()
    return sorted(p.name for p in d.iterdir() if p.is_dir() and p.name not in known)


def plan(root: Path = ROOT) -> list[Planned]:
    """Every file that differs from what the generator would produce, in a stable order."""
    latest = latest_revisions(root)
    todo = [p for _, files in latest.values() for p in files]
    text = render_asyncapi({t: n for t, (n, _) in latest.items()})
    current = root / ASYNCAPI_FILE
    if not current.is_file() or current.read_text(encoding="utf-8") != text:
        todo.append(Planned(ASYNCAPI_FILE, text, "missing" if not current.is_file() else "out of date"))
    return todo


def write(root: Path = ROOT) -> list[Planned]:
    """Write every planned file; returns what was written."""
    todo = plan(root)
    for p in todo:
        target = root / p.path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(p.content, encoding="utf-8")
    return todo


# ---------------------------------------------------------------------------------------
# AsyncAPI 3.0
# ---------------------------------------------------------------------------------------

_ACTION = {"intake": "receive", "events": "send", "rejections": "send", "dlq": "send"}
_DEAD_LETTER = "dead-letter"


def asyncapi_document(latest: dict[str, int]) -> dict[str, Any]:
    """The AsyncAPI 3.0 document; ``latest`` maps each type to its current revision."""
    types = all_types()
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}

    for t, model in types.items():
        messages[t] = _message(t, model, latest[t])

    for topic in sorted(ALL_TOPICS, key=lambda x: x.name):
        names = sorted(topic.message_types)
        unknown = [n for n in names if n not in types]
        if unknown:
            raise ValueError(f"topic {topic.name} lists unregistered types {unknown}")
        if topic.kind == "dlq":
            names = [_DEAD_LETTER]
        binding: dict[str, Any] = {"bindingVersion": KAFKA_BINDING_VERSION}
        if topic.partitions is not None:
            binding["partitions"] = topic.partitions
        channels[topic.name] = {
            "address": topic.name,
            "title": topic.name,
            "summary": topic.description,
            "description": (
                f"{topic.description}. Kind: {topic.kind}. Record key: {topic.key}. "
                f"Writers: {topic.writers or 'see docs/contract.md'}."
                + ("" if topic.partitions is not None else " Partitions: the deployment's default partition count.")
            ),
            "messages": {n: {"$ref": f"#/components/messages/{n}"} for n in names},
            "bindings": {"kafka": binding},
        }
        action = _ACTION.get(topic.kind, "send")
        operations[f"{action}.{topic.name}"] = {
            "action": action,
            "channel": {"$ref": f"#/channels/{topic.name}"},
            "title": f"{topic.service} service {action}s on {topic.name}",
            "summary": (
                f"The {topic.service} service {'consumes' if action == 'receive' else 'publishes'} "
                f"{topic.description}."
            ),
            "messages": [{"$ref": f"#/channels/{topic.name}/messages/{n}"} for n in names],
        }

    messages[_DEAD_LETTER] = {
        "name": _DEAD_LETTER,
        "title": "Dead letter",
        "summary": "A record that could not be decoded or processed, copied unchanged.",
        "description": (
            "The original record's key and value, unchanged (possibly not JSON at all); the "
            "origin topic, partition, offset and the error class and message are in headers."
        ),
        "payload": {"description": "the original record value, any bytes"},
    }

    return {
        "asyncapi": ASYNCAPI_VERSION,
        "info": {
            "title": "Grassroots governance event platform (党建引领基层治理)",
            "version": CONTRACT_VERSION,
            "description": (
                "Commands and events exchanged by the grid, orders, points and assessment "
                "services as CloudEvents 1.0 (structured JSON mode) over Kafka. The record key "
                "is the aggregate id (= CloudEvents `subject`). Generated by "
                "`python -m schemas.generate` from the `schemas` package; do not edit."
            ),
        },
        "defaultContentType": CONTENT_TYPE,
        "servers": {
            "kafka": {
                "host": "127.0.0.1:9092",
                "protocol": "kafka",
                "description": (
                    "Placeholder: the embedded broker of `make run`. Set KAFKA_BOOTSTRAP_SERVERS "
                    "to use a real cluster."
                ),
            }
        },
        "channels": channels,
        "operations": operations,
        "components": {
            "messages": messages,
            "correlationIds": {
                "correlationid": {
                    "description": "follows a whole story across services (CloudEvents extension)",
                    "location": "$message.payload#/correlationid",
                }
            },
        },
    }


def _message(message_type: str, model: type[Payload], revision: int) -> dict[str, Any]:
    doc = inspect.cleandoc(model.__doc__ or "")
    if issubclass(model, CommandRejectedData):
        key = (
            "the refused command's record key (its subject, the aggregate id), as on the intake "
            "topic, so a rejection stays in order with that aggregate's messages"
        )
    else:
        key = (
            f"the aggregate id: data.{model.SUBJECT} (also the CloudEvents subject), "
            "so one aggregate's messages stay in order"
        )
    tagged = tagged_paths(model)
    extra = {"x-pii": dict(sorted(tagged.items()))} if tagged else {}
    return {
        **extra,
        "name": message_type,
        "title": model.__name__,
        "summary": _first_line(doc),
        "description": doc,
        "contentType": CONTENT_TYPE,
        "headers": {
            "type": "object",
            "properties": {CONTENT_TYPE_HEADER: {"type": "string", "const": CONTENT_TYPE}},
        },
        "payload": {"schemaFormat": SCHEMA_FORMAT, "schema": {"$ref": f"./{revision_path(message_type, revision)}"}},
        "correlationId": {"$ref": "#/components/correlationIds/correlationid"},
        "bindings": {
            "kafka": {
                "bindingVersion": KAFKA_BINDING_VERSION,
                "key": {"type": "string", "description": key},
            }
        },
    }


def render_asyncapi(latest: dict[str, int]) -> str:
    body = yaml.safe_dump(
        asyncapi_document(latest), sort_keys=True, allow_unicode=True, width=100, default_flow_style=False
    )
    return "# Generated by `python -m schemas.generate` (make schemas). Do not edit.\n" + body


# ---------------------------------------------------------------------------------------
# Backward compatibility of two JSON Schema revisions
# ---------------------------------------------------------------------------------------

_ALL_TYPES = frozenset({"string", "number", "integer", "boolean", "null", "array", "object"})
_UPPER = ("maxLength", "maxItems", "maxProperties", "maximum", "exclusiveMaximum")
_LOWER = ("minLength", "minItems", "minProperties", "minimum", "exclusiveMinimum")


def compatibility_problems(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Why ``new`` is not backward compatible with ``old`` (empty list = compatible).

    ``new`` must accept every message ``old`` accepted and keep every property ``old``
    described: no property removed, no property newly required (additions only as
    optional), no type narrowed or changed, no enum value removed, no constraint tightened
    (length, range, pattern, format), ``additionalProperties`` not newly false.
    Local ``$ref`` (``#/...``) are followed in each document.
    """
    return _Compat(old, new).compare(old, new, "$")


def normalize_pattern(pattern: str) -> str:
    """Spell ``\\d`` as ``[0-9]``, which it means in JSON Schema (ECMA-262) regexes.

    Makes ``^\\d{4}$`` and ``^[0-9]{4}$`` compare equal; the result also keeps Python's
    ``re`` from matching non-ASCII digits where JSON Schema would not.
    """
    out: list[str] = []
    i, in_class = 0, False
    while i < len(pattern):
        c = pattern[i]
        if c == "\\" and i + 1 < len(pattern):
            pair = pattern[i:i + 2]
            out.append(("0-9" if in_class else "[0-9]") if pair == "\\d" else pair)
            i += 2
            continue
        if c == "[" and not in_class:
            in_class = True
        elif c == "]" and in_class:
            in_class = False
        out.append(c)
        i += 1
    return "".join(out)


def _json_type(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, int):
        return "integer"
    if isinstance(v, float):
        return "integer" if v.is_integer() else "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    return "object"


def _same_json(a: Any, b: Any) -> bool:
    return _json_type(a) == _json_type(b) and a == b


class _Compat:
    def __init__(self, old_root: dict[str, Any], new_root: dict[str, Any]):
        self.roots = (old_root, new_root)
        self.seen: set[tuple[str, str]] = set()

    @staticmethod
    def _resolve(root: dict[str, Any], node: Any) -> Any:
        hops = 0
        while isinstance(node, dict) and "$ref" in node:
            ref = node["$ref"]
            if not ref.startswith("#"):
                raise ValueError(f"only local $ref are supported, got {ref!r}")
            target: Any = root
            for part in [p for p in ref[1:].split("/") if p]:
                target = target[part.replace("~1", "/").replace("~0", "~")]
            node = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
            hops += 1
            if hops > 50:
                raise ValueError(f"$ref loop at {ref!r}")
        return node

    def _branches(self, which: int, node: Any) -> list[dict[str, Any]]:
        node = self._resolve(self.roots[which], node)
        if node is True or node == {}:
            return [{}]
        if node is False:
            return []
        for key in ("anyOf", "oneOf"):
            if key in node:
                out: list[dict[str, Any]] = []
                for b in node[key]:
                    out.extend(self._branches(which, b))
                return out
        return [node]

    @staticmethod
    def _types(node: dict[str, Any]) -> frozenset[str]:
        if "type" in node:
            t = node["type"]
            ts = set([t] if isinstance(t, str) else t)
        elif "const" in node:
            ts = {_json_type(node["const"])}
        elif "enum" in node:
            ts = {_json_type(v) for v in node["enum"]}
        else:
            ts = set(_ALL_TYPES)
        if "number" in ts:
            ts.add("integer")
        return frozenset(ts)

    def compare(self, old: Any, new: Any, path: str) -> list[str]:
        key = None
        if isinstance(old, dict) and isinstance(new, dict) and "$ref" in old and "$ref" in new:
            key = (old["$ref"], new["$ref"])
            if key in self.seen:
                return []  # recursive structure already being compared
            self.seen.add(key)
        try:
            olds, news = self._branches(0, old), self._branches(1, new)
            problems: list[str] = []
            for o in olds:
                candidates = [n for n in news if self._types(o) <= self._types(n)]
                if not candidates:
                    now = sorted(set().union(*(self._types(n) for n in news))) if news else []
                    problems.append(f"{path}: type narrowed or changed: {sorted(self._types(o))} -> {now}")
                    continue
                results = [self._compare_one(o, n, path) for n in candidates]
                best = min(results, key=len)
                problems.extend(best)
            return problems
        finally:
            if key is not None:
                self.seen.discard(key)

    def _compare_one(self, o: dict[str, Any], n: dict[str, Any], path: str) -> list[str]:
        problems: list[str] = []
        # enum / const
        o_vals = o["enum"] if "enum" in o else ([o["const"]] if "const" in o else None)
        n_vals = n["enum"] if "enum" in n else ([n["const"]] if "const" in n else None)
        if n_vals is not None:
            if o_vals is None:
                problems.append(f"{path}: newly restricted to the values {n_vals!r}")
            else:
                gone = [v for v in o_vals if not any(_same_json(v, w) for w in n_vals)]
                if gone:
                    problems.append(f"{path}: enum value(s) removed or const changed: {gone!r}")
        # constraints
        for kw in _UPPER:
            if kw in n and (kw not in o or n[kw] < o[kw]):
                problems.append(f"{path}: {kw} tightened: {o.get(kw)!r} -> {n[kw]!r}")
        for kw in _LOWER:
            if kw in n and (kw not in o or n[kw] > o[kw]):
                problems.append(f"{path}: {kw} tightened: {o.get(kw)!r} -> {n[kw]!r}")
        if "pattern" in n and ("pattern" not in o or normalize_pattern(n["pattern"]) != normalize_pattern(o["pattern"])):
            problems.append(f"{path}: pattern added or changed: {o.get('pattern')!r} -> {n['pattern']!r}")
        for kw in ("format", "multipleOf"):
            if kw in n and n[kw] != o.get(kw):
                problems.append(f"{path}: {kw} added or changed: {o.get(kw)!r} -> {n[kw]!r}")
        if n.get("uniqueItems") and not o.get("uniqueItems"):
            problems.append(f"{path}: uniqueItems newly true")
        # objects
        o_props, n_props = o.get("properties", {}), n.get("properties", {})
        for name in o_props:
            if name not in n_props:
                problems.append(f"{path}.{name}: property removed")
            else:
                problems.extend(self.compare(o_props[name], n_props[name], f"{path}.{name}"))
        for name in sorted(set(n.get("required", [])) - set(o.get("required", []))):
            what = "newly required" if name in o_props else "added as required (must be optional)"
            problems.append(f"{path}.{name}: {what}")
        o_ap, n_ap = o.get("additionalProperties", True), n.get("additionalProperties", True)
        if n_ap is False and o_ap is not False:
            problems.append(f"{path}: additionalProperties newly false")
        elif isinstance(n_ap, dict) and n_ap != {}:
            problems.extend(self.compare({} if o_ap is True else o_ap, n_ap, f"{path}.*"))
        # arrays
        if "items" in o or "items" in n:
            problems.extend(self.compare(o.get("items", {}), n.get("items", {}), f"{path}[]"))
        return problems


# ---------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------


def check(root: Path = ROOT) -> list[str]:
    """Stale files as human-readable lines (empty = everything is fresh)."""
    lines = [f"{ROOT.name}/{p.path}: {p.reason}" for p in plan(root)]
    lines += [f"{ROOT.name}/{JSONSCHEMA_DIR}/{t}/: type no longer registered" for t in orphan_types(root)]
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m schemas.generate", description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 listing stale files")
    parser.add_argument("--root", type=Path, default=ROOT, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    root: Path = args.root
    if args.check:
        stale = check(root)
        if stale:
            print("stale generated schema files (run `make schemas`):", file=sys.stderr)
            for line in stale:
                print(f"  {line}", file=sys.stderr)
            return 1
        print("generated schema files are fresh")
        return 0
    written = write(root)
    for p in written:
        print(f"wrote {ROOT.name}/{p.path} ({p.reason})")
        m = re.match(rf"^{JSONSCHEMA_DIR}/(.+)/r([0-9]+)\.json$", p.path)
        if m and int(m.group(2)) > 1:
            t, n = m.group(1), int(m.group(2))
            bad = compatibility_problems(load_revision(root, t, n - 1), load_revision(root, t, n))
            for b in bad:
                print(f"  INCOMPATIBLE with r{n - 1}: {b}", file=sys.stderr)
    for t in orphan_types(root):
        print(f"warning: {JSONSCHEMA_DIR}/{t}/ belongs to no registered type", file=sys.stderr)
    if not written:
        print("generated schema files are fresh")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
