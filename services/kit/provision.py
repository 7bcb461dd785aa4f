"""Topic provisioning: every contract topic is created explicitly from the registry.

Never rely on broker auto-creation (Tansu auto-creates unknown topics with 4 partitions on a
metadata request). Run at service start-up, or alone: ``python -m services.kit.provision``.
"""
from __future__ import annotations

import argparse
import asyncio
import logging
from typing import Iterable

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

from schemas.topics import ALL_TOPICS, Topic

from .kafkasec import KafkaSecurity, client_kwargs

log = logging.getLogger("kit.provision")


INTAKE_CONFIGS = {"message.timestamp.type": "LogAppendTime"}
"""An intake topic's records carry the broker's time: the consumer checks the sender's token as of
a record's timestamp, and a timestamp the producer sets (CreateTime) could be backdated into an
expired token's lifetime. Kafka honours this setting; Tansu (the embedded broker) accepts and
stores it but keeps the producer's timestamp (CreateTime), so the consumer also bounds the age of
a CreateTime timestamp (``INTAKE_MAX_RECORD_AGE_SECONDS``, :meth:`BatchConsumer._sender`)."""


def topic_configs(topic: Topic, *, dlq_retention_days: float = 0) -> dict[str, str]:
    """The topic-level settings a topic is created with. A dead-letter topic holds raw records,
    personal data included: it keeps them ``dlq_retention_days`` (``DLQ_RETENTION_DAYS``; 0: the
    broker's default)."""
    if topic.kind == "intake":
        return dict(INTAKE_CONFIGS)
    if topic.kind == "dlq" and dlq_retention_days > 0:
        return {"retention.ms": str(int(dlq_retention_days * 86_400_000))}
    return {}


async def provision(bootstrap: str, *, partitions: int = 12, replication_factor: int = 1,
                    topics: Iterable[Topic] = ALL_TOPICS, timeout: float = 60.0,
                    security: KafkaSecurity | None = None, dlq_retention_days: float = 0) -> list[str]:
    """Create the topics that do not exist yet; return the names created. On a cluster with ACLs
    only the provisioner's principal may create topics: ``security`` is whose credentials are used."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="provisioner", request_timeout_ms=15000,
                                **client_kwargs(security))
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        try:
            await admin.start()
            break
        except KafkaError as e:
            if asyncio.get_running_loop().time() > deadline:
                raise
            log.warning("broker not reachable yet (%r)", e)
            await asyncio.sleep(1.0)
    try:
        existing = set(await admin.list_topics())
        wanted = [t for t in topics if t.name not in existing]
        if not wanted:
            return []
        new = [NewTopic(t.name, t.partitions or partitions, replication_factor, topic_configs=topic_configs(t, dlq_retention_days=dlq_retention_days))
               for t in wanted]
        try:
            await admin.create_topics(new)
        except TopicAlreadyExistsError:
            pass  # another worker created them meanwhile
        log.info("created topics %s", [t.name for t in wanted])
        return [t.name for t in wanted]
    finally:
        await admin.close()


def main() -> None:
    from .settings import ServiceSettings

    p = argparse.ArgumentParser(description="Create every contract topic (idempotent).")
    p.add_argument("--bootstrap", default=None)
    args = p.parse_args()
    s = ServiceSettings()
    logging.basicConfig(level="INFO")
    created = asyncio.run(provision(args.bootstrap or s.kafka_bootstrap_servers, partitions=s.topic_partitions,
                                    replication_factor=s.topic_replication_factor, security=s.kafka_security(),
                                    dlq_retention_days=s.dlq_retention_days))
    print(f"created {len(created)} topics: {', '.join(created) or '(all existed)'}")


if __name__ == "__main__":
    main()
