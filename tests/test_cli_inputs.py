"""Bad input on the command line: one clear line and exit status 2, never a traceback or a wrong run."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
from dagster._utils.error import SerializableErrorInfo

from orchestration.settings import Settings, SettingsError, check_utc_time
from orchestration.summary import _first_line, render_text
from orchestration.transform.assets import AuditConfig


def _order_audit(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "orchestration.cli", *args],
        env=os.environ | (env or {}),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "--from", "2026-13-01"], "argument --from: must be a date as YYYY-MM-DD, got '2026-13-01'"),
        (["run", "--to", "yesterday"], "argument --to: must be a date as YYYY-MM-DD, got 'yesterday'"),
        (["run", "--as-of", "yesterday"], "argument --as-of: must be an ISO 8601 time such as"),
        (["run", "--sla-hours", "-5"], "argument --sla-hours: must be a number > 0, got '-5'"),
        (["generate", "--orders", "-3"], "argument --orders: must be a positive integer, got '-3'"),
        (["generate", "--start-date", "2026-02-30"], "argument --start-date: must be a date as YYYY-MM-DD"),
        (
            ["generate", "--exception-rate", "2"],
            "argument --exception-rate: must be a number between 0 and 1",
        ),
        (["exceptions", "list", "--limit", "-1"], "argument --limit: must be a positive integer, got '-1'"),
        (
            ["exceptions", "list", "--code", "UNDERPAYED"],
            "argument --code: unknown exception code 'UNDERPAYED'; the codes are",
        ),
        (["bench", "--orders", "0"], "argument --orders: must be a positive integer, got '0'"),
    ],
)
def test_a_bad_argument_is_a_usage_error(args: list[str], message: str) -> None:
    done = _order_audit(*args)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert message in done.stderr, done.stderr


def test_as_of_times_are_converted_to_utc() -> None:
    """DuckDB's cast to TIMESTAMP drops an offset (12:00+02:00 would audit at 12:00): converted first."""
    assert check_utc_time("--as-of", "2026-11-10T12:00:00+02:00") == "2026-11-10 10:00:00"
    assert check_utc_time("--as-of", "2026-11-10T12:00:00Z") == "2026-11-10 12:00:00"
    assert check_utc_time("--as-of", " 2026-11-10 12:00:00.25 ") == "2026-11-10 12:00:00.250000"
    assert check_utc_time("--as-of", "2026-11-10") == "2026-11-10 00:00:00"
    with pytest.raises(SettingsError, match="ORDER_AUDIT_AS_OF must be an ISO 8601 time"):
        Settings.from_env({"ORDER_AUDIT_AS_OF": "tomorrow"})
    assert (
        Settings.from_env({"ORDER_AUDIT_AS_OF": "2026-11-10T01:00:00-05:00"}).as_of == "2026-11-10 06:00:00"
    )
    assert Settings.from_env({}).as_of == ""
    # The run config (the Dagster UI's launchpad) is checked the same way.
    settings = Settings.from_env({})
    assert (
        AuditConfig(as_of="2026-11-10T12:00:00+02:00").dbt_vars(settings)["audit_as_of"]
        == "2026-11-10 10:00:00"
    )
    with pytest.raises(SettingsError, match="as_of must be an ISO 8601 time"):
        AuditConfig(as_of="yesterday").dbt_vars(settings)
    with pytest.raises(SettingsError, match="fulfillment_sla_hours must be a number > 0"):
        AuditConfig(fulfillment_sla_hours=-5).dbt_vars(settings)


def test_a_missing_landing_folder_is_not_filled_with_sample_data(tmp_path: Path) -> None:
    missing = tmp_path / "mnt" / "landing"
    env = {
        "ORDER_AUDIT_EXTRACTS_DIR": str(missing),
        "ORDER_AUDIT_WAREHOUSE": str(tmp_path / "warehouse.duckdb"),
        "DAGSTER_HOME": str(tmp_path / "dagster_home"),
    }
    done = _order_audit("run", env=env)
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"the landing folder {missing} (ORDER_AUDIT_EXTRACTS_DIR) does not exist" in done.stderr
    assert not missing.exists() and not (tmp_path / "warehouse.duckdb").exists()
    missing.mkdir(parents=True)
    empty = _order_audit("run", env=env)
    assert empty.returncode == 2 and "has no extract file" in empty.stderr
    assert list(missing.iterdir()) == []


def test_sql_never_falls_back_to_the_warehouse(tmp_path: Path) -> None:
    warehouse = tmp_path / "warehouse.duckdb"
    con = duckdb.connect(str(warehouse))
    con.execute("create table fact_order_audit as select 1 as order_id")
    con.close()
    serving = tmp_path / "serving" / "oa.duckdb"
    env = {"ORDER_AUDIT_WAREHOUSE": str(warehouse), "ORDER_AUDIT_SERVING_DB": str(serving)}
    done = _order_audit("sql", "select count(*) from fact_order_audit", env=env)
    assert done.returncode == 2 and done.stdout == ""
    assert f"no published mart at {serving}: run `order-audit run` first" in done.stderr
    asked = _order_audit(
        "sql", "select count(*) as n from fact_order_audit", "--database", str(warehouse), env=env
    )
    assert asked.returncode == 0 and "1" in asked.stdout, asked.stderr


def test_step_errors_are_one_readable_line() -> None:
    failure = SerializableErrorInfo(
        "dagster._core.definitions.events.Failure: No landing files for 2026-11-03\n", [], "Failure"
    )
    assert _first_line(failure) == "No landing files for 2026-11-03"
    dbt = SerializableErrorInfo(
        "dagster_dbt.errors.DagsterDbtCliRuntimeError: The dbt CLI process with command\n\n`dbt build`\n\n"
        "failed with exit code `2`. Check the stdout in the Dagster compute logs for the full information"
        " about the error.\n\nErrors parsed from dbt logs:\n\nRuntime Error in model int_audit_clock:"
        " invalid timestamp\n\nanother\n",
        [],
        "DagsterDbtCliRuntimeError",
    )
    assert (
        _first_line(dbt)
        == "dbt failed (exit code 2): Runtime Error in model int_audit_clock: invalid timestamp"
    )
    blocked = SerializableErrorInfo(  # Dagster's heading, its list on the next lines
        "dagster._core.errors.DagsterAssetCheckFailedError: 1 blocking asset check failed with ERROR severity:\n"
        "raw/payments: payments_unique_per_file\n",
        [],
        "DagsterAssetCheckFailedError",
    )
    assert _first_line(blocked) == (
        "1 blocking asset check failed with ERROR severity: raw/payments: payments_unique_per_file"
    )


def test_a_run_that_publishes_nothing_labels_the_mart_it_built() -> None:
    summary = {
        "run_id": "r1",
        "outcome": "blocked",
        "published": False,
        "mart_built": True,
        "serving_db": "/srv/oa.duckdb",
        "log_file": None,
        "step_failures": [],
        "dbt_tests_not_passed": [],
        "stale_sources": [],
        "sample_extracts": False,
        "loading": [],
        "rejected_files": [],
        "orders_audited": {"exception": 2, "ok": 8},
        "gx_suites": [],
        "gx_failures": [],
        "open_exceptions": [{"code": "UNDERPAID", "severity": "error", "count": 2}],
        "open_exceptions_by_workflow_state": {"open": 2},
        "notifications": [],
    }
    text = render_text(summary)
    assert "Orders audited (this run's mart, not published): 10 (exception: 2, ok: 8)" in text
    assert "Open exceptions by code (this run's mart, not published) (2 still detected):" in text
    published = render_text(summary | {"outcome": "succeeded", "published": True})
    assert "Orders audited: 10" in published and "not published" not in published


def test_generate_refuses_what_its_ids_cannot_hold_before_touching_the_folder(tmp_path: Path) -> None:
    out = tmp_path / "landing"
    done = _order_audit("generate", "--orders", "100000000", "--out", str(out))
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "order-audit generate: orders must be between 1 and 99,999,999" in done.stderr
    assert not out.exists()


def _pipeline_in(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A landing folder and the environment of a pipeline of its own under `tmp_path`."""
    extracts = tmp_path / "extracts"
    return extracts, {
        "ORDER_AUDIT_EXTRACTS_DIR": str(extracts),
        "ORDER_AUDIT_WAREHOUSE": str(tmp_path / "warehouse.duckdb"),
        "ORDER_AUDIT_SERVING_DB": str(tmp_path / "serving" / "oa.duckdb"),
        "DAGSTER_HOME": str(tmp_path / "dagster_home"),
    }


def test_a_range_without_files_of_a_required_source_is_refused_before_the_run(tmp_path: Path) -> None:
    extracts, env = _pipeline_in(tmp_path)
    generated = _order_audit("generate", "--orders", "20", "--days", "2", "--out", str(extracts), env=env)
    assert generated.returncode == 0, generated.stderr
    header = next((extracts / "payments").glob("*.csv")).read_text().splitlines()[0]
    (extracts / "payments" / "payments_2999-01-01.csv").write_text(header + "\n")  # never loaded: not newest
    done = _order_audit("run", "--from", "2026-10-20", "--to", "2026-10-21", env=env)
    assert done.returncode == 2, done.stdout + done.stderr
    assert (
        "No landing file of the required source(s) orders, payments, inventory_movements is dated 2026-10-20 to"
        " 2026-10-21" in done.stdout
    ), done.stdout
    assert (
        "(orders: newest file dated 2026-11-02; payments: newest file dated 2026-11-02, a file dated after today"
        " (2999-01-01) waits;" in done.stdout
    ), done.stdout
    assert "Running order_audit_job" not in done.stdout, "no run started"

    future = _order_audit("run", "--from", "2026-11-01", "--to", "2999-01-01", env=env)
    assert future.returncode == 2 and "Running order_audit_job" not in future.stdout
    assert "--to 2999-01-01 is after today" in future.stdout, future.stdout

    # A new day whose payments have not landed, beside a payments file whose name has no valid date (it
    # belongs to no date, so it does not stand in for them).
    for source in ("orders", "inventory_movements"):
        for day_two in (extracts / source).glob(f"{source}_2026-11-02*"):
            day_three = day_two.name.replace("2026-11-02", "2026-11-03")
            (extracts / source / day_three).write_bytes(day_two.read_bytes())
    payments = sorted((extracts / "payments").glob("payments_2026-11-02*"))[0]
    (extracts / "payments" / "payments_20261103.csv").write_bytes(payments.read_bytes())
    early = _order_audit("run", "--from", "2026-11-03", "--to", "2026-11-03", env=env)
    assert early.returncode == 2, early.stdout + early.stderr
    assert "required source(s) payments is dated 2026-11-03 to 2026-11-03" in early.stdout, early.stdout


def test_a_plain_run_leaves_out_a_day_not_all_sources_delivered_and_outlives_its_reader(
    tmp_path: Path,
) -> None:
    """Orders and movements of a new day land before its payments: a plain `order-audit run` audits the days
    it can and says which waits (it used to start and fail in the loaders). Its reader goes away after the
    first line (`| head -1`): the run goes on, publishes and exits with its own status (it used to fail the
    Dagster run on the broken pipe and exit 0)."""
    extracts, env = _pipeline_in(tmp_path)
    generated = _order_audit("generate", "--orders", "20", "--days", "3", "--out", str(extracts), env=env)
    assert generated.returncode == 0, generated.stderr
    for late in (extracts / "payments").glob("payments_2026-11-03*"):
        late.rename(tmp_path / late.name)
    run = subprocess.Popen(
        [sys.executable, "-m", "orchestration.cli", "run"],
        env=os.environ | env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert run.stdout is not None
    first_line = run.stdout.readline()
    run.stdout.close()  # the reader goes away
    assert run.wait(timeout=300) == 0
    assert (
        "Left out, until every required source has delivered a file of the date: 2026-11-03 (no payments"
        in (first_line)
    ), first_line
    published = duckdb.connect(env["ORDER_AUDIT_SERVING_DB"], read_only=True)
    try:
        dates = published.execute("select min(extract_date), max(extract_date) from load_manifest").fetchone()
    finally:
        published.close()
    assert dates is not None and [str(day) for day in dates] == ["2026-11-01", "2026-11-02"]


def test_generate_replaces_only_what_it_wrote_and_never_deletes_a_real_extract(tmp_path: Path) -> None:
    out = tmp_path / "extracts"
    small = ("generate", "--orders", "20", "--days", "2", "--out", str(out))
    assert _order_audit(*small).returncode == 0
    notes = out / "_ground_truth" / "notes.txt"
    notes.write_text("mine")
    again = _order_audit(*small, "--seed", "7")
    assert again.returncode == 0, again.stderr  # its own earlier files are replaced
    assert notes.read_text() == "mine", "a file generate did not write stays, in _ground_truth too"

    delivered = out / "payments" / "payments_2026-11-02_psp.csv"
    delivered.write_text("payment_id,order_id\nP1,O1\n")
    changed = sorted((out / "payments").glob("payments_2026-11-01*.csv"))[0]
    changed.write_text(changed.read_text().replace(",USD,", ",EUR,"))  # a correction of the same size
    before = {path: path.read_bytes() for path in out.rglob("*") if path.is_file()}
    refused = _order_audit(*small)
    assert refused.returncode == 2
    assert "holds 2 extract file(s) that generate did not write or that changed since" in refused.stderr
    assert "payments/payments_2026-11-02_psp.csv" in refused.stderr and "Traceback" not in refused.stderr
    assert {path: path.read_bytes() for path in out.rglob("*") if path.is_file()} == before


def test_generate_stops_on_a_folder_it_has_no_record_of(tmp_path: Path) -> None:
    out = tmp_path / "extracts"
    assert _order_audit("generate", "--orders", "20", "--days", "2", "--out", str(out)).returncode == 0
    (out / "_ground_truth" / "written_files.json").unlink()  # as sample data of an earlier order-audit
    refused = _order_audit("generate", "--orders", "20", "--days", "2", "--out", str(out))
    assert refused.returncode == 2, refused.stderr
    assert "that generate has no record of writing" in refused.stderr


def test_bench_refuses_a_workdir_that_is_not_its_own(tmp_path: Path) -> None:
    """The benchmark empties its workdir: `--workdir .` must not delete a repository."""
    (tmp_path / "keep.txt").write_text("not the benchmark's\n")
    done = _order_audit("bench", "--orders", "5", "--workdir", str(tmp_path))
    assert done.returncode == 2, done.stdout + done.stderr
    assert "is not empty and holds no earlier benchmark" in done.stderr, done.stderr
    assert (tmp_path / "keep.txt").exists()


def test_ui_on_a_port_in_use_stops_at_once(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = _order_audit("ui", "--port", str(port), env={"DAGSTER_HOME": str(tmp_path / "dagster_home")})
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"port {port} of 127.0.0.1 is not free" in done.stderr, done.stderr
