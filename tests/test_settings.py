"""The settings module is the one list of variables: the README's table, dbt's profile and the code
agree with it, and a bad value stops with a message naming the variable. Fast: no pipeline run."""

from __future__ import annotations

import re
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from orchestration.cli import main
from orchestration.quality.config import ThresholdLimits
from orchestration.settings import (
    DBT_PROJECT_DIR,
    PROJECT_ROOT,
    VARIABLES,
    Settings,
    SettingsError,
    is_settings_variable,
    settings_table,
    variable,
)

README = PROJECT_ROOT / "README.md"
ENV_VAR = re.compile(r"""env_var\(\s*'([A-Z0-9_]+)'\s*(?:,\s*'([^']*)'\s*)?\)""")


def _readme_settings_table() -> str:
    text = README.read_text(encoding="utf-8")
    section = text[text.index("\n### Settings\n") :]
    section = section[: section.index("\n##", 1)]
    return "\n".join(line for line in section.splitlines() if line.startswith("|"))


def _table_rows(table: str) -> dict[str, str]:
    """variable cell -> default cell."""
    rows = [[cell.strip() for cell in line.strip("|").split("|")] for line in table.splitlines()[2:]]
    return {row[0]: row[1] for row in rows}


def test_the_readme_table_lists_every_variable_with_its_default() -> None:
    readme = _readme_settings_table()
    expected = settings_table()
    # Names and defaults first, for a readable failure; then the whole table, as generated.
    assert _table_rows(readme) == _table_rows(expected), "paste `order-audit settings` into README.md"
    assert readme == expected, "README's Settings table differs from `order-audit settings`: paste it"


def test_every_variable_the_code_reads_is_in_the_settings() -> None:
    """The ORDER_AUDIT_* names in the code and dbt project are all settings (or the per-currency one)."""
    names: set[str] = set()
    roots = [PROJECT_ROOT / "orchestration", PROJECT_ROOT / "dashboard", DBT_PROJECT_DIR]
    for root in roots:
        for path in root.rglob("*"):
            if path.suffix in {".py", ".sql", ".yml"} and not {"target", "dbt_packages", "logs"} & set(
                path.relative_to(root).parts
            ):
                names.update(
                    re.findall(r"\bORDER_AUDIT_[A-Z0-9_]*[A-Z0-9]\b", path.read_text(encoding="utf-8"))
                )
    names.discard("ORDER_AUDIT_MAX_ABS_BALANCE_")  # the per-currency prefix itself
    assert sorted(name for name in names if not is_settings_variable(name)) == []


def test_env_var_defaults_of_dbt_equal_the_settings_defaults() -> None:
    defaults = Settings.from_env({})
    found: dict[str, str] = {}
    for path in [DBT_PROJECT_DIR / "profiles.yml", *DBT_PROJECT_DIR.glob("macros/**/*.sql")]:
        for name, default in ENV_VAR.findall(path.read_text(encoding="utf-8")):
            found[name] = default
    assert "ORDER_AUDIT_WAREHOUSE" in found and "ORDER_AUDIT_DBT_TARGET" in found
    for name, text in found.items():
        var = variable(name)
        assert var.read_by_dbt, f"{name} is read by dbt: mark it read_by_dbt in orchestration/settings.py"
        expected = getattr(defaults, var.field)
        if var.kind == "path":  # dbt runs in dbt_project/: its relative paths are relative to it
            assert (DBT_PROJECT_DIR / text).resolve() == Path(expected).resolve(), name
        else:
            assert var.parse(name, text) == expected, name
    read_by_dbt = {var.name for var in VARIABLES if var.read_by_dbt}
    assert read_by_dbt == set(found), "read_by_dbt must mark exactly the variables dbt reads"


def test_defaults_and_round_trip_through_a_child_environment() -> None:
    defaults = Settings.from_env({})
    assert defaults.warehouse == PROJECT_ROOT / "data" / "warehouse.duckdb"
    assert defaults.duckdb_threads == 2 and defaults.sla_hours == 72.0 and defaults.as_of == ""
    assert defaults.max_exception_share is None and dict(defaults.max_abs_balance_by_currency) == {}
    assert defaults.dbt_sees_this_warehouse({})
    given = Settings.from_env(
        {
            "ORDER_AUDIT_WAREHOUSE": "elsewhere/w.duckdb",
            "ORDER_AUDIT_MAX_EXCEPTION_SHARE": "0.5",
            "ORDER_AUDIT_MAX_ABS_BALANCE_JPY": "7",
            "ORDER_AUDIT_RAW_PARQUET_DIR": "parquet",
            "ORDER_AUDIT_AS_OF": "2026-11-05T00:00:00Z",
        }
    )
    assert given.warehouse == PROJECT_ROOT / "elsewhere" / "w.duckdb"
    assert given.raw_parquet_dir == DBT_PROJECT_DIR / "parquet"  # as dbt reads it
    assert given.max_abs_balance_by_currency == {"JPY": Decimal("7")}
    assert Settings.from_env(given.environ()) == given
    child = given.child_environ(
        {"PATH": "/bin", "ORDER_AUDIT_WAREHOUSE": "x", "ORDER_AUDIT_MAX_ABS_BALANCE_EUR": "1"}
    )
    assert child["PATH"] == "/bin" and "ORDER_AUDIT_MAX_ABS_BALANCE_EUR" not in child
    assert Settings.from_env(child) == given
    # A relative warehouse is not the file dbt opens from dbt_project/; the absolute path is.
    assert not given.dbt_sees_this_warehouse({"ORDER_AUDIT_WAREHOUSE": "elsewhere/w.duckdb"})
    assert given.dbt_sees_this_warehouse(given.dbt_environ())


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        (
            "ORDER_AUDIT_DUCKDB_THREADS",
            "abc",
            "ORDER_AUDIT_DUCKDB_THREADS must be a positive integer, got 'abc'",
        ),
        ("ORDER_AUDIT_DUCKDB_THREADS", "0", "ORDER_AUDIT_DUCKDB_THREADS must be a positive integer, got '0'"),
        ("ORDER_AUDIT_FRESHNESS_MAX_DAYS", "two", "ORDER_AUDIT_FRESHNESS_MAX_DAYS must be an integer >= 0"),
        ("ORDER_AUDIT_LOCK_TIMEOUT_SECONDS", "-1", "ORDER_AUDIT_LOCK_TIMEOUT_SECONDS must be a number >= 0"),
        ("ORDER_AUDIT_SLA_HOURS", "nan", "ORDER_AUDIT_SLA_HOURS must be a number > 0"),
        ("ORDER_AUDIT_FIRST_EXTRACT_DATE", "1/10/2026", "ORDER_AUDIT_FIRST_EXTRACT_DATE must be a date"),
        ("ORDER_AUDIT_DBT_TARGET", "postgres", "ORDER_AUDIT_DBT_TARGET must be duckdb or spark"),
        (
            "ORDER_AUDIT_MAX_EXCEPTION_SHARE",
            "2",
            "ORDER_AUDIT_MAX_EXCEPTION_SHARE must be a number between 0 and 1",
        ),
        ("ORDER_AUDIT_MAX_ABS_BALANCE_EUR", "lots", "ORDER_AUDIT_MAX_ABS_BALANCE_EUR must be an amount >= 0"),
        (
            "ORDER_AUDIT_DUCKDB_MEMORY_LIMIT",
            "lots",
            "ORDER_AUDIT_DUCKDB_MEMORY_LIMIT must be a DuckDB memory size",
        ),
        (
            "ORDER_AUDIT_DUCKDB_MEMORY_LIMIT",
            "0GB",
            "ORDER_AUDIT_DUCKDB_MEMORY_LIMIT must be a DuckDB memory size",
        ),
        (
            "ORDER_AUDIT_QUALITY_TIMEOUT_SECONDS",
            "",
            "ORDER_AUDIT_QUALITY_TIMEOUT_SECONDS must be a number > 0",
        ),
    ],
)
def test_a_bad_value_names_the_variable(name: str, value: str, message: str) -> None:
    with pytest.raises(SettingsError, match=re.escape(message)):
        Settings.from_env({name: value})


def test_threshold_limits_come_from_the_settings(tmp_path: Path) -> None:
    limits_file = tmp_path / "limits.json"
    limits_file.write_text(
        '{"max_exception_share": 0.1, "max_abs_balance": {"default": "5", "per_currency": {"JPY": "9"}}}'
    )
    limits = ThresholdLimits.from_settings(
        Settings.from_env(
            {"ORDER_AUDIT_QUALITY_LIMITS_FILE": str(limits_file), "ORDER_AUDIT_MAX_ABS_BALANCE_JPY": "10"}
        )
    )
    assert limits.max_exception_share == 0.1 and limits.max_abs_balance_default == Decimal("5")
    assert limits.max_abs_balance_by_currency == {"JPY": Decimal("10")}


def test_the_cli_prints_the_message_and_exits_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ORDER_AUDIT_DUCKDB_THREADS", "abc")
    assert main(["settings"]) == 2
    assert capsys.readouterr().err.strip() == (
        "order-audit: ORDER_AUDIT_DUCKDB_THREADS must be a positive integer, got 'abc'"
    )


def test_order_audit_settings_prints_the_table_in_a_child_process() -> None:
    """As a user runs it: a console script in a clean process (no traceback, the README's table)."""
    printed = subprocess.run(
        [sys.executable, "-m", "orchestration.cli", "settings"], capture_output=True, text=True, check=True
    )
    assert printed.stdout.strip() == settings_table()
    bad = subprocess.run(
        [sys.executable, "-m", "orchestration.cli", "sql", "select 1"],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "ORDER_AUDIT_DUCKDB_THREADS": "abc"},
        check=False,
    )
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert "ORDER_AUDIT_DUCKDB_THREADS must be a positive integer, got 'abc'" in bad.stderr
