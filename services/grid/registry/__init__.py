"""The grid register (网格登记册): which grids exist, read from a data file.

The file (``grids.yaml`` here by default) lists one district's streets, their communities
and their grids by their 3-digit codes; the full ids are derived (division 6 + street 3 +
community 3 + grid 3 = 15 digits). The application layer loads it at start-up and answers
``grid_known`` for the domain's :class:`~services.grid.domain.Context`.

The department register (``departments.yaml``, :mod:`.departments`) lists the district's
departments and each street's own, with the 权责清单 naming who answers for a case.
"""
from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Annotated, Iterable

import yaml
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from schemas.codes import DIVISION_PATTERN, PART_PATTERN

DEFAULT_REGISTER_PATH = Path(__file__).parent / "grids.yaml"

Code3 = Annotated[str, StringConstraints(pattern=PART_PATTERN)]


class Community(BaseModel):
    """A community (社区) and its grids."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    code: Code3
    name: str = ""
    grids: tuple[Code3, ...] = Field(min_length=1)


class Street(BaseModel):
    """A street (街道) and its communities."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    code: Code3
    name: str = ""
    communities: tuple[Community, ...] = Field(min_length=1)


class GridRegister(BaseModel):
    """The grids of one district (区), by 15-digit id, with the names of streets and communities."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    division: Annotated[str, StringConstraints(pattern=DIVISION_PATTERN)]
    name: str = ""
    streets: tuple[Street, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique(self) -> "GridRegister":
        ids = list(self._iter_ids())
        if len(set(ids)) != len(ids):
            raise ValueError("a grid is listed twice in the register")
        return self

    def _iter_ids(self) -> Iterable[str]:
        for s in self.streets:
            for c in s.communities:
                for g in c.grids:
                    yield self.division + s.code + c.code + g

    @cached_property
    def grid_ids(self) -> frozenset[str]:
        return frozenset(self._iter_ids())

    def __contains__(self, grid_id: object) -> bool:
        return isinstance(grid_id, str) and grid_id in self.grid_ids

    def street_name(self, street_id: str) -> str:
        for s in self.streets:
            if self.division + s.code == street_id:
                return s.name
        return ""

    def community_name(self, community_id: str) -> str:
        for s in self.streets:
            for c in s.communities:
                if self.division + s.code + c.code == community_id:
                    return c.name
        return ""

    @classmethod
    def load(cls, path: Path | str = DEFAULT_REGISTER_PATH) -> "GridRegister":
        """Read and validate a register file (YAML); raises on a missing or invalid file."""
        with open(path, encoding="utf-8") as f:
            return cls.model_validate(yaml.safe_load(f))


from .departments import DEFAULT_DEPARTMENTS_PATH, Department, DepartmentRegister  # noqa: E402 (needs GridRegister)

__all__ = ["GridRegister", "DEFAULT_REGISTER_PATH", "DepartmentRegister", "Department", "DEFAULT_DEPARTMENTS_PATH"]
