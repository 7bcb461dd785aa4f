"""Helpers for the deploy tests: compose interpolation, settings keys, PromQL metric names."""
from __future__ import annotations

import importlib
import json
import os
import re
import shutil
from pathlib import Path
from typing import Any, Iterable

import pytest
import yaml
from pydantic import AliasChoices

from schemas.registry import SERVICES as REGISTERED_SERVICES
from services.kit.settings import ServiceSettings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
COMPOSE = ROOT / "docker-compose.yml"
CLUSTER_OVERRIDE = DEPLOY / "compose" / "kafka-cluster.yml"
ENV_EXAMPLE = ROOT / ".env.example"
PROMETHEUS = DEPLOY / "prometheus"
DASHBOARDS = DEPLOY / "grafana" / "dashboards"
SERVICES = {svc: f"{svc.upper()}_" for svc in REGISTERED_SERVICES}
PORTS = {"grid": 8001, "orders": 8002, "points": 8003, "assessment": 8004, "party": 8005}
assert set(PORTS) == set(SERVICES), "a registered service without a port here"

# Names that no worker exports but that Prometheus has anyway: its own `up` per target, and the
# kafka_exporter metrics the dashboards use (https://github.com/danielqsj/kafka_exporter#metrics).
EXTERNAL_METRICS = {
    "up": "Prometheus: 1 when the last scrape of the target succeeded",
    "kafka_brokers": "kafka_exporter: brokers in the cluster",
    "kafka_consumergroup_lag": "kafka_exporter: lag of a consumer group per topic partition",
}


# -- CI / promtool ----------------------------------------------------------------------------
def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def promtool() -> str:
    """The promtool path; skip outside CI when it is missing, fail in CI (CI must install it)."""
    path = shutil.which("promtool")
    if path:
        return path
    if in_ci():
        pytest.fail("promtool is not on PATH in CI: install the Debian package `prometheus`")
    pytest.skip("promtool not installed (apt-get install prometheus); required in CI")


# -- compose ----------------------------------------------------------------------------------
def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def env_example() -> dict[str, str]:
    out = {}
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            k, _, v = line.partition("=")
            out[k.strip()] = v.strip()
    return out


_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)")


def variables(text: str) -> list[tuple[str, str | None, str]]:
    """(name, operator, default-or-message) of each ${VAR...} in ``text`` ($$ is an escaped $)."""
    text = text.replace("$$", "")
    return [(m.group(1) or m.group(4), m.group(2), m.group(3) or "") for m in _VAR.finditer(text)]


def interpolate(value: Any, env: dict[str, str]) -> Any:
    """Compose interpolation: ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?err}; $$ -> $."""
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    if not isinstance(value, str):
        return value

    def sub(m: re.Match) -> str:
        name = m.group(1) or m.group(4)
        op, arg = m.group(2), m.group(3) or ""
        if name in env and (env[name] != "" or op in (None, "-", "?")):
            return env[name]
        if op in (":-", "-"):
            return arg
        if op in (":?", "?"):
            raise KeyError(f"required variable {name} is not set: {arg}")
        return ""

    parts = value.split("$$")
    return "$".join(_VAR.sub(sub, p) for p in parts)


def deep_merge(base: Any, over: Any) -> Any:
    """Compose's merge of an override file: mappings merge, everything else is replaced."""
    if isinstance(base, dict) and isinstance(over, dict):
        out = dict(base)
        for k, v in over.items():
            out[k] = deep_merge(base[k], v) if k in base else v
        return out
    return over


def compose(cluster: bool = False) -> dict:
    doc = load_yaml(COMPOSE)
    if cluster:
        doc = deep_merge(doc, load_yaml(CLUSTER_OVERRIDE))
    return interpolate(doc, env_example())


def environment(svc: dict) -> dict[str, str]:
    env = svc.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.partition("=")[::2] for item in env)
    return {str(k): "" if v is None else str(v) for k, v in env.items()}


def service_module(svc: dict) -> str | None:
    """The python module a container runs (``python -m <module> ...``), if any."""
    cmd = svc.get("command") or []
    if isinstance(cmd, str):
        cmd = cmd.split()
    if len(cmd) >= 3 and cmd[0] == "python" and cmd[1] == "-m":
        return cmd[2]
    return None


# -- settings models --------------------------------------------------------------------------
def settings_class(svc: str | None) -> tuple[type[ServiceSettings], str, bool]:
    """(settings class, env prefix, is the service's own class) for ``svc`` (None = the kit base)."""
    if svc is None:
        return ServiceSettings, ServiceSettings.model_config["env_prefix"], True
    try:
        mod = importlib.import_module(f"services.{svc}.app.settings")
    except ModuleNotFoundError:
        mod = None
    if mod is not None:
        for obj in vars(mod).values():
            if isinstance(obj, type) and issubclass(obj, ServiceSettings) and obj is not ServiceSettings \
                    and obj.__module__ == mod.__name__:
                return obj, obj.model_config["env_prefix"], True
    prefix = SERVICES[svc]
    from pydantic_settings import SettingsConfigDict

    cls = type(f"{svc.title()}BaseSettings", (ServiceSettings,),
               {"model_config": SettingsConfigDict(env_prefix=prefix, extra="ignore", populate_by_name=True)})
    return cls, prefix, False


def accepted_env_keys(cls: type[ServiceSettings]) -> dict[str, str]:
    """Environment variable -> field name, exactly as pydantic-settings reads them."""
    prefix = cls.model_config.get("env_prefix", "")
    out = {}
    for name, field in cls.model_fields.items():
        alias = field.validation_alias
        if isinstance(alias, AliasChoices):
            keys = [c for c in alias.choices if isinstance(c, str)]
        elif isinstance(alias, str):
            keys = [alias]
        else:
            keys = [f"{prefix}{name}"]
        for k in keys:
            out[k.upper()] = name
    return out


# -- PromQL -----------------------------------------------------------------------------------
_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "offset", "bool",
             "and", "or", "unless", "inf", "nan"}
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_IDENT = re.compile(r"(?<![\w.:$])([A-Za-z_:][A-Za-z0-9_:]*)\s*(\()?")


def metric_names(expr: str) -> set[str]:
    """Metric names a PromQL expression selects (functions, label names, keywords excluded)."""
    s = _STRING.sub('""', expr)
    s = re.sub(r"\{[^}]*\}", " ", s)      # label matchers
    s = re.sub(r"\[[^\]]*\]", " ", s)     # ranges and subqueries
    s = _GROUPING.sub(" ", s)             # by (...), on (...), group_left (...)
    s = re.sub(r"\$\{?\w+\}?", " ", s)    # Grafana variables
    names = set()
    for m in _IDENT.finditer(s):
        name, call = m.groups()
        if call or name.lower() in _KEYWORDS:
            continue
        names.add(name)
    return names


def rule_exprs(path: Path) -> list[tuple[str, str]]:
    """(rule name, expr) of every rule in a Prometheus rule file."""
    doc = load_yaml(path)
    return [(r.get("record") or r.get("alert"), r["expr"]) for g in doc["groups"] for r in g["rules"]]


def recorded_names() -> set[str]:
    return {name for name, _ in rule_exprs(PROMETHEUS / "rules" / "recording.yml")}


def dashboard_exprs(path: Path) -> list[tuple[str, str]]:
    """(panel title, expr) of every query in a Grafana dashboard JSON (rows included)."""
    d = json.loads(path.read_text(encoding="utf-8"))
    out = []

    def walk(panels: Iterable[dict]):
        for p in panels:
            for t in p.get("targets", []):
                if t.get("expr"):
                    out.append((p.get("title", "?"), t["expr"]))
            walk(p.get("panels", []))

    walk(d.get("panels", []))
    for v in d.get("templating", {}).get("list", []):
        q = v.get("query")
        q = q.get("query") if isinstance(q, dict) else q
        if v.get("type") == "query" and q:
            m = re.fullmatch(r"\s*label_values\(\s*(.*?)\s*,\s*\w+\s*\)\s*", q)
            out.append((f"variable {v.get('name')}", m.group(1) if m else q))
    return out


def exposed_names(text: str) -> set[str]:
    """Every series name a /metrics page can produce, from its HELP/TYPE lines and samples."""
    from prometheus_client.parser import text_string_to_metric_families

    suffixes = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_sum", "_count", "_created"),
                "summary": ("", "_sum", "_count", "_created"), "gaugehistogram": ("_bucket", "_gsum", "_gcount")}
    names = set()
    for fam in text_string_to_metric_families(text):
        names.update(fam.name + s for s in suffixes.get(fam.type, ("",)))
        names.update(s.name for s in fam.samples)
    return names
