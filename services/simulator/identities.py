"""Who the simulator speaks as: every simulated person with a token of their own.

The services enforce who may do what (each service's ``app/policy.py``): a command is
admitted only from a token whose role may send it, whose ``sub`` is the person the command
names as its actor (``reporter.id``, ``verifier_id``, ``assignee_id``, ``reviewer_id``...) and
whose scope covers the command's grid, community or street. The district has hundreds of
residents, grid workers, Party members and merchants, so the simulator — standing in for all
their apps — plays each of them with a token of their own, signed with the dev identity
provider's key (``var/run/signing-key.pem``, written by ``make run`` or ``python -m
services.kit.devidentity``; same issuer and audience as the demo identities):

- :class:`Actor` — a person or office: ``sub``, roles and scope (grids, communities, streets,
  departments).
- :class:`Cast` — the actors of a :class:`~services.simulator.district.District`: the grid
  worker of a grid, the office of a community (``cw-<community>``) or street (``so-<street>``),
  the officer of a department of the department register (``do-<department id>``, the assignee
  the grid cases are dispatched to, who accepts, contacts, returns, handles and reports to
  whistles for it), residents, members (``party_member`` and ``resident``: they have a points account too),
  merchants, the Party secretaries of streets, communities and grids (``ps-<area>``), two points operators (an adjustment over 100 points needs a second one) and the
  assessment office.
- :class:`TokenMinter` — one token per actor, cached and minted again before it expires.

:data:`ROLE_OF` names the role that sends each intake command type; the ``send`` command of the
CLI uses it with the demo identities of ``identities.json`` (:func:`tokens_by_role`).
"""
from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

from schemas.codes import CodeKind, kind_of
from services.kit import devidentity
from services.kit.settings import DEFAULT_JWT_AUDIENCE, DEFAULT_JWT_ISSUER

ROLE_OF: Mapping[str, str] = {
    # grid: the grid worker on the street (or a resident's app), the community office (registers,
    # dispatches, reviews returns and extensions), the street office (escalation, exclusions from
    # the rates, 吹哨), the department's officer (its part of a case, 报到 to a whistle)
    "grid.case.report.v1": "grid_worker",
    "grid.patrol.log.v1": "grid_worker",
    "grid.case.verify.v1": "grid_worker",
    "grid.case.register.v1": "community_officer",
    "grid.case.dispatch.v1": "community_officer",
    "grid.case.dismiss.v1": "community_officer",
    "grid.case.escalate.v1": "street_officer",
    "grid.case.handle.v1": "department_officer",
    "grid.case.feedback.v1": "resident",
    "grid.case.accept.v1": "department_officer",
    "grid.case.return.v1": "department_officer",
    "grid.case.contact.v1": "department_officer",
    "grid.case.control.v1": "department_officer",
    "grid.case.extension.request.v1": "department_officer",
    "grid.case.exclusion.request.v1": "department_officer",
    "grid.case.return.review.v1": "community_officer",
    "grid.case.extension.review.v1": "community_officer",
    "grid.case.exclusion.review.v1": "street_officer",
    "grid.whistle.blow.v1": "street_officer",
    "grid.whistle.answer.v1": "department_officer",
    "grid.whistle.rate.v1": "street_officer",
    # erasure of a person, in any service: the data protection officer (the simulation sends none)
    "grid.person.erase.v1": "data_protection_officer",
    "orders.person.erase.v1": "data_protection_officer",
    "points.person.erase.v1": "data_protection_officer",
    "assessment.person.erase.v1": "data_protection_officer",
    # orders: residents ask and rate, party members serve, the community office dispatches and
    # evaluates (考单)
    "orders.order.place.v1": "resident",
    "orders.order.cancel.v1": "resident",
    "orders.order.rate.v1": "resident",
    "orders.order.evaluate.v1": "community_officer",
    "orders.order.accept.v1": "party_member",
    "orders.order.decline.v1": "party_member",
    "orders.order.complete.v1": "party_member",
    "orders.post.claim.v1": "party_member",
    "orders.post.release.v1": "party_member",
    "orders.order.dispatch.v1": "community_officer",
    "orders.member.register.v1": "community_officer",
    "orders.member.move.v1": "community_officer",
    # points: the community office opens residents' and merchants' accounts and reviews deeds,
    # the district points office opens issuers and adjusts (a second operator approves), residents
    # submit deeds, merchants redeem with the resident's consent code
    "points.account.open.v1": "community_officer",
    "points.adjust.v1": "points_operator",
    "points.adjust.approve.v1": "points_operator",
    "points.deed.submit.v1": "resident",
    "points.deed.review.v1": "community_officer",
    "points.redeem.v1": "merchant",
    # assessment: the assessment office closes periods and changes schemes; the community and
    # street offices record the two-way reviews (the assessment office those of streets)
    "assessment.period.close.v1": "assessor",
    "assessment.review.record.v1": "community_officer",
    "assessment.scheme.change.v1": "assessor",
    # party: the secretary of a street's, community's or grid's Party organisation builds the org
    # tree, records organisational life and members' commitments, proposes the regional council,
    # records its joint meetings and resolutions and runs the project list; the community office
    # takes units' reports (单位报到)
    "party.org.establish.v1": "party_secretary",
    "party.member.attach.v1": "party_secretary",
    "party.household.mark.v1": "party_secretary",
    "party.org_life.record.v1": "party_secretary",
    "party.commitment.make.v1": "party_secretary",
    "party.commitment.fulfil.v1": "party_secretary",
    "party.commitment.rate.v1": "party_secretary",
    "party.council.propose.v1": "party_secretary",
    "party.meeting.hold.v1": "party_secretary",
    "party.resolution.complete.v1": "party_secretary",
    "party.unit.report.v1": "community_officer",
    "party.agreement.sign.v1": "party_secretary",
    "party.project.post.v1": "party_secretary",
    "party.project.claim.v1": "party_secretary",
    "party.project.complete.v1": "party_secretary",
    "party.project.rate.v1": "party_secretary",
    "party.person.erase.v1": "data_protection_officer",
}

TOKEN_LIFETIME_SECONDS = 3600.0
REFRESH_BEFORE_SECONDS = 600.0  # a cached token is minted again when it has less than this left


def role_for(command_type: str) -> str | None:
    return ROLE_OF.get(command_type)


# -- actors ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Actor:
    """A person or office the simulator plays: the ``sub``, roles and scope of their token."""

    sub: str
    roles: tuple[str, ...]
    grids: tuple[str, ...] = ()
    communities: tuple[str, ...] = ()
    streets: tuple[str, ...] = ()
    departments: tuple[str, ...] = ()

    @property
    def role(self) -> str:
        return self.roles[0]

    def has(self, role: str) -> bool:
        return role in self.roles

    def scope(self) -> dict[str, list[str]]:
        """The token's ``scope`` claim."""
        return {"streets": list(self.streets), "communities": list(self.communities), "grids": list(self.grids),
                "departments": list(self.departments)}


class Cast:
    """The actors of a district (see the module doc); the same person is the same :class:`Actor`."""

    OPERATORS = ("po-0001", "po-0002")
    ASSESSOR = "assessor-district"

    def __init__(self, district):
        self.d = district
        self._members = {m.member_id: m for m in district.members}
        self._streets = tuple(s.street_id for s in district.streets)

    def grid_worker(self, grid_id: str) -> Actor:
        w = self.d.worker_of(grid_id)
        return Actor(w.person_id, ("grid_worker",), grids=(w.grid_id,))

    def resident(self, person) -> Actor:
        """A resident (a :class:`~.district.Person`) or a member acting as a resident (a member id)."""
        if isinstance(person, str):
            m = self._members.get(person)
            if m is not None:
                return self.member(person)
            return Actor(person, ("resident",))
        return Actor(person.person_id, ("resident",), communities=(person.community_id,))

    def member(self, member_id: str) -> Actor:
        m = self._members.get(member_id)
        communities = (m.community_id,) if m is not None else ()
        return Actor(member_id, ("party_member", "resident"), communities=communities)

    def merchant(self, merchant) -> Actor:
        return Actor(merchant.merchant_id, ("merchant",), communities=(merchant.community_id,))

    def community_officer(self, community_id: str) -> Actor:
        return Actor(f"cw-{community_id}", ("community_officer",), communities=(community_id,))

    def street_officer(self, street_id: str) -> Actor:
        return Actor(f"so-{street_id}", ("street_officer",), streets=(street_id,))

    def department_officer(self, department: str) -> Actor:
        return Actor(department_officer_id(department), ("department_officer",), departments=(department,))

    def party_secretary(self, area_id: str) -> Actor:
        """The secretary of the Party organisation of a street, community or grid (``ps-<area>``),
        scoped to that area."""
        kind = kind_of(area_id)
        scope = {CodeKind.STREET: "streets", CodeKind.COMMUNITY: "communities", CodeKind.GRID: "grids"}[kind]
        return Actor(f"ps-{area_id}", ("party_secretary",), **{scope: (area_id,)})

    def points_operator(self, n: int = 0) -> Actor:
        return Actor(self.OPERATORS[n], ("points_operator",), streets=self._streets)

    def assessor(self) -> Actor:
        return Actor(self.ASSESSOR, ("assessor",), streets=self._streets)


def department_officer_id(department: str) -> str:
    """The officer of a department (a department register id) who handles the cases dispatched to
    it (their ``assignee_id``)."""
    return f"do-{department}"


# -- tokens ---------------------------------------------------------------------------------------


class TokenMinter:
    """Signs a token per :class:`Actor` with the dev identity provider's key; keeps it until it
    has less than ``refresh_before`` seconds left, then signs a new one."""

    def __init__(self, key, *, issuer: str = DEFAULT_JWT_ISSUER, audience: str = DEFAULT_JWT_AUDIENCE,
                 lifetime: float = TOKEN_LIFETIME_SECONDS, refresh_before: float = REFRESH_BEFORE_SECONDS,
                 clock: Callable[[], float] = time.time):
        self.key = devidentity.load_key_pem(key) if isinstance(key, (str, bytes)) else key
        self.kid = devidentity.public_jwk(self.key)["kid"]
        self.issuer = issuer
        self.audience = audience
        self.lifetime = lifetime
        self.refresh_before = min(refresh_before, lifetime / 2)
        self.clock = clock
        self._cache: dict[Actor, tuple[float, str]] = {}
        self._lock = threading.Lock()
        self.minted = 0

    @classmethod
    def from_file(cls, path: Path | str, **kw: Any) -> "TokenMinter":
        return cls(Path(path).read_bytes(), **kw)

    def token(self, actor: Actor) -> str:
        now = self.clock()
        with self._lock:
            got = self._cache.get(actor)
            if got is not None and got[0] - now > self.refresh_before:
                return got[1]
            claims = devidentity.claims_for(actor.sub, list(actor.roles), actor.scope(), issuer=self.issuer,
                                            audience=self.audience, lifetime=self.lifetime, now=now)
            tok = devidentity.mint(claims, self.key, kid=self.kid)
            self._cache[actor] = (claims["exp"], tok)
            self.minted += 1
            return tok


# -- files ----------------------------------------------------------------------------------------


def default_path() -> Path:
    """``$IDENTITIES_FILE``, else ``$VAR_DIR/run/identities.json`` (``var/run/`` by default)."""
    given = os.environ.get("IDENTITIES_FILE")
    if given:
        return Path(given)
    return Path(os.environ.get("VAR_DIR") or "var") / "run" / "identities.json"


def default_key_path() -> Path:
    """``$SIGNING_KEY_FILE``, else ``signing-key.pem`` beside the identities file."""
    given = os.environ.get("SIGNING_KEY_FILE")
    return Path(given) if given else default_path().parent / "signing-key.pem"


def minter_from_env(env: Mapping[str, str] | None = None) -> TokenMinter | None:
    """The minter for the dev identity provider's key (:func:`default_key_path`), with the
    issuer and audience of ``JWT_ISSUER`` / ``JWT_AUDIENCE``; None when there is no key."""
    env = os.environ if env is None else env
    path = default_key_path()
    if not path.exists():
        return None
    return TokenMinter.from_file(path, issuer=env.get("JWT_ISSUER") or DEFAULT_JWT_ISSUER,
                                 audience=env.get("JWT_AUDIENCE") or DEFAULT_JWT_AUDIENCE)


def tokens_by_role(path: Path) -> dict[str, str]:
    """role -> the token of the first identity in ``path`` holding that role."""
    out: dict[str, str] = {}
    for person in json.loads(Path(path).read_text()):
        for role in person["roles"]:
            out.setdefault(role, person["token"])
    return out


def demo_token(path: Path, name: str) -> str:
    """The token of the demo identity called ``name`` (or whose ``sub`` it is) in ``path``."""
    for person in json.loads(Path(path).read_text()):
        if name in (person["name"], person["sub"]):
            return person["token"]
    raise KeyError(f"no demo identity {name!r} in {path}")
