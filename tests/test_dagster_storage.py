"""The project's Dagster storage (orchestration/dagster_storage.py): Dagster's SQLite files, pooled connections.

A real Dagster instance on the project's dagster.yaml runs a small job with an asset and an asset check;
Dagster's own SQLite storage, on the same folder, then reads the same run, events and asset records.
"""

from __future__ import annotations

import hashlib
import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest
from dagster import (
    AssetCheckResult,
    AssetKey,
    DagsterEventType,
    DagsterInstance,
    Definitions,
    asset,
    asset_check,
    define_asset_job,
)
from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage

from orchestration.dagster_storage import PooledSqliteEventLogStorage
from tests.conftest import instance_at

PROJECT_DAGSTER_YAML = Path(__file__).parents[1] / "orchestration" / "dagster.yaml"


@asset
def numbers() -> list[int]:
    return [1, 2, 3]


@asset_check(asset=numbers)
def numbers_are_positive() -> AssetCheckResult:
    return AssetCheckResult(passed=True)


def _run_the_job(instance: DagsterInstance) -> str:
    job = Definitions(
        assets=[numbers], asset_checks=[numbers_are_positive], jobs=[define_asset_job("numbers_job")]
    ).resolve_job_def("numbers_job")
    result = job.execute_in_process(instance=instance)
    assert result.success
    return result.run_id


def _what_is_stored(instance: DagsterInstance, run_id: str) -> tuple[object, ...]:
    events = [entry.dagster_event_type for entry in instance.all_logs(run_id)]
    materialization = instance.get_latest_materialization_event(AssetKey("numbers"))
    return (
        instance.get_run_by_id(run_id).status,  # type: ignore[union-attr]
        events,
        materialization is not None and materialization.run_id == run_id,
        len(instance.get_records_for_run(run_id).records),
    )


def test_the_project_storage_writes_what_dagsters_own_storage_reads(tmp_path: Path) -> None:
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copyfile(PROJECT_DAGSTER_YAML, home / "dagster.yaml")
    pooled = instance_at(home)
    try:
        assert type(pooled.event_log_storage) is PooledSqliteEventLogStorage
        run_id = _run_the_job(pooled)
        stored = _what_is_stored(pooled, run_id)
    finally:
        pooled.dispose()
    assert DagsterEventType.ASSET_CHECK_EVALUATION in stored[1]
    assert DagsterEventType.ASSET_MATERIALIZATION in stored[1]

    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")  # Dagster's default storage
    default = instance_at(home)
    try:
        assert type(default.event_log_storage) is SqliteEventLogStorage
        assert _what_is_stored(default, run_id) == stored
        run_by_default = _run_the_job(default)  # and the other way round
    finally:
        default.dispose()

    shutil.copyfile(PROJECT_DAGSTER_YAML, home / "dagster.yaml")
    pooled = instance_at(home)
    try:
        assert _what_is_stored(pooled, run_by_default)[0] == stored[0]
        assert len(pooled.get_runs()) == 2
        pooled.event_log_storage.wipe()  # the run shards' files go: no open connection may keep them
        assert list(pooled.all_logs(run_id)) == []
    finally:
        pooled.dispose()


def test_the_storage_asks_sqlite_for_a_table_until_it_is_there(tmp_path: Path, monkeypatch) -> None:
    """Dagster asks `has_table` for every asset check event; the answer is remembered once it is yes."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copyfile(PROJECT_DAGSTER_YAML, home / "dagster.yaml")
    asked: list[str] = []
    dagsters_own = SqliteEventLogStorage.has_table

    def counted(storage: SqliteEventLogStorage, table_name: str) -> bool:
        asked.append(table_name)
        return dagsters_own(storage, table_name)

    monkeypatch.setattr(SqliteEventLogStorage, "has_table", counted)
    pooled = instance_at(home)
    try:
        storage = pooled.event_log_storage
        assert storage.supports_asset_checks and storage.supports_asset_checks
        assert not storage.has_table("no_such_table") and not storage.has_table("no_such_table")
        assert asked == ["asset_check_executions", "no_such_table", "no_such_table"]
        _run_the_job(pooled)  # its check event finds the table without asking SQLite again
        assert asked.count("asset_check_executions") == 1
    finally:
        pooled.dispose()


def test_the_event_log_commits_in_wal_mode_without_waiting_for_the_disk(tmp_path: Path) -> None:
    """Every shard the storage opens, new ones included (a run's shard is new), is in WAL mode with
    `synchronous=NORMAL` (1); Dagster's own storage opens the same files with its defaults."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copyfile(PROJECT_DAGSTER_YAML, home / "dagster.yaml")
    pooled = instance_at(home)
    try:
        run_id = _run_the_job(pooled)
        storage = pooled.event_log_storage
        assert isinstance(storage, PooledSqliteEventLogStorage)
        for shard in ("index", run_id):
            with storage._connect(shard) as conn:
                assert conn.exec_driver_sql("pragma journal_mode").scalar() == "wal"
                assert conn.exec_driver_sql("pragma synchronous").scalar() == 1
    finally:
        pooled.dispose()
    with sqlite3.connect(home / "history" / "runs" / f"{run_id}.db") as plain:
        assert plain.execute("pragma journal_mode").fetchone() == ("wal",)


def test_a_dagster_home_keeps_an_edited_config_and_gets_the_new_one_over_an_earlier_copy(
    tmp_path: Path,
) -> None:
    """Every dagster.yaml the project shipped before is replaced by the current one (run retries came in
    with the last); one a user wrote is left alone."""
    from orchestration.cli import EARLIER_DAGSTER_YAML_SHA256, ensure_dagster_home
    from orchestration.settings import PROJECT_ROOT, Settings

    shipped = subprocess.run(
        ["git", "log", "--format=%H", "--", "orchestration/dagster.yaml"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if shipped.returncode != 0 or not shipped.stdout.strip():
        pytest.skip("no git history of orchestration/dagster.yaml here")
    current = (PROJECT_ROOT / "orchestration" / "dagster.yaml").read_bytes()
    earlier = [
        content
        for commit in shipped.stdout.split()
        if (
            content := subprocess.run(
                ["git", "show", f"{commit}:orchestration/dagster.yaml"],
                cwd=PROJECT_ROOT,
                capture_output=True,
                check=True,
            ).stdout
        )
        != current
    ]
    assert {hashlib.sha256(content).hexdigest() for content in earlier} <= EARLIER_DAGSTER_YAML_SHA256

    settings = Settings.from_env({"DAGSTER_HOME": str(tmp_path / "home")})
    config = settings.dagster_home / "dagster.yaml"
    config.parent.mkdir(parents=True)
    for content in earlier:
        config.write_bytes(content)
        ensure_dagster_home(settings)
        assert config.read_bytes() == current
    config.write_text("# mine\n")
    ensure_dagster_home(settings)
    assert config.read_text() == "# mine\n"
