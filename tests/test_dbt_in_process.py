"""dbt inside the Dagster step's process (orchestration/transform/in_process.py): the same dbt
command as the subprocess, its events, artifacts and errors as dagster-dbt reads them, and the
warehouse file closed when dbt's output ends, as a subprocess's exit closes it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest
from dagster_dbt.errors import DagsterDbtCliRuntimeError

from orchestration.settings import DBT_PROJECT_DIR, PROJECT_ROOT
from orchestration.transform.in_process import InProcessDbt, _flags_from, runs_in_process
from orchestration.transform.project import dbt_cli, dbt_executable


@pytest.fixture
def warehouse(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "warehouse.duckdb"
    monkeypatch.setenv("ORDER_AUDIT_WAREHOUSE", str(path))
    monkeypatch.delenv("ORDER_AUDIT_DBT_IN_PROCESS", raising=False)
    monkeypatch.delenv("ORDER_AUDIT_DBT_TARGET", raising=False)
    return path


def test_a_dbt_build_in_process_writes_the_warehouse_and_closes_it_when_its_output_ends(
    warehouse: Path, tmp_path: Path
) -> None:
    target = tmp_path / "target"
    invocation = dbt_cli().cli(["seed", "--select", "exception_codes"], target_path=target)
    assert isinstance(invocation.process, InProcessDbt)
    events = list(invocation.stream_raw_events())

    # Opening the file read-only in this process fails while dbt-duckdb still holds it for writing.
    with duckdb.connect(str(warehouse), read_only=True) as con:
        codes = con.execute("select count(*) from reference.exception_codes").fetchone()
    assert codes is not None and codes[0] >= 20
    assert invocation.is_successful() and invocation.process.returncode == 0
    names = [event.raw_event["info"]["name"] for event in events]
    assert "MainReportVersion" in names and "LogSeedResult" in names
    # The events dagster-dbt receives are the CLI's stdout (info and up); dbt.log keeps debug too.
    assert {event.raw_event["info"]["level"] for event in events} <= {"info", "warn", "error"}
    log_levels = {json.loads(line)["info"]["level"] for line in (target / "dbt.log").read_text().splitlines()}
    assert "debug" in log_levels
    results = json.loads((target / "run_results.json").read_text())
    assert "seed.order_audit.exception_codes" in [r["unique_id"] for r in results["results"]]


def test_a_failing_dbt_command_in_process_fails_as_the_subprocess_does(
    warehouse: Path, tmp_path: Path
) -> None:
    in_process = dbt_cli().cli(
        ["run-operation", "no_such_macro"], target_path=tmp_path / "in_process", raise_on_error=False
    )
    assert isinstance(in_process.process, InProcessDbt)
    assert not in_process.is_successful()
    error = in_process.get_error()
    assert isinstance(error, DagsterDbtCliRuntimeError) and "no_such_macro" in str(error)

    cli = subprocess.run(
        [dbt_executable(), "run-operation", "no_such_macro", "--target-path", str(tmp_path / "cli")],
        cwd=DBT_PROJECT_DIR,
        capture_output=True,
        text=True,
        check=False,
    )
    assert in_process.process.returncode == cli.returncode != 0, cli.stdout


def test_an_interrupt_stops_in_process_dbt_at_once_and_closes_the_warehouse(
    warehouse: Path, tmp_path: Path
) -> None:
    # A query that would scan for minutes; Ctrl-C (dagster-dbt forwards it as SIGINT) must end dbt
    # as it ends the CLI, not after every remaining node, and leave the warehouse file closed.
    endless = "select count(*) as n from range(1000000000000) as t(i) where i % 7 = 3"
    invocation = dbt_cli().cli(
        ["show", "--inline", endless], target_path=tmp_path / "target", raise_on_error=False
    )
    process = invocation.process
    assert isinstance(process, InProcessDbt)
    for line in process.stdout:
        if json.loads(line)["info"]["name"] == "ConcurrencyLine":  # dbt is about to run the query
            break
    time.sleep(1.0)
    interrupted_at = time.monotonic()
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=60) == 2
    assert time.monotonic() - interrupted_at < 20
    lines = [json.loads(line) for line in process.stdout]
    assert lines[-1]["info"] == {"level": "error", "msg": "dbt was interrupted", "name": "InProcessDbtError"}
    with duckdb.connect(str(warehouse), read_only=True) as con:
        assert con.execute("select 1").fetchone() == (1,)


_LEAVE_DBT_RUNNING = """
import json, multiprocessing, sys, time
from pathlib import Path


def start_dbt_and_leave(target):
    from orchestration.transform.project import dbt_cli

    endless = "select count(*) as n from range(1000000000000) as t(i) where i % 7 = 3"
    invocation = dbt_cli().cli(["show", "--inline", endless], target_path=Path(target))
    for line in invocation.process.stdout:
        if json.loads(line)["info"]["name"] == "ConcurrencyLine":  # dbt is about to run the query
            break
    time.sleep(1.0)


if __name__ == "__main__":
    if sys.argv[2] == "spawned":  # as Dagster's run worker: a multiprocessing child
        child = multiprocessing.get_context("spawn").Process(target=start_dbt_and_leave, args=(sys.argv[1],))
        child.start()
        child.join(120)
        sys.exit(child.exitcode)
    start_dbt_and_leave(sys.argv[1])
"""


@pytest.mark.parametrize("process", ["plain", "spawned"])
def test_a_process_that_exits_with_dbt_running_stops_it_as_an_interrupt_does(
    process: str, warehouse: Path, tmp_path: Path
) -> None:
    # A run terminated from the Dagster UI can end its process without dagster-dbt forwarding the
    # interrupt. dbt's thread (a daemon) would die mid-statement at exit; in a multiprocessing child,
    # multiprocessing's exit handler first ended dbt's thread pool and dbt hung for good. The exit
    # interrupts dbt and waits for it, as Ctrl-C does: run results written, the command ended.
    script = tmp_path / "leave_dbt_running.py"
    script.write_text(_LEAVE_DBT_RUNNING)
    target = tmp_path / "target"
    started = time.monotonic()
    subprocess.run(
        [sys.executable, str(script), str(target), process],
        cwd=PROJECT_ROOT,
        env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)},
        check=True,
        timeout=120,
    )
    log = [json.loads(line)["info"] for line in (target / "dbt.log").read_text().splitlines()]
    assert any(
        event["name"] == "CommandCompleted" and "`cli show` failed" in event["msg"] for event in log
    ), log[-3:]
    assert (target / "run_results.json").exists()
    assert time.monotonic() - started < 25  # the exit waits up to 30 s for a dbt that does not end


def test_relative_target_and_log_paths_are_the_dbt_projects_as_for_the_subprocess() -> None:
    # dagster-dbt runs the subprocess in the dbt project (`cwd`); this process runs elsewhere, and
    # dbt takes a relative --log-path from the working directory (it wrote <repo>/target/dbt.log).
    environment = {
        "DBT_TARGET_PATH": "target/x",
        "DBT_LOG_PATH": "target/x",
        "DBT_INDIRECT_SELECTION": "eager",
    }
    flags = _flags_from(environment, DBT_PROJECT_DIR)
    assert flags[flags.index("--target-path") + 1] == str(DBT_PROJECT_DIR / "target" / "x")
    assert flags[flags.index("--log-path") + 1] == str(DBT_PROJECT_DIR / "target" / "x")
    assert flags[flags.index("--indirect-selection") + 1] == "eager"
    assert _flags_from({"DBT_LOG_PATH": "/elsewhere/logs"}, DBT_PROJECT_DIR)[:2] == [
        "--log-path",
        "/elsewhere/logs",
    ]


def test_dbt_runs_as_a_subprocess_where_in_process_would_differ(
    warehouse: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert runs_in_process(dbt_executable())
    monkeypatch.setenv("ORDER_AUDIT_WAREHOUSE", "relative/warehouse.duckdb")  # relative to dbt_project/
    assert not runs_in_process(dbt_executable())
    monkeypatch.setenv("ORDER_AUDIT_WAREHOUSE", str(warehouse))
    monkeypatch.setenv("ORDER_AUDIT_DBT_TARGET", "spark")
    assert not runs_in_process(dbt_executable())
    monkeypatch.setenv("ORDER_AUDIT_DBT_TARGET", "duckdb")
    monkeypatch.setenv("ORDER_AUDIT_DBT_IN_PROCESS", "false")
    assert not runs_in_process(dbt_executable())
    assert not runs_in_process("/somewhere/else/bin/dbt")


def test_the_warm_up_parse_keeps_a_new_warehouses_parse_state_and_a_build_waits_for_it(
    warehouse: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from orchestration.transform import prewarm
    from orchestration.transform.project import _parse_state_of_this_warehouse, dbt_project

    target_root = dbt_project.project_dir / dbt_project.target_path
    stale = target_root / f"{prewarm.TARGET_PREFIX}-left-by-a-killed-run"
    stale.mkdir(parents=True, exist_ok=True)
    os.utime(stale, (time.time() - 2 * prewarm.STALE_AFTER_SECONDS,) * 2)
    state = _parse_state_of_this_warehouse()
    assert not state.exists(), "a new warehouse path has no parse state yet"

    monkeypatch.setattr(prewarm, "_prewarm", None)
    prewarm.start_prewarm(dbt_executable())
    warming = prewarm._prewarm
    assert warming is not None
    prewarm.start_prewarm(dbt_executable())
    assert prewarm._prewarm is warming, "one warm-up per process"
    invocation = dbt_cli().cli(["seed", "--select", "exception_codes"], target_path=tmp_path / "seed")
    assert not warming.is_alive(), "a dbt command starts once the warm-up has ended"
    assert state.exists(), "the warm-up's full parse is this warehouse's parse state"
    assert not stale.exists() and not [
        folder for folder in target_root.glob(f"{prewarm.TARGET_PREFIX}-*") if folder.is_dir()
    ]
    assert invocation.is_successful()
    log = (tmp_path / "seed" / "dbt.log").read_text()
    assert "Unable to do partial parsing" not in log and "Partial parsing enabled" in log


def _parse_events(target: Path) -> set[str]:
    """dbt's events of checking its parse state (a partial or a full parse) in a command's dbt.log."""
    names = {json.loads(line)["info"]["name"] for line in (target / "dbt.log").read_text().splitlines()}
    return names & {"StateCheckVarsHash", "PartialParsingEnabled", "UnableToPartialParse"}


# The seed and its own tests only (the mart's relationship tests to it need the mart).
BUILD_THE_SEED = ["build", "--select", "exception_codes", "--indirect-selection", "cautious"]


def test_the_build_after_the_warm_up_takes_its_manifest_and_the_next_command_parses_again(
    warehouse: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from orchestration.transform import prewarm

    monkeypatch.setattr(prewarm, "_prewarm", None)
    monkeypatch.setattr(prewarm, "_parsed", None)
    prewarm.start_prewarm(dbt_executable())
    first = dbt_cli().cli(BUILD_THE_SEED, target_path=tmp_path / "first")
    assert first.is_successful()
    assert _parse_events(tmp_path / "first") == set(), "the build parsed nothing"
    results = json.loads((tmp_path / "first" / "run_results.json").read_text())
    manifest = json.loads((tmp_path / "first" / "manifest.json").read_text())
    assert results["results"] and {r["status"] for r in results["results"]} <= {"success", "pass"}
    assert manifest["metadata"]["invocation_id"] == results["metadata"]["invocation_id"]

    second = dbt_cli().cli(BUILD_THE_SEED, target_path=tmp_path / "second")
    assert second.is_successful()
    assert "StateCheckVarsHash" in _parse_events(tmp_path / "second"), "the manifest is used once"


def test_only_a_build_whose_parse_is_the_warm_ups_takes_its_manifest(monkeypatch: pytest.MonkeyPatch) -> None:
    from orchestration.transform import prewarm

    project = ["--project-dir", str(DBT_PROJECT_DIR), "--profiles-dir", str(DBT_PROJECT_DIR)]
    flags = ["--select", "fqn:*", "--exclude-resource-type", "unit_test", "--log-format", "json", "--quiet"]
    parsed = object()

    def taken(
        warm_up_vars: dict[str, object],
        command: list[str],
        *,
        started: float | None = None,
        **environment: str,
    ) -> bool:
        inputs = prewarm._parse_inputs(["build", *project, "--vars", json.dumps(warm_up_vars)])
        assert inputs is not None
        warm_up = prewarm._WarmUp(parsed, inputs, {**os.environ, **environment}, started or time.time())
        monkeypatch.setattr(prewarm, "_parsed", warm_up)
        took = prewarm.take_manifest(command) is parsed
        assert prewarm.take_manifest(["build", *project]) is None, "once"
        return took

    as_of = {"audit_as_of": "2026-11-10"}
    as_of_vars = ["--vars", json.dumps(as_of)]
    relative = ["--project-dir", os.path.relpath(DBT_PROJECT_DIR), "--profiles-dir", str(DBT_PROJECT_DIR)]
    another_project = ["--project-dir", str(PROJECT_ROOT), "--profiles-dir", str(DBT_PROJECT_DIR)]
    assert taken({}, ["build", *flags, *project])
    assert taken(as_of, ["build", *as_of_vars, *project])
    assert taken({}, ["build", *relative])
    assert not taken({}, ["build", *as_of_vars, *project])
    assert not taken(as_of, ["build", *project])
    assert not taken({}, ["build", "--vars", "audit_as_of: '2026-11-10'", *project]), "YAML: not compared"
    assert not taken({}, ["build", "--target", "spark", *project])
    assert not taken({}, ["build", *another_project])
    assert not taken({}, ["seed", *project])
    assert not taken({}, ["build", "--select"])
    assert not taken({}, ["build", *project], ORDER_AUDIT_WAREHOUSE="/another/warehouse.duckdb"), (
        "environment"
    )
    assert not taken({}, ["build", *project], started=1.0), "a project file changed after the warm-up started"


def test_no_warm_up_where_dbt_runs_as_a_subprocess(warehouse: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from orchestration.transform import prewarm

    monkeypatch.setenv("ORDER_AUDIT_DBT_IN_PROCESS", "false")
    monkeypatch.setattr(prewarm, "_prewarm", None)
    prewarm.start_prewarm(dbt_executable())
    assert prewarm._prewarm is None


_PROFILE_AFTER_DBT = """
import json, signal, sys, time
from pathlib import Path

from orchestration.transform.project import dbt_cli

target = Path(sys.argv[1])
finished = dbt_cli().cli(["seed", "--select", "exception_codes"], target_path=target / "seed")
assert finished.process.wait(timeout=120) == 0
endless = "select count(*) as n from range(1000000000000) as t(i) where i % 7 = 3"
interrupted = dbt_cli().cli(["show", "--inline", endless], target_path=target / "show", raise_on_error=False)
for line in interrupted.process.stdout:
    if json.loads(line)["info"]["name"] == "ConcurrencyLine":
        break
time.sleep(0.5)
interrupted.process.send_signal(signal.SIGINT)
assert interrupted.process.wait(timeout=60) == 2


def numbers():
    yield from range(3)


sys.setprofile(lambda *_: None)  # as cProfile, coverage or a debugger do
print(list(numbers()), flush=True)
"""


def test_a_profiler_still_works_after_in_process_dbt_ran_and_was_interrupted(
    warehouse: Path, tmp_path: Path
) -> None:
    # Dropping a pending asynchronous exception (PyThreadState_SetAsyncExc with NULL) left CPython
    # 3.11's pending flag set: with a profile function, the next generator resumption looped for ever.
    script = tmp_path / "profile_after_dbt.py"
    script.write_text(_PROFILE_AFTER_DBT)
    done = subprocess.run(
        [sys.executable, str(script), str(tmp_path)],
        cwd=PROJECT_ROOT,
        env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-1] == "[0, 1, 2]"
