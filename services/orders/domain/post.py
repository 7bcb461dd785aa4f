"""The post (岗位) aggregate: a member's claim of a service post (岗位认领) and its release.

    ClaimPost   → PostClaimed    (no post yet; needs the member's state in ``ctx.member``;
                                  the same claim again is a no-op)
    ReleasePost → PostReleased   claimed, by the member who claimed it

A post is identified by ``post_id`` (its state row); its events are keyed by ``member_id``.
Post ids are not reused: a released post stays released, a new claim takes a new id.

Refusals: ``unknown_member``, ``post_outside_member_community``, ``post_exists``,
``unknown_post``, ``not_post_holder``, ``illegal_transition``.
"""
from __future__ import annotations

from schemas.common import Command, Event
from schemas.orders import ClaimPost, PostClaimed, PostReleased, ReleasePost

from .context import Context
from .errors import AlreadyExists, IllegalTransition, NotFound, NotPostHolder, PostOutsideMemberCommunity
from .state import PostState, PostStatus


def decide_post(state: PostState | None, command: Command, ctx: Context) -> list[Event]:
    """The events a post command leads to, or a ``Rejected``."""
    if isinstance(command, ClaimPost):
        return _claim(state, command, ctx)
    if isinstance(command, ReleasePost):
        return _release(state, command, ctx)
    raise TypeError(f"not a post command: {type(command).__name__}")


def _claim(state: PostState | None, cmd: ClaimPost, ctx: Context) -> list[Event]:
    member = ctx.member
    if member is None or member.member_id != cmd.member_id:
        raise NotFound("member", cmd.member_id, "member_id")
    if member.community_id != cmd.community_id:
        raise PostOutsideMemberCommunity(cmd.community_id, member.community_id)
    if state is not None:
        same = (
            state.active and state.member_id == cmd.member_id and state.community_id == cmd.community_id
            and set(state.categories) == set(cmd.categories) and state.capacity == cmd.capacity
        )
        if same:
            return []
        raise AlreadyExists("post", cmd.post_id, "post_id")
    return [
        PostClaimed(
            member_id=cmd.member_id, post_id=cmd.post_id, community_id=cmd.community_id,
            categories=list(cmd.categories), capacity=cmd.capacity, title=cmd.title, at=ctx.now,
        )
    ]


def _release(state: PostState | None, cmd: ReleasePost, ctx: Context) -> list[Event]:
    if state is None:
        raise NotFound("post", cmd.post_id, "post_id")
    if state.member_id != cmd.member_id:
        raise NotPostHolder(cmd.post_id, cmd.member_id)
    if not state.active:
        raise IllegalTransition("release", state.status.value)
    return [
        PostReleased(
            member_id=cmd.member_id, post_id=cmd.post_id, community_id=state.community_id, reason=cmd.reason,
            at=ctx.now,
        )
    ]


def evolve_post(state: PostState | None, event: Event) -> PostState:
    """The post after ``event``."""
    if isinstance(event, PostClaimed):
        if state is not None:
            return state
        return PostState(
            post_id=event.post_id, member_id=event.member_id, community_id=event.community_id,
            categories=tuple(dict.fromkeys(event.categories)), capacity=event.capacity, title=event.title,
            claimed_at=event.at,
        )
    if isinstance(event, PostReleased):
        if state is None:
            raise ValueError(f"{event.TYPE} for post {event.post_id!r} that was never claimed")
        return state.model_copy(update=dict(status=PostStatus.RELEASED, released_at=event.at))
    raise TypeError(f"not a post event: {type(event).__name__}")
