"""Dagster resources shared by every domain: the warehouse (one writer at a time) and dbt."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import duckdb
from dagster import EnvVar
from dagster_dbt import DbtCliResource
from dagster_duckdb import DuckDBResource

from orchestration.settings import Settings
from orchestration.transform.project import dbt_cli


class WarehouseResource(DuckDBResource):
    """dagster-duckdb's resource, whose connection is closed also when the step using it raises.

    dagster-duckdb's own `get_connection` closes it only when the step succeeds: after a failure (no
    space left on the device, a lock conflict) the connection, and with it the warehouse's write lock,
    stayed open in the run's process until Python's garbage collector freed it, so the run summary
    could not open the file ("Can't open a connection to same database file with a different
    configuration") and dbt or a GX child could not either.
    """

    @contextmanager
    def get_connection(self) -> Iterator[duckdb.DuckDBPyConnection]:
        with super().get_connection() as con:
            try:
                yield con
            finally:
                con.close()


def warehouse_resource() -> DuckDBResource:
    """The warehouse file, resolved from ORDER_AUDIT_WAREHOUSE when each run starts (not at import)."""
    settings = Settings.from_env()
    os.environ["ORDER_AUDIT_WAREHOUSE"] = str(settings.warehouse)
    settings.warehouse.parent.mkdir(parents=True, exist_ok=True)
    return WarehouseResource(
        database=EnvVar("ORDER_AUDIT_WAREHOUSE"),
        connection_config={
            "memory_limit": settings.duckdb_memory_limit,
            "threads": settings.duckdb_threads,
        },
    )


def dbt_resource() -> DbtCliResource:
    return dbt_cli()
