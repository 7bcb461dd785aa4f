"""The event history: stored rows decode into their payload classes; the replay order."""
from __future__ import annotations

import pytest

from schemas.envelope import DecodeError
from schemas.grid import CaseDelisted, CaseRegistered
from schemas.orders import MemberRegistered
from services.assessment.domain.history import StoredEvent, replay_order, stored_event

from assessment_builders import COMMUNITY, UNIT, at


def test_a_stored_row_decodes_into_its_payload_class_unknown_fields_ignored():
    reg = CaseRegistered(case_id="c1", due_at=at(2, 10), department="城管")
    row = {**reg.model_dump(mode="json"), "added_in_a_later_revision": 1}
    e = stored_event("/services/grid", "e-1", "grid.events.v1", reg.TYPE, row, at(2))
    assert e == StoredEvent("/services/grid", "e-1", "grid.events.v1", reg, at(2))
    assert e.occurred_at == at(2)


@pytest.mark.parametrize("type_, data", [
    (CaseDelisted.TYPE, {"case_id": "c1"}),  # not consumed
    (CaseRegistered.TYPE, {"case_id": "c1"}),  # invalid
])
def test_a_row_that_is_not_a_consumed_valid_event_is_refused(type_, data):
    with pytest.raises(DecodeError):
        stored_event("/services/grid", "e-1", "grid.events.v1", type_, data, at(2))


def test_replay_order_is_occurrence_time_then_lifecycle_then_source_and_id_without_duplicates():
    reg = CaseRegistered(case_id="c1", due_at=at(2, 10), department="城管", occurred_at=at(2))
    member = MemberRegistered(member_id="m", community_id=COMMUNITY, unit_id=UNIT, at=at(2))
    events = [StoredEvent("/g", "2", "t", reg, at(3)), StoredEvent("/o", "1", "t", member, at(1)),
              StoredEvent("/g", "2", "t", reg, at(3))]
    assert [e.id for e in replay_order(events)] == ["1", "2"]


def test_the_log_keeps_what_the_department_facts_read_and_no_ones_words_or_staff_ids():
    from schemas.grid import CaseAccepted, CaseContacted, CaseFeedback, WhistleBlown
    from services.assessment.domain.history import log_data

    contacted = CaseContacted(case_id="c1", department="110105.cgj", channel="phone", contacted_by="staff-9",
                              on_time=True, note="已电话联系张先生 13800000000", occurred_at=at(2))
    kept = log_data(CaseContacted, contacted.model_dump(mode="json"))
    assert kept["department"] == "110105.cgj" and kept["on_time"] is True
    assert "contacted_by" not in kept and "note" not in kept
    back = stored_event("/services/grid", "e-1", "grid.events.v1", CaseContacted.TYPE, kept, at(2)).payload
    assert (back.department, back.on_time, back.occurred_at) == ("110105.cgj", True, at(2))

    accepted = CaseAccepted(case_id="c1", department="110105.cgj", accepted_by="staff-9", on_time=False)
    assert "accepted_by" not in log_data(CaseAccepted, accepted.model_dump(mode="json"))
    blown = WhistleBlown(whistle_id="w1", street_id="110105001", departments=("110105.cgj",), report_by=at(3),
                         matter="某小区油烟扰民", blown_by="officer-2")
    kept = log_data(WhistleBlown, blown.model_dump(mode="json"))
    assert kept["departments"] == ["110105.cgj"] and "matter" not in kept and "blown_by" not in kept
    feedback = CaseFeedback(case_id="c1", satisfaction="satisfied", resolved=False, comment="还是很吵")
    kept = log_data(CaseFeedback, feedback.model_dump(mode="json"))
    assert kept["resolved"] is False and "comment" not in kept
