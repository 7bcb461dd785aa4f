"""Domain metrics of the party service (the kit exports its own kit_* metrics).

``party_orgs`` is read from the projection by the coverage timer; the counters are updated as
events are decided (a batch the kit retries may count its events again: counters are rates,
the ledger is the ``orgs`` table).
"""
from __future__ import annotations

from prometheus_client import Counter, Gauge

from schemas.party import OrgKind

ORGS = Gauge("party_orgs", "Party organisations by kind, read from the projection by the coverage timer", ["kind"])
COVERAGE_GAPS = Gauge("party_coverage_gaps", "Grids with at least 3 members and no grid branch (网格党支部), "
                                             "read from the projection by the coverage timer")
ESTABLISHED = Counter("party_orgs_established_total", "Party organisations established, by kind", ["kind"])
TRANSFERS = Counter("party_member_transfers_total", "Members' relationships (组织关系) attached, first or "
                                                    "transferred from another org", ["transfer"])
GAPS_REPORTED = Counter("party_coverage_gaps_reported_total", "Coverage gaps reported (once per grid)")
MEETINGS_HELD = Counter("party_meetings_held_total", "Joint meetings (联席会议) of the regional councils recorded, "
                                                   "with a quorum or without (nothing adopted)", ["quorum"])
MEETINGS_OVERDUE = Counter("party_meetings_overdue_total", "Quarters a regional council held no joint meeting with a "
                                                           "quorum (party.meeting.overdue.v1)")

for _k in OrgKind:
    ORGS.labels(_k.value)
    ESTABLISHED.labels(_k.value)
for _t in ("true", "false"):
    TRANSFERS.labels(_t)
    MEETINGS_HELD.labels(_t)
