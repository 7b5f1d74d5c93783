"""Write-audit-publish: a run whose blocking checks fail publishes nothing and says which one failed."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from orchestration.cli import main
from orchestration.generator import generate
from tests.conftest import pipeline_env, use_env


def _publish_log(serving: Path) -> list[tuple[object, ...]]:
    con = duckdb.connect(str(serving), read_only=True)
    try:
        return con.execute("select run_id, published_at from publish_log").fetchall()
    finally:
        con.close()


def test_a_failing_blocking_check_keeps_the_last_good_mart(
    tmp_path: Path, isolated_environ: None, capsys: pytest.CaptureFixture[str]
) -> None:
    env = pipeline_env(tmp_path)
    generate(env.extracts, orders=150, seed=3, days=3)
    use_env(env)
    assert main(["run"]) == 0
    good = _publish_log(env.serving_db)
    good_bytes = env.serving_db.read_bytes()
    capsys.readouterr()

    # A duplicated raw payment row (same file and line twice) breaks key uniqueness per load.
    con = duckdb.connect(str(env.warehouse))
    con.execute(
        "insert into raw.payments select * from raw.payments order by source_file, line_number limit 1"
    )
    con.close()

    assert main(["run"]) == 4, "exit code 4: blocked by a failed check"
    printed = capsys.readouterr().out
    assert "Nothing was published" in printed
    # Blocked before dbt: the warehouse's mart is the last run's, so this run shows no audit figures.
    assert "Orders audited" not in printed and "Open exceptions by code" not in printed
    # The raw structure checks read only loads made since they last passed, so this hand edit of an old
    # load is caught by the per-file row conservation of the raw stage, which reads the manifest whole.
    assert "failed: reconciliation.raw_payments_rows_conserved (ERROR, 1 unexpected)" in printed
    assert _publish_log(env.serving_db) == good
    assert env.serving_db.read_bytes() == good_bytes, "the last good mart stays in place, byte for byte"

    # Dagster runs again a run whose process died (dagster.yaml run_retries), but not a blocked one: it would
    # be blocked again. An `order-audit run`'s own runs are never run again by the daemon (other settings).
    from dagster import DagsterRunStatus, RunsFilter
    from dagster._core.events import RunFailureReason
    from dagster._core.execution.retries import auto_reexecution_should_retry_run
    from dagster._core.storage.tags import RUN_FAILURE_REASON_TAG

    from orchestration.cli import dagster_instance
    from orchestration.settings import Settings

    instance = dagster_instance(Settings.from_env())
    (blocked,) = instance.get_runs(filters=RunsFilter(statuses=[DagsterRunStatus.FAILURE]))
    assert blocked.tags["dagster/max_retries"] == "0"
    assert not auto_reexecution_should_retry_run(instance, blocked, None)
    reason = RunFailureReason(blocked.tags[RUN_FAILURE_REASON_TAG])
    assert reason is RunFailureReason.STEP_FAILURE
    queued_run = blocked.with_tags({k: v for k, v in blocked.tags.items() if k != "dagster/max_retries"})
    assert not auto_reexecution_should_retry_run(instance, queued_run, reason)
    assert auto_reexecution_should_retry_run(instance, queued_run, None), "a run whose process died"
