"""Codes are digits 0-9, and only :mod:`schemas.codes` takes a grid code apart.

Three scans of the contract and the services:

- no regular expression uses the Unicode classes ``\\d`` / ``\\w`` (or ``\\D`` / ``\\W``): in
  Python's ``re`` (and in YAML read by it) they accept Arabic-Indic, full-width and other
  digits, which no code, period or file name of the platform may hold; spell ``[0-9]`` or
  ``[A-Za-z0-9_]``. Python string literals are read with :mod:`tokenize`, YAML files as
  YAML, the current JSON Schema revisions as JSON;
- no code slices a grid, community or street id by hand (``x[:12]``, ``x[9:12]``,
  ``x[12:]``...) or writes its pattern (``[0-9]{12}``): use :class:`schemas.codes.GridCode`,
  :func:`~schemas.codes.parent_of`, :func:`~schemas.codes.kind_of`, the ``*_PATTERN``
  constants. :mod:`schemas.codes` is the one exemption.
"""
from __future__ import annotations

import ast
import io
import re
import tokenize
import warnings
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml

from schemas import generate
from schemas.registry import all_types

ROOT = Path(__file__).resolve().parents[2]
SCANNED = ("schemas", "services")
CODES_MODULE = "schemas/codes.py"

# (file, function) whose string literals may name the Unicode classes: the function that
# translates them away for comparing JSON Schema patterns, and its docstring explaining it.
CLASS_EXEMPT = {("schemas/generate.py", "normalize_pattern")}

UNICODE_CLASSES = frozenset("dwDW")
CODE_LENGTHS = frozenset({6, 9, 12, 15})  # division, street, community, grid id
CODE_BOUNDS = CODE_LENGTHS | {0}
CODE_PATTERN = re.compile(r"\[0-9\]\{(6|9|12|15)\}")


def python_files() -> list[Path]:
    return sorted(p for d in SCANNED for p in (ROOT / d).rglob("*.py") if "__pycache__" not in p.parts)


def yaml_files() -> list[Path]:
    return sorted(p for d in SCANNED for ext in ("*.yaml", "*.yml") for p in (ROOT / d).rglob(ext))


def rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


# ---------------------------------------------------------------------------------------
# The scanners (pure functions over source text, tested below on made-up snippets)
# ---------------------------------------------------------------------------------------


def unicode_classes(regex: str) -> list[str]:
    """The ``\\d``-like escapes in ``regex`` (an escaped backslash is skipped)."""
    found, i = [], 0
    while i < len(regex):
        if regex[i] == "\\" and i + 1 < len(regex):
            if regex[i + 1] in UNICODE_CLASSES:
                found.append(regex[i:i + 2])
            i += 2
            continue
        i += 1
    return found


_PREFIX = re.compile(r"^([A-Za-z]*)(\"\"\"|'''|\"|')")


def _unescape(body: str, raw: bool) -> str:
    """The value of a literal's body, as far as backslashes go: in a non-raw literal ``\\\\``
    is one backslash and any other escape is left as written (``"\\d"`` is ``\\d`` too)."""
    return body if raw else re.sub(r"\\(.)", lambda m: "\\" if m.group(1) == "\\" else m.group(0), body, flags=re.S)


def string_values(source: str) -> Iterator[tuple[int, str, str]]:
    """(line, token text, value) of every string literal, f-strings included (3.11: one
    STRING token; 3.12+: FSTRING_START / FSTRING_MIDDLE parts)."""
    fstring_raw: list[bool] = []
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        name = tokenize.tok_name[tok.type]
        if name == "STRING":
            m = _PREFIX.match(tok.string)
            assert m, tok.string
            prefix, quote = m.group(1).lower(), m.group(2)
            body = tok.string[len(m.group(0)):len(tok.string) - len(quote)]
            yield tok.start[0], tok.string, _unescape(body, "r" in prefix)
        elif name == "FSTRING_START":
            fstring_raw.append("r" in tok.string.lower())
        elif name == "FSTRING_MIDDLE":
            yield tok.start[0], tok.string, _unescape(tok.string, fstring_raw[-1] if fstring_raw else False)
        elif name == "FSTRING_END" and fstring_raw:
            fstring_raw.pop()


def function_spans(tree: ast.AST) -> dict[str, tuple[int, int]]:
    return {n.name: (n.lineno, n.end_lineno or n.lineno)
            for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}


def _parse(source: str) -> ast.AST:
    with warnings.catch_warnings():  # "\\d" in a non-raw literal: an invalid escape warning
        warnings.simplefilter("ignore", SyntaxWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        return ast.parse(source)


def unicode_class_literals(source: str, exempt_functions: frozenset[str] = frozenset()) -> list[str]:
    """``line: literal`` of every string literal naming ``\\d``/``\\w``/``\\D``/``\\W``."""
    spans = [span for name, span in function_spans(_parse(source)).items() if name in exempt_functions]
    out = []
    for line, text, value in string_values(source):
        if unicode_classes(value) and not any(a <= line <= b for a, b in spans):
            out.append(f"{line}: {text}")
    return out


def code_pattern_literals(source: str) -> list[str]:
    """``line: literal`` of every string literal holding a code pattern such as ``[0-9]{12}``."""
    return [f"{line}: {text}" for line, text, value in string_values(source) if CODE_PATTERN.search(value)]


def _bound(node: ast.expr | None) -> int | None | str:
    if node is None:
        return None
    if isinstance(node, ast.Constant) and type(node.value) is int:
        return node.value
    return "?"


def code_slices(source: str) -> list[str]:
    """``line: expression`` of every slice whose constant bounds are grid code boundaries
    (0, 6, 9, 12, 15) with at least one of 6, 9, 12, 15: ``x[:12]``, ``x[9:12]``, ``x[12:]``.
    (``h[8:12]`` or ``h[12:16]`` cut something else.)"""
    out = []
    for node in ast.walk(_parse(source)):
        if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Slice):
            bounds = [_bound(node.slice.lower), _bound(node.slice.upper)]
            present = [b for b in bounds if b is not None]
            if present and all(b in CODE_BOUNDS for b in present) and any(b in CODE_LENGTHS for b in present):
                out.append(f"{node.lineno}: {ast.unparse(node)}")
    return out


def yaml_strings(node: Any) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for k, v in node.items():
            yield from yaml_strings(k)
            yield from yaml_strings(v)
    elif isinstance(node, list):
        for v in node:
            yield from yaml_strings(v)


def schema_patterns(node: Any) -> Iterator[str]:
    """Every ``pattern`` and ``patternProperties`` regex in a JSON Schema document."""
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "pattern" and isinstance(v, str):
                yield v
            elif k == "patternProperties" and isinstance(v, dict):
                yield from v
            yield from schema_patterns(v)
    elif isinstance(node, list):
        for v in node:
            yield from schema_patterns(v)


# ---------------------------------------------------------------------------------------
# The tree
# ---------------------------------------------------------------------------------------


def _read(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def test_the_scans_see_the_tree():
    names = {rel(p) for p in python_files()}
    assert {CODES_MODULE, "schemas/common.py", "services/grid/app/main.py", "services/kit/migrations.py"} <= names
    assert {"schemas/asyncapi.yaml", "services/grid/registry/grids.yaml"} <= {rel(p) for p in yaml_files()}


def test_no_python_regex_uses_unicode_digit_or_word_classes():
    bad = []
    for path in python_files():
        exempt = frozenset(f for p, f in CLASS_EXEMPT if p == rel(path))
        bad += [f"{rel(path)}:{hit}" for hit in unicode_class_literals(_read(path), exempt)]
    assert not bad, (
        "\\d / \\w match non-ASCII digits and letters in Python's re; write [0-9] or [A-Za-z0-9_]:\n" + "\n".join(bad)
    )


def test_the_class_exemptions_still_name_existing_functions():
    for path, function in CLASS_EXEMPT:
        assert function in function_spans(_parse(_read(ROOT / path))), f"{path}: no {function}() to exempt"


@pytest.mark.parametrize("path", yaml_files(), ids=rel)
def test_no_yaml_string_uses_unicode_digit_or_word_classes(path: Path):
    docs = list(yaml.safe_load_all(path.read_text(encoding="utf-8")))
    bad = sorted({s for s in yaml_strings(docs) if unicode_classes(s)})
    assert not bad, f"{rel(path)}: \\d / \\w in {bad}; write [0-9] or [A-Za-z0-9_]"


@pytest.mark.parametrize("message_type", sorted(all_types()))
def test_the_current_json_schema_has_no_unicode_class_in_its_patterns(message_type: str):
    """ECMA-262 reads ``\\d`` as [0-9] but many validators (Python's jsonschema among them) do
    not; the current revision says [0-9] so that every subscriber reads it alike."""
    revs = generate.revisions(generate.ROOT, message_type)
    doc = generate.load_revision(generate.ROOT, message_type, revs[-1])
    bad = [p for p in schema_patterns(doc) if unicode_classes(p)]
    assert not bad, f"{message_type} r{revs[-1]}: {bad}"


def test_only_the_codes_module_slices_a_grid_code():
    bad = []
    for path in python_files():
        if rel(path) != CODES_MODULE:
            bad += [f"{rel(path)}:{hit}" for hit in code_slices(_read(path))]
    assert not bad, (
        "a grid, community or street id sliced by hand; use schemas.codes (GridCode, parent_of, "
        "community_id_of, street_id_of, is_within):\n" + "\n".join(bad)
    )


def test_only_the_codes_module_writes_a_code_pattern():
    bad = []
    for path in python_files():
        if rel(path) != CODES_MODULE:
            bad += [f"{rel(path)}:{hit}" for hit in code_pattern_literals(_read(path))]
    assert not bad, (
        "a code pattern written by hand; use schemas.codes (kind_of, is_grid_id, is_community_id, "
        "*_PATTERN, or the GridId / CommunityId / StreetId types of schemas.common):\n" + "\n".join(bad)
    )


# ---------------------------------------------------------------------------------------
# The scanners find what they are meant to, and nothing else
# ---------------------------------------------------------------------------------------

FLAGGED_LITERALS = [
    'R = re.compile(r"^\\d{9}$")',
    'R = re.compile("^\\\\d{9}$")',
    'R = re.compile("^\\d{9}$")',
    'R = re.compile(r"[\\w.]+")',
    'R = re.compile(r"\\W")',
    'R = re.compile(rf"^{p}/r(\\d+)\\.json$")',
    'R = re.compile(f"^{p}/r(\\\\d+)$")',
    'D = """Spell ``\\\\d`` so."""',
]
CLEAN_LITERALS = [
    'R = re.compile(r"^[0-9]{9}$")',
    'R = re.compile(r"\\\\d")',  # an escaped backslash then "d"
    'S = "\\n\\t"',
    'S = "dw"',
    'R = re.compile(rf"^{p}/r([0-9]+)\\.json$")',
    '# a comment may say \\d',
]


@pytest.mark.parametrize("source", FLAGGED_LITERALS)
def test_the_literal_scan_flags_unicode_classes(source: str):
    assert unicode_class_literals(source + "\n")


@pytest.mark.parametrize("source", CLEAN_LITERALS)
def test_the_literal_scan_passes_ascii_classes(source: str):
    assert unicode_class_literals(source + "\n") == []


def test_the_literal_scan_honours_a_function_exemption():
    source = 'def f():\n    """Reads \\\\d."""\n    return "\\\\d"\n\nX = r"\\d"\n'
    assert unicode_class_literals(source, frozenset({"f"})) == ['5: r"\\d"']


@pytest.mark.parametrize("source", ["c = g[:12]", "s = g[:9]", "d = g[0:6]", "p = g[9:12]", "q = g[12:]", "r = g[6:9]",
                                    "t = w.grid_id[:15]"])
def test_the_slice_scan_flags_code_slices(source: str):
    assert code_slices(source) == [f"1: {source.split(' = ')[1]}"]


@pytest.mark.parametrize("source", ["a = h[8:12]", "b = h[12:16]", "c = h[:8]", "d = x[1:]", "e = x[:n]", "f = x[-3:]",
                                    "g = x[::2]", "h = x[12]"])
def test_the_slice_scan_passes_other_slices(source: str):
    assert code_slices(source) == []


def test_the_pattern_scan_flags_code_patterns_only():
    assert code_pattern_literals('A = r"^[0-9]{12}$"\nB = "^[0-9]{4}-[0-9]{2}$"\nC = r"[0-9]{3}"\n') == ['1: r"^[0-9]{12}$"']


def test_yaml_and_schema_walkers_see_nested_strings():
    assert [s for s in yaml_strings({"a": [{"b": "^\\d+$"}], "\\w": 1}) if unicode_classes(s)] == ["^\\d+$", "\\w"]
    doc = {"properties": {"x": {"pattern": "^\\d{3}$"}, "y": {"patternProperties": {"^[0-9]+$": {}}}}}
    assert sorted(schema_patterns(doc)) == ["^[0-9]+$", "^\\d{3}$"]
