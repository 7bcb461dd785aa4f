"""派单 — the pure choice of an assignee for automatic dispatch.

Rule (``choose_assignee``):

1. **Eligible** are members with at least one active post in the order's community whose
   categories include the order's category.
2. **Skipped** are members who declined this order or let a dispatch of it expire
   (``OrderState.declined_by`` / ``expired_for``).
3. **Load** of a member = open orders ÷ weekly capacity, where the capacity is the sum of
   the capacities of all the member's posts passed in (a member's capacity is shared across
   their posts). Members whose open orders already reach their capacity are skipped unless
   ``allow_over_capacity``.
4. **Preference**, lowest first: load (exact fraction), then open orders, then larger
   capacity first, then ``member_id`` in ascending string order — the deterministic
   tie-break, so the same inputs always give the same member. The post reported on the
   dispatch is the member's matching post with the smallest ``post_id``.

No match returns None: the order waits, and is tried again when a post is claimed
(``post_can_serve``) or on the next dispatch command.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from fractions import Fraction

from .context import Candidate
from .state import OrderState, PostState


def candidates_from_posts(posts: Iterable[PostState], open_orders: Mapping[str, int]) -> tuple[Candidate, ...]:
    """Candidates from post states (released posts are left out) and each member's open order count."""
    return tuple(
        Candidate(
            member_id=p.member_id,
            post_id=p.post_id,
            community_id=p.community_id,
            categories=p.categories,
            capacity=p.capacity,
            open_orders=open_orders.get(p.member_id, 0),
        )
        for p in posts
        if p.active
    )


def eligible_posts(order: OrderState, candidates: Iterable[Candidate], member_id: str) -> list[Candidate]:
    """The member's posts that qualify them for this order (community and category match)."""
    return sorted(
        (
            c for c in candidates
            if c.member_id == member_id and c.community_id == order.community_id and order.category in c.categories
        ),
        key=lambda c: c.post_id,
    )


def choose(order: OrderState, candidates: Iterable[Candidate], *, allow_over_capacity: bool = False) -> Candidate | None:
    """The member (as their qualifying post) automatic dispatch gives the order to, or None."""
    by_member: dict[str, list[Candidate]] = defaultdict(list)
    for c in candidates:
        by_member[c.member_id].append(c)
    skipped = order.skipped_members
    ranked: list[tuple[tuple[Fraction, int, int, str], Candidate]] = []
    for member_id, posts in by_member.items():
        if member_id in skipped:
            continue
        matching = eligible_posts(order, posts, member_id)
        if not matching:
            continue
        capacity = sum(p.capacity for p in posts)
        open_orders = max(p.open_orders for p in posts)
        if open_orders >= capacity and not allow_over_capacity:
            continue
        ranked.append(((Fraction(open_orders, capacity), open_orders, -capacity, member_id), matching[0]))
    if not ranked:
        return None
    return min(ranked, key=lambda r: r[0])[1]


def choose_assignee(order: OrderState, candidates: Iterable[Candidate], *, allow_over_capacity: bool = False) -> str | None:
    """The member id automatic dispatch chooses for ``order`` (see the module rule), or None."""
    chosen = choose(order, candidates, allow_over_capacity=allow_over_capacity)
    return chosen.member_id if chosen else None


def post_can_serve(post: PostState, order: OrderState) -> bool:
    """True when a (newly claimed) post could take a waiting order: retry its dispatch."""
    return order.awaiting_dispatch and post.member_id not in order.skipped_members and post.serves(
        order.community_id, order.category
    )
