"""Message type string -> payload model. Importing this module loads every service module."""
from __future__ import annotations

import importlib

from .common import _REGISTRY, Command, Event, Payload

SERVICES = ("grid", "orders", "points", "assessment", "party")
_loaded = False


def _load() -> None:
    global _loaded
    if not _loaded:
        importlib.import_module("schemas.rejections")
        for svc in SERVICES:
            try:
                importlib.import_module(f"schemas.{svc}")
            except ModuleNotFoundError as e:  # a service module not written yet
                if e.name != f"schemas.{svc}":
                    raise
        _loaded = True


def model_for(message_type: str) -> type[Payload] | None:
    _load()
    return _REGISTRY.get(message_type)


def all_types() -> dict[str, type[Payload]]:
    _load()
    return dict(sorted(_REGISTRY.items()))


def types_of(service: str, kind: str) -> frozenset[str]:
    """Every message type of ``service`` of ``kind`` ('command' or 'event').

    A type may be both (the contract uses ``grid.case.feedback.v1`` for the command and the event).
    Rejections are excluded: they have a topic of their own.
    """
    _load()
    base = {"command": Command, "event": Event}[kind]
    return frozenset(
        t for t, m in _REGISTRY.items()
        if t.split(".", 1)[0] == service and issubclass(m, base) and not t.endswith(".command.rejected.v1")
    )
