"""A sample district (区) generated from a seed: the people and places the simulator plays.

The tree follows the grid register of the grid service (``services/grid/registry/grids.yaml``
by default, or any file of the same shape): division 110105 (北京市朝阳区) → streets →
communities → grids, with 15-digit grid ids (division 6 + street 3 + community 3 + grid 3).
On top of it the seed decides everything else: grid workers (one per grid), residents,
in-service Party members (在职党员) who report to their community (双报到) and claim service
posts (岗位认领), resident units (驻区单位) the members work in, and merchants of the moral
alliance (道德联盟). The departments (职能部门) are those of the grid service's department register
(``services/grid/registry/departments.yaml``, with its 权责清单); the seed gives each a diligence,
how reliably it accepts, contacts, handles and reports on time, so that their rates differ.
The same seed and registers always give the same district.

Only public codes and made-up names are used; nothing here comes from a database.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from schemas.codes import GridCode, street_id_of
from schemas.grid import Category, Grade
from schemas.orders import OrderCategory
from services.grid.registry import DepartmentRegister

DEFAULT_REGISTER = Path(__file__).resolve().parents[1] / "grid" / "registry" / "grids.yaml"

# The built-in layout, identical to the grid service's default register; used when that file is absent.
BUILTIN_REGISTER: dict[str, Any] = {
    "division": "110105",
    "name": "朝阳区",
    "streets": [
        {"code": "001", "name": "建外街道", "communities": [
            {"code": "001", "name": "建外社区", "grids": ["001", "002", "003", "004"]},
            {"code": "002", "name": "永安里社区", "grids": ["001", "002", "003", "004"]},
            {"code": "003", "name": "光华里社区", "grids": ["001", "002", "003", "004"]}]},
        {"code": "002", "name": "朝外街道", "communities": [
            {"code": "001", "name": "吉祥里社区", "grids": ["001", "002", "003", "004"]},
            {"code": "002", "name": "雅宝里社区", "grids": ["001", "002", "003", "004"]},
            {"code": "003", "name": "芳草地社区", "grids": ["001", "002", "003", "004"]}]},
    ],
}

# Centre of the sample district (朝阳区, WGS-84) and the spacing of grid centres.
CENTRE = (39.921, 116.443)
GRID_SPACING_DEG = 0.02

_SURNAMES = "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董萧程曹袁邓许傅沈曾彭吕"
_GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英华建国玉兰红梅志强文"
_UNIT_KINDS = [("agency", "区{}局"), ("school", "第{}中学"), ("firm", "{}科技有限公司"), ("hospital", "{}社区卫生服务中心")]
_UNIT_WORDS = ["民政", "城管", "住建", "卫健", "教育", "文旅", "星河", "东方", "朝晖", "华夏", "光明", "和平"]
_SHOPS = ["爱心超市", "便民菜店", "理发店", "修车铺", "药店", "早餐店", "书店", "五金店"]


@dataclass(frozen=True)
class _InGrid:
    """Placed in the grid ``grid_id``: its community and street are those the grid code names."""

    grid_id: str

    @property
    def community_id(self) -> str:
        return GridCode.parse(self.grid_id).community_id

    @property
    def street_id(self) -> str:
        return GridCode.parse(self.grid_id).street_id


@dataclass(frozen=True)
class Grid(_InGrid):
    lat: float
    lon: float


@dataclass(frozen=True)
class Community:
    community_id: str
    name: str


@dataclass(frozen=True)
class Street:
    street_id: str
    name: str


@dataclass(frozen=True)
class Department:
    """A department (职能部门) of the department register: a district one (``street_id`` None) or a
    street's own. ``diligence`` (0.6–0.98, from the seed) is how reliably it does its part on time."""

    department_id: str
    name: str
    street_id: str | None
    diligence: float

    def serves(self, street_id: str) -> bool:
        """Whether a case or whistle of ``street_id`` may go to it (a district one, or the street's own)."""
        return self.street_id in (None, street_id)


@dataclass(frozen=True)
class Person(_InGrid):
    """A resident or grid worker: ``person_id`` is also the points account holder id."""

    person_id: str
    name: str


@dataclass(frozen=True)
class Unit:
    """驻区单位: an agency, school, firm or hospital with its own Party organisation, in a
    community (and so in that community's street)."""

    unit_id: str
    name: str
    kind: str
    community_id: str

    @property
    def street_id(self) -> str:
        return street_id_of(self.community_id)


@dataclass(frozen=True)
class Post:
    post_id: str
    categories: tuple[str, ...]
    capacity: int
    title: str


@dataclass(frozen=True)
class Member:
    """在职党员 who reported to the community where they live (双报到) and claimed posts,
    working in ``unit``."""

    member_id: str
    name: str
    community_id: str
    unit: Unit
    posts: tuple[Post, ...]

    @property
    def unit_id(self) -> str:
        return self.unit.unit_id

    @property
    def unit_name(self) -> str:
        return self.unit.name


@dataclass(frozen=True)
class Merchant:
    """A shop of the 道德联盟 where residents redeem points; ``account_id`` is its points account."""

    merchant_id: str
    name: str
    community_id: str

    @property
    def account_id(self) -> str:
        return account_id("merchant", self.merchant_id)


@dataclass(frozen=True)
class District:
    seed: int
    division: str
    name: str
    streets: tuple[Street, ...]
    communities: tuple[Community, ...]
    grids: tuple[Grid, ...]
    grid_workers: tuple[Person, ...]
    residents: tuple[Person, ...]
    members: tuple[Member, ...]
    units: tuple[Unit, ...]
    merchants: tuple[Merchant, ...]
    departments: tuple[Department, ...] = ()
    register: DepartmentRegister | None = field(default=None, compare=False, repr=False)
    _by_grid: dict[str, Grid] = field(default_factory=dict, compare=False, repr=False)

    def grid(self, grid_id: str) -> Grid:
        if not self._by_grid:
            self._by_grid.update({g.grid_id: g for g in self.grids})
        return self._by_grid[grid_id]

    def worker_of(self, grid_id: str) -> Person:
        return next(w for w in self.grid_workers if w.grid_id == grid_id)

    def residents_of(self, community_id: str) -> list[Person]:
        return [r for r in self.residents if r.community_id == community_id]

    def members_of(self, community_id: str) -> list[Member]:
        return [m for m in self.members if m.community_id == community_id]

    def merchants_of(self, community_id: str) -> list[Merchant]:
        return [m for m in self.merchants if m.community_id == community_id]

    def department(self, department_id: str) -> Department:
        return next(d for d in self.departments if d.department_id == department_id)

    def departments_of(self, street_id: str) -> list[Department]:
        """The departments a case or whistle of ``street_id`` may go to."""
        return [d for d in self.departments if d.serves(street_id)]

    def responsible(self, category: Category, grade: Grade | None, street_id: str) -> str | None:
        """The department the register's 权责清单 names for such a case (what registration proposes)."""
        return self.register.responsible(category, grade, street_id) if self.register is not None else None

    def unknown_grid_id(self) -> str:
        """A well-formed 15-digit grid id that is NOT in the register (for the rejection path)."""
        return GridCode(self.division, "999", "999", "999").grid_id

    def summary(self) -> dict[str, int]:
        return {"streets": len(self.streets), "communities": len(self.communities), "grids": len(self.grids),
                "grid_workers": len(self.grid_workers), "residents": len(self.residents),
                "members": len(self.members), "posts": sum(len(m.posts) for m in self.members),
                "units": len(self.units), "merchants": len(self.merchants), "departments": len(self.departments)}


def account_id(kind: str, holder_id: str) -> str:
    """The points service's account id convention: ``resident:<person>``, ``merchant:<id>``,
    ``issuer:<community id>`` (the same ids it gives accounts it opens on a first award)."""
    return f"{kind}:{holder_id}"


def load_register(path: Path | str | None = None) -> dict[str, Any]:
    """The register mapping: ``path``, else the grid service's default file, else the built-in copy."""
    p = Path(path) if path else DEFAULT_REGISTER
    if p.exists():
        return yaml.safe_load(p.read_text(encoding="utf-8"))
    if path:
        raise FileNotFoundError(p)
    return BUILTIN_REGISTER


def _name(rng: random.Random) -> str:
    return rng.choice(_SURNAMES) + "".join(rng.choice(_GIVEN) for _ in range(rng.choice((1, 2))))


def load_departments(path: Path | str | None = None) -> DepartmentRegister:
    """The department register: ``path``, else the grid service's default file."""
    return DepartmentRegister.load(path) if path else DepartmentRegister.load()


def _departments(register: DepartmentRegister, streets: list[Street], seed: int) -> tuple[Department, ...]:
    """The register's departments of the district's streets (and the district's own), each with a
    diligence drawn from the seed (its own stream, so the rest of the district does not move)."""
    rng = random.Random(f"{seed}:departments")
    ours = {s.street_id for s in streets}
    return tuple(Department(d.department_id, d.name, d.street_id, round(rng.uniform(0.6, 0.98), 3))
                 for d in register if d.street_id is None or d.street_id in ours)


def generate(seed: int = 7, register: dict[str, Any] | None = None, *, residents_per_grid: int = 6,
             members_per_community: int = 6, units_per_street: int = 3, merchants_per_community: int = 2,
             departments: DepartmentRegister | None = None) -> District:
    """Build the district for ``seed`` over ``register`` (default: :func:`load_register`) and the
    department register ``departments`` (default: :func:`load_departments`)."""
    reg = register if register is not None else load_register()
    rng = random.Random(seed)
    division = str(reg["division"])
    streets: list[Street] = []
    communities: list[Community] = []
    grids: list[Grid] = []
    units: list[Unit] = []
    k = 0
    for s in reg["streets"]:
        street_id = division + s["code"]
        cids = []
        for c in s["communities"]:
            community_id = street_id + c["code"]
            cids.append(community_id)
            communities.append(Community(community_id, c.get("name", "")))
            for g in c["grids"]:
                row, col = divmod(k, 6)
                k += 1
                grids.append(Grid(GridCode(division, s["code"], c["code"], g).grid_id,
                                  round(CENTRE[0] + (row - 2) * GRID_SPACING_DEG, 6),
                                  round(CENTRE[1] + (col - 3) * GRID_SPACING_DEG, 6)))
        streets.append(Street(street_id, s.get("name", "")))
        for i in range(units_per_street):
            kind, pattern = rng.choice(_UNIT_KINDS)
            community_id = rng.choice(cids)
            units.append(Unit(f"unit-{street_id}-{i + 1:02d}", pattern.format(rng.choice(_UNIT_WORDS)), kind,
                              community_id))

    workers = tuple(Person(person_id=f"gw-{g.grid_id}", name=_name(rng), grid_id=g.grid_id) for g in grids)
    residents = tuple(Person(person_id=f"res-{g.grid_id}-{i + 1:02d}", name=_name(rng), grid_id=g.grid_id)
                      for g in grids for i in range(residents_per_grid))

    categories = [c.value for c in OrderCategory]
    members: list[Member] = []
    for c in communities:
        # Every category is covered in every community, so automatic dispatch always finds someone.
        rng.shuffle(categories)
        for i in range(members_per_community):
            member_id = f"pm-{c.community_id}-{i + 1:02d}"
            unit = rng.choice(units)
            own = sorted(set(categories[j] for j in range(i, len(categories), members_per_community))
                         | set(rng.sample(categories, 2)))
            posts = (Post(f"post-{c.community_id}-{i + 1:02d}-a", tuple(own), rng.randint(20, 40), "志愿服务岗"),)
            members.append(Member(member_id, _name(rng), c.community_id, unit, posts))

    merchants = tuple(Merchant(f"m-{c.community_id}-{i + 1}", rng.choice(_SHOPS), c.community_id)
                      for c in communities for i in range(merchants_per_community))
    dept_register = departments if departments is not None else load_departments()
    return District(seed, division, str(reg.get("name", "")), tuple(streets), tuple(communities), tuple(grids),
                    workers, residents, tuple(members), tuple(units), merchants,
                    _departments(dept_register, streets, seed), dept_register)
