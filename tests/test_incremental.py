"""Daily incremental runs and one full run over the same files give the same mart."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import duckdb
import pytest

from orchestration.settings import DBT_PROJECT_DIR
from orchestration.transform.project import dbt_executable
from tests.conftest import PipelineEnv, pipeline_env, use_env

EVENT_COLUMNS = (
    "event_id, order_id, event_at, event_sequence, source_system, source_id, event_type, status, amount, currency,"
    " sku, quantity, from_status, to_status, source_file"
)
OPEN_EXCEPTIONS = (
    "select exception_id, entity_type, entity_id, order_id, exception_code, severity, owner_team, detail"
    " from order_audit_exceptions where status = 'open'"
)


def _rows(path: Path, sql: str) -> list[tuple[object, ...]]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return sorted(con.execute(sql).fetchall(), key=repr)
    finally:
        con.close()


def _mart(env: PipelineEnv) -> dict[str, list[tuple[object, ...]]]:
    return {
        "fact_order_audit": _rows(env.warehouse, "select * from fact_order_audit"),
        "fct_order_audit_events": _rows(env.warehouse, f"select {EVENT_COLUMNS} from fct_order_audit_events"),
        "open_exceptions": _rows(env.warehouse, OPEN_EXCEPTIONS),
        "stg_psp__payments": _rows(
            env.warehouse, "select * exclude (load_id, loaded_through) from staging.stg_psp__payments"
        ),
        "stg_wms__inventory_movements": _rows(
            env.warehouse,
            "select * exclude (load_id, loaded_through) from staging.stg_wms__inventory_movements",
        ),
    }


def _run_partition(env: PipelineEnv, partition: str) -> None:
    from dagster import DagsterInstance

    from orchestration.definitions import defs

    use_env(env)
    with DagsterInstance.ephemeral() as instance:
        result = defs.resolve_job_def("order_audit_job").execute_in_process(
            instance=instance, partition_key=partition, raise_on_error=False
        )
    assert result.success, f"daily run for {partition} failed"


@pytest.fixture(scope="module")
def two_warehouses(
    tmp_path_factory: pytest.TempPathFactory, isolated_environ: None
) -> tuple[PipelineEnv, PipelineEnv]:
    from orchestration.cli import main
    from orchestration.generator import generate

    daily = pipeline_env(tmp_path_factory.mktemp("daily"))
    full = pipeline_env(tmp_path_factory.mktemp("full"))
    generate(daily.extracts, orders=300, seed=11, days=5)
    shutil.copytree(daily.extracts, full.extracts)
    found = (re.search(r"_(\d{4}-\d{2}-\d{2})", p.name) for p in daily.extracts.glob("*/*"))
    dates = sorted({match.group(1) for match in found if match})
    for partition in dates:
        _run_partition(daily, partition)
    use_env(full)
    assert main(["run"]) == 0
    return daily, full


def test_daily_incremental_runs_equal_one_full_run(two_warehouses: tuple[PipelineEnv, PipelineEnv]) -> None:
    daily, full = two_warehouses
    daily_mart, full_mart = _mart(daily), _mart(full)
    for table in daily_mart:
        assert daily_mart[table] == full_mart[table], (
            f"{table} differs between daily incremental and full runs"
        )
    assert len(daily_mart["fct_order_audit_events"]) > 1000


def test_full_refresh_gives_the_same_mart_as_the_incremental_runs(
    two_warehouses: tuple[PipelineEnv, PipelineEnv],
) -> None:
    daily, _ = two_warehouses
    before = _mart(daily)
    refreshed = subprocess.run(
        [
            dbt_executable(),
            "build",
            "--full-refresh",
            "--exclude-resource-type",
            "unit_test",
            "--profiles-dir",
            str(DBT_PROJECT_DIR),
        ],
        cwd=DBT_PROJECT_DIR,
        env={**os.environ, **daily.as_environ()},
        capture_output=True,
        text=True,
        check=False,
    )
    assert refreshed.returncode == 0, refreshed.stdout[-3000:]
    assert _mart(daily) == before
    resolved = _rows(daily.warehouse, "select count(*) from order_audit_exceptions where status = 'resolved'")
    assert resolved[0][0] >= 0, "full_refresh=false keeps the exception history"
