"""Dagster resources shared by every domain: the warehouse (one writer at a time) and dbt."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import duckdb
from dagster import InitResourceContext, ResourceDefinition, resource
from dagster_dbt import DbtCliResource
from dagster_duckdb import DuckDBResource

from orchestration.locks import LockHolder, claim_warehouse
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
    " run starts (not when the definitions are imported). The run holds the warehouse's run lock"
    " from its start to its end, so that it and an `order-audit run` wait for each other."
)
def _warehouse_of_the_run(context: InitResourceContext) -> Iterator[WarehouseResource]:
    settings = Settings.from_env()

    def tell_waiting(holder: LockHolder) -> None:
        context.log.warning(
            f"The warehouse {settings.warehouse} is locked by {holder.describe()}: waiting up to"
            f" {settings.lock_timeout_seconds:g} s (ORDER_AUDIT_LOCK_TIMEOUT_SECONDS) for it to be free."
        )

    run_lock, _ = claim_warehouse(settings.warehouse, settings.lock_timeout_seconds, on_wait=tell_waiting)
    try:
        yield warehouse_for(settings)
    finally:
        run_lock.release()


def warehouse_resource() -> ResourceDefinition:
    """The warehouse, from the settings of the environment when each run starts (steps take it as a
    `DuckDBResource`)."""
    return _warehouse_of_the_run


def dbt_resource() -> DbtCliResource:
    return dbt_cli()
