"""The invariants, read only from the topics and the public HTTP APIs once the load has stopped
and the lag is 0. :func:`check` returns the figures and the list of failed checks.

- every command on an intake topic (by id) has exactly one outcome: its events, or one
  rejection, or its dead letter (a command the simulator broke on purpose); none is *lost* (no
  outcome) or *duplicated* (two rejections, events and a rejection, or two events of one type
  and subject and content caused by it). A command that changes nothing (a period closed again
  with no scorecard changed, a registration sent again) is answered with the rejection
  ``no_change`` like any other: no command is excused. A refused transfer's
  ``points.transfer.refused.v1`` goes with its rejection (:data:`REFUSAL_EVENTS`);
- every passed order (``orders.order.evaluated.v1``, ``passed``) is awarded exactly once, or
  refused with a reason (``points.transfer.posted.v1`` / ``.refused.v1`` naming it as source);
- every ``resident_need`` case registered became exactly one order;
- every period that was closed has scorecards;
- no event id appears twice on an events topic (the campaign's own redeliveries excepted):
  neither on two different events nor as the same event sent again (:func:`event_id_failures`);
- the ledger sums to 0, its postings are those on ``points.events.v1``, and the balances the
  API reports equal the postings replayed;
- every poison record is in a DLQ with its reason;
- (after these, once the workers are stopped: ``tests/chaos/rebuilt.py``) each service's
  projection equals a rebuild from its input topics, row for row, in a copy of the database.
  Left out by design: the columns that hold wall-clock times, the aggregate store's save
  counts and the tables no topic holds (``tests/support/rebuild.py``, as in the services'
  rebuild tests), and the effects of the timers and of the commands sent over HTTP, which no
  input topic holds: in the tables a service's timers write, the rows that name what one of
  its timers' events is about (a case, an order, an account, a closed period), and in every
  table the rows that name what an HTTP command's event is about. The campaign's HTTP
  commands are a few, mostly refused; the timers act on every month's step.
"""
from __future__ import annotations

import asyncio
import json
import random
from collections import Counter, defaultdict
from typing import Any

import aiohttp

from schemas.topics import BY_SERVICE
from services.orders.domain.grid_cases import order_id_for_case
from tests.support.kafka import read_topic

from .inject import COPY_HEADER

# Errors of the database or the connection, not of the message: a record dead-lettered with one
# of these was lost to a fault (it should have been retried until the database came back).
OUTAGE_ERRORS = {"ReadOnlySQLTransactionError", "InternalClientError", "ConnectionDoesNotExistError",
                 "CannotConnectNowError", "AdminShutdownError", "ConnectionFailureError", "InterfaceError",
                 "ConnectionRefusedError", "ConnectionResetError", "TimeoutError", "OSError", "TooManyConnectionsError"}
# A refused transfer is published both ways, by design: the refusal event on points.events.v1
# (the ledger's story) and the command's rejection. Together they are one outcome.
REFUSAL_EVENTS = {"points.transfer.refused.v1"}


def envelope(raw: bytes | None) -> dict | None:
    try:
        v = json.loads(raw)
    except (TypeError, ValueError):
        return None
    return v if isinstance(v, dict) and "id" in v and "type" in v else None


def content(e: dict) -> str:
    """An event's data without the times a handler takes from its clock: a command handled twice
    makes its events again with the same content (and new ids and times)."""
    data = e.get("data") if isinstance(e.get("data"), dict) else {}
    return json.dumps({k: v for k, v in data.items() if not (k == "at" or k.endswith("_at") or k.endswith("time"))},
                      sort_keys=True, default=str)


def copied(r) -> bool:
    return any(k == COPY_HEADER for k, _ in r.headers or ())


async def check(bootstrap: str, points_url: str, tokens: dict[str, str], poison: list[str],
                session: aiohttp.ClientSession, seed: int) -> tuple[dict, list[str]]:
    failed: list[str] = []
    topics = {k: [] for k in ("intake", "events", "rejections", "dlq")}
    for svc in BY_SERVICE.values():
        for kind in topics:
            topics[kind].append(getattr(svc, kind).name)
    names = [t for ts in topics.values() for t in ts]
    raw: dict[str, list] = dict(zip(names, await asyncio.gather(*(read_topic(bootstrap, t) for t in names))))

    # -- commands and their outcomes
    commands: dict[str, str] = {}  # id -> type
    for t in topics["intake"]:
        for r in raw[t]:
            e = envelope(r.value)
            if e is not None and isinstance(e.get("id"), str):
                commands.setdefault(e["id"], e["type"])
    events: list[dict] = []
    ids_per_topic: dict[str, Counter] = {}
    where: dict[str, list[str]] = defaultdict(list)  # event id -> partition@offset (timestamp) of each copy
    values: dict[str, set[bytes]] = defaultdict(set)
    for t in topics["events"]:
        ids = Counter()
        for r in raw[t]:
            e = envelope(r.value)
            if e is None:
                continue
            if not copied(r):
                ids[e["id"]] += 1
                where[e["id"]].append(f"{r.partition}@{r.offset} ts={r.timestamp}")
                values[e["id"]].add(r.value)
                events.append(e)
        ids_per_topic[t] = ids
    distinct = {e["id"]: e for e in events}
    caused: dict[str, Counter] = defaultdict(Counter)
    for e in distinct.values():
        if e.get("causationid") in commands:
            caused[e["causationid"]][(e["type"], e.get("subject"), content(e))] += 1
    rejected: Counter = Counter()
    rej_ids: set[str] = set()
    for t in topics["rejections"]:
        for r in raw[t]:
            e = envelope(r.value)
            if e is None or e["id"] in rej_ids:
                continue
            rej_ids.add(e["id"])
            cid = (e.get("data") or {}).get("command_id")
            if cid in commands:
                rejected[cid] += 1
    dead: dict[str, str] = {}  # command id or poison marker -> reason
    dead_by_outage: dict[str, str] = {}  # command id -> the infrastructure error that dead-lettered it
    dlq_values: list[tuple[bytes, str]] = []
    for t in topics["dlq"]:
        for r in raw[t]:
            hdrs = dict((k, v.decode(errors="replace")) for k, v in r.headers or ())
            reason = hdrs.get("dlq.error.reason", "")
            dlq_values.append((r.value or b"", reason))
            e = envelope(r.value)
            if e is not None and isinstance(e.get("id"), str):
                if hdrs.get("dlq.error.class", "") in OUTAGE_ERRORS:
                    dead_by_outage[e["id"]] = hdrs.get("dlq.error.class", "")
                else:
                    dead[e["id"]] = reason
    lost = [c for c in commands if not caused.get(c) and not rejected.get(c) and c not in dead]
    duplicated = [c for c in commands if rejected.get(c, 0) > 1
                  or (rejected.get(c) and any(k[0] not in REFUSAL_EVENTS for k in caused.get(c, {})))
                  or any(n > 1 for n in caused.get(c, {}).values())]
    if dead_by_outage:
        failed.append(f"lost to a fault: {len(dead_by_outage)} command(s) dead-lettered by an infrastructure error "
                      f"{dict(Counter(dead_by_outage.values()))}; e.g. {list(dead_by_outage)[:3]}")
    if lost:
        by_type = Counter(commands[c] for c in lost)
        failed.append(f"lost: {len(lost)} command(s) without an outcome, by type {dict(by_type)}; e.g. {lost[:3]}")
    if duplicated:
        failed.append(f"duplicated: {len(duplicated)} command(s) with more than one outcome; e.g. "
                      + "; ".join(f"{c} ({commands[c]}): events twice "
                                  f"{[k[:2] for k, n in caused.get(c, {}).items() if n > 1][:3]}, "
                                  f"rejections {rejected.get(c, 0)}" for c in duplicated[:3]))

    # -- event ids
    republished, id_failures = event_id_failures(ids_per_topic, values, distinct, where)
    failed += id_failures

    # -- passed orders → one award or one refusal
    by_type: dict[str, list[dict]] = defaultdict(list)
    for e in distinct.values():
        by_type[e["type"]].append(e)
    passed = [e["id"] for e in by_type["orders.order.evaluated.v1"] if (e.get("data") or {}).get("passed")]
    awards = Counter((e["data"] or {}).get("source_event_id") for e in by_type["points.transfer.posted.v1"]
                     if (e["data"] or {}).get("reason") == "award")
    refusals = Counter((e["data"] or {}).get("source_event_id") for e in by_type["points.transfer.refused.v1"])
    refusal_reasons = Counter((e["data"] or {}).get("reason") for e in by_type["points.transfer.refused.v1"]
                              if (e["data"] or {}).get("source_event_id") in set(passed))
    not_once = [p for p in passed if awards.get(p, 0) + refusals.get(p, 0) != 1]
    if not_once:
        failed.append(f"passed orders not awarded exactly once nor refused: {len(not_once)} of {len(passed)}; "
                      f"e.g. {[(p, awards.get(p, 0), refusals.get(p, 0)) for p in not_once[:3]]}")

    # -- resident needs → one order each
    needs = {(e["data"] or {}).get("case_id") for e in by_type["grid.case.registered.v1"]
             if (e["data"] or {}).get("category") == "resident_need"}
    placed = Counter((e["data"] or {}).get("order_id") for e in by_type["orders.order.placed.v1"])
    need_bad = [c for c in needs if placed.get(order_id_for_case(c), 0) != 1]
    if need_bad:
        failed.append(f"resident_need cases without exactly one order: {len(need_bad)} of {len(needs)}; e.g. {need_bad[:3]}")

    # -- closed periods → scorecards
    cards = Counter((e["data"] or {}).get("period") for e in by_type["assessment.scorecard.published.v1"])
    closed = {}
    for t in topics["intake"]:
        for r in raw[t]:
            e = envelope(r.value)
            if e and e["type"] == "assessment.period.close.v1" and not rejected.get(e["id"]) and e["id"] not in dead:
                closed[(e.get("data") or {}).get("period")] = e["id"]
    no_cards = sorted(p for p in closed if not cards.get(p))
    if no_cards:
        failed.append(f"closed periods without scorecards: {no_cards}")

    # -- ledger
    status, ledger = await _get(session, f"{points_url}/v1/ledger/check", tokens.get("POINTS_OPERATOR_TOKEN"))
    postings = {(e["data"] or {}).get("transfer_id"): e["data"] for e in by_type["points.transfer.posted.v1"]}
    balance: Counter = Counter()
    for p in postings.values():
        balance[p["debit_account"]] -= p["amount"]
        balance[p["credit_account"]] += p["amount"]
    ledger_sum = ledger.get("sum") if status == 200 else None
    if status != 200:
        failed.append(f"ledger check answered {status}: {ledger}")
    else:
        if ledger["sum"] != 0 or not ledger["consistent"]:
            failed.append(f"ledger: sum {ledger['sum']}, consistent {ledger['consistent']}")
        if ledger["postings"] != len(postings):
            failed.append(f"ledger: {ledger['postings']} postings in the ledger, {len(postings)} on points.events.v1")
    accounts = sorted(balance)
    sample = random.Random(seed).sample(accounts, min(40, len(accounts)))
    wrong = []
    for a in sample:
        st, acc = await _get(session, f"{points_url}/v1/accounts/{a}", tokens.get("AUDITOR_TOKEN"))
        if st != 200 or acc.get("balance") != balance[a]:
            wrong.append((a, balance[a], acc.get("balance") if st == 200 else st))
    if wrong:
        failed.append(f"balances differ from the postings replayed: {wrong[:3]} ({len(wrong)} of {len(sample)})")

    # -- poison → DLQ with reason
    missing = [m for m in poison if not any(m.encode() in v and reason for v, reason in dlq_values)]
    if missing:
        failed.append(f"poison records not in a DLQ with a reason: {len(missing)} of {len(poison)}; e.g. {missing[:3]}")

    figures = {"commands": len(commands), "lost": len(lost) + len(dead_by_outage), "duplicated": len(duplicated),
               "dead_lettered_by_outage": len(dead_by_outage),
               "rejected": sum(1 for c in rejected), "dead_lettered_commands": sum(1 for c in commands if c in dead),
               "events": len(distinct), "events_republished": republished,
               "passed_orders": len(passed),
               "awarded": sum(1 for p in passed if awards.get(p)), "award_refused": sum(1 for p in passed if refusals.get(p)),
               "award_refusal_reasons": dict(refusal_reasons), "resident_needs": len(needs),
               "closed_periods": len(closed), "ledger_sum": ledger_sum, "postings": len(postings),
               "balances_checked": len(sample), "poison_in_dlq": len(poison) - len(missing),
               "dlq_records": len(dlq_values)}
    return figures, failed


def event_id_failures(ids_per_topic: dict[str, Counter], values: dict[str, set[bytes]],
                      distinct: dict[str, dict], where: dict[str, list[str]]) -> tuple[dict[str, int], list[str]]:
    """No event id twice on an events topic: the copies of each topic (``events_republished``)
    and the failed checks.

    Two kinds, each a failure: an id on two different events, and an event on its topic twice,
    byte for byte. The relay sends no record twice: a round that did not finish (a relay killed
    between the broker's acknowledgement and its DELETE, a produce given up on a paused broker
    that wrote it after all) is read back by the next (services/kit/outbox.py). The consumers'
    inboxes would absorb a copy, but a reader of the topic would see it."""
    failed = []
    republished = {t: sum(n - 1 for i, n in ids.items() if n > 1 and len(values[i]) == 1)
                   for t, ids in ids_per_topic.items()}
    republished = {t: n for t, n in republished.items() if n}
    if republished:
        e_g = [f"{i} {distinct[i]['type']} at {where[i]}" for ids in ids_per_topic.values()
               for i, n in ids.items() if n > 1 and len(values[i]) == 1][:3]
        failed.append(f"events on their topic twice: {republished}; e.g. {e_g}")
    dup_event_ids = {t: [i for i, n in ids.items() if n > 1 and len(values[i]) > 1] for t, ids in ids_per_topic.items()}
    dup_event_ids = {t: v for t, v in dup_event_ids.items() if v}
    if dup_event_ids:
        failed.append("one event id on two different events: " + "; ".join(
            f"{t}: {len(v)}, e.g. " + ", ".join(f"{i} {distinct[i]['type']} at {where[i]}" for i in v[:2])
            for t, v in dup_event_ids.items()))
    return republished, failed


async def _get(session: aiohttp.ClientSession, url: str, token: str | None) -> tuple[int, Any]:
    for _ in range(5):
        try:
            async with session.get(url, headers={"Authorization": f"Bearer {token}"},
                                   timeout=aiohttp.ClientTimeout(total=10)) as r:
                return r.status, await r.json(content_type=None)
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as e:
            err = repr(e)
            await asyncio.sleep(1)
    return 0, err
