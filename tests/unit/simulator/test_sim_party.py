"""The simulator's party stories against a fake of the services: who sends what, on which
simulated dates (Asia/Shanghai months), and only for organisations and councils that exist."""
from __future__ import annotations

import asyncio
import random
from collections import Counter
from datetime import datetime, timezone

from schemas.envelope import CloudEvent
from services.simulator.client import Outcome
from services.simulator.district import generate
from services.simulator.flows import Stories
from services.simulator.party import council_id, org_id


class Fake:
    """Answers as the services would: an organisation is established, a council takes effect at once
    (or never, when ``effective`` is False), everything else is accepted."""

    def __init__(self, refuse: set[str] = frozenset(), effective: bool = True):
        self.sent: list[tuple[object, str]] = []
        self.refuse, self.effective, self.n = refuse, effective, 0

    async def send_and_follow(self, payload, *, sender=None, timeout: float = 0) -> Outcome:
        self.n += 1
        self.sent.append((payload, sender.sub))
        cid = f"cmd-{self.n}"
        if payload.TYPE in self.refuse:
            return Outcome(cid, rejection=CloudEvent(id=f"r-{self.n}", source="/fake", type="party.command.rejected.v1",
                                                     causationid=cid, data={"reason": "refused"}))
        types = [payload.TYPE.replace(".v1", "d.v1")]
        if payload.TYPE == "party.org.establish.v1":
            types = ["party.org.established.v1"]
        if payload.TYPE == "party.council.propose.v1":
            types = ["party.council.proposed.v1"] + (["party.council.effective.v1"] if self.effective else [])
        return Outcome(cid, [CloudEvent(id=f"e-{self.n}-{i}", source="/fake", type=t, causationid=cid, data={})
                             for i, t in enumerate(types)])

    def expect(self, predicate):
        return asyncio.get_running_loop().create_future()

    async def wait_for(self, fut, timeout: float = 0):
        return None

    def seen(self, subject, type_):
        return None

    def of(self, type_: str) -> list:
        return [(p, by) for p, by in self.sent if p.TYPE == type_]


async def played(at: datetime, fake: Fake | None = None) -> tuple[Stories, Fake]:
    fake = fake or Fake()
    s = Stories(generate(7), fake, seed=7, follow_timeout=0.01, expire_wait=0.01, now=lambda: at, settle=0.0)
    await s.party_setup()
    fake.sent.clear()
    await s.party_month(random.Random(1))
    return s, fake


async def test_the_month_is_shanghais_the_first_of_a_quarter_holds_no_joint_meeting():
    # 1 October 00:00:05 in Shanghai is still 30 September in UTC: not a quarter's last month
    _, fake = await played(datetime(2026, 9, 30, 16, 0, 5, tzinfo=timezone.utc))
    assert not fake.of("party.meeting.hold.v1")
    assert {p.meeting_id.rsplit("-", 2)[-2:] == ["2026", "10"] for p, _ in fake.of("party.org_life.record.v1")} == {True}
    _, fake = await played(datetime(2026, 12, 1, 0, 0, 5, tzinfo=timezone.utc))  # December: the councils meet
    assert fake.of("party.meeting.hold.v1")


async def test_a_commitment_is_made_for_shanghais_year():
    _, fake = await played(datetime(2026, 12, 31, 16, 0, 5, tzinfo=timezone.utc))  # 1 January 2027 in Shanghai
    assert {p.year for p, _ in fake.of("party.commitment.make.v1")} == {2027}
    _, fake = await played(datetime(2027, 5, 31, 16, 0, 5, tzinfo=timezone.utc))  # June
    assert {p.year for p, _ in fake.of("party.commitment.make.v1")} == {2027}
    # in December for the next year: a commitment sent late in December is still valid in January
    _, fake = await played(datetime(2027, 11, 30, 16, 0, 5, tzinfo=timezone.utc))
    assert {p.year for p, _ in fake.of("party.commitment.make.v1")} == {2028}


async def test_each_organisation_holds_what_the_table_asks_and_units_claim_their_own_projects():
    s, fake = await played(datetime(2026, 11, 2, 4, 0, tzinfo=timezone.utc))
    held = Counter((p.org_id.split("-")[1], p.kind.value) for p, _ in fake.of("party.org_life.record.v1"))
    assert {k for k, _ in held} == {"street_working_committee", "community_committee", "grid_branch",
                                    "building_group", "unit_org"}
    assert ("building_group", "group_meeting") in held and ("grid_branch", "branch_meeting") in held
    assert not any(k == "building_group" and kind != "group_meeting" for k, kind in held)
    for p, by in fake.of("party.project.claim.v1") + fake.of("party.project.complete.v1"):
        assert by == f"ps-{p.unit_id}"  # the unit's own secretary, not the community's
    assert all(by.startswith("ps-") for _, by in fake.of("party.org_life.record.v1"))


async def test_households_are_marked_in_building_groups_and_a_member_moves_in_a_quarters_middle_month():
    fake = Fake()
    s = Stories(generate(7), fake, seed=7, follow_timeout=0.01, expire_wait=0.01,
                now=lambda: datetime(2026, 8, 3, tzinfo=timezone.utc), settle=0.0)
    await s.party_setup()
    marked = fake.of("party.household.mark.v1")
    assert marked and all(p.org_id.startswith("po-building_group-") for p, _ in marked)
    fake.sent.clear()
    await s.party_month(random.Random(1))
    (move, by), = fake.of("orders.member.move.v1")
    assert by == f"cw-{move.community_id}"  # the new community's office
    (attach, secretary), = fake.of("party.member.attach.v1")
    assert attach.member_id == move.member_id and attach.org_id == org_id("grid_branch", attach.grid_id)
    assert secretary == f"ps-{attach.grid_id}" and s.home_of(next(m for m in s.d.members
                                                                 if m.member_id == move.member_id))[0] == move.community_id


async def test_nothing_is_sent_for_an_organisation_not_established_nor_a_council_not_in_force():
    fake = Fake(refuse={"party.org.establish.v1"})
    s, fake = await played(datetime(2026, 12, 2, tzinfo=timezone.utc), fake)
    assert not fake.of("party.org_life.record.v1") and not fake.of("party.member.attach.v1")
    fake = Fake(effective=False)
    s, fake = await played(datetime(2026, 12, 2, tzinfo=timezone.utc), fake)
    assert fake.of("party.org_life.record.v1") and not fake.of("party.meeting.hold.v1")
    assert council_id(s.d.streets[0].street_id) in s.council_seats  # proposed, in its 公示
