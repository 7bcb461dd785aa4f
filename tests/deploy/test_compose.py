"""docker-compose.yml (and the three-node Kafka override) checked without Docker."""
from __future__ import annotations

import re
import subprocess

import pytest

from services.kit.identity import TokenVerifier

from .support import (CLUSTER_OVERRIDE, COMPOSE, DEPLOY, ENV_EXAMPLE, PORTS, ROOT, SERVICES, accepted_env_keys, compose,
                      environment, env_example, interpolate, load_yaml, service_module, settings_class, variables)

LAYOUTS = [pytest.param(False, id="single-node"), pytest.param(True, id="kafka-cluster")]
ONE_SHOT = {"provision-topics", "kafka-init", "db-roles"}


def containers(cluster: bool) -> dict[str, dict]:
    return compose(cluster)["services"]


def app_containers(cluster: bool) -> dict[str, tuple[dict, str | None]]:
    """Containers running our code -> (definition, service name or None for the kit's provisioner);
    the database roles job (no service settings) is checked on its own."""
    out = {}
    for name, svc in containers(cluster).items():
        mod = service_module(svc)
        if mod is None or mod == "services.kit.dbroles":
            continue
        m = re.fullmatch(r"services\.(\w+)\.app", mod)
        if m:
            out[name] = (svc, m.group(1))
        elif mod == "services.kit.provision":
            out[name] = (svc, None)
        else:
            pytest.fail(f"{name} runs an unexpected module {mod}")
    return out


def test_the_four_services_and_the_infrastructure_are_all_there():
    names = set(containers(False))
    assert set(SERVICES) <= names
    assert {"kafka", "postgres", "provision-topics", "db-roles", "kafka-exporter", "prometheus", "grafana"} <= names
    assert {"kafka-2", "kafka-3"} <= set(containers(True))


@pytest.mark.parametrize("cluster", LAYOUTS)
def test_every_image_is_pinned_to_a_version(cluster):
    for name, svc in containers(cluster).items():
        image = svc.get("image")
        assert image, f"{name} has no image (a built service still needs a versioned image name)"
        ref, _, digest = image.partition("@")
        last = ref.rsplit("/", 1)[-1]
        assert ":" in last or digest, f"{name}: image {image!r} has no tag"
        tag = last.split(":", 1)[1] if ":" in last else ""
        assert digest or (tag and tag != "latest" and re.search(r"\d", tag)), f"{name}: image {image!r} is not pinned to a version"


def test_the_dockerfile_base_image_is_pinned_and_every_service_builds_from_it():
    dockerfile = DEPLOY / "docker" / "Dockerfile"
    text = dockerfile.read_text()
    base = re.search(r"^ARG PYTHON_IMAGE=(\S+)$", text, re.M)
    assert base and re.fullmatch(r"python:\d+\.\d+\.\d+-slim-\w+", base.group(1)), "pin the Python base image"
    for line in re.findall(r"^FROM\s+(\S+)", text, re.M):
        assert line == "${PYTHON_IMAGE}", f"unpinned FROM {line}"
    builds = {name: svc["build"] for name, (svc, _) in app_containers(False).items()}
    assert set(builds) == set(SERVICES) | {"provision-topics"}
    assert containers(False)["db-roles"]["build"] == {"context": ".", "dockerfile": "deploy/docker/Dockerfile"}
    for name, build in builds.items():
        assert build == {"context": ".", "dockerfile": "deploy/docker/Dockerfile"}, name
    # the build context is the repository root; the Dockerfile-specific ignore file keeps it small
    assert (DEPLOY / "docker" / "Dockerfile.dockerignore").exists()


@pytest.mark.parametrize("cluster", LAYOUTS)
def test_each_service_container_runs_its_own_worker_module_on_its_port(cluster):
    apps = app_containers(cluster)
    for svc in SERVICES:
        definition, ran = apps[svc]
        assert ran == svc
        assert definition["command"][3] == "worker"
        env = environment(definition)
        prefix = SERVICES[svc]
        assert env[f"{prefix}HTTP_PORT"] == str(PORTS[svc])
        assert env[f"{prefix}HTTP_HOST"] == "0.0.0.0", "bind all interfaces inside the container"
        assert definition["ports"] == [f"{PORTS[svc]}:{PORTS[svc]}"]
        assert f"127.0.0.1:{PORTS[svc]}/readyz" in " ".join(definition["healthcheck"]["test"])


@pytest.mark.parametrize("cluster", LAYOUTS)
def test_every_environment_key_of_our_containers_is_a_setting_the_service_reads(cluster, monkeypatch):
    """Map each key to a settings field (prefixed or shared); an unknown key is a typo that the
    service would silently ignore (extra="ignore"), so it fails here. The values must validate."""
    for name, (definition, svc) in app_containers(cluster).items():
        cls, prefix, own = settings_class(svc)
        keys = accepted_env_keys(cls)
        env = environment(definition)
        unknown = sorted(k for k in env if k.upper() not in keys)
        assert not unknown, f"{name}: {unknown} are not settings of {cls.__name__} (accepted: {sorted(keys)})"
        for k in list(__import__("os").environ):
            if k.upper() in keys or k.upper().startswith(prefix):
                monkeypatch.delenv(k)
        for k, v in env.items():
            monkeypatch.setenv(k, v)
        settings = cls()
        if svc is not None:
            assert settings.jwks, f"{name}: every API call needs the identity provider's keys"
            TokenVerifier.from_settings(settings)  # the values make a verifier (nothing is fetched here)
            assert settings.http_port == PORTS[svc]
            assert settings.provision_topics is False, "topics come from the provision-topics job"
        assert settings.topic_replication_factor == (3 if cluster else 1)


def test_the_settings_models_of_every_service_exist():
    missing = [svc for svc in SERVICES if not settings_class(svc)[2]]
    assert not missing, f"services/<svc>/app/settings.py missing for {missing}"


@pytest.mark.parametrize("cluster", LAYOUTS)
def test_every_long_running_container_has_a_healthcheck(cluster):
    for name, svc in containers(cluster).items():
        if name in ONE_SHOT:
            assert svc.get("restart") == "no", f"{name} is a one-shot job"
            continue
        hc = svc.get("healthcheck")
        assert hc and hc.get("test") and hc["test"][0] in ("CMD", "CMD-SHELL"), f"{name} has no healthcheck"
        assert hc.get("interval") and hc.get("retries"), name


@pytest.mark.parametrize("cluster", LAYOUTS)
def test_depends_on_waits_for_healthy_infrastructure_and_the_completed_topic_job(cluster):
    services = containers(cluster)
    brokers = {"kafka", "kafka-2", "kafka-3"} if cluster else {"kafka"}
    for name, svc in services.items():
        deps = svc.get("depends_on", {})
        assert isinstance(deps, dict), f"{name}: depends_on must use conditions"
        for dep, spec in deps.items():
            assert dep in services, f"{name} depends on unknown {dep}"
            cond = spec["condition"]
            assert cond in ("service_healthy", "service_completed_successfully"), f"{name} -> {dep}: {cond}"
            if cond == "service_healthy":
                assert services[dep].get("healthcheck"), f"{name} waits for {dep} to be healthy; it has no healthcheck"
            else:
                assert dep in ONE_SHOT
    for svc in SERVICES:
        deps = services[svc]["depends_on"]
        assert {b: {"condition": "service_healthy"} for b in brokers}.items() <= deps.items()
        assert deps["postgres"] == {"condition": "service_healthy"}
        assert deps["provision-topics"] == {"condition": "service_completed_successfully"}
        assert deps["kafka-init"] == {"condition": "service_completed_successfully"}  # its principal exists
        assert deps["db-roles"] == {"condition": "service_completed_successfully"}
    assert services["db-roles"]["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    assert set(services["provision-topics"]["depends_on"]) == brokers | {"kafka-init"}
    assert set(services["kafka-init"]["depends_on"]) == brokers
    assert services["grafana"]["depends_on"] == {"prometheus": {"condition": "service_healthy"}}


def test_the_cluster_switch_runs_three_kraft_voters_with_replication_three():
    services = containers(True)
    voters = "1@kafka:9093,2@kafka-2:9093,3@kafka-3:9093"
    ids = set()
    for b in ("kafka", "kafka-2", "kafka-3"):
        env = environment(services[b])
        assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == voters
        assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
        assert env["KAFKA_MIN_INSYNC_REPLICAS"] == "2" and env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == "3"
        assert env["KAFKA_ADVERTISED_LISTENERS"] == f"SASL://{b}:9092"
        ids.add(env["KAFKA_NODE_ID"])
    assert ids == {"1", "2", "3"}
    assert len({services[b]["volumes"][0] for b in ("kafka", "kafka-2", "kafka-3")}) == 3
    for name in (*SERVICES, "provision-topics"):
        assert environment(services[name])["KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092,kafka-2:9092,kafka-3:9092"
    single = environment(containers(False)["kafka"])
    assert single["KAFKA_CONTROLLER_QUORUM_VOTERS"] == "1@kafka:9093"
    assert single["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"


def test_no_secret_is_committed_and_every_required_variable_is_documented_in_env_example():
    raw = load_yaml(COMPOSE)
    documented = env_example()
    text = repr(load_yaml(COMPOSE)) + repr(load_yaml(CLUSTER_OVERRIDE))  # values only, not comments
    required = {name for name, op, _ in variables(text) if op in (":?", "?")}
    assert {"POSTGRES_PASSWORD", "GRAFANA_ADMIN_PASSWORD", "JWKS", "JWT_ISSUER"} <= required
    assert required <= set(documented), f"undocumented in .env.example: {required - set(documented)}"
    for name in required:
        assert "change-me" in documented[name] or not re.search(r"PASSWORD|TOKEN", name), \
            f".env.example must carry a placeholder for {name}, not a real value"
    secretish = re.compile(r"PASSWORD|TOKEN|SECRET")
    for name, svc in raw["services"].items():
        for key, value in environment(svc).items():
            if secretish.search(key):
                assert re.fullmatch(r"\$\{\w+:\?[^}]*\}", value), f"{name}.{key} must come from .env (${{VAR:?}}), not the file"
        for key in ("DATABASE_URL", "MIGRATION_DATABASE_URL", "ADMIN_DATABASE_URL"):
            url = environment(svc).get(key, "")
            assert not url or re.search(r"\$\{\w+PASSWORD:\?", url), f"{name}.{key}: the database password must come from .env"
    with pytest.raises(KeyError):  # compose refuses to start without .env
        interpolate(raw["services"]["grid"]["environment"]["JWKS"], {})
    ignored = subprocess.run(["git", "check-ignore", "-q", ".env"], cwd=ROOT).returncode
    assert ignored == 0, ".env must be git-ignored"
    assert ENV_EXAMPLE.exists()


def test_prometheus_and_grafana_mount_the_deploy_configuration():
    services = containers(False)
    assert "./deploy/prometheus:/etc/prometheus:ro" in services["prometheus"]["volumes"]
    assert "--config.file=/etc/prometheus/prometheus.yml" in services["prometheus"]["command"]
    vols = services["grafana"]["volumes"]
    assert "./deploy/grafana/provisioning:/etc/grafana/provisioning:ro" in vols
    assert "./deploy/grafana/dashboards:/var/lib/grafana/dashboards:ro" in vols
    for v in vols + services["prometheus"]["volumes"]:
        src = v.split(":")[0]
        if src.startswith("./"):
            assert (ROOT / src).is_dir(), f"{src} does not exist"


def test_the_worker_modules_the_containers_run_exist():
    missing = [svc for svc in SERVICES if not (ROOT / "services" / svc / "app" / "__main__.py").exists()]
    assert not missing, f"python -m services.<svc>.app is not runnable for {missing}"
    assert (ROOT / "services" / "kit" / "provision.py").exists()


@pytest.mark.parametrize("cluster", LAYOUTS)
def test_each_service_migrates_as_its_owner_role_and_works_as_its_runtime_role(cluster):
    """PostgreSQL least privilege: the administrator (POSTGRES_USER) is used only by the one-shot
    db-roles job; each service connects as its own roles, with passwords from .env."""
    services = containers(cluster)
    env = env_example()
    for svc in SERVICES:
        e = environment(services[svc])
        assert e["DATABASE_URL"].startswith(f"postgresql://{svc}_app:{env[svc.upper() + '_DB_APP_PASSWORD']}@postgres:5432/")
        assert e["MIGRATION_DATABASE_URL"].startswith(
            f"postgresql://{svc}_owner:{env[svc.upper() + '_DB_OWNER_PASSWORD']}@postgres:5432/")
    job = services["db-roles"]
    assert job["command"] == ["python", "-m", "services.kit.dbroles"]
    e = environment(job)
    assert e["ADMIN_DATABASE_URL"].startswith(f"postgresql://{env['POSTGRES_USER']}:{env['POSTGRES_PASSWORD']}@postgres:5432/")
    from services.kit.dbroles import passwords_from_env

    given = passwords_from_env(env=e)
    assert set(given) == {f"{s}_{r}" for s in SERVICES for r in ("owner", "app")} and all(given.values())
    raw = load_yaml(COMPOSE)["services"]
    for name, svc in raw.items():  # nobody else holds the administrator's password
        if name not in ("postgres", "db-roles"):
            assert "POSTGRES_PASSWORD" not in repr(svc), name
