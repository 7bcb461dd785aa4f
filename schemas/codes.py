"""Grid codes (网格编码): where a grid, community or street sits in the district's tree.

A grid code is 15 digits::

    110105 001 002 003
    ------ --- --- ---
    division street community grid
    (6, GB/T 2260 行政区划)  (3, 街道)  (3, 社区)  (3, 网格)

The code encodes the tree: a street id is the 9-digit prefix of its communities' and grids'
codes, a community id the 12-digit prefix of its grids' codes, and the 6-digit division code
names the district (区). This module is the one place that knows those lengths; everything
else asks it: :class:`GridCode` (parse a grid id, its parts and the ids of its community and
street), :func:`kind_of` (what a code names), :func:`parent_of` (the next level up) and
:func:`is_within` ("is this grid in that community / street").

Digits are the ten ASCII digits ``[0-9]`` only. Python's ``str.isdigit`` and the Unicode
digit class of its ``re`` module also accept Arabic-Indic ("٠١٢") or full-width ("０１２")
digits; a code spelled with them is malformed here and in the contract's JSON Schemas alike.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

__all__ = [
    "CodeKind", "GridCode",
    "DIVISION_LENGTH", "STREET_ID_LENGTH", "COMMUNITY_ID_LENGTH", "GRID_ID_LENGTH", "PART_LENGTH",
    "DIVISION_PATTERN", "STREET_ID_PATTERN", "COMMUNITY_ID_PATTERN", "GRID_ID_PATTERN", "PART_PATTERN", "DEPARTMENT_ID_PATTERN",
    "kind_of", "is_code_shaped", "is_grid_id", "is_community_id", "is_street_id", "is_division",
    "parent_of", "ancestor_of", "is_within", "street_id_of", "community_id_of",
]

DIVISION_LENGTH = 6
STREET_ID_LENGTH = 9
COMMUNITY_ID_LENGTH = 12
GRID_ID_LENGTH = 15
PART_LENGTH = 3
"""Length of each of the street, community and grid parts below the division."""

# The same patterns in the contract's pydantic models (pydantic's Rust regex engine, where
# ``[0-9]`` is the ASCII digits too) and so in the generated JSON Schemas.
DIVISION_PATTERN = r"^[0-9]{6}$"
STREET_ID_PATTERN = r"^[0-9]{9}$"
COMMUNITY_ID_PATTERN = r"^[0-9]{12}$"
GRID_ID_PATTERN = r"^[0-9]{15}$"
PART_PATTERN = r"^[0-9]{3}$"
DEPARTMENT_ID_PATTERN = r"^[0-9]{6}([0-9]{3})?\.[a-z][a-z0-9_]{0,31}$"
"""A department of the register: the division (district department) or a street id (the street's
own), a dot, a short lower-case code: ``110105.cgw``, ``110105001.zhzf``."""

_ASCII_DIGITS = re.compile(r"[0-9]+")


class CodeKind(str, Enum):
    """What a code names, from the top of the tree down."""

    DIVISION = "division"  # 区 (行政区划, 6 digits)
    STREET = "street"  # 街道 (9)
    COMMUNITY = "community"  # 社区 (12)
    GRID = "grid"  # 网格 (15)

    @property
    def length(self) -> int:
        return _LENGTH[self]

    @property
    def parent(self) -> "CodeKind | None":
        """The kind one level up; None for a division (the top of the tree)."""
        return _PARENT_KIND[self]


_LENGTH = {
    CodeKind.DIVISION: DIVISION_LENGTH,
    CodeKind.STREET: STREET_ID_LENGTH,
    CodeKind.COMMUNITY: COMMUNITY_ID_LENGTH,
    CodeKind.GRID: GRID_ID_LENGTH,
}
_KIND_BY_LENGTH = {n: k for k, n in _LENGTH.items()}
_PARENT_KIND = {
    CodeKind.GRID: CodeKind.COMMUNITY,
    CodeKind.COMMUNITY: CodeKind.STREET,
    CodeKind.STREET: CodeKind.DIVISION,
    CodeKind.DIVISION: None,
}


def kind_of(code: object) -> CodeKind | None:
    """The kind of a well-formed code (6, 9, 12 or 15 ASCII digits); None for anything else."""
    if not isinstance(code, str):
        return None
    kind = _KIND_BY_LENGTH.get(len(code))
    if kind is None or _ASCII_DIGITS.fullmatch(code) is None:
        return None
    return kind


def is_code_shaped(value: object) -> bool:
    """Whether ``value`` has a code's length and only digits of some script (``str.isdecimal``).

    True for every well-formed code and for codes spelled in other digits ("٠٠٠٠٠٠٠٠٠"):
    with :func:`kind_of` it tells a malformed code from an id that is no code at all.
    """
    return isinstance(value, str) and len(value) in _KIND_BY_LENGTH and value.isdecimal()


def is_grid_id(value: object) -> bool:
    """Whether ``value`` is a well-formed grid id: exactly 15 ASCII digits."""
    return kind_of(value) is CodeKind.GRID


def is_community_id(value: object) -> bool:
    """Whether ``value`` is a well-formed community id: exactly 12 ASCII digits."""
    return kind_of(value) is CodeKind.COMMUNITY


def is_street_id(value: object) -> bool:
    """Whether ``value`` is a well-formed street id: exactly 9 ASCII digits."""
    return kind_of(value) is CodeKind.STREET


def is_division(value: object) -> bool:
    """Whether ``value`` is a well-formed division (district) code: exactly 6 ASCII digits."""
    return kind_of(value) is CodeKind.DIVISION


def ancestor_of(code: object, kind: CodeKind) -> str | None:
    """The id of the ``kind`` that a well-formed ``code`` lies in (its prefix of that length).

    ``code`` itself when it is of that kind; None when it is malformed or above ``kind``
    (a street lies in no community).
    """
    own = kind_of(code)
    if own is None or own.length < kind.length:
        return None
    return code[: kind.length]  # type: ignore[index]


def parent_of(code: object, kind: CodeKind | None = None) -> str | None:
    """The next level up: grid → community, community → street, street → division.

    None for a division (the top) and for anything that is not a well-formed code; with
    ``kind``, also for a well-formed code of another kind (``parent_of(x, CodeKind.GRID)``
    is the community of grid ``x``, or None).
    """
    own = kind_of(code)
    if own is None or own.parent is None or (kind is not None and own is not kind):
        return None
    return code[: own.parent.length]  # type: ignore[index]


def is_within(code: object, area: object) -> bool:
    """Whether the well-formed ``code`` lies strictly inside the well-formed ``area``
    (a grid in its community, street or division; a community in its street...)."""
    inner, outer = kind_of(code), kind_of(area)
    if inner is None or outer is None or inner.length <= outer.length:
        return False
    return code.startswith(area)  # type: ignore[union-attr, arg-type]


def street_id_of(code: str) -> str:
    """The street id of a grid, community or street id; ``ValueError`` for anything else."""
    street = ancestor_of(code, CodeKind.STREET)
    if street is None:
        raise ValueError(f"malformed code {code!r}: expected a 9-, 12- or 15-digit street, community or grid id")
    return street


def community_id_of(code: str) -> str:
    """The community id of a grid or community id; ``ValueError`` for anything else."""
    community = ancestor_of(code, CodeKind.COMMUNITY)
    if community is None:
        raise ValueError(f"malformed code {code!r}: expected a 12- or 15-digit community or grid id")
    return community


@dataclass(frozen=True, slots=True)
class GridCode:
    """A parsed grid id: the division and the three 3-digit parts below it."""

    division: str  # 行政区划 (6)
    street: str  # 街道 (3)
    community: str  # 社区 (3)
    grid: str  # 网格 (3)

    def __post_init__(self) -> None:
        if not (is_division(self.division) and all(
            len(p) == PART_LENGTH and _ASCII_DIGITS.fullmatch(p) for p in (self.street, self.community, self.grid)
        )):
            raise ValueError(f"malformed grid code parts {(self.division, self.street, self.community, self.grid)!r}")

    @classmethod
    def parse(cls, grid_id: object) -> "GridCode":
        """Split a grid id; raises ``ValueError`` for a malformed one.

        A district has a few thousand grids and every command and event names one: the codes
        parsed last are kept (a code is immutable), so a handler parsing its grid id per
        message does not check the digits again each time."""
        memo = cls is GridCode and grid_id.__class__ is str
        if memo:
            hit = _PARSED.get(grid_id)  # type: ignore[call-overload]
            if hit is not None:
                return hit
        if not is_grid_id(grid_id):
            raise ValueError(f"malformed grid id {grid_id!r}: expected 15 digits 0-9")
        g: str = grid_id  # type: ignore[assignment]
        code = cls(g[:6], g[6:9], g[9:12], g[12:15])
        if memo:
            if len(_PARSED) >= _PARSED_KEPT:
                _PARSED.clear()
            _PARSED[g] = code
        return code

    @classmethod
    def try_parse(cls, grid_id: object) -> "GridCode | None":
        """:meth:`parse`, or None for a malformed grid id."""
        return cls.parse(grid_id) if is_grid_id(grid_id) else None

    @property
    def grid_id(self) -> str:
        """The 15-digit grid id."""
        return self.division + self.street + self.community + self.grid

    @property
    def street_id(self) -> str:
        """9-digit street id: division + street."""
        return self.division + self.street

    @property
    def community_id(self) -> str:
        """12-digit community id: division + street + community."""
        return self.division + self.street + self.community

    def is_within(self, area: str) -> bool:
        """Whether this grid lies in ``area``: its community, street or division id."""
        return is_within(self.grid_id, area)

    def __str__(self) -> str:
        return self.grid_id


_PARSED: dict[str, GridCode] = {}  # grid id -> its parsed code (GridCode.parse)
_PARSED_KEPT = 20_000
