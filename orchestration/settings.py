"""Every setting of the project, each overridable by one environment variable with an in-repo default.

`VARIABLES` lists them all (name, default, type, one-line meaning): `Settings.from_env()` reads and
checks them once, the README's "Settings" table is generated from the same list (`order-audit
settings`), and `dbt_project/profiles.yml` repeats the defaults of the ones dbt reads (a test keeps
them equal). Code that needs a setting gets a `Settings`, never reads `os.environ` itself.

Relative paths are relative to the repository root, except those only dbt reads
(`ORDER_AUDIT_RAW_PARQUET_DIR`, `ORDER_AUDIT_SPARK_WAREHOUSE_DIR`), which dbt takes relative to
`dbt_project/`, the folder it runs in.

One variable is not here because its name is data: a webhook destination of `routing.yml` names the
variable holding its URL (`webhook_env`), read by `orchestration.publish.notify` when it sends.
"""

from __future__ import annotations

import functools
import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DBT_PROJECT_DIR = PROJECT_ROOT / "dbt_project"
EXPECTATIONS_DIR = PROJECT_ROOT / "expectations"
# `order-audit generate` writes its ground truth into this folder of the landing folder; the loaders
# never read it, and a landing folder holding it holds the generated sample.
GROUND_TRUTH_DIR = "_ground_truth"

DBT_TARGETS = ("duckdb", "spark")
PER_CURRENCY_BALANCE_PREFIX = "ORDER_AUDIT_MAX_ABS_BALANCE_"
_PER_CURRENCY_ENV = re.compile(rf"^{PER_CURRENCY_BALANCE_PREFIX}([A-Z]{{3}})$")


class SettingsError(ValueError):
    """A variable's value is not valid; the message names the variable and the value."""


# ------------------------------------------------------------------ parsers: (variable name, text) -> value


def _bad(name: str, expected: str, text: str) -> SettingsError:
    return SettingsError(f"{name} must be {expected}, got {text!r}")


def _non_empty_text(name: str, text: str) -> str:
    if not text.strip():
        raise _bad(name, "a non-empty value", text)
    return text.strip()


@functools.cache
def _duckdb_takes_memory_limit(value: str) -> bool:
    """Whether DuckDB's own parser takes `value` as a memory_limit (asked once per value and process: a
    connection costs about 15 ms, and every asset reads the settings)."""
    import duckdb

    try:
        duckdb.connect(config={"memory_limit": value}).close()
    except duckdb.Error:
        return False
    return True


def _duckdb_memory(name: str, text: str) -> str:
    """A size DuckDB's memory_limit takes ('2560MB', '4GiB', '80%'), above 0."""
    value = text.strip()
    positive = not value.startswith("-") and any(digit in value for digit in "123456789")
    if not (value and positive and _duckdb_takes_memory_limit(value)):
        raise _bad(name, "a DuckDB memory size above 0, such as 2560MB, 4GiB or 80%", text)
    return value


def _path_under(base: Path | None) -> Callable[[str, str], Path]:
    def parse(name: str, text: str) -> Path:
        path = Path(text.strip())
        return path if base is None or path.is_absolute() else Path(os.path.normpath(base / path))

    return parse


def _integer(name: str, text: str, minimum: int, expected: str) -> int:
    try:
        value = int(text.strip())
    except ValueError:
        raise _bad(name, expected, text) from None
    if value < minimum:
        raise _bad(name, expected, text)
    return value


def _positive_int(name: str, text: str) -> int:
    return _integer(name, text, 1, "a positive integer")


def _non_negative_int(name: str, text: str) -> int:
    return _integer(name, text, 0, "an integer >= 0")


def _number(name: str, text: str, expected: str, ok: Callable[[float], bool]) -> float:
    try:
        value = float(text.strip())
    except ValueError:
        raise _bad(name, expected, text) from None
    if not math.isfinite(value) or not ok(value):
        raise _bad(name, expected, text)
    return value


def _positive_number(name: str, text: str) -> float:
    return _number(name, text, "a number > 0", lambda value: value > 0)


def _non_negative_number(name: str, text: str) -> float:
    return _number(name, text, "a number >= 0", lambda value: value >= 0)


def _share(name: str, text: str) -> float:
    return _number(name, text, "a number between 0 and 1", lambda value: 0 <= value <= 1)


def _share_or_none(name: str, text: str) -> float | None:
    return _share(name, text) if text.strip() else None


def _amount(name: str, text: str) -> Decimal:
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        raise _bad(name, "an amount >= 0", text) from None
    if not value.is_finite() or value < 0:
        raise _bad(name, "an amount >= 0", text)
    return value


def _amount_or_none(name: str, text: str) -> Decimal | None:
    return _amount(name, text) if text.strip() else None


def _iso_date(name: str, text: str) -> str:
    try:
        return date.fromisoformat(text.strip()).isoformat()
    except ValueError:
        raise _bad(name, "a date as YYYY-MM-DD", text) from None


def utc_datetime(text: str) -> datetime:
    """An ISO 8601 date or time as a naive UTC datetime: one with an offset is converted, one without is
    taken as UTC. ValueError when it is not one."""
    value = datetime.fromisoformat(text.strip())
    return value if value.tzinfo is None else value.astimezone(UTC).replace(tzinfo=None)


def _utc_time(name: str, text: str) -> str:
    """An ISO 8601 date or time, as `YYYY-MM-DD HH:MM:SS[.ffffff]` in UTC (`utc_datetime`: DuckDB's cast
    to TIMESTAMP would drop an offset)."""
    try:
        return utc_datetime(text).isoformat(sep=" ")
    except ValueError:
        raise _bad(name, "an ISO 8601 time such as 2026-11-10T18:00:00Z", text) from None


def _utc_time_or_empty(name: str, text: str) -> str:
    return _utc_time(name, text) if text.strip() else ""


def _yes_or_no(name: str, text: str) -> bool:
    answer = text.strip().lower()
    if answer not in ("true", "false"):
        raise _bad(name, "true or false", text)
    return answer == "true"


def _dbt_target(name: str, text: str) -> str:
    if text.strip() not in DBT_TARGETS:
        raise _bad(name, " or ".join(DBT_TARGETS), text)
    return text.strip()


# The command line (`orchestration.cli`) and run config (`AuditConfig`) check their values the same way.
check_positive_int = _positive_int
check_positive_number = _positive_number
check_share = _share
check_iso_date = _iso_date
check_utc_time = _utc_time


# ------------------------------------------------------------------ the variables


@dataclass(frozen=True)
class Variable:
    """One environment variable: the `Settings` field it sets, its default, type and meaning.

    `default` is the text used when the variable is unset (or, with `blank_is_default`, empty), as
    the README shows it; `shown_default` replaces it in the README where the text would say nothing
    (an empty default)."""

    name: str
    field: str
    default: str
    kind: str  # the type, as the README shows it
    parse: Callable[[str, str], Any]
    meaning: str
    blank_is_default: bool = False
    shown_default: str | None = None
    read_by_dbt: bool = False  # profiles.yml or a dbt macro reads it through env_var()


def _path_variable(
    name: str, field: str, default: str, meaning: str, base: Path | None = PROJECT_ROOT, **kw: Any
) -> Variable:
    return Variable(name, field, default, "path", _path_under(base), meaning, blank_is_default=True, **kw)


VARIABLES: tuple[Variable, ...] = (
    _path_variable(
        "ORDER_AUDIT_EXTRACTS_DIR",
        "extracts_dir",
        "data/extracts",
        "landing folder, one sub-folder per source",
    ),
    _path_variable(
        "ORDER_AUDIT_WAREHOUSE",
        "warehouse",
        "data/warehouse.duckdb",
        "the DuckDB file the pipeline writes (one writer at a time); dbt gets its absolute path",
        read_by_dbt=True,
    ),
    _path_variable(
        "ORDER_AUDIT_SERVING_DB",
        "serving_db",
        "data/serving/order_audit.duckdb",
        "the published, read-only mart analysts and dashboards open",
    ),
    Variable(
        "ORDER_AUDIT_AS_OF",
        "as_of",
        "",
        "UTC time",
        _utc_time_or_empty,
        "the audit's as-of time, ISO 8601 (UTC unless it has an offset), clock of `FULFILLMENT_DELAYED`"
        " and of exception stamps (`order-audit run --as-of` overrides it)",
        shown_default="latest clean event",
    ),
    Variable(
        "ORDER_AUDIT_SLA_HOURS",
        "sla_hours",
        "72",
        "number > 0",
        _positive_number,
        "fulfillment SLA in hours (`order-audit run --sla-hours` overrides it)",
    ),
    Variable(
        "ORDER_AUDIT_FIRST_EXTRACT_DATE",
        "first_extract_date",
        "2026-10-01",
        "date",
        _iso_date,
        "first daily partition of the raw loading",
    ),
    Variable(
        "ORDER_AUDIT_FRESHNESS_MAX_DAYS",
        "freshness_max_days",
        "2",
        "integer >= 0",
        _non_negative_int,
        "freshness check: maximum age of a required source's newest extract",
    ),
    Variable(
        "ORDER_AUDIT_LOCK_TIMEOUT_SECONDS",
        "lock_timeout_seconds",
        "60",
        "number >= 0",
        _non_negative_number,
        "how long `order-audit run` waits, before it starts, for the warehouse to be free (another run, or a"
        " process holding the file open, even read-only), then exits with status 3 naming the file and the"
        " holder's PID (`orchestration/locks.py`)",
    ),
    Variable(
        "ORDER_AUDIT_DUCKDB_MEMORY_LIMIT",
        "duckdb_memory_limit",
        "2560MB",
        "DuckDB size",
        _duckdb_memory,
        "DuckDB memory limit per process (the loaders, dbt)",
        read_by_dbt=True,
    ),
    Variable(
        "ORDER_AUDIT_DUCKDB_THREADS",
        "duckdb_threads",
        "2",
        "integer > 0",
        _positive_int,
        "DuckDB threads per process (the loaders, dbt)",
        read_by_dbt=True,
    ),
    Variable(
        "ORDER_AUDIT_DBT_TARGET",
        "dbt_target",
        "duckdb",
        " or ".join(DBT_TARGETS),
        _dbt_target,
        'dbt target of `dbt_project/profiles.yml`: `duckdb` or `spark` (see "Scaling out")',
        read_by_dbt=True,
    ),
    Variable(
        "ORDER_AUDIT_DBT_IN_PROCESS",
        "dbt_in_process",
        "true",
        "true or false",
        _yes_or_no,
        "true: a Dagster run's dbt commands run inside its process, where dbt is already imported (0.5-1.5 s"
        " less per dbt build than a `dbt` subprocess), when they can (the `duckdb` target, an absolute"
        " ORDER_AUDIT_WAREHOUSE: `order-audit` exports one), and dbt warms up (a `dbt parse` in a thread)"
        " while the raw-stage GX checks run; false: always a `dbt` subprocess, no warm-up",
    ),
    _path_variable(
        "ORDER_AUDIT_RAW_PARQUET_DIR",
        "raw_parquet_dir",
        "../data/parquet/raw",
        "`spark` target: folder of the raw tables' Parquet export (`<table>.parquet`); read by dbt, a"
        " relative path is relative to `dbt_project/`",
        base=DBT_PROJECT_DIR,
        read_by_dbt=True,
    ),
    _path_variable(
        "ORDER_AUDIT_SPARK_WAREHOUSE_DIR",
        "spark_warehouse_dir",
        "target/spark-warehouse",
        "`spark` target: where the local Spark session writes its tables; read by dbt, a relative path"
        " is relative to `dbt_project/`",
        base=DBT_PROJECT_DIR,
        read_by_dbt=True,
    ),
    Variable(
        "ORDER_AUDIT_SPARK_DRIVER_MEMORY",
        "spark_driver_memory",
        "2g",
        "Spark size",
        _non_empty_text,
        "`spark` target: memory of the local Spark driver",
        read_by_dbt=True,
    ),
    _path_variable(
        "ORDER_AUDIT_ROUTING",
        "routing_file",
        "routing.yml",
        'the exception routing rules and notification destinations (see "Routing rules" and "Working'
        ' exceptions")',
    ),
    _path_variable(
        "ORDER_AUDIT_GX_DOCS_DIR", "gx_docs_dir", "data/gx_docs", "root of the GX Data Docs (git-ignored)"
    ),
    Variable(
        "ORDER_AUDIT_QUALITY_TIMEOUT_SECONDS",
        "quality_timeout_seconds",
        "900",
        "number > 0",
        _positive_number,
        "a GX validation child started without a timeout of its own (not a Dagster run: the `gx`"
        " resource's `timeout_seconds`, 900, sets theirs) is stopped after this long, failing every"
        " expectation it ran",
    ),
    _path_variable(
        "ORDER_AUDIT_QUALITY_LIMITS_FILE",
        "quality_limits_file",
        "expectations/threshold_limits.json",
        "the threshold limits of the WARN quality checks",
    ),
    Variable(
        "ORDER_AUDIT_MAX_EXCEPTION_SHARE",
        "max_exception_share",
        "",
        "number 0..1",
        _share_or_none,
        "largest acceptable share of orders whose audit_status is `exception` (WARN check)",
        shown_default="the limits file's",
    ),
    Variable(
        "ORDER_AUDIT_MAX_ABS_BALANCE",
        "max_abs_balance",
        "",
        "amount >= 0",
        _amount_or_none,
        "largest acceptable sum of abs(payment_balance_amount) of one currency, in major units, for"
        " every currency without a limit of its own (WARN check)",
        shown_default="the limits file's",
    ),
    Variable(
        f"{PER_CURRENCY_BALANCE_PREFIX}<CUR>",
        "max_abs_balance_by_currency",
        "",
        "amount >= 0",
        _amount,
        "the same for one currency, e.g. `ORDER_AUDIT_MAX_ABS_BALANCE_JPY`",
        shown_default="the limits file's",
    ),
    _path_variable(
        "DAGSTER_HOME",
        "dagster_home",
        ".dagster_home",
        "Dagster instance (runs, schedules, sensors); created with `orchestration/dagster.yaml`, whose"
        " storage (`orchestration/dagster_storage.py`) reads its folder from this variable, so plain"
        " `dagster` commands on it need it set (`order-audit run`/`ui` set it)",
    ),
)

# Rows of the README table for variables whose name is not fixed, so not a `Settings` field.
OTHER_VARIABLES: tuple[tuple[str, str, str, str], ...] = (
    (
        "the variable a webhook destination names (`webhook_env` in `routing.yml`)",
        "unset",
        "URL",
        "the webhook URL of that route's digests; never written in a file of the repository"
        " (read by `orchestration/publish/notify.py` when it sends)",
    ),
)


@dataclass(frozen=True)
class Settings:
    extracts_dir: Path
    warehouse: Path
    serving_db: Path
    as_of: str  # empty: the latest clean event
    sla_hours: float
    first_extract_date: str  # YYYY-MM-DD
    freshness_max_days: int
    lock_timeout_seconds: float  # how long `order-audit run` waits for the warehouse to be free
    duckdb_memory_limit: str
    duckdb_threads: int
    dbt_target: str
    dbt_in_process: bool
    raw_parquet_dir: Path
    spark_warehouse_dir: Path
    spark_driver_memory: str
    routing_file: Path  # the exception routing rules (orchestration/routing.py)
    gx_docs_dir: Path
    quality_timeout_seconds: float
    quality_limits_file: Path
    max_exception_share: float | None  # None: the limits file's
    max_abs_balance: Decimal | None  # None: the limits file's
    max_abs_balance_by_currency: Mapping[str, Decimal]  # ISO 4217 code -> limit; more than the file's
    dagster_home: Path

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read and check every variable of `environ` (default: this process's environment).

        Raises `SettingsError` naming the variable when a value is not valid."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for variable in VARIABLES:
            if variable.field == "max_abs_balance_by_currency":
                values[variable.field] = {
                    match.group(1): _amount(name, text)
                    for name, text in sorted(env.items())
                    if (match := _PER_CURRENCY_ENV.match(name))
                }
                continue
            text = env.get(variable.name)
            if text is None or (variable.blank_is_default and not text.strip()):
                text = variable.default
            values[variable.field] = variable.parse(variable.name, text)
        return cls(**values)

    def environ(self) -> dict[str, str]:
        """Every setting as the variable a child process reads back (`from_env(s.environ()) == s`);
        paths absolute, so a child in another folder (dbt runs in dbt_project/) reads the same files."""
        env: dict[str, str] = {}
        for variable in VARIABLES:
            value = getattr(self, variable.field)
            if variable.field == "max_abs_balance_by_currency":
                env.update(
                    {f"{PER_CURRENCY_BALANCE_PREFIX}{code}": str(limit) for code, limit in value.items()}
                )
            elif value is not None:
                env[variable.name] = str(value)
        return env

    def child_environ(self, inherited: Mapping[str, str] | None = None) -> dict[str, str]:
        """The environment of a child process: `inherited` (default: this process's; PATH, HOME...)
        without any settings variable, plus every setting of `self` (`environ()`)."""
        base = os.environ if inherited is None else inherited
        return {**{k: v for k, v in base.items() if not is_settings_variable(k)}, **self.environ()}

    def dbt_environ(self) -> dict[str, str]:
        """The variables dbt reads through env_var() in profiles.yml and the macros, as dbt must see them."""
        environ = self.environ()
        return {variable.name: environ[variable.name] for variable in VARIABLES if variable.read_by_dbt}

    def dbt_sees_this_warehouse(self, environ: Mapping[str, str] | None = None) -> bool:
        """Whether dbt, run in dbt_project/ with `environ` (default: this process's environment), opens
        `self.warehouse`. Not so for a relative ORDER_AUDIT_WAREHOUSE, which dbt takes relative to
        dbt_project/: `order-audit` exports the absolute path (`orchestration.cli.main`)."""
        env = os.environ if environ is None else environ
        text = env.get("ORDER_AUDIT_WAREHOUSE", "").strip()
        if not text:  # dbt's default, the same file as ours (tests/test_settings.py)
            return (
                self.warehouse.resolve()
                == (PROJECT_ROOT / variable("ORDER_AUDIT_WAREHOUSE").default).resolve()
            )
        return (DBT_PROJECT_DIR / text).resolve() == self.warehouse.resolve()


assert [v.field for v in VARIABLES] == [f.name for f in fields(Settings)], "VARIABLES and Settings disagree"


def is_settings_variable(name: str) -> bool:
    """Whether `name` is one of the variables `Settings` reads."""
    return name in _FIXED_NAMES or _PER_CURRENCY_ENV.match(name) is not None


def variable(name: str) -> Variable:
    """The variable named `name`."""
    return next(v for v in VARIABLES if v.name == name)


_FIXED_NAMES = frozenset(v.name for v in VARIABLES if v.field != "max_abs_balance_by_currency")


def settings_table() -> str:
    """The README's "Settings" table (Markdown), one row per variable."""
    lines = ["| variable | default | type | meaning |", "|---|---|---|---|"]
    for variable in VARIABLES:
        default = variable.shown_default or f"`{variable.default}`"
        lines.append(f"| `{variable.name}` | {default} | {variable.kind} | {variable.meaning} |")
    for name, default, kind, meaning in OTHER_VARIABLES:
        lines.append(f"| {name} | {default} | {kind} | {meaning} |")
    return "\n".join(lines)
