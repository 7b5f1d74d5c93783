"""The analysts' queries (dbt analyses, also printed in the README) run against the published mart,
and the dbt unit tests of every reconciliation rule pass against the built warehouse."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import duckdb

from orchestration.settings import DBT_PROJECT_DIR, PROJECT_ROOT
from orchestration.transform.project import dbt_executable
from tests.conftest import PipelineEnv

ANALYSES_DIR = DBT_PROJECT_DIR / "analyses"
REF = re.compile(r"\{\{\s*ref\('([a-z_]+)'\)\s*\}\}")


def _target(env: PipelineEnv) -> Path:
    """A dbt target folder of the test's own: the project's is shared with the runs of other tests."""
    return env.root / "dbt_target"


def _dbt(env: PipelineEnv, *args: str) -> subprocess.CompletedProcess[str]:
    environ = {**os.environ, **env.as_environ()}
    return subprocess.run(
        [dbt_executable(), *args, "--profiles-dir", str(DBT_PROJECT_DIR), "--target-path", str(_target(env))],
        cwd=DBT_PROJECT_DIR,
        env=environ,
        capture_output=True,
        text=True,
        check=False,
    )


def _plain_sql(analysis: str) -> str:
    return REF.sub(r"\1", analysis).strip()


def test_analyses_run_against_the_published_mart(sample_pipeline: PipelineEnv) -> None:
    compiled = _dbt(sample_pipeline, "compile", "--select", "resource_type:analysis")
    assert compiled.returncode == 0, compiled.stdout[-3000:]
    compiled_dir = _target(sample_pipeline) / "compiled" / "order_audit" / "analyses"
    names = sorted(p.stem for p in ANALYSES_DIR.glob("*.sql"))
    assert len(names) == 5
    con = duckdb.connect()
    con.execute(f"attach '{sample_pipeline.serving_db}' as {sample_pipeline.warehouse.stem} (read_only)")
    try:
        results = {name: con.execute((compiled_dir / f"{name}.sql").read_text()).fetchall() for name in names}
    finally:
        con.close()
    for name in (
        "open_exceptions_by_owner_and_age",
        "daily_reconciliation_by_currency",
        "order_audit_trail",
        "orders_that_owe_money",
        "quarantined_rows_by_reason",
    ):
        assert results[name], f"{name} returned no rows on the sample data"
    trail = results["order_audit_trail"]
    assert [row[0] for row in trail] == list(range(1, len(trail) + 1)), "the trail is in sequence"


def test_readme_shows_the_same_queries_and_they_run(sample_pipeline: PipelineEnv) -> None:
    readme = (PROJECT_ROOT / "README.md").read_text()
    con = duckdb.connect(str(sample_pipeline.serving_db), read_only=True)
    try:
        for analysis in sorted(ANALYSES_DIR.glob("*.sql")):
            sql = _plain_sql(analysis.read_text())
            assert sql in readme, f"README's 'Querying the audit mart' lacks {analysis.name} as plain SQL"
            assert con.execute(sql).fetchall() is not None
    finally:
        con.close()


def test_dbt_unit_tests_of_the_reconciliation_rules_pass(sample_pipeline: PipelineEnv) -> None:
    result = _dbt(sample_pipeline, "test", "--select", "test_type:unit")
    assert result.returncode == 0, result.stdout[-5000:]
    passed = re.search(r"PASS=(\d+)", result.stdout)
    assert passed and int(passed.group(1)) >= 15, result.stdout[-2000:]
