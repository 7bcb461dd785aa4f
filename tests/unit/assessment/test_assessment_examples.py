"""Every assessment command and event has an example payload that validates."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

import schemas.assessment as contract
from schemas.envelope import decode, encode, envelope_for
from services.assessment.domain import (
    ChangeScheme,
    RecordReview,
    ReviewBook,
    SchemeState,
    ScorecardPublished,
    decide_review,
    decide_scheme_change,
    default_scheme,
    evolve_review,
)
from services.assessment.domain.scorecards import alert_id

from assessment_builders import at

EXAMPLES = Path(contract.__file__).parent / "examples"
TYPES = {m.TYPE: m for m in (*contract.COMMANDS, *contract.EVENTS)}


def load(t: str) -> dict:
    return json.loads((EXAMPLES / f"{t}.json").read_text(encoding="utf-8"))


def test_the_contract_module_has_every_assessment_type_of_contract_md():
    assert set(TYPES) == {
        "assessment.review.record.v1", "assessment.scheme.change.v1", "assessment.period.close.v1",
        "assessment.review.recorded.v1", "assessment.scheme.changed.v1", "assessment.scorecard.published.v1",
        "assessment.alert.raised.v1", "assessment.period.closed.v1",
    }


@pytest.mark.parametrize("t", sorted(TYPES))
def test_each_example_validates_has_no_unknown_field_and_survives_the_envelope(t):
    data = load(t)
    model = TYPES[t]
    payload = model.model_validate(data)
    assert not set(data) - set(model.model_fields), "fields a reader would silently ignore"
    env = envelope_for(payload, source="/tests/assessment", id="e-1", time=at(22))
    assert decode(encode(env)).payload == payload


def test_the_review_example_is_what_the_domain_decides_for_the_command_example_after_a_draft():
    draft = load("assessment.review.record.v1") | {"review_id": "review-110105001002-unit-110105-017-2026Q4-draft", "score": 82}
    state = evolve_review(ReviewBook(), decide_review(ReviewBook(), RecordReview.model_validate(draft), at(22))[0])
    [event] = decide_review(state, RecordReview.model_validate(load("assessment.review.record.v1")), at(22))
    assert event.model_dump(mode="json") == contract.ReviewRecorded.model_validate(load("assessment.review.recorded.v1")).model_dump(mode="json")


def test_the_scheme_changed_example_holds_the_weights_the_domain_derives():
    [event] = decide_scheme_change(SchemeState(), ChangeScheme.model_validate(load("assessment.scheme.change.v1")), default_scheme())
    example = load("assessment.scheme.changed.v1")
    assert example["weights"].items() <= event.weights.items()


def test_the_alert_example_belongs_to_the_scorecard_example():
    card = ScorecardPublished.model_validate(load("assessment.scorecard.published.v1"))
    alert = contract.AlertRaised.model_validate(load("assessment.alert.raised.v1"))
    assert alert.scorecard_id == card.scorecard_id
    assert alert.alert_id == alert_id(card.scorecard_id, alert.indicator)
    assert card.indicators[alert.indicator] == alert.value


@pytest.mark.parametrize("t, field, bad", [
    ("assessment.review.record.v1", "score", 101),
    ("assessment.review.record.v1", "subject_type", "grid"),
    ("assessment.period.close.v1", "period", "2026-13"),
    ("assessment.period.close.v1", "period", "\u0662\u0660\u0662\u0666-11"),  # Arabic-Indic digits
    ("assessment.scorecard.published.v1", "entity_type", "ministry"),
    ("assessment.scorecard.published.v1", "rank", 0),
])
def test_the_contract_refuses_out_of_range_values(t, field, bad):
    with pytest.raises(ValueError):
        TYPES[t].model_validate(load(t) | {field: bad})
