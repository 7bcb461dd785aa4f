"""Every command the simulator sends is one its sender may send (the platform's policy), no services needed.

The stories run against a fake client that does what the services would answer (orders are
dispatched to a member of their community, consent codes are given to the resident who asks).
Each command's token is minted as the simulator mints it, verified as a service verifies it
(:class:`~services.kit.identity.TokenVerifier` against the JWKS), and the principal is checked
against the platform's policy, written out here (:func:`violation`): the role may send the
command, the actor fields name the sender, the area is in the sender's scope, and the
separations of duty hold. Where a service's own table exists (``services/<svc>/app/policy.py``),
its :meth:`~services.kit.policy.Policy.admit` must admit the command too.
"""
from __future__ import annotations

import asyncio
import importlib
import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import pytest

from schemas.codes import CodeKind, GridCode, kind_of, street_id_of
from schemas.envelope import CloudEvent
from services.kit import devidentity
from services.kit.identity import ROLES, Principal, Scope, TokenVerifier
from services.kit.policy import Refused
from services.kit.settings import ServiceSettings
from services.simulator.client import CommandClient, Outcome
from services.simulator.district import generate
from services.simulator.flows import MIX, Stories
from services.simulator.identities import ROLE_OF, Actor, Cast, TokenMinter

ISSUER, AUDIENCE = "https://identity.sim.invalid/realms/sim", "sim"
OFFICERS = {"community_officer", "street_officer"}

# The roles that may send each command (the platform's role table, written out independently of the services' code).
ALLOWED: dict[str, set[str]] = {
    "grid.case.report.v1": {"grid_worker", "resident"},
    "grid.patrol.log.v1": {"grid_worker"},
    "grid.case.verify.v1": {"grid_worker"},
    "grid.case.register.v1": OFFICERS,
    "grid.case.dispatch.v1": OFFICERS,
    "grid.case.dismiss.v1": OFFICERS,
    "grid.case.escalate.v1": {"street_officer"},
    "grid.case.handle.v1": {"department_officer"},
    "grid.case.feedback.v1": {"resident"},
    **{f"grid.case.{c}.v1": {"department_officer"}
       for c in ("accept", "return", "contact", "control", "extension.request", "exclusion.request")},
    "grid.case.return.review.v1": OFFICERS,
    "grid.case.extension.review.v1": OFFICERS,
    "grid.case.exclusion.review.v1": {"street_officer"},
    "grid.whistle.blow.v1": {"street_officer"},
    "grid.whistle.answer.v1": {"department_officer"},
    "grid.whistle.rate.v1": {"street_officer"},
    "orders.order.place.v1": {"resident"},
    "orders.order.cancel.v1": {"resident"} | OFFICERS,
    "orders.order.rate.v1": {"resident"},
    "orders.order.evaluate.v1": OFFICERS,
    "orders.order.accept.v1": {"party_member"},
    "orders.order.decline.v1": {"party_member"},
    "orders.order.complete.v1": {"party_member"},
    "orders.post.claim.v1": {"party_member"},
    "orders.post.release.v1": {"party_member"},
    "orders.order.dispatch.v1": OFFICERS,
    "orders.member.register.v1": OFFICERS,
    "orders.member.move.v1": OFFICERS,
    "points.account.open.v1": OFFICERS | {"points_operator"},
    "points.adjust.v1": {"points_operator"},
    "points.adjust.approve.v1": {"points_operator"},
    "points.deed.submit.v1": {"resident"},
    "points.deed.review.v1": OFFICERS,
    "points.redeem.v1": {"merchant"},
    "assessment.period.close.v1": {"assessor"},
    "assessment.scheme.change.v1": {"assessor"},
    "assessment.review.record.v1": OFFICERS | {"assessor"},
    **{f"party.{c}.v1": {"party_secretary"} for c in ("member.attach", "household.mark", "org_life.record",
                                                      "commitment.make", "commitment.fulfil", "commitment.rate")},
    **{f"party.{c}.v1": {"party_secretary"} | OFFICERS
       for c in ("org.establish", "unit.report", "council.propose", "meeting.hold", "resolution.complete",
                 "agreement.sign", "project.post", "project.claim", "project.complete", "project.rate")},
    **{f"{svc}.person.erase.v1": {"data_protection_officer"}
       for svc in ("grid", "orders", "points", "assessment", "party")},
}


@dataclass
class World:
    """What the services would know when a command arrives (the fake's state)."""

    district: object
    cases: dict[str, dict] = field(default_factory=dict)  # case id -> grid, reporter, department, handler
    whistles: dict[str, dict] = field(default_factory=dict)  # whistle id -> street, departments
    orders: dict[str, dict] = field(default_factory=dict)  # order id -> community, resident, assignee
    deeds: dict[str, dict] = field(default_factory=dict)  # deed id -> account, community
    adjustments: dict[str, str] = field(default_factory=dict)  # transfer id -> operator
    codes: dict[str, str] = field(default_factory=dict)  # consent code -> account it debits


def street_or_community(code: str) -> bool:
    return kind_of(code) in (CodeKind.STREET, CodeKind.COMMUNITY)


def violation(p, pr: Principal, w: World) -> str | None:
    """Why the policy refuses ``p`` from ``pr`` (None: it admits it)."""
    t, sub, scope = p.TYPE, pr.sub, pr.scope
    roles = pr.roles & ALLOWED[t]
    if not roles:
        return f"{t} from roles {sorted(pr.roles)}"
    if t == "grid.case.report.v1":
        kind = "grid_worker" if "grid_worker" in roles else "resident"
        if p.reporter.kind != kind or p.reporter.id != sub:
            return f"reporter {p.reporter} is not the caller {kind}:{sub}"
        if kind == "grid_worker" and not scope.covers(p.grid_id):
            return f"grid {p.grid_id} outside {scope}"
        return None
    if t == "grid.patrol.log.v1":
        return None if p.grid_worker_id == sub and scope.covers(p.grid_id) else "patrol of another worker or grid"
    if t == "grid.whistle.blow.v1":
        if p.blown_by != sub or not scope.covers(p.street_id):
            return "a whistle of another street, or blown in someone else's name"
        division = p.street_id[:6]
        return None if all(d.split(".")[0] in (division, p.street_id) for d in p.departments) else \
            "summons a department the street may not summon"
    if t in ("grid.whistle.answer.v1", "grid.whistle.rate.v1"):
        whistle = w.whistles.get(p.whistle_id)
        if whistle is None or p.department not in whistle["departments"]:
            return "a whistle that did not summon the department"
        if t == "grid.whistle.answer.v1":
            return None if p.answered_by == sub and p.department in scope.departments else \
                "reports for a department not the caller's"
        return None if p.rated_by == sub and scope.covers(whistle["street"]) else "rates a whistle of another street"
    case = w.cases.get(getattr(p, "case_id", None) or "", {})
    if t.startswith("grid.case."):
        if not case:
            return f"unknown case {p.case_id}"
        actor = {"grid.case.verify.v1": "verifier_id", "grid.case.register.v1": "registrar_id",
                 "grid.case.dismiss.v1": "registrar_id", "grid.case.dispatch.v1": "dispatcher_id",
                 "grid.case.escalate.v1": "requested_by", "grid.case.handle.v1": "handled_by",
                 "grid.case.feedback.v1": "reporter_id", "grid.case.accept.v1": "accepted_by",
                 "grid.case.return.v1": "returned_by", "grid.case.contact.v1": "contacted_by",
                 "grid.case.control.v1": "controlled_by", "grid.case.extension.request.v1": "requested_by",
                 "grid.case.exclusion.request.v1": "requested_by", "grid.case.return.review.v1": "reviewer_id",
                 "grid.case.extension.review.v1": "reviewer_id", "grid.case.exclusion.review.v1": "reviewer_id"}[t]
        if getattr(p, actor) != sub:
            return f"{actor}={getattr(p, actor)!r} is not the caller {sub!r}"
        if "department_officer" in roles:
            return None if case.get("department") in scope.departments else "a case of another department"
        if t == "grid.case.feedback.v1":
            return None if case["reporter"] == ("resident", sub) else "feedback on a case the caller did not report"
        if not scope.covers(case["grid"]):
            return f"case in grid {case['grid']} outside {scope}"
        if t == "grid.case.verify.v1" and case.get("handler") == sub:
            return "verifies a case they handled"
        return None
    if t == "orders.order.place.v1":
        return None if p.resident_id == sub else "an order for someone else"
    if t in ("orders.post.claim.v1", "orders.post.release.v1"):
        return None if p.member_id == sub else "someone else's post"
    if t in ("orders.member.register.v1", "orders.member.move.v1"):  # a move: the new community's office
        return None if scope.covers(p.community_id) else "a member of another community"
    if t.startswith("orders.order."):
        order = w.orders.get(p.order_id)
        if order is None:
            return f"unknown order {p.order_id}"
        if t in ("orders.order.accept.v1", "orders.order.decline.v1", "orders.order.complete.v1"):
            return None if p.assignee_id == sub and order["assignee"] == sub else "an order not dispatched to the caller"
        if t == "orders.order.dispatch.v1":
            if p.dispatched_by not in (None, sub):
                return "dispatched_by names someone else"
            return None if scope.covers(order["community"]) else "an order of another community"
        if t == "orders.order.rate.v1":
            return None if p.resident_id == sub == order["resident"] else "rates an order the caller did not place"
        if t == "orders.order.evaluate.v1":
            if p.evaluator_id != sub or sub == order["assignee"]:
                return "evaluator is not the caller, or is the assignee"
            if pr.roles & OFFICERS and scope.covers(order["community"]):
                return None
            return "evaluates an order outside the caller's area"
        if t == "orders.order.cancel.v1":
            ok = p.cancelled_by in (None, sub) and (order["resident"] == sub or scope.covers(order["community"]))
            return None if ok else "cancels an order that is neither theirs nor of their area"
    if t == "points.account.open.v1":
        holder = p.community_id if p.kind.value == "issuer" else p.holder_id
        if p.account_id != f"{p.kind.value}:{holder}":
            return f"account id {p.account_id} is not {p.kind.value}:{holder}"
        if "points_operator" in roles:
            return None
        if p.kind.value not in ("resident", "merchant") or not scope.covers(p.community_id):
            return "an officer opens an issuer or an account outside their communities"
        return None
    if t == "points.adjust.v1":
        if p.operator_id != sub or p.credit_account in (f"resident:{sub}", f"merchant:{sub}"):
            return "an adjustment by someone else or to the operator's own account"
        return None
    if t == "points.adjust.approve.v1":
        return None if p.approver_id == sub != w.adjustments.get(p.transfer_id) else "approved by its own operator"
    if t == "points.deed.submit.v1":
        return None if p.account_id == f"resident:{sub}" else "a deed of someone else"
    if t == "points.deed.review.v1":
        deed = w.deeds.get(p.deed_id)
        if deed is None or p.reviewer_id != sub or deed["account"] == f"resident:{sub}":
            return "review of an unknown or own deed, or by someone else"
        return None if scope.covers(deed["community"]) else "a deed of another community"
    if t == "points.redeem.v1":
        if p.credit_account != f"merchant:{sub}":
            return "a redemption into another merchant's account"
        code = getattr(p, "consent_code", None)
        if "consent_code" in type(p).model_fields and w.codes.get(code) != p.debit_account:
            return "a redemption without the debited resident's consent code"
        return None
    if t in ("assessment.period.close.v1", "assessment.scheme.change.v1"):
        return None
    if t == "assessment.review.record.v1":
        # reviewer_id is the reviewing party (community, street or unit); the person recording is
        # ``recorded_by`` (the sender, filled from the token), as the assessment service has it
        if getattr(p, "recorded_by", None) not in (None, sub):
            return "a review recorded in someone else's name"
        by, of = p.reviewer_type.value, p.subject_type.value
        if by not in ("unit", "street", "community") or (by != "unit") != bool(street_or_community(p.reviewer_id)):
            return f"reviewer {p.reviewer_id!r} is not a {by}"
        if "community_officer" in roles and (by, of) == ("community", "unit") and scope.covers(p.reviewer_id):
            return None
        if "street_officer" in roles and of == "unit" and by in ("street", "community") and scope.covers(p.reviewer_id):
            return None
        if "street_officer" in roles and (by, of) == ("unit", "community") and scope.covers(p.subject_id):
            return None
        if "assessor" in roles and (by, of) == ("unit", "street"):
            return None
        return f"{sorted(roles)} may not record a review by {by} {p.reviewer_id} of {of} {p.subject_id}"
    if t in ("party.project.claim.v1", "party.project.complete.v1"):  # 双向认领: the unit's own secretary
        return None if sub == f"ps-{p.unit_id}" and "party_secretary" in roles else \
            f"a project claimed or completed for unit {p.unit_id} by {sub}"
    if t.startswith("party."):  # a secretary (or officer) acts in their own area, in their own name
        if getattr(p, "proposed_by", None) not in (None, sub) or getattr(p, "recorded_by", None) not in (None, sub):
            return "a council step in someone else's name"
        area = getattr(p, "community_id", None) or getattr(p, "area_id", None) or getattr(p, "grid_id", None)
        area = area or getattr(p, "council_id", "").removeprefix("council-") or getattr(p, "org_id", "")
        code = area.split(":")[0] if area else ""
        if code.startswith("po-"):
            code = code.rsplit("-", 1)[-1]
        if code and kind_of(code) is not None and not scope.covers(code):
            return f"{t}: area {code} outside {scope}"
        return None
    return f"no rule for {t}"


class PolicyClient:
    """A fake of the services that mints, verifies and checks every command's token."""

    def __init__(self, world: World, minter: TokenMinter, verifier: TokenVerifier):
        self.w, self.minter, self.verifier = world, minter, verifier
        self.sent: list[tuple[object, Principal]] = []
        self.raw: list = []
        self.problems: list[str] = []
        self._n = 0

    def principal(self, sender: Actor) -> Principal:
        got = self.verifier.verify(self.minter.token(sender))
        assert isinstance(got, Principal), got
        return got

    async def send_and_follow(self, payload, *, sender=None, timeout: float = 0) -> Outcome:
        self._n += 1
        cid = f"cmd-{self._n}"
        assert sender is not None, f"{payload.TYPE} sent by nobody"
        pr = self.principal(sender)
        self.sent.append((payload, pr))
        why = violation(payload, pr, self.w)
        if why:
            self.problems.append(f"{payload.TYPE} by {pr.sub}: {why}")
        events = self.apply(payload, pr)
        return Outcome(cid, [CloudEvent(id=f"e-{self._n}-{i}", source="/services/fake", type=t, causationid=cid,
                                        data=d) for i, (t, d) in enumerate(events)])

    def apply(self, p, pr: Principal) -> list[tuple[str, dict]]:
        """What the services would do (enough for the stories to go on)."""
        t, w = p.TYPE, self.w
        if t == "grid.case.report.v1":
            w.cases.setdefault(p.case_id, {"grid": p.grid_id, "reporter": (p.reporter.kind.value, p.reporter.id)})
            return [("grid.case.reported.v1", {"case_id": p.case_id})]
        if t in ("grid.case.register.v1", "grid.case.dispatch.v1"):
            w.cases[p.case_id]["department"] = p.department
        if t == "grid.case.return.review.v1" and p.approved:  # re-dispatched
            w.cases[p.case_id]["department"] = p.department
        if t == "grid.whistle.blow.v1":
            w.whistles[p.whistle_id] = {"street": p.street_id, "departments": set(p.departments)}
        if t == "grid.case.handle.v1":
            w.cases[p.case_id]["handler"] = pr.sub
        if t == "orders.order.place.v1":
            community = GridCode.parse(p.grid_id).community_id
            members = w.district.members_of(community)
            assignee = members[self._n % len(members)].member_id
            w.orders[p.order_id] = {"community": community, "resident": p.resident_id, "assignee": assignee}
            placed = ("orders.order.placed.v1", {"order_id": p.order_id})
            if self._n % 4 == 0:  # nobody free yet: the community console dispatches by hand later
                return [placed]
            return [placed, ("orders.order.dispatched.v1", {"order_id": p.order_id, "assignee_id": assignee})]
        if t in ("orders.order.decline.v1", "orders.order.dispatch.v1"):
            order = w.orders[p.order_id]
            members = [m for m in w.district.members_of(order["community"]) if m.member_id != order["assignee"]]
            order["assignee"] = members[self._n % len(members)].member_id
            return [("orders.order.dispatched.v1", {"order_id": p.order_id, "assignee_id": order["assignee"]})]
        if t == "points.deed.submit.v1":
            w.deeds[p.deed_id] = {"account": p.account_id, "community": p.community_id}
        if t == "points.adjust.v1":
            w.adjustments[p.transfer_id] = pr.sub
        if t == "party.org.establish.v1":
            return [("party.org.established.v1", {"org_id": p.org_id})]
        if t == "party.council.propose.v1":  # the fake's 公示 passes at once
            return [("party.council.proposed.v1", {}), ("party.council.effective.v1", {"council_id": p.council_id})]
        return [(t.replace(".v1", "d.v1"), {})]

    async def send_raw(self, topic: str, value: bytes, *, key=None) -> None:
        self.raw.append((topic, value))

    async def redemption_code(self, resident: Actor, amount: int) -> dict:
        pr = self.principal(resident)
        assert "resident" in pr.roles, pr
        code = f"code-{len(self.w.codes) + 1}"
        self.w.codes[code] = f"resident:{pr.sub}"
        return {"code": code, "account_id": f"resident:{pr.sub}", "amount": amount}

    def expect(self, predicate):
        import asyncio
        return asyncio.get_running_loop().create_future()

    async def wait_for(self, predicate, timeout: float = 0):
        return None

    def seen(self, subject, type_):
        return None


@pytest.fixture(scope="module")
def provider(tmp_path_factory):
    """A signing key, its JWKS, a minter and a verifier as a service has it."""
    directory = tmp_path_factory.mktemp("sim-identity")
    key = devidentity.generate_key()
    devidentity.write_jwks(directory / "jwks.json", [devidentity.public_jwk(key)])
    mp = pytest.MonkeyPatch()
    mp.setenv("JWKS", str(directory / "jwks.json"))
    mp.setenv("JWT_ISSUER", ISSUER)
    mp.setenv("JWT_AUDIENCE", AUDIENCE)
    verifier = TokenVerifier.from_settings(ServiceSettings())
    mp.undo()
    return TokenMinter(key, issuer=ISSUER, audience=AUDIENCE), verifier


def service_policies() -> dict[str, object]:
    """The services' own tables (every service has one)."""
    return {svc: importlib.import_module(f"services.{svc}.app.policy").POLICY
            for svc in ("grid", "orders", "points", "assessment", "party")}


async def played(provider, stories_per_kind: int = 25, seed: int = 7) -> PolicyClient:
    minter, verifier = provider
    district = generate(seed)
    client = PolicyClient(World(district), minter, verifier)
    at = [datetime(2026, 5, 1, tzinfo=timezone.utc)]

    def stepping() -> datetime:  # a calendar that steps a month on every reading: late steps go on at once
        at[0] += timedelta(days=31)
        return at[0]

    s = Stories(district, client, seed=seed, follow_timeout=0.01, expire_wait=0.01, now=stepping, settle=0.0)
    await s.setup()
    for kind in MIX:
        for _ in range(stories_per_kind * (4 if kind == "order" else 1)):
            await s.run_one(kind)
    for street in district.streets:  # each street's whistle of the month
        await s.story_whistle(random.Random(street.street_id), street.street_id)
    await asyncio.gather(*s.tasks)
    for month in range(3):  # months of Party life (a quarter's last: the councils' joint meetings)
        await s.party_month(random.Random(month))
    for street in district.streets:
        await s.joint_meeting(street.street_id, random.Random(street.street_id))
    await s.month_end_reviews("2026-05", random.Random(1))
    await s.close_period("2026-05")
    return client


def test_every_sender_role_of_the_table_is_allowed_to_send_its_command():
    for t, role in ROLE_OF.items():
        assert role in ALLOWED[t], t


async def test_every_simulated_command_is_one_its_sender_may_send(provider):
    client = await played(provider)
    assert not client.problems, "\n".join(client.problems[:30])
    types = Counter(p.TYPE for p, _ in client.sent)
    # the whole policy is exercised: every kind of sender and (almost) every command
    assert {r for _, pr in client.sent for r in pr.roles} >= {
        "resident", "grid_worker", "community_officer", "street_officer", "department_officer", "party_member",
        "merchant", "points_operator", "assessor"}
    assert {(p.reviewer_type.value, p.subject_type.value) for p, _ in client.sent
            if p.TYPE == "assessment.review.record.v1"} == {("community", "unit"), ("street", "unit"),
                                                             ("unit", "community"), ("unit", "street")}
    unsent = set(ALLOWED) - set(types) - {t for t in ALLOWED if t.endswith(".person.erase.v1")}  # not simulated
    assert unsent <= {"grid.case.dismiss.v1", "orders.order.cancel.v1", "orders.post.release.v1",
                      "assessment.scheme.change.v1", "points.adjust.approve.v1"}, unsent


async def test_the_services_own_tables_admit_every_simulated_command(provider):
    policies = service_policies()
    client = await played(provider, stories_per_kind=10)
    refused = []
    for payload, pr in client.sent:
        try:
            policies[payload.service()].admit(payload, pr)
        except Refused as e:
            refused.append(f"{payload.TYPE} by {pr.sub} {sorted(pr.roles)}: {e}")
    assert not refused, "\n".join(refused[:30])


def test_the_policy_check_catches_a_wrong_sender():
    """The check above is not vacuous: a command in someone else's name, from the wrong role or
    outside the sender's area is caught."""
    from datetime import datetime, timezone

    from schemas.grid import LogPatrol, VerifyCase

    d = generate(7)
    w = World(d)
    g, other = d.grids[0].grid_id, d.grids[-1].grid_id
    worker = d.worker_of(g).person_id
    at = datetime(2026, 5, 1, tzinfo=timezone.utc)
    me = Principal(worker, frozenset({"grid_worker"}), Scope.of(grids=[g]))
    assert violation(LogPatrol(patrol_id="p", grid_id=g, grid_worker_id=worker, started_at=at, ended_at=at), me, w) is None
    assert violation(LogPatrol(patrol_id="p", grid_id=other, grid_worker_id=worker, started_at=at, ended_at=at), me, w)
    assert violation(LogPatrol(patrol_id="p", grid_id=g, grid_worker_id="gw-x", started_at=at, ended_at=at), me, w)
    w.cases["c"] = {"grid": g, "reporter": ("grid_worker", worker), "handler": worker}
    assert "handled" in violation(VerifyCase(case_id="c", passed=True, verifier_id=worker), me, w)
    from schemas.party import ClaimProject

    unit = d.units[0]
    community_secretary = Principal(f"ps-{unit.community_id}", frozenset({"party_secretary"}),
                                    Scope.of(communities=[unit.community_id]))
    unit_secretary = Principal(f"ps-{unit.unit_id}", frozenset({"party_secretary"}),
                               Scope.of(communities=[unit.community_id]))
    claim = ClaimProject(project_id="pj-1", unit_id=unit.unit_id)
    assert violation(claim, unit_secretary, w) is None
    assert violation(claim, community_secretary, w)  # the community does not claim for its units
    resident = Principal("r", frozenset({"resident"}))
    assert violation(LogPatrol(patrol_id="p", grid_id=g, grid_worker_id="r", started_at=at, ended_at=at), resident, w)


def test_the_cast_gives_each_person_their_own_area():
    d = generate(7)
    cast = Cast(d)
    g = d.grids[5]
    assert cast.grid_worker(g.grid_id).grids == (g.grid_id,)
    assert cast.community_officer(g.community_id).communities == (g.community_id,)
    assert cast.street_officer(street_id_of(g.community_id)).streets == (g.street_id,)
    m = d.members[0]
    assert set(cast.member(m.member_id).roles) == {"party_member", "resident"}
    assert cast.resident(m.member_id) == cast.member(m.member_id)  # a member redeems as the resident they are
    assert cast.points_operator(0).sub != cast.points_operator(1).sub
    assert cast.department_officer("110105.cgw").departments == ("110105.cgw",)
    assert cast.department_officer("110105.cgw").sub == "do-110105.cgw"
    assert all(r in ROLES for a in (cast.assessor(), cast.merchant(d.merchants[0])) for r in a.roles)


def test_a_token_is_kept_per_person_and_minted_again_before_it_expires():
    now = [1_000_000.0]
    minter = TokenMinter(devidentity.generate_key(), issuer=ISSUER, audience=AUDIENCE, lifetime=3600,
                         refresh_before=600, clock=lambda: now[0])
    a, b = Actor("res-1", ("resident",)), Actor("res-2", ("resident",))
    first = minter.token(a)
    assert minter.token(a) == first and minter.token(b) != first and minter.minted == 2
    now[0] += 2999  # 601 s left: still good
    assert minter.token(a) == first
    now[0] += 2  # 599 s left: a new one
    assert minter.token(a) != first and minter.minted == 3


async def test_the_client_sends_each_command_with_its_senders_own_token(provider):
    from datetime import datetime, timezone

    from schemas.grid import LogPatrol

    minter, verifier = provider

    class Producer:
        def __init__(self):
            self.sent = []

        async def send_and_wait(self, topic, value, *, key=None, headers=()):
            self.sent.append(dict(headers))

    client = CommandClient("127.0.0.1:1", minter=minter, tokens={"grid_worker": "demo.jwt"})
    client._producer = Producer()
    at = datetime(2026, 5, 1, tzinfo=timezone.utc)
    worker = Actor("gw-110105001001001", ("grid_worker",), grids=("110105001001001",))
    await client.send(LogPatrol(patrol_id="p", grid_id="110105001001001", grid_worker_id=worker.sub, started_at=at,
                                ended_at=at), sender=worker)
    token = client._producer.sent[0]["authorization"].decode().removeprefix("Bearer ")
    pr = verifier.verify(token)
    assert pr.sub == worker.sub and pr.roles == {"grid_worker"} and pr.scope.covers("110105001001001")
    assert client.token_for("grid.patrol.log.v1") == "demo.jwt"  # no sender: the demo token of the role


async def test_the_client_asks_the_points_api_for_a_residents_consent_code(provider):
    from aiohttp import web

    from services.kit.infra import free_port

    minter, verifier = provider
    seen = []

    async def create(request: web.Request) -> web.Response:
        pr = verifier.verify(request.headers["Authorization"].removeprefix("Bearer "))
        body = await request.json()
        seen.append((pr.sub, sorted(pr.roles), body))
        if body["amount"] > 50:
            return web.json_response({"error": "insufficient_points"}, status=409)
        return web.json_response({"code": "c-1", "account_id": f"resident:{pr.sub}", "amount": body["amount"],
                                  "expires_at": "2026-05-01T00:05:00Z"}, status=201)

    app = web.Application()
    app.router.add_post("/v1/redemption-codes", create)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    client = CommandClient("127.0.0.1:1", minter=minter, points_url=f"http://127.0.0.1:{port}")
    try:
        resident = Actor("res-1", ("resident",))
        got = await client.redemption_code(resident, 5)
        assert got["code"] == "c-1" and got["account_id"] == "resident:res-1"
        assert await client.redemption_code(resident, 500) is None
        assert seen == [("res-1", ["resident"], {"amount": 5}), ("res-1", ["resident"], {"amount": 500})]
    finally:
        await client.stop()
        await runner.cleanup()
