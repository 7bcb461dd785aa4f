"""Settings of the orders service (environment, prefix ``ORDERS_``)."""
from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from services.kit.settings import ServiceSettings

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"
"""The orders service's numbered SQL migrations (schema ``orders``)."""


class OrdersSettings(ServiceSettings):
    """The kit's settings plus the orders service's policy and timers."""

    model_config = SettingsConfigDict(env_prefix="ORDERS_", extra="ignore", populate_by_name=True)

    http_port: int = Field(8002, ge=1, le=65535, description="HTTP port (/healthz, /readyz, /metrics, API)")
    accept_window_seconds: float = Field(
        24 * 3600, gt=0, description="how long an assignee has to accept a dispatch (accept_by = dispatch time + this)")
    auto_dispatch: bool = Field(
        True, description="dispatch automatically when an order is placed, declined or expires, and retry waiting "
                          "orders when a matching post is claimed")
    allow_over_capacity: bool = Field(
        False, description="let automatic dispatch choose members whose open orders already reach their capacity")
    expiry_interval_seconds: float = Field(
        15.0, gt=0, description="how often the timer looks for dispatches past accept_by")
    expiry_batch: int = Field(200, ge=1, le=10_000, description="expired dispatches handled per timer round")
    retry_on_claim_limit: int = Field(
        200, ge=1, le=10_000, description="waiting orders retried when one matching post is claimed")
    metrics_interval_seconds: float = Field(
        10.0, gt=0, description="how often the orders_orders{status} gauge is refreshed from the projection")

    @property
    def accept_window(self) -> timedelta:
        return timedelta(seconds=self.accept_window_seconds)
