"""The automatic dispatch choice: matching posts, skips, load, ties."""
from __future__ import annotations

from orders_builders import OPERATOR, ORDER, OTHER_COMMUNITY, ctx, dispatched, placed, post, run
from schemas.orders import DeclineOrder, DispatchOrder
from services.orders.domain import (
    PostState, auto_dispatch, candidates_from_posts, check_expiry, choose, choose_assignee, evolve_order,
    post_can_serve,
)


def test_only_members_with_a_matching_post_in_the_orders_community_are_chosen():
    order = placed("repair")
    candidates = [
        post("a", "daily_care"),
        post("b", "repair", community=OTHER_COMMUNITY),
        post("c", "cleaning", "repair"),
    ]
    assert choose_assignee(order, candidates) == "c"


def test_nobody_matching_gives_none():
    assert choose_assignee(placed("legal_aid"), [post("a", "repair"), post("b", "legal_aid", community=OTHER_COMMUNITY)]) is None
    assert choose_assignee(placed(), []) is None


def test_the_least_loaded_member_is_preferred():
    order = placed()
    candidates = [post("a", capacity=2, open_orders=1), post("b", capacity=4, open_orders=1), post("c", capacity=3, open_orders=2)]
    assert choose_assignee(order, candidates) == "b"  # 1/4 < 1/2 < 2/3


def test_load_is_relative_to_capacity_not_the_raw_count():
    candidates = [post("a", capacity=1, open_orders=0), post("b", capacity=10, open_orders=3)]
    assert choose_assignee(placed(), candidates) == "a"  # 0/1 < 3/10
    candidates = [post("a", capacity=2, open_orders=1), post("b", capacity=10, open_orders=3)]
    assert choose_assignee(placed(), candidates) == "b"  # 3/10 < 1/2


def test_members_at_capacity_are_skipped_unless_allowed():
    full = [post("a", capacity=2, open_orders=2), post("b", capacity=1, open_orders=3)]
    assert choose_assignee(placed(), full) is None
    assert choose_assignee(placed(), full, allow_over_capacity=True) == "a"  # 2/2 < 3/1


def test_capacity_is_shared_across_a_members_posts():
    candidates = [
        post("a", "daily_care", capacity=1, open_orders=1, post_id="a-1"),
        post("a", "repair", capacity=3, open_orders=1, post_id="a-2"),
        post("b", "daily_care", capacity=2, open_orders=1),
    ]
    chosen = choose(placed(), candidates)
    assert chosen.member_id == "a" and chosen.post_id == "a-1"  # 1/4 < 1/2, through the matching post


def test_ties_go_to_fewer_open_orders_then_larger_capacity_then_the_smaller_member_id():
    assert choose_assignee(placed(), [post("a", capacity=4, open_orders=2), post("b", capacity=2, open_orders=1)]) == "b"
    assert choose_assignee(placed(), [post("a", capacity=2), post("b", capacity=5)]) == "b"
    assert choose_assignee(placed(), [post("m9"), post("m10"), post("m2")]) == "m10"


def test_the_choice_does_not_depend_on_the_order_of_candidates():
    candidates = [post("c"), post("a"), post("b", open_orders=1), post("d")]
    assert {choose_assignee(placed(), order) for order in (candidates, candidates[::-1], sorted(candidates, key=id))} == {"a"}


def test_members_who_declined_this_order_are_skipped():
    state, _ = run(dispatched("a", (post("a"), post("b", open_orders=2))), DeclineOrder(order_id=ORDER, assignee_id="a", reason="x"))
    assert choose_assignee(state, [post("a"), post("b", open_orders=2)]) == "b"
    assert choose_assignee(state, [post("a")]) is None


def test_members_who_let_this_order_expire_are_skipped():
    state = dispatched("a")
    (expired,) = check_expiry(state, state.accept_by.replace(year=2027))
    state = evolve_order(state, expired)
    assert state.expired_for == ("a",)
    assert choose_assignee(state, [post("a"), post("b", open_orders=2)]) == "b"


def test_auto_dispatch_of_an_order_that_does_not_wait_yields_nothing():
    assert auto_dispatch(dispatched("a"), ctx(candidates=(post("b"),))) == []
    assert auto_dispatch(None, ctx(candidates=(post("b"),))) == []


def test_auto_dispatch_with_nobody_eligible_yields_nothing_and_the_order_keeps_waiting():
    assert auto_dispatch(placed(), ctx(candidates=(post("a", "repair"),))) == []


def test_candidates_come_from_active_posts_with_each_members_open_orders():
    posts = [
        PostState(post_id="p1", member_id="a", community_id="110105001002", categories=("daily_care",), capacity=2),
        PostState(post_id="p2", member_id="b", community_id="110105001002", categories=("daily_care",), capacity=2,
                  status="released"),
    ]
    (c,) = candidates_from_posts(posts, {"a": 1, "b": 0})
    assert (c.member_id, c.post_id, c.open_orders, c.capacity) == ("a", "p1", 1, 2)


def test_a_newly_claimed_post_can_serve_a_waiting_order_of_its_community_and_category():
    p = PostState(post_id="p", member_id="a", community_id="110105001002", categories=("daily_care", "repair"), capacity=1)
    assert post_can_serve(p, placed("repair"))
    assert not post_can_serve(p, placed("legal_aid"))
    assert not post_can_serve(p, dispatched("b"))
    elsewhere = p.model_copy(update={"community_id": OTHER_COMMUNITY})
    assert not post_can_serve(elsewhere, placed("repair"))
    declined, _ = run(dispatched("a"), DeclineOrder(order_id=ORDER, assignee_id="a", reason="x"))
    assert not post_can_serve(p, declined)


def test_manual_dispatch_ignores_load_and_declines():
    state, _ = run(dispatched("a"), DeclineOrder(order_id=ORDER, assignee_id="a", reason="x"))
    _, (e,) = run(state, DispatchOrder(order_id=ORDER, assignee_id="a", dispatched_by=OPERATOR),
                  ctx(candidates=(post("a", capacity=1, open_orders=5), post("b"))))
    assert e.assignee_id == "a"
