"""Disk full: a run that runs out of space fails, keeps the last good serving file, and a rerun recovers.

Real runs on real small filesystems: the warehouse and the serving folder each live on a tmpfs of its
own (mounted by the test, so it needs root; skipped otherwise), the rest (extracts, Dagster home, temp
folders) on the ordinary disk. One chain of `order-audit run`s:

1. days 1-2 with room: published (the last good serving file);
2. day 3 with the warehouse's filesystem full: raw loading fails on "No space left on device";
3. room again for the warehouse, the serving filesystem nearly full: loading, dbt and validation pass,
   the publish fails writing the new serving file;
4. room everywhere: the rerun publishes.

After 2 and 3 the serving file is byte for byte the one of run 1 and opens; the warehouse opens, and
after 3 no staging file of the failed publish is left. The mart of run 4 equals, table for table,
that of an uninterrupted run (run 1's warehouse copied aside, then day 3 loaded with room), which
runs beside run 2.
"""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest
from dagster import DagsterEventType

from orchestration.generator import generate
from orchestration.publish.serving import MART_TABLES
from orchestration.settings import PROJECT_ROOT
from tests.conftest import PER_RUN_COLUMNS, PipelineEnv, instance_at, run_environ

ORDERS, SEED, DAYS = 60, 13, 3
START = date(2026, 11, 1)
WAREHOUSE_FS_MB, SERVING_FS_MB = 48, 8
SERVING_ROOM_LEFT = 512 * 1024  # less than the new serving file needs (about 2.6 MB at 60 orders)
RUN_TIMEOUT_SECONDS = 900
NO_SPACE = os.strerror(errno.ENOSPC)  # "No space left on device"


@dataclass
class RunResult:
    returncode: int
    terminal: str  # what the run printed (stdout and stderr)
    seconds: float
    failures: dict[str, str]  # failed step -> its error, every cause and context, from Dagster's event log


def _error_text(error: Any) -> str:
    """A Dagster error with every exception it was raised from or while handling."""
    texts, pending = [], [error]
    while pending:
        current = pending.pop()
        if current is not None:
            texts.append(current.message.strip())
            pending.extend([current.cause, current.context])
    return "\n".join(texts)


def _step_failures(dagster_home: Path, known_runs: set[str]) -> dict[str, str]:
    """The failed steps of the run `order-audit run` just made (none when no run was made)."""
    if not (dagster_home / "dagster.yaml").exists():
        return {}
    instance = instance_at(dagster_home)
    try:
        runs = [run for run in instance.get_runs(limit=5) if run.run_id not in known_runs]
        if not runs:
            return {}
        return {
            str(entry.step_key): _error_text(entry.dagster_event.event_specific_data.error)
            for entry in instance.all_logs(runs[0].run_id, of_type=DagsterEventType.STEP_FAILURE)
            if entry.dagster_event is not None and entry.dagster_event.event_specific_data is not None
        }
    finally:
        instance.dispose()


def _run_ids(dagster_home: Path) -> set[str]:
    if not (dagster_home / "dagster.yaml").exists():
        return set()
    instance = instance_at(dagster_home)
    try:
        return {run.run_id for run in instance.get_runs()}
    finally:
        instance.dispose()


def _mount_tmpfs(path: Path, size_mb: int) -> None:
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs to fill up needs root")
    if shutil.which("mount") is None:
        pytest.skip("no mount command")
    path.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_mb}m", "tmpfs", str(path)], capture_output=True, text=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")


def _unmount(path: Path) -> None:
    if subprocess.run(["umount", str(path)], capture_output=True).returncode != 0:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


def _fill(mount: Path, leave_bytes: int) -> Path:
    """A filler file that leaves `leave_bytes` free on the filesystem (0: full, every write fails)."""
    filler = mount / "filler"
    stat = os.statvfs(mount)
    free = stat.f_bavail * stat.f_frsize
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        if free > leave_bytes:
            os.posix_fallocate(fd, 0, free - leave_bytes)
        if leave_bytes == 0:
            os.lseek(fd, 0, os.SEEK_END)
            try:
                while True:
                    os.write(fd, b"\0" * 4096)
            except OSError as error:
                assert error.errno == errno.ENOSPC, error
    finally:
        os.close(fd)
    after = os.statvfs(mount)
    assert after.f_bavail * after.f_frsize <= max(leave_bytes, 0) + 4096
    return filler


def _run(env: PipelineEnv, *args: str) -> RunResult:
    runs_before = _run_ids(env.dagster_home)
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "orchestration.cli", "run", *args],
        cwd=PROJECT_ROOT,
        env=run_environ(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=RUN_TIMEOUT_SECONDS,
    )
    seconds = time.monotonic() - started
    return RunResult(done.returncode, done.stdout, seconds, _step_failures(env.dagster_home, runs_before))


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _folder_digest(folder: Path) -> dict[str, str]:
    return {p.name: _sha256(p) for p in sorted(folder.iterdir()) if p.is_file()}


def _published_run(serving_db: Path) -> tuple[str, int]:
    """The run that published the serving file and its fact rows; opening it proves it is whole."""
    con = duckdb.connect(str(serving_db), read_only=True)
    try:
        (run_id,) = con.execute("select run_id from publish_log").fetchall()[0]
        (orders,) = con.execute("select count(*) from fact_order_audit").fetchall()[0]
        return str(run_id), int(orders)
    finally:
        con.close()


def _manifest_dates(warehouse: Path) -> list[str]:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        rows = con.execute(
            "select distinct cast(extract_date as varchar) from raw.load_manifest"
            " where status in ('loaded', 'replaced') order by 1"
        ).fetchall()
        return [row[0] for row in rows]
    finally:
        con.close()


def _mart(serving_db: Path) -> dict[str, list[tuple[object, ...]]]:
    con = duckdb.connect(str(serving_db), read_only=True)
    try:
        mart = {}
        for table in MART_TABLES:
            columns = [
                name
                for (name,) in con.execute(
                    "select column_name from information_schema.columns where table_name = ?"
                    " order by ordinal_position",
                    [table],
                ).fetchall()
                if name not in PER_RUN_COLUMNS
            ]
            mart[table] = sorted(
                con.execute(f"select {', '.join(columns)} from {table}").fetchall(), key=repr
            )
        return mart
    finally:
        con.close()


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith((".tmp", ".wal", ".old")))


@dataclass
class Chain:
    env: PipelineEnv
    reference: PipelineEnv
    runs: dict[str, RunResult]
    published: dict[str, tuple[str, int]]  # after each run: the serving file's run and fact rows
    serving_sha: dict[str, str]
    parquet: dict[str, dict[str, str]]
    manifest_dates: dict[str, list[str]]
    leftovers: dict[str, list[str]]


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chain]:
    root = tmp_path_factory.mktemp("disk_full")
    warehouse_fs, serving_fs = root / "warehouse_fs", root / "serving_fs"
    env = PipelineEnv(
        root, root / "extracts", warehouse_fs / "warehouse.duckdb", serving_fs / "oa.duckdb", root / "dh"
    )
    reference_root = root / "reference"
    reference = PipelineEnv(
        reference_root,
        env.extracts,
        reference_root / "warehouse.duckdb",
        reference_root / "serving" / "oa.duckdb",
        reference_root / "dh",
    )
    found = Chain(env, reference, {}, {}, {}, {}, {}, {})

    def record(name: str, result: RunResult) -> None:
        found.runs[name] = result
        found.published[name] = _published_run(env.serving_db)
        found.serving_sha[name] = _sha256(env.serving_db)
        found.parquet[name] = _folder_digest(env.serving_db.parent / "parquet")
        found.manifest_dates[name] = _manifest_dates(env.warehouse)
        found.leftovers[name] = _leftovers(env.serving_db.parent)

    mounted: list[Path] = []
    try:
        for mount, size in ((warehouse_fs, WAREHOUSE_FS_MB), (serving_fs, SERVING_FS_MB)):
            _mount_tmpfs(mount, size)
            mounted.append(mount)
        generate(env.extracts, orders=ORDERS, seed=SEED, days=DAYS, start_date=START)

        record("first", _run(env, "--to", (START + timedelta(days=DAYS - 2)).isoformat()))
        assert found.runs["first"].returncode == 0, found.runs["first"].terminal[-4000:]

        # The uninterrupted run: run 1's warehouse, then the last day with room, beside run 2.
        reference_root.mkdir()
        for suffix in ("", ".wal"):
            source = Path(f"{env.warehouse}{suffix}")
            if source.exists():
                shutil.copyfile(source, Path(f"{reference.warehouse}{suffix}"))
        with ThreadPoolExecutor(max_workers=1) as pool:
            uninterrupted = pool.submit(_run, reference)
            filler = _fill(warehouse_fs, 0)
            record("warehouse_full", _run(env))
            filler.unlink()
            found.runs["reference"] = uninterrupted.result()

        filler = _fill(serving_fs, SERVING_ROOM_LEFT)
        record("serving_full", _run(env))
        filler.unlink()

        record("rerun", _run(env))
        yield found
    finally:
        for mount in mounted:
            _unmount(mount)
        for name, result in found.runs.items():
            print(f"\n{name}: exit {result.returncode} in {result.seconds:.1f} s")
            for step, error in result.failures.items():
                print(
                    f"  failed {step}: {' | '.join(line for line in error.splitlines() if NO_SPACE in line)[:300]}"
                )
            summary = result.terminal[result.terminal.rfind("\nDagster run ") :].strip().splitlines()[:4]
            print("\n".join(f"  | {line[:200]}" for line in summary))


def _assert_failed_cleanly(result: RunResult) -> None:
    """Exit 1 (a step failed), no crash of `order-audit` itself, the reason in Dagster's event log."""
    assert result.returncode == 1, f"exit {result.returncode}:\n{result.terminal[-4000:]}"
    assert "Traceback (most recent call last)" not in result.terminal, result.terminal[-4000:]
    assert result.failures, f"no step failed:\n{result.terminal[-4000:]}"
    assert all(NO_SPACE in error for error in result.failures.values()), result.failures


def test_a_full_warehouse_disk_fails_the_loading_and_keeps_the_published_mart(chain: Chain) -> None:
    run = chain.runs["warehouse_full"]
    _assert_failed_cleanly(run)
    assert all(step.startswith("load_raw_") for step in run.failures), sorted(run.failures)
    assert chain.published["warehouse_full"] == chain.published["first"]
    assert chain.serving_sha["warehouse_full"] == chain.serving_sha["first"], "the serving file changed"
    assert chain.parquet["warehouse_full"] == chain.parquet["first"], "the Parquet exports changed"
    # The warehouse opens, and the day whose loading failed is not recorded as loaded.
    assert chain.manifest_dates["warehouse_full"] == chain.manifest_dates["first"]


def test_a_full_serving_disk_fails_the_publish_and_keeps_the_published_mart(chain: Chain) -> None:
    run = chain.runs["serving_full"]
    _assert_failed_cleanly(run)
    assert sorted(run.failures) == ["published__audit_mart"], run.failures
    assert chain.published["serving_full"] == chain.published["first"]
    assert chain.serving_sha["serving_full"] == chain.serving_sha["first"], "the serving file changed"
    assert chain.parquet["serving_full"] == chain.parquet["first"], "the Parquet exports changed"
    assert len(chain.manifest_dates["serving_full"]) == DAYS, "the last day was not loaded before the publish"
    assert chain.leftovers["serving_full"] == [], "the failed publish left its staging files, taking space"


def test_after_space_is_freed_the_rerun_publishes_the_uninterrupted_mart(chain: Chain) -> None:
    rerun, reference = chain.runs["rerun"], chain.runs["reference"]
    assert reference.returncode == 0, reference.terminal[-4000:]
    assert rerun.returncode == 0, rerun.terminal[-4000:]
    assert chain.published["rerun"][0] != chain.published["first"][0], "nothing new was published"
    assert chain.published["rerun"][1] == ORDERS
    assert chain.leftovers["rerun"] == []
    found, expected = _mart(chain.env.serving_db), _mart(chain.reference.serving_db)
    for table in MART_TABLES:
        assert found[table] == expected[table], f"{table} differs from the uninterrupted run's"


def test_the_terminal_says_no_space_left(chain: Chain) -> None:
    for name in ("warehouse_full", "serving_full"):
        assert NO_SPACE in chain.runs[name].terminal, f"{name}:\n{chain.runs[name].terminal[-4000:]}"
