"""Points facts (道德银行): accounts opened, deeds approved, points earned and active volunteers.

Points count for the account holder when the holder is a registered member, for the member's
unit, and for the community (the member's, else the account's, else the one the event names)
and its street. Only resident accounts earn; awards count as earned and make the account an
active volunteer once per period; an adjustment corrects points earned either way;
redemptions and expiries are spending, not earning.
"""
from __future__ import annotations

from datetime import datetime

from schemas.assessment import EntityType
from schemas.points import AccountKind, AccountOpened, DeedApproved, TransferKind, TransferPosted

from ..indicators import Fact
from ..periods import periods_of
from .core import EventEffect, FactDelta, builds, increments, increments_in
from .refs import AccountRef, Entity, Lookup, Ref, area_entities


@builds(AccountOpened, occurred="opened_at")
def account_opened(e: AccountOpened, at: datetime, lookup: Lookup) -> EventEffect:
    """开户: no counter; remembers the holder, kind and home community."""
    if lookup.account(e.account_id) is not None:
        return EventEffect()
    return EventEffect([], [AccountRef(account_id=e.account_id, holder_id=e.holder_id, kind=e.kind.value,
                                       community_id=e.community_id)])


def _person_entities(account: AccountRef, community_id: str | None, lookup: Lookup) -> tuple[list[Entity], list[Entity]]:
    """(the member entity if the holder is a member, the unit/community/street the person counts in:
    the member's community, else the account's, else ``community_id`` of the event)."""
    holder = account.holder_id or account.account_id
    m = lookup.member(holder)
    person: list[Entity] = [(EntityType.MEMBER.value, holder)] if m else []
    area = area_entities(None, (m.community_id if m else None) or account.community_id or community_id)
    if m and m.unit_id:
        area.append((EntityType.UNIT.value, m.unit_id))
    return person, area


def _account(account_id: str, lookup: Lookup) -> AccountRef:
    return lookup.account(account_id) or AccountRef(account_id=account_id)


@builds(DeedApproved, occurred="reviewed_at")
def deed_approved(e: DeedApproved, at: datetime, lookup: Lookup) -> EventEffect:
    """评审通过: counts for the person who did the deed."""
    person, area = _person_entities(_account(e.account_id, lookup), e.community_id, lookup)
    return EventEffect(increments(person + area, at, Fact.DEEDS_APPROVED))


_EARNING = frozenset({TransferKind.award, TransferKind.adjustment})


@builds(TransferPosted, occurred="posted_at")
def transfer_posted(e: TransferPosted, at: datetime, lookup: Lookup) -> EventEffect:
    """记账: an award credits points earned (and an active volunteer, once per account and
    period); an adjustment credits one resident side and debits the other."""
    kind = e.kind or e.reason
    if kind not in _EARNING:
        return EventEffect()
    amount = float(e.amount)
    legs = [(e.credit_account, amount)]
    if kind is TransferKind.adjustment:
        legs.append((e.debit_account, -amount))
    facts: list[FactDelta] = []
    refs: list[Ref] = []
    for account_id, signed in legs:
        acc = _account(account_id, lookup)
        if acc.kind not in (None, AccountKind.resident.value):
            continue
        person, area = _person_entities(acc, e.community_id, lookup)
        facts += increments(person + area, at, Fact.POINTS_EARNED, signed)
        if kind is TransferKind.award:
            new = [p for p in periods_of(at) if p not in acc.active_periods]
            if new:
                facts += increments_in(area, new, Fact.ACTIVE_VOLUNTEERS, 1)
                refs.append(acc.model_copy(update={"active_periods": tuple(sorted(acc.active_periods + tuple(new)))}))
    return EventEffect(facts, refs)
