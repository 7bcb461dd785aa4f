"""Structured JSON logs: one object per line, carrying the ids of the message being handled."""
from __future__ import annotations

import io
import logging
import sys

import orjson
from mode.utils.logging import FileLogProxy

from services.kit import jsonlog


def record(msg: str = "case %s registered", *args, exc=None, **extra) -> logging.LogRecord:
    r = logging.makeLogRecord({"name": "grid.handler", "levelno": logging.INFO, "levelname": "INFO",
                               "msg": msg, "args": args or ("c-1",), "exc_info": exc})
    r.__dict__.update(extra)
    return r


def test_a_line_is_one_json_object_with_the_service_and_the_message():
    out = orjson.loads(jsonlog.JsonFormatter("grid").format(record()))
    assert out["service"] == "grid" and out["level"] == "info" and out["logger"] == "grid.handler"
    assert out["msg"] == "case c-1 registered" and out["ts"].endswith("+00:00")
    assert "correlationid" not in out


def test_the_correlation_and_causation_ids_of_the_message_being_handled_are_on_every_line():
    t1, t2 = jsonlog.correlation_id.set("corr-7"), jsonlog.causation_id.set("cmd-9")
    try:
        out = orjson.loads(jsonlog.JsonFormatter("orders").format(record()))
    finally:
        jsonlog.correlation_id.reset(t1)
        jsonlog.causation_id.reset(t2)
    assert out["correlationid"] == "corr-7" and out["causationid"] == "cmd-9"


def test_extra_fields_and_the_stack_trace_are_kept():
    try:
        raise ValueError("boom")
    except ValueError:
        exc = sys.exc_info()
    out = orjson.loads(jsonlog.JsonFormatter("points").format(record(exc=exc, period="2026-05")))
    assert out["period"] == "2026-05" and "ValueError: boom" in out["exc"]


def test_inside_a_faust_worker_lines_go_to_the_real_stderr_not_to_modes_proxy(monkeypatch):
    proxy = FileLogProxy(logging.getLogger("mode.test"), severity=logging.WARNING)
    real = io.StringIO()
    monkeypatch.setattr(sys, "stderr", proxy)
    monkeypatch.setattr(sys, "__stderr__", real)
    assert jsonlog._real_stderr() is real
    monkeypatch.setattr(sys, "stderr", real)
    assert jsonlog._real_stderr() is real


def test_configure_installs_one_handler_in_the_chosen_format(monkeypatch):
    stream = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stream)
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        jsonlog.configure("assessment", "info", "json")
        assert len(root.handlers) == 1
        logging.getLogger("assessment.test").info("period %s closed", "2026-05")
        line = stream.getvalue().strip().splitlines()[-1]
        assert orjson.loads(line)["msg"] == "period 2026-05 closed"
    finally:
        root.handlers[:], _ = saved[0], root.setLevel(saved[1])
