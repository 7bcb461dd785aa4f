"""A small JSON Schema (draft 2020-12) validator for the keywords pydantic emits.

The ``jsonschema`` package is not a dependency of this project, so the contract tests
validate the committed schema files with this. It refuses (``UnsupportedKeyword``) any
assertion keyword it does not implement rather than silently passing it. ``format`` is an
annotation in 2020-12 and is not asserted.
"""
from __future__ import annotations

import re
from typing import Any

from schemas.generate import normalize_pattern

ANNOTATIONS = frozenset(
    {"$schema", "$id", "$comment", "$defs", "title", "description", "default", "examples",
     "deprecated", "readOnly", "writeOnly", "format", "discriminator", "contentMediaType",
     "contentEncoding"}
)


class UnsupportedKeyword(Exception):
    pass


def _json_type(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, int):
        return "integer"
    if isinstance(v, float):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    if isinstance(v, dict):
        return "object"
    raise TypeError(f"not a JSON value: {v!r}")


def _is_type(v: Any, t: str) -> bool:
    jt = _json_type(v)
    if t == "number":
        return jt in ("integer", "number")
    if t == "integer":
        return jt == "integer" or (jt == "number" and float(v).is_integer())
    return jt == t


def _equal(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    return a == b


def validate(instance: Any, schema: Any) -> list[str]:
    """Errors of ``instance`` against ``schema`` (a whole document); empty = valid."""
    return _Validator(schema).check(instance, schema, "$")


class _Validator:
    def __init__(self, root: Any):
        self.root = root

    def _ref(self, ref: str) -> Any:
        if not ref.startswith("#"):
            raise UnsupportedKeyword(f"non-local $ref {ref!r}")
        node = self.root
        for part in [p for p in ref[1:].split("/") if p]:
            node = node[part.replace("~1", "/").replace("~0", "~")]
        return node

    def check(self, v: Any, s: Any, path: str) -> list[str]:
        if s is True:
            return []
        if s is False:
            return [f"{path}: no value allowed"]
        errs: list[str] = []
        for kw, arg in s.items():
            if kw in ANNOTATIONS:
                continue
            handler = getattr(self, "kw_" + kw.lstrip("$"), None)
            if handler is None:
                raise UnsupportedKeyword(kw)
            errs.extend(handler(v, arg, s, path))
        return errs

    # --- applicators -------------------------------------------------------------------
    def kw_ref(self, v, arg, s, path):
        return self.check(v, self._ref(arg), path)

    def kw_anyOf(self, v, arg, s, path):
        results = [self.check(v, sub, path) for sub in arg]
        if any(not r for r in results):
            return []
        return [f"{path}: matches none of anyOf: " + " | ".join("; ".join(r) for r in results)]

    def kw_oneOf(self, v, arg, s, path):
        ok = sum(1 for sub in arg if not self.check(v, sub, path))
        return [] if ok == 1 else [f"{path}: matches {ok} of oneOf, expected exactly 1"]

    def kw_allOf(self, v, arg, s, path):
        return [e for sub in arg for e in self.check(v, sub, path)]

    def kw_not(self, v, arg, s, path):
        return [f"{path}: must not match the 'not' schema"] if not self.check(v, arg, path) else []

    def kw_properties(self, v, arg, s, path):
        if not isinstance(v, dict):
            return []
        return [e for k, sub in arg.items() if k in v for e in self.check(v[k], sub, f"{path}.{k}")]

    def kw_patternProperties(self, v, arg, s, path):
        if not isinstance(v, dict):
            return []
        return [e for pat, sub in arg.items() for k in v if re.search(normalize_pattern(pat), k)
                for e in self.check(v[k], sub, f"{path}.{k}")]

    def kw_additionalProperties(self, v, arg, s, path):
        if not isinstance(v, dict):
            return []
        known = set(s.get("properties", {}))
        pats = list(s.get("patternProperties", {}))
        extra = [k for k in v if k not in known and not any(re.search(normalize_pattern(p), k) for p in pats)]
        return [e for k in extra for e in self.check(v[k], arg, f"{path}.{k}")]

    def kw_propertyNames(self, v, arg, s, path):
        if not isinstance(v, dict):
            return []
        return [e for k in v for e in self.check(k, arg, f"{path}.<key {k!r}>")]

    def kw_items(self, v, arg, s, path):
        if not isinstance(v, list):
            return []
        start = len(s.get("prefixItems", []))
        return [e for i, x in enumerate(v[start:], start) for e in self.check(x, arg, f"{path}[{i}]")]

    def kw_prefixItems(self, v, arg, s, path):
        if not isinstance(v, list):
            return []
        return [e for i, (x, sub) in enumerate(zip(v, arg)) for e in self.check(x, sub, f"{path}[{i}]")]

    # --- assertions --------------------------------------------------------------------
    def kw_type(self, v, arg, s, path):
        ts = [arg] if isinstance(arg, str) else arg
        return [] if any(_is_type(v, t) for t in ts) else [f"{path}: {_json_type(v)} is not of type {arg}"]

    def kw_enum(self, v, arg, s, path):
        return [] if any(_equal(v, x) for x in arg) else [f"{path}: {v!r} is not one of {arg!r}"]

    def kw_const(self, v, arg, s, path):
        return [] if _equal(v, arg) else [f"{path}: {v!r} is not {arg!r}"]

    def kw_required(self, v, arg, s, path):
        if not isinstance(v, dict):
            return []
        return [f"{path}.{k}: required property missing" for k in arg if k not in v]

    def kw_minProperties(self, v, arg, s, path):
        return [f"{path}: fewer than {arg} properties"] if isinstance(v, dict) and len(v) < arg else []

    def kw_maxProperties(self, v, arg, s, path):
        return [f"{path}: more than {arg} properties"] if isinstance(v, dict) and len(v) > arg else []

    def kw_minLength(self, v, arg, s, path):
        return [f"{path}: shorter than {arg}"] if isinstance(v, str) and len(v) < arg else []

    def kw_maxLength(self, v, arg, s, path):
        return [f"{path}: longer than {arg}"] if isinstance(v, str) and len(v) > arg else []

    def kw_pattern(self, v, arg, s, path):
        ok = not isinstance(v, str) or re.search(normalize_pattern(arg), v)
        return [] if ok else [f"{path}: {v!r} does not match {arg!r}"]

    def kw_minItems(self, v, arg, s, path):
        return [f"{path}: fewer than {arg} items"] if isinstance(v, list) and len(v) < arg else []

    def kw_maxItems(self, v, arg, s, path):
        return [f"{path}: more than {arg} items"] if isinstance(v, list) and len(v) > arg else []

    def kw_uniqueItems(self, v, arg, s, path):
        if not arg or not isinstance(v, list):
            return []
        dup = any(_equal(a, b) for i, a in enumerate(v) for b in v[i + 1:])
        return [f"{path}: items are not unique"] if dup else []

    @staticmethod
    def _num(v):
        return _json_type(v) in ("integer", "number")

    def kw_minimum(self, v, arg, s, path):
        return [f"{path}: {v} < {arg}"] if self._num(v) and v < arg else []

    def kw_maximum(self, v, arg, s, path):
        return [f"{path}: {v} > {arg}"] if self._num(v) and v > arg else []

    def kw_exclusiveMinimum(self, v, arg, s, path):
        return [f"{path}: {v} <= {arg}"] if self._num(v) and v <= arg else []

    def kw_exclusiveMaximum(self, v, arg, s, path):
        return [f"{path}: {v} >= {arg}"] if self._num(v) and v >= arg else []

    def kw_multipleOf(self, v, arg, s, path):
        if not self._num(v):
            return []
        q = v / arg
        return [] if float(q).is_integer() else [f"{path}: {v} is not a multiple of {arg}"]
