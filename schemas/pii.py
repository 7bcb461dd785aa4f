"""The contract's personal data: which fields hold it, which topics carry it out of which
service, and what a downstream projection leaves out.

Fields are tagged where they are declared (``Annotated[T, pii("free_text")]``,
:func:`schemas.common.pii`); the tag is ``x-pii`` on the property in the JSON Schemas, and
every AsyncAPI message lists its tagged fields under ``x-pii``. From the tags:

- :func:`tagged_paths`: the tagged fields of a payload model, as paths into its ``data``
  (``description``, ``reporter``, ``route``...; a tagged object or list is not walked into);
- :func:`inventory`: per events and rejections topic, the tagged fields that leave the
  publishing service (the README's "Data protection" table, :mod:`services.kit.piidoc`);
- :func:`minimised` / :func:`restored`: what a service keeps of another service's event
  (the data without the fields of the :data:`NOT_KEPT` categories) and how it reads it back
  into the payload class (required fields it did not keep get a neutral stand-in no rule
  reads).
"""
from __future__ import annotations

import functools
from typing import Any, Iterable, Mapping

from pydantic import BaseModel

from .common import Payload
from .registry import all_types
from .topics import ALL_TOPICS, Topic

NOT_KEPT: frozenset[str] = frozenset({"name", "contact", "location", "free_text", "media", "credential"})
"""The categories a downstream projection leaves out by default: it keeps ids, never the
person's words, whereabouts, pictures or name."""

_STAND_IN: dict[str, Any] = {
    "free_text": "-",
    "location": {"lat": 0.0, "lon": 0.0, "address": ""},
    "media": [],
    "name": "-",
}


# ---------------------------------------------------------------------------------------
# Tags
# ---------------------------------------------------------------------------------------


def field_tags(model: type[BaseModel]) -> dict[str, str]:
    """The model's own tagged fields (top level): field name -> category."""
    out: dict[str, str] = {}
    for name, info in model.model_fields.items():
        extra = info.json_schema_extra
        if isinstance(extra, dict) and "x-pii" in extra:
            out[name] = str(extra["x-pii"])
    return out


def schema_paths(schema: Mapping[str, Any], root: Mapping[str, Any] | None = None, prefix: str = "") -> dict[str, str]:
    """Tagged properties of a JSON Schema (``x-pii``), as dotted paths (``[]`` for list items);
    ``$ref`` (local), ``anyOf``/``oneOf``/``allOf`` and ``items`` are followed, a tagged node is
    not walked into."""
    root = schema if root is None else root
    out: dict[str, str] = {}

    def walk(node: Any, path: str, depth: int) -> None:
        if not isinstance(node, Mapping) or depth > 20:
            return
        if path and "x-pii" in node:
            out[path] = node["x-pii"]
            return
        if "$ref" in node and str(node["$ref"]).startswith("#/"):
            target: Any = root
            for part in node["$ref"][2:].split("/"):
                target = target[part]
            walk(target, path, depth + 1)
        for key in ("anyOf", "oneOf", "allOf"):
            for branch in node.get(key, ()):
                walk(branch, path, depth + 1)
        if isinstance(node.get("items"), Mapping):
            walk(node["items"], f"{path}[]", depth + 1)
        for name, sub in (node.get("properties") or {}).items():
            walk(sub, f"{path}.{name}" if path else name, depth + 1)

    walk(schema, prefix, 0)
    return out


def tagged_paths(model: type[BaseModel]) -> dict[str, str]:
    """The tagged fields of a payload model as paths into its ``data``, from its JSON Schema."""
    return schema_paths(model.model_json_schema(mode="validation"))


# ---------------------------------------------------------------------------------------
# Inventory per topic
# ---------------------------------------------------------------------------------------


def published_topics() -> list[Topic]:
    """The topics a service publishes its facts and refusals on (events, rejections)."""
    return [t for t in ALL_TOPICS if t.kind in ("events", "rejections")]


def inventory() -> dict[str, dict[str, dict[str, str]]]:
    """topic -> message type -> tagged path -> category (types without tagged fields included
    with an empty mapping)."""
    types = all_types()
    return {t.name: {m: tagged_paths(types[m]) for m in sorted(t.message_types)} for t in published_topics()}


# ---------------------------------------------------------------------------------------
# Minimisation downstream
# ---------------------------------------------------------------------------------------


def minimised(model: type[Payload], data: Mapping[str, Any], drop: Iterable[str] = NOT_KEPT) -> dict[str, Any]:
    """``data`` (an event's JSON) with only the model's known fields, less those tagged with a
    category of ``drop``: what a service that did not collect the data keeps of it."""
    keep = _kept(model, frozenset(drop))
    return {k: v for k, v in data.items() if k in keep}


@functools.cache
def _kept(model: type[Payload], drop: frozenset[str]) -> frozenset[str]:
    """The JSON keys (names and aliases) of the model's fields not tagged with ``drop``."""
    tags = field_tags(model)
    return frozenset(k for name, info in model.model_fields.items() if tags.get(name) not in drop
                     for k in (name, info.alias) if k)


def restored(model: type[Payload], data: Mapping[str, Any]) -> Payload:
    """A minimised event read back into its payload class: every required field that was not
    kept gets a neutral stand-in of its category (no rule of the reader reads it)."""
    missing = [(name, c) for name, c in _required_stand_ins(model) if name not in data]
    if missing:
        data = {**data, **{name: _STAND_IN[c] for name, c in missing}}
    return model.model_validate(data)


@functools.cache
def _required_stand_ins(model: type[Payload]) -> tuple[tuple[str, str], ...]:
    tags = field_tags(model)
    return tuple((name, tags[name]) for name, info in model.model_fields.items()
                 if info.is_required() and tags.get(name) in _STAND_IN)
