"""The department register (部门登记册) with its 权责清单: which departments exist, and which of
them answers for a case, read from a data file (``departments.yaml`` here by default; its header
documents the format).

District departments have the id ``<division>.<code>`` (``110105.cgw``), a street's own
``<street_id>.<code>`` (``110105001.zhzf``), as :data:`schemas.codes.DEPARTMENT_ID_PATTERN` says.
The application layer loads the file at start-up, checks it against the grid register, and
answers the domain's ``department_known`` and ``proposed_department``.
"""
from __future__ import annotations

import re
from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator

from schemas.codes import DEPARTMENT_ID_PATTERN, DIVISION_PATTERN, PART_PATTERN
from schemas.grid import Category, Grade

from . import GridRegister

DEFAULT_DEPARTMENTS_PATH = Path(__file__).parent / "departments.yaml"

Code = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,31}$")]
Name = Annotated[str, StringConstraints(min_length=1, max_length=100, strip_whitespace=True)]
_REF = re.compile(r"^(district|street)\.([a-z][a-z0-9_]{0,31})$")


class DepartmentEntry(BaseModel):
    """A department as the file lists it: its code and its name."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    code: Code
    name: Name


class StreetDepartments(BaseModel):
    """A street (by its 3-digit code in the grid register) and its own departments."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    code: Annotated[str, StringConstraints(pattern=PART_PATTERN)]
    departments: tuple[DepartmentEntry, ...] = Field(min_length=1)


class Department(BaseModel):
    """A department of the register, by its full id."""

    model_config = ConfigDict(frozen=True)

    department_id: str
    name: str
    level: Literal["district", "street"]
    street_id: str | None = None


def _key_ok(key: str) -> bool:
    if key == "default":
        return True
    cat, _, grade = key.partition("/")
    try:
        category = Category(cat)
        if grade:
            Grade(grade)
    except ValueError:
        return False
    return not grade or category.is_hazard


class DepartmentRegister(BaseModel):
    """The departments of one district and its 权责清单 (see the file header for the format)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    division: Annotated[str, StringConstraints(pattern=DIVISION_PATTERN)]
    name: str = ""
    departments: tuple[DepartmentEntry, ...] = Field(min_length=1)
    streets: tuple[StreetDepartments, ...] = ()
    responsibilities: dict[str, str]

    @field_validator("responsibilities")
    @classmethod
    def _well_formed(cls, v: dict[str, str]) -> dict[str, str]:
        if "default" not in v:
            raise ValueError("the 权责清单 needs a default entry")
        bad = [k for k in v if not _key_ok(k)]
        if bad:
            raise ValueError(f"unknown responsibility key(s) {bad}: use default, a category, "
                             "or hazard.<kind>/<grade> with grade general, major or severe")
        bad = [f"{k}: {r}" for k, r in v.items() if not _REF.match(r)]
        if bad:
            raise ValueError(f"a responsibility names district.<code> or street.<code>, not {bad}")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> "DepartmentRegister":
        ids = [d.department_id for d in self._iter_departments()]
        dup = sorted({i for i in ids if ids.count(i) > 1})
        if dup:
            raise ValueError(f"a department is listed twice: {dup}")
        bad = [i for i in ids if not re.match(DEPARTMENT_ID_PATTERN, i)]
        if bad:
            raise ValueError(f"not a department id: {bad}")
        streets = [s.code for s in self.streets]
        if len(set(streets)) != len(streets):
            raise ValueError("a street is listed twice")
        district = {d.code for d in self.departments}
        for key, ref in self.responsibilities.items():
            level, code = ref.split(".", 1)
            if level == "district" and code not in district:
                raise ValueError(f"{key}: {ref} is not a district department")
            if level == "street":
                lacking = [s.code for s in self.streets if code not in {d.code for d in s.departments}]
                if lacking or not self.streets:
                    raise ValueError(f"{key}: {ref}: street(s) {lacking or 'none listed'} have no department {code!r}")
        return self

    def _iter_departments(self):
        for d in self.departments:
            yield Department(department_id=f"{self.division}.{d.code}", name=d.name, level="district")
        for s in self.streets:
            street_id = self.division + s.code
            for d in s.departments:
                yield Department(department_id=f"{street_id}.{d.code}", name=d.name, level="street",
                                 street_id=street_id)

    @cached_property
    def by_id(self) -> dict[str, Department]:
        return {d.department_id: d for d in self._iter_departments()}

    def __contains__(self, department_id: object) -> bool:
        return isinstance(department_id, str) and department_id in self.by_id

    def __iter__(self):  # type: ignore[override]
        return iter(self.by_id.values())

    def get(self, department_id: str) -> Department | None:
        return self.by_id.get(department_id)

    def responsible(self, category: Category, grade: Grade | None, street_id: str) -> str | None:
        """The department the 权责清单 names for a case of ``category``/``grade`` in ``street_id``
        (None: a street-level entry for a street the register does not list)."""
        keys = ([f"{category.value}/{grade.value}"] if grade else []) + [category.value, "default"]
        ref = next(self.responsibilities[k] for k in keys if k in self.responsibilities)
        level, code = ref.split(".", 1)
        found = f"{self.division}.{code}" if level == "district" else f"{street_id}.{code}"
        return found if found in self else None

    def check_streets(self, grids: GridRegister) -> "DepartmentRegister":
        """Raise ``ValueError`` unless the register is of the grid register's district and lists
        each of its streets, and no other."""
        if grids.division != self.division:
            raise ValueError(f"the department register is of division {self.division}, the grids of {grids.division}")
        mine, theirs = {s.code for s in self.streets}, {s.code for s in grids.streets}
        if mine != theirs:
            raise ValueError(f"the department register's streets {sorted(mine)} are not the grid register's "
                             f"{sorted(theirs)}")
        return self

    @classmethod
    def load(cls, path: Path | str = DEFAULT_DEPARTMENTS_PATH, grids: GridRegister | None = None) -> "DepartmentRegister":
        """Read and validate a register file (YAML), against ``grids`` when given; raises on a
        missing or invalid file."""
        with open(path, encoding="utf-8") as f:
            register = cls.model_validate(yaml.safe_load(f))
        return register.check_streets(grids) if grids is not None else register
