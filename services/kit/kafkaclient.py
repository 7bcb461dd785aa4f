"""aiokafka keyword arguments from a Kafka security configuration, without pydantic.

The outbox relay runs in a child process of its own and takes its settings as JSON; it imports
this module rather than :mod:`services.kit.kafkasec` (whose checked :class:`KafkaSecurity` model
needs pydantic, some 12 MB of a small process). The configuration is what
:meth:`KafkaSecurity.to_config` gives, checked already by the parent; every client of the kit gets
its keyword arguments from :func:`client_kwargs` here, so there is one mapping.
"""
from __future__ import annotations

from typing import Any

TLS_PROTOCOLS = frozenset({"SSL", "SASL_SSL"})
SASL_PROTOCOLS = frozenset({"SASL_PLAINTEXT", "SASL_SSL"})


def kwargs_from_config(cfg: dict[str, Any] | None) -> dict[str, Any]:
    """``security_protocol``, ``ssl_context`` (TLS) and ``sasl_*`` (SASL) for a producer, consumer
    or admin client; ``None`` or ``{}`` is PLAINTEXT."""
    cfg = cfg or {}
    protocol = cfg.get("protocol") or "PLAINTEXT"
    kw: dict[str, Any] = {"security_protocol": protocol}
    if protocol in TLS_PROTOCOLS:
        from aiokafka.helpers import create_ssl_context

        kw["ssl_context"] = create_ssl_context(cafile=cfg.get("cafile"), certfile=cfg.get("certfile"),
                                               keyfile=cfg.get("keyfile"))
    if protocol in SASL_PROTOCOLS:
        kw["sasl_mechanism"] = cfg["mechanism"]
        kw["sasl_plain_username"] = cfg["username"]
        kw["sasl_plain_password"] = cfg["password"]
    return kw


def client_kwargs(security: Any) -> dict[str, Any]:
    """The keyword arguments for ``security``: a checked ``KafkaSecurity``, its configuration
    (a dict, as the relay process receives it) or None (PLAINTEXT)."""
    if security is None or isinstance(security, dict):
        return kwargs_from_config(security)
    return kwargs_from_config(security.to_config())
