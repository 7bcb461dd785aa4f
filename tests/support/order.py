"""The order in which `make test` hands test files to its processes: the slowest first."""
from __future__ import annotations

from typing import Callable, Mapping, Sequence, TypeVar

T = TypeVar("T")


def file_of(nodeid: str) -> str:
    """``tests/x/test_y.py`` of ``tests/x/test_y.py::test_z[param]``."""
    return nodeid.split("::", 1)[0]


def slowest_files_first(items: Sequence[T], known: Mapping[str, float], *,
                        key: Callable[[T], str] = str) -> list[T]:
    """``items`` (test ids, or what ``key`` gives an id of) grouped by file, the files by their
    ``known`` seconds, slowest first; a file not in ``known`` counts as slower than any (a new
    file is handed out early: if it is quick, that costs nothing). Stable: a file's tests keep
    their order and stay together, files of equal time keep theirs."""
    unknown = max(known.values(), default=0.0) + 1.0
    first_seen: dict[str, int] = {}
    for i, item in enumerate(items):
        first_seen.setdefault(file_of(key(item)), i)

    def rank(item: T) -> tuple[float, int]:
        f = file_of(key(item))
        return -known.get(f, unknown), first_seen[f]

    return sorted(items, key=rank)
