"""The landing-folder sensor requests one run per extract date with new or re-delivered files."""

from __future__ import annotations

import json
import os
import shutil
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest
from dagster import (
    DagsterInstance,
    RunRequest,
    SkipReason,
    build_asset_check_context,
    build_schedule_context,
    build_sensor_context,
)

from orchestration.generator import generate
from orchestration.ingest.freshness import build_freshness_check
from orchestration.ingest.loader import load_source
from orchestration.ingest.sensors import build_landing_sensor
from orchestration.ingest.sources import SOURCES
from orchestration.schedules import build_daily_schedule
from tests.conftest import PipelineEnv, pipeline_env, use_env


@pytest.fixture()
def landed(tmp_path: Path, isolated_environ: None) -> PipelineEnv:
    """Three days of generated extracts in a fresh landing folder, the environment pointing at it."""
    env = pipeline_env(tmp_path)
    generate(env.extracts, orders=40, seed=2, days=3)
    use_env(env)
    return env


def _evaluate(cursor: str | None) -> tuple[list[str], str | None, bool]:
    sensor = build_landing_sensor("order_audit_job")
    with DagsterInstance.ephemeral() as instance:
        result = sensor(build_sensor_context(instance=instance, cursor=cursor))
    if isinstance(result, SkipReason):
        return [], cursor, True
    requests = result.run_requests or []
    return [request.partition_key for request in requests], result.cursor, not requests


@pytest.fixture()
def last_day_held(landed: PipelineEnv, tmp_path: Path) -> tuple[PipelineEnv, Path]:
    """`landed`, with the files of its last day (2026-11-03) held back in a folder of their own."""
    held = tmp_path / "held"
    held.mkdir()
    for path in landed.extracts.glob("*/*_2026-11-03*"):
        shutil.move(str(path), held / path.name)
    return landed, held


def _land(held: Path, env: PipelineEnv) -> None:
    for path in held.iterdir():
        source = path.name.rsplit("_2026", 1)[0]
        shutil.move(str(path), env.extracts / source / path.name)


def test_sensor_requests_runs_for_new_and_redelivered_files(last_day_held: tuple[PipelineEnv, Path]) -> None:
    env, held = last_day_held
    partitions, cursor, skipped = _evaluate(None)
    assert not skipped and partitions == ["2026-11-01", "2026-11-02"]
    assert set(json.loads(cursor or "{}")) == {str(p) for p in env.extracts.glob("*/*_2026-11-0*")}

    assert _evaluate(cursor)[2], "nothing new: the sensor skips"

    _land(held, env)  # a new day lands
    partitions, cursor, _ = _evaluate(cursor)
    assert partitions == ["2026-11-03"]

    corrected = next(env.extracts.glob("payments/payments_2026-11-01*.csv"))  # re-delivered with new bytes
    with corrected.open("a") as handle:
        handle.write("PAY-LATE,,capture,1.00,USD,succeeded,2026-11-01T10:00:00Z,,card\n")
    stat = corrected.stat()
    os.utime(corrected, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    partitions, _, _ = _evaluate(cursor)
    assert partitions == ["2026-11-01"]


def test_a_new_decision_file_requests_a_run_of_the_latest_extract_date(landed: PipelineEnv) -> None:
    env = landed
    _, cursor, _ = _evaluate(None)
    assert _evaluate(cursor)[2]

    decisions = env.extracts / "decisions"
    decisions.mkdir()
    (decisions / "decisions_2026-12-04_DEC-1.jsonl").write_text('{"decision_id": "DEC-1"}\n')
    partitions, cursor, skipped = _evaluate(cursor)
    assert not skipped and partitions == ["2026-11-03"]
    assert _evaluate(cursor)[2], "an applied decision file is not new again"


def _load_everything(warehouse: Path, extracts: Path) -> None:
    con = duckdb.connect(str(warehouse))
    try:
        for spec in SOURCES.values():
            load_source(con, spec, extracts)
    finally:
        con.close()


def test_turned_on_after_runs_the_sensor_requests_only_what_is_not_loaded(landed: PipelineEnv) -> None:
    env = landed
    _load_everything(env.warehouse, env.extracts)
    partitions, cursor, skipped = _evaluate(None)
    assert skipped and partitions == [] and cursor, "every file is loaded: no run, and the cursor is set"

    held = next(env.extracts.glob("payments/payments_2026-11-02*.csv"))
    held.write_text(held.read_text() + "PAY-NEW,,capture,1.00,USD,succeeded,2026-11-02T10:00:00Z,,card\n")
    partitions, _, _ = _evaluate(None)
    assert partitions == ["2026-11-02"], "a file changed since its load is still new on the first evaluation"

    _load_everything(env.warehouse, env.extracts)
    decisions = env.extracts / "decisions"
    decisions.mkdir()
    (decisions / "decisions_2026-12-04_DEC-1.jsonl").write_text('{"decision_id": "DEC-1"}\n')
    partitions, _, _ = _evaluate(None)
    assert partitions == ["2026-11-03"], "a decision file not applied yet runs the latest extract date"


def test_a_file_dated_outside_the_partitions_is_logged_not_requested(landed: PipelineEnv) -> None:
    env = landed
    _, cursor, _ = _evaluate(None)
    header = next(env.extracts.glob("payments/*.csv")).read_text().splitlines()[0]
    for stray in ("payments_2025-09-30.csv", "payments_2999-01-15.csv"):
        (env.extracts / "payments" / stray).write_text(header + "\n")
    partitions, later_cursor, skipped = _evaluate(cursor)  # before: DagsterUnknownPartitionError, every tick
    assert skipped and partitions == []
    assert _evaluate(later_cursor)[2]

    decisions = env.extracts / "decisions"  # applied with the latest date a run can take, not 2999-01-15
    decisions.mkdir()
    (decisions / "decisions_2026-12-04_DEC-1.jsonl").write_text('{"decision_id": "DEC-1"}\n')
    assert _evaluate(later_cursor)[0] == ["2026-11-03"]

    os.environ["ORDER_AUDIT_FIRST_EXTRACT_DATE"] = "2025-09-01"  # its date is a partition now: it is new
    for source in ("orders", "inventory_movements"):  # once every required source has a file of the date
        first = sorted((env.extracts / source).iterdir())[0]
        (env.extracts / source / first.name.replace("2026-11-01", "2025-09-30")).write_text(
            first.read_text().splitlines()[0] + "\n"
        )
    assert "2025-09-30" in _evaluate(later_cursor)[0]


def test_the_freshness_check_ignores_a_file_dated_in_the_future(landed: PipelineEnv) -> None:
    """A supplier's date typo (payments_2999-...) is not loaded: it must not hide that payments are stale."""
    env = landed
    check = build_freshness_check(SOURCES["payments"])
    header = next(env.extracts.glob("payments/*.csv")).read_text().splitlines()[0]
    (env.extracts / "payments" / "payments_2999-01-15.csv").write_text(header + "\n")
    result = check(build_asset_check_context())
    assert result.metadata["newest_extract_date"].value == "2026-11-03"
    assert not result.passed


def _tick(at: datetime) -> RunRequest | SkipReason:
    schedule = build_daily_schedule("order_audit_job")
    with DagsterInstance.ephemeral() as instance:
        result = schedule(build_schedule_context(instance=instance, scheduled_execution_time=at))
    assert isinstance(result, RunRequest | SkipReason)
    return result


def test_the_daily_schedule_runs_the_previous_extract_date_once_it_has_landed(landed: PipelineEnv) -> None:
    request = _tick(datetime(2026, 11, 3, 6, 0, tzinfo=UTC))
    assert isinstance(request, RunRequest) and request.partition_key == "2026-11-02"
    skipped = _tick(datetime(2026, 11, 5, 6, 0, tzinfo=UTC))
    assert isinstance(skipped, SkipReason)
    assert "no landing file of orders, payments, inventory_movements dated 2026-11-04" in str(
        skipped.skip_message
    )


def test_a_date_some_source_has_not_delivered_yet_waits_for_it(
    last_day_held: tuple[PipelineEnv, Path],
) -> None:
    """Payments of a new day land before its orders and movements: a run of that date would fail its loaders,
    so the sensor waits (the files stay new), then requests the date once the other sources land."""
    env, held = last_day_held
    _, cursor, _ = _evaluate(None)
    early = next(held.glob("payments_*"))
    shutil.move(str(early), env.extracts / "payments" / early.name)
    decisions = env.extracts / "decisions"
    decisions.mkdir()
    (decisions / "decisions_2026-11-03_by-hand.jsonl").write_text("{}\n")

    sensor = build_landing_sensor("order_audit_job")
    with DagsterInstance.ephemeral() as instance:
        result = sensor(build_sensor_context(instance=instance, cursor=cursor))
    requests = result.run_requests or []
    assert [request.partition_key for request in requests] == ["2026-11-02"], (
        "decisions: the latest complete date"
    )
    assert str(env.extracts / "payments" / early.name) not in json.loads(result.cursor or "{}")

    _land(held, env)
    partitions, _, _ = _evaluate(result.cursor)
    assert partitions == ["2026-11-03"]
