"""The landing-folder sensor requests one run per extract date with new or re-delivered files."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from dagster import DagsterInstance, SkipReason, build_sensor_context

from orchestration.generator import generate
from orchestration.ingest.sensors import build_landing_sensor
from tests.conftest import pipeline_env, use_env


def _evaluate(cursor: str | None) -> tuple[list[str], str | None, bool]:
    sensor = build_landing_sensor("order_audit_job")
    with DagsterInstance.ephemeral() as instance:
        result = sensor(build_sensor_context(instance=instance, cursor=cursor))
    if isinstance(result, SkipReason):
        return [], cursor, True
    return [request.partition_key for request in result.run_requests], result.cursor, False


def test_sensor_requests_runs_for_new_and_redelivered_files(tmp_path: Path, isolated_environ: None) -> None:
    env = pipeline_env(tmp_path)
    generate(env.extracts, orders=40, seed=2, days=3)
    held = tmp_path / "held"
    held.mkdir()
    for path in env.extracts.glob("*/*_2026-11-03*"):
        shutil.move(str(path), held / path.name)
    use_env(env)

    partitions, cursor, skipped = _evaluate(None)
    assert not skipped and partitions == ["2026-11-01", "2026-11-02"]
    assert set(json.loads(cursor or "{}")) == {str(p) for p in env.extracts.glob("*/*_2026-11-0*")}

    assert _evaluate(cursor)[2], "nothing new: the sensor skips"

    for path in held.iterdir():  # a new day lands
        source = path.name.rsplit("_2026", 1)[0]
        shutil.move(str(path), env.extracts / source / path.name)
    partitions, cursor, _ = _evaluate(cursor)
    assert partitions == ["2026-11-03"]

    corrected = next(env.extracts.glob("payments/payments_2026-11-01*.csv"))  # re-delivered with new bytes
    with corrected.open("a") as handle:
        handle.write("PAY-LATE,,capture,1.00,USD,succeeded,2026-11-01T10:00:00Z,,card\n")
    stat = corrected.stat()
    os.utime(corrected, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    partitions, _, _ = _evaluate(cursor)
    assert partitions == ["2026-11-01"]


def test_a_new_decision_file_requests_a_run_of_the_latest_extract_date(
    tmp_path: Path, isolated_environ: None
) -> None:
    env = pipeline_env(tmp_path)
    generate(env.extracts, orders=40, seed=2, days=3)
    use_env(env)
    _, cursor, _ = _evaluate(None)
    assert _evaluate(cursor)[2]

    decisions = env.extracts / "decisions"
    decisions.mkdir()
    (decisions / "decisions_2026-12-04_DEC-1.jsonl").write_text('{"decision_id": "DEC-1"}\n')
    partitions, cursor, skipped = _evaluate(cursor)
    assert not skipped and partitions == ["2026-11-03"]
    assert _evaluate(cursor)[2], "an applied decision file is not new again"
