"""Helpers for tests/test_quality.py: build a real warehouse once, copy it, corrupt the copies."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

import duckdb

from orchestration.duck import connect
from orchestration.ingest.loader import load_source
from orchestration.ingest.routing_rules import write_routing_rules
from orchestration.ingest.sources import SOURCES
from orchestration.routing import load_routing
from orchestration.settings import DBT_PROJECT_DIR
from orchestration.transform.project import dbt_executable


def build_warehouse(root: Path, *, orders: int = 300, seed: int = 7) -> Path:
    """Generate extracts, load them into raw and build every dbt model (tests of dbt not run)."""
    from orchestration.generator import generate

    extracts = root / "extracts"
    generate(extracts, orders=orders, seed=seed)
    warehouse = root / "warehouse.duckdb"
    con = connect(warehouse)
    try:
        for spec in SOURCES.values():
            load_source(con, spec, extracts)
        write_routing_rules(con, load_routing())
        con.execute("checkpoint")
    finally:
        con.close()
    env = {**os.environ, "ORDER_AUDIT_WAREHOUSE": str(warehouse)}
    command = [
        dbt_executable(),
        "build",
        "--exclude",
        "resource_type:test",
        "resource_type:unit_test",
        "--project-dir",
        str(DBT_PROJECT_DIR),
        "--profiles-dir",
        str(DBT_PROJECT_DIR),
        "--target-path",
        str(root / "dbt_target"),
        "--log-path",
        str(root / "dbt_logs"),
    ]
    done = subprocess.run(command, env=env, capture_output=True, text=True, cwd=DBT_PROJECT_DIR)
    if done.returncode != 0:
        raise RuntimeError(f"dbt build failed:\n{done.stdout[-4000:]}\n{done.stderr[-2000:]}")
    return warehouse


def corrupted_copy(source: Path, target: Path, statements: Sequence[str]) -> Path:
    """Copy the warehouse file and run `statements` on the copy (the source is never opened)."""
    shutil.copyfile(source, target)
    con = connect(target)
    try:
        for statement in statements:
            con.execute(statement)
        con.execute("checkpoint")
    finally:
        con.close()
    return target


def query(path: Path, sql: str) -> list[tuple[object, ...]]:
    """Read from a warehouse file that this process has not validated (GX keeps those open read-only)."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()
