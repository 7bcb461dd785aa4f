"""A generated section of README.md, between two markers: read it, replace it, or check it.

The policy tables (:mod:`services.kit.policydoc`) and the data-protection tables
(:mod:`services.kit.piidoc`) are both written this way by ``make schemas``, and a test fails
while a section is stale.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable

README = Path(__file__).resolve().parents[2] / "README.md"


def section(text: str, start: str, end: str) -> str:
    """What lies between the markers of ``text`` (ValueError without them)."""
    if start not in text or end not in text:
        raise ValueError(f"README.md has no {start} ... {end} section")
    return text.split(start, 1)[1].split(end, 1)[0].strip("\n") + "\n"


def replaced(text: str, body: str, start: str, end: str) -> str:
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{start}\n{body}{end}{tail}"


def main(argv: list[str] | None, *, prog: str, description: str, what: str, start: str, end: str,
         current: Callable[[], str]) -> int:
    """``python -m <prog> [--check]``: rewrite the section when it changed, or (``--check``)
    write nothing and exit 1 when it is stale."""
    parser = argparse.ArgumentParser(prog=f"python -m {prog}", description=description)
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 when README.md's section is stale")
    parser.add_argument("--readme", type=Path, default=README, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    text = args.readme.read_text(encoding="utf-8")
    fresh = current()
    if section(text, start, end) == fresh:
        print(f"README.md's {what} section is fresh")
        return 0
    if args.check:
        print(f"README.md's {what} section is stale (run `make schemas`)", file=sys.stderr)
        return 1
    args.readme.write_text(replaced(text, fresh, start, end), encoding="utf-8")
    print(f"wrote README.md's {what} section")
    return 0
