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
