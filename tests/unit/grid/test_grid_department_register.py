"""The department register (部门登记册) and its 权责清单: the file of the service, and what a file
must hold to be accepted."""
from __future__ import annotations

import re

import pytest
import yaml
from pydantic import ValidationError

from schemas.codes import DEPARTMENT_ID_PATTERN
from schemas.grid import Category, Grade
from services.grid.registry import DEFAULT_DEPARTMENTS_PATH, DepartmentRegister, GridRegister

GRIDS = GridRegister.load()


def the_file() -> dict:
    with open(DEFAULT_DEPARTMENTS_PATH, encoding="utf-8") as f:
        return yaml.safe_load(f)


def test_the_services_register_matches_the_grid_register_and_the_id_pattern():
    r = DepartmentRegister.load(grids=GRIDS)
    ids = [d.department_id for d in r]
    assert len(ids) == len(set(ids)) and all(re.match(DEPARTMENT_ID_PATTERN, i) for i in ids)
    streets = {GRIDS.division + s.code for s in GRIDS.streets}
    for street in streets:  # each street has its own 派出所 and 综合执法队
        assert f"{street}.pcs" in r and f"{street}.zhzf" in r
        assert r.get(f"{street}.zhzf").level == "street" and r.get(f"{street}.zhzf").street_id == street
    names = {d.name for d in r}
    assert {"区城管委", "区市场监管局", "区应急管理局", "区住建委", "区生态环境局"} <= names
    assert r.get("110105.cgw").level == "district"


@pytest.mark.parametrize("category, grade, street, expected", [
    ("hazard.fire", "severe", "110105001", "110105.xfjy"),
    ("hazard.fire", "general", "110105002", "110105002.zhzf"),  # category/grade before category
    ("hazard.food", "major", "110105001", "110105.scjgj"),
    ("dispute.neighbour", None, "110105002", "110105002.sfs"),  # the case's own street
    ("environment", None, "110105001", "110105.cgw"),
    ("other", None, "110105002", "110105002.zhzf"),  # the default
])
def test_the_responsibility_list_names_the_department_most_specific_first(category, grade, street, expected):
    r = DepartmentRegister.load()
    assert r.responsible(Category(category), Grade(grade) if grade else None, street) == expected


def test_a_street_level_responsibility_for_an_unlisted_street_names_none():
    assert DepartmentRegister.load().responsible(Category.OTHER, None, "110105009") is None


@pytest.mark.parametrize("change, message", [
    (lambda d: d["departments"].append(dict(d["departments"][0])), "listed twice"),
    (lambda d: d["departments"].append({"code": "Bad-Code", "name": "x"}), "pattern"),
    (lambda d: d["responsibilities"].pop("default"), "default"),
    (lambda d: d["responsibilities"].update({"environment/severe": "district.cgw"}), "unknown responsibility"),
    (lambda d: d["responsibilities"].update({"environment": "district.nosuch"}), "not a district department"),
    (lambda d: d["responsibilities"].update({"environment": "street.nosuch"}), "have no department"),
    (lambda d: d["responsibilities"].update({"environment": "110105.cgw"}), "district.<code> or street.<code>"),
    (lambda d: d.update({"extra": 1}), "extra"),
])
def test_an_invalid_register_is_refused(change, message):
    data = the_file()
    change(data)
    with pytest.raises(ValidationError, match=re.escape(message)):
        DepartmentRegister.model_validate(data)


def test_a_register_of_other_streets_than_the_grid_registers_is_refused():
    data = the_file()
    data["streets"] = data["streets"][:1]
    with pytest.raises(ValueError, match="streets"):
        DepartmentRegister.model_validate(data).check_streets(GRIDS)
    data = the_file()
    data["division"] = "110106"
    with pytest.raises(ValueError, match="division"):
        DepartmentRegister.model_validate(data).check_streets(GRIDS)
