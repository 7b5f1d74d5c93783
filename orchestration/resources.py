"""Dagster resources shared by every domain: the warehouse (one writer at a time) and dbt."""

from __future__ import annotations

import os

from dagster import EnvVar
from dagster_dbt import DbtCliResource
from dagster_duckdb import DuckDBResource

from orchestration.settings import Settings
from orchestration.transform.project import dbt_cli


def warehouse_resource() -> DuckDBResource:
    """The warehouse file, resolved from ORDER_AUDIT_WAREHOUSE when each run starts (not at import)."""
    settings = Settings.from_env()
    os.environ["ORDER_AUDIT_WAREHOUSE"] = str(settings.warehouse)
    settings.warehouse.parent.mkdir(parents=True, exist_ok=True)
    return DuckDBResource(
        database=EnvVar("ORDER_AUDIT_WAREHOUSE"),
        connection_config={
            "memory_limit": settings.duckdb_memory_limit,
            "threads": settings.duckdb_threads,
        },
    )


def dbt_resource() -> DbtCliResource:
    return dbt_cli()
