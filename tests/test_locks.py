"""Readers and locks: `order-audit run` waits a bounded time for a warehouse another process holds.

Real processes only (DuckDB's file lock is per process, so every holder is a child Python process):
a holder that keeps the warehouse open read-only, as an analyst's session does, and a holder of the
run lock, as a second `order-audit run` does. Each `order-audit run` is `python -m orchestration.cli
run` with its own extracts, warehouse, serving file, Dagster home and temp folder.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pytest
from dagster import asset, materialize
from dagster_duckdb import DuckDBResource

from orchestration.generator import generate
from orchestration.locks import (
    LockHolder,
    WarehouseLockedError,
    acquire_run_lock,
    claim_warehouse,
    wait_until_writable,
)
from orchestration.resources import warehouse_resource
from orchestration.settings import PROJECT_ROOT
from tests.conftest import PipelineEnv, pipeline_env, run_environ

EXIT_WAREHOUSE_LOCKED = 3
RUN_TIMEOUT_SECONDS = 900.0
LOCK_TIMEOUT_SECONDS = 2

# Holds the warehouse (read-only, like `duckdb -readonly`) or the run lock until its stdin closes.
HOLDER_SCRIPT = r"""
import os, sys
from pathlib import Path
kind, path = sys.argv[1], Path(sys.argv[2])
if kind == "reader":
    import duckdb
    held = duckdb.connect(str(path), read_only=True)
    held.execute("select count(*) from information_schema.tables").fetchall()
else:
    from orchestration.locks import acquire_run_lock
    held, _ = acquire_run_lock(path, 0)
print(f"holding {os.getpid()}", flush=True)
sys.stdin.read()
"""


@dataclass
class Holder:
    process: subprocess.Popen[str]

    @property
    def pid(self) -> int:
        return self.process.pid

    def release(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(timeout=30)


def _hold(kind: str, warehouse: Path) -> Holder:
    process = subprocess.Popen(
        [sys.executable, "-c", HOLDER_SCRIPT, kind, str(warehouse)],
        cwd=PROJECT_ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    assert line == f"holding {process.pid}\n", f"the holder did not start: {line!r}"
    return Holder(process)


@pytest.fixture
def holders() -> Iterator[list[Holder]]:
    started: list[Holder] = []
    yield started
    for holder in started:
        if holder.process.poll() is None:
            holder.process.kill()
            holder.process.wait()


@dataclass
class Run:
    """An `order-audit run` in a child process; its output is read as it comes."""

    process: subprocess.Popen[str]
    started: float
    lines: list[str] = field(default_factory=list)
    waiting: threading.Event = field(default_factory=threading.Event)
    waiting_at: float | None = None
    free_at: float | None = None
    reader: threading.Thread | None = None

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)
            if "is locked by" in line and not self.waiting.is_set():
                self.waiting_at = time.monotonic()
                self.waiting.set()
            if line.startswith("The warehouse was free after "):
                self.free_at = time.monotonic()

    def finish(self) -> tuple[int, float]:
        returncode = self.process.wait(timeout=RUN_TIMEOUT_SECONDS)
        if self.reader is not None:
            self.reader.join(timeout=30)
        return returncode, time.monotonic() - self.started

    @property
    def output(self) -> str:
        return "".join(self.lines)


def _start_run(env: PipelineEnv, lock_timeout: float) -> Run:
    process = subprocess.Popen(
        [sys.executable, "-m", "orchestration.cli", "run"],
        cwd=PROJECT_ROOT,
        env=run_environ(env, lock_timeout_seconds=str(lock_timeout)),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    run = Run(process, time.monotonic())
    run.reader = threading.Thread(target=run._read, daemon=True)
    run.reader.start()
    return run


@pytest.fixture
def env(tmp_path: Path) -> PipelineEnv:
    env = pipeline_env(tmp_path)
    generate(env.extracts, orders=60, seed=11, days=2)
    return env


def test_a_reader_holding_the_warehouse_stops_the_run_with_a_clear_message(
    env: PipelineEnv, holders: list[Holder]
) -> None:
    duckdb.connect(str(env.warehouse)).close()  # an analyst opened an existing warehouse
    holder = _hold("reader", env.warehouse)
    holders.append(holder)
    run = _start_run(env, LOCK_TIMEOUT_SECONDS)
    returncode, seconds = run.finish()
    print(f"\nlocked run: exit {returncode} after {seconds:.1f} s (lock timeout {LOCK_TIMEOUT_SECONDS} s)")
    assert returncode == EXIT_WAREHOUSE_LOCKED, run.output
    assert seconds < 60, f"the run took {seconds:.0f} s to give up on a {LOCK_TIMEOUT_SECONDS} s timeout"
    assert f"the warehouse {env.warehouse} is locked by" in run.output, run.output
    assert f"(PID {holder.pid})" in run.output, run.output
    assert "Traceback" not in run.output, run.output
    assert "Running order_audit_job" not in run.output, "the Dagster job started"
    assert not env.serving_db.exists()
    assert holder.process.poll() is None, "the holder was disturbed"


def test_another_run_holding_the_run_lock_stops_the_run(env: PipelineEnv, holders: list[Holder]) -> None:
    """A second `order-audit run` waits for the first even when the first does not hold the DuckDB file."""
    holder = _hold("run", env.warehouse)
    holders.append(holder)
    run = _start_run(env, LOCK_TIMEOUT_SECONDS)
    returncode, seconds = run.finish()
    assert returncode == EXIT_WAREHOUSE_LOCKED, run.output
    assert seconds < 60
    assert f"is locked by another order-audit run (PID {holder.pid})" in run.output, run.output
    assert "Traceback" not in run.output, run.output


def test_the_run_waits_for_a_reader_that_lets_go_then_succeeds(
    env: PipelineEnv, holders: list[Holder]
) -> None:
    duckdb.connect(str(env.warehouse)).close()
    holder = _hold("reader", env.warehouse)
    holders.append(holder)
    run = _start_run(env, 120)
    assert run.waiting.wait(timeout=120), f"the run never reported the lock:\n{run.output}"
    held_for = 3.0  # the reader goes on a little while after the run started waiting
    time.sleep(held_for)
    released_at = time.monotonic()
    holder.release()
    returncode, seconds = run.finish()
    ended = time.monotonic()
    assert returncode == 0, run.output
    waited_lines = [line for line in run.lines if line.startswith("The warehouse was free after ")]
    assert len(waited_lines) == 1, run.output
    waited = float(waited_lines[0].removeprefix("The warehouse was free after ").split()[0])
    assert run.free_at is not None
    noticed = run.free_at - released_at
    print(
        f"\nthe run waited {waited:.1f} s for the reader ({held_for:.0f} s of it after saying so), noticed its"
        f" release after {noticed:.2f} s; from the release to the end of the run {ended - released_at:.1f} s"
        f" (whole run {seconds:.1f} s)"
    )
    assert waited >= held_for, f"the run says it waited {waited} s, the reader held it {held_for} s after"
    assert noticed < 5, f"the run took {noticed:.1f} s to notice the release (backoff up to 1 s)"
    con = duckdb.connect(str(env.serving_db), read_only=True)
    try:
        assert con.execute("select count(*) from fact_order_audit").fetchall() == [(60,)]
    finally:
        con.close()


def test_wait_until_writable_names_the_holder_and_is_bounded(tmp_path: Path, holders: list[Holder]) -> None:
    warehouse = tmp_path / "w.duckdb"
    assert wait_until_writable(warehouse, 0) == 0.0  # free: created at once
    holder = _hold("reader", warehouse)
    holders.append(holder)
    seen: list[LockHolder] = []
    started = time.monotonic()
    with pytest.raises(WarehouseLockedError) as raised:
        wait_until_writable(warehouse, 1.5, on_wait=seen.append)
    elapsed = time.monotonic() - started
    assert 1.5 <= elapsed < 5, elapsed
    assert raised.value.holder.pid == holder.pid
    assert seen == [raised.value.holder], "on_wait is called once"
    assert str(warehouse) in str(raised.value)
    assert "Conflicting lock is held in" in (raised.value.duckdb_message or "")
    holder.release()
    run_lock, waited = claim_warehouse(warehouse, 5)
    try:
        assert waited == 0.0
        with pytest.raises(AssertionError, match="the holder did not start"):
            holders.append(_hold("run", warehouse))  # another process's claim waits for this one
    finally:
        run_lock.release()
    claim_warehouse(warehouse, 0)[0].release()


def test_a_dagster_run_waits_for_the_run_lock_of_an_order_audit_run(
    tmp_path: Path, holders: list[Holder], isolated_environ: None
) -> None:
    """A run from the UI, the schedule or the sensor takes the run lock when its warehouse resource
    starts: while an `order-audit run` holds it, the Dagster run waits, then fails naming the holder."""
    env = pipeline_env(tmp_path)
    os.environ.update(run_environ(env, lock_timeout_seconds="1"))

    @asset
    def writes_the_warehouse(warehouse: DuckDBResource) -> None:
        with warehouse.get_connection() as con:
            con.execute("create table written as select 1 as x")

    holder = _hold("run", env.warehouse)
    holders.append(holder)
    blocked = materialize(
        [writes_the_warehouse], resources={"warehouse": warehouse_resource()}, raise_on_error=False
    )
    assert not blocked.success
    failure = next(event for event in blocked.all_events if event.is_failure)
    assert f"is locked by another order-audit run (PID {holder.pid})" in str(failure.event_specific_data)
    holder.release()
    assert materialize([writes_the_warehouse], resources={"warehouse": warehouse_resource()}).success


def test_the_process_holding_the_run_lock_takes_it_again_as_the_same_lock(
    tmp_path: Path, holders: list[Holder]
) -> None:
    """`order-audit run` holds the lock when its Dagster run's resource takes it: no wait, and releasing
    the inner one leaves the lock held until the outer one is released."""
    warehouse = tmp_path / "warehouse.duckdb"
    outer, _ = acquire_run_lock(warehouse, 0)
    inner, waited = acquire_run_lock(warehouse, 0)
    assert waited == 0.0
    inner.release()
    with pytest.raises(AssertionError, match="the holder did not start"):
        holders.append(_hold("run", warehouse))  # still held by `outer`
    outer.release()
    holders.append(_hold("run", warehouse))
