"""双报到 member registration and 岗位认领 post claims and releases."""
from __future__ import annotations

from datetime import timedelta

import pytest

from orders_builders import COMMUNITY, OTHER_COMMUNITY, T0, ctx
from services.orders.domain import MemberState, PostState, PostStatus, Rejected, decide, evolve_all
from schemas.orders import (
    ClaimPost, DEFAULT_WEEKLY_CAPACITY, MOVE_REPORT_DAYS, MemberMoved, MemberRegistered, MoveMember, PostClaimed,
    PostReleased, RegisterMember, ReleasePost,
)


def register(member_id: str = "m1", community: str = COMMUNITY, unit: str = "unit-1") -> RegisterMember:
    return RegisterMember(member_id=member_id, community_id=community, unit_id=unit, name="王建国", unit_name="区教委")


def member(member_id: str = "m1") -> MemberState:
    return evolve_all(None, decide(None, register(member_id), ctx()))


def claim(post_id: str = "p1", member_id: str = "m1", community: str = COMMUNITY, categories=("daily_care", "proxy"),
          capacity: int = 2) -> ClaimPost:
    return ClaimPost(member_id=member_id, post_id=post_id, community_id=community, categories=list(categories), capacity=capacity)


def claimed() -> PostState:
    return evolve_all(None, decide(None, claim(), ctx(member=member())))


def refusal(state, command, c=None) -> Rejected:
    with pytest.raises(Rejected) as info:
        decide(state, command, c or ctx())
    return info.value


def test_a_member_registers_with_community_and_work_unit():
    (e,) = decide(None, register(), ctx())
    assert isinstance(e, MemberRegistered)
    assert (e.member_id, e.community_id, e.unit_id, e.name, e.at) == ("m1", COMMUNITY, "unit-1", "王建国", T0)
    state = evolve_all(None, [e])
    assert (state.community_id, state.unit_id, state.unit_name) == (COMMUNITY, "unit-1", "区教委")


def test_registering_the_same_member_again_changes_nothing():
    assert decide(member(), register(), ctx(5)) == []


def test_registering_a_member_again_with_another_community_is_refused():
    r = refusal(member(), register(community=OTHER_COMMUNITY))
    assert (r.reason, r.field) == ("member_exists", "member_id")


def test_a_registered_member_claims_a_post_with_categories_and_weekly_capacity():
    (e,) = decide(None, claim(), ctx(member=member()))
    assert isinstance(e, PostClaimed) and e.aggregate_id == "m1"
    assert ([c.value for c in e.categories], e.capacity) == (["daily_care", "proxy"], 2)
    state = evolve_all(None, [e])
    assert state.active and state.serves(COMMUNITY, "proxy") and not state.serves(COMMUNITY, "repair")
    assert PostState.model_validate(state.model_dump(mode="json")) == state


def test_a_claim_without_capacity_gets_the_default():
    assert ClaimPost(member_id="m1", post_id="p", community_id=COMMUNITY, categories=["repair"]).capacity == DEFAULT_WEEKLY_CAPACITY


@pytest.mark.parametrize("bad", [dict(categories=[]), dict(categories=["repair", "repair"]), dict(categories=["gardening"]),
                                 dict(capacity=0)])
def test_a_malformed_claim_is_refused_by_the_contract(bad):
    fields = dict(member_id="m1", post_id="p", community_id=COMMUNITY, categories=["repair"], capacity=1) | bad
    with pytest.raises(ValueError):
        ClaimPost(**fields)


def test_an_unregistered_member_cannot_claim_a_post():
    r = refusal(None, claim(), ctx(member=None))
    assert (r.reason, r.field) == ("unknown_member", "member_id")
    assert refusal(None, claim(member_id="m2"), ctx(member=member("m1"))).reason == "unknown_member"


def test_a_member_claims_posts_only_in_the_community_they_reported_to():
    r = refusal(None, claim(community=OTHER_COMMUNITY), ctx(member=member()))
    assert (r.reason, r.field) == ("post_outside_member_community", "community_id")


def test_claiming_the_same_post_again_changes_nothing():
    assert decide(claimed(), claim(), ctx(member=member())) == []


def test_a_post_id_taken_with_other_data_is_refused():
    assert refusal(claimed(), claim(capacity=5), ctx(member=member())).reason == "post_exists"


def test_the_holder_releases_a_post():
    (e,) = decide(claimed(), ReleasePost(member_id="m1", post_id="p1", reason="工作调动"), ctx())
    assert isinstance(e, PostReleased) and e.community_id == COMMUNITY
    state = evolve_all(claimed(), [e])
    assert state.status is PostStatus.RELEASED and not state.serves(COMMUNITY, "proxy")


def test_only_the_holder_can_release_a_post():
    r = refusal(claimed(), ReleasePost(member_id="m2", post_id="p1"))
    assert (r.reason, r.field) == ("not_post_holder", "member_id")


def test_releasing_an_unknown_post_is_refused():
    assert refusal(None, ReleasePost(member_id="m1", post_id="nope")).reason == "unknown_post"


def test_a_released_post_cannot_be_released_again_or_claimed_again():
    released = evolve_all(claimed(), decide(claimed(), ReleasePost(member_id="m1", post_id="p1"), ctx()))
    assert refusal(released, ReleasePost(member_id="m1", post_id="p1")).reason == "illegal_transition"
    assert refusal(released, claim(), ctx(member=member())).reason == "post_exists"


# -- a member who moved (搬迁) ------------------------------------------------------------

def move(member_id: str = "m1", community: str = OTHER_COMMUNITY, report_by=None) -> MoveMember:
    return MoveMember(member_id=member_id, community_id=community, report_by=report_by)


def test_a_registered_member_moves_to_another_community_with_a_fresh_deadline():
    (e,) = decide(member(), move(), ctx(60))
    assert isinstance(e, MemberMoved) and e.aggregate_id == "m1"
    assert (e.community_id, e.from_community_id, e.unit_id) == (OTHER_COMMUNITY, COMMUNITY, "unit-1")
    assert e.occurred_at == T0 + timedelta(minutes=60)
    assert e.report_by == e.occurred_at + timedelta(days=MOVE_REPORT_DAYS)
    state = evolve_all(member(), [e])
    assert (state.community_id, state.unit_id, state.previous_communities, state.moved_at) == (
        OTHER_COMMUNITY, "unit-1", (COMMUNITY,), e.occurred_at)
    assert state.registered_at == T0  # the registration stands; the move is a new fact beside it


def test_a_move_names_its_own_deadline_but_not_a_past_one():
    (e,) = decide(member(), move(report_by=T0 + timedelta(days=7)), ctx())
    assert e.report_by == T0 + timedelta(days=7)
    r = refusal(member(), move(report_by=T0 - timedelta(minutes=1)))
    assert (r.reason, r.field) == ("report_by_in_past", "report_by")


def test_a_move_to_the_community_the_member_lives_in_changes_nothing():
    assert decide(member(), move(community=COMMUNITY), ctx()) == []
    moved = evolve_all(member(), decide(member(), move(), ctx()))
    assert decide(moved, move(), ctx(5)) == []  # the same move again


def test_an_unregistered_member_cannot_move():
    r = refusal(None, move())
    assert (r.reason, r.field) == ("unknown_member", "member_id")


def test_a_member_who_moved_claims_posts_in_the_new_community_only():
    moved = evolve_all(member(), decide(member(), move(), ctx()))
    assert decide(None, claim(community=OTHER_COMMUNITY), ctx(member=moved))
    assert refusal(None, claim(), ctx(member=moved)).reason == "post_outside_member_community"


def test_a_member_who_moved_is_still_not_registered_twice():
    moved = evolve_all(member(), decide(member(), move(), ctx()))
    assert decide(moved, register(community=OTHER_COMMUNITY), ctx()) == []
    assert refusal(moved, register(community=COMMUNITY)).reason == "member_exists"
