"""The app-facing entry points (state_key, decide/evolve routing) and properties over random stories."""
from __future__ import annotations

from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from orders_builders import COMMUNITY, ORDER, T0, ctx, place_cmd, post
from schemas.orders import (
    AcceptOrder, CancelOrder, ClaimPost, CompleteOrder, DeclineOrder, DispatchOrder, EvaluateOrder,
    MemberRegistered, RateOrder, OrderDispatchExpired, OrderDispatched, PostReleased, RegisterMember, ReleasePost,
)
from services.orders.domain import (
    OrderState, OrderStatus, Rejected, check_expiry, decide, evolve, evolve_all, state_key,
)


def test_state_key_names_the_state_row_each_message_changes():
    assert state_key(place_cmd()) == ("order", ORDER)
    assert state_key(RegisterMember(member_id="m1", community_id=COMMUNITY, unit_id="u")) == ("member", "m1")
    assert state_key(MemberRegistered(member_id="m1", community_id=COMMUNITY, unit_id="u")) == ("member", "m1")
    claim = ClaimPost(member_id="m1", post_id="p1", community_id=COMMUNITY, categories=["repair"])
    assert state_key(claim) == ("post", "p1") and claim.aggregate_id == "m1"
    assert state_key(PostReleased(member_id="m1", post_id="p1")) == ("post", "p1")
    assert state_key(ReleasePost(member_id="m1", post_id="p1")) == ("post", "p1")


def test_stored_state_comes_back_as_its_model():
    state = evolve_all(None, decide(None, place_cmd(), ctx()))
    assert OrderState.model_validate_json(state.model_dump_json()) == state


# --- properties ---------------------------------------------------------------------------

MEMBERS = ["a", "b", "c"]
CANDIDATES = (post("a", capacity=2), post("b", capacity=1, open_orders=0), post("c", capacity=3, open_orders=1))

steps = st.lists(
    st.one_of(
        st.tuples(st.just("dispatch"), st.sampled_from([None, *MEMBERS])),
        st.tuples(st.just("accept"), st.sampled_from(MEMBERS)),
        st.tuples(st.just("decline"), st.sampled_from(MEMBERS)),
        st.tuples(st.just("complete"), st.sampled_from(MEMBERS)),
        st.tuples(st.just("evaluate"), st.sampled_from(["operator", *MEMBERS])),
        st.tuples(st.just("evaluate_unrated"), st.just("operator")),
        st.tuples(st.just("rate"), st.sampled_from(["resident-1", "other", *MEMBERS])),
        st.tuples(st.just("cancel"), st.just("operator")),
        st.tuples(st.just("tick"), st.integers(min_value=0, max_value=3000)),
    ),
    max_size=25,
)


def command_for(step, who):
    return {
        "dispatch": lambda: DispatchOrder(order_id=ORDER, assignee_id=who, dispatched_by="operator" if who else None),
        "accept": lambda: AcceptOrder(order_id=ORDER, assignee_id=who),
        "decline": lambda: DeclineOrder(order_id=ORDER, assignee_id=who, reason="busy"),
        "complete": lambda: CompleteOrder(order_id=ORDER, assignee_id=who, service_minutes=30),
        "evaluate": lambda: EvaluateOrder(order_id=ORDER, rating=4, passed=True, evaluator_id=who),
        "evaluate_unrated": lambda: EvaluateOrder(order_id=ORDER, passed=True, evaluator_id=who),
        "rate": lambda: RateOrder(order_id=ORDER, resident_id=who, rating=2),
        "cancel": lambda: CancelOrder(order_id=ORDER, reason="x"),
    }[step]()


@settings(max_examples=300, deadline=None)
@given(steps, st.booleans())
def test_any_story_keeps_the_order_consistent(story, auto):
    minutes = 0
    state = evolve_all(None, decide(None, place_cmd(), ctx()))
    expiries: dict[int, int] = {}
    dispatches = 0
    for step, arg in story:
        if step == "tick":
            minutes += arg
            c = ctx(minutes, candidates=CANDIDATES, auto_dispatch=auto, accept_window=timedelta(hours=12))
            events = check_expiry(state, c.now, c)
        else:
            minutes += 1
            c = ctx(minutes, candidates=CANDIDATES, auto_dispatch=auto, accept_window=timedelta(hours=12))
            try:
                events = decide(state, command_for(step, arg), c)
            except Rejected:
                continue
        for e in events:
            if isinstance(e, OrderDispatchExpired):
                expiries[e.attempt] = expiries.get(e.attempt, 0) + 1
            if isinstance(e, OrderDispatched):
                dispatches += 1
                if e.dispatched_by == "auto":
                    assert e.assignee_id not in state.skipped_members
            state = evolve(state, e)
        assert OrderState.model_validate(state.model_dump(mode="json")) == state
        if state.status in (OrderStatus.DISPATCHED, OrderStatus.ACCEPTED):
            assert state.assignee_id is not None and state.holder == state.assignee_id
        else:
            assert state.holder is None
        if state.status is OrderStatus.EVALUATED:
            assert state.evaluator_id != state.assignee_id and state.service_minutes == 30
            assert state.rating in (state.resident_rating, 4)
        if state.resident_rating is not None:
            assert state.resident_rating == 2 and state.status in (OrderStatus.COMPLETED, OrderStatus.EVALUATED)
    assert all(n == 1 for n in expiries.values())
    assert state.attempt == dispatches
    assert state.placed_at == T0
