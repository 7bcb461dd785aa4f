"""The Kafka principals and ACLs compose creates (kafka-init) agree with the topic registry.

Checked without Docker: docker-compose.yml is parsed, the init script it runs is read, and its
``user``/``acl`` lines are compared with the registry's writers column and with the topics each
service's main module consumes.
"""
from __future__ import annotations

import re
import shlex

import pytest

from schemas.topics import ALL_TOPICS, BY_NAME, BY_SERVICE
from services.kit import kafkaacl

from .support import CLUSTER_OVERRIDE, COMPOSE, ROOT, SERVICES, compose, deep_merge, environment, load_yaml


def raw(cluster: bool) -> dict:
    """The compose document as written (${VAR} not interpolated)."""
    doc = load_yaml(COMPOSE)
    return deep_merge(doc, load_yaml(CLUSTER_OVERRIDE)) if cluster else doc

LAYOUTS = [pytest.param(False, id="single-node"), pytest.param(True, id="kafka-cluster")]
BROKERS = {False: ("kafka",), True: ("kafka", "kafka-2", "kafka-3")}


def init_container(cluster: bool = False) -> dict:
    return compose(cluster)["services"]["kafka-init"]


def init_script_path():
    """The host file behind the script kafka-init runs (its entrypoint, through its bind mount)."""
    svc = init_container()
    entry = svc["entrypoint"]
    assert entry[0] == "sh" and len(entry) == 2, entry
    for mount in svc["volumes"]:
        host, target, *_ = mount.split(":")
        if entry[1].startswith(target.rstrip("/") + "/"):
            return (ROOT / host).resolve() / entry[1][len(target.rstrip("/")) + 1:]
    pytest.fail(f"kafka-init runs {entry[1]}, which no volume provides")


def parsed_script() -> tuple[dict[str, str], set[tuple[str, str, str, str, str]]]:
    """(principal -> password variable, {(principal, operation, resource, pattern, name)})."""
    users: dict[str, str] = {}
    acls: set[tuple[str, str, str, str, str]] = set()
    for line in init_script_path().read_text().splitlines():
        if not line.startswith(("user ", "acl ")):  # the calls, not the helpers' bodies
            continue
        words = shlex.split(line, comments=True)
        if words[0] == "user":
            assert len(words) == 3, line
            users[words[1]] = words[2]
        elif words[0] == "acl":
            assert len(words) == 6, line
            acls.add(tuple(words[1:]))  # type: ignore[arg-type]
    return users, acls


def grants(acls, operation: str, topic: str) -> set[str]:
    """Principals that may do ``operation`` on ``topic`` (All covers every operation; a Write or
    Read implies Describe)."""
    ops = {operation, "All"} | ({"Write", "Read"} if operation == "Describe" else set())
    out = set()
    for principal, op, resource, pattern, name in acls:
        if resource != "topic" or op not in ops:
            continue
        if (pattern == "literal" and name == topic) or (pattern == "prefixed" and topic.startswith(name)):
            out.add(principal)
    return out


def expected_writers(writers: str, service: str) -> set[str]:
    """The registry's writers column read as principals, independently of services.kit.kafkaacl:
    "<svc> service only" is that service; "a and b consoles" is two kinds; plural -> singular."""
    out = set()
    for phrase in (p.strip() for p in writers.split(",")):
        m = re.fullmatch(r"(\w+) service only", phrase)
        if m:
            assert m.group(1) == service
            out.add(f"{service}-service")
            continue
        m = re.fullmatch(r"(\w+) and (\w+) (\w+)", phrase)
        phrases = [f"{m.group(1)} {m.group(3)}", f"{m.group(2)} {m.group(3)}"] if m else [phrase]
        for p in phrases:
            words = p.split()
            words[-1] = words[-1][:-1] if words[-1].endswith("s") else words[-1]
            out.add("-".join(words))
    return out


def consumed_by_main_module(service: str) -> set[str]:
    """The topics services/<svc>/app/main.py consumes (its ``rt.consume(...)`` lines)."""
    text = (ROOT / "services" / service / "app" / "main.py").read_text()
    names = set()
    for listing in re.findall(r"rt\.consume\(\s*\"\w+\",\s*\[([^\]]*)\]", text):
        for ref in re.findall(r"([A-Z]+)\.(intake|events|rejections|dlq)", listing):
            names.add(getattr(BY_SERVICE[ref[0].lower()], ref[1]).name)
    assert names, f"no rt.consume in services/{service}/app/main.py"
    return names


def test_the_init_script_is_generated_from_the_registry():
    assert init_script_path().read_text() == kafkaacl.script(), (
        "deploy/kafka/acl-init.sh is out of date: python -m services.kit.kafkaacl > deploy/kafka/acl-init.sh")


def test_only_the_writers_column_writes_each_topic():
    _, acls = parsed_script()
    for t in ALL_TOPICS:
        assert grants(acls, "Write", t.name) == expected_writers(t.writers, t.service), t.name
    # every events, rejections and dlq topic: its own service alone
    for svc in BY_SERVICE:
        for kind in ("events", "rejections", "dlq"):
            assert grants(acls, "Write", f"{svc}.{kind}.v1") == {f"{svc}-service"}


def test_apps_write_only_the_intake_topics_they_are_listed_for_and_read_nothing():
    users, acls = parsed_script()
    apps = set(users) - {f"{s}-service" for s in BY_SERVICE} - {"provisioner", "monitor"}
    assert apps == set(kafkaacl.app_principals())
    for app in apps:
        mine = {a for a in acls if a[0] == app}
        assert mine, f"{app} may do nothing"
        for _, op, resource, pattern, name in mine:
            assert (op, resource, pattern) == ("Write", "topic", "literal"), (app, op, resource, pattern, name)
            assert BY_NAME[name].kind == "intake" and app in expected_writers(BY_NAME[name].writers, BY_NAME[name].service)


def test_only_the_provisioner_creates_topics():
    users, acls = parsed_script()
    for t in ALL_TOPICS:
        assert grants(acls, "Create", t.name) == {"provisioner"}, t.name
    assert not [a for a in acls if a[2] == "cluster" and a[1] in ("Create", "All", "Alter", "AlterConfigs")]
    # a prefixed grant never reaches a contract topic, except the monitor's Describe
    for principal, op, resource, pattern, name in acls:
        if resource == "topic" and pattern == "prefixed" and principal != "monitor":
            assert not [t for t in BY_NAME if t.startswith(name)], (principal, op, name)


def test_services_read_what_they_consume_under_their_own_groups_and_what_they_write():
    _, acls = parsed_script()
    for svc in SERVICES:
        consumed = consumed_by_main_module(svc)
        assert {t.name for t in kafkaacl.CONSUMES[svc]} == consumed
        readable = {t.name for t in ALL_TOPICS if f"{svc}-service" in grants(acls, "Read", t.name)}
        written = {t.name for t in ALL_TOPICS if f"{svc}-service" in grants(acls, "Write", t.name)}
        assert written == {f"{svc}.events.v1", f"{svc}.rejections.v1", f"{svc}.dlq.v1"}, svc
        # and reads back what it writes: its relay's check, its rebuild's handling times
        assert readable == consumed | written, svc
        # faust's group is <svc>-service, the kit's consumers' <svc>-service-<name>: one prefix
        groups = {(pat, n) for p, op, r, pat, n in acls if r == "group" and p == f"{svc}-service"}
        assert groups == {("prefixed", f"{svc}-service")}, svc


@pytest.mark.parametrize("cluster", LAYOUTS)
def test_every_principal_gets_its_password_from_the_environment(cluster):
    users, _ = parsed_script()
    services = raw(cluster)["services"]
    env = environment(services["kafka-init"])
    assert env["KAFKA_ADMIN_PASSWORD"] == "${KAFKA_ADMIN_PASSWORD:?set KAFKA_ADMIN_PASSWORD in .env}"
    for principal, var in users.items():
        assert var == kafkaacl.password_variable(principal)
        assert re.fullmatch(r"\$\{%s:\?[^}]+\}" % var, env[var]), f"kafka-init: {var} must come from .env"
    # each container connects as its own principal, with the password kafka-init gave it
    who = {svc: f"{svc}-service" for svc in SERVICES} | {"provision-topics": "provisioner"}
    for name, principal in who.items():
        e = environment(services[name])
        assert e["KAFKA_SECURITY_PROTOCOL"] == "SASL_PLAINTEXT" and e["KAFKA_SASL_MECHANISM"] == "SCRAM-SHA-512", name
        assert e["KAFKA_SASL_USERNAME"] == principal, name
        assert e["KAFKA_SASL_PASSWORD"] == env[users[principal]], name
    exporter = services["kafka-exporter"]["command"]
    assert "--sasl.username=monitor" in exporter and "--sasl.mechanism=scram-sha512" in exporter
    assert f"--sasl.password={env[users['monitor']]}" in exporter


@pytest.mark.parametrize("cluster", LAYOUTS)
def test_every_broker_authenticates_and_authorises(cluster):
    services = raw(cluster)["services"]
    for b in BROKERS[cluster]:
        env = environment(services[b])
        assert env["KAFKA_AUTHORIZER_CLASS_NAME"] == "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
        assert env["KAFKA_ALLOW_EVERYONE_IF_NO_ACL_FOUND"] == "false"
        assert env["KAFKA_SUPER_USERS"] == "User:admin"
        assert env["KAFKA_LISTENERS"] == "SASL://:9092,CONTROLLER://:9093"
        assert env["KAFKA_ADVERTISED_LISTENERS"] == f"SASL://{b}:9092"
        protocols = dict(p.split(":") for p in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(","))
        assert set(protocols.values()) == {"SASL_PLAINTEXT"}, "no listener without authentication"
        assert "SCRAM-SHA-512" in env["KAFKA_SASL_ENABLED_MECHANISMS"].split(",")
        for key in ("KAFKA_LISTENER_NAME_SASL_PLAIN_SASL_JAAS_CONFIG", "KAFKA_LISTENER_NAME_CONTROLLER_PLAIN_SASL_JAAS_CONFIG"):
            jaas = env[key]
            assert 'password="${KAFKA_ADMIN_PASSWORD:?' in jaas and 'user_admin="${KAFKA_ADMIN_PASSWORD:?' in jaas
            assert len(re.findall(r'user_\w+=', jaas)) == 1, "admin is the one PLAIN identity"
        assert services[b]["healthcheck"]["test"] == ["CMD", "sh", "/deploy/kafka/healthcheck.sh"]
        assert "./deploy/kafka:/deploy/kafka:ro" in services[b]["volumes"]
    if cluster:  # the three nodes are configured alike
        keys = [k for k in environment(services["kafka"]) if "SASL" in k or "AUTHORIZER" in k or "SUPER" in k
                or "ALLOW_EVERYONE" in k]
        for b in BROKERS[cluster][1:]:
            assert {k: environment(services[b])[k] for k in keys} == {k: environment(services["kafka"])[k] for k in keys}
