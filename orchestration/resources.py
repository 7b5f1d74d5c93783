"""Dagster resources shared by every domain: the warehouse (one writer at a time) and dbt."""

from __future__ import annotations

from dagster_dbt import DbtCliResource
from dagster_duckdb import DuckDBResource

from orchestration.settings import Settings
from orchestration.transform.project import dbt_cli


def warehouse_resource(settings: Settings | None = None) -> DuckDBResource:
    settings = settings or Settings.from_env()
    settings.warehouse.parent.mkdir(parents=True, exist_ok=True)
    return DuckDBResource(
        database=str(settings.warehouse),
        connection_config={
            "memory_limit": settings.duckdb_memory_limit,
            "threads": settings.duckdb_threads,
        },
    )


def dbt_resource() -> DbtCliResource:
    return dbt_cli()
