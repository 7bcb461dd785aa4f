"""Recompute a past period under another scheme, from its stored counters (the what-if of weight changes).

    python -m services.assessment.app.recompute --period 2026-10 --scheme path/to/scheme.yaml [--publish --token JWT]

Reads the period's counters and the refs scoring it reads from the service's database
(``DATABASE_URL``, a read-only role does: nothing is written) — the very inputs of the
service's period close, with no event replayed — and scores the period twice: under the
scheme in force for it (the default file, or the latest scheme introduced by
``assessment.scheme.change.v1`` effective before the period's end) and under the given scheme
file. The difference is printed on stdout as JSON lines, one per scorecard that differs
(``ScorecardChange``: score, rank, grade, changed indicators, alerted indicators before →
after); a summary goes to stderr. ``--all`` prints unchanged scorecards too.

``--publish`` sends two commands on ``assessment.intake.v1``, so that the service itself
publishes (the CLI never writes the service's events): ``assessment.scheme.change.v1``
with the file as ``definition`` (its ``scheme_id`` and ``effective_from`` — mind that a
scheme whose ``effective_from`` precedes later periods' ends will govern them too), then
``assessment.period.close.v1`` {period, scheme_id}. The scheme change's command id is
derived from the scheme's content, so publishing twice is harmless; a scheme id already
used for other content is refused here before anything is sent. The service takes these
commands from the assessor only: ``--publish`` needs the assessor's token (``--token``, else the
environment's ``API_TOKEN``), sent as the records' ``authorization: Bearer <JWT>`` header, and
refuses to publish without one (before reading anything).

Exit status: 0 done, 2 bad arguments, scheme file or no token to publish with.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import sys
import uuid
from typing import Sequence

import orjson

from schemas.assessment import ChangeScheme, ClosePeriod
from schemas.envelope import CONTENT_TYPE, CONTENT_TYPE_HEADER, encode, envelope_for
from schemas.topics import ASSESSMENT
from services.assessment.domain import InvalidScheme, Scheme, diff_scorecards
from services.assessment.domain.facts.core import FactTable
from services.assessment.domain.facts.refs import MemoryLookup
from services.assessment.domain.periods import InvalidPeriod, Period
from services.assessment.domain.publication import content_hash, publication_for, scheme_in_force
from services.assessment.domain.scheme import DEFAULT_SCHEME_PATH
from services.assessment.domain.scorecards import NAMESPACE
from services.assessment.projection import store
from services.kit import kafkasec
from services.kit.db import create_pool
from services.kit.kafkasec import KafkaSecurity
from services.kit.outbox import producer_for

from .scoring import period_inputs


async def read_period(database_url: str, period: str) -> tuple[FactTable, MemoryLookup, list[Scheme]]:
    """(the period's counters, the refs scoring it reads, the schemes introduced by commands)."""
    pool = await create_pool(database_url, "assessment", service="assessment-recompute", max_size=1)
    try:
        async with pool.acquire() as conn, conn.transaction(readonly=True, isolation="repeatable_read"):
            table, lookup = await period_inputs(conn, period)
            return table, lookup, await store.load_schemes(conn)
    finally:
        await pool.close()


def recompute(table: FactTable, lookup: MemoryLookup, period: str, new: Scheme, current: Scheme, *,
              include_unchanged=False):
    """(changes, publication under the new scheme, publication under the current one), from the
    period's stored counters."""
    before = publication_for(period, table, lookup, current)
    after = publication_for(period, table, lookup, new)
    changes = diff_scorecards(before.scorecards, after.scorecards, alerts_before=before.alerts,
                              alerts_after=after.alerts, include_unchanged=include_unchanged)
    return changes, after, before


async def publish(bootstrap: str, period: str, scheme: Scheme, token: str,
                  security: KafkaSecurity | None = None) -> list[str]:
    """Send scheme.change (content-derived id) and period.close to the assessment intake, as the
    holder of ``token`` (an assessor's JWT)."""
    if not token:
        raise ValueError("publishing needs the sender's token")
    definition = scheme.to_mapping()
    digest = content_hash(ChangeScheme(scheme_id=scheme.scheme_id, effective_from=scheme.effective_from,
                                       definition=definition))
    change = envelope_for(ChangeScheme(scheme_id=scheme.scheme_id, effective_from=scheme.effective_from,
                                       definition=definition),
                          source="/tools/assessment-recompute", id=str(uuid.uuid5(NAMESPACE, f"scheme-change:{digest}")))
    close = envelope_for(ClosePeriod(period=period, scheme_id=scheme.scheme_id), source="/tools/assessment-recompute")
    p = producer_for(bootstrap, "assessment-recompute", security)
    await p.start()
    try:
        # both keyed by the scheme id: one partition, so the change is handled before the close
        for env in (change, close):
            await (await p.send(ASSESSMENT.intake.name, encode(env), key=scheme.scheme_id.encode(),
                                headers=[(CONTENT_TYPE_HEADER, CONTENT_TYPE.encode()),
                                         ("authorization", f"Bearer {token}".encode())]))
    finally:
        await p.stop()
    return [change.id, close.id]


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m services.assessment.app.recompute", description=__doc__.split("\n\n")[0])
    ap.add_argument("--period", required=True, help="2026-10, 2026-Q4 or 2026")
    ap.add_argument("--scheme", required=True, help="scheme data file (YAML), as services/assessment/schemes/default.yaml")
    ap.add_argument("--publish", action="store_true", help="ask the service to publish the new scorecards")
    ap.add_argument("--all", action="store_true", help="print unchanged scorecards too")
    ap.add_argument("--token", default=os.environ.get("API_TOKEN"),
                    help="the assessor's JWT that --publish sends the commands with (default: $API_TOKEN)")
    ap.add_argument("--database-url", default=os.environ.get("DATABASE_URL"),
                    help="the assessment service's database (default: $DATABASE_URL); only read")
    ap.add_argument("--bootstrap", default=os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092"))
    ap.add_argument("--default-scheme", default=os.environ.get("ASSESSMENT_SCHEME_FILE", str(DEFAULT_SCHEME_PATH)),
                    help="the service's default scheme file (the fallback scheme in force)")
    args = ap.parse_args(argv)
    token = (args.token or "").strip()
    if token.lower().startswith("bearer "):
        token = token[7:].strip()
    if args.publish and not token:
        print("error: no_token: --publish sends commands as the assessor: give their JWT with --token "
              "or API_TOKEN", file=sys.stderr)
        return 2
    try:
        period = str(Period.parse(args.period))
        new = Scheme.load(args.scheme)
        default = Scheme.load(args.default_scheme)
    except (InvalidPeriod, InvalidScheme) as e:
        print(f"error: {e.reason}: {e.detail}", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if not args.database_url:
        print("error: no_database: give the service's database with --database-url or DATABASE_URL", file=sys.stderr)
        return 2
    table, lookup, known = asyncio.run(read_period(args.database_url, period))
    current = scheme_in_force(known, period, default)
    changes, after, before = recompute(table, lookup, period, new, current, include_unchanged=args.all)
    for ch in changes:
        sys.stdout.write(orjson.dumps(ch.model_dump(mode="json")).decode() + "\n")
    sys.stdout.flush()
    print(orjson.dumps({"period": period, "counters": len(table), "scheme_in_force": current.scheme_id,
                        "scheme": new.scheme_id, "scorecards": len(after.scorecards), "changed": sum(
                            1 for c in changes if c.change != "unchanged"), "alerts_before": len(before.alerts),
                        "alerts_after": len(after.alerts)}).decode(), file=sys.stderr)
    if args.publish:
        clash = next((s for s in known + [default] if s.scheme_id == new.scheme_id and s != new), None)
        if clash is not None:
            print(f"error: scheme_exists: scheme id {new.scheme_id!r} is in use with other content; "
                  "give the file a new scheme_id", file=sys.stderr)
            return 2
        ids = asyncio.run(publish(args.bootstrap, period, new, token, kafkasec.from_env()))
        print(orjson.dumps({"published": {"scheme_change_id": ids[0], "close_id": ids[1]}}).decode(), file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
