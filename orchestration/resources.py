"""Dagster resources shared by every domain: the warehouse (one writer at a time) and dbt."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import duckdb
from dagster import InitResourceContext, ResourceDefinition, resource
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


def warehouse_for(settings: Settings) -> WarehouseResource:
    """The warehouse file of `settings`, with its DuckDB limits (its folder created)."""
    settings.warehouse.parent.mkdir(parents=True, exist_ok=True)
    return WarehouseResource(
        database=str(settings.warehouse),
        connection_config={
            "memory_limit": settings.duckdb_memory_limit,
            "threads": settings.duckdb_threads,
        },
    )


@resource(
    description="The warehouse DuckDB file (ORDER_AUDIT_WAREHOUSE) and its DuckDB limits, read when each"
    " run starts (not when the definitions are imported)."
)
def _warehouse_of_the_run(context: InitResourceContext) -> WarehouseResource:
    return warehouse_for(Settings.from_env())


def warehouse_resource() -> ResourceDefinition:
    """The warehouse, from the settings of the environment when each run starts (steps take it as a
    `DuckDBResource`)."""
    return _warehouse_of_the_run


def dbt_resource() -> DbtCliResource:
    return dbt_cli()
