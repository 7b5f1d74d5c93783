"""Paths and tunables, each overridable by one environment variable with an in-repo default."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DBT_PROJECT_DIR = PROJECT_ROOT / "dbt_project"
EXPECTATIONS_DIR = PROJECT_ROOT / "expectations"


def _path(env_var: str, default: Path) -> Path:
    value = os.environ.get(env_var, "").strip()
    path = Path(value) if value else default
    return path if path.is_absolute() else (PROJECT_ROOT / path)


@dataclass(frozen=True)
class Settings:
    extracts_dir: Path
    warehouse: Path
    serving_db: Path
    duckdb_memory_limit: str
    duckdb_threads: int
    first_extract_date: str
    freshness_max_days: int
    lock_timeout_seconds: float  # how long `order-audit run` waits for the warehouse to be free
    routing_file: Path  # the exception routing rules (orchestration/routing.py)

    @classmethod
    def from_env(cls) -> Settings:
        return cls(
            extracts_dir=_path("ORDER_AUDIT_EXTRACTS_DIR", PROJECT_ROOT / "data" / "extracts"),
            warehouse=_path("ORDER_AUDIT_WAREHOUSE", PROJECT_ROOT / "data" / "warehouse.duckdb"),
            serving_db=_path(
                "ORDER_AUDIT_SERVING_DB", PROJECT_ROOT / "data" / "serving" / "order_audit.duckdb"
            ),
            duckdb_memory_limit=os.environ.get("ORDER_AUDIT_DUCKDB_MEMORY_LIMIT", "2560MB"),
            duckdb_threads=int(os.environ.get("ORDER_AUDIT_DUCKDB_THREADS", "2")),
            first_extract_date=os.environ.get("ORDER_AUDIT_FIRST_EXTRACT_DATE", "2026-10-01"),
            freshness_max_days=int(os.environ.get("ORDER_AUDIT_FRESHNESS_MAX_DAYS", "2")),
            lock_timeout_seconds=float(os.environ.get("ORDER_AUDIT_LOCK_TIMEOUT_SECONDS", "60")),
            routing_file=_path("ORDER_AUDIT_ROUTING", PROJECT_ROOT / "routing.yml"),
        )
