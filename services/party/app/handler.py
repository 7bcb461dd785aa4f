"""The party service's handler: its own commands (``party.intake.v1`` and ``POST /v1/commands``)
and the coverage timer, around the pure domain.

For a batch, :meth:`PartyHandler.load` locks and loads at once the organisations it names: the
one each command is about, an establishment's parent, and the organisation each member to be
attached belongs to now (a transfer changes two organisations: both are locked, in id order,
as every batch locks, so that two batches wait for each other instead of deadlocking). The
ids an establishment creates and the members an attachment moves are first locked by name (a
row that does not exist yet cannot be locked, and a member's current organisation must not
change between the look-up and the lock). Each message then decides on those states and
:meth:`PartyHandler._apply` evolves them, keeps them and emits the events; the kit saves the
changed states and then the organisations' history and the members' current organisation
(:class:`~services.party.projection.store.OrgLog`) when it flushes the unit of work.
"""
from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from schemas.common import Command, Event
from schemas.party import (
    AttachMember, CoverageGap, ErasePerson, EstablishOrg, MarkCentralHousehold, MemberAttached, MemberFeedback,
    OrgEstablished, OrgKind,
)
from services.kit import erasure
from services.kit.handlers import Handler, handles, prepares
from services.kit.locks import advisory_locks
from services.kit.uow import UnitOfWork
from services.party.domain import ORG_COMMANDS, OrgContext, OrgState, coverage_gaps, decide_org, evolve_org
from services.party.projection import store
from services.party.projection.store import ORGS, OrgLog

from . import access
from .life import LifeSteps, load_life_policy
from . import metrics as mx
from .councils import CouncilSteps  # 区域化党建, 双报到 of units
from .policy import POLICY
from .settings import PartySettings


class PartyHandler(LifeSteps, CouncilSteps, Handler):
    """The organisation tree (党组织, 组织关系, 党员中心户) and its coverage; the regional council, units
    and projects (:class:`~services.party.app.councils.CouncilSteps`); organisational life,
    commitments and the member half of 双报到 (:class:`~services.party.app.life.LifeSteps`)."""

    service = "party"
    policy = POLICY
    # a rebuild replays the coverage and feedback rounds from what they published (gaps_again,
    # feedback_again): what they counted rests on state batches of other lanes were changing
    replayed = (CoverageGap.TYPE, MemberFeedback.TYPE)

    def __init__(self, settings: PartySettings):
        self.settings = settings
        self.life_policy = load_life_policy(settings.org_life_path)
        self.report_window = timedelta(days=settings.member_report_window_days)

    # -- the batch step ----------------------------------------------------------------

    @prepares(*ORG_COMMANDS)
    async def load(self, uow: UnitOfWork, payloads: Sequence[Command]) -> None:
        """Lock by name the organisations the batch creates and the members it attaches, then
        lock and load the organisations it names, their parents and the members' current ones."""
        members = {p.member_id for p in payloads if isinstance(p, AttachMember)}
        names = {f"party:org:{p.org_id}" for p in payloads if isinstance(p, EstablishOrg)}
        names |= {f"party:member:{m}" for m in members}
        await advisory_locks(uow.conn, names)
        ids = {p.org_id for p in payloads}
        ids |= {p.parent_id for p in payloads if isinstance(p, EstablishOrg) and p.parent_id}
        ids |= set((await store.orgs_of_members(uow.conn, members)).values())
        await ORGS.of(uow).load(ids)

    # -- commands ----------------------------------------------------------------------

    @handles(EstablishOrg)
    async def establish(self, uow: UnitOfWork, cmd: EstablishOrg) -> None:
        """建立党组织, under its parent. A unit's Party organisation is established only under a
        parent in the sender's scope (another parent is refused as unknown)."""
        orgs = ORGS.of(uow)
        parent = await orgs.fetch(cmd.parent_id) if cmd.parent_id else None
        if parent is not None and cmd.kind is OrgKind.UNIT_ORG and not access.may_read(uow.principal,
                                                                                       parent.scope_id):
            parent = None
        events = decide_org(orgs.get(cmd.org_id), cmd, OrgContext(now=uow.now, parent=parent))
        self._apply(uow, events, parent=parent)

    @handles(AttachMember)
    async def attach(self, uow: UnitOfWork, cmd: AttachMember) -> None:
        """组织关系: a first attachment, or a transfer (转接) from the organisation the member is in."""
        target = await self._org_to_act_on(uow, cmd.org_id)
        source = await self._member_org(uow, cmd.member_id)
        self._apply(uow, decide_org(target, cmd, OrgContext(now=uow.now, member_org=source)))

    @handles(MarkCentralHousehold)
    async def mark_household(self, uow: UnitOfWork, cmd: MarkCentralHousehold) -> None:
        """党员中心户 of a building group."""
        org = await self._org_to_act_on(uow, cmd.org_id)
        self._apply(uow, decide_org(org, cmd, OrgContext(now=uow.now)))

    # -- erasure -----------------------------------------------------------------------

    @handles(ErasePerson)
    async def erase_person(self, uow: UnitOfWork, cmd: ErasePerson) -> None:
        """擦除: the person's id becomes a pseudonym, their words go."""
        from . import erasure as party_erasure

        await erasure.erase(uow, cmd.person_id, party_erasure.scrub)

    @handles(*erasure.other_services_erased("party"))
    async def person_erased(self, uow: UnitOfWork, event) -> None:
        """Another service erased a person: erase the party service's copy under the same pseudonym."""
        from . import erasure as party_erasure

        await erasure.erase(uow, event.person_id, party_erasure.scrub, pseudonym=event.pseudonym,
                            origin=event.service())

    # -- timers ------------------------------------------------------------------------

    async def report_coverage_gaps(self, uow: UnitOfWork) -> int:
        """Every grid with at least 3 members and no grid branch is reported once
        (``party.coverage.gap.v1``); returns how many were reported this round. The grids
        reported are kept (``coverage_gaps``), in the same transaction as the events."""
        members, branches, reported = await store.coverage(uow.conn)
        gaps = coverage_gaps(members, branches, reported, uow.now)
        if gaps:
            await store.record_gaps(uow.conn, gaps)
            uow.emit_all(gaps)
            uow.after_commit(lambda: mx.GAPS_REPORTED.inc(len(gaps)))
        return len(gaps)

    async def gaps_again(self, uow: UnitOfWork, grid_ids: list[str]) -> None:
        """What a round of :meth:`report_coverage_gaps` reported, reported and kept again at
        ``uow.now`` (a rebuild runs each round that published, among the messages of its batch):
        the gaps as the round's events give them. Whether a grid counted three members and had
        no branch rests on the organisations as the round read them, which batches of other
        lanes were changing at that moment in an order no topic holds; its event says what it
        found (the members it counted too)."""
        gaps = [CoverageGap.model_validate(d) for d in uow.live_events(CoverageGap.TYPE) or ()]
        if gaps:
            await store.record_gaps(uow.conn, gaps)
            uow.emit_all(gaps)

    # -- shared steps ------------------------------------------------------------------

    async def _org_to_act_on(self, uow: UnitOfWork, org_id: str) -> OrgState | None:
        """The organisation, or None when it does not exist or lies outside the sender's scope."""
        org = await ORGS.of(uow).fetch(org_id)
        return org if org is not None and access.may_act(uow.principal, org.scope_id) else None

    async def _member_org(self, uow: UnitOfWork, member_id: str) -> OrgState | None:
        """The organisation the member belongs to now: as this batch has it, or as committed."""
        orgs = ORGS.of(uow)
        for _, org in orgs.items():
            if member_id in org.members:
                return org
        committed = (await store.orgs_of_members(uow.conn, [member_id])).get(member_id)
        if committed is None or committed in orgs:  # in the batch's states and no longer holding the member
            return None
        org = await orgs.fetch(committed)
        return org if org is not None and member_id in org.members else None

    def _apply(self, uow: UnitOfWork, events: Sequence[Event], *, parent: OrgState | None = None) -> None:
        """Evolve each event's organisation (``org_id``), keep it for the flush, emit the events
        and append them to the organisations' history."""
        if not events:
            return
        orgs = ORGS.of(uow)
        for e in events:
            orgs.put(e.org_id, evolve_org(orgs.get(e.org_id), e, parent))
        OrgLog.of(uow).record(uow.emit_all(events))
        for e in events:
            if isinstance(e, OrgEstablished):
                uow.after_commit(mx.ESTABLISHED.labels(e.kind.value).inc)
            elif isinstance(e, MemberAttached):
                uow.after_commit(mx.TRANSFERS.labels("true" if e.from_org_id else "false").inc)
