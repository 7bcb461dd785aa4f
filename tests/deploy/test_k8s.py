"""deploy/k8s: probes, resources, secrets, settings keys and scaling by Kafka partitions."""
from __future__ import annotations

import os

import pytest
import yaml

from .support import DEPLOY, PORTS, SERVICES, accepted_env_keys, settings_class

K8S = DEPLOY / "k8s"


def docs(name: str) -> list[dict]:
    return [d for d in yaml.safe_load_all((K8S / name).read_text()) if d]


def by_kind(svc: str) -> dict[str, dict]:
    return {d["kind"]: d for d in docs(f"{svc}.yaml")}


def config() -> dict[str, str]:
    return docs("config.yaml")[0]["data"]


def test_kustomization_lists_every_manifest_and_pins_the_image():
    k = docs("kustomization.yaml")[0]
    assert sorted(k["resources"]) == sorted(["namespace.yaml", "config.yaml", "db-roles.yaml", *(f"{s}.yaml" for s in SERVICES)])
    [image] = k["images"]
    assert image["name"] == "grassroots" and image["newTag"] not in ("", "latest")


@pytest.mark.parametrize("svc", SERVICES)
def test_each_service_has_liveness_on_healthz_readiness_on_readyz_and_resources(svc):
    dep = by_kind(svc)["Deployment"]
    pod = dep["spec"]["template"]["spec"]
    [c] = pod["containers"]
    assert c["command"][:4] == ["python", "-m", f"services.{svc}.app", "worker"]
    assert c["ports"] == [{"name": "http", "containerPort": PORTS[svc]}]
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert c["startupProbe"]["httpGet"]["path"] == "/healthz"
    for box in (c, *pod["initContainers"]):
        res = box["resources"]
        assert res["requests"]["cpu"] and res["requests"]["memory"] and res["limits"]["memory"], box["name"]
        assert box["image"] == "grassroots:0.1.0"
        assert box["securityContext"]["allowPrivilegeEscalation"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["initContainers"][0]["command"] == ["python", "-m", "services.kit.provision"]
    ann = dep["spec"]["template"]["metadata"]["annotations"]
    assert ann["prometheus.io/port"] == str(PORTS[svc]) and ann["prometheus.io/path"] == "/metrics"
    assert by_kind(svc)["Service"]["spec"]["ports"][0]["port"] == PORTS[svc]


@pytest.mark.parametrize("svc", SERVICES)
def test_autoscaling_follows_consumer_lag_and_never_exceeds_the_partitions(svc):
    kinds = by_kind(svc)
    hpa = kinds["HorizontalPodAutoscaler"]["spec"]
    partitions = int(config()["TOPIC_PARTITIONS"])
    assert hpa["scaleTargetRef"]["name"] == svc
    assert 1 <= hpa["minReplicas"] <= hpa["maxReplicas"] <= partitions
    assert kinds["Deployment"]["spec"]["replicas"] == hpa["minReplicas"]
    [lag] = [m for m in hpa["metrics"] if m["type"] == "External"]
    assert lag["external"]["metric"] == {"name": "grassroots_consumer_lag", "selector": {"matchLabels": {"service": svc}}}
    adapter = yaml.safe_load((K8S / "prometheus-adapter" / "values.yaml").read_text())
    assert [r["name"]["as"] for r in adapter["rules"]["external"]] == ["grassroots_consumer_lag"]
    assert "PodDisruptionBudget" in kinds


@pytest.mark.parametrize("svc", SERVICES)
def test_every_environment_key_in_the_manifests_is_a_setting_and_secrets_come_from_the_secret(svc, monkeypatch,
                                                                                               tmp_path):
    cls, prefix, _ = settings_class(svc)
    keys = accepted_env_keys(cls)
    [c] = by_kind(svc)["Deployment"]["spec"]["template"]["spec"]["containers"]
    env = dict(config())
    for item in c["env"]:
        if "valueFrom" in item:
            ref = item["valueFrom"]["secretKeyRef"]
            assert ref["name"] == f"grassroots-db-{svc}" and ref["key"] == item["name"]
            env[item["name"]] = "postgresql://u:p@h/db"
        else:
            secretish = item["name"].replace("PASSWORD_FILE", "")  # a path to a mounted Secret, not the secret
            assert not any(w in secretish for w in ("PASSWORD", "TOKEN", "DATABASE_URL")), f"{item['name']} in clear"
            env[item["name"]] = item["value"]
    unknown = sorted(k for k in env if k.upper() not in keys)
    assert not unknown, f"{svc}: {unknown} are not settings of {cls.__name__}"
    assert {"DATABASE_URL", "MIGRATION_DATABASE_URL"} <= {i["name"] for i in c["env"] if "valueFrom" in i}
    assert env["JWKS"].startswith("https://") and env["JWT_ISSUER"], "every API call needs the identity provider's keys"
    for k in list(os.environ):
        if k.upper() in keys or k.upper().startswith(prefix):
            monkeypatch.delenv(k)
    for mounted in ("KAFKA_SSL_CAFILE", "KAFKA_SASL_PASSWORD_FILE"):  # files of mounted Secrets, here stand-ins
        (tmp_path / mounted).write_text("x\n")
        env[mounted] = str(tmp_path / mounted)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    s = cls()
    assert s.kafka_security_protocol == "SASL_SSL" and s.kafka_sasl_username == f"{svc}-service"
    assert s.http_port == PORTS[svc] and s.http_host == "0.0.0.0" and s.topic_replication_factor == 3


def test_the_kubernetes_scrape_job_gives_up_the_service_label_the_alerts_key_on():
    # (Debian's promtool is built without Kubernetes discovery, so this file is checked by shape.)
    [job] = yaml.safe_load((K8S / "prometheus-scrape.yaml").read_text())["scrape_configs"]
    assert job["job_name"] == "grassroots-services" and job["honor_labels"] is True
    targets = {r.get("target_label") for r in job["relabel_configs"]}
    assert {"service", "instance", "__address__"} <= targets


def test_the_database_roles_job_alone_holds_the_administrators_secret():
    """PostgreSQL least privilege: the db-roles Job bootstraps the roles as the administrator;
    each service reads only its own Secret (its runtime and migration URLs)."""
    [job] = docs("db-roles.yaml")
    assert job["kind"] == "Job"
    pod = job["spec"]["template"]["spec"]
    [c] = pod["containers"]
    assert c["command"] == ["python", "-m", "services.kit.dbroles"]
    assert c["envFrom"] == [{"secretRef": {"name": "grassroots-db-admin"}}]
    assert c["securityContext"]["allowPrivilegeEscalation"] is False and pod["securityContext"]["runAsNonRoot"] is True
    for svc in SERVICES:
        text = (K8S / f"{svc}.yaml").read_text()
        assert "grassroots-db-admin" not in text and "grassroots-secrets" not in text
        others = [o for o in SERVICES if o != svc]
        assert not any(f"grassroots-db-{o}" in text for o in others), f"{svc} reads another service's database secret"


@pytest.mark.parametrize("svc", SERVICES)
def test_each_service_talks_to_kafka_as_its_own_principal_over_tls(svc):
    """The principal the ACLs are written for (services.kit.kafkaacl), its password from its own
    Secret as a file, the cluster's CA from the CA Secret; never a password in the environment."""
    from services.kit.kafkaacl import principals, service_principal

    spec = by_kind(svc)["Deployment"]["spec"]["template"]["spec"]
    [c] = spec["containers"]
    env = {i["name"]: i for i in c["env"]}
    assert env["KAFKA_SASL_USERNAME"]["value"] == service_principal(svc) and service_principal(svc) in principals()
    assert "KAFKA_SASL_PASSWORD" not in env
    mounts = {m["name"]: m["mountPath"] for m in c["volumeMounts"]}
    volumes = {v["name"]: v.get("secret") for v in spec["volumes"]}
    assert volumes["kafka-user"]["secretName"] == service_principal(svc)
    assert env["KAFKA_SASL_PASSWORD_FILE"]["value"] == mounts["kafka-user"] + "/password"
    assert volumes["kafka-ca"]["secretName"] == "grassroots-cluster-ca-cert"
    assert config()["KAFKA_SSL_CAFILE"] == mounts["kafka-ca"] + "/ca.crt"
    assert config()["KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL" and config()["KAFKA_SASL_MECHANISM"] == "SCRAM-SHA-512"
