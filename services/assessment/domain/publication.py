"""What closing a period publishes, computed from the folded history (no I/O here): the
scorecards and alerts of a period under the scheme in force, and the identity of each
publication (a content hash and a deterministic envelope id), so that re-closing publishes
only what changed."""
from __future__ import annotations

import hashlib
import uuid
from typing import Iterable

import orjson

from schemas.common import Payload

from .facts import MemoryLookup, facts_by_entity, parent_of
from .facts.coverage import with_coverage
from .facts.standing import with_standing
from .facts.core import FactTable
from .periods import Period
from .scheme import Scheme, scheme_for_period
from .scorecards import NAMESPACE, EntityFacts, Publication, close_period


def publication_for(period: str, table: FactTable, lookup: MemoryLookup, scheme: Scheme,
                    of: tuple[str, str] | None = None) -> Publication:
    """Ranked, graded scorecards of every entity with counters in ``period``, and the alerts
    (grid workers' patrol coverage derived for the period, :mod:`.facts.coverage`; the Party
    organisation's standing counts, :mod:`.facts.standing`). With ``of`` (entity type, id):
    only the cards of the entities ranked with it (same type and parent), which give its card
    exactly as the whole period's do (a score is the entity's own; ranks are within the group)."""
    p = str(Period.parse(period))
    group = None if of is None else (of[0], parent_of(of[0], of[1], lookup))
    entities = []
    for (et, eid), facts in with_standing(facts_by_entity(table, p), p, lookup).items():
        if group is not None and et != group[0]:
            continue
        parent = parent_of(et, eid, lookup)
        if group is None or parent == group[1]:
            entities.append(EntityFacts(et, eid, with_coverage(et, eid, facts, p, lookup), parent))
    return close_period(p, entities, scheme)


def scheme_in_force(schemes: Iterable[Scheme], period: str, default: Scheme) -> Scheme:
    """The scheme governing a period: the latest in force at its end (the default file if none)."""
    return scheme_for_period([default, *schemes], Period.parse(period).end) or default


def content_hash(payload: Payload) -> str:
    """A stable hash of what is published (sorted keys, JSON values)."""
    return hashlib.sha256(orjson.dumps(payload.model_dump(mode="json"), option=orjson.OPT_SORT_KEYS)).hexdigest()


def envelope_id(kind: str, object_id: str, digest: str) -> str:
    """Deterministic CloudEvents id of one publication: the same content gets the same id, so a
    consumer's inbox drops a re-publication; a correction (new content) gets a new id."""
    return str(uuid.uuid5(NAMESPACE, f"{kind}:{object_id}:{digest}"))
