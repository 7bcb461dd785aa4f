"""Duplicate reports (重复上报): same category within the radius of an open case."""
from __future__ import annotations

import pytest
from grid_builders import CASE, World, dismiss, dispatch, feedback, handle, register, report, types, verify, world_at

from schemas.grid import CaseDismissed, CaseDuplicateLinked, Category, Location
from services.grid.domain import DUPLICATE_REASON, CaseStatus, OpenCase, Rejected, find_duplicate, haversine_m

TIANANMEN = (39.9087, 116.3975)


def north_of(lat: float, lon: float, metres: float) -> tuple[float, float]:
    return lat + metres / 111_195.0, lon  # one degree of latitude ≈ 111.195 km on the mean sphere


def test_haversine_of_one_degree_of_latitude_is_about_111_km():
    assert haversine_m(0, 0, 1, 0) == pytest.approx(111_195, rel=1e-4)
    assert haversine_m(*TIANANMEN, *TIANANMEN) == 0


def test_haversine_beijing_to_shanghai_is_about_1070_km():
    assert haversine_m(39.9042, 116.4074, 31.2304, 121.4737) == pytest.approx(1_067_000, rel=0.01)


def oc(case_id: str, metres: float, category: Category = Category.ENVIRONMENT) -> OpenCase:
    lat, lon = north_of(*TIANANMEN, metres)
    return OpenCase(case_id=case_id, category=category, lat=lat, lon=lon)


HERE = Location(lat=TIANANMEN[0], lon=TIANANMEN[1], address="")


def test_a_case_of_the_same_category_within_250_m_is_a_duplicate():
    assert find_duplicate(Category.ENVIRONMENT, HERE, [oc("a", 240)]).case_id == "a"


def test_a_case_further_than_the_radius_is_not_a_duplicate():
    assert find_duplicate(Category.ENVIRONMENT, HERE, [oc("a", 260)]) is None


def test_the_radius_is_configurable():
    assert find_duplicate(Category.ENVIRONMENT, HERE, [oc("a", 260)], radius_m=300).case_id == "a"
    assert find_duplicate(Category.ENVIRONMENT, HERE, [oc("a", 90)], radius_m=50) is None


def test_a_case_of_another_category_is_not_a_duplicate():
    assert find_duplicate(Category.ENVIRONMENT, HERE, [oc("a", 10, Category.HAZARD_FIRE)]) is None


def test_the_nearest_matching_case_is_chosen():
    cases = [oc("far", 200), oc("near", 50), oc("other", 5, Category.OTHER)]
    assert find_duplicate(Category.ENVIRONMENT, HERE, cases).case_id == "near"


def test_a_duplicate_report_is_dismissed_and_its_reporter_recorded_on_the_original():
    w = world_at("registered")
    lat, lon = north_of(w.state().location.lat, w.state().location.lon, 100)
    dup = report("case-2", location={"lat": lat, "lon": lon, "address": "附近"}, reporter={"kind": "resident", "id": "r-9"})
    events = w.run(dup)
    assert types(events) == ["grid.case.reported.v1", "grid.case.dismissed.v1", "grid.case.duplicate_linked.v1"]
    dismissed, linked = events[1], events[2]
    assert isinstance(dismissed, CaseDismissed) and isinstance(linked, CaseDuplicateLinked)
    assert (dismissed.case_id, dismissed.reason, dismissed.duplicate_of) == ("case-2", DUPLICATE_REASON, CASE)
    assert (linked.case_id, linked.duplicate_case_id, linked.reporter.id) == (CASE, "case-2", "r-9")
    assert w.state("case-2").status is CaseStatus.DISMISSED and w.state("case-2").duplicate_of == CASE
    original = w.state(CASE)
    assert original.status is CaseStatus.REGISTERED
    assert [r.id for r in original.reporters] == ["gw-1", "r-9"] and original.duplicates == ("case-2",)


def test_a_co_reporter_may_give_feedback_on_the_original():
    w = World()
    w.run(report())
    w.run(report("case-2", reporter={"kind": "resident", "id": "r-9"}))
    for cmd in [register(), dispatch(), handle(), verify()]:
        w.run(cmd)
    assert w.run(feedback(reporter_id="r-9"))[0].reporter_id == "r-9"


def test_a_report_far_from_open_cases_opens_a_new_case():
    w = world_at("registered")
    lat, lon = north_of(w.state().location.lat, w.state().location.lon, 1000)
    events = w.run(report("case-2", location={"lat": lat, "lon": lon, "address": "远处"}))
    assert types(events) == ["grid.case.reported.v1"]
    assert w.state("case-2").status is CaseStatus.REPORTED


def test_a_report_near_a_closed_case_is_not_a_duplicate():
    w = world_at("closed")
    events = w.run(report("case-2"))  # same place, same category, but the first case is closed
    assert types(events) == ["grid.case.reported.v1"]


def test_the_same_duplicate_linked_twice_records_the_reporter_once():
    w = world_at("registered")
    events = w.run(report("case-2"))
    w.apply([events[2]])
    assert w.state().duplicates == ("case-2",) and len(w.state().co_reporters) == 1


def test_a_dispatcher_may_dismiss_a_report_as_a_duplicate_of_an_open_case():
    w = World()
    w.run(report("case-0"))
    w.run(report(CASE), open_cases=())  # not detected automatically (e.g. radius too small)
    events = w.run(dismiss(reason="重复上报", duplicate_of="case-0"))
    assert types(events) == ["grid.case.dismissed.v1", "grid.case.duplicate_linked.v1"]
    assert w.state("case-0").reporters[-1].id == "gw-1" and w.state("case-0").duplicates == (CASE,)


def test_dismissing_a_case_as_a_duplicate_of_itself_is_refused():
    w = world_at("reported")
    with pytest.raises(Rejected) as e:
        w.decide(dismiss(duplicate_of=CASE))
    assert (e.value.reason, e.value.field) == ("duplicate_of_self", "duplicate_of")


def test_dismissing_as_a_duplicate_of_a_case_that_is_not_open_is_refused():
    w = world_at("reported")
    with pytest.raises(Rejected) as e:
        w.decide(dismiss(duplicate_of="case-99"))
    assert (e.value.reason, e.value.field) == ("duplicate_target_not_open", "duplicate_of")
