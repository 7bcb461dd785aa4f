"""Two-way reviews (双向评议): who may review whom, one per reviewer/subject/period, replacement."""
from __future__ import annotations

import pytest

from services.assessment.domain import RecordReview, ReviewBook, ReviewRecorded, decide_review, evolve_review, replay
from services.kit.errors import Rejected

from assessment_builders import COMMUNITY, STREET, UNIT, at


def cmd(**kw) -> RecordReview:
    data = {"review_id": "r1", "reviewer_id": COMMUNITY, "subject_type": "unit", "subject_id": UNIT,
            "period": "2026-Q4", "score": 80}
    data.update(kw)
    return RecordReview.model_validate(data)


def run(state: ReviewBook, command: RecordReview, now=at(20)) -> tuple[ReviewBook, list[ReviewRecorded]]:
    events = decide_review(state, command, now)
    for e in events:
        state = evolve_review(state, e)
    return state, events


def test_a_community_reviews_a_resident_unit():
    _, [e] = run(ReviewBook(), cmd())
    assert (e.reviewer_id, e.subject_type.value, e.subject_id, e.period, e.score) == (COMMUNITY, "unit", UNIT, "2026-Q4", 80)
    assert e.reviewer_type.value == "community"
    assert e.replaces_review_id is None


@pytest.mark.parametrize("reviewer, subject_type, subject", [
    (STREET, "unit", UNIT), (UNIT, "community", COMMUNITY), (UNIT, "street", STREET),
])
def test_streets_review_units_and_units_review_communities_and_streets(reviewer, subject_type, subject):
    _, [e] = run(ReviewBook(), cmd(reviewer_id=reviewer, subject_type=subject_type, subject_id=subject))
    assert e.subject_id == subject


@pytest.mark.parametrize("reviewer, subject_type, subject", [
    (COMMUNITY, "street", STREET), (STREET, "community", COMMUNITY), (UNIT, "unit", "unit-2"),
])
def test_a_review_in_any_other_direction_is_refused(reviewer, subject_type, subject):
    with pytest.raises(Rejected) as e:
        decide_review(ReviewBook(), cmd(reviewer_id=reviewer, subject_type=subject_type, subject_id=subject), at(20))
    assert e.value.reason == "invalid_review_direction"


def test_a_declared_reviewer_type_wins_over_the_shape_of_the_id():
    with pytest.raises(Rejected) as e:
        decide_review(ReviewBook(), cmd(reviewer_id="110105001002", reviewer_type="unit"), at(20))
    assert e.value.reason == "invalid_review_direction"


def test_nobody_reviews_themselves():
    with pytest.raises(Rejected) as e:
        decide_review(ReviewBook(), cmd(reviewer_id=UNIT, reviewer_type="community", subject_id=UNIT), at(20))
    assert e.value.reason == "self_review"


def test_a_review_of_a_period_not_yet_started_is_refused():
    with pytest.raises(Rejected) as e:
        decide_review(ReviewBook(), cmd(period="2027-01"), at(20))
    assert e.value.reason == "period_not_started"


@pytest.mark.parametrize("score", [-1, 100.5])
def test_a_score_outside_0_100_is_not_a_valid_command(score):
    with pytest.raises(ValueError):
        cmd(score=score)


def test_a_second_review_by_the_same_reviewer_for_the_same_period_replaces_the_first():
    state, _ = run(ReviewBook(), cmd(score=70))
    state, [e] = run(state, cmd(review_id="r2", score=90))
    assert (e.replaces_review_id, e.replaced_score) == ("r1", 70)
    assert len(state.reviews) == 1
    table, _ = replay([(ev, at(20)) for ev in [decide_review(ReviewBook(), cmd(score=70), at(20))[0], e]])
    assert table[("unit", UNIT, "2026-Q4", "review_score_sum")] == 90
    assert table[("unit", UNIT, "2026-Q4", "reviews_received")] == 1


def test_reviews_by_other_reviewers_or_for_other_periods_stand_side_by_side():
    state, _ = run(ReviewBook(), cmd())
    state, [e1] = run(state, cmd(review_id="r2", reviewer_id=STREET))
    state, [e2] = run(state, cmd(review_id="r3", period="2026-11"))
    assert e1.replaces_review_id is None and e2.replaces_review_id is None
    assert len(state.reviews) == 3


def test_the_same_review_again_is_a_no_op_and_a_reused_id_with_other_content_is_refused():
    state, _ = run(ReviewBook(), cmd())
    assert decide_review(state, cmd(), at(21)) == []
    with pytest.raises(Rejected) as e:
        decide_review(state, cmd(score=10), at(21))
    assert e.value.reason == "review_id_reused"


def test_the_review_book_round_trips_through_json():
    state, _ = run(ReviewBook(), cmd())
    state, _ = run(state, cmd(review_id="r2", score=95, comment="改进明显"))
    assert ReviewBook.model_validate(state.model_dump(mode="json")) == state


@pytest.mark.parametrize("reviewer_id", ["٠٠٠٠٠٠٠٠٠", "١١٠١٠٥٠٠١", "１１０１０５００１００２", "11010500١"])
def test_a_street_or_community_code_in_other_digits_names_no_reviewer(reviewer_id: str):
    from services.assessment.domain.reviews import reviewer_type_of

    assert reviewer_type_of(reviewer_id) is None
    with pytest.raises(Rejected) as e:
        decide_review(ReviewBook(), cmd(reviewer_id=reviewer_id), at(20))
    assert (e.value.reason, e.value.field) == ("invalid_reviewer_id", "reviewer_id")


def test_reviewer_types_from_ascii_codes_and_other_ids():
    from schemas.assessment import ReviewParty
    from services.assessment.domain.reviews import reviewer_type_of

    assert reviewer_type_of(STREET) is ReviewParty.STREET
    assert reviewer_type_of(COMMUNITY) is ReviewParty.COMMUNITY
    assert reviewer_type_of(UNIT) is ReviewParty.UNIT
    assert reviewer_type_of("٠٠٠٠٠٠٠٠٠", ReviewParty.UNIT) is ReviewParty.UNIT  # declared wins
