"""The checkers the deploy tests rely on, shown to reject what they must reject."""
from __future__ import annotations

import pytest

from .support import accepted_env_keys, interpolate, metric_names, settings_class


def test_metric_names_are_extracted_without_functions_labels_or_durations():
    expr = ('histogram_quantile(0.99, sum by (service, le) (rate(kit_batch_duration_seconds_bucket{service="grid",'
            'topic=~"a.b"}[5m]))) / on (service) group_left (topic) max(kit_ready offset 10m) > 1e3 '
            'and sum(x:y:rate5m) without (instance) unless up{job="j"}[$__rate_interval]')
    assert metric_names(expr) == {"kit_batch_duration_seconds_bucket", "kit_ready", "x:y:rate5m", "up"}
    assert metric_names('label_replace(grid_cases, "s", "$1", "status", "(.*)")') == {"grid_cases"}
    assert metric_names("sum(rate(kit_http_requests_total[1h:5m])) * 3600") == {"kit_http_requests_total"}


def test_a_misspelt_or_foreign_environment_key_is_not_a_setting():
    keys = accepted_env_keys(settings_class("grid")[0])
    assert "GRID_HTTP_PORT" in keys and "KAFKA_BOOTSTRAP_SERVERS" in keys and "DATABASE_URL" in keys
    for wrong in ("GRID_HTTP_PROT", "ORDERS_HTTP_PORT", "GRID_KAFKA_BOOTSTRAP_SERVERS", "HTTP_PORT", "POSTGRES_PASSWORD"):
        assert wrong not in keys


def test_compose_interpolation_uses_defaults_and_refuses_missing_required_values():
    env = {"A": "1", "E": ""}
    assert interpolate("${A:-x}/${B:-y}/${E:-z}/${E-w}/$${A}", env) == "1/y/z//${A}"
    with pytest.raises(KeyError):
        interpolate("${B:?set B}", env)
