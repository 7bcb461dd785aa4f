"""Grid codes (网格编码), DB11 style: 15 digits = administrative division (6, GB/T 2260)
+ street (3) + community (3) + grid sequence (3). The code encodes the tree, so the street
id (9-digit prefix) and community id (12-digit prefix) derive from a grid id.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

_GRID_ID = re.compile(r"[0-9]{15}")


def is_grid_id(value: str) -> bool:
    """Whether ``value`` is a well-formed grid id: exactly 15 ASCII digits."""
    return isinstance(value, str) and _GRID_ID.fullmatch(value) is not None


@dataclass(frozen=True)
class GridCode:
    """A parsed grid id."""

    division: str  # 行政区划 (6)
    street: str  # 街道 (3)
    community: str  # 社区 (3)
    grid: str  # 网格 (3)

    @classmethod
    def parse(cls, grid_id: str) -> "GridCode":
        """Split a grid id; raises ``ValueError`` for a malformed one."""
        if not is_grid_id(grid_id):
            raise ValueError(f"malformed grid id {grid_id!r}: expected 15 digits")
        return cls(grid_id[:6], grid_id[6:9], grid_id[9:12], grid_id[12:])

    @property
    def grid_id(self) -> str:
        return self.division + self.street + self.community + self.grid

    @property
    def street_id(self) -> str:
        """9-digit street id: division + street."""
        return self.division + self.street

    @property
    def community_id(self) -> str:
        """12-digit community id: division + street + community."""
        return self.division + self.street + self.community


def street_id_of(grid_id: str) -> str:
    return GridCode.parse(grid_id).street_id


def community_id_of(grid_id: str) -> str:
    return GridCode.parse(grid_id).community_id
