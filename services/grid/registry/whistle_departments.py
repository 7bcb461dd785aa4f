"""The departments a whistle may summon, read from a data file: an interim list that answers
``department in departments`` for 吹哨报到 until the department register takes its place (the
whistle handler needs nothing but ``in``).

The file (``whistle_departments.yaml`` here by default) holds ``departments:``, a list of ids or
of mappings with an ``id`` (and a ``name``, ignored here).
"""
from __future__ import annotations

from pathlib import Path
from typing import Annotated

import yaml
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from schemas.codes import DEPARTMENT_ID_PATTERN

DEFAULT_PATH = Path(__file__).parent / "whistle_departments.yaml"

_Id = Annotated[str, StringConstraints(pattern=DEPARTMENT_ID_PATTERN)]


class KnownDepartments(BaseModel):
    """The department ids a whistle may name."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    ids: frozenset[_Id] = Field(validation_alias="departments", min_length=1)

    @field_validator("ids", mode="before")
    @classmethod
    def _ids(cls, v):
        if not isinstance(v, list):
            raise ValueError("departments is a list")
        ids = [d.get("id") if isinstance(d, dict) else d for d in v]
        if len(set(ids)) != len(ids):
            raise ValueError("a department is listed twice")
        return ids

    def __contains__(self, department_id: object) -> bool:
        return isinstance(department_id, str) and department_id in self.ids

    @classmethod
    def load(cls, path: Path | str = DEFAULT_PATH) -> "KnownDepartments":
        """Read and validate the file (YAML); raises on a missing or invalid file."""
        with open(path, encoding="utf-8") as f:
            return cls.model_validate(yaml.safe_load(f) or {})
