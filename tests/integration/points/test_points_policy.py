"""Who may do what in the points service, on a live worker: every role × every
command, Kafka intake without a token or with a forbidden one, actor fields from the token,
reads limited to the caller, consent to redemptions, two operators for large adjustments, and
the attacks on it, each of which now fails to do harm."""
from __future__ import annotations

import asyncio
import uuid

import asyncpg
import orjson
import pytest

from schemas.codes import ancestor_of, CodeKind
from schemas.envelope import CONTENT_TYPE, encode
from schemas.orders import OrderEvaluated
from schemas.points import Adjust, Redeem
from services.kit.identity import ROLES
from services.points.app.policy import POLICY
from tests.support.identity import token
from tests.support.kafka import command, produce, read_all, send
from tests.support.procs import Worker, http

pytestmark = pytest.mark.integration

A, B = "110105001002", "110105001003"  # two communities of one street
OTHER_STREET_COMMUNITY = "110105002001"
STREET_A = ancestor_of(A, CodeKind.STREET)
ISSUER_A = f"issuer:{A}"
AUDITOR = token("auditor-1", ["auditor"])


def uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def as_role(role: str, sub: str | None = None, *, communities=(A,), streets=()) -> str:
    """A token of one role; officers act for community A (a street officer: A's street)."""
    if role == "street_officer" and not streets:
        streets = (STREET_A,)
    scope = {"communities": list(communities) if role != "street_officer" else [], "streets": list(streets)}
    return token(sub or f"{role}-1", [role], scope=scope)


OPERATOR, OPERATOR_2 = token("op-1", ["points_operator"]), token("op-2", ["points_operator"])


@pytest.fixture(scope="module")
async def worker(module_kafka, module_database_url, tmp_path_factory):
    d = tmp_path_factory.mktemp("points-policy")
    w = Worker("services.points.app", {
        "KAFKA_BOOTSTRAP_SERVERS": module_kafka, "DATABASE_URL": module_database_url, "TOPIC_PARTITIONS": "2",
        "POINTS_REDEMPTION_CODE_SECONDS": "5",
    }, prefix="POINTS_", log=d / "worker.log").start()
    try:
        await w.wait_ready()
        w.kafka = module_kafka
        w.database_url = module_database_url
        yield w
    finally:
        code = w.stop()
        assert code == 0, (d / "worker.log").read_text()[-4000:]


async def post(w: Worker, type_: str, data: dict, tok: str | None):
    return await http("POST", w.url + "/v1/commands", json={"id": str(uuid.uuid4()), "type": type_, "data": data},
                      token=tok)


async def ok(w: Worker, type_: str, data: dict, tok: str) -> dict:
    status, body = await post(w, type_, data, tok)
    assert status == 200, (type_, status, body)
    return body


async def there(w: Worker, type_: str, data: dict, tok: str) -> None:
    """:func:`ok`, for a command whose state may be there already (answered ``no_change``)."""
    status, body = await post(w, type_, data, tok)
    assert status == 200 or (status, body["error"]) == (409, "no_change"), (type_, status, body)


async def get(w: Worker, path: str, tok: str):
    return await http("GET", w.url + path, token=tok)


async def resident_with(w: Worker, points: int, *, community: str = A) -> str:
    """A resident of ``community`` holding ``points`` (an operator's grant from the issuer)."""
    person = uid("r")
    await ok(w, "points.account.open.v1", {"holder_id": person, "kind": "resident", "community_id": community},
             OPERATOR)
    await there(w, "points.account.open.v1", {"holder_id": community, "kind": "issuer"}, OPERATOR)
    if points:
        await ok(w, "points.adjust.v1", {"transfer_id": uid("seed"), "debit_account": f"issuer:{community}",
                                         "credit_account": f"resident:{person}", "amount": points,
                                         "reason": "test grant"}, OPERATOR)
    return person


async def merchant(w: Worker, community: str = A) -> str:
    shop = uid("m")
    await ok(w, "points.account.open.v1", {"holder_id": shop, "kind": "merchant", "community_id": community}, OPERATOR)
    return shop


async def code_for(w: Worker, person: str, amount: int) -> str:
    status, body = await http("POST", w.url + "/v1/redemption-codes", json={"amount": amount},
                              token=token(person, ["resident"]))
    assert status == 201, body
    assert body["account_id"] == f"resident:{person}" and body["amount"] == amount
    return body["code"]


# -- 1. every role × every command ------------------------------------------------------------

def bodies() -> dict[str, dict]:
    """A body per command, actor fields omitted (filled from the token)."""
    return {
        "points.account.open.v1": {"holder_id": uid("h"), "kind": "resident", "community_id": A},
        "points.adjust.v1": {"transfer_id": uid("t"), "debit_account": ISSUER_A, "credit_account": "resident:nobody",
                             "amount": 5, "reason": "matrix"},
        "points.adjust.approve.v1": {"transfer_id": uid("t")},
        "points.deed.submit.v1": {"deed_id": uid("d"), "category": "lost_property"},
        "points.deed.review.v1": {"deed_id": uid("d"), "account_id": "resident:nobody", "approved": False,
                                  "reason": "matrix"},
        "points.redeem.v1": {"transfer_id": uid("t"), "debit_account": "resident:nobody", "amount": 1},
        "points.person.erase.v1": {"person_id": uid("p"), "reason": "matrix"},
    }


def test_the_matrix_covers_every_command_of_the_policy():
    assert {cls.TYPE for cls in POLICY.commands} == set(bodies())


@pytest.mark.parametrize("role", ROLES)
async def test_every_role_may_send_exactly_what_the_policy_allows(worker, role):
    for cls in POLICY.commands:
        status, body = await post(worker, cls.TYPE, bodies()[cls.TYPE], as_role(role))
        if role in POLICY.roles_for(cls):
            assert status not in (401, 403), (role, cls.TYPE, status, body)
            assert status in (200, 409), (role, cls.TYPE, status, body)
        else:
            assert (status, body["error"]) == (403, "forbidden"), (role, cls.TYPE, status, body)


async def test_officers_open_accounts_of_their_communities_only_and_never_issuers(worker):
    for role in ("community_officer", "street_officer"):
        assert (await post(worker, "points.account.open.v1", {"holder_id": uid("h"), "kind": "merchant",
                                                              "community_id": A}, as_role(role)))[0] == 200
        status, body = await post(worker, "points.account.open.v1", {"holder_id": uid("h"), "kind": "resident",
                                                                     "community_id": OTHER_STREET_COMMUNITY},
                                  as_role(role))
        assert (status, body["error"]) == (403, "forbidden"), role
        status, body = await post(worker, "points.account.open.v1", {"holder_id": uid("h"), "kind": "resident"},
                                  as_role(role))
        assert status == 403, role  # an officer names the community
        status, body = await post(worker, "points.account.open.v1", {"holder_id": A, "kind": "issuer",
                                                                     "community_id": A}, as_role(role))
        assert (status, body["error"], body["field"]) == (403, "forbidden", "kind"), role
    community_b = as_role("community_officer", communities=(B,))
    assert (await post(worker, "points.account.open.v1", {"holder_id": uid("h"), "kind": "resident",
                                                          "community_id": A}, community_b))[0] == 403


# -- 2. Kafka intake ------------------------------------------------------------------------------

async def rejection_of(w: Worker, command_id: str) -> dict:
    rows = await read_all(w.kafka, "points.rejections.v1", min_count=1, timeout=30,
                          predicate=lambda r: r["value"]["data"]["command_id"] == command_id)
    [row] = [r for r in rows if r["value"]["data"]["command_id"] == command_id]
    return row["value"]["data"]


async def test_over_kafka_a_command_without_a_token_is_unauthenticated_and_a_forbidden_one_forbidden(worker):
    person = uid("r")
    adjust = command(Adjust(transfer_id=uid("t"), debit_account=ISSUER_A, credit_account=f"resident:{person}",
                            amount=5, reason="no token"))
    await produce(worker.kafka, "points.intake.v1", [(adjust.subject, encode(adjust),
                                                      [("content-type", CONTENT_TYPE.encode())])])
    assert (await rejection_of(worker, adjust.id))["reason"] == "unauthenticated"
    forbidden = command(Adjust(transfer_id=uid("t"), debit_account=ISSUER_A, credit_account=f"resident:{person}",
                               amount=5, reason="as a resident"))
    await send(worker.kafka, "points.intake.v1", forbidden, token=token(person, ["resident"]))
    assert (await rejection_of(worker, forbidden.id))["reason"] == "forbidden"


# -- 3. actor fields ---------------------------------------------------------------------------------

async def test_actor_fields_come_from_the_token(worker):
    person = await resident_with(worker, 0)
    # a body naming someone else: 403
    for type_, data, tok in (
            ("points.deed.submit.v1", {"deed_id": uid("d"), "account_id": "resident:someone-else",
                                       "category": "lost_property"}, token(person, ["resident"])),
            ("points.adjust.v1", {"transfer_id": uid("t"), "debit_account": ISSUER_A,
                                  "credit_account": f"resident:{person}", "amount": 5, "operator_id": "op-2",
                                  "reason": "x"}, OPERATOR),
            ("points.deed.review.v1", {"deed_id": uid("d"), "account_id": f"resident:{person}", "approved": False,
                                       "reason": "x", "reviewer_id": "cw-other"}, as_role("community_officer")),
            ("points.redeem.v1", {"transfer_id": uid("t"), "debit_account": f"resident:{person}",
                                  "credit_account": "merchant:other-shop", "amount": 1},
             token("shop-1", ["merchant"]))):
        status, body = await post(worker, type_, data, tok)
        assert (status, body["error"]) == (403, "forbidden"), (type_, body)
    # omitted: filled from the token
    deed = uid("d")
    body = await ok(worker, "points.deed.submit.v1", {"deed_id": deed, "category": "lost_property"},
                    token(person, ["resident"]))
    assert body["events"][0]["data"]["account_id"] == f"resident:{person}"
    body = await ok(worker, "points.deed.review.v1", {"deed_id": deed, "account_id": f"resident:{person}",
                                                     "approved": True, "points": 8}, as_role("community_officer", "cw-7"))
    assert body["events"][0]["data"]["reviewer_id"] == "cw-7"
    body = await ok(worker, "points.adjust.v1", {"transfer_id": uid("t"), "debit_account": f"resident:{person}",
                                                 "credit_account": ISSUER_A, "amount": 1, "reason": "x"}, OPERATOR)
    assert body["events"][0]["data"]["operator_id"] == "op-1"


async def test_nobody_reviews_their_own_deed(worker):
    person = await resident_with(worker, 0)
    deed = uid("d")
    await ok(worker, "points.deed.submit.v1", {"deed_id": deed, "category": "lost_property"},
             token(person, ["resident"]))
    status, body = await post(worker, "points.deed.review.v1", {"deed_id": deed, "account_id": f"resident:{person}",
                                                                "approved": True, "points": 8},
                              as_role("community_officer", person))
    assert (status, body["error"]) == (409, "self_review")


# -- 4. scope: reads and deeds of another community ----------------------------------------------------

async def test_an_officer_of_community_b_gets_404_on_community_a_and_a_resident_reads_only_their_own(worker):
    person = await resident_with(worker, 12)
    shop = await merchant(worker)
    deed = uid("d")
    await ok(worker, "points.deed.submit.v1", {"deed_id": deed, "category": "lost_property"},
             token(person, ["resident"]))
    officer_a, officer_b = as_role("community_officer"), as_role("community_officer", communities=(B,))
    street_a = as_role("street_officer")
    paths = [f"/v1/accounts/resident:{person}", f"/v1/accounts/resident:{person}/statement", f"/v1/deeds/{deed}",
             f"/v1/merchants/merchant:{shop}/redemptions"]
    for path in paths:
        for tok in (officer_a, street_a, OPERATOR, AUDITOR):
            assert (await get(worker, path, tok))[0] == 200, path
        assert (await get(worker, path, officer_b))[0] == 404, path
        assert (await get(worker, path, token(uid("r"), ["resident"])))[0] == 404, path
    for path in paths[:3]:
        assert (await get(worker, path, token(person, ["resident"])))[0] == 200, path
    assert (await get(worker, paths[3], token(shop, ["merchant"])))[0] == 200
    assert (await get(worker, paths[3], token(uid("m"), ["merchant"])))[0] == 404
    assert (await get(worker, paths[0], token(shop, ["merchant"])))[0] == 404
    # an officer of B cannot review A's deed either: refused as an unknown deed
    status, body = await post(worker, "points.deed.review.v1", {"deed_id": deed, "account_id": f"resident:{person}",
                                                                "approved": False, "reason": "x"}, officer_b)
    assert (status, body["error"]) == (409, "unknown_deed")
    # routes declare their roles
    assert (await get(worker, paths[0], token("gw-1", ["grid_worker"])))[0] == 403
    assert (await get(worker, "/v1/ledger/check", officer_a))[0] == 403
    assert (await get(worker, "/v1/ledger/check", AUDITOR))[0] == 200
    assert (await get(worker, f"/v1/rankings?scope=community&community_id={A}", token(person, ["resident"])))[0] == 200
    assert (await http("POST", worker.url + "/v1/redemption-codes", json={"amount": 5}, token=officer_a))[0] == 403


# -- 5. consent to a redemption ---------------------------------------------------------------------------

async def test_a_merchant_redeems_only_with_the_residents_single_use_code(worker):
    person, shop = await resident_with(worker, 30), await merchant(worker)
    seller = token(shop, ["merchant"])
    redeem = {"debit_account": f"resident:{person}", "amount": 5}
    status, body = await post(worker, "points.redeem.v1", {**redeem, "transfer_id": uid("t")}, seller)
    assert (status, body["error"], body["field"]) == (409, "consent_required", "consent_code")
    for bad in ("NOTACODE00", await code_for(worker, await resident_with(worker, 5), 5)):  # unknown; another's
        status, body = await post(worker, "points.redeem.v1", {**redeem, "transfer_id": uid("t"), "consent_code": bad},
                                  seller)
        assert (status, body["error"]) == (409, "invalid_consent")
    code = await code_for(worker, person, 5)
    status, body = await post(worker, "points.redeem.v1", {**redeem, "amount": 6, "transfer_id": uid("t"),
                                                           "consent_code": code}, seller)
    assert (status, body["error"]) == (409, "invalid_consent")  # more than the code allows
    body = await ok(worker, "points.redeem.v1", {**redeem, "transfer_id": uid("t"), "consent_code": code}, seller)
    assert body["events"][0]["data"]["credit_account"] == f"merchant:{shop}"
    assert code not in orjson.dumps(body).decode()
    status, body = await post(worker, "points.redeem.v1", {**redeem, "transfer_id": uid("t"), "consent_code": code},
                              seller)
    assert (status, body["error"]) == (409, "invalid_consent")  # used
    assert code not in orjson.dumps(body).decode()
    expiring = await code_for(worker, person, 5)
    await asyncio.sleep(5.5)  # POINTS_REDEMPTION_CODE_SECONDS=5
    status, body = await post(worker, "points.redeem.v1", {**redeem, "transfer_id": uid("t"),
                                                           "consent_code": expiring}, seller)
    assert (status, body["error"]) == (409, "invalid_consent")
    status, account = await get(worker, f"/v1/accounts/resident:{person}", AUDITOR)
    assert account["balance"] == 25
    events = await read_all(worker.kafka, "points.events.v1", min_count=1)
    rejections = await read_all(worker.kafka, "points.rejections.v1", min_count=1)
    for record in events + rejections:
        assert code not in orjson.dumps(record["value"]).decode() and expiring not in orjson.dumps(record["value"]).decode()


async def test_one_code_allows_one_redemption_even_when_presented_concurrently(worker):
    person, shops = await resident_with(worker, 50), [await merchant(worker) for _ in range(4)]
    code = await code_for(worker, person, 10)
    answers = await asyncio.gather(*(post(worker, "points.redeem.v1", {
        "transfer_id": uid("t"), "debit_account": f"resident:{person}", "amount": 10, "consent_code": code},
        token(shop, ["merchant"])) for shop in shops))
    assert sorted(status for status, _ in answers) == [200, 409, 409, 409], answers
    assert (await get(worker, f"/v1/accounts/resident:{person}", AUDITOR))[1]["balance"] == 40


# -- 6. two operators for large adjustments ----------------------------------------------------------------

async def test_an_adjustment_over_100_waits_for_a_second_different_operator(worker):
    person = await resident_with(worker, 0)
    transfer = uid("big")
    body = await ok(worker, "points.adjust.v1", {"transfer_id": transfer, "debit_account": ISSUER_A,
                                                 "credit_account": f"resident:{person}", "amount": 150,
                                                 "reason": "missed volunteer hours"}, OPERATOR)
    assert [e["type"] for e in body["events"]] == ["points.adjustment.requested.v1"]
    assert body["events"][0]["data"]["operator_id"] == "op-1"
    assert (await get(worker, f"/v1/accounts/resident:{person}", AUDITOR))[1]["balance"] == 0
    status, body = await post(worker, "points.adjust.approve.v1", {"transfer_id": transfer}, OPERATOR)
    assert (status, body["error"]) == (409, "self_approval")
    status, body = await post(worker, "points.adjust.approve.v1", {"transfer_id": transfer},
                              token(person, ["points_operator"]))
    assert (status, body["error"]) == (409, "self_credit")  # an operator never credits their own account
    body = await ok(worker, "points.adjust.approve.v1", {"transfer_id": transfer}, OPERATOR_2)
    [posted] = [e["data"] for e in body["events"] if e["type"] == "points.transfer.posted.v1"]
    assert (posted["amount"], posted["operator_id"], posted["approver_id"]) == (150, "op-1", "op-2")
    assert (await get(worker, f"/v1/accounts/resident:{person}", AUDITOR))[1]["balance"] == 150
    status, body = await post(worker, "points.adjust.approve.v1", {"transfer_id": transfer}, OPERATOR_2)
    assert (status, body["error"]) == (409, "no_change")  # approved and posted already
    status, body = await post(worker, "points.adjust.approve.v1", {"transfer_id": uid("none")}, OPERATOR_2)
    assert (status, body["error"]) == (409, "unknown_adjustment")


# -- 7. the attacks on it ------------------------------------------------------------------------

async def test_attack_2_62_points_into_the_attackers_own_account_moves_nothing(worker):
    attacker = uid("op")
    await ok(worker, "points.account.open.v1", {"holder_id": attacker, "kind": "resident", "community_id": A}, OPERATOR)
    await there(worker, "points.account.open.v1", {"holder_id": A, "kind": "issuer"}, OPERATOR)
    as_attacker = token(attacker, ["points_operator"])
    status, body = await post(worker, "points.adjust.v1", {"transfer_id": uid("t"), "debit_account": ISSUER_A,
                                                           "credit_account": f"resident:{attacker}", "amount": 2**62,
                                                           "reason": "mine"}, as_attacker)
    assert status == 422 and body["field"] == "data.amount"
    status, body = await post(worker, "points.adjust.v1", {"transfer_id": uid("t"), "debit_account": ISSUER_A,
                                                           "credit_account": f"resident:{attacker}", "amount": 50,
                                                           "reason": "mine"}, as_attacker)
    assert (status, body["error"]) == (409, "self_credit")
    status, body = await post(worker, "points.adjust.v1", {"transfer_id": uid("t"), "debit_account": ISSUER_A,
                                                           "credit_account": f"resident:{attacker}", "amount": 50,
                                                           "reason": "mine"}, token(attacker, ["resident"]))
    assert status == 403
    # an accomplice's adjustment is posted but never counts as earned for 好人榜
    accomplice = uid("r")
    await ok(worker, "points.account.open.v1", {"holder_id": accomplice, "kind": "resident", "community_id": A},
             OPERATOR)
    await ok(worker, "points.adjust.v1", {"transfer_id": uid("t"), "debit_account": ISSUER_A,
                                          "credit_account": f"resident:{accomplice}", "amount": 99,
                                          "reason": "friend"}, as_attacker)
    status, ranking = await get(worker, f"/v1/rankings?scope=community&community_id={A}&limit=500", AUDITOR)
    assert status == 200
    assert {e["account_id"] for e in ranking["items"]}.isdisjoint({f"resident:{attacker}", f"resident:{accomplice}"})
    assert (await get(worker, f"/v1/accounts/resident:{attacker}", AUDITOR))[1]["balance"] == 0


async def test_attack_a_merchant_redeeming_from_anyone_without_consent_moves_nothing(worker):
    victim, shop = await resident_with(worker, 40), await merchant(worker)
    redeem = command(Redeem(transfer_id=uid("t"), debit_account=f"resident:{victim}", amount=40))
    await send(worker.kafka, "points.intake.v1", redeem, token=token(shop, ["merchant"]))
    rejection = await rejection_of(worker, redeem.id)
    assert (rejection["reason"], rejection["field"]) == ("consent_required", "consent_code")
    assert (await get(worker, f"/v1/accounts/resident:{victim}", AUDITOR))[1]["balance"] == 40


async def test_attack_opening_an_account_under_someone_elses_id_is_refused_and_their_award_still_lands(worker):
    alice = uid("alice")
    status, body = await post(worker, "points.account.open.v1", {"account_id": f"resident:{alice}",
                                                                 "holder_id": uid("mallory"), "kind": "resident",
                                                                 "community_id": A}, OPERATOR)
    assert status == 422 and body["field"] == "data.account_id"
    award = command(OrderEvaluated(order_id=uid("o"), assignee_id=alice, rating=5, passed=True, evaluator_id="cw-1",
                                   community_id=A, category="daily_care", service_minutes=60),
                    source="/services/orders")
    await send(worker.kafka, "orders.events.v1", award)
    await eventually(lambda: balance_of(worker, f"resident:{alice}", 7))


async def test_an_account_id_taken_before_ids_were_derived_refuses_the_award_instead_of_stalling_the_lane(worker):
    """A row left by the old contract (``resident:<alice>`` held by Mallory): Alice's first award
    is refused with ``account_conflict`` and the next award on the same lane is posted."""
    alice, bob = uid("alice"), uid("bob")
    conn = await asyncpg.connect(worker.database_url, server_settings={"search_path": "points"})
    try:
        await conn.execute("""INSERT INTO accounts (account_id, kind, holder_id, community_id, balance, state)
                              VALUES ($1, 'resident', $2, $3, 0, $4::jsonb)""",
                           f"resident:{alice}", uid("mallory"), A,
                           orjson.dumps({"account_id": f"resident:{alice}", "holder_id": "mallory",
                                         "kind": "resident"}).decode())
    finally:
        await conn.close()
    awards = [command(OrderEvaluated(order_id=uid("o"), assignee_id=who, rating=5, passed=True, evaluator_id="cw-1",
                                     community_id=A, category="daily_care", service_minutes=60),
                      source="/services/orders") for who in (alice, bob)]
    await produce(worker.kafka, "orders.events.v1", [("one-lane", encode(e)) for e in awards])
    await eventually(lambda: balance_of(worker, f"resident:{bob}", 7))
    refused = await read_all(worker.kafka, "points.events.v1", min_count=1, timeout=20,
                             predicate=lambda r: r["value"]["causationid"] == awards[0].id)
    assert [r["value"]["data"]["reason"] for r in refused if r["value"]["causationid"] == awards[0].id] == [
        "account_conflict"]


async def test_a_persistent_integrity_error_goes_to_the_dlq_after_bounded_retries_and_the_lane_moves_on(worker):
    """Whatever unique violation a retry cannot fix (here forced by a trigger on one holder's
    account) is retried a bounded number of times (the kit's MAX_CONFLICTS, then isolated), then
    dead-lettered; the next record of the same lane is handled."""
    poison, after = uid("poison"), uid("after")
    conn = await asyncpg.connect(worker.database_url, server_settings={"search_path": "points"})
    try:
        await conn.execute(f"""
            CREATE OR REPLACE FUNCTION test_poison() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF NEW.holder_id LIKE 'poison-%' THEN
                    RAISE EXCEPTION 'duplicate key (test)' USING ERRCODE = 'unique_violation';
                END IF;
                RETURN NEW;
            END $$;
            DROP TRIGGER IF EXISTS test_poison ON accounts;
            CREATE TRIGGER test_poison BEFORE INSERT ON accounts FOR EACH ROW EXECUTE FUNCTION test_poison();""")
        awards = [command(OrderEvaluated(order_id=uid("o"), assignee_id=who, rating=5, passed=True,
                                         evaluator_id="cw-1", community_id=A, category="daily_care",
                                         service_minutes=60), source="/services/orders") for who in (poison, after)]
        await produce(worker.kafka, "orders.events.v1", [("poison-lane", encode(e)) for e in awards])
        await eventually(lambda: balance_of(worker, f"resident:{after}", 7), timeout=60)
        dead = await read_all(worker.kafka, "points.dlq.v1", min_count=1, timeout=30,
                              predicate=lambda r: r["key"] == "poison-lane")
        dead = [d for d in dead if d["key"] == "poison-lane"]
        assert [(d["value"]["id"], d["headers"]["dlq.error.reason"]) for d in dead] == [(awards[0].id, "conflict")]
        assert await balance_of(worker, f"resident:{poison}", None)
    finally:
        await conn.execute("DROP TRIGGER IF EXISTS test_poison ON accounts")
        await conn.close()


async def balance_of(w: Worker, account_id: str, expected: int | None) -> bool:
    status, body = await get(w, f"/v1/accounts/{account_id}", AUDITOR)
    return (body.get("balance") if status == 200 else None) == expected


async def eventually(probe, timeout: float = 30.0):
    deadline = asyncio.get_running_loop().time() + timeout
    while not await probe():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.2)
