"""The rebuild comparison leaves out the save count of every table the kit's aggregate store
keeps: a replay cuts its batches elsewhere than live did, so a state can be saved once more
(tests/support/rebuild.py). A store added to a service without its entry there made the fault
campaign's rebuild check fail on a whistle saved 9 times in the rebuild and 8 live."""
from __future__ import annotations

import importlib
import pkgutil

import pytest

from schemas.registry import SERVICES
from services.kit.aggregates import AggregateStore
from tests.support.rebuild import SAVE_COUNTS


def _stores(service: str) -> set[str]:
    package = importlib.import_module(f"services.{service}")
    tables = set()
    for info in pkgutil.walk_packages(package.__path__, f"services.{service}."):
        if info.name.endswith((".__main__", ".main")):
            continue  # the worker's module builds the runtime when imported
        module = importlib.import_module(info.name)
        tables |= {v.table for v in vars(module).values() if isinstance(v, AggregateStore) and v.table != "aggregates"}
    return tables


@pytest.mark.parametrize("service", SERVICES)
def test_every_aggregate_store_table_has_its_save_count_left_out(service):
    tables = _stores(service)
    assert {t for t in tables if "version" not in SAVE_COUNTS.get(service, {}).get(t, set())} == set()
