"""Kafka principals and ACLs, derived from the topic registry (schemas/topics.py).

The registry's ``writers`` column says who may write each topic; this module turns it into one
SCRAM principal per service, per kind of app and for the provisioner, and into the ACLs a
cluster with ``allow.everyone.if.no.acl.found=false`` needs:

- a service writes its own ``events``, ``rejections`` and ``dlq`` topics and nothing else of
  the contract, reads the topics it consumes (:data:`CONSUMES`) under its own consumer groups
  (``<svc>-service...``), reads back the topics it writes (its relay checks what a round that
  did not finish left there; its rebuild reads when each message was handled), and keeps
  faust's private topics (``<svc>-service-...``);
- an app writes only the intake topics whose writers name it, and reads nothing;
- only the provisioner creates (and describes) the contract topics;
- the monitor (kafka_exporter) describes topics and groups, and reads no record.

``python -m services.kit.kafkaacl > deploy/kafka/acl-init.sh`` writes the init script compose
runs (the ``kafka-init`` container); a test checks the committed script is this module's
output, so compose and the registry cannot drift.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from schemas.topics import ALL_TOPICS, ASSESSMENT, BY_SERVICE, GRID, ORDERS, PARTY, POINTS, Topic

ADMIN = "admin"
"""The super user: the brokers' own identity (PLAIN, defined in the broker's JAAS settings) and
the identity the init script creates the others with."""
PROVISIONER = "provisioner"
MONITOR = "monitor"

APP_PHRASES: dict[str, tuple[str, ...]] = {
    "grid apps": ("grid-app",),
    "other systems": ("other-system",),
    "resident apps": ("resident-app",),
    "community consoles": ("community-console",),
    "merchants": ("merchant",),
    "community and street consoles": ("community-console", "street-console"),
    "party and community consoles": ("party-console", "community-console"),
}
"""Each phrase of the registry's writers column that names apps -> the app principals. A new
phrase in the registry fails :func:`writers_of` until it is given principals here."""

CONSUMES: dict[str, tuple[Topic, ...]] = {
    "grid": (GRID.intake, ORDERS.events, POINTS.events, ASSESSMENT.events, PARTY.events),
    "orders": (ORDERS.intake, GRID.events, POINTS.events, ASSESSMENT.events, PARTY.events),
    "points": (POINTS.intake, ORDERS.events, GRID.events, ASSESSMENT.events, PARTY.events),
    "assessment": (ASSESSMENT.intake, GRID.events, ORDERS.events, POINTS.events, PARTY.events),
    # orders' events for the members' service log (双重管理), the others' for person.erased.v1
    "party": (PARTY.intake, ORDERS.events, GRID.events, POINTS.events, ASSESSMENT.events),
}
"""The topics each service's consumers read (the ``rt.consume`` lines of services/<svc>/app/main.py;
a test compares them)."""


def service_principal(service: str) -> str:
    return f"{service}-service"


def writers_of(topic: Topic) -> tuple[str, ...]:
    """The principals that may write ``topic``, from its writers column."""
    out: list[str] = []
    for phrase in (p.strip() for p in topic.writers.split(",")):
        m = re.fullmatch(r"([a-z]+) service only", phrase)
        if m:
            if m.group(1) != topic.service:
                raise ValueError(f"{topic.name}: written by {phrase!r}, not its own service")
            out.append(service_principal(m.group(1)))
        elif phrase in APP_PHRASES:
            out.extend(APP_PHRASES[phrase])
        else:
            raise ValueError(f"{topic.name}: writers {phrase!r} names no known principal (add it to APP_PHRASES)")
    return tuple(dict.fromkeys(out))


def app_principals() -> tuple[str, ...]:
    return tuple(dict.fromkeys(p for ps in APP_PHRASES.values() for p in ps))


def principals() -> tuple[str, ...]:
    """Every SCRAM principal the init script creates (not the admin, who is the brokers' own)."""
    return (*(service_principal(s) for s in BY_SERVICE), *app_principals(), PROVISIONER, MONITOR)


def password_variable(principal: str) -> str:
    """The environment variable holding a principal's password in the init container."""
    return "KAFKA_PASSWORD_" + re.sub(r"[^A-Z0-9]", "_", principal.upper())


@dataclass(frozen=True, order=True)
class Acl:
    principal: str
    operation: str  # Read, Write, Create, Describe, All
    resource: str  # topic, group, cluster
    pattern: str  # literal, prefixed
    name: str  # "kafka-cluster" for the cluster

    def line(self) -> str:
        return f"acl {self.principal} {self.operation} {self.resource} {self.pattern} {self.name}"


def acls() -> list[Acl]:
    out: list[Acl] = []
    for t in ALL_TOPICS:
        out += [Acl(p, "Write", "topic", "literal", t.name) for p in writers_of(t)]
        # a service reads back what it writes (no group: the relay's check, the rebuild)
        out += [Acl(p, "Read", "topic", "literal", t.name) for p in writers_of(t) if p == service_principal(t.service)]
        out += [Acl(PROVISIONER, op, "topic", "literal", t.name) for op in ("Create", "Describe")]
    for svc, topics in CONSUMES.items():
        p = service_principal(svc)
        out += [Acl(p, "Read", "topic", "literal", t.name) for t in topics]
        out.append(Acl(p, "Read", "group", "prefixed", f"{p}"))  # <svc>-service (faust), <svc>-service-<consumer>
        # faust's own topics (e.g. <svc>-service-__assignor-__leader), never a contract topic's name
        out.append(Acl(p, "All", "topic", "prefixed", f"{p}-"))
    for svc in BY_SERVICE:
        out.append(Acl(MONITOR, "Describe", "topic", "prefixed", f"{svc}."))
        out.append(Acl(MONITOR, "Describe", "group", "prefixed", service_principal(svc)))
    out.append(Acl(MONITOR, "Describe", "cluster", "literal", "kafka-cluster"))
    return sorted(set(out))


HEADER = """\
#!/bin/sh
# Kafka principals and ACLs of the district: generated from schemas/topics.py by
#   python -m services.kit.kafkaacl > deploy/kafka/acl-init.sh
# Do not edit by hand (tests/deploy/test_kafka_acls.py checks it is up to date).
#
# Run by the kafka-init container (docker-compose.yml) as the super user `admin`, against a
# broker with StandardAuthorizer and allow.everyone.if.no.acl.found=false. Idempotent.
# Passwords come from the environment (KAFKA_PASSWORD_<PRINCIPAL>, from .env), never from this file.
set -eu
BOOTSTRAP="${KAFKA_BOOTSTRAP_SERVERS:-kafka:9092}"
BIN=/opt/kafka/bin
CONFIG=$(mktemp)
trap 'rm -f "$CONFIG"' EXIT
umask 077
cat > "$CONFIG" <<EOF
security.protocol=SASL_PLAINTEXT
sasl.mechanism=PLAIN
sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" password="${KAFKA_ADMIN_PASSWORD:?KAFKA_ADMIN_PASSWORD is not set}";
EOF

# user NAME PASSWORD_VARIABLE: create or update NAME's SCRAM-SHA-512 credential
user() {
  pw=$(printenv "$2") || { echo "$2 is not set (the password of $1)" >&2; exit 1; }
  [ -n "$pw" ] || { echo "$2 is empty (the password of $1)" >&2; exit 1; }
  "$BIN/kafka-configs.sh" --bootstrap-server "$BOOTSTRAP" --command-config "$CONFIG" --alter \\
    --entity-type users --entity-name "$1" --add-config "SCRAM-SHA-512=[iterations=8192,password=$pw]" >/dev/null
  echo "principal $1"
}

# acl PRINCIPAL OPERATION topic|group|cluster literal|prefixed NAME: allow it (adding an ACL twice is a no-op)
acl() {
  case "$3" in
    topic) res="--topic $5" ;;
    group) res="--group $5" ;;
    cluster) res="--cluster" ;;
  esac
  # shellcheck disable=SC2086
  "$BIN/kafka-acls.sh" --bootstrap-server "$BOOTSTRAP" --command-config "$CONFIG" --add --force \\
    --allow-principal "User:$1" --operation "$2" $res --resource-pattern-type "$4" >/dev/null
  echo "acl $1 $2 $3 $4 $5"
}
"""


def script() -> str:
    lines = [HEADER, "# -- principals (SCRAM-SHA-512)"]
    lines += [f"user {p} {password_variable(p)}" for p in principals()]
    lines.append("")
    lines.append("# -- ACLs")
    lines += [a.line() for a in acls()]
    lines.append("")
    return "\n".join(lines)


def main() -> None:
    import sys

    sys.stdout.write(script())


if __name__ == "__main__":
    main()
