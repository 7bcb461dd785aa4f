"""The pure domain of the orders service (四单式: 居民点单、社区派单、干部接单、组织考单).

No I/O, no clock: time and the data of other aggregates come in a :class:`Context`.

- ``order``      — the order state machine: ``decide_order``, ``evolve_order``,
                   ``auto_dispatch`` and the timer check ``check_expiry``;
- ``member``     — 双报到 registration: ``decide_member``, ``evolve_member``;
- ``post``       — 岗位认领 claims and releases: ``decide_post``, ``evolve_post``;
- ``dispatch``   — the automatic dispatch choice ``choose_assignee`` (rule in its docstring);
- ``grid_cases`` — ``order_from_grid_case``: a registered resident-need grid case → one ``PlaceOrder``;
- ``aggregates`` — ``state_key``, ``decide``, ``evolve``, ``evolve_all`` routed by message type;
- ``errors``     — the named refusals.
"""
from .aggregates import State, aggregate_kind, decide, evolve, evolve_all, state_key
from .context import DEFAULT_ACCEPT_WINDOW, Candidate, Context
from .dispatch import candidates_from_posts, choose, choose_assignee, eligible_posts, post_can_serve
from .errors import *  # noqa: F401,F403
from .grid_cases import GRID_CASE_NAMESPACE, UnusableGridCase, is_resident_need, order_from_grid_case, order_id_for_case
from .member import decide_member, evolve_member
from .order import auto_dispatch, check_expiry, decide_order, evolve_order
from .post import decide_post, evolve_post
from .state import AWAITING_DISPATCH, CANCELLABLE, HELD, RATABLE, MemberState, OrderState, OrderStatus, PostState, PostStatus

__all__ = [
    "AWAITING_DISPATCH", "CANCELLABLE", "DEFAULT_ACCEPT_WINDOW", "GRID_CASE_NAMESPACE", "HELD", "RATABLE",
    "Candidate", "Context", "MemberState", "OrderState", "OrderStatus", "PostState", "PostStatus", "State",
    "UnusableGridCase", "aggregate_kind", "auto_dispatch", "candidates_from_posts", "check_expiry", "choose",
    "choose_assignee", "decide", "decide_member", "decide_order", "decide_post", "eligible_posts", "evolve",
    "evolve_all", "evolve_member", "evolve_order", "evolve_post", "is_resident_need", "order_from_grid_case",
    "order_id_for_case", "post_can_serve", "state_key",
]
