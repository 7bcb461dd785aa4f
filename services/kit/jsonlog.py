"""Structured JSON logs carrying the correlation id of the message being handled."""
from __future__ import annotations

import contextvars
import logging
import sys
from datetime import datetime, timezone

import orjson

correlation_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("correlation_id", default=None)
causation_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("causation_id", default=None)

_STD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str):
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        out = {
            "ts": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "service": self.service,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if (cid := correlation_id.get()) is not None:
            out["correlationid"] = cid
        if (cau := causation_id.get()) is not None:
            out["causationid"] = cau
        for k, v in record.__dict__.items():
            if k not in _STD and not k.startswith("_"):
                out[k] = v
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(out, default=str).decode()


def _real_stderr():
    """The process's stderr, even inside a faust worker: mode's worker replaces ``sys.stderr`` with
    a proxy that logs what is written to it, and a log handler writing into that proxy has its
    lines dropped by the proxy's recursion guard — every log line of the worker would be lost."""
    if type(sys.stderr).__name__ == "FileLogProxy" and sys.__stderr__ is not None:
        return sys.__stderr__
    return sys.stderr


def configure(service: str, level: str = "info", fmt: str = "json") -> None:
    """Install one handler on the root logger (replacing faust's) in the chosen format."""
    root = logging.getLogger()
    handler = logging.StreamHandler(_real_stderr())
    if fmt == "json":
        handler.setFormatter(JsonFormatter(service))
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s [%(name)s] %(message)s"))
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("aiokafka", "faust", "mode"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
