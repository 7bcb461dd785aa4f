"""The kit's Kafka security settings against the embedded broker (Tansu), as far as Tansu goes.

What Tansu 0.6 (the binary the kit starts) does, found by these tests:
- ``--authentication`` makes every client authenticate with SASL before anything else; it offers
  SCRAM-SHA-256 and SCRAM-SHA-512, not PLAIN. A client with the kit's default settings
  (PLAINTEXT) gets no metadata; a SCRAM client whose principal the broker does not know is
  refused in the SCRAM exchange.
- The credentials live in the storage engine; this build has only the memory one, and a broker
  with ``--authentication`` refuses ``tansu user create`` itself (that tool does not
  authenticate). So no client can ever log in to an embedded broker: a successful SASL login is
  proven against Apache Kafka only (docker-compose.yml).
- Without ``--authentication`` Tansu offers no SASL mechanism: a SASL client is refused, and
  every client may do anything.
- It lists CreateAcls and DescribeAcls among its APIs, but drops the connection on a CreateAcls
  request, and a write an ACL would deny goes through: nothing is authorised beyond
  authentication.
"""
from __future__ import annotations

import asyncio

import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.client import AIOKafkaClient
from aiokafka.errors import KafkaConnectionError, UnsupportedSaslMechanismError
from aiokafka.protocol.admin import ApiVersionRequest, CreateAclsRequest
from pydantic import SecretStr

from services.kit.infra import EmbeddedKafka
from services.kit.kafkasec import KafkaSecurity, client_kwargs
from services.kit.outbox import producer_for



@pytest.fixture(scope="module")
def tansu_authenticating(tmp_path_factory):
    broker = EmbeddedKafka(workdir=tmp_path_factory.mktemp("tansu-auth"), authentication=True).start()
    try:
        yield broker.bootstrap
    finally:
        broker.stop()


def scram(mechanism: str = "SCRAM-SHA-512", user: str = "grid-service", password: str = "not-known-here") -> KafkaSecurity:
    return KafkaSecurity(protocol="SASL_PLAINTEXT", mechanism=mechanism, username=user, password=SecretStr(password))


async def start_producer(bootstrap: str, security: KafkaSecurity | None):
    """Start the kit's producer (outbox.producer_for) and send one record; the error, or None."""
    p = producer_for(bootstrap, "security-test", security)
    p.client._request_timeout_ms = 5000
    try:
        await asyncio.wait_for(p.start(), 20)
        await asyncio.wait_for(p.send_and_wait("grid.intake.v1", b"{}"), 20)
        return None
    except Exception as e:  # noqa: BLE001 (the kind of refusal is what is checked)
        return e
    finally:
        await p.stop()


def scram_exchange_in(e: BaseException) -> bool:
    tb = e.__traceback__
    frames = []
    while tb is not None:
        frames.append(tb.tb_frame.f_code.co_name)
        tb = tb.tb_next
    return any("scram" in f.lower() or "sasl" in f.lower() for f in frames)


async def test_an_authenticating_tansu_refuses_a_client_without_sasl(tansu_authenticating):
    e = await start_producer(tansu_authenticating, None)
    assert isinstance(e, KafkaConnectionError), e
    c = AIOKafkaConsumer(bootstrap_servers=tansu_authenticating, request_timeout_ms=5000, **client_kwargs(None))
    with pytest.raises(KafkaConnectionError):
        await asyncio.wait_for(c.start(), 20)
    await c.stop()


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-512", "SCRAM-SHA-256"])
async def test_the_kit_speaks_scram_to_tansu_and_an_unknown_principal_is_refused(tansu_authenticating, mechanism):
    e = await start_producer(tansu_authenticating, scram(mechanism))
    assert e is not None, "an unknown principal was let in"
    assert not isinstance(e, (UnsupportedSaslMechanismError, KafkaConnectionError)), e
    assert scram_exchange_in(e), f"refused before the SCRAM exchange: {e!r}"


async def test_tansu_offers_no_plain_mechanism(tansu_authenticating):
    e = await start_producer(tansu_authenticating, scram("PLAIN"))
    assert e is not None
    assert not scram_exchange_in(e) or isinstance(e, (UnsupportedSaslMechanismError, KafkaConnectionError)), e


async def test_an_open_tansu_offers_no_sasl_and_does_not_enforce_acls(kafka):
    e = await start_producer(kafka, scram())
    assert isinstance(e, (UnsupportedSaslMechanismError, KafkaConnectionError)), e
    assert await start_producer(kafka, None) is None  # PLAINTEXT: anyone may write
    client = AIOKafkaClient(bootstrap_servers=kafka, request_timeout_ms=5000)
    await client.bootstrap()
    try:
        node = client.get_random_node()
        versions = await client.send(node, ApiVersionRequest())
        keys = {entry[0] for entry in versions.api_versions}
        assert {17, 36} <= keys  # SaslHandshake and SaslAuthenticate
        # deny everyone (User:ANONYMOUS, any host) writing the topic: Tansu lists CreateAcls
        # among its APIs, but drops the connection on the request
        try:
            answer = await client.send(node, CreateAclsRequest(
                resource_type=2, resource_name="grid.intake.v1", resource_pattern_type_filter=3,
                principal="User:ANONYMOUS", host="*", operation=4, permission_type=2))
        except KafkaConnectionError:
            answer = None
    finally:
        await client.close()
    # whatever became of the ACL, the write still goes through: nothing is authorised
    assert await start_producer(kafka, None) is None, f"Tansu now enforces ACLs (CreateAcls answered {answer})"
