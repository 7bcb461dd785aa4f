"""The assessment policy table (who sends which command) and the read rules, without a broker."""
from __future__ import annotations

import pytest

from schemas.assessment import ChangeScheme, ClosePeriod, RecordReview
from services.assessment.app import access
from services.assessment.app.policy import POLICY
from services.kit.identity import ROLES, Principal, Scope
from services.kit.policy import Refused

STREET, OTHER_STREET = "110105001", "110105002"
COMMUNITY, OTHER_COMMUNITY = "110105001002", "110105002001"
GRID = COMMUNITY + "001"
PERIOD = "2026-10"


def who(role: str, sub: str = "p-1", **scope) -> Principal:
    return Principal(sub, frozenset({role}), Scope.of(**scope))


def review(reviewer: str, subject_type: str, subject: str, **kw) -> RecordReview:
    return RecordReview(review_id="rv", reviewer_id=reviewer, subject_type=subject_type, subject_id=subject,
                        period=PERIOD, score=80, **kw)


COMMANDS = {
    "community_reviews_unit": review(COMMUNITY, "unit", "u-1"),
    "street_reviews_unit": review(STREET, "unit", "u-1"),
    "unit_reviews_community": review("u-1", "community", COMMUNITY),
    "unit_reviews_street": review("u-1", "street", STREET),
    "change_scheme": ChangeScheme(scheme_id="s-2", weights={"grid.organisation": 1}, effective_from="2026-11-01T00:00:00+08:00"),
    "close_period": ClosePeriod(period=PERIOD),
}
ALLOWED = {
    "community_reviews_unit": {"community_officer", "street_officer"},
    "street_reviews_unit": {"street_officer"},
    "unit_reviews_community": {"street_officer"},
    "unit_reviews_street": {"assessor"},
    "change_scheme": {"assessor"},
    "close_period": {"assessor"},
}


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_role_sends_exactly_what_the_table_allows(role, name):
    """Scope: the caller's whole street (so that only the role decides)."""
    p = who(role, streets=[STREET])
    if role in ALLOWED[name]:
        assert POLICY.admit(COMMANDS[name], p) is not None
    else:
        with pytest.raises(Refused) as e:
            POLICY.admit(COMMANDS[name], p)
        assert e.value.reason == "forbidden" and e.value.status == 403


def test_anyone_but_the_assessor_is_refused_closing_periods_and_changing_schemes():
    """The attack: one valid token of any other role closes nothing, changes nothing."""
    everyone_else = Principal("mallory", frozenset(set(ROLES) - {"assessor"}), Scope.of(streets=[STREET]))
    for cmd in (COMMANDS["close_period"], COMMANDS["change_scheme"]):
        with pytest.raises(Refused) as e:
            POLICY.admit(cmd, everyone_else)
        assert e.value.reason == "forbidden"
    with pytest.raises(Refused) as e:
        POLICY.admit(COMMANDS["close_period"], None)
    assert e.value.reason == "unauthenticated"


def test_the_recorder_is_filled_from_the_token_and_nobody_records_for_someone_else():
    officer = who("community_officer", "officer-7", communities=[COMMUNITY])
    assert POLICY.admit(COMMANDS["community_reviews_unit"], officer).recorded_by == "officer-7"
    assert POLICY.admit(review(COMMUNITY, "unit", "u-1", recorded_by="officer-7"), officer).recorded_by == "officer-7"
    with pytest.raises(Refused) as e:
        POLICY.admit(review(COMMUNITY, "unit", "u-1", recorded_by="officer-8"), officer)
    assert (e.value.reason, e.value.field) == ("forbidden", "recorded_by")


def test_an_officer_records_only_their_own_area_s_reviews():
    officer = who("community_officer", communities=[COMMUNITY])
    with pytest.raises(Refused):  # another community's review
        POLICY.admit(review(OTHER_COMMUNITY, "unit", "u-1"), officer)
    with pytest.raises(Refused):  # the community's street's review
        POLICY.admit(review(STREET, "unit", "u-1"), officer)
    with pytest.raises(Refused):  # units' opinions of their own community: the street collects them
        POLICY.admit(review("u-1", "community", COMMUNITY), officer)
    street = who("street_officer", streets=[STREET])
    assert POLICY.admit(review(COMMUNITY, "unit", "u-1"), street)  # a community of the street
    assert POLICY.admit(review("u-1", "community", COMMUNITY), street)
    for cmd in (review(OTHER_STREET, "unit", "u-1"), review(OTHER_COMMUNITY, "unit", "u-1"),
                review("u-1", "community", OTHER_COMMUNITY), review("u-1", "street", STREET)):
        with pytest.raises(Refused):
            POLICY.admit(cmd, street)


def test_a_declared_reviewer_type_must_be_what_the_id_says():
    street = who("street_officer", streets=[STREET])
    # a community code passed off as a unit, to review a community of the street as a "unit"
    with pytest.raises(Refused):
        POLICY.admit(review(OTHER_COMMUNITY, "community", COMMUNITY, reviewer_type="unit"), street)
    with pytest.raises(Refused):
        POLICY.admit(review("u-1", "unit", "u-2", reviewer_type="community"), street)
    assert POLICY.admit(review(COMMUNITY, "unit", "u-1", reviewer_type="community"), street)


def test_reads_follow_the_scope():
    officer = who("community_officer", communities=[COMMUNITY])
    assert access.may_read(officer, "grid", GRID, COMMUNITY)
    assert access.may_read(officer, "community", COMMUNITY, STREET)
    assert access.may_read(officer, "member", "m-1", COMMUNITY)
    assert not access.may_read(officer, "community", OTHER_COMMUNITY, STREET)
    assert not access.may_read(officer, "street", STREET, "110105")
    assert not access.may_read(officer, "member", "m-2", OTHER_COMMUNITY)
    assert not access.may_read(officer, "unit", "u-1", None)
    street = who("street_officer", streets=[STREET])
    assert access.may_read(street, "street", STREET, "110105") and access.may_read(street, "unit", "u-1", STREET)
    for role in ("assessor", "auditor"):
        assert access.may_read(who(role), "street", OTHER_STREET, "110105")
        assert access.list_scope(who(role)) is None
    assert access.may_read(who("grid_worker", "gw-1"), "grid_worker", "gw-1", COMMUNITY)
    assert not access.may_read(who("grid_worker", "gw-1"), "grid_worker", "gw-2", COMMUNITY)
    assert not access.may_read(who("grid_worker", "gw-1", grids=[GRID]), "grid", GRID, COMMUNITY)
    assert access.may_read(who("party_member", "m-1"), "member", "m-1", COMMUNITY)
    assert not access.may_read(who("party_member", "m-1"), "grid_worker", "m-1", COMMUNITY)
    assert access.list_scope(who("party_member", "m-1")).is_empty()


def test_a_departments_scorecard_is_the_districts_and_its_own_officers_to_read():
    cgj, zhzf = "110105.cgj", "110105001.zhzf"
    own = who("department_officer", departments=[cgj])
    assert access.may_read(own, "department", cgj, "110105")
    assert not access.may_read(own, "department", zhzf, "110105")
    assert not access.may_read(who("department_officer"), "department", cgj, "110105")
    assert not access.may_read(who("street_officer", streets=[STREET]), "department", zhzf, "110105")
    for role in ("assessor", "auditor"):
        assert access.may_read(who(role), "department", cgj, "110105")
    assert "department_officer" in access.CARD_READERS and "department_officer" not in access.LIST_READERS
