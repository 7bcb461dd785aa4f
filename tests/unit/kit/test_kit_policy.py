"""The kit's policy table (services/kit/policy.py): who may send a command, actor fields from the
token, the area in the caller's scope; and a route's roles (403, documented as x-roles)."""
from __future__ import annotations

from enum import Enum
from typing import Any, ClassVar

import pytest
from pydantic import BaseModel, ConfigDict, Field, model_validator

from schemas.common import Command, CommunityId, GridId, NonEmptyStr
from services.kit.http import HttpError
from services.kit.identity import ROLES, Principal, Scope, Unauthenticated
from services.kit.policy import (DISTRICT_ROLES, SUB, Policy, Refused, allow, in_area, read_scope, roles_table,
                                 sees_district)
from services.kit.routes import ErrorOut, Route

GRID_A = "110105001001001"  # street 110105001, community 110105001001
GRID_B = "110105002003004"  # another street
COMMUNITY_A = "110105001001"
STREET_A = "110105001"


# -- commands of a test service (their TYPE is set after the class, so that the contract's
#    registry of message types never holds them) --------------------------------------------

class ReporterKind(str, Enum):
    GRID_WORKER = "grid_worker"
    RESIDENT = "resident"


class Level(Enum):  # a plain Enum: its value is what a template is compared with
    ONE = "one"


class Reporter(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    kind: ReporterKind | None = None
    id: NonEmptyStr | None = None


class Report(Command):
    SUBJECT: ClassVar[str] = "case_id"

    case_id: NonEmptyStr
    grid_id: GridId
    reporter: Reporter | None = None
    media: tuple[str, ...] = ()
    tags: list[str] = Field(default_factory=list)


class Verify(Command):
    SUBJECT: ClassVar[str] = "case_id"

    case_id: NonEmptyStr
    grid_id: GridId | None = None
    verifier_id: NonEmptyStr | None = None
    level: Level | None = None


class Review(Command):
    """A model validator that needs the filled value: a reviewer never reviews their own deed."""

    SUBJECT: ClassVar[str] = "deed_id"

    deed_id: NonEmptyStr
    submitted_by: NonEmptyStr
    reviewer_id: NonEmptyStr | None = None
    community_id: CommunityId | None = None

    @model_validator(mode="after")
    def _not_own(self) -> "Review":
        if self.reviewer_id is not None and self.reviewer_id == self.submitted_by:
            raise ValueError("nobody reviews their own deed")
        return self


class Redeem(Command):
    SUBJECT: ClassVar[str] = "redemption_id"

    redemption_id: NonEmptyStr
    merchant_account: str | None = Field(default=None, pattern=r"^merchant:[a-z0-9-]{1,20}$")
    amount: int = Field(gt=0)


class Unlisted(Command):
    SUBJECT: ClassVar[str] = "x"

    x: str


for _cls, _type in ((Report, "kitpolicy.case.report.v1"), (Verify, "kitpolicy.case.verify.v1"),
                    (Review, "kitpolicy.deed.review.v1"), (Redeem, "kitpolicy.redemption.redeem.v1"),
                    (Unlisted, "kitpolicy.thing.do.v1")):
    _cls.TYPE = _type


POLICY = Policy("kitpolicy", {
    Report: (allow("grid_worker", actor={"reporter.id": SUB, "reporter.kind": "grid_worker"}, area=lambda c: c.grid_id),
             allow("resident", actor={"reporter.id": "resident:{sub}", "reporter.kind": "resident"})),
    Verify: allow("grid_worker", "points_operator", actor={"verifier_id": SUB, "level": "one"},
                  area=lambda c: c.grid_id, note="not a case they handled"),
    Review: allow("community_officer", actor={"reviewer_id": SUB}, area=lambda c: c.community_id),
    Redeem: allow("merchant", actor={"merchant_account": "merchant:{sub}"}),
})


def who(sub: str = "alice", *roles: str, streets=(), communities=(), grids=()) -> Principal:
    return Principal(sub, frozenset(roles), Scope.of(streets=streets, communities=communities, grids=grids))


def refused(payload, principal) -> Refused:
    with pytest.raises(Refused) as e:
        POLICY.admit(payload, principal)
    return e.value


# -- roles -------------------------------------------------------------------------------------

def test_a_role_the_table_does_not_name_is_refused_forbidden_naming_who_may():
    e = refused(Verify(case_id="c1", grid_id=GRID_A), who("bob", "resident", "auditor"))
    assert (e.reason, e.status) == ("forbidden", 403)
    assert "grid_worker, points_operator" in e.detail and "auditor, resident" in e.detail


def test_a_command_not_in_the_table_is_refused_to_every_role():
    everyone = who("root", *ROLES, streets=[STREET_A])
    e = refused(Unlisted(x="1"), everyone)
    assert e.reason == "forbidden" and "nobody" in e.detail


def test_no_principal_and_a_failed_token_are_unauthenticated():
    e = refused(Verify(case_id="c1"), None)
    assert (e.reason, e.status) == ("unauthenticated", 401)
    e = refused(Verify(case_id="c1"), Unauthenticated("expired", "the token has expired"))
    assert e.reason == "unauthenticated" and "expired" in e.detail


def test_a_policy_names_only_known_roles_and_its_own_commands():
    with pytest.raises(ValueError):
        allow("superuser")
    with pytest.raises(ValueError):
        allow()
    with pytest.raises(ValueError):
        Policy("other", {Verify: allow("grid_worker")})


# -- actor fields --------------------------------------------------------------------------------

def test_an_actor_field_left_out_is_filled_from_the_token_and_the_payload_stays_valid():
    gw = who("gw-7", "grid_worker", grids=[GRID_A])
    out = POLICY.admit(Verify(case_id="c1", grid_id=GRID_A), gw)
    assert (out.verifier_id, out.level) == ("gw-7", Level.ONE)  # a constant too, validated into the enum
    assert isinstance(out, Verify) and out.case_id == "c1"
    # the same values given by the body: admitted as they are
    same = Verify(case_id="c1", grid_id=GRID_A, verifier_id="gw-7", level=Level.ONE)
    assert POLICY.admit(same, gw) is same


def test_an_actor_field_naming_someone_else_is_forbidden_with_the_field():
    gw = who("gw-7", "grid_worker", grids=[GRID_A])
    e = refused(Verify(case_id="c1", grid_id=GRID_A, verifier_id="gw-8"), gw)
    assert (e.reason, e.field) == ("forbidden", "verifier_id")
    assert "'gw-7'" in e.detail and "'gw-8'" in e.detail


def test_a_nested_actor_path_is_filled_into_a_missing_parent_and_checked_in_a_given_one():
    gw = who("gw-7", "grid_worker", grids=[GRID_A])
    out = POLICY.admit(Report(case_id="c1", grid_id=GRID_A, media=("a.jpg",), tags=["x"]), gw)
    assert out.reporter == Reporter(kind=ReporterKind.GRID_WORKER, id="gw-7")
    assert out.media == ("a.jpg",) and out.tags == ["x"]  # the rest of the command as it was
    half = Report(case_id="c1", grid_id=GRID_A, reporter=Reporter(kind=ReporterKind.GRID_WORKER))
    assert POLICY.admit(half, gw).reporter.id == "gw-7"
    e = refused(Report(case_id="c1", grid_id=GRID_A, reporter=Reporter(kind=ReporterKind.GRID_WORKER, id="gw-9")), gw)
    assert e.field == "reporter.id"


def test_a_template_with_the_sub_in_it():
    res = who("r-42", "resident")
    out = POLICY.admit(Report(case_id="c1", grid_id=GRID_B), res)
    assert out.reporter == Reporter(kind=ReporterKind.RESIDENT, id="resident:r-42")
    assert refused(Report(case_id="c1", grid_id=GRID_B, reporter=Reporter(id="resident:r-43")), res).field == "reporter.id"
    # a constant the body contradicts: a resident reporting as a grid worker
    e = refused(Report(case_id="c1", grid_id=GRID_B, reporter=Reporter(kind=ReporterKind.GRID_WORKER)), res)
    assert e.field == "reporter.kind"


def test_a_filled_value_the_field_cannot_hold_is_refused_not_an_error_of_the_kit():
    # NonEmptyStr holds 200 characters; a token's sub may hold 255
    e = refused(Verify(case_id="c1", grid_id=GRID_A), who("x" * 230, "grid_worker", grids=[GRID_A]))
    assert (e.reason, e.field) == ("forbidden", "verifier_id")
    # the field's pattern
    e = refused(Redeem(redemption_id="r1", amount=5), who("Not Valid", "merchant"))
    assert e.reason == "forbidden" and "merchant_account" in e.detail
    assert POLICY.admit(Redeem(redemption_id="r1", amount=5), who("shop-1", "merchant")).merchant_account == "merchant:shop-1"


def test_the_models_own_rules_see_the_filled_value():
    officer = who("off-1", "community_officer", communities=[COMMUNITY_A])
    ok = POLICY.admit(Review(deed_id="d1", submitted_by="someone", community_id=COMMUNITY_A), officer)
    assert ok.reviewer_id == "off-1"
    e = refused(Review(deed_id="d1", submitted_by="off-1", community_id=COMMUNITY_A), officer)
    assert e.reason == "forbidden" and "own deed" in e.detail


def test_filling_keeps_what_a_dump_and_parse_would_lose():
    """The filled copy is rebuilt from the field values themselves: fields left to their
    defaults stay unset, extra data of an extra="allow" model stays."""

    class Loose(Command):
        model_config = ConfigDict(extra="allow")
        SUBJECT: ClassVar[str] = "x"
        x: str
        by: str | None = None
        when: Any = None

    Loose.TYPE = "kitpolicy.loose.do.v1"
    policy = Policy("kitpolicy", {Loose: allow("resident", actor={"by": SUB})})
    marker = object()  # a value no JSON round trip keeps
    cmd = Loose(x="1", when=marker, extra_field=3)
    out = policy.admit(cmd, who("r-1", "resident"))
    assert out.by == "r-1" and out.when is marker and out.model_extra == {"extra_field": 3}
    assert out.model_fields_set == cmd.model_fields_set | {"by"}


# -- areas ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("scope, inside", [
    ({"grids": [GRID_A]}, True),
    ({"communities": [COMMUNITY_A]}, True),
    ({"streets": [STREET_A]}, True),
    ({"grids": ["110105001001002"]}, False),  # a neighbouring grid
    ({"communities": ["110105001002"]}, False),
    ({"streets": ["110105002"]}, False),
    ({}, False),
])
def test_the_area_must_lie_in_the_callers_scope(scope, inside):
    gw = who("gw-7", "grid_worker", **scope)
    cmd = Verify(case_id="c1", grid_id=GRID_A)
    if inside:
        assert POLICY.admit(cmd, gw).verifier_id == "gw-7"
    else:
        e = refused(cmd, gw)
        assert e.reason == "forbidden" and GRID_A in e.detail and e.field is None


def test_a_command_without_an_area_is_not_checked_against_the_scope():
    assert POLICY.admit(Verify(case_id="c1"), who("gw-7", "grid_worker")).verifier_id == "gw-7"


def test_district_roles_skip_the_area_check_and_only_for_their_own_grant():
    op = who("op-1", "points_operator")  # no scope at all
    assert POLICY.admit(Verify(case_id="c1", grid_id=GRID_B), op).verifier_id == "op-1"
    # a grid worker who is also an auditor: auditor is district-wide, but not a role of this grant
    both = who("gw-7", "grid_worker", "auditor", grids=[GRID_A])
    assert refused(Verify(case_id="c1", grid_id=GRID_B), both).reason == "forbidden"
    assert DISTRICT_ROLES == {"points_operator", "assessor", "auditor"}


# -- several grants ------------------------------------------------------------------------------

def test_with_several_grants_the_first_that_passes_admits():
    # a grid worker outside their grids who is also a resident: reports as a resident
    both = who("p-1", "grid_worker", "resident", grids=[GRID_A])
    out = POLICY.admit(Report(case_id="c1", grid_id=GRID_B), both)
    assert out.reporter == Reporter(kind=ReporterKind.RESIDENT, id="resident:p-1")
    # inside their grids the grid worker's grant comes first
    out = POLICY.admit(Report(case_id="c1", grid_id=GRID_A), both)
    assert out.reporter == Reporter(kind=ReporterKind.GRID_WORKER, id="p-1")


def test_when_every_grant_refuses_the_first_refusal_is_given():
    gw = who("gw-7", "grid_worker", "resident", grids=[GRID_A])
    e = refused(Report(case_id="c1", grid_id=GRID_A, reporter=Reporter(id="someone")), gw)
    assert e.field == "reporter.id" and "'gw-7'" in e.detail  # the grid worker's grant, tried first


# -- documentation and helpers -------------------------------------------------------------------

def test_rows_describe_each_grant_for_the_readme():
    rows = POLICY.rows()
    assert rows[0] == ("kitpolicy.case.report.v1", "`grid_worker`",
                       "`reporter.id` = the caller; `reporter.kind` = `grid_worker`; in the caller's scope")
    assert rows[1][2] == "`reporter.id` = `resident:<sub>`; `reporter.kind` = `resident`"
    assert rows[2] == ("kitpolicy.case.verify.v1", "`grid_worker`, `points_operator`",
                       "`verifier_id` = the caller; `level` = `one`; in the caller's scope; not a case they handled")
    assert roles_table([POLICY]) == rows
    assert POLICY.roles_for(Report) == {"grid_worker", "resident"} and POLICY.roles_for(Unlisted) == frozenset()


def test_area_helpers():
    gw = who("gw-7", "grid_worker", grids=[GRID_A])
    assert in_area(gw, GRID_A) and not in_area(gw, GRID_B) and not in_area(gw, None) and not in_area(None, GRID_A)
    auditor = who("a-1", "auditor")
    assert in_area(auditor, GRID_B) and sees_district(auditor) and read_scope(auditor) is None
    assert not sees_district(gw) and not sees_district(None) and read_scope(gw) == gw.scope


# -- routes ----------------------------------------------------------------------------------------

async def _fn(req):
    return req


def test_a_route_with_roles_refuses_other_roles_403_and_documents_them():
    r = Route("/v1/cases", "GET", _fn, roles=("community_officer", "auditor"))
    r.permit(who("o", "community_officer"))
    r.permit(who("a", "auditor", "resident"))
    with pytest.raises(HttpError) as e:
        r.permit(who("r", "resident"))
    assert (e.value.status, e.value.error) == (403, "forbidden")
    assert "auditor, community_officer" in e.value.detail and "resident" in e.value.detail
    with pytest.raises(HttpError) as e:
        r.permit(None)
    assert e.value.status == 401
    answers = r.answers()
    assert answers[403].type is ErrorOut and "auditor, community_officer" in answers[403].description
    Route("/v1/open", "GET", _fn).permit(None)  # no roles: anyone authenticated (or a public route)


def test_roles_need_authentication_and_known_names():
    with pytest.raises(TypeError):
        Route("/v1/x", "GET", _fn, auth=False, roles=("auditor",))
    with pytest.raises(TypeError):
        Route("/v1/x", "GET", _fn, roles=("root",))
    assert 403 not in Route("/v1/x", "GET", _fn).answers()


def test_openapi_names_a_routes_roles_and_its_403():
    from services.kit.runtime import ServiceRuntime
    from services.kit.settings import ServiceSettings

    rt = ServiceRuntime("grid", ServiceSettings())

    @rt.get("/v1/things", roles=("auditor", "community_officer"))
    async def things(req):
        return []

    @rt.get("/v1/anyone")
    async def anyone(req):
        return []

    doc = rt.openapi()
    op = doc["paths"]["/v1/things"]["get"]
    assert op["x-roles"] == ["auditor", "community_officer"]
    assert "403" in op["responses"] and "forbidden" in op["responses"]["403"]["description"]
    assert "x-roles" not in doc["paths"]["/v1/anyone"]["get"] and "403" not in doc["paths"]["/v1/anyone"]["get"]["responses"]


def test_a_role_that_may_not_send_a_type_is_refused_by_the_type_alone():
    """POST /v1/commands asks this before validating the body: 403 does not wait for a valid one."""
    policy = Policy("kitpolicy", {Verify: allow("grid_worker", actor={"verifier_id": SUB})})
    policy.permits_type(Verify.TYPE, Principal("gw-1", frozenset({"grid_worker"})))
    for roles in ({"resident"}, set()):
        with pytest.raises(Refused) as e:
            policy.permits_type(Verify.TYPE, Principal("r-1", frozenset(roles)))
        assert e.value.reason == "forbidden" and e.value.status == 403
    with pytest.raises(Refused) as e:
        policy.permits_type(Unlisted.TYPE, Principal("gw-1", frozenset({"grid_worker"})))  # not in the table
    assert e.value.reason == "forbidden"
    with pytest.raises(Refused) as e:
        policy.permits_type(Verify.TYPE, None)
    assert e.value.reason == "unauthenticated"
